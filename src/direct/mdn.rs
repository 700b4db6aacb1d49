//! Delivery notifications between HISPs: the MDNs we build (RFC 3798 as profiled by the Direct
//! Implementation Guide for Delivery Notification 1.0) and the MDNs and DSNs (RFC 3464) we
//! read. Pure: the caller seals what `build` returns with `smime::seal_notification`.

use chrono::{DateTime, Utc};

use super::entity;
use super::mime::FINAL_DELIVERY_OPTION;
use super::smime::SmimeError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    Processed,
    Dispatched,
    Displayed,
    Deleted,
    Denied,
    Failed,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Processed => "processed",
            Disposition::Dispatched => "dispatched",
            Disposition::Displayed => "displayed",
            Disposition::Deleted => "deleted",
            Disposition::Denied => "denied",
            Disposition::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Disposition> {
        [
            Disposition::Processed,
            Disposition::Dispatched,
            Disposition::Displayed,
            Disposition::Deleted,
            Disposition::Denied,
            Disposition::Failed,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(s))
    }
}

pub struct Mdn<'a> {
    /// `hisp-gateway; <our host>`
    pub reporting_ua: &'a str,
    pub original_recipient: Option<&'a str>,
    pub final_recipient: &'a str,
    pub original_message_id: &'a str,
    pub disposition: Disposition,
    /// Emits X-DIRECT-FINAL-DESTINATION-DELIVERY as an extension field of the report part,
    /// never as a header.
    pub final_delivery_requested: bool,
    pub failure: Option<&'a str>,
    pub subject: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    Mdn {
        original_message_id: String,
        final_recipient: Option<String>,
        disposition: Disposition,
        extension_final_delivery: bool,
    },
    Dsn {
        original_envelope_id: Option<String>,
        /// The X-Original-Message-ID header, else an Original-Message-ID field, else the
        /// Message-ID of the returned headers.
        original_message_id: Option<String>,
        recipients: Vec<DsnRecipient>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
    pub final_recipient: String,
    pub action: String,
    pub status: String,
    pub diagnostic: Option<String>,
}

/// Most recipient blocks read from one DSN.
pub const MAX_DSN_RECIPIENTS: usize = 1000;

/// The complete inner RFC 5322 message of an MDN: multipart/report with a human-readable part
/// and the message/disposition-notification part. No Disposition-Notification-To: an MDN never
/// asks for an MDN.
pub fn build(
    mdn: &Mdn,
    from: &str,
    to: &str,
    message_id: &str,
    date: DateTime<Utc>,
) -> Result<Vec<u8>, SmimeError> {
    let fields = [
        ("From", from),
        ("To", to),
        ("Message-ID", message_id),
        ("Subject", mdn.subject),
        ("Reporting-UA", mdn.reporting_ua),
        ("Original-Recipient", mdn.original_recipient.unwrap_or("")),
        ("Final-Recipient", mdn.final_recipient),
        ("Original-Message-ID", mdn.original_message_id),
        ("Failure", mdn.failure.unwrap_or("")),
    ];
    for (name, value) in fields {
        if value.contains(['\r', '\n', '\0']) {
            return Err(SmimeError::HeaderInjection(name.to_owned()));
        }
    }
    let boundary = {
        use sha2::Digest as _;
        let h = sha2::Sha256::digest(message_id.as_bytes());
        format!("=_mdn_{}", hex(&h[..12]))
    };
    let disposition = mdn.disposition.as_str();
    let subject = if mdn.subject.is_ascii() {
        mdn.subject.to_owned()
    } else {
        use base64::Engine as _;
        format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(mdn.subject)
        )
    };

    let mut m = String::new();
    m.push_str(&format!("From: {from}\r\nTo: {to}\r\n"));
    m.push_str(&format!("Date: {}\r\n", date.to_rfc2822()));
    m.push_str(&format!("Message-ID: {message_id}\r\n"));
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=disposition-notification; \
         boundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str("Content-Type: text/plain; charset=us-ascii\r\n\r\n");
    m.push_str(&format!(
        "The message {} to {} was {disposition}.\r\n",
        mdn.original_message_id,
        ascii_only(mdn.final_recipient)
    ));
    if let Some(failure) = mdn.failure {
        m.push_str(&format!("Reason: {}\r\n", ascii_only(failure)));
    }
    m.push_str(&format!("\r\n--{boundary}\r\n"));
    m.push_str("Content-Type: message/disposition-notification\r\n\r\n");
    m.push_str(&format!("Reporting-UA: {}\r\n", mdn.reporting_ua));
    if let Some(original) = mdn.original_recipient {
        m.push_str(&format!("Original-Recipient: rfc822;{original}\r\n"));
    }
    m.push_str(&format!(
        "Final-Recipient: rfc822;{}\r\n",
        mdn.final_recipient
    ));
    m.push_str(&format!(
        "Original-Message-ID: {}\r\n",
        mdn.original_message_id
    ));
    m.push_str(&format!(
        "Disposition: automatic-action/MDN-sent-automatically;{disposition}\r\n"
    ));
    if let Some(failure) = mdn.failure {
        m.push_str(&format!("Failure: {failure}\r\n"));
    }
    if mdn.final_delivery_requested {
        m.push_str(&format!("{FINAL_DELIVERY_OPTION}:\r\n"));
    }
    m.push_str(&format!("\r\n--{boundary}--\r\n"));
    Ok(m.into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ascii_only(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// True when `inner` is an MDN or DSN (any multipart/report, or a bare report part): such a
/// message is never answered with an MDN, even when we cannot read the report in it.
pub fn is_notification(inner: &[u8]) -> bool {
    let Ok(e) = entity::parse(inner) else {
        return false;
    };
    let (media, _) = e.content_type();
    matches!(
        media.as_str(),
        "multipart/report" | "message/disposition-notification" | "message/delivery-status"
    )
}

/// Reads an inner message: None when it is not a notification we can read; else what it
/// reports.
pub fn parse(inner: &[u8]) -> Option<Notification> {
    let e = entity::parse(inner).ok()?;
    let (media, params) = e.content_type();
    if media != "multipart/report" {
        return None;
    }
    let boundary = entity::param(&params, "boundary")?;
    let parts = entity::split_multipart(e.body, boundary, entity::MAX_PARTS).ok()?;
    let report_type = entity::param(&params, "report-type").map(str::to_ascii_lowercase);
    let mut report = None;
    let mut returned_headers = None;
    for part in &parts {
        let Ok(p) = entity::parse(part) else { continue };
        let (media, _) = p.content_type();
        match media.as_str() {
            "message/disposition-notification" | "message/delivery-status" if report.is_none() => {
                report = Some((media, p.decoded_body().ok()?));
            }
            "text/rfc822-headers" | "message/rfc822" if returned_headers.is_none() => {
                returned_headers = p.decoded_body().ok();
            }
            _ => {}
        }
    }
    let (media, body) = report?;
    match (media.as_str(), report_type.as_deref()) {
        ("message/disposition-notification", None | Some("disposition-notification")) => {
            parse_mdn(&body)
        }
        ("message/delivery-status", None | Some("delivery-status")) => {
            let x_original = e
                .header("X-Original-Message-ID")
                .map(|v| v.trim().to_owned());
            let returned_id = returned_headers.as_deref().and_then(|h| {
                entity::parse(h)
                    .ok()?
                    .header("Message-ID")
                    .map(|v| v.trim().to_owned())
            });
            parse_dsn(&body, x_original, returned_id)
        }
        _ => None,
    }
}

/// Header-style field blocks separated by blank lines (the DSN body shape; an MDN has one).
fn field_blocks(body: &[u8]) -> Vec<Vec<(String, String)>> {
    let text = entity::to_crlf(body);
    let mut blocks = Vec::new();
    let mut rest: &[u8] = &text;
    while !rest.is_empty() && blocks.len() <= MAX_DSN_RECIPIENTS {
        // Blank lines between blocks.
        while let Some(r) = rest.strip_prefix(b"\r\n") {
            rest = r;
        }
        if rest.is_empty() {
            break;
        }
        let Ok(block) = entity::parse(rest) else {
            break;
        };
        let consumed = rest.len() - block.body.len();
        blocks.push(block.headers);
        if consumed == 0 {
            break;
        }
        rest = &rest[consumed..];
    }
    blocks
}

fn field<'b>(block: &'b [(String, String)], name: &str) -> Option<&'b str> {
    block
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `rfc822;a@b` → `a@b` (the address type is optional in what peers send).
fn strip_address_type(v: &str) -> String {
    match v.split_once(';') {
        Some((_, addr)) => addr.trim().to_owned(),
        None => v.trim().to_owned(),
    }
}

fn parse_mdn(body: &[u8]) -> Option<Notification> {
    let blocks = field_blocks(body);
    let fields = blocks.first()?;
    let original_message_id = field(fields, "Original-Message-ID")?.trim().to_owned();
    // Disposition: action-mode/sending-mode; type[/modifier,...]
    let disposition = field(fields, "Disposition")?;
    let (_, kind) = disposition.split_once(';')?;
    let kind = kind.trim();
    let kind = kind.split(['/', ' ', '\t']).next().unwrap_or(kind);
    let disposition = Disposition::parse(kind)?;
    Some(Notification::Mdn {
        original_message_id,
        final_recipient: field(fields, "Final-Recipient").map(strip_address_type),
        disposition,
        extension_final_delivery: field(fields, FINAL_DELIVERY_OPTION).is_some(),
    })
}

fn parse_dsn(
    body: &[u8],
    x_original: Option<String>,
    returned_id: Option<String>,
) -> Option<Notification> {
    let blocks = field_blocks(body);
    let (per_message, per_recipient) = blocks.split_first()?;
    let original_message_id = x_original
        .or_else(|| field(per_message, "Original-Message-ID").map(|v| v.trim().to_owned()))
        .or(returned_id);
    let recipients = per_recipient
        .iter()
        .filter_map(|b| {
            Some(DsnRecipient {
                final_recipient: strip_address_type(field(b, "Final-Recipient")?),
                action: field(b, "Action")?.trim().to_ascii_lowercase(),
                status: field(b, "Status")?.trim().to_owned(),
                diagnostic: field(b, "Diagnostic-Code").map(|v| v.trim().to_owned()),
            })
        })
        .collect();
    Some(Notification::Dsn {
        original_envelope_id: field(per_message, "Original-Envelope-Id")
            .map(|v| v.trim().to_owned()),
        original_message_id,
        recipients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mdn(disposition: Disposition, failure: Option<&str>, dispatched: bool) -> Vec<u8> {
        build(
            &Mdn {
                reporting_ua: "hisp-gateway; b.example",
                original_recipient: Some("bob@b.example"),
                final_recipient: "bob@b.example",
                original_message_id: "<orig@a.example>",
                disposition,
                final_delivery_requested: dispatched,
                failure,
                subject: "Processed: hello",
            },
            "bob@b.example",
            "alice@a.example",
            "<mdn1@b.example>",
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn built_mdns_parse_back() {
        for (d, failure, ext) in [
            (Disposition::Processed, None, false),
            (Disposition::Dispatched, None, true),
            (Disposition::Failed, Some("delivery failed"), true),
        ] {
            let raw = mdn(d, failure, ext);
            assert!(is_notification(&raw));
            assert_eq!(
                parse(&raw),
                Some(Notification::Mdn {
                    original_message_id: "<orig@a.example>".into(),
                    final_recipient: Some("bob@b.example".into()),
                    disposition: d,
                    extension_final_delivery: ext,
                })
            );
        }
    }

    #[test]
    fn the_final_delivery_token_is_a_report_field_never_a_header() {
        let raw = mdn(Disposition::Dispatched, None, true);
        let text = String::from_utf8(raw.clone()).unwrap();
        let (headers, report) = text.split_once("\r\n\r\n").unwrap();
        assert!(!headers.contains(FINAL_DELIVERY_OPTION));
        assert!(
            !headers
                .to_ascii_lowercase()
                .contains("disposition-notification-to")
        );
        assert!(report.contains("\r\nX-DIRECT-FINAL-DESTINATION-DELIVERY:\r\n"));
        assert!(
            report.contains(
                "\r\nDisposition: automatic-action/MDN-sent-automatically;dispatched\r\n"
            )
        );
        assert!(entity::is_crlf(&raw));
    }

    #[test]
    fn injected_fields_are_refused() {
        let r = build(
            &Mdn {
                reporting_ua: "x",
                original_recipient: None,
                final_recipient: "bob@b.example\r\nBcc: x@y",
                original_message_id: "<o@a>",
                disposition: Disposition::Processed,
                final_delivery_requested: false,
                failure: None,
                subject: "s",
            },
            "a@b",
            "c@d",
            "<m@b>",
            Utc::now(),
        );
        assert!(matches!(r, Err(SmimeError::HeaderInjection(f)) if f == "Final-Recipient"));
    }

    #[test]
    fn an_ordinary_message_is_no_notification() {
        let raw = b"From: a@b\r\nTo: c@d\r\nSubject: hi\r\n\r\nhello\r\n";
        assert!(!is_notification(raw));
        assert_eq!(parse(raw), None);
    }
}
