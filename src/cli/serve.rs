//! `hisp-gateway serve` (the default): the server, its worker, and the embedded PostgreSQL's
//! supervisor, until SIGTERM or SIGINT.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Config;
use crate::jobs::JobRegistry;
use crate::service::{self, Actor};
use crate::store::Database;

pub async fn serve(config: Config, db: &Database) -> anyhow::Result<ExitCode> {
    if db.is_first_start() && config.demo.seed_on_first_start {
        let key = config.security.identity_hash_key.expose().as_bytes();
        let created = service::demo::seed(&db.pool, key, &Actor::cli()).await?;
        println!(
            "{}",
            service::demo::banner(&created, &config.http.public_base_url)
        );
    }
    let app = App::build(config, db.pool.clone(), JobRegistry::new()).await?;
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
