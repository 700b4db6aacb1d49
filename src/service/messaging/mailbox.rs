//! The pull mailbox, for receiving vendors that cannot host an endpoint: a message for an
//! address without an inbound URL waits (PROCESSED) until the vendor lists, fetches and
//! acknowledges it, which makes it DISPATCHED; unacknowledged it expires (`delivery::expire`).
//! A listing may wait for a message to arrive (long poll), woken by Postgres NOTIFY from
//! whichever replica put it there.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use uuid::Uuid;

use super::MessagingContext;
use super::admin::granted_address;
use super::delivery::{self, Change};
use super::inbound::{Shape, XdmDelivery};
use crate::domain::Invalid;
use crate::domain::messaging::Status;
use crate::error::{AppError, AppResult};
use crate::store::{mailbox as sql, messaging as messages};

/// Longest wait a listing may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Most messages one listing returns.
pub const MAX_LIMIT: i64 = 100;

/// Wakes long polls when any replica puts a message in a mailbox. One LISTEN connection per
/// replica, opened by the first long poll; while it is down, polls look again every second.
#[derive(Default)]
pub struct Signal {
    tx: OnceLock<watch::Sender<u64>>,
}

impl Signal {
    /// A receiver that changes whenever a message enters some mailbox, and whether the
    /// listener is up (when it is not, a poll must look for itself).
    fn subscribe(&self, db: &PgPool) -> (watch::Receiver<u64>, bool) {
        let tx = self.tx.get_or_init(|| {
            let (tx, _) = watch::channel(0);
            tokio::spawn(listen(db.clone(), tx.clone()));
            tx
        });
        let up = *tx.borrow() > 0;
        (tx.subscribe(), up)
    }
}

/// The listener: counts 1 once connected, then one more per notification; back to looking
/// every second while it reconnects. Lives as long as the runtime.
async fn listen(db: PgPool, tx: watch::Sender<u64>) {
    loop {
        if let Ok(mut l) = PgListener::connect_with(&db).await
            && l.listen(sql::CHANNEL).await.is_ok()
        {
            tx.send_modify(|n| *n += 1);
            while l.recv().await.is_ok() {
                tx.send_modify(|n| *n += 1);
            }
        }
        tx.send_replace(0);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One waiting message, as listed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxItem {
    /// The mailbox's handle of the message: fetch and acknowledge by it; `after` pages by it.
    pub id: i64,
    /// The sender's messageId.
    pub message_id: String,
    pub from_direct_address: String,
    pub to_direct_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_subject: Option<String>,
    pub received_time: String,
    pub size_bytes: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Inbox {
    pub address: String,
    pub messages: Vec<InboxItem>,
    /// The `after` of the next page: the last id listed (null when none was).
    pub next: Option<i64>,
}

pub struct InboxQuery<'a> {
    pub address: &'a str,
    pub after: i64,
    pub limit: i64,
    pub wait: Duration,
}

/// The messages waiting for one of the vendor's addresses; with `wait`, an empty mailbox is
/// watched until a message arrives or the wait ends.
pub async fn list(
    db: &PgPool,
    ctx: &MessagingContext,
    client: Uuid,
    q: &InboxQuery<'_>,
) -> AppResult<Inbox> {
    if !(1..=MAX_LIMIT).contains(&q.limit) {
        return Err(AppError::BadRequest(Invalid::new(
            "limit",
            format!("must be 1..={MAX_LIMIT}"),
        )));
    }
    if q.after < 0 {
        return Err(AppError::BadRequest(Invalid::new(
            "after",
            "must not be negative",
        )));
    }
    if q.wait > MAX_WAIT {
        return Err(AppError::BadRequest(Invalid::new(
            "wait",
            format!("must be at most {}s", MAX_WAIT.as_secs()),
        )));
    }
    let (_, address) = granted_address(db, client, q.address).await?;
    let deadline = tokio::time::Instant::now() + q.wait;
    // Subscribed before the first look, so a message that arrives in between still wakes us.
    let mut woken = (q.wait > Duration::ZERO).then(|| ctx.mailbox_signal.subscribe(db));
    loop {
        let rows = sql::waiting(db, &address, q.after, q.limit).await?;
        let now = tokio::time::Instant::now();
        let Some((rx, listening)) = woken.as_mut().filter(|_| rows.is_empty() && now < deadline)
        else {
            return Ok(Inbox {
                next: rows.last().map(|r| r.mailbox_id),
                messages: rows.into_iter().map(item).collect(),
                address,
            });
        };
        // With the listener up a notification wakes us at once; the periodic look covers a
        // notification lost while it reconnected.
        let look_again = if *listening {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    *listening = false;
                } else {
                    *listening = *rx.borrow_and_update() > 0;
                }
            }
            () = tokio::time::sleep_until(deadline.min(now + look_again)) => {}
        }
    }
}

fn item(r: sql::WaitingRow) -> InboxItem {
    InboxItem {
        id: r.mailbox_id,
        message_id: r.message_id,
        from_direct_address: r.from_address,
        to_direct_address: r.recipient,
        message_subject: r.subject,
        received_time: rfc3339(r.created_at),
        size_bytes: r.size_bytes,
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A mailbox entry of one of the vendor's addresses. Another vendor's entry is "not found"
/// exactly like one that does not exist, so ids cannot be probed.
/// Returns the entry with the id of its address.
async fn entry(db: &PgPool, client: Uuid, id: i64) -> AppResult<(sql::EntryRow, i64)> {
    let not_found = || AppError::NotFound(format!("message {id} in this client's mailboxes"));
    let e = sql::entry(db, id).await?.ok_or_else(not_found)?;
    let (address_id, _) = granted_address(db, client, &e.recipient)
        .await
        .map_err(|_| not_found())?;
    Ok((e, address_id))
}

/// A waiting message in the inbound JSON of the seed, as a push would carry it (in the shape
/// the address's endpoint settings ask for, if it has any). An acknowledged or expired message
/// has left the mailbox.
pub async fn fetch(db: &PgPool, client: Uuid, id: i64) -> AppResult<Vec<u8>> {
    let (e, address_id) = entry(db, client, id).await?;
    if e.status != Status::Processed.as_str() {
        return Err(gone(&e));
    }
    let settings = messages::endpoint_of(db, address_id).await?;
    let shape = settings
        .as_ref()
        .and_then(|s| Shape::parse(&s.inbound_shape))
        .unwrap_or(Shape::Flat);
    let xdm = settings
        .as_ref()
        .and_then(|s| XdmDelivery::parse(&s.inbound_xdm))
        .unwrap_or(XdmDelivery::Zip);
    let (msg, raw) = messages::message_with_mime(db, e.message)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("message {id}")))?;
    delivery::inbound_json(msg, raw, &e.recipient, shape, xdm)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e.unwrap_or_else(|e| e))))
}

fn gone(e: &sql::EntryRow) -> AppError {
    AppError::Conflict(format!(
        "message {} is no longer waiting: it is {}",
        e.mailbox_id, e.status
    ))
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Acknowledged {
    pub id: i64,
    pub message_id: String,
    pub status: String,
}

/// Takes a message out of the mailbox: its recipient becomes DISPATCHED (the sender is told
/// when it asked for final delivery, as for a push). Acknowledging again answers the same;
/// a message that expired meanwhile stays FAILED and the answer says so.
pub async fn acknowledge(
    db: &PgPool,
    ctx: &MessagingContext,
    client: Uuid,
    id: i64,
) -> AppResult<Acknowledged> {
    let (e, _) = entry(db, client, id).await?;
    let answer = |status: &str| Acknowledged {
        id,
        message_id: e.message_id.clone(),
        status: status.to_owned(),
    };
    if e.status != Status::Processed.as_str() {
        return if matches!(e.status.as_str(), "DISPATCHED" | "DISPLAYED") {
            Ok(answer(&e.status))
        } else {
            Err(gone(&e))
        };
    }
    let mut tx = db.begin().await?;
    let change = Change {
        status: Status::Dispatched,
        failure: None,
        notify: e.final_delivery,
    };
    let applied = delivery::apply_in(&mut tx, ctx, e.message, &e.recipient, &change).await?;
    if applied {
        sql::acknowledged(&mut tx, id).await?;
    }
    tx.commit().await?;
    if applied {
        metrics::counter!("gateway_messages_delivered_total", "route" => "mailbox").increment(1);
        return Ok(answer(Status::Dispatched.as_str()));
    }
    // Something else changed it first (the expiry, or another acknowledgement).
    let (now, _) = entry(db, client, id).await?;
    if matches!(now.status.as_str(), "DISPATCHED" | "DISPLAYED") {
        Ok(answer(&now.status))
    } else {
        Err(gone(&now))
    }
}
