//! S/MIME for Direct (Applicability Statement 1.3): `seal` wraps, signs and encrypts an RFC 5322
//! message for other HISPs; `open` decrypts and verifies what they send us. Pure: no I/O, no
//! database, no trust decision (the caller judges the signer and chain this returns).
//!
//! openssl's safe CMS API cannot choose the signing digest, set RSA-OAEP on a recipient, or
//! say which algorithms a message used. The first two are the few FFI calls in [`ffi`]; the
//! third is a bounded read of the CMS DER in [`der`], which also finds the signer.

use chrono::{DateTime, Utc};
use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Private, Public};
use openssl::stack::Stack;
use openssl::symm;
use openssl::x509::{X509, X509Ref};

use super::entity::{self, EntityError};
use super::mime::base64_lines;

/// Largest outer message `open` reads (the decrypted content is smaller still).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Most certificates read from one signature (signer plus chain).
pub const MAX_CERTIFICATES: usize = 32;
/// Most RecipientInfos / SignerInfos read from one CMS structure.
pub const MAX_INFOS: usize = 256;

const CONTENT_TYPE_P7M: &str = "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m";
const CONTENT_TYPE_P7M_GCM: &str =
    "application/pkcs7-mime; smime-type=authEnveloped-data; name=smime.p7m";

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Digest {
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    fn md(self) -> MessageDigest {
        match self {
            Digest::Sha256 => MessageDigest::sha256(),
            Digest::Sha384 => MessageDigest::sha384(),
            Digest::Sha512 => MessageDigest::sha512(),
        }
    }

    /// The `micalg` parameter of multipart/signed (RFC 5751 §3.4.3.2).
    pub fn micalg(self) -> &'static str {
        match self {
            Digest::Sha256 => "sha-256",
            Digest::Sha384 => "sha-384",
            Digest::Sha512 => "sha-512",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cipher {
    #[serde(rename = "aes-128-cbc")]
    Aes128Cbc,
    #[serde(rename = "aes-256-cbc")]
    Aes256Cbc,
    #[serde(rename = "aes-128-gcm")]
    Aes128Gcm,
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
}

impl Cipher {
    fn symm(self) -> symm::Cipher {
        match self {
            Cipher::Aes128Cbc => symm::Cipher::aes_128_cbc(),
            Cipher::Aes256Cbc => symm::Cipher::aes_256_cbc(),
            Cipher::Aes128Gcm => symm::Cipher::aes_128_gcm(),
            Cipher::Aes256Gcm => symm::Cipher::aes_256_gcm(),
        }
    }

    fn is_aead(self) -> bool {
        matches!(self, Cipher::Aes128Gcm | Cipher::Aes256Gcm)
    }
}

/// How the content key reaches each recipient. `RsaOaepSha1` (OAEP with its default SHA-1
/// hash, which is not a weak use of SHA-1) is what older peers and `openssl cms -keyopt
/// rsa_padding_mode:oaep` produce; `open` reports it, and `seal` can produce it for such peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyTransport {
    #[serde(rename = "rsa-oaep-sha256")]
    RsaOaepSha256,
    #[serde(rename = "rsa-oaep-sha1")]
    RsaOaepSha1,
    #[serde(rename = "rsa-pkcs1v15")]
    RsaPkcs1v15,
}

#[derive(Clone, Copy, Debug)]
pub struct Algorithms {
    pub digest: Digest,
    pub cipher: Cipher,
    pub key_transport: KeyTransport,
}

impl Default for Algorithms {
    fn default() -> Self {
        Algorithms {
            digest: Digest::Sha256,
            cipher: Cipher::Aes256Cbc,
            key_transport: KeyTransport::RsaOaepSha256,
        }
    }
}

pub struct Signer<'a> {
    pub cert: &'a X509,
    pub key: &'a PKeyRef<Private>,
    pub chain: &'a [X509],
}

/// Outer headers of a Direct message; values are checked for CR/LF (header injection → Err).
pub struct Envelope<'a> {
    pub from: &'a str,
    pub to: &'a [String],
    /// `<id@host>`
    pub message_id: &'a str,
    pub date: DateTime<Utc>,
    pub subject: &'a str,
    pub request_final_delivery: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SmimeError {
    #[error("header injection in {0}")]
    HeaderInjection(String),
    #[error("weak key: {0}")]
    WeakKey(String),
    /// Input `seal` cannot use (no recipient certificate, no `to` address).
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("openssl: {0}")]
    Openssl(#[from] ErrorStack),
}

/// What `open` found in a message that decrypted and whose signature verified.
#[derive(Debug)]
pub struct Opened {
    pub outer: Headers,
    /// The inner RFC 5322 message (unwrapped when wrapped), CRLF line endings.
    pub inner: Vec<u8>,
    /// From of the inner message (the caller checks it equals the outer From).
    pub inner_from: Option<String>,
    pub signer: X509,
    /// The other certificates the signature carried, in their order.
    pub chain: Vec<X509>,
    pub digest: Digest,
    pub cipher: Cipher,
    pub key_transport: KeyTransport,
    /// Index into `keys` of the key that decrypted the message.
    pub decrypted_with: usize,
    /// False when the signed entity was not message/rfc822 (an unwrapped Direct message):
    /// `inner` is then the signed entity itself.
    pub wrapped: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Headers {
    pub from: Option<String>,
    pub to: Vec<String>,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub disposition_notification_to: Option<String>,
    pub final_delivery_requested: bool,
}

/// Why `open` refused a message: a stable machine code ([`Rejection::code`]) and text for ops.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("the message is not encrypted")]
    NotEncrypted,
    #[error("no recipient in the message matches one of our keys")]
    NoKey,
    #[error("decryption failed: {0}")]
    Decrypt(String),
    #[error("the message is not signed")]
    Unsigned,
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("weak digest: {0}")]
    WeakDigest(String),
    #[error("weak signer key: {0}")]
    WeakKey(String),
    /// Larger than [`MAX_MESSAGE_BYTES`], or more than [`entity::MAX_PARTS`] MIME parts.
    #[error("the message is too large")]
    TooLarge,
    /// Nested deeper than [`entity::MAX_DEPTH`].
    #[error("the message is nested too deeply")]
    TooDeep,
    #[error("header injection")]
    HeaderInjection,
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::NotEncrypted => "not-encrypted",
            Rejection::NoKey => "no-key",
            Rejection::Decrypt(_) => "decrypt",
            Rejection::Unsigned => "unsigned",
            Rejection::BadSignature(_) => "bad-signature",
            Rejection::WeakDigest(_) => "weak-digest",
            Rejection::WeakKey(_) => "weak-key",
            Rejection::TooLarge => "too-large",
            Rejection::TooDeep => "too-deep",
            Rejection::HeaderInjection => "header-injection",
        }
    }
}

impl From<EntityError> for Rejection {
    fn from(e: EntityError) -> Self {
        match e {
            EntityError::Malformed(m) => Rejection::Malformed(m),
            EntityError::HeaderInjection => Rejection::HeaderInjection,
            EntityError::TooDeep => Rejection::TooDeep,
            EntityError::TooManyParts => Rejection::TooLarge,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Outbound

/// inner = a complete RFC 5322 message. Wraps it (a message/rfc822 entity carrying its
/// headers), signs it (multipart/signed, detached, signer certificate and chain included),
/// encrypts it to every recipient certificate and puts the outer headers on top. With
/// `request_final_delivery` the message asks for timely & reliable delivery notification
/// (Disposition-Notification-To and -Options).
pub fn seal(
    inner: &[u8],
    env: &Envelope,
    signer: &Signer,
    recipients: &[X509],
    alg: Algorithms,
) -> Result<Vec<u8>, SmimeError> {
    seal_with(
        inner,
        env,
        signer,
        recipients,
        alg,
        env.request_final_delivery,
    )
}

/// The same for an MDN/DSN body built by `mdn.rs`: never asks for notifications itself.
pub fn seal_notification(
    inner: &[u8],
    env: &Envelope,
    signer: &Signer,
    recipients: &[X509],
    alg: Algorithms,
) -> Result<Vec<u8>, SmimeError> {
    seal_with(inner, env, signer, recipients, alg, false)
}

fn seal_with(
    inner: &[u8],
    env: &Envelope,
    signer: &Signer,
    recipients: &[X509],
    alg: Algorithms,
    ask_for_notifications: bool,
) -> Result<Vec<u8>, SmimeError> {
    let outer_headers = outer_headers(env, alg.cipher, ask_for_notifications)?;
    check_signer(signer)?;
    if recipients.is_empty() {
        return Err(SmimeError::Invalid("no recipient certificate".into()));
    }
    for cert in recipients {
        check_recipient(cert)?;
    }

    let mut wrapped = b"Content-Type: message/rfc822\r\n\r\n".to_vec();
    wrapped.extend_from_slice(&entity::to_crlf(inner));
    let signed = signed_entity(&wrapped, signer, alg.digest)?;
    let envelope = ffi::encrypt(&signed, recipients, alg.cipher, alg.key_transport)?;

    let mut out = outer_headers.into_bytes();
    out.extend_from_slice(&base64_lines(&envelope));
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

fn check_header_value(field: &str, value: &str) -> Result<(), SmimeError> {
    if value.contains(['\r', '\n', '\0']) {
        return Err(SmimeError::HeaderInjection(field.to_owned()));
    }
    Ok(())
}

fn outer_headers(
    env: &Envelope,
    cipher: Cipher,
    ask_for_notifications: bool,
) -> Result<String, SmimeError> {
    check_header_value("From", env.from)?;
    check_header_value("Message-ID", env.message_id)?;
    check_header_value("Subject", env.subject)?;
    for to in env.to {
        check_header_value("To", to)?;
    }
    if env.to.is_empty() {
        return Err(SmimeError::Invalid("no To address".into()));
    }
    let mut h = String::new();
    h.push_str(&format!("From: {}\r\n", env.from));
    // One address a line keeps long recipient lists under the 998-octet line limit.
    h.push_str(&format!("To: {}\r\n", env.to.join(",\r\n ")));
    h.push_str(&format!("Date: {}\r\n", env.date.to_rfc2822()));
    h.push_str(&format!("Message-ID: {}\r\n", env.message_id));
    h.push_str(&format!("Subject: {}\r\n", encode_subject(env.subject)));
    h.push_str("MIME-Version: 1.0\r\n");
    if ask_for_notifications {
        h.push_str(&format!("Disposition-Notification-To: {}\r\n", env.from));
        h.push_str(
            "Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n",
        );
    }
    let content_type = if cipher.is_aead() {
        CONTENT_TYPE_P7M_GCM
    } else {
        CONTENT_TYPE_P7M
    };
    h.push_str(&format!("Content-Type: {content_type}\r\n"));
    h.push_str("Content-Transfer-Encoding: base64\r\n");
    h.push_str("Content-Disposition: attachment; filename=smime.p7m\r\n\r\n");
    Ok(h)
}

/// A subject that is not plain printable ASCII goes as one RFC 2047 encoded word.
fn encode_subject(subject: &str) -> String {
    if subject.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        subject.to_owned()
    } else {
        use base64::Engine as _;
        format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(subject)
        )
    }
}

/// multipart/signed around `content` (already CRLF), with its headers.
fn signed_entity(content: &[u8], signer: &Signer, digest: Digest) -> Result<Vec<u8>, SmimeError> {
    let signature = ffi::sign_detached(content, signer, digest)?;
    let boundary = loop {
        let b = format!("----=_smime_{:032x}", rand::random::<u128>());
        if memchr::memmem::find(content, b.as_bytes()).is_none() {
            break b;
        }
    };
    let mut out = Vec::with_capacity(content.len() + signature.len() * 4 / 3 + 512);
    out.extend_from_slice(
        format!(
            "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
             micalg={}; boundary=\"{boundary}\"\r\n\r\n",
            digest.micalg()
        )
        .as_bytes(),
    );
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    out.extend_from_slice(content);
    out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    out.extend_from_slice(
        b"Content-Type: application/pkcs7-signature; name=smime.p7s\r\n\
          Content-Transfer-Encoding: base64\r\n\
          Content-Disposition: attachment; filename=smime.p7s\r\n\r\n",
    );
    out.extend_from_slice(&base64_lines(&signature));
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(out)
}

/// Why a public key is too weak for Direct, if it is: RSA under 2048 bits, EC other than
/// P-256/P-384, any other algorithm.
fn weakness(key: &PKeyRef<Public>, ec_allowed: bool) -> Option<String> {
    match key.id() {
        Id::RSA if key.bits() >= 2048 => None,
        Id::RSA => Some(format!("RSA {} bits", key.bits())),
        Id::EC if ec_allowed => {
            let curve = key.ec_key().ok().and_then(|k| k.group().curve_name());
            match curve {
                Some(Nid::X9_62_PRIME256V1 | Nid::SECP384R1) => None,
                other => Some(format!("EC curve {other:?}")),
            }
        }
        Id::EC => Some("EC key for encryption".to_owned()),
        other => Some(format!("key type {other:?}")),
    }
}

fn check_signer(signer: &Signer) -> Result<(), SmimeError> {
    let public = signer.cert.public_key()?;
    if let Some(why) = weakness(&public, true) {
        return Err(SmimeError::WeakKey(format!("signer certificate: {why}")));
    }
    if !signer.cert.public_key()?.public_eq(signer.key) {
        return Err(SmimeError::Invalid(
            "signer key does not match its certificate".into(),
        ));
    }
    Ok(())
}

fn check_recipient(cert: &X509Ref) -> Result<(), SmimeError> {
    let public = cert.public_key()?;
    if let Some(why) = weakness(&public, false) {
        return Err(SmimeError::WeakKey(format!("recipient certificate: {why}")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Inbound

/// Parses the outer message (bounded by [`MAX_MESSAGE_BYTES`], [`entity::MAX_DEPTH`] and
/// [`entity::MAX_PARTS`]), decrypts it with whichever of `keys` matches a RecipientInfo,
/// verifies the multipart/signed (or opaque signed-data) against the certificate the signature
/// carries — no chain or trust decision — and unwraps message/rfc822.
pub fn open(message: &[u8], keys: &[(X509, PKey<Private>)]) -> Result<Opened, Rejection> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(Rejection::TooLarge);
    }
    let outer = entity::parse(message)?;
    let headers = outer_headers_of(&outer);
    let (media, _) = outer.content_type();
    if !matches!(
        media.as_str(),
        "application/pkcs7-mime" | "application/x-pkcs7-mime"
    ) {
        return Err(Rejection::NotEncrypted);
    }
    let der = outer.decoded_body()?;
    let cms = CmsContentInfo::from_der(&der)
        .map_err(|_| Rejection::Malformed("unreadable CMS structure".into()))?;
    // Re-encoding gives definite-length DER even when the peer streamed BER.
    let der = cms
        .to_der()
        .map_err(|_| Rejection::Malformed("unreadable CMS structure".into()))?;
    let enveloped = der::enveloped(&der)?;

    let cipher = enveloped.cipher.ok_or_else(|| {
        Rejection::Decrypt(format!(
            "content cipher {} is not accepted",
            enveloped.cipher_oid
        ))
    })?;
    let (index, key_transport) = keys
        .iter()
        .enumerate()
        .find_map(|(i, (cert, _))| {
            enveloped
                .recipients
                .iter()
                .find(|r| r.id.matches(cert))
                .map(|r| (i, r.key_transport.clone()))
        })
        .ok_or(Rejection::NoKey)?;
    let key_transport = key_transport.map_err(Rejection::Decrypt)?;
    let (cert, key) = &keys[index];
    let plain = cms
        .decrypt(key, cert)
        .map_err(|e| Rejection::Decrypt(first_reason(&e)))?;

    let (signed_content, signature) = signed_parts(&plain)?;
    let verified = verify(&signature, signed_content.as_deref())?;

    let content = entity::to_crlf(&verified.content);
    entity::check_tree(&content)?;
    let signed = entity::parse(&content)?;
    let (media, _) = signed.content_type();
    let (inner, wrapped) = if media == "message/rfc822" {
        (entity::to_crlf(&signed.decoded_body()?), true)
    } else {
        (content.clone(), false)
    };
    let inner_entity = entity::parse(&inner)?;
    let inner_from = inner_entity
        .header("From")
        .and_then(|v| entity::addresses(v).into_iter().next());

    Ok(Opened {
        outer: headers,
        inner_from,
        inner,
        signer: verified.signer,
        chain: verified.chain,
        digest: verified.digest,
        cipher,
        key_transport,
        decrypted_with: index,
        wrapped,
    })
}

fn first_reason(e: &ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|e| e.reason())
        .unwrap_or("openssl error")
        .to_owned()
}

fn outer_headers_of(outer: &entity::Entity) -> Headers {
    let single = |name: &str| {
        outer
            .header(name)
            .and_then(|v| entity::addresses(v).into_iter().next())
    };
    let to = outer
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("To"))
        .flat_map(|(_, v)| entity::addresses(v))
        .take(entity::MAX_PARTS)
        .collect();
    Headers {
        from: single("From"),
        to,
        message_id: outer.header("Message-ID").map(str::to_owned),
        subject: outer.header("Subject").map(str::to_owned),
        disposition_notification_to: single("Disposition-Notification-To"),
        final_delivery_requested: outer
            .header("Disposition-Notification-Options")
            .is_some_and(asks_final_delivery),
    }
}

/// `X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true` (or `required,true`) among the
/// semicolon-separated options of Disposition-Notification-Options (RFC 3798 §2.2).
pub fn asks_final_delivery(options: &str) -> bool {
    options.split(';').any(|option| {
        let Some((name, value)) = option.split_once('=') else {
            return false;
        };
        name.trim()
            .eq_ignore_ascii_case(super::mime::FINAL_DELIVERY_OPTION)
            && value
                .split(',')
                .nth(1)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    })
}

/// The decrypted entity as (signed content for a detached signature, signature DER).
/// Opaque signed-data gives no detached content.
fn signed_parts(plain: &[u8]) -> Result<(Option<Vec<u8>>, Vec<u8>), Rejection> {
    let e = entity::parse(plain)?;
    let (media, params) = e.content_type();
    match media.as_str() {
        "multipart/signed" => {
            let boundary = entity::param(&params, "boundary")
                .ok_or_else(|| Rejection::Malformed("multipart/signed without boundary".into()))?;
            let parts = entity::split_multipart(e.body, boundary, entity::MAX_PARTS)?;
            let [content, signature, ..] = parts.as_slice() else {
                return Err(Rejection::Unsigned);
            };
            let signature = entity::parse(signature)?;
            let (media, _) = signature.content_type();
            if !matches!(
                media.as_str(),
                "application/pkcs7-signature" | "application/x-pkcs7-signature"
            ) {
                return Err(Rejection::Unsigned);
            }
            Ok((Some(content.to_vec()), signature.decoded_body()?))
        }
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => {
            let smime_type = entity::param(&params, "smime-type").map(str::to_ascii_lowercase);
            if smime_type.as_deref().is_some_and(|t| t != "signed-data") {
                return Err(Rejection::Unsigned);
            }
            Ok((None, e.decoded_body()?))
        }
        _ => Err(Rejection::Unsigned),
    }
}

struct Verified {
    content: Vec<u8>,
    signer: X509,
    chain: Vec<X509>,
    digest: Digest,
}

fn verify(signature: &[u8], detached: Option<&[u8]>) -> Result<Verified, Rejection> {
    let mut cms = CmsContentInfo::from_der(signature)
        .map_err(|_| Rejection::BadSignature("unreadable signature".into()))?;
    let der = cms
        .to_der()
        .map_err(|_| Rejection::BadSignature("unreadable signature".into()))?;
    let signed = der::signed(&der)?;
    let first = signed.signers.first().ok_or(Rejection::Unsigned)?;
    for s in &signed.signers {
        s.digest.clone().map_err(Rejection::WeakDigest)?;
    }
    let digest = first.digest.clone().map_err(Rejection::WeakDigest)?;

    let mut certs = Vec::new();
    for raw in &signed.certificates {
        certs.push(
            X509::from_der(raw)
                .map_err(|_| Rejection::BadSignature("unreadable certificate".into()))?,
        );
    }
    let signer_at = certs
        .iter()
        .position(|c| first.id.matches(c))
        .ok_or_else(|| Rejection::BadSignature("signer certificate not included".into()))?;
    let public = certs[signer_at]
        .public_key()
        .map_err(|_| Rejection::BadSignature("unreadable signer key".into()))?;
    if let Some(why) = weakness(&public, true) {
        return Err(Rejection::WeakKey(why));
    }

    // NOVERIFY: the signature is checked here, the signer's chain and trust by the caller.
    let flags = CMSOptions::NOVERIFY | CMSOptions::BINARY;
    let mut content = Vec::new();
    let outcome = match detached {
        Some(data) => {
            let first_try = cms.verify(None, None, Some(data), None, flags);
            match first_try {
                // A sender that signed its text canonicalised to CRLF while the transport gave
                // us bare LFs: the canonical form is what was signed (RFC 5751 §3.1.1).
                Err(_) if !entity::is_crlf(data) => {
                    let canonical = entity::to_crlf(data);
                    let again = cms.verify(None, None, Some(&canonical), None, flags);
                    content = canonical;
                    again
                }
                other => {
                    content = data.to_vec();
                    other
                }
            }
        }
        None => cms.verify(None, None, None, Some(&mut content), flags),
    };
    outcome.map_err(|e| Rejection::BadSignature(first_reason(&e)))?;

    let signer = certs.remove(signer_at);
    Ok(Verified {
        content,
        signer,
        chain: certs,
        digest,
    })
}

/// A bounded walk of CMS DER (RFC 5652) for what openssl's safe API does not expose: the
/// algorithms a message used, which RecipientInfo is ours, the certificates and signer ids.
mod der {
    use super::{Cipher, Digest, KeyTransport, MAX_CERTIFICATES, MAX_INFOS, Rejection};
    use openssl::x509::X509Ref;

    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const OID: u8 = 0x06;
    const INTEGER: u8 = 0x02;
    const CTX0: u8 = 0xa0;
    const CTX0_PRIMITIVE: u8 = 0x80;

    const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
    const ENVELOPED_DATA: &str = "1.2.840.113549.1.7.3";
    const AUTH_ENVELOPED_DATA: &str = "1.2.840.113549.1.9.16.1.23";

    fn malformed(what: &str) -> Rejection {
        Rejection::Malformed(format!("CMS: {what}"))
    }

    struct Tlv<'a> {
        tag: u8,
        content: &'a [u8],
        /// The whole element, tag and length included.
        raw: &'a [u8],
    }

    /// One definite-length element at the start of `buf` and what follows it.
    fn read(buf: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
        let tag = *buf.first()?;
        if tag & 0x1f == 0x1f {
            return None; // high tag numbers do not occur in CMS
        }
        let first = *buf.get(1)? as usize;
        let (len, header) = if first < 0x80 {
            (first, 2)
        } else {
            let n = first & 0x7f;
            if n == 0 || n > 4 {
                return None;
            }
            let mut len = 0usize;
            for i in 0..n {
                len = (len << 8) | *buf.get(2 + i)? as usize;
            }
            (len, 2 + n)
        };
        let end = header.checked_add(len)?;
        if end > buf.len() {
            return None;
        }
        Some((
            Tlv {
                tag,
                content: &buf[header..end],
                raw: &buf[..end],
            },
            &buf[end..],
        ))
    }

    /// The elements of a constructed value, at most `max`.
    fn children(mut buf: &[u8], max: usize) -> Result<Vec<Tlv<'_>>, Rejection> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            if out.len() >= max {
                return Err(Rejection::TooLarge);
            }
            let (tlv, rest) = read(buf).ok_or_else(|| malformed("truncated element"))?;
            out.push(tlv);
            buf = rest;
        }
        Ok(out)
    }

    fn expect<'a>(buf: &'a [u8], tag: u8, what: &str) -> Result<(Tlv<'a>, &'a [u8]), Rejection> {
        match read(buf) {
            Some((tlv, rest)) if tlv.tag == tag => Ok((tlv, rest)),
            _ => Err(malformed(what)),
        }
    }

    /// Dotted text of an OBJECT IDENTIFIER's content.
    fn oid_text(content: &[u8]) -> String {
        let mut arcs: Vec<u64> = Vec::new();
        let mut value: u64 = 0;
        for &b in content.iter().take(64) {
            value = (value << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                if arcs.is_empty() {
                    let first = (value / 40).min(2);
                    arcs.push(first);
                    arcs.push(value - first * 40);
                } else {
                    arcs.push(value);
                }
                value = 0;
            }
        }
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The OID of an AlgorithmIdentifier and its parameters' element bytes.
    fn algorithm<'a>(tlv: &Tlv<'a>) -> Result<(String, &'a [u8]), Rejection> {
        if tlv.tag != SEQUENCE {
            return Err(malformed("algorithm identifier"));
        }
        let (oid, params) = expect(tlv.content, OID, "algorithm OID")?;
        Ok((oid_text(oid.content), params))
    }

    /// ContentInfo → (content type, the content inside `[0] EXPLICIT`).
    fn content_info(der: &[u8]) -> Result<(String, &[u8]), Rejection> {
        let (ci, _) = expect(der, SEQUENCE, "ContentInfo")?;
        let (oid, rest) = expect(ci.content, OID, "content type")?;
        let (explicit, _) = expect(rest, CTX0, "content")?;
        Ok((oid_text(oid.content), explicit.content))
    }

    /// How a RecipientInfo or SignerInfo names its certificate.
    #[derive(Debug)]
    pub enum CertId {
        IssuerSerial { issuer: Vec<u8>, serial: Vec<u8> },
        KeyId(Vec<u8>),
    }

    fn strip_zeros(b: &[u8]) -> &[u8] {
        let at = b.iter().position(|&x| x != 0).unwrap_or(b.len());
        &b[at..]
    }

    impl CertId {
        fn read(tlv: &Tlv) -> Result<CertId, Rejection> {
            match tlv.tag {
                SEQUENCE => {
                    let (issuer, rest) = expect(tlv.content, SEQUENCE, "issuer")?;
                    let (serial, _) = expect(rest, INTEGER, "serial")?;
                    Ok(CertId::IssuerSerial {
                        issuer: issuer.raw.to_vec(),
                        serial: serial.content.to_vec(),
                    })
                }
                CTX0_PRIMITIVE => Ok(CertId::KeyId(tlv.content.to_vec())),
                _ => Err(malformed("certificate identifier")),
            }
        }

        pub fn matches(&self, cert: &X509Ref) -> bool {
            match self {
                CertId::IssuerSerial { issuer, serial } => {
                    let ours = cert.serial_number().to_bn().map(|bn| bn.to_vec());
                    cert.issuer_name().to_der().is_ok_and(|i| &i == issuer)
                        && ours.is_ok_and(|s| strip_zeros(&s) == strip_zeros(serial))
                }
                CertId::KeyId(id) => cert.subject_key_id().is_some_and(|k| k.as_slice() == id),
            }
        }
    }

    pub struct Recipient {
        pub id: CertId,
        /// Err: a key transport we do not accept, with the reason.
        pub key_transport: Result<KeyTransport, String>,
    }

    pub struct Enveloped {
        pub recipients: Vec<Recipient>,
        pub cipher: Option<Cipher>,
        pub cipher_oid: String,
    }

    /// EnvelopedData or AuthEnvelopedData: the key-transport RecipientInfos and the content
    /// cipher. Anything else is not an encrypted message.
    pub fn enveloped(der: &[u8]) -> Result<Enveloped, Rejection> {
        let (content_type, content) = content_info(der)?;
        if content_type != ENVELOPED_DATA && content_type != AUTH_ENVELOPED_DATA {
            return Err(Rejection::NotEncrypted);
        }
        let (env, _) = expect(content, SEQUENCE, "EnvelopedData")?;
        let fields = children(env.content, 8)?;
        let mut fields = fields.iter();
        fields
            .next()
            .filter(|v| v.tag == INTEGER)
            .ok_or_else(|| malformed("version"))?;
        let mut next = fields.next().ok_or_else(|| malformed("recipientInfos"))?;
        if next.tag == CTX0 {
            next = fields.next().ok_or_else(|| malformed("recipientInfos"))?; // originatorInfo
        }
        if next.tag != SET {
            return Err(malformed("recipientInfos"));
        }
        let mut recipients = Vec::new();
        for ri in children(next.content, MAX_INFOS)? {
            // Only KeyTransRecipientInfo (a plain SEQUENCE) carries RSA key transport.
            if ri.tag != SEQUENCE {
                continue;
            }
            let parts = children(ri.content, 8)?;
            let [_version, rid, alg, ..] = parts.as_slice() else {
                return Err(malformed("KeyTransRecipientInfo"));
            };
            recipients.push(Recipient {
                id: CertId::read(rid)?,
                key_transport: key_transport(alg)?,
            });
        }
        let eci = fields
            .next()
            .ok_or_else(|| malformed("encryptedContentInfo"))?;
        let parts = children(eci.content, 8)?;
        let [_type, alg, ..] = parts.as_slice() else {
            return Err(malformed("encryptedContentInfo"));
        };
        let (cipher_oid, _) = algorithm(alg)?;
        let cipher = match cipher_oid.as_str() {
            "2.16.840.1.101.3.4.1.2" => Some(Cipher::Aes128Cbc),
            "2.16.840.1.101.3.4.1.42" => Some(Cipher::Aes256Cbc),
            "2.16.840.1.101.3.4.1.6" => Some(Cipher::Aes128Gcm),
            "2.16.840.1.101.3.4.1.46" => Some(Cipher::Aes256Gcm),
            _ => None,
        };
        Ok(Enveloped {
            recipients,
            cipher,
            cipher_oid,
        })
    }

    fn key_transport(alg: &Tlv) -> Result<Result<KeyTransport, String>, Rejection> {
        let (oid, params) = algorithm(alg)?;
        Ok(match oid.as_str() {
            "1.2.840.113549.1.1.1" => Ok(KeyTransport::RsaPkcs1v15),
            "1.2.840.113549.1.1.7" => {
                // RSAES-OAEP-params: hashAlgorithm [0] EXPLICIT, SHA-1 when absent.
                let hash = read(params)
                    .filter(|(p, _)| p.tag == SEQUENCE)
                    .and_then(|(p, _)| read(p.content))
                    .filter(|(h, _)| h.tag == CTX0)
                    .and_then(|(h, _)| read(h.content))
                    .and_then(|(h, _)| algorithm(&h).ok())
                    .map(|(oid, _)| oid);
                match hash.as_deref() {
                    None | Some("1.3.14.3.2.26") => Ok(KeyTransport::RsaOaepSha1),
                    Some("2.16.840.1.101.3.4.2.1") => Ok(KeyTransport::RsaOaepSha256),
                    Some(other) => Err(format!("RSA-OAEP with hash {other} is not accepted")),
                }
            }
            other => Err(format!("key transport {other} is not accepted")),
        })
    }

    pub struct SignerInfo {
        pub id: CertId,
        /// Err: a digest we refuse, with the reason.
        pub digest: Result<Digest, String>,
    }

    pub struct Signed<'a> {
        pub certificates: Vec<&'a [u8]>,
        pub signers: Vec<SignerInfo>,
    }

    pub fn signed(der: &[u8]) -> Result<Signed<'_>, Rejection> {
        let (content_type, content) = content_info(der)?;
        if content_type != SIGNED_DATA {
            return Err(Rejection::Unsigned);
        }
        let (sd, _) = expect(content, SEQUENCE, "SignedData")?;
        let fields = children(sd.content, 8)?;
        let mut certificates = Vec::new();
        let mut signer_set = None;
        for f in &fields {
            match f.tag {
                CTX0 => {
                    for c in children(f.content, MAX_CERTIFICATES)? {
                        if c.tag == SEQUENCE {
                            certificates.push(c.raw);
                        }
                    }
                }
                SET => signer_set = Some(f.content), // digestAlgorithms, then signerInfos
                _ => {}
            }
        }
        let mut signers = Vec::new();
        for si in children(signer_set.ok_or(Rejection::Unsigned)?, MAX_INFOS)? {
            if si.tag != SEQUENCE {
                return Err(malformed("SignerInfo"));
            }
            let parts = children(si.content, 8)?;
            let [_version, sid, digest_alg, rest @ ..] = parts.as_slice() else {
                return Err(malformed("SignerInfo"));
            };
            let (oid, _) = algorithm(digest_alg)?;
            let mut digest = digest_of(&oid);
            // The signature algorithm may name a hash too (sha1WithRSAEncryption...).
            let sig_alg = rest.iter().find(|t| t.tag == SEQUENCE);
            if let (Ok(_), Some(alg)) = (&digest, sig_alg) {
                let (sig_oid, _) = algorithm(alg)?;
                if let Some(weak) = weak_signature_algorithm(&sig_oid) {
                    digest = Err(weak.to_owned());
                }
            }
            signers.push(SignerInfo {
                id: CertId::read(sid)?,
                digest,
            });
        }
        Ok(Signed {
            certificates,
            signers,
        })
    }

    fn digest_of(oid: &str) -> Result<Digest, String> {
        match oid {
            "2.16.840.1.101.3.4.2.1" => Ok(Digest::Sha256),
            "2.16.840.1.101.3.4.2.2" => Ok(Digest::Sha384),
            "2.16.840.1.101.3.4.2.3" => Ok(Digest::Sha512),
            "1.3.14.3.2.26" => Err("SHA-1".to_owned()),
            "1.2.840.113549.2.5" => Err("MD5".to_owned()),
            other => Err(format!("digest {other} is not accepted")),
        }
    }

    fn weak_signature_algorithm(oid: &str) -> Option<&'static str> {
        match oid {
            "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" | "1.2.840.10040.4.3" => {
                Some("SHA-1 signature algorithm")
            }
            "1.2.840.113549.1.1.4" => Some("MD5 signature algorithm"),
            _ => None,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn oids_read_as_dotted_text() {
            assert_eq!(
                oid_text(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a]),
                "2.16.840.1.101.3.4.1.42"
            );
            assert_eq!(oid_text(&[0x2b, 0x0e, 0x03, 0x02, 0x1a]), "1.3.14.3.2.26");
        }

        #[test]
        fn truncated_elements_are_refused() {
            assert!(read(&[0x30, 0x05, 0x02, 0x01]).is_none());
            assert!(read(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
            assert!(read(&[0x30, 0x80]).is_none());
        }
    }
}

/// The FFI openssl's safe API lacks: a signature with a chosen digest, and RSA-OAEP for a
/// recipient. Everything else in this module goes through the safe API.
mod ffi {
    use super::*;
    use openssl_sys as sys;
    use std::ffi::{c_char, c_int, c_uint, c_void};
    use std::ptr;

    // Declared here because openssl-sys does not bind them (OpenSSL ≥ 1.1 exports all four).
    unsafe extern "C" {
        fn CMS_add1_signer(
            cms: *mut sys::CMS_ContentInfo,
            signer: *mut sys::X509,
            pk: *mut sys::EVP_PKEY,
            md: *const sys::EVP_MD,
            flags: c_uint,
        ) -> *mut c_void;
        fn CMS_add1_recipient_cert(
            cms: *mut sys::CMS_ContentInfo,
            recip: *mut sys::X509,
            flags: c_uint,
        ) -> *mut c_void;
        fn CMS_RecipientInfo_get0_pkey_ctx(ri: *mut c_void) -> *mut sys::EVP_PKEY_CTX;
        fn CMS_final(
            cms: *mut sys::CMS_ContentInfo,
            data: *mut sys::BIO,
            dcont: *mut sys::BIO,
            flags: c_uint,
        ) -> c_int;
        fn EVP_PKEY_CTX_ctrl_str(
            ctx: *mut sys::EVP_PKEY_CTX,
            name: *const c_char,
            value: *const c_char,
        ) -> c_int;
    }

    /// Feeds `data` to a partial CMS structure and finishes it.
    fn finish(cms: &CmsContentInfo, data: &[u8], flags: CMSOptions) -> Result<(), ErrorStack> {
        let len = c_int::try_from(data.len()).map_err(|_| ErrorStack::get())?;
        // SAFETY: BIO_new_mem_buf makes a read-only BIO over `data` without copying; `data`
        // outlives the BIO, which is freed below before returning.
        let bio = unsafe { sys::BIO_new_mem_buf(data.as_ptr().cast(), len) };
        if bio.is_null() {
            return Err(ErrorStack::get());
        }
        // SAFETY: `cms` is a valid CMS_ContentInfo created with CMS_PARTIAL; `bio` is valid;
        // CMS_final only reads from it. The BIO is ours to free afterwards.
        let ok = unsafe {
            let ok = CMS_final(cms.as_ptr(), bio, ptr::null_mut(), flags.bits());
            sys::BIO_free_all(bio);
            ok
        };
        if ok == 1 {
            Ok(())
        } else {
            Err(ErrorStack::get())
        }
    }

    /// A detached CMS SignedData over `content` with `digest`, signer certificate and chain
    /// included, no S/MIME capabilities attribute (it would advertise 3DES and friends).
    pub fn sign_detached(
        content: &[u8],
        signer: &Signer,
        digest: Digest,
    ) -> Result<Vec<u8>, ErrorStack> {
        let mut chain = Stack::<X509>::new()?;
        for c in signer.chain {
            chain.push(c.clone())?;
        }
        let flags = CMSOptions::DETACHED | CMSOptions::BINARY | CMSOptions::NOSMIMECAP;
        let cms = CmsContentInfo::sign::<Private>(
            None,
            None,
            Some(&chain),
            None,
            flags | CMSOptions::PARTIAL,
        )?;
        let md = digest.md();
        // SAFETY: every pointer comes from a live owned value borrowed for this call; on
        // success CMS_add1_signer takes its own references to the certificate and key, and the
        // returned SignerInfo belongs to `cms`, so nothing is freed here.
        let si = unsafe {
            CMS_add1_signer(
                cms.as_ptr(),
                signer.cert.as_ptr(),
                signer.key.as_ptr(),
                md.as_ptr(),
                flags.bits(),
            )
        };
        if si.is_null() {
            return Err(ErrorStack::get());
        }
        finish(&cms, content, flags)?;
        cms.to_der()
    }

    /// EnvelopedData (CBC) or AuthEnvelopedData (GCM) of `content` for every recipient.
    pub fn encrypt(
        content: &[u8],
        recipients: &[X509],
        cipher: Cipher,
        key_transport: KeyTransport,
    ) -> Result<Vec<u8>, ErrorStack> {
        let flags = CMSOptions::BINARY;
        let none = Stack::<X509>::new()?;
        // With PARTIAL, CMS_encrypt ignores the data and returns the structure to add
        // recipients to.
        let cms = CmsContentInfo::encrypt(&none, &[], cipher.symm(), flags | CMSOptions::PARTIAL)?;
        let oaep_md = match key_transport {
            KeyTransport::RsaOaepSha256 => Some(c"sha256"),
            KeyTransport::RsaOaepSha1 => Some(c"sha1"),
            KeyTransport::RsaPkcs1v15 => None,
        };
        for cert in recipients {
            // SAFETY: `cms` and `cert` are live; on success CMS_add1_recipient_cert keeps its
            // own reference to the certificate and the RecipientInfo belongs to `cms`.
            let ri = unsafe {
                CMS_add1_recipient_cert(
                    cms.as_ptr(),
                    cert.as_ptr(),
                    (flags | CMSOptions::KEY_PARAM).bits(),
                )
            };
            if ri.is_null() {
                return Err(ErrorStack::get());
            }
            if let Some(md) = oaep_md {
                // SAFETY: with CMS_KEY_PARAM the RecipientInfo holds a key context initialised
                // for encryption (owned by the RecipientInfo, not freed here); the names and
                // values are NUL-terminated literals.
                let ok = unsafe {
                    let ctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
                    !ctx.is_null()
                        && EVP_PKEY_CTX_ctrl_str(
                            ctx,
                            c"rsa_padding_mode".as_ptr(),
                            c"oaep".as_ptr(),
                        ) > 0
                        && EVP_PKEY_CTX_ctrl_str(ctx, c"rsa_oaep_md".as_ptr(), md.as_ptr()) > 0
                        && EVP_PKEY_CTX_ctrl_str(ctx, c"rsa_mgf1_md".as_ptr(), md.as_ptr()) > 0
                };
                if !ok {
                    return Err(ErrorStack::get());
                }
            }
        }
        finish(&cms, content, flags)?;
        cms.to_der()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_in_config() {
        let json = serde_json::to_string(&(
            Digest::Sha384,
            Cipher::Aes128Gcm,
            KeyTransport::RsaOaepSha256,
            KeyTransport::RsaPkcs1v15,
        ))
        .unwrap();
        assert_eq!(
            json,
            r#"["sha384","aes-128-gcm","rsa-oaep-sha256","rsa-pkcs1v15"]"#
        );
    }

    #[test]
    fn final_delivery_option_is_read_from_the_options_header() {
        assert!(asks_final_delivery(
            "X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true"
        ));
        assert!(asks_final_delivery(
            "foo=optional,x; x-direct-final-destination-delivery = required, TRUE"
        ));
        assert!(!asks_final_delivery(
            "X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,false"
        ));
    }

    #[test]
    fn outer_headers_refuse_injection() {
        let to = vec!["b@y.org".to_owned()];
        let env = Envelope {
            from: "a@x.org",
            to: &to,
            message_id: "<1@x.org>",
            date: Utc::now(),
            subject: "hi\r\nBcc: evil@z.org",
            request_final_delivery: false,
        };
        assert!(matches!(
            outer_headers(&env, Cipher::Aes256Cbc, false),
            Err(SmimeError::HeaderInjection(f)) if f == "Subject"
        ));
    }

    #[test]
    fn long_recipient_lists_fold_and_read_back() {
        let to: Vec<String> = (0..60).map(|i| format!("user{i}@b.example")).collect();
        let env = Envelope {
            from: "Alice <a@x.org>",
            to: &to,
            message_id: "<1@x.org>",
            date: Utc::now(),
            subject: "r\u{e9}sum\u{e9}",
            request_final_delivery: true,
        };
        let h = outer_headers(&env, Cipher::Aes256Gcm, true).unwrap();
        assert!(h.lines().all(|l| l.len() < 998));
        assert!(h.contains("smime-type=authEnveloped-data"));
        assert!(h.contains("Subject: =?utf-8?b?"));
        let parsed = outer_headers_of(&entity::parse(h.as_bytes()).unwrap());
        assert_eq!(parsed.to, to);
        assert_eq!(parsed.from.as_deref(), Some("a@x.org"));
        assert_eq!(
            parsed.disposition_notification_to.as_deref(),
            Some("a@x.org")
        );
        assert!(parsed.final_delivery_requested);
    }

    #[test]
    fn rejection_codes_are_stable() {
        assert_eq!(Rejection::TooDeep.code(), "too-deep");
        assert_eq!(Rejection::WeakDigest("SHA-1".into()).code(), "weak-digest");
        assert_eq!(
            Rejection::from(EntityError::TooManyParts).code(),
            "too-large"
        );
    }
}
