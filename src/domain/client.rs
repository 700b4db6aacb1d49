//! API clients: the machines and people that call the gateway's front doors.

use std::fmt;
use std::str::FromStr;

use super::Invalid;

/// What a client may do is decided by its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// Provisions organizations and addresses over SOAP.
    Reseller,
    /// An EHR vendor sending and receiving messages over REST.
    Vendor,
    /// Enrolls patients for certificates.
    TrustedAgent,
    /// Reviews identity and certificate applications.
    Officer,
    /// Runs the gateway.
    Ops,
    /// An organization registry (placer, informer) speaking HL7 v3.
    Registry,
}

impl ClientKind {
    pub const ALL: [ClientKind; 6] = [
        ClientKind::Reseller,
        ClientKind::Vendor,
        ClientKind::TrustedAgent,
        ClientKind::Officer,
        ClientKind::Ops,
        ClientKind::Registry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Reseller => "reseller",
            ClientKind::Vendor => "vendor",
            ClientKind::TrustedAgent => "trusted-agent",
            ClientKind::Officer => "officer",
            ClientKind::Ops => "ops",
            ClientKind::Registry => "registry",
        }
    }
}

impl fmt::Display for ClientKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientKind {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        ClientKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Invalid::new(
                    "kind",
                    format!("unknown client kind {s:?}; expected one of reseller, vendor, trusted-agent, officer, ops, registry"),
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientStatus {
    Active,
    Disabled,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Active => "active",
            ClientStatus::Disabled => "disabled",
        }
    }
}

impl FromStr for ClientStatus {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "active" => Ok(ClientStatus::Active),
            "disabled" => Ok(ClientStatus::Disabled),
            _ => Err(Invalid::new(
                "status",
                format!("unknown client status {s:?}"),
            )),
        }
    }
}

/// A client's display name: trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(String);

impl ClientName {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        if s.is_empty() || s.chars().count() > 200 {
            return Err(Invalid::new("name", "must be 1 to 200 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(Invalid::new("name", "must not contain control characters"));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client as the rest of the system sees it (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Client {
    pub id: uuid::Uuid,
    pub kind: ClientKind,
    pub name: String,
    pub status: ClientStatus,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_unknown_is_named() {
        for k in ClientKind::ALL {
            assert_eq!(k.as_str().parse::<ClientKind>().unwrap(), k);
        }
        let err = "admin".parse::<ClientKind>().unwrap_err();
        assert_eq!(err.field, "kind");
        assert!(err.message.contains("trusted-agent"));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            ClientName::parse("  Acme EHR ").unwrap().as_str(),
            "Acme EHR"
        );
        assert!(ClientName::parse("   ").is_err());
        assert!(ClientName::parse(&"x".repeat(201)).is_err());
        assert!(ClientName::parse("a\nb").is_err());
    }
}
