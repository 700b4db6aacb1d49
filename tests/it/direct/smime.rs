//! `smime::seal` judged by `openssl cms`, `smime::open` fed what `openssl cms` builds, and the
//! bad messages each refused with their reason.

use std::path::Path;

use chrono::{DateTime, Utc};
use hisp_gateway::direct::mdn;
use hisp_gateway::direct::smime::{
    self, Algorithms, Cipher, Digest, Envelope, KeyTransport, Opened, Rejection, Signer, SmimeError,
};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use proptest::prelude::*;

use super::pki::{self, Party, Pki, openssl, openssl_ok};

const INNER: &str = "From: sender@a.example\r\nTo: recipient@b.example\r\nSubject: Referral for J. Doe\r\nMessage-ID: <inner-1@a.example>\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease see the attached summary of care.\r\n\u{00e9}t\u{00e9}\r\n";

fn date() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn to() -> Vec<String> {
    vec!["recipient@b.example".to_owned()]
}

fn envelope(to: &[String], final_delivery: bool) -> Envelope<'_> {
    Envelope {
        from: "sender@a.example",
        to,
        message_id: "<outer-1@a.example>",
        date: date(),
        subject: "Direct message",
        request_final_delivery: final_delivery,
    }
}

fn seal_as(
    pki: &Pki,
    signer: &Party,
    chain: &[X509],
    inner: &[u8],
    alg: Algorithms,
) -> Result<Vec<u8>, SmimeError> {
    let to = to();
    smime::seal(
        inner,
        &envelope(&to, true),
        &Signer {
            cert: &signer.cert,
            key: &signer.key,
            chain,
        },
        std::slice::from_ref(&pki.recipient.cert),
        alg,
    )
}

fn sealed(pki: &Pki, inner: &[u8]) -> Vec<u8> {
    seal_as(
        pki,
        &pki.sender,
        std::slice::from_ref(&pki.intermediate),
        inner,
        Algorithms::default(),
    )
    .unwrap()
}

fn keys(pki: &Pki) -> Vec<(X509, PKey<Private>)> {
    vec![
        (pki.other.cert.clone(), pki.other.key.clone()),
        (pki.recipient.cert.clone(), pki.recipient.key.clone()),
    ]
}

fn open(pki: &Pki, message: &[u8]) -> Result<Opened, Rejection> {
    smime::open(message, &keys(pki))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

const DIGESTS: [(Digest, &str); 3] = [
    (Digest::Sha256, "sha256"),
    (Digest::Sha384, "sha384"),
    (Digest::Sha512, "sha512"),
];

#[test]
fn what_seal_produces_decrypts_and_verifies_with_openssl_for_every_algorithm() {
    let pki = pki::make();
    let d = pki.dir.path();
    let ciphers = [
        (Cipher::Aes128Cbc, "aes-128-cbc (2.16.840.1.101.3.4.1.2)"),
        (Cipher::Aes256Cbc, "aes-256-cbc (2.16.840.1.101.3.4.1.42)"),
        (Cipher::Aes128Gcm, "aes-128-gcm (2.16.840.1.101.3.4.1.6)"),
        (Cipher::Aes256Gcm, "aes-256-gcm (2.16.840.1.101.3.4.1.46)"),
    ];
    let transports = [
        (KeyTransport::RsaOaepSha256, "rsaesOaep"),
        (KeyTransport::RsaPkcs1v15, "rsaEncryption"),
    ];
    for (digest, digest_name) in DIGESTS {
        for (cipher, cipher_name) in ciphers {
            for (key_transport, kt_name) in transports {
                let alg = Algorithms {
                    digest,
                    cipher,
                    key_transport,
                };
                let what = format!("{alg:?}");
                let message = seal_as(
                    &pki,
                    &pki.sender,
                    std::slice::from_ref(&pki.intermediate),
                    INNER.as_bytes(),
                    alg,
                )
                .unwrap();
                assert!(is_crlf(&message), "{what}: CRLF throughout");
                let text = String::from_utf8(message.clone()).unwrap();
                let (headers, _) = text.split_once("\r\n\r\n").unwrap();
                for h in [
                    "From: sender@a.example\r\n",
                    "To: recipient@b.example\r\n",
                    "Message-ID: <outer-1@a.example>\r\n",
                    "Subject: Direct message\r\n",
                    "MIME-Version: 1.0\r\n",
                    "Disposition-Notification-To: sender@a.example\r\n",
                    "Disposition-Notification-Options: X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true\r\n",
                    "Content-Type: application/pkcs7-mime; smime-type=",
                ] {
                    assert!(headers.contains(h), "{what}: missing {h:?} in {headers}");
                }
                std::fs::write(d.join("sealed.eml"), &message).unwrap();

                let printed = String::from_utf8(openssl(
                    d,
                    &["cms", "-cmsout", "-print", "-in", "sealed.eml"],
                ))
                .unwrap();
                assert!(printed.contains(kt_name), "{what}: {kt_name} in\n{printed}");
                assert!(
                    printed.contains(cipher_name),
                    "{what}: {cipher_name} in\n{printed}"
                );
                if key_transport == KeyTransport::RsaOaepSha256 {
                    // The OAEP parameters name SHA-256 for the hash and for MGF1.
                    assert!(
                        printed.matches(":sha256").count() == 2 && printed.contains(":mgf1"),
                        "{what}: OAEP with SHA-256 in\n{printed}"
                    );
                }
                assert!(!printed.contains("des-ede3"), "{what}: no 3DES");

                openssl(
                    d,
                    &[
                        "cms",
                        "-decrypt",
                        "-in",
                        "sealed.eml",
                        "-recip",
                        path(&pki.recipient.cert_path),
                        "-inkey",
                        path(&pki.recipient.key_path),
                        "-out",
                        "decrypted.eml",
                    ],
                );
                let signed_print = String::from_utf8(openssl(
                    d,
                    &["cms", "-cmsout", "-print", "-in", "decrypted.eml"],
                ))
                .unwrap();
                assert!(
                    signed_print.contains(&format!("algorithm: {digest_name} ")),
                    "{what}: digest {digest_name} in\n{signed_print}"
                );
                let decrypted = std::fs::read(d.join("decrypted.eml")).unwrap();
                let micalg = format!("micalg={}", digest.micalg());
                assert!(
                    String::from_utf8_lossy(&decrypted).contains(&micalg),
                    "{what}: {micalg}"
                );
                openssl(
                    d,
                    &[
                        "cms",
                        "-verify",
                        "-in",
                        "decrypted.eml",
                        "-CAfile",
                        path(&pki.root),
                        "-out",
                        "verified.eml",
                    ],
                );
                let verified = std::fs::read(d.join("verified.eml")).unwrap();
                let expected = format!("Content-Type: message/rfc822\r\n\r\n{INNER}");
                assert_eq!(
                    String::from_utf8_lossy(&verified),
                    expected,
                    "{what}: the verified content is our wrapped message"
                );

                // And our own reader agrees.
                let opened = open(&pki, &message).unwrap();
                assert_eq!(opened.inner, INNER.as_bytes(), "{what}");
                assert_eq!(
                    (opened.digest, opened.cipher, opened.key_transport),
                    (digest, cipher, key_transport)
                );
                assert_eq!(opened.decrypted_with, 1);
            }
        }
    }
}

#[test]
fn the_signature_carries_the_chain_an_ec_signer_works_and_notifications_ask_for_nothing() {
    let pki = pki::make();
    let d = pki.dir.path();
    // Without the intermediate in the signature openssl cannot build the chain to the root.
    let message = seal_as(
        &pki,
        &pki.sender,
        &[],
        INNER.as_bytes(),
        Algorithms::default(),
    )
    .unwrap();
    std::fs::write(d.join("nochain.eml"), &message).unwrap();
    openssl(
        d,
        &[
            "cms",
            "-decrypt",
            "-in",
            "nochain.eml",
            "-recip",
            path(&pki.recipient.cert_path),
            "-inkey",
            path(&pki.recipient.key_path),
            "-out",
            "nochain.dec",
        ],
    );
    assert!(!openssl_ok(
        d,
        &[
            "cms",
            "-verify",
            "-in",
            "nochain.dec",
            "-CAfile",
            path(&pki.root),
            "-out",
            "x"
        ]
    ));
    let opened = open(&pki, &message).unwrap();
    assert!(opened.chain.is_empty());

    let with_chain = sealed(&pki, INNER.as_bytes());
    let opened = open(&pki, &with_chain).unwrap();
    assert_eq!(
        opened.signer.to_der().unwrap(),
        pki.sender.cert.to_der().unwrap()
    );
    assert_eq!(opened.chain.len(), 1);
    assert_eq!(
        opened.chain[0].to_der().unwrap(),
        pki.intermediate.to_der().unwrap()
    );
    assert_eq!(opened.inner_from.as_deref(), Some("sender@a.example"));
    assert_eq!(opened.outer.from.as_deref(), Some("sender@a.example"));
    assert_eq!(opened.outer.to, to());
    assert_eq!(
        opened.outer.message_id.as_deref(),
        Some("<outer-1@a.example>")
    );
    assert_eq!(
        opened.outer.disposition_notification_to.as_deref(),
        Some("sender@a.example")
    );
    assert!(opened.outer.final_delivery_requested);
    assert!(opened.wrapped);

    // EC P-256 signer.
    let ec = seal_as(&pki, &pki.ec, &[], INNER.as_bytes(), Algorithms::default()).unwrap();
    std::fs::write(d.join("ec.eml"), &ec).unwrap();
    openssl(
        d,
        &[
            "cms",
            "-decrypt",
            "-in",
            "ec.eml",
            "-recip",
            path(&pki.recipient.cert_path),
            "-inkey",
            path(&pki.recipient.key_path),
            "-out",
            "ec.dec",
        ],
    );
    openssl(
        d,
        &[
            "cms",
            "-verify",
            "-in",
            "ec.dec",
            "-CAfile",
            path(&pki.root),
            "-out",
            "ec.out",
        ],
    );
    assert_eq!(open(&pki, &ec).unwrap().inner, INNER.as_bytes());

    // A notification never asks for a notification.
    let report = mdn::build(
        &mdn::Mdn {
            reporting_ua: "hisp-gateway; b.example",
            original_recipient: None,
            final_recipient: "recipient@b.example",
            original_message_id: "<outer-1@a.example>",
            disposition: mdn::Disposition::Processed,
            final_delivery_requested: true,
            failure: None,
            subject: "Processed",
        },
        "recipient@b.example",
        "sender@a.example",
        "<mdn-1@b.example>",
        date(),
    )
    .unwrap();
    let to = vec!["sender@a.example".to_owned()];
    let sealed_mdn = smime::seal_notification(
        &report,
        &Envelope {
            from: "recipient@b.example",
            to: &to,
            message_id: "<mdn-1@b.example>",
            date: date(),
            subject: "Processed",
            request_final_delivery: true,
        },
        &Signer {
            cert: &pki.recipient.cert,
            key: &pki.recipient.key,
            chain: &[],
        },
        std::slice::from_ref(&pki.sender.cert),
        Algorithms::default(),
    )
    .unwrap();
    let text = String::from_utf8(sealed_mdn.clone()).unwrap();
    assert!(
        !text
            .to_ascii_lowercase()
            .contains("disposition-notification")
    );
    let opened = smime::open(
        &sealed_mdn,
        &[(pki.sender.cert.clone(), pki.sender.key.clone())],
    )
    .unwrap();
    assert!(!opened.outer.final_delivery_requested);
    assert_eq!(opened.outer.disposition_notification_to, None);
    assert!(mdn::is_notification(&opened.inner));
    assert!(matches!(
        mdn::parse(&opened.inner),
        Some(mdn::Notification::Mdn {
            disposition: mdn::Disposition::Processed,
            extension_final_delivery: true,
            ..
        })
    ));
}

#[test]
fn seal_refuses_weak_keys_and_header_injection() {
    let pki = pki::make();
    let weak_signer = seal_as(
        &pki,
        &pki.weak,
        &[],
        INNER.as_bytes(),
        Algorithms::default(),
    );
    assert!(
        matches!(weak_signer, Err(SmimeError::WeakKey(_))),
        "{weak_signer:?}"
    );

    let to = to();
    let signer = Signer {
        cert: &pki.sender.cert,
        key: &pki.sender.key,
        chain: &[],
    };
    let weak_recipient = smime::seal(
        INNER.as_bytes(),
        &envelope(&to, false),
        &signer,
        &[pki.recipient.cert.clone(), pki.weak.cert.clone()],
        Algorithms::default(),
    );
    assert!(
        matches!(weak_recipient, Err(SmimeError::WeakKey(_))),
        "{weak_recipient:?}"
    );

    let evil_to = vec!["recipient@b.example\r\nBcc: spy@evil.example".to_owned()];
    let injected = smime::seal(
        INNER.as_bytes(),
        &envelope(&evil_to, false),
        &signer,
        std::slice::from_ref(&pki.recipient.cert),
        Algorithms::default(),
    );
    assert!(matches!(injected, Err(SmimeError::HeaderInjection(f)) if f == "To"));
}

/// `openssl cms -sign` of the wrapped INNER with `md` by `signer`, chain included.
fn cli_signed(pki: &Pki, md: &str, signer: &Party, name: &str) {
    let d = pki.dir.path();
    std::fs::write(
        d.join("wrapped.eml"),
        format!("Content-Type: message/rfc822\r\n\r\n{INNER}"),
    )
    .unwrap();
    openssl(
        d,
        &[
            "cms",
            "-sign",
            "-md",
            md,
            "-signer",
            path(&signer.cert_path),
            "-inkey",
            path(&signer.key_path),
            "-certfile",
            path(&pki.intermediate_path),
            "-in",
            "wrapped.eml",
            "-out",
            name,
        ],
    );
}

/// `openssl cms -encrypt` of file `input` to the recipient, with outer headers.
fn cli_encrypted(pki: &Pki, input: &str, cipher: &str, keyopts: &[&str]) -> Vec<u8> {
    let d = pki.dir.path();
    let recip = path(&pki.recipient.cert_path);
    let mut args = vec![
        "cms",
        "-encrypt",
        cipher,
        "-in",
        input,
        "-out",
        "encrypted.eml",
        "-from",
        "sender@a.example",
        "-to",
        "recipient@b.example",
        "-subject",
        "CLI message",
        "-recip",
        recip,
    ];
    for k in keyopts {
        args.extend_from_slice(&["-keyopt", k]);
    }
    openssl(d, &args);
    std::fs::read(d.join("encrypted.eml")).unwrap()
}

#[test]
fn messages_built_by_the_openssl_cli_open() {
    let pki = pki::make();
    let ciphers = [
        ("-aes128", Cipher::Aes128Cbc),
        ("-aes256", Cipher::Aes256Cbc),
        ("-aes-128-gcm", Cipher::Aes128Gcm),
        ("-aes-256-gcm", Cipher::Aes256Gcm),
    ];
    let transports: [(&[&str], KeyTransport); 3] = [
        (&[], KeyTransport::RsaPkcs1v15),
        (&["rsa_padding_mode:oaep"], KeyTransport::RsaOaepSha1),
        (
            &[
                "rsa_padding_mode:oaep",
                "rsa_oaep_md:sha256",
                "rsa_mgf1_md:sha256",
            ],
            KeyTransport::RsaOaepSha256,
        ),
    ];
    for (digest, md) in DIGESTS {
        cli_signed(&pki, md, &pki.sender, "signed.eml");
        for (flag, cipher) in ciphers {
            for (keyopts, key_transport) in transports {
                let what = format!("{md} {flag} {keyopts:?}");
                let message = cli_encrypted(&pki, "signed.eml", flag, keyopts);
                let opened = open(&pki, &message).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(opened.inner, INNER.as_bytes(), "{what}");
                assert_eq!(
                    (opened.digest, opened.cipher, opened.key_transport),
                    (digest, cipher, key_transport),
                    "{what}"
                );
                assert_eq!(opened.decrypted_with, 1);
                assert_eq!(opened.outer.from.as_deref(), Some("sender@a.example"));
                assert_eq!(opened.outer.to, to());
                assert_eq!(opened.outer.subject.as_deref(), Some("CLI message"));
                assert_eq!(opened.inner_from.as_deref(), Some("sender@a.example"));
                assert_eq!(
                    opened.signer.to_der().unwrap(),
                    pki.sender.cert.to_der().unwrap()
                );
            }
        }
    }
}

#[test]
fn certificates_named_by_subject_key_identifier_are_found() {
    let pki = pki::make();
    let d = pki.dir.path();
    std::fs::write(
        d.join("wrapped.eml"),
        format!("Content-Type: message/rfc822\r\n\r\n{INNER}"),
    )
    .unwrap();
    openssl(
        d,
        &[
            "cms",
            "-sign",
            "-keyid",
            "-signer",
            path(&pki.sender.cert_path),
            "-inkey",
            path(&pki.sender.key_path),
            "-in",
            "wrapped.eml",
            "-out",
            "keyid-signed.eml",
        ],
    );
    openssl(
        d,
        &[
            "cms",
            "-encrypt",
            "-keyid",
            "-aes256",
            "-in",
            "keyid-signed.eml",
            "-out",
            "keyid.eml",
            "-recip",
            path(&pki.recipient.cert_path),
        ],
    );
    let message = std::fs::read(d.join("keyid.eml")).unwrap();
    let printed = String::from_utf8(openssl(
        d,
        &["cms", "-cmsout", "-print", "-in", "keyid.eml"],
    ))
    .unwrap();
    assert!(printed.contains("subjectKeyIdentifier"), "{printed}");
    let opened = open(&pki, &message).unwrap();
    assert_eq!(opened.decrypted_with, 1);
    assert_eq!(
        opened.signer.to_der().unwrap(),
        pki.sender.cert.to_der().unwrap()
    );
    assert_eq!(opened.inner, INNER.as_bytes());
}

/// An envelope (safe openssl API, PKCS#1 v1.5) around any content, with outer headers: lets
/// the fuzz reach the readers behind decryption.
fn envelope_around(pki: &Pki, content: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    use openssl::cms::{CMSOptions, CmsContentInfo};
    let mut certs = openssl::stack::Stack::new().unwrap();
    certs.push(pki.recipient.cert.clone()).unwrap();
    let der = CmsContentInfo::encrypt(
        &certs,
        content,
        openssl::symm::Cipher::aes_128_cbc(),
        CMSOptions::BINARY,
    )
    .unwrap()
    .to_der()
    .unwrap();
    let mut m = b"From: sender@a.example\r\nTo: recipient@b.example\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    m.extend_from_slice(
        base64::engine::general_purpose::STANDARD
            .encode(der)
            .as_bytes(),
    );
    m
}

/// The multipart/signed entity inside a sealed message.
fn signed_layer(pki: &Pki, sealed: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let text = String::from_utf8(sealed.to_vec()).unwrap();
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.replace("\r\n", ""))
        .unwrap();
    openssl::cms::CmsContentInfo::from_der(&der)
        .unwrap()
        .decrypt(&pki.recipient.key, &pki.recipient.cert)
        .unwrap()
}

#[test]
fn bad_messages_are_each_refused_with_their_reason() {
    let pki = pki::make();
    let d = pki.dir.path();
    let code = |m: &[u8]| open(&pki, m).map(|_| ()).unwrap_err().code();

    // SHA-1 and MD5 signatures.
    cli_signed(&pki, "sha1", &pki.sender, "sha1.eml");
    let sha1 = cli_encrypted(&pki, "sha1.eml", "-aes256", &[]);
    assert!(matches!(open(&pki, &sha1), Err(Rejection::WeakDigest(w)) if w.contains("SHA-1")));

    // A 1024-bit signer.
    cli_signed(&pki, "sha256", &pki.weak, "weak.eml");
    let weak = cli_encrypted(&pki, "weak.eml", "-aes256", &[]);
    assert_eq!(code(&weak), "weak-key");

    // Tampered body: one letter of the signed content changed after signing.
    cli_signed(&pki, "sha256", &pki.sender, "good.eml");
    let good = std::fs::read(d.join("good.eml")).unwrap();
    let good_text = String::from_utf8(good).unwrap();
    assert!(good_text.contains("summary of care"));
    std::fs::write(
        d.join("tampered.eml"),
        good_text.replace("summary of care", "summary of cake"),
    )
    .unwrap();
    let tampered = cli_encrypted(&pki, "tampered.eml", "-aes256", &[]);
    assert_eq!(code(&tampered), "bad-signature");

    // Encrypted but not signed.
    let unsigned = cli_encrypted(&pki, "wrapped.eml", "-aes256", &[]);
    assert_eq!(code(&unsigned), "unsigned");

    // Signed but not encrypted; plain text.
    let signed_only = std::fs::read(d.join("good.eml")).unwrap();
    assert_eq!(code(&signed_only), "not-encrypted");
    assert_eq!(code(INNER.as_bytes()), "not-encrypted");

    // Encrypted to someone else.
    let ours = sealed(&pki, INNER.as_bytes());
    let sender_only = [(pki.sender.cert.clone(), pki.sender.key.clone())];
    assert_eq!(
        smime::open(&ours, &sender_only).unwrap_err().code(),
        "no-key"
    );
    // The right certificate with the wrong key: found, but does not decrypt.
    let mismatched = [(pki.recipient.cert.clone(), pki.other.key.clone())];
    assert_eq!(
        smime::open(&ours, &mismatched).unwrap_err().code(),
        "decrypt"
    );

    // Truncated CMS: the base64 body cut in half.
    let text = String::from_utf8(ours.clone()).unwrap();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap();
    let cut = &body[..body.len() / 2];
    let cut = &cut[..cut.len() - cut.len() % 4];
    let truncated = format!("{headers}\r\n\r\n{cut}\r\n");
    assert_eq!(code(truncated.as_bytes()), "malformed");

    // Nesting bomb: multiparts nested far deeper than any real message.
    let mut bomb = String::from("Hello\r\n");
    for i in 0..40 {
        bomb = format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n{bomb}\r\n--b{i}--\r\n"
        );
    }
    let bomb =
        format!("From: sender@a.example\r\nTo: recipient@b.example\r\nMIME-Version: 1.0\r\n{bomb}");
    assert_eq!(code(&sealed(&pki, bomb.as_bytes())), "too-deep");

    // Too many parts.
    let mut many = String::from(
        "From: sender@a.example\r\nTo: recipient@b.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n",
    );
    for _ in 0..5000 {
        many.push_str("--p\r\n\r\nx\r\n");
    }
    many.push_str("--p--\r\n");
    assert_eq!(code(&sealed(&pki, many.as_bytes())), "too-large");

    // Too large before anything is parsed.
    let huge = vec![b'a'; smime::MAX_MESSAGE_BYTES + 1];
    assert_eq!(code(&huge), "too-large");

    // Header injection in what a peer sends: a bare CR inside a header.
    let injected = String::from_utf8(ours).unwrap().replacen(
        "Subject: Direct message",
        "Subject: Direct\rBcc: x@evil.example",
        1,
    );
    assert_eq!(code(injected.as_bytes()), "header-injection");
}

fn is_crlf(raw: &[u8]) -> bool {
    raw.iter().enumerate().all(|(i, &b)| match b {
        b'\n' => i > 0 && raw[i - 1] == b'\r',
        b'\r' => raw.get(i + 1) == Some(&b'\n'),
        _ => true,
    })
}

fn mutation() -> impl Strategy<Value = (usize, u8, u8)> {
    (any::<usize>(), 0u8..4, any::<u8>())
}

fn mutate(base: &[u8], muts: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut m = base.to_vec();
    for &(at, kind, byte) in muts {
        if m.is_empty() {
            m.push(byte);
            continue;
        }
        let i = at % m.len();
        match kind {
            0 => m[i] = byte,
            1 => m.insert(i, byte),
            2 => {
                m.remove(i);
            }
            _ => m.truncate(i),
        }
    }
    m
}

#[test]
fn open_and_notification_parsing_never_panic_on_mutated_or_random_input() {
    let pki = pki::make();
    let base = sealed(&pki, INNER.as_bytes());
    // The decrypted layers get mutated too: signed entities and reports inside a valid
    // envelope reach the inner readers.
    let keys = keys(&pki);
    let report = mdn::build(
        &mdn::Mdn {
            reporting_ua: "hisp-gateway; b.example",
            original_recipient: Some("recipient@b.example"),
            final_recipient: "recipient@b.example",
            original_message_id: "<outer-1@a.example>",
            disposition: mdn::Disposition::Failed,
            final_delivery_requested: true,
            failure: Some("no such mailbox"),
            subject: "Failed",
        },
        "recipient@b.example",
        "sender@a.example",
        "<mdn-2@b.example>",
        date(),
    )
    .unwrap();
    let signed = signed_layer(&pki, &base);
    assert_eq!(
        smime::open(&envelope_around(&pki, &signed), &keys)
            .unwrap()
            .inner,
        INNER.as_bytes()
    );
    let config = ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        muts in proptest::collection::vec(mutation(), 1..8),
        inner_muts in proptest::collection::vec(mutation(), 1..8),
        random in proptest::collection::vec(any::<u8>(), 0..2048),
    )| {
        let _ = smime::open(&mutate(&base, &muts), &keys);
        let _ = smime::open(&random, &keys);
        // A valid envelope around a mutated inner message and a mutated report.
        let inner = mutate(INNER.as_bytes(), &inner_muts);
        if let Ok(m) = seal_as(&pki, &pki.sender, &[], &inner, Algorithms::default()) {
            let _ = smime::open(&m, &keys);
        }
        // A valid envelope around a mutated signed entity (boundaries, signature, content).
        let _ = smime::open(&envelope_around(&pki, &mutate(&signed, &muts)), &keys);
        let mutated_report = mutate(&report, &inner_muts);
        let _ = mdn::parse(&mutated_report);
        let _ = mdn::is_notification(&mutated_report);
        let _ = mdn::parse(&random);
    });
}
