//! Ops: credentialing sources, individuals' standings, providers waiting for a link.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::JsonBody;
use super::clients::require_ops;
use crate::auth::Authenticated;
use crate::error::AppResult;
use crate::http::request_id::RequestId;
use crate::service::Actor;
use crate::service::credentialing::views::{
    self, IndividualView, StandingSummary, UnlinkedProvider,
};
use crate::service::credentialing::{self, NewSource, Source};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterSource {
    name: String,
    webhook_id: String,
    secret: Option<String>,
    #[serde(default)]
    event_types: Vec<String>,
}

pub async fn register_source(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    JsonBody(req): JsonBody<RegisterSource>,
) -> AppResult<(StatusCode, Json<NewSource>)> {
    require_ops(&caller)?;
    let actor = Actor::client(caller.id, request_id);
    let created = credentialing::register_source(
        &s.db,
        &req.name,
        &req.webhook_id,
        req.secret.as_deref(),
        &req.event_types,
        &actor,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn list_sources(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
) -> AppResult<Json<Vec<Source>>> {
    require_ops(&caller)?;
    Ok(Json(credentialing::list_sources(&s.db).await?))
}

pub async fn get_individual(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(idp_id): Path<String>,
) -> AppResult<Json<IndividualView>> {
    require_ops(&caller)?;
    Ok(Json(views::individual_by_text(&s.db, &idp_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandingQuery {
    standing: Option<String>,
}

pub async fn list_standings(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(q): Query<StandingQuery>,
) -> AppResult<Json<Vec<StandingSummary>>> {
    require_ops(&caller)?;
    Ok(Json(views::standings(&s.db, q.standing.as_deref()).await?))
}

pub async fn list_unlinked(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
) -> AppResult<Json<Vec<UnlinkedProvider>>> {
    require_ops(&caller)?;
    Ok(Json(views::unlinked(&s.db).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LinkRequest {
    idp_id: i64,
}

pub async fn link_provider(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    Path(provider_id): Path<String>,
    JsonBody(req): JsonBody<LinkRequest>,
) -> AppResult<Json<IndividualView>> {
    require_ops(&caller)?;
    let actor = Actor::client(caller.id, request_id);
    Ok(Json(
        credentialing::link(
            &s.db,
            &s.credentialing,
            &provider_id,
            &req.idp_id.to_string(),
            &actor,
        )
        .await?,
    ))
}
