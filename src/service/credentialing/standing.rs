//! From a stored event to standing: its facts replace older facts of the same kind, the
//! individual's standing is computed again from all the latest facts of its providers, and a
//! change suspends or restores its addresses, is audited with its event and told to ops.
//!
//! Order: each run locks the provider's row, then the individual's standing row, so events of
//! one provider are applied one at a time, and a fact only replaces one that happened earlier
//! by the events' own timestamps. Whatever order two workers finish in, the standing is the
//! one the latest facts give.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{CredentialingContext, NOTIFY_JOB};
use crate::domain::credentialing::{self as rules, EventType, Standing};
use crate::jobs::{self, Job, JobError};
use crate::store;
use crate::store::credentialing::{self as sql, NewFact};
use crate::webhooks::{EndpointAuth, Signed};

fn transient(e: impl std::fmt::Display) -> JobError {
    JobError::Transient(e.to_string())
}

/// The job: applies one stored event. Idempotent: a processed event is left alone.
pub async fn process(db: &PgPool, ctx: &CredentialingContext, job: &Job) -> Result<(), JobError> {
    let id = job.payload["eventId"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| JobError::Permanent("payload has no eventId".into()))?;
    let mut tx = db.begin().await.map_err(transient)?;
    let Some(event) = sql::event(&mut tx, id).await.map_err(transient)? else {
        return Err(JobError::Permanent("no such credentialing event".into()));
    };
    if event.processed_at.is_some() {
        return Ok(());
    }
    if let Some(provider_id) = event.provider_id {
        let link = sql::lock_provider(&mut tx, provider_id)
            .await
            .map_err(transient)?
            .flatten();
        // A row written by this very event's transaction: re-read under the lock.
        let Some(event) = sql::event(&mut tx, id).await.map_err(transient)? else {
            return Err(JobError::Permanent("no such credentialing event".into()));
        };
        if event.processed_at.is_some() {
            return Ok(());
        }
        let event_type: EventType = event
            .event_type
            .parse()
            .map_err(|_| JobError::Permanent("stored event has an unknown type".into()))?;
        for fact in rules::facts(event_type, &event.payload, &ctx.rules, job.now) {
            sql::upsert_fact(
                &mut tx,
                &NewFact {
                    provider_id,
                    key: &fact.key,
                    effect: fact.effect.as_str(),
                    reason: &fact.reason,
                    occurred_at: event.occurred_at,
                    received_at: event.received_at,
                    event_id: event.id,
                },
            )
            .await
            .map_err(transient)?;
        }
        if let Some(idp_id) = link {
            recompute(&mut tx, ctx, idp_id, Some((event.id, event_type)), job.now)
                .await
                .map_err(transient)?;
        }
    }
    sql::mark_processed(&mut tx, id, job.now)
        .await
        .map_err(transient)?;
    tx.commit().await.map_err(transient)?;
    metrics::counter!("gateway_credentialing_events_processed_total").increment(1);
    Ok(())
}

/// Computes an individual's standing from the latest facts of all its providers and applies
/// a change. `cause` is the event being applied (None: ops linked a provider).
pub async fn recompute(
    conn: &mut PgConnection,
    ctx: &CredentialingContext,
    idp_id: i64,
    cause: Option<(Uuid, EventType)>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let current = sql::lock_standing(conn, idp_id).await?;
    let facts = sql::facts_of_individual(conn, idp_id).await?;
    let worst = facts
        .iter()
        .filter_map(|f| Standing::parse(&f.effect))
        .max()
        .unwrap_or(Standing::Good);
    let mut reasons: Vec<&str> = facts
        .iter()
        .filter(|f| Standing::parse(&f.effect) == Some(worst))
        .map(|f| f.reason.as_str())
        .collect();
    reasons.sort_unstable();
    reasons.dedup();
    let reason = if worst == Standing::Good {
        "good".to_owned()
    } else {
        reasons.join(", ")
    };
    // The event behind the change: the one applied now, else the latest fact of the worst kind.
    let event_id = cause.map(|(id, _)| id).or_else(|| {
        facts
            .iter()
            .filter(|f| Standing::parse(&f.effect) == Some(worst))
            .max_by_key(|f| f.occurred_at)
            .map(|f| f.event_id)
    });
    let old = Standing::parse(&current.standing).unwrap_or(Standing::Good);
    if worst == Standing::Restricted {
        // Also catches an address that became theirs while restricted.
        let suspended = sql::suspend_addresses(conn, idp_id, &reason, event_id).await?;
        audit_addresses(conn, &suspended, "address.suspend", event_id).await?;
    }
    if old == worst && current.reason == reason {
        return Ok(());
    }
    sql::set_standing(
        conn,
        idp_id,
        old.as_str(),
        worst.as_str(),
        &reason,
        event_id,
        now,
    )
    .await?;
    if old == worst {
        return Ok(());
    }
    let actor = event_id.map_or_else(
        || "credentialing".to_owned(),
        |e| format!("credentialing-event:{e}"),
    );
    let action = format!("credentialing.standing.{}", worst.as_str());
    store::audit::record(
        conn,
        store::audit::AuditEntry {
            actor: &actor,
            action: &action,
            object_type: "verified_individual",
            object_id: &idp_id.to_string(),
            request_id: None,
        },
    )
    .await?;
    if old == Standing::Restricted {
        let restored = sql::restore_addresses(conn, idp_id).await?;
        audit_addresses(conn, &restored, "address.restore", event_id).await?;
    }
    tracing::info!(idp_id, old = %old, new = %worst, reason, "credentialing standing changed");
    metrics::counter!("gateway_credentialing_standing_changes_total", "to" => worst.as_str())
        .increment(1);
    if ctx.ops_url.is_some() {
        let addresses = sql::addresses_of(conn, idp_id).await?;
        let mut resellers: Vec<String> = addresses
            .iter()
            .map(|a| a.reseller_id.to_string())
            .collect();
        resellers.sort();
        resellers.dedup();
        let body = json!({
            "type": "credentialing.standing.changed",
            "idpId": idp_id,
            "old": old.as_str(),
            "new": worst.as_str(),
            "reason": reason,
            "eventId": event_id,
            "eventType": cause.map(|(_, t)| t.as_str()),
            "at": now.to_rfc3339(),
            "addresses": addresses.iter().map(|a| json!({"address": a.address, "status": a.status})).collect::<Vec<_>>(),
            "resellers": resellers,
        });
        jobs::enqueue(conn, &ctx.notify_retry, NOTIFY_JOB, json!({ "body": body })).await?;
    }
    Ok(())
}

async fn audit_addresses(
    conn: &mut PgConnection,
    ids: &[i64],
    action: &str,
    event_id: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    let actor = event_id.map_or_else(
        || "credentialing".to_owned(),
        |e| format!("credentialing-event:{e}"),
    );
    for id in ids {
        store::audit::record(
            conn,
            store::audit::AuditEntry {
                actor: &actor,
                action,
                object_type: "direct_address",
                object_id: &id.to_string(),
                request_id: None,
            },
        )
        .await?;
    }
    Ok(())
}

/// The job: POSTs one change of standing to the ops URL, signed (Standard Webhooks) when a
/// key is configured, through the egress guard.
pub async fn notify(ctx: &CredentialingContext, job: &Job) -> Result<(), JobError> {
    let Some(url) = ctx.ops_url.as_deref() else {
        // Unset since the change: nobody to tell.
        return Ok(());
    };
    let body: &Value = &job.payload["body"];
    if body.is_null() {
        return Err(JobError::Permanent("payload has no body".into()));
    }
    let bytes = serde_json::to_vec(body).map_err(|e| JobError::Permanent(e.to_string()))?;
    let webhook_id = format!("cred_{}", job.id);
    let signed = ctx.ops_key.as_ref().map(|key| Signed {
        key,
        id: &webhook_id,
        timestamp: Utc::now().timestamp(),
    });
    match ctx
        .pusher
        .post_json(url, &EndpointAuth::None, bytes, &webhook_id, signed)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if job.attempt >= job.max_attempts => Err(JobError::Permanent(e.to_string())),
        Err(e) => Err(JobError::Transient(e.to_string())),
    }
}
