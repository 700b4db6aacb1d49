//! Provisioning rules: Direct address settings, user types, usernames and passwords.

use std::collections::BTreeMap;

use super::Invalid;

/// The address settings the service knows, by their names on the wire (the original
/// spelling of `comsume_mdn_flag` included), with their defaults.
pub const SETTINGS: [(&str, bool); 4] = [
    ("notify_flag", true),
    ("timely_and_reliable_flag", false),
    ("comsume_mdn_flag", false),
    ("is_private_flag", true),
];

/// Settings given explicitly at one level (organization defaults or one address). Unknown
/// names are dropped, as the service promises.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings(pub BTreeMap<String, bool>);

impl Settings {
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, Invalid> {
        let mut out = BTreeMap::new();
        for (name, value) in pairs {
            let name = name.trim();
            if !SETTINGS.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let v = match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(Invalid::new(
                        "settingValue",
                        format!("{name} must be true or false"),
                    ));
                }
            };
            out.insert(name.to_owned(), v);
        }
        Ok(Self(out))
    }

    /// Every known setting: this level's value, else `parent`'s, else the default.
    pub fn effective(&self, parent: &Settings) -> Settings {
        Settings(
            SETTINGS
                .iter()
                .map(|(n, d)| {
                    let v = self.0.get(*n).or(parent.0.get(*n)).copied().unwrap_or(*d);
                    ((*n).to_owned(), v)
                })
                .collect(),
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).expect("a map of bools serializes")
    }

    pub fn from_json(v: &serde_json::Value) -> Self {
        Settings(serde_json::from_value(v.clone()).unwrap_or_default())
    }
}

/// How a Direct address receives. Only SMTP (hosted here, delivered by the gateway) is
/// supported; the others exist in the schema so callers get a clear 207.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserType {
    Smtp,
}

pub const KNOWN_USER_TYPES: [&str; 5] = ["SMTP", "XD", "FTP", "FTPS", "SFTP"];

/// A user type the schema knows but this gateway cannot deliver to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl UserType {
    /// `None`/empty means SMTP, the service's default.
    pub fn parse(s: Option<&str>) -> Result<Self, Unsupported> {
        match s.map(str::trim).unwrap_or("SMTP") {
            "" | "SMTP" => Ok(Self::Smtp),
            other => Err(Unsupported(other.to_owned())),
        }
    }
    pub fn as_str(self) -> &'static str {
        "SMTP"
    }
}

/// The local part of a Direct address: what RFC 5321 allows in a dot-atom, at most 64.
pub fn parse_username(s: &str) -> Result<String, Invalid> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(Invalid::new(
            "username",
            "must be a mailbox name (letters, digits and . _ - +), at most 64 characters",
        ))
    }
}

/// The password a Direct address item gives, if any. The service ignores an empty password
/// (the seed's words), so absent, empty and whitespace-only all mean "none": tools that
/// pretty-print XML turn an empty element into whitespace, and nobody means a password of
/// blanks. A password that is given is taken exactly as sent: surrounding spaces may be part
/// of it.
pub fn given_password(s: Option<&str>) -> Option<&str> {
    s.filter(|p| !p.trim().is_empty())
}

/// Passwords of new addresses: 8 to 128 characters.
pub fn check_password(s: &str) -> Result<(), Invalid> {
    let n = s.chars().count();
    if (8..=128).contains(&n) {
        Ok(())
    } else {
        Err(Invalid::new("password", "must be 8 to 128 characters"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_layer_over_defaults_and_unknown_names_are_ignored() {
        let org = Settings::parse([("notify_flag", "false"), ("shoe_size", "12")]).unwrap();
        assert_eq!(org.0.len(), 1);
        let addr = Settings::parse([("timely_and_reliable_flag", "TRUE")]).unwrap();
        let eff = addr.effective(&org);
        assert!(!eff.0["notify_flag"]);
        assert!(eff.0["timely_and_reliable_flag"]);
        assert!(!eff.0["comsume_mdn_flag"]);
        assert!(eff.0["is_private_flag"]);
        let e = Settings::parse([("is_private_flag", "maybe")]).unwrap_err();
        assert_eq!(e.field, "settingValue");
    }

    #[test]
    fn usernames_and_user_types() {
        assert_eq!(parse_username(" Dr.Jane-Doe ").unwrap(), "dr.jane-doe");
        for bad in ["", ".a", "a..b", "a b", "a@b", &"x".repeat(65)] {
            assert!(parse_username(bad).is_err(), "{bad}");
        }
        assert_eq!(UserType::parse(None), Ok(UserType::Smtp));
        assert_eq!(UserType::parse(Some("XD")), Err(Unsupported("XD".into())));
    }

    #[test]
    fn empty_passwords_are_no_passwords_and_given_ones_are_kept_as_sent() {
        for none in [None, Some(""), Some("   "), Some("\n\t ")] {
            assert_eq!(given_password(none), None, "{none:?}");
        }
        assert_eq!(given_password(Some(" pass word ")), Some(" pass word "));
    }
}

/// Why provisioning refused a request or an item, one variant per code of the service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("invalid user when provisioning new Direct mdEmail account: {0}")]
    InvalidUser(String),
    #[error("registrar offer error: {0}")]
    Offer(String),
    #[error("Direct user account error: {0}")]
    Account(String),
    #[error("debit account authorize failed: {0}")]
    InsufficientFunds(String),
    #[error("debit account capture failed: {0}")]
    CaptureFailed(String),
    #[error("Direct domain {0} has been used.")]
    DomainTaken(String),
    #[error("No verified organization record is found {0}")]
    NoVerifiedOrganization(String),
    #[error("The organization is not verified as healthcare provider. {0}")]
    NotHealthcareProvider(String),
    #[error("Invalid state name {0}")]
    InvalidState(String),
    #[error("Failed to validate ID proofed individuals {0}")]
    IndividualNotVerified(String),
    #[error("Invalid organization type {0}")]
    InvalidOrganizationType(String),
    #[error("Unsupported address type {0}: this gateway delivers to SMTP addresses only")]
    UnsupportedUserType(String),
    #[error("No organization is found for domain({0}).")]
    UnknownDomain(String),
    #[error("Direct Organization object is empty {0}")]
    EmptyForm(String),
    #[error("Direct address ({0}) is not found.")]
    UnknownAddress(String),
}

impl Refusal {
    /// The `ResellerAPIResponse.code` of this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::InvalidUser(_) => "002",
            Refusal::Offer(_) => "003",
            Refusal::Account(_) => "014",
            Refusal::InsufficientFunds(_) => "021",
            Refusal::CaptureFailed(_) => "022",
            Refusal::DomainTaken(_) => "201",
            Refusal::NoVerifiedOrganization(_) => "202",
            Refusal::NotHealthcareProvider(_) => "203",
            Refusal::InvalidState(_) => "204",
            Refusal::IndividualNotVerified(_) => "205",
            Refusal::InvalidOrganizationType(_) => "206",
            Refusal::UnsupportedUserType(_) => "207",
            Refusal::UnknownDomain(_) => "208",
            Refusal::EmptyForm(_) => "209",
            Refusal::UnknownAddress(_) => "210",
        }
    }
}
