//! MDNs both ways.
//!
//! Ours: when a message from another HISP changes status here (processed once we accept it,
//! dispatched once its vendor took it — only when the sender asked —, displayed on the
//! vendor's read receipt, failed), the notification job that would post a vendor's webhook
//! sends that HISP a signed and encrypted MDN instead (`Mdns`, the messaging `PeerNotifier`).
//! Theirs: an MDN or DSN about a message we sent drives its recipient's status through the
//! same status machine as everything else, so late and repeated ones change nothing and the
//! vendor hears of each status once.

use uuid::Uuid;

use super::TransportContext;
use super::smtp_client::{self, Outcome};
use crate::direct::mdn::{self, Disposition, Mdn, Notification};
use crate::direct::smime::{self, Envelope, Signer};
use crate::domain::failure::FailureCode;
use crate::domain::messaging::Status;
use crate::domain::pki::{DirectAddress, KeyUse};
use crate::jobs::{Job, JobError};
use crate::service::messaging::PeerNotifier;
use crate::service::messaging::delivery::{self, Change, Failure};
use crate::service::pki;
use crate::service::trust::DiscoveryError;
use crate::store::messaging::MessageRow;
use crate::store::transport as store;

/// Sends the MDNs about messages from other HISPs.
pub struct Mdns {
    pub db: sqlx::PgPool,
    pub transport: std::sync::Weak<TransportContext>,
}

impl PeerNotifier for Mdns {
    fn notify<'a>(
        &'a self,
        message: &'a MessageRow,
        recipient: &'a str,
        status: Status,
        job: &'a Job,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), JobError>> + Send + 'a>>
    {
        Box::pin(async move {
            let Some(t) = self.transport.upgrade() else {
                return Err(JobError::Transient("the gateway is stopping".into()));
            };
            send_mdn(&self.db, &t, message, recipient, status, job).await
        })
    }
}

fn transient(e: impl std::fmt::Display) -> JobError {
    JobError::Transient(e.to_string())
}

async fn send_mdn(
    db: &sqlx::PgPool,
    t: &TransportContext,
    origin: &MessageRow,
    recipient: &str,
    status: Status,
    job: &Job,
) -> Result<(), JobError> {
    let disposition = match status {
        Status::SmtpInit => return Ok(()),
        Status::Processed => Disposition::Processed,
        Status::Dispatched => Disposition::Dispatched,
        Status::Displayed => Disposition::Displayed,
        Status::Failed | Status::FailedTimeout => Disposition::Failed,
    };
    let to = origin.notify_to.as_deref().unwrap_or(&origin.from_address);
    let to = DirectAddress::parse(to)
        .map_err(|e| JobError::Permanent(format!("MDN destination: {}", e.message)))?;
    let ours = DirectAddress::parse(recipient)
        .map_err(|e| JobError::Permanent(format!("reporting address: {}", e.message)))?;
    // The failure text is ours to choose: the code, never the cause behind it.
    let failure = (disposition == Disposition::Failed)
        .then(|| job.payload["description"].as_str().unwrap_or("").to_owned());
    let report = Report {
        ours: &ours,
        to: &to,
        original_message_id: &format!("<{}>", origin.smtp_message_id),
        original_subject: origin.subject.as_deref(),
        disposition,
        final_delivery_requested: origin.final_delivery,
        failure: failure.as_deref(),
    };
    send_report(db, t, &report, job).await
}

/// One MDN to send: about the message `original_message_id` that `to` sent `ours`.
pub struct Report<'a> {
    pub ours: &'a DirectAddress,
    pub to: &'a DirectAddress,
    /// With its angle brackets.
    pub original_message_id: &'a str,
    pub original_subject: Option<&'a str>,
    pub disposition: Disposition,
    pub final_delivery_requested: bool,
    pub failure: Option<&'a str>,
}

/// Builds, seals and hands over one MDN; the job's outcome says whether to try again.
async fn send_report(
    db: &sqlx::PgPool,
    t: &TransportContext,
    r: &Report<'_>,
    job: &Job,
) -> Result<(), JobError> {
    let (ours, to, disposition, now) = (r.ours, r.to, r.disposition, job.now);
    let subject = format!(
        "{}: {}",
        match disposition {
            Disposition::Processed => "Processed",
            Disposition::Dispatched => "Dispatched",
            Disposition::Displayed => "Displayed",
            _ => "Failed",
        },
        r.original_subject.unwrap_or("your message")
    );
    let reporting_ua = format!("{}; hisp-gateway", t.hostname);
    let message_id = format!("<{}@{}>", Uuid::now_v7().simple(), ours.domain());
    let (from, to_s) = (ours.to_string(), to.to_string());
    let inner = mdn::build(
        &Mdn {
            reporting_ua: &reporting_ua,
            original_recipient: None,
            final_recipient: &from,
            original_message_id: r.original_message_id,
            disposition,
            final_delivery_requested: r.final_delivery_requested,
            failure: r.failure,
            subject: &subject,
        },
        &from,
        &to_s,
        &message_id,
        now,
    )
    .map_err(|e| JobError::Permanent(format!("building the MDN: {e}")))?;

    let certs = match t
        .discovery
        .usable_certificates(to, ours.domain().as_str(), now)
        .await
    {
        Ok(c) => c,
        Err(DiscoveryError::Temporary(e)) => return Err(JobError::Transient(e)),
        // The sender was trusted when its message came; without a certificate now, no MDN can
        // reach it. Visible as a dead job.
        Err(e) => return Err(JobError::Permanent(format!("MDN recipient {to}: {e}"))),
    };
    let (cert, key) = pki::credentials_for(db, &t.pki, ours, KeyUse::Signing, now)
        .await
        .map_err(transient)?
        .ok_or_else(|| transient(format!("no live signing certificate for {ours}")))?;
    let chain: Vec<_> = pki::authority_certificate(db, pki::ISSUING)
        .await
        .map_err(transient)?
        .into_iter()
        .collect();
    let alg = t.algorithms;
    let recipients = vec![to_s.clone()];
    let subject_outer = t.config.outer_subject.clone();
    let sealed = crate::cpu::run(move |_| {
        let env = Envelope {
            from: &from,
            to: &recipients,
            message_id: &message_id,
            date: now,
            subject: &subject_outer,
            request_final_delivery: false,
        };
        let signer = Signer {
            cert: &cert,
            key: &key,
            chain: &chain,
        };
        smime::seal_notification(&inner, &env, &signer, &certs, alg)
    })
    .await
    .map_err(|e| JobError::Permanent(format!("sealing the MDN: {e}")))?;
    let peers = match t.peers_for(to.domain().as_str()).await {
        Ok(p) => p,
        Err(super::RouteError::Temporary(e)) => return Err(JobError::Transient(e)),
        Err(super::RouteError::Permanent(e)) => return Err(JobError::Permanent(e)),
    };
    let outcome = smtp_client::deliver(
        &peers,
        &t.hostname,
        None,
        std::slice::from_ref(&to_s),
        &sealed,
        t.config.smtp_timeout,
    )
    .await
    .pop()
    .unwrap_or(Outcome::Deferred("no outcome".into()));
    match outcome {
        Outcome::Accepted => {
            metrics::counter!("gateway_mdns_sent_total", "disposition" => disposition.as_str())
                .increment(1);
            Ok(())
        }
        Outcome::Rejected(e) => Err(JobError::Permanent(format!("MDN refused: {e}"))),
        Outcome::Deferred(e) if job.attempt >= job.max_attempts => {
            Err(JobError::Permanent(format!("MDN not delivered: {e}")))
        }
        Outcome::Deferred(e) => Err(JobError::Transient(e)),
    }
}

/// The failed MDN for a mail refused after its signer was trusted (a sender we cannot trust
/// is told nothing). Its payload names the recipient, the sender, the message and the code.
pub async fn send_refusal(
    db: &sqlx::PgPool,
    t: &TransportContext,
    job: &Job,
) -> Result<(), JobError> {
    let field = |k: &str| {
        job.payload[k]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| JobError::Permanent(format!("payload has no {k}")))
    };
    let parse = |k: &str| {
        field(k).and_then(|v| {
            DirectAddress::parse(&v).map_err(|e| JobError::Permanent(format!("{k}: {}", e.message)))
        })
    };
    let (ours, to) = (parse("recipient")?, parse("to")?);
    let (original, reason) = (field("originalMessageId")?, field("reason")?);
    let report = Report {
        ours: &ours,
        to: &to,
        original_message_id: &original,
        original_subject: None,
        disposition: Disposition::Failed,
        final_delivery_requested: false,
        failure: Some(&reason),
    };
    send_report(db, t, &report, job).await
}

/// What became of a received notification, for the inbound mail's record.
pub enum Applied {
    /// It moved a recipient on (or was a repeat, recorded and ignored).
    Recorded,
    /// It names no message we sent to its author: recorded as a rejection.
    Unmatched(String),
}

/// Applies an MDN or DSN from `author` (the verified sender of the mail that carried it).
/// Only reports about recipients at the author's own domain count: a HISP speaks for its own
/// addresses.
pub async fn apply(
    db: &sqlx::PgPool,
    t: &TransportContext,
    n: Notification,
    author: &DirectAddress,
) -> Result<Applied, JobError> {
    match n {
        Notification::Mdn {
            original_message_id,
            final_recipient,
            disposition,
            ..
        } => {
            let recipient = final_recipient
                .as_deref()
                .map(strip_address_type)
                .unwrap_or_else(|| author.to_string());
            let change = match disposition {
                Disposition::Processed => Some((Status::Processed, None)),
                Disposition::Dispatched => Some((Status::Dispatched, None)),
                Disposition::Displayed => Some((Status::Displayed, None)),
                Disposition::Failed | Disposition::Denied | Disposition::Deleted => {
                    Some((Status::Failed, Some(disposition.as_str())))
                }
            };
            apply_one(db, t, &original_message_id, &recipient, author, change).await
        }
        Notification::Dsn {
            original_envelope_id,
            original_message_id,
            recipients,
        } => {
            let Some(original) = original_message_id.or(original_envelope_id) else {
                return Ok(Applied::Unmatched("a DSN naming no message".into()));
            };
            let mut any = false;
            let mut last = Applied::Unmatched("a DSN with no failed recipient".into());
            for r in recipients.iter().take(MAX_DSN_RECIPIENTS) {
                if !r.action.eq_ignore_ascii_case("failed") {
                    continue;
                }
                let recipient = strip_address_type(&r.final_recipient);
                last = apply_one(
                    db,
                    t,
                    &original,
                    &recipient,
                    author,
                    Some((Status::Failed, Some(r.status.as_str()))),
                )
                .await?;
                any |= matches!(last, Applied::Recorded);
            }
            Ok(if any { Applied::Recorded } else { last })
        }
    }
}

/// A DSN reports on this many recipients at most; a longer list is cut, not looped over.
const MAX_DSN_RECIPIENTS: usize = 100;

async fn apply_one(
    db: &sqlx::PgPool,
    t: &TransportContext,
    original_message_id: &str,
    recipient: &str,
    author: &DirectAddress,
    change: Option<(Status, Option<&str>)>,
) -> Result<Applied, JobError> {
    let Some((status, failure)) = change else {
        return Ok(Applied::Recorded);
    };
    let same_domain = recipient
        .rsplit_once('@')
        .is_some_and(|(_, d)| d.eq_ignore_ascii_case(author.domain().as_str()));
    if !same_domain {
        return Ok(Applied::Unmatched(format!(
            "a notification from {} about a recipient of another domain",
            author.domain()
        )));
    }
    let id = original_message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let Some(found) = store::reported(db, id, recipient)
        .await
        .map_err(transient)?
    else {
        return Ok(Applied::Unmatched(
            "a notification about a message we did not send to that recipient".into(),
        ));
    };
    let detail = failure.map(|f| format!("the receiving HISP reported {f}"));
    let change = Change {
        status,
        failure: detail.as_deref().map(|d| Failure {
            origin: "remote",
            code: FailureCode::RecipientRejected,
            detail: d,
            public: failure,
        }),
        // The dispatched notification is what the sender asked for with timely & reliable.
        notify: status != Status::Dispatched || found.final_delivery,
    };
    let mut tx = db.begin().await.map_err(transient)?;
    if matches!(status, Status::Dispatched | Status::Displayed) {
        // Dispatched (and displayed) imply processed. The peer's processed MDN may still be on
        // its way, or be taken after this one (each mail is processed on its own): the
        // recipient passes through PROCESSED first, so its sender still hears of it, in order,
        // and the processed MDN finds nothing left to change.
        let processed = Change {
            status: Status::Processed,
            failure: None,
            notify: true,
        };
        delivery::apply_in(
            &mut tx,
            &t.messaging,
            found.message,
            &found.recipient,
            &processed,
        )
        .await
        .map_err(transient)?;
    }
    delivery::apply_in(
        &mut tx,
        &t.messaging,
        found.message,
        &found.recipient,
        &change,
    )
    .await
    .map_err(transient)?;
    tx.commit().await.map_err(transient)?;
    Ok(Applied::Recorded)
}

/// `rfc822;bob@example.org` → `bob@example.org`.
fn strip_address_type(s: &str) -> String {
    let s = s.trim();
    s.split_once(';')
        .map_or(s, |(_, a)| a.trim())
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::strip_address_type;

    #[test]
    fn final_recipients_lose_their_address_type() {
        assert_eq!(strip_address_type("rfc822; bob@b.example"), "bob@b.example");
        assert_eq!(
            strip_address_type("rfc822;<bob@b.example>"),
            "bob@b.example"
        );
        assert_eq!(strip_address_type("bob@b.example"), "bob@b.example");
    }
}
