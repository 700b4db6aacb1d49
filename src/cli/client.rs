//! `hisp-gateway client`: API clients.

use clap::Subcommand;
use uuid::Uuid;

use super::Ctx;
use crate::domain::client::ClientKind;
use crate::service;

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

pub async fn run(command: ClientCommand, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let (pool, actor) = (ctx.pool, &ctx.actor);
    match command {
        ClientCommand::Create { kind, name } => {
            let c = service::clients::create(pool, kind, &name, actor).await?;
            println!(
                "id: {}\nsecret: {}\nkind: {}\nname: {}",
                c.client.id, c.secret, c.client.kind, c.client.name
            );
            eprintln!("The secret is shown only this once; it is stored hashed.");
        }
        ClientCommand::List => {
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
        ClientCommand::Disable { id } => {
            let c = service::clients::disable(pool, id, actor).await?;
            println!("disabled {} ({})", c.id, c.name);
        }
    }
    Ok(())
}
