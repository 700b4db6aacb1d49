//! CPU-heavy request work, kept off the async worker threads and a few at a time.
//!
//! The async threads run every request's I/O; a request that computes on one for a second
//! stalls every other request scheduled there, `/healthz` included, and its timeout cannot fire
//! (the timer is polled on the same thread). Work whose cost grows with the request (parsing a
//! large JSON or XML body, decoding its base64, building an XDM package) runs here instead: on
//! the blocking pool, with at most one task per core at once, so the async threads always get
//! their share of the machine. A request that gives up (its timeout, the client gone) marks
//! its `Cancel`, and the work stops at its next checkpoint.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Semaphore;

/// Tells CPU work whether the request that asked for it still waits for the answer.
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once the request has given up: work returns it at a checkpoint.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}

/// The request stopped waiting; the work was dropped halfway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request was abandoned before its work finished")]
pub struct Cancelled;

/// Marks the work cancelled when the future awaiting it is dropped before it finished.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.0.store(true, Ordering::Relaxed);
    }
}

/// How many CPU tasks run at once: one per core.
pub fn slots() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn semaphore() -> &'static Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS.get_or_init(|| Arc::new(Semaphore::new(slots())))
}

/// Runs `work` on the blocking pool once a slot is free, and returns its result. Dropping the
/// returned future (a request's timeout) cancels the wait for a slot, or marks `Cancel` for
/// work already running; the slot is held until the work really ends, so slots always match
/// what is running.
pub async fn run<T, F>(work: F) -> T
where
    F: FnOnce(&Cancel) -> T + Send + 'static,
    T: Send + 'static,
{
    let cancel = Cancel::default();
    let _mark = CancelOnDrop(cancel.clone());
    let permit = semaphore()
        .clone()
        .acquire_owned()
        .await
        .expect("the CPU semaphore is never closed");
    let joined = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work(&cancel)
    })
    .await;
    match joined {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_task_is_told_and_frees_its_slot() {
        let (tx, rx) = std::sync::mpsc::channel();
        let started = Instant::now();
        let abandoned = tokio::time::timeout(
            Duration::from_millis(50),
            run(move |cancel| {
                while !cancel.is_cancelled() && started.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                tx.send(cancel.is_cancelled()).unwrap();
            }),
        )
        .await;
        assert!(abandoned.is_err(), "the timeout fired");
        let told = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(told, Ok(true), "the work saw the cancellation");
        assert!(started.elapsed() < Duration::from_secs(5));
        // Every slot is free again: as many tasks as slots run at once.
        let all: Vec<_> = (0..slots()).map(|i| run(move |_| i)).collect();
        let done = tokio::time::timeout(Duration::from_secs(5), futures_join(all)).await;
        assert_eq!(done.unwrap().len(), slots());
    }

    async fn futures_join<T>(futs: Vec<impl std::future::Future<Output = T>>) -> Vec<T> {
        let mut out = Vec::new();
        for f in futs {
            out.push(f.await);
        }
        out
    }
}
