//! Login sessions of the SOAP front door: a random token whose SHA-256 is kept in Postgres
//! with a fixed expiry, so any replica can check it.

use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::{Verifier, secrets};
use crate::domain::client::ClientKind;
use crate::error::{AppError, AppResult};
use crate::store;

/// Checks reseller credentials (client id and secret) presented from `from` and opens a
/// session. Failures are throttled like every authentication.
pub async fn login(
    db: &PgPool,
    verifier: &Verifier,
    username: &str,
    password: &str,
    from: IpAddr,
    ttl: std::time::Duration,
    now: DateTime<Utc>,
) -> AppResult<String> {
    let Ok(id) = Uuid::parse_str(username.trim()) else {
        verifier.check_throttle(from)?;
        verifier.failed(from, None);
        return Err(AppError::Unauthorized);
    };
    let client = verifier.verify(db, id, password, from).await?;
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

/// The reseller a live session belongs to. Unknown session ids count as failed
/// authentications of `from` (a session id is a bearer secret).
pub async fn reseller_of(
    db: &PgPool,
    verifier: &Verifier,
    session_id: &str,
    from: IpAddr,
    now: DateTime<Utc>,
) -> AppResult<Uuid> {
    verifier.check_throttle(from)?;
    let found =
        store::sessions::client_of(db, &secrets::sha256_hex(session_id.trim().as_bytes()), now)
            .await?;
    found.ok_or_else(|| {
        verifier.failed(from, None);
        AppError::Unauthorized
    })
}
