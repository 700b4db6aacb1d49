//! Outside judges of the wire format, both ways: the `openssl` command line opens what the
//! gateway sends, and builds the mail the gateway must accept or refuse.

use std::path::Path;
use std::process::Command;

use super::peer_pki::{LeafSpec, PeerCa};
use super::*;

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn must(dir: &Path, args: &[&str]) -> String {
    let (ok, out) = openssl(dir, args);
    assert!(ok, "openssl {args:?}: {out}");
    out
}

const CAROL: &str = "carol@judge.example.net";

#[tokio::test]
async fn what_the_gateway_sends_opens_and_verifies_with_openssl_cms() {
    let a = Hisp::harbor().await;
    let peer = PeerCa::new("Judge Root");
    let carol = peer.leaf(&LeafSpec::good(CAROL));
    a.trust(&peer.pem()).await;
    a.add_peer_certificate(CAROL, &carol.cert_pem()).await;
    let (sink, addr) = SmtpSink::start().await;
    a.route("judge.example.net", addr);
    let id = "urn:uuid:1b7e2a9c-44f1-4c55-8d2e-7c1f0e9a0001";
    a.send(ADA, &[CAROL], id, true).await;
    a.drain().await;
    let got = sink.captured();
    assert_eq!(got.len(), 1, "one message reached the peer");
    assert_eq!(got[0].mail_from, ADA);
    assert_eq!(got[0].rcpt_to, [CAROL]);
    let wire = String::from_utf8_lossy(&got[0].data).to_string();
    assert!(
        wire.contains("X-DIRECT-FINAL-DESTINATION-DELIVERY=optional,true"),
        "timely & reliable is asked for on the outside: {wire:.600}"
    );
    assert!(!wire.contains("Referral"), "the real subject stays inside");
    assert!(wire.contains("smime-type=enveloped-data"), "{wire:.600}");

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("msg.eml"), &got[0].data).unwrap();
    std::fs::write(d.join("carol.pem"), carol.cert_pem()).unwrap();
    std::fs::write(d.join("carol.key"), carol.key_pem()).unwrap();
    std::fs::write(d.join("root.pem"), a.root_pem().await).unwrap();
    let structure = must(d, &["cms", "-cmsout", "-print", "-in", "msg.eml"]);
    assert!(structure.contains("aes-256-cbc"), "AES-256-CBC by default");
    assert!(structure.contains("rsaesOaep"), "RSA-OAEP by default");
    must(
        d,
        &[
            "cms",
            "-decrypt",
            "-in",
            "msg.eml",
            "-recip",
            "carol.pem",
            "-inkey",
            "carol.key",
            "-out",
            "signed.eml",
        ],
    );
    must(
        d,
        &[
            "cms",
            "-verify",
            "-in",
            "signed.eml",
            "-CAfile",
            "root.pem",
            "-purpose",
            "any",
            "-out",
            "inner.eml",
        ],
    );
    let inner = std::fs::read_to_string(d.join("inner.eml")).unwrap();
    assert!(
        inner.contains("message/rfc822"),
        "the message is wrapped: {inner:.400}"
    );
    assert!(inner.contains("Subject: Referral"), "{inner:.400}");
    assert!(inner.contains(&format!("From: {ADA}")) || inner.contains(&format!("<{ADA}>")));
    let signed = std::fs::read_to_string(d.join("signed.eml")).unwrap();
    assert!(signed.contains("micalg=sha-256"), "{signed:.400}");
}

/// Serves whatever `body` holds at any path on 127.0.0.1: a peer's CRL distribution point.
async fn serve(body: std::sync::Arc<std::sync::Mutex<Vec<u8>>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { body.lock().unwrap().clone() }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One mail a peer builds with the openssl command line: signed by `signer`, encrypted to
/// `recipients`, with `tweak` applied to the signed entity before encryption.
#[derive(Clone, Copy)]
struct Build<'a> {
    digest: &'a str,
    cipher: &'a str,
    oaep: bool,
    outer_from: &'a str,
    inner_from: &'a str,
    tamper: bool,
    /// The wrapped message is a delivery report no one can read.
    report: bool,
}

fn build_mail(dir: &Path, b: &Build, signer: &str, recipients: &[String], n: usize) -> Vec<u8> {
    let inner = format!(
        "From: {}\r\nTo: {BEN}\r\nSubject: Lab results {n}\r\nMessage-ID: <lab-{n}@peer.example.net>\r\n\
         Date: Sun, 06 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n{}",
        b.inner_from,
        if b.report {
            "Content-Type: multipart/report; report-type=disposition-notification; boundary=x\r\n\r\n\
             --x\r\nContent-Type: text/plain\r\n\r\nnothing to report\r\n--x--\r\n"
                .to_owned()
        } else {
            format!("Content-Type: text/plain\r\n\r\nResults attached, number {n}.\r\n")
        }
    );
    let wrapped = format!("Content-Type: message/rfc822\r\n\r\n{inner}");
    std::fs::write(dir.join("wrapped.eml"), wrapped).unwrap();
    must(
        dir,
        &[
            "cms",
            "-sign",
            "-in",
            "wrapped.eml",
            "-signer",
            &format!("{signer}.pem"),
            "-inkey",
            &format!("{signer}.key"),
            "-md",
            b.digest,
            "-out",
            "signed.eml",
        ],
    );
    if b.tamper {
        let s = std::fs::read_to_string(dir.join("signed.eml")).unwrap();
        std::fs::write(
            dir.join("signed.eml"),
            s.replace("Results attached", "Results altered"),
        )
        .unwrap();
    }
    let mut args: Vec<String> = [
        "cms",
        "-encrypt",
        "-in",
        "signed.eml",
        b.cipher,
        "-from",
        b.outer_from,
        "-to",
        BEN,
        "-subject",
        "Direct message",
        "-out",
        "enc.eml",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for r in recipients {
        args.push("-recip".into());
        args.push(r.clone());
        if b.oaep {
            args.push("-keyopt".into());
            args.push("rsa_padding_mode:oaep".into());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    must(dir, &args);
    std::fs::read(dir.join("enc.eml")).unwrap()
}

#[tokio::test]
async fn mail_built_by_openssl_is_taken_and_flawed_mail_refused_with_its_reason() {
    let b = Hisp::lakeside().await;
    let peer = PeerCa::new("Peer Root");
    let rogue = PeerCa::new("Rogue Root");
    b.trust(&peer.pem()).await;
    const PAT: &str = "pat@peer.example.net";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // The peer's CRL, served over HTTP as its distribution point says.
    let crl_body = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let crl_url = format!("http://{}/peer.crl", serve(crl_body.clone()).await);
    let good = peer.leaf(&LeafSpec {
        crl_url: Some(&crl_url),
        ..LeafSpec::good(PAT)
    });
    let revoked = peer.leaf(&LeafSpec {
        crl_url: Some(&crl_url),
        ..LeafSpec::good(PAT)
    });
    *crl_body.lock().unwrap() = peer.crl(&[&revoked.cert]);
    let expired = peer.leaf(&LeafSpec {
        not_before: Utc::now() - chrono::Duration::days(400),
        not_after: Utc::now() - chrono::Duration::days(1),
        ..LeafSpec::good(PAT)
    });
    let weak = peer.leaf(&LeafSpec {
        bits: 1024,
        ..LeafSpec::good(PAT)
    });
    let untrusted = rogue.leaf(&LeafSpec::good(PAT));
    for (name, leaf) in [
        ("good", &good),
        ("revoked", &revoked),
        ("expired", &expired),
        ("weak", &weak),
        ("untrusted", &untrusted),
    ] {
        std::fs::write(d.join(format!("{name}.pem")), leaf.cert_pem()).unwrap();
        std::fs::write(d.join(format!("{name}.key")), leaf.key_pem()).unwrap();
    }
    // Ben's side: encrypt to every certificate B published for its domain and addresses.
    let mut recipients = Vec::new();
    for (i, pem) in b.certificates_pem().await.into_iter().enumerate() {
        let f = format!("lakeside-{i}.pem");
        std::fs::write(d.join(&f), pem).unwrap();
        recipients.push(f);
    }
    // MDNs back to pat go to the peer's mail server.
    b.add_peer_certificate(PAT, &good.cert_pem()).await;
    let (sink, addr) = SmtpSink::start().await;
    b.route("peer.example.net", addr);

    let base = Build {
        digest: "sha256",
        cipher: "-aes256",
        oaep: false,
        outer_from: PAT,
        inner_from: PAT,
        tamper: false,
        report: false,
    };
    let accepted = [
        Build { ..base },
        Build {
            digest: "sha384",
            cipher: "-aes128",
            oaep: true,
            ..base
        },
        Build {
            digest: "sha512",
            cipher: "-aes256",
            oaep: true,
            ..base
        },
        Build {
            digest: "sha256",
            cipher: "-aes-256-gcm",
            oaep: true,
            ..base
        },
    ];
    let mut n = 0;
    for (i, case) in accepted.iter().enumerate() {
        n += 1;
        let mail = build_mail(d, case, "good", &recipients, n);
        assert_eq!(
            inject(b.smtp(), Some(PAT), &[BEN], &mail).await,
            "250",
            "case {i}"
        );
    }
    let refused: [(&str, Build, &str); 8] = [
        (
            "sha1",
            Build {
                digest: "sha1",
                ..base
            },
            "good",
        ),
        (
            "tampered",
            Build {
                tamper: true,
                ..base
            },
            "good",
        ),
        (
            // Signed by pat, sent as pat, but the wrapped message claims mallory.
            "from",
            Build {
                inner_from: "mallory@peer.example.net",
                ..base
            },
            "good",
        ),
        ("untrusted", Build { ..base }, "untrusted"),
        ("weak", Build { ..base }, "weak"),
        ("expired", Build { ..base }, "expired"),
        ("revoked", Build { ..base }, "revoked"),
        (
            "report",
            Build {
                report: true,
                ..base
            },
            "good",
        ),
    ];
    for (_, case, signer) in &refused {
        n += 1;
        let mail = build_mail(d, case, signer, &recipients, n);
        let from = case.outer_from;
        assert_eq!(inject(b.smtp(), Some(from), &[BEN], &mail).await, "250");
    }
    b.drain().await;
    let mail = b.inbound_mail().await;
    assert_eq!(mail.len(), accepted.len() + refused.len(), "{mail:?}");
    for (i, (state, reason)) in mail.iter().take(accepted.len()).enumerate() {
        assert_eq!(state, "accepted", "case {i}: {reason:?}");
    }
    let want = [
        "digest",
        "signature",
        "from",
        "trust",
        "key",
        "expired",
        "revoked",
        "notification",
    ];
    for ((name, _, _), ((state, reason), word)) in refused
        .iter()
        .zip(mail.iter().skip(accepted.len()).zip(want))
    {
        let reason = reason.clone().unwrap_or_default().to_ascii_lowercase();
        assert_eq!(state, "rejected", "{name}: {reason}");
        assert!(reason.contains(word), "{name}: {reason}");
    }
    assert_eq!(
        b.inbox.accepted().len(),
        accepted.len(),
        "only the good mail reached ben's EHR"
    );
    // Each accepted message got its processed MDN (dispatched was not asked for); of the
    // refused ones only the From mismatch, whose signer B trusts, got one: failed. Each opens
    // with pat's key and verifies against B's root.
    b.drain().await;
    let mdns = sink.captured();
    assert_eq!(
        mdns.len(),
        accepted.len() + 1,
        "one MDN per accepted message, one failed"
    );
    std::fs::write(d.join("b-root.pem"), b.root_pem().await).unwrap();
    let mut reported = Vec::new();
    for mdn in &mdns {
        assert_eq!(mdn.mail_from, "", "MDNs use the null reverse path");
        std::fs::write(d.join("mdn.eml"), &mdn.data).unwrap();
        must(
            d,
            &[
                "cms",
                "-decrypt",
                "-in",
                "mdn.eml",
                "-recip",
                "good.pem",
                "-inkey",
                "good.key",
                "-out",
                "mdn-signed.eml",
            ],
        );
        must(
            d,
            &[
                "cms",
                "-verify",
                "-in",
                "mdn-signed.eml",
                "-CAfile",
                "b-root.pem",
                "-purpose",
                "any",
                "-out",
                "mdn-inner.eml",
            ],
        );
        let report = std::fs::read_to_string(d.join("mdn-inner.eml")).unwrap();
        assert!(report.contains("disposition-notification"), "{report}");
        assert!(!report.contains("Disposition-Notification-To"), "{report}");
        let n = (1..=n)
            .find(|n| report.contains(&format!("Original-Message-ID: <lab-{n}@peer.example.net>")))
            .unwrap_or_else(|| panic!("names no message pat sent: {report}"));
        let kind = if report.contains("MDN-sent-automatically;processed") {
            "processed"
        } else if report.contains("MDN-sent-automatically;failed") {
            assert!(report.contains("from-mismatch"), "{report}");
            "failed"
        } else {
            panic!("neither processed nor failed: {report}")
        };
        reported.push((n, kind));
    }
    reported.sort();
    let mut want: Vec<(usize, &str)> = (1..=accepted.len()).map(|n| (n, "processed")).collect();
    want.push((accepted.len() + 3, "failed"));
    assert_eq!(reported, want);
}

#[tokio::test]
async fn a_route_that_requires_tls_sends_nothing_to_a_peer_without_it() {
    let a = Hisp::harbor().await;
    let peer = PeerCa::new("Judge Root");
    let carol = peer.leaf(&LeafSpec::good(CAROL));
    a.trust(&peer.pem()).await;
    a.add_peer_certificate(CAROL, &carol.cert_pem()).await;
    // The sink offers no STARTTLS.
    let (sink, addr) = SmtpSink::start().await;
    a.f.app.state.transport.set_route(
        "judge.example.net",
        RouteConfig {
            address: addr.to_string(),
            require_tls: true,
        },
    );
    let id = "urn:uuid:1b7e2a9c-44f1-4c55-8d2e-7c1f0e9a0002";
    a.send(ADA, &[CAROL], id, true).await;
    for i in 1..=6 {
        a.f.app
            .worker
            .run_due_at(Utc::now() + chrono::Duration::seconds(40 * i))
            .await
            .unwrap();
    }
    let st = a.statuses(ADA, id).await;
    assert_eq!(st[0].1, "FAILED", "{st:?}");
    assert!(st[0].2.starts_with("9004"), "{st:?}");
    assert!(
        sink.captured().is_empty(),
        "not a byte of the message went in the clear"
    );
}
