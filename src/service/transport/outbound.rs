//! Sending a message to the recipients at one other HISP's domain.
//!
//! One job per message and domain: find each recipient's certificate, seal the stored MIME
//! once for all of them (signed by the sender, encrypted to every recipient certificate), and
//! hand it over in one SMTP transaction. Each recipient then has its own outcome: taken by the
//! peer (SMTPINIT until its MDNs come), refused for good (FAILED with the peer's reply), or
//! deferred (the job is tried again on the delivery schedule, for those only).

use chrono::Utc;
use openssl::x509::X509;
use sqlx::PgPool;
use uuid::Uuid;

use super::smtp_client::{self, Outcome};
use super::{RouteError, TransportContext};
use crate::direct::smime::{self, Envelope, Signer};
use crate::domain::failure::FailureCode;
use crate::domain::messaging::Status;
use crate::domain::pki::{DirectAddress, KeyUse};
use crate::jobs::{Job, JobError};
use crate::service::messaging::delivery::{self, Change, Failure};
use crate::service::pki;
use crate::service::trust::DiscoveryError;
use crate::store::messaging as sql;
use crate::store::{packed_mime, transport as store};

fn transient(e: impl std::fmt::Display) -> JobError {
    JobError::Transient(e.to_string())
}

/// FAILED for `recipient`: the sender reads the code and its public part, ops the detail.
async fn fail(
    db: &PgPool,
    t: &TransportContext,
    message: Uuid,
    recipient: &str,
    failure: Failure<'_>,
) -> Result<(), JobError> {
    let change = Change {
        status: Status::Failed,
        failure: Some(failure),
        notify: true,
    };
    metrics::counter!("gateway_messages_failed_total", "route" => "remote").increment(1);
    delivery::apply(db, &t.messaging, message, recipient, change)
        .await
        .map(|_| ())
        .map_err(transient)
}

/// A failure with nothing public beside its code.
fn coded<'a>(origin: &'a str, code: FailureCode, detail: &'a str) -> Failure<'a> {
    Failure {
        origin,
        code,
        detail,
        public: None,
    }
}

pub async fn send(db: &PgPool, t: &TransportContext, job: &Job) -> Result<(), JobError> {
    let id = job.payload["message_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| JobError::Permanent("payload has no message_id".into()))?;
    let domain = job.payload["domain"]
        .as_str()
        .ok_or_else(|| JobError::Permanent("payload has no domain".into()))?
        .to_owned();
    let last = job.attempt >= job.max_attempts;
    let pending = store::unsent_recipients(db, id, &domain)
        .await
        .map_err(transient)?;
    if pending.is_empty() {
        return Ok(());
    }
    let (msg, raw) = sql::message_with_mime(db, id)
        .await
        .map_err(transient)?
        .ok_or_else(|| JobError::Permanent("no such message".into()))?;
    let from = DirectAddress::parse(&msg.from_address)
        .map_err(|e| JobError::Permanent(format!("stored sender: {}", e.message)))?;
    let now = job.now;

    // Certificates first: a recipient without a usable one fails alone, at once.
    let mut ready: Vec<String> = Vec::with_capacity(pending.len());
    let mut certs: Vec<X509> = Vec::new();
    let mut deferred: Vec<(String, String)> = Vec::new();
    for r in &pending {
        let Ok(addr) = DirectAddress::parse(r) else {
            let f = coded(
                "local",
                FailureCode::RecipientUnknown,
                "not a Direct address",
            );
            fail(db, t, id, r, f).await?;
            continue;
        };
        match t
            .discovery
            .usable_certificates(&addr, from.domain().as_str(), now)
            .await
        {
            Ok(found) => {
                for c in found {
                    let der = c.to_der().ok();
                    if !certs.iter().any(|k| k.to_der().ok() == der) {
                        certs.push(c);
                    }
                }
                ready.push(r.clone());
            }
            Err(DiscoveryError::Temporary(e)) => deferred.push((r.clone(), e)),
            Err(e) => {
                let status = e.status();
                let detail = format!("recipient certificate: {e}");
                let f = Failure {
                    public: Some(status),
                    ..coded("local", FailureCode::NoTrustedRecipients, &detail)
                };
                fail(db, t, id, r, f).await?;
            }
        }
    }

    if !ready.is_empty() {
        let outcomes = match hand_over(db, t, &msg, raw, &from, &ready, &certs, now).await {
            Ok(o) => o,
            Err(JobError::Permanent(e)) => {
                // Nothing a retry could change (the stored message or a certificate is unusable).
                for r in &ready {
                    fail(db, t, id, r, coded("local", FailureCode::InternalError, &e)).await?;
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut handed = Vec::new();
        for (r, outcome) in ready.iter().zip(outcomes) {
            match outcome {
                Outcome::Accepted => handed.push(r.clone()),
                Outcome::Rejected(reply) => {
                    let public = reply.chars().take(300).collect::<String>();
                    let detail = format!("the peer refused it: {reply}");
                    // 552 / 5.3.4: over the peer's size limit, which the sender can act on.
                    let code = if reply.starts_with("552") || reply.contains(" 5.3.4") {
                        FailureCode::MessageTooLarge
                    } else {
                        FailureCode::RecipientRejected
                    };
                    let f = Failure {
                        public: Some(&public),
                        ..coded("remote", code, &detail)
                    };
                    fail(db, t, id, r, f).await?;
                }
                Outcome::Deferred(why) => deferred.push((r.clone(), why)),
            }
        }
        if !handed.is_empty() {
            store::mark_handed(db, id, &handed, Utc::now())
                .await
                .map_err(transient)?;
            metrics::counter!("gateway_messages_delivered_total", "route" => "remote")
                .increment(handed.len() as u64);
        }
    }

    if deferred.is_empty() {
        return Ok(());
    }
    if !last {
        return Err(JobError::Transient(format!(
            "{} recipient(s) at {domain} deferred: {}",
            deferred.len(),
            deferred[0].1
        )));
    }
    for (r, why) in &deferred {
        let detail = format!("not delivered after {} attempts: {why}", job.attempt);
        fail(
            db,
            t,
            id,
            r,
            coded("remote", FailureCode::DeliveryFailed, &detail),
        )
        .await?;
    }
    Ok(())
}

/// Seals the message for `recipients` and sends it; one outcome per recipient.
#[allow(clippy::too_many_arguments)]
async fn hand_over(
    db: &PgPool,
    t: &TransportContext,
    msg: &sql::MessageRow,
    raw: Option<Vec<u8>>,
    from: &DirectAddress,
    recipients: &[String],
    certs: &[X509],
    now: chrono::DateTime<Utc>,
) -> Result<Vec<Outcome>, JobError> {
    let peers = match t.peers_for(domain_of(&recipients[0])).await {
        Ok(p) => p,
        Err(RouteError::Temporary(e)) => {
            return Ok(recipients
                .iter()
                .map(|_| Outcome::Deferred(e.clone()))
                .collect());
        }
        Err(RouteError::Permanent(e)) => {
            return Ok(recipients
                .iter()
                .map(|_| Outcome::Rejected(e.clone()))
                .collect());
        }
    };
    let (cert, key) = pki::credentials_for(db, &t.pki, from, KeyUse::Signing, now)
        .await
        .map_err(transient)?
        .ok_or_else(|| transient(format!("no live signing certificate for {from}")))?;
    let chain: Vec<X509> = pki::authority_certificate(db, pki::ISSUING)
        .await
        .map_err(transient)?
        .into_iter()
        .collect();
    let raw = raw.ok_or_else(|| JobError::Permanent("message has no MIME body".into()))?;
    let (certs, to, alg) = (certs.to_vec(), recipients.to_vec(), t.algorithms);
    let (message_id, subject) = (
        format!("<{}>", msg.smtp_message_id),
        t.config.outer_subject.clone(),
    );
    let (sender, final_delivery) = (from.to_string(), msg.final_delivery);
    // Signing and encrypting cost time in proportion to the message: off the async threads.
    let sealed = crate::cpu::run(move |_| {
        let inner = packed_mime::unpack(raw).map_err(|e| e.to_string())?;
        let env = Envelope {
            from: &sender,
            to: &to,
            message_id: &message_id,
            date: now,
            subject: &subject,
            request_final_delivery: final_delivery,
        };
        let signer = Signer {
            cert: &cert,
            key: &key,
            chain: &chain,
        };
        smime::seal(&inner, &env, &signer, &certs, alg).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| JobError::Permanent(format!("sealing the message: {e}")))?;
    Ok(smtp_client::deliver(
        &peers,
        &t.hostname,
        Some(&msg.from_address),
        recipients,
        &sealed,
        t.config.smtp_timeout,
    )
    .await)
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, d)| d)
}
