//! `hisp-gateway applications` and `hisp-gateway trusted-agent`: Trusted-Agent certificate
//! applications reviewed from the command line (the operator acts as an officer), and the
//! organization each trusted agent belongs to.

use chrono::Utc;
use clap::Subcommand;
use uuid::Uuid;

use super::Ctx;
use crate::jobs::RetryPolicy;
use crate::service::certificate_applications::{self as applications, ApplicationView, ListQuery};
use crate::service::pki::PkiContext;

#[derive(Debug, Subcommand)]
pub enum ApplicationsCommand {
    /// List applications: the pending ones (Submitted) unless a status or address is given.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        address: Option<String>,
    },
    /// Show one application with the TA's notes and the time of each step.
    Show { id: Uuid },
    /// Approve: requests the certificate and creates the (pending) address in one commit.
    Approve {
        id: Uuid,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject, with the reason kept on the application.
    Reject {
        id: Uuid,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TrustedAgentCommand {
    /// Link a trusted-agent client to the organization of a Direct domain (re-linking moves it).
    Link {
        #[arg(long)]
        client: Uuid,
        #[arg(long)]
        domain: String,
    },
    /// List trusted agents and their organizations.
    List,
}

fn print(v: &ApplicationView) {
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    let time = |t: &Option<chrono::DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    println!("id: {}", v.id);
    println!("kind: {}", v.kind.as_str());
    println!("status: {}", v.status);
    println!(
        "organization: {} ({})",
        v.organization_name, v.organization_domain
    );
    println!(
        "trusted_agent: {} ({})",
        v.trusted_agent_name, v.trusted_agent_id
    );
    println!("hipaa_type: {} ({})", v.hipaa_type, v.certificate_category);
    println!("direct_address: {}", opt(&v.direct_address));
    println!("certificate_name: {}", v.certificate_name);
    println!("duration_years: {}", v.duration_years);
    println!("auto_renew: {}", v.auto_renew);
    println!("notes: {}", opt(&v.notes));
    println!("submitted_at: {}", v.submitted_at.to_rfc3339());
    println!("approved_at: {}", time(&v.approved_at));
    println!("rejected_at: {}", time(&v.rejected_at));
    println!("review_reason: {}", opt(&v.review_reason));
    println!("certificate_issued_at: {}", time(&v.certificate_issued_at));
    println!("provisioned_at: {}", time(&v.provisioned_at));
    println!("serial: {}", opt(&v.serial_number));
}

pub async fn run(command: ApplicationsCommand, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    let (pool, actor) = (ctx.pool, &ctx.actor);
    match command {
        ApplicationsCommand::List { status, address } => {
            let q = ListQuery {
                status: status.as_deref(),
                address: address.as_deref(),
            };
            println!(
                "{:<36}  {:<12}  {:<17}  {:<20}  address",
                "id", "kind", "status", "submitted"
            );
            for v in applications::list(pool, None, &q).await? {
                println!(
                    "{:<36}  {:<12}  {:<17}  {:<20}  {}",
                    v.id,
                    v.kind.as_str(),
                    v.status.as_str(),
                    v.submitted_at.format("%Y-%m-%d %H:%M:%S"),
                    v.direct_address
                        .as_deref()
                        .unwrap_or(&v.organization_domain)
                );
            }
        }
        ApplicationsCommand::Show { id } => print(&applications::get_any(pool, id).await?),
        ApplicationsCommand::Approve { id, reason } => {
            let pki = PkiContext::from_config(ctx.config);
            let v =
                applications::approve(pool, &pki, id, reason.as_deref(), actor, Utc::now()).await?;
            print(&v);
        }
        ApplicationsCommand::Reject { id, reason } => {
            let retry = RetryPolicy::from_config(&ctx.config.jobs);
            let v =
                applications::reject(pool, &retry, id, Some(&reason), actor, Utc::now()).await?;
            print(&v);
        }
    }
    Ok(())
}

pub async fn run_trusted_agent(command: TrustedAgentCommand, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    match command {
        TrustedAgentCommand::Link { client, domain } => {
            let l =
                applications::link_trusted_agent(ctx.pool, client, &domain, &ctx.actor, Utc::now())
                    .await?;
            println!(
                "linked {} ({}) to {} ({})",
                l.client_id, l.client_name, l.organization_domain, l.organization_name
            );
        }
        TrustedAgentCommand::List => {
            println!("{:<36}  {:<30}  organization", "client", "domain");
            for l in applications::trusted_agents(ctx.pool).await? {
                println!(
                    "{:<36}  {:<30}  {}",
                    l.client_id, l.organization_domain, l.organization_name
                );
            }
        }
    }
    Ok(())
}
