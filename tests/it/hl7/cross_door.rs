//! One organization across the doors: added over HL7, provisioned over SOAP by its
//! certified_id, its Direct domain then in an HL7 details query, its certificate revoked over
//! REST — and a subscriber told of it once, with a schema-valid update notification.

use std::time::Duration;

use super::messages::{self as m, LICENCE_ROOT, Org};
use super::schema::valid;
use super::storyboards::provision_form;
use super::{Hl7, all};
use crate::helpers::receiver::Receiver;
use crate::soap::{Mode, provision_body};

#[tokio::test]
async fn added_over_hl7_provisioned_over_soap_revoked_by_the_ca_and_the_subscriber_is_told_once() {
    let h = Hl7::new().await;
    let app = h.app();
    let rx = Receiver::start().await;
    let r = app
        .post_json_as(
            "/api/v1/hl7/subscribers",
            &h.ops,
            &serde_json::json!({"url": rx.url("/hl7"), "auth": {"type": "basic", "username": "tracker", "password": "pw-1"}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let sub: serde_json::Value = r.json().await.unwrap();
    assert_eq!(sub["auth"], "sealed");
    // The credentials are sealed, not stored readable.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT auth FROM registry_subscribers")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains("pw-1"));
    // Only ops manage subscribers.
    let r = app
        .post_json_as(
            "/api/v1/hl7/subscribers",
            &h.registry,
            &serde_json::json!({"url": rx.url("/x")}),
        )
        .await;
    assert_eq!(r.status(), 403);

    // Added over HL7.
    let org = Org::named("Harbor Cardiology")
        .id(LICENCE_ROOT, "HC-77")
        .addr("5 Pier Rd", "Trenton", "NJ", "08601");
    let a = h.send(&m::request("PRPM_IN401030UV01", "x-1", &org)).await;
    assert_eq!(a.ack_code(), "AA", "{}", a.raw);
    let cid = a.certified_id();

    // Provisioned over SOAP by that certified_id; the CA issues the domain certificate.
    let session = h.f.login(Mode::Soap12).await;
    let domain = "harbor-cardiology.direct.example.org";
    let r =
        h.f.call(
            Mode::Soap12,
            "ProvisionCertifiedProvider",
            &provision_body(&session, domain, "CDO1", &provision_form(cid)),
        )
        .await;
    r.assert_code("000", "");
    app.worker.run_until_idle().await.unwrap();
    // The add, then the domain's activation.
    let got = rx.wait_accepted(2, Duration::from_secs(10)).await;
    let names: Vec<String> = got
        .iter()
        .map(|r| hisp_gateway::xml::parse(&r.body).unwrap().name)
        .collect();
    assert_eq!(names, ["PRPM_IN401010UV01", "PRPM_IN403030UV01"]);

    // The domain and its address are in the details, as mailto: telecoms.
    let cid_s = cid.to_string();
    let d = h
        .send(&m::details("x-2", &[(super::REGISTRY_ROOT, &cid_s)], false))
        .await;
    valid(&d.raw, "PRPM_IN406110UV01");
    let telecoms: Vec<&str> = all(&d.root, "telecom")
        .iter()
        .filter_map(|t| t.attr("value"))
        .collect();
    assert!(
        telecoms.contains(&format!("mailto:{domain}").as_str()),
        "{telecoms:?}"
    );
    assert!(
        telecoms.contains(&format!("mailto:ada@{domain}").as_str()),
        "{telecoms:?}"
    );

    // Revoking its domain certificate (ops over REST) tells the subscriber exactly once.
    let serial: String = sqlx::query_scalar(
        "SELECT c.serial FROM certificates c JOIN organizations o ON o.id = c.organization_id
         WHERE o.domain = $1 AND c.binding = 'domain' AND c.status = 'issued'",
    )
    .bind(domain)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let r = app
        .post_json_as(
            &format!("/api/v1/certificates/{serial}/revoke"),
            &h.ops,
            &serde_json::json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.worker.run_until_idle().await.unwrap();
    app.worker.run_until_idle().await.unwrap();
    let got = rx.wait_accepted(3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.received().len(), 3, "exactly one more push");
    let last = &got[2];
    let body = String::from_utf8(last.body.clone()).unwrap();
    let root = valid(&body, "PRPM_IN403030UV01");
    assert!(body.contains(&format!("mailto:{domain}")));
    assert_eq!(last.header("authorization"), "Basic dHJhY2tlcjpwdy0x");
    let event_ids: Vec<&str> = all(&root, "registrationEvent")
        .iter()
        .filter_map(|e| e.child("id").and_then(|i| i.attr("extension")))
        .collect();
    assert_eq!(
        event_ids,
        [format!("{cid}.3").as_str()],
        "version 3: add, activated, revoked"
    );
    let changes: Vec<String> = sqlx::query_scalar(
        "SELECT change FROM registry_versions WHERE certified_id = $1 ORDER BY version",
    )
    .bind(cid)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        changes,
        ["add", "domain.activated", "domain.certificaterevoked"]
    );
}

#[tokio::test]
async fn a_subscriber_that_never_answers_ends_dead_visibly_and_others_are_not_held_up() {
    let h = Hl7::new().await;
    let app = h.app();
    let down = Receiver::start().await;
    down.answer(503);
    let up = Receiver::start().await;
    for rx in [&down, &up] {
        let r = app
            .post_json_as(
                "/api/v1/hl7/subscribers",
                &h.ops,
                &serde_json::json!({"url": rx.url("/hl7")}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    let org = Org::named("Quiet Clinic").id(LICENCE_ROOT, "QC-1");
    assert_eq!(
        h.send(&m::request("PRPM_IN401030UV01", "d-1", &org))
            .await
            .ack_code(),
        "AA"
    );
    // The CLI changes the status too (a second notification for each).
    let cid = sqlx::query_scalar::<_, i64>("SELECT certified_id FROM registry_organizations")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let out = app.cli(&["registry", "set-status", &cid.to_string(), "suspended"]);
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    app.worker.run_until_idle().await.unwrap();
    assert_eq!(up.wait_accepted(2, Duration::from_secs(10)).await.len(), 2);
    // Step the clock past every retry: the down subscriber's first push dies, visibly; its
    // second waits behind it in order, then is tried.
    let start = chrono::Utc::now();
    for i in 1..=12 {
        app.worker
            .run_due_at(start + chrono::Duration::hours(2 * i))
            .await
            .unwrap();
    }
    let dead: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE kind = 'hl7.notify' AND state = 'dead'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(dead, 2, "both notifications to the down subscriber");
    let out = app.cli(&["jobs", "list", "--state", "dead"]);
    let listed = crate::helpers::stdout(&out);
    assert!(
        listed.contains("hl7.notify") && listed.contains("503"),
        "{listed}"
    );
    assert_eq!(
        up.received().len(),
        2,
        "the healthy subscriber got each once"
    );
}

#[tokio::test]
async fn with_the_setting_a_suspension_disables_the_provisioned_domain_and_a_resumption_restores_it()
 {
    let mut opts = crate::helpers::TestOptions::default();
    opts.config.hl7.suspension_disables_domain = true;
    let h = Hl7::with(opts).await;
    let app = h.app();
    let org = Org::named("Renovating Diagnostics").id(LICENCE_ROOT, "RD-1");
    let cid = h
        .send(&m::request("PRPM_IN401030UV01", "s-1", &org))
        .await
        .certified_id();
    let session = h.f.login(Mode::Soap12).await;
    let domain = "renovating.direct.example.org";
    h.f.call(
        Mode::Soap12,
        "ProvisionCertifiedProvider",
        &provision_body(&session, domain, "CDO1", &provision_form(cid)),
    )
    .await
    .assert_code("000", "");
    app.worker.run_until_idle().await.unwrap();
    let domain_status = || async {
        sqlx::query_scalar::<_, String>("SELECT status FROM organizations WHERE domain = $1")
            .bind(domain)
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
    };
    assert_eq!(domain_status().await, "Activated");
    let suspend = m::notice(
        "PRPM_IN403030UV01",
        "s-2",
        &Org::named("").id(LICENCE_ROOT, "RD-1").status("suspended"),
    );
    assert_eq!(h.send(&suspend).await.ack_code(), "AA");
    assert_eq!(domain_status().await, "Disabled");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'registry.suspend.domain_disabled' AND object_id = $1",
    )
    .bind(cid.to_string())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    let resume = m::notice(
        "PRPM_IN403030UV01",
        "s-3",
        &Org::named("").id(LICENCE_ROOT, "RD-1").status("active"),
    );
    assert_eq!(h.send(&resume).await.ack_code(), "AA");
    assert_eq!(domain_status().await, "Activated");
}

#[tokio::test]
async fn without_the_setting_a_suspension_keeps_the_domain_and_says_so_in_the_audit_log() {
    let h = Hl7::new().await;
    let app = h.app();
    let org = Org::named("Kept Diagnostics").id(LICENCE_ROOT, "KD-1");
    let cid = h
        .send(&m::request("PRPM_IN401030UV01", "k-1", &org))
        .await
        .certified_id();
    let session = h.f.login(Mode::Soap12).await;
    let domain = "kept.direct.example.org";
    h.f.call(
        Mode::Soap12,
        "ProvisionCertifiedProvider",
        &provision_body(&session, domain, "CDO1", &provision_form(cid)),
    )
    .await
    .assert_code("000", "");
    let suspend = m::notice(
        "PRPM_IN403030UV01",
        "k-2",
        &Org::named("").id(LICENCE_ROOT, "KD-1").status("suspended"),
    );
    assert_eq!(h.send(&suspend).await.ack_code(), "AA");
    let status: String = sqlx::query_scalar("SELECT status FROM organizations WHERE domain = $1")
        .bind(domain)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_ne!(status, "Disabled");
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE object_id = $1 AND action LIKE 'registry.%' ORDER BY id",
    )
    .bind(cid.to_string())
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        audited,
        [
            "registry.add",
            "registry.suspend.domain_kept",
            "registry.suspend"
        ]
    );
}

#[tokio::test]
async fn ops_manage_subscribers_from_the_cli_with_the_password_kept_out_of_argv() {
    let h = Hl7::new().await;
    let app = h.app();
    let out = crate::helpers::gateway_command()
        .env("DATABASE_URL", &app.db.url)
        .env("GW_SUBSCRIBER_PASSWORD", "cli-secret-9")
        .args([
            "registry",
            "subscribers",
            "add",
            "http://127.0.0.1:9/hl7",
            "--user",
            "tracker",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    let id = crate::helpers::field(&crate::helpers::stdout(&out), "id");
    assert_eq!(
        crate::helpers::field(&crate::helpers::stdout(&out), "auth"),
        "sealed"
    );
    let listed = crate::helpers::stdout(&app.cli(&["registry", "subscribers", "list"]));
    assert!(
        listed.contains(&id) && !listed.contains("cli-secret-9"),
        "{listed}"
    );
    // A URL the egress guard refuses is refused at registration.
    let out = app.cli(&[
        "registry",
        "subscribers",
        "add",
        "http://169.254.169.254/latest",
    ]);
    assert!(!out.status.success());
    assert!(
        app.cli(&["registry", "subscribers", "remove", &id])
            .status
            .success()
    );
    let listed = crate::helpers::stdout(&app.cli(&["registry", "subscribers", "list"]));
    assert!(!listed.contains(&id));
}
