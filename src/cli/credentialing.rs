//! `hisp-gateway credentialing`: sources, standings, providers waiting for a link.

use clap::Subcommand;

use super::Ctx;
use crate::service::credentialing::{self, CredentialingContext, views};

#[derive(Debug, Subcommand)]
pub enum CredentialingCommand {
    /// Credentialing services allowed to post webhooks.
    #[command(subcommand)]
    Sources(SourcesCommand),
    /// An individual's standing, its facts, timeline (redacted) and affected addresses (JSON).
    Standing { idp_id: String },
    /// Individuals in warning or restricted standing (or only the one given).
    List {
        #[arg(long)]
        standing: Option<String>,
    },
    /// Providers no verified individual is linked to yet.
    Unlinked,
    /// Links a provider to a verified individual; its standing is computed again at once.
    Link { provider_id: String, idp_id: String },
}

#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// Registers a source: the webhook id the service gave, the secret it sends in X-Secret
    /// (generated and printed once when not given), the event types it sends (all when none).
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        webhook_id: String,
        #[arg(long)]
        secret: Option<String>,
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
    },
    List,
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn run(c: CredentialingCommand, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    match c {
        CredentialingCommand::Sources(SourcesCommand::Add {
            name,
            webhook_id,
            secret,
            types,
        }) => {
            let s = credentialing::register_source(
                ctx.pool,
                &name,
                &webhook_id,
                secret.as_deref(),
                &types,
                &ctx.actor,
            )
            .await?;
            println!("id: {}", s.source.id);
            println!("webhook_id: {}", s.source.webhook_id);
            println!("event_types: {}", s.source.event_types.join(","));
            if let Some(secret) = s.secret {
                println!("secret: {secret}");
                eprintln!("the secret is shown once: give it to the credentialing service");
            }
        }
        CredentialingCommand::Sources(SourcesCommand::List) => {
            for s in credentialing::list_sources(ctx.pool).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    s.id,
                    s.webhook_id,
                    s.status,
                    s.name,
                    s.event_types.join(",")
                );
            }
        }
        CredentialingCommand::Standing { idp_id } => {
            print_json(&views::individual_by_text(ctx.pool, &idp_id).await?)?;
        }
        CredentialingCommand::List { standing } => {
            for s in views::standings(ctx.pool, standing.as_deref()).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    s.idp_id, s.standing, s.changed_at, s.reason
                );
            }
        }
        CredentialingCommand::Unlinked => {
            for p in views::unlinked(ctx.pool).await? {
                println!(
                    "{}\t{}\t{} {}\t{}",
                    p.provider_id,
                    p.npi.as_deref().unwrap_or("-"),
                    p.first_name.as_deref().unwrap_or("-"),
                    p.last_name.as_deref().unwrap_or("-"),
                    p.first_seen_at
                );
            }
        }
        CredentialingCommand::Link {
            provider_id,
            idp_id,
        } => {
            let context = CredentialingContext::from_config(ctx.config);
            let v =
                credentialing::link(ctx.pool, &context, &provider_id, &idp_id, &ctx.actor).await?;
            println!("linked: {provider_id} -> {}", v.idp_id);
            println!("standing: {}", v.standing);
        }
    }
    Ok(())
}
