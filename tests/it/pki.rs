//! The CA and Direct certificates, judged by the openssl command-line tool.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use chrono::Utc;
use hisp_gateway::domain::client::ClientKind;
use hisp_gateway::domain::pki::{DirectAddress, KeyUse};
use hisp_gateway::service::Actor;
use hisp_gateway::service::pki::{self, CertificateRequest};
use hisp_gateway::store;
use serde_json::Value;

use crate::helpers::{TEST_KEK, TestApp, TestOptions, count, stderr, stdout, test_config};

/// Runs the openssl CLI; `None` (with the reason printed) when it is not installed.
fn openssl(args: &[&str]) -> Option<Output> {
    match Command::new("openssl").args(args).output() {
        Ok(o) => Some(o),
        Err(e) => {
            eprintln!("skipped: the openssl command is not available ({e})");
            None
        }
    }
}

fn have_openssl() -> bool {
    openssl(&["version"]).is_some()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn pki_app_with(opts: TestOptions) -> TestApp {
    let app = TestApp::spawn_with(opts).await;
    pki::init_ca(&app.db.pool, &app.state.pki, &Actor::cli(), Utc::now())
        .await
        .unwrap();
    app
}

async fn pki_app() -> TestApp {
    pki_app_with(TestOptions::default()).await
}

/// A registered organization (provisioning will create these; here we insert it directly).
async fn add_org(app: &TestApp, domain: &str, category: &str) -> i64 {
    let (reseller, _) = app.create_client(ClientKind::Reseller).await;
    let mut conn = app.db.pool.acquire().await.unwrap();
    store::organizations::insert(
        &mut conn,
        domain,
        &format!("Org {domain}"),
        "Registered",
        Some(category),
        reseller,
    )
    .await
    .unwrap()
}

async fn org_status(app: &TestApp, id: i64) -> String {
    sqlx::query_scalar("SELECT status FROM organizations WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

fn request(
    org: &str,
    address: Option<&str>,
    category: Option<&str>,
    years: i64,
    auto_renew: bool,
) -> CertificateRequest {
    CertificateRequest {
        organization: org.into(),
        address: address.map(Into::into),
        category: category.map(Into::into),
        years,
        auto_renew,
    }
}

/// Requests and issues (by running the outbox); returns the serial.
async fn issue(app: &TestApp, req: CertificateRequest) -> String {
    let ids = pki::request_certificate(&app.db.pool, &app.state.pki, &req, &Actor::cli())
        .await
        .unwrap();
    app.worker.run_until_idle().await.unwrap();
    let mut conn = app.db.pool.acquire().await.unwrap();
    store::pki::get(&mut conn, ids[0])
        .await
        .unwrap()
        .serial
        .expect("issued")
}

async fn fetch(
    app: &TestApp,
    path: &str,
    auth: Option<&(uuid::Uuid, String)>,
) -> reqwest::Response {
    let mut r = app.http.get(app.url(path));
    if let Some((id, secret)) = auth {
        r = r.basic_auth(id, Some(secret));
    }
    r.send().await.unwrap()
}

async fn save(
    app: &TestApp,
    path: &str,
    auth: Option<&(uuid::Uuid, String)>,
    dir: &Path,
    name: &str,
) -> PathBuf {
    let r = fetch(app, path, auth).await;
    assert_eq!(r.status(), 200, "{path}");
    let file = dir.join(name);
    std::fs::write(&file, r.bytes().await.unwrap()).unwrap();
    file
}

/// Downloads a leaf certificate (PEM) through the officer API.
async fn save_leaf(
    app: &TestApp,
    serial: &str,
    officer: &(uuid::Uuid, String),
    dir: &Path,
    name: &str,
) -> PathBuf {
    save(
        app,
        &format!("/api/v1/certificates/{serial}/pem"),
        Some(officer),
        dir,
        name,
    )
    .await
}

/// Downloads the public root and issuing CA certificates (PEM).
async fn save_chain(app: &TestApp, dir: &Path) -> (PathBuf, PathBuf) {
    (
        save(app, "/pki/root.pem", None, dir, "root.pem").await,
        save(app, "/pki/issuing.pem", None, dir, "issuing.pem").await,
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn issued_certificates_verify_with_openssl_and_carry_the_direct_profile() {
    if !have_openssl() {
        return;
    }
    let app = pki_app().await;
    let clinic = add_org(&app, "clinic.direct.example", "CoveredEntity").await;
    let patients = add_org(&app, "patients.direct.example", "HealthEntity").await;

    let ids = pki::request_certificate(
        &app.db.pool,
        &app.state.pki,
        &request("clinic.direct.example", None, None, 1, true),
        &Actor::cli(),
    )
    .await
    .unwrap();
    assert_eq!(
        org_status(&app, clinic).await,
        "CertificatePending",
        "requested, not yet issued"
    );
    app.worker.run_until_idle().await.unwrap();
    assert_eq!(org_status(&app, clinic).await, "Activated");
    let mut conn = app.db.pool.acquire().await.unwrap();
    let org_serial = store::pki::get(&mut conn, ids[0])
        .await
        .unwrap()
        .serial
        .unwrap();
    drop(conn);
    let patient_serial = issue(
        &app,
        request(
            "patients.direct.example",
            Some("jane.doe@patients.direct.example"),
            Some("Patient"),
            2,
            true,
        ),
    )
    .await;
    assert_eq!(
        org_status(&app, patients).await,
        "Registered",
        "an address certificate does not activate the org"
    );

    // Trust anchors are public; leaf certificates come from the ops/officer API.
    let officer = app.create_client(ClientKind::Officer).await;
    let dir = tempfile::tempdir().unwrap();
    let (root, issuing) = save_chain(&app, dir.path()).await;
    let org_pem = save_leaf(&app, &org_serial, &officer, dir.path(), "org.pem").await;
    let patient_pem = save_leaf(&app, &patient_serial, &officer, dir.path(), "pt.pem").await;

    for leaf in [&org_pem, &patient_pem] {
        let v = openssl(&[
            "verify",
            "-CAfile",
            s(&root),
            "-untrusted",
            s(&issuing),
            s(leaf),
        ])
        .unwrap();
        assert!(v.status.success(), "{}", text(&v));
        assert!(text(&v).contains(": OK"), "{}", text(&v));
    }

    let org_text = text(&openssl(&["x509", "-in", s(&org_pem), "-noout", "-text"]).unwrap());
    for expected in [
        "DNS:clinic.direct.example",
        "Policy: 1.3.6.1.4.1.41179.0.1.2",
        "Policy: 1.3.6.1.4.1.41179.1.3",
        "Policy: 1.3.6.1.4.1.41179.2.1",
        "E-mail Protection",
        "Public-Key: (2048 bit)",
        "Signature Algorithm: sha256WithRSAEncryption",
        "Digital Signature, Key Encipherment",
        "CA:FALSE",
        "X509v3 CRL Distribution Points",
        "URI:http://127.0.0.1:8080/pki/issuing.crl",
        "CA Issuers - URI:http://127.0.0.1:8080/pki/issuing.crt",
    ] {
        assert!(
            org_text.contains(expected),
            "missing {expected:?} in\n{org_text}"
        );
    }
    assert!(!org_text.contains("41179.2.4"));
    let patient_text =
        text(&openssl(&["x509", "-in", s(&patient_pem), "-noout", "-text"]).unwrap());
    assert!(
        patient_text.contains("Policy: 1.3.6.1.4.1.41179.2.4"),
        "{patient_text}"
    );
    assert!(
        patient_text.contains("email:jane.doe@patients.direct.example"),
        "{patient_text}"
    );
    assert!(!patient_text.contains("DNS:"), "{patient_text}");

    // The AIA and CRL URLs name files the gateway serves.
    let aia = save(&app, "/pki/issuing.crt", None, dir.path(), "aia.der").await;
    let aia_text = text(
        &openssl(&[
            "x509",
            "-inform",
            "DER",
            "-in",
            s(&aia),
            "-noout",
            "-subject",
        ])
        .unwrap(),
    );
    assert!(aia_text.contains("hisp-gateway Issuing CA"), "{aia_text}");
    let crl = save(&app, "/pki/issuing.crl", None, dir.path(), "issuing.crl").await;
    let crl_text =
        text(&openssl(&["crl", "-inform", "DER", "-in", s(&crl), "-noout", "-text"]).unwrap());
    assert!(crl_text.contains("No Revoked Certificates"), "{crl_text}");
    let anchors = fetch(&app, "/pki/anchors.pem", None)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(anchors, std::fs::read_to_string(&root).unwrap());
}

#[tokio::test]
async fn a_revoked_certificate_is_on_the_served_crl_and_fails_crl_check() {
    if !have_openssl() {
        return;
    }
    let app = pki_app().await;
    let org = add_org(&app, "revoked.direct.example", "BusinessAssociate").await;
    add_org(&app, "kept.direct.example", "CoveredEntity").await;
    let bad = issue(&app, request("revoked.direct.example", None, None, 1, true)).await;
    let good = issue(&app, request("kept.direct.example", None, None, 1, true)).await;
    let officer = app.create_client(ClientKind::Officer).await;

    let r = app
        .post_json_as(
            &format!("/api/v1/certificates/{bad}/revoke"),
            &officer,
            &serde_json::json!({"reason": "because"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "reason");
    let r = app
        .post_json_as(
            &format!("/api/v1/certificates/{bad}/revoke"),
            &officer,
            &serde_json::json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["status"].as_str(), body["revocation_reason"].as_str()),
        (Some("revoked"), Some("keyCompromise"))
    );
    assert_eq!(org_status(&app, org).await, "CertificateRevoked");
    let again = app
        .post_json_as(
            &format!("/api/v1/certificates/{bad}/revoke"),
            &officer,
            &serde_json::json!({"reason": "superseded"}),
        )
        .await;
    assert_eq!(again.status(), 409);
    let unknown = app
        .post_json_as(
            "/api/v1/certificates/ABCDEF/revoke",
            &officer,
            &serde_json::json!({"reason": "superseded"}),
        )
        .await;
    assert_eq!(unknown.status(), 404);

    let dir = tempfile::tempdir().unwrap();
    let (root, issuing) = save_chain(&app, dir.path()).await;
    let crl_der = save(&app, "/pki/issuing.crl", None, dir.path(), "issuing.crl").await;
    let crl_pem = dir.path().join("issuing-crl.pem");
    let conv = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        s(&crl_der),
        "-out",
        s(&crl_pem),
    ])
    .unwrap();
    assert!(conv.status.success(), "{}", text(&conv));
    let listing = text(&openssl(&["crl", "-in", s(&crl_pem), "-noout", "-text"]).unwrap());
    assert!(
        listing.contains(&format!("Serial Number: {bad}")),
        "{bad} not in\n{listing}"
    );
    assert!(
        !listing.contains(&format!("Serial Number: {good}")),
        "{listing}"
    );
    assert!(listing.contains("X509v3 CRL Number"), "{listing}");

    let bad_pem = save_leaf(&app, &bad, &officer, dir.path(), "bad.pem").await;
    let good_pem = save_leaf(&app, &good, &officer, dir.path(), "good.pem").await;
    let chk = |leaf: &Path| {
        openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            s(&root),
            "-untrusted",
            s(&issuing),
            "-CRLfile",
            s(&crl_pem),
            s(leaf),
        ])
        .unwrap()
    };
    let v = chk(&bad_pem);
    assert!(!v.status.success(), "{}", text(&v));
    assert!(text(&v).contains("certificate revoked"), "{}", text(&v));
    let v = chk(&good_pem);
    assert!(v.status.success(), "{}", text(&v));

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT actor || ' ' || action FROM audit_log WHERE action LIKE 'certificate.%' ORDER BY id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert!(
        actions.contains(&format!("client:{} certificate.revoke", officer.0)),
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.ends_with("certificate.issue"))
            .count(),
        2,
        "{actions:?}"
    );
}

#[tokio::test]
async fn the_scheduled_job_expires_certificates_and_renews_auto_renewing_ones_first() {
    let app = pki_app().await;
    let lapsing = add_org(&app, "lapsing.direct.example", "CoveredEntity").await;
    let renewing = add_org(&app, "renewing.direct.example", "CoveredEntity").await;
    issue(
        &app,
        request("lapsing.direct.example", None, None, 1, false),
    )
    .await;
    let first = issue(
        &app,
        request("renewing.direct.example", None, None, 1, true),
    )
    .await;
    let (old, _) = pki::by_serial(&app.db.pool, &first).await.unwrap();
    let end = old.not_after.unwrap();

    app.worker.schedule_recurring().await.unwrap();
    // 10 days before the end (renew_before_days is 30): a successor is issued, nothing expires.
    app.worker
        .run_due_at(end - Duration::from_secs(10 * 86_400))
        .await
        .unwrap();
    let certs = pki::list(
        &app.db.pool,
        &pki::CertificateQuery {
            organization: Some("renewing.direct.example"),
            address: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(certs.len(), 2, "{certs:?}");
    assert_eq!(certs[0].status.as_str(), "renewed");
    assert_eq!(
        (certs[1].status.as_str(), certs[1].predecessor_id),
        ("issued", Some(certs[0].id))
    );
    assert!(certs[1].not_after.unwrap() > end);
    assert_eq!(org_status(&app, renewing).await, "Activated");
    assert_eq!(
        org_status(&app, lapsing).await,
        "Activated",
        "not expired yet"
    );

    // Past the end: the one without auto-renew lapses, the renewed organization does not.
    app.worker
        .run_due_at(end + Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(org_status(&app, lapsing).await, "CertificateExpired");
    assert_eq!(org_status(&app, renewing).await, "Activated");
    let (old, _) = pki::by_serial(&app.db.pool, &first).await.unwrap();
    assert_eq!(old.status.as_str(), "expired");
    // Still exactly one maintenance job, queued for its next run.
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE kind = 'ca.maintenance' AND state IN ('queued', 'running')",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(live, 1);
    app.worker.schedule_recurring().await.unwrap();
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'ca.maintenance'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        all, 1,
        "scheduling again (another replica starting) adds no second one"
    );
}

#[tokio::test]
async fn raw_key_columns_hold_no_parseable_private_key() {
    use openssl::pkey::PKey;
    let app = pki_app().await;
    add_org(&app, "keys.direct.example", "HealthEntity").await;
    let serial = issue(&app, request("keys.direct.example", None, None, 1, true)).await;
    let mut blobs: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT sealed_key FROM ca_authorities WHERE sealed_key IS NOT NULL")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    blobs.extend(
        sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT sealed_key FROM certificates WHERE sealed_key IS NOT NULL",
        )
        .fetch_all(&app.db.pool)
        .await
        .unwrap(),
    );
    assert_eq!(blobs.len(), 3, "root, issuing and one leaf");
    for b in &blobs {
        assert!(PKey::private_key_from_der(b).is_err());
        assert!(PKey::private_key_from_pem(b).is_err());
        assert!(PKey::private_key_from_pkcs8(b).is_err());
        let as_text = String::from_utf8_lossy(b);
        assert!(!as_text.contains("PRIVATE KEY") && !as_text.contains(TEST_KEK));
        // Every DER private key starts with a SEQUENCE; no tail of the blob is one.
        for start in 0..b.len().min(64) {
            assert!(
                PKey::private_key_from_der(&b[start..]).is_err(),
                "key found at offset {start}"
            );
        }
    }
    // ...and yet they are the real keys: the store hands out a working pair.
    let (_, cert) = pki::by_serial(&app.db.pool, &serial).await.unwrap();
    let addr = DirectAddress::parse("anyone@keys.direct.example").unwrap();
    let (found, key) = pki::credentials_for(
        &app.db.pool,
        &app.state.pki,
        &addr,
        KeyUse::Signing,
        Utc::now(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(found.to_der().unwrap(), cert.to_der().unwrap());
    assert!(found.public_key().unwrap().public_eq(&key));
}

#[tokio::test]
async fn bad_requests_get_a_clear_error_and_issue_nothing() {
    let app = pki_app().await;
    add_org(&app, "careful.direct.example", "CoveredEntity").await;
    let cases = [
        (
            request("careful.direct.example", None, Some("Dentist"), 1, true),
            "category",
        ),
        (
            request("*.careful.direct.example", None, None, 1, true),
            "organization",
        ),
        (
            request(
                "careful.direct.example",
                Some("bob@elsewhere.example"),
                None,
                1,
                true,
            ),
            "address",
        ),
        (
            request("careful.direct.example", None, None, 0, true),
            "years",
        ),
        (
            request("careful.direct.example", None, None, 4, true),
            "years",
        ),
        (
            request("careful.direct.example", None, Some("Patient"), 1, true),
            "category",
        ),
    ];
    for (req, field) in cases {
        let err = pki::request_certificate(&app.db.pool, &app.state.pki, &req, &Actor::cli())
            .await
            .unwrap_err();
        match err {
            hisp_gateway::error::AppError::Invalid(i) => assert_eq!(i.field, field, "{i}"),
            other => panic!("expected an invalid {field}, got {other:?}"),
        }
    }
    let unknown_org = pki::request_certificate(
        &app.db.pool,
        &app.state.pki,
        &request("nobody.direct.example", None, None, 1, true),
        &Actor::cli(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(unknown_org, hisp_gateway::error::AppError::NotFound(_)),
        "{unknown_org:?}"
    );

    // The CLI says the same, by field, and exits non-zero.
    let out = app.cli(&[
        "ca",
        "issue",
        "--org",
        "careful.direct.example",
        "--years",
        "4",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("years: certificate validity must be 1, 2 or 3 years"),
        "{}",
        stderr(&out)
    );
    let out = app.cli(&["ca", "issue", "--org", "*.careful.direct.example"]);
    assert!(
        stderr(&out).contains("wildcards are not allowed"),
        "{}",
        stderr(&out)
    );

    assert_eq!(count(&app.db.pool, "certificates").await, 0);
    let issue_jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'ca.issue'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(issue_jobs, 0);
    let status: String = sqlx::query_scalar(
        "SELECT status FROM organizations WHERE domain = 'careful.direct.example'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(status, "Registered");
}

#[tokio::test]
async fn the_store_prefers_the_address_certificate_and_can_split_signing_from_encryption() {
    let mut config = test_config();
    config.ca.separate_signing_and_encryption = true;
    let app = pki_app_with(TestOptions {
        config,
        ..Default::default()
    })
    .await;
    add_org(&app, "split.direct.example", "CoveredEntity").await;
    issue(&app, request("split.direct.example", None, None, 1, true)).await;
    issue(
        &app,
        request(
            "split.direct.example",
            Some("dr.who@split.direct.example"),
            None,
            1,
            true,
        ),
    )
    .await;
    let all = pki::list(
        &app.db.pool,
        &pki::CertificateQuery {
            organization: Some("split.direct.example"),
            address: None,
        },
    )
    .await
    .unwrap();
    let uses: Vec<(&str, &str)> = all
        .iter()
        .map(|c| (c.binding.as_str(), c.key_use.as_str()))
        .collect();
    assert_eq!(
        uses,
        [
            ("domain", "signing"),
            ("domain", "encryption"),
            ("address", "signing"),
            ("address", "encryption")
        ]
    );

    let now = Utc::now();
    let (db, ctx) = (&app.db.pool, &app.state.pki);
    let dr = DirectAddress::parse("Dr.Who@split.direct.example").unwrap();
    let nurse = DirectAddress::parse("nurse@split.direct.example").unwrap();
    let san = |c: &openssl::x509::X509| {
        let names = c.subject_alt_names().unwrap();
        let n = names.iter().next().unwrap();
        n.email().or(n.dnsname()).unwrap().to_owned()
    };
    let ku_text = |c: &openssl::x509::X509| String::from_utf8(c.to_text().unwrap()).unwrap();
    let (sign, _) = pki::credentials_for(db, ctx, &dr, KeyUse::Signing, now)
        .await
        .unwrap()
        .unwrap();
    let (enc, _) = pki::credentials_for(db, ctx, &dr, KeyUse::Encryption, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        san(&sign),
        "dr.who@split.direct.example",
        "address-bound first (case-insensitive)"
    );
    assert!(
        ku_text(&sign).contains("Digital Signature")
            && !ku_text(&sign).contains("Key Encipherment")
    );
    assert!(
        ku_text(&enc).contains("Key Encipherment") && !ku_text(&enc).contains("Digital Signature")
    );
    let (fallback, _) = pki::credentials_for(db, ctx, &nurse, KeyUse::Signing, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(san(&fallback), "split.direct.example", "then the domain's");
    let stranger = DirectAddress::parse("x@unknown.direct.example").unwrap();
    assert!(
        pki::credentials_for(db, ctx, &stranger, KeyUse::Signing, now)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn pkcs12_export_is_for_ops_only_and_opens_with_openssl() {
    if !have_openssl() {
        return;
    }
    let app = pki_app().await;
    add_org(&app, "export.direct.example", "CoveredEntity").await;
    let serial = issue(&app, request("export.direct.example", None, None, 1, true)).await;
    let officer = app.create_client(ClientKind::Officer).await;
    let ops = app.create_client(ClientKind::Ops).await;
    let vendor = app.create_client(ClientKind::Vendor).await;
    let path = format!("/api/v1/certificates/{serial}/pkcs12");
    let pw = serde_json::json!({"password": "correct-horse-9"});
    assert_eq!(app.post_json_as(&path, &officer, &pw).await.status(), 403);
    assert_eq!(
        fetch(&app, "/api/v1/certificates", Some(&vendor))
            .await
            .status(),
        403
    );
    let short = app
        .post_json_as(&path, &ops, &serde_json::json!({"password": "short"}))
        .await;
    assert_eq!(short.status(), 400);
    let r = app.post_json_as(&path, &ops, &pw).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-pkcs12");
    let dir = tempfile::tempdir().unwrap();
    let p12 = dir.path().join("export.p12");
    std::fs::write(&p12, r.bytes().await.unwrap()).unwrap();
    let out = openssl(&[
        "pkcs12",
        "-in",
        s(&p12),
        "-passin",
        "pass:correct-horse-9",
        "-nodes",
    ])
    .unwrap();
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("BEGIN PRIVATE KEY") && shown.contains("BEGIN CERTIFICATE"),
        "{shown}"
    );
    assert!(
        shown.contains("subject=C = US, O = Org export.direct.example, CN = export.direct.example"),
        "{shown}"
    );
    let wrong = openssl(&["pkcs12", "-in", s(&p12), "-passin", "pass:nope", "-nodes"]).unwrap();
    assert!(!wrong.status.success());
    let exported: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'certificate.export_key'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(exported, 1);

    let listed: Vec<Value> = fetch(
        &app,
        "/api/v1/certificates?organization=export.direct.example",
        Some(&officer),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["serial"], serial.as_str());
    assert!(listed[0].get("certificate_der").is_none());
}

#[tokio::test]
async fn the_cli_imports_a_ca_and_issues_revokes_and_publishes_with_it() {
    if !have_openssl() {
        return;
    }
    let app = TestApp::spawn().await;
    let none = fetch(&app, "/pki/root.pem", None).await;
    assert_eq!(none.status(), 404, "no CA yet");
    add_org(&app, "imported.direct.example", "CoveredEntity").await;
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, ca_key) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
    let made = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/O=Elsewhere/CN=Elsewhere Direct CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        s(&ca_key),
        "-out",
        s(&ca_pem),
    ])
    .unwrap();
    assert!(made.status.success(), "{}", text(&made));

    // A key that is not the certificate's is refused.
    let other_key = dir.path().join("other.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        s(&other_key),
    ])
    .unwrap();
    let out = app.cli(&[
        "ca",
        "init",
        "--import-cert",
        s(&ca_pem),
        "--import-key",
        s(&other_key),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not belong to the certificate"),
        "{}",
        stderr(&out)
    );

    let out = app.cli(&[
        "ca",
        "init",
        "--import-cert",
        s(&ca_pem),
        "--import-key",
        s(&ca_key),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Elsewhere Direct CA"),
        "{}",
        stdout(&out)
    );
    let again = app.cli(&["ca", "init"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("a CA already exists"),
        "{}",
        stderr(&again)
    );

    let out = app.cli(&[
        "ca",
        "issue",
        "--org",
        "imported.direct.example",
        "--years",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let serial = crate::helpers::field(&stdout(&out), "serial");
    assert_eq!(crate::helpers::field(&stdout(&out), "status"), "issued");
    let (_, leaf) = pki::by_serial(&app.db.pool, &serial).await.unwrap();
    let leaf_pem = dir.path().join("leaf.pem");
    std::fs::write(&leaf_pem, leaf.to_pem().unwrap()).unwrap();
    let v = openssl(&["verify", "-CAfile", s(&ca_pem), s(&leaf_pem)]).unwrap();
    assert!(v.status.success(), "{}", text(&v));

    let out = app.cli(&["ca", "revoke", &serial, "--reason", "superseded"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = app.cli(&["ca", "crl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let crl_pem = dir.path().join("crl.pem");
    std::fs::write(&crl_pem, stdout(&out)).unwrap();
    let listing = text(&openssl(&["crl", "-in", s(&crl_pem), "-noout", "-text"]).unwrap());
    assert!(
        listing.contains(&format!("Serial Number: {serial}")),
        "{listing}"
    );
    let v = openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        s(&ca_pem),
        "-CRLfile",
        s(&crl_pem),
        s(&leaf_pem),
    ])
    .unwrap();
    assert!(text(&v).contains("certificate revoked"), "{}", text(&v));
    let listed = app.cli(&["ca", "list", "--org", "imported.direct.example"]);
    assert!(
        stdout(&listed).contains(&serial) && stdout(&listed).contains("revoked"),
        "{}",
        stdout(&listed)
    );

    // The same CA as PKCS#12 imports into another gateway.
    let p12 = dir.path().join("ca.p12");
    let out = openssl(&[
        "pkcs12",
        "-export",
        "-in",
        s(&ca_pem),
        "-inkey",
        s(&ca_key),
        "-passout",
        "pass:import-me-1",
        "-out",
        s(&p12),
    ])
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let second = TestApp::spawn().await;
    let out = crate::helpers::gateway_command()
        .env("DATABASE_URL", &second.db.url)
        .env("GW_CA_IMPORT_PASSWORD", "import-me-1")
        .args(["ca", "init", "--import-p12", s(&p12)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let root = fetch(&second, "/pki/root.pem", None)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(root, std::fs::read_to_string(&ca_pem).unwrap());
}

#[tokio::test]
async fn a_disabled_organization_stays_disabled_when_its_certificate_is_issued() {
    let app = pki_app().await;
    let org = add_org(&app, "closed.direct.example", "CoveredEntity").await;
    sqlx::query("UPDATE organizations SET status = 'Disabled' WHERE id = $1")
        .bind(org)
        .execute(&app.db.pool)
        .await
        .unwrap();
    issue(&app, request("closed.direct.example", None, None, 1, true)).await;
    assert_eq!(org_status(&app, org).await, "Disabled");
}

#[tokio::test]
async fn two_replicas_making_the_ca_at_once_make_one() {
    // What two embedded-mode starts (or a start and a `ca init`) do at the same moment. The
    // test holds the table so that both have made their keys and are installing them at once.
    let db = crate::helpers::TestDb::new().await;
    let mut holder = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE ca_authorities IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let ctx = std::sync::Arc::new(pki::PkiContext::from_config(&test_config()));
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let (pool, ctx) = (db.second_pool().await, ctx.clone());
        replicas.push(tokio::spawn(async move {
            pki::ensure_ca(&pool, &ctx, &Actor::cli(), Utc::now()).await
        }));
    }
    let waiting = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while waiting().await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the replicas never met"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    holder.commit().await.unwrap();
    let mut made = 0;
    for r in replicas {
        if r.await.unwrap().unwrap().is_some() {
            made += 1;
        }
    }
    assert_eq!(
        made, 1,
        "exactly one replica made the CA; the other kept it"
    );
    let active: i64 = sqlx::query_scalar("SELECT count(*) FROM ca_authorities WHERE active")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(active, 2, "one root and one issuing CA");
    assert_eq!(count(&db.pool, "ca_authorities").await, 2);
    // Once there is one, it is kept.
    let again = pki::ensure_ca(&db.pool, &ctx, &Actor::cli(), Utc::now()).await;
    assert!(again.unwrap().is_none());
}
