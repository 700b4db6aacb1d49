//! A peer HISP's PKI, made by the test with openssl: a root and end-entity certificates with
//! whatever flaw a case needs (expired, weak, unbound, revoked).

use chrono::{DateTime, Duration as Span, Utc};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Crl, X509NameBuilder};

pub struct PeerCa {
    pub cert: X509,
    pub key: PKey<Private>,
}

pub struct Leaf {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl Leaf {
    pub fn cert_pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().unwrap()).unwrap()
    }
    pub fn key_pem(&self) -> String {
        String::from_utf8(self.key.private_key_to_pem_pkcs8().unwrap()).unwrap()
    }
}

/// How to make a leaf.
pub struct LeafSpec<'a> {
    pub email: &'a str,
    pub bits: u32,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub crl_url: Option<&'a str>,
}

impl<'a> LeafSpec<'a> {
    pub fn good(email: &'a str) -> Self {
        Self {
            email,
            bits: 2048,
            not_before: Utc::now() - Span::days(1),
            not_after: Utc::now() + Span::days(365),
            crl_url: None,
        }
    }
}

fn time(t: DateTime<Utc>) -> Asn1Time {
    Asn1Time::from_unix(t.timestamp()).unwrap()
}

fn serial() -> Asn1Integer {
    let mut bn = BigNum::new().unwrap();
    bn.rand(120, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .unwrap();
    bn.to_asn1_integer().unwrap()
}

impl PeerCa {
    pub fn new(name: &str) -> Self {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut n = X509NameBuilder::new().unwrap();
        n.append_entry_by_text("CN", name).unwrap();
        let n = n.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&serial()).unwrap();
        b.set_subject_name(&n).unwrap();
        b.set_issuer_name(&n).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&time(Utc::now() - Span::days(2))).unwrap();
        b.set_not_after(&time(Utc::now() + Span::days(3650)))
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(ski).unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        Self {
            cert: b.build(),
            key,
        }
    }

    pub fn pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().unwrap()).unwrap()
    }

    pub fn leaf(&self, spec: &LeafSpec) -> Leaf {
        let key = PKey::from_rsa(Rsa::generate(spec.bits).unwrap()).unwrap();
        let mut n = X509NameBuilder::new().unwrap();
        n.append_entry_by_text("CN", spec.email).unwrap();
        let n = n.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&serial()).unwrap();
        b.set_subject_name(&n).unwrap();
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&time(spec.not_before)).unwrap();
        b.set_not_after(&time(spec.not_after)).unwrap();
        b.append_extension(BasicConstraints::new().critical().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.append_extension(ExtendedKeyUsage::new().email_protection().build().unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .email(spec.email)
            .build(&b.x509v3_context(Some(&self.cert), None))
            .unwrap();
        b.append_extension(san).unwrap();
        if let Some(url) = spec.crl_url {
            // The config-string form is the shortest way to a distribution point here.
            #[allow(deprecated)]
            let ext = openssl::x509::X509Extension::new_nid(
                None,
                Some(&b.x509v3_context(Some(&self.cert), None)),
                openssl::nid::Nid::CRL_DISTRIBUTION_POINTS,
                &format!("URI:{url}"),
            )
            .unwrap();
            b.append_extension(ext).unwrap();
        }
        b.sign(&self.key, MessageDigest::sha256()).unwrap();
        Leaf {
            cert: b.build(),
            key,
        }
    }

    /// A CRL listing `revoked`, valid for a day.
    pub fn crl(&self, revoked: &[&X509]) -> Vec<u8> {
        let mut b = openssl::x509::X509CrlBuilder::new().unwrap();
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        b.set_last_update(&time(Utc::now() - Span::hours(1)))
            .unwrap();
        b.set_next_update(&time(Utc::now() + Span::days(1)))
            .unwrap();
        for c in revoked {
            let mut e = openssl::x509::X509RevokedBuilder::new().unwrap();
            e.set_serial_number(c.serial_number()).unwrap();
            e.set_revocation_date(&time(Utc::now() - Span::minutes(30)))
                .unwrap();
            b.add_revoked(e.build()).unwrap();
        }
        // AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier }, which openssl requires of
        // a CRL it signs.
        let id = self.cert.subject_key_id().unwrap().as_slice().to_vec();
        let mut aki = vec![0x30, id.len() as u8 + 2, 0x80, id.len() as u8];
        aki.extend_from_slice(&id);
        let ext = openssl::x509::X509Extension::new_from_der(
            &openssl::asn1::Asn1Object::from_str("2.5.29.35").unwrap(),
            false,
            &openssl::asn1::Asn1OctetString::new_from_bytes(&aki).unwrap(),
        )
        .unwrap();
        b.append_extension(ext).unwrap();
        // CRLNumber ::= INTEGER, here 1.
        let number = openssl::x509::X509Extension::new_from_der(
            &openssl::asn1::Asn1Object::from_str("2.5.29.20").unwrap(),
            false,
            &openssl::asn1::Asn1OctetString::new_from_bytes(&[0x02, 0x01, 0x01]).unwrap(),
        )
        .unwrap();
        b.append_extension(number).unwrap();
        b.sign(&self.key, MessageDigest::sha256()).unwrap();
        let crl: X509Crl = b.build().unwrap();
        crl.to_der().unwrap()
    }
}
