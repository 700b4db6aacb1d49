//! The SOAP front door: the Organization Registration service (MaxMD style). SOAP 1.1 and 1.2,
//! plain or MTOM, document/literal wrapped, answered in the request's version and (by
//! default, `soap.mtom_responses`) its form; the WSDL is served from `wsdl/`.

pub mod envelope;
pub mod mtom;
mod ops;
mod render;
mod wsdl;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth::ClientAddr;
use crate::error::AppError;
use crate::http::door::DoorLimits;
use crate::http::request_id::RequestId;
use crate::state::AppState;
use envelope::{Fault, SoapVersion};

/// Namespace of the service's operations and types.
pub const NS: &str = "urn:hisp-gateway:organization-registration:v3";
pub const PATH: &str = "/registration/services/OrganizationRegistrationService";

/// The service's address with its limits; every refusal is a fault in the caller's version.
pub fn router(state: &AppState) -> Router<AppState> {
    let limits = DoorLimits {
        body_bytes: state.config.http.body_limit_bytes,
        timeout: state.config.http.request_timeout,
        render: fault_for,
    };
    limits.apply(Router::new().route(PATH, get(wsdl::serve).post(endpoint)))
}

/// The fault for a request the HTTP layer refused (too large, too slow), in the version the
/// request announced: the caller's fault for a body over the limit, ours for a timeout.
fn fault_for(headers: &HeaderMap, e: AppError) -> Response {
    let ct = mtom::ContentType::parse(content_type(headers).unwrap_or(""));
    let version = SoapVersion::from_content_type(&ct);
    let fault = match &e {
        AppError::PayloadTooLarge { .. } => Fault::sender(version, e.to_string()),
        _ => Fault::receiver(version, e.to_string()),
    };
    fault.with_status(e.status()).into_response()
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// Bodies up to this size are read on the request's own task; larger ones on the CPU pool
/// (`crate::cpu`), so that a big form does not hold up other requests.
const INLINE_READ_BYTES: usize = 64 * 1024;

async fn endpoint(
    State(state): State<AppState>,
    request_id: RequestId,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = state.config.http.body_limit_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return fault_for(&headers, AppError::PayloadTooLarge { limit });
    };
    let ct = content_type(&headers).map(str::to_owned);
    let read = if bytes.len() <= INLINE_READ_BYTES {
        envelope::read(ct.as_deref(), &bytes)
    } else {
        crate::cpu::run(move |_| envelope::read(ct.as_deref(), &bytes)).await
    };
    let request = match read {
        Ok(r) => r,
        Err(fault) => return fault.into_response(),
    };
    let version = request.version;
    let op = &request.operation;
    if op.ns != NS {
        return Fault::sender(
            version,
            format!(
                "the operation element {} is in namespace {:?}; this service's is {NS:?}",
                op.name, op.ns
            ),
        )
        .into_response();
    }
    // Answer in the request's form (unless configured otherwise): a plain client such as
    // suds cannot read a multipart answer.
    let asked = request.mtom
        || headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(mtom::accepted);
    let mtom = state.config.soap.mtom_responses.answer_mtom(asked);
    let caller = ops::Caller {
        request_id: request_id.0,
        from,
        mtom,
    };
    let Some(reply) = ops::call(&state, &op.name, op, &caller).await else {
        return Fault::sender(version, format!("unknown operation {}", op.name)).into_response();
    };
    envelope::respond(version, mtom, &reply.payload, reply.attachments)
}
