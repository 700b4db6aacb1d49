//! Use cases shared by every front door and the CLI. Each one validates, writes in one
//! transaction with its audit record (and outbox jobs), and returns domain types or `AppError`.

pub mod clients;
pub mod demo;
pub mod identity_import;
pub mod jobs;
pub mod pki;

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
