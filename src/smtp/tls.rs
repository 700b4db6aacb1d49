//! STARTTLS: the server certificate, from PEM files or generated at start for development,
//! served with rustls on the process's one crypto provider (aws-lc-rs).

use std::sync::Arc;

use anyhow::Context as _;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Builder, X509NameBuilder};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::SmtpConfig;

/// The acceptor for `smtp.tls_certificate`/`smtp.tls_key`, or for a self-signed certificate
/// naming `hostname` when both are empty.
pub fn acceptor(config: &SmtpConfig, hostname: &str) -> anyhow::Result<TlsAcceptor> {
    let (chain, key) = if config.tls_certificate.is_empty() {
        tracing::warn!(
            hostname,
            "smtp STARTTLS uses a self-signed certificate generated at start; set \
             smtp.tls_certificate and smtp.tls_key for production"
        );
        self_signed(hostname).context("generating the self-signed SMTP certificate")?
    } else {
        load(&config.tls_certificate, &config.tls_key)?
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the SMTP TLS certificate and key do not fit together")?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn load(
    cert: &str,
    key: &str,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading smtp.tls_certificate {cert}"))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing smtp.tls_certificate {cert}"))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "smtp.tls_certificate {cert} holds no certificate"
    );
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading smtp.tls_key {key}"))?;
    Ok((chain, key))
}

/// A P-256 certificate for `hostname`, valid a year: quick to make at every start.
fn self_signed(
    hostname: &str,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, hostname)?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let (not_before, not_after) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(365)?);
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let mut san = SubjectAlternativeName::new();
    if hostname.parse::<std::net::IpAddr>().is_ok() {
        san.ip(hostname);
    } else {
        san.dns(hostname);
    }
    let san = san.build(&b.x509v3_context(None, None))?;
    b.append_extension(san)?;
    b.sign(&key, MessageDigest::sha256())?;
    let cert = b.build();
    Ok((
        vec![CertificateDer::from(cert.to_der()?)],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.private_key_to_pkcs8()?)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_names_the_host_and_fits_its_key() {
        let (chain, _key) = self_signed("mx.example.org").unwrap();
        let cert = openssl::x509::X509::from_der(&chain[0]).unwrap();
        let names: Vec<String> = cert
            .subject_alt_names()
            .unwrap()
            .iter()
            .filter_map(|n| n.dnsname().map(str::to_owned))
            .collect();
        assert_eq!(names, ["mx.example.org"]);
        let mut c = crate::config::Config::defaults().smtp;
        c.tls_certificate.clear();
        acceptor(&c, "mx.example.org").unwrap();
    }
}
