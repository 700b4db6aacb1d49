//! The state every front door shares: the database, the configuration and the services'
//! contexts. Doors import it; it imports no door, so adding one never reaches back here.

use std::sync::Arc;

use sqlx::PgPool;

use crate::auth::Verifier;
use crate::auth::throttle::Throttle;
use crate::clock::Clock;
use crate::config::Config;
use crate::jobs::{JobRegistry, RetryPolicy};
use crate::limits::{Admission, RateLimiter};
use crate::service::messaging::MessagingContext;
use crate::service::pki::PkiContext;
use crate::service::transport::TransportContext;
use crate::service::trust::TrustContext;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub verifier: Arc<Verifier>,
    pub retry: RetryPolicy,
    pub pki: Arc<PkiContext>,
    pub clock: Clock,
    pub messaging: Arc<MessagingContext>,
    pub transport: Arc<TransportContext>,
    pub limiter: Arc<RateLimiter>,
    pub admission: Arc<Admission>,
    pub trust: Arc<TrustContext>,
    pub applications: Arc<crate::service::certificate_applications::NotifyContext>,
    pub credentialing: Arc<crate::service::credentialing::CredentialingContext>,
    pub registry: Arc<crate::service::registry::RegistryContext>,
}

impl AppState {
    /// `config` must have its local secrets resolved (`app::resolve_local_secrets`).
    pub fn new(config: Config, db: PgPool) -> Self {
        let m = &config.messaging;
        let pki = Arc::new(PkiContext::from_config(&config));
        let messaging = Arc::new(MessagingContext::from_config(&config));
        let trust = Arc::new(TrustContext::from_config(&config));
        let transport = Arc::new(TransportContext::new(
            &config,
            db.clone(),
            pki.clone(),
            messaging.clone(),
            trust.clone(),
        ));
        let mdns: Arc<dyn crate::service::messaging::PeerNotifier> =
            Arc::new(crate::service::transport::notifications::Mdns {
                db: db.clone(),
                // Weak: the transport holds messaging, which holds this.
                transport: Arc::downgrade(&transport),
            });
        // A fresh context: nothing has set it yet.
        let _ = messaging.peers.set(mdns);
        Self {
            retry: RetryPolicy::from_config(&config.jobs),
            pki,
            messaging,
            transport,
            limiter: Arc::new(RateLimiter::new(m.rate_per_second, m.rate_burst)),
            admission: Arc::new(Admission::new(m.max_concurrent_sends, m.admission_wait)),
            verifier: Arc::new(Verifier::new(Throttle::new(
                config.security.throttle_policy(),
            ))),
            clock: Clock::default(),
            trust,
            applications: Arc::new(
                crate::service::certificate_applications::NotifyContext::from_config(&config),
            ),
            credentialing: Arc::new(
                crate::service::credentialing::CredentialingContext::from_config(&config),
            ),
            registry: Arc::new(crate::service::registry::RegistryContext::from_config(
                &config,
            )),
            config: Arc::new(config),
            db,
        }
    }

    /// Key of the keyed hashes that let us match identity data we do not store.
    pub fn identity_key(&self) -> &[u8] {
        self.config.security.identity_hash_key.expose().as_bytes()
    }

    /// The job handlers of the gateway.
    pub fn job_registry(&self) -> JobRegistry {
        let mut r = JobRegistry::new();
        crate::service::pki::register_jobs(&mut r, self.db.clone(), self.pki.clone());
        crate::service::messaging::delivery::register_jobs(
            &mut r,
            self.db.clone(),
            self.messaging.clone(),
        );
        crate::service::transport::register_jobs(&mut r, self.db.clone(), self.transport.clone());
        crate::service::trust::register_jobs(&mut r, self.db.clone(), self.trust.clone());
        crate::service::certificate_applications::notify::register_jobs(
            &mut r,
            self.db.clone(),
            self.applications.clone(),
        );
        crate::service::credentialing::register_jobs(
            &mut r,
            self.db.clone(),
            self.credentialing.clone(),
        );
        crate::service::registry::informer::register_jobs(
            &mut r,
            self.db.clone(),
            self.registry.clone(),
        );
        r
    }
}
