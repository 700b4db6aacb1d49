//! The HL7 v3 organization registry door over real HTTP: every interaction checked against its
//! official schema, the storyboards of the spec, the story across doors (HL7 → SOAP → CA →
//! subscriber), and bad input refused with the element named and nothing written.

mod bad_input;
mod cross_door;
mod filters;
pub mod messages;
pub mod schema;
mod spec_instances;
mod storyboards;
mod wire;

use hisp_gateway::domain::client::ClientKind;
use hisp_gateway::xml::{self, Element};
use uuid::Uuid;

use crate::helpers::{TestApp, count};
use crate::soap::Fixture;

pub const PATH: &str = "/hl7v3/organizations";
pub const REGISTRY_ROOT: &str = "2.16.840.1.113883.3.9999.2";

/// A gateway with a CA, verified identities, a funded reseller, and registry, vendor and ops
/// clients.
pub struct Hl7 {
    pub f: Fixture,
    pub registry: (Uuid, String),
    pub vendor: (Uuid, String),
    pub ops: (Uuid, String),
}

impl Hl7 {
    pub async fn new() -> Self {
        Self::with(crate::helpers::TestOptions::default()).await
    }

    pub async fn with(opts: crate::helpers::TestOptions) -> Self {
        let f = Fixture::with(opts).await;
        let registry = f.app.create_client(ClientKind::Registry).await;
        let vendor = f.app.create_client(ClientKind::Vendor).await;
        let ops = f.app.create_client(ClientKind::Ops).await;
        Self {
            f,
            registry,
            vendor,
            ops,
        }
    }

    pub fn app(&self) -> &TestApp {
        &self.f.app
    }

    /// Sends a message as the registry client, plain `application/hl7-v3+xml`.
    pub async fn send(&self, body: &str) -> Answer {
        post(
            self.app(),
            &self.registry,
            "application/hl7-v3+xml",
            body.to_owned(),
        )
        .await
    }
}

pub struct Answer {
    pub status: u16,
    pub content_type: String,
    /// The HL7 message (unwrapped from SOAP when it came in an envelope).
    pub raw: String,
    pub root: Element,
}

impl Answer {
    pub fn ack(&self) -> &Element {
        self.root.child("acknowledgement").expect("acknowledgement")
    }
    pub fn ack_code(&self) -> &str {
        self.ack().attr("typeCode").unwrap()
    }
    /// (detail code, location, text) of the first acknowledgement detail.
    pub fn detail(&self) -> (String, String, String) {
        let d = self
            .ack()
            .child("acknowledgementDetail")
            .unwrap_or_else(|| panic!("no detail: {}", self.raw));
        (
            d.child("code").unwrap().attr("code").unwrap().to_owned(),
            d.child_text("location").unwrap_or_default().to_owned(),
            d.child_text("text").unwrap_or_default().to_owned(),
        )
    }
    pub fn target(&self) -> String {
        let id = self
            .ack()
            .child("targetMessage")
            .unwrap()
            .child("id")
            .unwrap();
        id.attr("extension").unwrap_or_default().to_owned()
    }
    /// The registry id extension (certified_id) the response's first organization carries.
    pub fn certified_id(&self) -> i64 {
        let mut out = None;
        walk(&self.root, &mut |e| {
            if out.is_none()
                && e.name == "id"
                && e.attr("root") == Some(REGISTRY_ROOT)
                && let Some(x) = e.attr("extension")
            {
                out = x.parse().ok();
            }
        });
        out.unwrap_or_else(|| panic!("no registry id in {}", self.raw))
    }
}

pub fn walk(e: &Element, f: &mut impl FnMut(&Element)) {
    f(e);
    for c in &e.children {
        walk(c, f);
    }
}

/// Every element named `name` in the tree.
pub fn all<'a>(e: &'a Element, name: &str) -> Vec<&'a Element> {
    let mut out = Vec::new();
    fn go<'a>(e: &'a Element, name: &str, out: &mut Vec<&'a Element>) {
        if e.name == name {
            out.push(e);
        }
        for c in &e.children {
            go(c, name, out);
        }
    }
    go(e, name, &mut out);
    out
}

pub async fn post(app: &TestApp, (id, secret): &(Uuid, String), ct: &str, body: String) -> Answer {
    let r = app
        .http
        .post(app.url(PATH))
        .basic_auth(id, Some(secret))
        .header("Content-Type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    answer(r).await
}

pub async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    let doc = xml::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text}"));
    let (raw, root) = if doc.name == "Envelope" {
        let m = doc.child("Body").unwrap().children[0].clone();
        // The message as it stands inside the envelope, for the schema check.
        let start = text.find("<soap:Body>").unwrap() + "<soap:Body>".len();
        let end = text.rfind("</soap:Body>").unwrap();
        (text[start..end].to_owned(), m)
    } else {
        (text, doc)
    };
    Answer {
        status,
        content_type,
        raw,
        root,
    }
}

/// Row counts of everything an HL7 message could write.
pub async fn footprint(app: &TestApp) -> Vec<i64> {
    let mut out = Vec::new();
    for t in [
        "registry_organizations",
        "registry_versions",
        "registry_identifiers",
        "verified_organizations",
        "jobs",
        "audit_log",
    ] {
        out.push(count(&app.db.pool, t).await);
    }
    out
}
