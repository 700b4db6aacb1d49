//! The hot path `POST /MessagingAPI/dirmsg/send_ccda`, end to end against the real release
//! binary, and the raw PostgreSQL ceiling for the same rows.
//!
//! Run: `cargo bench --bench send_ccda` (release build, about 9 minutes). It:
//! 1. starts its own durable PostgreSQL cluster (fsync on) in the temp folder, creates the
//!    database `bench` and migrates it;
//! 2. inserts with plain SQL a vendor client (argon2id secret), a reseller, an Activated
//!    organization with one active address `sender@bench.direct.example.org`, and the vendor's
//!    messaging grant on it. The recipient is an address on another HISP (not hosted here),
//!    the common case; the Direct transport is off (`GW_TRANSPORT__ENABLED=false`, see
//!    bench/transport.rs for it), so it stays SMTPINIT and only the `messaging.timeout` job
//!    is queued;
//! 3. runs the gateway binary Cargo builds for this bench (`CARGO_BIN_EXE_hisp-gateway`: the
//!    release build of `src/main.rs`, in target/release) as a child process with `serve`,
//!    `DATABASE_URL` on that database, listening on 127.0.0.1:0, log level warn, the messaging
//!    rate limit out of the way, a pool of 16 connections and its job worker running, as in
//!    production. Each measurement gets a fresh process that has answered one request (so the
//!    vendor's argon2id check is cached), and its peak RSS (VmHWM) is reset through
//!    /proc/<pid>/clear_refs before the load starts;
//! 4. sends two payloads, each request with its own messageId: a C-CDA of >= 100 KiB (the
//!    sections of tests/fixtures/ccda/ccd-2.xml repeated, checked with `xmllint --noout` when
//!    available) and a 2 KiB text attachment, both with the patient fields, xdm off;
//! 5. closed loop (reqwest, HTTP Basic, keep-alive) at 16 and 64 concurrent requests, 3 s
//!    warm-up then 15 s measured: accepted (200) req/s, p50/p99, errors, the server's peak RSS,
//!    CPU per request of server, PostgreSQL and client, WAL per request; then an open loop at
//!    half the best accepted rate for 60 s (fixed schedule; latency counted from the scheduled
//!    send time, so a stall is not hidden by coordinated omission), over at most 64
//!    connections, as the larger closed loop; it also reports how many requests were slow
//!    inside the gateway (its own `/metrics`) and how late the client started requests;
//! 6. the ceiling: `pgbench -n -M prepared -j 2 -T 15 -c 16/64 -f <script>` on the same
//!    cluster (as the postgres OS user when we are root) with two scripts that each write
//!    what one accepted send commits, the MIME copied from a helper table filled from a message
//!    the gateway accepted: bench/pg_ceiling.sql (a statement per row in one transaction) and
//!    bench/pg_ceiling_one_statement.sql (one statement per send; the gateway writes the
//!    sends that arrive together in one statement). Both run with generic plans, as the
//!    gateway's send connections do. The ceiling is the faster of the two;
//! 7. diagnostic: 64 simultaneous first requests on a cold server (argon2id cache empty);
//! 8. prints one line per measurement and a markdown summary, stops the server and the
//!    cluster and removes the temp folder.
//!
//! Before measuring, about 2.5 GiB of WAL is written and checkpointed, so that PostgreSQL has
//! old WAL segments to recycle, like a cluster in service.
//!
//! On a virtual machine whose kernel has free page reporting, the first line gives its
//! setting, and every measurement says how much free memory the kernel handed back to the
//! hypervisor in its window (where the kernel keeps that count). With it on, each new page the machine uses waits for the
//! hypervisor; on the machine BENCHMARKS.md records that set the C-CDA's open-loop p99.
//!
//! Every measurement line also gives the CPU per request of server, PostgreSQL and client,
//! WAL per request, checkpoints and autovacuum runs in the window, and what PostgreSQL's busy
//! backends were doing (pg_stat_activity sampled every 20 ms). The client runs in this
//! process: client, server and PostgreSQL share the machine's cores. The client keeps the
//! memory it frees, as the gateway does (`memory::keep_freed_memory`), so that its own page
//! faults do not add to the latency it measures.
//!
//! Knobs (for investigating; recorded results use none of them):
//! - `SEND_CCDA_SECONDS=5`: shorter closed-loop and pgbench windows (default 15);
//! - `SEND_CCDA_OPEN_SECONDS=15`: shorter open-loop windows (default 60);
//! - `SEND_CCDA_OPEN_WARMUP=15`: a longer open-loop warm-up (default 3 s), whose slow
//!   requests are still reported, by second;
//! - `SEND_CCDA_OPEN_PAUSE=15`: wait that long, idle, before starting the open loop's gateway;
//! - `SEND_CCDA_ONLY=text2k`: only the parts whose name contains the value (`ccda100k`,
//!   `text2k`, `cold`);
//! - `SEND_CCDA_STATEMENTS=1`: restart the cluster with pg_stat_statements and print, after
//!   each measurement, the statements that took the most time and how often they were
//!   planned (costs some throughput);
//! - `SEND_CCDA_FRESH_WAL=1`: skip the WAL warm-up, to see a brand-new cluster, which
//!   zero-fills each new 16 MiB WAL segment while commits wait;
//! - `SEND_CCDA_LATENCIES=FILE`: write each open-loop request's scheduled time (µs since the
//!   epoch), latency (µs), whether it was accepted, and how late the client started it (µs),
//!   a line each, warm-up included;
//! - `SEND_CCDA_OPEN_RATE=1000`: the open loop's rate, instead of half the best closed loop's;
//! - `SEND_CCDA_OPEN_CONNECTIONS=0`: the open loop opens a new connection whenever all are
//!   busy, instead of waiting for one of at most 64;
//! - `SEND_CCDA_PG="shared_buffers = '256MB'; bgwriter_delay = '10ms'"`: PostgreSQL settings
//!   to try, set with ALTER SYSTEM over the embedded cluster's own before the measurements.

#[path = "ccda.rs"]
mod ccda;

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
/// The target for p99 at half the maximum rate.
const P99_TARGET: Duration = Duration::from_millis(50);
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
    hisp_gateway::memory::keep_freed_memory();
    hisp_gateway::install_crypto_provider();
    let root = std::env::temp_dir().join(format!("hisp-gateway-send-ccda-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))?;
    let options = EmbeddedOptions {
        data_dir: root.join("pg"),
        bin_dir: Default::default(),
        throwaway: false,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let mut pg = EmbeddedPostgres::start(&options)?;
    let mut result = Ok(());
    let mut settings: Vec<String> = extra_settings();
    if statements_wanted() {
        // pg_stat_statements must be preloaded.
        settings.push("shared_preload_libraries = 'pg_stat_statements'".into());
    }
    if !settings.is_empty() {
        // Settings that only take effect at start: set them, then restart the cluster.
        result = runtime.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect_with(&pg.connect_options("postgres")).await?;
            for setting in &settings {
                // The operator typed these settings for their own throwaway cluster.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER SYSTEM SET {setting}")))
                    .execute(&mut c)
                    .await?;
            }
            c.close().await?;
            anyhow::Ok(())
        });
        pg.stop()?;
        pg = EmbeddedPostgres::start(&options)?;
    }
    if result.is_ok() {
        result = runtime.block_on(run(&pg, &root));
    }
    pg.stop()?;
    let _ = std::fs::remove_dir_all(&root);
    result
}

/// `SEND_CCDA_STATEMENTS=1`: also report, per gateway measurement, where PostgreSQL spent its
/// time statement by statement (pg_stat_statements; it costs a little throughput).
fn statements_wanted() -> bool {
    std::env::var("SEND_CCDA_STATEMENTS").is_ok_and(|v| v == "1")
}

/// `SEND_CCDA_PG="a = 1; b = 'x'"`: PostgreSQL settings to try, set with ALTER SYSTEM before
/// the measurements (the embedded cluster's own settings are in `store/embedded.rs`).
fn extra_settings() -> Vec<String> {
    std::env::var("SEND_CCDA_PG")
        .unwrap_or_default()
        .split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `SEND_CCDA_ONLY=text2k` runs only the parts whose name contains the value: the payloads
/// `ccda100k` and `text2k`, the diagnostic `cold`.
fn wanted(name: &str) -> bool {
    std::env::var("SEND_CCDA_ONLY").map_or(true, |only| name.contains(only.as_str()))
}

fn measured() -> Duration {
    seconds_from_env("SEND_CCDA_SECONDS", 15)
}

/// The open loop's window is longer: its p99 is what a sustained rate looks like, and in
/// 15 s a single stall of the disk's flushes (which this machine has every minute or so under
/// load, see the disk probe) decides it either way.
fn open_measured() -> Duration {
    seconds_from_env("SEND_CCDA_OPEN_SECONDS", 60)
}

/// The open loop's warm-up: requests at the measured rate whose latencies are reported apart.
fn open_warmup() -> Duration {
    seconds_from_env("SEND_CCDA_OPEN_WARMUP", WARMUP.as_secs())
}

/// Connections the open loop's client sends over at most (0: a new one whenever all are busy).
/// A request scheduled while all are busy waits in the client for one, and that wait counts
/// in its latency, which runs from the scheduled time. Bounded as the closed loops are (and
/// as a vendor's HTTP client is): without a bound, a 100 ms stall had the client open
/// hundreds of connections and push their bodies at once, and that work on the same cores
/// turned the stall into seconds (BENCHMARKS.md).
fn open_connections() -> usize {
    std::env::var("SEND_CCDA_OPEN_CONNECTIONS").map_or(CONCURRENCY[1], |s| {
        s.parse().unwrap_or_else(|_| {
            panic!("SEND_CCDA_OPEN_CONNECTIONS must be a whole number, not {s:?}")
        })
    })
}

/// Idle time before the open loop's gateway starts, after the closed loops.
fn open_pause() -> Duration {
    seconds_from_env("SEND_CCDA_OPEN_PAUSE", 0)
}

/// A knob in whole seconds; a value that is not one stops the bench rather than being ignored.
fn seconds_from_env(name: &str, default: u64) -> Duration {
    let secs = std::env::var(name).map_or(default, |s| {
        s.parse()
            .unwrap_or_else(|_| panic!("{name} must be whole seconds, not {s:?}"))
    });
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

    /// The size of a request body (with a messageId as long as the bench's).
    fn len(&self) -> usize {
        self.body(&format!("bench-{}-{}", self.name, Uuid::nil()))
            .len()
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
            // The recipient is at another HISP: with the Direct transport on, each send would
            // also be looked up in DNS and sealed, which is the transport bench's to measure.
            // This one measures accepting and committing, as its earlier figures did.
            .env("GW_TRANSPORT__ENABLED", "false")
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
    /// Backends serving connections.
    backends: f64,
    /// The postmaster and its other processes (WAL writer, checkpointer, autovacuum...), and
    /// every process that exited (a backend's time moves here when it exits).
    background: f64,
    client: f64,
    busy: f64,
    iowait: f64,
    total: f64,
    /// Free memory the kernel has handed back to the hypervisor so far (KiB), where the kernel
    /// says (free page reporting).
    reported_kib: Option<f64>,
}

/// The kernel's free page reporting, where it exists: a virtual machine's kernel tells the
/// hypervisor which memory is free, and the hypervisor takes it back. The next use of such
/// memory (a new page of PostgreSQL's file cache, say) waits for the hypervisor to hand it
/// back. On the bench's machine that was what held the C-CDA's open loop over its p99 target
/// (BENCHMARKS.md, seventh session), so every window says how much was handed back.
const PAGE_REPORTING: &str = "/sys/module/page_reporting/parameters";

fn reported_kib() -> Option<f64> {
    std::fs::read_to_string(format!("{PAGE_REPORTING}/reported_kib"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The kernel's free page reporting setting, for the bench's first line. The setting exists
/// wherever the kernel has the feature; memory goes back only where the hypervisor's balloon
/// device asks for reports, which the count of memory handed back shows where the kernel
/// keeps one.
fn page_reporting() -> String {
    let read = |name: &str| {
        std::fs::read_to_string(format!("{PAGE_REPORTING}/{name}"))
            .map(|v| v.trim().to_owned())
            .ok()
    };
    let so_far = reported_kib().map_or(String::new(), |kib| {
        format!(
            ", {:.0} GiB handed back since boot",
            kib / (1024.0 * 1024.0)
        )
    });
    match read("page_reporting_order").and_then(|o| o.parse::<u32>().ok()) {
        None => "free page reporting: not in this kernel".to_owned(),
        // The buddy allocator's largest order is 10: above it no free block qualifies.
        Some(order) if order > 10 => {
            format!("free page reporting: off (page_reporting_order {order}){so_far}")
        }
        Some(order) => format!(
            "free page reporting: page_reporting_order {order}: free blocks of {} KiB and more \
             go back to the hypervisor when its balloon device asks for them{so_far}",
            4u64 << order
        ),
    }
}

/// utime + stime of a process, in seconds (USER_HZ is 100 on Linux).
/// With `children`, plus the time of the children it has reaped (exited ones).
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

fn cpu_sample(server: i32, postmaster: i32) -> CpuSample {
    // Exited children (autovacuum workers, pgbench's backends) count through the postmaster.
    let (mut backends, mut background) = (0.0, proc_cpu(postmaster, true).map_or(0.0, |c| c.0));
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok())
                && let Some((cpu, ppid)) = proc_cpu(pid, false)
                && ppid == postmaster
            {
                // Backends set their title to "postgres: user database [local] state".
                let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&title).contains("[local]") {
                    backends += cpu;
                } else {
                    background += cpu;
                }
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
        server: proc_cpu(server, false).map_or(0.0, |c| c.0),
        backends,
        background,
        client: proc_cpu(std::process::id() as i32, false).map_or(0.0, |c| c.0),
        busy: (total - idle - iowait) / 100.0,
        iowait: iowait / 100.0,
        total: total / 100.0,
        reported_kib: reported_kib(),
    }
}

/// CPU per accepted request (ms) of server, PostgreSQL and client, and machine busy/iowait %.
fn cpu_line(a: CpuSample, b: CpuSample, accepted: usize) -> String {
    let per = |x: f64, y: f64| (y - x) * 1000.0 / accepted.max(1) as f64;
    let wall = (b.total - a.total).max(1e-9);
    let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    // Busy time none of them accounts for: other work on the machine (and kernel work not
    // charged to a process).
    let other = ((b.busy - a.busy)
        - (b.server - a.server)
        - (b.backends + b.background - a.backends - a.background)
        - (b.client - a.client))
        .max(0.0);
    let returned = match (a.reported_kib, b.reported_kib) {
        (Some(x), Some(y)) => format!(
            ", {:.0} MiB handed back to the hypervisor",
            (y - x) / 1024.0
        ),
        _ => String::new(),
    };
    format!(
        "cpu/request: server {:.2} ms, postgres {:.2} ms (backends {:.2}, background {:.2}), client {:.2} ms; cores busy {:.0}% (other processes {:.0}% of one core), iowait {:.0}%{returned}",
        per(a.server, b.server),
        per(a.backends + a.background, b.backends + b.background),
        per(a.backends, b.backends),
        per(a.background, b.background),
        per(a.client, b.client),
        (b.busy - a.busy) * 100.0 / wall,
        other * 100.0 / (wall / cores),
        (b.iowait - a.iowait) * 100.0 / wall,
    )
}

/// For pgbench: PostgreSQL's CPU per transaction (its backends have exited and count through
/// the postmaster) and the machine's (pgbench itself included).
fn machine_cpu_line(a: CpuSample, b: CpuSample, transactions: usize) -> String {
    let wall = (b.total - a.total).max(1e-9);
    let per = |x: f64| x * 1000.0 / transactions.max(1) as f64;
    format!(
        "cpu/transaction: postgres {:.2} ms, machine {:.2} ms; cores busy {:.0}%, iowait {:.0}%",
        per(b.backends + b.background - a.backends - a.background),
        per(b.busy - a.busy),
        (b.busy - a.busy) * 100.0 / wall,
        (b.iowait - a.iowait) * 100.0 / wall,
    )
}

/// Where to read CPU and WAL counters at the edges of a measured window, and what samples
/// PostgreSQL's wait events during it.
struct Probe<'a> {
    server: i32,
    postmaster: i32,
    pool: &'a PgPool,
    sampler: Mutex<Option<WaitSampler>>,
    waits: Mutex<Option<Waits>>,
}

struct WaitSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Waits>,
}

/// Samples taken, and how often each state was seen among the bench database's client
/// backends (the one sampling excluded).
#[derive(Default)]
struct Waits {
    samples: usize,
    seen: std::collections::BTreeMap<String, usize>,
    /// The sample with the most busy backends: when (UTC), and what they were doing.
    busiest: Option<(String, Vec<String>)>,
    /// By second since the window began: samples taken, and the states seen in them, to set
    /// beside the seconds in which requests were slow.
    by_second: std::collections::BTreeMap<u64, (usize, std::collections::BTreeMap<String, usize>)>,
}

const WAIT_SAMPLE_EVERY: Duration = Duration::from_millis(20);

type Sample = (CpuSample, DbSample);

impl<'a> Probe<'a> {
    fn new(server: i32, postmaster: i32, pool: &'a PgPool) -> Self {
        Self {
            server,
            postmaster,
            pool,
            sampler: Mutex::new(None),
            waits: Mutex::new(None),
        }
    }

    /// Counters at the start of a window; starts sampling wait events and resets
    /// pg_stat_statements when it is on.
    async fn begin(&self) -> Sample {
        if statements_wanted() {
            let _ = sqlx::query("SELECT pg_stat_statements_reset()")
                .execute(self.pool)
                .await;
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (pool, flag) = (self.pool.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut waits = Waits::default();
            let mut tick = tokio::time::interval(WAIT_SAMPLE_EVERY);
            let began = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                tick.tick().await;
                // Autovacuum workers are listed too, with the table they work on: their I/O
                // and CPU compete with the load.
                let states: Vec<String> = sqlx::query_scalar(
                    "SELECT CASE WHEN a.backend_type = 'autovacuum worker'
                                 THEN 'autovacuum ' || coalesce(v.relid::regclass::text, '?') || ' ' || coalesce(a.wait_event_type || ':' || a.wait_event, 'running (CPU)')
                                 WHEN a.state = 'active' THEN coalesce(a.wait_event_type || ':' || a.wait_event, 'running (CPU)')
                                 ELSE a.state END
                     FROM pg_stat_activity a LEFT JOIN pg_stat_progress_vacuum v ON v.pid = a.pid
                     WHERE (a.datname = current_database() AND a.backend_type = 'client backend'
                            AND a.pid <> pg_backend_pid() AND a.state <> 'idle')
                        OR a.backend_type = 'autovacuum worker'",
                )
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
                waits.samples += 1;
                let second = waits
                    .by_second
                    .entry(began.elapsed().as_secs())
                    .or_default();
                second.0 += 1;
                for state in &states {
                    *second.1.entry(state.clone()).or_default() += 1;
                }
                if states.len() > waits.busiest.as_ref().map_or(0, |(_, s)| s.len()) {
                    let at = chrono::Utc::now().format("%H:%M:%S%.3f").to_string();
                    waits.busiest = Some((at, states.clone()));
                }
                for state in states {
                    *waits.seen.entry(state).or_default() += 1;
                }
            }
            waits
        });
        *self.sampler.lock().expect("sampler lock") = Some(WaitSampler { stop, task });
        self.sample().await
    }

    /// Counters at the end of a window; stops the wait sampling.
    async fn end(&self) -> Sample {
        let sample = self.sample().await;
        let sampler = self.sampler.lock().expect("sampler lock").take();
        if let Some(sampler) = sampler {
            sampler.stop.store(true, Ordering::Relaxed);
            let waits = sampler.task.await.unwrap_or_default();
            *self.waits.lock().expect("waits lock") = Some(waits);
        }
        sample
    }

    /// What the busy backends were doing, on average over the window: how many were in each
    /// state at a sampled instant.
    fn waits(&self) -> String {
        let guard = self.waits.lock().expect("waits lock");
        let Some(w) = guard.as_ref().filter(|w| w.samples > 0) else {
            return "no wait samples".to_owned();
        };
        let mut seen: Vec<(&String, &usize)> = w.seen.iter().collect();
        seen.sort_by(|a, b| b.1.cmp(a.1));
        let busy: usize = w.seen.values().sum();
        let parts: Vec<String> = seen
            .iter()
            .take(6)
            .map(|(state, n)| format!("{state} {:.2}", **n as f64 / w.samples as f64))
            .collect();
        let busiest = w.busiest.as_ref().map_or(String::new(), |(at, states)| {
            let mut counts = std::collections::BTreeMap::<&str, usize>::new();
            for s in states {
                *counts.entry(s.as_str()).or_default() += 1;
            }
            let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
            format!("; busiest sample at {at}: {}", counts.join(", "))
        });
        format!(
            "backends not idle: {:.1} on average ({}){busiest}",
            busy as f64 / w.samples as f64,
            parts.join(", ")
        )
    }

    /// For the given seconds of the window (the slowest first): what the backends were doing
    /// in each, on average over its samples.
    fn waits_in(&self, seconds: &[u64]) -> String {
        let guard = self.waits.lock().expect("waits lock");
        let Some(w) = guard.as_ref() else {
            return String::new();
        };
        let mut out = String::new();
        for s in seconds {
            let Some((n, seen)) = w.by_second.get(s).filter(|(n, _)| *n > 0) else {
                continue;
            };
            let mut seen: Vec<(&String, &usize)> = seen.iter().collect();
            seen.sort_by(|a, b| b.1.cmp(a.1));
            let parts: Vec<String> = seen
                .iter()
                .take(6)
                .map(|(state, c)| format!("{state} {:.1}", **c as f64 / *n as f64))
                .collect();
            out.push_str(&format!("\n    second {s}: {}", parts.join(", ")));
        }
        out
    }

    /// With `SEND_CCDA_STATEMENTS=1`: the statements that took the most time in the window,
    /// as milliseconds per accepted request.
    async fn statements(&self, accepted: usize) -> String {
        if !statements_wanted() {
            return String::new();
        }
        let rows: Vec<(String, i64, f64, f64, i64, f64)> = sqlx::query_as(
            "SELECT regexp_replace(query, '\\s+', ' ', 'g'), calls, total_exec_time, mean_exec_time,
                    plans, mean_plan_time
             FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND query NOT LIKE '%pg_stat%'
             ORDER BY total_exec_time DESC LIMIT 8",
        )
        .fetch_all(self.pool)
        .await
        .unwrap_or_default();
        let mut out = String::new();
        for (query, calls, total, mean, plans, plan) in rows {
            let short: String = query.chars().take(70).collect();
            out.push_str(&format!(
                "\n    {:.3} ms/request, {calls} calls, mean {mean:.3} ms, {plans} plans of {plan:.3} ms: {short}",
                total / accepted.max(1) as f64
            ));
        }
        out
    }

    async fn sample(&self) -> Sample {
        let db = db_sample(self.pool).await.unwrap_or(DbSample {
            wal_bytes: f64::NAN,
            ..DbSample::default()
        });
        (cpu_sample(self.server, self.postmaster), db)
    }
}

struct Target {
    http: reqwest::Client,
    url: String,
    auth: String,
}

impl Target {
    /// From the gateway's own `/metrics`: send_ccda requests answered so far, and how many of
    /// them took longer than the p99 target inside the gateway (from routing to the answer).
    /// Set beside the client's count, it tells a stall inside the gateway or its database from
    /// one before the request reached the gateway (the client, the kernel).
    async fn served(&self) -> Option<(f64, f64)> {
        let url = self.url.replace(SEND_PATH, "/metrics");
        let text = self.http.get(url).send().await.ok()?.text().await.ok()?;
        let route = format!("route=\"{SEND_PATH}\"");
        let le = format!("le=\"{}\"", P99_TARGET.as_secs_f64());
        let (mut all, mut fast) = (0.0, 0.0);
        for line in text.lines().filter(|l| l.contains(&route)) {
            let value = || line.rsplit(' ').next()?.parse::<f64>().ok();
            if line.starts_with("gateway_http_request_duration_seconds_count") {
                all += value()?;
            } else if line.starts_with("gateway_http_request_duration_seconds_bucket")
                && line.contains(&le)
            {
                fast += value()?;
            }
        }
        Some((all, all - fast))
    }

    /// One send with a fresh messageId: whether it was accepted (200), and its status.
    async fn send(&self, payload: &Payload) -> Result<(), String> {
        // Random, as vendors' messageIds are (UUIDs), so their index takes random inserts as
        // it does in service and in the pgbench ceiling.
        let body = payload.body(&format!("bench-{}-{}", payload.name, Uuid::new_v4()));
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
    let pct = |q: f64| quantile(&lat, q);
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

/// The `q` quantile of durations sorted in ascending order (zero when there are none).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        Duration::ZERO
    } else {
        sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
    }
}

/// `concurrency` clients each sending the next request as soon as the last one is answered.
/// Counted: requests completed within the measured window (after the warm-up); the probe is
/// read at the window's edges.
async fn closed_loop(
    target: &Arc<Target>,
    payload: &Arc<Payload>,
    concurrency: usize,
    probe: &Probe<'_>,
) -> (RunResult, Sample, Sample) {
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
    tokio::time::sleep_until(from.into()).await;
    let s0 = probe.begin().await;
    tokio::time::sleep_until(until.into()).await;
    let s1 = probe.end().await;
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.expect("a client task panicked"));
    }
    (summarize(samples, window), s0, s1)
}

/// Requests sent on a fixed schedule of `rate` per second whatever the answers do; latency is
/// measured from each request's scheduled time. Counted: requests scheduled in the window.
/// Also returns the most requests in flight at once (within the window).
async fn open_loop(
    target: &Arc<Target>,
    payload: &Arc<Payload>,
    rate: f64,
    probe: &Probe<'_>,
) -> (RunResult, usize, String, Vec<u64>, Sample, Sample) {
    let window = open_measured();
    let start = Instant::now() + Duration::from_millis(50);
    let warmup = open_warmup();
    let from = start + warmup;
    let until = from + window;
    let count = ((warmup + window).as_secs_f64() * rate) as u64;
    let in_flight = Arc::new(AtomicU64::new(0));
    let max_in_flight = Arc::new(AtomicU64::new(0));
    let connections = match open_connections() {
        0 => None,
        n => Some(Arc::new(tokio::sync::Semaphore::new(n))),
    };
    let dispatcher = {
        let (target, payload) = (target.clone(), payload.clone());
        let (in_flight, max_in_flight) = (in_flight.clone(), max_in_flight.clone());
        tokio::spawn(async move {
            let mut tasks = Vec::with_capacity(count as usize);
            for i in 0..count {
                let at = start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
                let (target, payload) = (target.clone(), payload.clone());
                let (in_flight, max_in_flight) = (in_flight.clone(), max_in_flight.clone());
                let connections = connections.clone();
                tasks.push(tokio::spawn(async move {
                    // How late the client itself started this request: a stall of the
                    // client's own threads shows here, not in the gateway.
                    let lag = at.elapsed();
                    let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                    if at >= from {
                        max_in_flight.fetch_max(now, Ordering::Relaxed);
                    }
                    let _connection = match connections {
                        Some(c) => Some(c.acquire_owned().await.expect("never closed")),
                        None => None,
                    };
                    let r = target.send(&payload).await;
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                    (at, at.elapsed(), lag, r)
                }));
            }
            tasks
        })
    };
    tokio::time::sleep_until(from.into()).await;
    let served0 = target.served().await;
    let s0 = probe.begin().await;
    let started_at = chrono::Utc::now().format("%H:%M:%S%.3f");
    tokio::time::sleep_until(until.into()).await;
    let s1 = probe.end().await;
    let served1 = target.served().await;
    let mut samples = Vec::new();
    // When the requests slower than the p99 target were scheduled: second of the window.
    let mut slow_seconds = std::collections::BTreeMap::<u64, usize>::new();
    // The same for the warm-up, by its own second: what a freshly started gateway goes through.
    let mut slow_warming = std::collections::BTreeMap::<u64, usize>::new();
    let mut dump = std::env::var_os("SEND_CCDA_LATENCIES").map(|path| {
        std::io::BufWriter::new(
            std::fs::File::create(&path).expect("SEND_CCDA_LATENCIES names a file to write"),
        )
    });
    let wall_start = std::time::SystemTime::now() - start.elapsed();
    let mut lags = Vec::new();
    for t in dispatcher.await.expect("the dispatcher panicked") {
        let (at, lat, lag, r) = t.await.expect("a client task panicked");
        if let Some(out) = dump.as_mut() {
            use std::io::Write;
            let wall = wall_start + (at - start);
            let us = wall
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_micros();
            let _ = writeln!(
                out,
                "{us} {} {} {}",
                lat.as_micros(),
                r.is_ok(),
                lag.as_micros()
            );
        }
        if at < from && lat > P99_TARGET {
            *slow_warming.entry((at - start).as_secs()).or_default() += 1;
        }
        if at >= from && at < until {
            lags.push(lag);
            if lat > P99_TARGET {
                *slow_seconds.entry((at - from).as_secs()).or_default() += 1;
            }
            samples.push((lat, r));
        }
    }
    let slow: usize = slow_seconds.values().sum();
    let mut worst: Vec<(u64, usize)> = slow_seconds.iter().map(|(s, n)| (*s, *n)).collect();
    worst.sort_by_key(|w| std::cmp::Reverse(w.1));
    let worst: Vec<u64> = worst.into_iter().take(5).map(|(s, _)| s).collect();
    let by_second = |counts: &std::collections::BTreeMap<u64, usize>| {
        counts
            .iter()
            .map(|(s, n)| format!("{s}s:{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (spread, warming) = (by_second(&slow_seconds), by_second(&slow_warming));
    lags.sort();
    let inside = match (served0, served1) {
        (Some(a), Some(b)) => format!(
            "{:.0} of the {:.0} answered in the window took over {} ms inside the gateway",
            b.1 - a.1,
            b.0 - a.0,
            P99_TARGET.as_millis()
        ),
        _ => "the gateway's /metrics could not be read".to_owned(),
    };
    let where_slow = format!(
        "{inside}; the client started requests late by p99 {:.1} ms, max {:.1} ms",
        ms(quantile(&lags, 0.99)),
        ms(quantile(&lags, 1.0))
    );
    (
        summarize(samples, window),
        max_in_flight.load(Ordering::Relaxed) as usize,
        format!(
            "{slow} requests over {} ms, by second of the window (from {started_at} UTC): [{spread}] (in the {} s warm-up before it: [{warming}]); {where_slow}",
            P99_TARGET.as_millis(),
            warmup.as_secs()
        ),
        worst,
        s0,
        s1,
    )
}

/// Writes 8 KiB and fdatasyncs it every 10 ms in the cluster's folder (the disk PostgreSQL's
/// WAL flushes go to), from a thread of its own, so that a slow disk can be told from a slow
/// gateway when requests stall: each commit waits for a flush like this one.
struct DiskProbe {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(chrono::DateTime<chrono::Utc>, Duration)>>,
    path: PathBuf,
}

impl DiskProbe {
    fn start(dir: &Path) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let path = dir.join("bench_fsync_probe");
        let (flag, file_path) = (stop.clone(), path.clone());
        let thread = std::thread::spawn(move || {
            use std::io::{Seek, Write};
            let mut samples = Vec::new();
            let Ok(mut f) = std::fs::File::create(&file_path) else {
                return samples;
            };
            let block = vec![7u8; 8192];
            while !flag.load(Ordering::Relaxed) {
                let at = chrono::Utc::now();
                let t = Instant::now();
                let ok = f.seek(std::io::SeekFrom::Start(0)).is_ok()
                    && f.write_all(&block).is_ok()
                    && f.sync_data().is_ok();
                if ok {
                    samples.push((at, t.elapsed()));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            samples
        });
        Self { stop, thread, path }
    }

    fn stop(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let mut samples = self.thread.join().unwrap_or_default();
        let _ = std::fs::remove_file(&self.path);
        if samples.is_empty() {
            return "disk probe: no samples".to_owned();
        }
        let slow: Vec<String> = samples
            .iter()
            .filter(|(_, d)| *d > Duration::from_millis(20))
            .map(|(at, d)| format!("{} {:.0} ms", at.format("%H:%M:%S%.3f"), ms(*d)))
            .collect();
        let n = samples.len();
        samples.sort_by_key(|(_, d)| *d);
        format!(
            "disk probe (8 KiB write + fdatasync every 10 ms): {n} flushes, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; over 20 ms: [{}]",
            ms(samples[n / 2].1),
            ms(samples[(n * 99 / 100).min(n - 1)].1),
            ms(samples[n - 1].1),
            slow.join(", ")
        )
    }
}

/// The checkpoint lines PostgreSQL logged (log_checkpoints is on by default) after byte
/// `from` of its log: when each checkpoint ran and how long its writes and syncs took, to set
/// beside the seconds in which requests were slow.
fn checkpoint_lines(log: &Path, from: u64) -> Vec<String> {
    let Ok(text) = std::fs::read(log) else {
        return Vec::new();
    };
    let start = usize::try_from(from).unwrap_or(0).min(text.len());
    String::from_utf8_lossy(&text[start..])
        .lines()
        .filter(|l| l.contains("checkpoint"))
        .map(str::to_owned)
        .collect()
}

async fn message_count(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(pool)
        .await?)
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
    /// `clients` connections running `script` for the measured window: tps, transactions
    /// and average latency (ms).
    fn run(&self, clients: usize, kind: &str, script: &Path) -> anyhow::Result<(f64, usize, f64)> {
        let root = nix::unistd::Uid::effective().is_root();
        let mut cmd = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&self.program);
            c
        } else {
            Command::new(&self.program)
        };
        // Generic plans, as the gateway's send connections use, so the ceiling does not pay
        // for planning each call anew, which the gateway does not do.
        cmd.env("PGOPTIONS", "-c plan_cache_mode=force_generic_plan")
            .args(["-n", "-M", "prepared", "-j", "2"])
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
#[derive(Clone, Default)]
struct DbSample {
    wal_bytes: f64,
    fpi: i64,
    /// How far WAL was flushed (pg_walinspect reads no further), to find which relations took
    /// the full-page images.
    lsn: String,
    checkpoints: i64,
    /// Sessions opened on the bench database (new connections).
    sessions: i64,
    /// Finished autovacuum and autoanalyze runs, by table, and when the last of each ended
    /// (UTC time of day), to set beside the seconds in which requests were slow.
    autovacuum: std::collections::BTreeMap<String, (i64, String)>,
    /// Buffers written by the checkpointer, the background writer and the backends
    /// themselves: a backend that must write a dirty page before it can use a buffer waits
    /// for that write.
    buffers: (i64, i64, i64),
}

async fn db_sample(pool: &PgPool) -> anyhow::Result<DbSample> {
    let (wal_bytes, fpi, lsn): (f64, i64, String) = sqlx::query_as(
        "SELECT wal_bytes::float8, wal_fpi, pg_current_wal_flush_lsn()::text FROM pg_stat_wal",
    )
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
    // PostgreSQL 17 dropped buffers_backend (pg_stat_io has it); there the line shows zeros.
    let buffers: (i64, i64, i64) = sqlx::query_as(
        "SELECT buffers_checkpoint, buffers_clean, buffers_backend FROM pg_stat_bgwriter",
    )
    .fetch_one(pool)
    .await
    .unwrap_or_default();
    let sessions: i64 = sqlx::query_scalar(
        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?;
    let autovacuum = sqlx::query_as::<_, (String, i64, String)>(
        "SELECT relname::text, autovacuum_count + autoanalyze_count,
                concat_ws(' ', 'vacuum ended ' || to_char(last_autovacuum AT TIME ZONE 'UTC', 'HH24:MI:SS.MS'),
                               'analyze ended ' || to_char(last_autoanalyze AT TIME ZONE 'UTC', 'HH24:MI:SS.MS'))
         FROM pg_stat_user_tables",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(table, n, last)| (table, (n, last)))
    .collect();
    Ok(DbSample {
        wal_bytes,
        fpi,
        lsn,
        checkpoints,
        sessions,
        autovacuum,
        buffers,
    })
}

fn db_line(a: &DbSample, b: &DbSample, transactions: usize) -> String {
    let vacuumed: Vec<String> = b
        .autovacuum
        .iter()
        .filter_map(|(table, (n, last))| {
            let runs = n - a.autovacuum.get(table).map_or(0, |(n, _)| *n);
            (runs > 0).then(|| format!("{table} x{runs} (last {last})"))
        })
        .collect();
    format!(
        "WAL {:.1} KiB/request ({:.2} full-page images/request), {} checkpoints, buffers written by checkpointer/bgwriter/backends {}/{}/{}, {} new connections, autovacuum/analyze: {}",
        (b.wal_bytes - a.wal_bytes) / 1024.0 / transactions.max(1) as f64,
        (b.fpi - a.fpi) as f64 / transactions.max(1) as f64,
        b.checkpoints - a.checkpoints,
        b.buffers.0 - a.buffers.0,
        b.buffers.1 - a.buffers.1,
        b.buffers.2 - a.buffers.2,
        b.sessions - a.sessions,
        if vacuumed.is_empty() {
            "none".to_owned()
        } else {
            vacuumed.join(", ")
        }
    )
}

/// When a window wrote full-page images for more than one request in twenty: the relations
/// whose pages were logged whole, most first (pg_walinspect reads the window's WAL).
async fn fpi_note(pool: &PgPool, a: &DbSample, b: &DbSample, transactions: usize) -> String {
    if a.lsn.is_empty() || ((b.fpi - a.fpi) as f64) < 0.05 * transactions.max(1) as f64 {
        return String::new();
    }
    let rows: Result<Vec<(String, i64)>, _> = sqlx::query_as(
        "SELECT coalesce(pg_filenode_relation(0, m[1]::oid)::text, 'filenode ' || m[1]), count(*)
         FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn) r,
              regexp_matches(r.block_ref, 'rel \\d+/\\d+/(\\d+) fork \\w+ blk \\d+ \\(FPW', 'g') m
         GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
    )
    .bind(&a.lsn)
    .bind(&b.lsn)
    .fetch_all(pool)
    .await;
    match rows {
        Ok(rows) => format!(
            "  full-page images by relation: {}",
            rows.iter()
                .map(|(rel, n)| format!("{rel} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => format!("  full-page images by relation: unavailable ({e})"),
    }
}

fn print_nonempty(line: &str) {
    if !line.is_empty() {
        println!("{line}");
    }
}

/// What each measurement needs to start a gateway and talk to it.
struct Bench<'a> {
    root: &'a Path,
    database_url: String,
    auth: String,
    postmaster: i32,
    pool: &'a PgPool,
}

impl<'a> Bench<'a> {
    /// A fresh gateway that has verified the vendor's secret once (the argon2id result is
    /// cached), with its peak RSS reset: each measurement gets its own process and peak.
    async fn warm_start(&self, payload: &Payload) -> anyhow::Result<(Server, Arc<Target>)> {
        let (server, target) = self.start()?;
        target
            .send(payload)
            .await
            .map_err(|e| anyhow::anyhow!("warm-up send refused: {e}"))?;
        ensure!(
            server.reset_peak_rss(),
            "cannot reset the peak RSS through /proc/{}/clear_refs",
            server.pid()
        );
        Ok((server, target))
    }

    fn probe(&self, server: &Server) -> Probe<'a> {
        Probe::new(server.pid(), self.postmaster, self.pool)
    }

    /// A fresh gateway process.
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

/// A new cluster has no WAL segment files to reuse: each 16 MiB segment is created and
/// zero-filled when first needed, while commits wait (wait event IO:WALInitWrite). A cluster
/// that has been running recycles old segments at each checkpoint instead. So, like a cluster
/// in service: write about 2.5 GiB of WAL (more than one checkpoint's worth at the embedded
/// cluster's max_wal_size of 4GB), drop it, and checkpoint, leaving segments to recycle.
async fn warm_wal(pool: &PgPool) -> anyhow::Result<()> {
    let t = Instant::now();
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_ls_waldir()")
        .fetch_one(pool)
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE bench_wal_fill AS
             SELECT g, repeat(md5(g::text), 30) AS filler FROM generate_series(1, 2500000) g;
         DROP TABLE bench_wal_fill;
         CHECKPOINT;",
    )
    .execute(pool)
    .await?;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_ls_waldir()")
        .fetch_one(pool)
        .await?;
    println!(
        "WAL warm-up (about 2.5 GiB written, dropped, checkpointed) in {:.1} s: {before} -> {after} segment files in pg_wal",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Diagnostic: a fresh server hit by `concurrency` simultaneous requests of one vendor. Until
/// the first argon2id verification lands in the cache, every request verifies the secret.
async fn cold_start(
    bench: &Bench<'_>,
    payload: &Arc<Payload>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let (server, target) = bench.start()?;
    let probe = bench.probe(&server);
    server.reset_peak_rss();
    let s0 = probe.begin().await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (target, payload) = (target.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = target.send(&payload).await;
            (t.elapsed(), r)
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.push(t.await?);
    }
    let elapsed = started.elapsed();
    let s1 = probe.end().await;
    let r = summarize(samples, elapsed);
    let rss = server.peak_rss_mib();
    server.stop()?;
    println!(
        "cold start (diagnostic): {concurrency} simultaneous first requests of one vendor ({}) on a fresh server: p50 {:.1} ms, max {:.1} ms, {} errors, server peak RSS {rss:.1} MiB, server CPU {:.0} ms in all (one argon2id verify is about 22 ms)",
        payload.name,
        ms(r.p50),
        ms(r.max),
        r.errors,
        (s1.0.server - s0.0.server) * 1000.0,
    );
    Ok(())
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
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        .execute(&pool)
        .await?;
    if statements_wanted() {
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&pool)
            .await?;
        sqlx::raw_sql("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
            .execute(&pool)
            .await?;
        sqlx::query("SELECT pg_reload_conf()")
            .execute(&pool)
            .await?;
    }
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    let f = fixture(&pool).await?;

    let fixture_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ccda/ccd-2.xml");
    let (ccda, sections, copies) = ccda::grown(CCDA_MIN_BYTES)?;
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

    println!("{}", page_reporting());
    if std::env::var("SEND_CCDA_FRESH_WAL").is_ok_and(|v| v == "1") {
        println!("WAL: not warmed up (SEND_CCDA_FRESH_WAL=1): new segments are zero-filled");
    } else {
        warm_wal(&pool).await?;
    }

    let bench = Bench {
        root,
        database_url: format!("postgres://postgres@localhost/bench?host={socket_dir}&port=5432"),
        auth: format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", f.vendor, f.secret))
        ),
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
            // A copy keeps the source's compressed bytes; `|| ''` makes a plain value, which
            // the EXTERNAL column then stores as it is.
            let helper: i32 = sqlx::query_scalar(
                "UPDATE bench_payload SET mime = mime || ''::bytea WHERE kind = $1
                 RETURNING pg_column_size(mime)",
            )
            .bind(p.name)
            .fetch_one(&pool)
            .await?;
            let (mime, packed, stored, recipients, timeouts, delivers): (i64, i64, i32, String, i64, i64) =
                sqlx::query_as(
                    "SELECT m.size_bytes, octet_length(m.mime)::bigint, pg_column_size(m.mime),
                        (SELECT string_agg(status || '/' || route, ',') FROM message_recipients r WHERE r.message_id = m.id),
                        (SELECT count(*) FROM jobs j WHERE j.kind = 'messaging.timeout' AND j.payload->>'message_id' = m.id::text),
                        (SELECT count(*) FROM jobs j WHERE j.kind = 'messaging.deliver' AND j.payload->>'message_id' = m.id::text)
                     FROM messages m WHERE m.vendor_message_id LIKE $1 ORDER BY m.created_at DESC LIMIT 1",
                )
                .bind(&pattern)
                .fetch_one(&pool)
                .await?;
            println!(
                "payload {}: attachment {} B, request body {} B, MIME {} B ({} B packed with base64 bodies decoded, {} B stored after TOAST compression; {helper} B in pgbench's uncompressed helper row); recipient {}; jobs: {} messaging.timeout, {} messaging.deliver",
                p.name,
                p.attachment_bytes,
                p.len(),
                mime,
                packed,
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
    let one_statement = root.join("pg_ceiling_one_statement.sql");
    std::fs::write(&one_statement, include_str!("pg_ceiling_one_statement.sql"))?;
    std::fs::set_permissions(&one_statement, std::fs::Permissions::from_mode(0o644))?;
    let gateway_statement = root.join("pg_gateway_statement.sql");
    std::fs::write(&gateway_statement, include_str!("pg_gateway_statement.sql"))?;
    std::fs::set_permissions(&gateway_statement, std::fs::Permissions::from_mode(0o644))?;

    let mut rows = Vec::new();
    let mut open = Vec::new();
    let mut warnings = Vec::new();
    for p in payloads.iter().filter(|p| wanted(p.name)) {
        let mut best: f64 = 0.0;
        for &c in &CONCURRENCY {
            let (server, target) = bench.warm_start(p).await?;
            let probe = bench.probe(&server);
            let (r, s0, s1) = closed_loop(&target, p, c, &probe).await;
            let statements = probe.statements(r.accepted).await;
            let rss = server.peak_rss_mib();
            warnings.extend(server.log.lock().expect("log lock").iter().cloned());
            server.stop()?;
            println!(
                "send_ccda {} closed loop, {c} concurrent, {} s: {:.1} accepted/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} errors{}, server peak RSS {rss:.1} MiB; {}; {}; {}{statements}",
                p.name,
                measured().as_secs(),
                r.rate,
                ms(r.p50),
                ms(r.p99),
                ms(r.max),
                r.errors,
                error_note(&r),
                cpu_line(s0.0, s1.0, r.accepted),
                db_line(&s0.1, &s1.1, r.accepted),
                probe.waits(),
            );
            print_nonempty(&fpi_note(bench.pool, &s0.1, &s1.1, r.accepted).await);
            best = best.max(r.rate);
            rows.push(Row {
                payload: p.name,
                concurrency: c,
                run: r,
                rss,
                ceiling: f64::NAN,
            });
        }

        let (half, chosen) = match std::env::var("SEND_CCDA_OPEN_RATE") {
            Ok(rate) => (
                rate.parse::<f64>()
                    .context("SEND_CCDA_OPEN_RATE must be requests per second")?,
                "set by SEND_CCDA_OPEN_RATE".to_owned(),
            ),
            Err(_) => (best / 2.0, format!("half of {best:.1}")),
        };
        tokio::time::sleep(open_pause()).await;
        let (server, target) = bench.warm_start(p).await?;
        let probe = bench.probe(&server);
        let log = root.join("pg").join("server.log");
        let log_from = std::fs::metadata(&log).map_or(0, |m| m.len());
        let disk = DiskProbe::start(&root.join("pg"));
        let (r, max_in_flight, slow, worst, s0, s1) = open_loop(&target, p, half, &probe).await;
        let disk = disk.stop();
        let checkpoints = checkpoint_lines(&log, log_from);
        let statements = probe.statements(r.accepted).await;
        let rss = server.peak_rss_mib();
        warnings.extend(server.log.lock().expect("log lock").iter().cloned());
        server.stop()?;
        let links = match open_connections() {
            0 => "a new connection whenever all were busy".to_owned(),
            n => format!("over {n} connections at most"),
        };
        println!(
            "send_ccda {} open loop at {half:.1}/s ({chosen}), {} s: {:.1} accepted/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} errors{}, {max_in_flight} in flight at most ({links}), {slow}, server peak RSS {rss:.1} MiB; {}; {}; {}{statements}",
            p.name,
            open_measured().as_secs(),
            r.rate,
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
            r.errors,
            error_note(&r),
            cpu_line(s0.0, s1.0, r.accepted),
            db_line(&s0.1, &s1.1, r.accepted),
            probe.waits(),
        );
        print_nonempty(&fpi_note(bench.pool, &s0.1, &s1.1, r.accepted).await);
        let in_worst = probe.waits_in(&worst);
        if !in_worst.is_empty() {
            println!(
                "  the seconds with the most slow requests, what PostgreSQL was doing:{in_worst}"
            );
        }
        println!("  {disk}");
        for line in &checkpoints {
            println!("  PostgreSQL log: {line}");
        }
        open.push((p.name, half, r, rss));

        let probe = Probe::new(0, bench.postmaster, &pool);
        for (script, label) in [
            (
                &pgbench.script,
                "ceiling, a statement per row in one transaction",
            ),
            (&one_statement, "ceiling, one statement"),
            (&gateway_statement, "the gateway's statement (diagnostic)"),
        ] {
            for &c in &CONCURRENCY {
                // The last gateway's backends have exited (their CPU lands on the postmaster).
                tokio::time::sleep(Duration::from_secs(1)).await;
                let before = message_count(&pool).await?;
                let s0 = probe.begin().await;
                let (tps, n, latency) = pgbench.run(c, p.name, script)?;
                let s1 = probe.end().await;
                let written = message_count(&pool).await? - before;
                ensure!(
                    written >= n as i64,
                    "pgbench {label}: {n} transactions but {written} messages written"
                );
                let statements = probe.statements(n).await;
                println!(
                    "pgbench {} {label}, -c {c}, {} s: {tps:.1} tps ({written} messages written), average latency {latency:.1} ms; {}; {}; {}{statements}",
                    p.name,
                    measured().as_secs(),
                    machine_cpu_line(s0.0, s1.0, n),
                    db_line(&s0.1, &s1.1, n),
                    probe.waits(),
                );
                print_nonempty(&fpi_note(&pool, &s0.1, &s1.1, n).await);
                // The ceiling is the faster of the two ways to write the rows.
                if script != &gateway_statement
                    && let Some(row) = rows
                        .iter_mut()
                        .find(|r| r.payload == p.name && r.concurrency == c)
                {
                    row.ceiling = row.ceiling.max(tps);
                }
            }
        }
    }

    let (messages, timeouts, delivers, not_init, by_pgbench, by_gateway): (
        i64,
        i64,
        i64,
        i64,
        Option<f64>,
        Option<f64>,
    ) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages WHERE vendor_message_id LIKE 'bench-%'),
                (SELECT count(*) FROM jobs WHERE kind = 'messaging.timeout'),
                (SELECT count(*) FROM jobs WHERE kind = 'messaging.deliver'),
                (SELECT count(*) FROM message_recipients WHERE status <> 'SMTPINIT' OR route <> 'remote'),
                (SELECT avg(pg_column_size(mime))::float8 FROM messages
                 WHERE vendor_message_id NOT LIKE 'bench-%' AND size_bytes > 100000),
                (SELECT avg(pg_column_size(mime))::float8 FROM messages
                 WHERE vendor_message_id LIKE 'bench-%' AND size_bytes > 100000)",
    )
    .fetch_one(&pool)
    .await?;
    println!(
        "after the runs: {messages} messages accepted through HTTP; {timeouts} messaging.timeout jobs (pgbench's included), {delivers} messaging.deliver jobs, {not_init} recipients not SMTPINIT/remote; C-CDA MIME stored as {:.0} B on average by pgbench, {:.0} B by the gateway; {} server log lines at warn or above",
        by_pgbench.unwrap_or(f64::NAN),
        by_gateway.unwrap_or(f64::NAN),
        warnings.len()
    );
    for line in warnings.iter().take(5) {
        println!("  server log: {line}");
    }
    if wanted("cold") {
        cold_start(&bench, &payloads[1], 64).await?;
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
