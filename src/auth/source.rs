//! Where a request comes from, for throttling failed authentications.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::egress::Cidr;
use crate::state::AppState;

/// Extractor: the client address of a request (see `client_addr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(ClientAddr(client_addr(
            peer,
            &parts.headers,
            &state.config.http.trusted_proxies,
        )))
    }
}

/// The address of the client a request comes from: the connection's peer, or, when that peer
/// is a trusted proxy, the last address in `X-Forwarded-For` that is not one.
pub fn client_addr(
    peer: Option<SocketAddr>,
    headers: &axum::http::HeaderMap,
    trusted: &[Cidr],
) -> IpAddr {
    let Some(peer) = peer else {
        return IpAddr::from([0, 0, 0, 0]);
    };
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer.ip()) {
        return peer.ip();
    }
    // Each proxy appends the address it received from; read from the right, past our own.
    // Bounded: a header longer than hyper's head limit never arrives.
    let mut client = peer.ip();
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else { break };
        for hop in value.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !is_trusted(ip) {
                        return ip;
                    }
                }
                Err(_) => return client,
            }
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let trusted = vec![Cidr::parse("10.0.0.0/8").unwrap()];
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "1.2.3.4, 203.0.113.9, 10.0.0.7".parse().unwrap(),
        );
        assert_eq!(
            client_addr(Some(proxy), &h, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // The same header from an untrusted peer is the peer's own claim: ignored.
        assert_eq!(client_addr(Some(proxy), &h, &[]), proxy.ip());
        h.insert("x-forwarded-for", "garbage, 10.0.0.7".parse().unwrap());
        assert_eq!(
            client_addr(Some(proxy), &h, &trusted),
            "10.0.0.7".parse::<IpAddr>().unwrap()
        );
    }
}
