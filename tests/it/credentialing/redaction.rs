//! A full SSN, dates of birth and screenshots sent by the service reach neither the database
//! nor the log: the real binary, its log captured at debug level, registered through its CLI.

use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use hisp_gateway::service::{self, Actor};
use serde_json::Value;
use uuid::Uuid;

use super::*;
use crate::helpers::process::GatewayProcess;
use crate::helpers::{TEST_IDENTITY_KEY, TestDb, field, gateway_command, stderr, stdout};

const SECRET: &str = "binary-test-secret-0123456789abcdef";

/// Every place a value could have been written to, as text.
async fn everything_stored(db: &TestDb) -> String {
    let mut out = String::new();
    for q in [
        "SELECT coalesce(string_agg(payload::text || trace_id || event_type, '|'), '') FROM credentialing_events",
        "SELECT coalesce(string_agg(row_to_json(p)::text, '|'), '') FROM credentialing_providers p",
        "SELECT coalesce(string_agg(row_to_json(f)::text, '|'), '') FROM credentialing_facts f",
        "SELECT coalesce(string_agg(row_to_json(s)::text, '|'), '') FROM credentialing_standing_changes s",
        "SELECT coalesce(string_agg(payload::text || coalesce(last_error, ''), '|'), '') FROM jobs",
        "SELECT coalesce(string_agg(row_to_json(a)::text, '|'), '') FROM audit_log a",
    ] {
        let part: String = sqlx::query_scalar(sqlx::AssertSqlSafe(q))
            .fetch_one(&db.pool)
            .await
            .unwrap();
        out.push_str(&part);
    }
    out
}

#[tokio::test]
async fn a_full_ssn_leaves_no_trace_in_the_database_or_the_log() {
    let db = TestDb::new().await;
    let people = "idp_id,first_name,last_name,date_of_birth,ssn_last4,verified_at\n\
         8001,Ada,Stone,1975-03-02,1111,2026-01-05\n";
    service::identity_import::import_readers(
        &db.pool,
        None,
        Some(("people.csv".into(), Box::new(std::io::Cursor::new(people)))),
        TEST_IDENTITY_KEY.as_bytes(),
        &Actor::cli(),
    )
    .await
    .unwrap();
    let webhook_id = Uuid::new_v4().to_string();
    let out = gateway_command()
        .env("DATABASE_URL", &db.url)
        .args([
            "credentialing",
            "sources",
            "add",
            "--name",
            "Verifiable",
            "--webhook-id",
            &webhook_id,
            "--secret",
            SECRET,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(field(&stdout(&out), "webhook_id"), webhook_id);

    let mut cmd = gateway_command();
    cmd.env("DATABASE_URL", &db.url)
        .env("GW_LOG__LEVEL", "debug");
    let gw = GatewayProcess::start(cmd);
    let src = FakeSource {
        webhook_id: webhook_id.parse().unwrap(),
        secret: SECRET.into(),
        http: reqwest::Client::new(),
        base: gw.url(""),
    };
    let p = Uuid::new_v4();
    let now = Utc::now();
    // No NPI on file: the provider is matched by name, date of birth and SSN last four.
    let mut person = provider(p, "Credentialed", false, now - Duration::days(3));
    person.as_object_mut().unwrap().remove("npi");
    src.send("ProviderStatusChanged", &person).await;
    src.send(
        "DatasetScanCompleted",
        &scan(p, "Sam", now - Duration::days(1), false),
    )
    .await;
    src.send("NpdbUpdateRequestRejected", &npdb_rejected(p))
        .await;
    src.send(
        "LicenseChanged",
        &license(
            p,
            Uuid::new_v4(),
            now,
            "Active",
            now + Duration::days(500),
            "None",
        ),
    )
    .await;

    // The server's own worker processes them.
    let start = Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM credentialing_events WHERE processed_at IS NULL",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if waiting == 0 {
            break;
        }
        assert!(
            start.elapsed() < StdDuration::from_secs(60),
            "events not processed:\n{}",
            gw.stderr_tail(40)
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let out = gateway_command()
        .env("DATABASE_URL", &db.url)
        .args(["credentialing", "standing", "8001"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let view: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(view["standing"], "restricted", "{view}");
    assert_eq!(view["providers"], serde_json::json!([p]));
    let linked_by: String = sqlx::query_scalar("SELECT linked_by FROM credentialing_providers")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(linked_by, "identity");
    let out = gateway_command()
        .env("DATABASE_URL", &db.url)
        .args(["credentialing", "list", "--standing", "restricted"])
        .output()
        .unwrap();
    assert!(
        stdout(&out).starts_with("8001\trestricted"),
        "{}",
        stdout(&out)
    );

    let (_, log) = gw.terminate();
    assert!(
        log.contains("credentialing event stored"),
        "the log was captured:\n{log}"
    );
    let stored = everything_stored(&db).await;
    assert!(stored.contains(&p.to_string()), "the query sees the events");
    for secret in [
        ADA_SSN,
        "078051111",
        "1975-03-02",
        "19750302",
        SCREENSHOT,
        SECRET,
    ] {
        assert!(!stored.contains(secret), "{secret} is in the database");
        assert!(!log.contains(secret), "{secret} is in the log");
    }
    let cli_view = view.to_string();
    assert!(!cli_view.contains(ADA_SSN) && !cli_view.contains("1975-03-02"));
}
