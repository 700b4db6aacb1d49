//! Pure domain types and rules: no I/O, no sqlx/axum/tokio.

pub mod certificate_application;
pub mod client;
pub mod credentialing;
pub mod failure;
pub mod identity;
pub mod messaging;
pub mod offer;
pub mod pki;
pub mod provisioning;
pub mod registry;

/// A value that failed validation at the edge, naming the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
