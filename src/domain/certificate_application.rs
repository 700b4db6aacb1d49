//! Trusted-Agent certificate applications (DataMotion style): the form a Trusted Agent fills
//! in for a patient, a provider's address or an organization, read field by field so that the
//! first bad field is named, and the statuses an application goes through.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use super::Invalid;
use super::pki::{CertificateCategory, DirectAddress, ValidityYears};

/// What is applied for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplicationKind {
    /// An address-bound certificate for a patient (HIPAA type 4) and the patient's address.
    Patient,
    /// An address-bound certificate for a provider (HIPAA types 1–3) and the address.
    Address,
    /// A domain-bound certificate for the organization (HIPAA types 1–3).
    Organization,
}

impl ApplicationKind {
    pub const ALL: [ApplicationKind; 3] = [Self::Patient, Self::Address, Self::Organization];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::Address => "address",
            Self::Organization => "organization",
        }
    }
}

impl FromStr for ApplicationKind {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Invalid::new(
                    "kind",
                    format!("unknown kind {s:?}; expected patient, address or organization"),
                )
            })
    }
}

/// The HIPAA-compliance type of the spec: 1 Other, 2 Covered Entity, 3 Business Associate,
/// 4 Patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HipaaType {
    Other = 1,
    CoveredEntity = 2,
    BusinessAssociate = 3,
    Patient = 4,
}

impl HipaaType {
    pub fn from_number(n: i64) -> Option<Self> {
        match n {
            1 => Some(Self::Other),
            2 => Some(Self::CoveredEntity),
            3 => Some(Self::BusinessAssociate),
            4 => Some(Self::Patient),
            _ => None,
        }
    }

    pub fn number(self) -> i16 {
        self as i16
    }

    /// The DirectTrust category of the certificate: 4 → Patient (.2.4), 2 → Covered Entity
    /// (.2.1), 3 → Business Associate (.2.2), 1 → Healthcare Entity (.2.3).
    pub fn category(self) -> CertificateCategory {
        match self {
            Self::Patient => CertificateCategory::Patient,
            Self::CoveredEntity => CertificateCategory::CoveredEntity,
            Self::BusinessAssociate => CertificateCategory::BusinessAssociate,
            Self::Other => CertificateCategory::HealthEntity,
        }
    }
}

/// Where an application stands. The first three are what officers decide; the rest are read
/// from the certificate and the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ApplicationStatus {
    Submitted,
    Approved,
    Rejected,
    CertificateIssued,
    Provisioned,
    Revoked,
    Expired,
}

impl ApplicationStatus {
    pub const ALL: [ApplicationStatus; 7] = [
        Self::Submitted,
        Self::Approved,
        Self::Rejected,
        Self::CertificateIssued,
        Self::Provisioned,
        Self::Revoked,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "Submitted",
            Self::Approved => "Approved",
            Self::Rejected => "Rejected",
            Self::CertificateIssued => "CertificateIssued",
            Self::Provisioned => "Provisioned",
            Self::Revoked => "Revoked",
            Self::Expired => "Expired",
        }
    }

    /// The status of an approved application from its current certificate's status (`None`:
    /// not yet requested) and whether its address is live.
    pub fn of_approved(certificate: Option<&str>, provisioned: bool) -> Self {
        match certificate {
            Some("issued" | "renewed") if provisioned => Self::Provisioned,
            Some("issued" | "renewed") => Self::CertificateIssued,
            Some("revoked") => Self::Revoked,
            Some("expired") => Self::Expired,
            _ => Self::Approved,
        }
    }
}

impl fmt::Display for ApplicationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApplicationStatus {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Invalid::new(
                    "status",
                    format!("unknown status {s:?}; expected one of Submitted, Approved, Rejected, CertificateIssued, Provisioned, Revoked, Expired"),
                )
            })
    }
}

/// A validated application form. The organization checks (legal name, domain, address taken)
/// need the database and are the service's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationForm {
    pub kind: ApplicationKind,
    pub trusted_agent_name: String,
    pub organization_name: String,
    pub hipaa_type: HipaaType,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub city: String,
    pub state: String,
    pub country: String,
    pub years: ValidityYears,
    pub certificate_name: String,
    pub address: Option<DirectAddress>,
    /// Address applications only; hashed before it is stored.
    pub address_password: Option<String>,
    pub auto_renew: bool,
    pub identity_attestation: String,
    pub notification_email: String,
    pub notes: Option<String>,
}

/// Field names of the request body (camelCase; ours: the vendor publishes none).
pub mod fields {
    pub const KIND: &str = "kind";
    pub const TA_NAME: &str = "trustedAgentName";
    pub const ORGANIZATION_NAME: &str = "organizationName";
    pub const HIPAA_TYPE: &str = "hipaaType";
    pub const FIRST_NAME: &str = "firstName";
    pub const LAST_NAME: &str = "lastName";
    pub const CITY: &str = "city";
    pub const STATE: &str = "state";
    pub const COUNTRY: &str = "country";
    pub const DURATION: &str = "durationYears";
    pub const CERTIFICATE_NAME: &str = "certificateName";
    pub const DIRECT_ADDRESS: &str = "directAddress";
    pub const ADDRESS_PASSWORD: &str = "addressPassword";
    pub const AUTO_RENEW: &str = "autoRenew";
    pub const ATTESTATION: &str = "identityAttestation";
    pub const NOTIFICATION_EMAIL: &str = "notificationEmail";
    pub const NOTES: &str = "notes";

    pub const ALL: [&str; 17] = [
        KIND,
        TA_NAME,
        ORGANIZATION_NAME,
        HIPAA_TYPE,
        FIRST_NAME,
        LAST_NAME,
        CITY,
        STATE,
        COUNTRY,
        DURATION,
        CERTIFICATE_NAME,
        DIRECT_ADDRESS,
        ADDRESS_PASSWORD,
        AUTO_RENEW,
        ATTESTATION,
        NOTIFICATION_EMAIL,
        NOTES,
    ];
}

/// Words that affirm the IAL2 attestation (case-insensitive); anything else is a refusal.
const AFFIRMATIVE: [&str; 8] = [
    "true", "yes", "y", "1", "accept", "accepted", "agree", "agreed",
];

const NOTES_MAX: usize = 4000;

impl ApplicationForm {
    /// Reads the JSON body in the order of the spec's fields; the first bad one is named.
    pub fn parse(body: &Value) -> Result<Self, Invalid> {
        use fields::*;
        let obj = body
            .as_object()
            .ok_or_else(|| Invalid::new("body", "must be a JSON object"))?;
        if let Some(unknown) = obj.keys().find(|k| !fields::ALL.contains(&k.as_str())) {
            let name: &'static str = "body";
            return Err(Invalid::new(name, format!("unknown field {unknown:?}")));
        }
        let kind = match obj.get(KIND) {
            None | Some(Value::Null) => ApplicationKind::Patient,
            Some(Value::String(s)) => s.parse()?,
            Some(_) => return Err(Invalid::new(KIND, "must be a string")),
        };
        let trusted_agent_name = name(obj, TA_NAME, 200)?;
        let organization_name = name(obj, ORGANIZATION_NAME, 200)?;
        let hipaa_type = hipaa(obj, kind)?;
        let person = kind != ApplicationKind::Organization;
        let first_name = person.then(|| name(obj, FIRST_NAME, 100)).transpose()?;
        let last_name = person.then(|| name(obj, LAST_NAME, 100)).transpose()?;
        if !person {
            for f in [FIRST_NAME, LAST_NAME] {
                absent(obj, f, "organizational applications name no person")?;
            }
        }
        let city = name(obj, CITY, 100)?;
        let state = name(obj, STATE, 100)?;
        let country = name(obj, COUNTRY, 100)?;
        let years = ValidityYears::new(integer(obj, DURATION)?)
            .map_err(|_| Invalid::new(DURATION, "must be 1, 2 or 3 (years)"))?;
        let certificate_name = name(obj, CERTIFICATE_NAME, 200)?;
        let address = if person {
            let text = string(obj, DIRECT_ADDRESS)?;
            Some(DirectAddress::parse(text).map_err(|e| Invalid::new(DIRECT_ADDRESS, e.message))?)
        } else {
            absent(
                obj,
                DIRECT_ADDRESS,
                "an organizational certificate is bound to the organization's domain",
            )?;
            None
        };
        let address_password = match (kind, obj.get(ADDRESS_PASSWORD)) {
            (_, None | Some(Value::Null)) => None,
            (ApplicationKind::Address, Some(Value::String(p))) => {
                let n = p.chars().count();
                if !(8..=128).contains(&n) {
                    return Err(Invalid::new(
                        ADDRESS_PASSWORD,
                        "must be 8 to 128 characters",
                    ));
                }
                Some(p.clone())
            }
            (ApplicationKind::Address, Some(_)) => {
                return Err(Invalid::new(ADDRESS_PASSWORD, "must be a string"));
            }
            _ => {
                return Err(Invalid::new(
                    ADDRESS_PASSWORD,
                    "only address applications take an address password",
                ));
            }
        };
        let auto_renew = match obj.get(AUTO_RENEW) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
            None | Some(Value::Null) => return Err(Invalid::new(AUTO_RENEW, "is required")),
            Some(_) => return Err(Invalid::new(AUTO_RENEW, "must be true or false")),
        };
        let identity_attestation = match obj.get(ATTESTATION) {
            Some(Value::Bool(true)) => "true".to_owned(),
            Some(Value::String(s))
                if AFFIRMATIVE.contains(&s.trim().to_ascii_lowercase().as_str()) =>
            {
                s.trim().to_owned()
            }
            None | Some(Value::Null) => return Err(Invalid::new(ATTESTATION, "is required")),
            Some(_) => {
                return Err(Invalid::new(
                    ATTESTATION,
                    "must affirm that the identity was vetted to IAL2 (e.g. \"true\" or \"yes\")",
                ));
            }
        };
        let notification_email = email(string(obj, NOTIFICATION_EMAIL)?)?;
        let notes = match obj.get(NOTES) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) if s.chars().count() <= NOTES_MAX => Some(s.trim().to_owned()),
            Some(Value::String(_)) => {
                return Err(Invalid::new(
                    NOTES,
                    format!("must be at most {NOTES_MAX} characters"),
                ));
            }
            Some(_) => return Err(Invalid::new(NOTES, "must be a string")),
        };
        Ok(Self {
            kind,
            trusted_agent_name,
            organization_name,
            hipaa_type,
            first_name,
            last_name,
            city,
            state,
            country,
            years,
            certificate_name,
            address,
            address_password,
            auto_renew,
            identity_attestation,
            notification_email,
            notes,
        })
    }
}

fn string<'a>(obj: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, Invalid> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        None | Some(Value::Null) => Err(Invalid::new(field, "is required")),
        Some(Value::String(_)) => Err(Invalid::new(field, "must not be empty")),
        Some(_) => Err(Invalid::new(field, "must be a string")),
    }
}

/// A name-like text: trimmed, 1 to `max` characters, no control characters.
fn name(obj: &Map<String, Value>, field: &'static str, max: usize) -> Result<String, Invalid> {
    let s = string(obj, field)?.trim();
    if s.chars().count() > max {
        return Err(Invalid::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(s.to_owned())
}

fn absent(obj: &Map<String, Value>, field: &'static str, why: &str) -> Result<(), Invalid> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(Invalid::new(field, format!("must not be given: {why}"))),
    }
}

/// An integer as a JSON number or a string of digits (the spec's enums are strings).
fn integer(obj: &Map<String, Value>, field: &'static str) -> Result<i64, Invalid> {
    match obj.get(field) {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| Invalid::new(field, "must be a whole number")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| Invalid::new(field, "must be a whole number")),
        None | Some(Value::Null) => Err(Invalid::new(field, "is required")),
        Some(_) => Err(Invalid::new(field, "must be a whole number")),
    }
}

fn hipaa(obj: &Map<String, Value>, kind: ApplicationKind) -> Result<HipaaType, Invalid> {
    let field = fields::HIPAA_TYPE;
    let t = HipaaType::from_number(integer(obj, field)?).ok_or_else(|| {
        Invalid::new(
            field,
            "must be 1 (Other), 2 (Covered Entity), 3 (Business Associate) or 4 (Patient)",
        )
    })?;
    match (kind, t) {
        (ApplicationKind::Patient, HipaaType::Patient) => Ok(t),
        (ApplicationKind::Patient, _) => Err(Invalid::new(
            field,
            "must be 4 (Patient) for a patient application",
        )),
        (_, HipaaType::Patient) => Err(Invalid::new(
            field,
            "must be 1 (Other), 2 (Covered Entity) or 3 (Business Associate) for a provider or organization",
        )),
        _ => Ok(t),
    }
}

/// A plain e-mail address `local@domain.tld` (where notifications go; no display name).
pub fn email(s: &str) -> Result<String, Invalid> {
    let field = fields::NOTIFICATION_EMAIL;
    let s = s.trim();
    let bad = || Invalid::new(field, "must be an e-mail address (name@example.org)");
    if s.len() > 254 {
        return Err(bad());
    }
    let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if local_ok && domain_ok {
        Ok(s.to_owned())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patient() -> Value {
        json!({
            "trustedAgentName": "Tess Agent",
            "organizationName": "Lakeside Pediatrics",
            "hipaaType": "4",
            "firstName": "Pat",
            "lastName": "Doe",
            "city": "Albany",
            "state": "NY",
            "country": "US",
            "durationYears": 2,
            "certificateName": "Pat Doe",
            "directAddress": "pat.doe@lakeside.direct.example.org",
            "autoRenew": true,
            "identityAttestation": "Yes",
            "notificationEmail": "pat@example.com",
            "notes": "seen in clinic"
        })
    }

    #[test]
    fn a_patient_form_reads_and_each_bad_field_is_named() {
        let f = ApplicationForm::parse(&patient()).unwrap();
        assert_eq!(f.kind, ApplicationKind::Patient);
        assert_eq!(f.hipaa_type.category(), CertificateCategory::Patient);
        assert_eq!(f.years.get(), 2);
        let cases: [(&str, Value); 9] = [
            ("hipaaType", json!(2)),
            ("hipaaType", json!("seven")),
            ("durationYears", json!(4)),
            ("durationYears", json!(0)),
            ("identityAttestation", json!("no")),
            ("notificationEmail", json!("not-an-email")),
            ("directAddress", json!("nobody")),
            ("autoRenew", json!("maybe")),
            ("firstName", json!("")),
        ];
        for (field, value) in cases {
            let mut body = patient();
            body[field] = value.clone();
            let e = ApplicationForm::parse(&body).unwrap_err();
            assert_eq!(e.field, field, "{value}: {e}");
        }
        let mut body = patient();
        body.as_object_mut().unwrap().remove("city");
        assert_eq!(ApplicationForm::parse(&body).unwrap_err().field, "city");
        body = patient();
        body["addressPassword"] = json!("Str0ng-Passw0rd");
        assert_eq!(
            ApplicationForm::parse(&body).unwrap_err().field,
            "addressPassword"
        );
    }

    #[test]
    fn provider_and_organization_forms_take_their_types() {
        let mut body = patient();
        body["kind"] = json!("address");
        body["hipaaType"] = json!(3);
        body["addressPassword"] = json!("Str0ng-Passw0rd");
        let f = ApplicationForm::parse(&body).unwrap();
        assert_eq!(
            f.hipaa_type.category(),
            CertificateCategory::BusinessAssociate
        );
        body["hipaaType"] = json!(4);
        assert_eq!(
            ApplicationForm::parse(&body).unwrap_err().field,
            "hipaaType"
        );

        let mut org = patient();
        let o = org.as_object_mut().unwrap();
        for f in ["firstName", "lastName", "directAddress"] {
            o.remove(f);
        }
        o.insert("kind".into(), json!("organization"));
        o.insert("hipaaType".into(), json!(1));
        let f = ApplicationForm::parse(&org).unwrap();
        assert_eq!(f.hipaa_type.category(), CertificateCategory::HealthEntity);
        assert!(f.address.is_none());
        org["directAddress"] = json!("x@lakeside.direct.example.org");
        assert_eq!(
            ApplicationForm::parse(&org).unwrap_err().field,
            "directAddress"
        );
    }

    #[test]
    fn statuses_follow_the_certificate() {
        use ApplicationStatus as S;
        assert_eq!(S::of_approved(None, false), S::Approved);
        assert_eq!(S::of_approved(Some("requested"), false), S::Approved);
        assert_eq!(S::of_approved(Some("issued"), false), S::CertificateIssued);
        assert_eq!(S::of_approved(Some("issued"), true), S::Provisioned);
        assert_eq!(S::of_approved(Some("expired"), true), S::Expired);
        assert_eq!(S::of_approved(Some("revoked"), true), S::Revoked);
        assert_eq!("provisioned".parse::<S>().unwrap(), S::Provisioned);
        assert!(email("a@b").is_err());
        assert!(email("a b@c.org").is_err());
        assert_eq!(email(" a.b@c.org ").unwrap(), "a.b@c.org");
    }
}
