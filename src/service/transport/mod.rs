//! The Direct transport: what makes the gateway a HISP among HISPs.
//!
//! A message for addresses at another HISP leaves as one S/MIME message per recipient domain
//! over SMTP (`outbound`); mail that other HISPs send us is opened, checked against the
//! recipient domain's trust anchors and delivered like a vendor's message (`receive`); and MDNs
//! travel both ways (`notifications`): ours report what became of their messages, theirs
//! drive our recipients' statuses.

pub mod notifications;
pub mod outbound;
pub mod receive;
pub mod smtp_client;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use sqlx::PgPool;

use crate::config::{Config, RouteConfig, TransportConfig};
use crate::direct::smime::Algorithms;
use crate::dns::Dns;
use crate::egress::EgressPolicy;
use crate::jobs::JobRegistry;
use crate::service::messaging::MessagingContext;
use crate::service::pki::PkiContext;
use crate::service::trust::dns_source::DnsCertSource;
use crate::service::trust::{Discovery, TrustContext};
use smtp_client::Peer;

/// One send job per message and recipient domain.
pub const SEND_JOB: &str = "direct.send";
/// One job per mail the SMTP listener committed (it names the kind).
pub use crate::service::mail_intake::RECEIVE_JOB;
/// The failed MDN for a refused mail from a trusted sender.
pub const REFUSAL_JOB: &str = "direct.refusal";

/// The port of SMTP between mail servers.
const SMTP_PORT: u16 = 25;

pub struct TransportContext {
    pub config: TransportConfig,
    /// Our name in EHLO and in Reporting-UA.
    pub hostname: String,
    pub algorithms: Algorithms,
    pub discovery: Discovery,
    pub dns: Option<Dns>,
    pub pki: Arc<PkiContext>,
    pub messaging: Arc<MessagingContext>,
    /// Mail exchangers are checked like pushes: a recipient domain whose MX points into our own
    /// network gets nowhere unless that network is allowed.
    egress: Arc<EgressPolicy>,
    /// The static routes, starting from the configuration; `set_route` changes them while the
    /// server runs (two gateways in one test learn each other's port this way).
    routes: RwLock<BTreeMap<String, RouteConfig>>,
}

impl TransportContext {
    pub fn new(
        config: &Config,
        db: PgPool,
        pki: Arc<PkiContext>,
        messaging: Arc<MessagingContext>,
        trust: Arc<TrustContext>,
    ) -> Self {
        let t = &config.transport;
        let dns = Dns::from_config(&config.dns)
            .map_err(|e| tracing::warn!(error = %format!("{e:#}"), "DNS resolver unavailable; static routes only"))
            .ok();
        let hostname = if t.hostname.is_empty() {
            url::Url::parse(&config.http.public_base_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "localhost".into())
        } else {
            t.hostname.clone()
        };
        let egress = Arc::new(EgressPolicy::from_config(config));
        let mut discovery = Discovery::new(db, trust);
        if let Some(dns) = &dns {
            discovery = discovery.with_source(Box::new(DnsCertSource::new(
                dns.clone(),
                egress.clone(),
                config.trust.fetch_timeout,
            )));
        }
        Self {
            algorithms: Algorithms {
                digest: t.digest,
                cipher: t.cipher,
                key_transport: t.key_transport,
            },
            routes: RwLock::new(
                t.routes
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect(),
            ),
            config: t.clone(),
            hostname,
            discovery,
            dns,
            pki,
            messaging,
            egress,
        }
    }

    /// Routes mail for `domain` to `route` from now on, instead of its MX records.
    pub fn set_route(&self, domain: &str, route: RouteConfig) {
        self.routes
            .write()
            .expect("routes lock")
            .insert(domain.to_ascii_lowercase(), route);
    }

    /// Where mail for `domain` goes, in order: its static route, else its MX hosts (else its
    /// own address), each address checked against the egress policy. `Err` says why there is
    /// none for now (DNS trouble) or for good.
    pub async fn peers_for(&self, domain: &str) -> Result<Vec<Peer>, RouteError> {
        let route = self
            .routes
            .read()
            .expect("routes lock")
            .get(&domain.to_ascii_lowercase())
            .cloned();
        if let Some(route) = route {
            // An operator's route is trusted as written, private addresses included.
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(route.address.as_str())
                .await
                .map_err(|e| RouteError::Temporary(format!("route {}: {e}", route.address)))?
                .collect();
            let host = route
                .address
                .rsplit_once(':')
                .map_or(route.address.as_str(), |(h, _)| h)
                .to_owned();
            return Ok(addrs
                .into_iter()
                .map(|addr| Peer {
                    host: host.clone(),
                    addr,
                    require_tls: route.require_tls,
                })
                .collect());
        }
        let Some(dns) = &self.dns else {
            return Err(RouteError::Temporary("no DNS resolver".into()));
        };
        let hosts = dns.mail_hosts(domain).await.map_err(|e| match e {
            crate::dns::DnsError::Temporary(e) => RouteError::Temporary(e),
            other => RouteError::Permanent(other.to_string()),
        })?;
        let mut peers = Vec::new();
        for h in hosts {
            for ip in h.addrs {
                if self.egress.check(ip).is_ok() {
                    peers.push(Peer {
                        host: h.name.clone(),
                        addr: SocketAddr::new(ip, SMTP_PORT),
                        require_tls: false,
                    });
                }
            }
        }
        if peers.is_empty() {
            return Err(RouteError::Permanent(format!(
                "no mail server of {domain} may be reached"
            )));
        }
        Ok(peers)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("{0}")]
    Temporary(String),
    #[error("{0}")]
    Permanent(String),
}

pub fn register_jobs(registry: &mut JobRegistry, db: PgPool, ctx: Arc<TransportContext>) {
    let (d, c) = (db.clone(), ctx.clone());
    let retry = ctx.messaging.delivery_retry.clone();
    registry.register_with_retry(SEND_JOB, retry.clone(), move |job| {
        let (db, ctx) = (d.clone(), c.clone());
        async move { outbound::send(&db, &ctx, &job).await }
    });
    let (d, c) = (db.clone(), ctx.clone());
    registry.register_with_retry(REFUSAL_JOB, retry, move |job| {
        let (db, ctx) = (d.clone(), c.clone());
        async move { notifications::send_refusal(&db, &ctx, &job).await }
    });
    // Enqueued by the SMTP listener with the default policy.
    registry.register(RECEIVE_JOB, move |job| {
        let (db, ctx) = (db.clone(), ctx.clone());
        async move { receive::receive(&db, &ctx, &job).await }
    });
}

/// One inbound mail as ops see it (everything but its bytes).
pub use crate::store::transport::InboundMailRow as InboundMail;

/// Inbound mail listed at once at most.
pub const MAX_LISTED: i64 = 500;

/// Mail other HISPs sent us, newest first: what ops look at when a peer says "we sent it".
pub async fn inbound_mail(
    db: &PgPool,
    state: Option<&str>,
    limit: i64,
) -> crate::error::AppResult<Vec<InboundMail>> {
    Ok(crate::store::transport::list_inbound(db, state, limit.clamp(1, MAX_LISTED)).await?)
}
