//! Ops: reseller debit accounts (credit, hold, release, ledger).

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use uuid::Uuid;

use super::JsonBody;
use super::clients::require_ops;
use crate::auth::Authenticated;
use crate::domain::Invalid;
use crate::domain::offer::Cents;
use crate::error::AppResult;
use crate::http::request_id::RequestId;
use crate::service::{Actor, accounts, accounts::AccountView};
use crate::state::AppState;

fn reseller_id(s: &str) -> AppResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| Invalid::new("reseller_id", "must be a UUID").into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditRequest {
    /// US dollars as a string ("250.00") so no float rounding creeps in.
    amount: String,
    memo: Option<String>,
}

pub async fn credit(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CreditRequest>,
) -> AppResult<Json<AccountView>> {
    require_ops(&caller)?;
    let amount = Cents::parse(&req.amount)?;
    let actor = Actor::client(caller.id, request_id);
    let now = state.clock.now();
    Ok(Json(
        accounts::credit(
            &state.db,
            reseller_id(&id)?,
            amount,
            req.memo.as_deref(),
            &actor,
            now,
        )
        .await?,
    ))
}

async fn hold(
    state: AppState,
    caller: Uuid,
    request_id: Option<String>,
    id: &str,
    on: bool,
) -> AppResult<Json<AccountView>> {
    let actor = Actor::client(caller, request_id);
    let now = state.clock.now();
    Ok(Json(
        accounts::set_hold(&state.db, reseller_id(id)?, on, &actor, now).await?,
    ))
}

pub async fn put_hold(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> AppResult<Json<AccountView>> {
    require_ops(&caller)?;
    hold(state, caller.id, request_id, &id, true).await
}

pub async fn release_hold(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> AppResult<Json<AccountView>> {
    require_ops(&caller)?;
    hold(state, caller.id, request_id, &id, false).await
}

pub async fn ledger(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> AppResult<Json<AccountView>> {
    require_ops(&caller)?;
    Ok(Json(accounts::view(&state.db, reseller_id(&id)?).await?))
}
