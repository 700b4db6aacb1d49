//! Trusted-Agent certificate applications (DataMotion style): ops links a Trusted Agent to an
//! organization; the TA applies for a patient, provider-address or organizational certificate;
//! an officer approves (the certificate request and the pending address commit together) or
//! rejects; the CA's issuance makes the address live. The applicant hears of each step by
//! e-mail (`notify`).
//!
//! The status a reader sees is the stored decision (Submitted, Approved, Rejected) refined by
//! the application's current certificate and address: CertificateIssued, Provisioned,
//! Revoked, Expired. The current certificate follows renewals (`on_certificate_issued`), so an
//! auto-renewed application stays Provisioned with the new serial.

pub mod notify;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::Actor;
use super::pki::{self, CertificateRequest, PkiContext};
use crate::auth::secrets;
use crate::domain::Invalid;
use crate::domain::certificate_application::{
    ApplicationForm, ApplicationKind, ApplicationStatus, HipaaType, fields,
};
use crate::domain::client::{Client, ClientKind};
use crate::domain::pki::DirectDomain;
use crate::error::{AppError, AppResult};
use crate::jobs::RetryPolicy;
use crate::store::certificate_applications::{self as sql, ApplicationRow, NewApplication};
use crate::store::organizations;

pub use crate::store::certificate_applications::TrustedAgentLink;
pub use notify::{NOTIFY_JOB, NotifyContext, Step};

const OBJECT: &str = "certificate_application";
/// Listings return at most this many applications.
pub const LIST_MAX: i64 = 500;

// ---- trusted agents --------------------------------------------------------------------------

/// Links a trusted-agent client to the organization of `domain` (re-linking moves it).
pub async fn link_trusted_agent(
    db: &PgPool,
    client_id: Uuid,
    domain: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<TrustedAgentLink> {
    let domain =
        DirectDomain::parse(domain).map_err(|e| Invalid::new("organizationDomain", e.message))?;
    let client = crate::store::clients::find_with_hash(db, client_id)
        .await?
        .map(|(c, _)| c)
        .ok_or_else(|| AppError::NotFound(format!("client {client_id}")))?;
    if client.kind != ClientKind::TrustedAgent {
        return Err(Invalid::new(
            "clientId",
            format!(
                "client {client_id} is a {} client, not a trusted-agent",
                client.kind
            ),
        )
        .into());
    }
    let mut tx = db.begin().await?;
    let org = organizations::find_by_domain(&mut tx, domain.as_str())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("organization with domain {domain}")))?;
    sql::link(&mut tx, client_id, org.id, now).await?;
    let link = sql::link_of(&mut tx, client_id)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the link just made is gone")))?;
    crate::store::audit::record(
        &mut tx,
        actor.audit("trusted_agent.link", "api_client", &client_id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(link)
}

pub async fn trusted_agents(db: &PgPool) -> AppResult<Vec<TrustedAgentLink>> {
    Ok(sql::links(db).await?)
}

// ---- the application as readers see it ----------------------------------------------------

/// An application with its derived status and the time of each step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationView {
    pub id: Uuid,
    pub kind: ApplicationKind,
    pub status: ApplicationStatus,
    pub trusted_agent_id: Uuid,
    pub trusted_agent_name: String,
    pub organization_name: String,
    pub organization_domain: String,
    pub hipaa_type: i16,
    /// The DirectTrust category the certificate carries.
    pub certificate_category: &'static str,
    pub category_oid: &'static str,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub city: String,
    pub state: String,
    pub country: String,
    pub duration_years: i32,
    pub certificate_name: String,
    pub direct_address: Option<String>,
    pub auto_renew: bool,
    pub identity_attestation: String,
    pub notification_email: String,
    pub notes: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub reviewed_by: Option<String>,
    pub review_reason: Option<String>,
    pub certificate_issued_at: Option<DateTime<Utc>>,
    pub provisioned_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
    /// The current certificate's serial (upper-case hex), once issued; a renewal's replaces it.
    pub serial_number: Option<String>,
    pub certificate_not_after: Option<DateTime<Utc>>,
}

fn view(r: ApplicationRow) -> AppResult<ApplicationView> {
    let bad = |e: Invalid| AppError::Internal(anyhow::anyhow!("stored application: {e}"));
    let kind: ApplicationKind = r.kind.parse().map_err(bad)?;
    let hipaa = HipaaType::from_number(i64::from(r.hipaa_type))
        .ok_or_else(|| bad(Invalid::new("hipaa_type", "out of range")))?;
    let category = hipaa.category();
    let decided: ApplicationStatus = r.status.parse().map_err(bad)?;
    let live_address = match kind {
        ApplicationKind::Organization => r.provisioned_at.is_some(),
        _ => r.address_status.as_deref() == Some("active"),
    };
    let status = match decided {
        ApplicationStatus::Approved => {
            ApplicationStatus::of_approved(r.certificate_status.as_deref(), live_address)
        }
        other => other,
    };
    let issued = r.certificate_issued_at.is_some();
    Ok(ApplicationView {
        id: r.id,
        kind,
        status,
        trusted_agent_id: r.trusted_agent_id,
        trusted_agent_name: r.trusted_agent_name,
        organization_name: r.organization_name,
        organization_domain: r.organization_domain,
        hipaa_type: r.hipaa_type,
        certificate_category: category.as_str(),
        category_oid: category.policy_oid(),
        first_name: r.first_name,
        last_name: r.last_name,
        city: r.city,
        state: r.state,
        country: r.country,
        duration_years: r.validity_years,
        certificate_name: r.certificate_name,
        direct_address: r.address,
        auto_renew: r.auto_renew,
        identity_attestation: r.identity_attestation,
        notification_email: r.notification_email,
        notes: r.notes,
        submitted_at: r.submitted_at,
        approved_at: (decided == ApplicationStatus::Approved)
            .then_some(r.reviewed_at)
            .flatten(),
        rejected_at: (decided == ApplicationStatus::Rejected)
            .then_some(r.reviewed_at)
            .flatten(),
        reviewed_by: r.reviewed_by,
        review_reason: r.review_reason,
        certificate_issued_at: r.certificate_issued_at,
        provisioned_at: r.provisioned_at,
        revoked_at: (status == ApplicationStatus::Revoked)
            .then_some(r.revoked_at)
            .flatten(),
        expired_at: (status == ApplicationStatus::Expired)
            .then_some(r.not_after)
            .flatten(),
        serial_number: issued.then_some(r.serial).flatten(),
        certificate_not_after: issued.then_some(r.not_after).flatten(),
    })
}

/// Who is reading: officers and ops see every application; a trusted agent sees its
/// organization's.
enum Viewer {
    Everything,
    Organization(i64),
}

async fn viewer(conn: &mut PgConnection, caller: &Client) -> AppResult<Viewer> {
    match caller.kind {
        ClientKind::Officer | ClientKind::Ops => Ok(Viewer::Everything),
        ClientKind::TrustedAgent => match sql::link_of(conn, caller.id).await? {
            Some(link) => Ok(Viewer::Organization(link.organization_id)),
            None => Err(not_linked()),
        },
        _ => Err(AppError::Forbidden(
            "only trusted-agent, officer or ops clients may do this".into(),
        )),
    }
}

fn not_linked() -> AppError {
    AppError::Forbidden(
        "this trusted agent is not linked to an organization yet: ask ops to link it".into(),
    )
}

fn not_found(id: Uuid) -> AppError {
    AppError::NotFound(format!("certificate application {id}"))
}

/// One application, for its organization's trusted agents, officers and ops. Another
/// organization's TA gets 404, as for an id that does not exist.
pub async fn get(db: &PgPool, caller: &Client, id: Uuid) -> AppResult<ApplicationView> {
    let mut conn = db.acquire().await?;
    let who = viewer(&mut conn, caller).await?;
    let row = sql::get(&mut conn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if let Viewer::Organization(org) = who
        && org != row.organization_id
    {
        return Err(not_found(id));
    }
    view(row)
}

/// Same as `get`, for the CLI (an operator sees everything).
pub async fn get_any(db: &PgPool, id: Uuid) -> AppResult<ApplicationView> {
    let mut conn = db.acquire().await?;
    view(
        sql::get(&mut conn, id)
            .await?
            .ok_or_else(|| not_found(id))?,
    )
}

pub struct ListQuery<'a> {
    pub address: Option<&'a str>,
    pub status: Option<&'a str>,
}

/// Applications by address or status (derived statuses are filtered after reading). With
/// neither: the pending ones (Submitted), what officers review.
pub async fn list(
    db: &PgPool,
    caller: Option<&Client>,
    q: &ListQuery<'_>,
) -> AppResult<Vec<ApplicationView>> {
    let organization_id = match caller {
        None => None,
        Some(c) => match viewer(&mut *db.acquire().await?, c).await? {
            Viewer::Everything => None,
            Viewer::Organization(o) => Some(o),
        },
    };
    let status: Option<ApplicationStatus> = q.status.map(str::parse).transpose()?;
    let status = match (status, q.address) {
        (None, None) => Some(ApplicationStatus::Submitted),
        (s, _) => s,
    };
    let decision = status.map(|s| match s {
        ApplicationStatus::Submitted | ApplicationStatus::Rejected => s.as_str(),
        _ => ApplicationStatus::Approved.as_str(),
    });
    let address = q
        .address
        .map(|a| {
            crate::domain::pki::DirectAddress::parse(a)
                .map(|a| a.to_string())
                .map_err(|e| Invalid::new("address", e.message))
        })
        .transpose()?;
    let rows = sql::list(
        db,
        &sql::Filter {
            organization_id,
            address: address.as_deref(),
            decision,
            limit: LIST_MAX,
        },
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let v = view(r)?;
        if status.is_none_or(|s| s == v.status) {
            out.push(v);
        }
    }
    Ok(out)
}

// ---- submission ------------------------------------------------------------------------------

/// A trusted agent's application: validated field by field, checked against the TA's
/// organization, stored as Submitted with its e-mail queued. Nothing is written on a refusal.
pub async fn submit(
    db: &PgPool,
    retry: &RetryPolicy,
    ta: &Client,
    body: &serde_json::Value,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<ApplicationView> {
    if ta.kind != ClientKind::TrustedAgent {
        return Err(AppError::Forbidden(
            "only trusted-agent clients may apply for certificates".into(),
        ));
    }
    let form = ApplicationForm::parse(body)?;
    let link = sql::link_of(&mut *db.acquire().await?, ta.id)
        .await?
        .ok_or_else(not_linked)?;
    check_against(&form, &link)?;
    // The address password is hashed before the transaction: argon2 is slow and bounded.
    let password_hash = match &form.address_password {
        Some(p) => Some(secrets::hash_secret(p.clone()).await?),
        None => None,
    };
    let id = Uuid::new_v4();
    let address = form.address.as_ref().map(|a| a.to_string());
    let mut tx = db.begin().await?;
    if let Some(a) = &form.address
        && sql::address_taken(&mut tx, a.local_part(), a.domain().as_str()).await?
    {
        return Err(taken(a));
    }
    let inserted = sql::insert(
        &mut tx,
        &NewApplication {
            id,
            kind: form.kind.as_str(),
            trusted_agent_id: ta.id,
            organization_id: link.organization_id,
            trusted_agent_name: &form.trusted_agent_name,
            organization_name: &form.organization_name,
            hipaa_type: form.hipaa_type.number(),
            first_name: form.first_name.as_deref(),
            last_name: form.last_name.as_deref(),
            city: &form.city,
            state: &form.state,
            country: &form.country,
            validity_years: i32::from(form.years.get()),
            certificate_name: &form.certificate_name,
            address: address.as_deref(),
            address_password_hash: password_hash.as_deref(),
            auto_renew: form.auto_renew,
            identity_attestation: &form.identity_attestation,
            notification_email: &form.notification_email,
            notes: form.notes.as_deref(),
            submitted_at: now,
        },
    )
    .await?;
    if !inserted {
        // Another application for the address committed between the check and the insert.
        return Err(taken(
            form.address.as_ref().expect("only addresses conflict"),
        ));
    }
    notify::queue(&mut tx, retry, id, Step::Submitted).await?;
    crate::store::audit::record(
        &mut tx,
        actor.audit("certificate_application.submit", OBJECT, &id.to_string()),
    )
    .await?;
    let row = sql::get(&mut tx, id).await?.ok_or_else(|| not_found(id))?;
    tx.commit().await?;
    view(row)
}

fn taken(a: &crate::domain::pki::DirectAddress) -> AppError {
    AppError::Conflict(format!(
        "{}: {a} is already taken (an address, or an open application for it)",
        fields::DIRECT_ADDRESS
    ))
}

/// The checks that need the TA's organization: its legal name and its domain.
fn check_against(form: &ApplicationForm, link: &TrustedAgentLink) -> AppResult<()> {
    if !form
        .organization_name
        .trim()
        .eq_ignore_ascii_case(link.organization_name.trim())
    {
        return Err(Invalid::new(
            fields::ORGANIZATION_NAME,
            "does not match the legal name of the trusted agent's organization",
        )
        .into());
    }
    if let Some(a) = &form.address
        && !a
            .domain()
            .as_str()
            .eq_ignore_ascii_case(&link.organization_domain)
    {
        return Err(Invalid::new(
            fields::DIRECT_ADDRESS,
            format!(
                "must be in the organization's domain {}",
                link.organization_domain
            ),
        )
        .into());
    }
    Ok(())
}

// ---- review ----------------------------------------------------------------------------------

/// Decides only what is still Submitted; tells "no such application" from "decided already".
async fn decide(
    tx: &mut PgConnection,
    id: Uuid,
    decision: ApplicationStatus,
    reason: Option<&str>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<ApplicationRow> {
    if !sql::decide(tx, id, decision.as_str(), &actor.name, reason, now).await? {
        return Err(if sql::exists(tx, id).await? {
            AppError::Conflict(format!("certificate application {id} was already reviewed"))
        } else {
            not_found(id)
        });
    }
    sql::get(tx, id).await?.ok_or_else(|| not_found(id))
}

fn reason(reason: Option<&str>, required: bool) -> AppResult<Option<String>> {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        None if required => Err(Invalid::new("reason", "is required").into()),
        None => Ok(None),
        Some(r) if r.chars().count() > 1000 || r.chars().any(|c| c.is_control() && c != '\n') => {
            Err(Invalid::new("reason", "must be at most 1000 characters of text").into())
        }
        Some(r) => Ok(Some(r.to_owned())),
    }
}

/// Officers only (REST); the CLI acts as one.
pub fn require_officer(caller: &Client) -> AppResult<()> {
    if caller.kind == ClientKind::Officer {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only officer clients may review applications".into(),
        ))
    }
}

/// Approval, in one transaction: the decision, the pending address, the certificate request
/// with its issue job (category from the HIPAA type, auto-renew kept), and the e-mail.
pub async fn approve(
    db: &PgPool,
    pki_ctx: &PkiContext,
    id: Uuid,
    reason_text: Option<&str>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<ApplicationView> {
    let why = reason(reason_text, false)?;
    let mut tx = db.begin().await?;
    let row = decide(
        &mut tx,
        id,
        ApplicationStatus::Approved,
        why.as_deref(),
        actor,
        now,
    )
    .await?;
    let kind: ApplicationKind = row
        .kind
        .parse()
        .map_err(|e: Invalid| AppError::Internal(e.into()))?;
    let hipaa = HipaaType::from_number(i64::from(row.hipaa_type))
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("stored HIPAA type out of range")))?;
    let address_id = match (&row.address, kind) {
        (Some(address), ApplicationKind::Patient | ApplicationKind::Address) => {
            let a = crate::domain::pki::DirectAddress::parse(address)?;
            let made = sql::insert_pending_address(
                &mut tx,
                row.organization_id,
                a.local_part(),
                a.domain().as_str(),
                row.first_name.as_deref(),
                row.last_name.as_deref(),
                row.address_password_hash.as_deref(),
            )
            .await?;
            Some(made.ok_or_else(|| taken(&a))?)
        }
        _ => None,
    };
    let ids = pki::request_certificate_in(
        &mut tx,
        pki_ctx,
        &CertificateRequest {
            organization: row.organization_domain.clone(),
            address: row.address.clone(),
            category: Some(hipaa.category().as_str().to_owned()),
            years: i64::from(row.validity_years),
            auto_renew: row.auto_renew,
        },
        actor,
    )
    .await?;
    let certificate = *ids
        .first()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no certificate was requested")))?;
    sql::set_requested(&mut tx, id, certificate, address_id).await?;
    notify::queue(&mut tx, &pki_ctx.retry, id, Step::Approved).await?;
    crate::store::audit::record(
        &mut tx,
        actor.audit("certificate_application.approve", OBJECT, &id.to_string()),
    )
    .await?;
    let row = sql::get(&mut tx, id).await?.ok_or_else(|| not_found(id))?;
    tx.commit().await?;
    view(row)
}

pub async fn reject(
    db: &PgPool,
    retry: &RetryPolicy,
    id: Uuid,
    reason_text: Option<&str>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<ApplicationView> {
    let why = reason(reason_text, true)?;
    let mut tx = db.begin().await?;
    let row = decide(
        &mut tx,
        id,
        ApplicationStatus::Rejected,
        why.as_deref(),
        actor,
        now,
    )
    .await?;
    notify::queue(&mut tx, retry, id, Step::Rejected).await?;
    crate::store::audit::record(
        &mut tx,
        actor.audit("certificate_application.reject", OBJECT, &id.to_string()),
    )
    .await?;
    tx.commit().await?;
    view(row)
}

// ---- the CA's hook ---------------------------------------------------------------------------

/// Called by the CA in the transaction that marks certificate `id` issued: the application it
/// belongs to (directly, or as the renewal of its current certificate) takes it as current;
/// the first time, the address goes live and the applicant is told.
pub async fn on_certificate_issued(
    tx: &mut PgConnection,
    retry: &RetryPolicy,
    id: i64,
    predecessor: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let Some((application, address_id, provisioned)) =
        sql::certificate_issued(tx, id, predecessor, now).await?
    else {
        return Ok(());
    };
    let system = Actor {
        name: "system:ca".into(),
        request_id: None,
    };
    let action = if provisioned {
        "certificate_application.renew"
    } else {
        sql::provision(tx, application, address_id, now).await?;
        notify::queue(tx, retry, application, Step::Provisioned).await?;
        "certificate_application.provision"
    };
    crate::store::audit::record(tx, system.audit(action, OBJECT, &application.to_string())).await
}
