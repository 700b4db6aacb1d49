//! Organization rows (provisioning adds the rest of their life in a later migration).

use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrganizationRecord {
    pub id: i64,
    pub domain: String,
    pub name: String,
    pub status: String,
    pub certificate_category: Option<String>,
}

pub async fn insert(
    conn: &mut PgConnection,
    domain: &str,
    name: &str,
    status: &str,
    category: Option<&str>,
    reseller_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO organizations (domain, name, status, certificate_category, reseller_id)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(domain)
    .bind(name)
    .bind(status)
    .bind(category)
    .bind(reseller_id)
    .fetch_one(conn)
    .await
}

pub async fn find_by_domain(
    conn: &mut PgConnection,
    domain: &str,
) -> Result<Option<OrganizationRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, domain, name, status, certificate_category FROM organizations WHERE lower(domain) = lower($1)",
    )
    .bind(domain)
    .fetch_optional(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, id: i64) -> Result<OrganizationRecord, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, domain, name, status, certificate_category FROM organizations WHERE id = $1",
    )
    .bind(id)
    .fetch_one(conn)
    .await
}

pub async fn set_status(conn: &mut PgConnection, id: i64, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE organizations SET status = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(status)
        .execute(conn)
        .await?;
    Ok(())
}
