//! The credentialing door: `POST /credentialing/webhooks`, where a registered credentialing
//! service (Verifiable style) delivers its events. The source is known by `X-WebhookId` and
//! `X-Secret`, the event by `X-WebhookType` and, across retries, by `X-TraceId`. Answers are
//! JSON: 200 once the event is committed (again for a repeat), 401 for an unknown webhook id
//! or a wrong secret (throttled like every failed authentication), 400 naming the header or
//! body field that is wrong, 413 past the body limit.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::auth::ClientAddr;
use crate::error::AppError;
use crate::http::door::DoorLimits;
use crate::service::credentialing::{self, Delivery, Received};
use crate::state::AppState;

pub const PATH: &str = "/credentialing/webhooks";

pub fn router(state: &AppState) -> Router<AppState> {
    let limits = DoorLimits {
        body_bytes: state.config.credentialing.body_limit_bytes,
        timeout: state.config.http.request_timeout,
        render,
    };
    limits
        .apply(Router::new().route(PATH, post(receive)))
        .layer(axum::middleware::from_fn(crate::error::json_errors))
}

/// The door's error form: the gateway's JSON error body (`error.code`, `error.message`,
/// `error.field` naming the header or body property).
fn render(_: &HeaderMap, e: AppError) -> Response {
    e.into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn receive(
    State(s): State<AppState>,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Received>, AppError> {
    let delivery = Delivery {
        webhook_id: header(&headers, "x-webhookid"),
        secret: header(&headers, "x-secret"),
        webhook_type: header(&headers, "x-webhooktype"),
        trace_id: header(&headers, "x-traceid"),
    };
    credentialing::intake(&s.db, &s.credentialing, &s.verifier, delivery, &body, from)
        .await
        .map(Json)
}
