//! `hisp-gateway messaging`: which vendor may use which organization's addresses.

use clap::Subcommand;
use uuid::Uuid;

use super::Ctx;
use crate::service;

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

pub async fn run(command: MessagingCommand, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let (pool, actor) = (ctx.pool, &ctx.actor);
    let messaging = service::messaging::MessagingContext::from_config(ctx.config);
    match command {
        MessagingCommand::Grant { client, domain } => {
            let g =
                service::messaging::admin::grant(pool, &messaging, client, &domain, actor).await?;
            println!(
                "granted {} ({}) to {}",
                g.domain, g.organization_status, g.client_id
            );
        }
        MessagingCommand::Revoke { client, domain } => {
            service::messaging::admin::revoke(pool, client, &domain, actor).await?;
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
            service::messaging::admin::set_address_enabled(pool, &address, enable, actor).await?;
            let word = if enable { "enabled" } else { "disabled" };
            println!("{address} {word}");
        }
    }
    Ok(())
}
