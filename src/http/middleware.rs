//! Cross-cutting HTTP behaviour: limits, timeouts, metrics, log spans and error shape.

use std::any::Any;
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::request_id::RequestId;

use crate::app::AppState;
use crate::error::AppError;
use crate::telemetry::HTTP_DURATION;

/// Refuses bodies announced as too large before reading a byte, and bounds the time a request
/// may take. Bodies without a length are capped while they stream (`DefaultBodyLimit`).
pub async fn limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // send_ccda carries whole documents and has its own, larger limit.
    let limit = if req.uri().path() == crate::rest::messaging::SEND_PATH {
        state.config.messaging.body_limit_bytes
    } else {
        state.config.http.body_limit_bytes
    };
    // The SOAP door answers these with faults; every other door with the JSON error.
    let soap_headers = crate::soap::is_soap_path(req.uri().path()).then(|| req.headers().clone());
    let render = |e: AppError| match &soap_headers {
        Some(headers) => crate::soap::fault_for(headers, &e),
        None => e.into_response(),
    };
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return render(AppError::PayloadTooLarge { limit });
    }
    let timeout = state.config.http.request_timeout;
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => render(AppError::Timeout(timeout)),
    }
}

/// Counts requests and their latency by route template (never the raw path: it may carry ids).
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("gateway_http_requests_total", &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    resp
}

pub fn span_for(req: &Request<Body>) -> tracing::Span {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-");
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    tracing::info_span!("request", method = %req.method(), route, request_id)
}

const MAX_REWRITTEN_BODY: usize = 16 * 1024;

/// Every error a REST caller sees has the JSON shape of `AppError`, including the plain-text
/// rejections of axum's extractors and the framework's 404/405/413.
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
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
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

pub fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    AppError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

pub async fn not_found() -> AppError {
    AppError::NotFound("route".into())
}
