//! Demo data: one client of every kind and a few verified identities, so a newcomer can try
//! every front door at once; `first_message` sets up one organization to send with.

pub mod first_message;

use std::fmt::Write;

use sqlx::PgPool;

use super::{Actor, clients, clients::CreatedClient, identity_import};
use crate::domain::client::{Client, ClientKind, ClientStatus};
use crate::domain::identity::VerifiedOrganization;
use crate::domain::offer::Cents;
use crate::error::AppError;

const DEMO_ORGANIZATIONS: &str = "\
certified_id,name,tax_id,state,npi,address_line1,address_line2,city,zip,healthcare_provider,verified_at
90001,Demo Family Practice,11-1111111,MA,1234567893,100 Main Street,Suite 2,Springfield,01103,true,2026-01-15
90002,Demo Community Hospital,22-2222222,NY,1987654328,200 Hospital Road,,Albany,12208,true,2026-02-01
90003,Demo Billing Services,33-3333333,TX,,300 Commerce Street,,Austin,78701,false,2026-03-10
";

const DEMO_INDIVIDUALS: &str = "\
idp_id,first_name,last_name,date_of_birth,ssn_last4,verified_at
80001,Alex,Demo,1975-04-12,1111,2026-01-15
80002,Jordan,Sample,1982-09-30,2222,2026-02-01
80003,Casey,Example,1990-12-05,3333,2026-03-10
";

/// The demo reseller's credit: enough to provision every demo organization with a 10-address
/// offer, even with NLP, besides the demo's own (a unit test checks it against the default
/// prices), so a newcomer does not run out of money while trying the SOAP door.
pub const DEMO_RESELLER_CENTS: i64 = 1_000_000;

/// Creates a client of every kind and upserts the demo identities; returns the new credentials.
pub async fn seed(
    db: &PgPool,
    identity_key: &[u8],
    actor: &Actor,
) -> Result<Vec<CreatedClient>, AppError> {
    let orgs =
        identity_import::parse_organizations("demo organizations", DEMO_ORGANIZATIONS.as_bytes())
            .map_err(|e| anyhow::anyhow!("demo organizations: {e:?}"))?;
    let inds = identity_import::parse_individuals("demo individuals", DEMO_INDIVIDUALS.as_bytes())
        .map_err(|e| anyhow::anyhow!("demo individuals: {e:?}"))?;
    identity_import::import(db, &orgs, &inds, identity_key, actor).await?;
    let mut created = Vec::new();
    for kind in ClientKind::ALL {
        let name = client_name(kind);
        let client = clients::create(db, kind, &name, actor).await?;
        if kind == ClientKind::Reseller {
            let amount = Cents(DEMO_RESELLER_CENTS);
            let now = chrono::Utc::now();
            super::accounts::credit(db, client.client.id, amount, Some("demo"), actor, now).await?;
        }
        created.push(client);
    }
    Ok(created)
}

fn client_name(kind: ClientKind) -> String {
    format!("Demo {kind}")
}

fn demo_organizations() -> Vec<VerifiedOrganization> {
    identity_import::parse_organizations("demo organizations", DEMO_ORGANIZATIONS.as_bytes())
        .expect("the demo organizations are valid (a unit test parses them)")
}

/// The seeded demo client of `kind` (the first, if seeded twice), when it is still active.
pub async fn find_client(db: &PgPool, kind: ClientKind) -> Result<Option<Client>, AppError> {
    let name = client_name(kind);
    Ok(clients::list(db)
        .await?
        .into_iter()
        .find(|c| c.kind == kind && c.name == name && c.status == ClientStatus::Active))
}

/// What a person sees after seeding: the credentials (shown only this once), a first call,
/// which demo organizations may be provisioned how, and what to do next. `ca_ready` says
/// whether a CA exists: without one, provisioning answers 099.
pub fn banner(created: &[CreatedClient], base_url: &str, ca_ready: bool) -> String {
    let mut s = String::from(
        "Demo data seeded. Client credentials (shown only once; secrets are stored hashed):\n",
    );
    for c in created {
        let _ = writeln!(
            s,
            "  {:<14} id={}  secret={}",
            c.client.kind.as_str(),
            c.client.id,
            c.secret
        );
    }
    if let Some(ops) = created.iter().find(|c| c.client.kind == ClientKind::Ops) {
        let _ = writeln!(
            s,
            "Try it:\n  curl -u {}:{} {base_url}/api/v1/whoami",
            ops.client.id, ops.secret
        );
    }
    let _ = writeln!(s, "Verified demo organizations (certified_id):");
    for o in demo_organizations() {
        let what = if o.healthcare_provider {
            "healthcare provider: may be provisioned as CoveredEntity"
        } else {
            "not a healthcare provider: BusinessAssociate or HealthEntity only"
        };
        let _ = writeln!(s, "  {}  {:<24} {what}", o.certified_id.get(), o.name);
    }
    let _ = writeln!(s, "Verified demo individuals (idp_id): 80001-80003.");
    if ca_ready {
        let _ = writeln!(
            s,
            "The reseller has {} to provision with: WSDL at {base_url}/registration/services/OrganizationRegistrationService?wsdl",
            Cents(DEMO_RESELLER_CENTS)
        );
    } else {
        let _ = writeln!(
            s,
            "no CA yet: run `hisp-gateway ca init` (until then provisioning answers 099); the reseller has {} to provision with",
            Cents(DEMO_RESELLER_CENTS)
        );
    }
    let _ = writeln!(
        s,
        "A first message: in another shell, `hisp-gateway demo` (with cargo: `cargo run --release -- demo`) sets up {} and prints the curls to send, receive and acknowledge it.",
        first_message::SUMMARY
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::offer::Offer;

    #[test]
    fn the_demo_data_parses() {
        assert_eq!(demo_organizations().len(), 3);
        identity_import::parse_individuals("demo individuals", DEMO_INDIVIDUALS.as_bytes())
            .unwrap();
    }

    #[test]
    fn the_demo_reseller_can_provision_every_demo_organization() {
        let offers = crate::config::Config::defaults().offers;
        let price = |o: &str| {
            crate::service::provisioning::offer_price(&offers, o.parse::<Offer>().unwrap())
                .unwrap()
                .0
        };
        let every_org_with_ten = price("CDONLP10") * demo_organizations().len() as i64;
        let needed = every_org_with_ten + price(first_message::OFFER);
        assert!(
            DEMO_RESELLER_CENTS >= needed,
            "{DEMO_RESELLER_CENTS} < {needed}"
        );
    }

    #[test]
    fn the_banner_names_the_healthcare_providers_and_the_ca() {
        let b = banner(&[], "http://gw", true);
        let line = |id: &str| b.lines().find(|l| l.trim_start().starts_with(id)).unwrap();
        assert!(line("90001").contains("healthcare provider: may"), "{b}");
        assert!(line("90002").contains("healthcare provider: may"), "{b}");
        assert!(line("90003").contains("not a healthcare provider"), "{b}");
        assert!(b.contains("The reseller has 10000.00"), "{b}");
        assert!(!b.contains("no CA yet"), "{b}");
        let b = banner(&[], "http://gw", false);
        assert!(b.contains("no CA yet: run `hisp-gateway ca init`"), "{b}");
    }
}
