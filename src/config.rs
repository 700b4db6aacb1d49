//! Layered configuration: embedded defaults, an optional file, `GW_*` environment variables,
//! then `DATABASE_URL`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Deserializer};

const DEFAULTS: &str = include_str!("../config/default.toml");

/// A value that must never reach a log line or a `Debug` dump.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"[redacted]\""
        })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub http: HttpConfig,
    pub smtp: SmtpConfig,
    pub database: DatabaseConfig,
    pub jobs: JobsConfig,
    pub security: SecurityConfig,
    pub ca: CaConfig,
    pub log: LogConfig,
    pub demo: DemoConfig,
    pub soap: SoapConfig,
    pub offers: OffersConfig,
    pub messaging: MessagingConfig,
    pub webhooks: WebhooksConfig,
    pub transport: TransportConfig,
    pub trust: TrustConfig,
    pub dns: DnsConfig,
    pub notifications: NotificationsConfig,
    pub credentialing: CredentialingConfig,
    pub hl7: Hl7Config,
}

/// E-mails to people outside the Direct network (certificate applicants), through a relay.
#[derive(Debug, Clone, Deserialize)]
pub struct NotificationsConfig {
    pub smtp_relay: SmtpRelayConfig,
}

/// The SMTP submission relay notification e-mails go through.
#[derive(Debug, Clone, Deserialize)]
pub struct SmtpRelayConfig {
    /// `host:port`; empty: no e-mail is sent (the jobs end without sending, logged).
    pub address: String,
    pub starttls: StartTls,
    /// AUTH credentials; an empty username means none.
    pub username: String,
    pub password: Secret,
    /// The From address of the e-mails.
    pub from: String,
    /// Longest wait for the relay: connecting and each reply.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl SmtpRelayConfig {
    /// (host, port) of `address`; `None` when it is empty.
    pub fn host_port(&self) -> Option<(String, u16)> {
        let (host, port) = self.address.trim().rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some((host.to_owned(), port.parse().ok()?))
    }
}

/// How the relay connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// STARTTLS with a verified certificate, or nothing is sent.
    Required,
    /// STARTTLS when offered (certificate verified), plain otherwise.
    Opportunistic,
    /// Plain SMTP (a relay on the same host or network).
    None,
}

/// Credentialing intake: what makes an individual's standing, and who hears of a change.
#[derive(Debug, Clone, Deserialize)]
pub struct CredentialingConfig {
    /// Provider credentialing statuses (`credentialingStatus`) that restrict, compared
    /// case-insensitively.
    pub disqualifying_statuses: Vec<String>,
    /// Dataset types whose scan matches mean an exclusion list hit (restricted).
    pub exclusion_datasets: Vec<String>,
    /// A license expiring within this is a warning.
    #[serde(with = "humantime_serde")]
    pub warning_window: Duration,
    /// Where ops are told of changes of standing (signed); empty: nobody is told.
    pub ops_webhook_url: String,
    /// The Standard Webhooks key (`whsec_…`) those notifications are signed with.
    pub ops_webhook_secret: Secret,
    /// Largest webhook body accepted.
    pub body_limit_bytes: usize,
}

/// The HL7 v3 organization registry door (`src/hl7`).
#[derive(Debug, Clone, Deserialize)]
pub struct Hl7Config {
    /// Our device id (an OID) in every message's sender and receiver.
    pub device_id: String,
    /// Root OID of the registry ids we assign (extension = the certified_id).
    pub registry_root_oid: String,
    /// Whether suspending an organization also disables its provisioned Direct domain.
    pub suspension_disables_domain: bool,
}

/// The Direct transport to other HISPs: how messages are sealed and where they are sent.
#[derive(Debug, Clone, Deserialize)]
pub struct TransportConfig {
    /// Send messages for other HISPs over SMTP; off, they wait and time out (FAILED-TO).
    pub enabled: bool,
    /// Our name in EHLO and in the MDNs' Reporting-UA; empty: the host of `http.public_base_url`.
    pub hostname: String,
    /// Subject of the outer, unencrypted message; the real one travels inside.
    pub outer_subject: String,
    pub digest: crate::direct::smime::Digest,
    pub cipher: crate::direct::smime::Cipher,
    pub key_transport: crate::direct::smime::KeyTransport,
    /// How long one SMTP exchange (connect, each command, the data) may take.
    #[serde(with = "humantime_serde")]
    pub smtp_timeout: Duration,
    /// Static routes by recipient domain (lower case), used instead of MX records.
    #[serde(default)]
    pub routes: std::collections::BTreeMap<String, RouteConfig>,
}

/// Where mail for one domain goes: `host:port`, and whether STARTTLS is required there.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RouteConfig {
    pub address: String,
    #[serde(default)]
    pub require_tls: bool,
}

/// How the gateway asks DNS (CERT records, MX routes, and the egress guard's names when
/// `nameservers` is set).
#[derive(Debug, Clone, Deserialize)]
pub struct DnsConfig {
    /// `ip:port` of the servers to ask; empty: the system's (`/etc/resolv.conf`).
    pub nameservers: Vec<std::net::SocketAddr>,
    /// The longest one lookup may take, all attempts included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Tries per query before the lookup counts as failed (temporarily).
    pub attempts: usize,
}

/// Where pushes to URLs that clients registered may go.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhooksConfig {
    /// Blocks of loopback, private, link-local… addresses pushes may reach after all (tests,
    /// on-premise installs whose vendors sit on the same network). Empty by default.
    pub allow_private: Vec<crate::egress::Cidr>,
}

/// Fetching what trust decisions need from peers' URLs: trust bundles and CRLs (through the
/// egress guard, with `webhooks.allow_private` as its allow list).
#[derive(Debug, Clone, Deserialize)]
pub struct TrustConfig {
    #[serde(with = "humantime_serde")]
    pub fetch_timeout: Duration,
    /// A bundle or CRL larger than this is refused.
    pub max_fetch_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub bundle_refresh_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MessagingConfig {
    /// Largest send_ccda body; larger requests get 413.
    pub body_limit_bytes: usize,
    pub max_attachments: usize,
    /// A recipient without a final status this long after acceptance becomes FAILED-TO.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Delays between attempts to push an inbound message or a notification to a vendor.
    #[serde(deserialize_with = "durations")]
    pub delivery_retry_schedule: Vec<Duration>,
    /// How long a message waits in a recipient's pull mailbox, unacknowledged, before it
    /// becomes FAILED (`9008: ERROR=NotRetrieved`).
    #[serde(with = "humantime_serde")]
    pub mailbox_hold: Duration,
    /// How long one push to a vendor's endpoint may take.
    #[serde(with = "humantime_serde")]
    pub delivery_timeout: Duration,
    /// Requests per second one vendor may make to the messaging routes (per replica), and the
    /// burst above that rate it may use up.
    pub rate_per_second: u32,
    pub rate_burst: u32,
    /// Sends worked on at once (per replica); more wait, before their body is read, up to
    /// `admission_wait`, then get 503 with Retry-After.
    pub max_concurrent_sends: usize,
    #[serde(with = "humantime_serde")]
    pub admission_wait: Duration,
    /// Accepted messages written by one statement at most, and such statements run at once
    /// (per replica). Messages that arrive while they run wait and go together in the next.
    pub max_send_batch: usize,
    pub send_statements_in_flight: usize,
    /// While a statement runs, how long the next waits for more messages to go with it.
    #[serde(with = "humantime_serde")]
    pub send_linger: Duration,
    /// Lifetime of an OAuth2 access token.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// OID naming this gateway as the source of the XDM packages it makes.
    pub xdm_source_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SoapConfig {
    /// When answers go as MTOM (multipart/related) rather than plain SOAP.
    pub mtom_responses: MtomResponses,
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
}

/// When the SOAP service answers with MTOM. The original always does, but plain-SOAP clients
/// (suds, many scripts) cannot read a multipart answer, so by default the answer takes the
/// request's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtomResponses {
    /// MTOM to an MTOM request or to one whose `Accept` names `multipart/related`; plain SOAP
    /// to a plain request.
    AsRequest,
    Always,
    Never,
}

impl MtomResponses {
    /// Whether this answer goes as MTOM; `asked`: the request was MTOM or accepts it.
    pub fn answer_mtom(self, asked: bool) -> bool {
        match self {
            Self::AsRequest => asked,
            Self::Always => true,
            Self::Never => false,
        }
    }
}

impl<'de> Deserialize<'de> for MtomResponses {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Configs written when this was a bool keep loading: true meant always, false never.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(Self::Always),
            Raw::Bool(false) => Ok(Self::Never),
            Raw::Word(w) => match w.trim().to_ascii_lowercase().as_str() {
                "as_request" => Ok(Self::AsRequest),
                "always" | "true" => Ok(Self::Always),
                "never" | "false" => Ok(Self::Never),
                _ => Err(serde::de::Error::custom(format!(
                    "{w:?}: expected \"as_request\", \"always\" or \"never\""
                ))),
            },
        }
    }
}

/// The price list of the Organization Registration offers, in US dollars.
#[derive(Debug, Clone, Deserialize)]
pub struct OffersConfig {
    /// Yearly price of one address under a CDO offer; CDOn costs n times this.
    pub cdo_address_price: f64,
    /// Yearly price of one address under a CDONLP offer.
    pub cdonlp_address_price: f64,
    /// Explicit yearly prices of whole offers ("CDO20" = 1500.0) that override the rule above.
    #[serde(default)]
    pub prices: std::collections::BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub public_base_url: String,
    pub body_limit_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Time to send a request's head, from connect or from the previous response (so also
    /// how long an idle keep-alive connection stays open).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A response that makes no progress this long (the client stopped reading) is dropped.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// Open connections at most, in all and from one address.
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Load balancers whose `X-Forwarded-For` names the client, exempt from the per-address
    /// connection cap.
    pub trusted_proxies: Vec<crate::egress::Cidr>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmtpConfig {
    pub listen: SocketAddr,
    /// Off: no listener is bound (a gateway that only serves HTTP).
    pub enabled: bool,
    /// Name in the banner, the EHLO answer and our Received: headers; empty means the host of
    /// `http.public_base_url`.
    pub hostname: String,
    /// Largest message (advertised as SIZE); larger ones get 552 5.3.4.
    pub max_message_bytes: usize,
    /// Recipients of one transaction at most; more get 452 4.5.3 (the client sends them later).
    pub max_recipients: usize,
    /// Open sessions at most, in all and from one address; more get 421 4.7.0 and are closed.
    pub max_sessions: usize,
    pub max_sessions_per_address: usize,
    /// Messages received at once (each is held in memory up to `max_message_bytes` until it
    /// is committed); DATA waits for a place up to `command_timeout`, then gets 451 4.3.2.
    pub max_concurrent_messages: usize,
    /// Longest wait for a command line (and for each write); then 421 and the end.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Longest wait for the next bytes of a message after DATA.
    #[serde(with = "humantime_serde")]
    pub data_timeout: Duration,
    /// PEM files of the STARTTLS certificate (chain) and its key; both empty means a
    /// self-signed certificate generated at start (for development).
    pub tls_certificate: String,
    pub tls_key: String,
    /// MAIL before STARTTLS gets 530 5.7.0.
    pub require_tls: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseConfig {
    /// From `DATABASE_URL` (or `GW_DATABASE__URL`); empty means the embedded cluster.
    #[serde(default)]
    pub url: Secret,
    pub max_connections: u32,
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    pub embedded: EmbeddedConfig,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddedConfig {
    pub data_dir: PathBuf,
    pub bin_dir: PathBuf,
    pub database: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JobsConfig {
    pub concurrency: usize,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    #[serde(deserialize_with = "durations")]
    pub retry_schedule: Vec<Duration>,
    pub jitter_percent: u8,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SecurityConfig {
    pub identity_hash_key: Secret,
    /// Failed authentications allowed from one address, and naming one client id, before
    /// each further one blocks it for twice as long as the last, from `failed_auth_first_block`
    /// up to `failed_auth_lockout` (also how long a quiet record is kept).
    pub failed_auth_per_address: u32,
    pub failed_auth_per_client: u32,
    #[serde(with = "humantime_serde")]
    pub failed_auth_first_block: Duration,
    #[serde(with = "humantime_serde")]
    pub failed_auth_lockout: Duration,
}

impl SecurityConfig {
    pub fn throttle_policy(&self) -> crate::auth::throttle::ThrottlePolicy {
        crate::auth::throttle::ThrottlePolicy {
            address_allowance: self.failed_auth_per_address,
            client_allowance: self.failed_auth_per_client,
            first_block: self.failed_auth_first_block,
            lockout: self.failed_auth_lockout,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CaConfig {
    pub key_encryption_key: Secret,
    pub organization: String,
    pub root_common_name: String,
    pub issuing_common_name: String,
    pub ca_key_bits: u32,
    pub leaf_key_bits: u32,
    pub separate_signing_and_encryption: bool,
    pub policy_oid: String,
    pub loa_oid: String,
    pub renew_before_days: u32,
    #[serde(with = "humantime_serde")]
    pub crl_validity: Duration,
    #[serde(with = "humantime_serde")]
    pub maintenance_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DemoConfig {
    pub seed_on_first_start: bool,
}

fn durations<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| {
            humantime_serde::re::humantime::parse_duration(s).map_err(serde::de::Error::custom)
        })
        .collect()
}

impl Config {
    /// Defaults, then `file`, then the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::figment(file)
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
            .and_then(Self::validated)
    }

    /// The defaults alone, ignoring the environment: what tests start from.
    pub fn defaults() -> Self {
        Figment::from(Toml::string(DEFAULTS))
            .extract()
            .expect("embedded config/default.toml is valid")
    }

    fn figment(file: Option<&Path>) -> Figment {
        let mut fig = Figment::from(Toml::string(DEFAULTS));
        if let Some(path) = file {
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig.merge(Env::prefixed("GW_").split("__"));
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.is_empty()
        {
            fig = fig.merge(("database.url", url));
        }
        fig
    }

    fn validated(self) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !self.dns.timeout.is_zero() && (1..=10).contains(&self.dns.attempts),
            "dns.timeout must be positive and dns.attempts 1..=10"
        );
        anyhow::ensure!(
            self.jobs.concurrency > 0,
            "jobs.concurrency must be at least 1"
        );
        anyhow::ensure!(
            self.jobs.jitter_percent <= 100,
            "jobs.jitter_percent must be 0..=100"
        );
        anyhow::ensure!(
            self.http.body_limit_bytes > 0,
            "http.body_limit_bytes must be positive"
        );
        anyhow::ensure!(
            !self.security.failed_auth_first_block.is_zero()
                && self.security.failed_auth_lockout >= self.security.failed_auth_first_block,
            "security.failed_auth_first_block must be positive and at most failed_auth_lockout"
        );
        anyhow::ensure!(
            self.http.max_connections > 0 && self.http.max_connections_per_address > 0,
            "http.max_connections and http.max_connections_per_address must be positive"
        );
        anyhow::ensure!(
            !self.http.header_read_timeout.is_zero() && !self.http.write_timeout.is_zero(),
            "http.header_read_timeout and http.write_timeout must be positive"
        );
        anyhow::ensure!(
            self.http.public_base_url.starts_with("http://")
                || self.http.public_base_url.starts_with("https://"),
            "http.public_base_url must be an http(s) URL"
        );
        for bits in [self.ca.ca_key_bits, self.ca.leaf_key_bits] {
            anyhow::ensure!(
                [2048, 3072, 4096].contains(&bits),
                "ca key sizes must be 2048, 3072 or 4096 bits"
            );
        }
        for oid in [&self.ca.policy_oid, &self.ca.loa_oid] {
            anyhow::ensure!(
                crate::ca::der::is_valid_oid(oid),
                "ca policy OID {oid:?} is not a dotted OID"
            );
        }
        anyhow::ensure!(
            self.ca.crl_validity.as_secs() >= 3600,
            "ca.crl_validity must be at least 1h"
        );
        let smtp = &self.smtp;
        anyhow::ensure!(
            smtp.max_message_bytes > 0
                && smtp.max_recipients > 0
                && smtp.max_sessions > 0
                && smtp.max_sessions_per_address > 0
                && smtp.max_concurrent_messages > 0,
            "smtp.max_message_bytes, max_recipients, max_sessions, max_sessions_per_address and max_concurrent_messages must be positive"
        );
        anyhow::ensure!(
            !smtp.command_timeout.is_zero() && !smtp.data_timeout.is_zero(),
            "smtp.command_timeout and smtp.data_timeout must be positive"
        );
        anyhow::ensure!(
            smtp.tls_certificate.is_empty() == smtp.tls_key.is_empty(),
            "smtp.tls_certificate and smtp.tls_key go together: set both or neither"
        );
        let m = &self.messaging;
        anyhow::ensure!(
            m.timeout >= Duration::from_secs(1) && m.timeout <= Duration::from_secs(65 * 60),
            "messaging.timeout must be between 1s and 65m, so that FAILED-TO lands under 70 minutes"
        );
        anyhow::ensure!(
            m.body_limit_bytes > 0 && m.max_attachments > 0,
            "messaging.body_limit_bytes and messaging.max_attachments must be positive"
        );
        anyhow::ensure!(
            m.rate_per_second > 0 && m.rate_burst > 0,
            "messaging.rate_per_second and messaging.rate_burst must be positive"
        );
        anyhow::ensure!(
            m.max_concurrent_sends > 0,
            "messaging.max_concurrent_sends must be positive"
        );
        anyhow::ensure!(
            m.max_send_batch > 0 && m.send_statements_in_flight > 0,
            "messaging.max_send_batch and messaging.send_statements_in_flight must be positive"
        );
        anyhow::ensure!(
            crate::direct::xdm::is_oid(&m.xdm_source_id)
                && matches!(m.xdm_source_id.split('.').next(), Some("0" | "1" | "2")),
            "messaging.xdm_source_id {:?} is not a dotted OID",
            m.xdm_source_id
        );
        let relay = &self.notifications.smtp_relay;
        if !relay.address.trim().is_empty() {
            anyhow::ensure!(
                relay
                    .host_port()
                    .is_some_and(|(h, p)| !h.is_empty() && p > 0),
                "notifications.smtp_relay.address {:?} is not host:port",
                relay.address
            );
            anyhow::ensure!(
                crate::domain::certificate_application::email(&relay.from).is_ok(),
                "notifications.smtp_relay.from {:?} is not an e-mail address",
                relay.from
            );
            anyhow::ensure!(
                !relay.timeout.is_zero(),
                "notifications.smtp_relay.timeout must be positive"
            );
        }
        Ok(self)
    }

    pub fn uses_embedded_database(&self) -> bool {
        self.database.url.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_secrets_stay_hidden() {
        let mut c = Config::defaults();
        assert_eq!(c.jobs.retry_schedule.len(), 6);
        assert_eq!(c.jobs.retry_schedule[1], Duration::from_secs(60));
        c.database.url = Secret::new("postgres://u:hunter2@db/x");
        let dump = format!("{c:?}");
        assert!(!dump.contains("hunter2"), "{dump}");
        assert!(dump.contains("[redacted]"));
        c.ca.key_encryption_key = Secret::new("kek-that-must-not-leak-0123456789");
        assert!(!format!("{c:?}").contains("kek-that-must-not-leak"));
    }

    #[test]
    fn a_file_overrides_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.toml");
        std::fs::write(&path, "[http]\nlisten = \"127.0.0.1:9999\"\n").unwrap();
        let c: Config = Config::figment(Some(&path)).extract().unwrap();
        assert_eq!(c.http.listen.port(), 9999);
        assert_eq!(
            c.smtp.listen.port(),
            2525,
            "untouched keys keep their defaults"
        );
    }

    #[test]
    fn mtom_responses_takes_its_words_and_the_old_booleans() {
        assert_eq!(
            Config::defaults().soap.mtom_responses,
            MtomResponses::AsRequest
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.toml");
        for (value, expected) in [
            ("\"as_request\"", MtomResponses::AsRequest),
            ("\"always\"", MtomResponses::Always),
            ("\"never\"", MtomResponses::Never),
            ("true", MtomResponses::Always),
            ("false", MtomResponses::Never),
        ] {
            std::fs::write(&path, format!("[soap]\nmtom_responses = {value}\n")).unwrap();
            let c = Config::load(Some(&path)).unwrap();
            assert_eq!(c.soap.mtom_responses, expected, "{value}");
        }
        std::fs::write(&path, "[soap]\nmtom_responses = \"sometimes\"\n").unwrap();
        let err = format!("{:#}", Config::load(Some(&path)).unwrap_err());
        assert!(err.contains("mtom_responses"), "{err}");
        assert!(err.contains("as_request"), "{err}");
    }

    #[test]
    fn a_bad_value_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.toml");
        std::fs::write(&path, "[jobs]\nretry_schedule = [\"soon\"]\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("retry_schedule"), "{err}");
    }
}
