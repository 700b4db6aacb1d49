//! Test harness: a throwaway PostgreSQL cluster (started once, reused across runs), a fresh
//! database per test, and `TestApp::spawn` running the whole gateway on 127.0.0.1:0.
//!
//! Set TEST_DATABASE_URL (a superuser URL to an existing server) to use that server instead.

#![allow(dead_code)]

pub mod conformance;
pub mod db_proxy;
pub mod dns;
pub mod process;
pub mod receiver;

use std::fs::{self, File};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hisp_gateway::app::App;
use hisp_gateway::config::{Config, Secret};
use hisp_gateway::domain::client::ClientKind;
use hisp_gateway::jobs::{JobRegistry, Worker};
use hisp_gateway::service::{self, Actor};
use hisp_gateway::state::AppState;
use hisp_gateway::store::embedded::{EmbeddedOptions, EmbeddedPostgres, quote_ident};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const TEST_IDENTITY_KEY: &str = "test-identity-key-0123456789abcdef0123456789";
pub const TEST_KEK: &str = "test-key-encryption-key-0123456789abcdef012345";

/// Where test databases are created.
enum Server {
    Embedded { socket_dir: PathBuf },
    External { url: String },
}

impl Server {
    fn options(&self, database: &str) -> PgConnectOptions {
        match self {
            Server::Embedded { socket_dir } => PgConnectOptions::new()
                .socket(socket_dir)
                .port(5432)
                .username("postgres")
                .database(database),
            Server::External { url } => PgConnectOptions::from_str(url).unwrap().database(database),
        }
    }

    /// A URL the gateway binary accepts as DATABASE_URL.
    fn url(&self, database: &str) -> String {
        match self {
            Server::Embedded { socket_dir } => {
                format!(
                    "postgres://postgres@localhost:5432/{database}?host={}",
                    socket_dir.display()
                )
            }
            Server::External { url } => {
                let mut u = url.clone();
                let (base, query) = match u.find('?') {
                    Some(i) => (u[..i].to_owned(), u.split_off(i)),
                    None => (u.clone(), String::new()),
                };
                let slash = base.rfind('/').unwrap();
                format!("{}/{database}{query}", &base[..slash])
            }
        }
    }
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Server::External { url },
            _ => start_test_cluster(),
        };
        // Databases left by earlier test processes (now dead) are dropped; running ones are kept.
        let admin = server.options("postgres");
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(drop_stale_databases(admin));
        })
        .join()
        .unwrap();
        server
    })
}

/// Starts (or adopts) the shared throwaway cluster under the temp folder. A file lock keeps
/// concurrent test processes from initializing it twice.
fn start_test_cluster() -> Server {
    let uid = nix::unistd::Uid::effective().as_raw();
    let root = std::env::temp_dir().join(format!("hisp-gateway-tests-{uid}"));
    fs::create_dir_all(&root).unwrap();
    // The postgres OS user (when we are root) must be able to reach the data folder.
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
    let lock = File::create(root.join("lock")).unwrap();
    lock.lock().unwrap();
    EmbeddedPostgres::start(&EmbeddedOptions {
        data_dir: root.join("pg"),
        bin_dir: PathBuf::new(),
        throwaway: true,
    })
    .expect("starting the test PostgreSQL cluster");
    lock.unlock().unwrap();
    // Left running on purpose: the next test run reuses it.
    Server::Embedded {
        socket_dir: root.join("pg"),
    }
}

async fn drop_stale_databases(admin: PgConnectOptions) {
    let mut conn = PgConnection::connect_with(&admin)
        .await
        .expect("connecting to the test server");
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    for name in names {
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<i32>().ok());
        let alive = pid.is_some_and(|p| PathBuf::from(format!("/proc/{p}")).exists());
        if !alive {
            let sql = format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            );
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await;
        }
    }
}

/// A fresh, migrated database of its own.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
}

impl TestDb {
    pub async fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let server = server();
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin = PgConnection::connect_with(&server.options("postgres"))
            .await
            .unwrap();
        let sql = format!("CREATE DATABASE {}", quote_ident(&name));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let pool = Self::pool_to(&name, 10).await;
        hisp_gateway::store::MIGRATOR.run(&pool).await.unwrap();
        Self {
            url: server.url(&name),
            name,
            pool,
        }
    }

    /// Another pool on the same database: what a second replica would have.
    pub async fn second_pool(&self) -> PgPool {
        Self::pool_to(&self.name, 10).await
    }

    /// How to reach this database (for a proxy in front of it).
    pub fn connect_options(&self) -> PgConnectOptions {
        server().options(&self.name)
    }

    async fn pool_to(name: &str, max: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(max)
            .connect_with(server().options(name))
            .await
            .unwrap()
    }
}

pub fn test_config() -> Config {
    let mut c = Config::defaults();
    c.http.listen = "127.0.0.1:0".parse().unwrap();
    c.smtp.listen = "127.0.0.1:0".parse().unwrap();
    c.security.identity_hash_key = Secret::new(TEST_IDENTITY_KEY);
    c.ca.key_encryption_key = Secret::new(TEST_KEK);
    // Smaller CA keys keep CA set-up fast; leaves keep the production default (2048).
    c.ca.ca_key_bits = 2048;
    c.jobs.retry_schedule = vec![
        Duration::from_secs(2),
        Duration::from_secs(8),
        Duration::from_secs(30),
    ];
    c.messaging.delivery_retry_schedule = vec![
        Duration::from_secs(2),
        Duration::from_secs(8),
        Duration::from_secs(30),
    ];
    c.jobs.poll_interval = Duration::from_millis(200);
    c.database.max_connections = 10;
    // The vendors' servers of the tests listen on loopback, which pushes may not reach by
    // default.
    c.webhooks.allow_private = vec![hisp_gateway::egress::Cidr::parse("127.0.0.1/32").unwrap()];
    // Messages to other HISPs wait for their timeout, as they did before the Direct transport:
    // its own tests turn it on, with their own DNS server, so no test asks the machine's.
    c.transport.enabled = false;
    c
}

pub struct TestOptions {
    pub config: Config,
    pub registry: JobRegistry,
    /// Run the background worker loop, as the server does; off by default so tests drive jobs
    /// with `run_until_idle`.
    pub background_worker: bool,
    /// Reach the database through a `DbProxy` the test can cut.
    pub db_proxy: bool,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            config: test_config(),
            registry: JobRegistry::new(),
            background_worker: false,
            db_proxy: false,
        }
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The inbound SMTP listener; None when the test's config turned it off.
    pub smtp: Option<SocketAddr>,
    pub db: TestDb,
    pub state: AppState,
    pub worker: Worker,
    pub http: reqwest::Client,
    pub proxy: Option<db_proxy::DbProxy>,
    /// Answers that disagree with the OpenAPI document (see `conformance`).
    pub violations: conformance::Violations,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(TestOptions::default()).await
    }

    pub async fn spawn_with(opts: TestOptions) -> Self {
        let db = TestDb::new().await;
        Self::spawn_on(db, opts).await
    }

    /// Runs an app on an existing test database (e.g. a second replica).
    pub async fn spawn_on(db: TestDb, opts: TestOptions) -> Self {
        hisp_gateway::install_crypto_provider();
        let (pool, proxy) = if opts.db_proxy {
            let proxy = db_proxy::DbProxy::start(db.connect_options());
            let pool = hisp_gateway::store::pool_options(&opts.config.database)
                .connect_with(proxy.options())
                .await
                .unwrap();
            (pool, Some(proxy))
        } else {
            (db.pool.clone(), None)
        };
        let violations = conformance::Violations::default();
        let app = App::build(opts.config, pool, opts.registry)
            .await
            .unwrap()
            .wrap_router(conformance::layer(violations.clone()));
        let addr = app.local_addr();
        let smtp = app.smtp_addr();
        let state = app.state().clone();
        let worker = app.worker();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run(shutdown.clone(), opts.background_worker));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            addr,
            smtp,
            db,
            state,
            worker,
            http,
            proxy,
            violations,
            shutdown,
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The text of an unauthenticated GET (`/metrics`, say).
    pub async fn get_text(&self, path: &str) -> String {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.text().await.unwrap()
    }

    /// A client made through the service layer, as the CLI would; returns (id, secret).
    pub async fn create_client(&self, kind: ClientKind) -> (Uuid, String) {
        let c =
            service::clients::create(&self.db.pool, kind, &format!("test {kind}"), &Actor::cli())
                .await
                .unwrap();
        (c.client.id, c.secret)
    }

    /// POSTs `body` as JSON to `path` with a client's Basic credentials.
    pub async fn post_json_as(
        &self,
        path: &str,
        (id, secret): &(Uuid, String),
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .basic_auth(id, Some(secret))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Runs the real gateway binary against this test's database.
    pub fn cli(&self, args: &[&str]) -> Output {
        gateway_command()
            .env("DATABASE_URL", &self.db.url)
            .args(args)
            .output()
            .unwrap()
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let violations = std::mem::take(&mut *self.violations.lock().unwrap());
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "{} answer(s) disagree with the OpenAPI document:\n{}",
                violations.len(),
                violations.join("\n")
            );
        }
    }
}

/// The built `hisp-gateway` binary with a clean environment of our own settings.
pub fn gateway_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hisp-gateway"));
    for (k, _) in std::env::vars() {
        if k.starts_with("GW_") || k == "DATABASE_URL" || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("GW_SECURITY__IDENTITY_HASH_KEY", TEST_IDENTITY_KEY)
        .env("GW_CA__KEY_ENCRYPTION_KEY", TEST_KEK)
        // Binaries of tests run side by side: none may take the default SMTP port.
        .env("GW_SMTP__LISTEN", "127.0.0.1:0")
        .env("GW_CA__CA_KEY_BITS", "2048")
        .env("GW_WEBHOOKS__ALLOW_PRIVATE", "[\"127.0.0.1/32\"]")
        .env("GW_LOG__FORMAT", "json");
    cmd
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The value after `key: ` on its own line of CLI output.
pub fn field(output: &str, key: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key:?} in {output}"))
        .trim()
        .to_owned()
}

/// Counts rows of `table` (a fixed name from the test itself).
pub async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}
