//! SOAP sessions, kept in Postgres so that every replica honours every session.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

pub async fn insert(
    db: &PgPool,
    token_hash: &str,
    client_id: Uuid,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    // Expired sessions are swept as new ones are made; the index keeps that cheap.
    sqlx::query("DELETE FROM soap_sessions WHERE expires_at < $1 - interval '1 day'")
        .bind(now)
        .execute(db)
        .await?;
    sqlx::query(
        "INSERT INTO soap_sessions (token_hash, client_id, created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $3, $4)",
    )
    .bind(token_hash)
    .bind(client_id)
    .bind(now)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// The client of a live session whose client is still active.
pub async fn client_of(
    db: &PgPool,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE soap_sessions s SET last_seen_at = $2
         FROM api_clients c
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND c.id = s.client_id AND c.status = 'active'
         RETURNING s.client_id",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db)
    .await
}
