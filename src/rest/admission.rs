//! The send route's admission layer: a send is read only once it has a place among those
//! worked on (see `limits::admission`).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::state::AppState;

/// Route layer of send_ccda: the body is read only once the send is admitted.
pub async fn admit_sends(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(permit) = state.admission.admit().await else {
        return AppError::Overloaded {
            what: "too many sends in progress",
            retry_after: Duration::from_secs(1),
        }
        .into_response();
    };
    let response = next.run(req).await;
    drop(permit);
    response
}
