//! Liveness, readiness and metrics for operators and load balancers.

use std::fmt::Write;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use crate::app::AppState;
use crate::{jobs, store, telemetry};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up; says nothing about its dependencies.
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// Ready to serve: the database answers and carries every migration this binary expects.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (status, body) = match store::is_migrated(&state.db).await {
        Ok(true) => (StatusCode::OK, json!({ "status": "ready" })),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "not_ready", "reason": "migrations pending" }),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "not_ready", "reason": "database unreachable" }),
        ),
    };
    (status, axum::Json(body))
}

/// Prometheus text: the process's counters and histograms, then gauges read from the database
/// at scrape time (they describe the shared database, so every replica reports the same).
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = telemetry::prometheus().render();
    let pool = &state.db;
    let _ = writeln!(out, "# TYPE gateway_db_pool_connections gauge");
    let _ = writeln!(
        out,
        "gateway_db_pool_connections{{state=\"idle\"}} {}",
        pool.num_idle()
    );
    let _ = writeln!(
        out,
        "gateway_db_pool_connections{{state=\"in_use\"}} {}",
        pool.size() as usize - pool.num_idle()
    );
    let _ = writeln!(
        out,
        "gateway_db_pool_max_connections {}",
        pool.options().get_max_connections()
    );
    if let Ok(counts) = store::jobs::counts_by_state(pool).await {
        let _ = writeln!(out, "# TYPE gateway_jobs gauge");
        for s in jobs::STATES {
            let n = counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "gateway_jobs{{state=\"{s}\"}} {n}");
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
