//! SQL of Trusted-Agent certificate applications: the TA ↔ organization links, the
//! applications, and the idempotency rows of their notification e-mails.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

// ---- trusted agents --------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedAgentLink {
    pub client_id: Uuid,
    pub client_name: String,
    pub organization_id: i64,
    pub organization_domain: String,
    pub organization_name: String,
    pub linked_at: DateTime<Utc>,
}

const LINK: &str = "SELECT t.client_id, c.name AS client_name, t.organization_id, o.domain AS organization_domain,
        o.name AS organization_name, t.linked_at
    FROM trusted_agents t JOIN api_clients c ON c.id = t.client_id JOIN organizations o ON o.id = t.organization_id";

/// Links (or re-links) a trusted agent to an organization.
pub async fn link(
    conn: &mut PgConnection,
    client_id: Uuid,
    organization_id: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO trusted_agents (client_id, organization_id, linked_at) VALUES ($1, $2, $3)
         ON CONFLICT (client_id) DO UPDATE SET organization_id = excluded.organization_id, linked_at = excluded.linked_at",
    )
    .bind(client_id)
    .bind(organization_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn link_of(
    conn: &mut PgConnection,
    client_id: Uuid,
) -> Result<Option<TrustedAgentLink>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{LINK} WHERE t.client_id = $1"
    )))
    .bind(client_id)
    .fetch_optional(conn)
    .await
}

pub async fn links(db: &PgPool) -> Result<Vec<TrustedAgentLink>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{LINK} ORDER BY o.domain, t.linked_at"
    )))
    .fetch_all(db)
    .await
}

// ---- applications ----------------------------------------------------------------------------

pub struct NewApplication<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub trusted_agent_id: Uuid,
    pub organization_id: i64,
    pub trusted_agent_name: &'a str,
    pub organization_name: &'a str,
    pub hipaa_type: i16,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub city: &'a str,
    pub state: &'a str,
    pub country: &'a str,
    pub validity_years: i32,
    pub certificate_name: &'a str,
    pub address: Option<&'a str>,
    pub address_password_hash: Option<&'a str>,
    pub auto_renew: bool,
    pub identity_attestation: &'a str,
    pub notification_email: &'a str,
    pub notes: Option<&'a str>,
    pub submitted_at: DateTime<Utc>,
}

/// `false` when another open application holds the address (one committed first).
pub async fn insert(conn: &mut PgConnection, a: &NewApplication<'_>) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO certificate_applications (id, kind, trusted_agent_id, organization_id, trusted_agent_name,
             organization_name, hipaa_type, first_name, last_name, city, state, country, validity_years,
             certificate_name, address, address_password_hash, auto_renew, identity_attestation,
             notification_email, notes, status, submitted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                 'Submitted', $21)
         ON CONFLICT (lower(address)) WHERE address IS NOT NULL AND status <> 'Rejected' DO NOTHING",
    )
    .bind(a.id)
    .bind(a.kind)
    .bind(a.trusted_agent_id)
    .bind(a.organization_id)
    .bind(a.trusted_agent_name)
    .bind(a.organization_name)
    .bind(a.hipaa_type)
    .bind(a.first_name)
    .bind(a.last_name)
    .bind(a.city)
    .bind(a.state)
    .bind(a.country)
    .bind(a.validity_years)
    .bind(a.certificate_name)
    .bind(a.address)
    .bind(a.address_password_hash)
    .bind(a.auto_renew)
    .bind(a.identity_attestation)
    .bind(a.notification_email)
    .bind(a.notes)
    .bind(a.submitted_at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Whether the address exists, or an open application holds it.
pub async fn address_taken(
    conn: &mut PgConnection,
    username: &str,
    domain: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM direct_addresses WHERE lower(domain) = lower($2) AND lower(username) = lower($1))
             OR EXISTS (SELECT 1 FROM certificate_applications
                        WHERE lower(address) = lower($1 || '@' || $2) AND status <> 'Rejected')",
    )
    .bind(username)
    .bind(domain)
    .fetch_one(conn)
    .await
}

/// An application with what its status is read from: its current certificate and address.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApplicationRow {
    pub id: Uuid,
    pub kind: String,
    pub trusted_agent_id: Uuid,
    pub organization_id: i64,
    pub organization_domain: String,
    pub trusted_agent_name: String,
    pub organization_name: String,
    pub hipaa_type: i16,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub city: String,
    pub state: String,
    pub country: String,
    pub validity_years: i32,
    pub certificate_name: String,
    pub address: Option<String>,
    pub address_password_hash: Option<String>,
    pub auto_renew: bool,
    pub identity_attestation: String,
    pub notification_email: String,
    pub notes: Option<String>,
    pub status: String,
    pub submitted_at: DateTime<Utc>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub reviewed_by: Option<String>,
    pub review_reason: Option<String>,
    pub certificate_id: Option<i64>,
    pub address_id: Option<i64>,
    pub certificate_issued_at: Option<DateTime<Utc>>,
    pub provisioned_at: Option<DateTime<Utc>>,
    pub certificate_status: Option<String>,
    pub serial: Option<String>,
    pub not_after: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub certificate_updated_at: Option<DateTime<Utc>>,
    pub certificate_auto_renew: Option<bool>,
    pub address_status: Option<String>,
}

const SELECT: &str = "SELECT a.id, a.kind, a.trusted_agent_id, a.organization_id, o.domain AS organization_domain,
        a.trusted_agent_name, a.organization_name, a.hipaa_type, a.first_name, a.last_name, a.city, a.state,
        a.country, a.validity_years, a.certificate_name, a.address, a.address_password_hash, a.auto_renew,
        a.identity_attestation, a.notification_email, a.notes, a.status, a.submitted_at, a.reviewed_at,
        a.reviewed_by, a.review_reason, a.certificate_id, a.address_id, a.certificate_issued_at,
        a.provisioned_at, c.status AS certificate_status, c.serial, c.not_after, c.revoked_at,
        c.updated_at AS certificate_updated_at, c.auto_renew AS certificate_auto_renew,
        d.status AS address_status
    FROM certificate_applications a
    JOIN organizations o ON o.id = a.organization_id
    LEFT JOIN certificates c ON c.id = a.certificate_id
    LEFT JOIN direct_addresses d ON d.id = a.address_id";

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE a.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub struct Filter<'a> {
    /// Only applications of this organization (a TA's view).
    pub organization_id: Option<i64>,
    pub address: Option<&'a str>,
    /// One of Submitted, Approved, Rejected (the stored decision).
    pub decision: Option<&'a str>,
    pub limit: i64,
}

pub async fn list(db: &PgPool, f: &Filter<'_>) -> Result<Vec<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ($1::bigint IS NULL OR a.organization_id = $1)
           AND ($2::text IS NULL OR lower(a.address) = lower($2))
           AND ($3::text IS NULL OR a.status = $3)
         ORDER BY a.submitted_at, a.id LIMIT $4"
    )))
    .bind(f.organization_id)
    .bind(f.address)
    .bind(f.decision)
    .bind(f.limit)
    .fetch_all(db)
    .await
}

/// Records an officer's decision if the application is still Submitted: the conditional
/// update is what lets only one of two racing officers decide. `false`: not Submitted (or
/// unknown).
pub async fn decide(
    conn: &mut PgConnection,
    id: Uuid,
    decision: &str,
    by: &str,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE certificate_applications SET status = $2, reviewed_by = $3, review_reason = $4, reviewed_at = $5
         WHERE id = $1 AND status = 'Submitted'",
    )
    .bind(id)
    .bind(decision)
    .bind(by)
    .bind(reason)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn exists(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM certificate_applications WHERE id = $1)")
        .bind(id)
        .fetch_one(conn)
        .await
}

/// A pending Direct address for an approved application; `None` when the address exists.
pub async fn insert_pending_address(
    conn: &mut PgConnection,
    organization_id: i64,
    username: &str,
    domain: &str,
    first_name: Option<&str>,
    last_name: Option<&str>,
    password_hash: Option<&str>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO direct_addresses (organization_id, username, domain, user_type, first_name, last_name,
             password_hash, status)
         VALUES ($1, $2, $3, 'SMTP', $4, $5, $6, 'pending')
         ON CONFLICT (lower(domain), lower(username)) DO NOTHING RETURNING id",
    )
    .bind(organization_id)
    .bind(username)
    .bind(domain)
    .bind(first_name)
    .bind(last_name)
    .bind(password_hash)
    .fetch_optional(conn)
    .await
}

pub async fn set_requested(
    conn: &mut PgConnection,
    id: Uuid,
    certificate_id: i64,
    address_id: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE certificate_applications SET certificate_id = $2, address_id = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(certificate_id)
    .bind(address_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// After certificate `id` is issued: the application whose current certificate it is, or
/// whose current certificate it renews, takes it as current. Returns (application, address
/// id, whether it was provisioned before).
pub async fn certificate_issued(
    conn: &mut PgConnection,
    id: i64,
    predecessor: Option<i64>,
    at: DateTime<Utc>,
) -> Result<Option<(Uuid, Option<i64>, bool)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE certificate_applications SET certificate_id = $1,
                certificate_issued_at = coalesce(certificate_issued_at, $3)
         WHERE status = 'Approved'
           AND (certificate_id = $1 OR ($2::bigint IS NOT NULL AND certificate_id = $2))
         RETURNING id, address_id, provisioned_at IS NOT NULL",
    )
    .bind(id)
    .bind(predecessor)
    .bind(at)
    .fetch_optional(conn)
    .await
}

/// The address goes live and the application is provisioned (the first time only).
pub async fn provision(
    conn: &mut PgConnection,
    id: Uuid,
    address_id: Option<i64>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if let Some(address) = address_id {
        sqlx::query(
            "UPDATE direct_addresses SET status = 'active', updated_at = now() WHERE id = $1 AND status = 'pending'",
        )
        .bind(address)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "UPDATE certificate_applications SET provisioned_at = coalesce(provisioned_at, $2) WHERE id = $1",
    )
    .bind(id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

// ---- notifications ---------------------------------------------------------------------------

/// The idempotency key of one e-mail: `true` when this call made it (queue the job then).
pub async fn claim_notification(
    conn: &mut PgConnection,
    id: Uuid,
    step: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO certificate_application_notifications (application_id, step) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(step)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// What one e-mail needs: (notification address, first name), unless it was sent already.
pub async fn unsent_notification(
    db: &PgPool,
    id: Uuid,
    step: &str,
) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.notification_email, a.first_name
         FROM certificate_application_notifications n JOIN certificate_applications a ON a.id = n.application_id
         WHERE n.application_id = $1 AND n.step = $2 AND n.sent_at IS NULL",
    )
    .bind(id)
    .bind(step)
    .fetch_optional(db)
    .await
}

pub async fn notification_sent(
    db: &PgPool,
    id: Uuid,
    step: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE certificate_application_notifications SET sent_at = $3
         WHERE application_id = $1 AND step = $2 AND sent_at IS NULL",
    )
    .bind(id)
    .bind(step)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}
