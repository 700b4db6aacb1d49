//! The HL7 v3 organization registry (PRPM organization topic): the fulfiller of add and update
//! requests, the tracker of notifications, the query fulfiller, and the informer that tells
//! subscribers of every change to a registry organization, whichever door made it.
//!
//! A registry organization is a verified organization: resellers provision it over SOAP by its
//! `certified_id`, which is also the extension of our registry id.

pub mod informer;
pub mod message;
pub mod organization;
mod queries;
mod records;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::ca::sealed::KeyEncryptionKey;
use crate::config::{Config, Hl7Config};
use crate::domain::client::{Client, ClientKind};
use crate::domain::registry::{Ii, RegistryStatus};
use crate::egress::EgressPolicy;
use crate::jobs::RetryPolicy;
use crate::xml::Element;
use message::{Ack, Parties, Problem};

pub use records::{domain_changed, set_status_by_cli};

/// Timeout of one push to a subscriber.
const PUSH_TIMEOUT: Duration = Duration::from_secs(15);

pub struct RegistryContext {
    pub config: Hl7Config,
    pub kek: KeyEncryptionKey,
    pub retry: RetryPolicy,
    pub egress: Arc<EgressPolicy>,
    pub http: reqwest::Client,
}

impl RegistryContext {
    pub fn from_config(config: &Config) -> Self {
        let egress = Arc::new(EgressPolicy::from_config(config));
        let http = crate::egress::guarded_client(egress.clone(), PUSH_TIMEOUT)
            .user_agent(concat!("hisp-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds with static settings");
        Self {
            config: config.hl7.clone(),
            kek: KeyEncryptionKey::derive(&config.ca.key_encryption_key),
            retry: RetryPolicy::from_config(&config.jobs),
            egress,
            http,
        }
    }

    /// Our registry id of an organization.
    pub fn registry_id(&self, certified_id: i64) -> Ii {
        Ii::new(&self.config.registry_root_oid, &certified_id.to_string())
    }
}

/// The interactions we receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    AddRequest,
    UpdateRequest,
    AddNotice,
    UpdateNotice,
    NullifyNotice,
    NullifyIdentifiedNotice,
    ActivateNotice,
    ActivateIdentifiedNotice,
    Candidates,
    Details,
    Report,
    AdminReport,
}

impl Interaction {
    pub fn from_root(name: &str) -> Option<Self> {
        Some(match name {
            "PRPM_IN401030UV01" => Self::AddRequest,
            "PRPM_IN403010UV01" => Self::UpdateRequest,
            "PRPM_IN401010UV01" => Self::AddNotice,
            "PRPM_IN403030UV01" => Self::UpdateNotice,
            "PRPM_IN402010UV01" => Self::NullifyNotice,
            "PRPM_IN402011UV01" => Self::NullifyIdentifiedNotice,
            "PRPM_IN404010UV01" => Self::ActivateNotice,
            "PRPM_IN404011UV01" => Self::ActivateIdentifiedNotice,
            "PRPM_IN405010UV01" => Self::Candidates,
            "PRPM_IN406010UV01" => Self::Details,
            "PRPM_IN406030UV01" => Self::Report,
            "PRPM_IN406040UV01" => Self::AdminReport,
            _ => return None,
        })
    }

    pub fn is_query(self) -> bool {
        matches!(
            self,
            Self::Candidates | Self::Details | Self::Report | Self::AdminReport
        )
    }
}

/// Whether a client of `kind` may send the message whose root element is `root`: registries
/// and ops anything, vendors queries only. Unknown interactions pass (and are refused as such).
pub fn may_send(kind: ClientKind, root: &str) -> bool {
    match kind {
        ClientKind::Registry | ClientKind::Ops => true,
        ClientKind::Vendor => Interaction::from_root(root).is_none_or(Interaction::is_query),
        _ => false,
    }
}

pub struct Caller {
    pub client: Client,
    pub request_id: Option<String>,
}

impl Caller {
    fn actor(&self) -> crate::service::Actor {
        crate::service::Actor::client(self.client.id, self.request_id.clone())
    }
}

/// The answer to one message.
pub struct Reply {
    pub xml: String,
    pub ack: Ack,
}

fn new_message_id(ctx: &RegistryContext) -> Ii {
    Ii::new(&ctx.config.device_id, &uuid::Uuid::new_v4().to_string())
}

/// An accept acknowledgement refusing a message (or accepting a notification).
pub fn refusal(
    ctx: &RegistryContext,
    target: Option<&Ii>,
    peer: Option<&Ii>,
    problem: &Problem,
    now: DateTime<Utc>,
) -> Reply {
    let parties = Parties {
        us: &ctx.config.device_id,
        peer,
    };
    Reply {
        xml: message::accept_ack(&new_message_id(ctx), now, &parties, target, Some(problem)),
        ack: problem.ack,
    }
}

/// Handles one HL7 v3 message (its root element, already read with the bounded reader):
/// applies it and answers with the interaction's response, or with an accept acknowledgement.
pub async fn handle(
    db: &PgPool,
    ctx: &RegistryContext,
    caller: &Caller,
    root: &Element,
    now: DateTime<Utc>,
) -> Reply {
    // The request's id, when it has a readable one, is the target of any refusal.
    let loose_id = root.child("id").and_then(|i| message::read_ii(i, "").ok());
    if root.ns != message::NS {
        let p = Problem::rejected(
            "SYN",
            format!("/{}", root.name),
            format!(
                "the root element {} is in namespace {:?}; HL7 v3 messages are in {:?}",
                root.name,
                root.ns,
                message::NS
            ),
        );
        return refusal(ctx, loose_id.as_ref(), None, &p, now);
    }
    let header = match message::read_header(root) {
        Ok(h) => h,
        Err(p) => return refusal(ctx, loose_id.as_ref(), None, &p, now),
    };
    let Some(interaction) = Interaction::from_root(&root.name) else {
        let p = Problem::rejected(
            "NS200",
            format!("/{}", root.name),
            format!(
                "{} is not an interaction this organization registry receives",
                root.name
            ),
        );
        return refusal(ctx, Some(&header.id), header.sender.as_ref(), &p, now);
    };
    let answered = if interaction.is_query() {
        queries::answer(db, ctx, caller, interaction, &header, root, now).await
    } else {
        records::apply(db, ctx, caller, interaction, &header, root, now).await
    };
    match answered {
        Ok(xml) => Reply { xml, ack: Ack::Aa },
        Err(p) => refusal(ctx, Some(&header.id), header.sender.as_ref(), &p, now),
    }
}

/// Why a verified organization may not be provisioned now (it is a registry organization that
/// is suspended, nullified or pending); `None` when it may.
pub async fn provisioning_refusal(
    conn: &mut PgConnection,
    certified_id: i64,
) -> Result<Option<&'static str>, sqlx::Error> {
    Ok(crate::store::registry::status_of(conn, certified_id)
        .await?
        .and_then(|s| s.parse::<RegistryStatus>().ok())
        .and_then(RegistryStatus::provisioning_refusal))
}

fn internal(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "organization registry: internal error");
    Problem {
        ack: Ack::Ae,
        code: "INTERR",
        text: "internal error; nothing was changed".into(),
        location: "/".into(),
    }
}
