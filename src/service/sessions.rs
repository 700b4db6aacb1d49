//! Login sessions of the SOAP front door: a random token whose SHA-256 is kept in Postgres
//! with a fixed expiry, so any replica can check it.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::{Verifier, secrets};
use crate::domain::client::ClientKind;
use crate::error::{AppError, AppResult};
use crate::store;

/// Checks reseller credentials (client id and secret) and opens a session.
pub async fn login(
    db: &PgPool,
    verifier: &Verifier,
    username: &str,
    password: &str,
    ttl: std::time::Duration,
    now: DateTime<Utc>,
) -> AppResult<String> {
    let id = Uuid::parse_str(username.trim()).map_err(|_| AppError::Unauthorized)?;
    let client = verifier.verify(db, id, password).await?;
    if client.kind != ClientKind::Reseller {
        return Err(AppError::Unauthorized);
    }
    let token = secrets::generate_secret();
    let ttl = TimeDelta::from_std(ttl).map_err(anyhow::Error::from)?;
    store::sessions::insert(
        db,
        &secrets::sha256_hex(token.as_bytes()),
        id,
        now,
        now + ttl,
    )
    .await?;
    Ok(token)
}

/// The reseller a live session belongs to.
pub async fn reseller_of(db: &PgPool, session_id: &str, now: DateTime<Utc>) -> AppResult<Uuid> {
    store::sessions::client_of(db, &secrets::sha256_hex(session_id.trim().as_bytes()), now)
        .await?
        .ok_or(AppError::Unauthorized)
}
