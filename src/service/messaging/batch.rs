//! Sends that arrive together are written together: one statement (and one commit) for every
//! message waiting when a turn at the database comes up.
//!
//! Why: on a busy gateway most of PostgreSQL's work per send was per statement (the checks,
//! locking a dozen relations and indexes, the commit and its WAL flush), not per row: written
//! together, a 2 KB send cost it 0.11–0.16 ms instead of 0.39–0.45 ms (BENCHMARKS.md).
//! A few statements run at once (`in_flight`); what arrives meanwhile waits for the next free
//! one and goes with everything else waiting. An idle gateway sends each message alone at
//! once, so batching adds no delay of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::error::{AppError, AppResult};
use crate::store::messaging::{self as sql, NewMessage, SendJobs, SendOutcome};

/// The queue of messages to write, and the task that writes them.
pub struct SendBatcher {
    queue: mpsc::UnboundedSender<Pending>,
    waiting: Arc<AtomicUsize>,
}

struct Pending {
    message: NewMessage,
    reply: oneshot::Sender<AppResult<SendOutcome>>,
}

impl SendBatcher {
    /// Starts the writing task on the current runtime. `max_batch` messages go in one statement
    /// at most, and at most `in_flight` statements run at once. While one runs, the next waits
    /// up to `linger` for more messages to go with it.
    pub fn start(
        db: &sqlx::PgPool,
        jobs: SendJobs,
        max_batch: usize,
        in_flight: usize,
        linger: Duration,
    ) -> Self {
        let db = send_pool(db, in_flight);
        let (queue, mut queued) = mpsc::unbounded_channel::<Pending>();
        let waiting = Arc::new(AtomicUsize::new(0));
        let taken = Arc::clone(&waiting);
        let turns = Arc::new(Semaphore::new(in_flight));
        tokio::spawn(async move {
            loop {
                let Ok(turn) = Arc::clone(&turns).acquire_owned().await else {
                    return;
                };
                let Some(first) = queued.recv().await else {
                    return;
                };
                let mut batch = vec![first];
                // Another statement is running: the gateway is busy, and a few more sends
                // are likely within `linger`. Going with them costs each send much less of
                // PostgreSQL's time than a statement of its own (BENCHMARKS.md).
                let busy = turns.available_permits() + 1 < in_flight;
                let until = tokio::time::Instant::now() + linger;
                while batch.len() < max_batch {
                    match queued.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) if busy && !linger.is_zero() => {
                            match tokio::time::timeout_at(until, queued.recv()).await {
                                Ok(Some(next)) => batch.push(next),
                                _ => break,
                            }
                        }
                        Err(_) => break,
                    }
                }
                taken.fetch_sub(batch.len(), Ordering::Relaxed);
                let db = db.clone();
                // Its own task: a request that goes away does not take its batch with it.
                tokio::spawn(async move {
                    write(&db, batch, jobs).await;
                    drop(turn);
                });
            }
        });
        Self { queue, waiting }
    }

    /// Messages waiting for a statement to be written by (not those being written).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Writes `message` with whatever else is waiting, and returns what became of it.
    pub async fn send(&self, message: NewMessage) -> AppResult<SendOutcome> {
        let (reply, answer) = oneshot::channel();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if self.queue.send(Pending { message, reply }).is_err() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(anyhow::anyhow!("the send writer has stopped").into());
        }
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the send writer dropped a message"))?
    }
}

/// The connections the statements are written on: as many as may run at once, set up like
/// `db`'s, but with generic plans. The send statement's arrays make PostgreSQL plan it anew
/// for every call otherwise (it estimates each array's length from the call's values, so a
/// plan for any batch never looks as cheap): 0.7 ms of planning for a one-message statement
/// against 0.04 ms of reusing the generic plan (measured with EXPLAIN ANALYZE on PostgreSQL 15).
fn send_pool(db: &sqlx::PgPool, in_flight: usize) -> sqlx::PgPool {
    let connect = (*db.connect_options())
        .clone()
        .options([("plan_cache_mode", "force_generic_plan")]);
    db.options()
        .clone()
        .max_connections(in_flight as u32)
        .min_connections(0)
        .connect_lazy_with(connect)
}

async fn write(db: &sqlx::PgPool, batch: Vec<Pending>, jobs: SendJobs) {
    metrics::histogram!("gateway_send_batch_size").record(batch.len() as f64);
    let (messages, replies): (Vec<NewMessage>, Vec<_>) =
        batch.into_iter().map(|p| (p.message, p.reply)).unzip();
    match sql::send_messages(db, &messages, jobs).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        // The database refused the statement (a deadlock between two batches reusing the same
        // messageIds, say): nothing of it was written, so each message is tried alone, and a
        // message that fails alone fails only its own request.
        Err(sqlx::Error::Database(_)) if messages.len() > 1 => {
            for (message, reply) in messages.into_iter().zip(replies) {
                let one = std::slice::from_ref(&message);
                let outcome = sql::send_messages(db, one, jobs)
                    .await
                    .map_err(AppError::from)
                    .and_then(|mut o| {
                        o.pop()
                            .ok_or_else(|| anyhow::anyhow!("no outcome for the message").into())
                    });
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            // Unreachable database (or one message alone refused): every request of the batch
            // gets the same answer; trying them one by one would only wait longer.
            let first = AppError::from(e);
            let unavailable = matches!(first, AppError::Unavailable);
            let mut first = Some(first);
            for reply in replies {
                let err = first.take().unwrap_or_else(|| {
                    if unavailable {
                        AppError::Unavailable
                    } else {
                        anyhow::anyhow!("the send statement failed").into()
                    }
                });
                let _ = reply.send(Err(err));
            }
        }
    }
}
