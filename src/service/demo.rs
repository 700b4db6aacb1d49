//! Demo data: one client of every kind and a few verified identities, so a newcomer can try
//! every front door at once.

use std::fmt::Write;

use sqlx::PgPool;

use super::{Actor, clients, clients::CreatedClient, identity_import};
use crate::domain::client::ClientKind;
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

const DEMO_RESELLER_CENTS: i64 = 100_000;

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
        let name = format!("Demo {kind}");
        let client = clients::create(db, kind, &name, actor).await?;
        if kind == ClientKind::Reseller {
            // Enough for a few provisioning calls over SOAP.
            let amount = crate::domain::offer::Cents(DEMO_RESELLER_CENTS);
            let now = chrono::Utc::now();
            super::accounts::credit(db, client.client.id, amount, Some("demo"), actor, now).await?;
        }
        created.push(client);
    }
    Ok(created)
}

/// What a person sees after seeding: the credentials (shown only this once) and a first call.
pub fn banner(created: &[CreatedClient], base_url: &str) -> String {
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
    let _ = writeln!(
        s,
        "Verified demo identities: organizations 90001-90003, individuals 80001-80003."
    );
    let _ = writeln!(
        s,
        "The reseller has 1000.00 to provision with: WSDL at {base_url}/registration/services/OrganizationRegistrationService?wsdl"
    );
    s
}
