//! The organization registry's record of an organization (HL7 v3 PRPM organization topic):
//! what a registry keeps of it, its life-cycle status, and the identifier roots the gateway
//! maps onto its own verified-organization fields.

use serde::{Deserialize, Serialize};

use super::Invalid;

/// The NPI's assigning authority (CMS).
pub const NPI_ROOT: &str = "2.16.840.1.113883.4.6";
/// The US tax id (EIN) assigning authority.
pub const TAX_ID_ROOT: &str = "2.16.840.1.113883.4.2";

/// Longest text we keep of any one field of a record.
pub const MAX_FIELD: usize = 500;
/// Most repetitions of one kind of item (ids, addresses, telecoms, members) in a record.
pub const MAX_ITEMS: usize = 50;

/// An instance identifier: an OID root and an optional extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ii {
    pub root: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub extension: String,
}

impl Ii {
    pub fn new(root: &str, extension: &str) -> Self {
        Self {
            root: root.to_owned(),
            extension: extension.to_owned(),
        }
    }

    /// Checks the root is an OID (digits and dots, or a UUID) and both parts are bounded.
    pub fn parse(root: &str, extension: &str) -> Result<Self, Invalid> {
        let root = root.trim();
        let ext = extension.trim();
        let oid = !root.is_empty()
            && root.len() <= 128
            && root
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let uuid = uuid::Uuid::parse_str(root).is_ok();
        if !(oid || uuid) {
            return Err(Invalid::new("id", format!("root {root:?} is not an OID")));
        }
        if ext.chars().count() > 200 || ext.chars().any(char::is_control) {
            return Err(Invalid::new(
                "id",
                "the extension is too long or has control characters",
            ));
        }
        Ok(Self::new(root, ext))
    }
}

impl std::fmt::Display for Ii {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.extension.is_empty() {
            f.write_str(&self.root)
        } else {
            write!(f, "{}^{}", self.root, self.extension)
        }
    }
}

/// A coded value (the organization's type, say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    pub code: String,
    #[serde(default)]
    pub code_system: String,
    #[serde(default)]
    pub display_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default)]
    pub lines: Vec<String>,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub postal_code: String,
    #[serde(default)]
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Telecom {
    pub value: String,
    #[serde(default)]
    pub use_code: String,
}

/// Someone the organization groups (a physician of a physician group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub ids: Vec<Ii>,
    pub name: String,
}

/// What the registry knows of one organization at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRecord {
    pub ids: Vec<Ii>,
    pub name: String,
    pub code: Option<Code>,
    pub addrs: Vec<Address>,
    pub telecoms: Vec<Telecom>,
    /// The HL7 role status the sender gave (`active`, `suspended`...), as sent.
    pub status_code: String,
    /// HL7 TS values, as sent.
    pub effective_from: String,
    pub effective_to: String,
    #[serde(default)]
    pub members: Vec<Member>,
}

impl OrgRecord {
    pub fn id_with_root(&self, root: &str) -> Option<&str> {
        self.ids
            .iter()
            .find(|i| i.root == root && !i.extension.is_empty())
            .map(|i| i.extension.as_str())
    }
}

/// The registry status of an organization, which decides whether it may be provisioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryStatus {
    Active,
    /// Added as pending; an activate notification makes it active.
    New,
    Suspended,
    Nullified,
}

impl RegistryStatus {
    pub const ALL: [RegistryStatus; 4] = [
        RegistryStatus::Active,
        RegistryStatus::New,
        RegistryStatus::Suspended,
        RegistryStatus::Nullified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RegistryStatus::Active => "active",
            RegistryStatus::New => "new",
            RegistryStatus::Suspended => "suspended",
            RegistryStatus::Nullified => "nullified",
        }
    }

    /// The HL7 RoleStatus code of this status in the messages we write.
    pub fn hl7_code(self) -> &'static str {
        match self {
            RegistryStatus::Active => "active",
            RegistryStatus::New => "pending",
            RegistryStatus::Suspended => "suspended",
            RegistryStatus::Nullified => "nullified",
        }
    }

    /// An HL7 RoleStatus code (or our own words) as a status.
    pub fn from_hl7(code: &str) -> Result<Self, Invalid> {
        match code.trim().to_ascii_lowercase().as_str() {
            "active" | "normal" => Ok(RegistryStatus::Active),
            "pending" | "new" => Ok(RegistryStatus::New),
            "suspended" => Ok(RegistryStatus::Suspended),
            "nullified" | "terminated" => Ok(RegistryStatus::Nullified),
            other => Err(Invalid::new(
                "statusCode",
                format!(
                    "unknown status {other:?}; expected active, pending, suspended, nullified or terminated"
                ),
            )),
        }
    }

    /// Why an organization in this status may not be provisioned; `None` when it may.
    pub fn provisioning_refusal(self) -> Option<&'static str> {
        match self {
            RegistryStatus::Active => None,
            RegistryStatus::New => Some("is pending activation in the organization registry"),
            RegistryStatus::Suspended => Some("is suspended in the organization registry"),
            RegistryStatus::Nullified => Some("was nullified in the organization registry"),
        }
    }
}

impl std::str::FromStr for RegistryStatus {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        RegistryStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Invalid::new("status", format!("unknown registry status {s:?}")))
    }
}

/// Checks a text field: trimmed, bounded, no control characters.
pub fn field(name: &'static str, s: &str) -> Result<String, Invalid> {
    let s = s.trim();
    if s.chars().count() > MAX_FIELD {
        return Err(Invalid::new(
            name,
            format!("longer than {MAX_FIELD} characters"),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Invalid::new(name, "has control characters"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_from_hl7_and_decide_provisioning() {
        assert_eq!(
            RegistryStatus::from_hl7("normal").unwrap(),
            RegistryStatus::Active
        );
        assert_eq!(
            RegistryStatus::from_hl7("terminated").unwrap(),
            RegistryStatus::Nullified
        );
        assert!(RegistryStatus::from_hl7("weird").is_err());
        assert!(RegistryStatus::Active.provisioning_refusal().is_none());
        assert!(RegistryStatus::Suspended.provisioning_refusal().is_some());
        for s in RegistryStatus::ALL {
            assert_eq!(s.as_str().parse::<RegistryStatus>().unwrap(), s);
        }
    }

    #[test]
    fn ids_need_an_oid_root() {
        assert!(Ii::parse("2.16.840.1.113883.4.6", "1234567893").is_ok());
        assert!(Ii::parse("not an oid", "1").is_err());
        assert!(Ii::parse("1..2", "1").is_err());
        assert!(Ii::parse("1.2", &"x".repeat(201)).is_err());
    }
}
