//! `hisp-gateway identity`: verified identities from CSV files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::Ctx;
use crate::service::identity_import::{self, ImportError};

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

pub async fn run(command: IdentityCommand, ctx: &Ctx<'_>) -> anyhow::Result<ExitCode> {
    let IdentityCommand::Import { orgs, individuals } = command;
    anyhow::ensure!(
        orgs.is_some() || individuals.is_some(),
        "give --orgs FILE.csv and/or --individuals FILE.csv"
    );
    let key = ctx.config.security.identity_hash_key.clone();
    let open =
        |p: &Option<PathBuf>| -> anyhow::Result<Option<(String, Box<dyn std::io::Read + Send>)>> {
            p.as_ref()
                .map(|p| {
                    let f = std::fs::File::open(p)
                        .with_context(|| format!("opening {}", p.display()))?;
                    Ok((
                        p.display().to_string(),
                        Box::new(f) as Box<dyn std::io::Read + Send>,
                    ))
                })
                .transpose()
        };
    let (o, i) = (open(&orgs)?, open(&individuals)?);
    let result =
        identity_import::import_readers(ctx.pool, o, i, key.expose().as_bytes(), &ctx.actor).await;
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
    Ok(ExitCode::SUCCESS)
}
