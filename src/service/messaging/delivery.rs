//! The jobs that carry an accepted message to its end: pushing it to a local recipient's
//! endpoint, notifying the sender of each status change, and timing out recipients that never
//! reach a final status.
//!
//! Every status change goes through `apply`, which updates the recipient only when the status
//! machine allows it and enqueues the notification in the same transaction. That is what makes
//! the final notification of a recipient happen exactly once, whichever job gets there first.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::inbound::{self, Shape, XdmDelivery};
use super::{ADDRESS_ACTIVE, MessagingContext};
use crate::domain::failure::FailureCode;
use crate::domain::messaging::{Status, Transition};
use crate::domain::pki::organization_status;
use crate::jobs::{self, Job, JobError, JobRegistry};
use crate::store::messaging::{self as sql, FailureRecord, MessageRow};
use crate::store::{mailbox, packed_mime};
use crate::webhooks::{EndpointAuth, Signed, SigningKey};

pub const DELIVER_JOB: &str = "messaging.deliver";
pub const NOTIFY_JOB: &str = "messaging.notify";
pub const TIMEOUT_JOB: &str = "messaging.timeout";
pub const MAILBOX_EXPIRY_JOB: &str = "messaging.mailbox_expiry";

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
    let (d, c) = (db.clone(), ctx.clone());
    registry.register(TIMEOUT_JOB, move |job| {
        let (db, ctx) = (d.clone(), c.clone());
        async move { time_out(&db, &ctx, &job).await }
    });
    registry.register(MAILBOX_EXPIRY_JOB, move |job| {
        let (db, ctx) = (db.clone(), ctx.clone());
        async move { expire(&db, &ctx, &job).await }
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

/// Why a recipient failed: the code its sender reads, and the cause behind it for operators.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    /// 'local' (we could not send) or 'remote' (the receiving side did not take it).
    pub origin: &'a str,
    pub code: FailureCode,
    pub detail: &'a str,
    /// What the sender may read beside the code: an enhanced status code or a peer HISP's own
    /// reply (its words to the sender, not our internals).
    pub public: Option<&'a str>,
}

/// A status change of one recipient, with its failure and whether the sender hears of it.
pub struct Change<'a> {
    pub status: Status,
    pub failure: Option<Failure<'a>>,
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
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let applied = apply_in(&mut tx, ctx, message, recipient, &change).await?;
    tx.commit().await?;
    Ok(applied)
}

/// `apply` on the caller's transaction. The notification carries the time the status changed
/// (committed with it), and joins the recipient's chain of notification jobs, so its sender
/// gets them in the order the status changed, even when an earlier one has to be retried.
pub async fn apply_in(
    conn: &mut sqlx::PgConnection,
    ctx: &MessagingContext,
    message: Uuid,
    recipient: &str,
    change: &Change<'_>,
) -> Result<bool, sqlx::Error> {
    let from: Vec<&str> = Status::ALL
        .into_iter()
        .filter(|s| s.on(change.status) == Transition::Apply)
        .map(Status::as_str)
        .collect();
    let reason = change.failure.map(|f| match f.public {
        Some(public) => format!("{} ({public})", f.code),
        None => f.code.to_string(),
    });
    let record = change
        .failure
        .zip(reason.as_deref())
        .map(|(f, reason)| FailureRecord {
            origin: f.origin,
            reason,
            detail: f.detail,
        });
    let changed = sql::transition(
        conn,
        message,
        recipient,
        change.status.as_str(),
        &from,
        record,
    )
    .await?;
    if let Some(at) = changed
        && change.notify
        && let Some(n) = change.status.notification()
    {
        let description = reason.unwrap_or_else(|| n.word.to_owned());
        jobs::enqueue_chained(
            conn,
            &ctx.delivery_retry,
            NOTIFY_JOB,
            &format!("notify:{message}:{}", recipient.to_ascii_lowercase()),
            json!({
                "message_id": message,
                "recipient": recipient,
                "status": change.status,
                "description": description,
                "timestamp": at.format("%Y-%m-%dT%H:%M:%S%.6fz").to_string(),
            }),
        )
        .await?;
    }
    Ok(changed.is_some())
}

/// Carries a message to a local recipient. An address that does not exist, is disabled or
/// has no certificate fails at once with its code. An address with an inbound URL gets the
/// push: PROCESSED once accepted for it, DISPATCHED when the endpoint answers 2xx, FAILED
/// after the last attempt. An address without one gets the message in its pull mailbox
/// (PROCESSED), where acknowledgement makes it DISPATCHED.
async fn deliver(db: &PgPool, ctx: &MessagingContext, job: &Job) -> Result<(), JobError> {
    let (id, recipient) = (message_of(job)?, recipient_of(job)?);
    let rec = sql::recipient(db, id, &recipient)
        .await
        .map_err(transient)?
        .ok_or_else(|| JobError::Permanent("no such recipient".into()))?;
    let status = Status::parse(&rec.status).map_err(|e| JobError::Permanent(e.to_string()))?;
    if status.is_final() || rec.mailbox_id.is_some() {
        return Ok(());
    }
    let rcpt: &str = &recipient;
    let fail = |origin: &'static str, code: FailureCode, detail: String| async move {
        let change = Change {
            status: Status::Failed,
            failure: Some(Failure {
                origin,
                code,
                detail: &detail,
                public: None,
            }),
            notify: true,
        };
        metrics::counter!("gateway_messages_failed_total", "route" => "local").increment(1);
        apply(db, ctx, id, rcpt, change)
            .await
            .map(|_| ())
            .map_err(transient)
    };
    let Some(address) = sql::find_address(db, &recipient, Uuid::nil())
        .await
        .map_err(transient)?
    else {
        return fail(
            "remote",
            FailureCode::RecipientUnknown,
            "no such address at a domain hosted here".into(),
        )
        .await;
    };
    if address.status != ADDRESS_ACTIVE {
        let detail = format!("the address is {}", address.status);
        return fail("remote", FailureCode::RecipientDisabled, detail).await;
    }
    if address.organization_status != organization_status::ACTIVATED {
        // Its certificates are not issued (or no longer valid): nobody could encrypt to it.
        let detail = format!(
            "the address's organization is {}",
            address.organization_status
        );
        return fail("remote", FailureCode::NoTrustedRecipients, detail).await;
    }
    let endpoint = sql::endpoint_of(db, address.id).await.map_err(transient)?;
    let Some((endpoint, url)) = endpoint.and_then(|e| e.inbound_url.clone().map(|u| (e, u))) else {
        return to_mailbox(db, ctx, id, &recipient).await;
    };
    if status == Status::SmtpInit {
        let change = Change {
            status: Status::Processed,
            failure: None,
            notify: true,
        };
        apply(db, ctx, id, &recipient, change)
            .await
            .map_err(transient)?;
    }
    let (msg, raw) = sql::message_with_mime(db, id)
        .await
        .map_err(transient)?
        .ok_or_else(|| JobError::Permanent("no such message".into()))?;
    let shape = Shape::parse(&endpoint.inbound_shape).unwrap_or(Shape::Flat);
    let xdm = XdmDelivery::parse(&endpoint.inbound_xdm).unwrap_or(XdmDelivery::Zip);
    let body = match inbound_json(msg.clone(), raw, &recipient, shape, xdm).await {
        Ok(b) => b,
        Err(Ok(unreadable)) => {
            return fail("local", FailureCode::InternalError, unreadable).await;
        }
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
            apply(db, ctx, id, &recipient, change)
                .await
                .map_err(transient)?;
            metrics::counter!("gateway_messages_delivered_total", "route" => "local").increment(1);
            Ok(())
        }
        Err(e) if job.attempt >= job.max_attempts => {
            let detail = format!(
                "inbound endpoint failed after {} attempts: {e}",
                job.attempt
            );
            fail("remote", FailureCode::DeliveryFailed, detail).await
        }
        Err(e) => Err(JobError::Transient(e.to_string())),
    }
}

/// The inbound JSON of a stored message for `recipient`. Reading the MIME (and an XDM package
/// in it) and writing the JSON costs time in proportion to the message: off the async
/// threads, like a request's heavy work. `Err(Ok(_))`: the stored message cannot be read.
pub async fn inbound_json(
    msg: MessageRow,
    raw: Option<Vec<u8>>,
    recipient: &str,
    shape: Shape,
    xdm: XdmDelivery,
) -> Result<Vec<u8>, Result<String, String>> {
    let raw = raw.ok_or_else(|| Err("message has no MIME body".to_owned()))?;
    let to = recipient.to_owned();
    crate::cpu::run(move |_| {
        let raw = packed_mime::unpack(raw).map_err(|e| Err(e.to_string()))?;
        inbound::payload(&msg, &raw, &to, shape, xdm).map_err(Ok)
    })
    .await
}

/// A message for an address without an inbound URL: PROCESSED (its sender is told), then into
/// the address's mailbox until acknowledged or `mailbox_hold` ends, all in one transaction.
async fn to_mailbox(
    db: &PgPool,
    ctx: &MessagingContext,
    message: Uuid,
    recipient: &str,
) -> Result<(), JobError> {
    let mut tx = db.begin().await.map_err(transient)?;
    let processed = Change {
        status: Status::Processed,
        failure: None,
        notify: true,
    };
    apply_in(&mut tx, ctx, message, recipient, &processed)
        .await
        .map_err(transient)?;
    let until = Utc::now() + ctx.config.mailbox_hold;
    if mailbox::enter(&mut tx, message, recipient, until)
        .await
        .map_err(transient)?
        .is_some()
    {
        jobs::enqueue_at(
            &mut tx,
            &ctx.retry,
            MAILBOX_EXPIRY_JOB,
            json!({ "message_id": message, "recipient": recipient }),
            until,
        )
        .await
        .map_err(transient)?;
    }
    tx.commit().await.map_err(transient)
}

/// FAILED (not retrieved) for a mailbox message nobody acknowledged within the hold. An
/// acknowledgement that got there first has made it DISPATCHED, which this cannot change.
async fn expire(db: &PgPool, ctx: &MessagingContext, job: &Job) -> Result<(), JobError> {
    let (id, recipient) = (message_of(job)?, recipient_of(job)?);
    let detail = format!(
        "not acknowledged from the mailbox within {}",
        short_duration(ctx.config.mailbox_hold)
    );
    let change = Change {
        status: Status::Failed,
        failure: Some(Failure {
            origin: "remote",
            code: FailureCode::NotRetrieved,
            detail: &detail,
            public: None,
        }),
        notify: true,
    };
    if apply(db, ctx, id, &recipient, change)
        .await
        .map_err(transient)?
    {
        metrics::counter!("gateway_messages_failed_total", "route" => "mailbox").increment(1);
    }
    Ok(())
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
    if msg.direction == "inbound" {
        // Sent by another HISP: it hears of the change by MDN.
        let peers = ctx.peers.get().ok_or_else(|| {
            JobError::Permanent("no Direct transport to answer another HISP".into())
        })?;
        return peers.notify(&msg, &recipient, status, job).await;
    }
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
    let detail = format!(
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
            failure: Some(Failure {
                origin: "remote",
                code: FailureCode::NoFinalStatus,
                detail: &detail,
                public: None,
            }),
            notify: true,
        };
        apply_in(&mut tx, ctx, id, recipient, &change)
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

/// `7d`, `60m`, `90s`: how the configuration spells it.
fn short_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

fn open_auth(ctx: &MessagingContext, sealed: Option<&[u8]>) -> anyhow::Result<EndpointAuth> {
    match sealed {
        None => Ok(EndpointAuth::None),
        Some(s) => Ok(serde_json::from_slice(
            &ctx.kek.open_bytes(AUTH_PURPOSE, s)?,
        )?),
    }
}
