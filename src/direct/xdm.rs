//! IHE XDM packages (ITI TF-1 §16, metadata as in ITI-32 / ebRS 3.0): the zip a Direct
//! message carries when documents travel with their XDS metadata.
//!
//! We write one submission set in `IHE_XDM/SUBSET01/`. Reading is tolerant because packages
//! from other systems vary (case of names, missing slashes, missing URI slots) and is bounded
//! because the zip comes from outside: entry count and inflated bytes are capped, and nothing
//! is ever written to disk.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io::{Cursor, Read, Write as _};

use chrono::{DateTime, Datelike, Timelike, Utc};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::xml::{self, Element, XmlError};

/// Most zip entries a received package may have.
pub const MAX_ENTRIES: usize = 1000;
/// Most bytes a received package may inflate to, all entries together.
pub const MAX_UNCOMPRESSED_BYTES: u64 = 200 * 1024 * 1024;

const PREALLOCATE_AT_MOST: u64 = 1024 * 1024;

const ROOT_DIR: &str = "IHE_XDM/";
const SUBSET_DIR: &str = "IHE_XDM/SUBSET01/";
const METADATA_NAME: &str = "METADATA.XML";
const METADATA_PATH: &str = "IHE_XDM/SUBSET01/METADATA.XML";
const INDEX_PATH: &str = "INDEX.HTM";
const README_PATH: &str = "README.TXT";

const NS_LCM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0";
const NS_RIM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0";

const STABLE_DOCUMENT: &str = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1";
const DOC_AUTHOR: &str = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d";
const DOC_CLASS_CODE: &str = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a";
const DOC_CONFIDENTIALITY: &str = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f";
const DOC_FORMAT_CODE: &str = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d";
const DOC_FACILITY_TYPE: &str = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1";
const DOC_PRACTICE_SETTING: &str = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead";
const DOC_TYPE_CODE: &str = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983";
const DOC_PATIENT_ID: &str = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427";
const DOC_UNIQUE_ID: &str = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab";
const SET_AUTHOR: &str = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d";
const SET_CONTENT_TYPE: &str = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500";
const SET_UNIQUE_ID: &str = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8";
const SET_SOURCE_ID: &str = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832";
const SET_PATIENT_ID: &str = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446";
const SET_NODE: &str = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd";

const OT_CLASSIFICATION: &str =
    "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification";
const OT_EXTERNAL_ID: &str =
    "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier";
const OT_PACKAGE: &str =
    "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage";
const OT_ASSOCIATION: &str =
    "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association";
const HAS_MEMBER: &str = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember";
const APPROVED: &str = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved";

const LOINC: &str = "2.16.840.1.113883.6.1";
const CONFIDENTIALITY_SYSTEM: &str = "2.16.840.1.113883.5.25";
/// HL7 NullFlavor: we know nothing of the facility or practice setting, and say so rather than
/// invent a code.
const NULL_FLAVOR_SYSTEM: &str = "2.16.840.1.113883.5.1008";
/// IHE's "the mime type says it all" format code, for documents of no particular template.
const FORMAT_MIME_SUFFICIENT: &str = "urn:ihe:iti:xds:2017:mimeTypeSufficient";
const FORMAT_SYSTEM: &str = "1.3.6.1.4.1.19376.1.2.3";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdmDocument {
    pub file_name: String,
    pub media_type: String,
    pub title: Option<String>,
    pub content: Vec<u8>,
}

/// What METADATA.XML says about the submission set and its documents. There is no `Default`:
/// a package dated 1970 or without identifiers would be wrong, so [`SubmissionMetadata::new`]
/// takes those and leaves the optional rest empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionMetadata {
    pub submission_time: DateTime<Utc>,
    /// An OID identifying us.
    pub source_id: String,
    /// The submission set's uniqueId, an OID (e.g. from [`oid_from_uuid`]); document ids are
    /// derived from it.
    pub unique_id: String,
    /// Submission set title (the message subject).
    pub title: Option<String>,
    /// Submission set comments (the message body).
    pub comments: Option<String>,
    /// HL7 XCN, written as given.
    pub author_person: Option<String>,
    /// HL7 XON, e.g. `Some Hospital^^^^^^^^^2.999.1.2.3`, written as given.
    pub author_institution: Option<String>,
    /// The sender's Direct address.
    pub author_telecom: Option<String>,
    /// Direct addresses, written as XCN-less intendedRecipient values `||^^Internet^addr`.
    pub intended_recipients: Vec<String>,
    /// CX value, or the bare id when `assigning_authority` is given.
    pub patient_id: Option<String>,
    /// OID: a bare `patient_id` becomes `id^^^&OID&ISO`.
    pub assigning_authority: Option<String>,
    pub patient_first: Option<String>,
    pub patient_middle: Option<String>,
    pub patient_last: Option<String>,
    /// YYYYMMDD.
    pub patient_dob: Option<String>,
    pub patient_gender: Option<String>,
    pub patient_street1: Option<String>,
    pub patient_street2: Option<String>,
    pub patient_city: Option<String>,
    pub patient_state: Option<String>,
    pub patient_zip: Option<String>,
    /// classCode/typeCode (and the set's contentTypeCode) LOINC code, e.g. `57133-1`.
    pub loinc_code: Option<String>,
    /// Its display name, e.g. `Referral Note`.
    pub loinc_name: Option<String>,
}

impl SubmissionMetadata {
    pub fn new(
        submission_time: DateTime<Utc>,
        source_id: impl Into<String>,
        unique_id: impl Into<String>,
    ) -> Self {
        Self {
            submission_time,
            source_id: source_id.into(),
            unique_id: unique_id.into(),
            title: None,
            comments: None,
            author_person: None,
            author_institution: None,
            author_telecom: None,
            intended_recipients: Vec::new(),
            patient_id: None,
            assigning_authority: None,
            patient_first: None,
            patient_middle: None,
            patient_last: None,
            patient_dob: None,
            patient_gender: None,
            patient_street1: None,
            patient_street2: None,
            patient_city: None,
            patient_state: None,
            patient_zip: None,
            loinc_code: None,
            loinc_name: None,
        }
    }
}

/// A document as METADATA.XML lists it, for checks. Absent slots read as `""` / `0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedDocument {
    /// The URI slot: the file name within the subset folder.
    pub uri: String,
    pub size: u64,
    /// SHA-1, lower-case hex.
    pub hash: String,
    pub media_type: String,
    pub title: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum XdmError {
    #[error("an XDM package needs at least one document")]
    NoDocuments,
    #[error("the request was abandoned while its package was being built")]
    Abandoned,
    #[error(
        "document file name {0:?} is not usable (empty, a path, `..`, control or reserved characters)"
    )]
    UnsafeFileName(String),
    #[error("document file name {0:?} is used twice (names are compared ignoring case)")]
    DuplicateFileName(String),
    #[error("media type {0:?} is not of the form type/subtype")]
    MediaType(String),
    #[error("{field} {value:?} is not an OID")]
    NotAnOid { field: &'static str, value: String },
    #[error("the package has more than {MAX_ENTRIES} entries")]
    TooManyEntries,
    #[error("the package inflates to more than {MAX_UNCOMPRESSED_BYTES} bytes")]
    TooLarge,
    #[error("the package has no IHE_XDM submission set METADATA.XML")]
    NoMetadata,
    #[error("METADATA.XML: {0}")]
    Metadata(#[from] XmlError),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("reading the package: {0}")]
    Io(#[from] std::io::Error),
}

/// `2.25.<decimal>`: the ITU-T X.667 OID of a UUID, a ready source of unique ids.
pub fn oid_from_uuid(id: uuid::Uuid) -> String {
    format!("2.25.{}", id.as_u128())
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Builds the package zip (deflated) in memory.
pub fn build_package(meta: &SubmissionMetadata, docs: &[XdmDocument]) -> Result<Vec<u8>, XdmError> {
    build_package_until(meta, docs, &|| false)
}

/// Deflated this much at a time between checks of `abandoned`.
const DEFLATE_STEP: usize = 1024 * 1024;

/// `build_package`, giving up with `Abandoned` once `abandoned()` says nobody waits for the
/// result any more (checked every `DEFLATE_STEP` bytes: deflating is most of the cost).
pub fn build_package_until(
    meta: &SubmissionMetadata,
    docs: &[XdmDocument],
    abandoned: &dyn Fn() -> bool,
) -> Result<Vec<u8>, XdmError> {
    if docs.is_empty() {
        return Err(XdmError::NoDocuments);
    }
    check_oid("source_id", &meta.source_id)?;
    check_oid("unique_id", &meta.unique_id)?;
    // The metadata's own name is taken; receivers match names ignoring case, so we do too.
    let mut taken: HashSet<String> = HashSet::from([METADATA_NAME.to_ascii_lowercase()]);
    let mut media_types = Vec::with_capacity(docs.len());
    for d in docs {
        check_file_name(&d.file_name)?;
        if !taken.insert(d.file_name.to_lowercase()) {
            return Err(XdmError::DuplicateFileName(d.file_name.clone()));
        }
        media_types.push(
            normalized_media_type(&d.media_type)
                .ok_or_else(|| XdmError::MediaType(d.media_type.clone()))?,
        );
    }

    let metadata = metadata_xml(meta, docs, &media_types);
    let index = index_htm(meta, docs, &media_types);
    let readme = readme_txt(meta, docs);

    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip_time(meta.submission_time));
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    // Explicit directory entries: some unzip tools and XDM validators look for them.
    zip.add_directory(ROOT_DIR, options)?;
    zip.add_directory(SUBSET_DIR, options)?;
    let mut add = |name: &str, bytes: &[u8]| -> Result<(), XdmError> {
        zip.start_file(name, options)?;
        for chunk in bytes.chunks(DEFLATE_STEP) {
            if abandoned() {
                return Err(XdmError::Abandoned);
            }
            zip.write_all(chunk)?;
        }
        Ok(())
    };
    add(INDEX_PATH, index.as_bytes())?;
    add(README_PATH, readme.as_bytes())?;
    add(METADATA_PATH, metadata.as_bytes())?;
    for d in docs {
        add(&format!("{SUBSET_DIR}{}", d.file_name), &d.content)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Names become zip entry names and, on the receiving side, often file names: nothing that
/// could climb out of the folder, trip up Windows tools or confuse a terminal.
fn check_file_name(name: &str) -> Result<(), XdmError> {
    let unsafe_name = name.trim().is_empty()
        || name != name.trim()
        || name.len() > 255
        || name.contains("..")
        || name == "."
        || name.chars().any(|c| {
            c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
        });
    if unsafe_name {
        return Err(XdmError::UnsafeFileName(name.to_owned()));
    }
    Ok(())
}

/// A dotted-decimal OID, checked as text: XDM OIDs may carry 128-bit arcs (`2.25.<uuid>`).
pub fn is_oid(value: &str) -> bool {
    let arc_ok = |a: &str| {
        !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) && (a == "0" || !a.starts_with('0'))
    };
    value.split('.').count() >= 2 && value.split('.').all(arc_ok)
}

fn check_oid(field: &'static str, value: &str) -> Result<(), XdmError> {
    if !is_oid(value) {
        return Err(XdmError::NotAnOid {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// `type/subtype`, lower case, parameters dropped; `None` when it is not one.
fn normalized_media_type(raw: &str) -> Option<String> {
    let essence = raw.split(';').next().unwrap_or_default().trim();
    let is_token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c))
    };
    match essence.split_once('/') {
        Some((t, s)) if is_token(t) && is_token(s) => Some(essence.to_ascii_lowercase()),
        _ => None,
    }
}

/// The zip format stores local time without a zone; UTC is the only honest choice we have.
fn zip_time(t: DateTime<Utc>) -> zip::DateTime {
    let parts = (
        u16::try_from(t.year()),
        u8::try_from(t.month()),
        u8::try_from(t.day()),
        u8::try_from(t.hour()),
        u8::try_from(t.minute()),
        u8::try_from(t.second()),
    );
    match parts {
        (Ok(y), Ok(mo), Ok(d), Ok(h), Ok(mi), Ok(s)) => {
            zip::DateTime::from_date_and_time(y, mo, d, h, mi, s).unwrap_or_default()
        }
        _ => zip::DateTime::default(),
    }
}

fn hl7_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}

fn sha1_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(40);
    for b in openssl::sha::sha1(bytes) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// HL7 v2 escapes, for our values placed inside HL7 data types, so a `^` in a street name
/// does not shift the components after it.
fn hl7_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\E\\"),
            '|' => out.push_str("\\F\\"),
            '^' => out.push_str("\\S\\"),
            '&' => out.push_str("\\T\\"),
            '~' => out.push_str("\\R\\"),
            c => out.push(c),
        }
    }
    out
}

/// Our values in METADATA.XML: escaped, line ends and tabs kept as character references.
fn esc(s: &str) -> String {
    xml::escape_keeping_whitespace(s)
}

fn patient_cx(meta: &SubmissionMetadata) -> Option<String> {
    let id = present(&meta.patient_id)?;
    // Already a CX (with its own assigning authority): keep it as the caller built it.
    if id.contains('^') {
        return Some(id.to_owned());
    }
    Some(match present(&meta.assigning_authority) {
        Some(oid) => format!("{}^^^&{}&ISO", hl7_escape(id), hl7_escape(oid)),
        None => hl7_escape(id),
    })
}

fn source_patient_info(meta: &SubmissionMetadata, cx: Option<&str>) -> Vec<String> {
    let comp = |v: &Option<String>| present(v).map(hl7_escape).unwrap_or_default();
    let mut values = Vec::new();
    if let Some(cx) = cx {
        values.push(format!("PID-3|{cx}"));
    }
    if [
        &meta.patient_last,
        &meta.patient_first,
        &meta.patient_middle,
    ]
    .iter()
    .any(|v| present(v).is_some())
    {
        values.push(format!(
            "PID-5|{}^{}^{}",
            comp(&meta.patient_last),
            comp(&meta.patient_first),
            comp(&meta.patient_middle)
        ));
    }
    if let Some(dob) = present(&meta.patient_dob) {
        values.push(format!("PID-7|{}", hl7_escape(dob)));
    }
    if let Some(gender) = present(&meta.patient_gender) {
        values.push(format!("PID-8|{}", hl7_escape(gender)));
    }
    let address = [
        &meta.patient_street1,
        &meta.patient_street2,
        &meta.patient_city,
        &meta.patient_state,
        &meta.patient_zip,
    ];
    if address.iter().any(|v| present(v).is_some()) {
        let parts: Vec<String> = address.iter().map(|v| comp(v)).collect();
        values.push(format!("PID-11|{}", parts.join("^")));
    }
    values
}

fn author_slots(meta: &SubmissionMetadata) -> Vec<(&'static str, Vec<String>)> {
    let mut slots = Vec::new();
    if let Some(p) = present(&meta.author_person) {
        slots.push(("authorPerson", vec![p.to_owned()]));
    }
    if let Some(i) = present(&meta.author_institution) {
        slots.push(("authorInstitution", vec![i.to_owned()]));
    }
    if let Some(t) = present(&meta.author_telecom) {
        slots.push((
            "authorTelecommunication",
            vec![format!("^^Internet^{}", hl7_escape(t))],
        ));
    }
    slots
}

/// Writes ebRIM 3.0 elements into a string, handing out the symbolic ids a submission needs.
struct Rim {
    out: String,
    next_id: usize,
}

impl Rim {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:02}", self.next_id)
    }

    fn slot<S: AsRef<str>>(&mut self, name: &str, values: &[S]) {
        if values.is_empty() {
            return;
        }
        let _ = write!(self.out, "<rim:Slot name=\"{}\"><rim:ValueList>", esc(name));
        for v in values {
            let _ = write!(self.out, "<rim:Value>{}</rim:Value>", esc(v.as_ref()));
        }
        self.out.push_str("</rim:ValueList></rim:Slot>");
    }

    /// `Name` or `Description`, a single localized string.
    fn text(&mut self, element: &str, value: Option<&str>) {
        if let Some(v) = value {
            let _ = write!(
                self.out,
                "<rim:{element}><rim:LocalizedString value=\"{}\"/></rim:{element}>",
                esc(v)
            );
        }
    }

    fn open_classification(&mut self, scheme: &str, object: &str, node: &str) {
        let id = self.id("cl");
        let _ = write!(
            self.out,
            "<rim:Classification id=\"{id}\" classificationScheme=\"{scheme}\" classifiedObject=\"{}\" nodeRepresentation=\"{}\" objectType=\"{OT_CLASSIFICATION}\">",
            esc(object),
            esc(node)
        );
    }

    fn coded(&mut self, scheme: &str, object: &str, code: &str, system: &str, display: &str) {
        self.open_classification(scheme, object, code);
        self.slot("codingScheme", &[system]);
        self.text("Name", Some(display));
        self.out.push_str("</rim:Classification>");
    }

    fn author(&mut self, scheme: &str, object: &str, slots: &[(&str, Vec<String>)]) {
        if slots.is_empty() {
            return;
        }
        self.open_classification(scheme, object, "");
        for (name, values) in slots {
            self.slot(name, values);
        }
        self.out.push_str("</rim:Classification>");
    }

    fn external_id(&mut self, scheme: &str, object: &str, value: &str, name: &str) {
        let id = self.id("ei");
        let _ = write!(
            self.out,
            "<rim:ExternalIdentifier id=\"{id}\" identificationScheme=\"{scheme}\" registryObject=\"{}\" value=\"{}\" objectType=\"{OT_EXTERNAL_ID}\">",
            esc(object),
            esc(value)
        );
        self.text("Name", Some(name));
        self.out.push_str("</rim:ExternalIdentifier>");
    }
}

fn metadata_xml(meta: &SubmissionMetadata, docs: &[XdmDocument], media_types: &[String]) -> String {
    let mut rim = Rim {
        out: String::with_capacity(4096 + docs.len() * 4096),
        next_id: 0,
    };
    let _ = write!(
        rim.out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<lcm:SubmitObjectsRequest xmlns:lcm=\"{NS_LCM}\" xmlns:rim=\"{NS_RIM}\"><rim:RegistryObjectList>"
    );

    let created = hl7_time(meta.submission_time);
    let cx = patient_cx(meta);
    let patient_info = source_patient_info(meta, cx.as_deref());
    let authors = author_slots(meta);
    let loinc =
        present(&meta.loinc_code).map(|code| (code, present(&meta.loinc_name).unwrap_or(code)));
    let set_id = "SubmissionSet01";

    let mut doc_ids = Vec::with_capacity(docs.len());
    for (n, (d, media_type)) in docs.iter().zip(media_types).enumerate() {
        let id = format!("Document{:02}", n + 1);
        let _ = write!(
            rim.out,
            "<rim:ExtrinsicObject id=\"{id}\" mimeType=\"{}\" objectType=\"{STABLE_DOCUMENT}\" status=\"{APPROVED}\">",
            esc(media_type)
        );
        rim.slot("creationTime", &[&created]);
        rim.slot("hash", &[sha1_hex(&d.content)]);
        rim.slot("languageCode", &["en-US"]);
        rim.slot("size", &[d.content.len().to_string()]);
        if let Some(cx) = &cx {
            rim.slot("sourcePatientId", &[cx]);
        }
        rim.slot("sourcePatientInfo", &patient_info);
        rim.slot("URI", &[&d.file_name]);
        rim.text("Name", present(&d.title));
        rim.author(DOC_AUTHOR, &id, &authors);
        if let Some((code, name)) = loinc {
            rim.coded(DOC_CLASS_CODE, &id, code, LOINC, name);
        }
        rim.coded(
            DOC_CONFIDENTIALITY,
            &id,
            "N",
            CONFIDENTIALITY_SYSTEM,
            "Normal",
        );
        rim.coded(
            DOC_FORMAT_CODE,
            &id,
            FORMAT_MIME_SUFFICIENT,
            FORMAT_SYSTEM,
            "mimeType Sufficient",
        );
        rim.coded(DOC_FACILITY_TYPE, &id, "UNK", NULL_FLAVOR_SYSTEM, "Unknown");
        rim.coded(
            DOC_PRACTICE_SETTING,
            &id,
            "UNK",
            NULL_FLAVOR_SYSTEM,
            "Unknown",
        );
        if let Some((code, name)) = loinc {
            rim.coded(DOC_TYPE_CODE, &id, code, LOINC, name);
        }
        if let Some(cx) = &cx {
            rim.external_id(DOC_PATIENT_ID, &id, cx, "XDSDocumentEntry.patientId");
        }
        let unique = format!("{}.{}", meta.unique_id, n + 1);
        rim.external_id(DOC_UNIQUE_ID, &id, &unique, "XDSDocumentEntry.uniqueId");
        rim.out.push_str("</rim:ExtrinsicObject>");
        doc_ids.push(id);
    }

    let _ = write!(
        rim.out,
        "<rim:RegistryPackage id=\"{set_id}\" objectType=\"{OT_PACKAGE}\" status=\"{APPROVED}\">"
    );
    rim.slot("submissionTime", &[&created]);
    let recipients: Vec<String> = meta
        .intended_recipients
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(|r| format!("||^^Internet^{}", hl7_escape(r)))
        .collect();
    rim.slot("intendedRecipient", &recipients);
    rim.text("Name", present(&meta.title));
    rim.text("Description", present(&meta.comments));
    rim.author(SET_AUTHOR, set_id, &authors);
    if let Some((code, name)) = loinc {
        rim.coded(SET_CONTENT_TYPE, set_id, code, LOINC, name);
    }
    rim.external_id(
        SET_UNIQUE_ID,
        set_id,
        &meta.unique_id,
        "XDSSubmissionSet.uniqueId",
    );
    rim.external_id(
        SET_SOURCE_ID,
        set_id,
        &meta.source_id,
        "XDSSubmissionSet.sourceId",
    );
    if let Some(cx) = &cx {
        rim.external_id(SET_PATIENT_ID, set_id, cx, "XDSSubmissionSet.patientId");
    }
    rim.out.push_str("</rim:RegistryPackage>");

    let id = rim.id("cl");
    let _ = write!(
        rim.out,
        "<rim:Classification id=\"{id}\" classifiedObject=\"{set_id}\" classificationNode=\"{SET_NODE}\" objectType=\"{OT_CLASSIFICATION}\"/>"
    );
    for doc_id in &doc_ids {
        let id = rim.id("as");
        let _ = write!(
            rim.out,
            "<rim:Association id=\"{id}\" associationType=\"{HAS_MEMBER}\" sourceObject=\"{set_id}\" targetObject=\"{doc_id}\" objectType=\"{OT_ASSOCIATION}\">"
        );
        rim.slot("SubmissionSetStatus", &["Original"]);
        rim.out.push_str("</rim:Association>");
    }
    rim.out
        .push_str("</rim:RegistryObjectList></lcm:SubmitObjectsRequest>\n");
    rim.out
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for hrefs.
fn href(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn index_htm(meta: &SubmissionMetadata, docs: &[XdmDocument], media_types: &[String]) -> String {
    let heading = present(&meta.title).unwrap_or("IHE XDM package");
    let mut out = String::with_capacity(1024 + docs.len() * 200);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\n\
         <html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n\
         <head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\"/><title>{0}</title></head>\n\
         <body>\n<h1>{0}</h1>\n<p>Created by hisp-gateway on {1}.</p>\n<ul>\n\
         <li><a href=\"{2}\">{2}</a> (about this package)</li>\n\
         <li><a href=\"{3}\">{3}</a> (submission set metadata)</li>\n",
        esc(heading),
        meta.submission_time.format("%Y-%m-%d %H:%M:%S UTC"),
        README_PATH,
        METADATA_PATH,
    );
    for (d, media_type) in docs.iter().zip(media_types) {
        let path = format!("{SUBSET_DIR}{}", d.file_name);
        let label = present(&d.title).unwrap_or(&d.file_name);
        let _ = writeln!(
            out,
            "<li><a href=\"{}\">{}</a> ({})</li>",
            esc(&href(&path)),
            esc(label),
            esc(media_type)
        );
    }
    out.push_str("</ul>\n</body>\n</html>\n");
    out
}

fn readme_txt(meta: &SubmissionMetadata, docs: &[XdmDocument]) -> String {
    // Plain text for people: control characters out, CRLF line ends for every platform.
    let plain = |s: &str| s.chars().filter(|c| !c.is_control()).collect::<String>();
    let mut out = String::new();
    let _ = write!(
        out,
        "IHE XDM package (IHE ITI TF-1 Section 16, Cross-Enterprise Document Media Interchange)\r\n\
         \r\n\
         Created by: hisp-gateway {} (a HISP for Direct Secure Messaging)\r\n\
         Created on: {}\r\n\
         \r\n\
         INDEX.HTM lists the contents; the submission set metadata is in {METADATA_PATH}.\r\n\
         \r\n\
         Documents:\r\n",
        env!("CARGO_PKG_VERSION"),
        meta.submission_time.format("%Y-%m-%d %H:%M:%S UTC"),
    );
    for d in docs {
        let _ = write!(out, "  {SUBSET_DIR}{}", plain(&d.file_name));
        if let Some(t) = present(&d.title) {
            let _ = write!(out, " - {}", plain(t));
        }
        out.push_str("\r\n");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Reading

#[derive(Debug, Clone, Copy)]
struct Limits {
    entries: usize,
    bytes: u64,
}

const LIMITS: Limits = Limits {
    entries: MAX_ENTRIES,
    bytes: MAX_UNCOMPRESSED_BYTES,
};

/// The documents of every submission set in the package, with media type and title from
/// METADATA.XML.
pub fn read_package(zip: &[u8]) -> Result<Vec<XdmDocument>, XdmError> {
    read_package_within(zip, LIMITS)
}

/// The documents as listed by METADATA.XML, for checks: file name (URI), size, SHA-1 hex,
/// mimeType, title.
pub fn read_metadata(zip: &[u8]) -> Result<Vec<ListedDocument>, XdmError> {
    let mut package = Package::open(zip, LIMITS)?;
    let mut listed = Vec::new();
    for subset in package.subsets()? {
        let root = package.metadata(&subset)?;
        listed.extend(listed_documents(&root).into_iter().map(|l| ListedDocument {
            uri: l.uri.unwrap_or_default(),
            size: l.size.unwrap_or_default(),
            hash: l.hash.unwrap_or_default(),
            media_type: l.media_type,
            title: l.title,
        }));
    }
    Ok(listed)
}

fn read_package_within(zip: &[u8], limits: Limits) -> Result<Vec<XdmDocument>, XdmError> {
    let mut package = Package::open(zip, limits)?;
    let mut docs = Vec::new();
    for subset in package.subsets()? {
        let root = package.metadata(&subset)?;
        package.subset_documents(&subset, &listed_documents(&root), &mut docs)?;
    }
    Ok(docs)
}

struct Entry {
    index: usize,
    /// Forward slashes, no leading `./` or `/`, original case.
    name: String,
    lower: String,
}

/// A submission set folder, found through its METADATA.XML.
struct Subset {
    metadata: usize,
    /// The folder, lower case, without a trailing slash (e.g. `ihe_xdm/subset01`).
    folder: String,
}

struct Package<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    entries: Vec<Entry>,
    /// Index into `entries` by lower-case name (the first entry of a name wins).
    by_name: HashMap<String, usize>,
    /// Inflated bytes still allowed.
    budget: u64,
}

impl<'a> Package<'a> {
    fn open(zip: &'a [u8], limits: Limits) -> Result<Self, XdmError> {
        let archive = ZipArchive::new(Cursor::new(zip))?;
        if archive.len() > limits.entries {
            return Err(XdmError::TooManyEntries);
        }
        // The declared sizes can lie, so reads are capped as well; this only refuses early.
        if archive
            .decompressed_size()
            .is_some_and(|n| n > u128::from(limits.bytes))
        {
            return Err(XdmError::TooLarge);
        }
        let mut entries = Vec::with_capacity(archive.len());
        for index in 0..archive.len() {
            let Some(name) = archive.name_for_index(index) else {
                continue;
            };
            let raw = name?.replace('\\', "/");
            let name = raw
                .trim_start_matches("./")
                .trim_start_matches('/')
                .to_owned();
            if name.is_empty() || name.ends_with('/') {
                continue;
            }
            let lower = name.to_lowercase();
            entries.push(Entry { index, name, lower });
        }
        let mut by_name = HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            by_name.entry(e.lower.clone()).or_insert(i);
        }
        Ok(Self {
            archive,
            entries,
            by_name,
            budget: limits.bytes,
        })
    }

    fn subsets(&self) -> Result<Vec<Subset>, XdmError> {
        let subsets: Vec<Subset> = self
            .entries
            .iter()
            .filter_map(|e| {
                subset_folder(&e.lower).map(|folder| Subset {
                    metadata: e.index,
                    folder,
                })
            })
            .collect();
        if subsets.is_empty() {
            return Err(XdmError::NoMetadata);
        }
        Ok(subsets)
    }

    fn read(&mut self, index: usize) -> Result<Vec<u8>, XdmError> {
        let file = self.archive.by_index(index)?;
        // The declared size only sizes the first allocation, and only up to a point: a tiny
        // zip claiming a huge entry should not make us reserve the whole budget up front.
        let hint = file.size().min(self.budget).min(PREALLOCATE_AT_MOST);
        let mut out = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
        file.take(self.budget.saturating_add(1))
            .read_to_end(&mut out)?;
        let used = u64::try_from(out.len()).unwrap_or(u64::MAX);
        if used > self.budget {
            return Err(XdmError::TooLarge);
        }
        self.budget -= used;
        Ok(out)
    }

    fn metadata(&mut self, subset: &Subset) -> Result<Element, XdmError> {
        let bytes = self.read(subset.metadata)?;
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
        Ok(xml::parse(bytes)?)
    }

    /// Index into `entries` of the file a URI slot names, trying the layouts seen in practice:
    /// inside the folder, glued to the folder name without a slash, or relative to the root.
    fn resolve(&self, folder: &str, uri: &str, claimed: &HashSet<usize>) -> Option<usize> {
        let uri = uri.trim().replace('\\', "/");
        let uri = uri
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_lowercase();
        if uri.is_empty() {
            return None;
        }
        let candidates = [format!("{folder}/{uri}"), format!("{folder}{uri}"), uri];
        candidates.iter().find_map(|c| {
            self.by_name
                .get(c)
                .copied()
                .filter(|i| !claimed.contains(i))
        })
    }

    fn subset_documents(
        &mut self,
        subset: &Subset,
        listed: &[Listed],
        docs: &mut Vec<XdmDocument>,
    ) -> Result<(), XdmError> {
        // A listing of more documents than a package may hold files is not an XDM package.
        if listed.len() > MAX_ENTRIES {
            return Err(XdmError::TooManyEntries);
        }
        let mut claimed: HashSet<usize> = HashSet::new();
        let mut unresolved: Vec<&Listed> = Vec::new();
        for l in listed {
            match l
                .uri
                .as_deref()
                .and_then(|u| self.resolve(&subset.folder, u, &claimed))
            {
                Some(i) => {
                    claimed.insert(i);
                    let content = self.read(self.entries[i].index)?;
                    // The URI is the name the sender gave the document; the entry name may
                    // carry a glued folder prefix.
                    let name = l.uri.as_deref().unwrap_or(&self.entries[i].name);
                    docs.push(document(
                        name,
                        l.media_type.clone(),
                        l.title.clone(),
                        content,
                    ));
                }
                None => unresolved.push(l),
            }
        }
        if unresolved.is_empty() && !listed.is_empty() {
            return Ok(());
        }

        // METADATA.XML left some documents without a usable URI: every other file in the folder
        // is taken as a document, matched to a listing by hash where possible.
        let glued = subset.folder.clone();
        let slashed = format!("{glued}/");
        let leftovers: Vec<usize> = (0..self.entries.len())
            .filter(|i| !claimed.contains(i))
            .filter(|&i| {
                let e = &self.entries[i];
                e.index != subset.metadata
                    && subset_folder(&e.lower).is_none()
                    && (e.lower.starts_with(&slashed)
                        || e.lower
                            .strip_prefix(&glued)
                            .is_some_and(|rest| !rest.contains('/')))
            })
            .collect();
        let mut found = Vec::with_capacity(leftovers.len());
        for i in leftovers {
            let content = self.read(self.entries[i].index)?;
            found.push((i, content));
        }
        // Unresolved listings by hash, each taken once, in listing order.
        let mut by_hash: HashMap<&str, VecDeque<usize>> = HashMap::new();
        for (k, l) in unresolved.iter().enumerate() {
            if let Some(h) = l.hash.as_deref() {
                by_hash.entry(h).or_default().push_back(k);
            }
        }
        let mut taken = vec![false; unresolved.len()];
        let mut unmatched_files = Vec::new();
        for (i, content) in found {
            let hash = sha1_hex(&content);
            match by_hash.get_mut(hash.as_str()).and_then(|q| q.pop_front()) {
                Some(k) => {
                    taken[k] = true;
                    let l = unresolved[k];
                    let name = self.name_in_folder(i, subset);
                    docs.push(document(
                        name,
                        l.media_type.clone(),
                        l.title.clone(),
                        content,
                    ));
                }
                None => unmatched_files.push((i, content)),
            }
        }
        let unresolved: Vec<&Listed> = unresolved
            .into_iter()
            .zip(taken)
            .filter_map(|(l, t)| (!t).then_some(l))
            .collect();
        // Same count left on both sides: most likely the same documents in the same order.
        let pair = unresolved.len() == unmatched_files.len();
        for (k, (i, content)) in unmatched_files.into_iter().enumerate() {
            let name = self.name_in_folder(i, subset);
            let (media_type, title) = match unresolved.get(k) {
                Some(l) if pair => (l.media_type.clone(), l.title.clone()),
                _ => (guess_media_type(name).to_owned(), None),
            };
            docs.push(document(name, media_type, title, content));
        }
        Ok(())
    }

    /// The entry's name below the subset folder, whether or not a slash separates the two.
    fn name_in_folder(&self, i: usize, subset: &Subset) -> &str {
        let e = &self.entries[i];
        let folder_len = subset.folder.len();
        let rest = if e.lower.len() == e.name.len() {
            e.name.get(folder_len..)
        } else {
            None
        };
        match rest.map(|r| r.trim_start_matches('/')) {
            Some(r) if !r.is_empty() => r,
            _ => &e.name,
        }
    }
}

/// The folder (lower case, no trailing slash) whose METADATA.XML this entry is, if it is one:
/// `ihe_xdm/<set>/metadata.xml`, `<set>/metadata.xml`, or the slash-less
/// `ihe_xdm/subset01metadata.xml` some implementations write.
fn subset_folder(lower: &str) -> Option<String> {
    let prefix = lower.strip_suffix("metadata.xml")?;
    let (folder, slashed) = match prefix.strip_suffix('/') {
        Some(f) => (f, true),
        None => (prefix, false),
    };
    let set = folder.strip_prefix("ihe_xdm/").unwrap_or(folder);
    let ok = !set.is_empty() && !set.contains('/') && (slashed || set.starts_with("subset"));
    ok.then(|| folder.to_owned())
}

fn document(
    entry_name: &str,
    media_type: String,
    title: Option<String>,
    content: Vec<u8>,
) -> XdmDocument {
    XdmDocument {
        file_name: safe_base_name(entry_name),
        media_type,
        title,
        content,
    }
}

/// The last path component, without control characters: callers may well use it as a file
/// name.
fn safe_base_name(entry_name: &str) -> String {
    let base: String = entry_name
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control() && *c != '\\')
        .collect();
    let base = base.trim();
    if base.is_empty() || base.chars().all(|c| c == '.') {
        "document".to_owned()
    } else {
        base.to_owned()
    }
}

fn guess_media_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "xml" => "text/xml",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "htm" | "html" => "text/html",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "tif" | "tiff" => "image/tiff",
        "rtf" => "text/rtf",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// One ExtrinsicObject as read, before any file is matched to it.
struct Listed {
    uri: Option<String>,
    size: Option<u64>,
    hash: Option<String>,
    media_type: String,
    title: Option<String>,
}

fn listed_documents(root: &Element) -> Vec<Listed> {
    let mut objects = Vec::new();
    collect_named(root, "ExtrinsicObject", &mut objects);
    objects
        .into_iter()
        .map(|eo| Listed {
            uri: uri_slot(&slot_values(eo, "URI")),
            size: slot_values(eo, "size").first().and_then(|s| s.parse().ok()),
            hash: slot_values(eo, "hash")
                .into_iter()
                .next()
                .map(|h| h.to_ascii_lowercase()),
            media_type: eo
                .attr("mimeType")
                .and_then(normalized_media_type)
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            title: eo
                .child("Name")
                .and_then(|n| n.child("LocalizedString"))
                .and_then(|s| s.attr("value"))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        })
        .collect()
}

fn collect_named<'e>(el: &'e Element, name: &str, out: &mut Vec<&'e Element>) {
    for child in &el.children {
        if child.name == name {
            out.push(child);
        } else {
            collect_named(child, name, out);
        }
    }
}

/// Trimmed, non-empty values of the slot with this name (compared ignoring case, as some
/// writers spell `URI` as `uri`).
fn slot_values(eo: &Element, name: &str) -> Vec<String> {
    eo.children_named("Slot")
        .filter(|s| s.attr("name").is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .flat_map(|s| s.children_named("ValueList"))
        .flat_map(|vl| vl.children_named("Value"))
        .map(|v| v.text.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// XDS splits URIs longer than a slot value may be into `1|…`, `2|…` pieces.
fn uri_slot(values: &[String]) -> Option<String> {
    if values.len() < 2 {
        return values.first().cloned();
    }
    let mut pieces: Vec<(u32, &str)> = Vec::with_capacity(values.len());
    for v in values {
        let (n, piece) = v.split_once('|')?;
        pieces.push((n.trim().parse().ok()?, piece));
    }
    pieces.sort_by_key(|(n, _)| *n);
    Some(pieces.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use openssl::hash::{MessageDigest, hash};

    fn time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9)
            .single()
            .expect("valid time")
    }

    fn meta() -> SubmissionMetadata {
        SubmissionMetadata {
            title: Some("Referral <urgent> & more".into()),
            comments: Some("Line one\nLine two".into()),
            author_person: Some("^Who^Doctor".into()),
            author_institution: Some("Some Hospital^^^^^^^^^2.999.1.2.3".into()),
            author_telecom: Some("who@direct.example.org".into()),
            intended_recipients: vec![
                "bob@direct.other.example".into(),
                "carol@direct.other.example".into(),
            ],
            patient_id: Some("12345".into()),
            assigning_authority: Some("2.999.1.2.3.4".into()),
            patient_first: Some("Jane".into()),
            patient_last: Some("Doe^Smith".into()),
            patient_dob: Some("19800102".into()),
            patient_gender: Some("F".into()),
            patient_street1: Some("1 Main St".into()),
            patient_city: Some("Springfield".into()),
            patient_state: Some("IL".into()),
            patient_zip: Some("62701".into()),
            loinc_code: Some("57133-1".into()),
            loinc_name: Some("Referral Note".into()),
            ..SubmissionMetadata::new(time(), "2.999.7.7", "2.25.1234567890")
        }
    }

    fn docs() -> Vec<XdmDocument> {
        vec![
            XdmDocument {
                file_name: "ccda summary.xml".into(),
                media_type: "text/xml".into(),
                title: Some("Summary \"of\" care".into()),
                content: b"<ClinicalDocument>\r\n  caf\xc3\xa9\n</ClinicalDocument>".to_vec(),
            },
            XdmDocument {
                file_name: "scan.bin".into(),
                media_type: "Application/Octet-Stream".into(),
                title: None,
                content: (0..=255u8).cycle().take(70_000).collect(),
            },
        ]
    }

    fn sha1_independently(bytes: &[u8]) -> String {
        let digest = hash(MessageDigest::sha1(), bytes).expect("sha1");
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn zipped(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let options = SimpleFileOptions::default();
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in entries {
            zip.start_file(*name, options).expect("start");
            zip.write_all(bytes).expect("write");
        }
        zip.finish().expect("finish").into_inner()
    }

    fn entry_bytes(archive: &mut ZipArchive<Cursor<&[u8]>>, name: &str) -> Vec<u8> {
        let mut file = archive.by_name(name).expect(name);
        let mut out = Vec::new();
        file.read_to_end(&mut out).expect("read");
        out
    }

    #[test]
    fn package_layout_and_metadata_match_the_zipped_bytes() {
        let zip = build_package(&meta(), &docs()).expect("build");
        let mut archive = ZipArchive::new(Cursor::new(zip.as_slice())).expect("zip");

        for dir in ["IHE_XDM/", "IHE_XDM/SUBSET01/"] {
            let entry = archive.by_name(dir).expect(dir);
            assert!(entry.is_dir(), "{dir}");
        }
        let index = String::from_utf8(entry_bytes(&mut archive, "INDEX.HTM")).expect("utf-8");
        assert!(index.contains("href=\"README.TXT\""), "{index}");
        assert!(
            index.contains("href=\"IHE_XDM/SUBSET01/METADATA.XML\""),
            "{index}"
        );
        assert!(
            index.contains("href=\"IHE_XDM/SUBSET01/ccda%20summary.xml\""),
            "{index}"
        );
        let readme = String::from_utf8(entry_bytes(&mut archive, "README.TXT")).expect("utf-8");
        assert!(readme.contains("hisp-gateway"), "{readme}");
        assert!(readme.contains("2024-05-06"), "{readme}");

        let listed = read_metadata(&zip).expect("metadata");
        assert_eq!(listed.len(), 2);
        for (d, l) in docs().iter().zip(&listed) {
            let stored = entry_bytes(&mut archive, &format!("IHE_XDM/SUBSET01/{}", d.file_name));
            assert_eq!(l.uri, d.file_name);
            assert_eq!(l.size, stored.len() as u64);
            assert_eq!(l.hash, sha1_independently(&stored));
            assert_eq!(l.media_type, d.media_type.to_ascii_lowercase());
            assert_eq!(l.title, d.title);
        }

        let raw = entry_bytes(&mut archive, "IHE_XDM/SUBSET01/METADATA.XML");
        let root = xml::parse(&raw).expect("metadata parses");
        assert_eq!(
            (root.ns.as_str(), root.name.as_str()),
            (NS_LCM, "SubmitObjectsRequest")
        );
        let list = root.child("RegistryObjectList").expect("object list");
        assert_eq!(list.ns, NS_RIM);
        let eos: Vec<_> = list.children_named("ExtrinsicObject").collect();
        assert_eq!(eos.len(), 2);
        assert_eq!(eos[0].attr("id"), Some("Document01"));
        assert_eq!(eos[0].attr("objectType"), Some(STABLE_DOCUMENT));
        assert_eq!(slot_values(eos[0], "creationTime"), ["20240506070809"]);
        assert_eq!(
            slot_values(eos[0], "sourcePatientId"),
            ["12345^^^&2.999.1.2.3.4&ISO"]
        );
        assert_eq!(
            slot_values(eos[0], "sourcePatientInfo"),
            [
                "PID-3|12345^^^&2.999.1.2.3.4&ISO",
                "PID-5|Doe\\S\\Smith^Jane^",
                "PID-7|19800102",
                "PID-8|F",
                "PID-11|1 Main St^^Springfield^IL^62701",
            ]
        );
        let unique_ids: Vec<_> = eos
            .iter()
            .flat_map(|eo| eo.children_named("ExternalIdentifier"))
            .filter(|e| e.attr("identificationScheme") == Some(DOC_UNIQUE_ID))
            .filter_map(|e| e.attr("value"))
            .collect();
        assert_eq!(unique_ids, ["2.25.1234567890.1", "2.25.1234567890.2"]);
        let type_code = eos[0]
            .children_named("Classification")
            .find(|c| c.attr("classificationScheme") == Some(DOC_TYPE_CODE))
            .expect("typeCode");
        assert_eq!(type_code.attr("nodeRepresentation"), Some("57133-1"));
        assert_eq!(slot_values(type_code, "codingScheme"), [LOINC]);

        let set = list.child("RegistryPackage").expect("submission set");
        assert_eq!(set.attr("id"), Some("SubmissionSet01"));
        assert_eq!(
            slot_values(set, "intendedRecipient"),
            [
                "||^^Internet^bob@direct.other.example",
                "||^^Internet^carol@direct.other.example"
            ]
        );
        let description = set
            .child("Description")
            .and_then(|d| d.child("LocalizedString"))
            .and_then(|s| s.attr("value"));
        assert_eq!(description, Some("Line one\nLine two"));
        let name = set
            .child("Name")
            .and_then(|d| d.child("LocalizedString"))
            .and_then(|s| s.attr("value"));
        assert_eq!(name, Some("Referral <urgent> & more"));
        let schemes: Vec<_> = set
            .children_named("ExternalIdentifier")
            .filter_map(|e| e.attr("identificationScheme"))
            .collect();
        assert_eq!(schemes, [SET_UNIQUE_ID, SET_SOURCE_ID, SET_PATIENT_ID]);
        assert!(
            set.children_named("Classification")
                .any(|c| c.attr("classificationScheme") == Some(SET_CONTENT_TYPE))
        );
        assert!(
            list.children_named("Classification")
                .any(|c| c.attr("classificationNode") == Some(SET_NODE)
                    && c.attr("classifiedObject") == Some("SubmissionSet01"))
        );
        let associations: Vec<_> = list.children_named("Association").collect();
        assert_eq!(associations.len(), 2);
        assert_eq!(associations[1].attr("targetObject"), Some("Document02"));
        assert_eq!(
            slot_values(associations[0], "SubmissionSetStatus"),
            ["Original"]
        );
    }

    #[test]
    fn read_package_round_trips_documents() {
        let zip = build_package(&meta(), &docs()).expect("build");
        let back = read_package(&zip).expect("read");
        let mut expected = docs();
        expected[1].media_type = "application/octet-stream".into();
        assert_eq!(back, expected);
    }

    #[test]
    fn minimal_metadata_stays_well_formed() {
        let meta = SubmissionMetadata::new(time(), "2.999.7.7", "2.25.1");
        let zip = build_package(&meta, &docs()[..1]).expect("build");
        let mut archive = ZipArchive::new(Cursor::new(zip.as_slice())).expect("zip");
        let raw = entry_bytes(&mut archive, METADATA_PATH);
        let root = xml::parse(&raw).expect("metadata parses");
        let list = root.child("RegistryObjectList").expect("object list");
        let eo = list.child("ExtrinsicObject").expect("document");
        assert!(slot_values(eo, "sourcePatientId").is_empty());
        assert!(slot_values(eo, "sourcePatientInfo").is_empty());
        assert!(
            !eo.children_named("ExternalIdentifier")
                .any(|e| e.attr("identificationScheme") == Some(DOC_PATIENT_ID))
        );
        assert_eq!(read_package(&zip).expect("read"), docs()[..1].to_vec());
    }

    fn metadata_for(entries: &[(&str, &str, &str, Option<&str>)]) -> String {
        // (uri, mimeType, title, hash)
        let mut out = format!(
            "<?xml version=\"1.0\"?><lcm:SubmitObjectsRequest xmlns:lcm=\"{NS_LCM}\" xmlns:rim=\"{NS_RIM}\"><rim:RegistryObjectList>"
        );
        for (uri, media, title, hash) in entries {
            out.push_str(&format!(
                "<rim:ExtrinsicObject id=\"d\" mimeType=\"{media}\">"
            ));
            if !uri.is_empty() {
                out.push_str(&format!(
                    "<rim:Slot name=\"uri\"><rim:ValueList><rim:Value>{uri}</rim:Value></rim:ValueList></rim:Slot>"
                ));
            }
            if let Some(h) = hash {
                out.push_str(&format!(
                    "<rim:Slot name=\"hash\"><rim:ValueList><rim:Value>{h}</rim:Value></rim:ValueList></rim:Slot>"
                ));
            }
            out.push_str(&format!(
                "<rim:Name><rim:LocalizedString value=\"{title}\"/></rim:Name></rim:ExtrinsicObject>"
            ));
        }
        out.push_str("</rim:RegistryObjectList></lcm:SubmitObjectsRequest>");
        out
    }

    #[test]
    fn reads_case_variants_and_the_slashless_layout() {
        let metadata = metadata_for(&[
            ("DOC0001.XML", "text/xml", "First", None),
            ("report.pdf", "application/pdf; x=1", "Second", None),
        ]);
        let zip = zipped(&[
            ("INDEX.htm", b"<html/>"),
            ("README.txt", b"readme"),
            ("IHE_XDM/SUBSET01METADATA.xml", metadata.as_bytes()),
            ("IHE_XDM/SUBSET01/doc0001.xml", b"<doc/>"),
            ("IHE_XDM/SUBSET01REPORT.PDF", b"%PDF"),
        ]);
        let docs = read_package(&zip).expect("read");
        assert_eq!(docs.len(), 2);
        // The name the sender listed, not the entry's own spelling.
        assert_eq!(docs[0].file_name, "DOC0001.XML");
        assert_eq!(docs[0].media_type, "text/xml");
        assert_eq!(docs[0].title.as_deref(), Some("First"));
        assert_eq!(docs[0].content, b"<doc/>");
        assert_eq!(docs[1].file_name, "report.pdf");
        assert_eq!(docs[1].media_type, "application/pdf");
        assert_eq!(docs[1].content, b"%PDF");

        let metadata = metadata_for(&[("a.txt", "text/plain", "A", None)]);
        let zip = zipped(&[
            ("ihe_xdm\\subset01\\Metadata.XML", metadata.as_bytes()),
            ("ihe_xdm\\subset01\\A.TXT", b"a"),
        ]);
        let docs = read_package(&zip).expect("read");
        assert_eq!(docs.len(), 1);
        assert_eq!(
            (docs[0].file_name.as_str(), docs[0].content.as_slice()),
            ("a.txt", &b"a"[..])
        );
    }

    #[test]
    fn missing_uri_falls_back_to_the_folder_files() {
        let pdf = b"%PDF-1.4 body".to_vec();
        let metadata = metadata_for(&[
            (
                "",
                "application/pdf",
                "By hash",
                Some(&sha1_independently(&pdf)),
            ),
            ("", "text/xml", "Leftover", None),
        ]);
        let zip = zipped(&[
            ("IHE_XDM/SUBSET01/METADATA.XML", metadata.as_bytes()),
            ("IHE_XDM/SUBSET01/DOC2.XML", b"<x/>"),
            ("IHE_XDM/SUBSET01/DOC1.PDF", &pdf),
            ("README.TXT", b"not a document"),
        ]);
        let docs = read_package(&zip).expect("read");
        assert_eq!(docs.len(), 2, "{docs:?}");
        let pdf_doc = docs
            .iter()
            .find(|d| d.file_name == "DOC1.PDF")
            .expect("pdf");
        assert_eq!(pdf_doc.media_type, "application/pdf");
        assert_eq!(pdf_doc.title.as_deref(), Some("By hash"));
        assert_eq!(pdf_doc.content, pdf);
        let xml_doc = docs
            .iter()
            .find(|d| d.file_name == "DOC2.XML")
            .expect("xml");
        assert_eq!(xml_doc.media_type, "text/xml");
        assert_eq!(xml_doc.title.as_deref(), Some("Leftover"));

        let listed = read_metadata(&zip).expect("listed");
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].uri, "");
        assert_eq!(listed[0].size, 0);
    }

    #[test]
    fn package_without_metadata_is_refused() {
        let zip = zipped(&[("IHE_XDM/SUBSET01/a.txt", b"a"), ("README.TXT", b"r")]);
        assert!(matches!(read_package(&zip), Err(XdmError::NoMetadata)));
        assert!(matches!(read_package(b"not a zip"), Err(XdmError::Zip(_))));
    }

    #[test]
    fn entry_and_size_limits_are_enforced() {
        let names: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("f{i}")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        assert!(matches!(
            read_package(&zipped(&entries)),
            Err(XdmError::TooManyEntries)
        ));

        let zip = build_package(&meta(), &docs()).expect("build");
        let small = Limits {
            entries: MAX_ENTRIES,
            bytes: 10_000,
        };
        assert!(matches!(
            read_package_within(&zip, small),
            Err(XdmError::TooLarge)
        ));
        assert!(read_package_within(&zip, LIMITS).is_ok());
    }

    #[test]
    fn unsafe_or_duplicate_file_names_are_refused() {
        for name in [
            "",
            " ",
            "../etc/passwd",
            "a/b.xml",
            "a\\b.xml",
            "..",
            ".",
            "a..b",
            "nul\0.xml",
            "line\nbreak.xml",
            "c:evil.xml",
            " lead.xml",
        ] {
            let mut d = docs();
            d[0].file_name = name.into();
            assert!(
                matches!(build_package(&meta(), &d), Err(XdmError::UnsafeFileName(_))),
                "{name:?}"
            );
        }
        let mut d = docs();
        d[1].file_name = "CCDA SUMMARY.XML".into();
        assert!(matches!(
            build_package(&meta(), &d),
            Err(XdmError::DuplicateFileName(_))
        ));
        let mut d = docs();
        d[0].file_name = "metadata.xml".into();
        assert!(matches!(
            build_package(&meta(), &d),
            Err(XdmError::DuplicateFileName(_))
        ));
        let mut d = docs();
        d[0].media_type = "xml".into();
        assert!(matches!(
            build_package(&meta(), &d),
            Err(XdmError::MediaType(_))
        ));
        assert!(matches!(
            build_package(&meta(), &[]),
            Err(XdmError::NoDocuments)
        ));
        let bad_oid = SubmissionMetadata {
            unique_id: "2.25.x".into(),
            ..meta()
        };
        assert!(matches!(
            build_package(&bad_oid, &docs()),
            Err(XdmError::NotAnOid { .. })
        ));
    }

    #[test]
    fn received_names_are_reduced_to_safe_base_names() {
        assert_eq!(safe_base_name("IHE_XDM/SUBSET01/../../x.xml"), "x.xml");
        assert_eq!(safe_base_name("IHE_XDM/SUBSET01/.."), "document");
        assert_eq!(safe_base_name("a/b\u{7}c.pdf"), "bc.pdf");
        assert_eq!(oid_from_uuid(uuid::Uuid::from_u128(42)), "2.25.42");
    }

    fn fuzz_seed_metadata() -> Vec<u8> {
        let zip = build_package(&meta(), &docs()[..1]).expect("build");
        let mut archive = ZipArchive::new(Cursor::new(zip.as_slice())).expect("zip");
        entry_bytes(&mut archive, "IHE_XDM/SUBSET01/METADATA.XML")
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzzing::config())]

        /// Damaged zips: an error or documents, never a panic.
        #[test]
        fn fuzz_xdm_packages_never_panic(zip in crate::fuzzing::mutated(vec![
            build_package(&meta(), &docs()[..1]).expect("build"),
            zipped(&[("IHE_XDM/SUBSET01METADATA.xml", &fuzz_seed_metadata()), ("IHE_XDM/SUBSET01/a.xml", b"<a/>")]),
        ])) {
            let _ = read_package(&zip);
            let _ = read_metadata(&zip);
        }

        /// Sound zips whose METADATA.XML and entry names are damaged: the reader's own logic.
        #[test]
        fn fuzz_xdm_metadata_never_panics(
            metadata in crate::fuzzing::mutated(vec![fuzz_seed_metadata()]),
            name in crate::fuzzing::mutated(vec![b"IHE_XDM/SUBSET01/ccda summary.xml".to_vec()]),
        ) {
            let name = String::from_utf8_lossy(&name).into_owned();
            let zip = zipped(&[
                ("IHE_XDM/SUBSET01/METADATA.XML", metadata.as_slice()),
                (name.as_str(), b"<ClinicalDocument/>".as_slice()),
            ]);
            let _ = read_package(&zip);
            let _ = read_metadata(&zip);
        }
    }
}
