//! The Postgres outbox: durable side effects as rows, run by a worker with retries.
//!
//! A caller enqueues inside its own transaction, so the side effect exists if and only if the
//! state change committed. Handlers must be idempotent: a job whose worker died mid-run is run
//! again once its lease expires.

mod registry;
mod retry;
mod worker;

pub use registry::{Job, JobError, JobRegistry};
pub use retry::RetryPolicy;
pub use worker::Worker;

use chrono::Utc;
use sqlx::PgConnection;

use crate::store;

/// The job states, as stored.
pub const STATES: [&str; 4] = ["queued", "running", "done", "dead"];

/// Adds a job to the outbox on the caller's connection (normally its open transaction).
pub async fn enqueue(
    conn: &mut PgConnection,
    policy: &RetryPolicy,
    kind: &str,
    payload: serde_json::Value,
) -> Result<i64, sqlx::Error> {
    store::jobs::insert(
        conn,
        kind,
        &payload,
        policy.max_attempts(),
        Utc::now(),
        None,
    )
    .await
}

/// Like `enqueue`, for a job that must not start before the earlier jobs of `chain` have
/// ended (done, or dead after its last attempt): the jobs of a chain run in order.
pub async fn enqueue_chained(
    conn: &mut PgConnection,
    policy: &RetryPolicy,
    kind: &str,
    chain: &str,
    payload: serde_json::Value,
) -> Result<i64, sqlx::Error> {
    store::jobs::insert(
        conn,
        kind,
        &payload,
        policy.max_attempts(),
        Utc::now(),
        Some(chain),
    )
    .await
}

/// Like `enqueue`, for a job that must not run before `run_at` (timeouts).
pub async fn enqueue_at(
    conn: &mut PgConnection,
    policy: &RetryPolicy,
    kind: &str,
    payload: serde_json::Value,
    run_at: chrono::DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    store::jobs::insert(conn, kind, &payload, policy.max_attempts(), run_at, None).await
}
