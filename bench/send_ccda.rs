//! The hot path `POST /MessagingAPI/dirmsg/send_ccda`, end to end against the real release
//! binary, and the raw PostgreSQL ceiling for the same rows.
//!
//! Run: `cargo bench --bench send_ccda` (release build). It:
//! 1. starts its own durable PostgreSQL cluster (fsync on) in the temp folder, creates the
//!    database `bench` and migrates it;
//! 2. inserts with plain SQL a vendor client (argon2id secret), a reseller, an Activated
//!    organization with one active address `sender@bench.direct.example.org`, and the vendor's
//!    messaging grant on it. The recipient is an address on another HISP (not hosted here),
//!    the common case: it stays SMTPINIT and only the `messaging.timeout` job is queued;
//! 3. starts the gateway binary Cargo built for this bench (`CARGO_BIN_EXE_hisp-gateway`,
//!    the release build of `src/main.rs`) as a child process with `serve`, `DATABASE_URL` on
//!    that database, listening on 127.0.0.1:0, log level warn, the messaging rate limit out of
//!    the way, a pool of 16 connections and its job worker running, as in production;
//! 4. sends two payloads, each request with its own messageId: a C-CDA of >= 100 KiB (the
//!    sections of tests/fixtures/ccda/ccd-2.xml repeated, checked with `xmllint --noout` when
//!    available) and a 2 KiB text attachment, both with the patient fields, xdm off;
//! 5. closed loop (reqwest, HTTP Basic, keep-alive) at 16 and 64 concurrent requests, 3 s
//!    warm-up then 15 s measured: accepted (200) req/s, p50/p99, errors, the server's peak RSS
//!    (VmHWM, reset before each run through /proc/<pid>/clear_refs) and CPU per request;
//!    then an open loop at half the best accepted rate (fixed schedule; latency counted from
//!    the scheduled send time, so a stall is not hidden by coordinated omission);
//! 6. the ceiling: `pgbench -n -M prepared -T 15 -c 16/64 -f bench/pg_ceiling.sql` on the same
//!    cluster (as the postgres OS user when we are root), one transaction writing what one
//!    accepted send commits, with the MIME the gateway built taken from a helper table;
//! 7. prints one line per measurement and a summary, stops the server and the cluster and
//!    removes the temp folder.
//!
//! The client runs in this process: client, server and PostgreSQL share the machine's cores.
//! `SEND_CCDA_SECONDS=5` shortens the measured window (for a quick try; results use 15).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hisp_gateway::auth::secrets;
use hisp_gateway::store::embedded::{EmbeddedOptions, EmbeddedPostgres};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

const WARMUP: Duration = Duration::from_secs(3);
const CONCURRENCY: [usize; 2] = [16, 64];
/// The gateway's pool (`database.max_connections`), set explicitly; the default is 16 too.
const SERVER_POOL: u32 = 16;
const DOMAIN: &str = "bench.direct.example.org";
const SENDER: &str = "sender@bench.direct.example.org";
const RECIPIENT: &str = "dr.remote@partner-hisp.example.net";
const CCDA_MIN_BYTES: usize = 100 * 1024;
const SMALL_BYTES: usize = 2 * 1024;
const SEND_PATH: &str = "/MessagingAPI/dirmsg/send_ccda";

fn main() -> anyhow::Result<()> {
    hisp_gateway::install_crypto_provider();
    let root = std::env::temp_dir().join(format!("hisp-gateway-send-ccda-{}", std::process::id()));
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

fn measured() -> Duration {
    let secs = std::env::var("SEND_CCDA_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    Duration::from_secs(secs)
}

struct Fixture {
    vendor: Uuid,
    secret: String,
    organization: i64,
}

/// The rows a vendor needs to send from `SENDER`, inserted directly.
async fn fixture(pool: &PgPool) -> anyhow::Result<Fixture> {
    let reseller = Uuid::new_v4();
    let vendor = Uuid::new_v4();
    let secret = secrets::generate_secret();
    let reseller_hash = secrets::hash_secret_sync(&secrets::generate_secret())?;
    let vendor_hash = secrets::hash_secret_sync(&secret)?;
    sqlx::query(
        "INSERT INTO api_clients (id, kind, name, secret_hash)
         VALUES ($1, 'reseller', 'bench reseller', $2), ($3, 'vendor', 'bench vendor', $4)",
    )
    .bind(reseller)
    .bind(reseller_hash)
    .bind(vendor)
    .bind(vendor_hash)
    .execute(pool)
    .await?;
    let organization: i64 = sqlx::query_scalar(
        "INSERT INTO organizations (domain, name, status, certificate_category, offer_type, address_cap,
             reseller_id, service_start, service_expires)
         VALUES ($1, 'Bench Clinic', 'Activated', 'CoveredEntity', 'CDO5', 5, $2, current_date, current_date + 365)
         RETURNING id",
    )
    .bind(DOMAIN)
    .bind(reseller)
    .fetch_one(pool)
    .await?;
    let (user, domain) = SENDER.split_once('@').expect("an address");
    sqlx::query(
        "INSERT INTO direct_addresses (organization_id, username, domain, user_type, first_name, last_name, status)
         VALUES ($1, $2, $3, 'SMTP', 'Bea', 'Bench', 'active')",
    )
    .bind(organization)
    .bind(user)
    .bind(domain)
    .execute(pool)
    .await?;
    sqlx::query("INSERT INTO messaging_grants (client_id, organization_id) VALUES ($1, $2)")
        .bind(vendor)
        .bind(organization)
        .execute(pool)
        .await?;
    Ok(Fixture {
        vendor,
        secret,
        organization,
    })
}

/// ccd-2.xml with its section `<component>`s repeated inside structuredBody (cycling through
/// them in order) until the document is at least `min` bytes.
fn grown_ccda(min: usize) -> anyhow::Result<(Vec<u8>, usize, usize)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ccda/ccd-2.xml");
    let doc = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let open = doc
        .find("<structuredBody>")
        .context("no <structuredBody>")?
        + "<structuredBody>".len();
    let close = doc
        .find("</structuredBody>")
        .context("no </structuredBody>")?;
    let inner = &doc[open..close];
    // Top-level components of the body (each holds one section), by nesting depth.
    let mut sections = Vec::new();
    let (mut depth, mut start, mut i) = (0usize, 0usize, 0usize);
    while let Some(rel) = inner[i..].find("component") {
        let at = i + rel;
        if inner[..at].ends_with("</") {
            depth = depth.checked_sub(1).context("unbalanced </component>")?;
            if depth == 0 {
                let end = at + "component>".len();
                sections.push(&inner[start..end]);
            }
        } else if inner[..at].ends_with('<') {
            if depth == 0 {
                start = at - 1;
            }
            depth += 1;
        }
        i = at + "component".len();
    }
    ensure!(
        depth == 0 && !sections.is_empty(),
        "could not split the body into sections"
    );
    let mut out = String::with_capacity(min + doc.len());
    out.push_str(&doc[..close]);
    let mut n = 0;
    while out.len() + (doc.len() - close) < min {
        out.push_str("\t");
        out.push_str(sections[n % sections.len()]);
        out.push_str("\n\t\t");
        n += 1;
    }
    out.push_str(&doc[close..]);
    Ok((out.into_bytes(), sections.len(), n))
}

/// `xmllint --noout`, when it is installed.
fn check_well_formed(file: &Path) -> anyhow::Result<&'static str> {
    match Command::new("xmllint").arg("--noout").arg(file).output() {
        Ok(out) if out.status.success() => Ok("well-formed (xmllint --noout)"),
        Ok(out) => bail!(
            "the grown C-CDA is not well-formed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => Ok("not checked: xmllint is not installed"),
    }
}

/// A request body split around its messageId, so each request costs one copy, not a
/// serialization.
struct Payload {
    name: &'static str,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    attachment_bytes: usize,
}

impl Payload {
    fn new(name: &'static str, media_type: &str, title: &str, content: &[u8]) -> Self {
        let marker = "@@MESSAGE-ID@@";
        let body = json!({
            "fromDirectAddress": SENDER,
            "toDirectAddress": RECIPIENT,
            "emailAttachmentList": [
                {"attachmentClass": media_type, "attachmentContent": STANDARD.encode(content), "attachmentTitle": title}
            ],
            "messageBody": "Clinical Report for Patient Ralph Kramden. Please find attached clinical report",
            "messageId": marker,
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
            "xdm": false,
            "asmEnabled": true,
            "loincName": "Referral Note",
            "loincValue": "57133-1",
            "authorPerson": "Doctor",
            "authorInstitution": "Some Hospital^^^^^^^^^2.999.1.2.3.5.8.9.1789.45"
        })
        .to_string();
        let (prefix, suffix) = body.split_once(marker).expect("the marker is in the body");
        Self {
            name,
            prefix: prefix.as_bytes().to_vec(),
            suffix: suffix.as_bytes().to_vec(),
            attachment_bytes: content.len(),
        }
    }

    fn body(&self, message_id: &str) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.prefix.len() + message_id.len() + self.suffix.len());
        b.extend_from_slice(&self.prefix);
        b.extend_from_slice(message_id.as_bytes());
        b.extend_from_slice(&self.suffix);
        b
    }

    fn len(&self) -> usize {
        self.prefix.len() + self.suffix.len() + 20
    }
}

/// The gateway binary as a child process.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Log lines at warn or above (the level we run at), besides the start line.
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(root: &Path, database_url: &str) -> anyhow::Result<Self> {
        let bin = env!("CARGO_BIN_EXE_hisp-gateway");
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .current_dir(root)
            .env_remove("RUST_LOG")
            .env("DATABASE_URL", database_url)
            .env("GW_HTTP__LISTEN", "127.0.0.1:0")
            .env("GW_SMTP__LISTEN", "127.0.0.1:0")
            .env("GW_LOG__FORMAT", "json")
            // warn, except the one info line that says where it listens.
            .env("GW_LOG__LEVEL", "warn,hisp_gateway::cli=info")
            .env("GW_MESSAGING__RATE_PER_SECOND", "1000000")
            .env("GW_MESSAGING__RATE_BURST", "1000000")
            .env("GW_DATABASE__MAX_CONNECTIONS", SERVER_POOL.to_string())
            .env(
                "GW_SECURITY__IDENTITY_HASH_KEY",
                "bench-identity-key-0123456789abcdef0123",
            )
            .env(
                "GW_CA__KEY_ENCRYPTION_KEY",
                "bench-key-encryption-key-0123456789abcdef",
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("starting {bin}"))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            let (tx, log) = (tx.clone(), log.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                        && v["message"] == "http listening"
                        && let Some(addr) = v["addr"].as_str()
                    {
                        let _ = tx.send(addr.parse::<SocketAddr>().ok());
                        continue;
                    }
                    log.lock().expect("log lock").push(line);
                }
            });
        }
        match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(Some(addr)) => Ok(Self { child, addr, log }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "the gateway did not start listening:\n{}",
                    log.lock().expect("log lock").join("\n")
                )
            }
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Peak resident set size since the last reset, in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    /// Sets the peak back to the current RSS (Linux: `5` to clear_refs). False when refused.
    fn reset_peak_rss(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").is_ok()
    }

    /// SIGTERM, then wait for the graceful exit.
    fn stop(mut self) -> anyhow::Result<()> {
        kill(Pid::from_raw(self.pid()), Signal::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                ensure!(status.success(), "the gateway exited with {status}");
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("the gateway did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.pid()), Signal::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

/// CPU time of processes and of the machine, to see where a run spent its cores.
#[derive(Clone, Copy)]
struct CpuSample {
    server: f64,
    postgres: f64,
    client: f64,
    busy: f64,
    iowait: f64,
    total: f64,
}

/// utime + stime of a process, in seconds (USER_HZ is 100 on Linux).
fn proc_cpu(pid: i32) -> Option<(f64, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some((ticks / 100.0, ppid))
}

fn postmaster_pid(data_dir: &Path) -> i32 {
    std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0)
}

fn cpu_sample(server: i32, postmaster: i32) -> CpuSample {
    let mut postgres = proc_cpu(postmaster).map_or(0.0, |c| c.0);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok())
                && let Some((cpu, ppid)) = proc_cpu(pid)
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
    let idle = cpu.get(3).copied().unwrap_or(0.0);
    let iowait = cpu.get(4).copied().unwrap_or(0.0);
    CpuSample {
        server: proc_cpu(server).map_or(0.0, |c| c.0),
        postgres,
        client: proc_cpu(std::process::id() as i32).map_or(0.0, |c| c.0),
        busy: (total - idle - iowait) / 100.0,
        iowait: iowait / 100.0,
        total: total / 100.0,
    }
}

/// CPU per accepted request (ms) of server, PostgreSQL and client, and machine busy/iowait %.
fn cpu_line(a: CpuSample, b: CpuSample, accepted: usize) -> String {
    let per = |x: f64, y: f64| (y - x) * 1000.0 / accepted.max(1) as f64;
    let wall = (b.total - a.total).max(1e-9);
    format!(
        "cpu/request: server {:.2} ms, postgres {:.2} ms, client {:.2} ms; cores busy {:.0}%, iowait {:.0}%",
        per(a.server, b.server),
        per(a.postgres, b.postgres),
        per(a.client, b.client),
        (b.busy - a.busy) * 100.0 / wall,
        (b.iowait - a.iowait) * 100.0 / wall,
    )
}

struct Target {
    http: reqwest::Client,
    url: String,
    auth: String,
    ids: Arc<AtomicU64>,
}

impl Target {
    /// One send with a fresh messageId: whether it was accepted (200), and its status.
    async fn send(&self, payload: &Payload) -> Result<(), String> {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let body = payload.body(&format!("bench-{}-{n}", payload.name));
        let r = self
            .http
            .post(&self.url)
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = r.status();
        let text = r.bytes().await.map_err(|e| format!("transport: {e}"))?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&text)))
        }
    }
}

struct RunResult {
    accepted: usize,
    errors: usize,
    first_error: Option<String>,
    rate: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn summarize(mut samples: Vec<(Duration, Result<(), String>)>, window: Duration) -> RunResult {
    let errors = samples.iter().filter(|s| s.1.is_err()).count();
    let first_error = samples.iter().find_map(|s| s.1.clone().err());
    samples.sort_by_key(|s| s.0);
    let lat: Vec<Duration> = samples.iter().map(|s| s.0).collect();
    let pct = |q: f64| {
        if lat.is_empty() {
            Duration::ZERO
        } else {
            lat[((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1]
        }
    };
    let accepted = samples.len() - errors;
    RunResult {
        accepted,
        errors,
        first_error,
        rate: accepted as f64 / window.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        max: lat.last().copied().unwrap_or_default(),
    }
}

/// `concurrency` clients each sending the next request as soon as the last one is answered.
/// Counted: requests completed within the measured window (after the warm-up).
async fn closed_loop(
    target: &Arc<Target>,
    payload: &Arc<Payload>,
    concurrency: usize,
) -> RunResult {
    let window = measured();
    let from = Instant::now() + WARMUP;
    let until = from + window;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (target, payload) = (target.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                let r = target.send(&payload).await;
                let done = Instant::now();
                if done >= from && done < until {
                    out.push((done - t, r));
                }
            }
            out
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.expect("a client task panicked"));
    }
    summarize(samples, window)
}

/// Requests sent on a fixed schedule of `rate` per second whatever the answers do; latency is
/// measured from each request's scheduled time. Counted: requests scheduled in the window.
async fn open_loop(target: &Arc<Target>, payload: &Arc<Payload>, rate: f64) -> (RunResult, usize) {
    let window = measured();
    let start = Instant::now() + Duration::from_millis(50);
    let from = start + WARMUP;
    let count = ((WARMUP + window).as_secs_f64() * rate) as u64;
    let in_flight = Arc::new(AtomicU64::new(0));
    let max_in_flight = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(count as usize);
    for i in 0..count {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
        let (target, payload) = (target.clone(), payload.clone());
        let (in_flight, max_in_flight) = (in_flight.clone(), max_in_flight.clone());
        tasks.push(tokio::spawn(async move {
            let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
            max_in_flight.fetch_max(now, Ordering::Relaxed);
            let r = target.send(&payload).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            (at, at.elapsed(), r)
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        let (at, lat, r) = t.await.expect("a client task panicked");
        if at >= from {
            samples.push((lat, r));
        }
    }
    (
        summarize(samples, window),
        max_in_flight.load(Ordering::Relaxed) as usize,
    )
}

/// pgbench, or where Debian keeps it.
fn find_pgbench() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("pgbench").is_file() {
                return Ok(dir.join("pgbench"));
            }
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("bin/pgbench"))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .context("pgbench not found on PATH nor in /usr/lib/postgresql/*/bin")
}

struct Pgbench<'a> {
    program: PathBuf,
    script: PathBuf,
    socket_dir: String,
    fixture: &'a Fixture,
}

impl Pgbench<'_> {
    /// `clients` connections running `script` for the measured window:, transactions and average latency (ms).
    fn run(&self, clients: usize, kind: &str, script: &Path) -> anyhow::Result<(f64, usize, f64)> {
        let root = nix::unistd::Uid::effective().is_root();
        let mut cmd = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&self.program);
            c
        } else {
            Command::new(&self.program)
        };
        cmd.args(["-n", "-M", "prepared", "-j", "2"])
            .arg("-c")
            .arg(clients.to_string())
            .arg("-T")
            .arg(measured().as_secs().to_string())
            .arg("-f")
            .arg(script)
            .arg("-D")
            .arg(format!("client={}", self.fixture.vendor))
            .arg("-D")
            .arg(format!("org={}", self.fixture.organization))
            .arg("-D")
            .arg(format!("kind={kind}"))
            .args([
                "-h",
                &self.socket_dir,
                "-p",
                "5432",
                "-U",
                "postgres",
                "bench",
            ])
            .current_dir("/");
        let out = cmd.output().context("running pgbench")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success(),
            "pgbench failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.trim().strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        let tps = value("tps = ").context("no tps in pgbench's output")?;
        let latency = value("latency average = ").unwrap_or(f64::NAN);
        let done = value("number of transactions actually processed: ").unwrap_or(0.0) as usize;
        Ok((tps, done, latency))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// WAL written and checkpoints started, cluster-wide.
#[derive(Clone, Copy)]
struct DbSample {
    wal_bytes: f64,
    fpi: i64,
    checkpoints: i64,
}

async fn db_sample(pool: &PgPool) -> anyhow::Result<DbSample> {
    let (wal_bytes, fpi): (f64, i64) =
        sqlx::query_as("SELECT wal_bytes::float8, wal_fpi FROM pg_stat_wal")
            .fetch_one(pool)
            .await?;
    // PostgreSQL 17 moved the checkpoint counters to pg_stat_checkpointer.
    let checkpoints: i64 = match sqlx::query_scalar(
        "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter",
    )
    .fetch_one(pool)
    .await
    {
        Ok(n) => n,
        Err(_) => {
            sqlx::query_scalar("SELECT num_timed + num_requested FROM pg_stat_checkpointer")
                .fetch_one(pool)
                .await?
        }
    };
    Ok(DbSample {
        wal_bytes,
        fpi,
        checkpoints,
    })
}

fn db_line(a: DbSample, b: DbSample, transactions: usize) -> String {
    format!(
        "WAL {:.1} KiB/request ({:.2} full-page images/request), {} checkpoints",
        (b.wal_bytes - a.wal_bytes) / 1024.0 / transactions.max(1) as f64,
        (b.fpi - a.fpi) as f64 / transactions.max(1) as f64,
        b.checkpoints - a.checkpoints
    )
}

/// What each measurement needs to start a gateway and talk to it.
struct Bench<'a> {
    root: &'a Path,
    database_url: String,
    auth: String,
    ids: Arc<AtomicU64>,
    postmaster: i32,
    pool: &'a PgPool,
}

impl Bench<'_> {
    /// A fresh gateway process, so each measurement has its own peak RSS.
    fn start(&self) -> anyhow::Result<(Server, Arc<Target>)> {
        let server = Server::start(self.root, &self.database_url)?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(60))
            .build()?;
        let target = Arc::new(Target {
            http,
            url: format!("http://{}{SEND_PATH}", server.addr),
            auth: self.auth.clone(),
            ids: self.ids.clone(),
        });
        Ok((server, target))
    }
}

struct Row {
    payload: &'static str,
    concurrency: usize,
    run: RunResult,
    rss: f64,
    ceiling: f64,
}

fn error_note(r: &RunResult) -> String {
    r.first_error
        .as_deref()
        .map(|e| format!(" (first: {e})"))
        .unwrap_or_default()
}

async fn run(pg: &EmbeddedPostgres, root: &Path) -> anyhow::Result<()> {
    pg.ensure_database("bench").await?;
    let options = pg.connect_options("bench");
    let socket_dir = options
        .get_socket()
        .context("the embedded cluster listens on a socket")?
        .to_string_lossy()
        .into_owned();
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    hisp_gateway::store::MIGRATOR.run(&pool).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    let f = fixture(&pool).await?;

    let fixture_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ccda/ccd-2.xml");
    let (ccda, sections, copies) = grown_ccda(CCDA_MIN_BYTES)?;
    let ccda_file = root.join("ccda-100k.xml");
    std::fs::write(&ccda_file, &ccda)?;
    println!(
        "payload C-CDA: {} bytes (ccd-2.xml, {} bytes, with {copies} copies of its {sections} body sections added), {}",
        ccda.len(),
        std::fs::metadata(fixture_path)?.len(),
        check_well_formed(&ccda_file)?
    );
    let small: Vec<u8> =
        b"Referral note. The patient was seen today for follow-up; see the attached plan. "
            .iter()
            .copied()
            .cycle()
            .take(SMALL_BYTES)
            .collect();
    let payloads = [
        Arc::new(Payload::new(
            "ccda100k",
            "text/xml",
            "Continuity of Care Document",
            &ccda,
        )),
        Arc::new(Payload::new(
            "text2k",
            "text/plain",
            "Referral note",
            &small,
        )),
    ];

    let bench = Bench {
        root,
        database_url: format!("postgres://postgres@localhost/bench?host={socket_dir}&port=5432"),
        auth: format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", f.vendor, f.secret))
        ),
        ids: Arc::new(AtomicU64::new(0)),
        postmaster: postmaster_pid(pg.data_dir()),
        pool: &pool,
    };

    // One send of each payload: it must be accepted, and its row fills the helper table the
    // pgbench script copies from. The helper keeps the MIME uncompressed (storage EXTERNAL):
    // copied from a compressed column, PostgreSQL would reuse the compressed bytes and pgbench
    // would skip the compression the real insert pays.
    sqlx::query(
        "CREATE TABLE bench_payload AS SELECT ''::text AS kind, * FROM messages WITH NO DATA",
    )
    .execute(&pool)
    .await?;
    sqlx::query("ALTER TABLE bench_payload ALTER COLUMN mime SET STORAGE EXTERNAL")
        .execute(&pool)
        .await?;
    {
        let (server, target) = bench.start()?;
        println!(
            "gateway: {} serve (PostgreSQL {version}), pid {}, http://{}, pool {SERVER_POOL}, worker on, log warn, rate limit 1,000,000/s; restarted for each measurement",
            env!("CARGO_BIN_EXE_hisp-gateway"),
            server.pid(),
            server.addr
        );
        for p in &payloads {
            target
                .send(p)
                .await
                .map_err(|e| anyhow::anyhow!("probe send of {} refused: {e}", p.name))?;
            let pattern = format!("bench-{}-%", p.name);
            sqlx::query(
                "INSERT INTO bench_payload SELECT $1, * FROM messages WHERE vendor_message_id LIKE $2
                 ORDER BY created_at DESC LIMIT 1",
            )
            .bind(p.name)
            .bind(&pattern)
            .execute(&pool)
            .await?;
            let (mime, stored, recipients, timeouts, delivers): (i64, i32, String, i64, i64) =
                sqlx::query_as(
                    "SELECT octet_length(m.mime)::bigint, pg_column_size(m.mime),
                        (SELECT string_agg(status || '/' || route, ',') FROM message_recipients r WHERE r.message_id = m.id),
                        (SELECT count(*) FROM jobs j WHERE j.kind = 'messaging.timeout' AND j.payload->>'message_id' = m.id::text),
                        (SELECT count(*) FROM jobs j WHERE j.kind = 'messaging.deliver' AND j.payload->>'message_id' = m.id::text)
                     FROM messages m WHERE m.vendor_message_id LIKE $1 ORDER BY m.created_at DESC LIMIT 1",
                )
                .bind(&pattern)
                .fetch_one(&pool)
                .await?;
            println!(
                "payload {}: attachment {} B, request body {} B, MIME {} B ({} B stored after TOAST compression); recipient {}; jobs: {} messaging.timeout, {} messaging.deliver",
                p.name,
                p.attachment_bytes,
                p.len(),
                mime,
                stored,
                recipients,
                timeouts,
                delivers
            );
        }
        server.stop()?;
    }
    sqlx::query("CREATE UNIQUE INDEX ON bench_payload (kind)")
        .execute(&pool)
        .await?;

    let pgbench = Pgbench {
        program: find_pgbench()?,
        script: root.join("pg_ceiling.sql"),
        socket_dir: socket_dir.clone(),
        fixture: &f,
    };
    std::fs::write(&pgbench.script, include_str!("pg_ceiling.sql"))?;
    std::fs::set_permissions(&pgbench.script, std::fs::Permissions::from_mode(0o644))?;
    let no_notify = root.join("pg_ceiling_no_notify.sql");
    std::fs::write(
        &no_notify,
        include_str!("pg_ceiling.sql").replace("SELECT pg_notify('gateway_jobs', '');\n", ""),
    )?;
    std::fs::set_permissions(&no_notify, std::fs::Permissions::from_mode(0o644))?;

    let mut rows = Vec::new();
    let mut open = Vec::new();
    let mut warnings = Vec::new();
    for p in &payloads {
        let mut best: f64 = 0.0;
        for &c in &CONCURRENCY {
            let (server, target) = bench.start()?;
            let rss_reset = server.reset_peak_rss();
            let (cpu0, db0) = (
                cpu_sample(server.pid(), bench.postmaster),
                db_sample(bench.pool).await?,
            );
            let r = closed_loop(&target, p, c).await;
            let (cpu1, db1) = (
                cpu_sample(server.pid(), bench.postmaster),
                db_sample(bench.pool).await?,
            );
            let rss = server.peak_rss_mib();
            warnings.extend(server.log.lock().expect("log lock").iter().cloned());
            server.stop()?;
            println!(
                "send_ccda {} closed loop, {c} concurrent, {} s: {:.1} accepted/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} errors{}, server peak RSS {rss:.1} MiB{}; {}; {}",
                p.name,
                measured().as_secs(),
                r.rate,
                ms(r.p50),
                ms(r.p99),
                ms(r.max),
                r.errors,
                error_note(&r),
                if rss_reset { "" } else { " (since start)" },
                cpu_line(cpu0, cpu1, r.accepted),
                db_line(db0, db1, r.accepted),
            );
            best = best.max(r.rate);
            rows.push(Row {
                payload: p.name,
                concurrency: c,
                run: r,
                rss,
                ceiling: f64::NAN,
            });
        }

        let half = best / 2.0;
        let (server, target) = bench.start()?;
        server.reset_peak_rss();
        let (cpu0, db0) = (
            cpu_sample(server.pid(), bench.postmaster),
            db_sample(bench.pool).await?,
        );
        let (r, max_in_flight) = open_loop(&target, p, half).await;
        let (cpu1, db1) = (
            cpu_sample(server.pid(), bench.postmaster),
            db_sample(bench.pool).await?,
        );
        let rss = server.peak_rss_mib();
        warnings.extend(server.log.lock().expect("log lock").iter().cloned());
        server.stop()?;
        println!(
            "send_ccda {} open loop at {half:.1}/s (half of {best:.1}), {} s: {:.1} accepted/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} errors{}, {max_in_flight} in flight at most, server peak RSS {rss:.1} MiB; {}; {}",
            p.name,
            measured().as_secs(),
            r.rate,
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
            r.errors,
            error_note(&r),
            cpu_line(cpu0, cpu1, r.accepted),
            db_line(db0, db1, r.accepted),
        );
        open.push((p.name, half, r, rss));

        for &c in &CONCURRENCY {
            let (cpu0, db0) = (
                cpu_sample(0, bench.postmaster),
                db_sample(bench.pool).await?,
            );
            let (tps, n, latency) = pgbench.run(c, p.name, &pgbench.script)?;
            let (cpu1, db1) = (
                cpu_sample(0, bench.postmaster),
                db_sample(bench.pool).await?,
            );
            println!(
                "pgbench ceiling {} (message + recipient + timeout job + pg_notify, one commit), -c {c}, {} s: {tps:.1} tps, average latency {latency:.1} ms; {}; {}",
                p.name,
                measured().as_secs(),
                cpu_line(cpu0, cpu1, n),
                db_line(db0, db1, n),
            );
            if let Some(row) = rows
                .iter_mut()
                .find(|r| r.payload == p.name && r.concurrency == c)
            {
                row.ceiling = tps;
            }
        }
        for &c in &CONCURRENCY {
            let (tps, _, latency) = pgbench.run(c, p.name, &no_notify)?;
            println!(
                "pgbench {} without the pg_notify (diagnostic), -c {c}: {tps:.1} tps, average latency {latency:.1} ms",
                p.name
            );
        }
    }

    let (messages, timeouts, delivers, not_init, compressed): (i64, i64, i64, i64, Option<f64>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages WHERE vendor_message_id LIKE 'bench-%'),
                (SELECT count(*) FROM jobs WHERE kind = 'messaging.timeout'),
                (SELECT count(*) FROM jobs WHERE kind = 'messaging.deliver'),
                (SELECT count(*) FROM message_recipients WHERE status <> 'SMTPINIT' OR route <> 'remote'),
                (SELECT avg(pg_column_size(mime))::float8 FROM messages
                 WHERE vendor_message_id NOT LIKE 'bench-%' AND size_bytes > 100000)",
    )
    .fetch_one(&pool)
    .await?;
    println!(
        "after the runs: {messages} messages accepted through HTTP; {timeouts} messaging.timeout jobs (pgbench's included), {delivers} messaging.deliver jobs, {not_init} recipients not SMTPINIT/remote; pgbench's C-CDA MIME stored as {:.0} B on average (compressed like the gateway's); {} server log lines at warn or above",
        compressed.unwrap_or(f64::NAN),
        warnings.len()
    );
    for line in warnings.iter().take(5) {
        println!("  server log: {line}");
    }
    pool.close().await;

    println!("\nsummary (markdown):");
    println!(
        "| payload | concurrency | accepted req/s | p50 | p99 | errors | server peak RSS | pgbench ceiling tps | % of ceiling |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} | {:.1} ms | {:.1} ms | {} | {:.0} MiB | {:.0} | {:.0}% |",
            r.payload,
            r.concurrency,
            r.run.rate,
            ms(r.run.p50),
            ms(r.run.p99),
            r.run.errors,
            r.rss,
            r.ceiling,
            r.run.rate * 100.0 / r.ceiling
        );
    }
    for (name, rate, r, rss) in &open {
        println!(
            "| {name} | open loop at {rate:.0}/s | {:.0} | {:.1} ms | {:.1} ms | {} | {rss:.0} MiB | | |",
            r.rate,
            ms(r.p50),
            ms(r.p99),
            r.errors
        );
    }
    Ok(())
}
