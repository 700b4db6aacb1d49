//! The operators' door: liveness, readiness and metrics for load balancers and Prometheus.

use std::fmt::Write;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use crate::http::door::DoorLimits;
use crate::service::health;
use crate::state::AppState;
use crate::telemetry;

/// Bodiless GETs: no body is accepted, and the request timeout answers in JSON.
pub fn router(state: &AppState) -> Router<AppState> {
    let limits = DoorLimits {
        body_bytes: 0,
        timeout: state.config.http.request_timeout,
        render: |_, e| e.into_response(),
    };
    limits
        .apply(
            Router::new()
                .route("/healthz", get(healthz))
                .route("/readyz", get(readyz))
                .route("/metrics", get(metrics)),
        )
        .layer(axum::middleware::from_fn(crate::error::json_errors))
}

/// The process is up; says nothing about its dependencies.
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// Ready to serve: the database answers and carries every migration this binary expects.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (status, body) = match health::is_migrated(&state.db).await {
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
    if let Ok(counts) = health::job_counts(pool).await {
        let _ = writeln!(out, "# TYPE gateway_jobs gauge");
        for (s, n) in counts {
            let _ = writeln!(out, "gateway_jobs{{state=\"{s}\"}} {n}");
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
