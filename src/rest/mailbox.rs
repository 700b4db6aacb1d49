//! The receiving vendor's routes of the messaging door: the pull mailbox (list, fetch,
//! acknowledge) and read receipts.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::JsonBody;
use super::messaging::Vendor;
use crate::domain::Invalid;
use crate::error::{AppError, AppResult};
use crate::service::messaging::mailbox::{self, Acknowledged, Inbox, InboxQuery};
use crate::service::messaging::receipts::{self, ReceiptReply, ReceiptRequest};
use crate::state::AppState;

pub const INBOX_PATH: &str = "/MessagingAPI/dirmsg/inbox";

#[derive(Deserialize)]
pub struct InboxParams {
    address: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
    wait: Option<String>,
}

/// `30s` or `30`: whole seconds.
fn parse_wait(s: &str) -> AppResult<Duration> {
    let digits = s.trim().strip_suffix('s').unwrap_or(s.trim());
    digits
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| AppError::BadRequest(Invalid::new("wait", "must be whole seconds, like 30s")))
}

pub async fn list(
    State(state): State<AppState>,
    Vendor(client): Vendor,
    Query(p): Query<InboxParams>,
) -> AppResult<Json<Inbox>> {
    let address = p
        .address
        .filter(|a| !a.trim().is_empty())
        .ok_or_else(|| AppError::BadRequest(Invalid::new("address", "is required")))?;
    let wait = p.wait.as_deref().map(parse_wait).transpose()?;
    let q = InboxQuery {
        address: &address,
        after: p.after.unwrap_or(0),
        limit: p.limit.unwrap_or(mailbox::MAX_LIMIT),
        wait: wait.unwrap_or(Duration::ZERO),
    };
    Ok(Json(
        mailbox::list(&state.db, &state.messaging, client.id, &q).await?,
    ))
}

pub async fn fetch(
    State(state): State<AppState>,
    Vendor(client): Vendor,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let body = mailbox::fetch(&state.db, client.id, id).await?;
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

pub async fn acknowledge(
    State(state): State<AppState>,
    Vendor(client): Vendor,
    Path(id): Path<i64>,
) -> AppResult<Json<Acknowledged>> {
    Ok(Json(
        mailbox::acknowledge(&state.db, &state.messaging, client.id, id).await?,
    ))
}

pub async fn receipt(
    State(state): State<AppState>,
    Vendor(client): Vendor,
    JsonBody(req): JsonBody<ReceiptRequest>,
) -> AppResult<Json<ReceiptReply>> {
    Ok(Json(
        receipts::report(&state.db, &state.messaging, client.id, req).await?,
    ))
}
