//! Credentialing webhooks (Verifiable style): the 13 event types and their payload models,
//! the check of a body against its model, the redaction applied before anything is stored,
//! and the facts an event states about a provider, from which its standing follows.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::Invalid;

/// The event types of the `X-WebhookType` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    DatasetScanCompleted,
    ExportCompleted,
    LicenseChanged,
    LicenseExpired,
    LicenseExpiresSoon,
    VerificationCompleted,
    LicenseStatusChanged,
    ProviderStatusChanged,
    ProviderProfileImportCompleted,
    CredentialingRequestChanged,
    GenerateReport,
    DatasetScanMatchesChanged,
    NpdbUpdateRequestRejected,
}

impl EventType {
    pub const ALL: [EventType; 13] = [
        EventType::DatasetScanCompleted,
        EventType::ExportCompleted,
        EventType::LicenseChanged,
        EventType::LicenseExpired,
        EventType::LicenseExpiresSoon,
        EventType::VerificationCompleted,
        EventType::LicenseStatusChanged,
        EventType::ProviderStatusChanged,
        EventType::ProviderProfileImportCompleted,
        EventType::CredentialingRequestChanged,
        EventType::GenerateReport,
        EventType::DatasetScanMatchesChanged,
        EventType::NpdbUpdateRequestRejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::DatasetScanCompleted => "DatasetScanCompleted",
            EventType::ExportCompleted => "ExportCompleted",
            EventType::LicenseChanged => "LicenseChanged",
            EventType::LicenseExpired => "LicenseExpired",
            EventType::LicenseExpiresSoon => "LicenseExpiresSoon",
            EventType::VerificationCompleted => "VerificationCompleted",
            EventType::LicenseStatusChanged => "LicenseStatusChanged",
            EventType::ProviderStatusChanged => "ProviderStatusChanged",
            EventType::ProviderProfileImportCompleted => "ProviderProfileImportCompleted",
            EventType::CredentialingRequestChanged => "CredentialingRequestChanged",
            EventType::GenerateReport => "GenerateReport",
            EventType::DatasetScanMatchesChanged => "DatasetScanMatchesChanged",
            EventType::NpdbUpdateRequestRejected => "NpdbUpdateRequestRejected",
        }
    }

    /// The payload model of this event type (the spec's event → model map).
    pub fn model(self) -> Model {
        use EventType as E;
        match self {
            E::DatasetScanCompleted | E::DatasetScanMatchesChanged => Model::DatasetScan,
            E::ExportCompleted
            | E::LicenseChanged
            | E::LicenseExpired
            | E::LicenseExpiresSoon
            | E::VerificationCompleted
            | E::LicenseStatusChanged => Model::License,
            E::ProviderStatusChanged => Model::Provider,
            E::ProviderProfileImportCompleted => Model::ProviderProfileImport,
            E::CredentialingRequestChanged => Model::CredentialingRequest,
            E::GenerateReport => Model::ConfigurableReport,
            E::NpdbUpdateRequestRejected => Model::NpdbUpdateRequestRejected,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let shown: String = s.chars().take(64).collect();
                Invalid::new("X-WebhookType", format!("unknown webhook type {shown:?}"))
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    License,
    Provider,
    DatasetScan,
    CredentialingRequest,
    ConfigurableReport,
    ProviderProfileImport,
    NpdbUpdateRequestRejected,
}

// ---- checking a body against its model ------------------------------------------------------

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Uuid,
    DateTime,
    Bool,
    Int,
    /// A number or a string of digits (the NPI is an int64 in the model; people send strings).
    Digits,
    Array,
    Object(&'static [Field]),
    ArrayOf(&'static [Field]),
}

/// A property of a model: its name, its path for error messages, its kind, and whether the
/// model requires it. `null` is accepted for every property that is not required.
#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    path: &'static str,
    kind: Kind,
    required: bool,
}

const fn f(name: &'static str, path: &'static str, kind: Kind) -> Field {
    Field {
        name,
        path,
        kind,
        required: false,
    }
}

const fn req(name: &'static str, path: &'static str, kind: Kind) -> Field {
    Field {
        name,
        path,
        kind,
        required: true,
    }
}

const VERIFICATION_RESULT: &[Field] = &[
    f(
        "licenseStatus",
        "currentVerification.results[].licenseStatus",
        Kind::Str,
    ),
    f(
        "expires",
        "currentVerification.results[].expires",
        Kind::DateTime,
    ),
    f(
        "issued",
        "currentVerification.results[].issued",
        Kind::DateTime,
    ),
    f(
        "screenshots",
        "currentVerification.results[].screenshots",
        Kind::Array,
    ),
];

const VERIFICATION: &[Field] = &[
    f("status", "currentVerification.status", Kind::Str),
    f("started", "currentVerification.started", Kind::DateTime),
    f(
        "results",
        "currentVerification.results",
        Kind::ArrayOf(VERIFICATION_RESULT),
    ),
    f(
        "correctResultIndex",
        "currentVerification.correctResultIndex",
        Kind::Int,
    ),
    f("id", "currentVerification.id", Kind::Uuid),
];

const NON_VERIFIED: &[Field] = &[
    f("issueDate", "nonVerifiedInfo.issueDate", Kind::DateTime),
    f(
        "expirationDate",
        "nonVerifiedInfo.expirationDate",
        Kind::DateTime,
    ),
    f("status", "nonVerifiedInfo.status", Kind::Str),
];

const LICENSE: &[Field] = &[
    f("providerId", "providerId", Kind::Uuid),
    f("licenseNumber", "licenseNumber", Kind::Str),
    f("firstName", "firstName", Kind::Str),
    f("lastName", "lastName", Kind::Str),
    f("state", "state", Kind::Str),
    f("jobStatus", "jobStatus", Kind::Str),
    f(
        "nonVerifiedInfo",
        "nonVerifiedInfo",
        Kind::Object(NON_VERIFIED),
    ),
    f(
        "currentVerificationStatus",
        "currentVerificationStatus",
        Kind::Str,
    ),
    f(
        "currentVerification",
        "currentVerification",
        Kind::Object(VERIFICATION),
    ),
    f("restrictionStatus", "restrictionStatus", Kind::Str),
    f("approvedStatus", "approvedStatus", Kind::Str),
    f("isPrimary", "isPrimary", Kind::Bool),
    f("id", "id", Kind::Uuid),
    f("isCurrentlyPracticing", "isCurrentlyPracticing", Kind::Bool),
];

const PROVIDER: &[Field] = &[
    f("id", "id", Kind::Uuid),
    req("firstName", "firstName", Kind::Str),
    req("lastName", "lastName", Kind::Str),
    f("dateOfBirth", "dateOfBirth", Kind::DateTime),
    f("ssn", "ssn", Kind::Str),
    req("credentialingStatus", "credentialingStatus", Kind::Str),
    f("credentialedDate", "credentialedDate", Kind::DateTime),
    f("npi", "npi", Kind::Digits),
    f("deactivated", "deactivated", Kind::Bool),
    f("deactivatedAt", "deactivatedAt", Kind::DateTime),
    f("aliases", "aliases", Kind::Array),
    f("addresses", "addresses", Kind::Array),
    f("emails", "emails", Kind::Array),
    f("createdAt", "createdAt", Kind::DateTime),
];

const NESTED_PROVIDER: &[Field] = &[
    f("id", "provider.id", Kind::Uuid),
    f("firstName", "provider.firstName", Kind::Str),
    f("lastName", "provider.lastName", Kind::Str),
    f("dateOfBirth", "provider.dateOfBirth", Kind::DateTime),
    f("ssn", "provider.ssn", Kind::Str),
    f(
        "credentialingStatus",
        "provider.credentialingStatus",
        Kind::Str,
    ),
    f("npi", "provider.npi", Kind::Digits),
    f("deactivated", "provider.deactivated", Kind::Bool),
    f("deactivatedAt", "provider.deactivatedAt", Kind::DateTime),
];

const MATCH: &[Field] = &[
    f("id", "matches[].id", Kind::Uuid),
    f("userActionNeeded", "matches[].userActionNeeded", Kind::Bool),
    f("isIgnored", "matches[].isIgnored", Kind::Bool),
    f(
        "userActionResolution",
        "matches[].userActionResolution",
        Kind::Str,
    ),
    f(
        "createdTimestamp",
        "matches[].createdTimestamp",
        Kind::DateTime,
    ),
];

const SCAN: &[Field] = &[
    f("id", "id", Kind::Uuid),
    f("started", "started", Kind::DateTime),
    f("completed", "completed", Kind::DateTime),
    f("type", "type", Kind::Str),
    f("status", "status", Kind::Str),
    f("providerId", "providerId", Kind::Uuid),
    f("facilityId", "facilityId", Kind::Uuid),
    f("trigger", "trigger", Kind::Str),
    f("parameters", "parameters", Kind::Array),
    f("matches", "matches", Kind::ArrayOf(MATCH)),
    f("verifiedAt", "verifiedAt", Kind::DateTime),
];

const FACILITY: &[Field] = &[
    f("id", "facility.id", Kind::Uuid),
    f("name", "facility.name", Kind::Str),
    f("groupTaxId", "facility.groupTaxId", Kind::Str),
    f("facilityTaxId", "facility.facilityTaxId", Kind::Str),
    f("deactivated", "facility.deactivated", Kind::Bool),
];

const REQUEST_EVENT: &[Field] = &[
    f("id", "currentEvent.id", Kind::Uuid),
    f("status", "currentEvent.status", Kind::Str),
    f("timestamp", "currentEvent.timestamp", Kind::DateTime),
];

const CREDENTIALING_REQUEST: &[Field] = &[
    f("type", "type", Kind::Str),
    f("id", "id", Kind::Uuid),
    f("provider", "provider", Kind::Object(NESTED_PROVIDER)),
    f("facility", "facility", Kind::Object(FACILITY)),
    f("createdAt", "createdAt", Kind::DateTime),
    f("currentEvent", "currentEvent", Kind::Object(REQUEST_EVENT)),
    f("allEvents", "allEvents", Kind::Array),
    f("priority", "priority", Kind::Str),
    f("isSelfManaged", "isSelfManaged", Kind::Bool),
];

const REPORT: &[Field] = &[
    f("type", "type", Kind::Str),
    f("id", "id", Kind::Uuid),
    f("providerId", "providerId", Kind::Uuid),
    f("facilityId", "facilityId", Kind::Uuid),
    f("startedAt", "startedAt", Kind::DateTime),
    f("completedAt", "completedAt", Kind::DateTime),
    f("status", "status", Kind::Str),
    f("path", "path", Kind::Str),
    f(
        "credentialingRequestId",
        "credentialingRequestId",
        Kind::Uuid,
    ),
];

const PROFILE_IMPORT: &[Field] = &[
    f("id", "id", Kind::Uuid),
    f("providerId", "providerId", Kind::Uuid),
    f("source", "source", Kind::Str),
    f("started", "started", Kind::DateTime),
    f("completed", "completed", Kind::DateTime),
    f("status", "status", Kind::Str),
    f("trigger", "trigger", Kind::Str),
    f("failureCode", "failureCode", Kind::Str),
    f("parameters", "parameters", Kind::Array),
];

const NPDB_REJECTED: &[Field] = &[
    f("message", "message", Kind::Str),
    f("providerId", "providerId", Kind::Uuid),
    f(
        "npdbVerificationRequestId",
        "npdbVerificationRequestId",
        Kind::Uuid,
    ),
    f("rejectedParameters", "rejectedParameters", Kind::Array),
];

/// Items of one array checked at most: a bigger array is refused (the spec's arrays are small).
pub const MAX_ITEMS: usize = 1000;

impl Model {
    fn fields(self) -> &'static [Field] {
        match self {
            Model::License => LICENSE,
            Model::Provider => PROVIDER,
            Model::DatasetScan => SCAN,
            Model::CredentialingRequest => CREDENTIALING_REQUEST,
            Model::ConfigurableReport => REPORT,
            Model::ProviderProfileImport => PROFILE_IMPORT,
            Model::NpdbUpdateRequestRejected => NPDB_REJECTED,
        }
    }

    /// Checks `body` against the model: an object whose known properties have their types
    /// (properties the model does not name are kept: the provider adds fields). The error
    /// names the first property that does not match.
    pub fn check(self, body: &Value) -> Result<(), Invalid> {
        let Value::Object(map) = body else {
            return Err(Invalid::new("body", "must be a JSON object"));
        };
        check_fields(map, self.fields())
    }
}

fn check_fields(map: &Map<String, Value>, fields: &[Field]) -> Result<(), Invalid> {
    for field in fields {
        match map.get(field.name) {
            None | Some(Value::Null) if field.required => {
                return Err(Invalid::new(field.path, "is required"));
            }
            None | Some(Value::Null) => {}
            Some(v) => check_value(field, v)?,
        }
    }
    Ok(())
}

fn check_value(field: &Field, v: &Value) -> Result<(), Invalid> {
    let bad = |what: &str| Err(Invalid::new(field.path, format!("must be {what}")));
    match (field.kind, v) {
        (Kind::Str, Value::String(_)) => Ok(()),
        (Kind::Str, _) => bad("a string"),
        (Kind::Uuid, Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => Ok(()),
        (Kind::Uuid, _) => bad("a UUID"),
        (Kind::DateTime, Value::String(s)) if parse_time(s).is_some() => Ok(()),
        (Kind::DateTime, _) => bad("a date-time (RFC 3339)"),
        (Kind::Bool, Value::Bool(_)) => Ok(()),
        (Kind::Bool, _) => bad("true or false"),
        (Kind::Int, Value::Number(n)) if n.is_i64() => Ok(()),
        (Kind::Int, _) => bad("a whole number"),
        (Kind::Digits, Value::Number(n)) if n.is_u64() => Ok(()),
        (Kind::Digits, Value::String(s))
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(())
        }
        (Kind::Digits, _) => bad("a number"),
        (Kind::Array, Value::Array(a)) if a.len() <= MAX_ITEMS => Ok(()),
        (Kind::ArrayOf(fields), Value::Array(items)) if items.len() <= MAX_ITEMS => {
            for item in items {
                match item {
                    Value::Object(m) => check_fields(m, fields)?,
                    _ => return bad("an array of objects"),
                }
            }
            Ok(())
        }
        (Kind::Array | Kind::ArrayOf(_), Value::Array(_)) => {
            bad(&format!("an array of at most {MAX_ITEMS} items"))
        }
        (Kind::Array | Kind::ArrayOf(_), _) => bad("an array"),
        (Kind::Object(fields), Value::Object(m)) => check_fields(m, fields),
        (Kind::Object(_), _) => bad("an object"),
    }
}

/// An RFC 3339 date-time, or a plain date (midnight UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        })
}

// ---- redaction -----------------------------------------------------------------------------

/// What redaction took out that matching still needs, held only in memory.
#[derive(Default)]
pub struct Removed {
    /// The last four digits of the first SSN found (the provider's own, at the top level or
    /// under `provider`).
    pub ssn_last4: Option<String>,
    /// The first date of birth found, as a date.
    pub date_of_birth: Option<chrono::NaiveDate>,
}

impl fmt::Debug for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Removed(****)")
    }
}

/// Objects nested deeper than this are cut off (a body that deep is hostile).
pub const MAX_DEPTH: usize = 32;

fn is_ssn_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    k == "ssn" || k.contains("socialsecurity") || k.starts_with("ssn") && !k.contains("hash")
}

fn is_birth_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    k == "dob" || k.contains("birth")
}

fn is_screenshot_key(k: &str) -> bool {
    k.to_ascii_lowercase().contains("screenshot")
}

/// Removes from `body`, in place, every SSN, date of birth and screenshot, and blanks any
/// string shaped like a full SSN (`123-45-6789`) wherever it is. Returns what matching needs.
pub fn redact(body: &mut Value) -> Removed {
    // The provider's own values first (top level, or the nested provider of a credentialing
    // request); those deeper in (scan parameters, matched records) only when there are none.
    let mut removed = Removed::default();
    for owner in [&*body, body.get("provider").unwrap_or(&Value::Null)] {
        if removed.ssn_last4.is_none() {
            removed.ssn_last4 = owner.get("ssn").and_then(Value::as_str).and_then(last4);
        }
        if removed.date_of_birth.is_none() {
            removed.date_of_birth = owner
                .get("dateOfBirth")
                .and_then(Value::as_str)
                .and_then(parse_time)
                .map(|t| t.date_naive());
        }
    }
    redact_in(body, 0, &mut removed);
    removed
}

fn last4(ssn: &str) -> Option<String> {
    let digits: String = ssn.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 4).then(|| digits[digits.len() - 4..].to_owned())
}

fn redact_in(v: &mut Value, depth: usize, removed: &mut Removed) {
    if depth > MAX_DEPTH {
        *v = Value::Null;
        return;
    }
    match v {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if is_ssn_key(&k) {
                    if let Some(Value::String(s)) = map.get(&k)
                        && removed.ssn_last4.is_none()
                    {
                        removed.ssn_last4 = last4(s);
                    }
                    map.remove(&k);
                } else if is_birth_key(&k) {
                    if let Some(Value::String(s)) = map.get(&k)
                        && removed.date_of_birth.is_none()
                    {
                        removed.date_of_birth = parse_time(s).map(|t| t.date_naive());
                    }
                    map.remove(&k);
                } else if is_screenshot_key(&k) {
                    map.remove(&k);
                } else if let Some(child) = map.get_mut(&k) {
                    redact_in(child, depth + 1, removed);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                redact_in(item, depth + 1, removed);
            }
        }
        Value::String(s) if contains_full_ssn(s) => {
            *s = "[redacted]".into();
        }
        _ => {}
    }
}

/// Whether `s` holds `ddd-dd-dddd` (or with spaces) not inside a longer run of digits.
fn contains_full_ssn(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 11 {
        return false;
    }
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let sep = |i: usize| matches!(b.get(i), Some(b'-' | b' '));
    (0..=b.len() - 11).any(|i| {
        (i == 0 || !digit(i - 1))
            && (0..3).all(|j| digit(i + j))
            && sep(i + 3)
            && (4..6).all(|j| digit(i + j))
            && sep(i + 6)
            && (7..11).all(|j| digit(i + j))
            && !digit(i + 11)
    })
}

// ---- what an event says ------------------------------------------------------------------

/// The identifying data of the provider an event is about (before redaction).
#[derive(Debug, Default, Clone)]
pub struct ProviderKeys {
    pub provider_id: Option<uuid::Uuid>,
    pub npi: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// The facility an event is about.
#[derive(Debug, Default, Clone)]
pub struct FacilityKeys {
    pub facility_id: Option<uuid::Uuid>,
    pub npi: Option<String>,
    pub tax_ids: Vec<String>,
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn uuid_at(v: &Value, key: &str) -> Option<uuid::Uuid> {
    s(v, key).and_then(|x| uuid::Uuid::parse_str(x).ok())
}

fn digits_at(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(x) => Some(x.trim().to_owned()),
        _ => None,
    }
}

fn time_at(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    s(v, key).and_then(parse_time)
}

fn provider_object(model: Model, body: &Value) -> Option<&Value> {
    match model {
        Model::Provider => Some(body),
        Model::CredentialingRequest => body.get("provider").filter(|p| p.is_object()),
        _ => None,
    }
}

pub fn provider_keys(model: Model, body: &Value) -> ProviderKeys {
    let mut k = ProviderKeys::default();
    if let Some(p) = provider_object(model, body) {
        k.provider_id = uuid_at(p, "id");
        k.npi = digits_at(p, "npi");
        k.first_name = s(p, "firstName").map(str::to_owned);
        k.last_name = s(p, "lastName").map(str::to_owned);
    } else {
        k.provider_id = uuid_at(body, "providerId");
        k.first_name = s(body, "firstName").map(str::to_owned);
        k.last_name = s(body, "lastName").map(str::to_owned);
    }
    k
}

pub fn facility_keys(model: Model, body: &Value) -> FacilityKeys {
    let mut k = FacilityKeys::default();
    match body.get("facility").filter(|f| f.is_object()) {
        Some(f) if model == Model::CredentialingRequest => {
            k.facility_id = uuid_at(f, "id");
            k.npi = digits_at(f, "npi");
            k.tax_ids = ["facilityTaxId", "groupTaxId"]
                .iter()
                .filter_map(|t| s(f, t).map(str::to_owned))
                .collect();
        }
        _ => k.facility_id = uuid_at(body, "facilityId"),
    }
    k
}

/// When the event's facts happened, by its own timestamps (the latest it carries); `None` when
/// it carries none.
pub fn occurred_at(model: Model, body: &Value) -> Option<DateTime<Utc>> {
    let mut times: Vec<Option<DateTime<Utc>>> = Vec::new();
    match model {
        Model::License => {
            let v = body.get("currentVerification").unwrap_or(&Value::Null);
            times.push(time_at(v, "started"));
        }
        Model::DatasetScan => {
            for k in ["started", "completed", "verifiedAt"] {
                times.push(time_at(body, k));
            }
            if let Some(Value::Array(m)) = body.get("matches") {
                times.extend(
                    m.iter()
                        .take(MAX_ITEMS)
                        .map(|x| time_at(x, "createdTimestamp")),
                );
            }
        }
        Model::Provider => {
            for k in ["createdAt", "credentialedDate", "deactivatedAt"] {
                times.push(time_at(body, k));
            }
        }
        Model::CredentialingRequest => {
            times.push(time_at(body, "createdAt"));
            let e = body.get("currentEvent").unwrap_or(&Value::Null);
            times.push(time_at(e, "timestamp"));
        }
        Model::ConfigurableReport => {
            times.push(time_at(body, "startedAt"));
            times.push(time_at(body, "completedAt"));
        }
        Model::ProviderProfileImport => {
            times.push(time_at(body, "started"));
            times.push(time_at(body, "completed"));
        }
        Model::NpdbUpdateRequestRejected => {}
    }
    times.into_iter().flatten().max()
}

/// An individual's standing, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Standing {
    Good,
    Warning,
    Restricted,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Good => "good",
            Standing::Warning => "warning",
            Standing::Restricted => "restricted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "good" => Some(Standing::Good),
            "warning" => Some(Standing::Warning),
            "restricted" => Some(Standing::Restricted),
            _ => None,
        }
    }
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing an event states about a provider, replacing the earlier fact of the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// `license:<id>`, `scan:<dataset>`, `provider`, `credentialing-request:<id>`.
    pub key: String,
    pub effect: Standing,
    /// A short code (`license-expired`, `exclusion-match:Sam`), never PHI.
    pub reason: String,
}

/// The rules of the configuration that decide what a fact means.
#[derive(Debug, Clone)]
pub struct Rules {
    pub disqualifying_statuses: Vec<String>,
    pub exclusion_datasets: Vec<String>,
    pub warning_window: chrono::Duration,
}

impl Rules {
    fn disqualifies(&self, status: &str) -> bool {
        self.disqualifying_statuses
            .iter()
            .any(|d| d.eq_ignore_ascii_case(status.trim()))
    }
    fn is_exclusion(&self, dataset: &str) -> bool {
        self.exclusion_datasets
            .iter()
            .any(|d| d.eq_ignore_ascii_case(dataset.trim()))
    }
}

/// Reason codes are built from the provider's words: keep them short and printable.
fn code_part(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect()
}

fn fact(key: String, effect: Standing, reason: impl Into<String>) -> Fact {
    Fact {
        key,
        effect,
        reason: reason.into(),
    }
}

/// The facts an event states, judged at `now`. Events that only report (exports, reports,
/// profile imports, NPDB rejections) state none.
pub fn facts(event: EventType, body: &Value, rules: &Rules, now: DateTime<Utc>) -> Vec<Fact> {
    use EventType as E;
    match event {
        E::LicenseChanged
        | E::LicenseExpired
        | E::LicenseExpiresSoon
        | E::VerificationCompleted
        | E::LicenseStatusChanged => vec![license_fact(event, body, rules, now)],
        E::DatasetScanCompleted | E::DatasetScanMatchesChanged => {
            scan_fact(body, rules).into_iter().collect()
        }
        E::ProviderStatusChanged => vec![provider_fact(body, rules)],
        E::CredentialingRequestChanged => {
            let mut out = Vec::new();
            if let Some(p) = body.get("provider").filter(|p| p.is_object())
                && p.get("credentialingStatus").is_some_and(Value::is_string)
            {
                out.push(provider_fact(p, rules));
            }
            if let (Some(id), Some(status)) = (
                s(body, "id"),
                body.get("currentEvent").and_then(|e| s(e, "status")),
            ) {
                let key = format!("credentialing-request:{}", code_part(id));
                out.push(if rules.disqualifies(status) {
                    fact(
                        key,
                        Standing::Restricted,
                        format!("credentialing-request:{}", code_part(status)),
                    )
                } else {
                    fact(key, Standing::Good, "credentialing-request-open")
                });
            }
            out
        }
        E::ExportCompleted
        | E::ProviderProfileImportCompleted
        | E::GenerateReport
        | E::NpdbUpdateRequestRejected => Vec::new(),
    }
}

fn license_fact(event: EventType, body: &Value, rules: &Rules, now: DateTime<Utc>) -> Fact {
    let key = match (s(body, "id"), s(body, "state"), s(body, "licenseNumber")) {
        (Some(id), _, _) => format!("license:{}", code_part(id)),
        (None, state, number) => format!(
            "license:{}:{}",
            code_part(state.unwrap_or("")),
            code_part(number.unwrap_or(""))
        ),
    };
    if event == EventType::LicenseExpired {
        return fact(key, Standing::Restricted, "license-expired");
    }
    if s(body, "restrictionStatus").is_some_and(|r| r.eq_ignore_ascii_case("Restricted")) {
        return fact(key, Standing::Restricted, "license-restricted");
    }
    let verification = body.get("currentVerification").unwrap_or(&Value::Null);
    let result = verification
        .get("results")
        .and_then(Value::as_array)
        .and_then(|r| {
            let i = verification
                .get("correctResultIndex")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize;
            r.get(i).or_else(|| r.first())
        });
    let status = result
        .and_then(|r| s(r, "licenseStatus"))
        .or_else(|| body.get("nonVerifiedInfo").and_then(|n| s(n, "status")))
        .unwrap_or("")
        .to_ascii_lowercase();
    for (word, reason) in [
        ("revok", "license-revoked"),
        ("suspend", "license-suspended"),
        ("expired", "license-expired"),
        ("lapsed", "license-expired"),
    ] {
        if status.contains(word) {
            return fact(key, Standing::Restricted, reason);
        }
    }
    let expires = result.and_then(|r| time_at(r, "expires")).or_else(|| {
        body.get("nonVerifiedInfo")
            .and_then(|n| time_at(n, "expirationDate"))
    });
    if expires.is_some_and(|e| e <= now) {
        return fact(key, Standing::Restricted, "license-expired");
    }
    if event == EventType::LicenseExpiresSoon
        || expires.is_some_and(|e| e <= now + rules.warning_window)
    {
        return fact(key, Standing::Warning, "license-expires-soon");
    }
    fact(key, Standing::Good, "license-active")
}

fn scan_fact(body: &Value, rules: &Rules) -> Option<Fact> {
    let status = s(body, "status").unwrap_or("");
    // A scan still running, or failed, says nothing yet.
    if !["Completed", "Active"]
        .iter()
        .any(|x| x.eq_ignore_ascii_case(status))
    {
        return None;
    }
    let dataset = code_part(s(body, "type").unwrap_or("unknown"));
    let key = format!("scan:{dataset}");
    let pending = body
        .get("matches")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(MAX_ITEMS)
        .any(|m| {
            let ignored = m.get("isIgnored").and_then(Value::as_bool).unwrap_or(false);
            let resolution = s(m, "userActionResolution").unwrap_or("");
            let needed = m
                .get("userActionNeeded")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            !ignored
                && !resolution.eq_ignore_ascii_case("Reject")
                && (needed || resolution.eq_ignore_ascii_case("Accept"))
        });
    Some(match (pending, rules.is_exclusion(&dataset)) {
        (true, true) => fact(
            key,
            Standing::Restricted,
            format!("exclusion-match:{dataset}"),
        ),
        (true, false) => fact(
            key,
            Standing::Warning,
            format!("scan-awaiting-review:{dataset}"),
        ),
        (false, _) => fact(key, Standing::Good, format!("scan-clear:{dataset}")),
    })
}

fn provider_fact(p: &Value, rules: &Rules) -> Fact {
    let key = "provider".to_owned();
    if p.get("deactivated").and_then(Value::as_bool) == Some(true) {
        return fact(key, Standing::Restricted, "provider-deactivated");
    }
    let status = s(p, "credentialingStatus").unwrap_or("");
    if rules.disqualifies(status) {
        return fact(
            key,
            Standing::Restricted,
            format!("credentialing-status:{}", code_part(status)),
        );
    }
    fact(key, Standing::Good, "provider-active")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> Rules {
        Rules {
            disqualifying_statuses: vec!["Denied".into()],
            exclusion_datasets: vec!["Sam".into(), "OigExclusions".into()],
            warning_window: chrono::Duration::days(60),
        }
    }

    #[test]
    fn every_type_parses_and_unknown_ones_are_named() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
        }
        let e = "LicenseExploded".parse::<EventType>().unwrap_err();
        assert_eq!(e.field, "X-WebhookType");
        assert!(e.message.contains("LicenseExploded"));
    }

    #[test]
    fn checks_name_the_field() {
        let e = Model::License
            .check(&json!({"providerId": "nope"}))
            .unwrap_err();
        assert_eq!(e.field, "providerId");
        let e = Model::DatasetScan
            .check(&json!({"matches": [{"isIgnored": "yes"}]}))
            .unwrap_err();
        assert_eq!(e.field, "matches[].isIgnored");
        let e = Model::Provider
            .check(&json!({"firstName": "A", "lastName": "B"}))
            .unwrap_err();
        assert_eq!(e.field, "credentialingStatus");
        assert!(Model::Provider
            .check(&json!({"firstName": "A", "lastName": "B", "credentialingStatus": "x", "npi": 1234567893u64, "provider": null}))
            .is_ok());
        assert_eq!(Model::License.check(&json!([1])).unwrap_err().field, "body");
    }

    #[test]
    fn redaction_takes_ssn_birth_dates_and_screenshots() {
        let mut v = json!({
            "ssn": "123-45-9876",
            "dateOfBirth": "1975-03-02T00:00:00Z",
            "note": "call 123-45-9876 now",
            "taxId": "12-3456789",
            "parameters": [{"type": "Ssn", "ssn": "987654321"}, {"type": "DateOfBirth", "dateOfBirth": "1970-01-01"}],
            "currentVerification": {"results": [{"screenshots": ["aGVsbG8="], "licenseStatus": "Active"}]}
        });
        let r = redact(&mut v);
        assert_eq!(r.ssn_last4.as_deref(), Some("9876"));
        assert_eq!(r.date_of_birth.unwrap().to_string(), "1975-03-02");
        let text = v.to_string();
        for gone in [
            "9876",
            "1975",
            "1970",
            "aGVsbG8",
            "987654321",
            "screenshots",
        ] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
        assert!(text.contains("12-3456789"), "a tax id is not an SSN");
        assert!(!format!("{r:?}").contains("9876"));
    }

    #[test]
    fn licenses_scans_and_providers_make_facts() {
        let now = Utc::now();
        let soon = (now + chrono::Duration::days(10)).to_rfc3339();
        let later = (now + chrono::Duration::days(400)).to_rfc3339();
        let lic = |status: &str, expires: &str| {
            json!({"id": "l1", "restrictionStatus": "None",
                   "currentVerification": {"results": [{"licenseStatus": status, "expires": expires}]}})
        };
        let effect = |e: EventType, v: Value| facts(e, &v, &rules(), now)[0].effect;
        assert_eq!(
            effect(EventType::LicenseChanged, lic("Active", &later)),
            Standing::Good
        );
        assert_eq!(
            effect(EventType::LicenseChanged, lic("Active", &soon)),
            Standing::Warning
        );
        assert_eq!(
            effect(EventType::LicenseChanged, lic("Revoked", &later)),
            Standing::Restricted
        );
        assert_eq!(
            effect(EventType::LicenseExpired, lic("Active", &later)),
            Standing::Restricted
        );
        assert_eq!(
            effect(EventType::LicenseExpiresSoon, lic("Active", &later)),
            Standing::Warning
        );
        let scan = |t: &str, ignored: bool| {
            json!({"type": t, "status": "Completed",
                   "matches": [{"userActionNeeded": true, "isIgnored": ignored}]})
        };
        assert_eq!(
            effect(EventType::DatasetScanCompleted, scan("Sam", false)),
            Standing::Restricted
        );
        assert_eq!(
            effect(EventType::DatasetScanMatchesChanged, scan("Sam", true)),
            Standing::Good
        );
        assert_eq!(
            effect(EventType::DatasetScanCompleted, scan("Dea", false)),
            Standing::Warning
        );
        assert!(
            facts(
                EventType::DatasetScanCompleted,
                &json!({"type": "Sam", "status": "Working"}),
                &rules(),
                now
            )
            .is_empty()
        );
        let p = |status: &str, deactivated: bool| json!({"firstName": "A", "lastName": "B", "credentialingStatus": status, "deactivated": deactivated});
        assert_eq!(
            effect(EventType::ProviderStatusChanged, p("denied", false)),
            Standing::Restricted
        );
        assert_eq!(
            effect(EventType::ProviderStatusChanged, p("Credentialed", true)),
            Standing::Restricted
        );
        assert_eq!(
            effect(EventType::ProviderStatusChanged, p("Credentialed", false)),
            Standing::Good
        );
        assert!(facts(EventType::GenerateReport, &json!({}), &rules(), now).is_empty());
    }
}
