use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn proxies(nets: &[&str], header: ForwardedHeader) -> TrustedProxies {
    TrustedProxies::new(
        nets.iter()
            .map(|n| TrustedProxy::parse(n).unwrap())
            .collect(),
        header,
    )
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

/// The P11 rule: forwarded headers count only from a trusted peer, and then the client is the
/// rightmost hop that is not a trusted proxy. Each row: peer, header lines, expected client.
#[test]
fn rightmost_untrusted_hop_table_x_forwarded_for() {
    let trusted = proxies(
        &["10.0.0.0/8", "192.168.1.1", "fd00::/8"],
        ForwardedHeader::XForwardedFor,
    );
    let rows: &[(&str, &[&str], &str)] = &[
        // No header, or an untrusted peer: the peer, whatever the header says.
        ("10.0.0.5", &[], "10.0.0.5"),
        ("203.0.113.7", &["198.51.100.1"], "203.0.113.7"),
        ("203.0.113.7", &["10.0.0.1"], "203.0.113.7"),
        // One trusted proxy: the address it saw.
        ("10.0.0.5", &["198.51.100.1"], "198.51.100.1"),
        // A spoofed leftmost entry is the client's own text; the proxy appended the real one.
        ("10.0.0.5", &["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        ("10.0.0.5", &["6.6.6.6", "198.51.100.1"], "198.51.100.1"),
        // A chain of trusted proxies is walked past.
        (
            "10.0.0.5",
            &["198.51.100.1, 10.0.0.9, 192.168.1.1"],
            "198.51.100.1",
        ),
        (
            "10.0.0.5",
            &["198.51.100.1, 10.0.0.9", "192.168.1.1"],
            "198.51.100.1",
        ),
        // Only trusted hops: the furthest one.
        ("10.0.0.5", &["10.0.0.7, 10.0.0.9"], "10.0.0.7"),
        // Malformed or `unknown` hops end the walk at the proxy that reported them.
        ("10.0.0.5", &["198.51.100.1, garbage"], "10.0.0.5"),
        ("10.0.0.5", &["198.51.100.1, unknown, 10.0.0.9"], "10.0.0.9"),
        ("10.0.0.5", &["not an address"], "10.0.0.5"),
        ("10.0.0.5", &["198.51.100.1 6.6.6.6"], "10.0.0.5"),
        // Empty list elements are ignored (RFC 9110 §5.6.1).
        ("10.0.0.5", &["198.51.100.1, ,"], "198.51.100.1"),
        ("10.0.0.5", &[""], "10.0.0.5"),
        // Ports and brackets, as some proxies write them.
        ("10.0.0.5", &["198.51.100.1:4711"], "198.51.100.1"),
        ("10.0.0.5", &["[2001:db8::17]:4711"], "2001:db8::17"),
        ("10.0.0.5", &["[2001:db8::17]"], "2001:db8::17"),
        // IPv6 peers and hops; IPv4-mapped addresses are IPv4.
        ("fd00::1", &["2001:db8::17"], "2001:db8::17"),
        ("::ffff:10.0.0.5", &["::ffff:198.51.100.1"], "198.51.100.1"),
        (
            "fd00::1",
            &["2001:db8::17, fd00::2, ::ffff:10.0.0.3"],
            "2001:db8::17",
        ),
    ];
    for (peer, lines, want) in rows {
        let got = trusted.client_ip(ip(peer), lines.iter().copied());
        assert_eq!(got, ip(want), "peer {peer}, X-Forwarded-For {lines:?}");
    }
}

#[test]
fn rfc7239_s4_rightmost_untrusted_hop_table_forwarded() {
    let trusted = proxies(&["10.0.0.0/8", "fd00::/8"], ForwardedHeader::Forwarded);
    let rows: &[(&str, &[&str], &str)] = &[
        ("10.0.0.5", &["for=198.51.100.1"], "198.51.100.1"),
        ("203.0.113.7", &["for=198.51.100.1"], "203.0.113.7"),
        (
            "10.0.0.5",
            &["for=6.6.6.6, for=198.51.100.1;proto=https;by=10.0.0.5"],
            "198.51.100.1",
        ),
        (
            "10.0.0.5",
            &["For=198.51.100.1", "for=10.0.0.9"],
            "198.51.100.1",
        ),
        // §6: IPv6 is quoted and bracketed; ports may follow.
        (
            "10.0.0.5",
            &[r#"for="[2001:db8:cafe::17]:4711""#],
            "2001:db8:cafe::17",
        ),
        (
            "10.0.0.5",
            &[r#"for="[2001:db8:cafe::17]""#],
            "2001:db8:cafe::17",
        ),
        ("10.0.0.5", &[r#"for="198.51.100.1:4711""#], "198.51.100.1"),
        (
            "fd00::1",
            &[r#"for="[fd00::2]", for=198.51.100.1"#],
            "198.51.100.1",
        ),
        // A quoted comma does not split elements; the value is not an address.
        ("10.0.0.5", &[r#"for=198.51.100.1, for="a,b""#], "10.0.0.5"),
        // §6.2/§6.3: unknown and obfuscated nodes end the walk.
        ("10.0.0.5", &["for=198.51.100.1, for=unknown"], "10.0.0.5"),
        (
            "10.0.0.5",
            &["for=198.51.100.1, for=_hidden, for=10.0.0.9"],
            "10.0.0.9",
        ),
        // An element without `for`, with two, or with a broken quote is unreadable.
        ("10.0.0.5", &["for=198.51.100.1, proto=https"], "10.0.0.5"),
        ("10.0.0.5", &["for=198.51.100.1;for=6.6.6.6"], "10.0.0.5"),
        ("10.0.0.5", &[r#"for="198.51.100.1"#], "10.0.0.5"),
        ("10.0.0.5", &["for"], "10.0.0.5"),
    ];
    for (peer, lines, want) in rows {
        let got = trusted.client_ip(ip(peer), lines.iter().copied());
        assert_eq!(got, ip(want), "peer {peer}, Forwarded {lines:?}");
    }
}

#[test]
fn nobody_is_trusted_by_default() {
    let none = TrustedProxies::default();
    assert!(!none.contains(ip("127.0.0.1")));
    assert_eq!(
        none.client_ip(ip("127.0.0.1"), ["198.51.100.1"]),
        ip("127.0.0.1")
    );
    assert_eq!(none.header(), ForwardedHeader::XForwardedFor);
}

#[test]
fn forwarded_header_names() {
    assert_eq!(
        ForwardedHeader::parse("X-Forwarded-For"),
        Ok(ForwardedHeader::XForwardedFor)
    );
    assert_eq!(
        ForwardedHeader::parse("forwarded"),
        Ok(ForwardedHeader::Forwarded)
    );
    assert!(ForwardedHeader::parse("x-real-ip").is_err());
}
