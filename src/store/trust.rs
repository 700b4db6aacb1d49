//! Trust anchors, peer certificates, trust bundles and the CRL cache.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AnchorRow {
    pub id: i64,
    pub domain: String,
    pub fingerprint: String,
    pub subject: String,
    pub not_after: DateTime<Utc>,
    pub source: String,
    pub bundle_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// A certificate to store, described.
pub struct NewCertificate<'a> {
    pub domain: &'a str,
    pub der: &'a [u8],
    pub fingerprint: &'a str,
    pub subject: &'a str,
    pub not_after: DateTime<Utc>,
}

/// Adds an anchor; `None` when the domain (or bundle) has it already.
pub async fn insert_anchor(
    conn: &mut PgConnection,
    c: &NewCertificate<'_>,
    bundle_id: Option<i64>,
) -> Result<Option<AnchorRow>, sqlx::Error> {
    sqlx::query_as("INSERT INTO trust_anchors (domain, der, fingerprint, subject, not_after, source, bundle_id)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::bigint IS NULL THEN 'upload' ELSE 'bundle' END, $6)
         ON CONFLICT DO NOTHING
         RETURNING id, domain, fingerprint, subject, not_after, source, bundle_id, created_at")
    .bind(c.domain)
    .bind(c.der)
    .bind(c.fingerprint)
    .bind(c.subject)
    .bind(c.not_after)
    .bind(bundle_id)
    .fetch_optional(conn)
    .await
}

pub async fn list_anchors(
    db: &PgPool,
    domain: Option<&str>,
) -> Result<Vec<AnchorRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, domain, fingerprint, subject, not_after, source, bundle_id, created_at FROM trust_anchors
         WHERE $1::text IS NULL OR domain = $1 ORDER BY domain, id")
    .bind(domain)
    .fetch_all(db)
    .await
}

/// The DER of every anchor of `domain`, uploaded or from a bundle, each once.
pub async fn anchors_der(db: &PgPool, domain: &str) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT ON (fingerprint) der FROM trust_anchors
         WHERE domain = $1 ORDER BY fingerprint, id",
    )
    .bind(domain)
    .fetch_all(db)
    .await
}

pub async fn get_anchor(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<AnchorRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, domain, fingerprint, subject, not_after, source, bundle_id, created_at FROM trust_anchors WHERE id = $1 FOR UPDATE")
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn delete_anchor(conn: &mut PgConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM trust_anchors WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes every anchor a bundle gave (its refresh then adds the new set, in one transaction).
pub async fn clear_bundle_anchors(
    conn: &mut PgConnection,
    bundle_id: i64,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM trust_anchors WHERE bundle_id = $1")
            .bind(bundle_id)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

// ---- peer certificates ---------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PeerRow {
    pub id: i64,
    pub domain: String,
    pub address: Option<String>,
    pub fingerprint: String,
    pub subject: String,
    pub not_after: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// Adds a peer certificate; `None` when it is there already for that domain or address.
pub async fn insert_peer(
    conn: &mut PgConnection,
    c: &NewCertificate<'_>,
    address: Option<&str>,
) -> Result<Option<PeerRow>, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO peer_certificates (domain, address, der, fingerprint, subject, not_after)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING
         RETURNING id, domain, address, fingerprint, subject, not_after, created_at",
    )
    .bind(c.domain)
    .bind(address)
    .bind(c.der)
    .bind(c.fingerprint)
    .bind(c.subject)
    .bind(c.not_after)
    .fetch_optional(conn)
    .await
}

pub async fn list_peers(db: &PgPool, domain: Option<&str>) -> Result<Vec<PeerRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, domain, address, fingerprint, subject, not_after, created_at FROM peer_certificates
         WHERE $1::text IS NULL OR domain = $1 ORDER BY domain, address NULLS FIRST, id")
    .bind(domain)
    .fetch_all(db)
    .await
}

/// The certificates configured for `address` itself and for its whole `domain`.
pub async fn peers_for(
    db: &PgPool,
    address: &str,
    domain: &str,
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT der FROM peer_certificates
         WHERE domain = $2 AND (address IS NULL OR address = lower($1))
         ORDER BY address NULLS LAST, id LIMIT 64",
    )
    .bind(address)
    .bind(domain)
    .fetch_all(db)
    .await
}

/// Deletes a peer certificate; `None` when there was none with that id.
pub async fn delete_peer(conn: &mut PgConnection, id: i64) -> Result<Option<PeerRow>, sqlx::Error> {
    sqlx::query_as("DELETE FROM peer_certificates WHERE id = $1 RETURNING id, domain, address, fingerprint, subject, not_after, created_at")
    .bind(id)
    .fetch_optional(conn)
    .await
}

// ---- trust bundles -------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BundleRow {
    pub id: i64,
    pub domain: String,
    pub url: String,
    pub created_at: DateTime<Utc>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub next_due: DateTime<Utc>,
    pub anchors: i64,
}

/// Adds a bundle; `None` when the domain has that URL already.
pub async fn insert_bundle(
    conn: &mut PgConnection,
    domain: &str,
    url: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO trust_bundles (domain, url) VALUES ($1, $2)
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(domain)
    .bind(url)
    .fetch_optional(conn)
    .await
}

pub async fn get_bundle(db: &PgPool, id: i64) -> Result<Option<BundleRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT b.id, b.domain, b.url, b.created_at, b.refreshed_at,
        b.last_error, b.last_error_at, b.next_due,
        (SELECT count(*) FROM trust_anchors a WHERE a.bundle_id = b.id) AS anchors
    FROM trust_bundles b WHERE b.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn list_bundles(
    db: &PgPool,
    domain: Option<&str>,
) -> Result<Vec<BundleRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT b.id, b.domain, b.url, b.created_at, b.refreshed_at,
        b.last_error, b.last_error_at, b.next_due,
        (SELECT count(*) FROM trust_anchors a WHERE a.bundle_id = b.id) AS anchors
    FROM trust_bundles b WHERE $1::text IS NULL OR b.domain = $1 ORDER BY b.domain, b.id",
    )
    .bind(domain)
    .fetch_all(db)
    .await
}

/// The ids of bundles whose refresh is due at `now`.
pub async fn due_bundles(db: &PgPool, now: DateTime<Utc>) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM trust_bundles WHERE next_due <= $1 ORDER BY next_due LIMIT 1000",
    )
    .bind(now)
    .fetch_all(db)
    .await
}

/// Locks a bundle for its refresh; `false` when it is gone.
pub async fn lock_bundle(conn: &mut PgConnection, id: i64) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT id FROM trust_bundles WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

pub async fn bundle_refreshed(
    conn: &mut PgConnection,
    id: i64,
    at: DateTime<Utc>,
    next_due: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE trust_bundles SET refreshed_at = $2, last_error = NULL, last_error_at = NULL,
            next_due = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(at)
    .bind(next_due)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn bundle_failed(
    db: &PgPool,
    id: i64,
    error: &str,
    at: DateTime<Utc>,
    next_due: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE trust_bundles SET last_error = $2, last_error_at = $3, next_due = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(at)
    .bind(next_due)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn delete_bundle(conn: &mut PgConnection, id: i64) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM trust_bundles WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        > 0)
}

// ---- CRLs ----------------------------------------------------------------------------------

/// A cached CRL still current at `now`.
pub async fn current_crl(
    db: &PgPool,
    url: &str,
    now: DateTime<Utc>,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT der FROM crl_cache WHERE url = $1 AND next_update > $2")
        .bind(url)
        .bind(now)
        .fetch_optional(db)
        .await
}

pub async fn put_crl(
    db: &PgPool,
    url: &str,
    der: &[u8],
    next_update: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO crl_cache (url, der, next_update) VALUES ($1, $2, $3)
         ON CONFLICT (url) DO UPDATE SET der = EXCLUDED.der, next_update = EXCLUDED.next_update,
            fetched_at = now()",
    )
    .bind(url)
    .bind(der)
    .bind(next_update)
    .execute(db)
    .await?;
    Ok(())
}
