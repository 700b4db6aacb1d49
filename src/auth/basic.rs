//! HTTP Basic authentication of API clients (`client id : secret`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use uuid::Uuid;

use super::secrets;
use super::source::ClientAddr;
use super::throttle::{Throttle, Throttled};
use crate::domain::client::{Client, ClientStatus};
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

/// How long a successful argon2 check is remembered. The client's status and stored hash are
/// still read on every request (by `verify`, or confirmed by the caller of `recall`), so
/// disabling or rotating takes effect at once.
const CACHE_TTL: Duration = Duration::from_secs(300);
const CACHE_MAX: usize = 10_000;

/// Remembers recent successful verifications so a busy client pays for argon2 once, not on
/// every request. Keyed by client id; holds only a SHA-256 of the presented secret.
pub struct Verifier {
    recent: Mutex<HashMap<Uuid, Remembered>>,
    /// One argon2 check at a time per (client, presented secret): requests that arrive together
    /// with the same credentials wait for the first check and use its result, instead of each
    /// paying 20 ms of CPU and 19 MiB of memory (a vendor's batch on a fresh server). Other
    /// secrets presented for the same client do not wait behind it.
    checking: Turns,
    throttle: Throttle,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new(Throttle::default())
    }
}

fn throttled(t: Throttled) -> AppError {
    AppError::Throttled {
        retry_after: t.retry_after,
    }
}

struct Remembered {
    presented: String,
    phc: String,
    client: Client,
    at: Instant,
}

type Turns = Mutex<HashMap<(Uuid, String), Arc<tokio::sync::Mutex<()>>>>;

/// A place in the queue of checks of one (client, presented secret). Dropped, also when the
/// request is cancelled midway, it removes the queue once nobody else holds it.
struct Turn<'a> {
    turns: &'a Turns,
    key: (Uuid, String),
    slot: Arc<tokio::sync::Mutex<()>>,
}

impl<'a> Turn<'a> {
    fn take(turns: &'a Turns, key: (Uuid, String)) -> Self {
        let slot = Arc::clone(turns.lock().unwrap().entry(key.clone()).or_default());
        Self { turns, key, slot }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut turns = self.turns.lock().unwrap();
        // The map's reference and ours: nobody else is waiting.
        if Arc::strong_count(&self.slot) == 2 {
            turns.remove(&self.key);
        }
    }
}

/// A PHC string no secret matches, used when the client id is unknown so that the answer takes
/// as long as for a known id.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8ZHpQf1EDnbK4ucBmgwVWt0zGLEUYOAtBMBkBz3Y5Oo";

impl Verifier {
    pub fn new(throttle: Throttle) -> Self {
        Self {
            recent: Mutex::default(),
            checking: Mutex::default(),
            throttle,
        }
    }

    /// Checks a client's credentials presented from `from`. A secret verified recently passes
    /// without argon2 (and past any throttle: it is known to be right). Otherwise a throttled
    /// address or client id is refused at once (`Throttled`), and a failure counts against
    /// both. The presented secret is never logged.
    pub async fn verify(
        &self,
        db: &sqlx::PgPool,
        id: Uuid,
        secret: &str,
        from: IpAddr,
    ) -> Result<Client, AppError> {
        let presented = secrets::sha256_hex(secret.as_bytes());
        let fresh = |phc: Option<&str>| {
            let recent = self.recent.lock().unwrap();
            recent.get(&id).is_some_and(|r| {
                r.presented == presented
                    && phc.is_none_or(|p| r.phc == p)
                    && r.at.elapsed() < CACHE_TTL
            })
        };
        if !fresh(None) {
            self.throttle.check(from, Some(id)).map_err(throttled)?;
        }
        let Some((client, phc)) = store::clients::find_with_hash(db, id).await? else {
            // As long as for a known id, so the answer does not tell which ids exist.
            secrets::verify_secret(secret.to_owned(), DECOY_HASH.to_owned()).await?;
            self.failed(from, None);
            return Err(AppError::Unauthorized);
        };
        if !fresh(Some(&phc)) {
            let turn = Turn::take(&self.checking, (id, presented.clone()));
            let _mine = turn.slot.lock().await;
            // The check this request waited for may have succeeded, or failed, meanwhile.
            if !fresh(Some(&phc)) {
                self.throttle.check(from, Some(id)).map_err(throttled)?;
                if !secrets::verify_secret(secret.to_owned(), phc.clone()).await? {
                    self.failed(from, Some(id));
                    return Err(AppError::Unauthorized);
                }
                self.throttle.succeeded(from);
                if client.status == ClientStatus::Active {
                    self.remember(id, presented.clone(), phc.clone(), &client);
                }
            }
        }
        if client.status != ClientStatus::Active {
            self.forget(id);
            return Err(AppError::Unauthorized);
        }
        Ok(client)
    }

    /// Counts a failed authentication that did not go through `verify` (an unknown bearer
    /// token or SOAP session): it throttles the address like a wrong secret.
    pub fn failed(&self, from: IpAddr, client: Option<Uuid>) {
        match client {
            Some(client) => tracing::warn!(%client, %from, "authentication failed"),
            None => tracing::warn!(%from, "authentication failed"),
        }
        self.throttle.failed(from, client);
    }

    /// `Err` when `from` may not try to authenticate now.
    pub fn check_throttle(&self, from: IpAddr) -> Result<(), AppError> {
        self.throttle.check(from, None).map_err(throttled)
    }

    /// The client and the stored hash its secret matched, when that was verified recently,
    /// without reading the database. The caller must confirm, in the statement it runs anyway,
    /// that the client is still active with that stored hash, and `forget` it otherwise.
    pub fn recall(&self, id: Uuid, secret: &str) -> Option<(Client, String)> {
        let presented = secrets::sha256_hex(secret.as_bytes());
        let recent = self.recent.lock().unwrap();
        recent
            .get(&id)
            .filter(|r| r.presented == presented && r.at.elapsed() < CACHE_TTL)
            .map(|r| (r.client.clone(), r.phc.clone()))
    }

    fn remember(&self, id: Uuid, presented: String, phc: String, client: &Client) {
        let mut recent = self.recent.lock().unwrap();
        if recent.len() >= CACHE_MAX {
            recent.clear();
        }
        recent.insert(
            id,
            Remembered {
                presented,
                phc,
                client: client.clone(),
                at: Instant::now(),
            },
        );
    }

    /// Drops what is remembered of a client (its confirmation failed).
    pub fn forget(&self, id: Uuid) {
        self.recent.lock().unwrap().remove(&id);
    }
}

/// Extractor: the API client that authenticated this request.
pub struct Authenticated(pub Client);

/// The client id and secret of an `Authorization: Basic` header.
pub fn parse_basic(headers: &HeaderMap) -> Option<(Uuid, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((Uuid::parse_str(id).ok()?, secret.to_owned()))
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Ok(ClientAddr(from)) = ClientAddr::from_request_parts(parts, state).await;
        let (id, secret) = parse_basic(&parts.headers).ok_or(AppError::Unauthorized)?;
        let client = state.verifier.verify(&state.db, id, &secret, from).await?;
        Ok(Authenticated(client))
    }
}
