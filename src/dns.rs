//! The DNS questions a HISP asks: CERT records for recipient certificates (RFC 4398) and
//! where to deliver mail for a domain (MX, RFC 5321 §5.1), through hickory-resolver.
//!
//! Answers come from zones anyone on the Internet may write, so every answer is capped (records
//! kept, bytes kept, hosts resolved) and every public call is bounded by `dns.timeout` as a
//! whole, however many queries it takes.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use tokio::time::Instant;

use crate::config::DnsConfig;

/// CERT records kept from one answer; the rest are ignored.
pub const MAX_CERT_RECORDS: usize = 16;
/// Certificate bytes kept from one answer (a TCP answer is at most 64 KiB anyway).
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// Longest IPKIX URL we keep.
pub const MAX_URL_LEN: usize = 2048;
/// MX hosts resolved for one domain, best preference first.
pub const MAX_MAIL_HOSTS: usize = 8;
/// Addresses kept per mail host.
pub const MAX_ADDRS_PER_HOST: usize = 8;

/// One CERT record as RFC 4398 §2.1 types it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertRecord {
    /// Type 1: an X.509 certificate, DER.
    Pkix(Vec<u8>),
    /// Type 4: the URL of an X.509 certificate.
    Ipkix(String),
    /// Any other type (PGP, SPKI, …), kept only so callers can say what they skipped.
    Other(u16),
}

/// A host that takes mail for a domain, with the addresses to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailHost {
    /// Without the trailing dot.
    pub name: String,
    pub preference: u16,
    pub addrs: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// NXDOMAIN, or the name exists without records of the type asked.
    #[error("no such DNS records")]
    NotFound,
    /// The domain publishes a null MX (RFC 7505): it takes no mail.
    #[error("the domain accepts no mail (null MX)")]
    NoMail,
    /// A timeout, SERVFAIL, REFUSED or a network error: worth asking again later.
    #[error("DNS lookup failed: {0}")]
    Temporary(String),
}

/// The gateway's resolver: the system's when `dns.nameservers` is empty, else those servers.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    timeout: Duration,
    /// The configured servers, for `Debug` (empty: the system's).
    servers: Vec<SocketAddr>,
}

impl fmt::Debug for Dns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dns")
            .field("servers", &self.servers)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Dns {
    pub fn from_config(c: &DnsConfig) -> anyhow::Result<Self> {
        match Self::explicit(c) {
            Some(dns) => Ok(dns),
            None => {
                let mut builder = Resolver::builder_tokio()
                    .map_err(|e| anyhow::anyhow!("reading the system's DNS configuration: {e}"))?;
                tune(builder.options_mut(), c);
                let resolver = builder
                    .build()
                    .map_err(|e| anyhow::anyhow!("building the DNS resolver: {e}"))?;
                Ok(Self {
                    resolver,
                    timeout: c.timeout,
                    servers: Vec::new(),
                })
            }
        }
    }

    /// A resolver asking exactly `dns.nameservers` (UDP, then TCP for truncated answers), or
    /// `None` when none are configured. Needs nothing from the system, so it cannot fail.
    pub fn explicit(c: &DnsConfig) -> Option<Self> {
        if c.nameservers.is_empty() {
            return None;
        }
        let servers = c
            .nameservers
            .iter()
            .map(|addr| {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for conn in &mut ns.connections {
                    conn.port = addr.port();
                }
                ns
            })
            .collect();
        let mut builder = Resolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        );
        let opts = builder.options_mut();
        tune(opts, c);
        // The servers were named on purpose: they answer every name, /etc/hosts included.
        opts.use_hosts_file = ResolveHosts::Never;
        let resolver = builder
            .build()
            .expect("a resolver with explicit servers needs no system configuration");
        Some(Self {
            resolver,
            timeout: c.timeout,
            servers: c.nameservers.clone(),
        })
    }

    /// RFC 4398 CERT records at `name` (e.g. `john.example.org` for john@example.org, with a
    /// dot inside the local part written `\.`; then `example.org`). Truncated UDP answers are
    /// asked again over TCP by the resolver.
    pub async fn cert_records(&self, name: &str) -> Result<Vec<CertRecord>, DnsError> {
        let name = fqdn(name)?;
        let deadline = Instant::now() + self.timeout;
        let lookup = self.within(deadline, self.resolver.lookup(name, RecordType::CERT));
        let lookup = lookup.await?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for record in lookup.answers() {
            if out.len() == MAX_CERT_RECORDS {
                break;
            }
            let RData::CERT(cert) = &record.data else {
                continue;
            };
            let kind = u16::from(cert.cert_type);
            bytes = bytes.saturating_add(cert.cert_data.len());
            if bytes > MAX_CERT_BYTES {
                break;
            }
            out.push(match kind {
                1 => CertRecord::Pkix(cert.cert_data.clone()),
                4 => match ipkix_url(&cert.cert_data) {
                    Some(url) => CertRecord::Ipkix(url),
                    None => CertRecord::Other(kind),
                },
                _ => CertRecord::Other(kind),
            });
        }
        if out.is_empty() {
            return Err(DnsError::NotFound);
        }
        Ok(out)
    }

    /// Where to deliver mail for `domain`: MX hosts by preference, each resolved to its
    /// addresses (hosts without any are left out), else the domain itself when it has
    /// addresses (RFC 5321 §5.1 implicit MX). A null MX is `NoMail`.
    pub async fn mail_hosts(&self, domain: &str) -> Result<Vec<MailHost>, DnsError> {
        let name = fqdn(domain)?;
        let deadline = Instant::now() + self.timeout;
        let mx = match self
            .within(deadline, self.resolver.lookup(name.clone(), RecordType::MX))
            .await
        {
            Ok(lookup) => {
                let mut mx: Vec<(u16, Name)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
                        _ => None,
                    })
                    .take(64)
                    .collect();
                // RFC 7505: a single MX whose exchange is the root says "no mail here".
                if mx.iter().any(|(_, host)| host.is_root()) {
                    return Err(DnsError::NoMail);
                }
                mx.sort_by_key(|(pref, _)| *pref);
                mx.dedup_by(|a, b| a.1 == b.1);
                mx.truncate(MAX_MAIL_HOSTS);
                mx
            }
            Err(DnsError::NotFound) => Vec::new(),
            Err(e) => return Err(e),
        };
        if mx.is_empty() {
            let addrs = self.addresses_until(deadline, name.clone()).await?;
            return Ok(vec![MailHost {
                name: display(&name),
                preference: 0,
                addrs,
            }]);
        }
        let resolved = futures_join(
            mx.iter()
                .map(|(_, host)| self.addresses_until(deadline, host.clone())),
        )
        .await;
        let mut hosts = Vec::new();
        let mut temporary = None;
        for ((preference, host), addrs) in mx.into_iter().zip(resolved) {
            match addrs {
                Ok(addrs) => hosts.push(MailHost {
                    name: display(&host),
                    preference,
                    addrs,
                }),
                Err(DnsError::Temporary(e)) => temporary = Some(e),
                Err(_) => {}
            }
        }
        match (hosts.is_empty(), temporary) {
            (true, Some(e)) => Err(DnsError::Temporary(e)),
            (true, None) => Err(DnsError::NotFound),
            _ => Ok(hosts),
        }
    }

    /// The A and AAAA addresses of `host` (IPv4 first), capped.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let name = fqdn(host)?;
        self.addresses_until(Instant::now() + self.timeout, name)
            .await
    }

    async fn addresses_until(
        &self,
        deadline: Instant,
        name: Name,
    ) -> Result<Vec<IpAddr>, DnsError> {
        let found = self.within(deadline, self.resolver.lookup_ip(name)).await?;
        let addrs: Vec<IpAddr> = found.iter().take(MAX_ADDRS_PER_HOST).collect();
        if addrs.is_empty() {
            return Err(DnsError::NotFound);
        }
        Ok(addrs)
    }

    async fn within<T>(
        &self,
        deadline: Instant,
        lookup: impl Future<Output = Result<T, NetError>>,
    ) -> Result<T, DnsError> {
        match tokio::time::timeout_at(deadline, lookup).await {
            Err(_) => Err(DnsError::Temporary(format!(
                "no answer within {:?}",
                self.timeout
            ))),
            Ok(Ok(found)) => Ok(found),
            Ok(Err(e)) if e.is_no_records_found() => Err(DnsError::NotFound),
            Ok(Err(e)) => Err(DnsError::Temporary(e.to_string())),
        }
    }
}

/// Settings shared by both kinds of resolver.
fn tune(opts: &mut ResolverOpts, c: &DnsConfig) {
    let attempts = c.attempts.max(1);
    opts.attempts = attempts;
    // `timeout` bounds a whole lookup; each try gets its share.
    let per_try = c.timeout / u32::try_from(attempts).unwrap_or(u32::MAX);
    opts.timeout = per_try.max(Duration::from_millis(100));
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    // Names we ask for are always absolute: no search list, no `ndots` guessing.
    opts.ndots = 0;
    // Answers a peer can change at will are not kept longer than five minutes.
    opts.positive_max_ttl = Some(Duration::from_secs(300));
    opts.negative_max_ttl = Some(Duration::from_secs(60));
}

/// `name` as an absolute DNS name; a name that cannot be one has no records.
fn fqdn(name: &str) -> Result<Name, DnsError> {
    let trimmed = name.trim().trim_end_matches('.');
    if trimmed.is_empty() || trimmed.len() > 253 {
        return Err(DnsError::NotFound);
    }
    let mut parsed = Name::from_ascii(trimmed).map_err(|_| DnsError::NotFound)?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// Lower case (names are case-insensitive), without the trailing dot.
fn display(name: &Name) -> String {
    name.to_lowercase()
        .to_ascii()
        .trim_end_matches('.')
        .to_owned()
}

/// The URL of an IPKIX record: printable ASCII, of a sane length.
fn ipkix_url(data: &[u8]) -> Option<String> {
    if data.is_empty() || data.len() > MAX_URL_LEN {
        return None;
    }
    if !data.iter().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    String::from_utf8(data.to_vec()).ok()
}

/// The outputs of `futures`, in order, all polled together (no task spawned).
async fn futures_join<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, fut) in out.iter_mut().zip(set.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("every future finished"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_absolute_and_nonsense_has_no_records() {
        assert_eq!(fqdn("example.org").unwrap().to_ascii(), "example.org.");
        assert_eq!(fqdn("Example.ORG.").unwrap().to_ascii(), "Example.ORG.");
        // A dot inside the local part stays inside its label.
        let n = fqdn(r"john\.doe.example.org").unwrap();
        assert_eq!(n.num_labels(), 3);
        assert_eq!(fqdn(""), Err(DnsError::NotFound));
        assert_eq!(fqdn(&"a".repeat(300)), Err(DnsError::NotFound));
        assert_eq!(
            fqdn(&format!("{}.org", "a".repeat(64))),
            Err(DnsError::NotFound)
        );
    }

    #[tokio::test]
    async fn the_default_settings_use_the_system_resolver_and_named_servers_replace_it() {
        let mut c = crate::config::Config::defaults().dns;
        assert!(Dns::explicit(&c).is_none());
        // /etc/resolv.conf is read (present on every machine this runs on).
        assert!(Dns::from_config(&c).unwrap().servers.is_empty());
        c.nameservers = vec!["127.0.0.1:5353".parse().unwrap()];
        assert_eq!(Dns::from_config(&c).unwrap().servers, c.nameservers);
    }

    #[test]
    fn ipkix_urls_are_printable_and_bounded() {
        assert_eq!(
            ipkix_url(b"https://ca.example.org/john.der").as_deref(),
            Some("https://ca.example.org/john.der")
        );
        assert_eq!(ipkix_url(b"http://x/\n"), None);
        assert_eq!(ipkix_url(&[0xff, 0xfe]), None);
        assert_eq!(ipkix_url(&vec![b'a'; MAX_URL_LEN + 1]), None);
    }
}
