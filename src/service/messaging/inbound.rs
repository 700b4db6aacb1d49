//! The inbound JSON a receiving vendor gets: the spec's send fields, read back from the MIME
//! message we stored (so a message from another HISP takes the same path), in the flat shape or
//! with the addresses nested under `envelopeInfo`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::direct::{mime, xdm};
use crate::domain::messaging::METADATA_FIELDS;
use crate::store::messaging::MessageRow;

/// How an endpoint wants its JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `fromDirectAddress` and `toDirectAddress` (a string) at the top, as in the spec.
    Flat,
    /// Both under `envelopeInfo`, `toDirectAddress` as an array.
    Envelope,
}

impl Shape {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "flat" => Some(Shape::Flat),
            "envelope" => Some(Shape::Envelope),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Flat => "flat",
            Shape::Envelope => "envelope",
        }
    }
}

/// How an endpoint wants XDM packages: the zip as one attachment, or its documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdmDelivery {
    Zip,
    Unpacked,
}

impl XdmDelivery {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "zip" => Some(XdmDelivery::Zip),
            "unpacked" => Some(XdmDelivery::Unpacked),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            XdmDelivery::Zip => "zip",
            XdmDelivery::Unpacked => "unpacked",
        }
    }
}

/// The JSON body pushed to `recipient`'s endpoint. An error means the stored message cannot
/// be read, which retrying will not fix.
pub fn payload(
    msg: &MessageRow,
    raw: &[u8],
    recipient: &str,
    shape: Shape,
    xdm_delivery: XdmDelivery,
) -> Result<Vec<u8>, String> {
    let parsed = mime::parse(raw).map_err(|e| format!("stored message unreadable: {e}"))?;
    let mut attachments = Vec::new();
    for a in parsed.attachments {
        let is_package = a.media_type == "application/zip"
            && a.file_name
                .as_deref()
                .is_some_and(|n| n.to_ascii_lowercase().ends_with("-xdm.zip"));
        if is_package && xdm_delivery == XdmDelivery::Unpacked {
            let docs = xdm::read_package(&a.content)
                .map_err(|e| format!("XDM package unreadable: {e}"))?;
            for d in docs {
                attachments.push(attachment(
                    &d.media_type,
                    d.title.as_deref(),
                    Some(&d.file_name),
                    &d.content,
                ));
            }
        } else {
            attachments.push(attachment(
                &a.media_type,
                a.title.as_deref(),
                a.file_name.as_deref(),
                &a.content,
            ));
        }
    }

    let mut body = Map::new();
    match shape {
        Shape::Flat => {
            body.insert("fromDirectAddress".into(), json!(msg.from_address));
            body.insert("toDirectAddress".into(), json!(recipient));
        }
        Shape::Envelope => {
            body.insert(
                "envelopeInfo".into(),
                json!({ "fromDirectAddress": msg.from_address, "toDirectAddress": [recipient] }),
            );
        }
    }
    body.insert("emailAttachmentList".into(), Value::Array(attachments));
    // The sender's own id, which its replies and read receipts name (`replyToMessageId`):
    // a vendor's messageId when the sender is ours, the Message-ID of mail from elsewhere.
    let message_id = msg
        .vendor_message_id
        .clone()
        .or(parsed.message_id)
        .unwrap_or_else(|| msg.smtp_message_id.clone());
    body.insert("messageId".into(), json!(message_id));
    // A sender of ours gave subject and body as JSON text, kept as given; MIME carries them
    // with CRLF line ends and encoded words, so they are read from there only for other mail.
    let given = |k: &str| {
        msg.metadata
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if let Some(s) = given("messageSubject").or(parsed.subject) {
        body.insert("messageSubject".into(), json!(s));
    }
    if let Some(b) = given("messageBody")
        .or(parsed.body)
        .filter(|b| !b.is_empty())
    {
        body.insert("messageBody".into(), json!(b));
    }
    // Patient, document and author fields travel beside the message when the sender is ours.
    for name in METADATA_FIELDS {
        if matches!(name, "messageSubject" | "messageBody") {
            continue;
        }
        if let Some(v) = msg.metadata.get(name) {
            body.insert(name.into(), v.clone());
        }
    }
    if let Some(r) = parsed.in_reply_to
        && !body.contains_key("replyToMessageId")
    {
        body.insert("replyToMessageId".into(), json!(r));
    }
    body.insert("xdm".into(), json!(msg.xdm));
    body.insert(
        "asmEnabled".into(),
        json!(msg.final_delivery || parsed.final_delivery_requested),
    );
    serde_json::to_vec(&Value::Object(body)).map_err(|e| e.to_string())
}

fn attachment(
    media_type: &str,
    title: Option<&str>,
    file_name: Option<&str>,
    content: &[u8],
) -> Value {
    let mut a = Map::new();
    a.insert("attachmentClass".into(), json!(media_type));
    a.insert("attachmentContent".into(), json!(STANDARD.encode(content)));
    if let Some(t) = title {
        a.insert("attachmentTitle".into(), json!(t));
    }
    if let Some(n) = file_name {
        a.insert("attachmentFileName".into(), json!(n));
    }
    Value::Object(a)
}
