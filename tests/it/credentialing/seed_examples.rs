//! The spec's own example payloads (seed 004, one per event type, copied as published into
//! `tests/fixtures/credentialing/`) are taken as they are, and stored without their dates of
//! birth.

use hisp_gateway::domain::client::ClientKind;
use serde_json::Value;

use super::*;
use crate::helpers::TestApp;

const TYPES: [&str; 13] = [
    "DatasetScanCompleted",
    "ExportCompleted",
    "LicenseChanged",
    "LicenseExpired",
    "LicenseExpiresSoon",
    "VerificationCompleted",
    "LicenseStatusChanged",
    "ProviderStatusChanged",
    "ProviderProfileImportCompleted",
    "CredentialingRequestChanged",
    "GenerateReport",
    "DatasetScanMatchesChanged",
    "NpdbUpdateRequestRejected",
];

#[tokio::test]
async fn every_example_payload_of_the_spec_is_accepted_as_published() {
    let app = TestApp::spawn().await;
    let ops = app.create_client(ClientKind::Ops).await;
    let src = FakeSource::register(&app, &ops).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/credentialing");
    for kind in TYPES {
        let text = std::fs::read_to_string(dir.join(format!("{kind}.json"))).unwrap();
        let body: Value = serde_json::from_str(&text).unwrap();
        let r = src.post(kind, &format!("seed-{kind}"), &body).await;
        assert_eq!(r.status(), 200, "{kind}: {}", r.text().await.unwrap());
    }
    let stored = stored_payloads(&app).await;
    assert_eq!(stored.len(), TYPES.len());
    for p in &stored {
        assert!(
            !p.contains("dateOfBirth"),
            "a date of birth was stored: {p}"
        );
    }
}
