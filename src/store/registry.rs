//! Rows of the HL7 organization registry: current and past versions of each organization,
//! the identifiers senders gave, subscribers and query continuations.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgRow {
    pub certified_id: i64,
    pub version: i32,
    pub status: String,
    pub name: String,
    pub record: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ORG: &str = "SELECT certified_id, version, status, name, record, created_at, updated_at FROM registry_organizations";

/// The columns queries filter on, from a record.
pub struct Columns<'a> {
    pub name: &'a str,
    pub type_code: Option<&'a str>,
    pub city: Option<&'a str>,
    pub state: Option<&'a str>,
    pub postal_code: Option<&'a str>,
    pub street: Option<&'a str>,
}

/// The verified-organization fields a registry record maps onto.
pub struct Verified<'a> {
    pub certified_id: i64,
    pub name: &'a str,
    pub tax_id: Option<&'a str>,
    pub npi: Option<&'a str>,
    pub state: Option<&'a str>,
    pub address_line1: Option<&'a str>,
    pub address_line2: Option<&'a str>,
    pub city: Option<&'a str>,
    pub zip: Option<&'a str>,
    pub at: DateTime<Utc>,
}

pub async fn next_certified_id(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT nextval('registry_certified_id_seq')")
        .fetch_one(conn)
        .await
}

pub async fn upsert_verified(conn: &mut PgConnection, v: &Verified<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO verified_organizations
           (certified_id, name, tax_id, state, npi, address_line1, address_line2, city, zip,
            healthcare_provider, verified_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true, $10)
         ON CONFLICT (certified_id) DO UPDATE SET
           name = EXCLUDED.name, tax_id = EXCLUDED.tax_id, state = EXCLUDED.state,
           npi = EXCLUDED.npi, address_line1 = EXCLUDED.address_line1,
           address_line2 = EXCLUDED.address_line2, city = EXCLUDED.city, zip = EXCLUDED.zip,
           verified_at = EXCLUDED.verified_at, imported_at = now()",
    )
    .bind(v.certified_id)
    .bind(v.name)
    .bind(v.tax_id)
    .bind(v.state)
    .bind(v.npi)
    .bind(v.address_line1)
    .bind(v.address_line2)
    .bind(v.city)
    .bind(v.zip)
    .bind(v.at)
    .execute(conn)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn upsert_current(
    conn: &mut PgConnection,
    certified_id: i64,
    version: i32,
    status: &str,
    cols: &Columns<'_>,
    record: &serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_organizations
           (certified_id, version, status, name, type_code, city, state, postal_code, street,
            record, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
         ON CONFLICT (certified_id) DO UPDATE SET
           version = EXCLUDED.version, status = EXCLUDED.status, name = EXCLUDED.name,
           type_code = EXCLUDED.type_code, city = EXCLUDED.city, state = EXCLUDED.state,
           postal_code = EXCLUDED.postal_code, street = EXCLUDED.street,
           record = EXCLUDED.record, updated_at = EXCLUDED.updated_at",
    )
    .bind(certified_id)
    .bind(version)
    .bind(status)
    .bind(cols.name)
    .bind(cols.type_code)
    .bind(cols.city)
    .bind(cols.state)
    .bind(cols.postal_code)
    .bind(cols.street)
    .bind(record)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_version(
    conn: &mut PgConnection,
    certified_id: i64,
    version: i32,
    status: &str,
    change: &str,
    record: &serde_json::Value,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO registry_versions (certified_id, version, status, change, record, actor, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(certified_id)
    .bind(version)
    .bind(status)
    .bind(change)
    .bind(record)
    .bind(actor)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims `(root, extension)` for `certified_id`; false when another organization has it.
pub async fn claim_identifier(
    conn: &mut PgConnection,
    root: &str,
    extension: &str,
    certified_id: i64,
) -> Result<bool, sqlx::Error> {
    let owner: i64 = sqlx::query_scalar(
        "WITH ins AS (
           INSERT INTO registry_identifiers (root, extension, certified_id) VALUES ($1, $2, $3)
           ON CONFLICT (root, extension) DO NOTHING RETURNING certified_id)
         SELECT certified_id FROM ins
         UNION ALL SELECT certified_id FROM registry_identifiers WHERE root = $1 AND extension = $2
         LIMIT 1",
    )
    .bind(root)
    .bind(extension)
    .bind(certified_id)
    .fetch_one(conn)
    .await?;
    Ok(owner == certified_id)
}

/// The organization an identifier names (one of the sender's, or our registry id).
pub async fn by_identifier(
    conn: &mut PgConnection,
    root: &str,
    extension: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT certified_id FROM registry_identifiers WHERE root = $1 AND extension = $2",
    )
    .bind(root)
    .bind(extension)
    .fetch_optional(conn)
    .await
}

pub async fn lock(
    conn: &mut PgConnection,
    certified_id: i64,
) -> Result<Option<OrgRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ORG} WHERE certified_id = $1 FOR UPDATE"
    )))
    .bind(certified_id)
    .fetch_optional(conn)
    .await
}

pub async fn get_many(db: &PgPool, ids: &[i64]) -> Result<Vec<OrgRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{ORG} WHERE certified_id = ANY($1) ORDER BY certified_id"
    )))
    .bind(ids)
    .fetch_all(db)
    .await
}

/// A registry organization's status, when `certified_id` is one.
pub async fn status_of(
    conn: &mut PgConnection,
    certified_id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM registry_organizations WHERE certified_id = $1")
        .bind(certified_id)
        .fetch_optional(conn)
        .await
}

/// The registry organization behind a provisioned organization, if any.
pub async fn certified_id_of_organization(
    conn: &mut PgConnection,
    organization_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT r.certified_id FROM organizations o
         JOIN registry_organizations r ON r.certified_id = o.certified_id WHERE o.id = $1",
    )
    .bind(organization_id)
    .fetch_optional(conn)
    .await
}

/// Provisioned organizations (domain, status) of a certified organization.
pub async fn domains_of(
    conn: &mut PgConnection,
    certified_id: i64,
) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, domain, status FROM organizations WHERE certified_id = $1 ORDER BY id",
    )
    .bind(certified_id)
    .fetch_all(conn)
    .await
}

/// Direct addresses of a certified organization's provisioned organizations (bounded).
pub async fn addresses_of(
    conn: &mut PgConnection,
    certified_id: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT a.username || '@' || a.domain FROM direct_addresses a
         JOIN organizations o ON o.id = a.organization_id
         WHERE o.certified_id = $1 AND a.status = 'active' ORDER BY a.id LIMIT $2",
    )
    .bind(certified_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn set_domain_status(
    conn: &mut PgConnection,
    certified_id: i64,
    status: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE organizations SET status = $2, updated_at = now() WHERE certified_id = $1",
    )
    .bind(certified_id)
    .bind(status)
    .execute(conn)
    .await?
    .rows_affected())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub certified_id: i64,
    pub version: i32,
    pub status: String,
    pub change: String,
    pub record: serde_json::Value,
    pub at: DateTime<Utc>,
}

pub async fn versions(db: &PgPool, certified_id: i64) -> Result<Vec<VersionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT certified_id, version, status, change, record, at FROM registry_versions
         WHERE certified_id = $1 ORDER BY version LIMIT 1000",
    )
    .bind(certified_id)
    .fetch_all(db)
    .await
}

pub async fn version(
    db: &PgPool,
    certified_id: i64,
    version: i32,
) -> Result<Option<VersionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT certified_id, version, status, change, record, at FROM registry_versions
         WHERE certified_id = $1 AND version = $2",
    )
    .bind(certified_id)
    .bind(version)
    .fetch_optional(db)
    .await
}

/// A candidates search. Text filters compare case-insensitively; `name` is a prefix unless
/// `name_contains`.
#[derive(Debug, Default, Clone)]
pub struct Search {
    pub name: Option<String>,
    pub name_contains: bool,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub street: Option<String>,
    pub type_code: Option<String>,
    pub status: Option<String>,
    pub certified_ids: Option<Vec<i64>>,
    /// Column and descending flag pairs, from a fixed list (see `SORTABLE`).
    pub sort: Vec<(&'static str, bool)>,
}

/// The columns a SortControl may name, by the element name it gives.
pub const SORTABLE: [(&str, &str); 5] = [
    ("name", "lower(name)"),
    ("city", "lower(city)"),
    ("state", "state"),
    ("postalcode", "postal_code"),
    ("id", "certified_id"),
];

fn like_escape(s: &str) -> String {
    s.to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

enum Arg {
    Text(String),
    Ids(Vec<i64>),
}

/// The WHERE clause of a search with only the filters it has (so the planner can use the name
/// index), and its arguments in order.
fn filter_of(s: &Search) -> (String, Vec<Arg>) {
    let mut conds: Vec<String> = Vec::new();
    let mut args = Vec::new();
    let mut push = |cond: &str, arg: Arg, conds: &mut Vec<String>| {
        args.push(arg);
        conds.push(cond.replace('?', &format!("${}", args.len())));
    };
    if let Some(n) = &s.name {
        let pattern = if s.name_contains {
            format!("%{}%", like_escape(n))
        } else {
            format!("{}%", like_escape(n))
        };
        push("lower(name) LIKE ?", Arg::Text(pattern), &mut conds);
    }
    if let Some(v) = &s.city {
        push("lower(city) = lower(?)", Arg::Text(v.clone()), &mut conds);
    }
    if let Some(v) = &s.state {
        push("lower(state) = lower(?)", Arg::Text(v.clone()), &mut conds);
    }
    if let Some(v) = &s.postal_code {
        push("postal_code = ?", Arg::Text(v.clone()), &mut conds);
    }
    if let Some(v) = &s.street {
        let pattern = format!("%{}%", like_escape(v));
        push("lower(street) LIKE ?", Arg::Text(pattern), &mut conds);
    }
    if let Some(v) = &s.type_code {
        push("type_code = ?", Arg::Text(v.clone()), &mut conds);
    }
    if let Some(v) = &s.status {
        push("status = ?", Arg::Text(v.clone()), &mut conds);
    }
    if let Some(ids) = &s.certified_ids {
        push("certified_id = ANY(?)", Arg::Ids(ids.clone()), &mut conds);
    }
    if conds.is_empty() {
        conds.push("true".into());
    }
    (conds.join(" AND "), args)
}

/// (total matches, this page's rows).
pub async fn search(
    db: &PgPool,
    s: &Search,
    offset: i64,
    limit: i64,
) -> Result<(i64, Vec<OrgRow>), sqlx::Error> {
    let (filter, args) = filter_of(s);
    let mut order: Vec<String> = s
        .sort
        .iter()
        .map(|(c, desc)| format!("{c} {}", if *desc { "DESC" } else { "ASC" }))
        .collect();
    order.push("certified_id ASC".into());
    let n = args.len();
    let sql = format!(
        "SELECT certified_id, version, status, name, record, created_at, updated_at,
                count(*) OVER () AS total
         FROM registry_organizations WHERE {filter}
         ORDER BY {} OFFSET ${} LIMIT ${}",
        order.join(", "),
        n + 1,
        n + 2
    );
    #[derive(sqlx::FromRow)]
    struct Counted {
        #[sqlx(flatten)]
        row: OrgRow,
        total: i64,
    }
    let mut q = sqlx::query_as::<_, Counted>(sqlx::AssertSqlSafe(sql));
    for a in &args {
        q = match a {
            Arg::Text(t) => q.bind(t.clone()),
            Arg::Ids(i) => q.bind(i.clone()),
        };
    }
    let rows = q.bind(offset).bind(limit).fetch_all(db).await?;
    let total = match rows.first() {
        Some(r) => r.total,
        // An empty page past the end still needs the count.
        None if offset > 0 => {
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM registry_organizations WHERE {filter}"
            )));
            for a in &args {
                q = match a {
                    Arg::Text(t) => q.bind(t.clone()),
                    Arg::Ids(i) => q.bind(i.clone()),
                };
            }
            q.fetch_one(db).await?
        }
        None => 0,
    };
    Ok((total, rows.into_iter().map(|r| r.row).collect()))
}

/// Organizations by (status, type code), now.
pub async fn counts_by_status_and_type(
    db: &PgPool,
) -> Result<Vec<(String, Option<String>, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT status, type_code, count(*) FROM registry_organizations
         GROUP BY status, type_code ORDER BY status, type_code NULLS FIRST",
    )
    .fetch_all(db)
    .await
}

/// Versions written in [from, to) by kind of change.
pub async fn changes_between(
    db: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT change, count(*) FROM registry_versions WHERE at >= $1 AND at < $2
         GROUP BY change ORDER BY change",
    )
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

// ---- subscribers -----------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubscriberRow {
    pub id: Uuid,
    pub url: String,
    pub auth: Option<Vec<u8>>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_subscriber(
    conn: &mut PgConnection,
    id: Uuid,
    url: &str,
    auth: Option<&[u8]>,
) -> Result<SubscriberRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO registry_subscribers (id, url, auth) VALUES ($1, $2, $3)
         RETURNING id, url, auth, status, created_at",
    )
    .bind(id)
    .bind(url)
    .bind(auth)
    .fetch_one(conn)
    .await
}

pub async fn subscribers(db: &PgPool) -> Result<Vec<SubscriberRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, url, auth, status, created_at FROM registry_subscribers
         WHERE status = 'active' ORDER BY created_at, id",
    )
    .fetch_all(db)
    .await
}

pub async fn subscriber(db: &PgPool, id: Uuid) -> Result<Option<SubscriberRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, url, auth, status, created_at FROM registry_subscribers WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn active_subscriber_ids(conn: &mut PgConnection) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM registry_subscribers WHERE status = 'active' ORDER BY created_at, id",
    )
    .fetch_all(conn)
    .await
}

pub async fn remove_subscriber(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE registry_subscribers SET status = 'removed' WHERE id = $1 AND status = 'active'",
    )
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

// ---- query continuations ---------------------------------------------------------------

/// Rows already delivered for a live continued query.
pub async fn cursor(
    db: &PgPool,
    client: Uuid,
    query_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT delivered FROM registry_query_cursors
         WHERE client_id = $1 AND query_id = $2 AND expires_at > $3",
    )
    .bind(client)
    .bind(query_id)
    .bind(now)
    .fetch_optional(db)
    .await
}

pub async fn save_cursor(
    db: &PgPool,
    client: Uuid,
    query_id: &str,
    delivered: i32,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    // A position lost in a crash only means the client starts its query again: not worth
    // waiting for the disk on every page.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO registry_query_cursors (client_id, query_id, delivered, expires_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (client_id, query_id) DO UPDATE SET
           delivered = EXCLUDED.delivered, expires_at = EXCLUDED.expires_at",
    )
    .bind(client)
    .bind(query_id)
    .bind(delivered)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
