//! All 13 event types, in a provider's life: each stored redacted, and the standing moved by
//! the ones that state something about the provider.

use chrono::{Duration, Utc};
use hisp_gateway::domain::client::ClientKind;
use serde_json::Value;
use uuid::Uuid;

use super::*;
use crate::soap::Fixture;

#[tokio::test]
async fn each_of_the_13_types_is_stored_redacted_and_moves_the_standing_where_it_should() {
    let f = Fixture::new().await;
    let app = &f.app;
    give_ada_her_npi(app).await;
    let ops = app.create_client(ClientKind::Ops).await;
    let src = FakeSource::register(app, &ops).await;
    let (p, lic, lic2) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let t0 = Utc::now() - Duration::days(30);
    let at = |m: i64| t0 + Duration::minutes(m);
    let valid = Utc::now() + Duration::days(700);
    let soon = Utc::now() + Duration::days(20);
    let steps: Vec<(&str, Value, &str, &str)> = vec![
        (
            "ProviderStatusChanged",
            provider(p, "Credentialed", false, at(1)),
            "good",
            "linked by NPI",
        ),
        (
            "ProviderProfileImportCompleted",
            profile_import(p, at(2)),
            "good",
            "a report",
        ),
        (
            "VerificationCompleted",
            license(p, lic, at(3), "Active", valid, "None"),
            "good",
            "license active",
        ),
        (
            "ExportCompleted",
            license(p, lic, at(3), "Active", valid, "None"),
            "good",
            "a report",
        ),
        ("GenerateReport", report(p, at(4)), "good", "a report"),
        (
            "NpdbUpdateRequestRejected",
            npdb_rejected(p),
            "good",
            "a report",
        ),
        (
            "CredentialingRequestChanged",
            credentialing_request(p, "RequestInProgress", at(5)),
            "good",
            "request open",
        ),
        (
            "LicenseStatusChanged",
            license(p, lic2, at(6), "Active", valid, "Restricted"),
            "restricted",
            "second license restricted",
        ),
        (
            "LicenseChanged",
            license(p, lic2, at(7), "Active", valid, "None"),
            "good",
            "restriction lifted",
        ),
        (
            "LicenseExpiresSoon",
            license(p, lic, at(8), "Active", soon, "None"),
            "warning",
            "expires in 20 days",
        ),
        (
            "LicenseChanged",
            license(p, lic, at(9), "Active", valid, "None"),
            "good",
            "renewed",
        ),
        (
            "DatasetScanCompleted",
            scan(p, "OigExclusions", at(10), false),
            "restricted",
            "exclusion list match",
        ),
        (
            "DatasetScanMatchesChanged",
            scan(p, "OigExclusions", at(11), true),
            "good",
            "match ignored",
        ),
        (
            "LicenseExpired",
            license(p, lic, at(12), "Expired", at(12), "None"),
            "restricted",
            "license expired",
        ),
    ];
    let mut seen_types = std::collections::BTreeSet::new();
    for (kind, body, want, why) in &steps {
        src.send(kind, body).await;
        app.worker.run_until_idle().await.unwrap();
        let v = standing_of(app, &ops, 8001).await;
        assert_eq!(v["standing"], *want, "after {kind} ({why}): {v}");
        seen_types.insert(*kind);
    }
    assert_eq!(seen_types.len(), 13);

    // Linked by NPI; the facility of the credentialing request by Harbor's tax id.
    let v = standing_of(app, &ops, 8001).await;
    assert_eq!(v["providers"], serde_json::json!([p]));
    assert!(
        v["reason"].as_str().unwrap().contains("license-expired"),
        "{v}"
    );
    assert_eq!(v["timeline"].as_array().unwrap().len(), steps.len(), "{v}");
    let facility: (Option<i64>, Option<String>) =
        sqlx::query_as("SELECT certified_id, linked_by FROM credentialing_facilities")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(facility, (Some(7001), Some("tax_id".into())));

    // Stored: one row each, none holding an SSN, a date of birth or a screenshot.
    let payloads = stored_payloads(app).await;
    assert_eq!(payloads.len(), steps.len());
    for p in &payloads {
        for gone in [
            ADA_SSN,
            "0780511",
            "1975-03-02",
            "19750302",
            SCREENSHOT,
            "\"ssn\"",
            "dateOfBirth",
            "screenshots",
        ] {
            assert!(!p.contains(gone), "{gone} stored in {p}");
        }
    }

    // Seven changes of standing, each audited with the event that caused it.
    let changes = v["changes"].as_array().unwrap();
    let path: Vec<&str> = changes
        .iter()
        .rev()
        .map(|c| c["new"].as_str().unwrap())
        .collect();
    assert_eq!(
        path,
        [
            "restricted",
            "good",
            "warning",
            "good",
            "restricted",
            "good",
            "restricted"
        ]
    );
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, action FROM audit_log WHERE action LIKE 'credentialing.standing.%' ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audited.len(), 7);
    for (c, (actor, action)) in changes.iter().rev().zip(&audited) {
        assert_eq!(
            *actor,
            format!("credentialing-event:{}", c["eventId"].as_str().unwrap())
        );
        assert_eq!(
            *action,
            format!("credentialing.standing.{}", c["new"].as_str().unwrap())
        );
    }
    let restricted = super::list(app, &ops, "restricted").await;
    assert_eq!(restricted.as_array().unwrap().len(), 1, "{restricted}");
    assert_eq!(restricted[0]["idpId"], 8001);
}
