//! Wiring: every front door's router merged behind the shared HTTP stack, and the server run
//! with its job worker. Adding a door is one line in `router`.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use axum::Router;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Secret};
use crate::error::AppError;
use crate::jobs::{JobRegistry, Worker};
use crate::state::AppState;

pub struct App {
    state: AppState,
    listener: tokio::net::TcpListener,
    worker: Worker,
    outer: Option<OuterLayer>,
    smtp: Option<crate::smtp::Listener>,
}

/// Something put around the whole router: the test suite's check of every JSON answer against
/// the OpenAPI document. The server itself adds none.
pub type OuterLayer = Box<dyn FnOnce(Router) -> Router + Send>;

impl App {
    /// Binds the HTTP listener (port 0 picks a free one) and prepares the worker with the
    /// gateway's job handlers plus `extra` (tests add their own). `config` must have its local
    /// secrets resolved (`resolve_local_secrets`).
    pub async fn build(config: Config, db: PgPool, extra: JobRegistry) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !config.security.identity_hash_key.is_empty()
                && !config.ca.key_encryption_key.is_empty(),
            "local secrets are not resolved"
        );
        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("binding HTTP listener on {}", config.http.listen))?;
        let smtp = if config.smtp.enabled {
            Some(crate::smtp::Listener::bind(&config).await?)
        } else {
            None
        };
        let jobs = config.jobs.clone();
        let state = AppState::new(config, db);
        let mut registry = state.job_registry();
        registry.merge(extra);
        let worker = Worker::new(state.db.clone(), registry, &jobs);
        Ok(Self {
            state,
            listener,
            worker,
            outer: None,
            smtp,
        })
    }
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Where the inbound SMTP listener listens; None when `smtp.enabled` is off.
    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.smtp.as_ref().map(crate::smtp::Listener::local_addr)
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
    /// Puts `outer` around the router when the server runs (see `OuterLayer`).
    pub fn wrap_router(mut self, outer: OuterLayer) -> Self {
        self.outer = Some(outer);
        self
    }

    pub async fn run(self, shutdown: CancellationToken, run_worker: bool) -> anyhow::Result<()> {
        // Installed before the first request, whose metrics would otherwise go nowhere.
        crate::telemetry::prometheus();
        tokio::spawn(crate::telemetry::upkeep(shutdown.clone()));
        let grace = self.state.config.http.shutdown_grace;
        if run_worker {
            self.worker
                .schedule_recurring()
                .await
                .context("scheduling recurring jobs")?;
        }
        let worker = run_worker.then(|| tokio::spawn(self.worker.clone().run(shutdown.clone())));
        // SMTP sessions in a transaction get the same grace as requests.
        let smtp = self
            .smtp
            .map(|l| tokio::spawn(l.serve(self.state.clone(), shutdown.clone(), grace)));
        let mut router = router(self.state.clone());
        if let Some(outer) = self.outer {
            router = outer(router);
        }
        let limits = crate::http::server::ConnectionLimits::from_config(&self.state.config.http);
        let server = crate::http::server::serve(self.listener, router, limits, shutdown.clone());
        tokio::pin!(server);
        tokio::select! {
            r = &mut server => r.context("HTTP server failed")?,
            _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(?grace, "in-flight requests did not finish within the shutdown grace period");
            }
        }
        if let Some(s) = smtp {
            s.await.context("SMTP listener panicked")?;
        }
        if let Some(w) = worker {
            w.await.context("job worker panicked")?;
        }
        Ok(())
    }
}

/// Fills in the secrets that the embedded mode may generate itself: the identity hash key and
/// the CA key-encryption key. Configured values win; with the embedded database a missing one
/// is generated once and kept in a file beside its data folder; with an external database
/// (shared by replicas, which must agree) a missing one is an error.
pub fn resolve_local_secrets(
    config: &mut Config,
    embedded_data_dir: Option<&Path>,
) -> anyhow::Result<()> {
    config.security.identity_hash_key = local_secret(
        &config.security.identity_hash_key,
        "GW_SECURITY__IDENTITY_HASH_KEY",
        "identity-hash.key",
        embedded_data_dir,
    )?;
    config.ca.key_encryption_key = local_secret(
        &config.ca.key_encryption_key,
        "GW_CA__KEY_ENCRYPTION_KEY",
        "ca-kek.key",
        embedded_data_dir,
    )?;
    Ok(())
}

fn local_secret(
    configured: &Secret,
    env: &str,
    file: &str,
    embedded_data_dir: Option<&Path>,
) -> anyhow::Result<Secret> {
    if !configured.is_empty() {
        anyhow::ensure!(
            configured.expose().len() >= 32,
            "{env} must be at least 32 characters"
        );
        return Ok(configured.clone());
    }
    let Some(data_dir) = embedded_data_dir else {
        anyhow::bail!(
            "set {env} (32+ random characters, the same on every replica) when using DATABASE_URL"
        );
    };
    let path = data_dir.parent().unwrap_or(data_dir).join(file);
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
    tracing::info!(file = %path.display(), "generated a local secret");
    Ok(Secret::new(key))
}

/// Every door's router, each with its own limits and error form, behind the shared stack.
pub fn router(state: AppState) -> Router {
    let doors = Router::new()
        .merge(crate::ops::router(&state))
        .merge(crate::rest::router(&state))
        .merge(crate::soap::router(&state))
        .merge(crate::credentialing::router(&state))
        .merge(crate::hl7::router(&state))
        .fallback(not_found)
        .with_state(state);
    crate::http::stack(doors)
}

/// A path no door serves.
async fn not_found() -> AppError {
    AppError::NotFound("route".into())
}
