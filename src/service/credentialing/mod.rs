//! Credentialing intake: sources registered by ops post webhook events; each is checked,
//! redacted and committed before the answer, and a job then turns it into facts about the
//! provider, the standing of the verified individual the provider is, and the consequences
//! of a change (addresses suspended or restored, ops told). `standing` holds that job,
//! `views` what ops read.

pub mod standing;
pub mod views;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::Actor;
use crate::auth::Verifier;
use crate::auth::secrets;
use crate::config::Config;
use crate::domain::Invalid;
use crate::domain::credentialing::{self as rules, EventType, Rules};
use crate::domain::identity::{IdpId, Npi};
use crate::egress::EgressPolicy;
use crate::error::{AppError, AppResult};
use crate::jobs::{self, JobRegistry, RetryPolicy};
use crate::service::identity_import::SSN_HASH_PURPOSE;
use crate::store;
use crate::store::credentialing::{self as sql, NewEvent, ProviderSeen, SourceRow};
use crate::webhooks::{Pusher, SigningKey};

pub use store::credentialing::ADDRESS_SUSPENDED;

/// The job that turns one stored event into facts and standing.
pub const PROCESS_JOB: &str = "credentialing.process";
/// The job that tells ops of a change of standing.
pub const NOTIFY_JOB: &str = "credentialing.notify";

/// How long a verified secret is remembered (by its SHA-256), so a busy source pays argon2
/// once, not per event. The stored hash is compared again on every request.
const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);
const SECRET_CACHE_MAX: usize = 1000;

/// What intake and its jobs need besides the database.
pub struct CredentialingContext {
    pub rules: Rules,
    pub identity_key: Vec<u8>,
    pub retry: RetryPolicy,
    pub notify_retry: RetryPolicy,
    pub pusher: Pusher,
    pub ops_url: Option<String>,
    pub ops_key: Option<SigningKey>,
    recent: Mutex<HashMap<Uuid, (String, String, Instant)>>,
}

impl CredentialingContext {
    pub fn from_config(config: &Config) -> Self {
        let c = &config.credentialing;
        let egress = Arc::new(EgressPolicy::from_config(config));
        Self {
            rules: Rules {
                disqualifying_statuses: c.disqualifying_statuses.clone(),
                exclusion_datasets: c.exclusion_datasets.clone(),
                warning_window: chrono::Duration::from_std(c.warning_window)
                    .unwrap_or(chrono::Duration::days(60)),
            },
            identity_key: config
                .security
                .identity_hash_key
                .expose()
                .as_bytes()
                .to_vec(),
            retry: RetryPolicy::from_config(&config.jobs),
            notify_retry: RetryPolicy {
                schedule: config.messaging.delivery_retry_schedule.clone(),
                jitter_percent: config.jobs.jitter_percent,
            },
            pusher: Pusher::new(config.messaging.delivery_timeout, egress),
            ops_url: Some(c.ops_webhook_url.trim().to_owned()).filter(|u| !u.is_empty()),
            ops_key: Some(c.ops_webhook_secret.expose())
                .filter(|s| !s.is_empty())
                .and_then(SigningKey::from_whsec),
            recent: Mutex::default(),
        }
    }

    fn recalls(&self, webhook_id: Uuid, presented: &str, phc: &str) -> bool {
        let recent = self.recent.lock().expect("secret cache lock");
        recent.get(&webhook_id).is_some_and(|(p, h, at)| {
            openssl::memcmp::eq(p.as_bytes(), presented.as_bytes())
                && h == phc
                && at.elapsed() < SECRET_CACHE_TTL
        })
    }

    fn remember(&self, webhook_id: Uuid, presented: String, phc: String) {
        let mut recent = self.recent.lock().expect("secret cache lock");
        if recent.len() >= SECRET_CACHE_MAX {
            recent.clear();
        }
        recent.insert(webhook_id, (presented, phc, Instant::now()));
    }
}

pub fn register_jobs(r: &mut JobRegistry, db: PgPool, ctx: Arc<CredentialingContext>) {
    {
        let (db, ctx) = (db.clone(), ctx.clone());
        r.register(PROCESS_JOB, move |job| {
            let (db, ctx) = (db.clone(), ctx.clone());
            async move { standing::process(&db, &ctx, &job).await }
        });
    }
    r.register(NOTIFY_JOB, move |job| {
        let ctx = ctx.clone();
        async move { standing::notify(&ctx, &job).await }
    });
}

// ---- sources -------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub id: Uuid,
    pub name: String,
    pub webhook_id: Uuid,
    pub event_types: Vec<String>,
    pub status: String,
    pub created_at: chrono::DateTime<Utc>,
}

impl From<SourceRow> for Source {
    fn from(r: SourceRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            webhook_id: r.webhook_id,
            event_types: r.event_types,
            status: r.status,
            created_at: r.created_at,
        }
    }
}

/// A source just registered, with its secret (shown once when we generated it).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSource {
    #[serde(flatten)]
    pub source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Registers a credentialing source: the webhook id the provider gave its webhook, the secret
/// it sends in `X-Secret` (generated when not given, and then returned once), and the event
/// types it sends (all 13 when empty).
pub async fn register_source(
    db: &PgPool,
    name: &str,
    webhook_id: &str,
    secret: Option<&str>,
    event_types: &[String],
    actor: &Actor,
) -> AppResult<NewSource> {
    let name = crate::domain::identity::parse_text("name", name, 200)?;
    let webhook_id = Uuid::parse_str(webhook_id.trim())
        .map_err(|_| Invalid::new("webhookId", "must be a UUID"))?;
    let types: Vec<EventType> = if event_types.is_empty() {
        EventType::ALL.to_vec()
    } else {
        event_types
            .iter()
            .map(|t| {
                t.parse::<EventType>()
                    .map_err(|e| Invalid::new("eventTypes", e.message))
            })
            .collect::<Result<_, _>>()?
    };
    let mut names: Vec<String> = types.iter().map(|t| t.as_str().to_owned()).collect();
    names.dedup();
    let (secret, generated) = match secret.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if s.len() < 16 || s.len() > 512 => {
            return Err(Invalid::new("secret", "must be 16 to 512 characters").into());
        }
        Some(s) => (s.to_owned(), None),
        None => {
            let s = secrets::generate_secret();
            (s.clone(), Some(s))
        }
    };
    let row = SourceRow {
        id: Uuid::now_v7(),
        name,
        webhook_id,
        secret_hash: secrets::hash_secret(secret).await?,
        event_types: names,
        status: "active".into(),
        created_at: Utc::now(),
    };
    let mut tx = db.begin().await?;
    if !sql::insert_source(&mut tx, &row).await? {
        return Err(AppError::Conflict(format!(
            "webhook id {webhook_id} is registered already"
        )));
    }
    store::audit::record(
        &mut tx,
        actor.audit(
            "credentialing.source.register",
            "credentialing_source",
            &row.id.to_string(),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(NewSource {
        source: row.into(),
        secret: generated,
    })
}

pub async fn list_sources(db: &PgPool) -> AppResult<Vec<Source>> {
    Ok(sql::sources(db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

// ---- intake --------------------------------------------------------------------------------

/// The four delivery headers, as received.
pub struct Delivery<'a> {
    pub webhook_id: Option<&'a str>,
    pub secret: Option<&'a str>,
    pub webhook_type: Option<&'a str>,
    pub trace_id: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    pub event_id: Uuid,
    /// The trace id was seen before: nothing was stored or processed again.
    pub duplicate: bool,
}

/// A PHC string no secret matches: an unknown webhook id costs as much as a known one.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8ZHpQf1EDnbK4ucBmgwVWt0zGLEUYOAtBMBkBz3Y5Oo";

/// Authenticates the source; a failure counts against the caller's address like a wrong
/// password, and a throttled address is answered at once.
async fn authenticate(
    db: &PgPool,
    ctx: &CredentialingContext,
    verifier: &Verifier,
    d: &Delivery<'_>,
    from: IpAddr,
) -> AppResult<SourceRow> {
    verifier.check_throttle(from)?;
    let secret = d.secret.unwrap_or("");
    let webhook_id = d.webhook_id.and_then(|w| Uuid::parse_str(w.trim()).ok());
    let source = match webhook_id {
        Some(id) => sql::source_by_webhook(db, id).await?,
        None => None,
    };
    let Some(source) = source else {
        secrets::verify_secret(secret.to_owned(), DECOY_HASH.to_owned()).await?;
        verifier.failed(from, None);
        return Err(AppError::Unauthorized);
    };
    let presented = secrets::sha256_hex(secret.as_bytes());
    if !ctx.recalls(source.webhook_id, &presented, &source.secret_hash) {
        if !secrets::verify_secret(secret.to_owned(), source.secret_hash.clone()).await? {
            verifier.failed(from, None);
            return Err(AppError::Unauthorized);
        }
        ctx.remember(source.webhook_id, presented, source.secret_hash.clone());
    }
    if source.status != "active" {
        verifier.failed(from, None);
        return Err(AppError::Unauthorized);
    }
    Ok(source)
}

/// Checks one delivery and commits its event (redacted) with the job that processes it. A
/// trace id seen before from this source is answered as received, with nothing written.
pub async fn intake(
    db: &PgPool,
    ctx: &CredentialingContext,
    verifier: &Verifier,
    d: Delivery<'_>,
    body: &[u8],
    from: IpAddr,
) -> AppResult<Received> {
    let source = authenticate(db, ctx, verifier, &d, from).await?;
    let event_type: EventType = d
        .webhook_type
        .ok_or_else(|| Invalid::new("X-WebhookType", "is required"))?
        .parse()?;
    if !source.event_types.iter().any(|t| t == event_type.as_str()) {
        return Err(Invalid::new(
            "X-WebhookType",
            format!("{event_type} is not an event type this source is registered for"),
        )
        .into());
    }
    let trace_id = d
        .trace_id
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Invalid::new("X-TraceId", "is required"))?;
    if trace_id.len() > 200 || trace_id.chars().any(char::is_control) {
        return Err(Invalid::new("X-TraceId", "must be at most 200 printable characters").into());
    }
    let mut payload: Value = serde_json::from_slice(body)
        .map_err(|e| Invalid::new("body", format!("is not JSON: {e}")))?;
    let model = event_type.model();
    model.check(&payload)?;
    // The matching keys are read before redaction takes the SSN and date of birth away;
    // only the SSN's keyed hash outlives this function.
    let provider = rules::provider_keys(model, &payload);
    let facility = rules::facility_keys(model, &payload);
    let occurred = rules::occurred_at(model, &payload);
    let removed = rules::redact(&mut payload);
    let ssn_hash = removed
        .ssn_last4
        .as_deref()
        .map(|l4| secrets::keyed_hash(&ctx.identity_key, SSN_HASH_PURPOSE, l4));
    let now = Utc::now();
    let event = NewEvent {
        id: Uuid::now_v7(),
        source_id: source.id,
        trace_id,
        event_type: event_type.as_str(),
        provider_id: provider.provider_id,
        facility_id: facility.facility_id,
        occurred_at: occurred.unwrap_or(now),
        payload: &payload,
        received_at: now,
    };
    let mut tx = db.begin().await?;
    let (event_id, new) = sql::insert_event(&mut tx, &event).await?;
    if !new {
        tx.rollback().await?;
        metrics::counter!("gateway_credentialing_events_total", "outcome" => "duplicate")
            .increment(1);
        return Ok(Received {
            event_id,
            duplicate: true,
        });
    }
    if let Some(provider_id) = provider.provider_id {
        let npi = provider
            .npi
            .as_deref()
            .and_then(|n| Npi::parse(n).ok())
            .map(|n| n.as_str().to_owned());
        let linked = sql::upsert_provider(
            &mut tx,
            &ProviderSeen {
                provider_id,
                npi: npi.as_deref(),
                first_name: provider.first_name.as_deref(),
                last_name: provider.last_name.as_deref(),
                ssn_last4_hash: ssn_hash.as_deref(),
            },
        )
        .await?;
        if linked.is_none() {
            try_link(
                &mut tx,
                provider_id,
                npi.as_deref(),
                &provider,
                removed.date_of_birth,
                ssn_hash.as_deref(),
                event_id,
            )
            .await?;
        }
    }
    if let Some(facility_id) = facility.facility_id {
        let npi = facility
            .npi
            .as_deref()
            .and_then(|n| Npi::parse(n).ok())
            .map(|n| n.as_str().to_owned());
        let tax_ids: Vec<String> = facility
            .tax_ids
            .iter()
            .filter_map(|t| crate::domain::identity::TaxId::parse(t).ok())
            .map(|t| t.as_str().to_owned())
            .collect();
        sql::upsert_facility(&mut tx, facility_id, npi.as_deref(), &tax_ids).await?;
    }
    jobs::enqueue(
        &mut tx,
        &ctx.retry,
        PROCESS_JOB,
        json!({ "eventId": event_id }),
    )
    .await?;
    tx.commit().await?;
    metrics::counter!("gateway_credentialing_events_total", "outcome" => "stored").increment(1);
    tracing::info!(%event_id, event_type = %event_type, source = %source.id, "credentialing event stored");
    Ok(Received {
        event_id,
        duplicate: false,
    })
}

/// Links a provider seen for the first time (or still unlinked): by NPI, else by name, date
/// of birth and SSN last four. One match only: two candidates wait for ops.
async fn try_link(
    conn: &mut PgConnection,
    provider_id: Uuid,
    npi: Option<&str>,
    keys: &rules::ProviderKeys,
    dob: Option<chrono::NaiveDate>,
    ssn_hash: Option<&str>,
    event_id: Uuid,
) -> AppResult<()> {
    let mut found = None;
    if let Some(npi) = npi
        && let [one] = sql::individuals_by_npi(conn, npi).await?[..]
    {
        found = Some((one, "npi"));
    }
    if found.is_none()
        && let (Some(first), Some(last), Some(dob), Some(hash)) = (
            keys.first_name.as_deref(),
            keys.last_name.as_deref(),
            dob,
            ssn_hash,
        )
        && let [one] = sql::individuals_by_identity(conn, first, last, dob, hash).await?[..]
    {
        found = Some((one, "identity"));
    }
    if let Some((idp_id, by)) = found {
        sql::link_provider(conn, provider_id, idp_id, by).await?;
        let actor = format!("credentialing-event:{event_id}");
        store::audit::record(
            conn,
            store::audit::AuditEntry {
                actor: &actor,
                action: "credentialing.provider.link",
                object_type: "credentialing_provider",
                object_id: &provider_id.to_string(),
                request_id: None,
            },
        )
        .await?;
    }
    Ok(())
}

/// Ops link a provider to a verified individual (or move it to another); the standings of
/// both are computed again at once.
pub async fn link(
    db: &PgPool,
    ctx: &CredentialingContext,
    provider_id: &str,
    idp_id: &str,
    actor: &Actor,
) -> AppResult<views::IndividualView> {
    let provider_id = Uuid::parse_str(provider_id.trim())
        .map_err(|_| Invalid::new("providerId", "must be a UUID"))?;
    let idp = IdpId::parse(idp_id)?.get();
    let mut tx = db.begin().await?;
    if !sql::individual_exists(&mut tx, idp).await? {
        return Err(AppError::NotFound(format!("verified individual {idp}")));
    }
    let Some(old) = sql::link_provider(&mut tx, provider_id, idp, "ops").await? else {
        return Err(AppError::NotFound(format!("provider {provider_id}")));
    };
    store::audit::record(
        &mut tx,
        actor.audit(
            "credentialing.provider.link",
            "credentialing_provider",
            &provider_id.to_string(),
        ),
    )
    .await?;
    let now = Utc::now();
    standing::recompute(&mut tx, ctx, idp, None, now).await?;
    if let Some(old) = old.filter(|o| *o != idp) {
        standing::recompute(&mut tx, ctx, old, None, now).await?;
    }
    tx.commit().await?;
    views::individual(db, idp).await
}
