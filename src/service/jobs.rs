//! Operator actions on the outbox.

use sqlx::PgPool;

use super::Actor;
use crate::error::{AppError, AppResult};
use crate::store::{self, audit::AuditEntry, jobs::JobRow};

pub async fn list(db: &PgPool, state: Option<&str>, limit: i64) -> AppResult<Vec<JobRow>> {
    Ok(store::jobs::list(db, state, limit.clamp(1, 10_000)).await?)
}

/// Puts a dead job back in the queue with a fresh set of attempts.
pub async fn retry(db: &PgPool, id: i64, actor: &Actor) -> AppResult<()> {
    let mut tx = db.begin().await?;
    if !store::jobs::requeue_dead(&mut tx, id).await? {
        return Err(AppError::Conflict(format!(
            "job {id} is not dead (or does not exist); nothing changed"
        )));
    }
    let object_id = id.to_string();
    let entry = AuditEntry {
        actor: &actor.name,
        action: "job.retry",
        object_type: "job",
        object_id: &object_id,
        request_id: actor.request_id.as_deref(),
    };
    store::audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(())
}
