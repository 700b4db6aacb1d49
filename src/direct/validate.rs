//! Whether a peer's certificate may be used for Direct: it chains to one of the anchors that
//! apply, is in date at the moment given, is not revoked, carries a strong key, is bound to the
//! address or domain it is used for, and may protect e-mail. Pure: revocation answers come
//! from CRLs the caller fetched.

use chrono::{DateTime, Utc};
use openssl::asn1::Asn1Time;
use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509ExtendedKeyUsage, X509Ref, X509StoreContext};

use crate::domain::pki::DirectAddress;

/// What a certificate is used for: an address, or a domain (a domain-bound certificate).
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Address(&'a DirectAddress),
    Domain(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertProblem {
    #[error("the certificate does not chain to a trust anchor of the domain: {0}")]
    Untrusted(String),
    #[error("the certificate has expired")]
    Expired,
    #[error("the certificate is not valid yet")]
    NotYetValid,
    #[error("the certificate is revoked")]
    Revoked,
    #[error("weak cryptography: {0}")]
    WeakKey(String),
    #[error("the certificate is not bound to the address or its domain")]
    NameMismatch,
    #[error("the certificate's extended key usage does not include e-mail protection")]
    NotForEmail,
    #[error("the certificate cannot be read")]
    Unreadable,
}

/// More certificates than this offered with one certificate are not looked at (a chain in
/// Direct is two or three long; a peer sending thousands is not building a chain).
pub const MAX_CHAIN: usize = 16;

// OpenSSL's verify result codes we tell apart (x509_vfy.h); the rest are "untrusted".
const V_ERR_CERT_NOT_YET_VALID: i32 = 9;
const V_ERR_CERT_HAS_EXPIRED: i32 = 10;
const V_ERR_EE_KEY_TOO_SMALL: i32 = 66;
const V_ERR_CA_KEY_TOO_SMALL: i32 = 67;
const V_ERR_CA_MD_TOO_WEAK: i32 = 68;

/// Checks `cert` for use with `target` at `now`. `chain` = the certificates the peer offered
/// with it (untrusted, used only to build the path); `anchors` = the trust anchors that apply
/// (any of them may end a path, self-signed or not). `revoked(cert, issuer)` answers from CRLs
/// the caller fetched: `Some(true)` revoked, `Some(false)` checked and good, `None` unknown
/// (no CRL could be had), which this function accepts: the caller decides how hard to fail on
/// unknown revocation before calling.
pub fn check(
    cert: &X509,
    chain: &[X509],
    anchors: &[X509],
    target: &Target,
    now: DateTime<Utc>,
    revoked: &dyn Fn(&X509, &X509) -> Option<bool>,
) -> Result<(), CertProblem> {
    let at = Asn1Time::from_unix(now.timestamp()).map_err(|_| CertProblem::Unreadable)?;
    if cert.not_before() > at {
        return Err(CertProblem::NotYetValid);
    }
    if cert.not_after() < at {
        return Err(CertProblem::Expired);
    }
    strong_key(cert)?;
    strong_signature(cert)?;
    if let Some(eku) = cert.extended_key_usage()
        && !eku.contains(X509ExtendedKeyUsage::SMIME)
        && !eku.contains(X509ExtendedKeyUsage::ANYEKU)
    {
        return Err(CertProblem::NotForEmail);
    }
    if !binds(cert, target) {
        return Err(CertProblem::NameMismatch);
    }
    let path = build_path(cert, chain, anchors, now)?;
    let anchor_ders: Vec<Vec<u8>> = anchors.iter().filter_map(|a| a.to_der().ok()).collect();
    let is_anchor = |c: &X509| c.to_der().is_ok_and(|d| anchor_ders.contains(&d));
    // The path runs leaf first; every certificate that is not itself an anchor was signed by
    // the next one, and that signature must be strong and that certificate not revoked.
    for pair in path.windows(2) {
        let (subject, issuer) = (&pair[0], &pair[1]);
        if is_anchor(subject) {
            break;
        }
        strong_key(subject)?;
        strong_signature(subject)?;
        if revoked(subject, issuer) == Some(true) {
            return Err(CertProblem::Revoked);
        }
    }
    Ok(())
}

/// Whether `cert` names `target`: an rfc822Name equal to the address (case-insensitive), or a
/// dNSName equal to the domain (the address's domain for an address). No wildcards, and the
/// subject's emailAddress attribute does not count: Direct binds names in subjectAltName.
pub fn binds(cert: &X509, target: &Target) -> bool {
    let Some(names) = cert.subject_alt_names() else {
        return false;
    };
    let (address, domain) = match target {
        Target::Address(a) => (Some(a.to_string()), a.domain().as_str()),
        Target::Domain(d) => (None, *d),
    };
    let domain = domain.trim_end_matches('.');
    names.iter().take(256).any(|n| {
        if let (Some(email), Some(a)) = (n.email(), address.as_deref()) {
            return !email.contains('*') && email.eq_ignore_ascii_case(a);
        }
        if let Some(dns) = n.dnsname() {
            return !dns.contains('*') && dns.trim_end_matches('.').eq_ignore_ascii_case(domain);
        }
        false
    })
}

/// Whether `cert` is bound to the address itself (rfc822Name), not only to its domain.
pub fn address_bound(cert: &X509, address: &DirectAddress) -> bool {
    let a = address.to_string();
    cert.subject_alt_names().is_some_and(|names| {
        names
            .iter()
            .take(256)
            .any(|n| n.email().is_some_and(|e| e.eq_ignore_ascii_case(&a)))
    })
}

/// RSA of at least 2048 bits, or ECDSA on P-256 or P-384.
fn strong_key(cert: &X509Ref) -> Result<(), CertProblem> {
    let key = cert.public_key().map_err(|_| CertProblem::Unreadable)?;
    match key.id() {
        Id::RSA => {
            let bits = key.bits();
            if bits < 2048 {
                return Err(CertProblem::WeakKey(format!("RSA key of {bits} bits")));
            }
            Ok(())
        }
        Id::EC => {
            let ec = key.ec_key().map_err(|_| CertProblem::Unreadable)?;
            match ec.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) | Some(Nid::SECP384R1) => Ok(()),
                other => Err(CertProblem::WeakKey(format!(
                    "EC curve {} is not P-256 or P-384",
                    other
                        .and_then(|n| n.short_name().ok())
                        .unwrap_or("(unnamed)")
                ))),
            }
        }
        other => Err(CertProblem::WeakKey(format!(
            "key type {other:?} is not RSA or ECDSA"
        ))),
    }
}

/// No certificate we rely on may be signed with SHA-1 or MD5 (a self-signed anchor's own
/// signature is never relied on, so it is not checked).
fn strong_signature(cert: &X509Ref) -> Result<(), CertProblem> {
    let nid = cert.signature_algorithm().object().nid();
    let weak = [
        Nid::SHA1WITHRSAENCRYPTION,
        Nid::ECDSA_WITH_SHA1,
        Nid::DSAWITHSHA1,
        Nid::MD5WITHRSAENCRYPTION,
        Nid::MD2WITHRSAENCRYPTION,
        Nid::MD4WITHRSAENCRYPTION,
        Nid::SHA1WITHRSA,
    ];
    if weak.contains(&nid) {
        let name = nid.long_name().unwrap_or("a weak digest");
        return Err(CertProblem::WeakKey(format!("signed with {name}")));
    }
    Ok(())
}

/// The verified path from `cert` to an anchor, leaf first, built by OpenSSL at `now`.
fn build_path(
    cert: &X509,
    chain: &[X509],
    anchors: &[X509],
    now: DateTime<Utc>,
) -> Result<Vec<X509>, CertProblem> {
    if anchors.is_empty() {
        return Err(CertProblem::Untrusted(
            "the domain has no trust anchors".into(),
        ));
    }
    let internal = |_| CertProblem::Untrusted("the path could not be built".into());
    let mut store = X509StoreBuilder::new().map_err(internal)?;
    for a in anchors {
        // A duplicate anchor is refused by OpenSSL and changes nothing.
        let _ = store.add_cert(a.clone());
    }
    let mut param = X509VerifyParam::new().map_err(internal)?;
    param.set_time(now.timestamp() as _);
    // Direct anchors are often intermediate CAs: any certificate in the store ends a path.
    param
        .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
        .map_err(internal)?;
    store.set_param(&param).map_err(internal)?;
    let store = store.build();
    let mut untrusted = Stack::new().map_err(internal)?;
    for c in chain.iter().take(MAX_CHAIN) {
        untrusted.push(c.clone()).map_err(internal)?;
    }
    let mut ctx = X509StoreContext::new().map_err(internal)?;
    let outcome = ctx
        .init(&store, cert, &untrusted, |c| {
            let ok = c.verify_cert()?;
            let path = c
                .chain()
                .map(|s| s.iter().map(|x| x.to_owned()).collect::<Vec<X509>>())
                .unwrap_or_default();
            Ok((ok, c.error(), path))
        })
        .map_err(internal)?;
    match outcome {
        (true, _, path) => Ok(path),
        (false, err, _) => Err(match err.as_raw() {
            V_ERR_CERT_HAS_EXPIRED => CertProblem::Expired,
            V_ERR_CERT_NOT_YET_VALID => CertProblem::NotYetValid,
            V_ERR_EE_KEY_TOO_SMALL | V_ERR_CA_KEY_TOO_SMALL | V_ERR_CA_MD_TOO_WEAK => {
                CertProblem::WeakKey(err.error_string().to_owned())
            }
            _ => CertProblem::Untrusted(err.error_string().to_owned()),
        }),
    }
}
