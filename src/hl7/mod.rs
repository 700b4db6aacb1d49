//! The HL7 v3 front door: the organization registry (PRPM organization topic) at one address,
//! the interaction named by the message's root element. Plain (`application/hl7-v3+xml`,
//! `text/xml`) or inside a SOAP 1.2 envelope (the HL7 Web Services profile), answered in the
//! caller's form; every refusal, down to the HTTP layer's own, is an acknowledgement (AR/AE)
//! naming the problem.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::auth::ClientAddr;
use crate::auth::basic::parse_basic;
use crate::domain::registry::Ii;
use crate::error::AppError;
use crate::http::door::DoorLimits;
use crate::http::request_id::RequestId;
use crate::service::registry::message::{Ack, Parties, Problem, accept_ack};
use crate::service::registry::{self, Caller};
use crate::state::AppState;

pub const PATH: &str = "/hl7v3/organizations";
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

/// Our device id for refusals the HTTP layer makes before any state is at hand.
static DEVICE: OnceLock<String> = OnceLock::new();

pub fn router(state: &AppState) -> Router<AppState> {
    let _ = DEVICE.set(state.config.hl7.device_id.clone());
    let limits = DoorLimits {
        body_bytes: state.config.http.body_limit_bytes,
        timeout: state.config.http.request_timeout,
        render: refused_by_http,
    };
    limits.apply(Router::new().route(PATH, post(endpoint)))
}

/// How the caller sent its message, and so how we answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Plain(&'static str),
    Soap12,
}

impl Form {
    fn of(headers: &HeaderMap) -> Option<Self> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/hl7-v3+xml" => Some(Form::Plain("application/hl7-v3+xml")),
            "text/xml" | "application/xml" => Some(Form::Plain("text/xml")),
            "application/soap+xml" => Some(Form::Soap12),
            _ => None,
        }
    }

    fn respond(self, status: StatusCode, xml: &str) -> Response {
        let (media, body) = match self {
            Form::Plain(m) => (m, xml.to_owned()),
            Form::Soap12 => {
                let inner = xml
                    .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
                    .unwrap_or(xml);
                (
                    "application/soap+xml",
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"{SOAP12_NS}\"><soap:Body>{inner}</soap:Body></soap:Envelope>"
                    ),
                )
            }
        };
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&format!("{media}; charset=utf-8")).expect("static media type"),
        );
        resp
    }
}

fn device() -> &'static str {
    DEVICE
        .get()
        .map_or("2.16.840.1.113883.3.9999.1", String::as_str)
}

/// An AR acknowledgement for a request refused before its message was read.
fn rejection(
    form: Form,
    status: StatusCode,
    code: &'static str,
    location: &str,
    text: String,
) -> Response {
    let problem = Problem::rejected(code, location, text);
    let parties = Parties {
        us: device(),
        peer: None,
    };
    let id = Ii::new(device(), &uuid::Uuid::new_v4().to_string());
    let xml = accept_ack(&id, chrono::Utc::now(), &parties, None, Some(&problem));
    let mut resp = form.respond(status, &xml);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"hl7v3\""),
        );
    }
    resp
}

fn refused_by_http(headers: &HeaderMap, e: AppError) -> Response {
    let form = Form::of(headers).unwrap_or(Form::Plain("application/hl7-v3+xml"));
    with_retry_after(
        rejection(form, e.status(), "INTERR", "/", e.to_string()),
        &e,
    )
}

fn with_retry_after(mut resp: Response, e: &AppError) -> Response {
    let wait = match e {
        AppError::Throttled { retry_after } | AppError::TooManyRequests { retry_after } => {
            Some(*retry_after)
        }
        _ => None,
    };
    if let Some(w) = wait
        && let Ok(v) = HeaderValue::from_str(&w.as_secs().max(1).to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

async fn endpoint(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(form) = Form::of(&headers) else {
        return rejection(
            Form::Plain("application/hl7-v3+xml"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "SYN",
            "/",
            "send the message as application/hl7-v3+xml, text/xml, or application/soap+xml (SOAP 1.2)".into(),
        );
    };
    let Some((id, secret)) = parse_basic(&headers) else {
        return rejection(
            form,
            StatusCode::UNAUTHORIZED,
            "INTERR",
            "/",
            "HTTP Basic authentication with a registry, ops or vendor client is required".into(),
        );
    };
    let client = match state.verifier.verify(&state.db, id, &secret, from).await {
        Ok(c) => c,
        Err(e) => {
            let status = e.status();
            return with_retry_after(rejection(form, status, "INTERR", "/", e.to_string()), &e);
        }
    };
    // Read here, not by an extractor, so that a body over the limit that was not announced
    // (chunked) is refused with an acknowledgement too.
    let limit = state.config.http.body_limit_bytes;
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        let e = AppError::PayloadTooLarge { limit };
        return rejection(form, e.status(), "INTERR", "/", e.to_string());
    };
    let doc = match crate::xml::parse(&body) {
        Ok(d) => d,
        Err(e) => {
            return rejection(form, StatusCode::BAD_REQUEST, "SYN", "/", e.to_string());
        }
    };
    let message = match form {
        Form::Plain(_) => &doc,
        Form::Soap12 => {
            if doc.ns != SOAP12_NS || doc.name != "Envelope" {
                return rejection(
                    form,
                    StatusCode::BAD_REQUEST,
                    "SYN",
                    "/",
                    format!("expected a SOAP 1.2 Envelope ({SOAP12_NS})"),
                );
            }
            match doc
                .child("Body")
                .filter(|b| b.ns == SOAP12_NS)
                .and_then(|b| b.children.first())
            {
                Some(m) => m,
                None => {
                    return rejection(
                        form,
                        StatusCode::BAD_REQUEST,
                        "SYN105",
                        "/Envelope/Body",
                        "the SOAP Body carries no HL7 message".into(),
                    );
                }
            }
        }
    };
    if !registry::may_send(client.kind, &message.name) {
        return rejection(
            form,
            StatusCode::FORBIDDEN,
            "NS200",
            &format!("/{}", message.name),
            format!(
                "a {} client may not send {}; registry and ops clients may send any, vendors queries only",
                client.kind, message.name
            ),
        );
    }
    let caller = Caller { client, request_id };
    let now = state.clock.now();
    let reply = registry::handle(&state.db, &state.registry, &caller, message, now).await;
    let status = if reply.ack == Ack::Ar {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    form.respond(status, &reply.xml)
}
