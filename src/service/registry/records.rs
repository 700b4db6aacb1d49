//! Changes to registry organizations: add and update requests (fulfiller), notifications
//! (tracker), and the changes other doors make (a domain provisioned, a certificate revoked,
//! the CLI). Each change is one new version, written with its notifications to subscribers and
//! its audit record in one transaction.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::message::{self, Ack, Header, Parties, Problem, W, need};
use super::organization::{self, Shape, View};
use super::{Caller, Interaction, RegistryContext, informer, internal, new_message_id};
use crate::domain::pki::organization_status as org_status;
use crate::domain::registry::{Ii, NPI_ROOT, OrgRecord, RegistryStatus, TAX_ID_ROOT};
use crate::error::{AppError, AppResult};
use crate::jobs::RetryPolicy;
use crate::service::Actor;
use crate::store::{self, registry as rows};
use crate::xml::Element;

/// The notification a change publishes.
fn notification_of(change: &str) -> &'static str {
    match change {
        "add" => informer::ADD,
        "nullify" => informer::NULLIFY,
        "activate" => informer::ACTIVATE,
        _ => informer::UPDATE,
    }
}

/// Where the organization sits in a message: the subject of the registration request or
/// event. Returns the element and its path.
fn subject(root: &Element, interaction: Interaction) -> Result<(&Element, String), Problem> {
    let path = format!("/{}", root.name);
    let (cap, p) = need(root, &path, "controlActProcess")?;
    let (subj, p) = need(cap, &p, "subject")?;
    let act = match interaction {
        Interaction::AddRequest | Interaction::UpdateRequest => "registrationRequest",
        _ => "registrationEvent",
    };
    let (reg, p) = need(subj, &p, act)?;
    let (s1, p) = need(reg, &p, "subject1")?;
    let names: &[&str] = match interaction {
        Interaction::NullifyNotice
        | Interaction::NullifyIdentifiedNotice
        | Interaction::ActivateNotice
        | Interaction::ActivateIdentifiedNotice => &["assignedOrganization"],
        _ => &["assignedEntity", "qualifiedEntity"],
    };
    match names.iter().find_map(|n| s1.child(n)) {
        Some(e) => Ok((e, format!("{p}/{}", e.name))),
        None => Err(Problem::missing(format!("{p}/{}", names[0]))),
    }
}

/// Applies a change message and answers it.
pub(super) async fn apply(
    db: &PgPool,
    ctx: &RegistryContext,
    caller: &Caller,
    interaction: Interaction,
    header: &Header,
    root: &Element,
    now: DateTime<Utc>,
) -> Result<String, Problem> {
    let (el, path) = subject(root, interaction)?;
    let incoming = organization::read(el, &path)?;
    let actor = caller.actor();
    let (cid, record, status) = match interaction {
        Interaction::AddRequest | Interaction::AddNotice => {
            add(db, ctx, &actor, incoming, &path, now).await?
        }
        Interaction::UpdateRequest | Interaction::UpdateNotice => {
            update(db, ctx, &actor, incoming, &path, now).await?
        }
        Interaction::NullifyNotice | Interaction::NullifyIdentifiedNotice => {
            set_status(
                db,
                ctx,
                &actor,
                &incoming,
                &path,
                RegistryStatus::Nullified,
                now,
            )
            .await?
        }
        Interaction::ActivateNotice | Interaction::ActivateIdentifiedNotice => {
            set_status(
                db,
                ctx,
                &actor,
                &incoming,
                &path,
                RegistryStatus::Active,
                now,
            )
            .await?
        }
        _ => unreachable!("queries are answered by queries::answer"),
    };
    let parties = Parties {
        us: &ctx.config.device_id,
        peer: header.sender.as_ref(),
    };
    let (response, trigger) = match interaction {
        Interaction::AddRequest => ("PRPM_IN401031UV01", "PRPM_TE401011UV01"),
        Interaction::UpdateRequest => ("PRPM_IN403011UV01", "PRPM_TE403011UV01"),
        // Notifications get an accept acknowledgement.
        _ => {
            return Ok(message::accept_ack(
                &new_message_id(ctx),
                now,
                &parties,
                Some(&header.id),
                None,
            ));
        }
    };
    // The requester's author, echoed as the author of the confirmed request.
    let author = root
        .child("controlActProcess")
        .and_then(|c| c.child("subject"))
        .and_then(|s| s.child("registrationRequest"))
        .and_then(|r| r.child("author"))
        .and_then(|a| a.child("assignedEntity"))
        .and_then(|a| a.child("id"))
        .and_then(|i| message::read_ii(i, "").ok())
        .or_else(|| header.sender.clone());
    let mut w = W::default();
    message::open(&mut w, response, &new_message_id(ctx), now, "NE", &parties);
    message::acknowledgement(&mut w, Ack::Aa, Some(&header.id), None);
    w.raw("<controlActProcess classCode=\"CACT\" moodCode=\"EVN\">");
    w.raw(&format!(
        "<code code=\"{trigger}\" codeSystem=\"{}\"/>",
        message::TRIGGER_ROOT
    ));
    w.raw("<subject typeCode=\"SUBJ\"><registrationRequest classCode=\"REG\" moodCode=\"RQO\">");
    w.code("statusCode", "completed");
    w.raw("<subject1 typeCode=\"SBJ\">");
    let view = View {
        record: &record,
        status,
        registry_id: ctx.registry_id(cid),
        direct: &[],
    };
    organization::write(&mut w, Shape::Confirmation, &view);
    w.raw("</subject1><author typeCode=\"AUT\"><assignedEntity classCode=\"ASSIGNED\">");
    w.ii("id", author.as_ref());
    w.raw("</assignedEntity></author></registrationRequest></subject></controlActProcess>");
    w.raw(&format!("</{response}>"));
    Ok(w.0)
}

fn db_err(e: sqlx::Error) -> Problem {
    internal(e)
}

/// The verified-organization fields of a record.
fn verified<'a>(cid: i64, r: &'a OrgRecord, now: DateTime<Utc>) -> rows::Verified<'a> {
    let addr = r.addrs.first();
    let nonempty = |s: &'a str| (!s.is_empty()).then_some(s);
    let npi = r
        .id_with_root(NPI_ROOT)
        .filter(|n| n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit()));
    let state = addr
        .map(|a| a.state.as_str())
        .filter(|s| s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic()));
    rows::Verified {
        certified_id: cid,
        name: &r.name,
        tax_id: r.id_with_root(TAX_ID_ROOT),
        npi,
        state,
        address_line1: addr.and_then(|a| a.lines.first()).map(String::as_str),
        address_line2: addr.and_then(|a| a.lines.get(1)).map(String::as_str),
        city: addr.and_then(|a| nonempty(&a.city)),
        zip: addr.and_then(|a| nonempty(&a.postal_code)),
        at: now,
    }
}

fn columns(r: &OrgRecord) -> rows::Columns<'_> {
    let addr = r.addrs.first();
    let nonempty = |s: &str| !s.is_empty();
    rows::Columns {
        name: &r.name,
        type_code: r.code.as_ref().map(|c| c.code.as_str()),
        city: addr.map(|a| a.city.as_str()).filter(|s| nonempty(s)),
        state: addr.map(|a| a.state.as_str()).filter(|s| nonempty(s)),
        postal_code: addr.map(|a| a.postal_code.as_str()).filter(|s| nonempty(s)),
        street: addr.and_then(|a| a.lines.first()).map(String::as_str),
    }
}

/// Writes version `version` of `cid` as current and into its history, with the
/// notifications to every subscriber and the audit record.
#[allow(clippy::too_many_arguments)]
async fn write_version(
    tx: &mut PgConnection,
    retry: &RetryPolicy,
    cid: i64,
    version: i32,
    status: RegistryStatus,
    record: &OrgRecord,
    change: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let json = serde_json::to_value(record).expect("a record serializes");
    rows::upsert_verified(tx, &verified(cid, record, now)).await?;
    rows::upsert_current(
        tx,
        cid,
        version,
        status.as_str(),
        &columns(record),
        &json,
        now,
    )
    .await?;
    rows::insert_version(
        tx,
        cid,
        version,
        status.as_str(),
        change,
        &json,
        &actor.name,
        now,
    )
    .await?;
    informer::enqueue_all(tx, retry, cid, version, notification_of(change)).await?;
    let object = cid.to_string();
    let action = format!("registry.{change}");
    store::audit::record(tx, actor.audit(&action, "registry_organization", &object)).await?;
    Ok(())
}

/// Claims each id of the record for `cid`; the first one another organization holds is the
/// collision.
async fn claim_ids(tx: &mut PgConnection, ids: &[Ii], cid: i64, path: &str) -> Result<(), Problem> {
    for (i, id) in ids.iter().enumerate() {
        if !rows::claim_identifier(tx, &id.root, &id.extension, cid)
            .await
            .map_err(db_err)?
        {
            return Err(Problem::error(
                "KEY205",
                format!("{path}/id[{}]", i + 1),
                format!("id {id} already identifies another organization in this registry"),
            ));
        }
    }
    Ok(())
}

async fn add(
    db: &PgPool,
    ctx: &RegistryContext,
    actor: &Actor,
    record: OrgRecord,
    path: &str,
    now: DateTime<Utc>,
) -> Result<(i64, OrgRecord, RegistryStatus), Problem> {
    if record.name.is_empty() {
        return Err(Problem::error(
            "SYN105",
            format!("{path}/name"),
            "an organization added to the registry needs a name",
        ));
    }
    if let Some(ours) = record
        .ids
        .iter()
        .position(|i| i.root == ctx.config.registry_root_oid)
    {
        return Err(Problem::error(
            "SYN102",
            format!("{path}/id[{}]", ours + 1),
            "ids under our registry root are assigned by this registry, not by the sender",
        ));
    }
    let status = match record.status_code.as_str() {
        "" => RegistryStatus::Active,
        s => RegistryStatus::from_hl7(s)
            .map_err(|e| Problem::error("SYN102", format!("{path}/statusCode"), e.message))?,
    };
    let mut tx = db.begin().await.map_err(db_err)?;
    let cid = rows::next_certified_id(&mut tx).await.map_err(db_err)?;
    // Before the ids are claimed: they refer to the registry row.
    let json = serde_json::to_value(&record).expect("a record serializes");
    rows::upsert_verified(&mut tx, &verified(cid, &record, now))
        .await
        .map_err(db_err)?;
    rows::upsert_current(
        &mut tx,
        cid,
        1,
        status.as_str(),
        &columns(&record),
        &json,
        now,
    )
    .await
    .map_err(db_err)?;
    let ours = ctx.registry_id(cid);
    rows::claim_identifier(&mut tx, &ours.root, &ours.extension, cid)
        .await
        .map_err(db_err)?;
    // On a collision the transaction is dropped: nothing of the add is written.
    claim_ids(&mut tx, &record.ids, cid, path).await?;
    write_version(
        &mut tx, &ctx.retry, cid, 1, status, &record, "add", actor, now,
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok((cid, record, status))
}

/// The one organization the record's ids name, locked.
async fn target(
    tx: &mut PgConnection,
    ctx: &RegistryContext,
    record: &OrgRecord,
    path: &str,
) -> Result<rows::OrgRow, Problem> {
    if record.ids.is_empty() {
        return Err(Problem::missing(format!("{path}/id")));
    }
    let mut found: Option<i64> = None;
    for (i, id) in record.ids.iter().enumerate() {
        let hit = rows::by_identifier(tx, &id.root, &id.extension)
            .await
            .map_err(db_err)?;
        match (found, hit) {
            (Some(a), Some(b)) if a != b => {
                return Err(Problem::error(
                    "KEY205",
                    format!("{path}/id[{}]", i + 1),
                    format!("id {id} identifies another organization than the earlier ids"),
                ));
            }
            (None, Some(b)) => found = Some(b),
            _ => {}
        }
    }
    let Some(cid) = found else {
        return Err(Problem::error(
            "KEY204",
            format!("{path}/id"),
            format!(
                "no organization in this registry has any of these ids (ours are under {})",
                ctx.config.registry_root_oid
            ),
        ));
    };
    rows::lock(tx, cid)
        .await
        .map_err(db_err)?
        .ok_or_else(|| internal("an identifier names a missing organization"))
}

fn current(row: &rows::OrgRow) -> Result<(OrgRecord, RegistryStatus), Problem> {
    let record: OrgRecord = serde_json::from_value(row.record.clone()).map_err(internal)?;
    let status = row.status.parse().map_err(internal)?;
    Ok((record, status))
}

async fn update(
    db: &PgPool,
    ctx: &RegistryContext,
    actor: &Actor,
    incoming: OrgRecord,
    path: &str,
    now: DateTime<Utc>,
) -> Result<(i64, OrgRecord, RegistryStatus), Problem> {
    let mut tx = db.begin().await.map_err(db_err)?;
    let row = target(&mut tx, ctx, &incoming, path).await?;
    let (old, old_status) = current(&row)?;
    if old_status == RegistryStatus::Nullified {
        return Err(Problem::error(
            "KEY204",
            format!("{path}/id"),
            "the organization was nullified; activate it before updating it",
        ));
    }
    let new_ids: Vec<Ii> = incoming
        .ids
        .iter()
        .filter(|i| i.root != ctx.config.registry_root_oid && !old.ids.contains(i))
        .cloned()
        .collect();
    claim_ids(&mut tx, &new_ids, row.certified_id, path).await?;
    let status = match incoming.status_code.as_str() {
        "" => old_status,
        s => RegistryStatus::from_hl7(s)
            .map_err(|e| Problem::error("SYN102", format!("{path}/statusCode"), e.message))?,
    };
    // What the update carries replaces what we had; what it leaves out stays.
    let mut record = old.clone();
    record.ids.extend(new_ids);
    if !incoming.name.is_empty() {
        record.name = incoming.name;
    }
    if incoming.code.is_some() {
        record.code = incoming.code;
    }
    if !incoming.addrs.is_empty() {
        record.addrs = incoming.addrs;
    }
    if !incoming.telecoms.is_empty() {
        record.telecoms = incoming.telecoms;
    }
    if !incoming.status_code.is_empty() {
        record.status_code = incoming.status_code;
    }
    if !incoming.effective_from.is_empty() || !incoming.effective_to.is_empty() {
        record.effective_from = incoming.effective_from;
        record.effective_to = incoming.effective_to;
    }
    if !incoming.members.is_empty() {
        record.members = incoming.members;
    }
    let change = match (old_status, status) {
        (a, RegistryStatus::Suspended) if a != RegistryStatus::Suspended => "suspend",
        (RegistryStatus::Suspended, RegistryStatus::Active) => "resume",
        _ => "update",
    };
    suspension_effect(&mut tx, ctx, actor, row.certified_id, old_status, status).await?;
    write_version(
        &mut tx,
        &ctx.retry,
        row.certified_id,
        row.version + 1,
        status,
        &record,
        change,
        actor,
        now,
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok((row.certified_id, record, status))
}

/// With `hl7.suspension_disables_domain`, a suspension disables the organization's Direct
/// domains and a resumption activates them again; audited either way.
async fn suspension_effect(
    tx: &mut PgConnection,
    ctx: &RegistryContext,
    actor: &Actor,
    cid: i64,
    from: RegistryStatus,
    to: RegistryStatus,
) -> Result<(), Problem> {
    let object = cid.to_string();
    if to == RegistryStatus::Suspended && from != RegistryStatus::Suspended {
        let action = if ctx.config.suspension_disables_domain {
            rows::set_domain_status(tx, cid, org_status::DISABLED)
                .await
                .map_err(db_err)?;
            "registry.suspend.domain_disabled"
        } else {
            "registry.suspend.domain_kept"
        };
        store::audit::record(tx, actor.audit(action, "registry_organization", &object))
            .await
            .map_err(db_err)?;
    } else if from == RegistryStatus::Suspended
        && to != RegistryStatus::Suspended
        && ctx.config.suspension_disables_domain
    {
        for (id, _, status) in rows::domains_of(tx, cid).await.map_err(db_err)? {
            if status == org_status::DISABLED {
                store::organizations::set_status(tx, id, org_status::ACTIVATED)
                    .await
                    .map_err(db_err)?;
            }
        }
        store::audit::record(
            tx,
            actor.audit(
                "registry.resume.domain_enabled",
                "registry_organization",
                &object,
            ),
        )
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

async fn set_status(
    db: &PgPool,
    ctx: &RegistryContext,
    actor: &Actor,
    incoming: &OrgRecord,
    path: &str,
    to: RegistryStatus,
    now: DateTime<Utc>,
) -> Result<(i64, OrgRecord, RegistryStatus), Problem> {
    let mut tx = db.begin().await.map_err(db_err)?;
    let row = target(&mut tx, ctx, incoming, path).await?;
    let (record, from) = current(&row)?;
    let change = if to == RegistryStatus::Nullified {
        "nullify"
    } else {
        "activate"
    };
    suspension_effect(&mut tx, ctx, actor, row.certified_id, from, to).await?;
    write_version(
        &mut tx,
        &ctx.retry,
        row.certified_id,
        row.version + 1,
        to,
        &record,
        change,
        actor,
        now,
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok((row.certified_id, record, to))
}

/// A change another door made to a provisioned organization (its domain certificate issued,
/// revoked or expired; the domain disabled): when the organization is a registry
/// organization, a new version says so and subscribers get an update notification. Runs in
/// the caller's transaction.
pub async fn domain_changed(
    tx: &mut PgConnection,
    retry: &RetryPolicy,
    organization_id: i64,
    domain_status: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let Some(cid) = rows::certified_id_of_organization(tx, organization_id).await? else {
        return Ok(());
    };
    let Some(row) = rows::lock(tx, cid).await? else {
        return Ok(());
    };
    let Ok(record) = serde_json::from_value::<OrgRecord>(row.record.clone()) else {
        return Ok(());
    };
    let status = row.status.parse().unwrap_or(RegistryStatus::Active);
    let change = format!("domain.{}", domain_status.to_ascii_lowercase());
    write_version(
        tx,
        retry,
        cid,
        row.version + 1,
        status,
        &record,
        &change,
        actor,
        now,
    )
    .await
}

/// Suspends, resumes, nullifies or activates a registry organization from the CLI.
pub async fn set_status_by_cli(
    db: &PgPool,
    ctx: &RegistryContext,
    certified_id: i64,
    status: RegistryStatus,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<i32> {
    let mut tx = db.begin().await?;
    let row = rows::lock(&mut tx, certified_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("registry organization {certified_id}")))?;
    let (record, from) = current(&row).map_err(|p| AppError::Internal(anyhow::anyhow!(p.text)))?;
    let change = match (from, status) {
        (_, RegistryStatus::Nullified) => "nullify",
        (RegistryStatus::Suspended, RegistryStatus::Active) => "resume",
        (_, RegistryStatus::Active) => "activate",
        (_, RegistryStatus::Suspended) => "suspend",
        (_, RegistryStatus::New) => "update",
    };
    suspension_effect(&mut tx, ctx, actor, certified_id, from, status)
        .await
        .map_err(|p| AppError::Internal(anyhow::anyhow!(p.text)))?;
    let version = row.version + 1;
    write_version(
        &mut tx,
        &ctx.retry,
        certified_id,
        version,
        status,
        &record,
        change,
        actor,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(version)
}
