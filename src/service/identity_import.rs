//! Bulk import of verified identities from CSV files: all rows valid, or nothing written.
//!
//! Organizations file columns (header row required, any order):
//!   certified_id, name, tax_id, state, npi (optional), address_line1,
//!   address_line2 (optional), city, zip, healthcare_provider, verified_at
//! Individuals file columns:
//!   idp_id, first_name, last_name, date_of_birth, ssn_last4, verified_at, npi (optional;
//!   10 digits with the NPI check digit)

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;

use chrono::Utc;
use sqlx::PgPool;

use super::Actor;
use crate::auth::secrets::keyed_hash;
use crate::domain::Invalid;
use crate::domain::identity::*;
use crate::error::AppError;
use crate::store::{self, audit::AuditEntry};

pub const ORGANIZATION_COLUMNS: [&str; 11] = [
    "certified_id",
    "name",
    "tax_id",
    "state",
    "npi",
    "address_line1",
    "address_line2",
    "city",
    "zip",
    "healthcare_provider",
    "verified_at",
];
const ORGANIZATION_OPTIONAL: [&str; 2] = ["npi", "address_line2"];

pub const INDIVIDUAL_COLUMNS: [&str; 7] = [
    "idp_id",
    "first_name",
    "last_name",
    "date_of_birth",
    "ssn_last4",
    "verified_at",
    "npi",
];
const INDIVIDUAL_OPTIONAL: [&str; 1] = ["npi"];

/// Problems reported at most per file: past that, a file is wrong throughout and a longer list
/// helps nobody (and would grow with the file).
pub const MAX_REPORTED: usize = 1000;
/// Columns a header may have: ours, with room for mistakes, not a million.
const MAX_COLUMNS: usize = 64;

/// The purpose string of the SSN keyed hash: matching code must use the same.
pub const SSN_HASH_PURPOSE: &str = "ssn-last4";

/// One bad cell (or header), located for the person fixing the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: line {}: {}: {}",
            self.file, self.line, self.field, self.message
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} bad row(s); nothing was imported", .0.len())]
    Rows(Vec<RowError>),
    #[error(transparent)]
    Failed(#[from] AppError),
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub organizations: usize,
    pub individuals: usize,
}

/// A CSV reader that knows where each column is and reports cells by line.
struct Sheet<R: Read> {
    file: String,
    reader: csv::Reader<R>,
    columns: HashMap<String, usize>,
}

impl<R: Read> Sheet<R> {
    fn open(
        file: &str,
        input: R,
        known: &[&str],
        optional: &[&str],
    ) -> Result<Self, Vec<RowError>> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(false)
            .from_reader(input);
        let header_error = |field: &str, message: String| RowError {
            file: file.to_owned(),
            line: 1,
            field: field.to_owned(),
            message,
        };
        let headers = reader
            .headers()
            .map_err(|e| vec![header_error("header", e.to_string())])?
            .clone();
        if headers.len() > MAX_COLUMNS {
            return Err(vec![header_error(
                "header",
                format!(
                    "{} columns; a file has at most {MAX_COLUMNS}",
                    headers.len()
                ),
            )]);
        }
        let mut columns = HashMap::new();
        let mut errors = Vec::new();
        for (i, h) in headers.iter().enumerate() {
            let h = h.to_ascii_lowercase();
            if !known.contains(&h.as_str()) {
                errors.push(header_error(
                    &h,
                    format!("unknown column; expected {}", known.join(", ")),
                ));
            } else if columns.insert(h.clone(), i).is_some() {
                errors.push(header_error(&h, "column appears twice".into()));
            }
        }
        for k in known
            .iter()
            .filter(|k| !optional.contains(k) && !columns.contains_key(**k))
        {
            errors.push(header_error(k, "required column is missing".into()));
        }
        if errors.is_empty() {
            Ok(Self {
                file: file.to_owned(),
                reader,
                columns,
            })
        } else {
            Err(errors)
        }
    }

    /// Applies `parse` to each data row, collecting every error rather than stopping at one.
    fn rows<T>(
        mut self,
        mut parse: impl FnMut(&Cells<'_>) -> Result<T, Invalid>,
    ) -> (Vec<(u64, T)>, Vec<RowError>) {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for record in self.reader.records() {
            if errors.len() >= MAX_REPORTED {
                errors.push(RowError {
                    file: self.file.clone(),
                    line: record
                        .as_ref()
                        .ok()
                        .and_then(|r| r.position())
                        .map_or(0, |p| p.line()),
                    field: "file".into(),
                    message: format!("more than {MAX_REPORTED} problems; reading stopped here"),
                });
                break;
            }
            match record {
                Ok(rec) => {
                    let line = rec.position().map_or(0, |p| p.line());
                    let cells = Cells {
                        rec: &rec,
                        columns: &self.columns,
                    };
                    match parse(&cells) {
                        Ok(v) => out.push((line, v)),
                        Err(e) => errors.push(RowError {
                            file: self.file.clone(),
                            line,
                            field: e.field.to_owned(),
                            message: e.message,
                        }),
                    }
                }
                Err(e) => errors.push(RowError {
                    file: self.file.clone(),
                    line: e.position().map_or(0, |p| p.line()),
                    field: "row".into(),
                    message: e.to_string(),
                }),
            }
        }
        (out, errors)
    }
}

struct Cells<'a> {
    rec: &'a csv::StringRecord,
    columns: &'a HashMap<String, usize>,
}

impl Cells<'_> {
    fn get(&self, column: &str) -> &str {
        self.columns
            .get(column)
            .and_then(|i| self.rec.get(*i))
            .unwrap_or("")
    }
    fn optional(&self, column: &str) -> Option<&str> {
        Some(self.get(column)).filter(|s| !s.is_empty())
    }
}

pub fn parse_organizations(
    file: &str,
    input: impl Read,
) -> Result<Vec<VerifiedOrganization>, Vec<RowError>> {
    let now = Utc::now();
    let sheet = Sheet::open(file, input, &ORGANIZATION_COLUMNS, &ORGANIZATION_OPTIONAL)?;
    let (rows, errors) = sheet.rows(|c| {
        Ok(VerifiedOrganization {
            certified_id: CertifiedId::parse(c.get("certified_id"))?,
            name: parse_text("name", c.get("name"), 200)?,
            tax_id: TaxId::parse(c.get("tax_id"))?,
            state: UsState::parse(c.get("state"))?,
            npi: c.optional("npi").map(Npi::parse).transpose()?,
            address_line1: parse_text("address_line1", c.get("address_line1"), 200)?,
            address_line2: c
                .optional("address_line2")
                .map(|s| parse_text("address_line2", s, 200))
                .transpose()?,
            city: parse_text("city", c.get("city"), 100)?,
            zip: Zip::parse(c.get("zip"))?,
            healthcare_provider: parse_bool("healthcare_provider", c.get("healthcare_provider"))?,
            verified_at: parse_verified_at(c.get("verified_at"), now)?,
        })
    });
    unique(file, rows, errors, "certified_id", |o| o.certified_id.get())
}

pub fn parse_individuals(
    file: &str,
    input: impl Read,
) -> Result<Vec<VerifiedIndividual>, Vec<RowError>> {
    let now = Utc::now();
    let sheet = Sheet::open(file, input, &INDIVIDUAL_COLUMNS, &INDIVIDUAL_OPTIONAL)?;
    let (rows, errors) = sheet.rows(|c| {
        Ok(VerifiedIndividual {
            idp_id: IdpId::parse(c.get("idp_id"))?,
            first_name: parse_text("first_name", c.get("first_name"), 100)?,
            last_name: parse_text("last_name", c.get("last_name"), 100)?,
            date_of_birth: parse_date_of_birth(c.get("date_of_birth"), now.date_naive())?,
            ssn_last4: SsnLast4::parse(c.get("ssn_last4"))?,
            verified_at: parse_verified_at(c.get("verified_at"), now)?,
            npi: c.optional("npi").map(Npi::parse).transpose()?,
        })
    });
    unique(file, rows, errors, "idp_id", |i| i.idp_id.get())
}

/// An id twice in one file is almost always a mistake in the export; refuse rather than guess.
fn unique<T>(
    file: &str,
    rows: Vec<(u64, T)>,
    mut errors: Vec<RowError>,
    field: &str,
    id: impl Fn(&T) -> i64,
) -> Result<Vec<T>, Vec<RowError>> {
    let mut seen = HashSet::new();
    for (line, row) in &rows {
        if !seen.insert(id(row)) {
            errors.push(RowError {
                file: file.to_owned(),
                line: *line,
                field: field.to_owned(),
                message: format!("{} appears more than once in this file", id(row)),
            });
        }
    }
    if errors.is_empty() {
        Ok(rows.into_iter().map(|(_, r)| r).collect())
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

/// Writes all identities in one transaction, with one audit record per identity.
pub async fn import(
    db: &PgPool,
    organizations: &[VerifiedOrganization],
    individuals: &[VerifiedIndividual],
    identity_key: &[u8],
    actor: &Actor,
) -> Result<ImportSummary, AppError> {
    let mut tx = db.begin().await?;
    for o in organizations {
        store::identities::upsert_organization(&mut tx, o).await?;
        let id = o.certified_id.get().to_string();
        store::audit::record(&mut tx, entry(actor, "verified_organization", &id)).await?;
    }
    for i in individuals {
        let hash = keyed_hash(identity_key, SSN_HASH_PURPOSE, i.ssn_last4.digits());
        store::identities::upsert_individual(&mut tx, i, &hash).await?;
        let id = i.idp_id.get().to_string();
        store::audit::record(&mut tx, entry(actor, "verified_individual", &id)).await?;
    }
    tx.commit().await?;
    Ok(ImportSummary {
        organizations: organizations.len(),
        individuals: individuals.len(),
    })
}

fn entry<'a>(actor: &'a Actor, object_type: &'a str, object_id: &'a str) -> AuditEntry<'a> {
    AuditEntry {
        actor: &actor.name,
        action: "identity.import",
        object_type,
        object_id,
        request_id: actor.request_id.as_deref(),
    }
}

/// Parses both files completely (reporting every bad row of both) before writing anything.
pub async fn import_readers(
    db: &PgPool,
    organizations: Option<(String, Box<dyn Read + Send>)>,
    individuals: Option<(String, Box<dyn Read + Send>)>,
    identity_key: &[u8],
    actor: &Actor,
) -> Result<ImportSummary, ImportError> {
    let mut errors = Vec::new();
    let orgs = match organizations {
        Some((name, r)) => parse_organizations(&name, r).unwrap_or_else(|e| {
            errors.extend(e);
            Vec::new()
        }),
        None => Vec::new(),
    };
    let inds = match individuals {
        Some((name, r)) => parse_individuals(&name, r).unwrap_or_else(|e| {
            errors.extend(e);
            Vec::new()
        }),
        None => Vec::new(),
    };
    if !errors.is_empty() {
        return Err(ImportError::Rows(errors));
    }
    Ok(import(db, &orgs, &inds, identity_key, actor).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG_HEADER: &str = "certified_id,name,tax_id,state,npi,address_line1,address_line2,city,zip,healthcare_provider,verified_at\n";

    #[test]
    fn good_rows_parse() {
        let csv = format!(
            "{ORG_HEADER}7001,Acme Clinic,12-3456789,ma,1234567893,1 Main St,,Boston,02139,yes,2025-01-02\n"
        );
        let orgs = parse_organizations("orgs.csv", csv.as_bytes()).unwrap();
        assert_eq!(orgs[0].state.as_str(), "MA");
        assert_eq!(orgs[0].address_line2, None);
        assert!(orgs[0].healthcare_provider);
    }

    #[test]
    fn every_bad_cell_is_reported_with_its_line() {
        let csv = format!(
            "{ORG_HEADER}7001,Acme,12-3456789,MA,,1 Main St,,Boston,02139,true,2025-01-02\n\
             7002,Beta,123,MA,,2 Main St,,Boston,02139,true,2025-01-02\n\
             7001,Gamma,12-3456789,ZZ,,3 Main St,,Boston,02139,true,2025-01-02\n"
        );
        let errs = parse_organizations("orgs.csv", csv.as_bytes()).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "orgs.csv: line 3: tax_id: must be 9 digits (e.g. 12-3456789)",
                "orgs.csv: line 4: state: must be a two-letter US state code",
            ]
        );
    }

    #[test]
    fn individuals_may_carry_an_npi_with_a_valid_check_digit() {
        let header = "idp_id,first_name,last_name,date_of_birth,ssn_last4,verified_at,npi\n";
        let good = format!(
            "{header}8001,Ada,Stone,1975-03-02,1111,2026-01-05,1234567893\n8002,Ben,Ray,1980-06-15,2222,2026-01-05,\n"
        );
        let people = parse_individuals("p.csv", good.as_bytes()).unwrap();
        assert_eq!(people[0].npi.as_ref().map(Npi::as_str), Some("1234567893"));
        assert_eq!(people[1].npi, None);
        let bad = format!("{header}8001,Ada,Stone,1975-03-02,1111,2026-01-05,1234567890\n");
        let errs = parse_individuals("p.csv", bad.as_bytes()).unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "p.csv: line 2: npi: check digit does not match"
        );
    }

    #[test]
    fn duplicate_ids_and_header_problems_are_named() {
        let csv = format!(
            "{ORG_HEADER}7001,A,12-3456789,MA,,1 St,,Boston,02139,true,2025-01-02\n\
             7001,B,12-3456789,MA,,1 St,,Boston,02139,true,2025-01-02\n"
        );
        let errs = parse_organizations("o.csv", csv.as_bytes()).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!((errs[0].line, errs[0].field.as_str()), (3, "certified_id"));

        let errs = parse_individuals(
            "i.csv",
            "idp_id,first_name,last_name,ssn,verified_at\n".as_bytes(),
        )
        .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["ssn", "date_of_birth", "ssn_last4"]);
        assert!(errs.iter().all(|e| e.line == 1));
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzzing::config())]

        /// Damaged CSV files: identities or located problems, never a panic.
        #[test]
        fn fuzz_identity_files_never_panic(file in crate::fuzzing::mutated(vec![
            b"certified_id,name,tax_id,state,npi,address_line1,address_line2,city,zip,healthcare_provider,verified_at\n7001,\"Harbor, Family\",12-3456789,NJ,1234567893,10 Main St,,Trenton,08601,true,2026-01-05\n".to_vec(),
            b"idp_id,first_name,last_name,date_of_birth,ssn_last4,verified_at\n8001,Ada,Stone,1975-03-02,1111,2026-01-05T10:00:00Z\n".to_vec(),
        ])) {
            let _ = parse_organizations("orgs.csv", file.as_slice());
            let _ = parse_individuals("people.csv", file.as_slice());
        }
    }
}
