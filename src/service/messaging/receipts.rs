//! Read receipts from the receiving side. The seed lets a receiving EHR report that a message
//! was displayed; the HISP passes it on to the sender. For a message from one of our vendors
//! that is a DISPLAYED status and notification; for mail from another HISP the same change
//! becomes a "displayed" MDN that the Direct transport sends back.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::MessagingContext;
use super::admin::granted_address;
use super::delivery::{self, Change};
use crate::domain::Invalid;
use crate::domain::messaging::Status;
use crate::domain::pki::DirectAddress;
use crate::error::{AppError, AppResult};
use crate::store::messaging as sql;

/// What the receiving vendor reports, naming the message as its push or mailbox gave it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReceiptRequest {
    pub message_id: Option<String>,
    pub from_direct_address: Option<String>,
    pub to_direct_address: Option<String>,
    pub disposition: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptReply {
    pub message_id: String,
    pub to_direct_address: String,
    pub status: String,
}

/// Dispositions a receiving side may report. `deleted` and `denied` (RFC 8098) would need a
/// status the seed does not have: a DISPATCHED message cannot change but to DISPLAYED.
const DISPLAYED: &str = "displayed";

fn required(v: Option<String>, field: &'static str) -> AppResult<String> {
    v.map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AppError::BadRequest(Invalid::new(field, "is required")))
}

/// Records that `to` displayed the message: its sender's recipient becomes DISPLAYED (only
/// from DISPATCHED, as the status machine says) and the sender is notified. Reporting again
/// answers the same. A message the vendor's addresses did not receive is "not found".
pub async fn report(
    db: &PgPool,
    ctx: &MessagingContext,
    client: Uuid,
    req: ReceiptRequest,
) -> AppResult<ReceiptReply> {
    let message_id = required(req.message_id, "messageId")?;
    let from = required(req.from_direct_address, "fromDirectAddress")?;
    let to = required(req.to_direct_address, "toDirectAddress")?;
    let disposition = required(req.disposition, "disposition")?;
    if !disposition.eq_ignore_ascii_case(DISPLAYED) {
        return Err(AppError::BadRequest(Invalid::new(
            "disposition",
            format!("must be {DISPLAYED:?}"),
        )));
    }
    let from = DirectAddress::parse(&from)
        .map_err(|e| AppError::BadRequest(Invalid::new("fromDirectAddress", e.message)))?;
    let to = DirectAddress::parse(&to)
        .map_err(|e| AppError::BadRequest(Invalid::new("toDirectAddress", e.message)))?;
    let not_found =
        || AppError::NotFound(format!("message {message_id} from {from} received by {to}"));
    let (_, to) = granted_address(db, client, &to.to_string())
        .await
        .map_err(|_| not_found())?;
    let row = sql::received(db, &message_id, &from.to_string(), &to)
        .await?
        .ok_or_else(not_found)?;
    let answer = |status: &str| ReceiptReply {
        message_id: message_id.clone(),
        to_direct_address: row.recipient.clone(),
        status: status.to_owned(),
    };
    match row.status.as_str() {
        "DISPLAYED" => return Ok(answer("DISPLAYED")),
        "DISPATCHED" => {}
        other => {
            return Err(AppError::Conflict(format!(
                "the message is {other} for {to}; only a DISPATCHED message can be displayed"
            )));
        }
    }
    let change = Change {
        status: Status::Displayed,
        failure: None,
        notify: true,
    };
    if delivery::apply(db, ctx, row.message, &row.recipient, change).await? {
        return Ok(answer("DISPLAYED"));
    }
    // Changed meanwhile: only another report of the same can have done it.
    let now = sql::received(db, &message_id, &from.to_string(), &to)
        .await?
        .ok_or_else(not_found)?;
    if now.status == "DISPLAYED" {
        Ok(answer("DISPLAYED"))
    } else {
        Err(AppError::Conflict(format!("the message is {}", now.status)))
    }
}
