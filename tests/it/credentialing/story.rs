//! The acceptance stories: a lapsed license takes a provider's addresses away until a renewal
//! gives them back (but never one ops disabled), and an expiring license warns ops once.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use hisp_gateway::config::Secret;
use hisp_gateway::domain::client::ClientKind;
use hisp_gateway::webhooks::SigningKey;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::helpers::TestOptions;
use crate::helpers::receiver::Receiver;
use crate::messaging::{BEN, DOMAIN_A, SENDER, World, assert_signed, message};
use crate::soap::{Fixture, Mode, address};

const ADA2: &str = "ada2@harbor.direct.example.org";

fn notifying(rx: &Receiver, key: &SigningKey) -> TestOptions {
    let mut opts = TestOptions::default();
    opts.config.credentialing.ops_webhook_url = rx.url("/ops/credentialing");
    opts.config.credentialing.ops_webhook_secret = Secret::new(key.to_whsec());
    opts
}

async fn add_address(f: &Fixture, username: &str) -> crate::soap::Reply {
    let session = f.login(Mode::Soap12).await;
    f.call(
        Mode::Soap12,
        "AddDirectAddressesToCertifiedProvider",
        &format!(
            "<sessionId>{session}</sessionId><DirectDomain>{DOMAIN_A}</DirectDomain><form>{}</form>",
            address(8001, username, "Str0ng-Passw0rd")
        ),
    )
    .await
}

async fn send_status(w: &World, id: &str) -> (u16, serde_json::Value) {
    let r = w.send(&message(id, BEN, false)).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn a_lapsed_license_suspends_both_addresses_until_a_renewal_restores_them() {
    let rx = Receiver::start().await;
    let key = SigningKey::generate();
    let w = World::with(notifying(&rx, &key)).await;
    let app = &w.f.app;
    give_ada_her_npi(app).await;
    add_address(&w.f, "ada2").await.assert_code("000", "");
    w.drain().await;
    let src = FakeSource::register(app, &w.ops).await;
    let (p, lic) = (Uuid::new_v4(), Uuid::new_v4());
    let now = Utc::now();
    src.send(
        "ProviderStatusChanged",
        &provider(p, "Credentialed", false, now - Duration::days(9)),
    )
    .await;
    w.drain().await;
    assert_eq!(standing_of(app, &w.ops, 8001).await["standing"], "good");
    w.send_ok(&message("before-1", BEN, false)).await;

    // The license lapses: both of Ada's addresses are suspended.
    let expired = src
        .send(
            "LicenseExpired",
            &license(
                p,
                lic,
                now - Duration::hours(2),
                "Expired",
                now - Duration::days(1),
                "None",
            ),
        )
        .await;
    w.drain().await;
    let v = standing_of(app, &w.ops, 8001).await;
    assert_eq!(v["standing"], "restricted", "{v}");
    let statuses: Vec<(String, String)> = v["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["address"].as_str().unwrap().to_owned(),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (SENDER.to_owned(), "suspended".to_owned()),
            (ADA2.to_owned(), "suspended".to_owned())
        ]
    );
    assert_eq!(v["changes"][0]["eventId"], expired["eventId"]);

    // Sending from them is refused, naming why; nothing is accepted.
    let before: i64 = crate::helpers::count(&app.db.pool, "messages").await;
    let (status, body) = send_status(&w, "during-1").await;
    crate::messaging::assert_refused(status, &body, 403, "license-expired");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("suspended"),
        "{body}"
    );
    assert_eq!(
        crate::helpers::count(&app.db.pool, "messages").await,
        before
    );

    // No new address for her over SOAP: 205 with the reason.
    let r = add_address(&w.f, "ada3").await;
    r.assert_code("205", "restricted by credentialing");
    let ada3: i64 =
        sqlx::query_scalar("SELECT count(*) FROM direct_addresses WHERE username = 'ada3'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(ada3, 0);
    let people = || async { crate::helpers::count(&app.db.pool, "organization_people").await };
    let before = people().await;
    let session = w.f.login(Mode::Soap11).await;
    w.f.call(
        Mode::Soap11,
        "AddAuthorizedUsersToCertifiedProvider",
        &format!(
            "<sessionId>{session}</sessionId><DirectDomain>{DOMAIN_A}</DirectDomain>\
             <form><authorizedUsers><idp_id>8001</idp_id></authorizedUsers></form>"
        ),
    )
    .await
    .assert_code("205", "license-expired");
    assert_eq!(people().await, before);

    // Ops heard of it, signed.
    let told = rx.wait_accepted(1, StdDuration::from_secs(10)).await;
    assert_eq!(told.len(), 1);
    assert_signed(&told[0], &key);
    let n = told[0].json();
    assert_eq!(
        (n["idpId"].clone(), n["old"].clone(), n["new"].clone()),
        (json!(8001), json!("good"), json!("restricted"))
    );
    assert_eq!(n["eventType"], "LicenseExpired");
    assert_eq!(n["addresses"].as_array().unwrap().len(), 2);
    assert_eq!(n["resellers"], json!([w.f.reseller.0]));

    // Ops disable ada2 by hand meanwhile.
    let r = app
        .http
        .put(app.url(&format!("/api/v1/addresses/{ADA2}/status")))
        .basic_auth(w.ops.0, Some(&w.ops.1))
        .json(&json!({"status": "disabled"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    // Renewed: Ada's address comes back, ada2 stays as ops left it.
    src.send(
        "LicenseChanged",
        &license(
            p,
            lic,
            now - Duration::minutes(5),
            "Active",
            now + Duration::days(700),
            "None",
        ),
    )
    .await;
    w.drain().await;
    let v = standing_of(app, &w.ops, 8001).await;
    assert_eq!(v["standing"], "good", "{v}");
    let statuses: Vec<&str> = v["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["active", "disabled"]);
    w.send_ok(&message("after-1", BEN, false)).await;
    let told = rx.wait_accepted(2, StdDuration::from_secs(10)).await;
    assert_eq!(told[1].json()["new"], "good");
    let restores: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'address.restore'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(restores, 1);
    // Provisioning for her works again.
    add_address(&w.f, "ada3").await.assert_code("000", "");
}

#[tokio::test]
async fn a_license_expiring_soon_warns_and_ops_are_told_once() {
    let rx = Receiver::start().await;
    let key = SigningKey::generate();
    let f = Fixture::with(notifying(&rx, &key)).await;
    let app = &f.app;
    give_ada_her_npi(app).await;
    let ops = app.create_client(ClientKind::Ops).await;
    let src = FakeSource::register(app, &ops).await;
    let (p, lic) = (Uuid::new_v4(), Uuid::new_v4());
    let now = Utc::now();
    src.send(
        "ProviderStatusChanged",
        &provider(p, "Credentialed", false, now - Duration::days(9)),
    )
    .await;
    // The service warns, and warns again the next day.
    for day in [2, 1] {
        let body = license(
            p,
            lic,
            now - Duration::days(day),
            "Active",
            now + Duration::days(45),
            "None",
        );
        src.send("LicenseExpiresSoon", &body).await;
        app.worker.run_until_idle().await.unwrap();
    }
    let v = standing_of(app, &ops, 8001).await;
    assert_eq!(v["standing"], "warning", "{v}");
    assert_eq!(v["reason"], "license-expires-soon");
    let warned = list(app, &ops, "").await;
    assert_eq!(warned[0]["idpId"], 8001, "{warned}");
    let told = rx.wait_accepted(1, StdDuration::from_secs(10)).await;
    app.worker.run_until_idle().await.unwrap();
    assert_eq!(rx.accepted().len(), 1, "told once: {:?}", told);
    assert_signed(&told[0], &key);
    assert_eq!(told[0].json()["new"], "warning");
}
