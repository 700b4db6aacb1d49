//! Credentialing intake over real HTTP: a fake credentialing service (Verifiable style) posts
//! the 13 event types with payloads shaped like the spec's examples; standings, suspensions,
//! SOAP refusals, ops notifications and redaction are checked where a user would see them.

mod concurrency;
mod direct;
mod intake;
mod redaction;
mod seed_examples;
mod story;
mod types;

use chrono::{DateTime, Duration, Utc};
use hisp_gateway::service::{self, Actor};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TEST_IDENTITY_KEY, TestApp};

pub const PATH: &str = "/credentialing/webhooks";
/// The CMS example NPI (valid check digit); imported for Ada Stone (idp 8001).
pub const ADA_NPI: u64 = 1234567893;
/// A full SSN ending in Ada's last four (1111).
pub const ADA_SSN: &str = "078-05-1111";

/// The credentialing service of the tests: its webhook id and secret, posting over HTTP.
pub struct FakeSource {
    pub webhook_id: Uuid,
    pub secret: String,
    pub http: reqwest::Client,
    pub base: String,
}

impl FakeSource {
    /// Registers a source through the ops REST route.
    pub async fn register(app: &TestApp, ops: &(Uuid, String)) -> Self {
        let webhook_id = Uuid::new_v4();
        let secret = "a-secret-the-service-sends-0123456789".to_owned();
        let r = app
            .post_json_as(
                "/api/v1/credentialing/sources",
                ops,
                &json!({"name": "Verifiable (test)", "webhookId": webhook_id, "secret": secret}),
            )
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["eventTypes"].as_array().unwrap().len(), 13, "{body}");
        assert!(body.get("secret").is_none(), "a given secret is not echoed");
        Self {
            webhook_id,
            secret,
            http: app.http.clone(),
            base: app.url(""),
        }
    }

    /// Posts one event with the four delivery headers.
    pub async fn post_as(
        &self,
        webhook_id: &str,
        secret: &str,
        kind: &str,
        trace: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}{PATH}", self.base))
            .header("X-WebhookType", kind)
            .header("X-WebhookId", webhook_id)
            .header("X-Secret", secret)
            .header("X-TraceId", trace)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, kind: &str, trace: &str, body: &Value) -> reqwest::Response {
        self.post_as(
            &self.webhook_id.to_string(),
            &self.secret,
            kind,
            trace,
            body,
        )
        .await
    }

    /// Posts with a new trace id and expects 200.
    pub async fn send(&self, kind: &str, body: &Value) -> Value {
        let r = self.post(kind, &Uuid::new_v4().to_string(), body).await;
        assert_eq!(r.status(), 200, "{kind}: {}", r.text().await.unwrap());
        r.json().await.unwrap()
    }
}

/// Gives Ada Stone (idp 8001 of the SOAP fixture) her NPI, through the identity import.
pub async fn give_ada_her_npi(app: &TestApp) {
    let people = format!(
        "idp_id,first_name,last_name,date_of_birth,ssn_last4,verified_at,npi\n\
         8001,Ada,Stone,1975-03-02,1111,2026-01-05,{ADA_NPI}\n"
    );
    service::identity_import::import_readers(
        &app.db.pool,
        None,
        Some(("people.csv".into(), Box::new(std::io::Cursor::new(people)))),
        TEST_IDENTITY_KEY.as_bytes(),
        &Actor::cli(),
    )
    .await
    .unwrap();
}

pub fn t(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A tiny PNG, base64: what a license verification's screenshot looks like.
pub const SCREENSHOT: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// ProviderModel (ProviderStatusChanged), with the SSN and date of birth the service sends.
pub fn provider(id: Uuid, status: &str, deactivated: bool, at: DateTime<Utc>) -> Value {
    json!({
        "id": id,
        "firstName": "Ada",
        "lastName": "Stone",
        "dateOfBirth": "1975-03-02T00:00:00Z",
        "ssn": ADA_SSN,
        "credentialingStatus": status,
        "credentialedDate": t(at),
        "nextCredentialingDate": "2029-01-01",
        "npi": ADA_NPI,
        "deactivated": deactivated,
        "deactivatedAt": if deactivated { Value::String(t(at)) } else { Value::Null },
        "aliases": [],
        "primaryPracticeState": "NJ",
        "additionalPracticeStates": [],
        "gender": "Female",
        "ethnicity": [],
        "addresses": [],
        "emails": ["ada@example.org"],
        "phone": "609-555-0100",
        "languages": [],
        "recredentialedDates": [],
        "providerType": null,
        "nuccGroup": null,
        "segment": null,
        "createdAt": "2024-01-05T10:00:00Z"
    })
}

/// LicenseModel: one license verified at `started`, its primary source saying `status` and
/// `expires`.
pub fn license(
    provider_id: Uuid,
    license_id: Uuid,
    started: DateTime<Utc>,
    status: &str,
    expires: DateTime<Utc>,
    restriction: &str,
) -> Value {
    json!({
        "providerId": provider_id,
        "licenseNumber": "25MA09876500",
        "firstName": "Ada",
        "lastName": "Stone",
        "state": "NJ",
        "jobStatus": "Idle",
        "nonVerifiedInfo": {
            "issueDate": "2019-08-24T14:15:22Z",
            "expirationDate": t(expires),
            "status": status
        },
        "currentVerificationStatus": "Found",
        "currentVerification": {
            "originalStatus": "Found",
            "status": "Found",
            "trigger": "Monitor",
            "started": t(started),
            "processingTime": 1200,
            "results": [{
                "name": "ADA STONE",
                "licenseType": "Medical Doctor",
                "licenseStatus": status,
                "licenseNumber": "25MA09876500",
                "address": "10 Main St, Trenton NJ",
                "issued": "2019-08-24T14:15:22Z",
                "expires": t(expires),
                "screenshots": [SCREENSHOT],
                "attachments": [],
                "disciplinaryActions": null,
                "additionalProperties": null,
                "problems": [],
                "prescriptiveAuthority": "NotRequired",
                "compactStatus": "string"
            }],
            "additionalVerificationParameters": [
                {"type": "DateOfBirth", "dateOfBirth": "1975-03-02"}
            ],
            "verificationSource": null,
            "failureReason": null,
            "correctResultIndex": 0,
            "export": "https://exports.example.org/license.pdf",
            "exportSuccess": true,
            "exportError": null,
            "id": Uuid::new_v4(),
            "monitoringMetadata": null
        },
        "restrictionStatus": restriction,
        "approvedStatus": "Yes",
        "isPrimary": true,
        "id": license_id,
        "isCurrentlyPracticing": true,
        "prescriptiveAuthority": "NotRequired",
        "collaboratingProviderId": null,
        "licenseType": {"id": Uuid::new_v4(), "taxonomy": "207Q00000X", "name": "Medical Doctor", "aliases": [], "abbreviations": ["MD"], "states": ["NJ"], "verificationParameters": {}, "sources": []}
    })
}

/// DatasetScanModel: a completed scan of `dataset` with one match needing action.
pub fn scan(provider_id: Uuid, dataset: &str, completed: DateTime<Utc>, ignored: bool) -> Value {
    let scan_id = Uuid::new_v4();
    json!({
        "id": scan_id,
        "started": t(completed - Duration::minutes(5)),
        "completed": t(completed),
        "type": dataset,
        "status": "Completed",
        "providerId": provider_id,
        "facilityId": null,
        "provider": null,
        "trigger": "Monitor",
        "options": {"parameterSetId": Uuid::new_v4(), "referenceId": Uuid::new_v4()},
        "failureReason": null,
        "statusDescription": null,
        "parameters": [
            {"type": "Name", "firstName": "Ada", "lastName": "Stone"},
            {"type": "Ssn", "ssn": ADA_SSN},
            {"type": "DateOfBirth", "dateOfBirth": "1975-03-02"}
        ],
        "matches": [{
            "id": Uuid::new_v4(),
            "datasetTimestamp": t(completed),
            "recordTimestamp": t(completed),
            "data": {
                "positiveParameters": [{"type": "Name", "firstName": "Ada", "lastName": "Stone"}],
                "negativeParameters": [],
                "record": {"lastName": "STONE", "firstName": "ADA", "dob": "19750302", "exclusionType": "1128b4"}
            },
            "scanId": scan_id,
            "scan": {},
            "userActionNeeded": true,
            "isIgnored": ignored,
            "matchScore": {"score": 92, "recommendation": "Match"},
            "userActionResolution": null,
            "userActionResolutionNote": null,
            "matchRelevance": "High",
            "createdTimestamp": t(completed),
            "obsoleteTimestamp": null
        }],
        "monitoringMetadata": {"monitoringInterval": "Monthly", "lastMonitoringDate": t(completed), "nextMonitoringDate": t(completed + Duration::days(30)), "monitorId": Uuid::new_v4()},
        "verifiedAt": t(completed)
    })
}

/// CredentialingRequestModel with the provider inside and its facility (tax id of Harbor).
pub fn credentialing_request(provider_id: Uuid, status: &str, at: DateTime<Utc>) -> Value {
    json!({
        "type": "Initial",
        "id": Uuid::new_v4(),
        "provider": provider(provider_id, "InProgress", false, at),
        "facility": {
            "id": Uuid::new_v4(), "name": "Harbor Family Medicine", "createdAt": "2024-01-01T00:00:00Z",
            "deactivated": false, "parentFacilityId": null, "dba": null, "addressLine1": "10 Main St",
            "addressLine2": "Suite 2", "city": "Trenton", "state": "NJ", "zipCode": "08601",
            "phoneNumber": "609-555-0100", "faxNumber": null, "groupTaxId": "12-3456789",
            // Two verified organizations share this NPI (fixture): no guess, the tax id decides.
            "npi": ADA_NPI.to_string(),
            "facilityTaxId": null, "contactName": "Office", "contactEmail": "office@example.org",
            "medicarePartANumber": null, "medicarePartBNumber": null, "medicaidNumber": null
        },
        "createdAt": t(at - Duration::days(3)),
        "currentEvent": {"id": Uuid::new_v4(), "description": "Request in progress", "note": "", "timestamp": t(at), "status": status, "attachments": [], "user": null},
        "allEvents": [],
        "priority": "Medium",
        "isSelfManaged": false,
        "applicationReceivedDate": "2026-11-01",
        "checklist": null,
        "owner": null,
        "facilitySpecialtyIds": [],
        "facilitySpecialties": []
    })
}

pub fn report(provider_id: Uuid, at: DateTime<Utc>) -> Value {
    json!({
        "type": "Pdf", "id": Uuid::new_v4(), "providerId": provider_id, "facilityId": null,
        "startedAt": t(at - Duration::minutes(1)), "completedAt": t(at), "status": "Completed",
        "failureReason": null, "path": "https://exports.example.org/report.pdf",
        "data": {"state": null}, "credentialingRequestId": Uuid::new_v4()
    })
}

pub fn profile_import(provider_id: Uuid, at: DateTime<Utc>) -> Value {
    json!({
        "id": Uuid::new_v4(), "providerId": provider_id, "source": "Npi",
        "started": t(at - Duration::minutes(1)), "completed": t(at), "status": "Completed",
        "trigger": "Manual", "failureCode": null, "failureReason": null, "profile": {},
        "parameters": [{"type": "Npi", "npi": ADA_NPI.to_string()}, {"type": "Ssn", "ssn": ADA_SSN}]
    })
}

pub fn npdb_rejected(provider_id: Uuid) -> Value {
    json!({
        "message": "The NPDB rejected the update: the SSN does not match",
        "providerId": provider_id,
        "npdbVerificationRequestId": Uuid::new_v4(),
        "rejectedParameters": [{"type": "Ssn", "ssn": ADA_SSN}, {"type": "DateOfBirth", "dateOfBirth": "1975-03-02"}]
    })
}

/// The standing view of an individual, through the ops REST route.
pub async fn standing_of(app: &TestApp, ops: &(Uuid, String), idp: i64) -> Value {
    let r = app
        .http
        .get(app.url(&format!("/api/v1/credentialing/individuals/{idp}")))
        .basic_auth(ops.0, Some(&ops.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

/// Every stored event payload, as text.
pub async fn stored_payloads(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT payload::text FROM credentialing_events ORDER BY received_at")
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

/// An ops listing of standings (`warning`, `restricted`, or both when empty).
pub async fn list(app: &TestApp, ops: &(Uuid, String), standing: &str) -> Value {
    let q = if standing.is_empty() {
        String::new()
    } else {
        format!("?standing={standing}")
    };
    let r = app
        .http
        .get(app.url(&format!("/api/v1/credentialing/standings{q}")))
        .basic_auth(ops.0, Some(&ops.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}
