//! The Direct transport's operations routes: what other HISPs sent us and what became of it.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::clients::require_ops;
use crate::auth::Authenticated;
use crate::domain::Invalid;
use crate::error::{AppError, AppResult};
use crate::service::transport::{self, InboundMail};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundQuery {
    state: Option<String>,
    limit: Option<i64>,
}

/// Mail our SMTP listener took from other HISPs, newest first, with each one's outcome.
pub async fn list_inbound(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(q): Query<InboundQuery>,
) -> AppResult<Json<Vec<InboundMail>>> {
    require_ops(&caller)?;
    if let Some(s) = q.state.as_deref()
        && !["received", "accepted", "rejected"].contains(&s)
    {
        return Err(AppError::BadRequest(Invalid::new(
            "state",
            "must be received, accepted or rejected",
        )));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=transport::MAX_LISTED).contains(&limit) {
        return Err(AppError::BadRequest(Invalid::new(
            "limit",
            format!("must be 1 to {}", transport::MAX_LISTED),
        )));
    }
    Ok(Json(
        transport::inbound_mail(&state.db, q.state.as_deref(), limit).await?,
    ))
}
