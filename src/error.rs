//! The one error taxonomy of the service layer, and its rendering for the REST door
//! (a JSON body `{"error": {"code", "message", "field"}}` with the matching HTTP status).
//! Other doors (SOAP, HL7 v3, SMTP) render the same enum in their own forms.

use std::time::Duration;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Invalid input, naming the field. REST answers 400 `invalid` for it, like the seed's
    /// send_ccda; SOAP renders the provisioning code of the field.
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// Invalid input on the messaging door; the same answer as `Invalid` over REST.
    #[error("{0}")]
    BadRequest(Invalid),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A provisioning rule said no; the SOAP door renders its code.
    #[error(transparent)]
    Refused(#[from] crate::domain::provisioning::Refusal),
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("too many requests; retry after {retry_after:?}")]
    TooManyRequests { retry_after: Duration },
    /// Too many failed authentications from this address or for this client id.
    #[error("too many failed authentications; retry after {}s", retry_after.as_secs().max(1))]
    Throttled { retry_after: Duration },
    #[error("request did not complete within {0:?}")]
    Timeout(Duration),
    #[error("the database is unavailable")]
    Unavailable,
    /// A bounded resource (send slots, password checks) stayed taken for as long as a
    /// request may wait: nothing of the request was done.
    #[error("{what}; retry after {retry_after:?}")]
    Overloaded {
        what: &'static str,
        retry_after: Duration,
    },
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for AppError {
    /// A database failure that travelled inside an `anyhow::Error` is still the database's.
    fn from(e: anyhow::Error) -> Self {
        let unavailable = e.chain().any(|cause| {
            cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(crate::store::liveness::is_unavailable)
        });
        if unavailable {
            return AppError::Unavailable;
        }
        AppError::Internal(e)
    }
}

impl From<crate::auth::argon::Busy> for AppError {
    fn from(_: crate::auth::argon::Busy) -> Self {
        AppError::Overloaded {
            what: "too many password checks in progress",
            retry_after: Duration::from_secs(1),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        crate::store::liveness::observe(&e);
        if crate::store::liveness::is_unavailable(&e) {
            return AppError::Unavailable;
        }
        AppError::Internal(e.into())
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// The `Retry-After` of a 503 `unavailable`.
pub const UNAVAILABLE_RETRY_SECS: u64 = 2;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Invalid(_) | AppError::BadRequest(_) | AppError::Malformed(_) => {
                StatusCode::BAD_REQUEST
            }
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Refused(r) => refusal_status(r),
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests { .. } | AppError::Throttled { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AppError::Timeout(_) | AppError::Unavailable | AppError::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable code for the JSON body. Each code always comes with the
    /// same HTTP status (docs/api.md has the table), so a client may switch on either.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Refused(_) => match self.status() {
                StatusCode::PAYMENT_REQUIRED => "payment_required",
                StatusCode::CONFLICT => "conflict",
                StatusCode::NOT_FOUND => "not_found",
                _ => "refused",
            },
            AppError::Invalid(_) => "invalid",
            AppError::BadRequest(_) => "invalid",
            AppError::Malformed(_) => "malformed",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::TooManyRequests { .. } | AppError::Throttled { .. } => "too_many_requests",
            AppError::Timeout(_) => "timeout",
            AppError::Unavailable => "unavailable",
            AppError::Overloaded { .. } => "overloaded",
            AppError::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            AppError::Invalid(i) | AppError::BadRequest(i) => Some(i.field),
            _ => None,
        }
    }
}

fn refusal_status(r: &crate::domain::provisioning::Refusal) -> StatusCode {
    use crate::domain::provisioning::Refusal as R;
    match r {
        R::InsufficientFunds(_) | R::CaptureFailed(_) => StatusCode::PAYMENT_REQUIRED,
        R::DomainTaken(_) | R::Account(_) | R::Offer(_) => StatusCode::CONFLICT,
        R::UnknownDomain(_) | R::UnknownAddress(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let message = match &self {
            AppError::Internal(e) => {
                // Details stay in our log; the caller only learns that it was our fault.
                tracing::error!(error = %format!("{e:#}"), "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
                field: self.field(),
            },
        };
        let mut resp = (self.status(), Json(body)).into_response();
        if let AppError::TooManyRequests { retry_after }
        | AppError::Throttled { retry_after }
        | AppError::Overloaded { retry_after, .. } = &self
        {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(self, AppError::Unavailable) {
            // The database is reached again within seconds (a restart, a failover, a pool
            // reconnecting): a client may try again soon.
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(UNAVAILABLE_RETRY_SECS),
            );
        }
        if matches!(self, AppError::Unauthorized) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"hisp-gateway\""),
            );
        }
        resp
    }
}

const MAX_REWRITTEN_BODY: usize = 16 * 1024;

/// A layer for the doors whose errors are JSON (REST, ops): the framework's plain-text (or
/// empty) rejections, from axum's extractors and its 404/405/413, get the JSON shape of
/// `AppError` too.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || has_structured_body(&resp) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = to_bytes(body, MAX_REWRITTEN_BODY)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        // axum's own "cannot deserialize" is our `invalid`, which is a 400 everywhere.
        StatusCode::UNPROCESSABLE_ENTITY => {
            parts.status = StatusCode::BAD_REQUEST;
            "invalid"
        }
        s if s.is_server_error() => "internal",
        _ => "malformed",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// JSON errors, SOAP faults and other typed bodies are left alone; only the framework's
/// plain-text (or empty) rejections are reshaped.
fn has_structured_body(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.starts_with("text/plain"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::provisioning::Refusal;

    /// Every variant, with every refusal: a code never comes with two statuses.
    #[test]
    fn each_code_has_one_status() {
        let invalid = || Invalid::new("field", "bad");
        let wait = Duration::from_secs(1);
        let all = [
            AppError::Invalid(invalid()),
            AppError::BadRequest(invalid()),
            AppError::Malformed("x".into()),
            AppError::Unauthorized,
            AppError::Forbidden("x".into()),
            AppError::NotFound("x".into()),
            AppError::Conflict("x".into()),
            AppError::PayloadTooLarge { limit: 1 },
            AppError::TooManyRequests { retry_after: wait },
            AppError::Throttled { retry_after: wait },
            AppError::Timeout(wait),
            AppError::Unavailable,
            AppError::Overloaded {
                what: "x",
                retry_after: wait,
            },
            AppError::Internal(anyhow::anyhow!("x")),
            AppError::Refused(Refusal::Offer("x".into())),
            AppError::Refused(Refusal::Account("x".into())),
            AppError::Refused(Refusal::InsufficientFunds("x".into())),
            AppError::Refused(Refusal::CaptureFailed("x".into())),
            AppError::Refused(Refusal::DomainTaken("x".into())),
            AppError::Refused(Refusal::NoVerifiedOrganization("x".into())),
            AppError::Refused(Refusal::UnknownDomain("x".into())),
            AppError::Refused(Refusal::UnknownAddress("x".into())),
            AppError::Refused(Refusal::EmptyForm("x".into())),
        ];
        let mut seen: std::collections::HashMap<&str, StatusCode> = Default::default();
        for e in &all {
            let status = *seen.entry(e.code()).or_insert(e.status());
            assert_eq!(status, e.status(), "{} has two statuses", e.code());
        }
        assert_eq!(seen["invalid"], StatusCode::BAD_REQUEST);
    }
}
