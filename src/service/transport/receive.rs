//! Mail from other HISPs, after the SMTP listener committed it: opened, checked and delivered.
//!
//! The listener did no crypto: here the message is decrypted with one of its recipients'
//! keys, its signature verified and its signer checked against the *recipient* domain's trust
//! anchors (in date, not revoked, strong, bound to the From address or its domain), and the
//! wrapped message's From compared with the outer one. What fails is recorded on the
//! `inbound_mail` row with its reason; a sender we cannot trust is told nothing, and a trusted
//! one whose mail is refused all the same (its wrapped From differs) gets a failed MDN. An MDN or DSN moves a recipient of a message we sent; any other message is stored
//! and delivered through the same jobs as a vendor's message to a local address, and the MDNs
//! those jobs trigger go back to the sender.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::TransportContext;
use super::notifications::{self, Applied};
use crate::direct::mdn;
use crate::direct::smime::{self, Opened};
use crate::domain::pki::DirectAddress;
use crate::jobs::{self, Job, JobError};
use crate::service::messaging::delivery::DELIVER_JOB;
use crate::service::pki;
use crate::store::transport::{self as store, NewInbound};

fn transient(e: impl std::fmt::Display) -> JobError {
    JobError::Transient(e.to_string())
}

/// Recipients of one mail we look up keys for at most (the listener caps RCPT lower).
const MAX_RECIPIENTS: usize = 100;

pub async fn receive(db: &PgPool, t: &TransportContext, job: &Job) -> Result<(), JobError> {
    let id = job.payload["inboundId"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| JobError::Permanent("payload has no inboundId".into()))?;
    let Some(mail) = store::inbound_mail(db, id).await.map_err(transient)? else {
        return Err(JobError::Permanent("no such inbound mail".into()));
    };
    if mail.state != "received" {
        return Ok(());
    }
    let now = job.now;
    let recipients: Vec<DirectAddress> = mail
        .rcpt_to
        .iter()
        .take(MAX_RECIPIENTS)
        .filter_map(|r| DirectAddress::parse(r).ok())
        .collect();
    let mut keys = Vec::new();
    for r in &recipients {
        for k in pki::decryption_keys(db, &t.pki, r, now)
            .await
            .map_err(transient)?
        {
            let dup = keys.iter().any(|(c, _): &(openssl::x509::X509, _)| {
                c.serial_number() == k.0.serial_number()
                    && c.issuer_name_hash() == k.0.issuer_name_hash()
            });
            if !dup {
                keys.push(k);
            }
        }
    }
    let raw = mail.raw;
    let opened = crate::cpu::run(move |_| smime::open(&raw, &keys)).await;
    let opened = match opened {
        Ok(o) => o,
        Err(rejection) => {
            let reason = format!("{}: {rejection}", rejection.code());
            return reject(db, id, &reason).await;
        }
    };
    let Some(from) = opened
        .outer
        .from
        .as_deref()
        .and_then(|f| DirectAddress::parse(bare(f)).ok())
    else {
        return reject(db, id, "malformed: no usable From").await;
    };
    // The signer must be trusted by the domain of every recipient it reaches; the recipients
    // of a domain that does not trust it are dropped (and the mail refused if none is left).
    let mut trusted: Vec<DirectAddress> = Vec::new();
    let mut problem = None;
    // One decision per recipient domain (they are usually all one).
    let mut decided: Vec<(&str, bool)> = Vec::new();
    for r in &recipients {
        let domain = r.domain().as_str();
        let ok = match decided.iter().find(|(d, _)| *d == domain) {
            Some((_, ok)) => *ok,
            None => {
                let verdict = t
                    .discovery
                    .signer_verdict(&opened.signer, &opened.chain, domain, &from, now)
                    .await
                    .map_err(transient)?;
                if let Err(e) = &verdict {
                    problem = Some(e.to_string());
                }
                decided.push((domain, verdict.is_ok()));
                verdict.is_ok()
            }
        };
        if ok {
            trusted.push(r.clone());
        }
    }
    if trusted.is_empty() {
        let why = problem.unwrap_or_else(|| "no recipient".into());
        return reject(db, id, &format!("untrusted-signer: {why}")).await;
    }
    // The signer is trusted and speaks for the outer From; the wrapped message must come from
    // the same address. A trusted sender hears why its mail was refused.
    let inner_from = opened.inner_from.as_deref().map(bare);
    if !inner_from.is_some_and(|f| f.eq_ignore_ascii_case(&from.to_string())) {
        let original = message_id_of(&opened).map_or_else(String::new, |m| format!("<{m}>"));
        let reason = "from-mismatch: the wrapped message's From differs";
        return refuse(db, t, id, reason, &trusted, &from, &original).await;
    }

    if let Some(n) = mdn::parse(&opened.inner) {
        // Never answered: a notification does not get a notification.
        return match notifications::apply(db, t, n, &from).await? {
            Applied::Recorded => accept(db, id, Some("notification")).await,
            Applied::Unmatched(why) => {
                reject(db, id, &format!("unmatched-notification: {why}")).await
            }
        };
    }
    if mdn::is_notification(&opened.inner) {
        // A report we cannot read is still a report: delivering it as a message would answer
        // it with a processed MDN.
        return reject(
            db,
            id,
            "unmatched-notification: a report that cannot be read",
        )
        .await;
    }
    deliver(db, t, id, &opened, &from, &trusted).await
}

/// Stores the message for its trusted recipients and queues their deliveries, and marks the
/// mail accepted: one transaction.
async fn deliver(
    db: &PgPool,
    t: &TransportContext,
    inbound_id: Uuid,
    opened: &Opened,
    from: &DirectAddress,
    recipients: &[DirectAddress],
) -> Result<(), JobError> {
    let parsed = mail_parser::MessageParser::default().parse(&opened.inner);
    let message_id = message_id_of(opened)
        .unwrap_or_else(|| format!("{}@{}", Uuid::now_v7().simple(), from.domain()));
    let subject = parsed.as_ref().and_then(|m| m.subject().map(str::to_owned));
    // Asked for on the outer message, as the Implementation Guide says, or only on the wrapped
    // one, as some peers do.
    let final_delivery = opened.outer.final_delivery_requested
        || parsed
            .as_ref()
            .and_then(|m| m.header_raw("Disposition-Notification-Options"))
            .is_some_and(smime::asks_final_delivery);
    // MDNs go where the sender asked, but only within its own domain: a trusted signer cannot
    // point our MDNs at a third party.
    let notify_to = opened
        .outer
        .disposition_notification_to
        .as_deref()
        .map(bare)
        .and_then(|a| DirectAddress::parse(a).ok())
        .filter(|a| a.domain() == from.domain())
        .map_or_else(|| from.to_string(), |a| a.to_string());
    let recipients: Vec<String> = recipients.iter().map(ToString::to_string).collect();
    let id = Uuid::now_v7();
    let mut tx = db.begin().await.map_err(transient)?;
    let from_s = from.to_string();
    store::insert_inbound(
        &mut tx,
        &NewInbound {
            id,
            inbound_mail_id: inbound_id,
            from_address: &from_s,
            smtp_message_id: &message_id,
            subject: subject.as_deref(),
            final_delivery,
            notify_to: &notify_to,
            mime: &opened.inner,
            recipients: &recipients,
        },
    )
    .await
    .map_err(transient)?;
    for r in &recipients {
        jobs::enqueue(
            &mut tx,
            &t.messaging.delivery_retry,
            DELIVER_JOB,
            json!({ "message_id": id, "recipient": r }),
        )
        .await
        .map_err(transient)?;
    }
    if !store::finish_inbound(&mut tx, inbound_id, "accepted", None)
        .await
        .map_err(transient)?
    {
        // Another worker finished it first; its transaction holds the message.
        return Ok(());
    }
    tx.commit().await.map_err(transient)?;
    metrics::counter!("gateway_direct_received_total", "outcome" => "accepted").increment(1);
    Ok(())
}

async fn accept(db: &PgPool, id: Uuid, note: Option<&str>) -> Result<(), JobError> {
    let mut conn = db.acquire().await.map_err(transient)?;
    store::finish_inbound(&mut conn, id, "accepted", note)
        .await
        .map_err(transient)?;
    metrics::counter!("gateway_direct_received_total", "outcome" => "notification").increment(1);
    Ok(())
}

/// `reject`, and a failed MDN to the trusted sender from each recipient, in one transaction.
/// The MDN gives the code only (`from-mismatch`), not the detail.
async fn refuse(
    db: &PgPool,
    t: &TransportContext,
    id: Uuid,
    reason: &str,
    recipients: &[DirectAddress],
    sender: &DirectAddress,
    original_message_id: &str,
) -> Result<(), JobError> {
    let code = reason.split(':').next().unwrap_or(reason);
    let mut tx = db.begin().await.map_err(transient)?;
    if !store::finish_inbound(&mut tx, id, "rejected", Some(reason))
        .await
        .map_err(transient)?
    {
        return Ok(());
    }
    for r in recipients {
        jobs::enqueue(
            &mut tx,
            &t.messaging.delivery_retry,
            super::REFUSAL_JOB,
            json!({
                "recipient": r.to_string(),
                "to": sender.to_string(),
                "originalMessageId": original_message_id,
                "reason": code,
            }),
        )
        .await
        .map_err(transient)?;
    }
    tx.commit().await.map_err(transient)?;
    tracing::info!(inbound_id = %id, reason, "inbound Direct mail refused; its sender is told");
    metrics::counter!("gateway_direct_received_total", "outcome" => "rejected").increment(1);
    Ok(())
}

async fn reject(db: &PgPool, id: Uuid, reason: &str) -> Result<(), JobError> {
    let mut conn = db.acquire().await.map_err(transient)?;
    store::finish_inbound(&mut conn, id, "rejected", Some(reason))
        .await
        .map_err(transient)?;
    tracing::info!(inbound_id = %id, reason, "inbound Direct mail rejected");
    metrics::counter!("gateway_direct_received_total", "outcome" => "rejected").increment(1);
    Ok(())
}

/// The Message-ID the sender knows its message by, without angle brackets: the wrapped
/// message's, else the outer one's.
fn message_id_of(opened: &Opened) -> Option<String> {
    mail_parser::MessageParser::default()
        .parse_headers(&opened.inner)
        .and_then(|m| m.message_id().map(str::to_owned))
        .or_else(|| {
            opened.outer.message_id.as_deref().map(|m| {
                m.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
        })
        .filter(|m| !m.is_empty())
}

/// `Name <a@b>` or `<a@b>` → `a@b`.
fn bare(s: &str) -> &str {
    let s = s.trim();
    match (s.rfind('<'), s.rfind('>')) {
        (Some(i), Some(j)) if i < j => s[i + 1..j].trim(),
        _ => s,
    }
}
