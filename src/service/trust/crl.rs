//! Revocation from CRLs: fetched from the distribution points a certificate names, through the
//! egress guard, and kept in the database until their nextUpdate.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use openssl::x509::{CrlStatus, X509, X509Crl};
use sqlx::PgPool;

use super::{TrustContext, fetch};
use crate::store;

/// A certificate names at most this many CRL URLs we try.
const MAX_POINTS: usize = 4;
/// One decision looks at most this many CRLs (each fetch has its own timeout).
const MAX_CRLS: usize = 8;

/// The CRLs the certificates of one decision point to, by URL.
#[derive(Default)]
pub struct Crls {
    by_url: HashMap<String, X509Crl>,
}

/// The http(s) CRL distribution point URLs of `cert`.
pub fn points(cert: &X509) -> Vec<String> {
    let mut out = Vec::new();
    let Some(dps) = cert.crl_distribution_points() else {
        return out;
    };
    for dp in dps.iter().take(MAX_POINTS) {
        let Some(names) = dp.distpoint().and_then(|n| n.fullname()) else {
            continue;
        };
        for n in names.iter().take(MAX_POINTS) {
            if let Some(uri) = n.uri()
                && (uri.starts_with("http://") || uri.starts_with("https://"))
                && out.len() < MAX_POINTS
            {
                out.push(uri.to_owned());
            }
        }
    }
    out
}

impl Crls {
    /// Gets (from the cache, else the network) the CRLs every certificate in `certs` points to.
    /// A CRL that cannot be had is left out: the certificate's revocation is then unknown.
    pub async fn gather(
        db: &PgPool,
        ctx: &TrustContext,
        certs: &[&X509],
        now: DateTime<Utc>,
    ) -> Self {
        let mut crls = Crls::default();
        let mut tried = 0;
        for cert in certs.iter().take(crate::direct::validate::MAX_CHAIN + 1) {
            for url in points(cert) {
                if crls.by_url.contains_key(&url) {
                    continue;
                }
                if tried >= MAX_CRLS {
                    return crls;
                }
                tried += 1;
                match load(db, ctx, &url, now).await {
                    Ok(crl) => {
                        crls.by_url.insert(url, crl);
                    }
                    Err(e) => tracing::warn!(url = %url, error = %e, "CRL unavailable"),
                }
            }
        }
        crls
    }

    /// The answer `validate::check` wants: `Some(true)` when a CRL signed by `issuer` lists
    /// `cert`, `Some(false)` when one such CRL does not, `None` when no such CRL was had.
    pub fn revoked(&self, cert: &X509, issuer: &X509) -> Option<bool> {
        let key = issuer.public_key().ok()?;
        let mut checked = false;
        for url in points(cert) {
            let Some(crl) = self.by_url.get(&url) else {
                continue;
            };
            let signed_by_issuer = crl.verify(&key).unwrap_or(false)
                && crl
                    .issuer_name()
                    .try_cmp(issuer.subject_name())
                    .is_ok_and(|o| o.is_eq());
            if !signed_by_issuer {
                continue;
            }
            if matches!(
                crl.get_by_serial(cert.serial_number()),
                CrlStatus::Revoked(_)
            ) {
                return Some(true);
            }
            checked = true;
        }
        checked.then_some(false)
    }
}

async fn load(
    db: &PgPool,
    ctx: &TrustContext,
    url: &str,
    now: DateTime<Utc>,
) -> Result<X509Crl, String> {
    if let Some(der) = store::trust::current_crl(db, url, now)
        .await
        .map_err(|e| e.to_string())?
        && let Ok(crl) = X509Crl::from_der(&der)
    {
        return Ok(crl);
    }
    let body = fetch::get(ctx, url).await?;
    let crl = X509Crl::from_der(&body)
        .or_else(|_| X509Crl::from_pem(&body))
        .map_err(|_| "not a CRL".to_string())?;
    // Without a nextUpdate the CRL says nothing of how long it holds: keep it an hour.
    let next = crl
        .next_update()
        .and_then(|t| crate::ca::asn1_to_utc(t).ok())
        .unwrap_or(now + Duration::hours(1));
    if next > now {
        let der = crl.to_der().map_err(|e| e.to_string())?;
        store::trust::put_crl(db, url, &der, next)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(crl)
}
