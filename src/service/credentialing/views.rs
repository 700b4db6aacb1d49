//! What ops read: an individual's standing with its redacted timeline and the addresses it
//! affects, the individuals in warning or restricted, and providers waiting for a link.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::Invalid;
use crate::domain::credentialing::Standing;
use crate::domain::identity::IdpId;
use crate::error::{AppError, AppResult};
use crate::store::credentialing as sql;

/// Events shown in a timeline at most (the newest).
pub const TIMELINE_MAX: i64 = 200;
/// Rows of a listing at most.
pub const LIST_MAX: i64 = 1000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub trace_id: String,
    pub provider_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub processed: bool,
    /// The body as stored: without SSN, dates of birth or screenshots.
    pub payload: Value,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fact {
    pub provider_id: Uuid,
    pub key: String,
    pub effect: String,
    pub reason: String,
    pub occurred_at: DateTime<Utc>,
    pub event_id: Uuid,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub old: String,
    pub new: String,
    pub reason: String,
    pub event_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedAddress {
    pub address: String,
    pub status: String,
    /// Set while credentialing holds the address suspended.
    pub suspension_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndividualView {
    pub idp_id: i64,
    pub standing: String,
    pub reason: String,
    pub changed_at: Option<DateTime<Utc>>,
    pub providers: Vec<Uuid>,
    pub facts: Vec<Fact>,
    pub changes: Vec<Change>,
    pub addresses: Vec<AffectedAddress>,
    pub timeline: Vec<TimelineEvent>,
}

pub async fn individual(db: &PgPool, idp_id: i64) -> AppResult<IndividualView> {
    let mut conn = db.acquire().await?;
    if !sql::individual_exists(&mut conn, idp_id).await? {
        return Err(AppError::NotFound(format!("verified individual {idp_id}")));
    }
    let standing = sql::standing(db, idp_id).await?;
    let providers = sql::providers_of(db, idp_id).await?;
    let facts = sql::facts_of_individual(&mut conn, idp_id).await?;
    let changes = sql::changes(db, idp_id, TIMELINE_MAX).await?;
    let addresses = sql::addresses_of(&mut conn, idp_id).await?;
    let events = sql::events_of_individual(db, idp_id, TIMELINE_MAX).await?;
    Ok(IndividualView {
        idp_id,
        standing: standing
            .as_ref()
            .map_or(Standing::Good.as_str().to_owned(), |s| s.standing.clone()),
        reason: standing
            .as_ref()
            .map_or_else(|| "no facts".to_owned(), |s| s.reason.clone()),
        changed_at: standing.as_ref().map(|s| s.changed_at),
        providers: providers.iter().map(|p| p.provider_id).collect(),
        facts: facts
            .into_iter()
            .map(|f| Fact {
                provider_id: f.provider_id,
                key: f.fact_key,
                effect: f.effect,
                reason: f.reason,
                occurred_at: f.occurred_at,
                event_id: f.event_id,
            })
            .collect(),
        changes: changes
            .into_iter()
            .map(|c| Change {
                old: c.old,
                new: c.new,
                reason: c.reason,
                event_id: c.event_id,
                at: c.at,
            })
            .collect(),
        addresses: addresses
            .into_iter()
            .map(|a| AffectedAddress {
                address: a.address,
                status: a.status,
                suspension_reason: a.suspension_reason,
            })
            .collect(),
        timeline: events
            .into_iter()
            .map(|e| TimelineEvent {
                event_id: e.id,
                event_type: e.event_type,
                trace_id: e.trace_id,
                provider_id: e.provider_id,
                occurred_at: e.occurred_at,
                received_at: e.received_at,
                processed: e.processed_at.is_some(),
                payload: e.payload,
            })
            .collect(),
    })
}

pub async fn individual_by_text(db: &PgPool, idp_id: &str) -> AppResult<IndividualView> {
    individual(db, IdpId::parse(idp_id)?.get()).await
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StandingSummary {
    pub idp_id: i64,
    pub standing: String,
    pub reason: String,
    pub event_id: Option<Uuid>,
    pub changed_at: DateTime<Utc>,
}

/// Individuals in the given standings (`warning` and `restricted` when none is given).
pub async fn standings(db: &PgPool, wanted: Option<&str>) -> AppResult<Vec<StandingSummary>> {
    let wanted: Vec<String> = match wanted.map(str::trim).filter(|w| !w.is_empty()) {
        None => vec!["warning".into(), "restricted".into()],
        Some(w) => {
            let s = Standing::parse(w)
                .ok_or_else(|| Invalid::new("standing", "must be good, warning or restricted"))?;
            vec![s.as_str().to_owned()]
        }
    };
    Ok(sql::standings_in(db, &wanted, LIST_MAX)
        .await?
        .into_iter()
        .map(|s| StandingSummary {
            idp_id: s.idp_id,
            standing: s.standing,
            reason: s.reason,
            event_id: s.event_id,
            changed_at: s.changed_at,
        })
        .collect())
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnlinkedProvider {
    pub provider_id: Uuid,
    pub npi: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub first_seen_at: DateTime<Utc>,
}

pub async fn unlinked(db: &PgPool) -> AppResult<Vec<UnlinkedProvider>> {
    Ok(sql::unlinked_providers(db, LIST_MAX)
        .await?
        .into_iter()
        .map(|p| UnlinkedProvider {
            provider_id: p.provider_id,
            npi: p.npi.map(|n| n.trim().to_owned()),
            first_name: p.first_name,
            last_name: p.last_name,
            first_seen_at: p.first_seen_at,
        })
        .collect())
}
