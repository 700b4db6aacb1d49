//! Messaging rules: the send request of the REST door, validated field by field, and the
//! per-recipient status machine with its delivery notifications.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Invalid;
use super::pki::DirectAddress;

/// Most recipients one message may name.
pub const MAX_RECIPIENTS: usize = 100;
/// Longest free-text field (subject, names, metadata) we keep, in characters.
const MAX_TEXT: usize = 1000;
/// The body may be a whole letter.
const MAX_BODY: usize = 100_000;

/// Delivery status of one recipient, with the spec's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    #[serde(rename = "SMTPINIT")]
    SmtpInit,
    #[serde(rename = "PROCESSED")]
    Processed,
    #[serde(rename = "DISPATCHED")]
    Dispatched,
    #[serde(rename = "DISPLAYED")]
    Displayed,
    #[serde(rename = "FAILED")]
    Failed,
    #[serde(rename = "FAILED-TO")]
    FailedTimeout,
}

/// What a status notification does to a recipient's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Apply,
    /// Recorded, but the status stays (a late or out-of-order notification).
    Ignore,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::SmtpInit,
        Status::Processed,
        Status::Dispatched,
        Status::Displayed,
        Status::Failed,
        Status::FailedTimeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::SmtpInit => "SMTPINIT",
            Status::Processed => "PROCESSED",
            Status::Dispatched => "DISPATCHED",
            Status::Displayed => "DISPLAYED",
            Status::Failed => "FAILED",
            Status::FailedTimeout => "FAILED-TO",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Invalid::new("status", format!("unknown message status {s:?}")))
    }

    /// A final status ends the wait: no timeout applies any more. DISPATCHED is final yet may
    /// still become DISPLAYED.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::SmtpInit | Status::Processed)
    }

    /// The spec's rules: SMTPINIT and PROCESSED move forward to anything later; DISPATCHED
    /// may only become DISPLAYED; DISPLAYED, FAILED and FAILED-TO never change.
    pub fn on(self, incoming: Status) -> Transition {
        use Status::*;
        let ok = match (self, incoming) {
            (SmtpInit, SmtpInit) => false,
            (SmtpInit, _) => true,
            (Processed, SmtpInit | Processed) => false,
            (Processed, _) => true,
            (Dispatched, Displayed) => true,
            _ => false,
        };
        if ok {
            Transition::Apply
        } else {
            Transition::Ignore
        }
    }

    /// The notification a sender gets when a recipient reaches this status, if any.
    /// SMTPINIT is our own hand-off and is never notified.
    pub fn notification(self) -> Option<Notification> {
        let (success, word) = match self {
            Status::SmtpInit => return None,
            Status::Processed => (true, "processed"),
            Status::Dispatched => (true, "dispatched"),
            Status::Displayed => (true, "displayed"),
            Status::Failed | Status::FailedTimeout => (false, "failed"),
        };
        Some(Notification {
            status: if success { "Success" } else { "Error" },
            disposition: format!("action/MDN-sent-automatically;{word}"),
            word,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The words of one delivery status notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `Success` or `Error`.
    pub status: &'static str,
    /// The disposition word: processed, dispatched, displayed or failed.
    pub word: &'static str,
    pub disposition: String,
}

/// One document of a send request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub media_type: String,
    pub title: Option<String>,
    /// Without extension, as the sender gave it (we add the extension).
    pub file_name: Option<String>,
    pub content: Vec<u8>,
}

impl Attachment {
    /// The file name delivered: the sender's name (or `attachment<n>`) plus the extension of
    /// the media type, unless the sender already ended it with that extension.
    pub fn delivered_name(&self, position: usize) -> String {
        let ext = extension_for(&self.media_type);
        let base = self
            .file_name
            .clone()
            .unwrap_or_else(|| format!("attachment{}", position + 1));
        if base
            .to_ascii_lowercase()
            .ends_with(&format!(".{ext}").to_ascii_lowercase())
        {
            base
        } else {
            format!("{base}.{ext}")
        }
    }
}

/// The patient, document and author fields of a send request, by their names on the wire.
/// They describe the XDM submission and travel with the message to a local recipient.
pub const METADATA_FIELDS: [&str; 21] = [
    "assigning_authority",
    "patientId",
    "patientIdType",
    "patientAddressStreet1",
    "patientAddressStreet2",
    "patientAddressCity",
    "patientAddressState",
    "patientAddressZip",
    "patientDOB",
    "patientGender",
    "patientLastname",
    "patientFirstname",
    "patientMiddlename",
    "patient_summary",
    "replyToMessageId",
    "loincName",
    "loincValue",
    "authorPerson",
    "authorInstitution",
    "messageSubject",
    "messageBody",
];

/// A validated `send_ccda` request.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub from: DirectAddress,
    pub to: Vec<DirectAddress>,
    pub message_id: String,
    pub attachments: Vec<Attachment>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub reply_to: Option<String>,
    pub xdm: bool,
    pub asm_enabled: bool,
    /// Without the `-xdm.zip` suffix, which we add.
    pub xdm_file_name: Option<String>,
    /// The metadata fields that were given (see `METADATA_FIELDS`), as strings.
    pub metadata: Map<String, Value>,
}

impl SendRequest {
    /// The attachments' bytes, in all.
    pub fn content_len(&self) -> usize {
        self.attachments.iter().map(|a| a.content.len()).sum()
    }

    /// Validates a request body; the error names the first bad field. `max_attachments`
    /// bounds the attachment list.
    pub fn parse(v: &Value, max_attachments: usize) -> Result<Self, Invalid> {
        let obj = v
            .as_object()
            .ok_or_else(|| Invalid::new("body", "must be a JSON object"))?;
        let from = DirectAddress::parse(&required_str(obj, "fromDirectAddress")?)
            .map_err(|e| Invalid::new("fromDirectAddress", e.message))?;
        let to = parse_recipients(&required_str(obj, "toDirectAddress")?)?;
        let message_id = required_str(obj, "messageId")?;
        if message_id.chars().count() > 255 || message_id.chars().any(char::is_control) {
            return Err(Invalid::new(
                "messageId",
                "must be at most 255 printable characters",
            ));
        }
        let attachments = parse_attachments(obj, max_attachments)?;
        let mut metadata = Map::new();
        for name in METADATA_FIELDS {
            if let Some(s) = optional_str(obj, name)? {
                let max = if name == "messageBody" {
                    MAX_BODY
                } else {
                    MAX_TEXT
                };
                if s.chars().count() > max {
                    return Err(Invalid::new(
                        name,
                        format!("must be at most {max} characters"),
                    ));
                }
                if name != "messageBody"
                    && name != "patient_summary"
                    && s.chars().any(char::is_control)
                {
                    return Err(Invalid::new(name, "must not contain control characters"));
                }
                metadata.insert(name.to_owned(), Value::String(s));
            }
        }
        if let Some(dob) = metadata.get("patientDOB").and_then(Value::as_str)
            && !(dob.len() == 8 && dob.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Invalid::new("patientDOB", "must be YYYYMMDD"));
        }
        let xdm_file_name = match optional_str(obj, "xdmFileName")? {
            Some(n) => Some(parse_file_name("xdmFileName", &n)?),
            None => None,
        };
        let text = |k: &str| metadata.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(Self {
            subject: text("messageSubject"),
            body: text("messageBody"),
            reply_to: text("replyToMessageId"),
            xdm: optional_bool(obj, "xdm")?.unwrap_or(false),
            asm_enabled: optional_bool(obj, "asmEnabled")?.unwrap_or(false),
            from,
            to,
            message_id,
            attachments,
            xdm_file_name,
            metadata,
        })
    }

    /// The delivered name of the XDM package.
    pub fn xdm_package_name(&self) -> String {
        format!(
            "{}-xdm.zip",
            self.xdm_file_name.as_deref().unwrap_or("message")
        )
    }
}

fn required_str(obj: &Map<String, Value>, field: &'static str) -> Result<String, Invalid> {
    match optional_str(obj, field)? {
        Some(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        _ => Err(Invalid::new(field, "is required")),
    }
}

fn optional_str(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, Invalid> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        // Numbers are accepted where senders commonly send them (patient ids, zip codes).
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(Invalid::new(static_field(field), "must be a string")),
    }
}

fn optional_bool(obj: &Map<String, Value>, field: &'static str) -> Result<Option<bool>, Invalid> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(Invalid::new(field, "must be true or false")),
        },
        Some(_) => Err(Invalid::new(field, "must be true or false")),
    }
}

/// `Invalid` carries a static field name; every field we read is one of ours.
fn static_field(field: &str) -> &'static str {
    const KNOWN: [&str; 7] = [
        "fromDirectAddress",
        "toDirectAddress",
        "messageId",
        "xdmFileName",
        "attachmentClass",
        "attachmentTitle",
        "attachmentFileName",
    ];
    KNOWN
        .into_iter()
        .chain(METADATA_FIELDS)
        .find(|k| *k == field)
        .unwrap_or("body")
}

/// The recipients of `toDirectAddress`, each once. Linear in the field and stopped at the
/// first address past `MAX_RECIPIENTS`: however long the list, no more is read than that.
fn parse_recipients(list: &str) -> Result<Vec<DirectAddress>, Invalid> {
    let mut out: Vec<DirectAddress> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for part in list.split([',', ';']) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let a = DirectAddress::parse(part).map_err(|e| {
            Invalid::new(
                "toDirectAddress",
                format!("{:?}: {}", excerpt(part), e.message),
            )
        })?;
        // The same recipient twice is one delivery.
        if !seen.insert(a.to_string().to_ascii_lowercase()) {
            continue;
        }
        if out.len() == MAX_RECIPIENTS {
            return Err(Invalid::new(
                "toDirectAddress",
                format!("at most {MAX_RECIPIENTS} recipients"),
            ));
        }
        out.push(a);
    }
    if out.is_empty() {
        return Err(Invalid::new("toDirectAddress", "is required"));
    }
    Ok(out)
}

/// The start of a value quoted back in an error: enough to find it, never the whole of a
/// hostile megabyte.
fn excerpt(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn parse_attachments(obj: &Map<String, Value>, max: usize) -> Result<Vec<Attachment>, Invalid> {
    const LIST: &str = "emailAttachmentList";
    let list = match obj.get(LIST) {
        None | Some(Value::Null) => return Err(Invalid::new(LIST, "is required")),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(Invalid::new(LIST, "must be an array")),
    };
    if list.is_empty() {
        return Err(Invalid::new(LIST, "must hold at least one attachment"));
    }
    if list.len() > max {
        return Err(Invalid::new(
            LIST,
            format!("at most {max} attachments per message"),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let at =
            |field: &'static str, msg: &str| Invalid::new(field, format!("attachment {i}: {msg}"));
        let item = item
            .as_object()
            .ok_or_else(|| Invalid::new(LIST, format!("attachment {i}: must be an object")))?;
        let text = |field: &'static str| -> Result<Option<String>, Invalid> {
            optional_str(item, field).map_err(|e| at(field, &e.message))
        };
        let media_type = match text("attachmentClass")? {
            Some(c) => parse_media_type(&c).map_err(|m| at("attachmentClass", &m))?,
            None => "application/octet-stream".to_owned(),
        };
        // Borrowed, not copied: it is most of the request.
        let content = match item.get("attachmentContent") {
            Some(Value::String(c)) if !c.trim().is_empty() => {
                decode_base64(c).ok_or_else(|| at("attachmentContent", "is not valid base64"))?
            }
            None | Some(Value::Null) | Some(Value::String(_)) => {
                return Err(at("attachmentContent", "is required"));
            }
            Some(_) => return Err(at("attachmentContent", "must be a string")),
        };
        let title = text("attachmentTitle")?.filter(|t| !t.trim().is_empty());
        if let Some(t) = &title
            && (t.chars().count() > MAX_TEXT || t.chars().any(char::is_control))
        {
            return Err(at(
                "attachmentTitle",
                "must be at most 1000 printable characters",
            ));
        }
        let file_name = match text("attachmentFileName")? {
            Some(n) if !n.trim().is_empty() => {
                Some(attachment_file_name(&n).map_err(|e| at(e.field, &e.message))?)
            }
            _ => None,
        };
        out.push(Attachment {
            media_type,
            title,
            file_name,
            content,
        });
    }
    Ok(out)
}

/// Base64 as senders write it: line breaks and other white space anywhere, padding optional.
/// The common case (one unbroken, padded string) is decoded in place, without a scan or copy.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if let Ok(decoded) = STANDARD.decode(bytes) {
        return Some(decoded);
    }
    let mut compact: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    match compact.len() % 4 {
        0 => {}
        2 => compact.extend_from_slice(b"=="),
        3 => compact.push(b'='),
        _ => return None,
    }
    STANDARD.decode(compact).ok()
}

/// `type/subtype` with optional `; name=value` parameters (RFC 2045 tokens); returns the
/// lower-case `type/subtype`.
pub fn parse_media_type(s: &str) -> Result<String, String> {
    let s = s.trim();
    let (essence, params) = s.split_once(';').unwrap_or((s, ""));
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let ok = essence
        .trim()
        .split_once('/')
        .is_some_and(|(t, st)| token(t) && token(st));
    let params_ok = params.is_empty()
        || params.split(';').all(|p| {
            p.trim().split_once('=').is_some_and(|(n, v)| {
                token(n.trim()) && !v.trim().is_empty() && !v.contains(['\r', '\n'])
            })
        });
    if ok && params_ok {
        // Parameters (a charset) say nothing once the bytes travel base64; the MIME part and the
        // receiver's JSON carry the essence.
        Ok(essence.trim().to_ascii_lowercase())
    } else {
        Err(format!("{s:?} is not a media type (type/subtype)"))
    }
}

/// The seed's own example is a path, `attachment/ccda`: its last segment is the name. A path
/// that climbs (`..`) or ends empty is refused like any bad name.
fn attachment_file_name(s: &str) -> Result<String, Invalid> {
    const FIELD: &str = "attachmentFileName";
    let s = s.trim();
    let climbs = s.split(['/', '\\']).any(|segment| segment.trim() == "..");
    if climbs || s.chars().any(char::is_control) {
        return Err(Invalid::new(
            FIELD,
            "must be a file name (a path's last segment is taken), without .. or control characters",
        ));
    }
    let last = s.rsplit(['/', '\\']).next().unwrap_or(s);
    parse_file_name(FIELD, last)
}

fn parse_file_name(field: &'static str, s: &str) -> Result<String, Invalid> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.chars().count() <= 128
        && !s.contains(['/', '\\', '"', ':', '*', '?', '<', '>', '|'])
        && !s.chars().any(char::is_control)
        && s != "."
        && s != "..";
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Invalid::new(
            field,
            "must be a plain file name of at most 128 characters, without path separators or any of : * ? \" < > |",
        ))
    }
}

/// The usual extension of a media type; unknown types get `bin`.
pub fn extension_for(media_type: &str) -> &'static str {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "text/xml" | "application/xml" | "application/hl7-v3+xml" | "application/cda+xml" => "xml",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/html" => "html",
        "application/json" => "json",
        "application/zip" | "application/x-zip-compressed" => "zip",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/tiff" => "tif",
        "image/gif" => "gif",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "text/rtf" | "application/rtf" => "rtf",
        "text/csv" => "csv",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "fromDirectAddress": "john@a.example.org",
            "toDirectAddress": "smith@b.example.org, jones@c.example.org",
            "messageId": "urn:uuid:a2d59543-91f4-45a4-99ef-72d70da1e454",
            "emailAttachmentList": [
                {"attachmentClass": "text/xml", "attachmentContent": "PGEvPg==", "attachmentTitle": "CCD"},
                {"attachmentClass": "application/pdf", "attachmentContent": "JVBERi0", "attachmentFileName": "report"}
            ],
            "xdm": "true",
            "patientDOB": "19160226",
            "patientId": 22943847
        })
    }

    fn field_of(v: Value) -> &'static str {
        SendRequest::parse(&v, 10).unwrap_err().field
    }

    #[test]
    fn recipients_are_counted_once_and_the_count_stops_at_the_limit() {
        let mut v = valid();
        v["toDirectAddress"] = json!(vec!["Same@B.example.org"; 10_000].join(","));
        let r = SendRequest::parse(&v, 10).unwrap();
        assert_eq!(r.to.len(), 1);
        // 101 distinct addresses, then rubbish the parser must never reach.
        let mut list: Vec<String> = (0..=MAX_RECIPIENTS)
            .map(|i| format!("r{i}@b.example.org"))
            .collect();
        list.push("not an address".into());
        v["toDirectAddress"] = json!(list.join(","));
        let e = SendRequest::parse(&v, 10).unwrap_err();
        assert_eq!(e.field, "toDirectAddress");
        assert!(e.message.contains("at most 100"), "{}", e.message);
        // A huge bad address is quoted back only in part.
        v["toDirectAddress"] = json!(format!("{}@@x", "a".repeat(1_000_000)));
        let e = SendRequest::parse(&v, 10).unwrap_err();
        assert!(e.message.len() < 300, "{} bytes", e.message.len());
    }

    #[test]
    fn a_full_request_parses() {
        let r = SendRequest::parse(&valid(), 10).unwrap();
        assert_eq!(r.to.len(), 2);
        assert!(r.xdm);
        assert!(!r.asm_enabled);
        assert_eq!(r.attachments[0].content, b"<a/>");
        // Unpadded base64 is accepted.
        assert_eq!(r.attachments[1].content, b"%PDF-");
        assert_eq!(r.attachments[1].delivered_name(1), "report.pdf");
        assert_eq!(r.attachments[0].delivered_name(0), "attachment1.xml");
        assert_eq!(r.metadata["patientId"], "22943847");
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut v = valid();
        v.as_object_mut().unwrap().remove("messageId");
        assert_eq!(field_of(v), "messageId");
        let mut v = valid();
        v["fromDirectAddress"] = json!("not-an-address");
        assert_eq!(field_of(v), "fromDirectAddress");
        let mut v = valid();
        v["toDirectAddress"] = json!("ok@b.example.org,bad@@x");
        assert_eq!(field_of(v), "toDirectAddress");
        let mut v = valid();
        v["emailAttachmentList"] = json!([]);
        assert_eq!(field_of(v), "emailAttachmentList");
        let mut v = valid();
        v["emailAttachmentList"][1]["attachmentContent"] = json!("!!notbase64");
        assert_eq!(field_of(v), "attachmentContent");
        let mut v = valid();
        v["emailAttachmentList"][0]["attachmentContent"] = json!(1234);
        assert_eq!(field_of(v), "attachmentContent");
        let mut v = valid();
        v["emailAttachmentList"][0]["attachmentClass"] = json!("xml");
        assert_eq!(field_of(v), "attachmentClass");
        let mut v = valid();
        v["emailAttachmentList"][0]["attachmentFileName"] = json!("../etc/passwd");
        assert_eq!(field_of(v), "attachmentFileName");
        for bad in [
            "attachment/",
            "attachment/..",
            "a\\..\\b",
            "attachment/cc\u{7}da",
        ] {
            let mut v = valid();
            v["emailAttachmentList"][0]["attachmentFileName"] = json!(bad);
            assert_eq!(field_of(v), "attachmentFileName", "{bad:?}");
        }
        let mut v = valid();
        v["patientDOB"] = json!("1916-02-26");
        assert_eq!(field_of(v), "patientDOB");
        let mut v = valid();
        v["asmEnabled"] = json!("yes");
        assert_eq!(field_of(v), "asmEnabled");
    }

    #[test]
    fn the_status_machine_follows_the_spec() {
        use Status::*;
        assert_eq!(SmtpInit.on(Processed), Transition::Apply);
        assert_eq!(SmtpInit.on(FailedTimeout), Transition::Apply);
        assert_eq!(Processed.on(Dispatched), Transition::Apply);
        assert_eq!(Processed.on(Processed), Transition::Ignore);
        assert_eq!(Dispatched.on(Displayed), Transition::Apply);
        for late in [SmtpInit, Processed, Failed, FailedTimeout, Dispatched] {
            assert_eq!(Dispatched.on(late), Transition::Ignore, "{late}");
        }
        for s in Status::ALL {
            assert_eq!(Displayed.on(s), Transition::Ignore);
            assert_eq!(Failed.on(s), Transition::Ignore);
            assert_eq!(FailedTimeout.on(s), Transition::Ignore);
        }
        assert!(!Processed.is_final());
        assert!(Dispatched.is_final());
        assert_eq!(Status::parse("failed-to").unwrap(), FailedTimeout);
    }

    #[test]
    fn notifications_use_the_spec_words() {
        let n = Status::Dispatched.notification().unwrap();
        assert_eq!(n.status, "Success");
        assert_eq!(n.disposition, "action/MDN-sent-automatically;dispatched");
        let n = Status::FailedTimeout.notification().unwrap();
        assert_eq!(n.status, "Error");
        assert_eq!(n.disposition, "action/MDN-sent-automatically;failed");
        assert!(Status::SmtpInit.notification().is_none());
    }

    #[test]
    fn media_types() {
        assert_eq!(
            parse_media_type("Text/XML; charset=utf-8").unwrap(),
            "text/xml"
        );
        assert!(parse_media_type("application/pdf").is_ok());
        assert!(parse_media_type("pdf").is_err());
        assert!(parse_media_type("text/").is_err());
        assert!(parse_media_type("text/xml; charset").is_err());
        assert_eq!(extension_for("TEXT/XML"), "xml");
    }

    #[test]
    fn base64_is_read_as_senders_write_it() {
        let want = b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>".to_vec();
        let plain = STANDARD.encode(&want);
        let broken: String = plain
            .as_bytes()
            .chunks(8)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n ");
        let unpadded = plain.trim_end_matches('=');
        for text in [plain.as_str(), broken.as_str(), unpadded] {
            assert_eq!(decode_base64(text).as_deref(), Some(&want[..]), "{text:?}");
        }
        for bad in ["QQ=A", "Q", "QUJD\u{e9}", "QU JD E"] {
            assert_eq!(decode_base64(bad), None, "{bad:?}");
        }
    }
}
