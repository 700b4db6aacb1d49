//! The `hisp-gateway` command line: serve (the default), migrate, and admin commands, one
//! module per group. Admin commands share the server's database (starting the embedded
//! cluster if needed) and act through `service`, as the doors do.

mod account;
mod applications;
mod ca;
mod client;
mod credentialing;
mod demo;
mod identity;
mod jobs;
mod messaging;
mod registry;
mod serve;
mod transport;
mod trust;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sqlx::PgPool;

use crate::app;
use crate::config::Config;
use crate::service::Actor;
use crate::store::{self, Database};

pub use account::AccountCommand;
pub use applications::{ApplicationsCommand, TrustedAgentCommand};
pub use ca::CaCommand;
pub use client::ClientCommand;
pub use credentialing::CredentialingCommand;
pub use identity::IdentityCommand;
pub use jobs::JobsCommand;
pub use messaging::MessagingCommand;
pub use registry::RegistryCommand;
pub use transport::TransportCommand;
pub use trust::TrustCommand;

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
    /// A first message: demo organization 90001 with alice@ and bob@, granted to the demo
    /// vendor (given a new secret), and the curls to send, receive and acknowledge it. Seeds
    /// the demo clients and identities first if they are not there. Safe to run again.
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
    /// The Direct transport: mail from other HISPs and what became of it.
    #[command(subcommand)]
    Transport(TransportCommand),
    /// Trust: anchors per domain, peer certificates, trust bundles.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Trusted-Agent certificate applications: list, show, approve, reject.
    #[command(subcommand)]
    Applications(ApplicationsCommand),
    /// Which organization each trusted agent belongs to.
    #[command(subcommand)]
    TrustedAgent(TrustedAgentCommand),
    /// Credentialing: sources of webhooks, individuals' standings, provider links.
    #[command(subcommand)]
    Credentialing(CredentialingCommand),
    /// The HL7 v3 organization registry: subscribers, organization status.
    #[command(subcommand)]
    Registry(RegistryCommand),
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
                serve::serve(config, &db).await
            }
            other => admin(other, &config, &db).await,
        }
    }
    .await;
    db.close().await?;
    result
}

/// What every admin command works with.
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub pool: &'a PgPool,
    pub actor: Actor,
}

async fn admin(command: Command, config: &Config, db: &Database) -> anyhow::Result<ExitCode> {
    let ctx = Ctx {
        config,
        pool: &db.pool,
        actor: Actor::cli(),
    };
    match command {
        Command::Serve => unreachable!("handled by run"),
        // Database::open has applied them.
        Command::Migrate => {
            let n = store::MIGRATOR.iter().count();
            println!("database is up to date ({n} migrations)");
        }
        Command::Demo => demo::run(&ctx).await?,
        Command::Client(c) => client::run(c, &ctx).await?,
        Command::Identity(c) => return identity::run(c, &ctx).await,
        Command::Jobs(c) => return jobs::run(c, &ctx).await,
        Command::Ca(c) => ca::run(c, &ctx).await?,
        Command::Account(c) => account::run(c, &ctx).await?,
        Command::Messaging(c) => messaging::run(c, &ctx).await?,
        Command::Transport(c) => transport::run(c, &ctx).await?,
        Command::Trust(c) => trust::run(c, &ctx).await?,
        Command::Applications(c) => applications::run(c, &ctx).await?,
        Command::TrustedAgent(c) => applications::run_trusted_agent(c, &ctx).await?,
        Command::Credentialing(c) => credentialing::run(c, &ctx).await?,
        Command::Registry(c) => registry::run(c, &ctx).await?,
    }
    Ok(ExitCode::SUCCESS)
}
