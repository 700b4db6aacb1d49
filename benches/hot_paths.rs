//! Hot paths, measured end to end on a real PostgreSQL:
//! - an authenticated API request (`GET /api/v1/whoami`, Basic auth, cached argon2 result),
//! - the first request of a client (full argon2id verification),
//! - the outbox: enqueueing jobs, and running them with one and with two workers, and in
//!   chains (the notifications of one recipient),
//! - the pull mailbox: a vendor's listing among 100,000 waiting messages, and the status
//!   change of an acknowledgement with its notification,
//! - the CA: issuing Direct certificates through the outbox, and signing large CRLs,
//! - the SOAP Organization Registration service: ListProvisionedOrganizations over 10,000
//!   organizations and ProvisionCertifiedProvider calls per second;
//! - the fingerprint of a C-CDA send request (idempotency), in both stored versions.
//!
//! Run: `cargo bench --bench hot_paths` (release build; starts its own durable cluster in the
//! temp folder and stops it at the end); `HOT_PATHS=soap cargo bench --bench hot_paths` runs
//! only the sections whose name contains "soap". Results go in BENCHMARKS.md.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use chrono::Utc;
use hisp_gateway::app::App;
use hisp_gateway::auth::secrets;
use hisp_gateway::ca;
use hisp_gateway::config::{Config, Secret};
use hisp_gateway::domain::client::ClientKind;
use hisp_gateway::jobs::{self, JobRegistry, Worker};
use hisp_gateway::service::{self, Actor, pki};
use hisp_gateway::store;
use hisp_gateway::store::embedded::{EmbeddedOptions, EmbeddedPostgres};
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 32;
const JOBS: usize = 5_000;

fn main() -> anyhow::Result<()> {
    hisp_gateway::install_crypto_provider();
    let root = std::env::temp_dir().join(format!("hisp-gateway-bench-{}", std::process::id()));
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

async fn run(pg: &EmbeddedPostgres) -> anyhow::Result<()> {
    pg.ensure_database("bench").await?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(pg.connect_options("bench"))
        .await?;
    hisp_gateway::store::MIGRATOR.run(&pool).await?;

    let only = std::env::var("HOT_PATHS").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || name.contains(only.as_str());
    if wanted("argon2") {
        argon2_cost();
    }
    if wanted("fingerprint") {
        request_fingerprint()?;
    }
    if wanted("whoami") {
        authenticated_requests(pool.clone()).await?;
    }
    if wanted("outbox") {
        outbox(pool.clone(), pg).await?;
    }
    if wanted("mailbox") {
        mailbox(pool.clone()).await?;
    }
    if wanted("certificates") {
        certificates(pool.clone()).await?;
    }
    if wanted("soap") {
        soap_registration(pool).await?;
    }
    Ok(())
}

const SOAP_NS: &str = hisp_gateway::soap::NS;

fn soap12(op: &str, inner: &str) -> String {
    format!(
        r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:r="{SOAP_NS}"><e:Body><r:{op}>{inner}</r:{op}></e:Body></e:Envelope>"#
    )
}

/// Text of the first `<name>` element in a response.
fn first<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let start = xml.find(&open).map(|i| i + open.len()).unwrap_or(0);
    let end = xml[start..].find('<').map_or(start, |i| start + i);
    &xml[start..end]
}

async fn soap_registration(pool: sqlx::PgPool) -> anyhow::Result<()> {
    const ORGS: i64 = 10_000;
    const PROVISIONS: usize = 400;
    const PROVISION_CONCURRENCY: usize = 8;
    let app = App::build(bench_config(), pool.clone(), JobRegistry::new()).await?;
    let state = app.state().clone();
    let url = format!("http://{}{}", app.local_addr(), hisp_gateway::soap::PATH);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone(), false));
    if service::pki::authority_certificate(&pool, "issuing")
        .await?
        .is_none()
    {
        pki::init_ca(&pool, &state.pki, &Actor::cli(), Utc::now()).await?;
    }
    let orgs = "certified_id,name,tax_id,state,npi,address_line1,address_line2,city,zip,healthcare_provider,verified_at\n\
        91001,Bench Clinic,12-3456789,NJ,1234567893,1 Main St,,Trenton,08601,true,2026-01-01\n";
    let people = "idp_id,first_name,last_name,date_of_birth,ssn_last4,verified_at\n91001,Bea,Bench,1970-01-01,1234,2026-01-01\n";
    service::identity_import::import_readers(
        &pool,
        Some(("orgs.csv".into(), Box::new(orgs.as_bytes()))),
        Some(("people.csv".into(), Box::new(people.as_bytes()))),
        state.identity_key(),
        &Actor::cli(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let reseller =
        service::clients::create(&pool, ClientKind::Reseller, "bench reseller", &Actor::cli())
            .await?;
    let rid = reseller.client.id;
    let amount = hisp_gateway::domain::offer::Cents::parse("100000000")?;
    service::accounts::credit(&pool, rid, amount, None, &Actor::cli(), Utc::now()).await?;
    // 10,000 organizations with one address and one authorized user each, as provisioning
    // leaves them (inserted in bulk: provisioning them one by one is measured below).
    sqlx::query(
        "INSERT INTO organizations (domain, name, status, certificate_category, offer_type, address_cap,
             reseller_id, certified_id, service_start, service_expires)
         SELECT 'bench-' || g || '.example.org', 'Bench Clinic', 'Activated', 'CoveredEntity', 'CDO5', 5,
                $1, 91001, current_date, current_date + 365
         FROM generate_series(1, $2) g",
    )
    .bind(rid)
    .bind(ORGS)
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO direct_addresses (organization_id, username, domain, user_type, idp_id, first_name, last_name, password_hash, status)
         SELECT id, 'bea', domain, 'SMTP', 91001, 'Bea', 'Bench', 'x', 'active' FROM organizations WHERE reseller_id = $1",
    )
    .bind(rid)
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO organization_people (organization_id, role, idp_id, first_name, last_name)
         SELECT id, 'authorized_user', 91001, 'Bea', 'Bench' FROM organizations WHERE reseller_id = $1",
    )
    .bind(rid)
    .execute(&pool)
    .await?;

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(PROVISION_CONCURRENCY)
        .build()?;
    // Asks for MTOM answers, as the original service gives, so the figures stay comparable.
    let post = |body: String| {
        http.post(&url)
            .header("content-type", "application/soap+xml; charset=utf-8")
            .header("accept", "multipart/related, application/soap+xml")
            .body(body)
            .send()
    };
    let login = soap12(
        "Login",
        &format!(
            "<username>{rid}</username><password>{}</password>",
            reseller.secret
        ),
    );
    let text = post(login).await?.text().await?;
    let session = first(&text, "sessionId").to_owned();
    anyhow::ensure!(!session.is_empty(), "login failed: {text}");

    let list = soap12(
        "ListProvisionedOrganizations",
        &format!("<sessionId>{session}</sessionId>"),
    );
    let mut lat = Vec::new();
    let mut size = 0;
    for _ in 0..10 {
        let t = Instant::now();
        let body = post(list.clone()).await?.bytes().await?;
        lat.push(t.elapsed());
        size = body.len();
        anyhow::ensure!(first(std::str::from_utf8(&body)?, "code") == "000");
    }
    lat.sort();
    println!(
        "soap ListProvisionedOrganizations, {ORGS} organizations (MTOM): p50 {:.0} ms, max {:.0} ms, {:.1} MiB",
        ms(lat[lat.len() / 2]),
        ms(lat[lat.len() - 1]),
        size as f64 / 1048576.0
    );

    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..PROVISION_CONCURRENCY {
        let (http, url, session) = (http.clone(), url.clone(), session.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in 0..PROVISIONS / PROVISION_CONCURRENCY {
                let form = "<organization><certified_id>91001</certified_id></organization>\
                    <authorizedUsers><idp_id>91001</idp_id></authorizedUsers>\
                    <directAddresses><idp_id>91001</idp_id><username>bea</username><password>Bench-Passw0rd</password></directAddresses>\
                    <organizationType>CoveredEntity</organizationType>";
                let body = soap12(
                    "ProvisionCertifiedProvider",
                    &format!("<sessionId>{session}</sessionId><DirectDomain>p-{w}-{i}.example.org</DirectDomain><DirectOfferType>CDO5</DirectOfferType><form>{form}</form>"),
                );
                let t = Instant::now();
                let resp = http
                    .post(&url)
                    .header("content-type", "application/soap+xml; charset=utf-8")
                    .header("accept", "multipart/related, application/soap+xml")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                lat.push(t.elapsed());
                assert_eq!(first(&resp, "code"), "000", "{resp}");
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    let elapsed = started.elapsed();
    lat.sort();
    println!(
        "soap ProvisionCertifiedProvider (1 address, argon2id, certificate request, payment), {} calls, {PROVISION_CONCURRENCY} concurrent: {:.1} calls/s, p50 {:.1} ms, p99 {:.1} ms",
        lat.len(),
        lat.len() as f64 / elapsed.as_secs_f64(),
        ms(lat[lat.len() / 2]),
        ms(lat[lat.len() * 99 / 100]),
    );
    shutdown.cancel();
    server.await??;
    Ok(())
}

fn bench_config() -> Config {
    let mut config = Config::defaults();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.smtp.listen = "127.0.0.1:0".parse().unwrap();
    config.security.identity_hash_key = Secret::new("bench-identity-key-0123456789abcdef0123");
    config.ca.key_encryption_key = Secret::new("bench-key-encryption-key-0123456789abcdef");
    config
}

async fn certificates(pool: sqlx::PgPool) -> anyhow::Result<()> {
    const CERTS: usize = 40;
    let app = App::build(bench_config(), pool.clone(), JobRegistry::new()).await?;
    let (state, worker) = (app.state().clone(), app.worker());
    let t = Instant::now();
    pki::init_ca(&pool, &state.pki, &Actor::cli(), Utc::now()).await?;
    println!(
        "ca init (root + issuing, RSA {} each): {:.0} ms",
        state.config.ca.ca_key_bits,
        ms(t.elapsed())
    );

    let reseller =
        service::clients::create(&pool, ClientKind::Reseller, "bench reseller", &Actor::cli())
            .await?;
    let mut conn = pool.acquire().await?;
    store::organizations::insert(
        &mut conn,
        "bench.direct.example",
        "Bench",
        "Registered",
        Some("CoveredEntity"),
        reseller.client.id,
    )
    .await?;
    drop(conn);
    let t = Instant::now();
    for i in 0..CERTS {
        let req = pki::CertificateRequest {
            organization: "bench.direct.example".into(),
            address: Some(format!("user{i}@bench.direct.example")),
            category: None,
            years: 1,
            auto_renew: true,
        };
        pki::request_certificate(&pool, &state.pki, &req, &Actor::cli()).await?;
    }
    let requested = t.elapsed();
    let t = Instant::now();
    assert_eq!(worker.run_until_idle().await?, CERTS);
    println!(
        "certificate issuance through the outbox (RSA {} leaf, {} concurrent): {:.1} ms per request, {:.1} certs/s issued",
        state.config.ca.leaf_key_bits,
        state.config.jobs.concurrency,
        ms(requested) / CERTS as f64,
        CERTS as f64 / t.elapsed().as_secs_f64()
    );

    let issuer = ca::Authority {
        cert: pki::authority_certificate(&pool, pki::ISSUING)
            .await?
            .unwrap(),
        key: ca::generate_key(2048)?,
    };
    for n in [1_000usize, 10_000] {
        let revoked: Vec<ca::RevokedEntry> = (0..n)
            .map(|i| ca::RevokedEntry {
                serial_hex: format!("{:032X}", i as u128 * 7919 + 1),
                revoked_at: Utc::now(),
            })
            .collect();
        let t = Instant::now();
        let crl = ca::sign_crl(
            &issuer,
            &revoked,
            1,
            Utc::now(),
            Utc::now() + chrono::TimeDelta::days(7),
        )?;
        println!(
            "CRL signing with {n} entries: {:.1} ms, {} KiB",
            ms(t.elapsed()),
            crl.to_der()?.len() / 1024
        );
    }
    Ok(())
}

fn argon2_cost() {
    let secret = secrets::generate_secret();
    let hash = secrets::hash_secret_sync(&secret).unwrap();
    let n = 20;
    let t = Instant::now();
    for _ in 0..n {
        assert!(secrets::verify_secret_sync(&secret, &hash));
    }
    println!(
        "argon2id verify (first request of a client): {:.1} ms each",
        ms(t.elapsed()) / n as f64
    );
}

/// The idempotency fingerprint of a send_ccda request carrying a C-CDA of 107 KB (the sample
/// ccd-2.xml repeated, as bytes: its contents do not matter to a hash, its size does).
fn request_fingerprint() -> anyhow::Result<()> {
    use base64::Engine;
    use hisp_gateway::service::messaging::request_hash;
    use sha2::Digest;

    let sample = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ccda/ccd-2.xml"
    ))?;
    let ccda: Vec<u8> = sample.iter().copied().cycle().take(107_155).collect();
    let body = serde_json::json!({
        "messageId": "urn:uuid:bench",
        "fromDirectAddress": "ada@harbor.example",
        "toDirectAddress": "ben@lakeside.example",
        "messageSubject": "Referral",
        "messageBody": "Please see the attached summary.",
        "patientFirstName": "Ann",
        "patientLastName": "Example",
        "emailAttachmentList": [{
            "attachmentContent": base64::engine::general_purpose::STANDARD.encode(&ccda),
            "attachmentClass": "application/xml",
            "attachmentTitle": "Summary"
        }]
    });
    // What a gateway before version 2 stored: SHA-256 of the request as serde_json writes it.
    let written = serde_json::to_vec(&body)?;
    let size = written.len();
    // The JSON value count every send checks before parsing, next to the parse it guards.
    let n = 2_000;
    let t = Instant::now();
    for _ in 0..n {
        let v: serde_json::Value = serde_json::from_slice(&written)?;
        std::hint::black_box(v);
    }
    let parse = t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        let limit = hisp_gateway::service::messaging::MAX_JSON_VALUES;
        std::hint::black_box(hisp_gateway::service::messaging::json_values_at_most(
            std::hint::black_box(&written),
            limit,
        ))
        .expect("a send request");
    }
    let count = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "send body JSON value count, {size} B request: {:.1} µs each ({:.1}% of parsing it: {:.1} µs)",
        count * 1e6,
        count / parse * 100.0,
        parse * 1e6
    );
    let v1 = sha2::Sha256::digest(&written).to_vec();
    let v2 = request_hash::of(&body);
    let n = 2_000;
    for (name, stored) in [
        ("version 2 (new messages)", &v2),
        ("version 1 (older messages)", &v1),
    ] {
        let t = Instant::now();
        for _ in 0..n {
            assert!(request_hash::matches(stored, &body));
        }
        let each = t.elapsed().as_secs_f64() / n as f64;
        println!(
            "request fingerprint, {name}, {size} B request: {:.1} µs each, {:.0} MB/s",
            each * 1e6,
            size as f64 / each / 1e6
        );
    }
    Ok(())
}

async fn authenticated_requests(pool: sqlx::PgPool) -> anyhow::Result<()> {
    let config = bench_config();
    let created =
        service::clients::create(&pool, ClientKind::Vendor, "bench", &Actor::cli()).await?;
    let app = App::build(config, pool, JobRegistry::new()).await?;
    let url = format!("http://{}/api/v1/whoami", app.local_addr());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone(), false));

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    let (id, secret) = (created.client.id.to_string(), created.secret);
    // Warm up: the first call pays for argon2, the rest hit the verification cache.
    http.get(&url)
        .basic_auth(&id, Some(&secret))
        .send()
        .await?
        .error_for_status()?;

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, url, id, secret) = (http.clone(), url.clone(), id.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(REQUESTS / CONCURRENCY);
            for _ in 0..REQUESTS / CONCURRENCY {
                let t = Instant::now();
                let r = http
                    .get(&url)
                    .basic_auth(&id, Some(&secret))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    let elapsed = started.elapsed();
    lat.sort();
    println!(
        "GET /api/v1/whoami (Basic auth, cached), {} requests, {CONCURRENCY} concurrent: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        lat.len(),
        lat.len() as f64 / elapsed.as_secs_f64(),
        ms(lat[lat.len() / 2]),
        ms(lat[lat.len() * 99 / 100]),
    );
    shutdown.cancel();
    server.await??;
    Ok(())
}

async fn outbox(pool: sqlx::PgPool, pg: &EmbeddedPostgres) -> anyhow::Result<()> {
    let config = Config::defaults();
    let mut registry = JobRegistry::new();
    registry.register("bench.noop", |_| async { Ok(()) });
    let policy = jobs::RetryPolicy::from_config(&config.jobs);

    // Enqueue, one transaction per job: what a request handler does.
    let t = Instant::now();
    for i in 0..JOBS {
        let mut tx = pool.begin().await?;
        jobs::enqueue(
            &mut tx,
            &policy,
            "bench.noop",
            serde_json::json!({ "i": i }),
        )
        .await?;
        tx.commit().await?;
    }
    println!(
        "outbox enqueue, one commit each: {:.0} jobs/s",
        JOBS as f64 / t.elapsed().as_secs_f64()
    );

    let w = Worker::new(pool.clone(), registry.clone(), &config.jobs);
    let t = Instant::now();
    let n = w.run_until_idle().await?;
    assert_eq!(n, JOBS);
    println!(
        "outbox run, 1 worker x {} concurrent: {:.0} jobs/s",
        config.jobs.concurrency,
        JOBS as f64 / t.elapsed().as_secs_f64()
    );

    let mut tx = pool.begin().await?;
    for i in 0..JOBS {
        jobs::enqueue(
            &mut tx,
            &policy,
            "bench.noop",
            serde_json::json!({ "i": i }),
        )
        .await?;
    }
    tx.commit().await?;
    let second = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(pg.connect_options("bench"))
        .await?;
    let w2 = Worker::new(second, registry, &config.jobs);
    let t = Instant::now();
    let (a, b) = tokio::join!(w.run_until_idle(), w2.run_until_idle());
    assert_eq!(a? + b?, JOBS);
    println!(
        "outbox run, 2 workers (2 pools, as 2 replicas): {:.0} jobs/s",
        JOBS as f64 / t.elapsed().as_secs_f64()
    );
    // Chained jobs, as the notifications of one recipient are: chains of three, each job
    // claimable only once the one before it is done. Compared with the same number of
    // unchained jobs run just before, with the same worker.
    for chained in [false, true] {
        let mut tx = pool.begin().await?;
        for i in 0..JOBS {
            let payload = serde_json::json!({ "i": i });
            if chained {
                let chain = format!("bench:{}", i / 3);
                jobs::enqueue_chained(&mut tx, &policy, "bench.noop", &chain, payload).await?;
            } else {
                jobs::enqueue(&mut tx, &policy, "bench.noop", payload).await?;
            }
        }
        tx.commit().await?;
        let t = Instant::now();
        assert_eq!(w.run_until_idle().await?, JOBS);
        println!(
            "outbox run, 1 worker x {}, {}: {:.0} jobs/s",
            config.jobs.concurrency,
            if chained {
                "chains of 3"
            } else {
                "unchained (control)"
            },
            JOBS as f64 / t.elapsed().as_secs_f64()
        );
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state <> 'done'")
        .fetch_one(&pool)
        .await?;
    assert_eq!(left, 0);
    Ok(())
}

/// A vendor's poll of its pull mailbox: the listing query, among 100,000 waiting messages
/// for 1,000 addresses, and the acknowledgement's status change with its notification.
async fn mailbox(pool: sqlx::PgPool) -> anyhow::Result<()> {
    const ADDRESSES: i64 = 1_000;
    const WAITING: i64 = 100_000;
    sqlx::query(
        "INSERT INTO messages (id, direction, from_address, smtp_message_id, size_bytes, vendor_message_id)
         SELECT md5('bench' || g)::uuid, 'outbound', 'sender@bench.example', g || '@bench.example', 150000,
                'urn:uuid:' || md5('vendor' || g)::uuid
         FROM generate_series(1, $1) g",
    )
    .bind(WAITING)
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO message_recipients (message_id, recipient, status, route, mailbox_id, mailbox_until)
         SELECT md5('bench' || g)::uuid, 'user' || (g % $2) || '@bench.example', 'PROCESSED', 'local',
                nextval('mailbox_ids'), now() + interval '7 days'
         FROM generate_series(1, $1) g",
    )
    .bind(WAITING)
    .bind(ADDRESSES)
    .execute(&pool)
    .await?;
    sqlx::query("ANALYZE message_recipients")
        .execute(&pool)
        .await?;

    const POLLS: usize = 5_000;
    let mut took = Vec::with_capacity(POLLS);
    for i in 0..POLLS {
        let address = format!("user{}@bench.example", i as i64 % ADDRESSES);
        let t = Instant::now();
        let rows = hisp_gateway::store::mailbox::waiting(&pool, &address, 0, 100).await?;
        took.push(t.elapsed());
        assert_eq!(rows.len(), (WAITING / ADDRESSES) as usize);
    }
    took.sort();
    println!(
        "mailbox listing, 100 of 100,000 waiting: p50 {:.3} ms, p99 {:.3} ms",
        ms(took[POLLS / 2]),
        ms(took[POLLS * 99 / 100])
    );

    let config = Config::defaults();
    let ctx = hisp_gateway::service::messaging::MessagingContext::from_config(&config);
    let ids: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT message_id, recipient FROM message_recipients WHERE mailbox_id IS NOT NULL LIMIT 2000",
    )
    .fetch_all(&pool)
    .await?;
    let t = Instant::now();
    for (message, recipient) in &ids {
        let mut tx = pool.begin().await?;
        let change = hisp_gateway::service::messaging::delivery::Change {
            status: hisp_gateway::domain::messaging::Status::Dispatched,
            failure: None,
            notify: true,
        };
        let applied = hisp_gateway::service::messaging::delivery::apply_in(
            &mut tx, &ctx, *message, recipient, &change,
        )
        .await?;
        assert!(applied);
        tx.commit().await?;
    }
    println!(
        "status change with its chained notification (an acknowledgement), one commit each: {:.0}/s",
        ids.len() as f64 / t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
