//! Missing intermediates, fetched from the caIssuers URL of a certificate's Authority
//! Information Access: a certificate found in DNS usually comes alone, while our anchors of a
//! peer are often its root. Kept in memory for a day (issuer certificates do not change).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openssl::nid::Nid;
use openssl::pkcs7::Pkcs7;
use openssl::x509::{X509, X509Ref};

use super::{TrustContext, fetch};

/// How many issuers up from the certificate we fetch.
const MAX_DEPTH: usize = 3;
const KEEP: Duration = Duration::from_secs(24 * 3600);
const MAX_KEPT: usize = 1000;

/// Issuer certificates by URL.
#[derive(Default)]
pub struct IssuerCache {
    by_url: Mutex<HashMap<String, (X509, Instant)>>,
}

impl IssuerCache {
    fn get(&self, url: &str) -> Option<X509> {
        let map = self.by_url.lock().unwrap_or_else(|p| p.into_inner());
        map.get(url)
            .filter(|(_, at)| at.elapsed() < KEEP)
            .map(|(c, _)| c.clone())
    }

    fn put(&self, url: String, cert: X509) {
        let mut map = self.by_url.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEPT {
            map.retain(|_, (_, at)| at.elapsed() < KEEP);
            if map.len() >= MAX_KEPT {
                map.clear();
            }
        }
        map.insert(url, (cert, Instant::now()));
    }
}

fn ca_issuers(cert: &X509Ref) -> Option<String> {
    cert.authority_info()?
        .iter()
        .filter(|a| a.method().nid() == Nid::AD_CA_ISSUERS)
        .filter_map(|a| a.location().uri())
        .find(|u| u.starts_with("http://") || u.starts_with("https://"))
        .map(str::to_owned)
}

fn self_issued(cert: &X509Ref) -> bool {
    cert.issuer_name()
        .try_cmp(cert.subject_name())
        .is_ok_and(|o| o.is_eq())
}

/// DER, PEM, or a certs-only PKCS#7 (RFC 5280 allows all three at a caIssuers URL).
fn parse(body: &[u8]) -> Option<X509> {
    if let Ok(c) = X509::from_der(body).or_else(|_| X509::from_pem(body)) {
        return Some(c);
    }
    let p7 = Pkcs7::from_der(body)
        .or_else(|_| Pkcs7::from_pem(body))
        .ok()?;
    p7.signed()?
        .certificates()?
        .iter()
        .next()
        .map(|c| c.to_owned())
}

/// The issuers above `cert` that its AIA points to, nearest first; stops at the first one
/// that cannot be had, or at a self-issued one.
pub async fn chase(ctx: &TrustContext, cert: &X509) -> Vec<X509> {
    let mut found: Vec<X509> = Vec::new();
    let mut current = cert.clone();
    for _ in 0..MAX_DEPTH {
        if self_issued(&current) {
            break;
        }
        let Some(url) = ca_issuers(&current) else {
            break;
        };
        let issuer = match ctx.issuers.get(&url) {
            Some(c) => c,
            None => match fetch::get(ctx, &url).await.ok().and_then(|b| parse(&b)) {
                Some(c) => {
                    ctx.issuers.put(url, c.clone());
                    c
                }
                None => {
                    tracing::warn!(url = %url, "issuer certificate unavailable");
                    break;
                }
            },
        };
        found.push(issuer.clone());
        current = issuer;
    }
    found
}
