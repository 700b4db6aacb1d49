//! The message status report: one row per recipient of each outbound message. Every front
//! door that reports message status (SOAP reports, REST reports) reads it here.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatusRow {
    pub from_address: String,
    pub recipient: String,
    pub smtp_message_id: String,
    pub size_bytes: i64,
    pub status: String,
    pub failure_origin: Option<String>,
    pub failure_reason: Option<String>,
    /// The cause behind the coded reason: for operators, never for senders or resellers.
    pub failure_detail: Option<String>,
    pub sent_at: DateTime<Utc>,
    pub xdr_message_id: Option<String>,
    pub xdr_source_id: Option<String>,
    pub xdr_unique_id: Option<String>,
    pub xdr_patient_id: Option<String>,
}

pub struct Scope<'a> {
    /// Only messages of organizations of this reseller (`None`: every organization).
    pub reseller: Option<Uuid>,
    /// Only messages of this organization's domain.
    pub domain: Option<&'a str>,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Messages of the organizations in scope in `[from, until)`, oldest first: those they sent,
/// and those other HISPs sent them over the Direct transport (each row a recipient's status).
pub async fn status_rows(db: &PgPool, s: &Scope<'_>) -> Result<Vec<StatusRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.from_address, r.recipient, m.smtp_message_id, m.size_bytes, r.status, r.failure_origin,
                r.failure_reason, r.failure_detail, m.created_at AS sent_at, m.xdr_message_id, m.xdr_source_id,
                m.xdr_unique_id, m.xdr_patient_id
         FROM messages m
         JOIN organizations o ON o.id = m.organization_id
         JOIN message_recipients r ON r.message_id = m.id
         WHERE m.created_at >= $1 AND m.created_at < $2
           AND ($3::uuid IS NULL OR o.reseller_id = $3)
           AND ($4::text IS NULL OR lower(o.domain) = lower($4))
         ORDER BY m.created_at, m.id, r.recipient",
    )
    .bind(s.from)
    .bind(s.until)
    .bind(s.reseller)
    .bind(s.domain)
    .fetch_all(db)
    .await
}
