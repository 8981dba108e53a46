//! [`ClientAddr`]: who sent a request, as far as this listener can tell (RFC 9700 §4.13).
//!
//! [`serve`](crate::serve) attaches one to every request; handlers and layers read it as an
//! extension or extract it. The rule that picks the address is
//! `keycard_protocol::forwarded::TrustedProxies::client_ip`; this file only feeds it the
//! request's header lines.

use std::net::{IpAddr, SocketAddr};

use axum::extract::FromRequestParts;
use http::HeaderMap;
use http::request::Parts;
use keycard_protocol::forwarded::TrustedProxies;

/// The client of a request: the TCP peer, or the address a trusted proxy forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr {
    ip: IpAddr,
    peer: SocketAddr,
    from_trusted_proxy: bool,
}

impl ClientAddr {
    /// Reads the client address of a request from `peer` with `headers`.
    pub fn new(peer: SocketAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> ClientAddr {
        let from_trusted_proxy = trusted.contains(peer.ip());
        let ip = if from_trusted_proxy {
            // A value that is not visible ASCII is not an address; "unknown" makes the walk
            // stop there, as RFC 7239 §6.2 reads it, instead of skipping to the entries left
            // of it, which the client wrote.
            let lines = headers
                .get_all(trusted.header().as_str())
                .iter()
                .map(|v| v.to_str().unwrap_or("unknown"));
            trusted.client_ip(peer.ip(), lines)
        } else {
            peer.ip().to_canonical()
        };
        ClientAddr {
            ip,
            peer,
            from_trusted_proxy,
        }
    }

    /// The client's address: the one to throttle, log and audit.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The TCP peer (the proxy, when there is one).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the TCP peer is a trusted proxy, so that what it adds to a request (forwarded
    /// headers, a request id) may be believed.
    pub fn is_from_trusted_proxy(&self) -> bool {
        self.from_trusted_proxy
    }
}

/// Extracts the [`ClientAddr`] that [`serve`](crate::serve) attached. Outside it (a router
/// driven in-process by tests) there is none, and the request is refused with 500 rather than
/// given a made-up address.
impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = http::StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .ok_or(http::StatusCode::INTERNAL_SERVER_ERROR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keycard_protocol::forwarded::{ForwardedHeader, TrustedProxy};

    fn headers(name: &str, lines: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(l).unwrap(),
            );
        }
        h
    }

    #[test]
    fn forwarded_lines_are_read_in_order_and_only_from_a_trusted_peer() {
        let trusted = TrustedProxies::new(
            vec![TrustedProxy::parse("10.0.0.0/8").unwrap()],
            ForwardedHeader::XForwardedFor,
        );
        let proxy: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let h = headers("x-forwarded-for", &[b"6.6.6.6", b"198.51.100.1, 10.0.0.9"]);
        let c = ClientAddr::new(proxy, &h, &trusted);
        assert_eq!(c.ip(), "198.51.100.1".parse::<IpAddr>().unwrap());
        assert!(c.is_from_trusted_proxy());
        assert_eq!(c.peer(), proxy);

        let stranger: SocketAddr = "203.0.113.7:4000".parse().unwrap();
        let c = ClientAddr::new(stranger, &h, &trusted);
        assert_eq!(c.ip(), stranger.ip());
        assert!(!c.is_from_trusted_proxy());

        // The header that was not configured is the client's text and is ignored.
        let h = headers("forwarded", &[b"for=198.51.100.1"]);
        assert_eq!(ClientAddr::new(proxy, &h, &trusted).ip(), proxy.ip());
    }

    #[test]
    fn a_value_that_is_not_ascii_ends_the_walk() {
        let trusted = TrustedProxies::new(
            vec![TrustedProxy::parse("10.0.0.0/8").unwrap()],
            ForwardedHeader::XForwardedFor,
        );
        let proxy: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let h = headers("x-forwarded-for", &[b"6.6.6.6", b"\xff"]);
        assert_eq!(ClientAddr::new(proxy, &h, &trusted).ip(), proxy.ip());
    }
}
