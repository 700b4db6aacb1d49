//! Credentialing intake throughput: `POST /credentialing/webhooks` against the real release
//! binary, with `GET /healthz` measured the same way in the same run as the baseline.
//!
//! Run: `cargo bench --bench credentialing` (release build, about a minute). It starts its own
//! durable PostgreSQL cluster in the temp folder, migrates a database, imports one verified
//! individual and registers a source (argon2id secret) through the service layer, runs the
//! gateway binary (`serve`, log level warn, its job worker on), and then, closed loop over
//! keep-alive connections at 16 concurrent requests, 2 s warm-up and `CRED_SECONDS` (10)
//! measured:
//! 1. `GET /healthz` (the baseline: the HTTP stack alone);
//! 2. LicenseChanged events (about 3 KiB each, the spec's example shape, each with its own
//!    `X-TraceId`), spread over 1,000 providers: each is checked, redacted and committed with
//!    its processing job before the 200;
//! 3. the same delivery repeated (one `X-TraceId`): the duplicate path.
//!
//! After the second it waits until the server's worker has processed every stored event and reports that
//! rate too (events whose provider is unlinked still get their facts). It prints one line per
//! measurement and the ratio of each to the baseline.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use hisp_gateway::service::{Actor, credentialing};
use hisp_gateway::store::embedded::{EmbeddedOptions, EmbeddedPostgres};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

const CONCURRENCY: usize = 16;
const WARMUP: Duration = Duration::from_secs(2);
const PROVIDERS: usize = 1000;
const SECRET: &str = "bench-credentialing-secret-0123456789";

fn seconds() -> Duration {
    Duration::from_secs(
        std::env::var("CRED_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    )
}

fn main() -> anyhow::Result<()> {
    hisp_gateway::install_crypto_provider();
    let root = std::env::temp_dir().join(format!("hisp-gateway-cred-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))?;
    let options = EmbeddedOptions {
        data_dir: root.join("pg"),
        bin_dir: Default::default(),
        throwaway: false,
    };
    let mut pg = EmbeddedPostgres::start(&options)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(run(&pg));
    pg.stop()?;
    let _ = std::fs::remove_dir_all(&root);
    result
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(database_url: &str) -> anyhow::Result<Server> {
    let bin = env!("CARGO_BIN_EXE_hisp-gateway");
    let mut child = Command::new(bin)
        .arg("serve")
        .env_remove("RUST_LOG")
        .env("DATABASE_URL", database_url)
        .env("GW_HTTP__LISTEN", "127.0.0.1:0")
        .env("GW_SMTP__LISTEN", "127.0.0.1:0")
        .env("GW_TRANSPORT__ENABLED", "false")
        .env("GW_LOG__FORMAT", "json")
        .env("GW_LOG__LEVEL", "warn,hisp_gateway::cli=info")
        .env(
            "GW_SECURITY__IDENTITY_HASH_KEY",
            "bench-identity-key-0123456789abcdef0123",
        )
        .env(
            "GW_CA__KEY_ENCRYPTION_KEY",
            "bench-key-encryption-key-0123456789abcdef",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {bin}"))?;
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "http listening"
                && let Some(addr) = v["addr"].as_str()
            {
                let _ = tx.send(addr.parse::<SocketAddr>().ok());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(90)) {
        Ok(Some(addr)) => Ok(Server { child, addr }),
        _ => {
            let _ = child.kill();
            bail!("the gateway did not start listening")
        }
    }
}

fn license(provider: Uuid) -> Value {
    let now = Utc::now();
    json!({
        "providerId": provider, "licenseNumber": "25MA09876500", "firstName": "Ada", "lastName": "Stone",
        "state": "NJ", "jobStatus": "Idle",
        "nonVerifiedInfo": {"issueDate": "2019-08-24T14:15:22Z", "expirationDate": "2029-08-24T14:15:22Z", "status": "Active"},
        "currentVerificationStatus": "Found",
        "currentVerification": {
            "originalStatus": "Found", "status": "Found", "trigger": "Monitor", "started": now.to_rfc3339(),
            "processingTime": 1200,
            "results": [{"name": "ADA STONE", "licenseType": "Medical Doctor", "licenseStatus": "Active",
                "licenseNumber": "25MA09876500", "address": "10 Main St, Trenton NJ",
                "issued": "2019-08-24T14:15:22Z", "expires": "2029-08-24T14:15:22Z",
                "screenshots": ["iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="],
                "attachments": [], "disciplinaryActions": null, "additionalProperties": null, "problems": []}],
            "additionalVerificationParameters": [{"type": "Ssn", "ssn": "078-05-1111"}, {"type": "DateOfBirth", "dateOfBirth": "1975-03-02"}],
            "correctResultIndex": 0, "export": "https://exports.example.org/license.pdf", "exportSuccess": true, "id": Uuid::new_v4()
        },
        "restrictionStatus": "None", "approvedStatus": "Yes", "isPrimary": true, "id": Uuid::new_v4(),
        "isCurrentlyPracticing": true, "prescriptiveAuthority": "NotRequired"
    })
}

#[derive(Clone, Copy)]
enum Load {
    Healthz,
    Events,
    Duplicates,
}

struct Outcome {
    ok: u64,
    failed: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn closed_loop(
    http: &reqwest::Client,
    base: &str,
    webhook_id: Uuid,
    load: Load,
    window: Duration,
) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..PROVIDERS)
            .map(|_| serde_json::to_vec(&license(Uuid::new_v4())).unwrap())
            .collect(),
    );
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let (http, base, stop, measuring, ok, failed, bodies) = (
            http.clone(),
            base.to_owned(),
            stop.clone(),
            measuring.clone(),
            ok.clone(),
            failed.clone(),
            bodies.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = worker;
            while !stop.load(Ordering::Relaxed) {
                n += CONCURRENCY;
                let started = Instant::now();
                let req = match load {
                    Load::Healthz => http.get(format!("{base}/healthz")),
                    Load::Events | Load::Duplicates => {
                        let trace = match load {
                            Load::Duplicates => "the-same-trace".to_owned(),
                            _ => Uuid::new_v4().to_string(),
                        };
                        http.post(format!("{base}/credentialing/webhooks"))
                            .header("X-WebhookType", "LicenseChanged")
                            .header("X-WebhookId", webhook_id.to_string())
                            .header("X-Secret", SECRET)
                            .header("X-TraceId", trace)
                            .header("content-type", "application/json")
                            .body(bodies[n % bodies.len()].clone())
                    }
                };
                let good = matches!(req.send().await, Ok(r) if r.status() == 200);
                if measuring.load(Ordering::Relaxed) {
                    latencies.push(started.elapsed());
                    if good {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(WARMUP).await;
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(window).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    latencies.sort();
    Outcome {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed,
        latencies,
    }
}

fn pct(l: &[Duration], p: f64) -> f64 {
    if l.is_empty() {
        return f64::NAN;
    }
    let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1;
    l[i].as_secs_f64() * 1000.0
}

async fn run(pg: &EmbeddedPostgres) -> anyhow::Result<()> {
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
    let webhook_id = Uuid::new_v4();
    credentialing::register_source(
        &pool,
        "bench",
        &webhook_id.to_string(),
        Some(SECRET),
        &[],
        &Actor::cli(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let url = format!("postgres://postgres@localhost/bench?host={socket_dir}&port=5432");
    let server = start_server(&url)?;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    let window = seconds();
    let mut rates = Vec::new();
    for (name, load) in [
        ("GET /healthz (baseline)", Load::Healthz),
        ("POST /credentialing/webhooks, new events", Load::Events),
        (
            "POST /credentialing/webhooks, one repeated X-TraceId",
            Load::Duplicates,
        ),
    ] {
        let before: i64 = sqlx::query_scalar("SELECT count(*) FROM credentialing_events")
            .fetch_one(&pool)
            .await?;
        let o = closed_loop(&http, &base, webhook_id, load, window).await;
        let rate = o.ok as f64 / o.elapsed.as_secs_f64();
        rates.push(rate);
        println!(
            "{name}: {rate:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} failed, {CONCURRENCY} concurrent, {:.0} s",
            pct(&o.latencies, 0.50),
            pct(&o.latencies, 0.99),
            o.failed,
            o.elapsed.as_secs_f64()
        );
        if let Load::Events = load {
            // The worker keeps processing what was stored: time it until none is left.
            let start = Instant::now();
            let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM credentialing_events")
                .fetch_one(&pool)
                .await?;
            let waiting_at_start: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM credentialing_events WHERE processed_at IS NULL",
            )
            .fetch_one(&pool)
            .await?;
            loop {
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM credentialing_events WHERE processed_at IS NULL",
                )
                .fetch_one(&pool)
                .await?;
                if waiting == 0 {
                    break;
                }
                if start.elapsed() > Duration::from_secs(600) {
                    bail!("{waiting} events still unprocessed after 10 minutes");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let (first, last): (chrono::DateTime<Utc>, chrono::DateTime<Utc>) = sqlx::query_as(
                "SELECT min(received_at), max(processed_at) FROM credentialing_events",
            )
            .fetch_one(&pool)
            .await?;
            let span = (last - first).num_milliseconds() as f64 / 1000.0;
            println!(
                "  stored {} events ({} this window); {} were waiting when the window ended; all processed {:.1} s after the first arrived: {:.0} events/s processed",
                stored,
                stored - before,
                waiting_at_start,
                span,
                stored as f64 / span
            );
        }
    }
    println!(
        "ratio to /healthz: new events {:.2}, repeated trace {:.2}",
        rates[1] / rates[0],
        rates[2] / rates[0]
    );
    drop(server);
    Ok(())
}
