//! Which code runs which kind of job.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::retry::RetryPolicy;

/// A claimed job as its handler sees it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    /// 1 on the first run.
    pub attempt: i32,
    /// The last attempt the job gets; a handler can give up cleanly on it.
    pub max_attempts: i32,
    /// The clock of this run: normally the time it was claimed; tests step it forward to
    /// exercise expiries and schedules without waiting.
    pub now: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth trying again later (a peer down, a timeout).
    #[error("{0}")]
    Transient(String),
    /// Will never succeed (bad payload, refused for good): dead at once.
    #[error("{0}")]
    Permanent(String),
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;
type Handler = Arc<dyn Fn(Job) -> BoxFuture + Send + Sync>;

#[derive(Clone, Default)]
pub struct JobRegistry {
    handlers: HashMap<String, Handler>,
    recurring: HashMap<String, Duration>,
    policies: HashMap<String, RetryPolicy>,
}

impl JobRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the handler of `kind`; a second registration of one kind replaces the first.
    pub fn register<F, Fut>(&mut self, kind: &str, handler: F) -> &mut Self
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        self.handlers
            .insert(kind.to_owned(), Arc::new(move |job| Box::pin(handler(job))));
        self
    }

    /// Registers a job that runs every `interval`: one instance exists (see
    /// `Worker::schedule_recurring`), and each success queues it again `interval` later.
    pub fn register_recurring<F, Fut>(
        &mut self,
        kind: &str,
        interval: Duration,
        handler: F,
    ) -> &mut Self
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        self.recurring.insert(kind.to_owned(), interval);
        self.register(kind, handler)
    }

    /// Registers a handler whose retries follow `policy` instead of the worker's default
    /// (jobs of this kind must also be enqueued with it, which sets their attempts).
    pub fn register_with_retry<F, Fut>(
        &mut self,
        kind: &str,
        policy: RetryPolicy,
        handler: F,
    ) -> &mut Self
    where
        F: Fn(Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        self.policies.insert(kind.to_owned(), policy);
        self.register(kind, handler)
    }

    /// Adds every handler of `other` (its registrations win).
    pub fn merge(&mut self, other: JobRegistry) -> &mut Self {
        self.handlers.extend(other.handlers);
        self.recurring.extend(other.recurring);
        self.policies.extend(other.policies);
        self
    }

    pub(crate) fn policy(&self, kind: &str) -> Option<&RetryPolicy> {
        self.policies.get(kind)
    }

    pub(crate) fn get(&self, kind: &str) -> Option<Handler> {
        self.handlers.get(kind).cloned()
    }

    pub(crate) fn interval(&self, kind: &str) -> Option<Duration> {
        self.recurring.get(kind).copied()
    }

    pub(crate) fn recurring_kinds(&self) -> impl Iterator<Item = &str> {
        self.recurring.keys().map(String::as_str)
    }
}
