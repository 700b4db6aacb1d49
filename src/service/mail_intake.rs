//! Mail arriving from other HISPs over SMTP: which recipients we take, and the durable hand-off
//! to processing. The SMTP door calls this; decrypting and delivering is the `direct.receive`
//! job's work, after commit, so a session never does crypto.

use std::net::IpAddr;

use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::pki::organization_status;
/// The outbox retry policy the `direct.receive` jobs are queued with (doors name it through here).
pub use crate::jobs::RetryPolicy;
use crate::service::messaging::ADDRESS_ACTIVE;
use crate::store::inbound_mail as sql;

/// The outbox job that processes one received message; payload `{"inboundId": uuid}`.
pub const RECEIVE_JOB: &str = "direct.receive";

/// Whether we take mail for an address, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    Accepted,
    /// Not a domain we host: we are not a relay.
    NotHosted,
    /// A domain we host, but no such address.
    Unknown,
    /// The address, or its organization, is not active.
    Disabled,
}

pub async fn check_recipient(db: &PgPool, address: &str) -> Result<Recipient, sqlx::Error> {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Ok(Recipient::Unknown);
    };
    let row = sql::recipient(db, local, domain).await?;
    Ok(
        match (
            row.domain_hosted,
            row.address_status,
            row.organization_status,
        ) {
            (false, _, _) => Recipient::NotHosted,
            (true, None, _) => Recipient::Unknown,
            (true, Some(status), org)
                if status == ADDRESS_ACTIVE
                    && org.as_deref() == Some(organization_status::ACTIVATED) =>
            {
                Recipient::Accepted
            }
            // A suspended holder's mail is taken, then refused with a failed MDN naming why
            // (the delivery job refuses any address that is not active).
            (true, Some(status), org)
                if status == crate::service::credentialing::ADDRESS_SUSPENDED
                    && org.as_deref() == Some(organization_status::ACTIVATED) =>
            {
                Recipient::Accepted
            }
            (true, Some(_), _) => Recipient::Disabled,
        },
    )
}

/// One received message, its raw bytes including our Received: header.
pub struct Received<'a> {
    pub id: Uuid,
    pub peer: IpAddr,
    pub helo: &'a str,
    pub tls: bool,
    pub mail_from: &'a str,
    pub rcpt_to: &'a [String],
    pub raw: &'a [u8],
}

/// Stores the message and its processing job in one transaction. Only once this returns Ok
/// may the peer be told 250.
pub async fn receive(
    db: &PgPool,
    retry: &RetryPolicy,
    m: &Received<'_>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sql::insert(
        &mut tx,
        &sql::NewInboundMail {
            id: m.id,
            peer: m.peer,
            helo: m.helo,
            tls: m.tls,
            mail_from: m.mail_from,
            rcpt_to: m.rcpt_to,
            raw: m.raw,
        },
    )
    .await?;
    crate::jobs::enqueue(
        &mut tx,
        retry,
        RECEIVE_JOB,
        serde_json::json!({ "inboundId": m.id }),
    )
    .await?;
    tx.commit().await
}
