//! Claims due jobs and runs them: in the background while serving, or on demand in tests.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::registry::{Job, JobError, JobRegistry};
use super::retry::RetryPolicy;
use crate::config::JobsConfig;
use crate::store::jobs::{self as sql, ClaimedJob, Outcome};

const MAX_ERROR_LEN: usize = 2000;

#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    db: PgPool,
    registry: JobRegistry,
    policy: RetryPolicy,
    id: String,
    concurrency: usize,
    lease: Duration,
    poll_interval: Duration,
}

impl Worker {
    pub fn new(db: PgPool, registry: JobRegistry, config: &JobsConfig) -> Self {
        let id = format!(
            "{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            inner: Arc::new(Inner {
                db,
                registry,
                policy: RetryPolicy::from_config(config),
                id,
                concurrency: config.concurrency,
                lease: config.lease,
                poll_interval: config.poll_interval,
            }),
        }
    }

    /// This worker's name in `jobs.locked_by`.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.inner.policy
    }

    /// Makes sure each recurring job of the registry exists once (every replica calls this at
    /// start; the singleton index keeps it one job).
    pub async fn schedule_recurring(&self) -> Result<(), sqlx::Error> {
        let mut conn = self.inner.db.acquire().await?;
        for kind in self.inner.registry.recurring_kinds() {
            sql::insert_singleton(
                &mut conn,
                kind,
                kind,
                self.inner.policy.max_attempts(),
                Utc::now(),
            )
            .await?;
        }
        Ok(())
    }

    /// Runs every job due now, and those that become due while it runs, until none is left.
    /// Returns how many job runs it made. Tests drive the outbox with this instead of sleeping.
    pub async fn run_until_idle(&self) -> anyhow::Result<usize> {
        let mut total = 0;
        loop {
            let n = self.run_batch(Utc::now()).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// Like `run_until_idle`, but as if the clock read `now`: runs what is due by then, which
    /// lets a test step through a retry schedule without waiting for it.
    pub async fn run_due_at(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut total = 0;
        loop {
            let n = self.run_batch(now).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    async fn run_batch(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let jobs = self.claim(now, self.inner.concurrency).await?;
        let n = jobs.len();
        let mut set = JoinSet::new();
        for job in jobs {
            let w = self.clone();
            set.spawn(async move { w.execute(job, now).await });
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
        Ok(n)
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ClaimedJob>, sqlx::Error> {
        let lease_until = now + self.inner.lease;
        sql::claim(
            &self.inner.db,
            &self.inner.id,
            now,
            lease_until,
            limit as i64,
        )
        .await
    }

    /// Runs one claimed job and records its outcome. `now` is the clock the claim used.
    async fn execute(&self, claimed: ClaimedJob, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
        let inner = &self.inner;
        let job = Job {
            id: claimed.id,
            kind: claimed.kind.clone(),
            payload: claimed.payload,
            attempt: claimed.attempts,
            max_attempts: claimed.max_attempts,
            now,
        };
        let outcome = match inner.registry.get(&claimed.kind) {
            None => Err(JobError::Permanent(format!(
                "no handler for job kind {:?}",
                claimed.kind
            ))),
            Some(handler) => {
                // Spawned so a panicking handler is a failed attempt, not a dead worker; bounded
                // by the lease so no other worker can take the job over while it still runs.
                match tokio::time::timeout(inner.lease, tokio::spawn(handler(job))).await {
                    Err(_) => Err(JobError::Transient(format!(
                        "timed out after {:?}",
                        inner.lease
                    ))),
                    Ok(Err(join)) if join.is_panic() => {
                        Err(JobError::Transient("handler panicked".into()))
                    }
                    Ok(Err(join)) => Err(JobError::Transient(format!(
                        "handler was cancelled: {join}"
                    ))),
                    Ok(Ok(result)) => result,
                }
            }
        };
        let kind = claimed.kind;
        let retry_error;
        let (label, recorded) = match outcome {
            Ok(()) => match inner.registry.interval(&kind) {
                Some(every) => (
                    "done",
                    Outcome::Again {
                        run_at: now + every,
                    },
                ),
                None => ("done", Outcome::Done),
            },
            Err(JobError::Transient(e)) if claimed.attempts < claimed.max_attempts => {
                let policy = inner.registry.policy(&kind).unwrap_or(&inner.policy);
                let delay = policy.delay_after(claimed.attempts);
                tracing::warn!(job_id = claimed.id, kind = %kind, attempt = claimed.attempts, retry_in = ?delay, error = %e, "job failed; will retry");
                retry_error = e;
                (
                    "retry",
                    Outcome::Retry {
                        run_at: now + delay,
                        error: truncate(&retry_error),
                    },
                )
            }
            Err(e) => {
                tracing::error!(job_id = claimed.id, kind = %kind, attempt = claimed.attempts, error = %e, "job is dead");
                retry_error = e.to_string();
                (
                    "dead",
                    Outcome::Dead {
                        error: truncate(&retry_error),
                    },
                )
            }
        };
        if !sql::finish(&inner.db, claimed.id, &inner.id, recorded).await? {
            tracing::warn!(job_id = claimed.id, kind = %kind, "job finished after its lease expired; another worker owns it now");
        }
        metrics::counter!("gateway_job_runs_total", "kind" => kind, "outcome" => label)
            .increment(1);
        Ok(())
    }

    /// The background loop: runs up to `concurrency` jobs at once, wakes on NOTIFY or every
    /// poll interval, and on shutdown stops claiming and waits for the jobs it is running.
    pub async fn run(self, shutdown: CancellationToken) {
        let inner = &self.inner;
        let mut listener = match PgListener::connect_with(&inner.db).await {
            Ok(mut l) => match l.listen(sql::NOTIFY_CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN failed; polling only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "no listener connection; polling only");
                None
            }
        };
        let mut running = JoinSet::new();
        tracing::info!(worker = %inner.id, concurrency = inner.concurrency, "job worker started");
        while !shutdown.is_cancelled() {
            let free = inner.concurrency - running.len();
            if free > 0 {
                let now = Utc::now();
                match self.claim(now, free).await {
                    Ok(jobs) => {
                        let full = jobs.len() == free;
                        for job in jobs {
                            let w = self.clone();
                            running.spawn(async move { w.execute(job, now).await });
                        }
                        if full {
                            continue;
                        }
                    }
                    Err(e) => {
                        crate::store::liveness::observe(&e);
                        tracing::warn!(error = %e, "claiming jobs failed")
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(done) = running.join_next(), if !running.is_empty() => log_join(done),
                woke = wait_notification(&mut listener) => {
                    if let Err(e) = woke {
                        tracing::warn!(error = %e, "job notifications lost; polling only");
                        listener = None;
                    }
                }
                _ = tokio::time::sleep(inner.poll_interval) => {}
            }
        }
        let in_flight = running.len();
        if in_flight > 0 {
            tracing::info!(in_flight, "waiting for running jobs before exit");
        }
        while let Some(done) = running.join_next().await {
            log_join(done);
        }
        tracing::info!(worker = %inner.id, "job worker stopped");
    }
}

fn log_join(r: Result<Result<(), sqlx::Error>, tokio::task::JoinError>) {
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            crate::store::liveness::observe(&e);
            tracing::warn!(error = %e, "recording a job outcome failed; its lease will expire and it will run again")
        }
        Err(e) => tracing::error!(error = %e, "job task failed"),
    }
}

async fn wait_notification(listener: &mut Option<PgListener>) -> Result<(), sqlx::Error> {
    match listener {
        Some(l) => l.recv().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(MAX_ERROR_LEN) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
