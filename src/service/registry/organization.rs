//! An organization in HL7 v3 messages: read from the subject of a request or notification,
//! written in the shape each message type allows.

use crate::domain::registry::{
    Address, Code, Ii, MAX_ITEMS, Member, OrgRecord, RegistryStatus, Telecom, field,
};
use crate::xml::{self, Element};

use super::message::{Problem, W, read_ii, valid_ts};

/// Telecom `use` codes we keep (others are dropped: they would not be valid on output).
const TEL_USES: [&str; 12] = [
    "H", "HP", "HV", "WP", "DIR", "PUB", "BAD", "TMP", "AS", "EC", "MC", "PG",
];

fn bounded<'a>(
    el: &'a Element,
    name: &'a str,
    path: &str,
) -> Result<impl Iterator<Item = &'a Element> + 'a, Problem> {
    if el.children_named(name).count() > MAX_ITEMS {
        return Err(Problem::error(
            "SYN114",
            format!("{path}/{name}"),
            format!("more than {MAX_ITEMS} {name} elements"),
        ));
    }
    Ok(el.children_named(name))
}

fn text_of(el: &Element, path: &str) -> Result<String, Problem> {
    // EN/ON may be plain text or parts (prefix, given, family...): their texts, spaced.
    let mut s = el.text.trim().to_owned();
    for part in el.children.iter().take(MAX_ITEMS) {
        let t = part.text.trim();
        if !t.is_empty() {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(t);
        }
    }
    field("name", &s).map_err(|e| Problem::error("SYN102", path, e.message))
}

fn oid_like(s: &str) -> bool {
    Ii::parse(s, "").is_ok()
}

/// Reads the organization of a subject element (`assignedEntity`, `qualifiedEntity` or
/// `assignedOrganization`) at `path`.
pub fn read(el: &Element, path: &str) -> Result<OrgRecord, Problem> {
    let mut ids = Vec::new();
    for (i, id) in bounded(el, "id", path)?.enumerate() {
        let p = format!("{path}/id[{}]", i + 1);
        let ii = read_ii(id, &p)?;
        if ii.extension.is_empty() {
            return Err(Problem::error(
                "SYN102",
                p,
                "an organization id needs an extension",
            ));
        }
        ids.push(ii);
    }
    let code = el.child("code").and_then(|c| {
        let code = c.attr("code")?.trim();
        (!code.is_empty() && code.len() <= 64).then(|| Code {
            code: code.to_owned(),
            code_system: c
                .attr("codeSystem")
                .filter(|s| oid_like(s))
                .unwrap_or_default()
                .to_owned(),
            display_name: c
                .attr("displayName")
                .and_then(|d| field("code", d).ok())
                .unwrap_or_default(),
        })
    });
    let principal = el
        .children
        .iter()
        .find(|c| c.name.ends_with("PrincipalOrganization"));
    let name_el = el
        .child("name")
        .map(|n| (n, format!("{path}/name")))
        .or_else(|| {
            principal.and_then(|p| {
                p.child("name")
                    .map(|n| (n, format!("{path}/{}/name", p.name)))
            })
        });
    let name = match name_el {
        Some((n, p)) => text_of(n, &p)?,
        None => String::new(),
    };
    let mut addrs = Vec::new();
    for (i, a) in bounded(el, "addr", path)?.enumerate() {
        let p = format!("{path}/addr[{}]", i + 1);
        let get = |n: &str| -> Result<String, Problem> {
            field("addr", a.child_text(n).unwrap_or_default())
                .map_err(|e| Problem::error("SYN102", format!("{p}/{n}"), e.message))
        };
        let mut lines = Vec::new();
        for l in a.children_named("streetAddressLine").take(MAX_ITEMS) {
            lines.push(field("addr", &l.text).map_err(|e| {
                Problem::error("SYN102", format!("{p}/streetAddressLine"), e.message)
            })?);
        }
        addrs.push(Address {
            lines,
            city: get("city")?,
            state: get("state")?,
            postal_code: get("postalCode")?,
            country: get("country")?,
        });
    }
    let mut telecoms = Vec::new();
    for (i, t) in bounded(el, "telecom", path)?.enumerate() {
        let p = format!("{path}/telecom[{}]", i + 1);
        let Some(v) = t.attr("value").map(str::trim).filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = field("telecom", v).map_err(|e| Problem::error("SYN102", &p, e.message))?;
        let use_code = t
            .attr("use")
            .filter(|u| TEL_USES.contains(u))
            .unwrap_or_default()
            .to_owned();
        telecoms.push(Telecom { value, use_code });
    }
    let status_code = match el.child("statusCode").and_then(|s| s.attr("code")) {
        Some(c) => {
            RegistryStatus::from_hl7(c)
                .map_err(|e| Problem::error("SYN102", format!("{path}/statusCode"), e.message))?;
            c.trim().to_ascii_lowercase()
        }
        None => String::new(),
    };
    let (mut from, mut to) = (String::new(), String::new());
    if let Some(e) = el.child("effectiveTime") {
        for (slot, n) in [(&mut from, "low"), (&mut to, "high")] {
            if let Some(v) = e.child(n).and_then(|x| x.attr("value")) {
                if !valid_ts(v) {
                    return Err(Problem::error(
                        "SYN102",
                        format!("{path}/effectiveTime/{n}"),
                        format!("{v:?} is not an HL7 timestamp"),
                    ));
                }
                *slot = v.to_owned();
            }
        }
    }
    let mut members = Vec::new();
    for (i, r) in bounded(el, "relatedTo", path)?.enumerate() {
        let p = format!("{path}/relatedTo[{}]", i + 1);
        let Some(m) = r.children.first() else {
            continue;
        };
        let mut mids = Vec::new();
        for id in m.children_named("id").take(MAX_ITEMS) {
            mids.push(read_ii(id, &format!("{p}/{}/id", m.name))?);
        }
        let mname = match m.child("name") {
            Some(n) => text_of(n, &format!("{p}/{}/name", m.name))?,
            None => String::new(),
        };
        members.push(Member {
            ids: mids,
            name: mname,
        });
    }
    Ok(OrgRecord {
        ids,
        name,
        code,
        addrs,
        telecoms,
        status_code,
        effective_from: from,
        effective_to: to,
        members,
    })
}

/// Which parts a message type's organization element may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// PRPM_MT401010UV01 / PRPM_MT403010UV01 `assignedEntity`: everything.
    Full,
    /// PRPM_MT406110UV01 `assignedEntity`: everything but effectiveTime.
    Details,
    /// PRPM_MT405110UV01 `assignedEntity`: ids, type, name, addresses, telecoms.
    Candidate,
    /// PRPM_MT409000UV01 `assignedEntity`: ids, type and name.
    Confirmation,
    /// PRPM_MT402010UV01 `assignedOrganization`: ids, type, addresses, telecoms, dates, name.
    Nullified,
    /// PRPM_MT404010UV01 `assignedOrganization`: ids, type, dates, name.
    Activated,
    /// PRPM_MT402011UV01 / PRPM_MT404011UV01 `assignedOrganization`: ids and type only.
    Identified,
}

/// What is written: the record, its status, and extra telecoms (provisioned Direct domain
/// and addresses).
pub struct View<'a> {
    pub record: &'a OrgRecord,
    pub status: RegistryStatus,
    /// Our registry id, written first.
    pub registry_id: Ii,
    pub direct: &'a [String],
}

fn ids(w: &mut W, v: &View<'_>) {
    w.ii("id", Some(&v.registry_id));
    for i in &v.record.ids {
        w.ii("id", Some(i));
    }
}

fn code(w: &mut W, v: &View<'_>) {
    if let Some(c) = &v.record.code {
        w.raw(&format!("<code code=\"{}\"", xml::escape(&c.code)));
        if !c.code_system.is_empty() {
            w.raw(&format!(" codeSystem=\"{}\"", xml::escape(&c.code_system)));
        }
        if !c.display_name.is_empty() {
            w.raw(&format!(
                " displayName=\"{}\"",
                xml::escape(&c.display_name)
            ));
        }
        w.raw("/>");
    }
}

fn addrs(w: &mut W, v: &View<'_>) {
    for a in &v.record.addrs {
        w.raw("<addr>");
        for l in &a.lines {
            w.text("streetAddressLine", l);
        }
        for (n, t) in [
            ("city", &a.city),
            ("state", &a.state),
            ("postalCode", &a.postal_code),
            ("country", &a.country),
        ] {
            if !t.is_empty() {
                w.text(n, t);
            }
        }
        w.raw("</addr>");
    }
}

fn telecoms(w: &mut W, v: &View<'_>) {
    for t in &v.record.telecoms {
        w.raw(&format!("<telecom value=\"{}\"", xml::escape(&t.value)));
        if !t.use_code.is_empty() {
            w.raw(&format!(" use=\"{}\"", t.use_code));
        }
        w.raw("/>");
    }
    for d in v.direct {
        w.raw(&format!("<telecom value=\"mailto:{}\"/>", xml::escape(d)));
    }
}

fn effective(w: &mut W, v: &View<'_>) {
    let r = v.record;
    if r.effective_from.is_empty() && r.effective_to.is_empty() {
        return;
    }
    w.raw("<effectiveTime>");
    if !r.effective_from.is_empty() {
        w.value("low", &r.effective_from);
    }
    if !r.effective_to.is_empty() {
        w.value("high", &r.effective_to);
    }
    w.raw("</effectiveTime>");
}

fn principal(w: &mut W, v: &View<'_>) {
    if !v.record.name.is_empty() {
        w.raw("<assignedPrincipalOrganization classCode=\"ORG\" determinerCode=\"INSTANCE\">");
        w.text("name", &v.record.name);
        w.raw("</assignedPrincipalOrganization>");
    }
}

fn members(w: &mut W, v: &View<'_>) {
    for m in &v.record.members {
        w.raw("<relatedTo typeCode=\"REL\"><assignedEntity classCode=\"ASSIGNED\">");
        for i in &m.ids {
            w.ii("id", Some(i));
        }
        if !m.name.is_empty() {
            w.text("name", &m.name);
        }
        w.raw("</assignedEntity></relatedTo>");
    }
}

/// Writes the organization element of `shape`.
pub fn write(w: &mut W, shape: Shape, v: &View<'_>) {
    let entity = matches!(
        shape,
        Shape::Full | Shape::Details | Shape::Candidate | Shape::Confirmation
    );
    if entity {
        w.raw("<assignedEntity classCode=\"ASSIGNED\">");
    } else {
        w.raw("<assignedOrganization classCode=\"ASSIGNED\">");
    }
    ids(w, v);
    code(w, v);
    match shape {
        Shape::Full | Shape::Details => {
            if !v.record.name.is_empty() {
                w.text("name", &v.record.name);
            }
            addrs(w, v);
            telecoms(w, v);
            w.code("statusCode", v.status.hl7_code());
            if shape == Shape::Full {
                effective(w, v);
            }
            members(w, v);
        }
        Shape::Candidate => {
            if !v.record.name.is_empty() {
                w.text("name", &v.record.name);
            }
            addrs(w, v);
            telecoms(w, v);
            principal(w, v);
        }
        Shape::Confirmation => {
            if !v.record.name.is_empty() {
                w.text("name", &v.record.name);
            }
        }
        Shape::Nullified => {
            addrs(w, v);
            telecoms(w, v);
            effective(w, v);
            principal(w, v);
        }
        Shape::Activated => {
            effective(w, v);
            principal(w, v);
        }
        Shape::Identified => {}
    }
    if entity {
        w.raw("</assignedEntity>");
    } else {
        w.raw("</assignedOrganization>");
    }
}

/// A `registrationEvent` (MFMI_MT700701 / MFMI_MT700711) around the organization: the version
/// as its id, when it was written, and our registry as custodian.
pub fn event(
    w: &mut W,
    registry_root: &str,
    shape: Shape,
    v: &View<'_>,
    version: i32,
    at: chrono::DateTime<chrono::Utc>,
) {
    w.raw("<subject typeCode=\"SUBJ\"><registrationEvent classCode=\"REG\" moodCode=\"EVN\">");
    w.ii(
        "id",
        Some(&Ii::new(
            &format!("{registry_root}.1"),
            &format!("{}.{version}", v.registry_id.extension),
        )),
    );
    w.code("statusCode", "active");
    w.raw("<effectiveTime>");
    w.value("low", &super::message::ts(at));
    w.raw("</effectiveTime><subject1 typeCode=\"SBJ\">");
    write(w, shape, v);
    w.raw("</subject1><custodian typeCode=\"CST\"><assignedEntity classCode=\"ASSIGNED\">");
    w.ii("id", Some(&Ii::new(registry_root, "")));
    w.raw("</assignedEntity></custodian></registrationEvent></subject>");
}
