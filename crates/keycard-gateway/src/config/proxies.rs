//! Trusted proxies: the peers whose `X-Forwarded-*` headers the gateway believes (RFC 9700
//! §4.13; RFC 4632 §3.1 prefix notation).
//!
//! [`TrustedProxy::parse`] reads `10.0.0.0/8`, `fd00::/8` or a single address;
//! [`TrustedProxy::contains`] tests a peer address, reading an IPv4-mapped IPv6 address
//! (`::ffff:10.1.2.3`, what a dual-stack socket reports) as the IPv4 address it carries.
//!
//! Invariants: a network has no host bits set (`10.0.0.1/8` is refused rather than guessed),
//! so what is written is what is trusted. Not here: rebuilding the forwarded headers (the
//! proxy).

use std::fmt;
use std::net::IpAddr;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rfc4632_s3_1_prefix_table() {
        let net = TrustedProxy::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.0.0.1")));
        assert!(net.contains(ip("10.255.255.255")));
        assert!(!net.contains(ip("11.0.0.0")));
        assert!(
            net.contains(ip("::ffff:10.1.2.3")),
            "IPv4-mapped peers are IPv4"
        );
        assert!(!net.contains(ip("::1")));
        let one = TrustedProxy::parse("192.168.1.10").unwrap();
        assert_eq!(one.to_string(), "192.168.1.10/32");
        assert!(one.contains(ip("192.168.1.10")) && !one.contains(ip("192.168.1.11")));
        let v6 = TrustedProxy::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all = TrustedProxy::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert!(
            TrustedProxy::parse("::/0")
                .unwrap()
                .contains(ip("2001:db8::1"))
        );
    }

    #[test]
    fn rfc4632_s3_1_malformed_networks_refused() {
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0.0/08x",
            "010.0.0.1",
            "10.0.0",
            "localhost",
            "10.0.0.0/8/8",
            " 10.0.0.0/8",
        ] {
            assert!(TrustedProxy::parse(bad).is_err(), "{bad:?}");
        }
        let err = TrustedProxy::parse("10.0.0.1/8").unwrap_err();
        assert!(err.contains("write 10.0.0.0/8"), "{err}");
        let err = TrustedProxy::parse("fd00::1/8").unwrap_err();
        assert!(err.contains("write fd00::/8"), "{err}");
    }
}
