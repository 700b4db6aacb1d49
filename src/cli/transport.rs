//! `hisp-gateway transport`: the Direct transport seen by an operator.

use clap::Subcommand;

use super::Ctx;
use crate::service;

#[derive(Debug, Subcommand)]
pub enum TransportCommand {
    /// Mail other HISPs sent us, newest first, with its outcome and the reason of a rejection.
    Inbound {
        #[arg(long, value_parser = ["received", "accepted", "rejected"])]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

pub async fn run(command: TransportCommand, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    match command {
        TransportCommand::Inbound { state, limit } => {
            println!(
                "{:<36}  {:<20}  {:<15}  {:<8}  {:>8}  reason",
                "id", "received_at", "peer", "state", "size"
            );
            for m in service::transport::inbound_mail(ctx.pool, state.as_deref(), limit).await? {
                println!(
                    "{:<36}  {:<20}  {:<15}  {:<8}  {:>8}  {}",
                    m.id,
                    m.received_at.format("%Y-%m-%d %H:%M:%S"),
                    m.peer,
                    m.state,
                    m.size,
                    m.reason.as_deref().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}
