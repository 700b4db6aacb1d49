//! Trusted-Agent certificate applications over real HTTP: ops links a TA to Lakeside (the
//! messaging world's organization B), the TA applies, an officer reviews, the CA job issues,
//! and the applicant's e-mails reach an SMTP sink on 127.0.0.1.

mod end_to_end;
mod kinds;
mod mail;
mod refusals;
mod renewal;

use std::net::SocketAddr;

use hisp_gateway::config::StartTls;
use hisp_gateway::domain::client::ClientKind;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestOptions, count, test_config};
use crate::messaging::{DOMAIN_A, DOMAIN_B, World};
use crate::transport::SmtpSink;

pub const PATH: &str = "/api/v1/certificate-applications";
pub const LAKESIDE: &str = "Lakeside Pediatrics";
pub const NOTIFY_TO: &str = "pat.doe.home@example.com";

pub struct Setup {
    pub w: World,
    pub ta: (Uuid, String),
    pub officer: (Uuid, String),
    pub sink: SmtpSink,
}

impl Setup {
    pub async fn new() -> Self {
        let (sink, addr) = SmtpSink::start().await;
        let w = World::with(options(addr)).await;
        let ta = w.f.app.create_client(ClientKind::TrustedAgent).await;
        let officer = w.f.app.create_client(ClientKind::Officer).await;
        let s = Self {
            w,
            ta,
            officer,
            sink,
        };
        let link = s.link(&s.ta, DOMAIN_B).await;
        assert_eq!(link["organizationName"], LAKESIDE, "{link}");
        s
    }

    pub fn url(&self, path: &str) -> String {
        self.w.url(path)
    }

    /// Ops links `ta` to the organization of `domain`.
    pub async fn link(&self, ta: &(Uuid, String), domain: &str) -> Value {
        let r = self
            .w
            .f
            .app
            .http
            .put(self.url(&format!("/api/v1/trusted-agents/{}", ta.0)))
            .basic_auth(self.w.ops.0, Some(&self.w.ops.1))
            .json(&json!({ "organizationDomain": domain }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// A TA's application with its credentials in the X-TA headers.
    pub async fn apply(&self, ta: &(Uuid, String), body: &Value) -> (u16, Value) {
        let r = self
            .w
            .f
            .app
            .http
            .post(self.url(PATH))
            .header("X-TA-Username", ta.0.to_string())
            .header("X-TA-Password", &ta.1)
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// An application that must be accepted; its id.
    pub async fn apply_ok(&self, body: &Value) -> String {
        let (code, v) = self.apply(&self.ta, body).await;
        assert_eq!(code, 201, "{v}");
        assert_eq!(v["status"], "Submitted");
        v["id"].as_str().unwrap().to_owned()
    }

    /// GET with HTTP Basic.
    pub async fn get(&self, who: &(Uuid, String), path: &str) -> (u16, Value) {
        let r = self.w.get_as(who, path).await;
        (r.status().as_u16(), r.json().await.unwrap())
    }

    pub async fn status(&self, id: &str) -> Value {
        let (code, v) = self.get(&self.officer, &format!("{PATH}/{id}")).await;
        assert_eq!(code, 200, "{v}");
        v
    }

    pub async fn review(
        &self,
        who: &(Uuid, String),
        id: &str,
        verb: &str,
        body: &Value,
    ) -> (u16, Value) {
        let r = self
            .w
            .f
            .app
            .post_json_as(&format!("{PATH}/{id}/{verb}"), who, body)
            .await;
        (r.status().as_u16(), r.json().await.unwrap())
    }

    pub async fn approve_ok(&self, id: &str) -> Value {
        let (code, v) = self.review(&self.officer, id, "approve", &json!({})).await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["status"], "Approved");
        v
    }

    pub async fn drain(&self) {
        self.w.drain().await;
    }

    /// Row counts of everything a refusal must leave alone.
    pub async fn snapshot(&self) -> Vec<(&'static str, i64)> {
        let pool = &self.w.f.app.db.pool;
        let mut out = Vec::new();
        for table in [
            "certificate_applications",
            "certificate_application_notifications",
            "direct_addresses",
            "certificates",
            "jobs",
            "audit_log",
            "trusted_agents",
        ] {
            out.push((table, count(pool, table).await));
        }
        let decided: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM certificate_applications WHERE status <> 'Submitted'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        out.push(("decided", decided));
        out
    }

    /// The certificate of a serial, as an officer downloads it.
    pub async fn certificate_pem(&self, serial: &str) -> Vec<u8> {
        let r = self
            .w
            .get_as(&self.officer, &format!("/api/v1/certificates/{serial}/pem"))
            .await;
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    }
}

pub fn options(relay: SocketAddr) -> TestOptions {
    let mut config = test_config();
    let r = &mut config.notifications.smtp_relay;
    r.address = relay.to_string();
    r.starttls = StartTls::None;
    r.from = "no-reply@hisp.example.org".into();
    TestOptions {
        config,
        ..TestOptions::default()
    }
}

/// A whole valid patient application for `local@lakeside…`.
pub fn patient(local: &str) -> Value {
    json!({
        "trustedAgentName": "Tess Agent",
        "organizationName": LAKESIDE,
        "hipaaType": "4",
        "firstName": "Patricia",
        "lastName": "Doe-Sample",
        "city": "Albany",
        "state": "NY",
        "country": "US",
        "durationYears": 1,
        "certificateName": "Patricia Doe-Sample",
        "directAddress": format!("{local}@{DOMAIN_B}"),
        "autoRenew": true,
        "identityAttestation": "yes",
        "notificationEmail": NOTIFY_TO,
        "notes": "Identity checked in clinic with two documents."
    })
}

/// The openssl CLI's text of a PEM certificate; `None` (said) when openssl is missing.
pub fn openssl_text(pem: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.pem");
    std::fs::write(&path, pem).unwrap();
    match std::process::Command::new("openssl")
        .args(["x509", "-in", path.to_str().unwrap(), "-noout", "-text"])
        .output()
    {
        Ok(o) => {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            Some(String::from_utf8(o.stdout).unwrap())
        }
        Err(e) => {
            eprintln!("skipped the openssl judge: the openssl command is not available ({e})");
            None
        }
    }
}

/// The Rust-side reading of a certificate: (rfc822Names, dNSNames, whole text).
pub fn read_certificate(pem: &[u8]) -> (Vec<String>, Vec<String>, String) {
    let cert = openssl::x509::X509::from_pem(pem).unwrap();
    let (mut emails, mut dns) = (Vec::new(), Vec::new());
    for n in cert.subject_alt_names().into_iter().flatten() {
        if let Some(e) = n.email() {
            emails.push(e.to_owned());
        }
        if let Some(d) = n.dnsname() {
            dns.push(d.to_owned());
        }
    }
    (
        emails,
        dns,
        String::from_utf8(cert.to_text().unwrap()).unwrap(),
    )
}

pub const OTHER_DOMAIN: &str = DOMAIN_A;
