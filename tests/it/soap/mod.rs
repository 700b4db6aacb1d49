//! The Organization Registration SOAP service over real HTTP: every operation three ways
//! (MTOM, plain SOAP 1.1, plain SOAP 1.2), its codes, faults, sessions, answer forms and
//! real clients.

mod clients;
mod codes;
mod faults;
mod forms;
mod provisioning;
mod reports;
mod sessions;

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use hisp_gateway::config::MtomResponses;
use hisp_gateway::domain::client::ClientKind;
use hisp_gateway::domain::offer::Cents;
use hisp_gateway::service::{self, Actor};
use hisp_gateway::soap::envelope::{SOAP11_NS, SOAP12_NS};
use hisp_gateway::soap::mtom::{self, ContentType};
use hisp_gateway::soap::{NS, PATH};
use hisp_gateway::xml::{self, Element};
use uuid::Uuid;

use crate::helpers::{TEST_IDENTITY_KEY, TestApp, TestOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Mtom,
    Soap11,
    Soap12,
}

pub const MODES: [Mode; 3] = [Mode::Mtom, Mode::Soap11, Mode::Soap12];

const ORGS: &str = "certified_id,name,tax_id,state,npi,address_line1,address_line2,city,zip,healthcare_provider,verified_at\n\
    7001,Harbor Family Medicine,12-3456789,NJ,1234567893,10 Main St,Suite 2,Trenton,08601,true,2026-01-05\n\
    7002,Ledger Billing Services,98-7654321,NJ,,4 Bank St,,Newark,07102,false,2026-01-05\n\
    7003,Lakeside Pediatrics,22-3334444,NY,1234567893,9 Lake Rd,,Albany,12207,true,2026-01-05\n";
const PEOPLE: &str = "idp_id,first_name,last_name,date_of_birth,ssn_last4,verified_at\n\
    8001,Ada,Stone,1975-03-02,1111,2026-01-05\n\
    8002,Ben,Ray,1980-06-15,2222,2026-01-05\n\
    8003,Cy,Vale,1990-09-09,3333,2026-01-05\n";

/// An app with a CA, verified identities and a funded reseller.
pub struct Fixture {
    pub app: TestApp,
    pub reseller: (Uuid, String),
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with(TestOptions::default()).await
    }

    pub async fn with(opts: TestOptions) -> Self {
        let app = TestApp::spawn_with(opts).await;
        service::pki::init_ca(&app.db.pool, &app.state.pki, &Actor::cli(), Utc::now())
            .await
            .unwrap();
        service::identity_import::import_readers(
            &app.db.pool,
            Some(("orgs.csv".into(), Box::new(ORGS.as_bytes()))),
            Some(("people.csv".into(), Box::new(PEOPLE.as_bytes()))),
            TEST_IDENTITY_KEY.as_bytes(),
            &Actor::cli(),
        )
        .await
        .unwrap();
        let reseller = new_reseller(&app, "10000.00").await;
        Self { app, reseller }
    }

    pub async fn login(&self, mode: Mode) -> String {
        login_as(&self.app, mode, &self.reseller).await
    }

    pub async fn call(&self, mode: Mode, op: &str, inner: &str) -> Reply {
        call(&self.app, mode, op, inner).await
    }
}

/// A reseller client with `dollars` on its debit account.
pub async fn new_reseller(app: &TestApp, dollars: &str) -> (Uuid, String) {
    let reseller = app.create_client(ClientKind::Reseller).await;
    let amount = Cents::parse(dollars).unwrap();
    if amount.0 > 0 {
        service::accounts::credit(
            &app.db.pool,
            reseller.0,
            amount,
            None,
            &Actor::cli(),
            Utc::now(),
        )
        .await
        .unwrap();
    }
    reseller
}

pub async fn login_as(app: &TestApp, mode: Mode, (id, secret): &(Uuid, String)) -> String {
    let r = call(
        app,
        mode,
        "Login",
        &format!("<username>{id}</username><password>{secret}</password>"),
    )
    .await;
    assert_eq!(r.code(), "000", "{}", r.raw);
    r.text("sessionId").to_owned()
}

/// A parsed response.
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    /// The root part (the envelope) as text.
    pub raw: String,
    pub envelope: Element,
    /// MTOM attachments by Content-ID.
    pub attachments: HashMap<String, Vec<u8>>,
}

impl Reply {
    pub fn body_child(&self) -> &Element {
        let body = self.envelope.child("Body").expect("Body");
        body.children.first().expect("a Body child")
    }
    /// The `return` element of the operation's response.
    pub fn ret(&self) -> &Element {
        let op = self.body_child();
        assert!(
            op.name.ends_with("Response"),
            "not a response: {}",
            self.raw
        );
        assert_eq!(op.ns, NS);
        op.child("return").expect("return")
    }
    pub fn code(&self) -> &str {
        self.ret().child_text("code").unwrap_or_default()
    }
    pub fn text(&self, name: &str) -> &str {
        self.ret().child_text(name).unwrap_or_default()
    }
    pub fn error_message(&self) -> &str {
        self.text("errorMessage")
    }
    /// Asserts a code and that the message names `needle`.
    pub fn assert_code(&self, code: &str, needle: &str) {
        assert_eq!(self.code(), code, "{}", self.raw);
        assert_eq!(
            self.text("success"),
            if code == "000" { "true" } else { "false" }
        );
        let message = format!("{}{}", self.error_message(), self.text("message"));
        assert!(
            message.contains(needle),
            "message {message:?} should mention {needle:?}"
        );
    }
    /// The fault's reason text, for either SOAP version.
    pub fn fault_reason(&self) -> String {
        let f = self.body_child();
        assert_eq!(f.name, "Fault", "{}", self.raw);
        f.child_text("faultstring")
            .map(str::to_owned)
            .or_else(|| {
                f.child("Reason")
                    .and_then(|r| r.child_text("Text"))
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    }
    pub fn fault_code(&self) -> String {
        let f = self.body_child();
        f.child_text("faultcode")
            .map(str::to_owned)
            .or_else(|| {
                f.child("Code")
                    .and_then(|c| c.child_text("Value"))
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    }
}

pub fn envelope(version_ns: &str, op: &str, inner: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{version_ns}" xmlns:reg="{NS}"><env:Header/><env:Body><reg:{op}>{inner}</reg:{op}></env:Body></env:Envelope>"#
    )
}

/// The request body and Content-Type a client in `mode` sends.
pub fn request(mode: Mode, op: &str, inner: &str) -> (String, Vec<u8>) {
    match mode {
        Mode::Soap11 => (
            "text/xml; charset=utf-8".into(),
            envelope(SOAP11_NS, op, inner).into_bytes(),
        ),
        Mode::Soap12 => (
            format!("application/soap+xml; charset=utf-8; action=\"{op}\""),
            envelope(SOAP12_NS, op, inner).into_bytes(),
        ),
        Mode::Mtom => {
            let boundary = "MIMEBoundary_test_7f3a";
            let body = format!(
                "--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\nContent-Transfer-Encoding: 8bit\r\nContent-ID: <root.test@client>\r\n\r\n{}\r\n--{boundary}--\r\n",
                envelope(SOAP12_NS, op, inner)
            );
            (
                format!(
                    "multipart/related; boundary=\"{boundary}\"; type=\"application/xop+xml\"; start=\"<root.test@client>\"; start-info=\"application/soap+xml\""
                ),
                body.into_bytes(),
            )
        }
    }
}

pub async fn post(app: &TestApp, content_type: &str, body: Vec<u8>) -> Reply {
    let resp = app
        .http
        .post(app.url(PATH))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    parse_reply(resp).await
}

pub async fn parse_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = resp.bytes().await.unwrap();
    let ct = ContentType::parse(&content_type);
    let (root, attachments) = if ct.media == "multipart/related" {
        let related = mtom::parse_related(&ct, &bytes).unwrap();
        (related.root.body, related.attachments)
    } else {
        (bytes.to_vec(), HashMap::new())
    };
    let raw = String::from_utf8(root).unwrap();
    let envelope = xml::parse(raw.as_bytes()).unwrap_or_else(|e| panic!("{e}: {raw}"));
    Reply {
        status,
        content_type,
        raw,
        envelope,
        attachments,
    }
}

pub async fn call(app: &TestApp, mode: Mode, op: &str, inner: &str) -> Reply {
    let (ct, body) = request(mode, op, inner);
    let reply = post(app, &ct, body).await;
    // The answer comes in the caller's SOAP version and, by default, in the request's form.
    let expected_ns = if mode == Mode::Soap11 {
        SOAP11_NS
    } else {
        SOAP12_NS
    };
    assert_eq!(reply.envelope.ns, expected_ns, "{}", reply.raw);
    let media = if mode == Mode::Soap11 {
        "text/xml"
    } else {
        "application/soap+xml"
    };
    let ct = ContentType::parse(&reply.content_type);
    if answers_mtom(app, mode) && reply.status == 200 {
        assert_eq!(ct.media, "multipart/related");
        assert_eq!(ct.param("start-info"), Some(media));
    } else {
        assert_eq!(ct.media, media);
    }
    reply
}

/// Whether the app answers a request of `mode` with MTOM.
pub fn answers_mtom(app: &TestApp, mode: Mode) -> bool {
    match app.state.config.soap.mtom_responses {
        MtomResponses::AsRequest => mode == Mode::Mtom,
        MtomResponses::Always => true,
        MtomResponses::Never => false,
    }
}

/// csvData of a report: the XOP attachment it points to, or its inline base64.
pub fn csv_data(r: &Reply) -> Option<Vec<u8>> {
    let el = r.ret().child("csvData")?;
    if let Some(inc) = el.child("Include") {
        let href = inc.attr("href").unwrap();
        let id = href.strip_prefix("cid:").unwrap();
        return Some(r.attachments.get(id).expect("attachment").clone());
    }
    Some(STANDARD.decode(el.text.trim()).unwrap())
}

/// A `form` for ProvisionCertifiedProvider.
pub fn provision_body(session: &str, domain: &str, offer: &str, form: &str) -> String {
    format!(
        "<sessionId>{session}</sessionId><DirectDomain>{domain}</DirectDomain><DirectOfferType>{offer}</DirectOfferType><form>{form}</form>"
    )
}

pub fn address(idp: i64, username: &str, password: &str) -> String {
    format!(
        "<directAddresses><idp_id>{idp}</idp_id><username>{username}</username><password>{password}</password><userType>SMTP</userType></directAddresses>"
    )
}

/// A whole valid form for certified organization 7001.
pub fn standard_form(addresses: &str) -> String {
    format!(
        "<organization><certified_id>7001</certified_id></organization><departmentName>Cardiology</departmentName>\
         <authorizedUsers><idp_id>8003</idp_id></authorizedUsers>{addresses}\
         <organizationDefaultSettings><settingName>notify_flag</settingName><settingValue>false</settingValue></organizationDefaultSettings>\
         <organizationType>CoveredEntity</organizationType>"
    )
}

/// Provisions `domain` for the fixture's reseller with one address; returns the session.
pub async fn provision(f: &Fixture, mode: Mode, domain: &str, offer: &str) -> String {
    let session = f.login(mode).await;
    let form = standard_form(&address(8001, "ada", "Str0ng-Passw0rd"));
    let r = f
        .call(
            mode,
            "ProvisionCertifiedProvider",
            &provision_body(&session, domain, offer, &form),
        )
        .await;
    r.assert_code("000", "");
    session
}

pub fn domain(tag: &str, mode: Mode) -> String {
    format!(
        "{tag}-{}.direct.example.org",
        format!("{mode:?}").to_lowercase()
    )
}
