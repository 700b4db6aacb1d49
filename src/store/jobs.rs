//! SQL of the jobs outbox.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// The channel a worker LISTENs on to wake up as soon as a job is committed.
pub const NOTIFY_CHANNEL: &str = "gateway_jobs";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
    pub max_attempts: i32,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Adds a job. Jobs with the same `chain` run one at a time in the order of their ids.
pub async fn insert(
    conn: &mut PgConnection,
    kind: &str,
    payload: &serde_json::Value,
    max_attempts: i32,
    run_at: DateTime<Utc>,
    chain: Option<&str>,
) -> Result<i64, sqlx::Error> {
    let id = sqlx::query_scalar(
        "INSERT INTO jobs (kind, payload, max_attempts, run_at, chain) VALUES ($1, $2, $3, $4, $5)
         RETURNING id",
    )
    .bind(kind)
    .bind(payload)
    .bind(max_attempts)
    .bind(run_at)
    .bind(chain)
    .fetch_one(&mut *conn)
    .await?;
    // Only a job due now needs a worker woken; a later one is found by polling. NOTIFY is not
    // free: notifying transactions commit one at a time (they share a database-wide lock).
    if run_at <= Utc::now() {
        notify(conn).await?;
    }
    Ok(id)
}

/// Wakes the workers' LISTEN. Delivered at commit, so a worker never wakes for a row it
/// cannot see yet.
async fn notify(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

/// Inserts the job named `singleton` unless it is already queued or running.
pub async fn insert_singleton(
    conn: &mut PgConnection,
    kind: &str,
    singleton: &str,
    max_attempts: i32,
    run_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO jobs (kind, singleton, max_attempts, run_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (singleton) WHERE singleton IS NOT NULL AND state IN ('queued', 'running') DO NOTHING",
    )
    .bind(kind)
    .bind(singleton)
    .bind(max_attempts)
    .bind(run_at)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 1 {
        notify(conn).await?;
    }
    Ok(r.rows_affected() == 1)
}

/// Claims up to `limit` due jobs for `worker`. `SKIP LOCKED` lets replicas claim concurrently
/// without waiting on or double-claiming each other's rows; a running job whose lease ran out
/// (its worker died) is due again. A chained job waits while an earlier job of its chain is
/// queued or running: a claim racing with another sees that job as queued either way.
pub async fn claim(
    db: &PgPool,
    worker: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ClaimedJob>, sqlx::Error> {
    // Due jobs and expired leases are looked up apart, each down its own index in claim
    // order, so a claim reads about `limit` rows (and checks their chains) however many jobs
    // are due. One `WHERE due OR expired` made PostgreSQL read, check and sort every due job
    // (measured: 15 ms a claim with 5,000 due, 0.4 ms this way).
    sqlx::query_as(
        "WITH pending (id, run_at) AS (
             SELECT id, run_at FROM (
                 SELECT id, run_at FROM jobs j
                 WHERE state = 'queued' AND run_at <= $2
                   AND (j.chain IS NULL OR NOT EXISTS (
                       SELECT 1 FROM jobs e
                       WHERE e.chain = j.chain AND e.id < j.id AND e.state IN ('queued', 'running')))
                 ORDER BY run_at, id
                 LIMIT $4
                 FOR UPDATE SKIP LOCKED) due
             UNION ALL
             SELECT id, run_at FROM (
                 SELECT id, run_at FROM jobs j
                 WHERE state = 'running' AND locked_until < $2
                   AND (j.chain IS NULL OR NOT EXISTS (
                       SELECT 1 FROM jobs e
                       WHERE e.chain = j.chain AND e.id < j.id AND e.state IN ('queued', 'running')))
                 ORDER BY locked_until
                 LIMIT $4
                 FOR UPDATE SKIP LOCKED) expired)
         UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1,
                locked_until = $3, updated_at = now()
         WHERE id IN (SELECT id FROM pending ORDER BY run_at, id LIMIT $4)
         RETURNING id, kind, payload, attempts, max_attempts",
    )
    .bind(worker)
    .bind(now)
    .bind(lease_until)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// How a run ended, as recorded.
pub enum Outcome<'a> {
    Done,
    /// A recurring job succeeded: queue the same row again, with fresh attempts.
    Again {
        run_at: DateTime<Utc>,
    },
    Retry {
        run_at: DateTime<Utc>,
        error: &'a str,
    },
    Dead {
        error: &'a str,
    },
}

/// Records the end of a run. The `locked_by` guard keeps a worker whose lease expired from
/// overwriting the outcome of the worker that took the job over; false when that happened.
pub async fn finish(
    db: &PgPool,
    id: i64,
    worker: &str,
    outcome: Outcome<'_>,
) -> Result<bool, sqlx::Error> {
    let (state, run_at, error) = match outcome {
        Outcome::Done => ("done", None, None),
        Outcome::Again { run_at } => ("queued", Some(run_at), None),
        Outcome::Retry { run_at, error } => ("queued", Some(run_at), Some(error)),
        Outcome::Dead { error } => ("dead", None, Some(error)),
    };
    // The next job of a chain becomes claimable at this commit. No NOTIFY for it: the worker
    // that ran this job claims again as soon as it is done, and notifying transactions commit
    // one at a time.
    let r = sqlx::query(
        "UPDATE jobs SET state = $3, run_at = coalesce($4, run_at), last_error = $5,
                attempts = CASE WHEN $3 = 'queued' AND $5::text IS NULL THEN 0 ELSE attempts END,
                finished_at = CASE WHEN $3 = 'queued' THEN NULL ELSE now() END,
                updated_at = now(), locked_by = NULL, locked_until = NULL
         WHERE id = $1 AND locked_by = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(worker)
    .bind(state)
    .bind(run_at)
    .bind(error)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn list(
    db: &PgPool,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, state, attempts, max_attempts, run_at, last_error, created_at, updated_at
         FROM jobs WHERE ($1::text IS NULL OR state = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(state)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn get(db: &PgPool, id: i64) -> Result<Option<JobRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, state, attempts, max_attempts, run_at, last_error, created_at, updated_at
         FROM jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Puts a dead job back in the queue with a fresh set of attempts.
pub async fn requeue_dead(conn: &mut PgConnection, id: i64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = now(), finished_at = NULL,
                updated_at = now()
         WHERE id = $1 AND state = 'dead'",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 1 {
        notify(conn).await?;
    }
    Ok(r.rows_affected() == 1)
}

pub async fn counts_by_state(db: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT state, count(*) FROM jobs GROUP BY state")
        .fetch_all(db)
        .await
}
