//! Trusted-Agent certificate applications over REST (DataMotion style): trusted agents apply
//! and check status, officers review, ops links trusted agents to organizations.
//!
//! The spec has the TA send its username and password in two request headers; ours are
//! `X-TA-Username` (the client id) and `X-TA-Password` (the client secret). HTTP Basic works
//! too, on every route here, for TAs and officers alike. Both go through the same verifier,
//! so failures are throttled like every other authentication.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use uuid::Uuid;

use super::JsonBody;
use super::clients::require_ops;
use crate::auth::ClientAddr;
use crate::auth::basic::parse_basic;
use crate::domain::client::Client;
use crate::error::{AppError, AppResult};
use crate::http::request_id::RequestId;
use crate::service::Actor;
use crate::service::certificate_applications::{
    self as applications, ApplicationView, ListQuery, TrustedAgentLink,
};
use crate::state::AppState;

pub const TA_USERNAME: &str = "x-ta-username";
pub const TA_PASSWORD: &str = "x-ta-password";

/// Extractor: a client authenticated by the TA headers or by HTTP Basic.
pub struct Caller(pub Client);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Ok(ClientAddr(from)) = ClientAddr::from_request_parts(parts, state).await;
        let h = &parts.headers;
        let (id, secret) = match (h.get(TA_USERNAME), h.get(TA_PASSWORD)) {
            (None, None) => parse_basic(h).ok_or(AppError::Unauthorized)?,
            (Some(user), Some(password)) => {
                let id = user
                    .to_str()
                    .ok()
                    .and_then(|u| Uuid::parse_str(u.trim()).ok());
                match (id, password.to_str()) {
                    (Some(id), Ok(secret)) => (id, secret.to_owned()),
                    // A username that is no client id is a failed login like any other.
                    _ => {
                        state.verifier.check_throttle(from)?;
                        state.verifier.failed(from, None);
                        return Err(AppError::Unauthorized);
                    }
                }
            }
            _ => return Err(AppError::Unauthorized),
        };
        let client = state.verifier.verify(&state.db, id, &secret, from).await?;
        Ok(Caller(client))
    }
}

fn application_id(id: &str) -> AppResult<Uuid> {
    // Not a UUID: no such application (the same answer as an unknown or hidden one).
    Uuid::parse_str(id).map_err(|_| AppError::NotFound(format!("certificate application {id}")))
}

pub async fn submit(
    State(s): State<AppState>,
    Caller(caller): Caller,
    RequestId(request_id): RequestId,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> AppResult<(StatusCode, Json<ApplicationView>)> {
    let actor = Actor::client(caller.id, request_id);
    let view = applications::submit(&s.db, &s.retry, &caller, &body, &actor, s.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    address: Option<String>,
    status: Option<String>,
}

pub async fn list(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<ListParams>,
) -> AppResult<Json<Vec<ApplicationView>>> {
    let q = ListQuery {
        address: q.address.as_deref(),
        status: q.status.as_deref(),
    };
    Ok(Json(applications::list(&s.db, Some(&caller), &q).await?))
}

pub async fn get(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> AppResult<Json<ApplicationView>> {
    let id = application_id(&id)?;
    Ok(Json(applications::get(&s.db, &caller, id).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    reason: Option<String>,
}

/// The review body is optional for an approval: none, or `{"reason": "..."}`.
fn review_body(body: &Bytes) -> AppResult<ReviewRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ReviewRequest::default());
    }
    serde_json::from_slice(body).map_err(|e| AppError::Malformed(e.to_string()))
}

pub async fn approve(
    State(s): State<AppState>,
    Caller(caller): Caller,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    body: Bytes,
) -> AppResult<Json<ApplicationView>> {
    applications::require_officer(&caller)?;
    let id = application_id(&id)?;
    let req = review_body(&body)?;
    let actor = Actor::client(caller.id, request_id);
    let view = applications::approve(
        &s.db,
        &s.pki,
        id,
        req.reason.as_deref(),
        &actor,
        s.clock.now(),
    )
    .await?;
    Ok(Json(view))
}

pub async fn reject(
    State(s): State<AppState>,
    Caller(caller): Caller,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    body: Bytes,
) -> AppResult<Json<ApplicationView>> {
    applications::require_officer(&caller)?;
    let id = application_id(&id)?;
    let req = review_body(&body)?;
    let actor = Actor::client(caller.id, request_id);
    let view = applications::reject(
        &s.db,
        &s.retry,
        id,
        req.reason.as_deref(),
        &actor,
        s.clock.now(),
    )
    .await?;
    Ok(Json(view))
}

// ---- trusted agents (ops) ---------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LinkRequest {
    organization_domain: String,
}

pub async fn link_trusted_agent(
    State(s): State<AppState>,
    Caller(caller): Caller,
    RequestId(request_id): RequestId,
    Path(client_id): Path<String>,
    JsonBody(req): JsonBody<LinkRequest>,
) -> AppResult<Json<TrustedAgentLink>> {
    require_ops(&caller)?;
    let client_id = Uuid::parse_str(&client_id)
        .map_err(|_| crate::domain::Invalid::new("clientId", "must be a UUID"))?;
    let actor = Actor::client(caller.id, request_id);
    let link = applications::link_trusted_agent(
        &s.db,
        client_id,
        &req.organization_domain,
        &actor,
        s.clock.now(),
    )
    .await?;
    Ok(Json(link))
}

pub async fn list_trusted_agents(
    State(s): State<AppState>,
    Caller(caller): Caller,
) -> AppResult<Json<Vec<TrustedAgentLink>>> {
    require_ops(&caller)?;
    Ok(Json(applications::trusted_agents(&s.db).await?))
}
