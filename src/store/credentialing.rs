//! Credentialing: sources, events, provider links, facts, standings and the suspensions they
//! cause on Direct addresses.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

/// The status a Direct address has while its holder is restricted.
pub const ADDRESS_SUSPENDED: &str = "suspended";

#[derive(Debug, Clone, FromRow)]
pub struct SourceRow {
    pub id: Uuid,
    pub name: String,
    pub webhook_id: Uuid,
    pub secret_hash: String,
    pub event_types: Vec<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_source(conn: &mut PgConnection, s: &SourceRow) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO credentialing_sources (id, name, webhook_id, secret_hash, event_types, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (webhook_id) DO NOTHING",
    )
    .bind(s.id)
    .bind(&s.name)
    .bind(s.webhook_id)
    .bind(&s.secret_hash)
    .bind(&s.event_types)
    .bind(&s.status)
    .bind(s.created_at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

const SOURCE_COLUMNS: &str = "id, name, webhook_id, secret_hash, event_types, status, created_at";

pub async fn source_by_webhook(
    db: &PgPool,
    webhook_id: Uuid,
) -> Result<Option<SourceRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SOURCE_COLUMNS} FROM credentialing_sources WHERE webhook_id = $1"
    )))
    .bind(webhook_id)
    .fetch_optional(db)
    .await
}

pub async fn sources(db: &PgPool) -> Result<Vec<SourceRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SOURCE_COLUMNS} FROM credentialing_sources ORDER BY created_at, id"
    )))
    .fetch_all(db)
    .await
}

pub struct NewEvent<'a> {
    pub id: Uuid,
    pub source_id: Uuid,
    pub trace_id: &'a str,
    pub event_type: &'a str,
    pub provider_id: Option<Uuid>,
    pub facility_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub payload: &'a Value,
    pub received_at: DateTime<Utc>,
}

/// Inserts the event unless its trace id was seen from this source; returns the id of the
/// stored event and whether it is new.
pub async fn insert_event(
    conn: &mut PgConnection,
    e: &NewEvent<'_>,
) -> Result<(Uuid, bool), sqlx::Error> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO credentialing_events
           (id, source_id, trace_id, event_type, provider_id, facility_id, occurred_at, payload, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (source_id, trace_id) DO NOTHING RETURNING id",
    )
    .bind(e.id)
    .bind(e.source_id)
    .bind(e.trace_id)
    .bind(e.event_type)
    .bind(e.provider_id)
    .bind(e.facility_id)
    .bind(e.occurred_at)
    .bind(e.payload)
    .bind(e.received_at)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = inserted {
        return Ok((id, true));
    }
    let id = sqlx::query_scalar(
        "SELECT id FROM credentialing_events WHERE source_id = $1 AND trace_id = $2",
    )
    .bind(e.source_id)
    .bind(e.trace_id)
    .fetch_one(conn)
    .await?;
    Ok((id, false))
}

#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub id: Uuid,
    pub trace_id: String,
    pub event_type: String,
    pub provider_id: Option<Uuid>,
    pub facility_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub payload: Value,
}

const EVENT_COLUMNS: &str = "id, trace_id, event_type, provider_id, facility_id, occurred_at, received_at, processed_at, payload";

pub async fn event(conn: &mut PgConnection, id: Uuid) -> Result<Option<EventRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EVENT_COLUMNS} FROM credentialing_events WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn mark_processed(
    conn: &mut PgConnection,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE credentialing_events SET processed_at = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// The events of the providers linked to an individual, newest first.
pub async fn events_of_individual(
    db: &PgPool,
    idp_id: i64,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {EVENT_COLUMNS} FROM credentialing_events
         WHERE provider_id IN (SELECT provider_id FROM credentialing_providers WHERE idp_id = $1)
         ORDER BY occurred_at DESC, received_at DESC LIMIT $2"
    )))
    .bind(idp_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

// ---- providers and facilities ------------------------------------------------------------

pub struct ProviderSeen<'a> {
    pub provider_id: Uuid,
    pub npi: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub ssn_last4_hash: Option<&'a str>,
}

/// Records a provider (keeping what earlier events told when this one tells less) and returns
/// the individual it is linked to.
pub async fn upsert_provider(
    conn: &mut PgConnection,
    p: &ProviderSeen<'_>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO credentialing_providers (provider_id, npi, first_name, last_name, ssn_last4_hash)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (provider_id) DO UPDATE SET
           npi = COALESCE(EXCLUDED.npi, credentialing_providers.npi),
           first_name = COALESCE(EXCLUDED.first_name, credentialing_providers.first_name),
           last_name = COALESCE(EXCLUDED.last_name, credentialing_providers.last_name),
           ssn_last4_hash = COALESCE(EXCLUDED.ssn_last4_hash, credentialing_providers.ssn_last4_hash)
         RETURNING idp_id",
    )
    .bind(p.provider_id)
    .bind(p.npi)
    .bind(p.first_name)
    .bind(p.last_name)
    .bind(p.ssn_last4_hash)
    .fetch_one(conn)
    .await
}

/// The verified individuals with this NPI (more than one: ambiguous, no automatic link).
pub async fn individuals_by_npi(
    conn: &mut PgConnection,
    npi: &str,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT idp_id FROM verified_individuals WHERE npi = $1 LIMIT 2")
        .bind(npi)
        .fetch_all(conn)
        .await
}

pub async fn individuals_by_identity(
    conn: &mut PgConnection,
    first: &str,
    last: &str,
    dob: NaiveDate,
    ssn_last4_hash: &str,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT idp_id FROM verified_individuals
         WHERE lower(first_name) = lower($1) AND lower(last_name) = lower($2)
           AND date_of_birth = $3 AND ssn_last4_hash = $4 LIMIT 2",
    )
    .bind(first)
    .bind(last)
    .bind(dob)
    .bind(ssn_last4_hash)
    .fetch_all(conn)
    .await
}

pub async fn individual_exists(conn: &mut PgConnection, idp_id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM verified_individuals WHERE idp_id = $1)")
        .bind(idp_id)
        .fetch_one(conn)
        .await
}

/// Links a provider; returns the individual it was linked to before (if another).
pub async fn link_provider(
    conn: &mut PgConnection,
    provider_id: Uuid,
    idp_id: i64,
    by: &str,
) -> Result<Option<Option<i64>>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE credentialing_providers p SET idp_id = $2, linked_by = $3, linked_at = now()
         FROM (SELECT provider_id, idp_id AS old FROM credentialing_providers
               WHERE provider_id = $1 FOR UPDATE) o
         WHERE p.provider_id = o.provider_id
         RETURNING o.old",
    )
    .bind(provider_id)
    .bind(idp_id)
    .bind(by)
    .fetch_optional(conn)
    .await
}

/// Locks a provider's row (orders the processing of its events) and returns its link.
pub async fn lock_provider(
    conn: &mut PgConnection,
    provider_id: Uuid,
) -> Result<Option<Option<i64>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT idp_id FROM credentialing_providers WHERE provider_id = $1 FOR UPDATE",
    )
    .bind(provider_id)
    .fetch_optional(conn)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct ProviderRow {
    pub provider_id: Uuid,
    pub idp_id: Option<i64>,
    pub linked_by: Option<String>,
    pub npi: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub first_seen_at: DateTime<Utc>,
}

pub async fn unlinked_providers(db: &PgPool, limit: i64) -> Result<Vec<ProviderRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT provider_id, idp_id, linked_by, npi, first_name, last_name, first_seen_at
         FROM credentialing_providers WHERE idp_id IS NULL ORDER BY first_seen_at, provider_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn providers_of(db: &PgPool, idp_id: i64) -> Result<Vec<ProviderRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT provider_id, idp_id, linked_by, npi, first_name, last_name, first_seen_at
         FROM credentialing_providers WHERE idp_id = $1 ORDER BY first_seen_at, provider_id",
    )
    .bind(idp_id)
    .fetch_all(db)
    .await
}

/// Records a facility and links it to the one verified organization with its NPI, else with
/// one of its tax ids, when it is not linked yet. Two candidates: no link (ops decide).
pub async fn upsert_facility(
    conn: &mut PgConnection,
    facility_id: Uuid,
    npi: Option<&str>,
    tax_ids: &[String],
) -> Result<(), sqlx::Error> {
    let linked: Option<Option<i64>> = sqlx::query_scalar(
        "INSERT INTO credentialing_facilities (facility_id) VALUES ($1)
         ON CONFLICT (facility_id) DO UPDATE SET facility_id = EXCLUDED.facility_id
         RETURNING certified_id",
    )
    .bind(facility_id)
    .fetch_optional(&mut *conn)
    .await?;
    if linked.flatten().is_some() {
        return Ok(());
    }
    let mut found = None;
    if let Some(npi) = npi {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT certified_id FROM verified_organizations WHERE npi = $1 LIMIT 2",
        )
        .bind(npi)
        .fetch_all(&mut *conn)
        .await?;
        if let [one] = ids[..] {
            found = Some((one, "npi"));
        }
    }
    if found.is_none() && !tax_ids.is_empty() {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT certified_id FROM verified_organizations WHERE tax_id = ANY($1) LIMIT 2",
        )
        .bind(tax_ids)
        .fetch_all(&mut *conn)
        .await?;
        if let [one] = ids[..] {
            found = Some((one, "tax_id"));
        }
    }
    if let Some((certified_id, by)) = found {
        sqlx::query(
            "UPDATE credentialing_facilities SET certified_id = $2, linked_by = $3
             WHERE facility_id = $1 AND certified_id IS NULL",
        )
        .bind(facility_id)
        .bind(certified_id)
        .bind(by)
        .execute(conn)
        .await?;
    }
    Ok(())
}

// ---- facts and standings ------------------------------------------------------------------

pub struct NewFact<'a> {
    pub provider_id: Uuid,
    pub key: &'a str,
    pub effect: &'a str,
    pub reason: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub event_id: Uuid,
}

/// Stores a fact unless the one it would replace happened later (by the events' own times,
/// then by arrival): the result does not depend on the order events are processed in.
pub async fn upsert_fact(conn: &mut PgConnection, f: &NewFact<'_>) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO credentialing_facts (provider_id, fact_key, effect, reason, occurred_at, received_at, event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (provider_id, fact_key) DO UPDATE SET
           effect = EXCLUDED.effect, reason = EXCLUDED.reason, occurred_at = EXCLUDED.occurred_at,
           received_at = EXCLUDED.received_at, event_id = EXCLUDED.event_id
         WHERE (credentialing_facts.occurred_at, credentialing_facts.received_at)
               <= (EXCLUDED.occurred_at, EXCLUDED.received_at)",
    )
    .bind(f.provider_id)
    .bind(f.key)
    .bind(f.effect)
    .bind(f.reason)
    .bind(f.occurred_at)
    .bind(f.received_at)
    .bind(f.event_id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct FactRow {
    pub provider_id: Uuid,
    pub fact_key: String,
    pub effect: String,
    pub reason: String,
    pub occurred_at: DateTime<Utc>,
    pub event_id: Uuid,
}

pub async fn facts_of_individual(
    conn: &mut PgConnection,
    idp_id: i64,
) -> Result<Vec<FactRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT f.provider_id, f.fact_key, f.effect, f.reason, f.occurred_at, f.event_id
         FROM credentialing_facts f JOIN credentialing_providers p ON p.provider_id = f.provider_id
         WHERE p.idp_id = $1 ORDER BY f.occurred_at, f.provider_id, f.fact_key",
    )
    .bind(idp_id)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct StandingRow {
    pub idp_id: i64,
    pub standing: String,
    pub reason: String,
    pub event_id: Option<Uuid>,
    pub changed_at: DateTime<Utc>,
}

/// The individual's standing row, created `good` if absent, locked for this transaction: the
/// recomputations of one individual run one after the other.
pub async fn lock_standing(
    conn: &mut PgConnection,
    idp_id: i64,
) -> Result<StandingRow, sqlx::Error> {
    sqlx::query(
        "INSERT INTO credentialing_standings (idp_id, standing, reason) VALUES ($1, 'good', 'no facts')
         ON CONFLICT (idp_id) DO NOTHING",
    )
    .bind(idp_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query_as(
        "SELECT idp_id, standing, reason, event_id, changed_at FROM credentialing_standings
         WHERE idp_id = $1 FOR UPDATE",
    )
    .bind(idp_id)
    .fetch_one(conn)
    .await
}

pub async fn set_standing(
    conn: &mut PgConnection,
    idp_id: i64,
    old: &str,
    new: &str,
    reason: &str,
    event_id: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE credentialing_standings SET standing = $2, reason = $3, event_id = $4, changed_at = $5
         WHERE idp_id = $1",
    )
    .bind(idp_id)
    .bind(new)
    .bind(reason)
    .bind(event_id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    if old != new {
        sqlx::query(
            "INSERT INTO credentialing_standing_changes (idp_id, old, new, reason, event_id, at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(idp_id)
        .bind(old)
        .bind(new)
        .bind(reason)
        .bind(event_id)
        .bind(at)
        .execute(conn)
        .await?;
    }
    Ok(())
}

pub async fn standing(db: &PgPool, idp_id: i64) -> Result<Option<StandingRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT idp_id, standing, reason, event_id, changed_at FROM credentialing_standings WHERE idp_id = $1",
    )
    .bind(idp_id)
    .fetch_optional(db)
    .await
}

pub async fn standings_in(
    db: &PgPool,
    wanted: &[String],
    limit: i64,
) -> Result<Vec<StandingRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT idp_id, standing, reason, event_id, changed_at FROM credentialing_standings
         WHERE standing = ANY($1) ORDER BY changed_at DESC, idp_id LIMIT $2",
    )
    .bind(wanted)
    .bind(limit)
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct ChangeRow {
    pub old: String,
    pub new: String,
    pub reason: String,
    pub event_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

pub async fn changes(db: &PgPool, idp_id: i64, limit: i64) -> Result<Vec<ChangeRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT old, new, reason, event_id, at FROM credentialing_standing_changes
         WHERE idp_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(idp_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The restriction that stops provisioning for an individual, if any.
pub async fn restriction(
    conn: &mut PgConnection,
    idp_id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT reason FROM credentialing_standings WHERE idp_id = $1 AND standing = 'restricted'",
    )
    .bind(idp_id)
    .fetch_optional(conn)
    .await
}

// ---- addresses ---------------------------------------------------------------------------

/// Suspends the individual's active addresses; returns the ids suspended now. Addresses
/// already suspended get the new reason.
pub async fn suspend_addresses(
    conn: &mut PgConnection,
    idp_id: i64,
    reason: &str,
    event_id: Option<Uuid>,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query("UPDATE credentialing_suspensions SET reason = $2 WHERE idp_id = $1")
        .bind(idp_id)
        .bind(reason)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "WITH s AS (
           UPDATE direct_addresses SET status = 'suspended', updated_at = now()
           WHERE idp_id = $1 AND status = 'active' RETURNING id)
         INSERT INTO credentialing_suspensions (address_id, idp_id, reason, event_id)
         SELECT id, $1, $2, $3 FROM s
         ON CONFLICT (address_id) DO UPDATE SET reason = EXCLUDED.reason, event_id = EXCLUDED.event_id
         RETURNING address_id",
    )
    .bind(idp_id)
    .bind(reason)
    .bind(event_id)
    .fetch_all(conn)
    .await
}

/// Gives back the addresses this individual's restriction suspended and that are still
/// suspended; an address ops disabled meanwhile stays as ops left it. Returns the ids restored.
pub async fn restore_addresses(
    conn: &mut PgConnection,
    idp_id: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH r AS (DELETE FROM credentialing_suspensions WHERE idp_id = $1 RETURNING address_id)
         UPDATE direct_addresses SET status = 'active', updated_at = now()
         WHERE id IN (SELECT address_id FROM r) AND status = 'suspended'
         RETURNING id",
    )
    .bind(idp_id)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct AddressRow {
    pub id: i64,
    pub address: String,
    pub status: String,
    pub suspension_reason: Option<String>,
    pub reseller_id: Uuid,
}

pub async fn addresses_of(
    conn: &mut PgConnection,
    idp_id: i64,
) -> Result<Vec<AddressRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.username || '@' || a.domain AS address, a.status,
                s.reason AS suspension_reason, o.reseller_id
         FROM direct_addresses a JOIN organizations o ON o.id = a.organization_id
         LEFT JOIN credentialing_suspensions s ON s.address_id = a.id
         WHERE a.idp_id = $1 ORDER BY a.id",
    )
    .bind(idp_id)
    .fetch_all(conn)
    .await
}

/// Why an address is suspended, when credentialing suspended it.
pub async fn suspension_of(db: &PgPool, address: &str) -> Result<Option<String>, sqlx::Error> {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    sqlx::query_scalar(
        "SELECT s.reason FROM credentialing_suspensions s JOIN direct_addresses a ON a.id = s.address_id
         WHERE lower(a.domain) = lower($1) AND lower(a.username) = lower($2) AND a.status = 'suspended'",
    )
    .bind(domain)
    .bind(local)
    .fetch_optional(db)
    .await
}
