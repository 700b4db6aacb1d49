//! Wiring: the shared state every front door gets, and running the server with its worker.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::auth::Verifier;
use crate::config::{Config, Secret};
use crate::jobs::{JobRegistry, RetryPolicy, Worker};

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub verifier: Arc<Verifier>,
    pub retry: RetryPolicy,
    /// Key of the keyed hashes that let us match identity data we do not store.
    pub identity_key: Arc<Secret>,
}

pub struct App {
    state: AppState,
    listener: tokio::net::TcpListener,
    worker: Worker,
}

impl App {
    /// Binds the HTTP listener (port 0 picks a free one) and prepares the worker.
    pub async fn build(
        config: Config,
        db: PgPool,
        registry: JobRegistry,
        identity_key: Secret,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("binding HTTP listener on {}", config.http.listen))?;
        let worker = Worker::new(db.clone(), registry, &config.jobs);
        let state = AppState {
            db,
            retry: RetryPolicy::from_config(&config.jobs),
            config: Arc::new(config),
            verifier: Arc::new(Verifier::default()),
            identity_key: Arc::new(identity_key),
        };
        Ok(Self {
            state,
            listener,
            worker,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle on this app's worker, to drive jobs explicitly (tests, CLI).
    pub fn worker(&self) -> Worker {
        self.worker.clone()
    }

    /// Serves until `shutdown` fires, then stops accepting, lets in-flight requests and running
    /// jobs finish (requests get `http.shutdown_grace` at most), and returns.
    pub async fn run(self, shutdown: CancellationToken, run_worker: bool) -> anyhow::Result<()> {
        crate::telemetry::prometheus();
        let grace = self.state.config.http.shutdown_grace;
        let worker = run_worker.then(|| tokio::spawn(self.worker.clone().run(shutdown.clone())));
        let router = crate::http::router(self.state.clone());
        let server = axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let server = server.into_future();
        tokio::pin!(server);
        tokio::select! {
            r = &mut server => r.context("HTTP server failed")?,
            _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(?grace, "in-flight requests did not finish within the shutdown grace period");
            }
        }
        if let Some(w) = worker {
            w.await.context("job worker panicked")?;
        }
        Ok(())
    }
}

/// Resolves `security.identity_hash_key`: the configured value, or for the embedded database a
/// key generated once and kept beside its data folder (external databases are shared by
/// replicas, which must all use one configured key).
pub fn identity_key(config: &Config, embedded_data_dir: Option<&Path>) -> anyhow::Result<Secret> {
    let configured = &config.security.identity_hash_key;
    if !configured.is_empty() {
        anyhow::ensure!(
            configured.expose().len() >= 32,
            "security.identity_hash_key must be at least 32 characters"
        );
        return Ok(configured.clone());
    }
    let Some(data_dir) = embedded_data_dir else {
        anyhow::bail!(
            "set GW_SECURITY__IDENTITY_HASH_KEY (32+ random characters, the same on every replica) \
             when using DATABASE_URL"
        );
    };
    let path = data_dir
        .parent()
        .unwrap_or(data_dir)
        .join("identity-hash.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(Secret::new(existing.trim()));
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = crate::auth::secrets::generate_secret();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{key}")?;
    tracing::info!(file = %path.display(), "generated the identity hash key");
    Ok(Secret::new(key))
}

/// The job handlers of the gateway. Later issues register theirs here.
pub fn job_registry() -> JobRegistry {
    JobRegistry::new()
}
