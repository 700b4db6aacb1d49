//! SQL of the Direct transport: the remote recipients a send job carries, the mail other HISPs
//! sent us, and the messages and MDNs it becomes.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Remote recipients of `message` at `domain` that no peer has taken yet and that still wait
/// for a status: what a send job (first or retried) has left to send.
pub async fn unsent_recipients(
    db: &PgPool,
    message: Uuid,
    domain: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT recipient FROM message_recipients
         WHERE message_id = $1 AND route = 'remote' AND status = 'SMTPINIT' AND handed_at IS NULL
           AND lower(split_part(recipient, '@', 2)) = lower($2)
         ORDER BY recipient",
    )
    .bind(message)
    .bind(domain)
    .fetch_all(db)
    .await
}

/// Records that the peer took `recipients` (its 250 to RCPT and to the data).
pub async fn mark_handed(
    db: &PgPool,
    message: Uuid,
    recipients: &[String],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE message_recipients SET handed_at = $3
         WHERE message_id = $1 AND recipient = ANY($2) AND handed_at IS NULL",
    )
    .bind(message)
    .bind(recipients)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

/// One mail as the SMTP listener committed it.
#[derive(Debug, sqlx::FromRow)]
pub struct InboundMail {
    pub id: Uuid,
    pub mail_from: Option<String>,
    pub rcpt_to: Vec<String>,
    pub raw: Vec<u8>,
    pub state: String,
}

pub async fn inbound_mail(db: &PgPool, id: Uuid) -> Result<Option<InboundMail>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, nullif(mail_from, '') AS mail_from, rcpt_to, raw, state
         FROM inbound_mail WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The end of an inbound mail's processing: `accepted` or `rejected`, with the reason ops see.
pub async fn finish_inbound(
    conn: &mut PgConnection,
    id: Uuid,
    state: &str,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE inbound_mail SET state = $2, reason = $3, processed_at = now()
         WHERE id = $1 AND state = 'received'",
    )
    .bind(id)
    .bind(state)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A message from another HISP, as it is stored for delivery to our addresses.
pub struct NewInbound<'a> {
    pub id: Uuid,
    pub inbound_mail_id: Uuid,
    pub from_address: &'a str,
    pub smtp_message_id: &'a str,
    pub subject: Option<&'a str>,
    pub final_delivery: bool,
    pub notify_to: &'a str,
    /// The inner message, as plain MIME (`packed_mime::unpack` reads it as is).
    pub mime: &'a [u8],
    pub recipients: &'a [String],
}

/// Writes the message and its recipients (routed `local`, SMTPINIT until delivered). The
/// organization is the first recipient's, for the reports.
pub async fn insert_inbound(
    conn: &mut PgConnection,
    m: &NewInbound<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO messages (id, direction, organization_id, from_address, smtp_message_id,
             size_bytes, subject, final_delivery, mime, inbound_mail_id, notify_to, created_at)
         VALUES ($1, 'inbound',
                 (SELECT a.organization_id FROM direct_addresses a
                  WHERE lower(a.username || '@' || a.domain) = lower($10[1]) LIMIT 1),
                 $2, $3, $4, $5, $6, $7, $8, $9, now())",
    )
    .bind(m.id)
    .bind(m.from_address)
    .bind(m.smtp_message_id)
    .bind(m.mime.len() as i64)
    .bind(m.subject)
    .bind(m.final_delivery)
    .bind(m.mime)
    .bind(m.inbound_mail_id)
    .bind(m.notify_to)
    .bind(m.recipients)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO message_recipients (message_id, recipient, status, route, updated_at)
         SELECT $1, r, 'SMTPINIT', 'local', now() FROM unnest($2::text[]) AS r",
    )
    .bind(m.id)
    .bind(m.recipients)
    .execute(conn)
    .await?;
    Ok(())
}

/// The message we sent whose Message-ID an MDN names, and the recipient it reports on as we
/// stored it (the MDN's spelling may differ in case).
#[derive(Debug, sqlx::FromRow)]
pub struct Reported {
    pub message: Uuid,
    pub recipient: String,
    pub final_delivery: bool,
}

pub async fn reported(
    db: &PgPool,
    original_message_id: &str,
    recipient: &str,
) -> Result<Option<Reported>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.id AS message, r.recipient, m.final_delivery
         FROM messages m JOIN message_recipients r ON r.message_id = m.id
         WHERE lower(m.smtp_message_id) = lower($1) AND m.direction = 'outbound'
           AND r.route = 'remote' AND lower(r.recipient) = lower($2)",
    )
    .bind(original_message_id)
    .bind(recipient)
    .fetch_optional(db)
    .await
}

/// One inbound mail as ops list it: everything but its bytes.
#[derive(Debug, sqlx::FromRow, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundMailRow {
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    /// The connecting peer's IP address.
    pub peer: String,
    pub helo: String,
    pub tls: bool,
    /// The envelope sender; empty for the null sender of MDNs and DSNs.
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub size: i64,
    /// `received` (waiting to be processed), `accepted` or `rejected`.
    pub state: String,
    /// Why it was rejected (`code: detail`), or what an accepted one was (`notification`).
    pub reason: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
}

/// The newest inbound mail first, `state` only when given, at most `limit`.
pub async fn list_inbound(
    db: &PgPool,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<InboundMailRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, received_at, host(peer) AS peer, helo, tls, mail_from, rcpt_to, size, state,
                reason, processed_at
         FROM inbound_mail WHERE ($1::text IS NULL OR state = $1)
         ORDER BY received_at DESC, id DESC LIMIT $2",
    )
    .bind(state)
    .bind(limit)
    .fetch_all(db)
    .await
}
