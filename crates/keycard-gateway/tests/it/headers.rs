//! Spoofed identity and forwarded headers, hop-by-hop headers both ways.

use crate::paths::raw;
use crate::*;

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let a = real_as().await;
    let up = echo_upstream();
    let config = head(&a.s.base, "")
        + &route("/photos", "[\"GET\"]", up.addr, "local", "")
        + &route("/public", "[\"GET\"]", up.addr, "none", "");
    let gw = start_gateway(&config, Some(&a.gateway_secret), a.options()).await;
    gw.ready().await;
    let t = a.token("m2m", &a.m2m_secret, "photos:read").await;
    let spoof = "X-Keycard-Sub: mallory\r\nx_keycard_sub: mallory\r\nX-KEYCARD-SUB: mallory\r\n\
                 X_Keycard_Client_Id: mallory\r\nx-keycard-scope: admin\r\n\
                 X-Keycard-Identity: forged\r\nx-keycard-sub2: kept\r\n";
    for (path, auth, sub) in [
        (
            "/photos",
            format!("Authorization: Bearer {t}\r\n"),
            Some("m2m"),
        ),
        ("/public", String::new(), None),
    ] {
        let (status, body) = raw(
            gw.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: gw\r\n{auth}{spoof}Connection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let e = Echo(serde_json::from_str(&body).unwrap());
        assert_eq!(
            e.header_all("x-keycard-sub"),
            sub.map(str::to_owned).into_iter().collect::<Vec<_>>()
        );
        for name in ["x_keycard_sub", "x_keycard_client_id", "x-keycard-identity"] {
            assert!(e.header(name).is_none(), "{path}: {name} crossed");
        }
        assert_eq!(
            e.header("x-keycard-sub2").as_deref(),
            Some("kept"),
            "only exact names go"
        );
        if sub.is_none() {
            assert!(
                e.header("x-keycard-scope").is_none() && e.header("x-keycard-client-id").is_none()
            );
        } else {
            assert_eq!(e.header("x-keycard-scope").as_deref(), Some("photos:read"));
        }
    }
}

#[tokio::test]
async fn forwarded_headers_are_rebuilt_unless_the_peer_is_trusted() {
    let up = echo_upstream();
    for (trusted, xff, proto, host) in [
        ("", "127.0.0.1", "http", "gw.example"),
        (
            "trusted_proxies = [\"127.0.0.0/8\"]\n",
            "203.0.113.9, 127.0.0.1",
            "https",
            "api.example.com",
        ),
    ] {
        let config = format!("listen = \"127.0.0.1:0\"\n{trusted}")
            + &route("/public", "[\"GET\"]", up.addr, "none", "");
        let gw = start_gateway(&config, None, GatewayOptions::default()).await;
        let e = send(
            http()
                .get(format!("{}/public", gw.base))
                .header("host", "gw.example")
                .header("x-forwarded-for", "203.0.113.9")
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "api.example.com")
                .header("x-real-ip", "203.0.113.9")
                .header("forwarded", "for=203.0.113.9"),
        )
        .await
        .echo();
        assert_eq!(
            e.header("x-forwarded-for").as_deref(),
            Some(xff),
            "{trusted}"
        );
        assert_eq!(e.header("x-forwarded-proto").as_deref(), Some(proto));
        assert_eq!(e.header("x-forwarded-host").as_deref(), Some(host));
        assert_eq!(e.header("host"), Some(up.addr.to_string()));
        if trusted.is_empty() {
            assert!(e.header("x-real-ip").is_none() && e.header("forwarded").is_none());
        }
    }
}

#[tokio::test]
async fn rfc9110_s7_6_1_hop_by_hop_headers_do_not_cross() {
    let up = echo_upstream();
    let config = "listen = \"127.0.0.1:0\"\n".to_owned()
        + &route("/public", "[\"GET\"]", up.addr, "none", "");
    let gw = start_gateway(&config, None, GatewayOptions::default()).await;
    let r = send(
        http()
            .get(format!("{}/public", gw.base))
            .header("connection", "x-client-hop")
            .header("x-client-hop", "1")
            .header("proxy-authorization", "Basic eDp5")
            .header("keep-alive", "timeout=1"),
    )
    .await;
    let e = r.echo();
    for name in ["x-client-hop", "proxy-authorization", "keep-alive"] {
        assert!(e.header(name).is_none(), "{name} reached the upstream");
    }
    assert!(!e.header_names().contains(&"proxy-connection".to_owned()));
    assert!(
        r.headers.get("x-upstream-hop").is_none(),
        "named in Connection"
    );
    assert!(r.headers.get("keep-alive").is_none());
}
