//! The HL7 v3 transmission wrapper (MCCI): reading a request's header, writing ours, and the
//! acknowledgement with its details.

use chrono::{DateTime, Utc};

use crate::domain::registry::Ii;
use crate::xml::{self, Element};

pub const NS: &str = "urn:hl7-org:v3";
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// Root of interaction ids.
pub const INTERACTION_ROOT: &str = "2.16.840.1.113883.1.6";
/// Root of trigger event codes.
pub const TRIGGER_ROOT: &str = "2.16.840.1.113883.1.18";
/// HL7 AcknowledgementDetailCode.
pub const DETAIL_CODES: &str = "2.16.840.1.113883.5.1100";

/// How a message was received: AA accepted, AE refused for a business reason, AR rejected
/// (unreadable, or not the structure its schema requires).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Aa,
    Ae,
    Ar,
}

impl Ack {
    pub fn as_str(self) -> &'static str {
        match self {
            Ack::Aa => "AA",
            Ack::Ae => "AE",
            Ack::Ar => "AR",
        }
    }
}

/// Why a message was not accepted: an acknowledgement detail naming the element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub ack: Ack,
    /// An AcknowledgementDetailCode: SYN (unreadable), SYN105 (required element missing),
    /// SYN102 (bad value), NS200 (interaction not supported), NS260 (processing id),
    /// NS250 (processing mode), KEY204 (unknown key), KEY205 (duplicate key), INTERR.
    pub code: &'static str,
    pub text: String,
    /// The element's path from the root, e.g. `/PRPM_IN401030UV01/processingCode`.
    pub location: String,
}

impl Problem {
    pub fn rejected(
        code: &'static str,
        location: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self {
            ack: Ack::Ar,
            code,
            text: text.into(),
            location: location.into(),
        }
    }
    pub fn error(code: &'static str, location: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            ack: Ack::Ae,
            code,
            text: text.into(),
            location: location.into(),
        }
    }
    pub fn missing(location: impl Into<String>) -> Self {
        let location = location.into();
        let text = format!("required element {location} is missing");
        Self::rejected("SYN105", location, text)
    }
}

/// A child and its path, or the rejection naming the missing element.
pub fn need<'a>(el: &'a Element, path: &str, name: &str) -> Result<(&'a Element, String), Problem> {
    let p = format!("{path}/{name}");
    match el.child(name) {
        Some(c) => Ok((c, p)),
        None => Err(Problem::missing(p)),
    }
}

pub fn read_ii(el: &Element, path: &str) -> Result<Ii, Problem> {
    let root = el.attr("root").unwrap_or_default();
    Ii::parse(root, el.attr("extension").unwrap_or_default())
        .map_err(|e| Problem::rejected("SYN102", path, e.message))
}

/// The header of a request, read and checked.
#[derive(Debug, Clone)]
pub struct Header {
    pub interaction: String,
    pub id: Ii,
    pub sender: Option<Ii>,
}

/// Reads the transmission wrapper. The caller knows the root element is in the HL7 namespace.
pub fn read_header(root: &Element) -> Result<Header, Problem> {
    let path = format!("/{}", root.name);
    if root.attr("ITSVersion") != Some("XML_1.0") {
        return Err(Problem::rejected(
            "NS261",
            format!("{path}/@ITSVersion"),
            "ITSVersion must be XML_1.0",
        ));
    }
    let (id, id_path) = need(root, &path, "id")?;
    let id = read_ii(id, &id_path)?;
    need(root, &path, "creationTime")?;
    let (iid, iid_path) = need(root, &path, "interactionId")?;
    if iid.attr("root") != Some(INTERACTION_ROOT) || iid.attr("extension") != Some(&root.name) {
        return Err(Problem::rejected(
            "SYN102",
            iid_path,
            format!(
                "interactionId must be root {INTERACTION_ROOT} with extension {}",
                root.name
            ),
        ));
    }
    let (pc, pc_path) = need(root, &path, "processingCode")?;
    // Only production messages change the registry: a debugging or training message is
    // refused rather than written into real records.
    if pc.attr("code") != Some("P") {
        return Err(Problem::rejected(
            "NS260",
            pc_path,
            format!(
                "processingCode {:?} is not supported; this registry takes production (P) messages only",
                pc.attr("code").unwrap_or_default()
            ),
        ));
    }
    let (pm, pm_path) = need(root, &path, "processingModeCode")?;
    if !matches!(pm.attr("code"), Some("T" | "I" | "R" | "A")) {
        return Err(Problem::rejected(
            "NS250",
            pm_path,
            "processingModeCode must be T (current), I (initial load), R (restore) or A (archive)",
        ));
    }
    need(root, &path, "acceptAckCode")?;
    let (rcv, rcv_path) = need(root, &path, "receiver")?;
    need(rcv, &rcv_path, "device")?;
    let (snd, snd_path) = need(root, &path, "sender")?;
    let (dev, dev_path) = need(snd, &snd_path, "device")?;
    let sender = match dev.child("id") {
        Some(i) => Some(read_ii(i, &format!("{dev_path}/id"))?),
        None => None,
    };
    Ok(Header {
        interaction: root.name.clone(),
        id,
        sender,
    })
}

/// HL7 TS of a time.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}

/// Whether a TS value has the form the datatype allows (digits, fraction, zone).
pub fn valid_ts(s: &str) -> bool {
    let (main, zone) = match s.find(['+', '-']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (digits, frac) = match main.split_once('.') {
        Some((d, f)) => (d, Some(f)),
        None => (main, None),
    };
    (4..=14).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && frac
            .is_none_or(|f| !f.is_empty() && f.len() <= 4 && f.bytes().all(|b| b.is_ascii_digit()))
        && zone.is_none_or(|z| z.len() == 4 && z.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses the leading `yyyyMMdd[HHmmss]` of a TS as UTC.
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    if !valid_ts(s) {
        return None;
    }
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    let padded = format!("{digits:0<14}");
    let padded = if digits.len() < 8 {
        format!("{}0101000000", &digits[..4])
    } else {
        padded
    };
    chrono::NaiveDateTime::parse_from_str(&padded[..14], "%Y%m%d%H%M%S")
        .ok()
        .map(|n| n.and_utc())
}

/// A small writer of HL7 XML.
#[derive(Default)]
pub struct W(pub String);

impl W {
    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.0.push_str(s);
        self
    }
    pub fn ii(&mut self, name: &str, ii: Option<&Ii>) -> &mut Self {
        match ii {
            Some(i) if i.extension.is_empty() => {
                self.0
                    .push_str(&format!("<{name} root=\"{}\"/>", xml::escape(&i.root)));
            }
            Some(i) => {
                self.0.push_str(&format!(
                    "<{name} root=\"{}\" extension=\"{}\"/>",
                    xml::escape(&i.root),
                    xml::escape(&i.extension)
                ));
            }
            None => self.0.push_str(&format!("<{name} nullFlavor=\"UNK\"/>")),
        }
        self
    }
    pub fn code(&mut self, name: &str, code: &str) -> &mut Self {
        self.0
            .push_str(&format!("<{name} code=\"{}\"/>", xml::escape(code)));
        self
    }
    pub fn text(&mut self, name: &str, text: &str) -> &mut Self {
        xml::leaf(&mut self.0, name, text);
        self
    }
    pub fn value(&mut self, name: &str, value: &str) -> &mut Self {
        self.0
            .push_str(&format!("<{name} value=\"{}\"/>", xml::escape(value)));
        self
    }
}

/// Who is on either side of a message we write.
pub struct Parties<'a> {
    /// Our device id.
    pub us: &'a str,
    /// The other side's device; unknown when it gave none.
    pub peer: Option<&'a Ii>,
}

/// Opens a message: root element and transmission wrapper up to (not including) the
/// acknowledgement.
pub fn open(
    w: &mut W,
    interaction: &str,
    message_id: &Ii,
    now: DateTime<Utc>,
    accept_ack: &str,
    parties: &Parties<'_>,
) {
    w.raw(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><{interaction} xmlns=\"{NS}\" xmlns:xsi=\"{XSI}\" ITSVersion=\"XML_1.0\">"
    ));
    w.ii("id", Some(message_id));
    w.value("creationTime", &ts(now));
    w.ii(
        "interactionId",
        Some(&Ii::new(INTERACTION_ROOT, interaction)),
    );
    w.code("processingCode", "P");
    w.code("processingModeCode", "T");
    w.code("acceptAckCode", accept_ack);
    w.raw("<receiver typeCode=\"RCV\"><device classCode=\"DEV\" determinerCode=\"INSTANCE\">");
    w.ii("id", parties.peer);
    w.raw("</device></receiver><sender typeCode=\"SND\"><device classCode=\"DEV\" determinerCode=\"INSTANCE\">");
    w.ii("id", Some(&Ii::new(parties.us, "")));
    w.raw("</device></sender>");
}

/// The acknowledgement of `target`, with the problem's detail when there is one.
pub fn acknowledgement(w: &mut W, ack: Ack, target: Option<&Ii>, problem: Option<&Problem>) {
    w.raw(&format!("<acknowledgement typeCode=\"{}\">", ack.as_str()));
    w.raw("<targetMessage>");
    w.ii("id", target);
    w.raw("</targetMessage>");
    if let Some(p) = problem {
        w.raw("<acknowledgementDetail typeCode=\"E\">");
        w.raw(&format!(
            "<code code=\"{}\" codeSystem=\"{DETAIL_CODES}\"/>",
            p.code
        ));
        w.text("text", &p.text);
        w.text("location", &p.location);
        w.raw("</acknowledgementDetail>");
    }
    w.raw("</acknowledgement>");
}

/// An accept acknowledgement (`MCCI_IN000002UV01`): the answer to a notification, and to any
/// message we could not accept.
pub fn accept_ack(
    message_id: &Ii,
    now: DateTime<Utc>,
    parties: &Parties<'_>,
    target: Option<&Ii>,
    problem: Option<&Problem>,
) -> String {
    let mut w = W::default();
    open(&mut w, "MCCI_IN000002UV01", message_id, now, "NE", parties);
    let ack = problem.map_or(Ack::Aa, |p| p.ack);
    acknowledgement(&mut w, ack, target, problem);
    w.raw("</MCCI_IN000002UV01>");
    w.0
}

/// Writes an element read from a request back out in the HL7 namespace (the query echoed in
/// a response). Namespace declarations are dropped (the root declares ours and xsi), as are
/// attributes of other prefixes than `xsi`.
pub fn echo(w: &mut W, el: &Element) {
    w.0.push('<');
    w.0.push_str(&el.name);
    for (k, v) in &el.attrs {
        if k == "xmlns" || k.starts_with("xmlns:") {
            continue;
        }
        let key = match k.split_once(':') {
            Some(("xsi", local)) => format!("xsi:{local}"),
            Some(_) => continue,
            None => k.clone(),
        };
        w.0.push_str(&format!(" {key}=\"{}\"", xml::escape(v)));
    }
    if el.children.is_empty() && el.text.trim().is_empty() {
        w.0.push_str("/>");
        return;
    }
    w.0.push('>');
    if el.children.is_empty() {
        w.0.push_str(&xml::escape(&el.text));
    } else {
        for c in &el.children {
            echo(w, c);
        }
    }
    w.0.push_str("</");
    w.0.push_str(&el.name);
    w.0.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_checked_and_read() {
        assert!(valid_ts("20240101"));
        assert!(valid_ts("20240101120000.123-0500"));
        assert!(!valid_ts("2024-01-01"));
        assert!(!valid_ts("20240101x"));
        assert_eq!(
            parse_ts("20240102").unwrap().to_rfc3339(),
            "2024-01-02T00:00:00+00:00"
        );
    }

    #[test]
    fn the_header_names_what_is_wrong() {
        let doc = br#"<PRPM_IN401030UV01 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="1.2" extension="m1"/><creationTime value="20240101"/><interactionId root="2.16.840.1.113883.1.6" extension="PRPM_IN401030UV01"/><processingCode code="D"/></PRPM_IN401030UV01>"#;
        let root = crate::xml::parse(doc).unwrap();
        let p = read_header(&root).unwrap_err();
        assert_eq!(p.ack, Ack::Ar);
        assert_eq!(p.code, "NS260");
        assert_eq!(p.location, "/PRPM_IN401030UV01/processingCode");
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzzing::config())]

        /// Damaged messages: the header and organization readers answer or refuse, never panic.
        #[test]
        fn fuzz_hl7_readers_never_panic(doc in crate::fuzzing::mutated(vec![
            br#"<PRPM_IN401030UV01 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="1.2" extension="m1"/><creationTime value="20240101"/><interactionId root="2.16.840.1.113883.1.6" extension="PRPM_IN401030UV01"/><processingCode code="P"/><processingModeCode code="T"/><acceptAckCode code="AL"/><receiver typeCode="RCV"><device><id root="1.3"/></device></receiver><sender typeCode="SND"><device><id root="1.4"/></device></sender><controlActProcess><subject><registrationRequest><subject1><assignedEntity><id root="2.16.840.1.113883.4.6" extension="1234567893"/><code code="X" codeSystem="1.2"/><name>A <given>B</given></name><addr><streetAddressLine>1 Main</streetAddressLine><city>C</city></addr><telecom value="tel:1" use="WP"/><statusCode code="active"/><effectiveTime><low value="20240101"/></effectiveTime><relatedTo><assignedEntity><id root="1.5" extension="p"/><name>P</name></assignedEntity></relatedTo></assignedEntity></subject1></registrationRequest></subject></controlActProcess></PRPM_IN401030UV01>"#.to_vec(),
        ])) {
            if let Ok(root) = crate::xml::parse(&doc) {
                let _ = read_header(&root);
                let entity = root
                    .child("controlActProcess")
                    .and_then(|c| c.child("subject"))
                    .and_then(|s| s.child("registrationRequest"))
                    .and_then(|r| r.child("subject1"))
                    .and_then(|s| s.child("assignedEntity"));
                if let Some(e) = entity {
                    let _ = super::super::organization::read(e, "/x");
                }
                for v in ["", "2024", "20240101120000.1234+0100", "9999999999999999"] {
                    let _ = parse_ts(v);
                }
            }
        }
    }
}
