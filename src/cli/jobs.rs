//! `hisp-gateway jobs`: the outbox, seen and nudged by an operator.

use std::process::ExitCode;

use clap::Subcommand;

use super::Ctx;
use crate::service;

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

pub async fn run(command: JobsCommand, ctx: &Ctx<'_>) -> anyhow::Result<ExitCode> {
    match command {
        JobsCommand::List { state, limit } => {
            println!(
                "{:>8}  {:<8}  {:<24}  {:>8}  {:<20}  last_error",
                "id", "state", "kind", "attempts", "run_at"
            );
            for j in service::jobs::list(ctx.pool, state.as_deref(), limit).await? {
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
        JobsCommand::Retry { id } => match service::jobs::retry(ctx.pool, id, &ctx.actor).await {
            Ok(()) => println!("job {id} is queued again"),
            Err(e @ crate::error::AppError::Conflict(_)) => {
                eprintln!("{e}");
                return Ok(ExitCode::FAILURE);
            }
            Err(e) => return Err(e.into()),
        },
    }
    Ok(ExitCode::SUCCESS)
}
