//! What operators' probes read of the shared database.

use sqlx::PgPool;

/// Whether the database answers and carries every migration this binary expects.
pub async fn is_migrated(db: &PgPool) -> Result<bool, sqlx::Error> {
    crate::store::is_migrated(db).await
}

/// Jobs in each state of the outbox, every state listed (zero when none).
pub async fn job_counts(db: &PgPool) -> Result<Vec<(&'static str, i64)>, sqlx::Error> {
    let counts = crate::store::jobs::counts_by_state(db).await?;
    Ok(crate::jobs::STATES
        .iter()
        .map(|s| {
            let n = counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
            (*s, n)
        })
        .collect())
}
