//! Failed authentications slow the guesser down, not the client.
//!
//! Every failed check counts against the source address (IPv6 by its /64, which one host
//! usually holds whole) and against the client id it named. A few failures are free; each
//! one after that blocks the key for twice as long as the one before, up to the lockout window.
//! A blocked key is answered at once (429 on REST, 011 on SOAP) without touching argon2 or the
//! database. The client id's allowance is much larger than an address's, so one guessing
//! address is stopped long before the client it guesses at is: the real client, calling from
//! elsewhere, keeps working. Many addresses guessing together do block the client id; a client
//! whose secret was verified in the last minutes still passes (see `Verifier`), since the
//! presented secret is then known to be right without any argon2 work.
//!
//! Kept in each replica's memory, like the request rate limits: N replicas allow N times the
//! free failures, and the exponential block makes that factor irrelevant within a few tries.
//! A key's record is forgotten once it has been quiet for the lockout window.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// Keys remembered per kind at most. Beyond that, quiet and unblocked keys are dropped first.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures from one address before it is blocked.
    pub address_allowance: u32,
    /// Failures naming one client id before it is blocked.
    pub client_allowance: u32,
    /// The first block; each further failure doubles it.
    pub first_block: Duration,
    /// The longest block, and how long a key stays remembered after its last failure.
    pub lockout: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            address_allowance: 5,
            client_allowance: 50,
            first_block: Duration::from_secs(1),
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

struct Book<K> {
    records: Mutex<HashMap<K, Record>>,
}

impl<K: Hash + Eq + Copy> Book<K> {
    fn new() -> Self {
        Self {
            records: Mutex::new(HashMap::new()),
        }
    }

    fn blocked(&self, key: &K, now: Instant, lockout: Duration) -> Option<Duration> {
        let records = self.records.lock().expect("throttle lock");
        let r = records.get(key)?;
        if now.saturating_duration_since(r.last) >= lockout {
            return None;
        }
        r.blocked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Counts a failure; returns how long the key is now blocked, if it is.
    fn fail(&self, key: K, now: Instant, allowance: u32, p: &ThrottlePolicy) -> Option<Duration> {
        let mut records = self.records.lock().expect("throttle lock");
        if records.len() >= MAX_TRACKED && !records.contains_key(&key) {
            records.retain(|_, r| {
                now.saturating_duration_since(r.last) < p.lockout
                    && r.blocked_until.is_some_and(|u| u > now)
            });
            if records.len() >= MAX_TRACKED {
                // Every remembered key is blocked: an attack from that many places at once.
                // Forgetting is safer than refusing everyone.
                records.clear();
            }
        }
        let r = records.entry(key).or_insert(Record {
            failures: 0,
            last: now,
            blocked_until: None,
        });
        if now.saturating_duration_since(r.last) >= p.lockout {
            r.failures = 0;
            r.blocked_until = None;
        }
        r.failures = r.failures.saturating_add(1);
        r.last = now;
        if r.failures <= allowance {
            return None;
        }
        let doublings = (r.failures - allowance - 1).min(30);
        let block = p.first_block.saturating_mul(1 << doublings).min(p.lockout);
        r.blocked_until = Some(now + block);
        Some(block)
    }

    fn clear(&self, key: &K) {
        self.records.lock().expect("throttle lock").remove(key);
    }
}

/// The failure books of one replica.
pub struct Throttle {
    policy: ThrottlePolicy,
    addresses: Book<IpAddr>,
    clients: Book<Uuid>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(ThrottlePolicy::default())
    }
}

/// What a throttled request is told: which key and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
    pub scope: Scope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Address,
    Client,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Address => "address",
            Scope::Client => "client",
        }
    }
}

/// An IPv6 host usually holds a whole /64: its addresses count as one.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = !0u128 << 64;
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        },
        v4 => v4,
    }
}

impl Throttle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            addresses: Book::new(),
            clients: Book::new(),
        }
    }

    /// `Err` when `from` or `client` may not try now.
    pub fn check(&self, from: IpAddr, client: Option<Uuid>) -> Result<(), Throttled> {
        self.check_at(from, client, Instant::now())
    }

    fn check_at(&self, from: IpAddr, client: Option<Uuid>, now: Instant) -> Result<(), Throttled> {
        let lockout = self.policy.lockout;
        let by_address = self
            .addresses
            .blocked(&address_key(from), now, lockout)
            .map(|retry_after| Throttled {
                retry_after,
                scope: Scope::Address,
            });
        let by_client = client
            .and_then(|c| self.clients.blocked(&c, now, lockout))
            .map(|retry_after| Throttled {
                retry_after,
                scope: Scope::Client,
            });
        match by_address.or(by_client) {
            Some(t) => {
                metrics::counter!("gateway_auth_throttled_total", "scope" => t.scope.as_str())
                    .increment(1);
                Err(t)
            }
            None => Ok(()),
        }
    }

    /// Counts a failed check from `from` naming `client` (when the id exists).
    pub fn failed(&self, from: IpAddr, client: Option<Uuid>) {
        self.failed_at(from, client, Instant::now());
    }

    fn failed_at(&self, from: IpAddr, client: Option<Uuid>, now: Instant) {
        metrics::counter!("gateway_auth_failures_total").increment(1);
        let p = &self.policy;
        let by_address = self
            .addresses
            .fail(address_key(from), now, p.address_allowance, p);
        let by_client = client.and_then(|c| self.clients.fail(c, now, p.client_allowance, p));
        if let Some(block) = by_address {
            tracing::warn!(%from, block_secs = block.as_secs(), "failed authentications: address blocked");
        }
        if let (Some(block), Some(client)) = (by_client, client) {
            tracing::warn!(%client, block_secs = block.as_secs(), "failed authentications: client id blocked");
        }
    }

    /// A success from `from` wipes that address's failures (a person who mistyped, then
    /// got it right). The client id's count stays: successes do not hide others' guesses.
    pub fn succeeded(&self, from: IpAddr) {
        self.addresses.clear(&address_key(from));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_gets_its_allowance_then_doubling_blocks() {
        let t = Throttle::default();
        let (a, c) = (ip("203.0.113.9"), Some(Uuid::new_v4()));
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(t.check_at(a, c, t0).is_ok());
            t.failed_at(a, c, t0);
        }
        assert!(t.check_at(a, c, t0).is_ok(), "five failures are free");
        t.failed_at(a, c, t0);
        let first = t.check_at(a, c, t0).unwrap_err();
        assert_eq!(
            (first.scope, first.retry_after),
            (Scope::Address, Duration::from_secs(1))
        );
        let t1 = t0 + Duration::from_secs(1);
        assert!(t.check_at(a, c, t1).is_ok(), "the block ends");
        t.failed_at(a, c, t1);
        assert_eq!(
            t.check_at(a, c, t1).unwrap_err().retry_after,
            Duration::from_secs(2)
        );
        // Another address and the same client id: not blocked.
        assert!(t.check_at(ip("198.51.100.1"), c, t1).is_ok());
        // Quiet for the lockout window: forgotten.
        assert!(t.check_at(a, c, t1 + Duration::from_secs(15 * 60)).is_ok());
    }

    #[test]
    fn blocks_stop_at_the_lockout_window() {
        let t = Throttle::default();
        let a = ip("203.0.113.9");
        let t0 = Instant::now();
        for _ in 0..60 {
            t.failed_at(a, None, t0);
        }
        assert_eq!(
            t.check_at(a, None, t0).unwrap_err().retry_after,
            Duration::from_secs(15 * 60)
        );
    }

    #[test]
    fn many_addresses_block_the_client_id_they_guess() {
        let t = Throttle::default();
        let c = Uuid::new_v4();
        let t0 = Instant::now();
        for i in 0..51u8 {
            let a = ip(&format!("198.51.100.{i}"));
            t.failed_at(a, Some(c), t0);
        }
        let blocked = t.check_at(ip("192.0.2.1"), Some(c), t0).unwrap_err();
        assert_eq!(blocked.scope, Scope::Client);
        assert!(
            t.check_at(ip("192.0.2.1"), Some(Uuid::new_v4()), t0)
                .is_ok()
        );
    }

    #[test]
    fn an_ipv6_host_is_its_64() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for i in 1..=6u16 {
            t.failed_at(ip(&format!("2001:db8:1:2::{i:x}")), None, t0);
        }
        assert!(t.check_at(ip("2001:db8:1:2:ffff::1"), None, t0).is_err());
        assert!(t.check_at(ip("2001:db8:1:3::1"), None, t0).is_ok());
    }

    #[test]
    fn a_success_clears_its_address() {
        let t = Throttle::default();
        let a = ip("203.0.113.9");
        let t0 = Instant::now();
        for _ in 0..5 {
            t.failed_at(a, None, t0);
        }
        t.succeeded(a);
        t.failed_at(a, None, t0);
        assert!(t.check_at(a, None, t0).is_ok());
    }
}
