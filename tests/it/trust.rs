//! Trust set-up and certificate decisions: anchors over REST and the CLI, every reason a
//! certificate is refused, discovery's order and codes, CRLs served over HTTP, and trust
//! bundles. Certificates, CRLs and bundles are made by the openssl command-line tool.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use chrono::{Duration, Utc};
use hisp_gateway::direct::validate::{self, CertProblem, Target};
use hisp_gateway::domain::client::ClientKind;
use hisp_gateway::domain::pki::DirectAddress;
use hisp_gateway::service::trust::{self, Discovery, DiscoveryError};
use hisp_gateway::store;
use openssl::x509::X509;
use serde_json::{Value, json};

use crate::helpers::{TestApp, count, stderr, stdout};

// ---- certificates made by the openssl CLI --------------------------------------------------

fn run(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA in its own directory: a self-signed root, the leaves it signs, and its CRL.
struct Ca {
    dir: PathBuf,
    name: String,
    serial: std::cell::Cell<u32>,
}

/// What a leaf looks like.
struct Leaf<'a> {
    /// `email:a@b` or `DNS:b`.
    san: &'a str,
    key: &'a str,
    digest: &'a str,
    eku: Option<&'a str>,
    days: u32,
    crl_url: Option<&'a str>,
}

impl Default for Leaf<'_> {
    fn default() -> Self {
        Leaf {
            san: "email:bob@peer.example",
            key: "rsa:2048",
            digest: "-sha256",
            eku: Some("emailProtection"),
            days: 30,
            crl_url: None,
        }
    }
}

impl Ca {
    fn new(base: &Path, name: &str) -> Self {
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        run(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3650",
                "-sha256",
                "-subj",
                &format!("/CN={name} Root"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
        std::fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ncrlnumber=crlnumber\ndefault_md=sha256\ndefault_crl_days=7\n",
        )
        .unwrap();
        Ca {
            dir,
            name: name.into(),
            serial: std::cell::Cell::new(100),
        }
    }

    fn pem_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn root(&self) -> X509 {
        X509::from_pem(&std::fs::read(self.pem_path()).unwrap()).unwrap()
    }

    /// Signs a new leaf; returns its PEM file.
    fn leaf(&self, l: &Leaf) -> PathBuf {
        let n = self.serial.get() + 1;
        self.serial.set(n);
        let stem = format!("leaf{n}");
        let mut ext = format!("subjectAltName={}\n", l.san);
        if let Some(eku) = l.eku {
            ext.push_str(&format!("extendedKeyUsage={eku}\n"));
        }
        if let Some(url) = l.crl_url {
            ext.push_str(&format!("crlDistributionPoints=URI:{url}\n"));
        }
        std::fs::write(self.dir.join(format!("{stem}.ext")), ext).unwrap();
        run(
            &self.dir,
            &[
                "req",
                "-new",
                "-newkey",
                l.key,
                "-nodes",
                "-keyout",
                &format!("{stem}.key"),
                "-out",
                &format!("{stem}.csr"),
                "-subj",
                &format!("/CN={} leaf {n}", self.name),
            ],
        );
        run(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{stem}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &n.to_string(),
                "-days",
                &l.days.to_string(),
                l.digest,
                "-extfile",
                &format!("{stem}.ext"),
                "-out",
                &format!("{stem}.pem"),
            ],
        );
        self.dir.join(format!("{stem}.pem"))
    }

    fn revoke(&self, leaf: &Path) {
        run(
            &self.dir,
            &[
                "ca",
                "-config",
                "ca.cnf",
                "-keyfile",
                "ca.key",
                "-cert",
                "ca.pem",
                "-revoke",
                leaf.to_str().unwrap(),
            ],
        );
    }

    /// The current CRL, DER.
    fn crl(&self) -> Vec<u8> {
        run(
            &self.dir,
            &[
                "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem", "-gencrl",
                "-out", "crl.pem",
            ],
        );
        run(
            &self.dir,
            &[
                "crl", "-in", "crl.pem", "-outform", "DER", "-out", "crl.der",
            ],
        );
        std::fs::read(self.dir.join("crl.der")).unwrap()
    }
}

/// A PKCS#7 bundle (DER) of the roots of `cas`.
fn bundle(dir: &Path, cas: &[&Ca]) -> Vec<u8> {
    let mut args = vec!["crl2pkcs7".to_string(), "-nocrl".into()];
    for ca in cas {
        args.push("-certfile".into());
        args.push(ca.pem_path().to_str().unwrap().into());
    }
    args.extend([
        "-outform".into(),
        "DER".into(),
        "-out".into(),
        "bundle.p7b".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(dir, &args);
    std::fs::read(dir.join("bundle.p7b")).unwrap()
}

fn cert(path: &Path) -> X509 {
    X509::from_pem(&std::fs::read(path).unwrap()).unwrap()
}

fn pem(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn addr(s: &str) -> DirectAddress {
    DirectAddress::parse(s).unwrap()
}

// ---- a small file server on 127.0.0.1 (CRLs, bundles) --------------------------------------

type Files = Arc<Mutex<HashMap<String, (u16, Vec<u8>)>>>;

struct FileServer {
    addr: SocketAddr,
    files: Files,
}

impl FileServer {
    async fn start() -> Self {
        async fn serve(State(files): State<Files>, uri: Uri) -> (StatusCode, Vec<u8>) {
            match files.lock().unwrap().get(uri.path()) {
                Some((status, body)) => (StatusCode::from_u16(*status).unwrap(), body.clone()),
                None => (StatusCode::NOT_FOUND, Vec::new()),
            }
        }
        let files: Files = Arc::default();
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(files.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FileServer { addr, files }
    }

    fn put(&self, path: &str, status: u16, body: Vec<u8>) {
        self.files
            .lock()
            .unwrap()
            .insert(path.into(), (status, body));
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

// ---- the pure decision ---------------------------------------------------------------------

#[test]
fn each_problem_of_a_certificate_is_told_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "trusted");
    let other = Ca::new(tmp.path(), "stranger");
    let anchors = [ca.root()];
    let bob = addr("bob@peer.example");
    let to_bob = Target::Address(&bob);
    // Certificates made during the test start "now" too: judge a minute on.
    let now = Utc::now() + Duration::minutes(1);
    let unknown = |_: &X509, _: &X509| None;
    let check = |c: &X509, t: &Target, at| validate::check(c, &[], &anchors, t, at, &unknown);

    let good = cert(&ca.leaf(&Leaf::default()));
    assert_eq!(check(&good, &to_bob, now), Ok(()));
    // Case does not matter in an address.
    let bob_upper = addr("BOB@Peer.Example");
    assert_eq!(check(&good, &Target::Address(&bob_upper), now), Ok(()));

    let stranger = cert(&other.leaf(&Leaf::default()));
    assert!(matches!(
        check(&stranger, &to_bob, now),
        Err(CertProblem::Untrusted(_))
    ));
    assert!(matches!(
        validate::check(&good, &[], &[], &to_bob, now, &unknown),
        Err(CertProblem::Untrusted(_))
    ));

    assert_eq!(
        check(&good, &to_bob, now + Duration::days(31)),
        Err(CertProblem::Expired)
    );
    assert_eq!(
        check(&good, &to_bob, now - Duration::days(1)),
        Err(CertProblem::NotYetValid)
    );

    let revoked = |_: &X509, _: &X509| Some(true);
    assert_eq!(
        validate::check(&good, &[], &anchors, &to_bob, now, &revoked),
        Err(CertProblem::Revoked)
    );

    let small = cert(&ca.leaf(&Leaf {
        key: "rsa:1024",
        ..Leaf::default()
    }));
    assert!(
        matches!(check(&small, &to_bob, now), Err(CertProblem::WeakKey(m)) if m.contains("1024"))
    );
    let sha1 = cert(&ca.leaf(&Leaf {
        digest: "-sha1",
        ..Leaf::default()
    }));
    assert!(
        matches!(check(&sha1, &to_bob, now), Err(CertProblem::WeakKey(m)) if m.contains("sha1"))
    );

    // A public key of an algorithm nobody knows (the rsaEncryption OID bent to 1.1.99).
    let mut der = good.to_der().unwrap();
    let rsa_oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    let at = der
        .windows(rsa_oid.len())
        .position(|w| w == rsa_oid)
        .unwrap();
    der[at + rsa_oid.len() - 1] = 99;
    let odd = X509::from_der(&der).expect("the certificate still parses");
    assert_eq!(check(&odd, &to_bob, now), Err(CertProblem::Unreadable));

    let alice = addr("alice@peer.example");
    assert_eq!(
        check(&good, &Target::Address(&alice), now),
        Err(CertProblem::NameMismatch)
    );
    assert_eq!(
        check(&good, &Target::Domain("peer.example"), now),
        Err(CertProblem::NameMismatch)
    );

    let tls_only = cert(&ca.leaf(&Leaf {
        eku: Some("serverAuth"),
        ..Leaf::default()
    }));
    assert_eq!(
        check(&tls_only, &to_bob, now),
        Err(CertProblem::NotForEmail)
    );
    let no_eku = cert(&ca.leaf(&Leaf {
        eku: None,
        ..Leaf::default()
    }));
    assert_eq!(check(&no_eku, &to_bob, now), Ok(()));

    // A domain-bound certificate serves every address of its domain, and the domain itself;
    // a wildcard serves nothing.
    let domain_bound = cert(&ca.leaf(&Leaf {
        san: "DNS:peer.example",
        ..Leaf::default()
    }));
    assert_eq!(check(&domain_bound, &to_bob, now), Ok(()));
    assert_eq!(
        check(&domain_bound, &Target::Domain("peer.example"), now),
        Ok(())
    );
    assert!(!validate::address_bound(&domain_bound, &bob));
    assert!(validate::address_bound(&good, &bob));
    let wildcard = cert(&ca.leaf(&Leaf {
        san: "DNS:*.example",
        ..Leaf::default()
    }));
    assert_eq!(
        check(&wildcard, &Target::Domain("peer.example"), now),
        Err(CertProblem::NameMismatch)
    );
}

#[test]
fn ec_keys_pass_on_p256_and_p384_only() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "ec");
    let anchors = [ca.root()];
    let bob = addr("bob@peer.example");
    let now = Utc::now() + Duration::minutes(1);
    for (curve, ok) in [
        ("prime256v1", true),
        ("secp384r1", true),
        ("secp521r1", false),
    ] {
        run(
            &ca.dir,
            &["ecparam", "-name", curve, "-out", &format!("{curve}.param")],
        );
        let c = cert(&ca.leaf(&Leaf {
            key: &format!("ec:{curve}.param"),
            ..Leaf::default()
        }));
        let verdict = validate::check(&c, &[], &anchors, &Target::Address(&bob), now, &|_, _| None);
        if ok {
            assert_eq!(verdict, Ok(()), "{curve}");
        } else {
            assert!(
                matches!(verdict, Err(CertProblem::WeakKey(_))),
                "{curve}: {verdict:?}"
            );
        }
    }
}

#[test]
fn an_intermediate_sent_along_completes_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let root = Ca::new(tmp.path(), "root");
    // An intermediate CA signed by the root, then a leaf signed by the intermediate.
    let dir = root.dir.clone();
    std::fs::write(
        dir.join("inter.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    run(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "inter.key",
            "-out",
            "inter.csr",
            "-subj",
            "/CN=Inter",
        ],
    );
    run(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "inter.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "9",
            "-days",
            "365",
            "-sha256",
            "-extfile",
            "inter.ext",
            "-out",
            "inter.pem",
        ],
    );
    std::fs::write(dir.join("l.ext"), "subjectAltName=email:bob@peer.example\n").unwrap();
    run(
        &dir,
        &[
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "l.key", "-out", "l.csr",
            "-subj", "/CN=Leaf",
        ],
    );
    run(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "l.csr",
            "-CA",
            "inter.pem",
            "-CAkey",
            "inter.key",
            "-set_serial",
            "10",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            "l.ext",
            "-out",
            "l.pem",
        ],
    );
    let leaf = cert(&dir.join("l.pem"));
    let inter = cert(&dir.join("inter.pem"));
    let bob = addr("bob@peer.example");
    let t = Target::Address(&bob);
    let now = Utc::now();
    let none = |_: &X509, _: &X509| None;
    assert!(matches!(
        validate::check(&leaf, &[], &[root.root()], &t, now, &none),
        Err(CertProblem::Untrusted(_))
    ));
    assert_eq!(
        validate::check(
            &leaf,
            std::slice::from_ref(&inter),
            &[root.root()],
            &t,
            now,
            &none
        ),
        Ok(())
    );
    // An intermediate can itself be the anchor.
    assert_eq!(
        validate::check(&leaf, &[], std::slice::from_ref(&inter), &t, now, &none),
        Ok(())
    );
    // The revocation question is asked of the leaf with its issuer.
    let asked = std::cell::RefCell::new(Vec::new());
    let record = |c: &X509, i: &X509| {
        asked.borrow_mut().push((
            c.subject_name()
                .entries()
                .next()
                .unwrap()
                .data()
                .as_slice()
                .to_vec(),
            i.subject_name()
                .entries()
                .next()
                .unwrap()
                .data()
                .as_slice()
                .to_vec(),
        ));
        Some(false)
    };
    validate::check(&leaf, &[inter], &[root.root()], &t, now, &record).unwrap();
    assert_eq!(asked.borrow()[0], (b"Leaf".to_vec(), b"Inter".to_vec()));
}

// ---- set-up over REST and the CLI ----------------------------------------------------------

#[tokio::test]
async fn anchors_are_managed_over_rest_and_the_cli() {
    let app = TestApp::spawn().await;
    let tmp = tempfile::tempdir().unwrap();
    let one = Ca::new(tmp.path(), "one");
    let two = Ca::new(tmp.path(), "two");
    let ops = app.create_client(ClientKind::Ops).await;
    let vendor = app.create_client(ClientKind::Vendor).await;
    let body = json!({"domain": "hosted.example", "pem": pem(&one.pem_path())});

    let r = app
        .post_json_as("/api/v1/trust/anchors", &vendor, &body)
        .await;
    assert_eq!(r.status(), 403);

    let r = app.post_json_as("/api/v1/trust/anchors", &ops, &body).await;
    assert_eq!(r.status(), 201);
    let added: Vec<Value> = r.json().await.unwrap();
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["source"], "upload");
    assert_eq!(added[0]["domain"], "hosted.example");
    let first_id = added[0]["id"].as_i64().unwrap();
    // The same certificate again adds nothing.
    let r = app.post_json_as("/api/v1/trust/anchors", &ops, &body).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Vec<Value>>().await.unwrap().len(), 0);

    // A leaf is not an anchor; garbage is not PEM.
    let leaf = one.leaf(&Leaf::default());
    for bad in [pem(&leaf), "hello".to_string()] {
        let r = app
            .post_json_as(
                "/api/v1/trust/anchors",
                &ops,
                &json!({"domain": "hosted.example", "pem": bad}),
            )
            .await;
        assert_eq!(r.status(), 400);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["field"], "pem", "{e}");
    }

    // The CLI adds the second root, and lists both.
    let out = app.cli(&[
        "trust",
        "anchors",
        "add",
        "--domain",
        "hosted.example",
        two.pem_path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("added 1 anchor"), "{}", stdout(&out));
    let out = app.cli(&["trust", "anchors", "list", "--domain", "hosted.example"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("one Root") && stdout(&out).contains("two Root"),
        "{}",
        stdout(&out)
    );

    let list: Vec<Value> = app
        .http
        .get(app.url("/api/v1/trust/anchors?domain=hosted.example"))
        .basic_auth(ops.0, Some(&ops.1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    let anchors = trust::anchors_for(&app.db.pool, "hosted.example")
        .await
        .unwrap();
    assert_eq!(anchors.len(), 2);

    // Removed over REST, then the other by the CLI.
    let r = app
        .http
        .delete(app.url(&format!("/api/v1/trust/anchors/{first_id}")))
        .basic_auth(ops.0, Some(&ops.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .delete(app.url(&format!("/api/v1/trust/anchors/{first_id}")))
        .basic_auth(ops.0, Some(&ops.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let second = trust::list_anchors(&app.db.pool, None).await.unwrap()[0].id;
    let out = app.cli(&["trust", "anchors", "remove", &second.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        trust::anchors_for(&app.db.pool, "hosted.example")
            .await
            .unwrap()
            .is_empty()
    );

    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action LIKE 'trust.anchor.%'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(audited, 4, "two additions and two removals");
}

// ---- discovery -----------------------------------------------------------------------------

#[tokio::test]
async fn discovery_prefers_the_address_certificate_and_codes_its_failures() {
    let app = TestApp::spawn().await;
    let tmp = tempfile::tempdir().unwrap();
    let trusted = Ca::new(tmp.path(), "trusted");
    let stranger = Ca::new(tmp.path(), "stranger");
    let ops = app.create_client(ClientKind::Ops).await;
    let r = app
        .post_json_as(
            "/api/v1/trust/anchors",
            &ops,
            &json!({"domain": "sender.example", "pem": pem(&trusted.pem_path())}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let anchor_id = r.json::<Vec<Value>>().await.unwrap()[0]["id"]
        .as_i64()
        .unwrap();

    let domain_cert = trusted.leaf(&Leaf {
        san: "DNS:peer.example",
        ..Leaf::default()
    });
    let bob_cert = trusted.leaf(&Leaf::default());
    let untrusted = stranger.leaf(&Leaf {
        san: "DNS:far.example",
        ..Leaf::default()
    });
    for body in [
        json!({"domain": "peer.example", "pem": pem(&domain_cert)}),
        json!({"address": "bob@peer.example", "pem": pem(&bob_cert)}),
        json!({"domain": "far.example", "pem": pem(&untrusted)}),
    ] {
        let r = app
            .post_json_as("/api/v1/trust/peer-certificates", &ops, &body)
            .await;
        assert_eq!(r.status(), 201, "{body}");
    }
    // A certificate not bound to what it is configured for is refused at once.
    let r = app
        .post_json_as(
            "/api/v1/trust/peer-certificates",
            &ops,
            &json!({"address": "carol@peer.example", "pem": pem(&bob_cert)}),
        )
        .await;
    assert_eq!(r.status(), 400);

    let discovery = Discovery::new(app.db.pool.clone(), app.state.trust.clone());
    let now = Utc::now();
    let fingerprint = |c: &X509| {
        c.digest(openssl::hash::MessageDigest::sha256())
            .unwrap()
            .to_vec()
    };

    let for_bob = discovery
        .usable_certificates(&addr("bob@peer.example"), "sender.example", now)
        .await
        .unwrap();
    assert_eq!(for_bob.len(), 1);
    assert_eq!(fingerprint(&for_bob[0]), fingerprint(&cert(&bob_cert)));

    let for_carol = discovery
        .usable_certificates(&addr("carol@peer.example"), "sender.example", now)
        .await
        .unwrap();
    assert_eq!(for_carol.len(), 1);
    assert_eq!(fingerprint(&for_carol[0]), fingerprint(&cert(&domain_cert)));

    let err = discovery
        .usable_certificates(&addr("dan@far.example"), "sender.example", now)
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::Untrusted(_)), "{err:?}");
    assert_eq!(err.status(), "5.7.11");

    let err = discovery
        .usable_certificates(&addr("eve@nowhere.example"), "sender.example", now)
        .await
        .unwrap_err();
    assert_eq!(err, DiscoveryError::NoCertificate);
    assert_eq!(err.status(), "5.7.31");

    // Another domain of ours trusts its own anchors, not sender.example's.
    let err = discovery
        .usable_certificates(&addr("bob@peer.example"), "other.example", now)
        .await
        .unwrap_err();
    assert_eq!(err.status(), "5.7.11");

    // Removing the anchor takes effect on the next call, with no restart.
    let r = app
        .http
        .delete(app.url(&format!("/api/v1/trust/anchors/{anchor_id}")))
        .basic_auth(ops.0, Some(&ops.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let err = discovery
        .usable_certificates(&addr("bob@peer.example"), "sender.example", now)
        .await
        .unwrap_err();
    assert_eq!(err.status(), "5.7.11");

    // Peer certificates are listed and removed like anchors.
    let peers: Vec<Value> = app
        .http
        .get(app.url("/api/v1/trust/peer-certificates?domain=peer.example"))
        .basic_auth(ops.0, Some(&ops.1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[1]["address"], "bob@peer.example");
    let out = app.cli(&["trust", "peers", "remove", &peers[1]["id"].to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&app.db.pool, "peer_certificates").await, 2);
}

#[tokio::test]
async fn an_address_we_host_is_never_discovered_for_smtp() {
    let app = TestApp::spawn().await;
    let (reseller, _) = app.create_client(ClientKind::Reseller).await;
    let mut conn = app.db.pool.acquire().await.unwrap();
    store::organizations::insert(
        &mut conn,
        "hosted.example",
        "Hosted",
        "Registered",
        None,
        reseller,
    )
    .await
    .unwrap();
    drop(conn);
    let discovery = Discovery::new(app.db.pool.clone(), app.state.trust.clone());
    let err = discovery
        .usable_certificates(&addr("amy@hosted.example"), "sender.example", Utc::now())
        .await
        .unwrap_err();
    assert_eq!(err, DiscoveryError::Hosted);
}

// ---- revocation ----------------------------------------------------------------------------

#[tokio::test]
async fn a_signer_on_the_crl_of_its_distribution_point_is_revoked() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path(), "crlca");
    let crl_url = files.url("/crlca.crl");
    let leaf = |san: &str| {
        ca.leaf(&Leaf {
            san,
            crl_url: Some(&crl_url),
            ..Leaf::default()
        })
    };
    let good = leaf("email:good@peer.example");
    let bad = leaf("email:bad@peer.example");
    ca.revoke(&bad);
    files.put("/crlca.crl", 200, ca.crl());
    trust::add_anchors(
        &app.db.pool,
        "hosted.example",
        pem(&ca.pem_path()).as_bytes(),
        &hisp_gateway::service::Actor::cli(),
    )
    .await
    .unwrap();
    let discovery = Discovery::new(app.db.pool.clone(), app.state.trust.clone());
    let now = Utc::now();

    discovery
        .check_signer(
            &cert(&good),
            &[],
            "hosted.example",
            &addr("good@peer.example"),
            now,
        )
        .await
        .unwrap();
    let err = discovery
        .check_signer(
            &cert(&bad),
            &[],
            "hosted.example",
            &addr("bad@peer.example"),
            now,
        )
        .await
        .unwrap_err();
    assert_eq!(err, CertProblem::Revoked);
    // The CRL is cached until its nextUpdate: with the server gone, the answer stands.
    assert_eq!(count(&app.db.pool, "crl_cache").await, 1);
    files.put("/crlca.crl", 500, Vec::new());
    let err = discovery
        .check_signer(
            &cert(&bad),
            &[],
            "hosted.example",
            &addr("bad@peer.example"),
            now,
        )
        .await
        .unwrap_err();
    assert_eq!(err, CertProblem::Revoked);
    // The same revoked certificate, offered as a recipient's, is untrusted.
    trust::add_peers(
        &app.db.pool,
        &trust::PeerTarget::parse(None, Some("bad@peer.example")).unwrap(),
        pem(&bad).as_bytes(),
        &hisp_gateway::service::Actor::cli(),
    )
    .await
    .unwrap();
    let err = discovery
        .usable_certificates(&addr("bad@peer.example"), "hosted.example", now)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DiscoveryError::Untrusted(m) if m.contains("revoked")),
        "{err:?}"
    );
}

// ---- trust bundles -------------------------------------------------------------------------

#[tokio::test]
async fn a_bundle_refresh_replaces_its_anchors_and_a_failure_keeps_them() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        Ca::new(tmp.path(), "a"),
        Ca::new(tmp.path(), "b"),
        Ca::new(tmp.path(), "c"),
    );
    let ops = app.create_client(ClientKind::Ops).await;
    files.put("/bundle.p7b", 200, bundle(tmp.path(), &[&a, &b]));

    // A URL the egress guard refuses is refused when given.
    let r = app
        .post_json_as(
            "/api/v1/trust/bundles",
            &ops,
            &json!({"domain": "hosted.example", "url": "http://10.1.2.3/bundle.p7b"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "url");

    let r = app
        .post_json_as(
            "/api/v1/trust/bundles",
            &ops,
            &json!({"domain": "hosted.example", "url": files.url("/bundle.p7b")}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["anchors"], 2, "{created}");
    assert!(created["last_error"].is_null());
    let id = created["id"].as_i64().unwrap();
    let subjects = |anchors: Vec<X509>| {
        let mut s: Vec<String> = anchors
            .iter()
            .map(|x| {
                String::from_utf8(
                    x.subject_name()
                        .entries()
                        .next()
                        .unwrap()
                        .data()
                        .as_slice()
                        .to_vec(),
                )
                .unwrap()
            })
            .collect();
        s.sort();
        s
    };
    assert_eq!(
        subjects(
            trust::anchors_for(&app.db.pool, "hosted.example")
                .await
                .unwrap()
        ),
        ["a Root", "b Root"]
    );

    // The next fetch holds only c: a and b go, c comes, in one step.
    files.put("/bundle.p7b", 200, bundle(tmp.path(), &[&c]));
    let refreshed: Value = app
        .post_json_as(
            &format!("/api/v1/trust/bundles/{id}/refresh"),
            &ops,
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["anchors"], 1, "{refreshed}");
    assert_eq!(
        subjects(
            trust::anchors_for(&app.db.pool, "hosted.example")
                .await
                .unwrap()
        ),
        ["c Root"]
    );
    // A bundle's anchor is removed with its bundle, not alone.
    let anchor = trust::list_anchors(&app.db.pool, None).await.unwrap()[0].id;
    let r = app
        .http
        .delete(app.url(&format!("/api/v1/trust/anchors/{anchor}")))
        .basic_auth(ops.0, Some(&ops.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    // A failing URL, and an answer that is not a bundle, keep c, with the error visible.
    for (status, body) in [(500, Vec::new()), (200, b"<html>moved</html>".to_vec())] {
        files.put("/bundle.p7b", status, body);
        let failed: Value = app
            .post_json_as(
                &format!("/api/v1/trust/bundles/{id}/refresh"),
                &ops,
                &json!({}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert!(failed["last_error"].is_string(), "{failed}");
        assert_eq!(failed["anchors"], 1);
        assert_eq!(
            subjects(
                trust::anchors_for(&app.db.pool, "hosted.example")
                    .await
                    .unwrap()
            ),
            ["c Root"]
        );
    }
    let out = app.cli(&["trust", "bundles", "list"]);
    assert!(
        stdout(&out).contains("not a PKCS#7 bundle"),
        "{}",
        stdout(&out)
    );

    // The recurring job fetches it again once it is due (a failure retries within 15 min).
    files.put("/bundle.p7b", 200, bundle(tmp.path(), &[&a]));
    app.worker.schedule_recurring().await.unwrap();
    app.worker
        .run_due_at(Utc::now() + Duration::minutes(20))
        .await
        .unwrap();
    let after = trust::get_bundle(&app.db.pool, id).await.unwrap();
    assert!(after.last_error.is_none(), "{after:?}");
    assert_eq!(
        subjects(
            trust::anchors_for(&app.db.pool, "hosted.example")
                .await
                .unwrap()
        ),
        ["a Root"]
    );

    // Removing the bundle removes its anchors.
    let r = app
        .http
        .delete(app.url(&format!("/api/v1/trust/bundles/{id}")))
        .basic_auth(ops.0, Some(&ops.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        trust::anchors_for(&app.db.pool, "hosted.example")
            .await
            .unwrap()
            .is_empty()
    );
}

// ---- missing intermediates -----------------------------------------------------------------

#[tokio::test]
async fn an_intermediate_left_out_is_fetched_from_the_aia_url() {
    let app = TestApp::spawn().await;
    let files = FileServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let root = Ca::new(tmp.path(), "aiaroot");
    let dir = root.dir.clone();
    std::fs::write(
        dir.join("inter.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    run(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "inter.key",
            "-out",
            "inter.csr",
            "-subj",
            "/CN=AIA Inter",
        ],
    );
    run(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "inter.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "9",
            "-days",
            "365",
            "-sha256",
            "-extfile",
            "inter.ext",
            "-outform",
            "DER",
            "-out",
            "inter.der",
        ],
    );
    std::fs::write(
        dir.join("l.ext"),
        format!(
            "subjectAltName=email:bob@peer.example\nauthorityInfoAccess=caIssuers;URI:{}\n",
            files.url("/inter.der")
        ),
    )
    .unwrap();
    run(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "l.key",
            "-out",
            "l.csr",
            "-subj",
            "/CN=AIA Leaf",
        ],
    );
    run(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "l.csr",
            "-CA",
            "inter.der",
            "-CAform",
            "DER",
            "-CAkey",
            "inter.key",
            "-set_serial",
            "10",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            "l.ext",
            "-out",
            "l.pem",
        ],
    );
    trust::add_anchors(
        &app.db.pool,
        "hosted.example",
        pem(&root.pem_path()).as_bytes(),
        &hisp_gateway::service::Actor::cli(),
    )
    .await
    .unwrap();
    let discovery = Discovery::new(app.db.pool.clone(), app.state.trust.clone());
    let leaf = cert(&dir.join("l.pem"));
    let bob = addr("bob@peer.example");
    let now = Utc::now() + Duration::minutes(1);

    // Not served yet: no path.
    let err = discovery
        .check_signer(&leaf, &[], "hosted.example", &bob, now)
        .await
        .unwrap_err();
    assert!(matches!(err, CertProblem::Untrusted(_)), "{err:?}");
    files.put(
        "/inter.der",
        200,
        std::fs::read(dir.join("inter.der")).unwrap(),
    );
    discovery
        .check_signer(&leaf, &[], "hosted.example", &bob, now)
        .await
        .unwrap();
}
