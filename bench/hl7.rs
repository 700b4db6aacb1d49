//! The HL7 v3 organization registry (issue 24): candidate queries per second over 100,000
//! organizations, and the cost of one add request end to end, each next to a baseline measured
//! in the same run.
//!
//! Run: `cargo bench --bench hl7` (release build, about a minute). It:
//! 1. starts its own durable PostgreSQL cluster (fsync on) in the temp folder, migrated;
//! 2. builds a gateway in this process (`App::build` + `App::run`, job worker off, log level
//!    warn, every other setting at its default) and a registry client (HTTP Basic; argon2 paid
//!    once, then cached as for any client);
//! 3. inserts 100,000 registry organizations in bulk (their verified organization, current
//!    row, first version and our registry id), with names `<prefix> <kind> <n>` over 20
//!    prefixes and 10 kinds (so "Good Home" names 500 of them), cities over 50, then ANALYZE;
//! 4. candidate queries: closed loops of 8 concurrent clients for 10 s each (after 2 s of
//!    warm-up) sending `PRPM_IN405010UV01` over HTTP (name prefix "Good Home", sorted by name,
//!    initialQuantity 20: 20 of 500 returned with their counts; then name contains "Home 1"
//!    and city "Springfield"), each answer checked for AA. Baseline, same loop shape: the plain
//!    SQL of the same prefix filter with its count and page (sqlx, no HTTP, no XML), and the
//!    `/healthz` round trip over HTTP;
//! 5. adds: 300 `PRPM_IN401030UV01` one after the other (an HTTP request, parse, a transaction
//!    writing the verified organization, the registry row, identifiers, the version, audit;
//!    no subscribers), p50/p99 latency; then 8 concurrent for 10 s, adds per second; baseline:
//!    the same count of sequential `/healthz` round trips.
//!
//! Knob: `HL7_SECONDS=3` shortens the measured windows (recorded runs use the default 10).

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hisp_gateway::app::App;
use hisp_gateway::config::{Config, Secret};
use hisp_gateway::domain::client::ClientKind;
use hisp_gateway::jobs::JobRegistry;
use hisp_gateway::service::{self, Actor};
use hisp_gateway::store::embedded::{EmbeddedOptions, EmbeddedPostgres};
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

const ORGS: i64 = 100_000;
const CONCURRENCY: usize = 8;
const ADDS: usize = 300;

fn main() -> anyhow::Result<()> {
    hisp_gateway::install_crypto_provider();
    let root = std::env::temp_dir().join(format!("hisp-gateway-bench-hl7-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))?;
    let mut pg = EmbeddedPostgres::start(&EmbeddedOptions {
        data_dir: root.join("pg"),
        bin_dir: Default::default(),
        throwaway: false,
    })?;
    let result = tokio::runtime::Runtime::new()?.block_on(run(&pg));
    pg.stop()?;
    let _ = std::fs::remove_dir_all(&root);
    result
}

fn config() -> Config {
    let mut c = Config::defaults();
    c.http.listen = "127.0.0.1:0".parse().unwrap();
    c.smtp.listen = "127.0.0.1:0".parse().unwrap();
    c.smtp.enabled = false;
    c.log.level = "warn".into();
    c.security.identity_hash_key = Secret::new("bench-identity-key-0123456789abcdef0123");
    c.ca.key_encryption_key = Secret::new("bench-key-encryption-key-0123456789abcdef");
    c
}

fn seconds() -> Duration {
    Duration::from_secs(
        std::env::var("HL7_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    )
}

fn header(interaction: &str, id: &str) -> String {
    format!(
        r#"<{interaction} xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="2.16.840.1.113883.19.5.2" extension="{id}"/><creationTime value="20261206120000"/><interactionId root="2.16.840.1.113883.1.6" extension="{interaction}"/><processingCode code="P"/><processingModeCode code="T"/><acceptAckCode code="AL"/><receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE"><id root="2.16.840.1.113883.3.9999.1"/></device></receiver><sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE"><id root="2.16.840.1.113883.19.5.1"/></device></sender>"#
    )
}

fn candidates(id: &str, name: &str, contains: bool, city: Option<&str>) -> String {
    let semantics = if contains {
        "<semanticsText>contains</semanticsText>"
    } else {
        ""
    };
    let addr = city.map_or(String::new(), |c| {
        format!("<providerAddress><value><city>{c}</city></value></providerAddress>")
    });
    format!(
        r#"{}<controlActProcess classCode="CACT" moodCode="EVN"><code code="PRPM_TE405010UV01" codeSystem="2.16.840.1.113883.1.18"/><queryByParameterPayload><queryId root="2.16.840.1.113883.19.5.9" extension="{id}"/><statusCode code="new"/><initialQuantity value="20"/><organizationName><value>{name}</value>{semantics}</organizationName>{addr}<sortControl><elementName>name</elementName><directionCode code="A"/></sortControl></queryByParameterPayload></controlActProcess></PRPM_IN405010UV01>"#,
        header("PRPM_IN405010UV01", id)
    )
}

fn add(id: &str, n: usize) -> String {
    format!(
        r#"{}<controlActProcess classCode="CACT" moodCode="EVN"><code code="PRPM_TE401010UV01" codeSystem="2.16.840.1.113883.1.18"/><subject typeCode="SUBJ"><registrationRequest classCode="REG" moodCode="RQO"><statusCode code="active"/><subject1 typeCode="SBJ"><assignedEntity classCode="ASSIGNED"><id root="2.16.840.1.113883.19.5.99" extension="BENCH-{n}"/><code code="PHARM" codeSystem="2.16.840.1.113883.5.111"/><name>Bench Pharmacy {n}</name><addr><streetAddressLine>{n} Main St</streetAddressLine><city>Ann Arbor</city><state>MI</state><postalCode>48104</postalCode></addr><telecom value="tel:+1-734-555-0100"/></assignedEntity></subject1><author typeCode="AUT"><assignedEntity classCode="ASSIGNED"><id root="2.16.840.1.113883.19.5.98" extension="registrar"/></assignedEntity></author></registrationRequest></subject></controlActProcess></PRPM_IN401030UV01>"#,
        header("PRPM_IN401030UV01", id)
    )
}

struct Loop {
    done: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Loop {
    fn per_second(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> f64 {
        let mut l = self.latencies.clone();
        l.sort();
        if l.is_empty() {
            return 0.0;
        }
        let i = ((l.len() as f64 - 1.0) * p).round() as usize;
        l[i].as_secs_f64() * 1000.0
    }
}

/// Runs `op` in `CONCURRENCY` closed loops: `warm` unmeasured, then `window` measured.
async fn closed_loop<F, Fut>(op: F, warm: Duration, window: Duration) -> Loop
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY {
        let (op, measuring, stop, counter) =
            (op.clone(), measuring.clone(), stop.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                op(w * 1_000_000 + i).await;
                i += 1;
                if measuring.load(Ordering::Relaxed) {
                    lat.push(t.elapsed());
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    tokio::time::sleep(warm).await;
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
    Loop {
        done: counter.load(Ordering::Relaxed),
        elapsed,
        latencies,
    }
}

fn report(name: &str, l: &Loop) {
    println!(
        "{name}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms ({} in {:.1} s, {CONCURRENCY} concurrent)",
        l.per_second(),
        l.pct(0.5),
        l.pct(0.99),
        l.done,
        l.elapsed.as_secs_f64()
    );
}

async fn run(pg: &EmbeddedPostgres) -> anyhow::Result<()> {
    pg.ensure_database("bench").await?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(pg.connect_options("bench"))
        .await?;
    hisp_gateway::store::MIGRATOR.run(&pool).await?;
    let app = App::build(config(), pool.clone(), JobRegistry::new()).await?;
    let base = format!("http://{}", app.local_addr());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone(), false));
    let client =
        service::clients::create(&pool, ClientKind::Registry, "bench registry", &Actor::cli())
            .await?;
    let (cid, secret) = (client.client.id, client.secret.clone());

    let t = Instant::now();
    populate(&pool).await?;
    println!(
        "populate: {ORGS} registry organizations in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let url = format!("{base}/hl7v3/organizations");
    let send = {
        let (http, url, secret) = (http.clone(), url.clone(), secret.clone());
        move |body: String| {
            let (http, url, secret) = (http.clone(), url.clone(), secret.clone());
            async move {
                let r = http
                    .post(&url)
                    .basic_auth(cid, Some(&secret))
                    .header("Content-Type", "application/hl7-v3+xml")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let text = r.text().await.unwrap();
                assert!(text.contains(r#"typeCode="AA""#), "{text}");
                text
            }
        }
    };
    // Check the shape once.
    let probe = send(candidates("probe", "Good Home", false, None)).await;
    assert!(
        probe.contains(r#"<resultTotalQuantity value="500"/>"#),
        "{probe}"
    );
    assert!(probe.contains(r#"<resultCurrentQuantity value="20"/>"#));

    let (warm, window) = (Duration::from_secs(2), seconds());
    let s = send.clone();
    let prefix = closed_loop(
        move |i| {
            let s = s.clone();
            async move {
                s(candidates(&format!("q{i}"), "Good Home", false, None)).await;
            }
        },
        warm,
        window,
    )
    .await;
    report(
        "candidates, name prefix \"Good Home\" (500 match), page of 20, over HTTP",
        &prefix,
    );
    let s = send.clone();
    let contains = closed_loop(
        move |i| {
            let s = s.clone();
            async move {
                s(candidates(
                    &format!("c{i}"),
                    "Home 1",
                    true,
                    Some("Springfield"),
                ))
                .await;
            }
        },
        warm,
        window,
    )
    .await;
    report(
        "candidates, name contains \"Home 1\" + city, page of 20, over HTTP",
        &contains,
    );
    let p = pool.clone();
    let sql = closed_loop(
        move |_| {
            let p = p.clone();
            async move {
                let rows: Vec<(i64, String, i64)> = sqlx::query_as(
                    "SELECT certified_id, name, count(*) OVER () FROM registry_organizations
                     WHERE lower(name) LIKE 'good home%' ORDER BY lower(name), certified_id LIMIT 20",
                )
                .fetch_all(&p)
                .await
                .unwrap();
                assert_eq!(rows.len(), 20);
            }
        },
        warm,
        window,
    )
    .await;
    report(
        "baseline: the same prefix filter as plain SQL (sqlx, no HTTP/XML)",
        &sql,
    );
    let (h, b) = (http.clone(), base.clone());
    let healthz = closed_loop(
        move |_| {
            let (h, b) = (h.clone(), b.clone());
            async move {
                let r = h.get(format!("{b}/healthz")).send().await.unwrap();
                assert!(r.status().is_success());
                r.bytes().await.unwrap();
            }
        },
        warm,
        window,
    )
    .await;
    report("baseline: GET /healthz round trip", &healthz);

    // Adds, one after the other.
    let mut lat = Vec::new();
    let t = Instant::now();
    for n in 0..ADDS {
        let t1 = Instant::now();
        send(add(&format!("a{n}"), n)).await;
        lat.push(t1.elapsed());
    }
    let seq = Loop {
        done: ADDS,
        elapsed: t.elapsed(),
        latencies: lat,
    };
    println!(
        "add (PRPM_IN401030UV01 -> 401031), sequential: p50 {:.2} ms, p99 {:.2} ms ({ADDS} adds, {:.0}/s)",
        seq.pct(0.5),
        seq.pct(0.99),
        seq.per_second()
    );
    let mut lat = Vec::new();
    for _ in 0..ADDS {
        let t1 = Instant::now();
        http.get(format!("{base}/healthz"))
            .send()
            .await?
            .bytes()
            .await?;
        lat.push(t1.elapsed());
    }
    let hz = Loop {
        done: ADDS,
        elapsed: Duration::from_secs(1),
        latencies: lat,
    };
    println!(
        "baseline: sequential GET /healthz: p50 {:.2} ms, p99 {:.2} ms",
        hz.pct(0.5),
        hz.pct(0.99)
    );
    let s = send.clone();
    let adds = closed_loop(
        move |i| {
            let s = s.clone();
            async move {
                s(add(&format!("b{i}"), 1_000_000 + i)).await;
            }
        },
        warm,
        window,
    )
    .await;
    report("add, concurrent", &adds);

    println!("\nmarkdown:");
    println!(
        "| candidates over 100,000 organizations, prefix (500 match, page of 20) | {:.0} queries/s, p50 {:.2} ms, p99 {:.2} ms; plain SQL of the same filter: {:.0}/s (ratio {:.2}); /healthz: {:.0}/s |",
        prefix.per_second(),
        prefix.pct(0.5),
        prefix.pct(0.99),
        sql.per_second(),
        prefix.per_second() / sql.per_second(),
        healthz.per_second()
    );
    println!(
        "| candidates, contains + city | {:.0} queries/s, p50 {:.2} ms, p99 {:.2} ms |",
        contains.per_second(),
        contains.pct(0.5),
        contains.pct(0.99)
    );
    println!(
        "| one add end to end | sequential p50 {:.2} ms, p99 {:.2} ms (/healthz p50 {:.2} ms: ratio {:.1}); {CONCURRENCY} concurrent: {:.0} adds/s, p99 {:.2} ms |",
        seq.pct(0.5),
        seq.pct(0.99),
        hz.pct(0.5),
        seq.pct(0.5) / hz.pct(0.5),
        adds.per_second(),
        adds.pct(0.99)
    );
    shutdown.cancel();
    server.await??;
    Ok(())
}

/// 100,000 registry organizations as the add path leaves them, in bulk.
async fn populate(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "CREATE TEMP TABLE bench_orgs ON COMMIT DROP AS
         SELECT g AS n, 5000000000 + g AS cid,
                (ARRAY['Good','Lake','River','Hill','North','South','East','West','Grand','Saint',
                       'Valley','Bay','Pine','Oak','Maple','Cedar','Harbor','Summit','Union','Liberty'])[1 + g % 20]
                || ' ' ||
                (ARRAY['Home Health','Hospital','Pharmacy','Clinic','Nursing Home','Cardiology',
                       'Pediatrics','Imaging','Dental','Physicians'])[1 + (g / 20) % 10]
                || ' ' || g AS name,
                'City' || (g % 50) AS city
         FROM generate_series(1, $1::bigint) g",
    )
    .bind(ORGS)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE bench_orgs SET city = 'Springfield' WHERE n % 50 = 7")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO verified_organizations (certified_id, name, state, city, zip, healthcare_provider, verified_at)
         SELECT cid, name, 'MI', city, '48104', true, now() FROM bench_orgs",
    )
    .execute(&mut *tx)
    .await?;
    let record = "jsonb_build_object('ids', '[]'::jsonb, 'name', name, 'code', NULL,
        'addrs', jsonb_build_array(jsonb_build_object('lines', jsonb_build_array(n || ' Main St'), 'city', city, 'state', 'MI', 'postal_code', '48104', 'country', '')),
        'telecoms', '[]'::jsonb, 'status_code', '', 'effective_from', '', 'effective_to', '', 'members', '[]'::jsonb)";
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO registry_organizations (certified_id, version, status, name, city, state, postal_code, street, record, created_at, updated_at)
         SELECT cid, 1, 'active', name, city, 'MI', '48104', n || ' Main St', {record}, now(), now() FROM bench_orgs"
    )))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO registry_versions (certified_id, version, status, change, record, actor, at)
         SELECT certified_id, 1, status, 'add', record, 'bench', now() FROM registry_organizations",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO registry_identifiers (root, extension, certified_id)
         SELECT $1, cid::text, cid FROM bench_orgs",
    )
    .bind(Config::defaults().hl7.registry_root_oid)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(())
}
