//! `hisp-gateway demo`: a first message in a minute. Seeds the demo data if it is not there,
//! provisions demo organization 90001 with two addresses for the demo reseller, grants them to
//! the demo vendor, and prints the `curl` lines that send a message from one to the other,
//! receive it, acknowledge it and show it DISPATCHED. Safe to run again: it reuses what exists
//! and prints a fresh message.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;

use super::Ctx;
use crate::domain::client::ClientKind;
use crate::jobs::Worker;
use crate::service::demo::{self, first_message};
use crate::service::messaging::MessagingContext;
use crate::service::pki::{self, PkiContext};

/// How long to wait for the organization's certificate when a server's worker took its job.
const ACTIVATION_WAIT: Duration = Duration::from_secs(60);

pub async fn run(ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let (config, db, actor) = (ctx.config, ctx.pool, &ctx.actor);
    let pki_ctx = PkiContext::from_config(config);
    let base_url = &config.http.public_base_url;
    // The same rule as the server's start: the embedded mode makes its CA itself; with
    // DATABASE_URL, creating a CA stays an explicit `ca init`.
    if config.uses_embedded_database()
        && let Some(ca) = pki::ensure_ca(db, &pki_ctx, actor, Utc::now()).await?
    {
        tracing::info!(root = %ca.root_subject, "created the CA (embedded database)");
    }
    let ca_ready = pki::has_ca(db).await?;

    let (reseller, vendor) = match (
        demo::find_client(db, ClientKind::Reseller).await?,
        demo::find_client(db, ClientKind::Vendor).await?,
    ) {
        (Some(r), Some(v)) => (r, v),
        _ => {
            let key = config.security.identity_hash_key.expose().as_bytes();
            let created = demo::seed(db, key, actor).await?;
            println!("{}", demo::banner(&created, base_url, ca_ready));
            let of = |kind| {
                created
                    .iter()
                    .find(|c| c.client.kind == kind)
                    .map(|c| c.client.clone())
                    .expect("seeding makes a client of every kind")
            };
            (of(ClientKind::Reseller), of(ClientKind::Vendor))
        }
    };
    if !ca_ready {
        return Err(first_message::no_ca().into());
    }

    let key = config.security.identity_hash_key.expose().as_bytes();
    let provisioned =
        first_message::provision(db, &pki_ctx, &config.offers, key, reseller.id, actor)
            .await
            .context("provisioning the demo organization")?;
    // Issue its certificate now rather than waiting for a server's worker (as `ca issue`).
    let registry = crate::state::AppState::new(config.clone(), db.clone()).job_registry();
    Worker::new(db.clone(), registry, &config.jobs)
        .run_until_idle()
        .await?;
    if !first_message::wait_until_activated(db, ACTIVATION_WAIT).await? {
        anyhow::bail!(
            "{} is not Activated yet: its certificate was not issued (see `hisp-gateway jobs list`)",
            first_message::DOMAIN
        );
    }
    let messaging = MessagingContext::from_config(config);
    let vendor = first_message::grant_and_renew_secret(db, &messaging, vendor.id, actor).await?;

    let what = if provisioned {
        "provisioned now"
    } else {
        "already provisioned"
    };
    println!(
        "Demo organization {} ({what}): {} and {}, granted to the demo vendor {}.",
        first_message::DOMAIN,
        first_message::address(first_message::SENDER),
        first_message::address(first_message::RECIPIENT),
        vendor.client.id
    );
    println!(
        "The demo vendor has a new secret, in the lines below (shown only here; earlier ones no longer work)."
    );
    println!("Paste these into a shell while the gateway runs:\n");
    print!(
        "{}",
        first_message::curls(&vendor, base_url, &first_message::new_message_id())
    );
    Ok(())
}
