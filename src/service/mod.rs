//! Use cases shared by every front door and the CLI. Each one validates, writes in one
//! transaction with its audit record (and outbox jobs), and returns domain types or `AppError`.

pub mod accounts;
pub mod certificate_applications;
pub mod clients;
pub mod credentialing;
pub mod demo;
pub mod health;
pub mod identity_import;
pub mod jobs;
pub mod mail_intake;
pub mod messaging;
pub mod pki;
pub mod provisioning;
pub mod registry;
pub mod reports;
pub mod sessions;
pub mod transport;
pub mod trust;

/// Who asked, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub request_id: Option<String>,
}

impl Actor {
    pub fn cli() -> Self {
        Self {
            name: "cli".into(),
            request_id: None,
        }
    }
    pub fn client(id: uuid::Uuid, request_id: Option<String>) -> Self {
        Self {
            name: format!("client:{id}"),
            request_id,
        }
    }
}

impl Actor {
    /// The audit record of this actor doing `action` to an object.
    pub fn audit<'a>(
        &'a self,
        action: &'a str,
        object_type: &'a str,
        object_id: &'a str,
    ) -> crate::store::audit::AuditEntry<'a> {
        crate::store::audit::AuditEntry {
            actor: &self.name,
            action,
            object_type,
            object_id,
            request_id: self.request_id.as_deref(),
        }
    }
}
