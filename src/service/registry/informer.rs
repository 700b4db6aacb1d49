//! The informer: every version of a registry organization becomes a notification to each
//! subscriber, queued in the transaction that wrote the version, pushed in order per
//! organization and subscriber, retried, and dead-lettered visibly when it never gets through.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::message::{self, Parties, W};
use super::organization::{self, Shape, View};
use super::{RegistryContext, new_message_id};
use crate::domain::Invalid;
use crate::domain::registry::{OrgRecord, RegistryStatus};
use crate::error::{AppError, AppResult};
use crate::jobs::{self, Job, JobError, JobRegistry, RetryPolicy};
use crate::service::Actor;
use crate::store::{self, registry as rows};
use crate::webhooks::EndpointAuth;

pub const ADD: &str = "PRPM_IN401010UV01";
pub const UPDATE: &str = "PRPM_IN403030UV01";
pub const NULLIFY: &str = "PRPM_IN402010UV01";
pub const ACTIVATE: &str = "PRPM_IN404010UV01";

pub const NOTIFY_JOB: &str = "hl7.notify";
/// Purpose of the sealed credentials we present to subscribers.
const AUTH_PURPOSE: &str = "hisp-gateway hl7 subscriber auth";
/// Most Direct addresses listed in one organization's telecoms.
pub const MAX_DIRECT_TELECOMS: i64 = 50;

/// Queues the notification of version `version` of `cid` for every active subscriber.
pub async fn enqueue_all(
    tx: &mut PgConnection,
    retry: &RetryPolicy,
    cid: i64,
    version: i32,
    interaction: &str,
) -> Result<(), sqlx::Error> {
    for sub in rows::active_subscriber_ids(tx).await? {
        // One chain per subscriber and organization: its notifications arrive in version
        // order, and a subscriber that is down holds up only itself.
        jobs::enqueue_chained(
            tx,
            retry,
            NOTIFY_JOB,
            &format!("hl7:{sub}:{cid}"),
            json!({
                "subscriber": sub,
                "certified_id": cid,
                "version": version,
                "interaction": interaction,
            }),
        )
        .await?;
    }
    Ok(())
}

pub fn register_jobs(registry: &mut JobRegistry, db: PgPool, ctx: Arc<RegistryContext>) {
    registry.register(NOTIFY_JOB, move |job| {
        let (db, ctx) = (db.clone(), ctx.clone());
        async move { push(&db, &ctx, &job).await }
    });
}

fn transient(e: impl std::fmt::Display) -> JobError {
    JobError::Transient(e.to_string())
}

/// The Direct domains and addresses of a certified organization, as `mailto:` telecoms.
pub async fn direct_telecoms(
    conn: &mut PgConnection,
    cid: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let mut out: Vec<String> = rows::domains_of(conn, cid)
        .await?
        .into_iter()
        .map(|(_, d, _)| d)
        .collect();
    out.extend(rows::addresses_of(conn, cid, MAX_DIRECT_TELECOMS).await?);
    Ok(out)
}

/// The notification message of one version.
#[allow(clippy::too_many_arguments)]
pub fn render(
    ctx: &RegistryContext,
    interaction: &str,
    cid: i64,
    version: i32,
    status: RegistryStatus,
    record: &OrgRecord,
    direct: &[String],
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    let (trigger, shape) = match interaction {
        ADD => ("PRPM_TE401010UV01", Shape::Full),
        NULLIFY => ("PRPM_TE402010UV01", Shape::Nullified),
        ACTIVATE => ("PRPM_TE404010UV01", Shape::Activated),
        _ => ("PRPM_TE403010UV01", Shape::Full),
    };
    let mut w = W::default();
    let parties = Parties {
        us: &ctx.config.device_id,
        peer: None,
    };
    message::open(
        &mut w,
        interaction,
        &new_message_id(ctx),
        now,
        "NE",
        &parties,
    );
    w.raw("<controlActProcess classCode=\"CACT\" moodCode=\"EVN\">");
    w.raw(&format!(
        "<code code=\"{trigger}\" codeSystem=\"{}\"/>",
        message::TRIGGER_ROOT
    ));
    let view = View {
        record,
        status,
        registry_id: ctx.registry_id(cid),
        direct,
    };
    organization::event(
        &mut w,
        &ctx.config.registry_root_oid,
        shape,
        &view,
        version,
        at,
    );
    w.raw(&format!("</controlActProcess></{interaction}>"));
    w.0
}

async fn push(db: &PgPool, ctx: &RegistryContext, job: &Job) -> Result<(), JobError> {
    let bad = |what: &str| JobError::Permanent(format!("bad {what} in payload"));
    let sub: Uuid = job.payload["subscriber"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("subscriber"))?;
    let cid = job.payload["certified_id"]
        .as_i64()
        .ok_or_else(|| bad("certified_id"))?;
    let version = job.payload["version"]
        .as_i64()
        .and_then(|v| i32::try_from(v).ok())
        .ok_or_else(|| bad("version"))?;
    let interaction = job.payload["interaction"]
        .as_str()
        .filter(|i| [ADD, UPDATE, NULLIFY, ACTIVATE].contains(i))
        .ok_or_else(|| bad("interaction"))?;
    let Some(subscriber) = rows::subscriber(db, sub).await.map_err(transient)? else {
        return Err(JobError::Permanent("the subscriber is gone".into()));
    };
    if subscriber.status != "active" {
        // Removed since: nothing to tell it.
        return Ok(());
    }
    let v = rows::version(db, cid, version)
        .await
        .map_err(transient)?
        .ok_or_else(|| JobError::Permanent("no such version".into()))?;
    let record: OrgRecord =
        serde_json::from_value(v.record).map_err(|e| JobError::Permanent(e.to_string()))?;
    let status: RegistryStatus = v
        .status
        .parse()
        .map_err(|e: Invalid| JobError::Permanent(e.to_string()))?;
    let mut conn = db.acquire().await.map_err(transient)?;
    let direct = direct_telecoms(&mut conn, cid).await.map_err(transient)?;
    drop(conn);
    let body = render(
        ctx,
        interaction,
        cid,
        version,
        status,
        &record,
        &direct,
        v.at,
        job.now,
    );
    let auth: EndpointAuth = match &subscriber.auth {
        None => EndpointAuth::None,
        Some(sealed) => {
            let raw = ctx
                .kek
                .open_bytes(AUTH_PURPOSE, sealed)
                .map_err(|e| JobError::Permanent(e.to_string()))?;
            serde_json::from_slice(&raw).map_err(|e| JobError::Permanent(e.to_string()))?
        }
    };
    let url =
        reqwest::Url::parse(&subscriber.url).map_err(|e| JobError::Permanent(e.to_string()))?;
    // Written addresses skip resolution, where the guard sits: checked here.
    ctx.egress
        .check_url(&url)
        .map_err(|e| JobError::Permanent(e.to_string()))?;
    let mut req = ctx
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/hl7-v3+xml")
        .header("Idempotency-Key", format!("hl7_{}", job.id));
    req = match &auth {
        EndpointAuth::None => req,
        EndpointAuth::Basic { username, password } => req.basic_auth(username, Some(password)),
        EndpointAuth::Header { name, value } => req.header(name.as_str(), value.as_str()),
    };
    let outcome = match req.body(body).send().await {
        Ok(r) if r.status().is_success() => return Ok(()),
        Ok(r) => format!("the subscriber answered {}", r.status().as_u16()),
        Err(e) if let Some(r) = crate::egress::refusal_in(&e) => r.to_string(),
        Err(e) if e.is_timeout() => "the subscriber did not answer in time".into(),
        Err(e) => format!("the subscriber is unreachable: {e}"),
    };
    if job.attempt >= job.max_attempts {
        // Dead after its last attempt: visible in `jobs list --state dead`.
        Err(JobError::Permanent(outcome))
    } else {
        Err(JobError::Transient(outcome))
    }
}

/// A subscriber as ops see it (never its credentials).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Subscriber {
    pub id: Uuid,
    pub url: String,
    pub auth: &'static str,
    pub created_at: DateTime<Utc>,
}

fn view(r: &rows::SubscriberRow) -> Subscriber {
    Subscriber {
        id: r.id,
        url: r.url.clone(),
        auth: if r.auth.is_some() { "sealed" } else { "none" },
        created_at: r.created_at,
    }
}

/// Registers a subscriber URL (checked against the egress guard) with the credentials we
/// present to it, sealed.
pub async fn add_subscriber(
    db: &PgPool,
    ctx: &RegistryContext,
    url: &str,
    auth: Option<EndpointAuth>,
    actor: &Actor,
) -> AppResult<Subscriber> {
    let url = crate::webhooks::parse_endpoint_url(url, &ctx.egress)
        .map_err(|m| AppError::Invalid(Invalid::new("url", m)))?;
    let sealed = match auth.filter(|a| *a != EndpointAuth::None) {
        None => None,
        Some(a) => {
            let raw = serde_json::to_vec(&a).map_err(|e| AppError::Internal(e.into()))?;
            Some(ctx.kek.seal_bytes(AUTH_PURPOSE, &raw)?)
        }
    };
    let mut tx = db.begin().await?;
    let row = rows::insert_subscriber(&mut tx, Uuid::new_v4(), &url, sealed.as_deref()).await?;
    store::audit::record(
        &mut tx,
        actor.audit(
            "registry.subscriber.add",
            "registry_subscriber",
            &row.id.to_string(),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(view(&row))
}

pub async fn list_subscribers(db: &PgPool) -> AppResult<Vec<Subscriber>> {
    Ok(rows::subscribers(db).await?.iter().map(view).collect())
}

pub async fn remove_subscriber(db: &PgPool, id: Uuid, actor: &Actor) -> AppResult<()> {
    let mut tx = db.begin().await?;
    if !rows::remove_subscriber(&mut tx, id).await? {
        return Err(AppError::NotFound(format!("subscriber {id}")));
    }
    store::audit::record(
        &mut tx,
        actor.audit(
            "registry.subscriber.remove",
            "registry_subscriber",
            &id.to_string(),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
