//! SQL of REST messaging: grants, endpoints, tokens, messages, recipients and their events.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::packed_mime::PackedMime;

// ---- grants -------------------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct GrantRow {
    pub client_id: Uuid,
    pub organization_id: i64,
    pub domain: String,
    pub organization_status: String,
    pub created_at: DateTime<Utc>,
}

/// `false` when the grant existed already.
pub async fn insert_grant(
    conn: &mut PgConnection,
    client: Uuid,
    organization: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO messaging_grants (client_id, organization_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(client)
    .bind(organization)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete_grant(
    conn: &mut PgConnection,
    client: Uuid,
    organization: i64,
) -> Result<bool, sqlx::Error> {
    let r =
        sqlx::query("DELETE FROM messaging_grants WHERE client_id = $1 AND organization_id = $2")
            .bind(client)
            .bind(organization)
            .execute(conn)
            .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn list_grants(db: &PgPool, client: Option<Uuid>) -> Result<Vec<GrantRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT g.client_id, g.organization_id, o.domain, o.status AS organization_status, g.created_at
         FROM messaging_grants g JOIN organizations o ON o.id = g.organization_id
         WHERE $1::uuid IS NULL OR g.client_id = $1
         ORDER BY g.client_id, o.domain",
    )
    .bind(client)
    .fetch_all(db)
    .await
}

pub async fn organization_by_domain(
    conn: &mut PgConnection,
    domain: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM organizations WHERE lower(domain) = lower($1)")
        .bind(domain)
        .fetch_optional(conn)
        .await
}

// ---- vendors and their signing keys --------------------------------------------------------

/// Creates the vendor's signing key unless it has one; returns the sealed key in force.
pub async fn ensure_signing_key(
    conn: &mut PgConnection,
    client: Uuid,
    sealed_new: &[u8],
) -> Result<Vec<u8>, sqlx::Error> {
    sqlx::query(
        "INSERT INTO messaging_vendors (client_id, signing_secret) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(client)
    .bind(sealed_new)
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar("SELECT signing_secret FROM messaging_vendors WHERE client_id = $1")
        .bind(client)
        .fetch_one(conn)
        .await
}

pub async fn signing_key(db: &PgPool, client: Uuid) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT signing_secret FROM messaging_vendors WHERE client_id = $1")
        .bind(client)
        .fetch_optional(db)
        .await
}

pub async fn replace_signing_key(
    conn: &mut PgConnection,
    client: Uuid,
    sealed: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO messaging_vendors (client_id, signing_secret) VALUES ($1, $2)
         ON CONFLICT (client_id) DO UPDATE SET signing_secret = EXCLUDED.signing_secret, updated_at = now()",
    )
    .bind(client)
    .bind(sealed)
    .execute(conn)
    .await?;
    Ok(())
}

// ---- addresses and endpoints ---------------------------------------------------------------

/// A hosted address as messaging sees it, with whether a given client holds a grant on it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AddressRow {
    pub id: i64,
    pub address: String,
    pub status: String,
    pub organization_id: i64,
    pub organization_status: String,
    pub settings: serde_json::Value,
    pub default_settings: serde_json::Value,
    pub granted: bool,
}

pub async fn find_address(
    db: &PgPool,
    address: &str,
    client: Uuid,
) -> Result<Option<AddressRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.username || '@' || a.domain AS address, a.status, o.id AS organization_id,
                o.status AS organization_status, a.settings, o.default_settings,
                EXISTS (SELECT 1 FROM messaging_grants g
                        WHERE g.organization_id = o.id AND g.client_id = $3) AS granted
         FROM direct_addresses a JOIN organizations o ON o.id = a.organization_id
         WHERE lower(a.domain) = lower($1) AND lower(a.username) = lower($2)",
    )
    .bind(split(address).1)
    .bind(split(address).0)
    .bind(client)
    .fetch_optional(db)
    .await
}

/// `(local, domain)` of `local@domain`.
fn split(address: &str) -> (&str, &str) {
    address.rsplit_once('@').unwrap_or((address, ""))
}

pub async fn set_address_status(
    conn: &mut PgConnection,
    id: i64,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE direct_addresses SET status = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(status)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub address_id: i64,
    pub client_id: Uuid,
    pub inbound_url: Option<String>,
    pub inbound_auth: Option<Vec<u8>>,
    pub inbound_shape: String,
    pub inbound_xdm: String,
    pub dsn_url: Option<String>,
    pub dsn_auth: Option<Vec<u8>>,
    pub updated_at: DateTime<Utc>,
}

pub async fn upsert_endpoint(conn: &mut PgConnection, e: &EndpointRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO address_endpoints (address_id, client_id, inbound_url, inbound_auth, inbound_shape,
             inbound_xdm, dsn_url, dsn_auth, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
         ON CONFLICT (address_id) DO UPDATE SET client_id = EXCLUDED.client_id,
             inbound_url = EXCLUDED.inbound_url, inbound_auth = EXCLUDED.inbound_auth,
             inbound_shape = EXCLUDED.inbound_shape, inbound_xdm = EXCLUDED.inbound_xdm,
             dsn_url = EXCLUDED.dsn_url, dsn_auth = EXCLUDED.dsn_auth, updated_at = now()",
    )
    .bind(e.address_id)
    .bind(e.client_id)
    .bind(&e.inbound_url)
    .bind(&e.inbound_auth)
    .bind(&e.inbound_shape)
    .bind(&e.inbound_xdm)
    .bind(&e.dsn_url)
    .bind(&e.dsn_auth)
    .execute(conn)
    .await?;
    Ok(())
}

const ENDPOINT_COLUMNS: &str = "e.address_id, e.client_id, e.inbound_url, e.inbound_auth, e.inbound_shape, \
     e.inbound_xdm, e.dsn_url, e.dsn_auth, e.updated_at";

pub async fn endpoint_of(db: &PgPool, address_id: i64) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM address_endpoints e WHERE e.address_id = $1"
    )))
    .bind(address_id)
    .fetch_optional(db)
    .await
}

/// The endpoint of a hosted address given as `local@domain`.
pub async fn endpoint_for_address(
    db: &PgPool,
    address: &str,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM address_endpoints e
         JOIN direct_addresses a ON a.id = e.address_id
         WHERE lower(a.domain) = lower($1) AND lower(a.username) = lower($2)"
    )))
    .bind(split(address).1)
    .bind(split(address).0)
    .fetch_optional(db)
    .await
}

// ---- OAuth2 tokens -------------------------------------------------------------------------

pub async fn insert_token(
    db: &PgPool,
    hash: &str,
    client: Uuid,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    // Expired tokens are swept as new ones are made, so the table stays small.
    sqlx::query("DELETE FROM oauth_tokens WHERE expires_at < $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO oauth_tokens (token_hash, client_id, expires_at) VALUES ($1, $2, $3)")
        .bind(hash)
        .bind(client)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// The client a live token belongs to.
pub async fn token_client(
    db: &PgPool,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT client_id FROM oauth_tokens WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(db)
    .await
}

// ---- messages ------------------------------------------------------------------------------

/// An earlier request with the same vendor messageId.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PriorSend {
    pub id: Uuid,
    pub request_hash: Option<Vec<u8>>,
    pub transaction_id: Option<Uuid>,
}

pub async fn prior_send(
    db: &PgPool,
    client: Uuid,
    vendor_message_id: &str,
) -> Result<Option<PriorSend>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, request_hash, transaction_id FROM messages
         WHERE client_id = $1 AND vendor_message_id = $2",
    )
    .bind(client)
    .bind(vendor_message_id)
    .fetch_optional(db)
    .await
}

/// A message as the send path writes it.
pub struct NewMessage<'a> {
    pub id: Uuid,
    pub client_id: Uuid,
    pub from_address: &'a str,
    pub smtp_message_id: &'a str,
    pub size_bytes: i64,
    pub vendor_message_id: &'a str,
    pub request_hash: &'a [u8],
    pub transaction_id: Uuid,
    pub subject: Option<&'a str>,
    pub xdm: bool,
    pub final_delivery: bool,
    pub metadata: &'a serde_json::Value,
    pub mime: &'a PackedMime,
    pub xdr_unique_id: Option<&'a str>,
    pub xdr_source_id: Option<&'a str>,
    pub xdr_patient_id: Option<&'a str>,
    pub created_at: DateTime<Utc>,
    pub timeout_at: DateTime<Utc>,
    /// As the vendor wrote them; one recipient row each, all starting SMTPINIT.
    pub recipients: &'a [String],
}

/// What the statement checks before it writes, besides the messageId being new.
pub struct SendChecks<'a> {
    /// The stored secret hash the client was verified against; `None` when its credentials
    /// were checked against the database already in this request.
    pub client_secret_hash: Option<&'a str>,
    /// `(local part, domain)` of the sender.
    pub from: (&'a str, &'a str),
    /// `(local part, domain)` of each recipient, beside `NewMessage::recipients`.
    pub recipient_parts: (&'a [&'a str], &'a [&'a str]),
    /// The request's asmEnabled. The message was built for `final_delivery`, which must equal
    /// asmEnabled or the sender's timely-and-reliable setting.
    pub asm_enabled: bool,
}

/// The jobs an accepted message starts: a delivery job per recipient hosted here, due now, and
/// the message's timeout job, due at `timeout_at`.
pub struct SendJobs<'a> {
    pub deliver_kind: &'a str,
    pub deliver_max_attempts: i32,
    pub deliver_run_at: DateTime<Utc>,
    pub timeout_kind: &'a str,
    pub timeout_max_attempts: i32,
}

/// What the statement found, and whether it wrote the message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SendOutcome {
    /// False when the client is no longer active or its secret changed (or it is gone).
    pub client_ok: Option<bool>,
    /// `None` when the sending address is not hosted here.
    pub sender_status: Option<String>,
    pub organization_status: Option<String>,
    pub granted: Option<bool>,
    /// The sender's timely-and-reliable setting (its own, else its organization's default).
    pub timely: Option<bool>,
    pub inserted: bool,
    /// Workers woken (a delivery job was queued): 0 or 1.
    pub notified: i64,
}

/// Checks and writes an accepted message in one statement: the client is still active with the
/// secret it was verified against, the sending address is hosted, granted to the client,
/// active and its organization Activated, and the message was built with the right
/// final-delivery request; then, unless the messageId was used before, the message, its recipients (routed `local` when
/// the address is hosted here) and its jobs are inserted. One statement is one round trip and
/// commits on its own, so no transaction stays open while the gateway waits for its turn on
/// the CPU. When a check fails nothing is written, and the returned columns say which; when
/// nothing was written and every check held, the messageId was used before.
/// Workers are woken (NOTIFY, delivered at commit) only when a delivery job is due now.
pub async fn send_message(
    db: &PgPool,
    m: &NewMessage<'_>,
    checks: &SendChecks<'_>,
    jobs: &SendJobs<'_>,
) -> Result<SendOutcome, sqlx::Error> {
    sqlx::query_as(
        "WITH c AS (
             SELECT $27::text IS NULL OR (status = 'active' AND secret_hash = $27) AS ok
             FROM api_clients WHERE id = $2),
         s AS (
             SELECT a.status, o.id AS organization_id, o.status AS organization_status,
                    EXISTS (SELECT 1 FROM messaging_grants g
                            WHERE g.organization_id = o.id AND g.client_id = $2) AS granted,
                    coalesce(a.settings -> 'timely_and_reliable_flag',
                             o.default_settings -> 'timely_and_reliable_flag') AS timely
             FROM direct_addresses a JOIN organizations o ON o.id = a.organization_id
             WHERE lower(a.domain) = lower($28) AND lower(a.username) = lower($29)),
         ok AS (
             SELECT s.organization_id FROM s, c
             WHERE c.ok AND s.granted AND s.status = 'active' AND s.organization_status = 'Activated'
               AND ($30 OR coalesce(jsonb_typeof(s.timely) = 'boolean' AND s.timely::boolean, false)) = $11),
         x AS (
             SELECT x.r, CASE WHEN EXISTS (
                         SELECT 1 FROM direct_addresses a
                         WHERE lower(a.domain) = lower(x.d) AND lower(a.username) = lower(x.u))
                     THEN 'local' ELSE 'remote' END AS route
             FROM unnest($19::text[], $20::text[], $21::text[]) AS x(r, u, d)),
         m AS (
             INSERT INTO messages (id, direction, client_id, organization_id, from_address, smtp_message_id,
                 size_bytes, vendor_message_id, request_hash, transaction_id, subject, xdm, final_delivery,
                 metadata, mime, xdr_message_id, xdr_unique_id, xdr_source_id, xdr_patient_id, created_at, timeout_at)
             SELECT $1, 'outbound', $2, ok.organization_id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $6,
                    $14, $15, $16, $17, $18
             FROM ok
             ON CONFLICT (client_id, vendor_message_id) WHERE vendor_message_id IS NOT NULL DO NOTHING
             RETURNING id),
         r AS (
             INSERT INTO message_recipients (message_id, recipient, status, route, updated_at)
             SELECT m.id, x.r, 'SMTPINIT', x.route, $17 FROM m, x),
         d AS (
             INSERT INTO jobs (kind, payload, max_attempts, run_at)
             SELECT $22, jsonb_build_object('message_id', m.id, 'recipient', x.r), $23, $24
             FROM m, x WHERE x.route = 'local'
             RETURNING id),
         t AS (
             INSERT INTO jobs (kind, payload, max_attempts, run_at)
             SELECT $25, jsonb_build_object('message_id', m.id), $26, $18 FROM m),
         n AS (SELECT pg_notify($31, '') WHERE EXISTS (SELECT 1 FROM d))
         SELECT (SELECT ok FROM c) AS client_ok,
                s.status AS sender_status, s.organization_status, s.granted,
                coalesce(jsonb_typeof(s.timely) = 'boolean' AND s.timely::boolean, false) AS timely,
                EXISTS (SELECT 1 FROM m) AS inserted, (SELECT count(*) FROM n) AS notified
         FROM (SELECT 1) AS one LEFT JOIN s ON true",
    )
    .bind(m.id)
    .bind(m.client_id)
    .bind(m.from_address)
    .bind(m.smtp_message_id)
    .bind(m.size_bytes)
    .bind(m.vendor_message_id)
    .bind(m.request_hash)
    .bind(m.transaction_id)
    .bind(m.subject)
    .bind(m.xdm)
    .bind(m.final_delivery)
    .bind(m.metadata)
    .bind(m.mime.as_bytes())
    .bind(m.xdr_unique_id)
    .bind(m.xdr_source_id)
    .bind(m.xdr_patient_id)
    .bind(m.created_at)
    .bind(m.timeout_at)
    .bind(m.recipients)
    .bind(checks.recipient_parts.0)
    .bind(checks.recipient_parts.1)
    .bind(jobs.deliver_kind)
    .bind(jobs.deliver_max_attempts)
    .bind(jobs.deliver_run_at)
    .bind(jobs.timeout_kind)
    .bind(jobs.timeout_max_attempts)
    .bind(checks.client_secret_hash)
    .bind(checks.from.1)
    .bind(checks.from.0)
    .bind(checks.asm_enabled)
    .bind(super::jobs::NOTIFY_CHANNEL)
    .fetch_one(db)
    .await
}

/// What delivery jobs need of a message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub client_id: Option<Uuid>,
    pub from_address: String,
    pub smtp_message_id: String,
    pub vendor_message_id: Option<String>,
    pub xdm: bool,
    pub final_delivery: bool,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

pub async fn message(db: &PgPool, id: Uuid) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, client_id, from_address, smtp_message_id, vendor_message_id, xdm, final_delivery,
                metadata, created_at
         FROM messages WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A message with its stored MIME, for delivery (one round trip; the notification jobs use
/// `message`, which leaves the MIME behind).
pub async fn message_with_mime(
    db: &PgPool,
    id: Uuid,
) -> Result<Option<(MessageRow, Option<Vec<u8>>)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        message: MessageRow,
        mime: Option<Vec<u8>>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, client_id, from_address, smtp_message_id, vendor_message_id, xdm, final_delivery,
                metadata, created_at, mime
         FROM messages WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| (r.message, r.mime)))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecipientRow {
    pub recipient: String,
    pub status: String,
    pub failure_reason: Option<String>,
}

pub async fn recipient(
    db: &PgPool,
    message: Uuid,
    recipient: &str,
) -> Result<Option<RecipientRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT recipient, status, failure_reason FROM message_recipients
         WHERE message_id = $1 AND recipient = $2",
    )
    .bind(message)
    .bind(recipient)
    .fetch_optional(db)
    .await
}

/// Moves one recipient to `status` if its current status is one of `from`; records the
/// notification either way. Returns whether it applied.
#[allow(clippy::too_many_arguments)]
pub async fn transition(
    conn: &mut PgConnection,
    message: Uuid,
    recipient: &str,
    status: &str,
    from: &[&str],
    failure: Option<(&str, &str)>,
    detail: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE message_recipients SET status = $3, failure_origin = $5, failure_reason = $6,
             updated_at = $7,
             delivered_at = CASE WHEN $3 IN ('DISPATCHED', 'DISPLAYED') THEN coalesce(delivered_at, $7) ELSE delivered_at END
         WHERE message_id = $1 AND recipient = $2 AND status = ANY($4)",
    )
    .bind(message)
    .bind(recipient)
    .bind(status)
    .bind(from)
    .bind(failure.map(|f| f.0))
    .bind(failure.map(|f| f.1))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let applied = r.rows_affected() == 1;
    sqlx::query(
        "INSERT INTO message_events (message_id, recipient, status, applied, detail, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(message)
    .bind(recipient)
    .bind(status)
    .bind(applied)
    .bind(detail)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(applied)
}

/// Recipients of a message still waiting for a final status.
pub async fn waiting_recipients(
    conn: &mut PgConnection,
    message: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT recipient FROM message_recipients
         WHERE message_id = $1 AND status IN ('SMTPINIT', 'PROCESSED') ORDER BY recipient FOR UPDATE",
    )
    .bind(message)
    .fetch_all(conn)
    .await
}

pub async fn count_attempt(db: &PgPool, message: Uuid, recipient: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE message_recipients SET delivery_attempts = delivery_attempts + 1
         WHERE message_id = $1 AND recipient = $2",
    )
    .bind(message)
    .bind(recipient)
    .execute(db)
    .await?;
    Ok(())
}

// ---- status queries and listing ------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatusRow {
    pub client_id: Option<Uuid>,
    pub from_address: String,
    pub recipient: String,
    pub vendor_message_id: String,
    pub transaction_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub status: String,
    pub failure_reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

const STATUS_SELECT: &str =
    "SELECT m.client_id, m.from_address, r.recipient, m.vendor_message_id, m.transaction_id,
        m.created_at, r.status, r.failure_reason, r.updated_at
     FROM messages m JOIN message_recipients r ON r.message_id = m.id";

/// Every recipient row of the messages with this vendor messageId from this address,
/// whichever vendor sent them (the caller checks ownership).
pub async fn status_by_vendor_id(
    db: &PgPool,
    vendor_message_id: &str,
    from_address: &str,
) -> Result<Vec<StatusRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{STATUS_SELECT}
         WHERE m.vendor_message_id = $1 AND lower(m.from_address) = lower($2)
         ORDER BY m.created_at, r.recipient"
    )))
    .bind(vendor_message_id)
    .bind(from_address)
    .fetch_all(db)
    .await
}

pub struct ListFilter<'a> {
    pub client: Uuid,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub status: Option<&'a str>,
    pub sender: Option<&'a str>,
    pub limit: i64,
    pub offset: i64,
}

/// A vendor's sent messages, newest first, one row per recipient; with the total count.
pub async fn list_sent(
    db: &PgPool,
    f: &ListFilter<'_>,
) -> Result<(Vec<StatusRow>, i64), sqlx::Error> {
    const WHERE: &str = "WHERE m.client_id = $1 AND m.direction = 'outbound'
           AND ($2::timestamptz IS NULL OR m.created_at >= $2)
           AND ($3::timestamptz IS NULL OR m.created_at < $3)
           AND ($4::text IS NULL OR r.status = $4)
           AND ($5::text IS NULL OR lower(m.from_address) = lower($5))";
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{STATUS_SELECT} {WHERE} ORDER BY m.created_at DESC, m.id, r.recipient LIMIT $6 OFFSET $7"
    )))
    .bind(f.client)
    .bind(f.from)
    .bind(f.until)
    .bind(f.status)
    .bind(f.sender)
    .bind(f.limit)
    .bind(f.offset)
    .fetch_all(db)
    .await?;
    let total = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM messages m JOIN message_recipients r ON r.message_id = m.id {WHERE}"
    )))
    .bind(f.client)
    .bind(f.from)
    .bind(f.until)
    .bind(f.status)
    .bind(f.sender)
    .fetch_one(db)
    .await?;
    Ok((rows, total))
}
