//! The request id as an extractor, for audit records.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tower_http::request_id::RequestId as TowerRequestId;

/// The id of this request (incoming `x-request-id` or a fresh UUID).
pub struct RequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(
            parts
                .extensions
                .get::<TowerRequestId>()
                .and_then(|id| id.header_value().to_str().ok())
                .map(str::to_owned),
        ))
    }
}
