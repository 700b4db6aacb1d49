//! The gateway's certificate authority: building root, issuing and Direct leaf certificates and
//! CRLs with openssl. No database here; `service::pki` decides what to issue and stores it.

pub mod der;
pub mod parsed;
pub mod sealed;

use chrono::{DateTime, Months, TimeDelta, Utc};
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{
    X509, X509Builder, X509Crl, X509CrlBuilder, X509Extension, X509Name, X509NameRef,
    X509RevokedBuilder,
};

use crate::config::CaConfig;
use crate::domain::pki::{CertificateCategory, DirectAddress, DirectDomain, KeyUse, ValidityYears};

/// Leaves start a little in the past so a peer whose clock lags still accepts them.
const BACKDATE: TimeDelta = TimeDelta::minutes(5);
const ROOT_YEARS: u32 = 20;
const ISSUING_YEARS: u32 = 10;

/// Where peers fetch our CA certificates and CRLs (served by `rest::pki`).
pub fn root_cert_url(base: &str) -> String {
    format!("{}/pki/root.crt", base.trim_end_matches('/'))
}
pub fn root_crl_url(base: &str) -> String {
    format!("{}/pki/root.crl", base.trim_end_matches('/'))
}
pub fn issuing_cert_url(base: &str) -> String {
    format!("{}/pki/issuing.crt", base.trim_end_matches('/'))
}
pub fn issuing_crl_url(base: &str) -> String {
    format!("{}/pki/issuing.crl", base.trim_end_matches('/'))
}

/// A CA certificate with its private key.
pub struct Authority {
    pub cert: X509,
    pub key: PKey<Private>,
}

/// Whose name a Direct certificate carries.
#[derive(Debug, Clone)]
pub enum Binding {
    /// Domain-bound: SAN dNSName.
    Domain(DirectDomain),
    /// Address-bound: SAN rfc822Name.
    Address(DirectAddress),
}

impl Binding {
    pub fn subject(&self) -> String {
        match self {
            Binding::Domain(d) => d.to_string(),
            Binding::Address(a) => a.to_string(),
        }
    }
}

pub struct LeafProfile<'a> {
    pub binding: &'a Binding,
    pub organization_name: &'a str,
    pub category: CertificateCategory,
    pub years: ValidityYears,
    pub key_use: KeyUse,
    pub now: DateTime<Utc>,
}

pub fn generate_key(bits: u32) -> anyhow::Result<PKey<Private>> {
    Ok(PKey::from_rsa(Rsa::generate(bits)?)?)
}

/// A random positive 128-bit serial, as RFC 5280 recommends (unpredictable, at most 20 bytes).
fn serial() -> anyhow::Result<Asn1Integer> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)?;
    Ok(bn.to_asn1_integer()?)
}

pub fn serial_hex(cert: &X509) -> anyhow::Result<String> {
    Ok(cert.serial_number().to_bn()?.to_hex_str()?.to_string())
}

fn time(t: DateTime<Utc>) -> anyhow::Result<Asn1Time> {
    Ok(Asn1Time::from_unix(t.timestamp())?)
}

fn name(organization: &str, common_name: &str) -> anyhow::Result<X509Name> {
    let mut n = X509Name::builder()?;
    n.append_entry_by_text("C", "US")?;
    n.append_entry_by_text("O", organization)?;
    n.append_entry_by_text("CN", common_name)?;
    Ok(n.build())
}

fn der_extension(oid: &str, critical: bool, der: &[u8]) -> anyhow::Result<X509Extension> {
    let oid = Asn1Object::from_str(oid)?;
    let value = Asn1OctetString::new_from_bytes(der)?;
    Ok(X509Extension::new_from_der(&oid, critical, &value)?)
}

fn builder(
    subject: &X509NameRef,
    issuer: &X509NameRef,
    public: &PKey<Private>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> anyhow::Result<X509Builder> {
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let (serial, not_before, not_after) = (serial()?, time(not_before)?, time(not_after)?);
    b.set_serial_number(&serial)?;
    b.set_subject_name(subject)?;
    b.set_issuer_name(issuer)?;
    b.set_pubkey(public)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    Ok(b)
}

fn years_after(t: DateTime<Utc>, years: u32) -> DateTime<Utc> {
    t.checked_add_months(Months::new(12 * years))
        .expect("date in range")
}

/// A self-signed root CA.
pub fn create_root(c: &CaConfig, now: DateTime<Utc>) -> anyhow::Result<Authority> {
    let key = generate_key(c.ca_key_bits)?;
    let subject = name(&c.organization, &c.root_common_name)?;
    let mut b = builder(
        &subject,
        &subject,
        &key,
        now - BACKDATE,
        years_after(now, ROOT_YEARS),
    )?;
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok(Authority {
        cert: b.build(),
        key,
    })
}

/// The intermediate that signs leaves and the leaf CRL; may not sign other CAs (pathlen 0).
pub fn create_issuing(
    root: &Authority,
    c: &CaConfig,
    base_url: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Authority> {
    let key = generate_key(c.ca_key_bits)?;
    let subject = name(&c.organization, &c.issuing_common_name)?;
    let not_after = years_after(now, ISSUING_YEARS).min(asn1_to_utc(root.cert.not_after())?);
    let mut b = builder(
        &subject,
        root.cert.subject_name(),
        &key,
        now - BACKDATE,
        not_after,
    )?;
    b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .digital_signature()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&root.cert), None))?;
    b.append_extension(ski)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(&root.cert), None))?;
    b.append_extension(aki)?;
    b.append_extension(der_extension(
        "2.5.29.31",
        false,
        &der::crl_distribution_point(&root_crl_url(base_url)),
    )?)?;
    b.append_extension(der_extension(
        "1.3.6.1.5.5.7.1.1",
        false,
        &der::ca_issuers(&root_cert_url(base_url)),
    )?)?;
    b.sign(&root.key, MessageDigest::sha256())?;
    Ok(Authority {
        cert: b.build(),
        key,
    })
}

/// A Direct end-entity certificate for `p`, signed by `issuer`, with a fresh key.
pub fn issue_leaf(
    issuer: &Authority,
    p: &LeafProfile<'_>,
    c: &CaConfig,
    base_url: &str,
) -> anyhow::Result<(X509, PKey<Private>)> {
    let key = generate_key(c.leaf_key_bits)?;
    let not_after = years_after(p.now, u32::from(p.years.get()));
    let issuer_end = asn1_to_utc(issuer.cert.not_after())?;
    anyhow::ensure!(
        not_after <= issuer_end,
        "the issuing CA expires on {issuer_end}, before this certificate would; renew the CA first"
    );
    let subject = name(p.organization_name, &p.binding.subject())?;
    let mut b = builder(
        &subject,
        issuer.cert.subject_name(),
        &key,
        p.now - BACKDATE,
        not_after,
    )?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    let mut ku = KeyUsage::new();
    ku.critical();
    match p.key_use {
        KeyUse::Dual => ku.digital_signature().key_encipherment(),
        KeyUse::Signing => ku.digital_signature(),
        KeyUse::Encryption => ku.key_encipherment(),
    };
    b.append_extension(ku.build()?)?;
    b.append_extension(ExtendedKeyUsage::new().email_protection().build()?)?;
    let mut san = SubjectAlternativeName::new();
    match p.binding {
        Binding::Domain(d) => san.dns(d.as_str()),
        Binding::Address(a) => san.email(&a.to_string()),
    };
    b.append_extension(san.build(&b.x509v3_context(Some(&issuer.cert), None))?)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&issuer.cert), None))?;
    b.append_extension(ski)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(&issuer.cert), None))?;
    b.append_extension(aki)?;
    let policies = der::certificate_policies(&[&c.policy_oid, &c.loa_oid, p.category.policy_oid()]);
    b.append_extension(der_extension("2.5.29.32", false, &policies)?)?;
    b.append_extension(der_extension(
        "2.5.29.31",
        false,
        &der::crl_distribution_point(&issuing_crl_url(base_url)),
    )?)?;
    b.append_extension(der_extension(
        "1.3.6.1.5.5.7.1.1",
        false,
        &der::ca_issuers(&issuing_cert_url(base_url)),
    )?)?;
    b.sign(&issuer.key, MessageDigest::sha256())?;
    Ok((b.build(), key))
}

/// A revoked certificate as the CRL lists it.
pub struct RevokedEntry {
    pub serial_hex: String,
    pub revoked_at: DateTime<Utc>,
}

/// A v2 CRL signed by `issuer`, numbered `number`.
pub fn sign_crl(
    issuer: &Authority,
    revoked: &[RevokedEntry],
    number: u64,
    this_update: DateTime<Utc>,
    next_update: DateTime<Utc>,
) -> anyhow::Result<X509Crl> {
    let mut b = X509CrlBuilder::new()?;
    b.set_issuer_name(issuer.cert.subject_name())?;
    let (this_update, next_update) = (time(this_update)?, time(next_update)?);
    b.set_last_update(&this_update)?;
    b.set_next_update(&next_update)?;
    for r in revoked {
        let mut e = X509RevokedBuilder::new()?;
        let serial = BigNum::from_hex_str(&r.serial_hex)?.to_asn1_integer()?;
        let at = time(r.revoked_at)?;
        e.set_serial_number(&serial)?;
        e.set_revocation_date(&at)?;
        b.add_revoked(e.build())?;
    }
    b.append_extension(der_extension("2.5.29.20", false, &der::integer(number))?)?;
    if let Some(ski) = issuer.cert.subject_key_id() {
        // AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier }
        let aki = der::sequence(&[der::tlv(0x80, ski.as_slice())]);
        b.append_extension(der_extension("2.5.29.35", false, &aki)?)?;
    }
    b.sort()?;
    b.sign(&issuer.key, MessageDigest::sha256())?;
    Ok(b.build()?)
}

pub fn asn1_to_utc(t: &openssl::asn1::Asn1TimeRef) -> anyhow::Result<DateTime<Utc>> {
    let epoch = Asn1Time::from_unix(0)?;
    let d = epoch.diff(t)?;
    Ok(DateTime::<Utc>::UNIX_EPOCH
        + TimeDelta::days(i64::from(d.days))
        + TimeDelta::seconds(i64::from(d.secs)))
}

/// Checks a CA certificate and key offered for import.
pub fn validate_import(cert: &X509, key: &PKey<Private>, now: DateTime<Utc>) -> Result<(), String> {
    if !cert.public_key().map_err(|e| e.to_string())?.public_eq(key) {
        return Err("the private key does not belong to the certificate".into());
    }
    let is_ca = cert
        .to_text()
        .map(|t| String::from_utf8_lossy(&t).contains("CA:TRUE"))
        .unwrap_or(false);
    if !is_ca {
        return Err("the certificate is not a CA certificate (basicConstraints CA:TRUE)".into());
    }
    let rsa_ok = key.rsa().map(|r| r.size() * 8 >= 2048).unwrap_or(false);
    if !rsa_ok {
        return Err("the CA key must be RSA of at least 2048 bits".into());
    }
    let not_after = asn1_to_utc(cert.not_after()).map_err(|e| e.to_string())?;
    if not_after <= now {
        return Err(format!("the CA certificate expired on {not_after}"));
    }
    Ok(())
}

/// True when `cert` is self-signed (its own issuer, verifiable with its own key).
pub fn is_self_signed(cert: &X509) -> bool {
    cert.public_key()
        .and_then(|k| cert.verify(&k))
        .unwrap_or(false)
        && cert.subject_name().to_der().ok() == cert.issuer_name().to_der().ok()
}
