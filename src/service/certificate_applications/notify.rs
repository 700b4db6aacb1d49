//! The e-mails that tell an applicant where the application stands: one per step (submitted,
//! approved, rejected, provisioned), queued in the transaction of the step, sent by an outbox
//! job through the configured relay (`notifications.smtp_relay`) and retried there.
//!
//! At most once per step: the (application, step) row is claimed when the job is queued, and
//! marked sent after the relay took the message; a job run again after that sends nothing.
//! The mail carries the application id and the first name only: no address, no reason, no
//! other PHI (a notification address is not a secure channel).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mail_builder::MessageBuilder;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::config::{SmtpRelayConfig, StartTls};
use crate::jobs::{self, Job, JobError, JobRegistry, RetryPolicy};
use crate::store::certificate_applications as sql;

pub const NOTIFY_JOB: &str = "certificate_application.notify";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Submitted,
    Approved,
    Rejected,
    Provisioned,
}

impl Step {
    const ALL: [Step; 4] = [
        Self::Submitted,
        Self::Approved,
        Self::Rejected,
        Self::Provisioned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Provisioned => "provisioned",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    fn subject(self) -> &'static str {
        match self {
            Self::Submitted => "Your certificate application was received",
            Self::Approved => "Your certificate application was approved",
            Self::Rejected => "Your certificate application was not approved",
            Self::Provisioned => "Your Direct address is ready",
        }
    }

    fn text(self, id: Uuid) -> String {
        match self {
            Self::Submitted => {
                format!("Your certificate application {id} was received and waits for review.\r\n")
            }
            Self::Approved => format!(
                "Your certificate application {id} was approved. The certificate is being issued; \
                 another message follows when it is ready.\r\n"
            ),
            Self::Rejected => format!(
                "Your certificate application {id} was not approved. Please contact the Trusted \
                 Agent who submitted it.\r\n"
            ),
            Self::Provisioned => format!(
                "The certificate of your application {id} was issued and your Direct address is \
                 active.\r\n"
            ),
        }
    }
}

/// What the job needs besides the database.
pub struct NotifyContext {
    pub relay: SmtpRelayConfig,
}

impl NotifyContext {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            relay: config.notifications.smtp_relay.clone(),
        }
    }
}

/// Claims the step's e-mail and queues its job, in the caller's transaction; nothing when the
/// step's e-mail was queued before.
pub async fn queue(
    tx: &mut PgConnection,
    retry: &RetryPolicy,
    application: Uuid,
    step: Step,
) -> Result<(), sqlx::Error> {
    if sql::claim_notification(tx, application, step.as_str()).await? {
        jobs::enqueue(
            tx,
            retry,
            NOTIFY_JOB,
            serde_json::json!({ "application_id": application, "step": step.as_str() }),
        )
        .await?;
    }
    Ok(())
}

pub fn register_jobs(registry: &mut JobRegistry, db: PgPool, ctx: Arc<NotifyContext>) {
    registry.register(NOTIFY_JOB, move |job: Job| {
        let (db, ctx) = (db.clone(), ctx.clone());
        async move { run(&db, &ctx, &job).await }
    });
}

async fn run(db: &PgPool, ctx: &NotifyContext, job: &Job) -> Result<(), JobError> {
    let id = job.payload["application_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| JobError::Permanent("payload has no application_id".into()))?;
    let step = job.payload["step"]
        .as_str()
        .and_then(Step::parse)
        .ok_or_else(|| JobError::Permanent("payload has no known step".into()))?;
    let Some((to, first_name)) = sql::unsent_notification(db, id, step.as_str())
        .await
        .map_err(|e| JobError::Transient(e.to_string()))?
    else {
        return Ok(());
    };
    if ctx.relay.address.trim().is_empty() {
        tracing::warn!(application = %id, step = step.as_str(),
            "notifications.smtp_relay.address is not set: the applicant's e-mail was not sent");
        return Ok(());
    }
    let message = compose(
        &ctx.relay.from,
        &to,
        first_name.as_deref(),
        id,
        step,
        job.now,
    )
    .map_err(JobError::Permanent)?;
    send(&ctx.relay, &to, &message).await.map_err(|failure| {
        // The address is the applicant's: a relay's reply may quote it, so it is cut out of
        // what the log and the job's error keep.
        let (text, permanent) = match failure {
            Failure::Permanent(t) => (t, true),
            Failure::Transient(t) => (t, false),
        };
        let text = text.replace(to.as_str(), "<recipient>");
        tracing::warn!(application = %id, step = step.as_str(), error = %text, permanent,
            "notification e-mail not sent");
        if permanent {
            JobError::Permanent(text)
        } else {
            JobError::Transient(text)
        }
    })?;
    sql::notification_sent(db, id, step.as_str(), Utc::now())
        .await
        .map_err(|e| JobError::Transient(e.to_string()))?;
    tracing::info!(application = %id, step = step.as_str(), "notification e-mail sent");
    Ok(())
}

/// The message: the first name (when there is one) and the application id, nothing else. Its
/// Message-ID is fixed per (application, step), so a receiver can drop a repeat.
fn compose(
    from: &str,
    to: &str,
    first_name: Option<&str>,
    id: Uuid,
    step: Step,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, String> {
    let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost");
    // A name that could break a header line never reaches one; it is only in the body anyway.
    let greeting = match first_name
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.chars().count() <= 100 && !n.chars().any(char::is_control))
    {
        Some(n) => format!("Hello {n},\r\n\r\n"),
        None => "Hello,\r\n\r\n".to_owned(),
    };
    let body = format!(
        "{greeting}{}\r\nThis message was sent automatically; please do not reply.\r\n",
        step.text(id)
    );
    MessageBuilder::new()
        .from(from)
        .to(to)
        .subject(step.subject())
        .message_id(format!("application-{id}-{}@{domain}", step.as_str()))
        .date(mail_builder::headers::date::Date::new(now.timestamp()))
        .text_body(body)
        .write_to_vec()
        .map_err(|e| format!("building the message: {e}"))
}

/// Why a message did not go: refused for good (a 5xx from the relay, a setting or address it
/// cannot use) or for now (connection, timeout, 4xx).
enum Failure {
    Permanent(String),
    Transient(String),
}

async fn send(relay: &SmtpRelayConfig, to: &str, message: &[u8]) -> Result<(), Failure> {
    let (host, port) = relay.host_port().ok_or_else(|| {
        Failure::Permanent("notifications.smtp_relay.address is not host:port".to_owned())
    })?;
    let tls = |host: &str| {
        TlsParameters::new(host.to_owned())
            .map_err(|e| Failure::Permanent(format!("TLS set-up for {host}: {e}")))
    };
    let mode = match relay.starttls {
        StartTls::Required => Tls::Required(tls(&host)?),
        StartTls::Opportunistic => Tls::Opportunistic(tls(&host)?),
        StartTls::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
        .port(port)
        .tls(mode)
        .timeout(Some(relay.timeout));
    if !relay.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            relay.username.clone(),
            relay.password.expose().to_owned(),
        ));
    }
    let transport = builder.build();
    let from: Address = relay
        .from
        .parse()
        .map_err(|e| Failure::Permanent(format!("notifications.smtp_relay.from: {e}")))?;
    let rcpt: Address = to
        .parse()
        .map_err(|_| Failure::Permanent("the notification address is not usable".to_owned()))?;
    let envelope = Envelope::new(Some(from), vec![rcpt])
        .map_err(|e| Failure::Permanent(format!("envelope: {e}")))?;
    // One bound on the whole exchange on top of the relay timeout per reply.
    match tokio::time::timeout(relay.timeout * 4, transport.send_raw(&envelope, message)).await {
        Err(_) => Err(Failure::Transient(format!("{host}:{port}: timed out"))),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.is_permanent() => Err(Failure::Permanent(format!("{host}:{port}: {e}"))),
        Ok(Err(e)) => Err(Failure::Transient(format!("{host}:{port}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_names_the_first_name_and_the_id_only() {
        let id = Uuid::nil();
        let m = compose(
            "no-reply@hisp.example.org",
            "pat@example.com",
            Some("Pat"),
            id,
            Step::Provisioned,
            Utc::now(),
        )
        .unwrap();
        let text = String::from_utf8(m).unwrap();
        assert!(text.contains("Hello Pat,"), "{text}");
        assert!(text.contains(&id.to_string()));
        assert!(text.contains("Message-ID: <application-00000000-0000-0000-0000-000000000000-provisioned@hisp.example.org>"), "{text}");
        let m = compose(
            "a@b.org",
            "c@d.org",
            Some("Evil\r\nBcc: x@y.org"),
            id,
            Step::Submitted,
            Utc::now(),
        )
        .unwrap();
        assert!(!String::from_utf8(m).unwrap().contains("Bcc"));
    }
}
