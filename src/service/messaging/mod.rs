//! REST messaging: accepting a vendor's message (validated, built into MIME, committed with
//! its recipients and jobs before the reply), its status, and the vendor's listing.
//! `delivery` holds the jobs that move it on; `mailbox` the receiving side's pull mailbox;
//! `receipts` the read receipts a receiving side reports; `admin` the grants, endpoints and
//! tokens.

pub mod admin;
pub mod batch;
pub mod delivery;
pub mod inbound;
pub mod mailbox;
pub mod receipts;
pub mod request_hash;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::ca::sealed::KeyEncryptionKey;
use crate::config::{Config, MessagingConfig};
use crate::cpu::Cancel;
use crate::direct::{mime, xdm};
use crate::domain::Invalid;
use crate::domain::messaging::{SendRequest, Status};
use crate::domain::pki::organization_status;
use crate::egress::EgressPolicy;
use crate::error::{AppError, AppResult};
use crate::jobs::RetryPolicy;
use crate::store::messaging::{self as sql, NewMessage, SendJobs};
use crate::store::packed_mime::PackedMime;
use crate::webhooks::Pusher;

/// Address status values.
pub const ADDRESS_ACTIVE: &str = "active";
pub const ADDRESS_DISABLED: &str = "disabled";

/// What messaging needs besides the database, shared by the door and the jobs.
pub struct MessagingContext {
    pub config: MessagingConfig,
    pub kek: KeyEncryptionKey,
    pub pusher: Pusher,
    /// Which addresses pushes may reach; endpoint URLs are checked against it when registered.
    pub egress: Arc<EgressPolicy>,
    /// Retries of pushes to vendors (inbound messages, notifications).
    pub delivery_retry: RetryPolicy,
    /// Jobs that are not pushes (the timeout) use the gateway's default.
    pub retry: RetryPolicy,
    /// Each sender's timely-and-reliable setting as last seen, to build its next message with.
    pub timely: SenderSettings,
    /// Wakes the long polls of pull mailboxes.
    pub mailbox_signal: mailbox::Signal,
    /// Writes accepted messages, started on the first send (it needs the pool and a runtime).
    batcher: std::sync::OnceLock<batch::SendBatcher>,
    /// Tells other HISPs what became of the messages they sent us; set once the Direct
    /// transport exists (it depends on messaging, not the other way round).
    pub peers: std::sync::OnceLock<Arc<dyn PeerNotifier>>,
    /// Whether messages for other HISPs get send jobs (`transport.enabled`).
    send_remote: bool,
}

/// The sender's side of a status change when the sender is another HISP: the Direct
/// transport answers with an MDN where a vendor would get a webhook.
pub trait PeerNotifier: Send + Sync {
    fn notify<'a>(
        &'a self,
        message: &'a sql::MessageRow,
        recipient: &'a str,
        status: Status,
        job: &'a crate::jobs::Job,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), crate::jobs::JobError>> + Send + 'a>,
    >;
}

/// The timely-and-reliable setting of senders, as the send statement last reported it. A
/// guess, never trusted: the statement refuses a message built with a stale value.
#[derive(Default)]
pub struct SenderSettings {
    seen: std::sync::Mutex<std::collections::HashMap<String, bool>>,
}

impl SenderSettings {
    /// Senders remembered at most; beyond that the memory starts over.
    const MAX: usize = 100_000;

    /// `address` lower-cased; off when not seen yet (the usual value).
    pub fn get(&self, address: &str) -> bool {
        let seen = self.seen.lock().expect("sender settings lock");
        seen.get(address).copied().unwrap_or(false)
    }

    pub fn set(&self, address: &str, timely: bool) {
        let mut seen = self.seen.lock().expect("sender settings lock");
        if seen.len() >= Self::MAX {
            seen.clear();
        }
        seen.insert(address.to_owned(), timely);
    }
}

impl MessagingContext {
    pub fn from_config(config: &Config) -> Self {
        let egress = Arc::new(EgressPolicy::from_config(config));
        Self {
            config: config.messaging.clone(),
            kek: KeyEncryptionKey::derive(&config.ca.key_encryption_key),
            pusher: Pusher::new(config.messaging.delivery_timeout, egress.clone()),
            egress,
            delivery_retry: RetryPolicy {
                schedule: config.messaging.delivery_retry_schedule.clone(),
                jitter_percent: config.jobs.jitter_percent,
            },
            retry: RetryPolicy::from_config(&config.jobs),
            timely: SenderSettings::default(),
            mailbox_signal: mailbox::Signal::default(),
            batcher: std::sync::OnceLock::new(),
            peers: std::sync::OnceLock::new(),
            send_remote: config.transport.enabled,
        }
    }

    /// Accepted messages waiting for their turn to be written (see `batch`).
    pub fn waiting_sends(&self) -> usize {
        self.batcher.get().map_or(0, batch::SendBatcher::waiting)
    }

    fn batcher(&self, db: &PgPool) -> &batch::SendBatcher {
        self.batcher.get_or_init(|| {
            let jobs = SendJobs {
                deliver_kind: delivery::DELIVER_JOB,
                remote_kind: self
                    .send_remote
                    .then_some(crate::service::transport::SEND_JOB),
                deliver_max_attempts: self.delivery_retry.max_attempts(),
                timeout_kind: delivery::TIMEOUT_JOB,
                timeout_max_attempts: self.retry.max_attempts(),
            };
            batch::SendBatcher::start(
                db,
                jobs,
                self.config.max_send_batch,
                self.config.send_statements_in_flight,
                self.config.send_linger,
            )
        })
    }
}

/// The synchronous reply of `send_ccda`, in the spec's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendReply {
    pub message_id: String,
    pub status: &'static str,
    pub transaction_id: Uuid,
    pub result: &'static str,
}

impl SendReply {
    fn accepted(message_id: String, transaction_id: Uuid) -> Self {
        Self {
            message_id,
            status: "SUCCESS",
            transaction_id,
            result: "Message parse successfully",
        }
    }
}

/// What became of a send.
#[derive(Debug)]
pub enum Sent {
    /// Accepted now, or earlier (a replay gets the first reply).
    Accepted(SendReply),
    /// The client is no longer active with the secret it was verified against: nothing was
    /// written. Its credentials must be checked in full.
    Unconfirmed,
}

/// A send request read and validated, before anything about its sender is known.
pub struct Prepared {
    body: Value,
    req: Arc<SendRequest>,
    fingerprint: Vec<u8>,
}

/// Bodies up to this size are read on the request's own task; larger ones on the CPU pool
/// (`crate::cpu`): reading JSON and decoding base64 cost about 4 ms per MB, which on an async
/// thread would hold up every request scheduled there.
const INLINE_READ_BYTES: usize = 256 * 1024;

/// Reads a `send_ccda` body: JSON (else `Malformed`), then every field (else `BadRequest`
/// naming it), then its fingerprint. Linear in the body; a request that gives up meanwhile
/// stops it between steps.
pub async fn prepare(ctx: &MessagingContext, body: bytes::Bytes) -> AppResult<Prepared> {
    let max_attachments = ctx.config.max_attachments;
    if body.len() <= INLINE_READ_BYTES {
        return prepare_now(&body, max_attachments, &Cancel::default());
    }
    crate::cpu::run(move |cancel| prepare_now(&body, max_attachments, cancel)).await
}

/// JSON values a send request may hold. A full request has a few hundred (21 metadata fields,
/// five per attachment, 100 attachments at most). Each value read costs 32 bytes or more in
/// memory whatever its size on the wire: a 50 MB body of `[0,0,0,…]` would take 800 MB.
pub const MAX_JSON_VALUES: usize = 10_000;

/// Checks that `body` holds at most `limit` JSON values, counted without parsing it and
/// stopped past the limit: every `[`, `{` and `,` outside strings starts one. Strings (almost
/// all of a send's bytes: base64) are skipped to their next quote or backslash with `memchr`,
/// so the check costs a few µs per 100 KB; a byte-by-byte scan cost a third of a send's CPU.
pub fn json_values_at_most(body: &[u8], limit: usize) -> Result<(), usize> {
    let mut values = 1usize;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        match b {
            b'"' => {
                i += 1;
                loop {
                    let Some(j) = body
                        .get(i..)
                        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
                    else {
                        // An unterminated string: the parser will say so.
                        return Ok(());
                    };
                    i += j;
                    if body[i] == b'"' {
                        break;
                    }
                    // A backslash and the character it escapes.
                    i += 2;
                }
            }
            b'[' | b'{' | b',' => {
                values += 1;
                if values > limit {
                    return Err(values);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn prepare_now(body: &[u8], max_attachments: usize, cancel: &Cancel) -> AppResult<Prepared> {
    if json_values_at_most(body, MAX_JSON_VALUES).is_err() {
        return Err(AppError::Malformed(format!(
            "the body holds more than {MAX_JSON_VALUES} JSON values; a send request has a few hundred"
        )));
    }
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::Malformed(format!("the body is not JSON: {e}")))?;
    cancel.check().map_err(anyhow::Error::from)?;
    let req = SendRequest::parse(&body, max_attachments).map_err(AppError::BadRequest)?;
    cancel.check().map_err(anyhow::Error::from)?;
    let fingerprint = request_hash::of(&body);
    Ok(Prepared {
        body,
        req: Arc::new(req),
        fingerprint,
    })
}

/// Accepts a message from vendor `client`: validates it, builds the MIME message, and in one
/// statement checks the sender is the vendor's and may send and commits message, recipients
/// and jobs together. `confirm` is the stored secret hash the client was verified against
/// without reading the database (see `Verifier::recall`), for the statement to confirm.
/// A replay of the same request gets the first reply; the same messageId with another
/// request is a conflict.
pub async fn send(
    db: &PgPool,
    ctx: &Arc<MessagingContext>,
    client: Uuid,
    confirm: Option<&str>,
    prepared: &Prepared,
    now: DateTime<Utc>,
) -> AppResult<Sent> {
    let Prepared {
        body,
        req,
        fingerprint,
    } = prepared;

    let from = req.from.to_string();
    let from_key = from.to_ascii_lowercase();
    let recipients: Vec<String> = req.to.iter().map(ToString::to_string).collect();
    // The message must be built before the statement that reads the sender's settings, so it
    // is built with the setting last seen for this sender; the statement refuses a mismatch,
    // and then it is built again.
    let mut timely = ctx.timely.get(&from_key);
    for _ in 0..3 {
        let final_delivery = req.asm_enabled || timely;
        // Time-ordered, so the message's rows land at the right edge of their indexes: random
        // ids touch a random index page per insert, and after each checkpoint each such page
        // costs a full-page image in the WAL (measured: 2.5 times the WAL per send).
        let id = Uuid::now_v7();
        let transaction_id = Uuid::new_v4();
        let smtp_message_id = format!("{}@{}", id.simple(), req.from.domain());
        let unique_id = xdm::oid_from_uuid(id);
        // An XDM package (deflated, hashed) or a very large message is built off the async
        // threads so it does not hold up other requests. Other messages only copy their
        // decoded bodies, which costs less than the hand-over to the blocking pool and back.
        let inline_limit = if req.xdm {
            INLINE_XDM_BYTES
        } else {
            INLINE_BUILD_BYTES
        };
        let (mime, mime_len, patient_cx) = if req.content_len() <= inline_limit {
            build_mime(
                req,
                &recipients,
                &smtp_message_id,
                &unique_id,
                &ctx.config.xdm_source_id,
                final_delivery,
                now,
                &Cancel::default(),
            )?
        } else {
            let req = Arc::clone(req);
            let source = ctx.config.xdm_source_id.clone();
            let (smtp_id, uid, rcpts) = (
                smtp_message_id.clone(),
                unique_id.clone(),
                recipients.clone(),
            );
            crate::cpu::run(move |cancel| {
                build_mime(
                    &req,
                    &rcpts,
                    &smtp_id,
                    &uid,
                    &source,
                    final_delivery,
                    now,
                    cancel,
                )
            })
            .await?
        };

        let out = ctx
            .batcher(db)
            .send(NewMessage {
                id,
                client_id: client,
                from_address: from.clone(),
                smtp_message_id,
                size_bytes: mime_len as i64,
                vendor_message_id: req.message_id.clone(),
                request_hash: fingerprint.clone(),
                transaction_id,
                subject: req.subject.clone(),
                xdm: req.xdm,
                final_delivery,
                metadata: Value::Object(req.metadata.clone()),
                mime,
                xdr_unique_id: req.xdm.then(|| unique_id.clone()),
                xdr_source_id: req.xdm.then(|| ctx.config.xdm_source_id.clone()),
                xdr_patient_id: patient_cx,
                created_at: now,
                timeout_at: now + ctx.config.timeout,
                recipients: recipients.clone(),
                recipient_parts: req
                    .to
                    .iter()
                    .map(|a| (a.local_part().to_owned(), a.domain().as_str().to_owned()))
                    .collect(),
                client_secret_hash: confirm.map(str::to_owned),
                from_parts: (
                    req.from.local_part().to_owned(),
                    req.from.domain().as_str().to_owned(),
                ),
                asm_enabled: req.asm_enabled,
            })
            .await?;
        if out.inserted {
            metrics::counter!("gateway_messages_accepted_total").increment(1);
            return Ok(Sent::Accepted(SendReply::accepted(
                req.message_id.clone(),
                transaction_id,
            )));
        }
        if out.client_ok != Some(true) {
            return Ok(Sent::Unconfirmed);
        }
        // Nothing written: a replay (or reuse) of a messageId goes first, as it is answered
        // whatever has changed about the sender since.
        if let Some(prior) = sql::prior_send(db, client, &req.message_id).await? {
            return replay(&req.message_id, body, prior).map(Sent::Accepted);
        }
        let (Some(status), Some(organization_status), Some(true)) =
            (out.sender_status, out.organization_status, out.granted)
        else {
            return Err(AppError::Forbidden(format!(
                "fromDirectAddress {from} is not an address this client may send from"
            )));
        };
        if status == crate::service::credentialing::ADDRESS_SUSPENDED {
            let reason = crate::store::credentialing::suspension_of(db, &from.to_string())
                .await?
                .unwrap_or_else(|| "restricted".into());
            return Err(AppError::Forbidden(format!(
                "fromDirectAddress {from} is suspended: its holder's credentialing standing is restricted ({reason})"
            )));
        }
        if status != ADDRESS_ACTIVE {
            return Err(AppError::Forbidden(format!(
                "fromDirectAddress {from} is disabled"
            )));
        }
        if organization_status != organization_status::ACTIVATED {
            return Err(AppError::Forbidden(format!(
                "the organization of fromDirectAddress {from} is {organization_status}, not Activated"
            )));
        }
        let actual = out.timely.unwrap_or(false);
        if actual == timely {
            // Every check held, yet nothing was written and no message holds the messageId:
            // one that did was removed in between.
            return Err(AppError::Conflict(
                "messageId is being used by another request".into(),
            ));
        }
        ctx.timely.set(&from_key, actual);
        timely = actual;
    }
    Err(AppError::Conflict(format!(
        "the settings of fromDirectAddress {from} changed while the message was being accepted; send it again"
    )))
}

/// Attachments up to this many bytes in all are built into MIME on the request's own task;
/// a bigger message, and an XDM package over `INLINE_XDM_BYTES`, on the blocking pool.
const INLINE_BUILD_BYTES: usize = 4 * 1024 * 1024;
const INLINE_XDM_BYTES: usize = 64 * 1024;

/// The reply to a request whose messageId this client used before: the first reply again
/// when it is the same request, a conflict when it is another.
fn replay(message_id: &str, body: &Value, prior: sql::PriorSend) -> AppResult<SendReply> {
    if !prior
        .request_hash
        .is_some_and(|stored| request_hash::matches(&stored, body))
    {
        return Err(AppError::Conflict(format!(
            "messageId {message_id} was already used for a different message"
        )));
    }
    let transaction_id = prior.transaction_id.unwrap_or(prior.id);
    Ok(SendReply::accepted(message_id.to_owned(), transaction_id))
}

/// The RFC 5322 message of a request (raw attachments, or one XDM package), and the patient
/// id in CX form when the request gave one. Stops early once `cancel` says the request gave up.
#[allow(clippy::too_many_arguments)]
fn build_mime(
    req: &SendRequest,
    recipients: &[String],
    smtp_message_id: &str,
    unique_id: &str,
    source_id: &str,
    final_delivery: bool,
    now: DateTime<Utc>,
    cancel: &Cancel,
) -> AppResult<(PackedMime, usize, Option<String>)> {
    let meta = |k: &str| {
        req.metadata
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let patient_cx = meta("patientId").map(|id| match meta("assigning_authority") {
        Some(aa) => format!("{id}^^^&{aa}&ISO"),
        None => id,
    });
    let documents: Vec<mime::OutboundAttachment> = req
        .attachments
        .iter()
        .enumerate()
        .map(|(i, a)| mime::OutboundAttachment {
            media_type: a.media_type.clone(),
            file_name: a.delivered_name(i),
            title: a.title.clone(),
            content: a.content.clone(),
        })
        .collect();
    let attachments = if req.xdm {
        let submission = xdm::SubmissionMetadata {
            submission_time: now,
            source_id: source_id.to_owned(),
            unique_id: unique_id.to_owned(),
            title: req.subject.clone(),
            comments: req.body.clone(),
            author_person: meta("authorPerson"),
            author_institution: meta("authorInstitution"),
            author_telecom: Some(req.from.to_string()),
            intended_recipients: recipients.to_vec(),
            patient_id: meta("patientId"),
            assigning_authority: meta("assigning_authority"),
            patient_first: meta("patientFirstname"),
            patient_middle: meta("patientMiddlename"),
            patient_last: meta("patientLastname"),
            patient_dob: meta("patientDOB"),
            patient_gender: meta("patientGender"),
            patient_street1: meta("patientAddressStreet1"),
            patient_street2: meta("patientAddressStreet2"),
            patient_city: meta("patientAddressCity"),
            patient_state: meta("patientAddressState"),
            patient_zip: meta("patientAddressZip"),
            loinc_code: meta("loincValue"),
            loinc_name: meta("loincName"),
        };
        let docs: Vec<xdm::XdmDocument> = documents
            .into_iter()
            .map(|d| xdm::XdmDocument {
                file_name: d.file_name,
                media_type: d.media_type,
                title: d.title,
                content: d.content,
            })
            .collect();
        let zip = match xdm::build_package_until(&submission, &docs, &|| cancel.is_cancelled()) {
            Ok(zip) => zip,
            Err(xdm::XdmError::Abandoned) => {
                return Err(anyhow::Error::from(crate::cpu::Cancelled).into());
            }
            Err(e) => {
                return Err(AppError::BadRequest(Invalid::new(
                    "emailAttachmentList",
                    e.to_string(),
                )));
            }
        };
        vec![mime::OutboundAttachment {
            media_type: "application/zip".into(),
            file_name: req.xdm_package_name(),
            title: Some("XDM package".into()),
            content: zip,
        }]
    } else {
        documents
    };
    let from = req.from.to_string();
    let built = mime::build_pieces(&mime::OutboundMessage {
        from: &from,
        to: recipients,
        subject: req.subject.as_deref(),
        body: req.body.as_deref(),
        message_id: smtp_message_id,
        in_reply_to: req.reply_to.as_deref(),
        date: now,
        request_final_delivery: final_delivery,
        attachments: &attachments,
    })
    .map_err(|e| AppError::BadRequest(Invalid::new("emailAttachmentList", e.to_string())))?;
    Ok((PackedMime::new(&built), built.len(), patient_cx))
}

/// One recipient's status, in the spec's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientStatus {
    pub sender: String,
    pub recipient: String,
    pub xd_msg_id: String,
    pub send_time: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Ours, beside the spec's fields (docs/api.md lists them): the reply's transactionId
    /// and the time of the last change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<Uuid>,
    pub updated: String,
}

/// The spec's `sendTime` format, `2020-04-10 15:10:39.0` (tenths of a second, UTC).
pub fn send_time(at: DateTime<Utc>) -> String {
    use chrono::Timelike;
    format!(
        "{}.{}",
        at.format("%Y-%m-%d %H:%M:%S"),
        at.nanosecond() % 1_000_000_000 / 100_000_000
    )
}

fn to_status(r: sql::StatusRow) -> RecipientStatus {
    let failed = matches!(r.status.as_str(), "FAILED" | "FAILED-TO");
    RecipientStatus {
        sender: r.from_address,
        recipient: r.recipient,
        xd_msg_id: r.vendor_message_id,
        send_time: send_time(r.created_at),
        failure_reason: failed.then(|| r.failure_reason.unwrap_or_default()),
        status: r.status,
        transaction_id: r.transaction_id,
        updated: r
            .updated_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

/// The status of each recipient of a message this vendor sent. Another vendor's message is
/// "not found" exactly like one that does not exist, so ids cannot be probed.
pub async fn status(
    db: &PgPool,
    client: Uuid,
    xd_msg_id: &str,
    from: &str,
) -> AppResult<Vec<RecipientStatus>> {
    let mine = sql::status_by_vendor_id(db, client, xd_msg_id, from).await?;
    if mine.is_empty() {
        return Err(AppError::NotFound(format!(
            "message {xd_msg_id} from {from}"
        )));
    }
    Ok(mine.into_iter().map(to_status).collect())
}

pub struct ListQuery<'a> {
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub status: Option<&'a str>,
    pub sender: Option<&'a str>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Serialize)]
pub struct Listing {
    pub items: Vec<RecipientStatus>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

pub const MAX_PAGE: i64 = 1000;

pub async fn list(db: &PgPool, client: Uuid, q: &ListQuery<'_>) -> AppResult<Listing> {
    if let Some(s) = q.status {
        Status::parse(s).map_err(AppError::BadRequest)?;
    }
    if !(1..=MAX_PAGE).contains(&q.limit) {
        return Err(AppError::BadRequest(Invalid::new(
            "limit",
            format!("must be 1..={MAX_PAGE}"),
        )));
    }
    if q.offset < 0 {
        return Err(AppError::BadRequest(Invalid::new(
            "offset",
            "must not be negative",
        )));
    }
    let status = q
        .status
        .map(|s| Status::parse(s).map(Status::as_str))
        .transpose()
        .map_err(AppError::BadRequest)?;
    let (rows, total) = sql::list_sent(
        db,
        &sql::ListFilter {
            client,
            from: q.from,
            until: q.until,
            status,
            sender: q.sender,
            limit: q.limit,
            offset: q.offset,
        },
    )
    .await?;
    Ok(Listing {
        items: rows.into_iter().map(to_status).collect(),
        total,
        limit: q.limit,
        offset: q.offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(xdm: bool) -> Vec<u8> {
        serde_json::json!({
            "fromDirectAddress": "ada@harbor.direct.example.org",
            "toDirectAddress": "ben@lakeside.direct.example.org, cy@lakeside.direct.example.org",
            "messageId": "urn:uuid:a2d59543-91f4-45a4-99ef-72d70da1e454",
            "messageSubject": "Referral",
            "messageBody": "Line one\r\nLine two",
            "xdm": xdm,
            "xdmFileName": "referral",
            "patientId": "12345",
            "assigning_authority": "2.999.1.2.3.4",
            "patientFirstname": "Jane",
            "patientDOB": "19800102",
            "emailAttachmentList": [
                {"attachmentClass": "text/xml", "attachmentContent": "PENsaW5pY2FsRG9jdW1lbnQvPg==", "attachmentTitle": "CCD", "attachmentFileName": "ccd.xml"},
                {"attachmentClass": "application/pdf", "attachmentContent": "JVBERi0xLjYK"}
            ]
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn json_values_are_counted_outside_strings_and_only_up_to_the_limit() {
        assert_eq!(json_values_at_most(&seed(true), 100), Ok(()));
        assert!(json_values_at_most(&seed(true), 10).is_err());
        // Commas, brackets and escaped quotes inside strings are text.
        let text = br#"{"a": "x,y,[z]{\",\\", "b": [1, 2]}"#;
        assert_eq!(json_values_at_most(text, 5), Ok(()));
        assert!(json_values_at_most(text, 4).is_err());
        // A body of a million values is refused before it is parsed.
        let mut huge = b"{\"padding\": [".to_vec();
        huge.extend(std::iter::repeat_n(&b"0,"[..], 1_000_000).flatten());
        huge.extend_from_slice(b"0]}");
        let Err(AppError::Malformed(m)) = prepare_now(&huge, 100, &Cancel::default()) else {
            panic!("not refused");
        };
        assert!(m.contains("10000 JSON values"), "{m}");
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzzing::config())]

        /// Damaged send_ccda bodies, through everything a send does before the database: read,
        /// validated, built into MIME (and XDM), and the stored form read back as a receiver's
        /// push would. An error or a message, never a panic.
        #[test]
        fn fuzz_send_requests_never_panic(body in crate::fuzzing::mutated(vec![seed(false), seed(true)])) {
            let Ok(p) = prepare_now(&body, 100, &Cancel::default()) else { return Ok(()); };
            let recipients: Vec<String> = p.req.to.iter().map(ToString::to_string).collect();
            let built = build_mime(
                &p.req,
                &recipients,
                "0190c0de@harbor.direct.example.org",
                "2.25.1",
                "2.25.2",
                false,
                chrono::Utc::now(),
                &Cancel::default(),
            );
            let Ok((packed, _, _)) = built else { return Ok(()); };
            let raw = crate::store::packed_mime::unpack(packed.as_bytes().to_vec())
                .expect("our own packing reads back");
            let parsed = mime::parse(&raw).expect("our own MIME parses");
            for a in parsed.attachments {
                if a.media_type == "application/zip" {
                    xdm::read_package(&a.content).expect("our own package reads back");
                }
            }
        }
    }
}
