//! Who am I, and (for ops) managing API clients.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use super::JsonBody;
use crate::auth::Authenticated;
use crate::domain::client::{Client, ClientKind};
use crate::error::{AppError, AppResult};
use crate::http::request_id::RequestId;
use crate::service::{self, Actor, clients::CreatedClient};
use crate::state::AppState;

pub async fn whoami(Authenticated(client): Authenticated) -> Json<Client> {
    Json(client)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    kind: String,
    name: String,
}

pub fn require_ops(client: &Client) -> AppResult<()> {
    if client.kind == ClientKind::Ops {
        Ok(())
    } else {
        Err(AppError::Forbidden("only ops clients may do this".into()))
    }
}

pub async fn create_client(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    JsonBody(req): JsonBody<CreateClientRequest>,
) -> AppResult<(StatusCode, Json<CreatedClient>)> {
    require_ops(&caller)?;
    let kind: ClientKind = req.kind.parse()?;
    let actor = Actor::client(caller.id, request_id);
    let created = service::clients::create(&state.db, kind, &req.name, &actor).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn list_clients(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> AppResult<Json<Vec<Client>>> {
    require_ops(&caller)?;
    Ok(Json(service::clients::list(&state.db).await?))
}

pub async fn disable_client(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> AppResult<Json<Client>> {
    require_ops(&caller)?;
    let id =
        Uuid::parse_str(&id).map_err(|_| crate::domain::Invalid::new("id", "must be a UUID"))?;
    let actor = Actor::client(caller.id, request_id);
    Ok(Json(
        service::clients::disable(&state.db, id, &actor).await?,
    ))
}
