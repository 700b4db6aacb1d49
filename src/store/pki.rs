//! SQL of the CA: authorities, certificates and CRLs.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::domain::pki::{CertificateCategory, CertificateStatus, KeyUse};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthorityRecord {
    pub id: i64,
    pub role: String,
    pub certificate_der: Vec<u8>,
    pub sealed_key: Option<Vec<u8>>,
}

/// Makes `certificate_der` the active CA of `role`, retiring the previous one.
pub async fn insert_authority(
    conn: &mut PgConnection,
    role: &str,
    subject: &str,
    certificate_der: &[u8],
    sealed_key: Option<&[u8]>,
    not_after: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query("UPDATE ca_authorities SET active = false WHERE role = $1 AND active")
        .bind(role)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "INSERT INTO ca_authorities (role, subject, certificate_der, sealed_key, not_after)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(role)
    .bind(subject)
    .bind(certificate_der)
    .bind(sealed_key)
    .bind(not_after)
    .fetch_one(conn)
    .await
}

/// Serializes installing a CA until the caller's transaction ends: two replicas (or a
/// replica and `ca init`) starting at once must not both install one.
pub async fn lock_installation(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    // Any fixed key works; this one is "ca.install" in ASCII, to be recognizable in pg_locks.
    const KEY: i64 = 0x6361_2e69_6e73_7461;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(KEY)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn active_authority(
    conn: &mut PgConnection,
    role: &str,
) -> Result<Option<AuthorityRecord>, sqlx::Error> {
    sqlx::query_as("SELECT id, role, certificate_der, sealed_key FROM ca_authorities WHERE role = $1 AND active")
        .bind(role)
        .fetch_optional(conn)
        .await
}

pub async fn authority(conn: &mut PgConnection, id: i64) -> Result<AuthorityRecord, sqlx::Error> {
    sqlx::query_as("SELECT id, role, certificate_der, sealed_key FROM ca_authorities WHERE id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
}

/// The next CRL number of `issuer`. The row lock also serializes concurrent publications.
pub async fn next_crl_number(conn: &mut PgConnection, issuer: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE ca_authorities SET crl_number = crl_number + 1 WHERE id = $1 RETURNING crl_number",
    )
    .bind(issuer)
    .fetch_one(conn)
    .await
}

pub async fn insert_crl(
    conn: &mut PgConnection,
    issuer: i64,
    number: i64,
    this_update: DateTime<Utc>,
    next_update: DateTime<Utc>,
    der: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO crls (issuer_id, number, this_update, next_update, der) VALUES ($1, $2, $3, $4, $5)")
        .bind(issuer)
        .bind(number)
        .bind(this_update)
        .bind(next_update)
        .bind(der)
        .execute(conn)
        .await?;
    Ok(())
}

/// The newest CRL of the active CA of `role`: (der, next_update).
pub async fn latest_crl(
    db: &PgPool,
    role: &str,
) -> Result<Option<(Vec<u8>, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.der, c.next_update FROM crls c JOIN ca_authorities a ON a.id = c.issuer_id
         WHERE a.role = $1 AND a.active ORDER BY c.number DESC LIMIT 1",
    )
    .bind(role)
    .fetch_optional(db)
    .await
}

pub async fn revoked_by(
    conn: &mut PgConnection,
    issuer: i64,
) -> Result<Vec<(String, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT serial, revoked_at FROM certificates WHERE issuer_id = $1 AND status = 'revoked' ORDER BY id",
    )
    .bind(issuer)
    .fetch_all(conn)
    .await
}

/// A certificate as the rest of the system sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertificateRecord {
    pub id: i64,
    pub organization_id: i64,
    pub organization_domain: String,
    pub binding: String,
    pub subject_name: String,
    pub category: CertificateCategory,
    pub key_use: KeyUse,
    pub validity_years: i32,
    pub auto_renew: bool,
    pub status: CertificateStatus,
    pub serial: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revocation_reason: Option<String>,
    pub predecessor_id: Option<i64>,
    #[serde(skip)]
    pub issuer_id: Option<i64>,
    #[serde(skip)]
    pub certificate_der: Option<Vec<u8>>,
}

#[derive(sqlx::FromRow)]
struct CertificateRow {
    id: i64,
    organization_id: i64,
    organization_domain: String,
    binding: String,
    subject_name: String,
    category: String,
    key_use: String,
    validity_years: i32,
    auto_renew: bool,
    status: String,
    serial: Option<String>,
    not_before: Option<DateTime<Utc>>,
    not_after: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    revocation_reason: Option<String>,
    predecessor_id: Option<i64>,
    issuer_id: Option<i64>,
    certificate_der: Option<Vec<u8>>,
}

impl TryFrom<CertificateRow> for CertificateRecord {
    type Error = sqlx::Error;
    fn try_from(r: CertificateRow) -> Result<Self, sqlx::Error> {
        let bad = |e: crate::domain::Invalid| sqlx::Error::Decode(Box::new(e));
        Ok(Self {
            id: r.id,
            organization_id: r.organization_id,
            organization_domain: r.organization_domain,
            binding: r.binding,
            subject_name: r.subject_name,
            category: r.category.parse().map_err(bad)?,
            key_use: r.key_use.parse().map_err(bad)?,
            validity_years: r.validity_years,
            auto_renew: r.auto_renew,
            status: r.status.parse().map_err(bad)?,
            serial: r.serial,
            not_before: r.not_before,
            not_after: r.not_after,
            revoked_at: r.revoked_at,
            revocation_reason: r.revocation_reason,
            predecessor_id: r.predecessor_id,
            issuer_id: r.issuer_id,
            certificate_der: r.certificate_der,
        })
    }
}

const SELECT: &str = "SELECT c.id, c.organization_id, o.domain AS organization_domain, c.binding, c.subject_name,
        c.category, c.key_use, c.validity_years, c.auto_renew, c.status, c.serial, c.not_before,
        c.not_after, c.revoked_at, c.revocation_reason, c.predecessor_id, c.issuer_id, c.certificate_der
    FROM certificates c JOIN organizations o ON o.id = c.organization_id";

fn convert(rows: Vec<CertificateRow>) -> Result<Vec<CertificateRecord>, sqlx::Error> {
    rows.into_iter().map(CertificateRecord::try_from).collect()
}

pub struct NewCertificate<'a> {
    pub organization_id: i64,
    pub binding: &'a str,
    pub subject_name: &'a str,
    pub category: CertificateCategory,
    pub key_use: KeyUse,
    pub validity_years: u8,
    pub auto_renew: bool,
    pub predecessor_id: Option<i64>,
}

/// A certificate in state `requested`; `None` when its predecessor already has a successor.
pub async fn insert_request(
    conn: &mut PgConnection,
    n: &NewCertificate<'_>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO certificates (organization_id, binding, subject_name, category, key_use,
                                   validity_years, auto_renew, status, predecessor_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'requested', $8)
         ON CONFLICT (predecessor_id) WHERE predecessor_id IS NOT NULL DO NOTHING
         RETURNING id",
    )
    .bind(n.organization_id)
    .bind(n.binding)
    .bind(n.subject_name)
    .bind(n.category.as_str())
    .bind(n.key_use.as_str())
    .bind(i32::from(n.validity_years))
    .bind(n.auto_renew)
    .bind(n.predecessor_id)
    .fetch_optional(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, id: i64) -> Result<CertificateRecord, sqlx::Error> {
    let sql = format!("{SELECT} WHERE c.id = $1");
    sqlx::query_as::<_, CertificateRow>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(conn)
        .await?
        .try_into()
}

/// Locks a requested certificate for issuance; `None` if it is no longer requested.
pub async fn lock_requested(conn: &mut PgConnection, id: i64) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM certificates WHERE id = $1 AND status = 'requested' FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub struct Issued<'a> {
    pub serial: &'a str,
    pub issuer_id: i64,
    pub certificate_der: &'a [u8],
    pub sealed_key: &'a [u8],
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

pub async fn mark_issued(
    conn: &mut PgConnection,
    id: i64,
    i: &Issued<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE certificates SET status = 'issued', serial = $2, issuer_id = $3, certificate_der = $4,
                sealed_key = $5, not_before = $6, not_after = $7, issued_at = now(), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(i.serial)
    .bind(i.issuer_id)
    .bind(i.certificate_der)
    .bind(i.sealed_key)
    .bind(i.not_before)
    .bind(i.not_after)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a predecessor superseded once its successor is issued.
pub async fn mark_renewed(conn: &mut PgConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE certificates SET status = 'renewed', updated_at = now() WHERE id = $1 AND status = 'issued'")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes a live certificate; `None` when no live certificate has that serial.
pub async fn revoke(
    conn: &mut PgConnection,
    serial: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE certificates SET status = 'revoked', revoked_at = $3, revocation_reason = $2, updated_at = now()
         WHERE serial = $1 AND status IN ('issued', 'renewed') RETURNING id",
    )
    .bind(serial)
    .bind(reason)
    .bind(at)
    .fetch_optional(conn)
    .await
}

/// Live certificates past their end: now expired. Returns (id, organization, binding).
pub async fn expire_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> Result<Vec<(i64, i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE certificates SET status = 'expired', updated_at = now()
         WHERE status IN ('issued', 'renewed') AND not_after <= $1
         RETURNING id, organization_id, binding",
    )
    .bind(now)
    .fetch_all(conn)
    .await
}

/// Issued, auto-renewing certificates within `days` of their end and without a successor.
pub async fn due_for_renewal(
    db: &PgPool,
    now: DateTime<Utc>,
    days: i32,
) -> Result<Vec<CertificateRecord>, sqlx::Error> {
    let sql = format!(
        "{SELECT} WHERE c.status = 'issued' AND c.auto_renew
           AND c.not_after <= $1 + make_interval(days => $2)
           AND NOT EXISTS (SELECT 1 FROM certificates s WHERE s.predecessor_id = c.id)
         ORDER BY c.not_after"
    );
    convert(
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(days)
            .fetch_all(db)
            .await?,
    )
}

/// Whether the organization still has a live domain-bound certificate.
pub async fn has_live_domain_certificate(
    conn: &mut PgConnection,
    organization_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM certificates WHERE organization_id = $1 AND binding = 'domain'
                        AND status = 'issued' AND not_after > $2)",
    )
    .bind(organization_id)
    .bind(now)
    .fetch_one(conn)
    .await
}

pub struct Filter<'a> {
    pub organization: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub serial: Option<&'a str>,
}

pub async fn list(db: &PgPool, f: &Filter<'_>) -> Result<Vec<CertificateRecord>, sqlx::Error> {
    let sql = format!(
        "{SELECT} WHERE ($1::text IS NULL OR lower(o.domain) = lower($1))
           AND ($2::text IS NULL OR lower(c.subject_name) = lower($2))
           AND ($3::text IS NULL OR c.serial = $3)
         ORDER BY c.id"
    );
    convert(
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(f.organization)
            .bind(f.subject)
            .bind(f.serial)
            .fetch_all(db)
            .await?,
    )
}

/// The best live certificate for `address` and `key_use`: address-bound first, then the
/// domain-bound one of its domain; the newest of each. Returns it with its sealed key.
pub async fn live_for_address(
    db: &PgPool,
    address: &str,
    domain: &str,
    key_use: KeyUse,
    now: DateTime<Utc>,
) -> Result<Option<(Vec<u8>, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT certificate_der, sealed_key FROM certificates
         WHERE status = 'issued' AND not_before <= $4 AND not_after > $4
           AND key_use IN ($3, 'dual')
           AND ((binding = 'address' AND lower(subject_name) = lower($1))
             OR (binding = 'domain' AND lower(subject_name) = lower($2)))
         ORDER BY (binding = 'address') DESC, (key_use = $3) DESC, not_after DESC
         LIMIT 1",
    )
    .bind(address)
    .bind(domain)
    .bind(key_use.as_str())
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Every live certificate that can decrypt for `address`: its own and its domain's, newest
/// first (a peer may have encrypted to either, or to one about to be replaced).
pub async fn live_decryption_keys(
    db: &PgPool,
    address: &str,
    domain: &str,
    now: DateTime<Utc>,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT certificate_der, sealed_key FROM certificates
         WHERE status = 'issued' AND not_before <= $3 AND not_after > $3
           AND key_use IN ('encryption', 'dual')
           AND ((binding = 'address' AND lower(subject_name) = lower($1))
             OR (binding = 'domain' AND lower(subject_name) = lower($2)))
         ORDER BY (binding = 'address') DESC, not_after DESC
         LIMIT 8",
    )
    .bind(address)
    .bind(domain)
    .bind(now)
    .fetch_all(db)
    .await
}

pub async fn sealed_key(db: &PgPool, id: i64) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT sealed_key FROM certificates WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
}
