//! The two sibling applications: a provider's address certificate (HIPAA types 1–3, with an
//! address password) and the organization's domain-bound certificate; their categories come
//! from the HIPAA type. Reviewed here from the command line.

use serde_json::{Value, json};

use super::*;
use crate::helpers::{field, stderr, stdout};

fn provider(local: &str, hipaa: u8) -> Value {
    let mut b = patient(local);
    b["kind"] = json!("address");
    b["hipaaType"] = json!(hipaa);
    b["firstName"] = json!("Dana");
    b["addressPassword"] = json!("Str0ng-Passw0rd");
    b
}

fn organization(hipaa: u8) -> Value {
    let mut b = patient("unused");
    let o = b.as_object_mut().unwrap();
    for f in ["firstName", "lastName", "directAddress"] {
        o.remove(f);
    }
    o.insert("kind".into(), json!("organization"));
    o.insert("hipaaType".into(), json!(hipaa));
    o.insert("certificateName".into(), json!(LAKESIDE));
    b
}

#[tokio::test]
async fn address_and_organization_applications_carry_the_category_of_their_hipaa_type() {
    let s = Setup::new().await;
    let app = &s.w.f.app;

    // A second TA linked from the CLI, as ops would.
    let cli_ta = app.create_client(ClientKind::TrustedAgent).await;
    let out = app.cli(&[
        "trusted-agent",
        "link",
        "--client",
        &cli_ta.0.to_string(),
        "--domain",
        DOMAIN_B,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(LAKESIDE), "{}", stdout(&out));

    let covered = s.apply_ok(&provider("dr.dana", 2)).await;
    let (code, v) = s.apply(&cli_ta, &provider("other.dana", 1)).await;
    assert_eq!(code, 201, "{v}");
    let other = v["id"].as_str().unwrap().to_owned();
    let org = s.apply_ok(&organization(3)).await;
    // A patient type on a provider application is refused.
    let (code, v) = s.apply(&s.ta, &provider("bad.dana", 4)).await;
    assert_eq!(
        (code, v["error"]["field"].as_str()),
        (400, Some("hipaaType"))
    );

    // The CLI lists the pending ones and shows one with the TA's notes.
    let out = app.cli(&["applications", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for id in [&covered, &other, &org] {
        assert!(stdout(&out).contains(id.as_str()), "{}", stdout(&out));
    }
    let out = app.cli(&["applications", "show", &covered]);
    assert_eq!(field(&stdout(&out), "status"), "Submitted");
    assert_eq!(
        field(&stdout(&out), "notes"),
        "Identity checked in clinic with two documents."
    );
    for id in [&covered, &other, &org] {
        let out = app.cli(&[
            "applications",
            "approve",
            id,
            "--reason",
            "documents checked",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(field(&stdout(&out), "status"), "Approved");
    }
    let out = app.cli(&["applications", "approve", &covered]);
    assert!(!out.status.success(), "a second approval fails");
    assert!(
        stderr(&out).contains("already reviewed"),
        "{}",
        stderr(&out)
    );

    s.drain().await;
    let expect = [
        (&covered, "1.3.6.1.4.1.41179.2.1", "CoveredEntity"),
        (&other, "1.3.6.1.4.1.41179.2.3", "HealthEntity"),
        (&org, "1.3.6.1.4.1.41179.2.2", "BusinessAssociate"),
    ];
    for (id, oid, category) in expect {
        let v = s.status(id).await;
        assert_eq!(v["status"], "Provisioned", "{v}");
        assert_eq!(v["categoryOid"], oid);
        assert_eq!(v["certificateCategory"], category);
        assert_eq!(v["reviewedBy"], "cli");
        let pem = s.certificate_pem(v["serialNumber"].as_str().unwrap()).await;
        let (emails, dns, text) = read_certificate(&pem);
        assert!(text.contains(oid), "{id}: {text}");
        if let Some(judged) = openssl_text(&pem) {
            assert!(judged.contains(&format!("Policy: {oid}")), "{judged}");
        }
        if id == &org {
            assert_eq!(dns, [DOMAIN_B]);
            assert!(emails.is_empty());
            assert!(v["directAddress"].is_null());
        } else {
            assert_eq!(emails, [v["directAddress"].as_str().unwrap()]);
        }
    }
    // The provider's address keeps the password it applied with, hashed.
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM direct_addresses WHERE username = 'dr.dana'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(hisp_gateway::auth::secrets::verify_secret_sync(
        "Str0ng-Passw0rd",
        &hash
    ));

    // Rejection from the CLI keeps the reason.
    let id = s.apply_ok(&provider("late.dana", 2)).await;
    let out = app.cli(&[
        "applications",
        "reject",
        &id,
        "--reason",
        "no licence on file",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = s.status(&id).await;
    assert_eq!(v["status"], "Rejected");
    assert_eq!(v["reviewReason"], "no licence on file");

    // A revoked certificate shows on its application.
    let serial = s.status(&covered).await["serialNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post_json_as(
            &format!("/api/v1/certificates/{serial}/revoke"),
            &s.officer,
            &json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v = s.status(&covered).await;
    assert_eq!(v["status"], "Revoked", "{v}");
    assert!(v["revokedAt"].is_string());
    assert_eq!(v["serialNumber"], serial.as_str());
}
