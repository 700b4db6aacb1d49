//! The append-only audit log. Callers pass ids and action names, never PHI values.

use sqlx::PgConnection;

pub struct AuditEntry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: &'a str,
    pub request_id: Option<&'a str>,
}

pub async fn record(conn: &mut PgConnection, e: AuditEntry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (actor, action, object_type, object_id, request_id) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(e.actor)
    .bind(e.action)
    .bind(e.object_type)
    .bind(e.object_id)
    .bind(e.request_id)
    .execute(conn)
    .await?;
    Ok(())
}
