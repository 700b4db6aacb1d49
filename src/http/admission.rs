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

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::app::AppState;
use crate::error::AppError;

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
}

/// Route layer of send_ccda: the body is read only once the send is admitted.
pub async fn admit_sends(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let admission = &state.admission;
    let permit =
        match tokio::time::timeout(admission.wait, admission.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                metrics::counter!("gateway_sends_shed_total").increment(1);
                return AppError::Overloaded {
                    what: "too many sends in progress",
                    retry_after: Duration::from_secs(1),
                }
                .into_response();
            }
        };
    let response = next.run(req).await;
    drop(permit);
    response
}
