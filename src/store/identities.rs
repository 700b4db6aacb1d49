//! Verified identity rows. Imports upsert: a newer verification replaces an older one.

use sqlx::PgConnection;

use crate::domain::identity::{VerifiedIndividual, VerifiedOrganization};

pub async fn upsert_organization(
    conn: &mut PgConnection,
    o: &VerifiedOrganization,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO verified_organizations
           (certified_id, name, tax_id, state, npi, address_line1, address_line2, city, zip,
            healthcare_provider, verified_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (certified_id) DO UPDATE SET
           name = EXCLUDED.name, tax_id = EXCLUDED.tax_id, state = EXCLUDED.state,
           npi = EXCLUDED.npi, address_line1 = EXCLUDED.address_line1,
           address_line2 = EXCLUDED.address_line2, city = EXCLUDED.city, zip = EXCLUDED.zip,
           healthcare_provider = EXCLUDED.healthcare_provider,
           verified_at = EXCLUDED.verified_at, imported_at = now()",
    )
    .bind(o.certified_id.get())
    .bind(&o.name)
    .bind(o.tax_id.as_str())
    .bind(o.state.as_str())
    .bind(o.npi.as_ref().map(|n| n.as_str()))
    .bind(&o.address_line1)
    .bind(&o.address_line2)
    .bind(&o.city)
    .bind(o.zip.as_str())
    .bind(o.healthcare_provider)
    .bind(o.verified_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn upsert_individual(
    conn: &mut PgConnection,
    i: &VerifiedIndividual,
    ssn_last4_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO verified_individuals
           (idp_id, first_name, last_name, date_of_birth, ssn_last4_hash, verified_at, npi)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (idp_id) DO UPDATE SET
           first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
           date_of_birth = EXCLUDED.date_of_birth, ssn_last4_hash = EXCLUDED.ssn_last4_hash,
           verified_at = EXCLUDED.verified_at, npi = EXCLUDED.npi, imported_at = now()",
    )
    .bind(i.idp_id.get())
    .bind(&i.first_name)
    .bind(&i.last_name)
    .bind(i.date_of_birth)
    .bind(ssn_last4_hash)
    .bind(i.verified_at)
    .bind(i.npi.as_ref().map(|n| n.as_str()))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn counts(db: &sqlx::PgPool) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM verified_organizations), (SELECT count(*) FROM verified_individuals)",
    )
    .fetch_one(db)
    .await
}
