//! Where the gateway may connect on somebody else's say-so.
//!
//! Vendors give us URLs (inbound endpoints, delivery-notification webhooks) and later peers
//! will (trust bundles, CRL distribution points). Left alone, such a URL turns the gateway into
//! a proxy onto its own network: the admin routes on 127.0.0.1, the cloud metadata service on
//! 169.254.169.254, the database host. Every such fetch goes through `guarded_client`, which
//! checks the address it is about to connect to (after DNS, so a name that resolves to a
//! public address at registration and to 127.0.0.1 later gets nowhere), follows no redirects
//! and ignores proxy settings. Operators who do want the gateway to reach their own network
//! list it in `webhooks.allow_private`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// An address block, `192.168.0.0/16` or `fd00::/8` (a bare address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address block (e.g. 10.0.0.0/8)"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0..={max}"))?,
        };
        Ok(Self { network, prefix })
    }

    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Self {
        Self {
            network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(segments: [u16; 8], prefix: u8) -> Self {
        let [a, b, c, d, e, f, g, h] = segments;
        Self {
            network: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                prefix_eq(u32::from(n).into(), u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                prefix_eq(u128::from(n), u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, bits: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix);
    (a >> shift) == (b >> shift)
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Cidr::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Blocks no outbound push may reach unless allowed, with the name an operator reads in the
/// refusal. IPv4-mapped and NAT64 IPv6 addresses are judged by the IPv4 address they carry.
const FORBIDDEN: &[(Cidr, &str)] = &[
    (Cidr::v4(0, 0, 0, 0, 8), "unspecified"),
    (Cidr::v4(10, 0, 0, 0, 8), "private"),
    (Cidr::v4(100, 64, 0, 0, 10), "shared (CGNAT)"),
    (Cidr::v4(127, 0, 0, 0, 8), "loopback"),
    (Cidr::v4(169, 254, 0, 0, 16), "link-local"),
    (Cidr::v4(172, 16, 0, 0, 12), "private"),
    (Cidr::v4(192, 0, 0, 0, 24), "IETF protocol assignments"),
    (Cidr::v4(192, 0, 2, 0, 24), "documentation"),
    (Cidr::v4(192, 88, 99, 0, 24), "6to4 relay"),
    (Cidr::v4(192, 168, 0, 0, 16), "private"),
    (Cidr::v4(198, 18, 0, 0, 15), "benchmarking"),
    (Cidr::v4(198, 51, 100, 0, 24), "documentation"),
    (Cidr::v4(203, 0, 113, 0, 24), "documentation"),
    (Cidr::v4(224, 0, 0, 0, 4), "multicast"),
    (Cidr::v4(240, 0, 0, 0, 4), "reserved"),
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified"),
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    // The rest of ::/96: the deprecated IPv4-compatible addresses.
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 96), "IPv4-compatible"),
    (
        Cidr::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "local NAT64",
    ),
    (Cidr::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "discard"),
    (
        Cidr::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol assignments",
    ),
    (
        Cidr::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "documentation",
    ),
    (Cidr::v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), "6to4"),
    (Cidr::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (
        Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "private (unique local)",
    ),
    (Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (Cidr::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "site-local"),
    (Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
];

/// The IPv4 address an IPv6 address stands for, when it is a mapped or NAT64 form.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let nat64 = Cidr::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
    if nat64.contains(IpAddr::V6(ip)) {
        let [.., a, b, c, d] = ip.octets();
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    None
}

/// Which addresses outbound pushes may reach, and how names become addresses.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allow: Vec<Cidr>,
    /// Resolves the names of guarded URLs when the operator named DNS servers (`dns.nameservers`);
    /// `None`: the system's resolver, as for any program.
    dns: Option<crate::dns::Dns>,
}

impl EgressPolicy {
    pub fn new(allow: Vec<Cidr>) -> Self {
        Self { allow, dns: None }
    }

    /// The policy of `config`: its allow-list, and its DNS servers when it names any.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            allow: config.webhooks.allow_private.clone(),
            dns: crate::dns::Dns::explicit(&config.dns),
        }
    }

    /// Names are resolved by `dns` instead of the system's resolver.
    pub fn resolving_with(mut self, dns: crate::dns::Dns) -> Self {
        self.dns = Some(dns);
        self
    }

    /// `Err` names the range that forbids `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let ip = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if self.allow.iter().any(|c| c.contains(ip)) {
            return Ok(());
        }
        match FORBIDDEN.iter().find(|(c, _)| c.contains(ip)) {
            Some((_, range)) => Err(Refused { ip, range }),
            None => Ok(()),
        }
    }

    /// Checks what can be known of a URL without DNS: an address written in it (in any of the
    /// forms URL parsing accepts: `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) and the names
    /// reserved for the local machine (`localhost`, `*.localhost`).
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    self.check(IpAddr::V4(Ipv4Addr::LOCALHOST))
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }
}

/// An address the policy does not let us reach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ip} is a {range} address, which outbound pushes may not reach")]
pub struct Refused {
    pub ip: IpAddr,
    pub range: &'static str,
}

/// Resolves names and keeps only the addresses the policy allows: the check happens on the
/// very addresses the connection is made to.
struct GuardedResolver {
    policy: Arc<EgressPolicy>,
    timeout: Duration,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let timeout = self.timeout;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = match &policy.dns {
                Some(dns) => {
                    let ips = tokio::time::timeout(timeout, dns.addresses(&host))
                        .await
                        .map_err(|_| format!("resolving {host} took longer than {timeout:?}"))?
                        .map_err(|e| format!("resolving {host}: {e}"))?;
                    ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect()
                }
                None => tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), 0)))
                    .await
                    .map_err(|_| format!("resolving {host} took longer than {timeout:?}"))??
                    .collect(),
            };
            let mut allowed = Vec::new();
            let mut refused = None;
            for addr in found {
                match policy.check(addr.ip()) {
                    Ok(()) => allowed.push(addr),
                    Err(r) => refused = Some(r),
                }
            }
            match (allowed.is_empty(), refused) {
                (true, Some(r)) => Err(Box::new(r) as Box<dyn std::error::Error + Send + Sync>),
                _ => {
                    Ok(Box::new(allowed.into_iter())
                        as Box<dyn Iterator<Item = SocketAddr> + Send>)
                }
            }
        })
    }
}

/// A client builder whose connections only reach what `policy` allows (names are checked
/// after resolution; the caller checks written addresses with `check_url`, since those skip
/// resolution), with no redirects and no proxy.
pub fn guarded_client(policy: Arc<EgressPolicy>, timeout: Duration) -> reqwest::ClientBuilder {
    let connect = timeout.min(Duration::from_secs(10));
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect)
        .dns_resolver(Arc::new(GuardedResolver {
            policy,
            timeout: connect,
        }))
        // A redirect would send the body to a place nobody registered.
        .redirect(reqwest::redirect::Policy::none())
        // HTTP(S)_PROXY in the environment would connect to the proxy, not to the checked
        // address.
        .no_proxy()
}

/// The policy's refusal behind a failed request, if that is why it failed.
pub fn refusal_in(e: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(p: &EgressPolicy, url: &str) -> bool {
        p.check_url(&url::Url::parse(url).unwrap()).is_err()
    }

    #[test]
    fn every_local_form_of_an_address_is_refused() {
        let p = EgressPolicy::default();
        for url in [
            "http://127.0.0.1:8080/api/v1/clients",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://[::1]/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://192.0.2.7/",
            "http://198.51.100.7/",
            "http://203.0.113.7/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[fd12:3456::1]/",
            "http://[fe80::1]/",
            "http://[ff02::1]/",
            "http://[2001:db8::1]/",
            "http://localhost:9/",
            "http://LOCALHOST./",
            "http://api.localhost/",
        ] {
            assert!(refused(&p, url), "{url} should be refused");
        }
    }

    #[test]
    fn public_addresses_and_names_pass() {
        let p = EgressPolicy::default();
        for url in [
            "https://ehr.example.org/inbound",
            "http://8.8.8.8/",
            "http://172.32.0.1/",
            "http://100.128.0.1/",
            "http://[2606:4700::1111]/",
            "http://[::ffff:8.8.8.8]/",
        ] {
            assert!(!refused(&p, url), "{url} should pass");
        }
    }

    #[test]
    fn the_allow_list_opens_exactly_its_blocks() {
        let p = EgressPolicy::new(vec![Cidr::parse("127.0.0.1/32").unwrap()]);
        assert!(!refused(&p, "http://127.0.0.1:9/"));
        assert!(!refused(&p, "http://[::ffff:127.0.0.1]/"));
        assert!(refused(&p, "http://127.0.0.2/"));
        assert!(refused(&p, "http://[::1]/"));
        let err = p.check("10.0.0.1".parse().unwrap()).unwrap_err();
        assert_eq!(err.range, "private");
        assert!(err.to_string().contains("10.0.0.1"), "{err}");
    }

    #[test]
    fn blocks_parse_and_refuse_nonsense() {
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse("::1").unwrap().to_string(), "::1/128");
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("example.org/8").is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_at_connect_time() {
        let client = guarded_client(Arc::new(EgressPolicy::default()), Duration::from_secs(5))
            .build()
            .unwrap();
        // `localhost` resolves through the system resolver like any name would.
        let err = client
            .get("http://localhost:9/")
            .send()
            .await
            .expect_err("must not connect");
        let refusal = refusal_in(&err).expect("refused by the policy, not by the network");
        assert_eq!(refusal.range, "loopback");
    }
}
