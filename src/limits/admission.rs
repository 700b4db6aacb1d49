//! How many sends the gateway works on at once.
//!
//! A send costs CPU before it reaches the database (reading, parsing and decoding its body,
//! building the message) and then needs one of the pool's few connections. Without a bound, a
//! short stall (a slow disk flush) lets hundreds of sends pile up, each read and parsed before
//! it waits for a connection. Measured: with half the sustained rate offered, one such stall
//! turned into tens of seconds in which nearly every send failed while PostgreSQL sat idle
//! (BENCHMARKS.md). Our reading, not proven: parsing the pile kept the runtime's threads from
//! the tasks that hand connections back. With the bound, no run has collapsed since.
//! Admitted sends are worked on; the others wait, before their body is read, at no cost, and
//! after `admission_wait` get 503 with Retry-After.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Admission {
    slots: Arc<Semaphore>,
    max: usize,
    wait: Duration,
}

impl Admission {
    pub fn new(max_concurrent: usize, wait: Duration) -> Self {
        let max = max_concurrent.max(1);
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            wait,
        }
    }

    /// Sends admitted and not yet answered.
    pub fn in_progress(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// A place among the sends worked on, once one is free within `admission_wait`; `None`
    /// when none was (the caller answers 503 with Retry-After). Dropped, it frees the place.
    pub async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Some(permit),
            _ => {
                metrics::counter!("gateway_sends_shed_total").increment(1);
                None
            }
        }
    }
}
