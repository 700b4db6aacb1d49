//! The jobs that carry an accepted message to its end: pushing it to a local recipient's
//! endpoint, notifying the sender of each status change, and timing out recipients that never
//! reach a final status.
//!
//! Every status change goes through `apply`, which updates the recipient only when the status
//! machine allows it and enqueues the notification in the same transaction. That is what makes
//! the final notification of a recipient happen exactly once, whichever job gets there first.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::MessagingContext;
use super::inbound::{self, Shape, XdmDelivery};
use crate::domain::messaging::{Status, Transition};
use crate::jobs::{self, Job, JobError, JobRegistry};
use crate::store::messaging as sql;
use crate::store::packed_mime;
use crate::webhooks::{EndpointAuth, Signed, SigningKey};

pub const DELIVER_JOB: &str = "messaging.deliver";
pub const NOTIFY_JOB: &str = "messaging.notify";
pub const TIMEOUT_JOB: &str = "messaging.timeout";

/// Purposes the vendor secrets are sealed under.
pub const AUTH_PURPOSE: &str = "hisp-gateway endpoint credentials";
pub const SIGNING_PURPOSE: &str = "hisp-gateway webhook signing key";

pub fn register_jobs(registry: &mut JobRegistry, db: PgPool, ctx: Arc<MessagingContext>) {
    let (d, c) = (db.clone(), ctx.clone());
    registry.register_with_retry(DELIVER_JOB, ctx.delivery_retry.clone(), move |job| {
        let (db, ctx) = (d.clone(), c.clone());
        async move { deliver(&db, &ctx, &job).await }
    });
    let (d, c) = (db.clone(), ctx.clone());
    registry.register_with_retry(NOTIFY_JOB, ctx.delivery_retry.clone(), move |job| {
        let (db, ctx) = (d.clone(), c.clone());
        async move { notify(&db, &ctx, &job).await }
    });
    registry.register(TIMEOUT_JOB, move |job| {
        let (db, ctx) = (db.clone(), ctx.clone());
        async move { time_out(&db, &ctx, &job).await }
    });
}

fn transient(e: impl std::fmt::Display) -> JobError {
    JobError::Transient(e.to_string())
}

fn message_of(job: &Job) -> Result<Uuid, JobError> {
    job.payload["message_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| JobError::Permanent("payload has no message_id".into()))
}

fn recipient_of(job: &Job) -> Result<String, JobError> {
    job.payload["recipient"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| JobError::Permanent("payload has no recipient".into()))
}

/// A status change of one recipient, with its failure and whether the sender hears of it.
pub struct Change<'a> {
    pub status: Status,
    pub failure: Option<(&'a str, &'a str)>,
    pub notify: bool,
}

/// Applies `change` if the status machine allows it, recording it either way, and queues the
/// sender's notification in the same transaction. Returns whether it applied.
pub async fn apply(
    db: &PgPool,
    ctx: &MessagingContext,
    message: Uuid,
    recipient: &str,
    change: Change<'_>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let applied = apply_in(&mut tx, ctx, message, recipient, &change, now).await?;
    tx.commit().await?;
    Ok(applied)
}

async fn apply_in(
    conn: &mut sqlx::PgConnection,
    ctx: &MessagingContext,
    message: Uuid,
    recipient: &str,
    change: &Change<'_>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let from: Vec<&str> = Status::ALL
        .into_iter()
        .filter(|s| s.on(change.status) == Transition::Apply)
        .map(Status::as_str)
        .collect();
    let reason = change.failure.map(|f| f.1);
    let applied = sql::transition(
        conn,
        message,
        recipient,
        change.status.as_str(),
        &from,
        change.failure,
        reason,
        now,
    )
    .await?;
    if applied
        && change.notify
        && let Some(n) = change.status.notification()
    {
        let description = match change.failure {
            Some((_, reason)) => reason.to_owned(),
            None => n.word.to_owned(),
        };
        jobs::enqueue(
            conn,
            &ctx.delivery_retry,
            NOTIFY_JOB,
            json!({
                "message_id": message,
                "recipient": recipient,
                "status": change.status,
                "description": description,
                "timestamp": now.format("%Y-%m-%dT%H:%M:%S%.6fz").to_string(),
            }),
        )
        .await?;
    }
    Ok(applied)
}

/// Pushes a message to a local recipient's endpoint: PROCESSED once accepted for it,
/// DISPATCHED when the endpoint answers 2xx, FAILED with the reason after the last attempt.
async fn deliver(db: &PgPool, ctx: &MessagingContext, job: &Job) -> Result<(), JobError> {
    let (id, recipient) = (message_of(job)?, recipient_of(job)?);
    let rec = sql::recipient(db, id, &recipient)
        .await
        .map_err(transient)?
        .ok_or_else(|| JobError::Permanent("no such recipient".into()))?;
    let status = Status::parse(&rec.status).map_err(|e| JobError::Permanent(e.to_string()))?;
    if status.is_final() {
        return Ok(());
    }
    let (msg, raw) = sql::message_with_mime(db, id)
        .await
        .map_err(transient)?
        .ok_or_else(|| JobError::Permanent("no such message".into()))?;
    let rcpt: &str = &recipient;
    let fail = |origin: &'static str, reason: String| async move {
        let change = Change {
            status: Status::Failed,
            failure: Some((origin, &reason)),
            notify: true,
        };
        apply(db, ctx, id, rcpt, change, job.now)
            .await
            .map(|_| ())
            .map_err(transient)
    };
    let endpoint = sql::endpoint_for_address(db, &recipient)
        .await
        .map_err(transient)?;
    let Some((endpoint, url)) = endpoint.and_then(|e| e.inbound_url.clone().map(|u| (e, u))) else {
        return fail(
            "local",
            format!("{recipient} has no inbound endpoint registered"),
        )
        .await;
    };
    if status == Status::SmtpInit {
        let change = Change {
            status: Status::Processed,
            failure: None,
            notify: true,
        };
        apply(db, ctx, id, &recipient, change, job.now)
            .await
            .map_err(transient)?;
    }
    let raw = raw.ok_or_else(|| JobError::Permanent("message has no MIME body".into()))?;
    let shape = Shape::parse(&endpoint.inbound_shape).unwrap_or(Shape::Flat);
    let xdm = XdmDelivery::parse(&endpoint.inbound_xdm).unwrap_or(XdmDelivery::Zip);
    // Reading the stored MIME (and an XDM package in it) and writing the JSON costs time in
    // proportion to the message: off the async threads, like a request's heavy work.
    let (to, row) = (recipient.clone(), msg.clone());
    let built = crate::cpu::run(move |_| {
        let raw = packed_mime::unpack(raw).map_err(|e| Err(e.to_string()))?;
        inbound::payload(&row, &raw, &to, shape, xdm).map_err(Ok)
    })
    .await;
    let body = match built {
        Ok(b) => b,
        Err(Ok(unreadable)) => return fail("local", unreadable).await,
        Err(Err(e)) => return Err(JobError::Permanent(e)),
    };
    let auth = open_auth(ctx, endpoint.inbound_auth.as_deref()).map_err(transient)?;
    sql::count_attempt(db, id, &recipient)
        .await
        .map_err(transient)?;
    let key = format!("{id}:{}", recipient.to_ascii_lowercase());
    // Signed with the receiving vendor's key, so its EHR can tell our pushes from forgeries.
    let signing = vendor_key(db, ctx, endpoint.client_id).await?;
    let signed = signing.as_ref().map(|k| Signed {
        key: k,
        id: &key,
        timestamp: Utc::now().timestamp(),
    });
    match ctx.pusher.post_json(&url, &auth, body, &key, signed).await {
        Ok(_) => {
            let change = Change {
                status: Status::Dispatched,
                failure: None,
                // The dispatched notification is what asmEnabled / timely & reliable ask for.
                notify: msg.final_delivery,
            };
            apply(db, ctx, id, &recipient, change, job.now)
                .await
                .map_err(transient)?;
            metrics::counter!("gateway_messages_delivered_total", "route" => "local").increment(1);
            Ok(())
        }
        Err(e) if job.attempt >= job.max_attempts => {
            metrics::counter!("gateway_messages_failed_total", "route" => "local").increment(1);
            fail(
                "remote",
                format!(
                    "inbound endpoint failed after {} attempts: {e}",
                    job.attempt
                ),
            )
            .await
        }
        Err(e) => Err(JobError::Transient(e.to_string())),
    }
}

/// Posts one status notification to the sender's DSN webhook, signed with the vendor's key.
async fn notify(db: &PgPool, ctx: &MessagingContext, job: &Job) -> Result<(), JobError> {
    let (id, recipient) = (message_of(job)?, recipient_of(job)?);
    let status: Status = serde_json::from_value(job.payload["status"].clone())
        .map_err(|e| JobError::Permanent(format!("bad status in payload: {e}")))?;
    let n = status
        .notification()
        .ok_or_else(|| JobError::Permanent("status has no notification".into()))?;
    let msg = sql::message(db, id)
        .await
        .map_err(transient)?
        .ok_or_else(|| JobError::Permanent("no such message".into()))?;
    let endpoint = sql::endpoint_for_address(db, &msg.from_address)
        .await
        .map_err(transient)?;
    let Some((endpoint, url)) = endpoint.and_then(|e| e.dsn_url.clone().map(|u| (e, u))) else {
        // The sender registered no webhook: it polls /dirmsg/status instead.
        return Ok(());
    };
    let client = msg
        .client_id
        .ok_or_else(|| JobError::Permanent("message has no sending client".into()))?;
    let key = vendor_key(db, ctx, client)
        .await?
        .ok_or_else(|| JobError::Permanent("the vendor has no signing key".into()))?;
    let body = json!({
        "Timestamp": job.payload["timestamp"],
        "Id": msg.vendor_message_id.unwrap_or(msg.smtp_message_id),
        "Status": n.status,
        "Description": job.payload["description"],
        "Disposition": n.disposition,
        "Recipient": recipient,
    });
    let body = serde_json::to_vec(&body).map_err(|e| JobError::Permanent(e.to_string()))?;
    let auth = open_auth(ctx, endpoint.dsn_auth.as_deref()).map_err(transient)?;
    let webhook_id = format!("msg_{}", job.id);
    let signed = Signed {
        key: &key,
        id: &webhook_id,
        timestamp: Utc::now().timestamp(),
    };
    match ctx
        .pusher
        .post_json(&url, &auth, body, &webhook_id, Some(signed))
        .await
    {
        Ok(_) => Ok(()),
        // Dead after the last attempt: visible with its error in `jobs list --state dead`.
        Err(e) if job.attempt >= job.max_attempts => Err(JobError::Permanent(e.to_string())),
        Err(e) => Err(JobError::Transient(e.to_string())),
    }
}

/// FAILED-TO for every recipient of a message still without a final status.
async fn time_out(db: &PgPool, ctx: &MessagingContext, job: &Job) -> Result<(), JobError> {
    let id = message_of(job)?;
    let reason = format!(
        "no final delivery status within {}",
        short_duration(ctx.config.timeout)
    );
    let mut tx = db.begin().await.map_err(transient)?;
    let waiting = sql::waiting_recipients(&mut tx, id)
        .await
        .map_err(transient)?;
    for recipient in &waiting {
        let change = Change {
            status: Status::FailedTimeout,
            failure: Some(("remote", &reason)),
            notify: true,
        };
        apply_in(&mut tx, ctx, id, recipient, &change, job.now)
            .await
            .map_err(transient)?;
    }
    tx.commit().await.map_err(transient)?;
    if !waiting.is_empty() {
        metrics::counter!("gateway_messages_timed_out_total").increment(waiting.len() as u64);
    }
    Ok(())
}

/// A vendor's webhook signing key (every granted vendor has one).
async fn vendor_key(
    db: &PgPool,
    ctx: &MessagingContext,
    client: Uuid,
) -> Result<Option<SigningKey>, JobError> {
    let Some(sealed) = sql::signing_key(db, client).await.map_err(transient)? else {
        return Ok(None);
    };
    let raw = ctx
        .kek
        .open_bytes(SIGNING_PURPOSE, &sealed)
        .map_err(|e| JobError::Permanent(e.to_string()))?;
    Ok(Some(SigningKey::from_bytes(raw)))
}

/// `60m`, `90s`: how the configuration spells it.
fn short_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

fn open_auth(ctx: &MessagingContext, sealed: Option<&[u8]>) -> anyhow::Result<EndpointAuth> {
    match sealed {
        None => Ok(EndpointAuth::None),
        Some(s) => Ok(serde_json::from_slice(
            &ctx.kek.open_bytes(AUTH_PURPOSE, s)?,
        )?),
    }
}
