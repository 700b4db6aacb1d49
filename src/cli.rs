//! The `hisp-gateway` command line: serve (the default), migrate, and admin commands.
//! Admin commands share the server's database (starting the embedded cluster if needed).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use chrono::Utc;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::PKey;
use openssl::x509::X509;

use std::sync::Arc;

use sqlx::PgPool;

use crate::app::{self, App};
use crate::config::Config;
use crate::domain::client::ClientKind;
use crate::jobs::{JobRegistry, Worker};
use crate::service::identity_import::{self, ImportError};
use crate::service::pki::PkiContext;
use crate::service::{self, Actor};
use crate::store::{self, Database};

#[derive(Debug, Parser)]
#[command(
    name = "hisp-gateway",
    version,
    about = "A HISP gateway for Direct Secure Messaging"
)]
pub struct Cli {
    /// A TOML file overriding the embedded defaults (GW_* variables override it in turn).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage API clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Import verified identities.
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Seed demo clients of every kind and demo identities; prints the credentials.
    Demo,
    /// Inspect and re-run outbox jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// The certificate authority and Direct certificates.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Reseller debit accounts: credit, holds, ledger.
    #[command(subcommand)]
    Account(AccountCommand),
    /// REST messaging: which vendor may use which organization's addresses.
    #[command(subcommand)]
    Messaging(MessagingCommand),
}

#[derive(Debug, Subcommand)]
pub enum MessagingCommand {
    /// Let a vendor client send from and receive for the addresses of an organization.
    Grant {
        #[arg(long)]
        client: Uuid,
        /// The organization's Direct domain.
        #[arg(long)]
        domain: String,
    },
    /// Take a grant back.
    Revoke {
        #[arg(long)]
        client: Uuid,
        #[arg(long)]
        domain: String,
    },
    /// List grants (of one client, or all).
    Grants {
        #[arg(long)]
        client: Option<Uuid>,
    },
    /// Stop a hosted address from sending (or allow it again with --enable).
    Disable {
        address: String,
        #[arg(long)]
        enable: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add money (US dollars, e.g. 250.00) to a reseller's account.
    Credit {
        reseller: Uuid,
        amount: String,
        #[arg(long)]
        memo: Option<String>,
    },
    /// Refuse captures (provisioning then fails with code 022) until released.
    Hold { reseller: Uuid },
    /// Release a hold on captures.
    Release { reseller: Uuid },
    /// Show the balance and every ledger entry.
    Ledger { reseller: Uuid },
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a root and an issuing CA, or import an existing CA (PEM certificate + key, or
    /// PKCS#12 whose password is read from the variable GW_CA_IMPORT_PASSWORD).
    Init {
        #[arg(
            long,
            value_name = "CERT.pem",
            requires = "import_key",
            conflicts_with = "import_p12"
        )]
        import_cert: Option<PathBuf>,
        #[arg(long, value_name = "KEY.pem")]
        import_key: Option<PathBuf>,
        #[arg(long, value_name = "CA.p12")]
        import_p12: Option<PathBuf>,
        /// The root certificate above an imported CA that is not self-signed.
        #[arg(long, value_name = "ROOT.pem")]
        import_root: Option<PathBuf>,
    },
    /// Issue a Direct certificate: domain-bound for the organization, or address-bound.
    Issue {
        /// The organization's Direct domain.
        #[arg(long, value_name = "DOMAIN")]
        org: String,
        /// A Direct address in that domain, for an address-bound certificate.
        #[arg(long)]
        address: Option<String>,
        /// CoveredEntity, BusinessAssociate, HealthEntity or Patient (default: the
        /// organization's category).
        #[arg(long)]
        category: Option<String>,
        #[arg(long, default_value_t = 1)]
        years: i64,
        #[arg(long)]
        no_auto_renew: bool,
    },
    /// Revoke a certificate and publish a new CRL.
    Revoke {
        serial: String,
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// Publish a fresh CRL and print it (PEM).
    Crl {
        /// The root's CRL instead of the issuing CA's.
        #[arg(long)]
        root: bool,
    },
    /// List certificates.
    List {
        #[arg(long, value_name = "DOMAIN")]
        org: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a client; prints its id and secret (the secret is shown only this once).
    Create {
        #[arg(long)]
        kind: ClientKind,
        #[arg(long)]
        name: String,
    },
    /// List clients.
    List,
    /// Disable a client: its credentials stop working at once.
    Disable { id: Uuid },
}

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Import verified organizations and/or individuals from CSV (all rows or none).
    Import {
        #[arg(long, value_name = "FILE.csv")]
        orgs: Option<PathBuf>,
        #[arg(long, value_name = "FILE.csv")]
        individuals: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        #[arg(long, value_parser = ["queued", "running", "done", "dead"])]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Put a dead job back in the queue with a fresh set of attempts.
    Retry { id: i64 },
}

pub fn main(cli: Cli) -> ExitCode {
    crate::install_crypto_provider();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    crate::telemetry::init_logging(&config.log);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, mut config: Config) -> anyhow::Result<ExitCode> {
    let mut db = Database::open(&config).await?;
    // Whatever happens, a cluster we started is stopped before we exit.
    let result = async {
        app::resolve_local_secrets(&mut config, db.embedded.as_ref().map(|pg| pg.data_dir()))?;
        match command {
            Command::Serve => {
                // A cluster left running by a crashed server is ours to stop now; admin commands
                // leave an adopted cluster alone, since the server may be using it.
                if let Some(pg) = db.embedded.as_mut() {
                    pg.take_ownership();
                }
                serve(config, &db).await
            }
            other => admin(other, &config, &db).await,
        }
    }
    .await;
    db.close().await?;
    result
}

async fn serve(config: Config, db: &Database) -> anyhow::Result<ExitCode> {
    if db.is_first_start() && config.demo.seed_on_first_start {
        let key = config.security.identity_hash_key.expose().as_bytes();
        let created = service::demo::seed(&db.pool, key, &Actor::cli()).await?;
        println!(
            "{}",
            service::demo::banner(&created, &config.http.public_base_url)
        );
    }
    let app = App::build(config, db.pool.clone(), JobRegistry::new()).await?;
    tracing::info!(addr = %app.local_addr(), "http listening");
    let shutdown = CancellationToken::new();
    tokio::spawn(on_signal(shutdown.clone()));
    let supervisor = db
        .embedded
        .clone()
        .map(|pg| crate::store::supervisor::supervise(pg, shutdown.clone()));
    let served = app.run(shutdown.clone(), true).await;
    // Stopped before the cluster is: it would start it again.
    shutdown.cancel();
    if let Some(s) = supervisor {
        let _ = s.await;
    }
    served?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing in-flight work"),
        _ = int.recv() => tracing::info!("SIGINT: finishing in-flight work"),
    }
    shutdown.cancel();
}

async fn admin(command: Command, config: &Config, db: &Database) -> anyhow::Result<ExitCode> {
    let pool = &db.pool;
    let actor = Actor::cli();
    match command {
        Command::Serve => unreachable!("handled by run"),
        Command::Ca(c) => return ca(c, config, pool, &actor).await,
        // Database::open has applied them.
        Command::Migrate => {
            let n = store::MIGRATOR.iter().count();
            println!("database is up to date ({n} migrations)");
        }
        Command::Client(ClientCommand::Create { kind, name }) => {
            let c = service::clients::create(pool, kind, &name, &actor).await?;
            println!(
                "id: {}\nsecret: {}\nkind: {}\nname: {}",
                c.client.id, c.secret, c.client.kind, c.client.name
            );
            eprintln!("The secret is shown only this once; it is stored hashed.");
        }
        Command::Client(ClientCommand::List) => {
            println!(
                "{:<36}  {:<13}  {:<8}  {:<20}  name",
                "id", "kind", "status", "created"
            );
            for c in service::clients::list(pool).await? {
                println!(
                    "{:<36}  {:<13}  {:<8}  {:<20}  {}",
                    c.id,
                    c.kind.as_str(),
                    c.status.as_str(),
                    c.created_at.format("%Y-%m-%d %H:%M:%S"),
                    c.name
                );
            }
        }
        Command::Client(ClientCommand::Disable { id }) => {
            let c = service::clients::disable(pool, id, &actor).await?;
            println!("disabled {} ({})", c.id, c.name);
        }
        Command::Identity(IdentityCommand::Import { orgs, individuals }) => {
            anyhow::ensure!(
                orgs.is_some() || individuals.is_some(),
                "give --orgs FILE.csv and/or --individuals FILE.csv"
            );
            let key = config.security.identity_hash_key.clone();
            let open = |p: &Option<PathBuf>| -> anyhow::Result<Option<(String, Box<dyn std::io::Read + Send>)>> {
                p.as_ref()
                    .map(|p| {
                        let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
                        Ok((p.display().to_string(), Box::new(f) as Box<dyn std::io::Read + Send>))
                    })
                    .transpose()
            };
            let (o, i) = (open(&orgs)?, open(&individuals)?);
            let result =
                identity_import::import_readers(pool, o, i, key.expose().as_bytes(), &actor).await;
            match result {
                Ok(s) => println!(
                    "imported {} organizations and {} individuals",
                    s.organizations, s.individuals
                ),
                Err(ImportError::Rows(rows)) => {
                    for r in &rows {
                        eprintln!("{r}");
                    }
                    eprintln!("{} bad row(s): nothing was imported", rows.len());
                    return Ok(ExitCode::FAILURE);
                }
                Err(ImportError::Failed(e)) => return Err(e.into()),
            }
        }
        Command::Demo => {
            let key = config.security.identity_hash_key.expose().as_bytes();
            let created = service::demo::seed(pool, key, &actor).await?;
            println!(
                "{}",
                service::demo::banner(&created, &config.http.public_base_url)
            );
        }
        Command::Jobs(JobsCommand::List { state, limit }) => {
            println!(
                "{:>8}  {:<8}  {:<24}  {:>8}  {:<20}  last_error",
                "id", "state", "kind", "attempts", "run_at"
            );
            for j in service::jobs::list(pool, state.as_deref(), limit).await? {
                println!(
                    "{:>8}  {:<8}  {:<24}  {:>8}  {:<20}  {}",
                    j.id,
                    j.state,
                    j.kind,
                    format!("{}/{}", j.attempts, j.max_attempts),
                    j.run_at.format("%Y-%m-%d %H:%M:%S"),
                    j.last_error.as_deref().unwrap_or("")
                );
            }
        }
        Command::Messaging(c) => {
            let ctx = service::messaging::MessagingContext::from_config(config);
            match c {
                MessagingCommand::Grant { client, domain } => {
                    let g = service::messaging::admin::grant(pool, &ctx, client, &domain, &actor)
                        .await?;
                    println!(
                        "granted {} ({}) to {}",
                        g.domain, g.organization_status, g.client_id
                    );
                }
                MessagingCommand::Revoke { client, domain } => {
                    service::messaging::admin::revoke(pool, client, &domain, &actor).await?;
                    println!("revoked {domain} from {client}");
                }
                MessagingCommand::Grants { client } => {
                    println!("{:<36}  {:<20}  domain", "client", "organization status");
                    for g in service::messaging::admin::grants(pool, client).await? {
                        println!(
                            "{:<36}  {:<20}  {}",
                            g.client_id, g.organization_status, g.domain
                        );
                    }
                }
                MessagingCommand::Disable { address, enable } => {
                    service::messaging::admin::set_address_enabled(pool, &address, enable, &actor)
                        .await?;
                    let word = if enable { "enabled" } else { "disabled" };
                    println!("{address} {word}");
                }
            }
        }
        Command::Account(c) => {
            let now = Utc::now();
            let view = match c {
                AccountCommand::Credit {
                    reseller,
                    amount,
                    memo,
                } => {
                    let amount = crate::domain::offer::Cents::parse(&amount)?;
                    service::accounts::credit(pool, reseller, amount, memo.as_deref(), &actor, now)
                        .await?
                }
                AccountCommand::Hold { reseller } => {
                    service::accounts::set_hold(pool, reseller, true, &actor, now).await?
                }
                AccountCommand::Release { reseller } => {
                    service::accounts::set_hold(pool, reseller, false, &actor, now).await?
                }
                AccountCommand::Ledger { reseller } => {
                    service::accounts::view(pool, reseller).await?
                }
            };
            print_account(&view);
        }
        Command::Jobs(JobsCommand::Retry { id }) => {
            match service::jobs::retry(pool, id, &actor).await {
                Ok(()) => println!("job {id} is queued again"),
                Err(e @ crate::error::AppError::Conflict(_)) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::FAILURE);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_account(v: &service::accounts::AccountView) {
    let money = |c: i64| crate::domain::offer::Cents(c).to_string();
    println!("reseller: {}", v.reseller_id);
    println!("balance: {}", v.balance);
    println!("capture_hold: {}", v.capture_hold);
    println!(
        "{:>6}  {:<20}  {:<13}  {:>12}  {:>12}  {:>8}  memo",
        "id", "at", "kind", "amount", "balance", "order"
    );
    for e in &v.ledger {
        println!(
            "{:>6}  {:<20}  {:<13}  {:>12}  {:>12}  {:>8}  {}",
            e.id,
            e.at.format("%Y-%m-%d %H:%M:%S"),
            e.kind,
            money(e.amount_cents),
            money(e.balance_after_cents),
            e.order_id.map(|o| o.to_string()).unwrap_or_default(),
            e.memo.as_deref().unwrap_or("")
        );
    }
}

async fn ca(
    command: CaCommand,
    config: &Config,
    db: &PgPool,
    actor: &Actor,
) -> anyhow::Result<ExitCode> {
    let pki = &Arc::new(PkiContext::from_config(config));
    let now = Utc::now();
    match command {
        CaCommand::Init {
            import_cert,
            import_key,
            import_p12,
            import_root,
        } => {
            let root = import_root.map(|p| read_pem_cert(&p)).transpose()?;
            let summary = match (import_cert, import_key, import_p12) {
                (Some(c), Some(k), None) => {
                    let cert = read_pem_cert(&c)?;
                    let key = PKey::private_key_from_pem(&std::fs::read(&k)?)
                        .with_context(|| format!("{} is not a PEM private key", k.display()))?;
                    service::pki::import_ca(db, pki, cert, key, root, actor, now).await?
                }
                (None, None, Some(p)) => {
                    let password = std::env::var("GW_CA_IMPORT_PASSWORD").unwrap_or_default();
                    let parsed = Pkcs12::from_der(&std::fs::read(&p)?)
                        .and_then(|p12| p12.parse2(&password))
                        .with_context(|| {
                            format!(
                                "{} cannot be opened (is GW_CA_IMPORT_PASSWORD right?)",
                                p.display()
                            )
                        })?;
                    let (Some(cert), Some(key)) = (parsed.cert, parsed.pkey) else {
                        anyhow::bail!("{} holds no certificate with its key", p.display());
                    };
                    service::pki::import_ca(db, pki, cert, key, root, actor, now).await?
                }
                (None, None, None) => service::pki::init_ca(db, pki, actor, now).await?,
                _ => anyhow::bail!("give --import-cert with --import-key, or --import-p12"),
            };
            println!(
                "root: {}\nissuing: {}\nissuing valid until: {}",
                summary.root_subject, summary.issuing_subject, summary.issuing_not_after
            );
            println!(
                "trust anchor: {}",
                crate::ca::root_cert_url(&config.http.public_base_url)
            );
        }
        CaCommand::Issue {
            org,
            address,
            category,
            years,
            no_auto_renew,
        } => {
            let req = service::pki::CertificateRequest {
                organization: org,
                address,
                category,
                years,
                auto_renew: !no_auto_renew,
            };
            let ids = service::pki::request_certificate(db, pki, &req, actor).await?;
            // Issue now rather than waiting for a server's worker.
            let registry = crate::state::AppState::new(config.clone(), db.clone()).job_registry();
            let worker = Worker::new(db.clone(), registry, &config.jobs);
            worker.run_until_idle().await?;
            let mut conn = db.acquire().await?;
            for id in ids {
                let c = crate::store::pki::get(&mut conn, id).await?;
                println!(
                    "serial: {}\nstatus: {}\nnot_after: {}",
                    c.serial.as_deref().unwrap_or("-"),
                    c.status.as_str(),
                    c.not_after.map(|t| t.to_rfc3339()).unwrap_or_default()
                );
            }
        }
        CaCommand::Revoke { serial, reason } => {
            let c = service::pki::revoke(db, pki, &serial, &reason, actor, now).await?;
            println!(
                "revoked {} ({}); the CRL is published",
                c.serial.as_deref().unwrap_or("-"),
                c.subject_name
            );
        }
        CaCommand::Crl { root } => {
            let role = if root {
                service::pki::ROOT
            } else {
                service::pki::ISSUING
            };
            let crl = service::pki::publish_crl_now(db, pki, role, now).await?;
            print!("{}", String::from_utf8_lossy(&crl.to_pem()?));
        }
        CaCommand::List { org } => {
            let q = service::pki::CertificateQuery {
                organization: org.as_deref(),
                address: None,
            };
            println!(
                "{:<34}  {:<10}  {:<8}  {:<17}  {:<10}  subject",
                "serial", "status", "binding", "category", "not_after"
            );
            for c in service::pki::list(db, &q).await? {
                println!(
                    "{:<34}  {:<10}  {:<8}  {:<17}  {:<10}  {}",
                    c.serial.as_deref().unwrap_or("-"),
                    c.status.as_str(),
                    c.binding,
                    c.category.as_str(),
                    c.not_after
                        .map(|t| t.format("%Y-%m-%d").to_string())
                        .unwrap_or_default(),
                    c.subject_name
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_pem_cert(path: &std::path::Path) -> anyhow::Result<X509> {
    X509::from_pem(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        .with_context(|| format!("{} is not a PEM certificate", path.display()))
}
