//! The Direct transport (issue 22) between two gateways on this machine, and the CPU cost of
//! our S/MIME next to `openssl cms` doing the same work.
//!
//! Run: `cargo bench --bench transport` (release build, about 3 minutes). It:
//! 1. starts its own durable PostgreSQL cluster (fsync on) in the temp folder, with two
//!    databases, `harbor` and `lakeside`, each migrated;
//! 2. builds two gateways in this process (`App::build` + `App::run` with the job worker on, as
//!    `serve` runs them; HTTP and SMTP listeners on 127.0.0.1:0; log level warn; the messaging
//!    rate limit out of the way; every other setting at its default): gateway A hosts
//!    `harbor.bench.example.org`, B `lakeside.bench.example.org`. Each gets its own CA
//!    (`service::pki::init_ca`, RSA 2048 CA keys to keep the set-up short; leaves at the
//!    default 2048), verified identities (`service::identity_import`), a reseller that
//!    provisions its organization with one address over SOAP (ProvisionCertifiedProvider),
//!    whose certificates the outbox issues before anything is sent, an ops client and a vendor
//!    client granted the domain (REST). Each address's endpoint points its inboundUrl and
//!    dsnUrl at a small axum receiver in this process that answers 200 and notes arrivals;
//!    the trust set-up is what an operator does (REST, as ops): each gateway trusts the other's
//!    CA root for its own domain and holds the other's certificates as peer certificates; and
//!    each has a static route to the other's SMTP listener (STARTTLS is used, as it is offered);
//! 3. sends one probe message A → B and checks that it reaches DISPATCHED on A;
//! 4. crypto: CPU per message of our `smime::seal` (sign + encrypt, SHA-256, AES-256-CBC,
//!    RSA-OAEP-SHA-256, as the transport's defaults) of the probe's stored MIME, as the send
//!    job seals it, and of our `smime::open` (decrypt + verify) of the result with B's key;
//!    next to it, in the same run, the `openssl cms` command line doing the same work on the
//!    same bytes: `openssl cms -sign | openssl cms -encrypt` and `openssl cms -decrypt |
//!    openssl cms -verify -noverify` (our `open` does not check the chain either: the receive
//!    job does that apart). Ours is thread CPU time of a loop on one thread; openssl's is the
//!    CPU of the child processes (getrusage), per pipeline, minus twice the CPU of a trivial
//!    invocation (`openssl version`), i.e. minus the start-up of its two processes: what is
//!    left is its work on the message plus reading its PEM files. Also ours for an MDN (seal
//!    and open), which each message causes two of. Before timing, openssl judges ours
//!    (decrypts and verifies our message against A's root with `-CAfile`) and ours opens
//!    openssl's;
//! 5. end to end: closed loops of 8 and 32 concurrent senders (reqwest, HTTP Basic, keep-alive)
//!    each sending a C-CDA of >= 100 KiB (tests/fixtures/ccda/ccd-2.xml with its sections
//!    repeated, as send_ccda sends, xdm off, asmEnabled) from ada on A to ben on B, then waiting
//!    for A's vendor to be told DISPATCHED (its dsnUrl push) before sending the next: 5 s
//!    warm-up, then 20 s measured. Between them the message crosses to B over SMTP (signed and
//!    encrypted), B opens it, pushes it to its vendor's inboundUrl, and answers with processed
//!    and dispatched MDNs (each signed, encrypted, over SMTP), which A opens and turns into
//!    PROCESSED then DISPATCHED notifications. Reported: messages per second reaching
//!    DISPATCHED within the window, p50/p99/max of send-to-DISPATCHED (from just before the
//!    send request to the arrival of the dispatched push), the send request's own p50, the CPU
//!    per message of this process (both gateways, the senders and the receivers) and of
//!    PostgreSQL (all its processes, exited backends included), how busy the machine's cores
//!    were and how much of that was other processes; and per outbox job kind on each gateway,
//!    how many ran in the window and their time from enqueue to done (p50/p99), which shows
//!    where a message waits;
//! 6. where the CPU goes: when `perf` works, a third 32-concurrent window of 10 s under two
//!    recordings (its own figures are printed but not recorded: perf costs some):
//!    `perf record -a -F 499`, every process's samples grouped by process (this one,
//!    PostgreSQL, the others on the machine) and by shared object or kind of code, with the top
//!    symbols; and `perf record -p <this process> --call-graph dwarf -F 149`, whose stacks are
//!    grouped by operation (the first of a list of our functions a stack names: S/MIME seal and
//!    open, private keys and certificates read and parsed, validation, TLS, sqlx...) and by
//!    stage (the job or door it ran for; futures that tokio's poll functions inlined cannot be
//!    told apart, and are reported as such). All in ms of CPU per message DISPATCHED. Debian's
//!    libcrypto has no symbols for its internals, so the split inside OpenSSL comes from the
//!    stacks, not from its own function names;
//! 7. prints one line per measurement and a markdown summary for BENCHMARKS.md with the
//!    machine (cores, CPU model, kernel) and the date, stops both gateways and the cluster and
//!    removes the temp folder.
//!
//! Both gateways, the senders and the receivers share this process and, with PostgreSQL, the
//! machine's cores; in particular they share one pool of CPU slots for S/MIME work (one per
//! core, `crate::cpu`), where two processes would each have their own.
//!
//! Knobs (for investigating; recorded results use none of them):
//! - `TRANSPORT_SECONDS=5`: shorter measured windows (default 20);
//! - `TRANSPORT_ROUNDS=20`: fewer crypto rounds (default 100 for ours, half for openssl);
//! - `TRANSPORT_PERF=0`: no profile;
//! - `TRANSPORT_ONLY=crypto`: only the parts whose name contains the value (`crypto`, `e2e`,
//!   `perf`).

#[path = "ccda.rs"]
mod ccda;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hisp_gateway::app::App;
use hisp_gateway::config::{Config, RouteConfig, Secret};
use hisp_gateway::direct::mdn::{self, Disposition, Mdn};
use hisp_gateway::direct::smime::{self, Algorithms, Envelope, Signer};
use hisp_gateway::domain::client::ClientKind;
use hisp_gateway::domain::offer::Cents;
use hisp_gateway::domain::pki::{DirectAddress, KeyUse};
use hisp_gateway::jobs::JobRegistry;
use hisp_gateway::service::pki::{self, CertificateQuery};
use hisp_gateway::service::{self, Actor};
use hisp_gateway::state::AppState;
use hisp_gateway::store::embedded::{EmbeddedOptions, EmbeddedPostgres};
use hisp_gateway::store::{self, packed_mime};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const HARBOR: &str = "harbor.bench.example.org";
const LAKESIDE: &str = "lakeside.bench.example.org";
const ADA: &str = "ada@harbor.bench.example.org";
const BEN: &str = "ben@lakeside.bench.example.org";
const CCDA_MIN_BYTES: usize = 100 * 1024;
const CONCURRENCY: [usize; 2] = [8, 32];
const WARMUP: Duration = Duration::from_secs(5);
const PROFILED: Duration = Duration::from_secs(10);
const PERF_HZ: u32 = 499;
/// Samples with call stacks cost more to take (each copies 32 KiB of stack): fewer.
const STACK_HZ: u32 = 149;
/// A message not DISPATCHED by then counts as an error.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(120);
const SEND_PATH: &str = "/MessagingAPI/dirmsg/send_ccda";
/// The issue's targets.
const E2E_TARGET: f64 = 100.0;
const CPU_RATIO_TARGET: f64 = 1.2;

const IDENTITY_KEY: &str = "bench-identity-key-0123456789abcdef0123";
const KEK: &str = "bench-key-encryption-key-0123456789abcdef";
const ORGS: &str = "certified_id,name,tax_id,state,npi,address_line1,address_line2,city,zip,healthcare_provider,verified_at\n\
    92001,Harbor Bench Clinic,12-3456789,NJ,1234567893,1 Main St,,Trenton,08601,true,2026-01-05\n\
    92002,Lakeside Bench Pediatrics,22-3334444,NY,1234567893,9 Lake Rd,,Albany,12207,true,2026-01-05\n";
const PEOPLE: &str = "idp_id,first_name,last_name,date_of_birth,ssn_last4,verified_at\n\
    92001,Ada,Stone,1975-03-02,1111,2026-01-05\n\
    92002,Ben,Ray,1980-06-15,2222,2026-01-05\n";

fn main() -> anyhow::Result<()> {
    hisp_gateway::memory::keep_freed_memory();
    hisp_gateway::install_crypto_provider();
    let mut log = Config::defaults().log;
    log.level = "warn".into();
    hisp_gateway::telemetry::init_logging(&log);
    let root = std::env::temp_dir().join(format!("hisp-gateway-transport-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))?;
    let mut pg = EmbeddedPostgres::start(&EmbeddedOptions {
        data_dir: root.join("pg"),
        bin_dir: Default::default(),
        throwaway: false,
    })?;
    let result = tokio::runtime::Runtime::new()?.block_on(run(&pg, &root));
    pg.stop()?;
    let _ = std::fs::remove_dir_all(&root);
    result
}

/// `TRANSPORT_ONLY=crypto` runs only the parts whose name contains the value.
fn wanted(name: &str) -> bool {
    std::env::var("TRANSPORT_ONLY").map_or(true, |only| name.contains(only.as_str()))
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |s| {
        s.parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {s:?}"))
    })
}

fn measured() -> Duration {
    Duration::from_secs(env_number("TRANSPORT_SECONDS", 20))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------------
// The vendors' servers: one receiver for both gateways' inbound and DSN pushes.

/// What a sender waits for: its message's DISPATCHED push, or a failure.
type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Default)]
struct Hooks {
    waiting: Mutex<HashMap<String, Waiter>>,
    inbound: AtomicU64,
    processed: AtomicU64,
    dispatched: AtomicU64,
    failed: AtomicU64,
}

impl Hooks {
    fn counts(&self) -> String {
        format!(
            "{} inbound pushes, {} processed, {} dispatched, {} failure notifications",
            self.inbound.load(Ordering::Relaxed),
            self.processed.load(Ordering::Relaxed),
            self.dispatched.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        )
    }
}

/// The body is read to its end: answering before it is in makes the pusher's write fail.
async fn inbound(
    State(h): State<Arc<Hooks>>,
    UrlPath(_domain): UrlPath<String>,
    _body: axum::body::Bytes,
) -> StatusCode {
    h.inbound.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

/// A delivery notification: `{"Id", "Status", "Disposition", "Description", ...}`.
async fn dsn(
    State(h): State<Arc<Hooks>>,
    UrlPath(_domain): UrlPath<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let Ok(n) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let id = n["Id"].as_str().unwrap_or_default();
    let disposition = n["Disposition"].as_str().unwrap_or_default();
    let outcome = if n["Status"] != "Success" {
        h.failed.fetch_add(1, Ordering::Relaxed);
        Some(Err(format!(
            "{} {disposition}: {}",
            n["Status"], n["Description"]
        )))
    } else if disposition.ends_with(";dispatched") {
        h.dispatched.fetch_add(1, Ordering::Relaxed);
        Some(Ok(()))
    } else {
        h.processed.fetch_add(1, Ordering::Relaxed);
        None
    };
    if let Some(outcome) = outcome
        && let Some(tx) = h.waiting.lock().expect("hooks lock").remove(id)
    {
        let _ = tx.send(outcome);
    }
    StatusCode::OK
}

async fn start_hooks(hooks: Arc<Hooks>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/inbound/{domain}", post(inbound))
        .route("/dsn/{domain}", post(dsn))
        .with_state(hooks);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

// ---------------------------------------------------------------------------------------------
// The two gateways.

struct Gateway {
    domain: &'static str,
    address: &'static str,
    pool: PgPool,
    state: AppState,
    base: String,
    smtp: SocketAddr,
    ops: (Uuid, String),
    vendor: (Uuid, String),
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn gateway_config(domain: &str) -> anyhow::Result<Config> {
    let mut c = Config::defaults();
    // The public base URL is where peers fetch our CA certificates (the AIA of our leaves, which
    // a peer needs for the intermediate) and CRLs: it must be the real listener, so the port is
    // chosen before the gateway binds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    c.http.listen = SocketAddr::from(([127, 0, 0, 1], port));
    c.http.public_base_url = format!("http://127.0.0.1:{port}");
    c.smtp.listen = "127.0.0.1:0".parse()?;
    c.smtp.enabled = true;
    c.transport.hostname = format!("mx.{domain}");
    c.security.identity_hash_key = Secret::new(IDENTITY_KEY);
    c.ca.key_encryption_key = Secret::new(KEK);
    // The CA's own keys only slow the set-up; the leaves keep the production default.
    c.ca.ca_key_bits = 2048;
    c.messaging.rate_per_second = 1_000_000;
    c.messaging.rate_burst = 1_000_000;
    // The vendors' servers (the receiver) listen on loopback.
    c.webhooks.allow_private =
        vec![hisp_gateway::egress::Cidr::parse("127.0.0.1/32").map_err(|e| anyhow!(e))?];
    Ok(c)
}

fn soap12(op: &str, inner: &str) -> String {
    let ns = hisp_gateway::soap::NS;
    format!(
        r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:r="{ns}"><e:Body><r:{op}>{inner}</r:{op}></e:Body></e:Envelope>"#
    )
}

/// Text of the first `<name>` element of a SOAP answer.
fn first<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let start = xml.find(&open).map_or(0, |i| i + open.len());
    let end = xml[start..].find('<').map_or(start, |i| start + i);
    &xml[start..end]
}

impl Gateway {
    #[allow(clippy::too_many_arguments)]
    async fn start(
        pg: &EmbeddedPostgres,
        database: &str,
        domain: &'static str,
        address: &'static str,
        certified_id: u32,
        idp_id: u32,
        hooks: SocketAddr,
    ) -> anyhow::Result<Self> {
        pg.ensure_database(database).await?;
        let config = gateway_config(domain)?;
        let pool = store::pool_options(&config.database)
            .connect_with(pg.connect_options(database))
            .await?;
        store::MIGRATOR.run(&pool).await?;
        let app = App::build(config, pool.clone(), JobRegistry::new()).await?;
        let state = app.state().clone();
        let base = format!("http://{}", app.local_addr());
        let smtp = app
            .smtp_addr()
            .context("the gateway runs no SMTP listener")?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run(shutdown.clone(), true));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;

        pki::init_ca(&pool, &state.pki, &Actor::cli(), Utc::now()).await?;
        service::identity_import::import_readers(
            &pool,
            Some(("orgs.csv".into(), Box::new(ORGS.as_bytes()))),
            Some(("people.csv".into(), Box::new(PEOPLE.as_bytes()))),
            state.identity_key(),
            &Actor::cli(),
        )
        .await
        .map_err(|e| anyhow!("identity import: {e:?}"))?;
        let reseller =
            service::clients::create(&pool, ClientKind::Reseller, "bench reseller", &Actor::cli())
                .await?;
        service::accounts::credit(
            &pool,
            reseller.client.id,
            Cents::parse("10000.00").map_err(|e| anyhow!("{e:?}"))?,
            None,
            &Actor::cli(),
            Utc::now(),
        )
        .await?;
        let soap = format!("{base}{}", hisp_gateway::soap::PATH);
        let call = |body: String| {
            http.post(&soap)
                .header("content-type", "application/soap+xml; charset=utf-8")
                .body(body)
                .send()
        };
        let login = soap12(
            "Login",
            &format!(
                "<username>{}</username><password>{}</password>",
                reseller.client.id, reseller.secret
            ),
        );
        let text = call(login).await?.text().await?;
        let session = first(&text, "sessionId").to_owned();
        ensure!(!session.is_empty(), "SOAP login failed: {text}");
        let user = address.split('@').next().expect("an address");
        let form = format!(
            "<organization><certified_id>{certified_id}</certified_id></organization>\
             <authorizedUsers><idp_id>{idp_id}</idp_id></authorizedUsers>\
             <directAddresses><idp_id>{idp_id}</idp_id><username>{user}</username><password>Bench-Passw0rd</password><userType>SMTP</userType></directAddresses>\
             <organizationType>CoveredEntity</organizationType>"
        );
        let provision = soap12(
            "ProvisionCertifiedProvider",
            &format!(
                "<sessionId>{session}</sessionId><DirectDomain>{domain}</DirectDomain><DirectOfferType>CDO5</DirectOfferType><form>{form}</form>"
            ),
        );
        let text = call(provision).await?.text().await?;
        ensure!(
            first(&text, "code") == "000",
            "provisioning {domain} failed: {text}"
        );
        let ops =
            service::clients::create(&pool, ClientKind::Ops, "bench ops", &Actor::cli()).await?;
        let vendor =
            service::clients::create(&pool, ClientKind::Vendor, "bench vendor", &Actor::cli())
                .await?;
        let g = Self {
            domain,
            address,
            pool,
            state,
            base,
            smtp,
            ops: (ops.client.id, ops.secret),
            vendor: (vendor.client.id, vendor.secret),
            http,
            shutdown,
            task,
        };
        g.wait_for_certificates().await?;
        g.post_ok(
            "/api/v1/messaging/grants",
            &g.ops,
            &json!({"clientId": g.vendor.0, "domain": domain}),
        )
        .await?;
        let r = g
            .http
            .put(format!("{}/api/v1/messaging/endpoints/{address}", g.base))
            .basic_auth(g.vendor.0, Some(&g.vendor.1))
            .json(&json!({
                "inboundUrl": format!("http://{hooks}/inbound/{domain}"),
                "dsnUrl": format!("http://{hooks}/dsn/{domain}"),
            }))
            .send()
            .await?;
        ensure!(
            r.status().is_success(),
            "endpoint of {address}: {}",
            r.text().await?
        );
        Ok(g)
    }

    /// The outbox issues the organization's certificates (and then activates it): wait for it.
    async fn wait_for_certificates(&self) -> anyhow::Result<()> {
        let address = DirectAddress::parse(self.address).map_err(|e| anyhow!(e.message))?;
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM organizations WHERE domain = $1")
                    .bind(self.domain)
                    .fetch_optional(&self.pool)
                    .await?;
            let signing = pki::credentials_for(
                &self.pool,
                &self.state.pki,
                &address,
                KeyUse::Signing,
                Utc::now(),
            )
            .await?;
            if status.as_deref() == Some("Activated") && signing.is_some() {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{}: no certificates after 3 minutes (organization {status:?})",
                self.domain
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn post_ok(
        &self,
        path: &str,
        (id, secret): &(Uuid, String),
        body: &Value,
    ) -> anyhow::Result<Value> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(id, Some(secret))
            .json(body)
            .send()
            .await?;
        let status = r.status();
        let text = r.text().await?;
        ensure!(status.is_success(), "POST {path}: {status} {text}");
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn root_pem(&self) -> anyhow::Result<String> {
        let roots = pki::trust_anchors(&self.pool).await?;
        let root = roots.first().context("no CA root")?;
        Ok(String::from_utf8(root.to_pem()?)?)
    }

    /// Every live certificate of the domain and its address, PEM, one after the other.
    async fn certificates_pem(&self) -> anyhow::Result<String> {
        let list = pki::list(
            &self.pool,
            &CertificateQuery {
                organization: Some(self.domain),
                address: None,
            },
        )
        .await?;
        let mut out = String::new();
        for der in list
            .iter()
            .filter(|c| c.revoked_at.is_none())
            .filter_map(|c| c.certificate_der.as_deref())
        {
            out.push_str(std::str::from_utf8(&X509::from_der(der)?.to_pem()?)?);
        }
        ensure!(!out.is_empty(), "{} has no certificate", self.domain);
        Ok(out)
    }

    /// What an operator does so that this gateway exchanges Direct mail with `peer`: trust the
    /// peer's CA for our domain, configure its certificates, route its domain to its listener.
    async fn connect_to(&self, peer: &Gateway) -> anyhow::Result<()> {
        self.post_ok(
            "/api/v1/trust/anchors",
            &self.ops,
            &json!({"domain": self.domain, "pem": peer.root_pem().await?}),
        )
        .await?;
        self.post_ok(
            "/api/v1/trust/peer-certificates",
            &self.ops,
            &json!({"domain": peer.domain, "pem": peer.certificates_pem().await?}),
        )
        .await?;
        self.state.transport.set_route(
            peer.domain,
            RouteConfig {
                address: peer.smtp.to_string(),
                require_tls: false,
            },
        );
        Ok(())
    }

    /// Jobs due now that are queued or running.
    async fn busy_jobs(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running') AND run_at <= now()",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await??;
        self.pool.close().await;
        Ok(())
    }
}

/// Waits until neither gateway has a due job left (at most 2 minutes).
async fn quiesce(gateways: &[&Gateway]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut busy = 0;
        for g in gateways {
            busy += g.busy_jobs().await?;
        }
        if busy == 0 {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{busy} jobs still due after 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Senders.

/// A send_ccda body split around its messageId, so each request costs one copy.
struct Sender {
    http: reqwest::Client,
    url: String,
    auth: String,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    hooks: Arc<Hooks>,
}

struct Sent {
    /// Until the send request was answered 200.
    accepted: Duration,
    /// Until the DISPATCHED push reached A's vendor.
    dispatched: Duration,
    result: Result<(), String>,
}

impl Sender {
    fn new(a: &Gateway, ccda: &[u8], hooks: Arc<Hooks>) -> anyhow::Result<Self> {
        let marker = "@@MESSAGE-ID@@";
        let body = json!({
            "fromDirectAddress": ADA,
            "toDirectAddress": BEN,
            "emailAttachmentList": [
                {"attachmentClass": "text/xml", "attachmentContent": STANDARD.encode(ccda),
                 "attachmentTitle": "Continuity of Care Document"}
            ],
            "messageBody": "Clinical Report for Patient Ralph Kramden. Please find attached clinical report",
            "messageId": marker,
            "messageSubject": "Referral",
            "patientLastname": "Kramden",
            "patientFirstname": "Ralph",
            "patientDOB": "19160226",
            "patientGender": "M",
            "xdm": false,
            "asmEnabled": true
        })
        .to_string();
        let (prefix, suffix) = body.split_once(marker).context("the marker")?;
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(64)
                .build()?,
            url: format!("{}{SEND_PATH}", a.base),
            auth: format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", a.vendor.0, a.vendor.1))
            ),
            prefix: prefix.as_bytes().to_vec(),
            suffix: suffix.as_bytes().to_vec(),
            hooks,
        })
    }

    /// Sends one message and waits for its DISPATCHED push; returns its messageId too.
    async fn one(&self) -> (String, Sent) {
        let id = format!("bench-{}", Uuid::new_v4());
        let mut body = Vec::with_capacity(self.prefix.len() + id.len() + self.suffix.len());
        body.extend_from_slice(&self.prefix);
        body.extend_from_slice(id.as_bytes());
        body.extend_from_slice(&self.suffix);
        let (tx, rx) = oneshot::channel();
        self.hooks
            .waiting
            .lock()
            .expect("hooks lock")
            .insert(id.clone(), tx);
        let t = Instant::now();
        let answer = self
            .http
            .post(&self.url)
            .header("authorization", &self.auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let accepted = t.elapsed();
        let refused = match answer {
            Ok(r) if r.status() == 200 => None,
            Ok(r) => Some(format!(
                "send answered {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            )),
            Err(e) => Some(format!("send failed: {e}")),
        };
        let result = match refused {
            Some(e) => Err(e),
            None => match tokio::time::timeout(MESSAGE_TIMEOUT, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err("the receiver dropped the waiter".into()),
                Err(_) => Err(format!(
                    "not DISPATCHED within {} s",
                    MESSAGE_TIMEOUT.as_secs()
                )),
            },
        };
        self.hooks.waiting.lock().expect("hooks lock").remove(&id);
        let sent = Sent {
            accepted,
            dispatched: t.elapsed(),
            result,
        };
        (id, sent)
    }
}

// ---------------------------------------------------------------------------------------------
// CPU accounting.

/// utime + stime of a process in seconds (USER_HZ is 100), with its reaped children's when
/// asked, and its parent.
fn proc_cpu(pid: i32, children: bool) -> Option<(f64, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    let mut ticks = field(11)? + field(12)?;
    if children {
        ticks += field(13)? + field(14)?;
    }
    Some((ticks / 100.0, ppid))
}

fn postmaster_pid(data_dir: &Path) -> i32 {
    std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0)
}

#[derive(Clone, Copy)]
struct CpuSample {
    process: f64,
    postgres: f64,
    busy: f64,
    total: f64,
}

fn cpu_sample(postmaster: i32) -> CpuSample {
    // Exited backends count through the postmaster's reaped children.
    let mut postgres = proc_cpu(postmaster, true).map_or(0.0, |c| c.0);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok())
                && let Some((cpu, ppid)) = proc_cpu(pid, false)
                && ppid == postmaster
            {
                postgres += cpu;
            }
        }
    }
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = cpu.iter().take(8).sum();
    let idle = cpu.get(3).copied().unwrap_or(0.0) + cpu.get(4).copied().unwrap_or(0.0);
    CpuSample {
        process: proc_cpu(std::process::id() as i32, false).map_or(0.0, |c| c.0),
        postgres,
        busy: (total - idle) / 100.0,
        total: total / 100.0,
    }
}

/// CPU per message (ms) of this process and of PostgreSQL, and how busy the cores were.
fn cpu_line(a: CpuSample, b: CpuSample, messages: usize) -> (String, f64, f64) {
    let per = |x: f64, y: f64| (y - x) * 1000.0 / messages.max(1) as f64;
    let wall = (b.total - a.total).max(1e-9);
    let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    let other = ((b.busy - a.busy) - (b.process - a.process) - (b.postgres - a.postgres)).max(0.0);
    let (process, postgres) = (per(a.process, b.process), per(a.postgres, b.postgres));
    (
        format!(
            "cpu/message: this process {process:.2} ms, PostgreSQL {postgres:.2} ms; cores busy {:.0}% (other processes {:.0}% of one core)",
            (b.busy - a.busy) * 100.0 / wall,
            other * 100.0 / (wall / cores),
        ),
        process,
        postgres,
    )
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives on this stack frame.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time of the child processes this process has waited for.
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills one rusage, which lives on this stack frame; zero is a valid one.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

// ---------------------------------------------------------------------------------------------
// Closed loops.

struct RunResult {
    messages: usize,
    errors: usize,
    first_error: Option<String>,
    rate: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    accepted_p50: Duration,
    process_ms: f64,
    postgres_ms: f64,
    cpu: String,
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        Duration::ZERO
    } else {
        sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
    }
}

/// `concurrency` senders, each sending its next message once the last one is DISPATCHED.
/// Counted: messages DISPATCHED within the window (after the warm-up). `during` runs at the
/// window's start (the profiler) and is awaited at its end.
async fn closed_loop(
    sender: &Arc<Sender>,
    concurrency: usize,
    window: Duration,
    postmaster: i32,
    during: Option<Box<dyn FnOnce() -> Vec<std::process::Child> + Send>>,
) -> anyhow::Result<(RunResult, DateTime<Utc>, DateTime<Utc>)> {
    let from = Instant::now() + WARMUP;
    let until = from + window;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < until {
                let (_, sent) = sender.one().await;
                let done = Instant::now();
                if done >= from && done < until {
                    out.push(sent);
                }
            }
            out
        }));
    }
    tokio::time::sleep_until(from.into()).await;
    let s0 = cpu_sample(postmaster);
    let t0 = Utc::now();
    let children = during.map_or_else(Vec::new, |start| start());
    tokio::time::sleep_until(until.into()).await;
    let s1 = cpu_sample(postmaster);
    let t1 = Utc::now();
    for mut child in children {
        child.wait()?;
    }
    let mut sent = Vec::new();
    for t in tasks {
        sent.extend(t.await?);
    }
    let errors = sent.iter().filter(|s| s.result.is_err()).count();
    let first_error = sent.iter().find_map(|s| s.result.clone().err());
    let mut dispatched: Vec<Duration> = sent
        .iter()
        .filter(|s| s.result.is_ok())
        .map(|s| s.dispatched)
        .collect();
    dispatched.sort();
    let mut accepted: Vec<Duration> = sent.iter().map(|s| s.accepted).collect();
    accepted.sort();
    let messages = dispatched.len();
    let (cpu, process_ms, postgres_ms) = cpu_line(s0, s1, messages);
    Ok((
        RunResult {
            messages,
            errors,
            first_error,
            rate: messages as f64 / window.as_secs_f64(),
            p50: quantile(&dispatched, 0.5),
            p99: quantile(&dispatched, 0.99),
            max: dispatched.last().copied().unwrap_or_default(),
            accepted_p50: quantile(&accepted, 0.5),
            process_ms,
            postgres_ms,
            cpu,
        },
        t0,
        t1,
    ))
}

/// Kind, jobs, retries, enqueue-to-done p50 and p99 (s).
type JobStageRow = (String, i64, i64, Option<f64>, Option<f64>);

/// Per outbox job kind, on one gateway, the jobs done in the window: count, retries, and
/// enqueue-to-done p50/p99; and its inbound mail by outcome.
async fn stages(g: &Gateway, t0: DateTime<Utc>, t1: DateTime<Utc>) -> anyhow::Result<String> {
    let rows: Vec<JobStageRow> = sqlx::query_as(
        "SELECT kind, count(*), coalesce(sum(attempts - 1), 0)::bigint,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))
         FROM jobs WHERE state = 'done' AND finished_at >= $1 AND finished_at < $2
         GROUP BY kind ORDER BY kind",
    )
    .bind(t0)
    .bind(t1)
    .fetch_all(&g.pool)
    .await?;
    let dead: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE state = 'dead' AND updated_at >= $1 AND updated_at < $2",
    )
    .bind(t0)
    .bind(t1)
    .fetch_one(&g.pool)
    .await?;
    let mail: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, count(*) FROM inbound_mail WHERE received_at >= $1 AND received_at < $2
         GROUP BY state ORDER BY state",
    )
    .bind(t0)
    .bind(t1)
    .fetch_all(&g.pool)
    .await?;
    let mut out = format!("  {}: jobs done in the window, enqueue to done:", g.domain);
    for (kind, n, retries, p50, p99) in rows {
        out.push_str(&format!(
            " {kind} {n} (p50 {:.1} ms, p99 {:.1} ms{})",
            p50.unwrap_or(0.0) * 1000.0,
            p99.unwrap_or(0.0) * 1000.0,
            if retries > 0 {
                format!(", {retries} retries")
            } else {
                String::new()
            }
        ));
        out.push(';');
    }
    out.push_str(&format!(" {dead} dead; inbound mail received:"));
    for (state, n) in mail {
        out.push_str(&format!(" {n} {state}"));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Crypto: ours next to openssl cms.

struct CryptoInputs {
    /// The stored MIME of a message A accepted: what the send job seals.
    inner: Vec<u8>,
    signer_cert: X509,
    signer_key: PKey<Private>,
    chain: Vec<X509>,
    recipient_cert: X509,
    recipient_keys: Vec<(X509, PKey<Private>)>,
    /// A's CA root, for openssl's judgement.
    anchor: X509,
}

struct CryptoResult {
    rounds: usize,
    sealed_bytes: usize,
    seal: Duration,
    seal_wall: Duration,
    open: Duration,
    mdn_seal: Duration,
    mdn_open: Duration,
    openssl_rounds: usize,
    startup: Duration,
    openssl_seal_raw: Duration,
    openssl_open_raw: Duration,
}

impl CryptoResult {
    fn openssl_seal(&self) -> Duration {
        self.openssl_seal_raw.saturating_sub(self.startup * 2)
    }
    fn openssl_open(&self) -> Duration {
        self.openssl_open_raw.saturating_sub(self.startup * 2)
    }
}

async fn crypto_inputs(a: &Gateway, b: &Gateway, message_id: &str) -> anyhow::Result<CryptoInputs> {
    let id: Uuid = sqlx::query_scalar("SELECT id FROM messages WHERE vendor_message_id = $1")
        .bind(message_id)
        .fetch_one(&a.pool)
        .await?;
    let (_, raw) = store::messaging::message_with_mime(&a.pool, id)
        .await?
        .context("the probe message")?;
    let inner = packed_mime::unpack(raw.context("the probe has no MIME")?)
        .map_err(|e| anyhow!("unpacking the MIME: {e:?}"))?;
    let now = Utc::now();
    let ada = DirectAddress::parse(ADA).map_err(|e| anyhow!(e.message))?;
    let ben = DirectAddress::parse(BEN).map_err(|e| anyhow!(e.message))?;
    let (signer_cert, signer_key) =
        pki::credentials_for(&a.pool, &a.state.pki, &ada, KeyUse::Signing, now)
            .await?
            .context("ada's signing certificate")?;
    let chain: Vec<X509> = pki::authority_certificate(&a.pool, pki::ISSUING)
        .await?
        .into_iter()
        .collect();
    // B decrypts with these; the first one's certificate is what the message is sealed to.
    let recipient_keys = pki::decryption_keys(&b.pool, &b.state.pki, &ben, now).await?;
    let recipient_cert = recipient_keys
        .first()
        .map(|(c, _)| c.clone())
        .context("ben's encryption certificate")?;
    let anchor = pki::trust_anchors(&a.pool)
        .await?
        .into_iter()
        .next()
        .context("A's root")?;
    Ok(CryptoInputs {
        inner,
        signer_cert,
        signer_key,
        chain,
        recipient_cert,
        recipient_keys,
        anchor,
    })
}

fn envelope_to() -> Vec<String> {
    vec![BEN.to_owned()]
}

fn seal(i: &CryptoInputs, to: &[String]) -> anyhow::Result<Vec<u8>> {
    let env = Envelope {
        from: ADA,
        to,
        message_id: "<bench-crypto@harbor.bench.example.org>",
        date: Utc::now(),
        subject: "Direct message",
        request_final_delivery: true,
    };
    let signer = Signer {
        cert: &i.signer_cert,
        key: &i.signer_key,
        chain: &i.chain,
    };
    Ok(smime::seal(
        &i.inner,
        &env,
        &signer,
        std::slice::from_ref(&i.recipient_cert),
        Algorithms::default(),
    )?)
}

/// An MDN as B sends it (here signed with A's credentials and sealed to B's certificate:
/// the same work on a message of the same size).
fn mdn_inner() -> anyhow::Result<Vec<u8>> {
    Ok(mdn::build(
        &Mdn {
            reporting_ua: "mx.lakeside.bench.example.org; hisp-gateway",
            original_recipient: None,
            final_recipient: BEN,
            original_message_id: "<bench-crypto@harbor.bench.example.org>",
            disposition: Disposition::Dispatched,
            final_delivery_requested: true,
            failure: None,
            subject: "Dispatched: Referral",
        },
        BEN,
        ADA,
        "<bench-mdn@lakeside.bench.example.org>",
        Utc::now(),
    )?)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, bytes)?;
    Ok(p)
}

/// Runs `first | second`; both must succeed. Returns the second's output when asked.
fn pipeline(first: &mut Command, second: &mut Command) -> anyhow::Result<Vec<u8>> {
    let mut a = first
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running openssl")?;
    let out = second
        .stdin(a.stdout.take().context("a pipe")?)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()?;
    let first_out = a.wait_with_output()?;
    ensure!(
        first_out.status.success(),
        "{:?}: {}",
        first,
        String::from_utf8_lossy(&first_out.stderr)
    );
    ensure!(
        out.status.success(),
        "{:?}: {}",
        second,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}

fn openssl(args: &[&str]) -> Command {
    let mut c = Command::new("openssl");
    c.args(args);
    c
}

/// Ours and openssl's, on one thread each in turn (the gateways idle meanwhile).
fn crypto(i: &CryptoInputs, dir: &Path) -> anyhow::Result<CryptoResult> {
    std::fs::create_dir_all(dir)?;
    let rounds = env_number("TRANSPORT_ROUNDS", 100).max(2) as usize;
    let openssl_rounds = (rounds / 2).max(2);
    let to = envelope_to();

    // Ours. One of each first: the sealed message is the input of open and of openssl.
    let sealed = seal(i, &to)?;
    let opened = smime::open(&sealed, &i.recipient_keys).map_err(|e| anyhow!("open: {e}"))?;
    ensure!(opened.inner_from.is_some(), "our own message opens");
    let (t, w) = (thread_cpu(), Instant::now());
    for _ in 0..rounds {
        std::hint::black_box(seal(i, &to)?);
    }
    let (seal_cpu, seal_wall) = (
        (thread_cpu() - t) / rounds as u32,
        w.elapsed() / rounds as u32,
    );
    let t = thread_cpu();
    for _ in 0..rounds {
        std::hint::black_box(
            smime::open(&sealed, &i.recipient_keys).map_err(|e| anyhow!("open: {e}"))?,
        );
    }
    let open_cpu = (thread_cpu() - t) / rounds as u32;
    let mdn = mdn_inner()?;
    let env = Envelope {
        from: BEN,
        to: &to,
        message_id: "<bench-mdn-outer@lakeside.bench.example.org>",
        date: Utc::now(),
        subject: "Direct message",
        request_final_delivery: false,
    };
    let signer = Signer {
        cert: &i.signer_cert,
        key: &i.signer_key,
        chain: &i.chain,
    };
    let recipients = std::slice::from_ref(&i.recipient_cert);
    let t = thread_cpu();
    let mut sealed_mdn = Vec::new();
    for _ in 0..rounds {
        sealed_mdn =
            smime::seal_notification(&mdn, &env, &signer, recipients, Algorithms::default())?;
    }
    let mdn_seal = (thread_cpu() - t) / rounds as u32;
    let t = thread_cpu();
    for _ in 0..rounds {
        std::hint::black_box(
            smime::open(&sealed_mdn, &i.recipient_keys).map_err(|e| anyhow!("open MDN: {e}"))?,
        );
    }
    let mdn_open = (thread_cpu() - t) / rounds as u32;

    // openssl's files: the same wrapped entity our seal signs, the same keys.
    let mut wrapped = b"Content-Type: message/rfc822\r\n\r\n".to_vec();
    wrapped.extend_from_slice(&i.inner);
    let wrapped = write(dir, "wrapped.eml", &wrapped)?;
    let signer_pem = write(dir, "signer.pem", &i.signer_cert.to_pem()?)?;
    let signer_key = write(dir, "signer.key", &i.signer_key.private_key_to_pem_pkcs8()?)?;
    let mut chain = Vec::new();
    for c in &i.chain {
        chain.extend_from_slice(&c.to_pem()?);
    }
    let chain = write(dir, "chain.pem", &chain)?;
    let recip_pem = write(dir, "recipient.pem", &i.recipient_cert.to_pem()?)?;
    let (_, recip_key) = i
        .recipient_keys
        .iter()
        .find(|(c, _)| c.to_der().ok() == i.recipient_cert.to_der().ok())
        .or(i.recipient_keys.first())
        .context("B's key")?;
    let recip_key = write(dir, "recipient.key", &recip_key.private_key_to_pem_pkcs8()?)?;
    let anchor = write(dir, "anchor.pem", &i.anchor.to_pem()?)?;
    let ours = write(dir, "ours.eml", &sealed)?;
    let theirs = dir.join("openssl.eml");
    let s = |p: &Path| p.to_str().expect("a UTF-8 temp path").to_owned();
    let (wrapped, signer_pem, signer_key, chain, recip_pem, recip_key, anchor, ours_s, theirs_s) = (
        s(&wrapped),
        s(&signer_pem),
        s(&signer_key),
        s(&chain),
        s(&recip_pem),
        s(&recip_key),
        s(&anchor),
        s(&ours),
        s(&theirs),
    );
    let sign = || {
        openssl(&[
            "cms",
            "-sign",
            "-in",
            &wrapped,
            "-signer",
            &signer_pem,
            "-inkey",
            &signer_key,
            "-certfile",
            &chain,
            "-md",
            "sha256",
        ])
    };
    let encrypt = || {
        openssl(&[
            "cms",
            "-encrypt",
            "-aes256",
            "-recip",
            &recip_pem,
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha256",
            "-out",
            &theirs_s,
        ])
    };
    let decrypt = |file: &str| {
        openssl(&[
            "cms", "-decrypt", "-in", file, "-recip", &recip_pem, "-inkey", &recip_key,
        ])
    };
    let verify = || openssl(&["cms", "-verify", "-noverify", "-out", "/dev/null"]);

    // Judges, untimed: openssl reads ours with A's root as the only anchor; ours reads theirs.
    pipeline(
        &mut decrypt(&ours_s),
        &mut openssl(&[
            "cms",
            "-verify",
            "-CAfile",
            &anchor,
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ]),
    )
    .context("openssl judging our sealed message")?;
    pipeline(&mut sign(), &mut encrypt())?;
    let theirs_bytes = std::fs::read(&theirs)?;
    // openssl's output has no outer From/To; ours needs them only for what it reports.
    let mut with_headers = format!("From: {ADA}\r\nTo: {BEN}\r\n").into_bytes();
    with_headers.extend_from_slice(&theirs_bytes);
    smime::open(&with_headers, &i.recipient_keys)
        .map_err(|e| anyhow!("our open of openssl's message: {e}"))?;
    println!(
        "judges: openssl cms -decrypt | -verify -CAfile <A's root> accepts our sealed message; our open accepts openssl's"
    );

    let c = children_cpu();
    for _ in 0..openssl_rounds {
        let out = openssl(&["version"]).stdout(Stdio::null()).status()?;
        ensure!(out.success(), "openssl version failed");
    }
    let startup = (children_cpu() - c) / openssl_rounds as u32;
    let c = children_cpu();
    for _ in 0..openssl_rounds {
        pipeline(&mut sign(), &mut encrypt())?;
    }
    let openssl_seal_raw = (children_cpu() - c) / openssl_rounds as u32;
    let c = children_cpu();
    for _ in 0..openssl_rounds {
        pipeline(&mut decrypt(&ours_s), &mut verify())?;
    }
    let openssl_open_raw = (children_cpu() - c) / openssl_rounds as u32;
    Ok(CryptoResult {
        rounds,
        sealed_bytes: sealed.len(),
        seal: seal_cpu,
        seal_wall,
        open: open_cpu,
        mdn_seal,
        mdn_open,
        openssl_rounds,
        startup,
        openssl_seal_raw,
        openssl_open_raw,
    })
}

// ---------------------------------------------------------------------------------------------
// The profile.

fn perf_works() -> bool {
    Command::new("perf")
        .args(["record", "-q", "-o", "/dev/null", "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What a sample of this process was doing, by its shared object and symbol.
fn category(dso: &str, sym: &str) -> &'static str {
    let s = sym.to_ascii_lowercase();
    if dso.contains("kernel") {
        "kernel (network, syscalls, memory)"
    } else if dso.contains("libcrypto") {
        // Debian's libcrypto is stripped of its internal symbols: no finer split here (the
        // call stacks below say which of our operations the time belongs to).
        "OpenSSL (libcrypto)"
    } else if s.contains("aws_lc") || s.contains("rustls") {
        "TLS (rustls + aws-lc: STARTTLS)"
    } else if s.contains("mail_parser") {
        "MIME parsing (mail-parser)"
    } else if s.contains("direct::") || s.contains("smime") || s.contains("mdn::") {
        "S/MIME and MIME framing (ours)"
    } else if s.contains("serde_json") {
        "JSON"
    } else if s.contains("base64") {
        "base64"
    } else if s.contains("sqlx") {
        "sqlx (client side)"
    } else if s.contains("lettre") || s.contains("smtp") {
        "SMTP"
    } else if s.contains("memcpy")
        || s.contains("memmove")
        || s.contains("memset")
        || s.contains("memchr")
        || s.contains("memcmp")
    {
        "memory copies and scans"
    } else if s.contains("malloc")
        || s.contains("free")
        || s.contains("realloc")
        || s.contains("_int_")
        || s.contains("alloc::")
    {
        "allocator"
    } else if s.contains("tokio")
        || s.contains("hyper")
        || s.contains("axum")
        || s.contains("reqwest")
    {
        "async runtime and HTTP"
    } else if s.contains("hisp_gateway") {
        "gateway, other"
    } else {
        "other"
    }
}

struct Profile {
    /// Per category: share of the busy samples (%), ms of CPU per message.
    rows: Vec<(String, f64, f64)>,
    top_ours: Vec<(f64, String)>,
    top_postgres: Vec<(f64, String)>,
}

/// Reads perf's samples one by one (`perf script`): each carries its process, its period (ns of
/// CPU it stands for), its symbol and shared object.
fn read_profile(data: &Path, messages: usize) -> anyhow::Result<Profile> {
    let out = Command::new("perf")
        .args(["script", "-i"])
        .arg(data)
        .args(["-F", "comm,pid,tid,period,ip,sym,dso"])
        .stderr(Stdio::null())
        .output()?;
    ensure!(out.status.success(), "perf script failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let me = std::process::id();
    let mut by: HashMap<String, f64> = HashMap::new();
    let mut ours: HashMap<String, f64> = HashMap::new();
    let mut pg: HashMap<String, f64> = HashMap::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        // The command may contain spaces; "pid/tid" follows it.
        let Some(at) = t.iter().position(|x| {
            x.split_once('/').is_some_and(|(p, q)| {
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && q.parse::<u32>().is_ok()
            })
        }) else {
            continue;
        };
        let comm = t[..at].join(" ");
        let pid: u32 = t[at]
            .split_once('/')
            .map_or(0, |(p, _)| p.parse().unwrap_or(0));
        let Some(ns) = t.get(at + 1).and_then(|p| p.parse::<f64>().ok()) else {
            continue;
        };
        let rest = t.get(at + 3..).map_or(String::new(), |r| r.join(" "));
        let (sym, dso) = rest
            .rsplit_once(" (")
            .map_or((rest.as_str(), ""), |(s, d)| (s, d.trim_end_matches(')')));
        let dso_name = dso.rsplit('/').next().unwrap_or(dso);
        let key = if pid == 0 || comm.starts_with("swapper") {
            "(idle)".to_owned()
        } else if pid == me {
            *ours.entry(format!("{sym} ({dso_name})")).or_default() += ns;
            format!("this process: {}", category(dso, sym))
        } else if comm == "postgres" {
            let what = if sym.contains("pglz") {
                "TOAST compression (pglz)"
            } else if dso.contains("kernel") {
                "kernel"
            } else {
                "other"
            };
            *pg.entry(format!("{sym} ({dso_name})")).or_default() += ns;
            format!("PostgreSQL: {what}")
        } else {
            format!("other processes on the machine ({comm})")
        };
        *by.entry(key).or_default() += ns;
    }
    let busy: f64 = by
        .iter()
        .filter(|(k, _)| *k != "(idle)")
        .map(|(_, v)| v)
        .sum();
    let pct = |ns: f64| ns * 100.0 / busy.max(1.0);
    let per_message = |ns: f64| ns / 1e6 / messages.max(1) as f64;
    // Other processes' commands vary (compilers, tests): one line for all of them, with the
    // three busiest named.
    let mut others: Vec<(String, f64)> = by
        .iter()
        .filter(|(k, _)| k.starts_with("other processes"))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    others.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut rows: Vec<(String, f64, f64)> = by
        .iter()
        .filter(|(k, _)| !k.starts_with("other processes") && *k != "(idle)")
        .map(|(k, v)| (k.clone(), pct(*v), per_message(*v)))
        .collect();
    let other_ns: f64 = others.iter().map(|o| o.1).sum();
    if other_ns > 0.0 {
        let names: Vec<String> = others
            .iter()
            .take(3)
            .map(|(k, _)| {
                k.trim_start_matches("other processes on the machine (")
                    .trim_end_matches(')')
                    .to_owned()
            })
            .collect();
        rows.push((
            format!("other processes on the machine ({}...)", names.join(", ")),
            pct(other_ns),
            per_message(other_ns),
        ));
    }
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    let top = |m: HashMap<String, f64>| {
        let mut v: Vec<(f64, String)> = m.into_iter().map(|(k, ns)| (pct(ns), k)).collect();
        v.sort_by(|a, b| b.0.total_cmp(&a.0));
        v.truncate(12);
        v
    };
    Ok(Profile {
        rows,
        top_ours: top(ours),
        top_postgres: top(pg),
    })
}

/// Our stages: a sample belongs to the first of these any frame of its stack names.
const STAGES: &[(&str, &str)] = &[
    (
        "notifications::send_mdn",
        "MDN sending (B): build, seal, SMTP out",
    ),
    ("outbound::", "direct.send (A): discovery, seal, SMTP out"),
    (
        "receive::receive",
        "direct.receive (A and B): open, signer check, store or apply MDN",
    ),
    (
        "messaging::delivery",
        "pushes to the vendors (B's inbound, A's notifications)",
    ),
    (
        "hisp_gateway::smtp::",
        "SMTP listener (A and B): sessions, commit",
    ),
    ("send_ccda", "send_ccda request (A)"),
    ("hisp_gateway::rest", "other REST requests"),
    ("hisp_gateway::jobs", "outbox worker: claim and finish"),
    ("transport::Sender", "the bench: senders and receiver"),
    ("transport::closed_loop", "the bench: senders and receiver"),
    ("transport::dsn", "the bench: senders and receiver"),
    ("transport::inbound", "the bench: senders and receiver"),
    ("sqlx", "sqlx: pool, connections"),
    ("hyper", "HTTP, outside a stage"),
    // Futures polled by tokio are often inlined into its generic poll functions, whose names
    // do not say which future they ran.
    (
        "tokio::",
        "async tasks inlined into tokio's poll (stage not named)",
    ),
];

/// What the code did: the first of these any frame of the stack names decides (so the
/// database reads and the parsing inside "private keys" count there, and the base64 inside
/// "open" counts as open).
const OPERATIONS: &[(&str, &str)] = &[
    (
        "KeyEncryptionKey::open",
        "private keys: read, unsealed and parsed at each use",
    ),
    (
        "pki::credentials_for",
        "private keys: read, unsealed and parsed at each use",
    ),
    (
        "pki::decryption_keys",
        "private keys: read, unsealed and parsed at each use",
    ),
    (
        "trust::anchors_for",
        "trust anchors: read and parsed at each use",
    ),
    (
        "pki::authority_certificate",
        "our CA certificate: read and parsed at each use",
    ),
    (
        "ConfiguredSource",
        "recipient certificates: read and parsed at each use",
    ),
    (
        "trust::sources",
        "recipient certificates: read and parsed at each use",
    ),
    (
        "Discovery::check_signer",
        "certificate validation (path, CRLs)",
    ),
    ("direct::validate", "certificate validation (path, CRLs)"),
    ("trust::crl", "certificate validation (path, CRLs)"),
    ("Discovery::", "certificate validation (path, CRLs)"),
    (
        "smime::seal",
        "S/MIME seal (sign + encrypt), messages and MDNs",
    ),
    (
        "smime::ffi::sign_detached",
        "S/MIME seal (sign + encrypt), messages and MDNs",
    ),
    (
        "smime::ffi::encrypt",
        "S/MIME seal (sign + encrypt), messages and MDNs",
    ),
    (
        "mime::base64_lines",
        "S/MIME seal (sign + encrypt), messages and MDNs",
    ),
    (
        "smime::open",
        "S/MIME open (decrypt + verify), messages and MDNs",
    ),
    (
        "smime::verify",
        "S/MIME open (decrypt + verify), messages and MDNs",
    ),
    (
        "smime::ffi::decrypt",
        "S/MIME open (decrypt + verify), messages and MDNs",
    ),
    (
        "direct::entity::decode",
        "S/MIME open (decrypt + verify), messages and MDNs",
    ),
    ("direct::entity::to_crlf", "S/MIME: CRLF canonical form"),
    ("smime::", "S/MIME, other"),
    ("direct::entity", "S/MIME, other"),
    ("direct::mdn", "MDN build and parse"),
    ("rustls", "TLS (STARTTLS)"),
    ("aws_lc", "TLS (STARTTLS)"),
    ("lettre", "SMTP client (lettre)"),
    ("smtp_proto", "SMTP listener protocol"),
    ("sqlx", "database client (sqlx)"),
    ("packed_mime", "stored MIME packing"),
    ("mail_parser", "MIME parsing (mail-parser)"),
    ("direct::mime", "MIME building and parsing (ours)"),
    ("webhooks::", "pushes to vendors (signing, HTTP)"),
    ("reqwest", "pushes to vendors (signing, HTTP)"),
    ("serde_json", "JSON"),
    ("hyper", "HTTP server and client (hyper)"),
    ("hisp_gateway", "gateway, other"),
    ("transport::Sender", "the bench"),
    ("transport::closed_loop", "the bench"),
    ("transport::dsn", "the bench"),
    ("transport::inbound", "the bench"),
    ("tokio::", "async runtime"),
];

struct Stacks {
    samples: usize,
    /// Samples whose stack the unwinder could not follow to the thread's start.
    cut: usize,
    by_stage: Vec<(String, f64, f64)>,
    by_operation: Vec<(String, f64, f64)>,
}

/// Reads the call stacks perf recorded for this process (`perf script`, without inline
/// resolution, which would take minutes): ms per message and share by stage and by operation.
fn read_stacks(data: &Path, messages: usize) -> anyhow::Result<Stacks> {
    let out = Command::new("perf")
        .args(["script", "--no-inline", "-i"])
        .arg(data)
        .args(["-F", "comm,pid,tid,period,ip,sym,dso"])
        .stderr(Stdio::null())
        .output()?;
    ensure!(out.status.success(), "perf script failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut stage: HashMap<&str, f64> = HashMap::new();
    let mut operation: HashMap<&str, f64> = HashMap::new();
    let (mut total, mut samples, mut cut) = (0.0, 0usize, 0usize);
    for block in text.split("\n\n") {
        let mut lines = block.lines().filter(|l| !l.trim().is_empty());
        let Some(head) = lines.next() else { continue };
        let Some(ns) = head
            .split_whitespace()
            .last()
            .and_then(|p| p.parse::<f64>().ok())
        else {
            continue;
        };
        // Frames, innermost first: "ip symbol (dso)".
        let frames: Vec<&str> = lines
            .map(|l| {
                let l = l.trim();
                let l = l.split_once(' ').map_or(l, |(_, rest)| rest);
                l.rsplit_once(" (").map_or(l, |(sym, _)| sym)
            })
            .collect();
        let named = |list: &'static [(&str, &str)]| {
            list.iter()
                .find(|(pat, _)| frames.iter().any(|f| f.contains(pat)))
                .map(|(_, name)| *name)
        };
        // A stack the unwinder could not follow to its thread's start says what ran, not
        // always on whose behalf.
        let whole = frames
            .iter()
            .any(|f| f.contains("start_thread") || f.contains("clone3"));
        let s = match named(STAGES) {
            Some(name) if whole || !name.contains("stage not named") => name,
            _ if !whole => "unknown (stack cut short)",
            _ => "no frame of ours (kernel, threads)",
        };
        let o = named(OPERATIONS).unwrap_or("no frame of ours (kernel, libc, threads)");
        if !whole {
            cut += 1;
        }
        *stage.entry(s).or_default() += ns;
        *operation.entry(o).or_default() += ns;
        total += ns;
        samples += 1;
    }
    let rows = |m: HashMap<&str, f64>| {
        let mut v: Vec<(String, f64, f64)> = m
            .into_iter()
            .map(|(k, ns)| {
                (
                    k.to_owned(),
                    ns * 100.0 / total.max(1.0),
                    ns / 1e6 / messages.max(1) as f64,
                )
            })
            .collect();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v
    };
    Ok(Stacks {
        samples,
        cut,
        by_stage: rows(stage),
        by_operation: rows(operation),
    })
}

// ---------------------------------------------------------------------------------------------

fn machine() -> (String, String) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = Command::new("lscpu")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("Model name:").map(|m| m.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let openssl = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    (format!("{cores} cores ({model}), Linux {kernel}"), openssl)
}

async fn run(pg: &EmbeddedPostgres, root: &Path) -> anyhow::Result<()> {
    let started = Utc::now();
    let (machine, openssl_version) = machine();
    let postmaster = postmaster_pid(pg.data_dir());
    let hooks = Arc::new(Hooks::default());
    let hooks_addr = start_hooks(hooks.clone()).await?;
    let setup = Instant::now();
    let (a, b) = tokio::try_join!(
        Gateway::start(pg, "harbor", HARBOR, ADA, 92001, 92001, hooks_addr),
        Gateway::start(pg, "lakeside", LAKESIDE, BEN, 92002, 92002, hooks_addr),
    )?;
    a.connect_to(&b).await?;
    b.connect_to(&a).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&a.pool)
        .await?;
    println!(
        "machine: {machine}; PostgreSQL {version}; {openssl_version}; {}",
        started.format("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "gateways: A {HARBOR} (http {}, smtp {}), B {LAKESIDE} (http {}, smtp {}), in this process, job worker on ({} concurrent jobs each), each on its own database of one cluster; set up (CAs, provisioning, certificates, trust) in {:.1} s",
        a.base,
        a.smtp,
        b.base,
        b.smtp,
        a.state.config.jobs.concurrency,
        setup.elapsed().as_secs_f64()
    );

    let (ccda, sections, copies) = ccda::grown(CCDA_MIN_BYTES)?;
    let sender = Arc::new(Sender::new(&a, &ccda, hooks.clone())?);
    let (probe_id, probe) = sender.one().await;
    if let Err(e) = &probe.result {
        bail!("the probe message A → B did not reach DISPATCHED: {e}");
    }
    let mime_bytes: i64 =
        sqlx::query_scalar("SELECT size_bytes FROM messages WHERE vendor_message_id = $1")
            .bind(&probe_id)
            .fetch_one(&a.pool)
            .await?;
    println!(
        "payload: C-CDA {} bytes (ccd-2.xml with {copies} copies of its {sections} body sections), send request {} bytes, stored MIME {mime_bytes} bytes; probe A → B: accepted in {:.1} ms, DISPATCHED on A after {:.1} ms",
        ccda.len(),
        sender.prefix.len() + sender.suffix.len() + probe_id.len(),
        ms(probe.accepted),
        ms(probe.dispatched)
    );
    quiesce(&[&a, &b]).await?;

    let mut crypto_result = None;
    if wanted("crypto") {
        let inputs = crypto_inputs(&a, &b, &probe_id).await?;
        let dir = root.join("crypto");
        let r = tokio::task::spawn_blocking(move || crypto(&inputs, &dir)).await??;
        println!(
            "ours: seal (sign + encrypt) {:.2} ms CPU per message ({:.2} ms wall), {} bytes out; open (decrypt + verify) {:.2} ms; MDN seal {:.2} ms, MDN open {:.2} ms ({} rounds each, one thread)",
            ms(r.seal),
            ms(r.seal_wall),
            r.sealed_bytes,
            ms(r.open),
            ms(r.mdn_seal),
            ms(r.mdn_open),
            r.rounds
        );
        println!(
            "openssl cms: -sign | -encrypt {:.2} ms CPU per message ({:.2} ms measured per pipeline - 2 x {:.2} ms start-up of `openssl version`); -decrypt | -verify -noverify {:.2} ms ({:.2} ms - 2 x {:.2} ms) ({} rounds each)",
            ms(r.openssl_seal()),
            ms(r.openssl_seal_raw),
            ms(r.startup),
            ms(r.openssl_open()),
            ms(r.openssl_open_raw),
            ms(r.startup),
            r.openssl_rounds
        );
        println!(
            "ratio ours / openssl: seal {:.2}, open {:.2} (target <= {CPU_RATIO_TARGET})",
            r.seal.as_secs_f64() / r.openssl_seal().as_secs_f64().max(1e-9),
            r.open.as_secs_f64() / r.openssl_open().as_secs_f64().max(1e-9),
        );
        crypto_result = Some(r);
    }

    let mut runs = Vec::new();
    if wanted("e2e") {
        for c in CONCURRENCY {
            let (r, t0, t1) = closed_loop(&sender, c, measured(), postmaster, None).await?;
            println!(
                "e2e A → B, {c} concurrent senders, {} s: {:.1} messages/s DISPATCHED on A, send-to-DISPATCHED p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, send request p50 {:.1} ms, {} errors{}; {}",
                measured().as_secs(),
                r.rate,
                ms(r.p50),
                ms(r.p99),
                ms(r.max),
                ms(r.accepted_p50),
                r.errors,
                r.first_error
                    .as_deref()
                    .map_or(String::new(), |e| format!(" (first: {e})")),
                r.cpu
            );
            println!("{}", stages(&a, t0, t1).await?);
            println!("{}", stages(&b, t0, t1).await?);
            quiesce(&[&a, &b]).await?;
            runs.push((c, r));
        }
    }

    let mut profile = None;
    if wanted("perf") && std::env::var("TRANSPORT_PERF").map_or(true, |v| v != "0") {
        if perf_works() {
            let data = root.join("perf.data");
            let stacks = root.join("stacks.data");
            let (d, st) = (data.clone(), stacks.clone());
            // Two recordings of the same window: every process's samples without stacks, and
            // this process's with their call stacks (unwound from DWARF: release builds keep
            // no frame pointers, but keep their unwind tables).
            let start: Box<dyn FnOnce() -> Vec<std::process::Child> + Send> = Box::new(move || {
                let record = |args: &[&str], hz: u32, out: &Path| {
                    Command::new("perf")
                        .args(["record", "-q"])
                        .args(args)
                        .arg("-F")
                        .arg(hz.to_string())
                        .arg("-o")
                        .arg(out)
                        .args(["--", "sleep"])
                        .arg(PROFILED.as_secs().to_string())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("perf starts")
                };
                let me = std::process::id().to_string();
                vec![
                    record(&["-a"], PERF_HZ, &d),
                    record(&["-p", &me, "--call-graph", "dwarf,32768"], STACK_HZ, &st),
                ]
            });
            let c = CONCURRENCY[1];
            let (r, _, _) = closed_loop(&sender, c, PROFILED, postmaster, Some(start)).await?;
            quiesce(&[&a, &b]).await?;
            println!(
                "profiled window (perf record -a -F {PERF_HZ}), {c} concurrent, {} s: {:.1} messages/s, p50 {:.1} ms, p99 {:.1} ms, {} errors; {}",
                PROFILED.as_secs(),
                r.rate,
                ms(r.p50),
                ms(r.p99),
                r.errors,
                r.cpu
            );
            let p = read_profile(&data, r.messages)?;
            println!(
                "where the CPU went, ms per message and share of the busy samples (perf, every core):"
            );
            for (k, pct, per) in &p.rows {
                println!("  {per:7.2} ms  {pct:5.1}%  {k}");
            }
            println!("  this process, top symbols:");
            for (pct, s) in &p.top_ours {
                println!("    {pct:5.1}%  {s}");
            }
            println!("  PostgreSQL, top symbols:");
            for (pct, s) in &p.top_postgres {
                println!("    {pct:5.1}%  {s}");
            }
            let st = read_stacks(&stacks, r.messages)?;
            println!(
                "this process by stage (perf record -p --call-graph dwarf -F {STACK_HZ}, {} samples, {} of them with a stack cut short), ms per message and share:",
                st.samples, st.cut
            );
            for (k, pct, per) in &st.by_stage {
                println!("  {per:7.2} ms  {pct:5.1}%  {k}");
            }
            println!(
                "this process by operation (the first of a list of functions its stack names):"
            );
            for (k, pct, per) in &st.by_operation {
                println!("  {per:7.2} ms  {pct:5.1}%  {k}");
            }
            profile = Some((r, p, st));
        } else {
            println!("profile: perf is not available here (skipped)");
        }
    }
    println!("receiver: {}", hooks.counts());

    // The summary.
    println!("\nsummary (markdown):\n");
    println!(
        "Machine: {machine}, PostgreSQL {version}, {openssl_version}; {}. Both gateways in one process, each on its own database of one cluster.\n",
        started.format("%Y-%m-%d")
    );
    println!("| measurement | figure | target |");
    println!("|---|---|---|");
    for (c, r) in &runs {
        println!(
            "| A → B end to end, 100 KB C-CDA, {c} concurrent senders | {:.1} messages/s DISPATCHED; p50 {:.0} ms, p99 {:.0} ms; {} errors; CPU per message: process {:.1} ms, PostgreSQL {:.1} ms | >= {E2E_TARGET:.0}/s: {} |",
            r.rate,
            ms(r.p50),
            ms(r.p99),
            r.errors,
            r.process_ms,
            r.postgres_ms,
            if r.rate >= E2E_TARGET {
                "met"
            } else {
                "missed"
            }
        );
    }
    if let Some(r) = &crypto_result {
        let seal_ratio = r.seal.as_secs_f64() / r.openssl_seal().as_secs_f64().max(1e-9);
        let open_ratio = r.open.as_secs_f64() / r.openssl_open().as_secs_f64().max(1e-9);
        let verdict = |x: f64| {
            if x <= CPU_RATIO_TARGET {
                "met"
            } else {
                "missed"
            }
        };
        println!(
            "| seal (sign + encrypt) of the {mime_bytes} B MIME, CPU per message: ours / `openssl cms -sign \\| -encrypt` | {:.2} ms / {:.2} ms = {seal_ratio:.2} | <= {CPU_RATIO_TARGET}: {} |",
            ms(r.seal),
            ms(r.openssl_seal()),
            verdict(seal_ratio)
        );
        println!(
            "| open (decrypt + verify), CPU per message: ours / `openssl cms -decrypt \\| -verify` | {:.2} ms / {:.2} ms = {open_ratio:.2} | <= {CPU_RATIO_TARGET}: {} |",
            ms(r.open),
            ms(r.openssl_open()),
            verdict(open_ratio)
        );
        println!(
            "| MDN seal / open (ours) | {:.2} ms / {:.2} ms | |",
            ms(r.mdn_seal),
            ms(r.mdn_open)
        );
    }
    if let Some((r, p, st)) = &profile {
        let line = |rows: &[(String, f64, f64)], n: usize| {
            rows.iter()
                .take(n)
                .map(|(k, _, per)| format!("{k} {per:.1} ms"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        println!(
            "| CPU per message by process (perf -a, 32 concurrent, {:.0} messages/s under perf) | {} | |",
            r.rate,
            line(&p.rows, 6)
        );
        println!(
            "| this process's CPU per message by operation (perf call stacks) | {} | |",
            line(&st.by_operation, 8)
        );
    }

    a.stop().await?;
    b.stop().await?;
    Ok(())
}
