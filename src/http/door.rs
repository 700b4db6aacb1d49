//! The limits each door puts on its own routes: the largest body and the time a request may
//! take, both answered in the door's own form (JSON, a SOAP fault, later an HL7
//! acknowledgement).

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::AppError;

/// How a door renders a refusal of the HTTP layer, from the request's headers (a SOAP fault
/// comes in the version the request announced).
pub type Render = fn(&HeaderMap, AppError) -> Response;

#[derive(Clone, Copy)]
pub struct DoorLimits {
    /// Larger bodies get 413: before a byte is read when announced, while streaming otherwise.
    pub body_bytes: usize,
    /// A request not answered within this gets 503 `timeout`, and its work is dropped.
    pub timeout: Duration,
    pub render: Render,
}

impl DoorLimits {
    /// `router`'s routes (those added so far) under these limits.
    pub fn apply<S: Clone + Send + Sync + 'static>(self, router: Router<S>) -> Router<S> {
        router
            .layer(DefaultBodyLimit::max(self.body_bytes))
            .layer(axum::middleware::from_fn(
                move |req: Request, next: Next| enforce(self, req, next),
            ))
    }
}

async fn enforce(limits: DoorLimits, req: Request, next: Next) -> Response {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limits.body_bytes as u64) {
        let error = AppError::PayloadTooLarge {
            limit: limits.body_bytes,
        };
        return (limits.render)(req.headers(), error);
    }
    // Kept for the answer: the request itself moves into the handler.
    let headers = req.headers().clone();
    match tokio::time::timeout(limits.timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => (limits.render)(&headers, AppError::Timeout(limits.timeout)),
    }
}
