//! Verified identities: organizations and individuals an identity provider has vouched for.
//! Provisioning may only name identities found here.

use chrono::{DateTime, NaiveDate, Utc};

use super::Invalid;

/// The identity provider's numeric id of a verified organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertifiedId(i64);

/// The identity provider's numeric id of a verified individual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdpId(i64);

fn positive_id(field: &'static str, s: &str) -> Result<i64, Invalid> {
    match s.trim().parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Invalid::new(field, "must be a positive whole number")),
    }
}

impl CertifiedId {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        positive_id("certified_id", s).map(Self)
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

impl IdpId {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        positive_id("idp_id", s).map(Self)
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A National Provider Identifier: 10 digits whose last is a Luhn check digit computed over
/// the number prefixed with 80840.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Npi(String);

impl Npi {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new("npi", "must be 10 digits"));
        }
        if !luhn_valid(&format!("80840{s}")) {
            return Err(Invalid::new("npi", "check digit does not match"));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A US federal tax id (EIN), stored as 9 digits; `12-3456789` is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxId(String);

impl TaxId {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let digits: String = s.trim().chars().filter(|c| *c != '-').collect();
        if digits.len() != 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new("tax_id", "must be 9 digits (e.g. 12-3456789)"));
        }
        Ok(Self(digits))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const US_STATES: [&str; 56] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY", "AS", "GU", "MP", "PR", "VI",
];

/// A two-letter US state or territory code (USPS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsState(String);

impl UsState {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let up = s.trim().to_ascii_uppercase();
        if US_STATES.contains(&up.as_str()) {
            Ok(Self(up))
        } else {
            Err(Invalid::new("state", "must be a two-letter US state code"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A US ZIP code: 5 digits or ZIP+4 (`12345-6789`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zip(String);

impl Zip {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        let ok = match s.len() {
            5 => s.bytes().all(|b| b.is_ascii_digit()),
            10 => {
                s.as_bytes()[5] == b'-'
                    && s.bytes()
                        .enumerate()
                        .all(|(i, b)| i == 5 || b.is_ascii_digit())
            }
            _ => false,
        };
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Invalid::new("zip", "must be 12345 or 12345-6789"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The last four digits of a social security number. Only ever stored as a keyed hash.
#[derive(Clone, PartialEq, Eq)]
pub struct SsnLast4(String);

impl std::fmt::Debug for SsnLast4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SsnLast4(****)")
    }
}

impl SsnLast4 {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(Invalid::new("ssn_last4", "must be 4 digits"))
        }
    }
    pub fn digits(&self) -> &str {
        &self.0
    }
}

pub fn parse_bool(field: &'static str, s: &str) -> Result<bool, Invalid> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Ok(true),
        "false" | "no" | "n" | "0" => Ok(false),
        _ => Err(Invalid::new(field, "must be true or false")),
    }
}

pub fn parse_text(field: &'static str, s: &str, max: usize) -> Result<String, Invalid> {
    let s = s.trim();
    if s.is_empty() {
        return Err(Invalid::new(field, "is required"));
    }
    if s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(Invalid::new(
            field,
            format!("must be at most {max} printable characters"),
        ));
    }
    Ok(s.to_owned())
}

/// An RFC 3339 timestamp or a plain date (midnight UTC), not in the future.
pub fn parse_verified_at(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Invalid> {
    let s = s.trim();
    let at = DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap().and_utc())
        })
        .map_err(|_| {
            Invalid::new(
                "verified_at",
                "must be a date (2024-05-01) or RFC 3339 timestamp",
            )
        })?;
    if at > now {
        return Err(Invalid::new("verified_at", "must not be in the future"));
    }
    Ok(at)
}

pub fn parse_date_of_birth(s: &str, today: NaiveDate) -> Result<NaiveDate, Invalid> {
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| Invalid::new("date_of_birth", "must be YYYY-MM-DD"))?;
    if d > today || d < NaiveDate::from_ymd_opt(1880, 1, 1).unwrap() {
        return Err(Invalid::new(
            "date_of_birth",
            "is not a plausible birth date",
        ));
    }
    Ok(d)
}

#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedOrganization {
    pub certified_id: CertifiedId,
    pub name: String,
    pub tax_id: TaxId,
    pub state: UsState,
    pub npi: Option<Npi>,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub city: String,
    pub zip: Zip,
    pub healthcare_provider: bool,
    pub verified_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedIndividual {
    pub idp_id: IdpId,
    pub first_name: String,
    pub last_name: String,
    pub date_of_birth: NaiveDate,
    pub ssn_last4: SsnLast4,
    pub verified_at: DateTime<Utc>,
    /// Links the individual to credentialing providers; optional in the import.
    pub npi: Option<Npi>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npi_check_digit() {
        // 1234567893 is the CMS example of a valid NPI.
        assert!(Npi::parse("1234567893").is_ok());
        assert_eq!(
            Npi::parse("1234567890").unwrap_err().message,
            "check digit does not match"
        );
        assert_eq!(Npi::parse("12345").unwrap_err().field, "npi");
    }

    #[test]
    fn tax_ids_states_and_zips() {
        assert_eq!(TaxId::parse("12-3456789").unwrap().as_str(), "123456789");
        assert!(TaxId::parse("12-345678").is_err());
        assert_eq!(UsState::parse("ny").unwrap().as_str(), "NY");
        assert!(UsState::parse("XX").is_err());
        assert!(Zip::parse("02139").is_ok());
        assert!(Zip::parse("02139-1234").is_ok());
        assert!(Zip::parse("0213").is_err());
        assert!(Zip::parse("02139_1234").is_err());
    }

    #[test]
    fn ssn_never_shows_in_debug() {
        let s = SsnLast4::parse("1234").unwrap();
        assert!(!format!("{s:?}").contains("1234"));
        assert!(SsnLast4::parse("12a4").is_err());
    }

    #[test]
    fn dates() {
        let now = Utc::now();
        assert!(parse_verified_at("2024-05-01", now).is_ok());
        assert!(parse_verified_at("2024-05-01T10:00:00Z", now).is_ok());
        assert!(parse_verified_at("2999-01-01", now).is_err());
        assert!(parse_date_of_birth("1980-02-30", now.date_naive()).is_err());
        assert!(parse_date_of_birth("1980-02-28", now.date_naive()).is_ok());
    }
}
