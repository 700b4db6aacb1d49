//! Ops: the subscribers of the HL7 v3 organization registry (systems told of every change to a
//! registry organization).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::JsonBody;
use super::clients::require_ops;
use crate::auth::Authenticated;
use crate::error::AppResult;
use crate::http::request_id::RequestId;
use crate::service::Actor;
use crate::service::registry::informer::{self, Subscriber};
use crate::state::AppState;
use crate::webhooks::EndpointAuth;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddSubscriber {
    url: String,
    auth: Option<EndpointAuth>,
}

pub async fn add_subscriber(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    JsonBody(req): JsonBody<AddSubscriber>,
) -> AppResult<(StatusCode, Json<Subscriber>)> {
    require_ops(&caller)?;
    let actor = Actor::client(caller.id, request_id);
    let sub = informer::add_subscriber(&s.db, &s.registry, &req.url, req.auth, &actor).await?;
    Ok((StatusCode::CREATED, Json(sub)))
}

pub async fn list_subscribers(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
) -> AppResult<Json<Vec<Subscriber>>> {
    require_ops(&caller)?;
    Ok(Json(informer::list_subscribers(&s.db).await?))
}

pub async fn remove_subscriber(
    State(s): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    Path(id): Path<uuid::Uuid>,
) -> AppResult<StatusCode> {
    require_ops(&caller)?;
    let actor = Actor::client(caller.id, request_id);
    informer::remove_subscriber(&s.db, id, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
