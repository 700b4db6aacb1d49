//! Direct names, certificate categories and the lifecycle words of certificates and
//! organizations (the latter as the provisioning spec spells them).

use std::fmt;
use std::str::FromStr;

use super::Invalid;

/// A Direct domain (the right side of a Direct address): lower-cased DNS name, at least two
/// labels, no wildcard.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirectDomain(String);

impl DirectDomain {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
        if d.contains('*') {
            return Err(Invalid::new(
                "domain",
                "wildcards are not allowed in Direct certificates",
            ));
        }
        if d.is_empty() || d.len() > 253 {
            return Err(Invalid::new("domain", "must be 1 to 253 characters"));
        }
        let labels: Vec<&str> = d.split('.').collect();
        if labels.len() < 2 {
            return Err(Invalid::new(
                "domain",
                "must have at least two labels (e.g. direct.example.org)",
            ));
        }
        for l in &labels {
            let ok = !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-');
            if !ok {
                return Err(Invalid::new(
                    "domain",
                    format!("label {l:?} is not a valid DNS label"),
                ));
            }
        }
        Ok(Self(d))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DirectDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Direct address `local@domain`. The local part is kept as given (case preserved); the
/// domain is normalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirectAddress {
    local: String,
    domain: DirectDomain,
}

impl DirectAddress {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| Invalid::new("address", "must be local@domain"))?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
        if !local_ok {
            return Err(Invalid::new(
                "address",
                "the part before @ is not a valid mailbox name",
            ));
        }
        let domain = DirectDomain::parse(domain).map_err(|e| Invalid::new("address", e.message))?;
        Ok(Self {
            local: local.to_owned(),
            domain,
        })
    }
    pub fn domain(&self) -> &DirectDomain {
        &self.domain
    }
    pub fn local_part(&self) -> &str {
        &self.local
    }
}

impl fmt::Display for DirectAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// The DirectTrust certificate category, carried as a policy OID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum CertificateCategory {
    CoveredEntity,
    BusinessAssociate,
    HealthEntity,
    Patient,
}

impl CertificateCategory {
    pub const ALL: [CertificateCategory; 4] = [
        CertificateCategory::CoveredEntity,
        CertificateCategory::BusinessAssociate,
        CertificateCategory::HealthEntity,
        CertificateCategory::Patient,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CertificateCategory::CoveredEntity => "CoveredEntity",
            CertificateCategory::BusinessAssociate => "BusinessAssociate",
            CertificateCategory::HealthEntity => "HealthEntity",
            CertificateCategory::Patient => "Patient",
        }
    }

    /// The DirectTrust category policy OID.
    pub fn policy_oid(self) -> &'static str {
        match self {
            CertificateCategory::CoveredEntity => "1.3.6.1.4.1.41179.2.1",
            CertificateCategory::BusinessAssociate => "1.3.6.1.4.1.41179.2.2",
            CertificateCategory::HealthEntity => "1.3.6.1.4.1.41179.2.3",
            CertificateCategory::Patient => "1.3.6.1.4.1.41179.2.4",
        }
    }
}

impl FromStr for CertificateCategory {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Self::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            Invalid::new(
                "category",
                format!("unknown certificate category {s:?}; expected CoveredEntity, BusinessAssociate, HealthEntity or Patient"),
            )
        })
    }
}

/// A certificate's validity in whole years: DirectTrust allows 1 to 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidityYears(u8);

impl ValidityYears {
    pub fn new(years: i64) -> Result<Self, Invalid> {
        match years {
            1..=3 => Ok(Self(years as u8)),
            _ => Err(Invalid::new(
                "years",
                "certificate validity must be 1, 2 or 3 years",
            )),
        }
    }
    pub fn get(self) -> u8 {
        self.0
    }
}

/// What a certificate's key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyUse {
    /// Signing and encryption with one key (digitalSignature + keyEncipherment).
    Dual,
    Signing,
    Encryption,
}

impl KeyUse {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUse::Dual => "dual",
            KeyUse::Signing => "signing",
            KeyUse::Encryption => "encryption",
        }
    }
}

impl FromStr for KeyUse {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "dual" => Ok(KeyUse::Dual),
            "signing" => Ok(KeyUse::Signing),
            "encryption" => Ok(KeyUse::Encryption),
            _ => Err(Invalid::new("key_use", format!("unknown key use {s:?}"))),
        }
    }
}

/// Lifecycle: requested -> issued -> renewed | expired | revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertificateStatus {
    Requested,
    Issued,
    Renewed,
    Expired,
    Revoked,
}

impl CertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::Requested => "requested",
            CertificateStatus::Issued => "issued",
            CertificateStatus::Renewed => "renewed",
            CertificateStatus::Expired => "expired",
            CertificateStatus::Revoked => "revoked",
        }
    }
}

impl FromStr for CertificateStatus {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        [
            Self::Requested,
            Self::Issued,
            Self::Renewed,
            Self::Expired,
            Self::Revoked,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| Invalid::new("status", format!("unknown certificate status {s:?}")))
    }
}

/// Organization status values of the provisioning spec.
pub mod organization_status {
    pub const REGISTERED: &str = "Registered";
    pub const CERTIFICATE_PENDING: &str = "CertificatePending";
    pub const ACTIVATED: &str = "Activated";
    pub const DISABLED: &str = "Disabled";
    pub const CERTIFICATE_EXPIRED: &str = "CertificateExpired";
    pub const CERTIFICATE_REVOKED: &str = "CertificateRevoked";
}

/// RFC 5280 revocation reasons, by their ASN.1 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    PrivilegeWithdrawn,
}

impl RevocationReason {
    const ALL: [RevocationReason; 8] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::CertificateHold => "certificateHold",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }
}

impl FromStr for RevocationReason {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|r| r.as_str()).collect();
                Invalid::new(
                    "reason",
                    format!(
                        "unknown revocation reason {s:?}; expected one of {}",
                        names.join(", ")
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalized_and_wildcards_refused() {
        assert_eq!(
            DirectDomain::parse("Direct.Example.ORG.").unwrap().as_str(),
            "direct.example.org"
        );
        assert!(
            DirectDomain::parse("*.example.org")
                .unwrap_err()
                .message
                .contains("wildcard")
        );
        assert!(DirectDomain::parse("localhost").is_err());
        assert!(DirectDomain::parse("-bad.example.org").is_err());
        assert!(DirectDomain::parse("a..b").is_err());
    }

    #[test]
    fn addresses_split_into_mailbox_and_domain() {
        let a = DirectAddress::parse("Dr.Smith@Direct.Example.org").unwrap();
        assert_eq!(a.to_string(), "Dr.Smith@direct.example.org");
        assert_eq!(a.domain().as_str(), "direct.example.org");
        assert!(DirectAddress::parse("no-at-sign").is_err());
        assert!(DirectAddress::parse("a..b@x.org").is_err());
        assert_eq!(
            DirectAddress::parse("a@*.x.org").unwrap_err().field,
            "address"
        );
    }

    #[test]
    fn categories_years_and_reasons() {
        assert_eq!(
            "patient"
                .parse::<CertificateCategory>()
                .unwrap()
                .policy_oid(),
            "1.3.6.1.4.1.41179.2.4"
        );
        assert_eq!(
            "Dentist".parse::<CertificateCategory>().unwrap_err().field,
            "category"
        );
        assert!(ValidityYears::new(0).is_err());
        assert!(ValidityYears::new(4).is_err());
        assert_eq!(ValidityYears::new(3).unwrap().get(), 3);
        assert_eq!(
            "keycompromise".parse::<RevocationReason>().unwrap(),
            RevocationReason::KeyCompromise
        );
        assert!("because".parse::<RevocationReason>().is_err());
    }
}
