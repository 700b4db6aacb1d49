//! HL7 v3 messages as a registry, a hospital system or a query placer would send them (every one
//! of them is checked against its official schema too, see `schema`).

pub const SENDER: &str = "2.16.840.1.113883.19.5.1";
pub const MSG_ROOT: &str = "2.16.840.1.113883.19.5.2";
/// The College of Pharmacists' licence numbers.
pub const LICENCE_ROOT: &str = "2.16.840.1.113883.19.5.99";
pub const NPI: &str = "2.16.840.1.113883.4.6";
pub const TAX_ID: &str = "2.16.840.1.113883.4.2";

pub fn header(interaction: &str, msg_id: &str) -> String {
    header_with(interaction, msg_id, "P")
}

pub fn header_with(interaction: &str, msg_id: &str, processing: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><{interaction} xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="{MSG_ROOT}" extension="{msg_id}"/><creationTime value="20261206120000"/><interactionId root="2.16.840.1.113883.1.6" extension="{interaction}"/><processingCode code="{processing}"/><processingModeCode code="T"/><acceptAckCode code="AL"/><receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE"><id root="2.16.840.1.113883.3.9999.1"/></device></receiver><sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE"><id root="{SENDER}"/></device></sender>"#
    )
}

/// An organization as the tests describe it.
#[derive(Clone, Default)]
pub struct Org {
    pub ids: Vec<(String, String)>,
    pub name: String,
    pub code: Option<(String, String)>,
    /// street, city, state, postal code
    pub addr: Option<(String, String, String, String)>,
    pub telecoms: Vec<String>,
    pub status: Option<String>,
    /// (root, extension, name) of people the organization groups.
    pub members: Vec<(String, String, String)>,
}

impl Org {
    pub fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
    pub fn id(mut self, root: &str, ext: &str) -> Self {
        self.ids.push((root.into(), ext.into()));
        self
    }
    pub fn code(mut self, code: &str) -> Self {
        self.code = Some((code.into(), "2.16.840.1.113883.5.111".into()));
        self
    }
    pub fn addr(mut self, street: &str, city: &str, state: &str, zip: &str) -> Self {
        self.addr = Some((street.into(), city.into(), state.into(), zip.into()));
        self
    }
    pub fn telecom(mut self, v: &str) -> Self {
        self.telecoms.push(v.into());
        self
    }
    pub fn status(mut self, s: &str) -> Self {
        self.status = Some(s.into());
        self
    }
    pub fn member(mut self, root: &str, ext: &str, name: &str) -> Self {
        self.members.push((root.into(), ext.into(), name.into()));
        self
    }
}

fn ids(o: &Org) -> String {
    o.ids
        .iter()
        .map(|(r, e)| format!(r#"<id root="{r}" extension="{e}"/>"#))
        .collect()
}

/// The PRPM_MT401010UV01 / PRPM_MT403010UV01 assignedEntity.
pub fn entity(o: &Org) -> String {
    let mut s = String::from(r#"<assignedEntity classCode="ASSIGNED">"#);
    s.push_str(&ids(o));
    if let Some((c, sys)) = &o.code {
        s.push_str(&format!(r#"<code code="{c}" codeSystem="{sys}"/>"#));
    }
    if !o.name.is_empty() {
        s.push_str(&format!("<name>{}</name>", o.name));
    }
    if let Some((street, city, state, zip)) = &o.addr {
        s.push_str(&format!("<addr><streetAddressLine>{street}</streetAddressLine><city>{city}</city><state>{state}</state><postalCode>{zip}</postalCode></addr>"));
    }
    for t in &o.telecoms {
        s.push_str(&format!(r#"<telecom value="{t}"/>"#));
    }
    if let Some(st) = &o.status {
        s.push_str(&format!(r#"<statusCode code="{st}"/>"#));
    }
    for (r, e, n) in &o.members {
        s.push_str(&format!(r#"<relatedTo typeCode="REL"><assignedEntity classCode="ASSIGNED"><id root="{r}" extension="{e}"/><name>{n}</name></assignedEntity></relatedTo>"#));
    }
    s.push_str("</assignedEntity>");
    s
}

fn trigger(code: &str) -> String {
    format!(r#"<code code="{code}" codeSystem="2.16.840.1.113883.1.18"/>"#)
}

/// Add (401030) or update (403010) request.
pub fn request(interaction: &str, msg_id: &str, o: &Org) -> String {
    request_with(interaction, msg_id, "P", &entity(o))
}

pub fn request_with(interaction: &str, msg_id: &str, processing: &str, subject: &str) -> String {
    let te = if interaction == "PRPM_IN401030UV01" {
        "PRPM_TE401010UV01"
    } else {
        "PRPM_TE403010UV01"
    };
    format!(
        r#"{}<controlActProcess classCode="CACT" moodCode="EVN">{}<subject typeCode="SUBJ"><registrationRequest classCode="REG" moodCode="RQO"><statusCode code="active"/><subject1 typeCode="SBJ">{subject}</subject1><author typeCode="AUT"><assignedEntity classCode="ASSIGNED"><id root="{LICENCE_ROOT}.1" extension="registrar-7"/></assignedEntity></author></registrationRequest></subject></controlActProcess></{interaction}>"#,
        header_with(interaction, msg_id, processing),
        trigger(te)
    )
}

fn event(interaction: &str, msg_id: &str, te: &str, subject: &str) -> String {
    format!(
        r#"{}<controlActProcess classCode="CACT" moodCode="EVN">{}<subject typeCode="SUBJ"><registrationEvent classCode="REG" moodCode="EVN"><statusCode code="active"/><subject1 typeCode="SBJ">{subject}</subject1><custodian typeCode="CST"><assignedEntity classCode="ASSIGNED"><id root="{SENDER}"/></assignedEntity></custodian></registrationEvent></subject></controlActProcess></{interaction}>"#,
        header(interaction, msg_id),
        trigger(te)
    )
}

/// Add (401010) or update (403030) notification.
pub fn notice(interaction: &str, msg_id: &str, o: &Org) -> String {
    let te = if interaction == "PRPM_IN401010UV01" {
        "PRPM_TE401010UV01"
    } else {
        "PRPM_TE403010UV01"
    };
    event(interaction, msg_id, te, &entity(o))
}

/// Nullify (402010 full / 402011 identified) or activate (404010 / 404011) notification of the
/// organization with id (root, ext).
pub fn status_notice(interaction: &str, msg_id: &str, root: &str, ext: &str, name: &str) -> String {
    let te = if interaction.starts_with("PRPM_IN402") {
        "PRPM_TE402010UV01"
    } else {
        "PRPM_TE404010UV01"
    };
    let full = interaction.ends_with("010UV01");
    let body = if full {
        format!(
            r#"<assignedPrincipalOrganization classCode="ORG" determinerCode="INSTANCE"><name>{name}</name></assignedPrincipalOrganization>"#
        )
    } else {
        String::new()
    };
    let subject = format!(
        r#"<assignedOrganization classCode="ASSIGNED"><id root="{root}" extension="{ext}"/>{body}</assignedOrganization>"#
    );
    event(interaction, msg_id, te, &subject)
}

fn query(interaction: &str, msg_id: &str, te: &str, params: &str) -> String {
    format!(
        r#"{}<controlActProcess classCode="CACT" moodCode="EVN">{}<queryByParameterPayload>{params}</queryByParameterPayload></controlActProcess></{interaction}>"#,
        header(interaction, msg_id),
        trigger(te)
    )
}

#[derive(Default)]
pub struct Candidates<'a> {
    pub query_id: &'a str,
    pub continued: bool,
    pub initial_quantity: Option<u32>,
    pub name: Option<&'a str>,
    pub contains: bool,
    pub city: Option<&'a str>,
    pub state: Option<&'a str>,
    pub sort: Option<(&'a str, &'a str)>,
    /// Filters the 405010 schema has no slot for, which the registry takes anyway (so these
    /// queries are not schema-valid): organization ids, the role type code, the status.
    pub ids: &'a [(&'a str, &'a str)],
    pub code: Option<&'a str>,
    pub status: Option<&'a str>,
}

pub fn candidates(msg_id: &str, c: &Candidates<'_>) -> String {
    let mut p = format!(
        r#"<queryId root="{MSG_ROOT}.9" extension="{}"/><statusCode code="{}"/>"#,
        c.query_id,
        if c.continued {
            "waitContinuedQueryResponse"
        } else {
            "new"
        }
    );
    if let Some(q) = c.initial_quantity {
        p.push_str(&format!(r#"<initialQuantity value="{q}"/>"#));
    }
    if let Some(n) = c.name {
        p.push_str(&format!("<organizationName><value>{n}</value>"));
        if c.contains {
            p.push_str("<semanticsText>contains</semanticsText>");
        }
        p.push_str("</organizationName>");
    }
    if c.city.is_some() || c.state.is_some() {
        p.push_str("<providerAddress><value>");
        if let Some(city) = c.city {
            p.push_str(&format!("<city>{city}</city>"));
        }
        if let Some(s) = c.state {
            p.push_str(&format!("<state>{s}</state>"));
        }
        p.push_str("</value></providerAddress>");
    }
    for (root, ext) in c.ids {
        p.push_str(&format!(
            r#"<organizationID><value root="{root}" extension="{ext}"/></organizationID>"#
        ));
    }
    if let Some(code) = c.code {
        p.push_str(&format!(r#"<roleType><value code="{code}"/></roleType>"#));
    }
    if let Some(st) = c.status {
        p.push_str(&format!(r#"<status><value code="{st}"/></status>"#));
    }
    if let Some((el, dir)) = c.sort {
        p.push_str(&format!(
            r#"<sortControl><elementName>{el}</elementName><directionCode code="{dir}"/></sortControl>"#
        ));
    }
    query("PRPM_IN405010UV01", msg_id, "PRPM_TE405010UV01", &p)
}

pub fn details(msg_id: &str, ids: &[(&str, &str)], history: bool) -> String {
    let mut p =
        format!(r#"<queryId root="{MSG_ROOT}.9" extension="d-{msg_id}"/><statusCode code="new"/>"#);
    if history {
        p.push_str(r#"<history><value value="true"/></history>"#);
    }
    for (r, e) in ids {
        p.push_str(&format!(
            r#"<organizationID><value root="{r}" extension="{e}"/></organizationID>"#
        ));
    }
    query("PRPM_IN406010UV01", msg_id, "PRPM_TE406010UV01", &p)
}

pub fn report(msg_id: &str, status: Option<&str>) -> String {
    let mut p = format!(
        r#"<queryId root="{MSG_ROOT}.9" extension="r-{msg_id}"/><statusCode code="new"/><reportId><value root="{MSG_ROOT}.7" extension="ORG-LIST"/></reportId>"#
    );
    if let Some(s) = status {
        p.push_str(&format!(r#"<status><value code="{s}"/></status>"#));
    }
    query("PRPM_IN406030UV01", msg_id, "PRPM_TE406015UV01", &p)
}

pub fn admin_report(msg_id: &str, low: &str, high: &str) -> String {
    let p = format!(
        r#"<queryId root="{MSG_ROOT}.9" extension="a-{msg_id}"/><statusCode code="new"/><reportId><value root="{MSG_ROOT}.7" extension="ORG-ADMIN"/></reportId><roleEffectiveDate><value><low value="{low}"/><high value="{high}"/></value></roleEffectiveDate>"#
    );
    query("PRPM_IN406040UV01", msg_id, "PRPM_TE406015UV01", &p)
}

/// The message inside a SOAP 1.2 envelope (HL7 Web Services profile).
pub fn soap12(message: &str) -> String {
    let inner = message
        .strip_prefix(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
        .unwrap_or(message);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>{inner}</soap:Body></soap:Envelope>"#
    )
}
