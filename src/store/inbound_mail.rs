//! SQL of the SMTP listener: who we host, and mail received from other HISPs.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// What we know about a recipient address: whether its domain is ours, and the address's and
/// its organization's status when it exists.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecipientRow {
    pub domain_hosted: bool,
    pub address_status: Option<String>,
    pub organization_status: Option<String>,
}

/// `local@domain` as we host it (case-insensitive, like the address index).
pub async fn recipient(
    db: &PgPool,
    local: &str,
    domain: &str,
) -> Result<RecipientRow, sqlx::Error> {
    sqlx::query_as(
        "SELECT (EXISTS (SELECT 1 FROM organizations WHERE lower(domain) = lower($1))
                 OR EXISTS (SELECT 1 FROM direct_addresses WHERE lower(domain) = lower($1)))
                    AS domain_hosted,
                a.status AS address_status, o.status AS organization_status
         FROM (SELECT 1) AS one
         LEFT JOIN direct_addresses a
                ON lower(a.domain) = lower($1) AND lower(a.username) = lower($2)
         LEFT JOIN organizations o ON o.id = a.organization_id",
    )
    .bind(domain)
    .bind(local)
    .fetch_one(db)
    .await
}

/// A message as the listener received it.
#[derive(Debug, Clone)]
pub struct NewInboundMail<'a> {
    pub id: Uuid,
    pub peer: std::net::IpAddr,
    pub helo: &'a str,
    pub tls: bool,
    pub mail_from: &'a str,
    pub rcpt_to: &'a [String],
    pub raw: &'a [u8],
}

pub async fn insert(conn: &mut PgConnection, m: &NewInboundMail<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO inbound_mail (id, peer, helo, tls, mail_from, rcpt_to, raw, size)
         VALUES ($1, $2::inet, $3, $4, $5, $6, $7, $8)",
    )
    .bind(m.id)
    .bind(m.peer.to_string())
    .bind(m.helo)
    .bind(m.tls)
    .bind(m.mail_from)
    .bind(m.rcpt_to)
    .bind(m.raw)
    .bind(m.raw.len() as i64)
    .execute(conn)
    .await?;
    Ok(())
}
