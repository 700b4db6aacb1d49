//! REST messaging over real HTTP: two provisioned organizations, a sending vendor A and a
//! receiving vendor B whose servers are real listeners on 127.0.0.1.

mod batching;
mod crash;
mod delivery;
mod end_to_end;
mod mailbox;
mod requests;
mod seeds;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hisp_gateway::domain::client::ClientKind;
use hisp_gateway::webhooks::SigningKey;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestOptions;
use crate::helpers::receiver::{Received, Receiver};
use crate::soap::{Fixture, Mode, address, provision_body};

pub const SEND: &str = "/MessagingAPI/dirmsg/send_ccda";
pub const DOMAIN_A: &str = "harbor.direct.example.org";
pub const DOMAIN_B: &str = "lakeside.direct.example.org";
pub const SENDER: &str = "ada@harbor.direct.example.org";
pub const BEN: &str = "ben@lakeside.direct.example.org";
pub const CY: &str = "cy@lakeside.direct.example.org";

pub fn ccda() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ccda/ccd-2.xml"
    ))
    .unwrap()
}

/// Bytes no text transcoding survives unchanged: every byte value.
pub fn binary_pdf() -> Vec<u8> {
    let mut b = b"%PDF-1.6\n".to_vec();
    b.extend((0..=255u8).cycle().take(3000));
    b
}

pub struct World {
    pub f: Fixture,
    pub ops: (Uuid, String),
    pub vendor_a: (Uuid, String),
    pub vendor_b: (Uuid, String),
    /// B's EHR: inbound messages for ben and cy.
    pub inbox: Receiver,
    /// A's delivery status webhook.
    pub dsn: Receiver,
    /// A's Standard Webhooks key.
    pub signing_key: SigningKey,
}

impl World {
    pub async fn new() -> Self {
        Self::with(TestOptions::default()).await
    }

    pub async fn with(opts: TestOptions) -> Self {
        let f = Fixture::with(opts).await;
        // A: Harbor (certified 7001) with ada; B: Lakeside (7003) with ben and cy.
        let session = f.login(Mode::Soap12).await;
        let form_a = crate::soap::standard_form(&address(8001, "ada", "Str0ng-Passw0rd"));
        let r = f
            .call(
                Mode::Soap12,
                "ProvisionCertifiedProvider",
                &provision_body(&session, DOMAIN_A, "CDO5", &form_a),
            )
            .await;
        r.assert_code("000", "");
        let form_b = format!(
            "<organization><certified_id>7003</certified_id></organization><departmentName>Pediatrics</departmentName>\
             <authorizedUsers><idp_id>8003</idp_id></authorizedUsers>{}{}\
             <organizationType>CoveredEntity</organizationType>",
            address(8002, "ben", "Str0ng-Passw0rd"),
            address(8003, "cy", "Str0ng-Passw0rd")
        );
        let r = f
            .call(
                Mode::Soap12,
                "ProvisionCertifiedProvider",
                &provision_body(&session, DOMAIN_B, "CDO5", &form_b),
            )
            .await;
        r.assert_code("000", "");
        // The CA jobs issue the certificates: both organizations become Activated.
        f.app.worker.run_until_idle().await.unwrap();

        let ops = f.app.create_client(ClientKind::Ops).await;
        let vendor_a = f.app.create_client(ClientKind::Vendor).await;
        let vendor_b = f.app.create_client(ClientKind::Vendor).await;
        let w = Self {
            inbox: Receiver::start().await,
            dsn: Receiver::start().await,
            signing_key: SigningKey::generate(),
            f,
            ops,
            vendor_a,
            vendor_b,
        };
        w.grant(&w.vendor_a, DOMAIN_A).await;
        w.grant(&w.vendor_b, DOMAIN_B).await;
        for rcpt in [BEN, CY] {
            w.put_endpoint(
                &w.vendor_b,
                rcpt,
                json!({
                    "inboundUrl": w.inbox.url("/inbound"),
                    "inboundAuth": {"type": "basic", "username": "medallies", "password": "s3cret"}
                }),
            )
            .await;
        }
        w.put_endpoint(
            &w.vendor_a,
            SENDER,
            json!({
                "dsnUrl": w.dsn.url("/dsn"),
                "dsnAuth": {"type": "header", "name": "X-Api-Key", "value": "dsn-key-1"}
            }),
        )
        .await;
        let secret: Value = w
            .get_as(&w.vendor_a, "/api/v1/messaging/signing-secret")
            .await
            .json()
            .await
            .unwrap();
        let signing_key = SigningKey::from_whsec(secret["secret"].as_str().unwrap()).unwrap();
        Self { signing_key, ..w }
    }

    pub async fn grant(&self, vendor: &(Uuid, String), domain: &str) {
        let r = self
            .f
            .app
            .post_json_as(
                "/api/v1/messaging/grants",
                &self.ops,
                &json!({"clientId": vendor.0, "domain": domain}),
            )
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }

    pub async fn put_endpoint(&self, vendor: &(Uuid, String), address: &str, body: Value) {
        let r = self
            .f
            .app
            .http
            .put(self.url(&format!("/api/v1/messaging/endpoints/{address}")))
            .basic_auth(vendor.0, Some(&vendor.1))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    pub fn url(&self, path: &str) -> String {
        self.f.app.url(path)
    }

    pub async fn get_as(&self, who: &(Uuid, String), path: &str) -> reqwest::Response {
        self.f
            .app
            .http
            .get(self.url(path))
            .basic_auth(who.0, Some(&who.1))
            .send()
            .await
            .unwrap()
    }

    pub async fn send(&self, body: &Value) -> reqwest::Response {
        self.f.app.post_json_as(SEND, &self.vendor_a, body).await
    }

    /// Sends `text` as the body, as it is: for bodies that are not JSON, or JSON laid out in
    /// a way serde_json would not write.
    pub async fn send_text(&self, text: impl Into<String>) -> reqwest::Response {
        self.f
            .app
            .http
            .post(self.url(SEND))
            .basic_auth(self.vendor_a.0, Some(&self.vendor_a.1))
            .header("content-type", "application/json")
            .body(text.into())
            .send()
            .await
            .unwrap()
    }

    /// Sends and expects acceptance; returns the reply.
    pub async fn send_ok(&self, body: &Value) -> Value {
        let r = self.send(body).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    pub async fn status(&self, message_id: &str) -> (u16, Value) {
        let r = self
            .f
            .app
            .http
            .get(
                reqwest::Url::parse_with_params(
                    &self.url("/MessagingAPI/dirmsg/status"),
                    [("xdMsgId", message_id), ("fromDirectAddress", SENDER)],
                )
                .unwrap(),
            )
            .basic_auth(self.vendor_a.0, Some(&self.vendor_a.1))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// The status words of each recipient of a message, by recipient.
    pub async fn statuses(&self, message_id: &str) -> Vec<(String, String)> {
        let (code, v) = self.status(message_id).await;
        assert_eq!(code, 200, "{v}");
        let list = match v {
            Value::Array(a) => a,
            one => vec![one],
        };
        let mut out: Vec<(String, String)> = list
            .iter()
            .map(|o| {
                (
                    o["recipient"].as_str().unwrap().to_owned(),
                    o["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Runs the outbox until nothing is due.
    pub async fn drain(&self) {
        self.f.app.worker.run_until_idle().await.unwrap();
    }

    /// The DSN notifications received for a message, checked for a valid signature and the
    /// vendor's own credentials.
    pub fn notifications(&self, message_id: &str) -> Vec<Value> {
        self.dsn
            .accepted()
            .iter()
            .filter(|r| r.json()["Id"] == message_id)
            .map(|r| {
                assert_signed(r, &self.signing_key);
                assert_eq!(r.header("x-api-key"), "dsn-key-1");
                r.json()
            })
            .collect()
    }
}

/// A refusal with `status` whose error message says `says`.
pub fn assert_refused(status: u16, v: &Value, want: u16, says: &str) {
    assert_eq!(status, want, "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{v}");
}

pub fn assert_signed(r: &Received, key: &SigningKey) {
    let id = r.header("webhook-id");
    let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
    let sig = r.header("webhook-signature");
    assert!(
        key.verify(id, ts, &r.body, sig),
        "bad signature on {}",
        String::from_utf8_lossy(&r.body)
    );
    let age = chrono::Utc::now().timestamp() - ts;
    assert!((-5..300).contains(&age), "timestamp {ts} is {age}s old");
}

/// A whole valid request from ada to `to`.
pub fn message(message_id: &str, to: &str, xdm: bool) -> Value {
    json!({
        "fromDirectAddress": SENDER,
        "toDirectAddress": to,
        "emailAttachmentList": [
            {"attachmentClass": "text/xml", "attachmentContent": STANDARD.encode(ccda()), "attachmentTitle": "Continuity of Care Document"},
            {"attachmentClass": "application/pdf", "attachmentContent": STANDARD.encode(binary_pdf()), "attachmentTitle": "Referral letter", "attachmentFileName": "referral"}
        ],
        "messageBody": "Clinical Report for Patient Ralph Kramden. Please find attached clinical report",
        "messageId": message_id,
        "messageSubject": "Referral",
        "patientAddressStreet1": "328 Chauncey Street",
        "patientAddressStreet2": "Apt 3B",
        "patientAddressCity": "Brooklyn",
        "patientAddressState": "NY",
        "patientAddressZip": "11233",
        "patientDOB": "19160226",
        "patientGender": "M",
        "patientId": "22943847",
        "assigning_authority": "2.16.840.1.113883.3.9999",
        "patientIdType": "2.16.840.1.113669.2013.2.4.880061800.0",
        "patientLastname": "Kramden",
        "patientFirstname": "Ralph",
        "patientMiddlename": "H",
        "patient_summary": "Name (last, first middle): Kramden, Ralph H",
        "replyToMessageId": "2ea5021a-0c52-470a-8635-7aee90e5be34",
        "xdm": xdm,
        "asmEnabled": true,
        "loincName": "Referral Note",
        "loincValue": "57133-1",
        "authorPerson": "Doctor",
        "authorInstitution": "Some Hospital^^^^^^^^^2.999.1.2.3.5.8.9.1789.45"
    })
}

/// One decoded attachment of an inbound JSON body: (class, title, file name, bytes).
pub type Doc = (String, Option<String>, Option<String>, Vec<u8>);

pub fn attachments(body: &Value) -> Vec<Doc> {
    body["emailAttachmentList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["attachmentClass"].as_str().unwrap().to_owned(),
                a["attachmentTitle"].as_str().map(str::to_owned),
                a["attachmentFileName"].as_str().map(str::to_owned),
                STANDARD
                    .decode(a["attachmentContent"].as_str().unwrap())
                    .unwrap(),
            )
        })
        .collect()
}
