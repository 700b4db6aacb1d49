//! `hisp-gateway trust`: anchors per domain, peer certificates, trust bundles.

use std::path::PathBuf;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;

use super::Ctx;
use crate::service::trust::{self, PeerTarget, TrustContext};

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust anchors of hosted domains.
    #[command(subcommand)]
    Anchors(AnchorsCommand),
    /// Certificates of peers that publish none in DNS.
    #[command(subcommand)]
    Peers(PeersCommand),
    /// Trust bundles (a PKCS#7 file of anchors at a URL, fetched again on a schedule).
    #[command(subcommand)]
    Bundles(BundlesCommand),
}

#[derive(Debug, Subcommand)]
pub enum AnchorsCommand {
    /// Add the CA certificates of a PEM file as anchors of a domain.
    Add {
        #[arg(long)]
        domain: String,
        file: PathBuf,
    },
    /// List anchors (of one domain, or all).
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    /// Remove an uploaded anchor.
    Remove { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum PeersCommand {
    /// Add the certificates of a PEM file for a peer domain or one peer address.
    Add {
        #[arg(long, conflicts_with = "address", required_unless_present = "address")]
        domain: Option<String>,
        #[arg(long)]
        address: Option<String>,
        file: PathBuf,
    },
    /// List peer certificates (of one domain, or all).
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    /// Remove a peer certificate.
    Remove { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum BundlesCommand {
    /// Add a bundle URL to a domain and fetch it once now.
    Add {
        #[arg(long)]
        domain: String,
        url: String,
    },
    /// List bundles with their last refresh and error.
    List {
        #[arg(long)]
        domain: Option<String>,
    },
    /// Remove a bundle and the anchors it gave.
    Remove { id: i64 },
    /// Fetch a bundle now.
    Refresh { id: i64 },
}

fn read(file: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
}

fn show_anchor(a: &trust::Anchor) {
    println!(
        "{}\t{}\t{}\t{}\t{}\t{}",
        a.id,
        a.domain,
        a.source,
        a.fingerprint,
        a.not_after.format("%Y-%m-%d"),
        a.subject
    );
}

fn show_peer(p: &trust::PeerCertificate) {
    println!(
        "{}\t{}\t{}\t{}\t{}\t{}",
        p.id,
        p.address.as_deref().unwrap_or(&p.domain),
        p.fingerprint,
        p.not_after.format("%Y-%m-%d"),
        p.subject,
        p.domain
    );
}

fn show_bundle(b: &trust::Bundle) {
    println!(
        "{}\t{}\t{}\tanchors={}\trefreshed={}\terror={}",
        b.id,
        b.domain,
        b.url,
        b.anchors,
        b.refreshed_at
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "never".into()),
        b.last_error.as_deref().unwrap_or("-")
    );
}

pub async fn run(command: TrustCommand, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let (pool, actor) = (ctx.pool, &ctx.actor);
    match command {
        TrustCommand::Anchors(c) => match c {
            AnchorsCommand::Add { domain, file } => {
                let added = trust::add_anchors(pool, &domain, &read(&file)?, actor).await?;
                println!("added {} anchor(s)", added.len());
                added.iter().for_each(show_anchor);
            }
            AnchorsCommand::List { domain } => {
                trust::list_anchors(pool, domain.as_deref())
                    .await?
                    .iter()
                    .for_each(show_anchor);
            }
            AnchorsCommand::Remove { id } => {
                let a = trust::remove_anchor(pool, id, actor).await?;
                println!("removed anchor {} of {}", a.id, a.domain);
            }
        },
        TrustCommand::Peers(c) => match c {
            PeersCommand::Add {
                domain,
                address,
                file,
            } => {
                let target = PeerTarget::parse(domain.as_deref(), address.as_deref())?;
                let added = trust::add_peers(pool, &target, &read(&file)?, actor).await?;
                println!("added {} peer certificate(s)", added.len());
                added.iter().for_each(show_peer);
            }
            PeersCommand::List { domain } => {
                trust::list_peers(pool, domain.as_deref())
                    .await?
                    .iter()
                    .for_each(show_peer);
            }
            PeersCommand::Remove { id } => {
                let p = trust::remove_peer(pool, id, actor).await?;
                println!("removed peer certificate {}", p.id);
            }
        },
        TrustCommand::Bundles(c) => {
            let tctx = TrustContext::from_config(ctx.config);
            match c {
                BundlesCommand::Add { domain, url } => {
                    let b =
                        trust::add_bundle(pool, &tctx, &domain, &url, actor, Utc::now()).await?;
                    show_bundle(&b);
                }
                BundlesCommand::List { domain } => {
                    trust::list_bundles(pool, domain.as_deref())
                        .await?
                        .iter()
                        .for_each(show_bundle);
                }
                BundlesCommand::Remove { id } => {
                    let b = trust::remove_bundle(pool, id, actor).await?;
                    println!("removed bundle {} of {}", b.id, b.domain);
                }
                BundlesCommand::Refresh { id } => {
                    show_bundle(&trust::refresh_bundle(pool, &tctx, id, Utc::now()).await?);
                }
            }
        }
    }
    Ok(())
}
