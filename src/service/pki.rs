//! Certificate use cases: running the CA, requesting, issuing, renewing, expiring and revoking
//! Direct certificates, publishing CRLs, and handing keys to the rest of the system.
//!
//! Issuance is a side effect and goes through the outbox: a request commits a `requested`
//! certificate and a `ca.issue` job together; the job signs it. The `ca.maintenance` job
//! (recurring) expires, renews and re-publishes CRLs, at the clock its run is given.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509, X509Crl};
use sqlx::{PgConnection, PgPool};

use super::Actor;
use crate::ca::{self, Authority, Binding, LeafProfile, RevokedEntry, sealed::KeyEncryptionKey};
use crate::config::CaConfig;
use crate::domain::Invalid;
use crate::domain::pki::{
    CertificateCategory, CertificateStatus, DirectAddress, DirectDomain, KeyUse, RevocationReason,
    ValidityYears, organization_status as org_status,
};
use crate::error::{AppError, AppResult};
use crate::jobs::{self, Job, JobError, JobRegistry, RetryPolicy};
/// A certificate as the service hands it out.
pub use crate::store::pki::CertificateRecord;
use crate::store::pki::{Filter, Issued, NewCertificate};
use crate::store::{self, audit::AuditEntry, organizations};

pub const ISSUE_JOB: &str = "ca.issue";
pub const MAINTENANCE_JOB: &str = "ca.maintenance";
pub const ROOT: &str = "root";
pub const ISSUING: &str = "issuing";

/// What the CA needs besides the database.
pub struct PkiContext {
    pub ca: CaConfig,
    pub base_url: String,
    pub kek: KeyEncryptionKey,
    pub retry: RetryPolicy,
}

impl PkiContext {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            ca: config.ca.clone(),
            base_url: config.http.public_base_url.clone(),
            kek: KeyEncryptionKey::derive(&config.ca.key_encryption_key),
            retry: RetryPolicy::from_config(&config.jobs),
        }
    }
}

/// Registers the CA's jobs.
pub fn register_jobs(registry: &mut JobRegistry, db: PgPool, ctx: Arc<PkiContext>) {
    let (d, c) = (db.clone(), ctx.clone());
    registry.register(ISSUE_JOB, move |job: Job| {
        let (db, ctx) = (d.clone(), c.clone());
        async move {
            let id = job.payload["certificate_id"]
                .as_i64()
                .ok_or_else(|| JobError::Permanent("payload has no certificate_id".into()))?;
            issue_requested(&db, &ctx, id, job.now)
                .await
                .map_err(|e| JobError::Transient(format!("{e:#}")))
        }
    });
    let interval = ctx.ca.maintenance_interval;
    registry.register_recurring(MAINTENANCE_JOB, interval, move |job: Job| {
        let (db, ctx) = (db.clone(), ctx.clone());
        async move {
            maintain(&db, &ctx, job.now)
                .await
                .map(|_| ())
                .map_err(|e| JobError::Transient(format!("{e:#}")))
        }
    });
}

fn audit<'a>(
    actor: &'a Actor,
    action: &'a str,
    object_type: &'a str,
    object_id: &'a str,
) -> AuditEntry<'a> {
    AuditEntry {
        actor: &actor.name,
        action,
        object_type,
        object_id,
        request_id: actor.request_id.as_deref(),
    }
}

// ---- the CA itself -------------------------------------------------------------------------

#[derive(Debug, serde::Serialize)]
pub struct CaSummary {
    pub root_subject: String,
    pub issuing_subject: String,
    pub issuing_not_after: DateTime<Utc>,
}

fn subject_text(cert: &X509) -> String {
    cert.subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let val = e.data().to_string().unwrap_or_default();
            format!("{key}={val}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn ensure_no_ca(conn: &mut PgConnection) -> AppResult<()> {
    if store::pki::active_authority(conn, ISSUING).await?.is_some() {
        return Err(AppError::Conflict(
            "a CA already exists; it is not replaced".into(),
        ));
    }
    Ok(())
}

/// Creates a root and an issuing intermediate, and publishes their first CRLs.
pub async fn init_ca(
    db: &PgPool,
    ctx: &PkiContext,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<CaSummary> {
    ensure_no_ca(&mut *db.acquire().await?).await?;
    let (cfg, base) = (ctx.ca.clone(), ctx.base_url.clone());
    let (root, issuing) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let root = ca::create_root(&cfg, now)?;
        let issuing = ca::create_issuing(&root, &cfg, &base, now)?;
        Ok((root, issuing))
    })
    .await
    .map_err(anyhow::Error::from)??;
    store_authorities(db, ctx, &root.cert, Some(&root.key), &issuing, actor, now).await
}

/// True once a CA (an active issuing authority) is installed.
pub async fn has_ca(db: &PgPool) -> AppResult<bool> {
    let mut conn = db.acquire().await?;
    Ok(store::pki::active_authority(&mut conn, ISSUING)
        .await?
        .is_some())
}

/// Creates a CA unless one exists: what the embedded mode does at start, so a newcomer can
/// provision at once. `None` when there was one already, or another process (a replica, a
/// concurrent `ca init`) installed one first; the installation lock decides who.
pub async fn ensure_ca(
    db: &PgPool,
    ctx: &PkiContext,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<Option<CaSummary>> {
    if has_ca(db).await? {
        return Ok(None);
    }
    match init_ca(db, ctx, actor, now).await {
        Ok(summary) => Ok(Some(summary)),
        Err(AppError::Conflict(_)) if has_ca(db).await? => Ok(None),
        Err(e) => Err(e),
    }
}

/// Takes an existing CA (certificate + key) as the issuing CA. A self-signed one is its own
/// trust anchor; otherwise `root` (its issuer's certificate) must be given.
pub async fn import_ca(
    db: &PgPool,
    ctx: &PkiContext,
    cert: X509,
    key: PKey<Private>,
    root: Option<X509>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<CaSummary> {
    ensure_no_ca(&mut *db.acquire().await?).await?;
    ca::validate_import(&cert, &key, now).map_err(|m| Invalid::new("certificate", m))?;
    let self_signed = ca::is_self_signed(&cert);
    let (root_cert, root_key) = match (self_signed, root) {
        (true, _) => (cert.clone(), Some(key.clone())),
        (false, Some(r)) => {
            let verified = r
                .public_key()
                .and_then(|k| cert.verify(&k))
                .unwrap_or(false);
            if !verified {
                return Err(Invalid::new(
                    "root",
                    "the CA certificate is not signed by the given root",
                )
                .into());
            }
            (r, None)
        }
        (false, None) => {
            return Err(Invalid::new(
                "root",
                "the CA certificate is not self-signed: give its root certificate too",
            )
            .into());
        }
    };
    let issuing = Authority { cert, key };
    store_authorities(db, ctx, &root_cert, root_key.as_ref(), &issuing, actor, now).await
}

async fn store_authorities(
    db: &PgPool,
    ctx: &PkiContext,
    root: &X509,
    root_key: Option<&PKey<Private>>,
    issuing: &Authority,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<CaSummary> {
    let sealed_root = root_key.map(|k| ctx.kek.seal(k)).transpose()?;
    let sealed_issuing = ctx.kek.seal(&issuing.key)?;
    let issuing_not_after = ca::asn1_to_utc(issuing.cert.not_after())?;
    let root_not_after = ca::asn1_to_utc(root.not_after())?;
    let mut tx = db.begin().await?;
    // Checked again under the lock: whoever got here first installed theirs.
    store::pki::lock_installation(&mut tx).await?;
    ensure_no_ca(&mut tx).await?;
    let root_id = store::pki::insert_authority(
        &mut tx,
        ROOT,
        &subject_text(root),
        &root.to_der().map_err(anyhow::Error::from)?,
        sealed_root.as_deref(),
        root_not_after,
    )
    .await?;
    let issuing_id = store::pki::insert_authority(
        &mut tx,
        ISSUING,
        &subject_text(&issuing.cert),
        &issuing.cert.to_der().map_err(anyhow::Error::from)?,
        Some(&sealed_issuing),
        issuing_not_after,
    )
    .await?;
    for id in [root_id, issuing_id] {
        publish_crl(&mut tx, ctx, id, now).await?;
        store::audit::record(
            &mut tx,
            audit(actor, "ca.install", "ca_authority", &id.to_string()),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(CaSummary {
        root_subject: subject_text(root),
        issuing_subject: subject_text(&issuing.cert),
        issuing_not_after,
    })
}

async fn load_authority(
    conn: &mut PgConnection,
    ctx: &PkiContext,
    role: &str,
) -> anyhow::Result<(i64, Authority)> {
    let row = store::pki::active_authority(conn, role)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no {role} CA: run `hisp-gateway ca init`"))?;
    let sealed = row
        .sealed_key
        .ok_or_else(|| anyhow::anyhow!("the {role} CA was imported without its key"))?;
    let cert = X509::from_der(&row.certificate_der)?;
    Ok((
        row.id,
        Authority {
            cert,
            key: ctx.kek.open(&sealed)?,
        },
    ))
}

/// Signs and stores a fresh CRL for the CA `issuer_id` (nothing when we lack its key). Runs in
/// the caller's transaction, so a revocation and its CRL commit together.
pub async fn publish_crl(
    conn: &mut PgConnection,
    ctx: &PkiContext,
    issuer_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<X509Crl>> {
    let row = store::pki::authority(conn, issuer_id).await?;
    let Some(sealed) = row.sealed_key else {
        return Ok(None);
    };
    let authority = Authority {
        cert: X509::from_der(&row.certificate_der)?,
        key: ctx.kek.open(&sealed)?,
    };
    let number = store::pki::next_crl_number(conn, issuer_id).await?;
    let revoked: Vec<RevokedEntry> = store::pki::revoked_by(conn, issuer_id)
        .await?
        .into_iter()
        .map(|(serial_hex, revoked_at)| RevokedEntry {
            serial_hex,
            revoked_at,
        })
        .collect();
    let next_update = now + ctx.ca.crl_validity;
    let crl = ca::sign_crl(&authority, &revoked, number as u64, now, next_update)?;
    store::pki::insert_crl(conn, issuer_id, number, now, next_update, &crl.to_der()?).await?;
    Ok(Some(crl))
}

/// Publishes a new CRL for the active CA of `role` now (the CLI's `ca crl`).
pub async fn publish_crl_now(
    db: &PgPool,
    ctx: &PkiContext,
    role: &str,
    now: DateTime<Utc>,
) -> AppResult<X509Crl> {
    let mut tx = db.begin().await?;
    let row = store::pki::active_authority(&mut tx, role)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("{role} CA")))?;
    let crl = publish_crl(&mut tx, ctx, row.id, now)
        .await?
        .ok_or_else(|| {
            AppError::Conflict(format!(
                "the {role} CA was imported without its key: no CRL can be signed"
            ))
        })?;
    tx.commit().await?;
    Ok(crl)
}

pub async fn authority_certificate(db: &PgPool, role: &str) -> AppResult<Option<X509>> {
    let row = store::pki::active_authority(&mut *db.acquire().await?, role).await?;
    Ok(row
        .map(|r| crate::ca::parsed::certificate(&r.certificate_der))
        .transpose()
        .map_err(anyhow::Error::from)?)
}

pub async fn latest_crl_der(db: &PgPool, role: &str) -> AppResult<Option<Vec<u8>>> {
    Ok(store::pki::latest_crl(db, role).await?.map(|(der, _)| der))
}

/// Our trust anchors: the roots peers must trust for our certificates.
pub async fn trust_anchors(db: &PgPool) -> AppResult<Vec<X509>> {
    Ok(authority_certificate(db, ROOT).await?.into_iter().collect())
}

// ---- certificates --------------------------------------------------------------------------

pub struct CertificateRequest {
    /// The organization's Direct domain.
    pub organization: String,
    /// For an address-bound certificate; `None` for the organization's domain-bound one.
    pub address: Option<String>,
    /// Defaults to the organization's category (Patient for patients is explicit).
    pub category: Option<String>,
    pub years: i64,
    pub auto_renew: bool,
}

/// Validates a request, and commits `requested` certificate(s) with their issue jobs.
/// Returns the ids of the new certificates (two when signing and encryption are separate).
pub async fn request_certificate(
    db: &PgPool,
    ctx: &PkiContext,
    req: &CertificateRequest,
    actor: &Actor,
) -> AppResult<Vec<i64>> {
    let mut tx = db.begin().await?;
    let ids = request_certificate_in(&mut tx, ctx, req, actor).await?;
    tx.commit().await?;
    Ok(ids)
}

/// `request_certificate` inside the caller's transaction (provisioning requests the
/// organization's certificate in the same commit that creates it).
pub async fn request_certificate_in(
    tx: &mut PgConnection,
    ctx: &PkiContext,
    req: &CertificateRequest,
    actor: &Actor,
) -> AppResult<Vec<i64>> {
    let domain = DirectDomain::parse(&req.organization)
        .map_err(|e| Invalid::new("organization", e.message))?;
    let address = req
        .address
        .as_deref()
        .map(DirectAddress::parse)
        .transpose()?;
    let years = ValidityYears::new(req.years)?;
    let org = organizations::find_by_domain(tx, domain.as_str())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("organization with domain {domain}")))?;
    if let Some(a) = &address
        && a.domain() != &domain
    {
        return Err(Invalid::new(
            "address",
            format!("{a} is outside the organization's domain {domain}"),
        )
        .into());
    }
    let category: CertificateCategory = match (&req.category, &org.certificate_category) {
        (Some(c), _) | (None, Some(c)) => c.parse()?,
        (None, None) => {
            return Err(
                Invalid::new("category", "the organization has no category: give one").into(),
            );
        }
    };
    if category == CertificateCategory::Patient && address.is_none() {
        return Err(Invalid::new(
            "category",
            "Patient certificates are address-bound: give the patient's address",
        )
        .into());
    }
    if store::pki::active_authority(tx, ISSUING).await?.is_none() {
        return Err(AppError::Conflict(
            "no CA yet: run `hisp-gateway ca init` first".into(),
        ));
    }
    let (binding, subject) = match &address {
        Some(a) => ("address", a.to_string()),
        None => ("domain", domain.to_string()),
    };
    let uses: &[KeyUse] = if ctx.ca.separate_signing_and_encryption {
        &[KeyUse::Signing, KeyUse::Encryption]
    } else {
        &[KeyUse::Dual]
    };
    let mut ids = Vec::new();
    for key_use in uses {
        let new = NewCertificate {
            organization_id: org.id,
            binding,
            subject_name: &subject,
            category,
            key_use: *key_use,
            validity_years: years.get(),
            auto_renew: req.auto_renew,
            predecessor_id: None,
        };
        let id = add_request(tx, ctx, &new, actor, "certificate.request")
            .await?
            .expect("no predecessor, no conflict");
        ids.push(id);
    }
    // A disabled organization stays disabled whatever happens to its certificates.
    if binding == "domain"
        && org.status != org_status::ACTIVATED
        && org.status != org_status::DISABLED
    {
        organizations::set_status(tx, org.id, org_status::CERTIFICATE_PENDING).await?;
    }
    Ok(ids)
}

/// Adds a `requested` certificate with its issue job and audit record, in the caller's
/// transaction. `None` when the predecessor already has a successor.
async fn add_request(
    tx: &mut PgConnection,
    ctx: &PkiContext,
    new: &NewCertificate<'_>,
    actor: &Actor,
    action: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let Some(id) = store::pki::insert_request(tx, new).await? else {
        return Ok(None);
    };
    jobs::enqueue(
        tx,
        &ctx.retry,
        ISSUE_JOB,
        serde_json::json!({ "certificate_id": id }),
    )
    .await?;
    store::audit::record(tx, audit(actor, action, "certificate", &id.to_string())).await?;
    Ok(Some(id))
}

/// The `ca.issue` job: signs a requested certificate. Does nothing if it is no longer requested.
pub async fn issue_requested(
    db: &PgPool,
    ctx: &PkiContext,
    id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut conn = db.acquire().await?;
    let cert = store::pki::get(&mut conn, id).await?;
    if cert.status != CertificateStatus::Requested {
        return Ok(());
    }
    let org = organizations::get(&mut conn, cert.organization_id).await?;
    let (issuer_id, issuer) = load_authority(&mut conn, ctx, ISSUING).await?;
    drop(conn);
    let binding = if cert.binding == "address" {
        Binding::Address(DirectAddress::parse(&cert.subject_name)?)
    } else {
        Binding::Domain(DirectDomain::parse(&cert.subject_name)?)
    };
    let years = ValidityYears::new(i64::from(cert.validity_years))?;
    let (cfg, base, org_name) = (ctx.ca.clone(), ctx.base_url.clone(), org.name.clone());
    let (category, key_use) = (cert.category, cert.key_use);
    // Key generation and signing are CPU work: off the async threads.
    let (x509, key) = tokio::task::spawn_blocking(move || {
        let profile = LeafProfile {
            binding: &binding,
            organization_name: &org_name,
            category,
            years,
            key_use,
            now,
        };
        ca::issue_leaf(&issuer, &profile, &cfg, &base)
    })
    .await??;
    let sealed = ctx.kek.seal(&key)?;
    let serial = ca::serial_hex(&x509)?;
    let der = x509.to_der()?;
    let issued = Issued {
        serial: &serial,
        issuer_id,
        certificate_der: &der,
        sealed_key: &sealed,
        not_before: ca::asn1_to_utc(x509.not_before())?,
        not_after: ca::asn1_to_utc(x509.not_after())?,
    };
    let mut tx = db.begin().await?;
    if store::pki::lock_requested(&mut tx, id).await?.is_none() {
        return Ok(());
    }
    store::pki::mark_issued(&mut tx, id, &issued).await?;
    if let Some(p) = cert.predecessor_id {
        store::pki::mark_renewed(&mut tx, p).await?;
    }
    // A certificate an application asked for: its address goes live with it, in this commit.
    super::certificate_applications::on_certificate_issued(
        &mut tx,
        &ctx.retry,
        id,
        cert.predecessor_id,
        now,
    )
    .await?;
    let system = Actor {
        name: "system:ca".into(),
        request_id: None,
    };
    if cert.binding == "domain" && org.status != org_status::DISABLED {
        organizations::set_status(&mut tx, org.id, org_status::ACTIVATED).await?;
        crate::service::registry::domain_changed(
            &mut tx,
            &ctx.retry,
            org.id,
            org_status::ACTIVATED,
            &system,
            now,
        )
        .await?;
    }
    store::audit::record(
        &mut tx,
        audit(&system, "certificate.issue", "certificate", &id.to_string()),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(certificate_id = id, serial = %serial, "certificate issued");
    Ok(())
}

fn normalize_serial(serial: &str) -> Result<String, Invalid> {
    // Accepts 0x prefixes, colons, lower case and missing or extra leading zeros.
    let s = serial
        .trim()
        .trim_start_matches("0x")
        .replace(':', "")
        .to_ascii_uppercase();
    if s.trim_start_matches('0').is_empty()
        || s.len() > 40
        || !s.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(Invalid::new(
            "serial",
            "must be the certificate serial number in hex",
        ));
    }
    // The stored form is openssl's: upper-case hex padded to whole bytes.
    let digits = s.trim_start_matches('0');
    Ok(if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits.to_owned()
    })
}

/// Revokes a live certificate and re-publishes its issuer's CRL in the same transaction.
pub async fn revoke(
    db: &PgPool,
    ctx: &PkiContext,
    serial: &str,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<CertificateRecord> {
    let serial = normalize_serial(serial)?;
    let reason: RevocationReason = reason.parse()?;
    let mut tx = db.begin().await?;
    let Some(id) = store::pki::revoke(&mut tx, &serial, reason.as_str(), now).await? else {
        let known = !store::pki::list(
            db,
            &Filter {
                organization: None,
                subject: None,
                serial: Some(&serial),
            },
        )
        .await?
        .is_empty();
        return Err(if known {
            AppError::Conflict(format!(
                "certificate {serial} is not live (already revoked or expired)"
            ))
        } else {
            AppError::NotFound(format!("certificate {serial}"))
        });
    };
    let cert = store::pki::get(&mut tx, id).await?;
    if cert.binding == "domain"
        && !store::pki::has_live_domain_certificate(&mut tx, cert.organization_id, now).await?
    {
        organizations::set_status(
            &mut tx,
            cert.organization_id,
            org_status::CERTIFICATE_REVOKED,
        )
        .await?;
        crate::service::registry::domain_changed(
            &mut tx,
            &ctx.retry,
            cert.organization_id,
            org_status::CERTIFICATE_REVOKED,
            actor,
            now,
        )
        .await?;
    }
    if let Some(issuer) = cert.issuer_id {
        publish_crl(&mut tx, ctx, issuer, now).await?;
    }
    store::audit::record(
        &mut tx,
        audit(actor, "certificate.revoke", "certificate", &id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(cert)
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    pub renewals_requested: usize,
    pub expired: usize,
    pub crls_published: usize,
}

/// The `ca.maintenance` job at clock `now`: request successors for auto-renewing certificates
/// near their end (before expiring anything, so a renewed organization never looks expired),
/// expire what has ended, and re-sign CRLs past half their validity.
pub async fn maintain(
    db: &PgPool,
    ctx: &PkiContext,
    now: DateTime<Utc>,
) -> anyhow::Result<MaintenanceReport> {
    let mut report = MaintenanceReport::default();
    let system = Actor {
        name: "system:ca".into(),
        request_id: None,
    };
    for due in store::pki::due_for_renewal(db, now, ctx.ca.renew_before_days as i32).await? {
        let mut tx = db.begin().await?;
        let new = NewCertificate {
            organization_id: due.organization_id,
            binding: &due.binding,
            subject_name: &due.subject_name,
            category: due.category,
            key_use: due.key_use,
            validity_years: due.validity_years as u8,
            auto_renew: true,
            predecessor_id: Some(due.id),
        };
        // None: another replica requested the successor first.
        if add_request(&mut tx, ctx, &new, &system, "certificate.renew")
            .await?
            .is_some()
        {
            report.renewals_requested += 1;
        }
        tx.commit().await?;
    }

    let mut tx = db.begin().await?;
    for (id, org, binding) in store::pki::expire_due(&mut tx, now).await? {
        if binding == "domain"
            && !store::pki::has_live_domain_certificate(&mut tx, org, now).await?
        {
            organizations::set_status(&mut tx, org, org_status::CERTIFICATE_EXPIRED).await?;
            crate::service::registry::domain_changed(
                &mut tx,
                &ctx.retry,
                org,
                org_status::CERTIFICATE_EXPIRED,
                &system,
                now,
            )
            .await?;
        }
        store::audit::record(
            &mut tx,
            audit(
                &system,
                "certificate.expire",
                "certificate",
                &id.to_string(),
            ),
        )
        .await?;
        report.expired += 1;
    }
    tx.commit().await?;

    let half = TimeDelta::from_std(ctx.ca.crl_validity / 2)?;
    for role in [ROOT, ISSUING] {
        let stale = match store::pki::latest_crl(db, role).await? {
            Some((_, next_update)) => next_update - half <= now,
            None => true,
        };
        if !stale {
            continue;
        }
        let mut tx = db.begin().await?;
        if let Some(row) = store::pki::active_authority(&mut tx, role).await?
            && publish_crl(&mut tx, ctx, row.id, now).await?.is_some()
        {
            report.crls_published += 1;
        }
        tx.commit().await?;
    }
    if report != MaintenanceReport::default() {
        tracing::info!(?report, "CA maintenance");
    }
    Ok(report)
}

pub struct CertificateQuery<'a> {
    pub organization: Option<&'a str>,
    pub address: Option<&'a str>,
}

pub async fn list(db: &PgPool, q: &CertificateQuery<'_>) -> AppResult<Vec<CertificateRecord>> {
    Ok(store::pki::list(
        db,
        &Filter {
            organization: q.organization,
            subject: q.address,
            serial: None,
        },
    )
    .await?)
}

/// An issued (or formerly issued) certificate by serial.
pub async fn by_serial(db: &PgPool, serial: &str) -> AppResult<(CertificateRecord, X509)> {
    let serial = normalize_serial(serial)?;
    let record = store::pki::list(
        db,
        &Filter {
            organization: None,
            subject: None,
            serial: Some(&serial),
        },
    )
    .await?
    .into_iter()
    .next()
    .ok_or_else(|| AppError::NotFound(format!("certificate {serial}")))?;
    let der = record
        .certificate_der
        .clone()
        .ok_or_else(|| AppError::NotFound(format!("certificate {serial}")))?;
    Ok((record, X509::from_der(&der).map_err(anyhow::Error::from)?))
}

/// The certificate, its key and the chain as PKCS#12 under `password` (for ops only: it
/// carries the private key).
pub async fn export_pkcs12(
    db: &PgPool,
    ctx: &PkiContext,
    serial: &str,
    password: &str,
    actor: &Actor,
) -> AppResult<Vec<u8>> {
    if password.chars().count() < 8 {
        return Err(Invalid::new("password", "must be at least 8 characters").into());
    }
    let (record, cert) = by_serial(db, serial).await?;
    let sealed = store::pki::sealed_key(db, record.id)
        .await?
        .ok_or_else(|| AppError::NotFound("key".into()))?;
    let key = ctx.kek.open(&sealed)?;
    let mut chain = openssl::stack::Stack::new().map_err(anyhow::Error::from)?;
    for role in [ISSUING, ROOT] {
        if let Some(c) = authority_certificate(db, role).await? {
            chain.push(c).map_err(anyhow::Error::from)?;
        }
    }
    let mut b = openssl::pkcs12::Pkcs12::builder();
    b.name(&record.subject_name)
        .pkey(&key)
        .cert(&cert)
        .ca(chain);
    let der = b
        .build2(password)
        .and_then(|p| p.to_der())
        .map_err(anyhow::Error::from)?;
    let mut conn = db.acquire().await?;
    store::audit::record(
        &mut conn,
        audit(
            actor,
            "certificate.export_key",
            "certificate",
            &record.id.to_string(),
        ),
    )
    .await?;
    Ok(der)
}

/// The live certificate and key to sign (or decrypt) as `address`: its own address-bound
/// certificate first, else its domain's. What the Direct transport calls.
pub async fn credentials_for(
    db: &PgPool,
    ctx: &PkiContext,
    address: &DirectAddress,
    key_use: KeyUse,
    now: DateTime<Utc>,
) -> AppResult<Option<(X509, PKey<Private>)>> {
    let found = store::pki::live_for_address(
        db,
        &address.to_string(),
        address.domain().as_str(),
        key_use,
        now,
    )
    .await?;
    let Some((der, sealed)) = found else {
        return Ok(None);
    };
    let cert = crate::ca::parsed::certificate(&der).map_err(anyhow::Error::from)?;
    let key = crate::ca::parsed::key(&sealed, || ctx.kek.open(&sealed))?;
    Ok(Some((cert, key)))
}

/// Every live certificate and key that may decrypt mail for `address` (its own, its
/// domain's): what the Direct transport tries on a message from another HISP.
pub async fn decryption_keys(
    db: &PgPool,
    ctx: &PkiContext,
    address: &DirectAddress,
    now: DateTime<Utc>,
) -> AppResult<Vec<(X509, PKey<Private>)>> {
    let rows =
        store::pki::live_decryption_keys(db, &address.to_string(), address.domain().as_str(), now)
            .await?;
    let mut keys = Vec::with_capacity(rows.len());
    for (der, sealed) in rows {
        let cert = crate::ca::parsed::certificate(&der).map_err(anyhow::Error::from)?;
        let key = crate::ca::parsed::key(&sealed, || ctx.kek.open(&sealed))?;
        keys.push((cert, key));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::normalize_serial;

    #[test]
    fn serials_take_the_stored_form() {
        assert_eq!(normalize_serial("0b7f").unwrap(), "0B7F");
        assert_eq!(normalize_serial("B7F").unwrap(), "0B7F");
        assert_eq!(normalize_serial("00:0B:7F").unwrap(), "0B7F");
        assert_eq!(normalize_serial("0x1a2b").unwrap(), "1A2B");
        assert_eq!(normalize_serial("zz").unwrap_err().field, "serial");
        assert!(normalize_serial("0").is_err());
    }
}
