//! SQL of the pull mailbox: local recipients whose address has no inbound URL wait in
//! `message_recipients` with a `mailbox_id` until their vendor acknowledges them.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The channel a long poll LISTENs on; the payload is the recipient address, lower-cased.
pub const CHANNEL: &str = "gateway_mailbox";

/// Puts a PROCESSED recipient in its mailbox until `until` and wakes long polls (at commit).
/// Returns its mailbox id when it entered now, `None` when it was there already or is no
/// longer PROCESSED.
pub async fn enter(
    conn: &mut PgConnection,
    message: Uuid,
    recipient: &str,
    until: DateTime<Utc>,
) -> Result<Option<i64>, sqlx::Error> {
    let id: Option<i64> = sqlx::query_scalar(
        "UPDATE message_recipients SET mailbox_id = nextval('mailbox_ids'), mailbox_until = $3
         WHERE message_id = $1 AND recipient = $2 AND status = 'PROCESSED' AND mailbox_id IS NULL
         RETURNING mailbox_id",
    )
    .bind(message)
    .bind(recipient)
    .bind(until)
    .fetch_optional(&mut *conn)
    .await?;
    if id.is_some() {
        sqlx::query("SELECT pg_notify($1, lower($2))")
            .bind(CHANNEL)
            .bind(recipient)
            .execute(conn)
            .await?;
    }
    Ok(id)
}

/// One waiting message, as a listing shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WaitingRow {
    pub mailbox_id: i64,
    pub message_id: String,
    pub from_address: String,
    pub recipient: String,
    pub subject: Option<String>,
    pub created_at: DateTime<Utc>,
    pub size_bytes: i64,
}

/// Messages waiting for `address` with an id above `after`, oldest first.
pub async fn waiting(
    db: &PgPool,
    address: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<WaitingRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.mailbox_id, coalesce(m.vendor_message_id, m.smtp_message_id) AS message_id,
                m.from_address, r.recipient, m.subject, m.created_at, m.size_bytes
         FROM message_recipients r JOIN messages m ON m.id = r.message_id
         WHERE lower(r.recipient) = lower($1) AND r.mailbox_id IS NOT NULL AND r.status = 'PROCESSED'
           AND r.mailbox_id > $2
         ORDER BY r.mailbox_id LIMIT $3",
    )
    .bind(address)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A mailbox entry by its id, whatever became of it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EntryRow {
    pub mailbox_id: i64,
    pub message: Uuid,
    pub message_id: String,
    pub recipient: String,
    pub status: String,
    pub final_delivery: bool,
}

pub async fn entry(db: &PgPool, mailbox_id: i64) -> Result<Option<EntryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.mailbox_id, r.message_id AS message,
                coalesce(m.vendor_message_id, m.smtp_message_id) AS message_id, r.recipient, r.status,
                m.final_delivery
         FROM message_recipients r JOIN messages m ON m.id = r.message_id
         WHERE r.mailbox_id = $1",
    )
    .bind(mailbox_id)
    .fetch_optional(db)
    .await
}

pub async fn acknowledged(conn: &mut PgConnection, mailbox_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE message_recipients SET acknowledged_at = coalesce(acknowledged_at, clock_timestamp())
         WHERE mailbox_id = $1",
    )
    .bind(mailbox_id)
    .execute(conn)
    .await?;
    Ok(())
}
