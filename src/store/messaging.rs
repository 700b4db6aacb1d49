//! SQL of REST messaging: grants, endpoints, tokens, messages, recipients and their events.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::packed_mime::PackedMime;

// ---- grants -------------------------------------------------------------------------------

/// Also the REST answer's shape: camelCase, like the rest of the REST surface.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
#[serde(rename_all = "camelCase")]
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

/// A message as the send path writes it, with what the statement checks before writing it.
pub struct NewMessage {
    pub id: Uuid,
    pub client_id: Uuid,
    pub from_address: String,
    pub smtp_message_id: String,
    pub size_bytes: i64,
    pub vendor_message_id: String,
    pub request_hash: Vec<u8>,
    pub transaction_id: Uuid,
    pub subject: Option<String>,
    pub xdm: bool,
    pub final_delivery: bool,
    pub metadata: serde_json::Value,
    pub mime: PackedMime,
    pub xdr_unique_id: Option<String>,
    pub xdr_source_id: Option<String>,
    pub xdr_patient_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub timeout_at: DateTime<Utc>,
    /// As the vendor wrote them; one recipient row each, all starting SMTPINIT.
    pub recipients: Vec<String>,
    /// `(local part, domain)` of each recipient, in the order of `recipients`.
    pub recipient_parts: Vec<(String, String)>,
    /// The stored secret hash the client was verified against; `None` when its credentials
    /// were checked against the database already in this request.
    pub client_secret_hash: Option<String>,
    /// `(local part, domain)` of the sender.
    pub from_parts: (String, String),
    /// The request's asmEnabled. The message was built for `final_delivery`, which must equal
    /// asmEnabled or the sender's timely-and-reliable setting.
    pub asm_enabled: bool,
}

/// The jobs an accepted message starts: a delivery job per recipient hosted here, due now, and
/// the message's timeout job, due at its `timeout_at`.
#[derive(Debug, Clone, Copy)]
pub struct SendJobs {
    pub deliver_kind: &'static str,
    /// The job that sends a message to the recipients at one remote domain; `None` when the
    /// Direct transport is off (such recipients then wait for their timeout).
    pub remote_kind: Option<&'static str>,
    pub deliver_max_attempts: i32,
    pub timeout_kind: &'static str,
    pub timeout_max_attempts: i32,
}

/// What the statement found for one message, and whether it wrote it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SendOutcome {
    /// False when the client is no longer active or its secret changed; `None` when it is gone.
    pub client_ok: Option<bool>,
    /// `None` when the sending address is not hosted here.
    pub sender_status: Option<String>,
    pub organization_status: Option<String>,
    pub granted: Option<bool>,
    /// The sender's timely-and-reliable setting (its own, else its organization's default).
    pub timely: Option<bool>,
    pub inserted: bool,
}

/// Checks and writes accepted messages, any number, in one statement. For each message: the
/// client is still active with the secret it was verified against, the sending address is
/// hosted, granted to the client, active and its organization Activated, and the message was
/// built with the right final-delivery request; then, unless the messageId was used before,
/// the message, its recipients (routed `local` when their domain is hosted here, whether or
/// not the address exists: the delivery job fails an unknown one at once) and its jobs
/// are inserted. The checks run once per distinct client and sender, not once per message.
/// One statement commits on its own, so no transaction stays open while the gateway waits for
/// its turn on the CPU, and a failure writes nothing of any message. Outcomes come back in the
/// order of `messages`. Remote recipients get one send job per message and domain. When a
/// check fails nothing of that message is written, and its outcome
/// says which; when nothing was written and every check held, the messageId was used before
/// (also by an earlier message of the same call). Workers are woken (NOTIFY, delivered at
/// commit) only when a delivery job is due now.
pub async fn send_messages(
    db: &PgPool,
    messages: &[NewMessage],
    jobs: SendJobs,
) -> Result<Vec<SendOutcome>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        n: i32,
        #[sqlx(flatten)]
        outcome: SendOutcome,
    }
    let n: Vec<i32> = (0..messages.len() as i32).collect();
    let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
    let clients: Vec<Uuid> = messages.iter().map(|m| m.client_id).collect();
    let secrets: Vec<Option<&str>> = messages
        .iter()
        .map(|m| m.client_secret_hash.as_deref())
        .collect();
    let from: Vec<&str> = messages.iter().map(|m| m.from_address.as_str()).collect();
    let smtp_ids: Vec<&str> = messages
        .iter()
        .map(|m| m.smtp_message_id.as_str())
        .collect();
    let sizes: Vec<i64> = messages.iter().map(|m| m.size_bytes).collect();
    let vendor_ids: Vec<&str> = messages
        .iter()
        .map(|m| m.vendor_message_id.as_str())
        .collect();
    let hashes: Vec<&[u8]> = messages.iter().map(|m| m.request_hash.as_slice()).collect();
    let transactions: Vec<Uuid> = messages.iter().map(|m| m.transaction_id).collect();
    let subjects: Vec<Option<&str>> = messages.iter().map(|m| m.subject.as_deref()).collect();
    let xdm: Vec<bool> = messages.iter().map(|m| m.xdm).collect();
    let final_delivery: Vec<bool> = messages.iter().map(|m| m.final_delivery).collect();
    let metadata: Vec<sqlx::types::Json<&serde_json::Value>> = messages
        .iter()
        .map(|m| sqlx::types::Json(&m.metadata))
        .collect();
    let mime: Vec<&[u8]> = messages.iter().map(|m| m.mime.as_bytes()).collect();
    let unique_ids: Vec<Option<&str>> = messages
        .iter()
        .map(|m| m.xdr_unique_id.as_deref())
        .collect();
    let source_ids: Vec<Option<&str>> = messages
        .iter()
        .map(|m| m.xdr_source_id.as_deref())
        .collect();
    let patient_ids: Vec<Option<&str>> = messages
        .iter()
        .map(|m| m.xdr_patient_id.as_deref())
        .collect();
    let created: Vec<DateTime<Utc>> = messages.iter().map(|m| m.created_at).collect();
    let timeouts: Vec<DateTime<Utc>> = messages.iter().map(|m| m.timeout_at).collect();
    let from_users: Vec<&str> = messages.iter().map(|m| m.from_parts.0.as_str()).collect();
    let from_domains: Vec<&str> = messages.iter().map(|m| m.from_parts.1.as_str()).collect();
    let asm: Vec<bool> = messages.iter().map(|m| m.asm_enabled).collect();
    // Recipients flattened, each with the position of its message.
    let mut rcpt_n = Vec::new();
    let (mut rcpts, mut rcpt_users, mut rcpt_domains) = (Vec::new(), Vec::new(), Vec::new());
    for (i, m) in messages.iter().enumerate() {
        for (r, (u, d)) in m.recipients.iter().zip(&m.recipient_parts) {
            rcpt_n.push(i as i32);
            rcpts.push(r.as_str());
            rcpt_users.push(u.as_str());
            rcpt_domains.push(d.as_str());
        }
    }
    let rows: Vec<Row> = sqlx::query_as(
        "WITH i AS (
             SELECT * FROM unnest($1::int4[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                                  $7::int8[], $8::text[], $9::bytea[], $10::uuid[], $11::text[], $12::bool[],
                                  $13::bool[], $14::jsonb[], $15::bytea[], $16::text[], $17::text[], $18::text[],
                                  $19::timestamptz[], $20::timestamptz[], $21::text[], $22::text[], $23::bool[])
                 AS i(n, id, client_id, secret, from_address, smtp_message_id, size_bytes, vendor_message_id,
                      request_hash, transaction_id, subject, xdm, final_delivery, metadata, mime,
                      xdr_unique_id, xdr_source_id, xdr_patient_id, created_at, timeout_at,
                      from_user, from_domain, asm)),
         c AS (
             SELECT k.client_id, k.secret,
                    (SELECT k.secret IS NULL OR (a.status = 'active' AND a.secret_hash = k.secret)
                     FROM api_clients a WHERE a.id = k.client_id) AS ok
             FROM (SELECT DISTINCT client_id, secret FROM i) AS k),
         s AS (
             SELECT k.client_id, k.from_user, k.from_domain, a.status, o.id AS organization_id,
                    o.status AS organization_status,
                    EXISTS (SELECT 1 FROM messaging_grants g
                            WHERE g.organization_id = o.id AND g.client_id = k.client_id) AS granted,
                    CASE WHEN jsonb_typeof(t.flag) = 'boolean' THEN t.flag::boolean ELSE false END AS timely
             FROM (SELECT DISTINCT client_id, from_user, from_domain FROM i) AS k
             JOIN direct_addresses a
               ON lower(a.domain) = lower(k.from_domain) AND lower(a.username) = lower(k.from_user)
             JOIN organizations o ON o.id = a.organization_id
             CROSS JOIN LATERAL (SELECT coalesce(a.settings -> 'timely_and_reliable_flag',
                                                 o.default_settings -> 'timely_and_reliable_flag') AS flag) AS t),
         ok AS (
             SELECT i.n, s.organization_id
             FROM i
             JOIN c ON c.client_id = i.client_id AND c.secret IS NOT DISTINCT FROM i.secret
             JOIN s ON s.client_id = i.client_id AND s.from_user = i.from_user AND s.from_domain = i.from_domain
             WHERE c.ok AND s.granted AND s.status = 'active' AND s.organization_status = 'Activated'
               AND (i.asm OR s.timely) = i.final_delivery),
         x AS (
             SELECT x.n, x.r, x.d, CASE WHEN EXISTS (
                         SELECT 1 FROM direct_addresses a WHERE lower(a.domain) = lower(x.d))
                       OR EXISTS (SELECT 1 FROM organizations o WHERE lower(o.domain) = lower(x.d))
                     THEN 'local' ELSE 'remote' END AS route
             FROM unnest($24::int4[], $25::text[], $26::text[], $27::text[]) AS x(n, r, u, d)),
         m AS (
             INSERT INTO messages (id, direction, client_id, organization_id, from_address, smtp_message_id,
                 size_bytes, vendor_message_id, request_hash, transaction_id, subject, xdm, final_delivery,
                 metadata, mime, xdr_message_id, xdr_unique_id, xdr_source_id, xdr_patient_id, created_at, timeout_at)
             SELECT i.id, 'outbound', i.client_id, ok.organization_id, i.from_address, i.smtp_message_id,
                    i.size_bytes, i.vendor_message_id, i.request_hash, i.transaction_id, i.subject, i.xdm,
                    i.final_delivery, i.metadata, i.mime, i.vendor_message_id, i.xdr_unique_id,
                    i.xdr_source_id, i.xdr_patient_id, i.created_at, i.timeout_at
             FROM i JOIN ok ON ok.n = i.n
             ORDER BY i.n
             ON CONFLICT (client_id, vendor_message_id) WHERE vendor_message_id IS NOT NULL DO NOTHING
             RETURNING id),
         w AS (SELECT i.n, i.id, i.created_at, i.timeout_at FROM m JOIN i ON i.id = m.id),
         r AS (
             INSERT INTO message_recipients (message_id, recipient, status, route, updated_at)
             SELECT w.id, x.r, 'SMTPINIT', x.route, w.created_at FROM w JOIN x ON x.n = w.n),
         d AS (
             INSERT INTO jobs (kind, payload, max_attempts, run_at)
             SELECT $28, jsonb_build_object('message_id', w.id, 'recipient', x.r), $29, now()
             FROM w JOIN x ON x.n = w.n WHERE x.route = 'local'
             RETURNING id),
         t AS (
             INSERT INTO jobs (kind, payload, max_attempts, run_at)
             SELECT $30, jsonb_build_object('message_id', w.id), $31, w.timeout_at FROM w),
         o AS (
             INSERT INTO jobs (kind, payload, max_attempts, run_at)
             SELECT $33, jsonb_build_object('message_id', g.id, 'domain', g.d), $29, now()
             FROM (SELECT DISTINCT w.id, lower(x.d) AS d
                   FROM w JOIN x ON x.n = w.n WHERE x.route = 'remote') AS g
             WHERE $33::text IS NOT NULL
             RETURNING id),
         wake AS (SELECT pg_notify($32, '')
                  WHERE EXISTS (SELECT 1 FROM d) OR EXISTS (SELECT 1 FROM o))
         SELECT i.n, c.ok AS client_ok, s.status AS sender_status, s.organization_status, s.granted,
                s.timely, EXISTS (SELECT 1 FROM w WHERE w.n = i.n) AS inserted,
                (SELECT count(*) FROM wake) AS woken
         FROM i
         LEFT JOIN c ON c.client_id = i.client_id AND c.secret IS NOT DISTINCT FROM i.secret
         LEFT JOIN s ON s.client_id = i.client_id AND s.from_user = i.from_user AND s.from_domain = i.from_domain
         ORDER BY i.n",
    )
    .bind(&n)
    .bind(&ids)
    .bind(&clients)
    .bind(&secrets)
    .bind(&from)
    .bind(&smtp_ids)
    .bind(&sizes)
    .bind(&vendor_ids)
    .bind(&hashes)
    .bind(&transactions)
    .bind(&subjects)
    .bind(&xdm)
    .bind(&final_delivery)
    .bind(&metadata)
    .bind(&mime)
    .bind(&unique_ids)
    .bind(&source_ids)
    .bind(&patient_ids)
    .bind(&created)
    .bind(&timeouts)
    .bind(&from_users)
    .bind(&from_domains)
    .bind(&asm)
    .bind(&rcpt_n)
    .bind(&rcpts)
    .bind(&rcpt_users)
    .bind(&rcpt_domains)
    .bind(jobs.deliver_kind)
    .bind(jobs.deliver_max_attempts)
    .bind(jobs.timeout_kind)
    .bind(jobs.timeout_max_attempts)
    .bind(super::jobs::NOTIFY_CHANNEL)
    .bind(jobs.remote_kind)
    .fetch_all(db)
    .await?;
    // One row per message, in order: anything else is a broken statement, not a refusal.
    if rows.len() != messages.len() || rows.iter().enumerate().any(|(i, r)| r.n != i as i32) {
        return Err(sqlx::Error::Protocol(format!(
            "the send statement answered {} rows for {} messages",
            rows.len(),
            messages.len()
        )));
    }
    Ok(rows.into_iter().map(|r| r.outcome).collect())
}

/// What delivery jobs need of a message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    /// 'outbound' (one of our vendors sent it) or 'inbound' (another HISP did).
    pub direction: String,
    pub client_id: Option<Uuid>,
    pub from_address: String,
    pub smtp_message_id: String,
    pub vendor_message_id: Option<String>,
    pub xdm: bool,
    pub final_delivery: bool,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub subject: Option<String>,
    /// For a message from another HISP: where its MDNs go.
    pub notify_to: Option<String>,
}

pub async fn message(db: &PgPool, id: Uuid) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, direction, client_id, from_address, smtp_message_id, vendor_message_id, xdm,
                final_delivery, metadata, created_at, subject, notify_to
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
        "SELECT id, direction, client_id, from_address, smtp_message_id, vendor_message_id, xdm,
                final_delivery, metadata, created_at, subject, notify_to, mime
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
    /// Set once the message waits in the recipient's pull mailbox.
    pub mailbox_id: Option<i64>,
}

pub async fn recipient(
    db: &PgPool,
    message: Uuid,
    recipient: &str,
) -> Result<Option<RecipientRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT recipient, status, failure_reason, mailbox_id FROM message_recipients
         WHERE message_id = $1 AND recipient = $2",
    )
    .bind(message)
    .bind(recipient)
    .fetch_optional(db)
    .await
}

/// A failure as stored: who failed ('local' or 'remote'), the coded reason the sender sees and
/// the cause behind it, for operators.
#[derive(Debug, Clone, Copy)]
pub struct FailureRecord<'a> {
    pub origin: &'a str,
    pub reason: &'a str,
    pub detail: &'a str,
}

/// Moves one recipient to `status` if its current status is one of `from`; records the
/// notification either way. Returns when the change happened, if it applied: the database's
/// clock at the change, and always later than the recipient's previous change, so the
/// notifications of one recipient carry increasing times whichever replica made them.
pub async fn transition(
    conn: &mut PgConnection,
    message: Uuid,
    recipient: &str,
    status: &str,
    from: &[&str],
    failure: Option<FailureRecord<'_>>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let changed: Option<DateTime<Utc>> = sqlx::query_scalar(
        "UPDATE message_recipients SET status = $3, failure_origin = $5, failure_reason = $6,
             failure_detail = $7,
             updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond'),
             delivered_at = CASE WHEN $3 IN ('DISPATCHED', 'DISPLAYED')
                                 THEN coalesce(delivered_at, clock_timestamp()) ELSE delivered_at END
         WHERE message_id = $1 AND recipient = $2 AND status = ANY($4)
         RETURNING updated_at",
    )
    .bind(message)
    .bind(recipient)
    .bind(status)
    .bind(from)
    .bind(failure.map(|f| f.origin))
    .bind(failure.map(|f| f.reason))
    .bind(failure.map(|f| f.detail))
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO message_events (message_id, recipient, status, applied, detail, created_at)
         VALUES ($1, $2, $3, $4, $5, coalesce($6, clock_timestamp()))",
    )
    .bind(message)
    .bind(recipient)
    .bind(status)
    .bind(changed.is_some())
    .bind(failure.map(|f| f.detail))
    .bind(changed)
    .execute(conn)
    .await?;
    Ok(changed)
}

/// Recipients of a message still waiting for a final status, but for those waiting in a
/// mailbox: they have their own, longer hold.
pub async fn waiting_recipients(
    conn: &mut PgConnection,
    message: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT recipient FROM message_recipients
         WHERE message_id = $1 AND status IN ('SMTPINIT', 'PROCESSED') AND mailbox_id IS NULL
         ORDER BY recipient FOR UPDATE",
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

/// Every recipient row of the message with this vendor messageId from this address that
/// `client` sent (found by the vendor's unique messageId index).
pub async fn status_by_vendor_id(
    db: &PgPool,
    client: Uuid,
    vendor_message_id: &str,
    from_address: &str,
) -> Result<Vec<StatusRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{STATUS_SELECT}
         WHERE m.client_id = $1 AND m.vendor_message_id = $2 AND lower(m.from_address) = lower($3)
         ORDER BY m.created_at, r.recipient"
    )))
    .bind(client)
    .bind(vendor_message_id)
    .bind(from_address)
    .fetch_all(db)
    .await
}

/// A message as one of its local recipients received it, found by the sender's messageId:
/// the vendor ids of the clients that may send from `from_address` narrow it to the unique
/// index of (client, messageId).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReceivedRow {
    pub message: Uuid,
    pub direction: String,
    pub recipient: String,
    pub status: String,
}

pub async fn received(
    db: &PgPool,
    message_id: &str,
    from_address: &str,
    recipient: &str,
) -> Result<Option<ReceivedRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.id AS message, m.direction, r.recipient, r.status
         FROM messages m JOIN message_recipients r ON r.message_id = m.id
         WHERE ((m.direction = 'outbound' AND m.vendor_message_id = $1
                 AND m.client_id IN (
                     SELECT g.client_id FROM messaging_grants g
                     JOIN direct_addresses a ON a.organization_id = g.organization_id
                     WHERE lower(a.domain) = lower($3) AND lower(a.username) = lower($2)))
                OR (m.direction = 'inbound' AND m.smtp_message_id = $1))
           AND lower(m.from_address) = lower($2 || '@' || $3)
           AND lower(r.recipient) = lower($4) AND r.route = 'local'
         ORDER BY m.created_at DESC LIMIT 1",
    )
    .bind(message_id)
    .bind(split(from_address).0)
    .bind(split(from_address).1)
    .bind(recipient)
    .fetch_optional(db)
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
