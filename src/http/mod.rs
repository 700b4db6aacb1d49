//! What every front door shares on the way in and out: accepting connections (`server`),
//! request ids, trace spans, metrics by route template and panic catching (`stack`), and the
//! shape of a door's own limits (`door`). It knows no door: each brings its router, limits and
//! error form, and `app` merges them.

pub mod door;
mod middleware;
pub mod request_id;
pub mod server;

use axum::Router;
use axum::http::HeaderName;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The doors' merged routes, with what every request gets whichever door serves it.
pub fn stack(doors: Router) -> Router {
    doors
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(
            ServiceBuilder::new()
                // Layers run top-down on the way in: the request id exists before anything logs.
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(middleware::span_for)
                        // One access line per request at INFO, carrying the span's request id.
                        .on_response(
                            DefaultOnResponse::new()
                                .level(Level::INFO)
                                .latency_unit(LatencyUnit::Millis),
                        ),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(middleware::panic_response)),
        )
}
