//! The Direct transport between real gateways: two (or more) gateways in one test, each with
//! its own database, CA, domain and SMTP listener on 127.0.0.1, trusting each other's anchor,
//! with static routes to each other. Peers that are not gateways are tiny SMTP listeners here.

mod judges;
mod peer_pki;
mod two_gateways;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use hisp_gateway::config::RouteConfig;
use hisp_gateway::domain::client::ClientKind;
use hisp_gateway::service::pki::{self, CertificateQuery};
use hisp_gateway::webhooks::SigningKey;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::helpers::TestOptions;
use crate::helpers::dns::TestDns;
use crate::helpers::receiver::Receiver;
use crate::soap::{Fixture, Mode, address, provision_body};

pub const HARBOR: &str = "harbor.direct.example.org";
pub const LAKESIDE: &str = "lakeside.direct.example.org";
pub const ADA: &str = "ada@harbor.direct.example.org";
pub const DEE: &str = "dee@harbor.direct.example.org";
pub const BEN: &str = "ben@lakeside.direct.example.org";
pub const CY: &str = "cy@lakeside.direct.example.org";

/// One gateway hosting one domain, with its vendor's EHR (inbox) and delivery webhook (dsn).
pub struct Hisp {
    pub f: Fixture,
    /// Kept for the gateway's lifetime: its DNS server.
    _dns: TestDns,
    pub domain: &'static str,
    pub ops: (Uuid, String),
    pub vendor: (Uuid, String),
    pub inbox: Receiver,
    pub dsn: Receiver,
    pub signing_key: SigningKey,
}

impl Hisp {
    /// Harbor (certified 7001) with ada and dee.
    pub async fn harbor() -> Self {
        let form = format!(
            "<organization><certified_id>7001</certified_id></organization><departmentName>Cardiology</departmentName>\
             <authorizedUsers><idp_id>8003</idp_id></authorizedUsers>{}{}\
             <organizationType>CoveredEntity</organizationType>",
            address(8001, "ada", "Str0ng-Passw0rd"),
            address(8002, "dee", "Str0ng-Passw0rd")
        );
        Self::new(HARBOR, &form, &[ADA, DEE], |_| {}).await
    }

    /// Lakeside (certified 7003) with ben and cy.
    pub async fn lakeside() -> Self {
        Self::lakeside_with(|_| {}).await
    }

    /// Lakeside, with its configuration changed by `tweak`.
    pub async fn lakeside_with(tweak: fn(&mut hisp_gateway::config::Config)) -> Self {
        let form = format!(
            "<organization><certified_id>7003</certified_id></organization><departmentName>Pediatrics</departmentName>\
             <authorizedUsers><idp_id>8003</idp_id></authorizedUsers>{}{}\
             <organizationType>CoveredEntity</organizationType>",
            address(8002, "ben", "Str0ng-Passw0rd"),
            address(8003, "cy", "Str0ng-Passw0rd")
        );
        Self::new(LAKESIDE, &form, &[BEN, CY], tweak).await
    }

    async fn new(
        domain: &'static str,
        form: &str,
        addresses: &[&str],
        tweak: fn(&mut hisp_gateway::config::Config),
    ) -> Self {
        // Its own DNS server, empty: DNS CERT and MX lookups are real and find nothing, and no
        // query leaves the machine.
        let dns = TestDns::start(Vec::new()).await;
        let mut config = crate::helpers::test_config();
        config.transport.enabled = true;
        config.dns = dns.config(Duration::from_secs(2));
        tweak(&mut config);
        let f = Fixture::with(TestOptions {
            config,
            ..Default::default()
        })
        .await;
        let session = f.login(Mode::Soap12).await;
        f.call(
            Mode::Soap12,
            "ProvisionCertifiedProvider",
            &provision_body(&session, domain, "CDO5", form),
        )
        .await
        .assert_code("000", "");
        f.app.worker.run_until_idle().await.unwrap();
        let ops = f.app.create_client(ClientKind::Ops).await;
        let vendor = f.app.create_client(ClientKind::Vendor).await;
        let h = Self {
            inbox: Receiver::start().await,
            dsn: Receiver::start().await,
            signing_key: SigningKey::generate(),
            f,
            _dns: dns,
            domain,
            ops,
            vendor,
        };
        let r =
            h.f.app
                .post_json_as(
                    "/api/v1/messaging/grants",
                    &h.ops,
                    &json!({"clientId": h.vendor.0, "domain": domain}),
                )
                .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        for a in addresses {
            h.put_endpoint(
                a,
                json!({
                    "inboundUrl": h.inbox.url("/inbound"),
                    "dsnUrl": h.dsn.url("/dsn"),
                }),
            )
            .await;
        }
        let secret: Value =
            h.f.app
                .http
                .get(h.f.app.url("/api/v1/messaging/signing-secret"))
                .basic_auth(h.vendor.0, Some(&h.vendor.1))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        let signing_key = SigningKey::from_whsec(secret["secret"].as_str().unwrap()).unwrap();
        Self { signing_key, ..h }
    }

    pub async fn put_endpoint(&self, address: &str, body: Value) {
        let r = self
            .f
            .app
            .http
            .put(
                self.f
                    .app
                    .url(&format!("/api/v1/messaging/endpoints/{address}")),
            )
            .basic_auth(self.vendor.0, Some(&self.vendor.1))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    pub fn smtp(&self) -> SocketAddr {
        self.f.app.smtp.expect("the SMTP listener runs in tests")
    }

    /// Our CA's root, PEM.
    pub async fn root_pem(&self) -> String {
        let roots = pki::trust_anchors(&self.f.app.db.pool).await.unwrap();
        String::from_utf8(roots[0].to_pem().unwrap()).unwrap()
    }

    /// Our issuing CA, PEM: peers that find our certificates alone (DNS, configured) need it
    /// to reach the root, unless they fetch it from the AIA URL.
    pub async fn issuing_pem(&self) -> String {
        let c = pki::authority_certificate(&self.f.app.db.pool, pki::ISSUING)
            .await
            .unwrap()
            .unwrap();
        String::from_utf8(c.to_pem().unwrap()).unwrap()
    }

    /// Every live certificate of our domain and its addresses, PEM: what a peer without DNS
    /// CERT records configures for us.
    pub async fn certificates_pem(&self) -> Vec<String> {
        let list = pki::list(
            &self.f.app.db.pool,
            &CertificateQuery {
                organization: Some(self.domain),
                address: None,
            },
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        for der in list
            .iter()
            .filter(|c| c.revoked_at.is_none())
            .filter_map(|c| c.certificate_der.as_deref())
        {
            let cert = openssl::x509::X509::from_der(der).unwrap();
            out.push(String::from_utf8(cert.to_pem().unwrap()).unwrap());
        }
        assert!(!out.is_empty(), "{} has no issued certificate", self.domain);
        out
    }

    /// Trusts `anchor_pem` for our domain (REST, as an operator would).
    pub async fn trust(&self, anchor_pem: &str) {
        let r = self
            .f
            .app
            .post_json_as(
                "/api/v1/trust/anchors",
                &self.ops,
                &json!({"domain": self.domain, "pem": anchor_pem}),
            )
            .await;
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    /// Configures `pem` as a peer certificate for `target` (a domain or an address).
    pub async fn add_peer_certificate(&self, target: &str, pem: &str) {
        let r = self
            .f
            .app
            .post_json_as(
                "/api/v1/trust/peer-certificates",
                &self.ops,
                &if target.contains('@') {
                    json!({"address": target, "pem": pem})
                } else {
                    json!({"domain": target, "pem": pem})
                },
            )
            .await;
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    pub fn route(&self, domain: &str, to: SocketAddr) {
        self.f.app.state.transport.set_route(
            domain,
            RouteConfig {
                address: to.to_string(),
                require_tls: false,
            },
        );
    }

    pub async fn send(&self, from: &str, to: &[&str], message_id: &str, asm: bool) -> Value {
        self.send_as(from, to, message_id, asm, false).await
    }

    /// `send`, the attachments in an XDM package when `xdm`.
    pub async fn send_as(
        &self,
        from: &str,
        to: &[&str],
        message_id: &str,
        asm: bool,
        xdm: bool,
    ) -> Value {
        let body = json!({
            "fromDirectAddress": from,
            "toDirectAddress": to.join(","),
            "messageId": message_id,
            "messageSubject": "Referral",
            "messageBody": "Please see the attached summary.",
            "emailAttachmentList": [
                {"attachmentClass": "text/xml",
                 "attachmentContent": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, crate::messaging::ccda()),
                 "attachmentTitle": "Continuity of Care Document"},
                {"attachmentClass": "application/pdf",
                 "attachmentContent": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, crate::messaging::binary_pdf()),
                 "attachmentTitle": "Referral letter", "attachmentFileName": "referral"}
            ],
            "asmEnabled": asm,
            "xdm": xdm,
        });
        let r = self
            .f
            .app
            .post_json_as(crate::messaging::SEND, &self.vendor, &body)
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    /// Each recipient's status word and failureReason, sorted by recipient.
    pub async fn statuses(&self, from: &str, message_id: &str) -> Vec<(String, String, String)> {
        let r = self
            .f
            .app
            .http
            .get(
                reqwest::Url::parse_with_params(
                    &self.f.app.url("/MessagingAPI/dirmsg/status"),
                    [("xdMsgId", message_id), ("fromDirectAddress", from)],
                )
                .unwrap(),
            )
            .basic_auth(self.vendor.0, Some(&self.vendor.1))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        let list = match v {
            Value::Array(a) => a,
            one => vec![one],
        };
        let mut out: Vec<_> = list
            .iter()
            .map(|o| {
                (
                    o["recipient"].as_str().unwrap_or_default().to_owned(),
                    o["status"].as_str().unwrap_or_default().to_owned(),
                    o["failureReason"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// The delivery notifications (Status, Description) the vendor got for a message.
    pub fn notifications(&self, message_id: &str, recipient: &str) -> Vec<(String, String)> {
        self.dsn
            .accepted()
            .iter()
            .map(|r| {
                crate::messaging::assert_signed(r, &self.signing_key);
                r.json()
            })
            .filter(|n| n["Id"] == message_id && n["Recipient"] == recipient)
            .map(|n| {
                (
                    n["Status"].as_str().unwrap().to_owned(),
                    n["Description"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    pub async fn drain(&self) {
        self.f.app.worker.run_until_idle().await.unwrap();
    }

    /// The state and reason of each mail our SMTP listener took, oldest first.
    pub async fn inbound_mail(&self) -> Vec<(String, Option<String>)> {
        sqlx::query_as("SELECT state, reason FROM inbound_mail ORDER BY received_at, id")
            .fetch_all(&self.f.app.db.pool)
            .await
            .unwrap()
    }
}

/// Two gateways that trust each other's CA, know each other's certificates and route to each
/// other's SMTP listener.
pub async fn pair() -> (Hisp, Hisp) {
    pair_with(|_| {}).await
}

/// `pair`, with Lakeside's configuration changed by `tweak`.
pub async fn pair_with(tweak: fn(&mut hisp_gateway::config::Config)) -> (Hisp, Hisp) {
    let (a, b) = tokio::join!(Hisp::harbor(), Hisp::lakeside_with(tweak));
    // The issuing CA too: our certificates' AIA URLs name the configured public_base_url,
    // which in tests is not where the gateway listens.
    for anchor in [b.root_pem().await, b.issuing_pem().await] {
        a.trust(&anchor).await;
    }
    for anchor in [a.root_pem().await, a.issuing_pem().await] {
        b.trust(&anchor).await;
    }
    for pem in b.certificates_pem().await {
        a.add_peer_certificate(LAKESIDE, &pem).await;
    }
    for pem in a.certificates_pem().await {
        b.add_peer_certificate(HARBOR, &pem).await;
    }
    a.route(LAKESIDE, b.smtp());
    b.route(HARBOR, a.smtp());
    (a, b)
}

/// Runs both gateways' outboxes in turn until neither has anything due: SMTP hand-offs land as
/// jobs on the other side, whose MDNs land as jobs here.
pub async fn settle(hisps: &[&Hisp]) {
    for _ in 0..6 {
        for h in hisps {
            h.drain().await;
        }
    }
}

/// A plain SMTP server that keeps what it is sent: a peer HISP's mail server as far as the
/// gateway can tell, or a sink for an outside tool to judge our messages.
#[derive(Clone, Default)]
pub struct SmtpSink {
    pub messages: Arc<Mutex<Vec<Captured>>>,
    /// The reply to RCPT TO for an address, when not 250.
    pub refuse: Arc<Mutex<Vec<(String, String)>>>,
}

#[derive(Debug, Clone)]
pub struct Captured {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
}

impl SmtpSink {
    pub async fn start() -> (Self, SocketAddr) {
        Self::start_at("127.0.0.1:0".parse().unwrap()).await
    }

    /// A sink on a given address (one a test reserved, to start the server late).
    pub async fn start_at(at: SocketAddr) -> (Self, SocketAddr) {
        let listener = TcpListener::bind(at).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = Self::default();
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(30), s.session(stream)).await;
                });
            }
        });
        (sink, addr)
    }

    pub fn captured(&self) -> Vec<Captured> {
        self.messages.lock().unwrap().clone()
    }

    async fn session(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"220 sink.test ESMTP\r\n").await?;
        let (mut from, mut rcpts) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let upper = line.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250-sink.test\r\n250 8BITMIME\r\n".into()
            } else if upper.starts_with("MAIL FROM:") {
                from = line[10..].trim().trim_matches(['<', '>']).to_owned();
                rcpts.clear();
                "250 ok\r\n".into()
            } else if upper.starts_with("RCPT TO:") {
                let to = line[8..]
                    .trim()
                    .trim_matches(['<', '>'])
                    .to_ascii_lowercase();
                let refused = self
                    .refuse
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(a, _)| *a == to)
                    .map(|(_, reply)| reply.clone());
                match refused {
                    Some(reply) => format!("{reply}\r\n"),
                    None => {
                        rcpts.push(to);
                        "250 ok\r\n".into()
                    }
                }
            } else if upper.starts_with("DATA") {
                w.write_all(b"354 go on\r\n").await?;
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    let l = line.strip_prefix('.').unwrap_or(&line);
                    data.extend_from_slice(l.as_bytes());
                }
                self.messages.lock().unwrap().push(Captured {
                    mail_from: from.clone(),
                    rcpt_to: rcpts.clone(),
                    data,
                });
                "250 kept\r\n".into()
            } else if upper.starts_with("QUIT") {
                w.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                "250 ok\r\n".into()
            };
            w.write_all(reply.as_bytes()).await?;
        }
    }
}

/// Sends `raw` to an SMTP listener as a peer HISP would.
pub async fn inject(to: SocketAddr, mail_from: Option<&str>, rcpt: &[&str], raw: &[u8]) -> String {
    use hisp_gateway::service::transport::smtp_client::{Outcome, Peer, deliver};
    let rcpts: Vec<String> = rcpt.iter().map(|s| s.to_string()).collect();
    let out = deliver(
        &[Peer {
            host: "127.0.0.1".into(),
            addr: to,
            require_tls: false,
        }],
        "peer.test",
        mail_from,
        &rcpts,
        raw,
        Duration::from_secs(10),
    )
    .await;
    match &out[0] {
        Outcome::Accepted => "250".into(),
        Outcome::Rejected(t) | Outcome::Deferred(t) => t.clone(),
    }
}
