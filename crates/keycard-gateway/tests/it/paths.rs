//! The hostile path table end to end, over raw sockets so that no client normalises anything:
//! what is refused is refused with 400, and what is forwarded reaches the upstream byte for
//! byte, under the route that matched.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::*;

/// Sends one raw HTTP/1.1 request and answers the status and the body.
pub(crate) async fn raw(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

async fn target(addr: SocketAddr, t: &str) -> (u16, String) {
    raw(
        addr,
        &format!("GET {t} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"),
    )
    .await
}

#[tokio::test]
async fn rfc3986_hostile_path_table_end_to_end() {
    let public = echo_upstream();
    let admin = echo_upstream();
    let config = "listen = \"127.0.0.1:0\"\n".to_owned()
        + &route("/public", "[\"GET\"]", public.addr, "none", "")
        + &route("/admin", "[\"GET\"]", admin.addr, "none", "")
        + &format!(
            "[[route]]\npath = \"/api\"\nmethods = [\"GET\"]\nupstream = \"http://{}/v1\"\nauth = \"none\"\n",
            admin.addr
        );
    let gw = start_gateway(&config, None, GatewayOptions::default()).await;
    // (request-target, status, the target the upstream must see, or the port that must see it)
    let forwarded = [
        ("/public", "/public", public.addr),
        ("/public/x", "/public/x", public.addr),
        ("/public/", "/public/", public.addr),
        ("/public/a%20b", "/public/a%20b", public.addr),
        (
            "/public/x?next=/admin/../&a=%2F",
            "/public/x?next=/admin/../&a=%2F",
            public.addr,
        ),
        ("/public?/admin", "/public?/admin", public.addr),
        ("/admin/y", "/admin/y", admin.addr),
        ("/api/x?q=1", "/v1/api/x?q=1", admin.addr),
        // The fragment never reaches the gateway: the HTTP parser drops it, so matching and
        // forwarding both see the path before `#`.
        ("/public/x#/../../admin", "/public/x", public.addr),
    ];
    for (t, want, upstream) in forwarded {
        let (status, body) = target(gw.addr, t).await;
        assert_eq!(status, 200, "{t}: {body}");
        let e = Echo(serde_json::from_str(&body).unwrap());
        assert_eq!(e.target(), want, "{t}");
        let host = e.header("host").unwrap();
        assert_eq!(host, upstream.to_string(), "{t} went to the wrong upstream");
    }
    let refused = [
        ("/public/%2Fadmin", 400),
        ("/public/%2fadmin", 400),
        ("/public/..%2Fadmin", 400),
        ("/public/%2e%2e/admin", 400),
        ("/public/%2E%2E%2Fadmin", 400),
        ("/public/../admin", 400),
        ("/public/./x", 400),
        ("/public/..", 400),
        ("//public", 400),
        ("/public//admin", 400),
        ("/public\\..\\admin", 400),
        ("/public/%5C..%5Cadmin", 400),
        ("/public;/admin", 400),
        ("/public;jsessionid=1", 400),
        ("/public/%00", 400),
        ("/public/%252e%252e/admin", 400),
        ("/public/%C0%AE%C0%AE/admin", 400),
        ("/%70ublic/x", 400),
        ("/publi%63", 400),
        ("/PUBLIC/x", 404),
        ("/Admin", 404),
        ("/publicx", 404),
        ("/", 404),
    ];
    for (t, want) in refused {
        let (status, body) = target(gw.addr, t).await;
        assert_eq!(status, want, "{t}: {body}");
        if status == 400 {
            let j: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            assert_eq!(j["error"], "invalid_request", "{t}: {body}");
        }
    }
    // Raw control characters and non-ASCII never get a route either.
    for t in ["/public/\x01", "/public/\u{e9}"] {
        let (status, _) = target(gw.addr, t).await;
        assert_eq!(status, 400, "{t:?}");
    }
    // Absolute-form (RFC 9112 §3.2.2: servers accept it) is judged by the path it names, the
    // same one forwarded; asterisk-form is not a path.
    let (status, body) = target(gw.addr, "http://elsewhere.example/admin/z").await;
    assert_eq!(status, 200, "{body}");
    let e = Echo(serde_json::from_str(&body).unwrap());
    assert_eq!(
        (e.target(), e.header("host").unwrap()),
        ("/admin/z", admin.addr.to_string())
    );
    let (status, _) = raw(
        gw.addr,
        "OPTIONS * HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400);
}
