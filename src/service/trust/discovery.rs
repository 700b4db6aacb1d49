//! Recipient-certificate discovery: our store, then configured peer certificates, then the
//! sources added with `Discovery::with_source` (DNS CERT), each judged against the anchors of
//! the domain that relies on it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use openssl::pkey::Id;
use openssl::x509::X509;
use openssl::x509::X509KeyUsage;
use sqlx::PgPool;

use super::TrustContext;
use super::crl::Crls;
use super::sources::{CertificateSource, Found, SourceError};
use crate::direct::validate::{self, CertProblem, Target};
use crate::domain::pki::{DirectAddress, KeyUse};
use crate::store;

/// A source offers at most this many certificates per recipient to the trust decision.
const MAX_CANDIDATES: usize = 32;

/// Our own store: the live encryption certificates of an address we host (its own, else its
/// domain's). Discovery never sends to these over SMTP: it reports the address as hosted.
pub struct StoreSource {
    db: PgPool,
}

impl StoreSource {
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }
}

impl CertificateSource for StoreSource {
    fn name(&self) -> &'static str {
        "store"
    }
    fn find<'a>(&'a self, recipient: &'a DirectAddress) -> Found<'a> {
        Box::pin(async move {
            let found = store::pki::live_for_address(
                &self.db,
                &recipient.to_string(),
                recipient.domain().as_str(),
                KeyUse::Encryption,
                Utc::now(),
            )
            .await
            .map_err(|e| SourceError::Temporary(format!("database: {e}")))?;
            Ok(found
                .and_then(|(der, _)| crate::ca::parsed::certificate(&der).ok())
                .into_iter()
                .collect())
        })
    }
}

/// The certificates operators configured for the recipient's address and for its domain.
pub struct ConfiguredSource {
    db: PgPool,
}

impl ConfiguredSource {
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }
}

impl CertificateSource for ConfiguredSource {
    fn name(&self) -> &'static str {
        "configured"
    }
    fn find<'a>(&'a self, recipient: &'a DirectAddress) -> Found<'a> {
        Box::pin(async move {
            let ders = store::trust::peers_for(
                &self.db,
                &recipient.to_string(),
                recipient.domain().as_str(),
            )
            .await
            .map_err(|e| SourceError::Temporary(format!("database: {e}")))?;
            Ok(ders
                .iter()
                .filter_map(|d| crate::ca::parsed::certificate(d).ok())
                .collect())
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// No source holds a certificate for the recipient.
    #[error("no certificate was found for the recipient")]
    NoCertificate,
    /// Certificates were found, none usable; the reasons, source by source.
    #[error("no trusted certificate for the recipient: {0}")]
    Untrusted(String),
    /// A source could not answer now (and none gave a usable certificate): ask again later.
    #[error("certificate discovery failed for now: {0}")]
    Temporary(String),
    /// The recipient is an address we host: it is delivered here, never over SMTP.
    #[error("the recipient is hosted by this gateway")]
    Hosted,
}

impl DiscoveryError {
    /// The enhanced status code (RFC 3463) a recipient fails (or waits) with.
    pub fn status(&self) -> &'static str {
        match self {
            DiscoveryError::NoCertificate => "5.7.31",
            DiscoveryError::Untrusted(_) => "5.7.11",
            // A directory (DNS, LDAP) did not answer.
            DiscoveryError::Temporary(_) => "4.4.3",
            // Sending it over SMTP would loop back to us.
            DiscoveryError::Hosted => "5.4.6",
        }
    }
}

/// Recipient-certificate discovery and signer checks, against the anchors in the database at
/// the moment of each call.
pub struct Discovery {
    db: PgPool,
    ctx: Arc<TrustContext>,
    store: StoreSource,
    sources: Vec<Box<dyn CertificateSource>>,
}

impl Discovery {
    /// Our store first (hosted addresses), then the configured peer certificates; more
    /// sources (DNS CERT, LDAP) are appended with `with_source`.
    pub fn new(db: PgPool, ctx: Arc<TrustContext>) -> Self {
        Self {
            store: StoreSource::new(db.clone()),
            sources: vec![Box::new(ConfiguredSource::new(db.clone()))],
            db,
            ctx,
        }
    }

    /// Asks `s` after the sources already there.
    pub fn with_source(mut self, s: Box<dyn CertificateSource>) -> Self {
        self.sources.push(s);
        self
    }

    /// Usable encryption certificates for `recipient`, judged against the SENDER domain's
    /// anchors (chain, dates, CRLs, key strength, name binding, key usage). Address-bound ones
    /// are preferred over the domain's; the first source that yields any usable certificate
    /// wins. A source that could not answer makes the result `Temporary` unless a later one
    /// succeeds.
    pub async fn usable_certificates(
        &self,
        recipient: &DirectAddress,
        sender_domain: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<X509>, DiscoveryError> {
        let temporary = |e: crate::error::AppError| DiscoveryError::Temporary(e.to_string());
        let hosted_here = super::hosts(&self.db, recipient.domain().as_str())
            .await
            .map_err(temporary)?;
        let ours = self
            .store
            .find(recipient)
            .await
            .map_err(|SourceError::Temporary(e)| DiscoveryError::Temporary(e))?;
        if hosted_here || !ours.is_empty() {
            return Err(DiscoveryError::Hosted);
        }
        let anchors = super::anchors_for(&self.db, sender_domain)
            .await
            .map_err(temporary)?;
        let mut problems: Vec<String> = Vec::new();
        let mut unavailable: Vec<String> = Vec::new();
        for source in &self.sources {
            let found = match source.find(recipient).await {
                Ok(found) => found,
                Err(SourceError::Temporary(e)) => {
                    unavailable.push(format!("{}: {e}", source.name()));
                    continue;
                }
            };
            let found: Vec<X509> = found.into_iter().take(MAX_CANDIDATES).collect();
            let (mut by_address, mut by_domain) = (Vec::new(), Vec::new());
            for (i, cert) in found.iter().enumerate() {
                // The other certificates a source offered may be the intermediates.
                let chain: Vec<X509> = found
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, c)| c.clone())
                    .collect();
                let verdict = self
                    .judge(cert, &chain, &anchors, &Target::Address(recipient), now)
                    .await
                    .and_then(|()| for_encryption(cert));
                match verdict {
                    Ok(()) if validate::address_bound(cert, recipient) => {
                        by_address.push(cert.clone())
                    }
                    Ok(()) => by_domain.push(cert.clone()),
                    Err(p) => problems.push(format!("{}: {p}", source.name())),
                }
            }
            if !by_address.is_empty() {
                return Ok(by_address);
            }
            if !by_domain.is_empty() {
                return Ok(by_domain);
            }
        }
        if !unavailable.is_empty() {
            return Err(DiscoveryError::Temporary(unavailable.join("; ")));
        }
        if !problems.is_empty() {
            problems.dedup();
            problems.truncate(8);
            return Err(DiscoveryError::Untrusted(problems.join("; ")));
        }
        Err(DiscoveryError::NoCertificate)
    }

    /// Inbound: whether this signer (with the chain it sent) is trusted by the RECIPIENT
    /// domain's anchors, in date, not revoked, strong, may sign e-mail, and is bound to `from`
    /// (the address, or its domain).
    pub async fn check_signer(
        &self,
        signer: &X509,
        chain: &[X509],
        recipient_domain: &str,
        from: &DirectAddress,
        now: DateTime<Utc>,
    ) -> Result<(), CertProblem> {
        self.signer_verdict(signer, chain, recipient_domain, from, now)
            .await
            .unwrap_or_else(|e| Err(CertProblem::Untrusted(format!("anchors unavailable: {e}"))))
    }

    /// `check_signer`, telling a decision (the inner result) from the database failing to
    /// give the anchors (`Err`), which the caller should retry rather than hold against the
    /// sender.
    pub async fn signer_verdict(
        &self,
        signer: &X509,
        chain: &[X509],
        recipient_domain: &str,
        from: &DirectAddress,
        now: DateTime<Utc>,
    ) -> crate::error::AppResult<Result<(), CertProblem>> {
        let anchors = super::anchors_for(&self.db, recipient_domain).await?;
        Ok(self.signer_judged(signer, chain, &anchors, from, now).await)
    }

    async fn signer_judged(
        &self,
        signer: &X509,
        chain: &[X509],
        anchors: &[X509],
        from: &DirectAddress,
        now: DateTime<Utc>,
    ) -> Result<(), CertProblem> {
        self.judge(signer, chain, anchors, &Target::Address(from), now)
            .await?;
        if let Some(ku) = signer.key_usage()
            && !ku.intersects(X509KeyUsage::DIGITAL_SIGNATURE | X509KeyUsage::NON_REPUDIATION)
        {
            return Err(CertProblem::NotForEmail);
        }
        Ok(())
    }

    /// `validate::check` with the CRLs of the certificates involved, and the intermediates the
    /// certificate's AIA points to when the path needs them. CRLs are fetched only for
    /// a certificate that passes every other check, so a peer offering many bad certificates
    /// costs no fetches. A CRL that cannot be had leaves revocation unknown, which is accepted
    /// (and logged by `Crls`).
    async fn judge(
        &self,
        cert: &X509,
        chain: &[X509],
        anchors: &[X509],
        target: &Target<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), CertProblem> {
        let mut chain = chain[..chain.len().min(validate::MAX_CHAIN)].to_vec();
        let mut verdict = validate::check(cert, &chain, anchors, target, now, &|_, _| None);
        if matches!(verdict, Err(CertProblem::Untrusted(_))) && !anchors.is_empty() {
            // The peer may have left out intermediates its AIA points to.
            let issuers = super::aia::chase(&self.ctx, cert).await;
            if !issuers.is_empty() {
                chain.extend(issuers);
                verdict = validate::check(cert, &chain, anchors, target, now, &|_, _| None);
            }
        }
        verdict?;
        let chain = &chain[..];
        let mut involved: Vec<&X509> = vec![cert];
        involved.extend(chain.iter());
        let crls = Crls::gather(&self.db, &self.ctx, &involved, now).await;
        validate::check(cert, chain, anchors, target, now, &|c, i| {
            crls.revoked(c, i)
        })
    }
}

/// A certificate whose key usage is restricted must allow key transport (RSA) or agreement
/// (EC) to be encrypted to.
fn for_encryption(cert: &X509) -> Result<(), CertProblem> {
    let Some(ku) = cert.key_usage() else {
        return Ok(());
    };
    let needed = match cert.public_key().map(|k| k.id()) {
        Ok(Id::EC) => X509KeyUsage::KEY_AGREEMENT,
        _ => X509KeyUsage::KEY_ENCIPHERMENT,
    };
    if ku.contains(needed) {
        Ok(())
    } else {
        Err(CertProblem::NotForEmail)
    }
}
