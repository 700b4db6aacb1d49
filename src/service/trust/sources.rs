//! Places recipient certificates come from, asked in order by `discover`.

use std::future::Future;
use std::pin::Pin;

use openssl::x509::X509;

use crate::domain::pki::DirectAddress;

/// What one source offers for a recipient, before any trust decision.
pub type Found<'a> = Pin<Box<dyn Future<Output = Result<Vec<X509>, SourceError>> + Send + 'a>>;

pub trait CertificateSource: Send + Sync {
    /// A short name for logs and failure details.
    fn name(&self) -> &'static str;
    /// Address-bound and domain-bound certificates this source holds for `recipient`.
    fn find<'a>(&'a self, recipient: &'a DirectAddress) -> Found<'a>;
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Worth asking again later (a timeout, SERVFAIL, a network error).
    #[error("{0}")]
    Temporary(String),
}
