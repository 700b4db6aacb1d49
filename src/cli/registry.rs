//! `hisp-gateway registry`: the HL7 v3 organization registry's subscribers, and status changes
//! of registry organizations (which subscribers are told of like any other change).

use chrono::Utc;
use clap::Subcommand;

use super::Ctx;
use crate::domain::registry::RegistryStatus;
use crate::service::registry::{self, RegistryContext, informer};
use crate::webhooks::EndpointAuth;

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Systems told of every change to a registry organization (HL7 v3 notifications).
    #[command(subcommand)]
    Subscribers(SubscribersCommand),
    /// Set a registry organization's status: active, suspended, nullified (or pending).
    SetStatus { certified_id: i64, status: String },
}

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Add a subscriber URL, with the HTTP Basic credentials we present to it (read from
    /// GW_SUBSCRIBER_PASSWORD when a user is given, so it stays out of the shell history).
    Add {
        url: String,
        #[arg(long)]
        user: Option<String>,
    },
    List,
    Remove {
        id: uuid::Uuid,
    },
}

pub async fn run(command: RegistryCommand, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let rctx = RegistryContext::from_config(ctx.config);
    match command {
        RegistryCommand::Subscribers(SubscribersCommand::Add { url, user }) => {
            let auth = match user {
                None => None,
                Some(username) => Some(EndpointAuth::Basic {
                    username,
                    password: std::env::var("GW_SUBSCRIBER_PASSWORD").map_err(|_| {
                        anyhow::anyhow!("set GW_SUBSCRIBER_PASSWORD to the subscriber's password")
                    })?,
                }),
            };
            let s = informer::add_subscriber(ctx.pool, &rctx, &url, auth, &ctx.actor).await?;
            println!("id: {}\nurl: {}\nauth: {}", s.id, s.url, s.auth);
        }
        RegistryCommand::Subscribers(SubscribersCommand::List) => {
            for s in informer::list_subscribers(ctx.pool).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    s.id,
                    s.url,
                    s.auth,
                    s.created_at.to_rfc3339()
                );
            }
        }
        RegistryCommand::Subscribers(SubscribersCommand::Remove { id }) => {
            informer::remove_subscriber(ctx.pool, id, &ctx.actor).await?;
            println!("removed subscriber {id}");
        }
        RegistryCommand::SetStatus {
            certified_id,
            status,
        } => {
            let status = RegistryStatus::from_hl7(&status)?;
            let v = registry::set_status_by_cli(
                ctx.pool,
                &rctx,
                certified_id,
                status,
                &ctx.actor,
                Utc::now(),
            )
            .await?;
            println!(
                "certified_id: {certified_id}\nstatus: {}\nversion: {v}",
                status.as_str()
            );
        }
    }
    Ok(())
}
