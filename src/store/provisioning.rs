//! Rows provisioning reads and writes: verified identities it matches, organizations with
//! their offer, people and Direct addresses.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VerifiedOrgRow {
    pub certified_id: i64,
    pub name: String,
    pub tax_id: String,
    pub state: String,
    pub healthcare_provider: bool,
}

// Registry organizations may lack a tax id or state: read as empty.
const VERIFIED_ORG: &str = "SELECT certified_id, name, coalesce(tax_id, '') AS tax_id,
    coalesce(state::text, '') AS state, healthcare_provider FROM verified_organizations";

pub async fn verified_org(
    conn: &mut PgConnection,
    certified_id: i64,
) -> Result<Option<VerifiedOrgRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{VERIFIED_ORG} WHERE certified_id = $1"
    )))
    .bind(certified_id)
    .fetch_optional(conn)
    .await
}

/// Matches name (case and surrounding space insensitive), tax id digits and state.
pub async fn verified_org_by_identity(
    conn: &mut PgConnection,
    name: &str,
    tax_id: &str,
    state: &str,
) -> Result<Option<VerifiedOrgRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{VERIFIED_ORG} WHERE lower(btrim(name)) = lower(btrim($1))
           AND regexp_replace(tax_id, '[^0-9]', '', 'g') = $2 AND state = $3
         ORDER BY certified_id LIMIT 1"
    )))
    .bind(name)
    .bind(tax_id)
    .bind(state)
    .fetch_optional(conn)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IndividualRow {
    pub idp_id: i64,
    pub first_name: String,
    pub last_name: String,
}

pub async fn individual(
    conn: &mut PgConnection,
    idp_id: i64,
) -> Result<Option<IndividualRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT idp_id, first_name, last_name FROM verified_individuals WHERE idp_id = $1",
    )
    .bind(idp_id)
    .fetch_optional(conn)
    .await
}

pub async fn individual_by_identity(
    conn: &mut PgConnection,
    first_name: &str,
    last_name: &str,
    date_of_birth: NaiveDate,
    ssn_last4_hash: &str,
) -> Result<Option<IndividualRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT idp_id, first_name, last_name FROM verified_individuals
         WHERE lower(first_name) = lower($1) AND lower(last_name) = lower($2)
           AND date_of_birth = $3 AND ssn_last4_hash = $4
         ORDER BY idp_id LIMIT 1",
    )
    .bind(first_name)
    .bind(last_name)
    .bind(date_of_birth)
    .bind(ssn_last4_hash)
    .fetch_optional(conn)
    .await
}

/// An organization as provisioning sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgRow {
    pub id: i64,
    pub domain: String,
    pub status: String,
    pub reseller_id: Uuid,
    pub offer_type: Option<String>,
    pub address_cap: Option<i32>,
    pub service_start: Option<NaiveDate>,
    pub service_expires: Option<NaiveDate>,
    pub default_settings: serde_json::Value,
}

/// Locks the organization row, so concurrent additions count addresses one at a time.
pub async fn lock_org_by_domain(
    conn: &mut PgConnection,
    domain: &str,
) -> Result<Option<OrgRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, domain, status, reseller_id, offer_type, address_cap, service_start, service_expires, default_settings
         FROM organizations WHERE lower(domain) = lower($1) FOR UPDATE",
    )
    .bind(domain)
    .fetch_optional(conn)
    .await
}

pub struct NewOrganization<'a> {
    pub domain: &'a str,
    pub name: &'a str,
    pub status: &'a str,
    pub category: &'a str,
    pub offer_type: &'a str,
    pub address_cap: i32,
    pub department: Option<&'a str>,
    pub reseller_id: Uuid,
    pub certified_id: i64,
    pub default_settings: serde_json::Value,
    pub service_start: NaiveDate,
    pub service_expires: NaiveDate,
    pub created_at: DateTime<Utc>,
}

/// `None` when the domain is taken (by a concurrent call that committed first).
pub async fn insert_organization(
    conn: &mut PgConnection,
    o: &NewOrganization<'_>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO organizations (domain, name, status, certificate_category, offer_type, address_cap,
             department, reseller_id, certified_id, default_settings, service_start, service_expires,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
         ON CONFLICT ((lower(domain))) DO NOTHING RETURNING id",
    )
    .bind(o.domain)
    .bind(o.name)
    .bind(o.status)
    .bind(o.category)
    .bind(o.offer_type)
    .bind(o.address_cap)
    .bind(o.department)
    .bind(o.reseller_id)
    .bind(o.certified_id)
    .bind(&o.default_settings)
    .bind(o.service_start)
    .bind(o.service_expires)
    .bind(o.created_at)
    .fetch_optional(conn)
    .await
}

pub async fn domain_taken(conn: &mut PgConnection, domain: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM organizations WHERE lower(domain) = lower($1))",
    )
    .bind(domain)
    .fetch_one(conn)
    .await
}

/// Adds a person in a role; `None` when they already hold it.
pub async fn insert_person(
    conn: &mut PgConnection,
    organization_id: i64,
    role: &str,
    person: &IndividualRow,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO organization_people (organization_id, role, idp_id, first_name, last_name)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (organization_id, role, idp_id) WHERE idp_id IS NOT NULL DO NOTHING RETURNING id",
    )
    .bind(organization_id)
    .bind(role)
    .bind(person.idp_id)
    .bind(&person.first_name)
    .bind(&person.last_name)
    .fetch_optional(conn)
    .await
}

pub async fn count_addresses(
    conn: &mut PgConnection,
    organization_id: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM direct_addresses WHERE organization_id = $1")
        .bind(organization_id)
        .fetch_one(conn)
        .await
}

pub async fn address_id(
    conn: &mut PgConnection,
    domain: &str,
    username: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM direct_addresses WHERE lower(domain) = lower($1) AND lower(username) = lower($2)",
    )
    .bind(domain)
    .bind(username)
    .fetch_optional(conn)
    .await
}

pub struct NewAddress<'a> {
    pub organization_id: i64,
    pub username: &'a str,
    pub domain: &'a str,
    pub user_type: &'a str,
    pub person: &'a IndividualRow,
    /// `None`: an address without a password, which nothing can log in as.
    pub password_hash: Option<&'a str>,
    pub settings: serde_json::Value,
}

/// `None` when the address exists already.
pub async fn insert_address(
    conn: &mut PgConnection,
    a: &NewAddress<'_>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO direct_addresses (organization_id, username, domain, user_type, idp_id, first_name,
             last_name, password_hash, settings, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active')
         ON CONFLICT (lower(domain), lower(username)) DO NOTHING RETURNING id",
    )
    .bind(a.organization_id)
    .bind(a.username)
    .bind(a.domain)
    .bind(a.user_type)
    .bind(a.person.idp_id)
    .bind(&a.person.first_name)
    .bind(&a.person.last_name)
    .bind(a.password_hash)
    .bind(&a.settings)
    .fetch_optional(conn)
    .await
}

/// Sets a new password hash (when given) and merges settings into the address's own.
pub async fn update_address(
    conn: &mut PgConnection,
    id: i64,
    password_hash: Option<&str>,
    settings: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE direct_addresses SET password_hash = coalesce($2, password_hash),
             settings = settings || $3, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(password_hash)
    .bind(settings)
    .execute(conn)
    .await?;
    Ok(())
}

// ---- listing -------------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgDetailRow {
    pub id: i64,
    pub certified_id: Option<i64>,
    pub domain: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub status: String,
    pub certificate_category: Option<String>,
    pub default_settings: serde_json::Value,
    pub other_info: serde_json::Value,
    pub reseller_id: Uuid,
    pub tax_id: Option<String>,
    pub npi: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    /// A trusted-agent client is linked to the organization.
    pub has_trusted_agent: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PersonRow {
    pub organization_id: i64,
    pub idp_id: Option<i64>,
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AddressRow {
    pub organization_id: i64,
    pub idp_id: Option<i64>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: String,
    pub user_type: String,
    pub settings: serde_json::Value,
}

/// Organizations of a reseller (all, or the one with `domain`), with their verified details.
pub async fn organizations(
    db: &PgPool,
    reseller_id: Uuid,
    domain: Option<&str>,
) -> Result<Vec<OrgDetailRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.id, o.certified_id, o.domain, o.name, o.created_at, o.status, o.certificate_category,
                o.default_settings, o.other_info, o.reseller_id, v.tax_id, v.npi, v.address_line1,
                v.address_line2, v.city, v.state, v.zip,
                EXISTS (SELECT 1 FROM trusted_agents t WHERE t.organization_id = o.id) AS has_trusted_agent
         FROM organizations o LEFT JOIN verified_organizations v USING (certified_id)
         WHERE o.reseller_id = $1 AND ($2::text IS NULL OR lower(o.domain) = lower($2))
         ORDER BY o.id",
    )
    .bind(reseller_id)
    .bind(domain)
    .fetch_all(db)
    .await
}

pub async fn org_reseller(db: &PgPool, domain: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT reseller_id FROM organizations WHERE lower(domain) = lower($1)")
        .bind(domain)
        .fetch_optional(db)
        .await
}

pub async fn authorized_users(db: &PgPool, org_ids: &[i64]) -> Result<Vec<PersonRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT organization_id, idp_id, first_name, last_name FROM organization_people
         WHERE organization_id = ANY($1) AND role = 'authorized_user' ORDER BY id",
    )
    .bind(org_ids)
    .fetch_all(db)
    .await
}

pub async fn addresses(db: &PgPool, org_ids: &[i64]) -> Result<Vec<AddressRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT organization_id, idp_id, first_name, last_name, username, user_type, settings
         FROM direct_addresses WHERE organization_id = ANY($1) ORDER BY id",
    )
    .bind(org_ids)
    .fetch_all(db)
    .await
}
