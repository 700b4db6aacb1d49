//! The RFC 5322/MIME message a Direct message travels in (before S/MIME wrapping, after
//! unwrapping): a text body plus attachments, with the few headers Direct gives meaning to.
//!
//! Building is strict (we refuse what we would regret sending); parsing is lenient, because
//! other HISPs shape their messages in many ways.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{
    Encoding, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

/// The option a sender sets to ask for "timely and reliable" delivery notifications
/// (Direct Implementation Guide for Delivery Notification, §3).
pub const FINAL_DELIVERY_OPTION: &str = "X-DIRECT-FINAL-DESTINATION-DELIVERY";

/// Carries the reply-to id exactly as the client gave it, since In-Reply-To only holds ids
/// that look like RFC 5322 ids and some clients use other tokens.
pub const REPLY_TO_ID_HEADER: &str = "X-Reply-To-Message-Id";

const DISPOSITION_OPTIONS_HEADER: &str = "Disposition-Notification-Options";

/// Base64 lines stay within RFC 2045's 76 characters.
const BASE64_LINE: usize = 76;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundAttachment {
    pub media_type: String,
    pub file_name: String,
    pub title: Option<String>,
    pub content: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct OutboundMessage<'a> {
    pub from: &'a str,
    pub to: &'a [String],
    pub subject: Option<&'a str>,
    /// The text/plain body (its line ends go out as CRLF); when absent an empty text part is
    /// still written, so receivers that expect the first part to be the body are not confused.
    pub body: Option<&'a str>,
    /// RFC 5322 Message-ID without angle brackets, e.g. `uuid@domain`.
    pub message_id: &'a str,
    /// Becomes In-Reply-To and References when it looks like an id; always carried verbatim in
    /// [`REPLY_TO_ID_HEADER`].
    pub in_reply_to: Option<&'a str>,
    pub date: chrono::DateTime<chrono::Utc>,
    /// Timely & reliable: adds `Disposition-Notification-To: <from>` and
    /// `Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true`.
    pub request_final_delivery: bool,
    pub attachments: &'a [OutboundAttachment],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAttachment {
    /// `type/subtype`, lower case, without parameters.
    pub media_type: String,
    pub file_name: Option<String>,
    pub title: Option<String>,
    pub content: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMessage {
    /// Without angle brackets.
    pub message_id: Option<String>,
    /// Bare address.
    pub from: Option<String>,
    /// Bare addresses, from every To header.
    pub to: Vec<String>,
    pub subject: Option<String>,
    /// The first text/plain part that is not an attachment; `None` when there is none or it
    /// is empty.
    pub body: Option<String>,
    /// [`REPLY_TO_ID_HEADER`] when present, else In-Reply-To without angle brackets.
    pub in_reply_to: Option<String>,
    /// Disposition-Notification-Options names [`FINAL_DELIVERY_OPTION`].
    pub final_delivery_requested: bool,
    pub attachments: Vec<ParsedAttachment>,
}

#[derive(Debug, thiserror::Error)]
pub enum MimeError {
    #[error("{0} contains a line break or another control character")]
    ControlCharacter(&'static str),
    #[error("{field} {value:?} is not a plain email address")]
    Address { field: &'static str, value: String },
    #[error("a message needs at least one recipient")]
    NoRecipients,
    #[error("message id {0:?} is not of the form left@right")]
    MessageId(String),
    #[error("media type {0:?} is not of the form type/subtype")]
    MediaType(String),
    #[error("an attachment needs a file name")]
    EmptyFileName,
    #[error("not a parseable RFC 5322 message")]
    Unparseable,
}

/// A built message in pieces: its text, with each attachment's base64 body left as the bytes
/// it encodes. The store keeps it in this form (see `store::packed_mime`), so a send never
/// encodes a body only to have it decoded again for storage.
#[derive(Debug, Clone)]
pub struct Built<'a> {
    pieces: Vec<Piece<'a>>,
}

#[derive(Debug, Clone)]
pub enum Piece<'a> {
    Text(Vec<u8>),
    /// Written as [`base64_lines`] of these bytes.
    Base64(&'a [u8]),
}

impl Built<'_> {
    pub fn pieces(&self) -> &[Piece<'_>] {
        &self.pieces
    }

    /// The length of the message's bytes.
    pub fn len(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                Piece::Base64(b) => base64_lines_len(b.len()),
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.extend_from_slice(t),
                Piece::Base64(b) => out.extend_from_slice(&base64_lines(b)),
            }
        }
        out
    }
}

/// Writes the message as RFC 5322 bytes with CRLF line ends.
pub fn build(m: &OutboundMessage) -> Result<Vec<u8>, MimeError> {
    serialize(m, None)
}

/// The message in pieces. Each attachment body is first written as a placeholder that names
/// it, then the text is cut at the placeholders.
pub fn build_pieces<'a>(m: &OutboundMessage<'a>) -> Result<Built<'a>, MimeError> {
    let tag = format!("hisp-gateway-body-{:032x}-", rand::random::<u128>());
    let placeholders: Vec<Vec<u8>> = (0..m.attachments.len())
        .map(|i| format!("{tag}{i}.").into_bytes())
        .collect();
    let text = serialize(m, Some(&placeholders))?;
    // The tag must occur exactly once per attachment, as its placeholders in order; a message
    // that somehow contains it elsewhere (a 128-bit random guess) is kept whole instead.
    let found: Vec<usize> = text
        .windows(tag.len())
        .enumerate()
        .filter(|(_, w)| *w == tag.as_bytes())
        .map(|(i, _)| i)
        .collect();
    let in_order = found.len() == placeholders.len()
        && found
            .iter()
            .zip(&placeholders)
            .all(|(&at, p)| text[at..].starts_with(p));
    if !in_order {
        return Ok(Built {
            pieces: vec![Piece::Text(serialize(m, None)?)],
        });
    }
    let mut pieces = Vec::with_capacity(2 * placeholders.len() + 1);
    let mut from = 0;
    for ((at, p), a) in found.into_iter().zip(&placeholders).zip(m.attachments) {
        pieces.push(Piece::Text(text[from..at].to_vec()));
        pieces.push(Piece::Base64(&a.content));
        from = at + p.len();
    }
    pieces.push(Piece::Text(text[from..].to_vec()));
    Ok(Built { pieces })
}

/// The message's text, with each attachment body either written out or replaced by its
/// placeholder.
fn serialize(m: &OutboundMessage, placeholders: Option<&[Vec<u8>]>) -> Result<Vec<u8>, MimeError> {
    check_address("From", m.from)?;
    if m.to.is_empty() {
        return Err(MimeError::NoRecipients);
    }
    for to in m.to {
        check_address("To", to)?;
    }
    let message_id = strip_angles(m.message_id.trim());
    if !looks_like_id(message_id) {
        return Err(MimeError::MessageId(m.message_id.to_owned()));
    }
    if let Some(subject) = m.subject {
        check_header_text("Subject", subject)?;
    }

    let mut builder = MessageBuilder::new()
        .date(Date::new(m.date.timestamp()))
        .from(m.from)
        .to(Address::new_list(
            m.to.iter().map(|a| Address::from(a.as_str())).collect(),
        ))
        .message_id(message_id);
    if let Some(subject) = m.subject {
        builder = builder.subject(Text::new(subject));
    }
    if let Some(reply) = m.in_reply_to {
        check_header_text(REPLY_TO_ID_HEADER, reply)?;
        let id = strip_angles(reply.trim());
        if looks_like_id(id) {
            builder = builder
                .in_reply_to(MessageId::new(id))
                .references(MessageId::new(id));
        }
        builder = builder.header(REPLY_TO_ID_HEADER, Raw::new(reply));
    }
    builder = builder.header("MIME-Version", Raw::new("1.0"));
    if m.request_final_delivery {
        builder = builder
            .header("Disposition-Notification-To", Address::from(m.from))
            .header(
                DISPOSITION_OPTIONS_HEADER,
                Raw::new(format!("{FINAL_DELIVERY_OPTION}=optional,true")),
            );
    }

    let mut parts = Vec::with_capacity(m.attachments.len() + 1);
    parts.push(MimePart::new(
        "text/plain",
        BodyPart::Text(Cow::Borrowed(m.body.unwrap_or(""))),
    ));
    for (i, a) in m.attachments.iter().enumerate() {
        let body = match placeholders {
            Some(p) => p[i].clone(),
            None => base64_lines(&a.content),
        };
        parts.push(attachment_part(a, body)?);
    }
    builder = builder.body(MimePart::new("multipart/mixed", parts));

    let mut out = Vec::new();
    builder.serialize(&mut out);
    Ok(out)
}

fn attachment_part(a: &OutboundAttachment, body: Vec<u8>) -> Result<MimePart<'_>, MimeError> {
    let media_type = checked_media_type(&a.media_type)?;
    check_header_text("attachment file name", &a.file_name)?;
    if a.file_name.trim().is_empty() {
        return Err(MimeError::EmptyFileName);
    }
    // `name=` as well as `filename=`: some mail clients only look at the Content-Type.
    let content_type = ContentType::new(media_type).attribute("name", a.file_name.as_str());
    // Encoded here rather than by mail-builder, which would pick quoted-printable or 7bit for
    // text types and normalise their line ends; base64 keeps every byte as it was.
    let mut part = MimePart::new(content_type, BodyPart::Binary(Cow::Owned(body)))
        .attachment(a.file_name.as_str());
    if let Some(title) = &a.title {
        check_header_text("attachment title", title)?;
        part = part.header("Content-Description", Text::new(title.as_str()));
    }
    Ok(part.transfer_encoding("base64"))
}

/// The length of [`base64_lines`] of `n` bytes.
pub fn base64_lines_len(n: usize) -> usize {
    let chars = n.div_ceil(3) * 4;
    chars + chars.saturating_sub(1) / BASE64_LINE * 2
}

/// Base64 in lines of [`BASE64_LINE`] characters joined by CRLF (no CRLF after the last).
pub fn base64_lines(data: &[u8]) -> Vec<u8> {
    let encoded = STANDARD.encode(data);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / BASE64_LINE * 2);
    for (i, line) in encoded.as_bytes().chunks(BASE64_LINE).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
    }
    out
}

/// Header values end up between CRLFs; a line break inside one would start a header (or a
/// body) of the caller's choosing.
fn check_header_text(field: &'static str, value: &str) -> Result<(), MimeError> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(MimeError::ControlCharacter(field));
    }
    Ok(())
}

fn check_address(field: &'static str, value: &str) -> Result<(), MimeError> {
    check_header_text(field, value)?;
    let bad = || MimeError::Address {
        field,
        value: value.to_owned(),
    };
    // Direct addresses are plain ASCII addr-specs; anything that would need quoting or could
    // smuggle a second address in is refused.
    if !value
        .chars()
        .all(|c| c.is_ascii_graphic() && !"<>()[]\\,;:\"".contains(c))
    {
        return Err(bad());
    }
    match value.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok(())
        }
        _ => Err(bad()),
    }
}

fn strip_angles(id: &str) -> &str {
    id.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(id)
}

/// An RFC 5322 msg-id body: `left@right`, printable ASCII, nothing that would end the id.
fn looks_like_id(id: &str) -> bool {
    let Some((left, right)) = id.split_once('@') else {
        return false;
    };
    !left.is_empty()
        && !right.is_empty()
        && !right.contains('@')
        && id
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\' | ','))
}

/// RFC 2045 `type "/" subtype`, both tokens; returned lower case.
fn checked_media_type(raw: &str) -> Result<String, MimeError> {
    let is_token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c))
    };
    match raw.trim().split_once('/') {
        Some((t, s)) if is_token(t) && is_token(s) => Ok(format!("{t}/{s}").to_ascii_lowercase()),
        _ => Err(MimeError::MediaType(raw.to_owned())),
    }
}

/// Reads a message as built by [`build`] or by another HISP.
pub fn parse(raw: &[u8]) -> Result<ParsedMessage, MimeError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(MimeError::Unparseable)?;
    // mail-parser reads header-less text as a bare body; that is no message of ours.
    if message.headers().is_empty() {
        return Err(MimeError::Unparseable);
    }

    let to = message
        .all_to()
        .flat_map(|list| list.iter())
        .filter_map(|a| a.address())
        .map(str::to_owned)
        .collect();
    let from = message
        .from()
        .and_then(|list| list.first())
        .and_then(|a| a.address())
        .map(str::to_owned);

    let in_reply_to = header_texts(&message, REPLY_TO_ID_HEADER)
        .into_iter()
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
        .or_else(|| first_id(message.in_reply_to()));

    let final_delivery_requested = header_texts(&message, DISPOSITION_OPTIONS_HEADER)
        .iter()
        .any(|v| {
            v.to_ascii_lowercase()
                .contains(&FINAL_DELIVERY_OPTION.to_ascii_lowercase())
        });

    let body = message
        .text_bodies()
        .find(|p| p.content_type().is_none() || p.is_content_type("text", "plain"))
        .and_then(|p| p.text_contents())
        .filter(|t| !t.is_empty())
        .map(str::to_owned);

    let attachments = message
        .attachments()
        .filter(|p| !p.is_multipart())
        .map(|p| ParsedAttachment {
            media_type: media_type_of(p),
            file_name: p
                .attachment_name()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            title: p
                .content_description()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
            content: attachment_bytes(raw, p),
        })
        .collect();

    Ok(ParsedMessage {
        message_id: message.message_id().map(str::to_owned),
        from,
        to,
        subject: message.subject().map(str::to_owned),
        body,
        in_reply_to,
        final_delivery_requested,
        attachments,
    })
}

/// Every top-level header of that name, raw, unfolded enough for substring checks.
fn header_texts(message: &Message<'_>, name: &str) -> Vec<String> {
    let raw = message.raw_message();
    message
        .headers()
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case(name))
        .filter_map(|h| raw.get(h.offset_start() as usize..h.offset_end() as usize))
        .map(|bytes| String::from_utf8_lossy(bytes).replace(['\r', '\n'], ""))
        .collect()
}

fn first_id(value: &HeaderValue<'_>) -> Option<String> {
    let id = match value {
        HeaderValue::Text(t) => Some(t.as_ref()),
        HeaderValue::TextList(list) => list.first().map(|t| t.as_ref()),
        _ => None,
    }?;
    let id = strip_angles(id.trim());
    (!id.is_empty()).then(|| id.to_owned())
}

fn media_type_of(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None if ct.ctype().eq_ignore_ascii_case("text") => "text/plain".to_owned(),
            None => "application/octet-stream".to_owned(),
        },
        // RFC 2045 §5.2: no Content-Type means text/plain.
        None => "text/plain".to_owned(),
    }
}

/// mail-parser converts text parts to UTF-8 (lossily for other charsets or invalid bytes),
/// so their bytes are decoded again from the raw message to come back exactly as sent.
fn attachment_bytes(raw: &[u8], part: &MessagePart<'_>) -> Vec<u8> {
    match &part.body {
        PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
        PartType::Text(_) | PartType::Html(_) if !part.is_encoding_problem => raw
            .get(part.raw_body_offset() as usize..part.raw_end_offset() as usize)
            .and_then(|body| match part.encoding {
                Encoding::Base64 => base64_decode(body),
                Encoding::QuotedPrintable => quoted_printable_decode(body),
                Encoding::None => Some(body.to_vec()),
            })
            .unwrap_or_else(|| part.contents().to_vec()),
        _ => part.contents().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn date() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc
            .with_ymd_and_hms(2024, 5, 6, 7, 8, 9)
            .single()
            .expect("valid date")
    }

    fn attachments() -> Vec<OutboundAttachment> {
        vec![
            OutboundAttachment {
                media_type: "application/octet-stream".into(),
                file_name: "all-bytes.bin".into(),
                title: Some("Every byte value".into()),
                content: (0..=255u8).collect(),
            },
            OutboundAttachment {
                media_type: "text/xml".into(),
                file_name: "ccda.xml".into(),
                title: Some("Référence — summary of care".into()),
                // Bare LF, a CR-only line end, trailing spaces and non-UTF-8 bytes: all things a
                // text encoding would be tempted to "fix".
                content: b"<?xml version=\"1.0\"?>\n<doc>\r  caf\xe9 \n</doc>  \n".to_vec(),
            },
        ]
    }

    fn message<'a>(
        to: &'a [String],
        attachments: &'a [OutboundAttachment],
        id: &'a str,
        final_delivery: bool,
    ) -> OutboundMessage<'a> {
        OutboundMessage {
            from: "alice@direct.example.org",
            to,
            subject: Some("Referral for Bob"),
            body: Some("Please see the attached documents.\r\nThanks"),
            message_id: id,
            in_reply_to: Some("<orig-1@direct.other.example>"),
            date: date(),
            request_final_delivery: final_delivery,
            attachments,
        }
    }

    #[test]
    fn round_trip_keeps_attachments_byte_identical() {
        let to = vec![
            "bob@direct.other.example".to_owned(),
            "carol@direct.third.example".to_owned(),
        ];
        let atts = attachments();
        let raw = build(&message(&to, &atts, "id-1@direct.example.org", true)).expect("build");
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("MIME-Version: 1.0\r\n"), "{text}");
        assert!(text.contains("Content-Type: multipart/mixed"), "{text}");
        assert!(
            text.contains("Date: Mon, 6 May 2024 07:08:09 +0000\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Disposition-Notification-To: <alice@direct.example.org>\r\n"),
            "{text}"
        );

        let parsed = parse(&raw).expect("parse");
        assert_eq!(
            parsed.message_id.as_deref(),
            Some("id-1@direct.example.org")
        );
        assert_eq!(parsed.from.as_deref(), Some("alice@direct.example.org"));
        assert_eq!(parsed.to, to);
        assert_eq!(parsed.subject.as_deref(), Some("Referral for Bob"));
        assert_eq!(
            parsed.body.as_deref(),
            Some("Please see the attached documents.\r\nThanks")
        );
        assert_eq!(
            parsed.in_reply_to.as_deref(),
            Some("<orig-1@direct.other.example>")
        );
        assert!(parsed.final_delivery_requested);
        assert_eq!(parsed.attachments.len(), 2);
        for (sent, got) in atts.iter().zip(&parsed.attachments) {
            assert_eq!(got.media_type, sent.media_type);
            assert_eq!(got.file_name.as_deref(), Some(sent.file_name.as_str()));
            assert_eq!(got.title, sent.title);
            assert_eq!(got.content, sent.content, "{}", sent.file_name);
        }
    }

    #[test]
    fn headers_follow_the_input() {
        let to = vec!["bob@direct.other.example".to_owned()];
        let a = build(&message(&to, &[], "first@direct.example.org", false)).expect("build");
        let b = build(&message(&to, &[], "second@direct.example.org", false)).expect("build");
        let (a, b) = (parse(&a).expect("parse a"), parse(&b).expect("parse b"));
        assert_eq!(a.message_id.as_deref(), Some("first@direct.example.org"));
        assert_eq!(b.message_id.as_deref(), Some("second@direct.example.org"));
        assert!(!a.final_delivery_requested);
        assert!(a.attachments.is_empty());

        let raw = build(&message(&to, &[], "x@y", false)).expect("build");
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains("Disposition-Notification"), "{text}");
        assert!(
            text.contains("In-Reply-To: <orig-1@direct.other.example>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("References: <orig-1@direct.other.example>\r\n"),
            "{text}"
        );
    }

    #[test]
    fn absent_body_still_writes_a_text_part() {
        let to = vec!["bob@direct.other.example".to_owned()];
        let atts = attachments();
        let mut m = message(&to, &atts[..1], "nobody@direct.example.org", false);
        m.body = None;
        m.subject = None;
        m.in_reply_to = Some("not an id");
        let raw = build(&m).expect("build");
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.contains("Content-Type: text/plain; charset=\"utf-8\""),
            "{text}"
        );
        assert!(!text.contains("In-Reply-To"), "{text}");
        assert!(
            text.contains("X-Reply-To-Message-Id: not an id\r\n"),
            "{text}"
        );
        let parsed = parse(&raw).expect("parse");
        assert_eq!(parsed.body, None);
        assert_eq!(parsed.subject, None);
        assert_eq!(parsed.in_reply_to.as_deref(), Some("not an id"));
        assert_eq!(parsed.attachments.len(), 1);
    }

    #[test]
    fn header_injection_and_bad_input_are_refused() {
        let to = vec!["bob@direct.other.example".to_owned()];
        let mut m = message(&to, &[], "a@b", false);
        m.subject = Some("hi\r\nBcc: eve@evil.example");
        assert!(matches!(
            build(&m),
            Err(MimeError::ControlCharacter("Subject"))
        ));

        let mut m = message(&to, &[], "a@b", false);
        m.in_reply_to = Some("x@y\nBcc: eve@evil.example");
        assert!(matches!(build(&m), Err(MimeError::ControlCharacter(_))));

        let mut m = message(&to, &[], "a@b\r\nX-Evil: 1", false);
        m.in_reply_to = None;
        assert!(build(&m).is_err());

        let bad_to = vec!["bob@direct.other.example\r\nBcc: eve@evil.example".to_owned()];
        assert!(build(&message(&bad_to, &[], "a@b", false)).is_err());
        let two_in_one = vec!["bob@a.example, eve@evil.example".to_owned()];
        assert!(matches!(
            build(&message(&two_in_one, &[], "a@b", false)),
            Err(MimeError::Address { .. })
        ));
        assert!(matches!(
            build(&message(&[], &[], "a@b", false)),
            Err(MimeError::NoRecipients)
        ));

        let mut atts = attachments();
        atts[0].title = Some("t\nContent-Type: text/html".into());
        assert!(build(&message(&to, &atts, "a@b", false)).is_err());
        let mut atts = attachments();
        atts[0].file_name = "a\r\n.bin".into();
        assert!(build(&message(&to, &atts, "a@b", false)).is_err());
        for media in [
            "text",
            "text/",
            "/xml",
            "text/xml; x=\r\n",
            "te xt/plain",
            "a/b/c",
        ] {
            let mut atts = attachments();
            atts[0].media_type = media.into();
            assert!(
                matches!(
                    build(&message(&to, &atts, "a@b", false)),
                    Err(MimeError::MediaType(_))
                ),
                "{media:?}"
            );
        }
    }

    #[test]
    fn parses_a_message_from_another_hisp() {
        let raw = concat!(
            "Received: from mx.other.example by us\r\n",
            "From: \"Dr. Who\" <who@direct.other.example>\r\n",
            "To: Alice <alice@direct.example.org>,\r\n bob@direct.example.org\r\n",
            "Subject: =?UTF-8?Q?R=C3=A9sultats?=\r\n",
            "Message-ID: <abc.123@other.example>\r\n",
            "In-Reply-To: <prev@direct.example.org>\r\n",
            "disposition-notification-options: x-direct-final-destination-delivery=optional,true\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: multipart/mixed; boundary=\"outer\"\r\n",
            "\r\n",
            "preamble\r\n",
            "--outer\r\n",
            "Content-Type: multipart/alternative; boundary=\"inner\"\r\n",
            "\r\n",
            "--inner\r\n",
            "Content-Type: text/plain; charset=us-ascii\r\n",
            "\r\n",
            "Lab results attached.\r\n",
            "--inner\r\n",
            "Content-Type: text/html; charset=us-ascii\r\n",
            "\r\n",
            "<p>Lab results attached.</p>\r\n",
            "--inner--\r\n",
            "\r\n",
            "--outer\r\n",
            "Content-Type: application/PDF; name=\"results.pdf\"\r\n",
            "Content-Transfer-Encoding: base64\r\n",
            "\r\n",
            "JVBERi0xLjQKJcfs\r\n",
            "j6IK\r\n",
            "--outer\r\n",
            "Content-Type: text/xml; charset=utf-8\r\n",
            "Content-Disposition: attachment; filename=ccd.xml\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "\r\n",
            "<doc a=3D\"1\">caf=C3=A9</doc>\r\n",
            "--outer\r\n",
            "Content-Type: text/plain; name=notes.txt\r\n",
            "\r\n",
            "line 1\r\nline 2  \r\n",
            "--outer--\r\n",
        );
        let parsed = parse(raw.as_bytes()).expect("parse");
        assert_eq!(parsed.message_id.as_deref(), Some("abc.123@other.example"));
        assert_eq!(parsed.from.as_deref(), Some("who@direct.other.example"));
        assert_eq!(
            parsed.to,
            vec!["alice@direct.example.org", "bob@direct.example.org"]
        );
        assert_eq!(parsed.subject.as_deref(), Some("Résultats"));
        assert_eq!(parsed.body.as_deref(), Some("Lab results attached."));
        assert_eq!(
            parsed.in_reply_to.as_deref(),
            Some("prev@direct.example.org")
        );
        assert!(parsed.final_delivery_requested);

        assert_eq!(parsed.attachments.len(), 3, "{:?}", parsed.attachments);
        let pdf = &parsed.attachments[0];
        assert_eq!(pdf.media_type, "application/pdf");
        assert_eq!(pdf.file_name.as_deref(), Some("results.pdf"));
        assert_eq!(pdf.title, None);
        assert_eq!(pdf.content, b"%PDF-1.4\n%\xc7\xec\x8f\xa2\n");
        let xml = &parsed.attachments[1];
        assert_eq!(xml.media_type, "text/xml");
        assert_eq!(xml.file_name.as_deref(), Some("ccd.xml"));
        assert_eq!(xml.content, "<doc a=\"1\">café</doc>".as_bytes());
        let notes = &parsed.attachments[2];
        assert_eq!(notes.media_type, "text/plain");
        assert_eq!(notes.file_name.as_deref(), Some("notes.txt"));
        // The CRLF before the boundary belongs to the boundary, not to the content.
        assert_eq!(notes.content, b"line 1\r\nline 2  ");
    }

    #[test]
    fn building_in_pieces_writes_what_building_whole_would() {
        let to = vec!["bob@direct.other.example".to_owned()];
        let mut attachments = attachments();
        // Every body length modulo 3, around one line's worth, and empty.
        for len in [0, 1, 2, 3, 56, 57, 58, 114, 5000] {
            attachments.push(OutboundAttachment {
                media_type: "application/octet-stream".into(),
                file_name: format!("n{len}.bin"),
                title: None,
                content: (0..len).map(|i| (i * 7 % 256) as u8).collect(),
            });
        }
        let m = message(&to, &attachments, "id-1@direct.example.org", true);
        let built = build_pieces(&m).unwrap();
        let pieces = String::from_utf8(built.to_bytes()).unwrap();
        let whole = String::from_utf8(build(&m).unwrap()).unwrap();
        assert_eq!(built.len(), pieces.len());
        // mail-builder may pick a fresh boundary for each build; all else must be the same.
        let boundary = |text: &str| {
            let at = text.find("boundary=\"").expect("a boundary") + 10;
            text[at..at + text[at..].find('"').expect("closing quote")].to_owned()
        };
        assert_eq!(
            pieces.replace(&boundary(&pieces), "B"),
            whole.replace(&boundary(&whole), "B")
        );
        assert!(!pieces.contains("hisp-gateway-body-"));
        let bodies = built
            .pieces()
            .iter()
            .filter(|p| matches!(p, Piece::Base64(_)))
            .count();
        assert_eq!(bodies, attachments.len(), "every body kept as its bytes");
    }

    #[test]
    fn garbage_is_not_a_message() {
        assert!(parse(b"").is_err());
        assert!(parse(b"\r\njust a line of text").is_err());
    }
}
