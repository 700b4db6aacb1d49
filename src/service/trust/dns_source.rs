//! Recipient certificates published in DNS CERT records (RFC 4398), as the Direct
//! Applicability Statement asks: the address name first (`john.example.org` for
//! john@example.org), then the domain. PKIX records carry the certificate; IPKIX records carry
//! a URL, fetched through the egress guard like any URL a peer gives us.

use std::sync::Arc;
use std::time::Duration;

use openssl::x509::X509;

use super::sources::{CertificateSource, Found, SourceError};
use crate::dns::{CertRecord, Dns, DnsError};
use crate::domain::pki::DirectAddress;
use crate::egress::EgressPolicy;

/// Largest certificate (or PEM bundle) fetched from an IPKIX URL.
pub const MAX_FETCH_BYTES: usize = 64 * 1024;
/// IPKIX URLs fetched for one recipient; further ones are ignored.
pub const MAX_FETCHES: usize = 4;
/// Certificates taken from one fetched PEM bundle.
const MAX_PEM_CERTS: usize = 8;

pub struct DnsCertSource {
    dns: Dns,
    fetch: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

impl DnsCertSource {
    /// IPKIX URLs are fetched through `policy` within `fetch_timeout` each.
    pub fn new(dns: Dns, policy: Arc<EgressPolicy>, fetch_timeout: Duration) -> Self {
        let fetch = crate::egress::guarded_client(policy.clone(), fetch_timeout)
            .user_agent(concat!("hisp-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds with static settings");
        Self { dns, fetch, policy }
    }

    async fn find_all(&self, recipient: &DirectAddress) -> Result<Vec<X509>, SourceError> {
        let domain = recipient.domain().as_str();
        let by_address = address_name(recipient);
        let (at_address, at_domain) = tokio::join!(
            async {
                match &by_address {
                    Some(name) => self.dns.cert_records(name).await,
                    // A local part no DNS label can hold has no address name.
                    None => Err(DnsError::NotFound),
                }
            },
            self.dns.cert_records(domain),
        );
        let mut temporary = None;
        let mut found = Vec::new();
        let mut fetches = 0;
        for (bound, answer) in [("address", at_address), ("domain", at_domain)] {
            let records = match answer {
                Ok(records) => records,
                // Most addresses have no record of their own: the domain's is the usual one.
                Err(DnsError::NotFound | DnsError::NoMail) => continue,
                Err(DnsError::Temporary(e)) => {
                    temporary = Some(e);
                    continue;
                }
            };
            for record in records {
                match record {
                    CertRecord::Pkix(der) => match X509::from_der(&der) {
                        Ok(cert) => found.push(cert),
                        Err(_) => tracing::warn!(
                            domain,
                            bound,
                            len = der.len(),
                            "a DNS CERT (PKIX) record is not an X.509 certificate; skipped"
                        ),
                    },
                    CertRecord::Ipkix(url) => {
                        if fetches == MAX_FETCHES {
                            continue;
                        }
                        fetches += 1;
                        match self.fetch_certs(&url).await {
                            Ok(certs) => found.extend(certs),
                            Err(Fetch::Temporary(e)) => {
                                tracing::warn!(domain, bound, error = %e, "fetching an IPKIX certificate failed");
                                temporary = Some(e);
                            }
                            Err(Fetch::Bad(e)) => {
                                tracing::warn!(domain, bound, error = %e, "an IPKIX certificate was unusable; skipped")
                            }
                        }
                    }
                    CertRecord::Other(_) => {}
                }
            }
        }
        match (found.is_empty(), temporary) {
            // Nothing found but something could not be asked: "none" would be a guess.
            (true, Some(e)) => Err(SourceError::Temporary(e)),
            _ => Ok(found),
        }
    }

    /// The certificates at an IPKIX URL: one DER certificate, or PEM (one or a few).
    async fn fetch_certs(&self, url: &str) -> Result<Vec<X509>, Fetch> {
        let parsed = reqwest::Url::parse(url).map_err(|_| Fetch::Bad("not a URL".into()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Fetch::Bad(format!(
                "{} URLs are not fetched",
                parsed.scheme()
            )));
        }
        // An address written in the URL skips resolution, so the resolver's check never sees it.
        self.policy
            .check_url(&parsed)
            .map_err(|r| Fetch::Bad(r.to_string()))?;
        let mut resp = self.fetch.get(parsed).send().await.map_err(|e| {
            match crate::egress::refusal_in(&e) {
                Some(r) => Fetch::Bad(r.to_string()),
                None => Fetch::Temporary(root_cause(&e)),
            }
        })?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(Fetch::Temporary(format!("HTTP {}", status.as_u16())));
        }
        if !status.is_success() {
            return Err(Fetch::Bad(format!("HTTP {}", status.as_u16())));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_FETCH_BYTES as u64)
        {
            return Err(Fetch::Bad(format!("larger than {MAX_FETCH_BYTES} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Fetch::Temporary(root_cause(&e)))?
        {
            if body.len() + chunk.len() > MAX_FETCH_BYTES {
                return Err(Fetch::Bad(format!("larger than {MAX_FETCH_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        parse_certs(&body).ok_or_else(|| Fetch::Bad("not a certificate (DER or PEM)".into()))
    }
}

impl CertificateSource for DnsCertSource {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn find<'a>(&'a self, recipient: &'a DirectAddress) -> Found<'a> {
        Box::pin(self.find_all(recipient))
    }
}

enum Fetch {
    Temporary(String),
    Bad(String),
}

/// DER, else PEM; `None` when neither gives a certificate.
fn parse_certs(body: &[u8]) -> Option<Vec<X509>> {
    if let Ok(cert) = X509::from_der(body) {
        return Some(vec![cert]);
    }
    let mut certs = X509::stack_from_pem(body).ok()?;
    certs.truncate(MAX_PEM_CERTS);
    (!certs.is_empty()).then_some(certs)
}

/// RFC 4398 §3.3's owner name for an address: the local part as one label (a `.` inside it
/// escaped), then the domain. `None` when the local part cannot be a DNS label.
pub fn address_name(address: &DirectAddress) -> Option<String> {
    let local = address.local_part();
    if local.is_empty() || local.len() > 63 {
        return None;
    }
    let mut name = String::with_capacity(local.len() + address.domain().as_str().len() + 8);
    for c in local.chars() {
        if matches!(c, '.' | '\\') {
            name.push('\\');
        }
        name.push(c);
    }
    name.push('.');
    name.push_str(address.domain().as_str());
    Some(name)
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_name_keeps_the_local_part_in_one_label() {
        let a = DirectAddress::parse("john@example.org").unwrap();
        assert_eq!(address_name(&a).as_deref(), Some("john.example.org"));
        let a = DirectAddress::parse("John.Doe@Example.org").unwrap();
        assert_eq!(address_name(&a).as_deref(), Some(r"John\.Doe.example.org"));
    }

    #[test]
    fn fetched_bodies_parse_as_der_or_pem_and_nothing_else() {
        assert!(parse_certs(b"not a certificate").is_none());
        assert!(parse_certs(b"").is_none());
        assert!(
            parse_certs(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .is_none()
        );
    }
}
