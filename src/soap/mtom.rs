//! MTOM/XOP: reading `multipart/related` requests and writing MTOM responses.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::xml::Element;

/// Most MIME parts an MTOM request may carry.
pub const MAX_PARTS: usize = 64;
pub const XOP_NS: &str = "http://www.w3.org/2004/08/xop/include";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MtomError {
    #[error("multipart/related without a boundary parameter")]
    NoBoundary,
    #[error("malformed MIME multipart body: {0}")]
    Malformed(&'static str),
    #[error("more than {MAX_PARTS} MIME parts")]
    TooManyParts,
    #[error("xop:Include refers to {0}, which is not a part of this message")]
    MissingPart(String),
    #[error("xop:Include refers to {0} a second time; each part may be included once")]
    PartReused(String),
    #[error("the multipart boundary must be 1 to 70 characters (RFC 2046)")]
    BadBoundary,
}

/// A `Content-Type` value split into its lower-cased media type and parameters.
#[derive(Debug, Clone)]
pub struct ContentType {
    pub media: String,
    pub params: HashMap<String, String>,
}

impl ContentType {
    pub fn parse(value: &str) -> Self {
        let mut fields = split_params(value).into_iter();
        let media = fields
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let params = fields
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                Some((k.trim().to_ascii_lowercase(), v.replace("\\\"", "\"")))
            })
            .collect();
        Self { media, params }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Splits on `;` outside quotes.
fn split_params(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut prev = '\0';
    for c in value.chars() {
        match c {
            '"' if prev != '\\' => {
                quoted = !quoted;
                out.last_mut().unwrap().push(c);
            }
            ';' if !quoted => out.push(String::new()),
            _ => out.last_mut().unwrap().push(c),
        }
        prev = c;
    }
    out
}

#[derive(Debug)]
pub struct Part {
    pub content_id: Option<String>,
    pub content_type: ContentType,
    pub body: Vec<u8>,
}

/// The parts of a `multipart/related` body, with the root (the `start` part, else the first).
pub struct Related {
    pub root: Part,
    pub attachments: HashMap<String, Vec<u8>>,
}

/// Linear whatever the needle: a naive search costs body × boundary length, which a long
/// boundary made minutes per request.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    memchr::memmem::find(hay.get(from..)?, needle).map(|i| i + from)
}

fn strip_angles(s: &str) -> String {
    let s = s.trim();
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s)
        .to_owned()
}

pub fn parse_related(ct: &ContentType, body: &[u8]) -> Result<Related, MtomError> {
    let boundary = ct.param("boundary").ok_or(MtomError::NoBoundary)?;
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(MtomError::BadBoundary);
    }
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut pos = find(body, delimiter, 0).ok_or(MtomError::Malformed("no boundary line"))?;
    let mut parts = Vec::new();
    loop {
        let after = pos + delimiter.len();
        if body.get(after..after + 2) == Some(b"--") {
            break;
        }
        let start = find(body, b"\n", after).ok_or(MtomError::Malformed("truncated part"))? + 1;
        let next =
            find(body, delimiter, start).ok_or(MtomError::Malformed("no closing boundary"))?;
        // The CRLF before a delimiter belongs to the delimiter.
        let mut end = next;
        if end > start && body[end - 1] == b'\n' {
            end -= 1;
            if end > start && body[end - 1] == b'\r' {
                end -= 1;
            }
        }
        parts.push(parse_part(&body[start..end])?);
        if parts.len() > MAX_PARTS {
            return Err(MtomError::TooManyParts);
        }
        pos = next;
    }
    if parts.is_empty() {
        return Err(MtomError::Malformed("no parts"));
    }
    let root_index = ct
        .param("start")
        .map(strip_angles)
        .and_then(|id| {
            parts
                .iter()
                .position(|p| p.content_id.as_deref() == Some(&id))
        })
        .unwrap_or(0);
    let root = parts.remove(root_index);
    let attachments = parts
        .into_iter()
        .filter_map(|p| Some((p.content_id?, p.body)))
        .collect();
    Ok(Related { root, attachments })
}

fn parse_part(raw: &[u8]) -> Result<Part, MtomError> {
    let (head, body) = match find(raw, b"\r\n\r\n", 0) {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => match find(raw, b"\n\n", 0) {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => return Err(MtomError::Malformed("part without a header/body separator")),
        },
    };
    let head = String::from_utf8_lossy(head);
    let mut content_id = None;
    let mut content_type = ContentType::parse("application/octet-stream");
    let mut transfer_encoding = String::new();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "content-id" => content_id = Some(strip_angles(value)),
            "content-type" => content_type = ContentType::parse(value),
            "content-transfer-encoding" => transfer_encoding = value.trim().to_ascii_lowercase(),
            _ => {}
        }
    }
    let body = if transfer_encoding == "base64" {
        let compact: Vec<u8> = body
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        STANDARD
            .decode(compact)
            .map_err(|_| MtomError::Malformed("a base64 part does not decode"))?
    } else {
        body.to_vec()
    };
    Ok(Part {
        content_id,
        content_type,
        body,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces every `xop:Include` by the base64 text of the part it names, as if the sender had
/// inlined it. Each part is taken once: were a part allowed to be named again and again, a few
/// bytes of references would expand one part into gigabytes of text.
pub fn resolve_includes(
    el: &mut Element,
    attachments: HashMap<String, Vec<u8>>,
) -> Result<(), MtomError> {
    let mut parts = attachments
        .into_iter()
        .map(|(id, data)| (id, Some(data)))
        .collect();
    resolve_in(el, &mut parts)
}

/// `parts`: each part's bytes until an Include takes them.
fn resolve_in(
    el: &mut Element,
    parts: &mut HashMap<String, Option<Vec<u8>>>,
) -> Result<(), MtomError> {
    let mut resolved = Vec::with_capacity(el.children.len());
    for mut child in std::mem::take(&mut el.children) {
        if child.ns == XOP_NS && child.name == "Include" {
            let href = child.attr("href").unwrap_or_default();
            let id = percent_decode(href.strip_prefix("cid:").unwrap_or(href));
            let data = match parts.get_mut(&id) {
                None => return Err(MtomError::MissingPart(href.to_owned())),
                Some(slot) => slot
                    .take()
                    .ok_or_else(|| MtomError::PartReused(href.to_owned()))?,
            };
            el.text.push_str(&STANDARD.encode(data));
        } else {
            resolve_in(&mut child, parts)?;
            resolved.push(child);
        }
    }
    el.children = resolved;
    Ok(())
}

/// Whether an `Accept` header names `multipart/related` (MTOM) among the answers the caller
/// reads. Only by name: `*/*` is what every plain client sends, so it does not ask for MTOM;
/// `q=0` means "not this one".
pub fn accepted(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let ct = ContentType::parse(range);
        let refused = ct
            .param("q")
            .and_then(|q| q.trim().parse::<f32>().ok())
            .is_some_and(|q| q <= 0.0);
        ct.media == "multipart/related" && !refused
    })
}

/// A binary attachment of an MTOM response.
pub struct Attachment {
    pub content_id: String,
    pub content_type: &'static str,
    pub data: Vec<u8>,
}

/// The XML that stands in for an attachment's bytes in the root part.
pub fn include(content_id: &str) -> String {
    format!(r#"<xop:Include xmlns:xop="{XOP_NS}" href="cid:{content_id}"/>"#)
}

/// Builds an MTOM message: the envelope as the `application/xop+xml` root, then attachments.
/// Returns the `Content-Type` header and the body.
pub fn build(envelope: &str, soap_media: &str, attachments: &[Attachment]) -> (String, Vec<u8>) {
    let boundary = format!("uuid:{}", uuid::Uuid::new_v4());
    let root_id = "root.message@hisp-gateway";
    let content_type = format!(
        r#"multipart/related; type="application/xop+xml"; boundary="{boundary}"; start="<{root_id}>"; start-info="{soap_media}""#
    );
    let mut body = Vec::with_capacity(envelope.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"{soap_media}\"\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{root_id}>\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(envelope.as_bytes());
    for a in attachments {
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{}>\r\n\r\n",
                a.content_type, a.content_id
            )
            .as_bytes(),
        );
        body.extend_from_slice(&a.data);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (content_type, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml;

    #[test]
    fn a_built_message_parses_back_with_its_include_resolved() {
        let envelope = format!("<r><csv>{}</csv></r>", include("data%40x"));
        let (ct, body) = build(
            &envelope,
            "application/soap+xml",
            &[Attachment {
                content_id: "data@x".into(),
                content_type: "text/csv",
                data: b"a,b\r\n--not-a-boundary\r\n".to_vec(),
            }],
        );
        let ct = ContentType::parse(&ct);
        assert_eq!(ct.media, "multipart/related");
        assert_eq!(ct.param("start-info"), Some("application/soap+xml"));
        let related = parse_related(&ct, &body).unwrap();
        assert_eq!(related.root.content_type.media, "application/xop+xml");
        let mut root = xml::parse(&related.root.body).unwrap();
        resolve_includes(&mut root, related.attachments).unwrap();
        let csv = STANDARD.decode(&root.child("csv").unwrap().text).unwrap();
        assert_eq!(csv, b"a,b\r\n--not-a-boundary\r\n");
    }

    #[test]
    fn unknown_include_and_missing_boundary_are_errors() {
        let mut root = xml::parse(include("nope").as_bytes()).unwrap();
        let mut wrapper = Element {
            children: vec![root.clone()],
            ..root.clone()
        };
        root.children.clear();
        assert!(matches!(
            resolve_includes(&mut wrapper, HashMap::new()),
            Err(MtomError::MissingPart(_))
        ));
        let ct = ContentType::parse("multipart/related; type=\"application/xop+xml\"");
        assert_eq!(parse_related(&ct, b"").err(), Some(MtomError::NoBoundary));
        let long = format!("multipart/related; boundary=\"{}B\"", "-".repeat(4000));
        let body = vec![b'-'; 100_000];
        assert_eq!(
            parse_related(&ContentType::parse(&long), &body).err(),
            Some(MtomError::BadBoundary)
        );
    }

    #[test]
    fn accept_asks_for_mtom_only_by_name() {
        assert!(accepted("multipart/related"));
        assert!(accepted(
            "application/soap+xml, Multipart/Related; type=\"application/xop+xml\""
        ));
        assert!(accepted("text/xml;q=0.5, multipart/related;q=0.1"));
        assert!(!accepted("*/*"));
        assert!(!accepted("text/xml, multipart/*"));
        assert!(!accepted("multipart/related;q=0"));
        assert!(!accepted(""));
    }

    #[test]
    fn a_part_is_included_once() {
        // Two references to one part would double it; ten thousand would make gigabytes.
        let doc = format!("<r><a>{}</a><b>{}</b></r>", include("p"), include("p"));
        let mut root = xml::parse(doc.as_bytes()).unwrap();
        let parts = HashMap::from([("p".to_owned(), vec![0u8; 1024])]);
        assert!(matches!(
            resolve_includes(&mut root, parts),
            Err(MtomError::PartReused(_))
        ));
    }
}
