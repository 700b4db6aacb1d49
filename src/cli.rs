//! The `hisp-gateway` command line: serve (the default), migrate, and admin commands.
//! Admin commands share the server's database (starting the embedded cluster if needed).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::app::{self, App};
use crate::config::Config;
use crate::domain::client::ClientKind;
use crate::service::identity_import::{self, ImportError};
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

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    let mut db = Database::open(&config).await?;
    // Whatever happens, a cluster we started is stopped before we exit.
    let result = match command {
        Command::Serve => {
            // A cluster left running by a crashed server is ours to stop now; admin commands
            // leave an adopted cluster alone, since the server may be using it.
            if let Some(pg) = db.embedded.as_mut() {
                pg.take_ownership();
            }
            serve(config, &db).await
        }
        other => admin(other, &config, &db).await,
    };
    db.close().await?;
    result
}

async fn serve(config: Config, db: &Database) -> anyhow::Result<ExitCode> {
    let key = app::identity_key(&config, db.embedded.as_ref().map(|pg| pg.data_dir()))?;
    if db.is_first_start() && config.demo.seed_on_first_start {
        let created = service::demo::seed(&db.pool, key.expose().as_bytes(), &Actor::cli()).await?;
        println!(
            "{}",
            service::demo::banner(&created, &config.http.public_base_url)
        );
    }
    let app = App::build(config, db.pool.clone(), app::job_registry(), key).await?;
    tracing::info!(addr = %app.local_addr(), "http listening");
    let shutdown = CancellationToken::new();
    tokio::spawn(on_signal(shutdown.clone()));
    app.run(shutdown, true).await?;
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
            let key = app::identity_key(config, db.embedded.as_ref().map(|pg| pg.data_dir()))?;
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
            let key = app::identity_key(config, db.embedded.as_ref().map(|pg| pg.data_dir()))?;
            let created = service::demo::seed(pool, key.expose().as_bytes(), &actor).await?;
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
