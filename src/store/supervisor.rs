//! Keeps the embedded PostgreSQL running while the server runs.
//!
//! The cluster is a separate process tree: the OOM killer, an operator's `kill -9` or a crash
//! can end it while the gateway lives on. Without a supervisor the gateway would answer 503
//! forever. Here it is checked every second and started again (PostgreSQL replays its WAL
//! first, so nothing committed is lost); a start that fails is retried with a doubling delay.
//! Meanwhile `/readyz` says 503 and requests that need the database get 503 with Retry-After;
//! the pool's broken connections are replaced once it is back (`liveness`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::embedded::EmbeddedPostgres;

const CHECK_EVERY: Duration = Duration::from_secs(1);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(30);

/// Watches `pg` until `stop` fires; the returned task ends then (await it before stopping the
/// cluster, or it would start it again).
pub fn supervise(pg: EmbeddedPostgres, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut retry = FIRST_RETRY;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
            let probe = pg.clone();
            let running = tokio::task::spawn_blocking(move || probe.is_running())
                .await
                .unwrap_or(true);
            if running {
                retry = FIRST_RETRY;
                continue;
            }
            tracing::warn!("the embedded PostgreSQL is not running; starting it again");
            metrics::counter!("gateway_embedded_postgres_restarts_total").increment(1);
            let starter = pg.clone();
            let started = tokio::task::spawn_blocking(move || starter.restart())
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r);
            match started {
                Ok(()) => {
                    tracing::info!("the embedded PostgreSQL is running again");
                    retry = FIRST_RETRY;
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), retry_in = ?retry, "starting the embedded PostgreSQL failed");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(LONGEST_RETRY);
                }
            }
        }
    })
}
