//! Trust set-up for ops clients: anchors per domain, peer certificates, trust bundles.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;

use super::JsonBody;
use super::clients::require_ops;
use crate::auth::Authenticated;
use crate::error::AppResult;
use crate::http::request_id::RequestId;
use crate::service::Actor;
use crate::service::trust::{self, Anchor, Bundle, PeerCertificate, PeerTarget};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainQuery {
    domain: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddAnchors {
    domain: String,
    /// One or more PEM certificates.
    pem: String,
}

pub async fn add_anchors(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    JsonBody(req): JsonBody<AddAnchors>,
) -> AppResult<(StatusCode, Json<Vec<Anchor>>)> {
    require_ops(&caller)?;
    let actor = Actor::client(caller.id, request_id);
    let added = trust::add_anchors(&s.db, &req.domain, req.pem.as_bytes(), &actor).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

pub async fn list_anchors(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(q): Query<DomainQuery>,
) -> AppResult<Json<Vec<Anchor>>> {
    require_ops(&caller)?;
    Ok(Json(trust::list_anchors(&s.db, q.domain.as_deref()).await?))
}

pub async fn remove_anchor(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    Path(id): Path<i64>,
) -> AppResult<Json<Anchor>> {
    require_ops(&caller)?;
    let actor = Actor::client(caller.id, request_id);
    Ok(Json(trust::remove_anchor(&s.db, id, &actor).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddPeers {
    domain: Option<String>,
    address: Option<String>,
    pem: String,
}

pub async fn add_peers(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    JsonBody(req): JsonBody<AddPeers>,
) -> AppResult<(StatusCode, Json<Vec<PeerCertificate>>)> {
    require_ops(&caller)?;
    let actor = Actor::client(caller.id, request_id);
    let target = PeerTarget::parse(req.domain.as_deref(), req.address.as_deref())?;
    let added = trust::add_peers(&s.db, &target, req.pem.as_bytes(), &actor).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

pub async fn list_peers(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(q): Query<DomainQuery>,
) -> AppResult<Json<Vec<PeerCertificate>>> {
    require_ops(&caller)?;
    Ok(Json(trust::list_peers(&s.db, q.domain.as_deref()).await?))
}

pub async fn remove_peer(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    Path(id): Path<i64>,
) -> AppResult<Json<PeerCertificate>> {
    require_ops(&caller)?;
    let actor = Actor::client(caller.id, request_id);
    Ok(Json(trust::remove_peer(&s.db, id, &actor).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBundle {
    domain: String,
    url: String,
}

pub async fn add_bundle(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    JsonBody(req): JsonBody<AddBundle>,
) -> AppResult<(StatusCode, Json<Bundle>)> {
    require_ops(&caller)?;
    let actor = Actor::client(caller.id, request_id);
    let b = trust::add_bundle(&s.db, &s.trust, &req.domain, &req.url, &actor, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(b)))
}

pub async fn list_bundles(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(q): Query<DomainQuery>,
) -> AppResult<Json<Vec<Bundle>>> {
    require_ops(&caller)?;
    Ok(Json(trust::list_bundles(&s.db, q.domain.as_deref()).await?))
}

pub async fn remove_bundle(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    Path(id): Path<i64>,
) -> AppResult<Json<Bundle>> {
    require_ops(&caller)?;
    let actor = Actor::client(caller.id, request_id);
    Ok(Json(trust::remove_bundle(&s.db, id, &actor).await?))
}

/// Fetches the bundle now; the answer shows the outcome (`last_error` when it failed, the old
/// anchors then still in force).
pub async fn refresh_bundle(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<i64>,
) -> AppResult<Json<Bundle>> {
    require_ops(&caller)?;
    Ok(Json(
        trust::refresh_bundle(&s.db, &s.trust, id, Utc::now()).await?,
    ))
}
