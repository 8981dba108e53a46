//! Trusted proxies and the client address behind them (RFC 9700 §4.13; RFC 7239 §4–§6
//! `Forwarded`; the de facto `X-Forwarded-For`; RFC 4632 §3.1 prefix notation).
//!
//! [`TrustedProxy::parse`] reads `10.0.0.0/8`, `fd00::/8` or a single address;
//! [`TrustedProxies`] is the configured set plus the one header those proxies write, and
//! [`TrustedProxies::client_ip`] picks the client address of a request: the TCP peer, unless
//! the peer is a trusted proxy, in which case the rightmost hop of the forwarded header that is
//! not itself a trusted proxy.
//!
//! Invariants: nothing is trusted by default, so forwarded headers are ignored until a proxy is
//! configured. Each proxy appends the address it saw, so only the entries to the right of the
//! first untrusted hop were written by proxies we trust; everything to its left is whatever the
//! client sent and is never read. A hop that is not an address (`unknown`, an obfuscated
//! identifier, garbage) ends the walk at the trusted proxy that reported it. IPv4-mapped IPv6
//! addresses (`::ffff:10.1.2.3`, what a dual-stack socket reports) are read as IPv4. A network
//! has no host bits set (`10.0.0.1/8` is refused rather than guessed), so what is written is
//! what is trusted. Only one header is read: a proxy that writes `X-Forwarded-For` passes a
//! client's `Forwarded` through untouched (and the other way round), so reading both would let
//! the client choose its address.
//!
//! Not here: reading the headers off a connection and attaching the result to requests
//! (keycard-serve), and rebuilding forwarded headers for an upstream (the gateway).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// One trusted network, or one address (a full-length prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustedProxy {
    network: IpAddr,
    prefix_len: u8,
}

impl TrustedProxy {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network (CIDR)"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u8>() {
                    Ok(n) if n <= max => n,
                    _ => return Err(format!("{s:?}: the prefix length must be at most {max}")),
                }
            }
            Some(_) => return Err(format!("{s:?}: the prefix length must be a number")),
        };
        let proxy = TrustedProxy {
            network,
            prefix_len,
        };
        let masked = proxy.masked(network);
        if masked != bits(network) {
            let write = match network {
                IpAddr::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(masked as u32)),
                IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(masked)),
            };
            return Err(format!(
                "{s:?} has host bits set; write {write}/{prefix_len}"
            ));
        }
        Ok(proxy)
    }

    /// Whether the peer address `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if ip.is_ipv4() != self.network.is_ipv4() {
            return false;
        }
        self.masked(ip) == bits(self.network)
    }

    fn masked(&self, ip: IpAddr) -> u128 {
        let width: u32 = if ip.is_ipv4() { 32 } else { 128 };
        let host_bits = width - u32::from(self.prefix_len);
        let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
        bits(ip) & mask
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// The header trusted proxies write the client address into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1` — what nginx, HAProxy, Caddy, Traefik and the cloud
    /// load balancers write.
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

impl ForwardedHeader {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ForwardedHeader::XForwardedFor),
            "forwarded" => Ok(ForwardedHeader::Forwarded),
            _ => Err(format!(
                "{s:?}: the forwarded header is x-forwarded-for or forwarded"
            )),
        }
    }

    /// The header's name in lower case, as `http::HeaderName` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

/// The proxies whose forwarded header is believed, and which header that is. The default
/// trusts nobody.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<TrustedProxy>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    pub fn new(networks: Vec<TrustedProxy>, header: ForwardedHeader) -> Self {
        TrustedProxies { networks, header }
    }

    pub fn networks(&self) -> &[TrustedProxy] {
        &self.networks
    }

    pub fn header(&self) -> ForwardedHeader {
        self.header
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(ip))
    }

    /// The client address of a request from `peer` carrying `values`, the lines of the
    /// forwarded header in the order they arrived (RFC 9110 §5.3: several lines are one
    /// comma-separated list).
    pub fn client_ip<'a, I>(&self, peer: IpAddr, values: I) -> IpAddr
    where
        I: IntoIterator<Item = &'a str>,
        I::IntoIter: DoubleEndedIterator,
    {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        // The nearest address known so far: a proxy we trust wrote every hop we walk past.
        let mut nearest = peer;
        for line in values.into_iter().rev() {
            let hops: Vec<Hop> = match self.header {
                ForwardedHeader::XForwardedFor => line.split(',').map(xff_hop).collect(),
                ForwardedHeader::Forwarded => split_outside_quotes(line, ',')
                    .into_iter()
                    .map(forwarded_hop)
                    .collect(),
            };
            for hop in hops.into_iter().rev() {
                match hop {
                    Hop::Empty => continue,
                    Hop::Unreadable => return nearest,
                    Hop::Addr(ip) if self.contains(ip) => nearest = ip,
                    Hop::Addr(ip) => return ip,
                }
            }
        }
        nearest
    }
}

/// One entry of a forwarded header, read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hop {
    /// An empty list element, which RFC 9110 §5.6.1 says to ignore.
    Empty,
    Unreadable,
    Addr(IpAddr),
}

/// An `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:80`,
/// `[2001:db8::1]:443`) or in brackets, as some proxies write it.
fn xff_hop(entry: &str) -> Hop {
    let entry = entry.trim_matches([' ', '\t']);
    if entry.is_empty() {
        return Hop::Empty;
    }
    node(entry)
}

/// An RFC 7239 §4 forwarded-element: the one `for` parameter's node (§6), or unreadable.
fn forwarded_hop(element: &str) -> Hop {
    let element = element.trim_matches([' ', '\t']);
    if element.is_empty() {
        return Hop::Empty;
    }
    let mut found = None;
    for pair in split_outside_quotes(element, ';') {
        let Some((name, value)) = pair.trim_matches([' ', '\t']).split_once('=') else {
            return Hop::Unreadable;
        };
        if name.eq_ignore_ascii_case("for") {
            if found.is_some() {
                return Hop::Unreadable;
            }
            found = Some(value);
        }
    }
    let Some(value) = found else {
        return Hop::Unreadable;
    };
    let value = match value.strip_prefix('"') {
        // A quoted node never needs an escape; one that has them is not an address.
        Some(rest) => match rest.strip_suffix('"') {
            Some(inner) if !inner.contains(['"', '\\']) => inner,
            _ => return Hop::Unreadable,
        },
        None => value,
    };
    node(value)
}

/// An address with an optional port: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:443`. `unknown` and obfuscated identifiers (`_hidden`) are unreadable.
fn node(s: &str) -> Hop {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Hop::Addr(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Hop::Addr(sa.ip().to_canonical());
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']'))
        && let Ok(ip) = inner.parse::<std::net::Ipv6Addr>()
    {
        return Hop::Addr(IpAddr::V6(ip).to_canonical());
    }
    Hop::Unreadable
}

/// Splits at `sep` except inside double quotes (RFC 7239 §4 values may be quoted strings).
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests;
