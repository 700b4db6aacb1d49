//! Trust set-up and the decisions it feeds: which anchors each hosted domain trusts (uploaded
//! by operators, taken from trust bundles, and our own CA's root), certificates operators
//! configured for peers, and recipient-certificate discovery (`discovery`, over the
//! `sources` trait).
//!
//! Everything is read from the database at each decision, so a change takes effect on the
//! next message without a restart.
//!
//! Our own root is an anchor of every domain we host, and of no other domain: anchors are only
//! ever asked for a hosted domain (the sender's outbound, the recipient's inbound), and a
//! peer's domain trusting our root is that peer's own decision, made on its side.

mod aia;
pub mod crl;
pub mod discovery;
pub mod dns_source;
mod fetch;
pub mod sources;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use openssl::hash::MessageDigest;
use openssl::pkcs7::Pkcs7;
use openssl::x509::X509;
use serde::Serialize;
use sqlx::PgPool;

use super::Actor;
use crate::domain::Invalid;
use crate::domain::pki::{DirectAddress, DirectDomain};
use crate::egress::EgressPolicy;
use crate::error::{AppError, AppResult};
use crate::jobs::{Job, JobError, JobRegistry};
use crate::store::{self, trust::NewCertificate};

pub use discovery::{ConfiguredSource, Discovery, DiscoveryError, StoreSource};

/// The recurring job that refreshes every trust bundle whose time has come.
pub const BUNDLE_REFRESH_JOB: &str = "trust.bundle_refresh";
/// How often the refresh job looks for due bundles (each bundle is due every
/// `trust.bundle_refresh_interval`).
const REFRESH_POLL: Duration = Duration::from_secs(300);
/// A failed bundle fetch is tried again after this (or the refresh interval, if shorter).
const RETRY_FAILED_BUNDLE: Duration = Duration::from_secs(900);
/// One upload or bundle holds at most this many certificates.
const MAX_CERTIFICATES: usize = 500;

/// What trust decisions need besides the database.
pub struct TrustContext {
    pub egress: Arc<EgressPolicy>,
    pub max_fetch_bytes: usize,
    pub refresh_interval: Duration,
    client: reqwest::Client,
    issuers: aia::IssuerCache,
}

impl TrustContext {
    pub fn from_config(config: &crate::config::Config) -> Self {
        let egress = Arc::new(EgressPolicy::from_config(config));
        let t = &config.trust;
        let client = crate::egress::guarded_client(egress.clone(), t.fetch_timeout)
            .build()
            .expect("an HTTP client with a fixed configuration builds");
        Self {
            egress,
            max_fetch_bytes: t.max_fetch_bytes,
            refresh_interval: t.bundle_refresh_interval,
            client,
            issuers: aia::IssuerCache::default(),
        }
    }
}

/// Registers the bundle refresh.
pub fn register_jobs(registry: &mut JobRegistry, db: PgPool, ctx: Arc<TrustContext>) {
    registry.register_recurring(BUNDLE_REFRESH_JOB, REFRESH_POLL, move |job: Job| {
        let (db, ctx) = (db.clone(), ctx.clone());
        async move {
            let due = store::trust::due_bundles(&db, job.now)
                .await
                .map_err(|e| JobError::Transient(e.to_string()))?;
            for id in due {
                // A failed fetch is recorded on the bundle and tried again at its next_due;
                // only the database failing fails the job.
                refresh_bundle(&db, &ctx, id, job.now)
                    .await
                    .map_err(|e| JobError::Transient(format!("{e:#}")))?;
            }
            Ok(())
        }
    });
}

// ---- certificates as operators see them ----------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct Anchor {
    pub id: i64,
    pub domain: String,
    /// SHA-256 of the DER, lower-case hex.
    pub fingerprint: String,
    pub subject: String,
    pub not_after: DateTime<Utc>,
    /// `upload` or `bundle`.
    pub source: String,
    pub bundle_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl From<store::trust::AnchorRow> for Anchor {
    fn from(r: store::trust::AnchorRow) -> Self {
        Self {
            id: r.id,
            domain: r.domain,
            fingerprint: r.fingerprint,
            subject: r.subject,
            not_after: r.not_after,
            source: r.source,
            bundle_id: r.bundle_id,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerCertificate {
    pub id: i64,
    pub domain: String,
    /// The address it is for; `None` for the whole domain.
    pub address: Option<String>,
    pub fingerprint: String,
    pub subject: String,
    pub not_after: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<store::trust::PeerRow> for PeerCertificate {
    fn from(r: store::trust::PeerRow) -> Self {
        Self {
            id: r.id,
            domain: r.domain,
            address: r.address,
            fingerprint: r.fingerprint,
            subject: r.subject,
            not_after: r.not_after,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Bundle {
    pub id: i64,
    pub domain: String,
    pub url: String,
    pub created_at: DateTime<Utc>,
    pub refreshed_at: Option<DateTime<Utc>>,
    /// Why the last fetch failed; the anchors of the last good fetch stay in force.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub next_due: DateTime<Utc>,
    /// How many anchors the bundle gives now.
    pub anchors: i64,
}

impl From<store::trust::BundleRow> for Bundle {
    fn from(r: store::trust::BundleRow) -> Self {
        Self {
            id: r.id,
            domain: r.domain,
            url: r.url,
            created_at: r.created_at,
            refreshed_at: r.refreshed_at,
            last_error: r.last_error,
            last_error_at: r.last_error_at,
            next_due: r.next_due,
            anchors: r.anchors,
        }
    }
}

/// The facts we store about a certificate.
struct Described {
    der: Vec<u8>,
    fingerprint: String,
    subject: String,
    not_after: DateTime<Utc>,
}

fn describe(cert: &X509) -> anyhow::Result<Described> {
    let digest = cert.digest(MessageDigest::sha256())?;
    let fingerprint = digest.iter().map(|b| format!("{b:02x}")).collect();
    let subject = cert
        .subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let val = e.data().to_string().unwrap_or_default();
            format!("{key}={val}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Described {
        der: cert.to_der()?,
        fingerprint,
        subject,
        not_after: crate::ca::asn1_to_utc(cert.not_after())?,
    })
}

impl Described {
    fn new_certificate<'a>(&'a self, domain: &'a str) -> NewCertificate<'a> {
        NewCertificate {
            domain,
            der: &self.der,
            fingerprint: &self.fingerprint,
            subject: &self.subject,
            not_after: self.not_after,
        }
    }
}

/// Every certificate of a PEM upload: at least one, at most `MAX_CERTIFICATES`, all readable.
fn parse_pem(field: &'static str, pem: &[u8]) -> Result<Vec<X509>, Invalid> {
    let certs = X509::stack_from_pem(pem)
        .map_err(|_| Invalid::new(field, "not PEM certificates (-----BEGIN CERTIFICATE-----)"))?;
    if certs.is_empty() {
        return Err(Invalid::new(field, "holds no certificate"));
    }
    if certs.len() > MAX_CERTIFICATES {
        return Err(Invalid::new(
            field,
            format!("holds more than {MAX_CERTIFICATES} certificates"),
        ));
    }
    for c in &certs {
        if c.public_key().is_err() || crate::ca::asn1_to_utc(c.not_after()).is_err() {
            return Err(Invalid::new(field, "a certificate in it cannot be read"));
        }
    }
    Ok(certs)
}

/// Whether `cert` says it is a CA (basicConstraints cA = TRUE).
fn is_ca(cert: &X509) -> bool {
    // The safe bindings expose no basicConstraints getter; OpenSSL's own rendering of the
    // extension does say it, in a fixed form.
    cert.to_text()
        .ok()
        .is_some_and(|t| String::from_utf8_lossy(&t).contains("CA:TRUE"))
}

fn domain(s: &str) -> Result<DirectDomain, Invalid> {
    DirectDomain::parse(s)
}

fn internal(e: impl Into<anyhow::Error>) -> AppError {
    AppError::Internal(e.into())
}

// ---- anchors -------------------------------------------------------------------------------

/// The anchors `domain` trusts now: uploaded, from its bundles, and our own root when we host
/// the domain. Read at each call, so changes apply to the next message.
pub async fn anchors_for(db: &PgPool, domain: &str) -> AppResult<Vec<X509>> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut anchors = Vec::new();
    for der in store::trust::anchors_der(db, &domain).await? {
        // A row we wrote from a certificate we parsed; one that does not parse is skipped
        // rather than stopping every message of the domain.
        match crate::ca::parsed::certificate(&der) {
            Ok(c) => anchors.push(c),
            Err(_) => tracing::error!(domain = %domain, "a stored trust anchor does not parse"),
        }
    }
    if hosts(db, &domain).await? {
        anchors.extend(super::pki::trust_anchors(db).await?);
    }
    Ok(anchors)
}

/// Whether `domain` is one of our organizations' domains.
pub async fn hosts(db: &PgPool, domain: &str) -> AppResult<bool> {
    let mut conn = db.acquire().await?;
    Ok(store::organizations::find_by_domain(&mut conn, domain)
        .await?
        .is_some())
}

/// Adds every certificate of a PEM upload as an anchor of `domain`; each must be a CA.
/// Certificates the domain has already are skipped; returns the ones added.
pub async fn add_anchors(
    db: &PgPool,
    domain_name: &str,
    pem: &[u8],
    actor: &Actor,
) -> AppResult<Vec<Anchor>> {
    let domain = domain(domain_name)?;
    let certs = parse_pem("pem", pem)?;
    if let Some(i) = certs.iter().position(|c| !is_ca(c)) {
        return Err(Invalid::new(
            "pem",
            format!(
                "certificate {} is not a CA certificate (basicConstraints CA:TRUE)",
                i + 1
            ),
        )
        .into());
    }
    let described = certs
        .iter()
        .map(describe)
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(internal)?;
    let mut tx = db.begin().await?;
    let mut added = Vec::new();
    for d in &described {
        let Some(row) =
            store::trust::insert_anchor(&mut tx, &d.new_certificate(domain.as_str()), None).await?
        else {
            continue;
        };
        store::audit::record(
            &mut tx,
            actor.audit("trust.anchor.add", "trust_anchor", &row.id.to_string()),
        )
        .await?;
        added.push(Anchor::from(row));
    }
    tx.commit().await?;
    Ok(added)
}

pub async fn list_anchors(db: &PgPool, domain_name: Option<&str>) -> AppResult<Vec<Anchor>> {
    let domain = domain_name.map(domain).transpose()?;
    let rows = store::trust::list_anchors(db, domain.as_ref().map(|d| d.as_str())).await?;
    Ok(rows.into_iter().map(Anchor::from).collect())
}

/// Removes an uploaded anchor. A bundle's anchors go with their bundle (or its next refresh).
pub async fn remove_anchor(db: &PgPool, id: i64, actor: &Actor) -> AppResult<Anchor> {
    let mut tx = db.begin().await?;
    let row = store::trust::get_anchor(&mut tx, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("trust anchor {id}")))?;
    if let Some(bundle) = row.bundle_id {
        return Err(AppError::Conflict(format!(
            "trust anchor {id} comes from trust bundle {bundle}: remove the bundle, or the \
             certificate from the bundle at its source"
        )));
    }
    store::trust::delete_anchor(&mut tx, id).await?;
    store::audit::record(
        &mut tx,
        actor.audit("trust.anchor.remove", "trust_anchor", &id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(row.into())
}

// ---- peer certificates ---------------------------------------------------------------------

/// What a peer certificate is for: a whole domain, or one address.
pub enum PeerTarget {
    Domain(DirectDomain),
    Address(DirectAddress),
}

impl PeerTarget {
    /// Exactly one of `domain` and `address`.
    pub fn parse(domain_name: Option<&str>, address: Option<&str>) -> Result<Self, Invalid> {
        match (domain_name, address) {
            (Some(d), None) => Ok(PeerTarget::Domain(domain(d)?)),
            (None, Some(a)) => Ok(PeerTarget::Address(DirectAddress::parse(a)?)),
            _ => Err(Invalid::new(
                "domain",
                "give either a domain or an address, not both",
            )),
        }
    }
}

/// Adds the certificates of a PEM upload as `target`'s; each must be bound to it (an
/// rfc822Name of the address, or a dNSName of the domain). Trust is decided at each use.
pub async fn add_peers(
    db: &PgPool,
    target: &PeerTarget,
    pem: &[u8],
    actor: &Actor,
) -> AppResult<Vec<PeerCertificate>> {
    use crate::direct::validate::{Target, binds};
    let certs = parse_pem("pem", pem)?;
    let (dom, address, t) = match target {
        PeerTarget::Domain(d) => (d.as_str().to_owned(), None, Target::Domain(d.as_str())),
        PeerTarget::Address(a) => (
            a.domain().as_str().to_owned(),
            Some(a.to_string().to_ascii_lowercase()),
            Target::Address(a),
        ),
    };
    if let Some(i) = certs.iter().position(|c| !binds(c, &t)) {
        return Err(Invalid::new(
            "pem",
            format!(
                "certificate {} is not bound to {} (no matching rfc822Name or dNSName)",
                i + 1,
                address.as_deref().unwrap_or(&dom)
            ),
        )
        .into());
    }
    let described = certs
        .iter()
        .map(describe)
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(internal)?;
    let mut tx = db.begin().await?;
    let mut added = Vec::new();
    for d in &described {
        let Some(row) =
            store::trust::insert_peer(&mut tx, &d.new_certificate(&dom), address.as_deref())
                .await?
        else {
            continue;
        };
        store::audit::record(
            &mut tx,
            actor.audit("trust.peer.add", "peer_certificate", &row.id.to_string()),
        )
        .await?;
        added.push(PeerCertificate::from(row));
    }
    tx.commit().await?;
    Ok(added)
}

pub async fn list_peers(db: &PgPool, domain_name: Option<&str>) -> AppResult<Vec<PeerCertificate>> {
    let domain = domain_name.map(domain).transpose()?;
    let rows = store::trust::list_peers(db, domain.as_ref().map(|d| d.as_str())).await?;
    Ok(rows.into_iter().map(PeerCertificate::from).collect())
}

pub async fn remove_peer(db: &PgPool, id: i64, actor: &Actor) -> AppResult<PeerCertificate> {
    let mut tx = db.begin().await?;
    let row = store::trust::delete_peer(&mut tx, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("peer certificate {id}")))?;
    store::audit::record(
        &mut tx,
        actor.audit("trust.peer.remove", "peer_certificate", &id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(row.into())
}

// ---- trust bundles -------------------------------------------------------------------------

/// Adds a bundle URL to `domain` and fetches it once now; a failed first fetch leaves the
/// bundle in place with its error, to be tried again by the refresh job.
pub async fn add_bundle(
    db: &PgPool,
    ctx: &TrustContext,
    domain_name: &str,
    url: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<Bundle> {
    let domain = domain(domain_name)?;
    let parsed =
        url::Url::parse(url.trim()).map_err(|_| Invalid::new("url", "not an absolute URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Invalid::new("url", "must be http or https").into());
    }
    ctx.egress
        .check_url(&parsed)
        .map_err(|r| Invalid::new("url", r.to_string()))?;
    let mut tx = db.begin().await?;
    let id = store::trust::insert_bundle(&mut tx, domain.as_str(), parsed.as_str())
        .await?
        .ok_or_else(|| {
            AppError::Conflict(format!("{domain} already has the trust bundle {parsed}"))
        })?;
    store::audit::record(
        &mut tx,
        actor.audit("trust.bundle.add", "trust_bundle", &id.to_string()),
    )
    .await?;
    tx.commit().await?;
    refresh_bundle(db, ctx, id, now).await
}

pub async fn list_bundles(db: &PgPool, domain_name: Option<&str>) -> AppResult<Vec<Bundle>> {
    let domain = domain_name.map(domain).transpose()?;
    let rows = store::trust::list_bundles(db, domain.as_ref().map(|d| d.as_str())).await?;
    Ok(rows.into_iter().map(Bundle::from).collect())
}

/// Removes a bundle and, with it, the anchors it gave.
pub async fn remove_bundle(db: &PgPool, id: i64, actor: &Actor) -> AppResult<Bundle> {
    let bundle = get_bundle(db, id).await?;
    let mut tx = db.begin().await?;
    if !store::trust::delete_bundle(&mut tx, id).await? {
        return Err(AppError::NotFound(format!("trust bundle {id}")));
    }
    store::audit::record(
        &mut tx,
        actor.audit("trust.bundle.remove", "trust_bundle", &id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(bundle)
}

pub async fn get_bundle(db: &PgPool, id: i64) -> AppResult<Bundle> {
    Ok(store::trust::get_bundle(db, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("trust bundle {id}")))?
        .into())
}

/// Fetches a bundle and replaces its anchors with what it holds, in one transaction. A fetch
/// or parse failure changes no anchor and is recorded on the bundle; `Err` only when the
/// bundle is unknown or the database fails.
pub async fn refresh_bundle(
    db: &PgPool,
    ctx: &TrustContext,
    id: i64,
    now: DateTime<Utc>,
) -> AppResult<Bundle> {
    let bundle = get_bundle(db, id).await?;
    let fetched = match fetch::get(ctx, &bundle.url).await {
        Ok(body) => parse_bundle(&body),
        Err(e) => Err(e),
    };
    let certs = match fetched {
        Ok(c) => c,
        Err(error) => {
            tracing::warn!(bundle = id, error = %error, "trust bundle refresh failed");
            let retry = chrono::Duration::from_std(RETRY_FAILED_BUNDLE.min(ctx.refresh_interval))
                .unwrap_or_default();
            store::trust::bundle_failed(db, id, &error, now, now + retry).await?;
            return get_bundle(db, id).await;
        }
    };
    let described: Vec<Described> = certs.iter().filter_map(|c| describe(c).ok()).collect();
    let next = now + chrono::Duration::from_std(ctx.refresh_interval).unwrap_or_default();
    let mut tx = db.begin().await?;
    if !store::trust::lock_bundle(&mut tx, id).await? {
        return Err(AppError::NotFound(format!("trust bundle {id}")));
    }
    store::trust::clear_bundle_anchors(&mut tx, id).await?;
    for d in &described {
        store::trust::insert_anchor(&mut tx, &d.new_certificate(&bundle.domain), Some(id)).await?;
    }
    store::trust::bundle_refreshed(&mut tx, id, now, next).await?;
    store::audit::record(
        &mut tx,
        Actor {
            name: "system".into(),
            request_id: None,
        }
        .audit("trust.bundle.refresh", "trust_bundle", &id.to_string()),
    )
    .await?;
    tx.commit().await?;
    get_bundle(db, id).await
}

/// The CA certificates of a PKCS#7 bundle (DER or PEM). A bundle with none is an error: an
/// empty answer from a broken server must not wipe a domain's anchors.
fn parse_bundle(body: &[u8]) -> Result<Vec<X509>, String> {
    let p7 = Pkcs7::from_der(body)
        .or_else(|_| Pkcs7::from_pem(body))
        .map_err(|_| "not a PKCS#7 bundle".to_string())?;
    let certs: Vec<X509> = p7
        .signed()
        .and_then(|s| s.certificates())
        .map(|s| {
            s.iter()
                .take(MAX_CERTIFICATES)
                .map(|c| c.to_owned())
                .collect()
        })
        .unwrap_or_default();
    let cas: Vec<X509> = certs.into_iter().filter(is_ca).collect();
    if cas.is_empty() {
        return Err("the bundle holds no CA certificate".into());
    }
    Ok(cas)
}
