//! `hisp-gateway serve` (the default): the server, its worker, and the embedded PostgreSQL's
//! supervisor, until SIGTERM or SIGINT.

use std::process::ExitCode;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Config;
use crate::jobs::JobRegistry;
use crate::service::pki::PkiContext;
use crate::service::{self, Actor};
use crate::store::Database;

pub async fn serve(config: Config, db: &Database) -> anyhow::Result<ExitCode> {
    let ca_ready = ensure_ca(&config, db).await?;
    if db.is_first_start() && config.demo.seed_on_first_start {
        let key = config.security.identity_hash_key.expose().as_bytes();
        let created = service::demo::seed(&db.pool, key, &Actor::cli()).await?;
        println!(
            "{}",
            service::demo::banner(&created, &config.http.public_base_url, ca_ready)
        );
    }
    let app = App::build(config, db.pool.clone(), JobRegistry::new()).await?;
    if let Some(addr) = app.smtp_addr() {
        tracing::info!(%addr, "smtp listening");
    }
    tracing::info!(addr = %app.local_addr(), "http listening");
    let shutdown = CancellationToken::new();
    tokio::spawn(on_signal(shutdown.clone()));
    let supervisor = db
        .embedded
        .clone()
        .map(|pg| crate::store::supervisor::supervise(pg, shutdown.clone()));
    let served = app.run(shutdown.clone(), true).await;
    // Stopped before the cluster is: it would start it again.
    shutdown.cancel();
    if let Some(s) = supervisor {
        let _ = s.await;
    }
    served?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The embedded mode (a single node, for trying and small sites) makes its CA at the first
/// start, so provisioning works at once. With DATABASE_URL the CA is an operator's decision
/// (`ca init`, perhaps importing their own), so we only say that it is missing. True when a
/// CA exists.
async fn ensure_ca(config: &Config, db: &Database) -> anyhow::Result<bool> {
    if config.uses_embedded_database() {
        let pki = PkiContext::from_config(config);
        if let Some(ca) = service::pki::ensure_ca(&db.pool, &pki, &Actor::cli(), Utc::now()).await?
        {
            tracing::info!(root = %ca.root_subject, issuing = %ca.issuing_subject,
                "created the CA: the embedded database had none");
        }
        return Ok(true);
    }
    let ready = service::pki::has_ca(&db.pool).await?;
    if !ready {
        tracing::warn!(
            "no CA yet: run `hisp-gateway ca init` (until then provisioning answers 099)"
        );
    }
    Ok(ready)
}

async fn on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing in-flight work"),
        _ = int.recv() => tracing::info!("SIGINT: finishing in-flight work"),
    }
    shutdown.cancel();
}
