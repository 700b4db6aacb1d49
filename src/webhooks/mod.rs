//! Signed HTTP delivery to vendors: Standard Webhooks signatures, the credentials vendors ask
//! us to present, and the POST itself. No database here; callers decide what a failure means.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::egress::EgressPolicy;

/// How we authenticate to a vendor's endpoint, as the vendor registered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EndpointAuth {
    None,
    Basic { username: String, password: String },
    Header { name: String, value: String },
}

/// A Standard Webhooks signing key (`whsec_` + base64 of the raw key).
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::fill(&mut key[..]);
        Self(key)
    }

    pub fn from_bytes(raw: Vec<u8>) -> Self {
        Self(raw)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The form vendors configure their verifier with.
    pub fn to_whsec(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.0))
    }

    pub fn from_whsec(s: &str) -> Option<Self> {
        let b64 = s.strip_prefix("whsec_").unwrap_or(s);
        STANDARD.decode(b64).ok().map(Self)
    }

    /// The `webhook-signature` value: `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// Checks a `webhook-signature` header (space-separated list of versioned signatures), as a
    /// receiver does. Used by our tests and offered to vendors' Rust code.
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let expected = self.sign(id, timestamp, body);
        let expected = expected.as_bytes();
        header.split(' ').any(|candidate| {
            candidate.len() == expected.len() && openssl::memcmp::eq(candidate.as_bytes(), expected)
        })
    }
}

/// Why a push did not count as delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("endpoint answered HTTP {0}")]
    Status(u16),
    #[error("endpoint unreachable: {0}")]
    Unreachable(String),
    #[error("endpoint did not answer within {0:?}")]
    Timeout(Duration),
    /// The endpoint's address is one pushes may not reach (`egress`).
    #[error("endpoint refused: {0}")]
    Refused(crate::egress::Refused),
}

/// The HTTP client of all pushes, shared so connections to a vendor are reused.
#[derive(Clone)]
pub struct Pusher {
    client: reqwest::Client,
    policy: Arc<EgressPolicy>,
    timeout: Duration,
}

/// A webhook's identity for signing: a stable id (receivers deduplicate on it) and the time.
pub struct Signed<'a> {
    pub key: &'a SigningKey,
    pub id: &'a str,
    pub timestamp: i64,
}

impl Pusher {
    /// Pushes reach only what `policy` allows; redirects are never followed (they would send
    /// PHI to a place nobody registered).
    pub fn new(timeout: Duration, policy: Arc<EgressPolicy>) -> Self {
        let client = crate::egress::guarded_client(policy.clone(), timeout)
            .user_agent(concat!("hisp-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds with static settings");
        Self {
            client,
            policy,
            timeout,
        }
    }

    /// POSTs a JSON body. Any 2xx is success; everything else is an error for the caller to
    /// retry or give up on. `idempotency_key` lets the receiver drop a repeat (we may push
    /// twice if we crash between its answer and our commit).
    pub async fn post_json(
        &self,
        url: &str,
        auth: &EndpointAuth,
        body: Vec<u8>,
        idempotency_key: &str,
        signed: Option<Signed<'_>>,
    ) -> Result<u16, PushError> {
        // An address written in the URL is connected to without resolution, so the resolver's
        // check never sees it: it is checked here.
        let parsed = reqwest::Url::parse(url).map_err(|e| PushError::Unreachable(e.to_string()))?;
        self.policy.check_url(&parsed).map_err(PushError::Refused)?;
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", idempotency_key);
        req = match auth {
            EndpointAuth::None => req,
            EndpointAuth::Basic { username, password } => req.basic_auth(username, Some(password)),
            EndpointAuth::Header { name, value } => req.header(name.as_str(), value.as_str()),
        };
        if let Some(s) = signed {
            req = req
                .header("webhook-id", s.id)
                .header("webhook-timestamp", s.timestamp.to_string())
                .header("webhook-signature", s.key.sign(s.id, s.timestamp, &body));
        }
        match req.body(body).send().await {
            Ok(resp) if resp.status().is_success() => Ok(resp.status().as_u16()),
            Ok(resp) => Err(PushError::Status(resp.status().as_u16())),
            Err(e) if e.is_timeout() => Err(PushError::Timeout(self.timeout)),
            Err(e) if let Some(r) = crate::egress::refusal_in(&e) => Err(PushError::Refused(r)),
            // The URL is the vendor's own; the error text has no PHI.
            Err(e) => Err(PushError::Unreachable(root_cause(&e))),
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Checks a URL a vendor registers: absolute http(s), no credentials inside it, no address
/// that `policy` forbids written in it (names are checked again at every connection).
pub fn parse_endpoint_url(s: &str, policy: &EgressPolicy) -> Result<String, String> {
    let url = reqwest::Url::parse(s.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if url.host_str().is_none() {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; give them as auth".into());
    }
    policy.check_url(&url).map_err(|r| r.to_string())?;
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        // The published example of the Standard Webhooks specification.
        let key = SigningKey::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(key.verify(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &format!("v1,bogus {sig}")
        ));
        assert!(!key.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, &sig));
        assert_eq!(
            SigningKey::from_whsec(&key.to_whsec()).unwrap().as_bytes(),
            key.as_bytes()
        );
    }

    #[test]
    fn endpoint_urls_are_checked() {
        let p = EgressPolicy::default();
        assert!(parse_endpoint_url("https://ehr.example.org/inbound", &p).is_ok());
        assert!(parse_endpoint_url("ftp://ehr.example.org/", &p).is_err());
        assert!(parse_endpoint_url("https://u:p@ehr.example.org/", &p).is_err());
        assert!(parse_endpoint_url("not a url", &p).is_err());
        let local = parse_endpoint_url("http://2130706433:8080/api/v1/clients", &p).unwrap_err();
        assert!(
            local.contains("127.0.0.1") && local.contains("loopback"),
            "{local}"
        );
    }
}
