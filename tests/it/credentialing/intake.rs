//! The door's checks: who may post, which type, which body; a retried delivery is one event;
//! a provider nobody can be matched to waits for ops.

use chrono::{Duration, Utc};
use hisp_gateway::domain::client::ClientKind;
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;
use crate::helpers::{count, field, stderr, stdout};
use crate::soap::Fixture;

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_delivery_is_checked_header_by_header_and_a_retry_is_one_event() {
    let f = Fixture::new().await;
    let app = &f.app;
    let ops = app.create_client(ClientKind::Ops).await;
    let src = FakeSource::register(app, &ops).await;
    let p = Uuid::new_v4();
    let now = Utc::now();
    let body = license(
        p,
        Uuid::new_v4(),
        now,
        "Expired",
        now - Duration::days(1),
        "None",
    );

    // The same X-TraceId three times: one event, processed once, 200 each time.
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = src.post("LicenseExpired", "trace-1", &body).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["duplicate"], i > 0, "{v}");
        ids.push(v["eventId"].clone());
        if i == 0 {
            app.worker.run_until_idle().await.unwrap();
        }
    }
    assert!(ids.iter().all(|id| *id == ids[0]));
    assert_eq!(
        app.worker.run_until_idle().await.unwrap(),
        0,
        "nothing more to process"
    );
    assert_eq!(count(&app.db.pool, "credentialing_events").await, 1);
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'credentialing.process'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(runs, 1);

    // Refusals leave the database as it was.
    let snapshot = || async {
        (
            count(&app.db.pool, "credentialing_events").await,
            count(&app.db.pool, "jobs").await,
            count(&app.db.pool, "credentialing_providers").await,
        )
    };
    let before = snapshot().await;
    let wh = src.webhook_id.to_string();
    let cases: Vec<(reqwest::Response, u16, Option<&str>, &str)> = vec![
        (
            src.post("LicenseExploded", "t-2", &body).await,
            400,
            Some("X-WebhookType"),
            "LicenseExploded",
        ),
        (
            src.post("", "t-3", &body).await,
            400,
            Some("X-WebhookType"),
            "",
        ),
        (
            src.post("LicenseExpired", "", &body).await,
            400,
            Some("X-TraceId"),
            "required",
        ),
        (
            src.post(
                "LicenseExpired",
                "t-4",
                &json!({"providerId": "not-a-uuid"}),
            )
            .await,
            400,
            Some("providerId"),
            "UUID",
        ),
        (
            src.post(
                "LicenseChanged",
                "t-5",
                &json!({"currentVerification": {"started": "yesterday"}}),
            )
            .await,
            400,
            Some("currentVerification.started"),
            "date-time",
        ),
        (
            src.post(
                "DatasetScanCompleted",
                "t-6",
                &json!({"matches": [{"isIgnored": "no"}]}),
            )
            .await,
            400,
            Some("matches[].isIgnored"),
            "true or false",
        ),
        (
            src.post(
                "ProviderStatusChanged",
                "t-7",
                &json!({"firstName": "Ada", "lastName": "Stone"}),
            )
            .await,
            400,
            Some("credentialingStatus"),
            "required",
        ),
        (
            src.post("GenerateReport", "t-8", &json!([1, 2])).await,
            400,
            Some("body"),
            "object",
        ),
    ];
    for (r, want, field, says) in cases {
        let (status, v) = error_of(r).await;
        assert_eq!(status, want, "{v}");
        assert_eq!(v["error"]["field"].as_str(), field, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
    let r = src
        .http
        .post(app.url(PATH))
        .header("X-WebhookType", "GenerateReport")
        .header("X-WebhookId", &wh)
        .header("X-Secret", &src.secret)
        .header("X-TraceId", "t-9")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Past the door's body limit (credentialing.body_limit_bytes, 1 MiB).
    let big = json!({"message": "x".repeat(2 << 20), "providerId": p});
    let (status, v) = error_of(src.post("NpdbUpdateRequestRejected", "t-12", &big).await).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert_eq!(snapshot().await, before);

    // Unknown webhook id, wrong secret: 401, and after a few the address is throttled, even
    // with the right secret.
    let mut statuses = Vec::new();
    for (id, secret) in [
        (Uuid::new_v4().to_string(), src.secret.clone()),
        ("not-a-uuid".to_owned(), src.secret.clone()),
        (wh.clone(), "wrong-secret-wrong-secret".to_owned()),
        (wh.clone(), String::new()),
        (wh.clone(), "another-wrong-secret".to_owned()),
        (wh.clone(), "and-another-wrong-one".to_owned()),
    ] {
        let r = src
            .post_as(&id, &secret, "LicenseExpired", "t-10", &body)
            .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401]);
    let r = src.post("LicenseExpired", "t-11", &body).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(snapshot().await, before);
}

#[tokio::test]
async fn a_source_sends_only_its_types_and_an_unmatched_provider_waits_for_ops() {
    let f = Fixture::new().await;
    let app = &f.app;
    let ops = app.create_client(ClientKind::Ops).await;
    let webhook_id = Uuid::new_v4();
    let r = app
        .post_json_as(
            "/api/v1/credentialing/sources",
            &ops,
            &json!({"name": "licenses only", "webhookId": webhook_id, "eventTypes": ["LicenseExpired", "LicenseChanged"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let src = FakeSource {
        webhook_id,
        secret: created["secret"]
            .as_str()
            .expect("a generated secret, shown once")
            .to_owned(),
        http: app.http.clone(),
        base: app.url(""),
    };
    let vendor = app.create_client(ClientKind::Vendor).await;
    let r = app
        .post_json_as(
            "/api/v1/credentialing/sources",
            &vendor,
            &json!({"name": "x", "webhookId": Uuid::new_v4()}),
        )
        .await;
    assert_eq!(r.status(), 403);

    let q = Uuid::new_v4();
    let now = Utc::now();
    let (status, v) = error_of(
        src.post("DatasetScanCompleted", "s-1", &scan(q, "Sam", now, false))
            .await,
    )
    .await;
    assert_eq!(
        (status, v["error"]["field"].as_str()),
        (400, Some("X-WebhookType")),
        "{v}"
    );

    // A license of a provider we cannot match (no provider event, no NPI): it waits.
    src.send(
        "LicenseExpired",
        &license(q, Uuid::new_v4(), now, "Expired", now, "None"),
    )
    .await;
    app.worker.run_until_idle().await.unwrap();
    assert_eq!(standing_of(app, &ops, 8001).await["standing"], "good");
    let r = app
        .http
        .get(app.url("/api/v1/credentialing/providers/unlinked"))
        .basic_auth(ops.0, Some(&ops.1))
        .send()
        .await
        .unwrap();
    let unlinked: Value = r.json().await.unwrap();
    assert_eq!(unlinked[0]["providerId"], json!(q), "{unlinked}");
    assert_eq!(unlinked[0]["lastName"], "Stone");

    let out = app.cli(&["credentialing", "unlinked"]);
    assert!(stdout(&out).contains(&q.to_string()), "{}", stderr(&out));

    // Ops link it (CLI): the standing follows at once.
    let out = app.cli(&["credentialing", "link", &q.to_string(), "8001"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(field(&stdout(&out), "standing"), "restricted");
    assert_eq!(standing_of(app, &ops, 8001).await["standing"], "restricted");
    let out = app.cli(&["credentialing", "unlinked"]);
    assert_eq!(stdout(&out), "");
    let r = app
        .post_json_as(
            &format!("/api/v1/credentialing/providers/{}/link", Uuid::new_v4()),
            &ops,
            &json!({"idpId": 8001}),
        )
        .await;
    assert_eq!(r.status(), 404);
    let linked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'credentialing.provider.link'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(linked, 1);
}
