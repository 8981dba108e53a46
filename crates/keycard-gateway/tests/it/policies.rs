//! The route policies against a real Keycard: `none`, `local`, `introspect`, the RFC 6750
//! answers, identity headers and assertions, `Authorization` per route, HTTP/2 upstreams.

use keycard_gateway::metrics::Outcome;

use crate::*;

async fn setup(extra_top: &str, routes: impl Fn(SocketAddr) -> String) -> (RealAs, Server, Gw) {
    let a = real_as().await;
    let up = echo_upstream();
    let config = head(&a.s.base, extra_top) + &routes(up.addr);
    let gw = start_gateway(&config, Some(&a.gateway_secret), a.options()).await;
    gw.ready().await;
    (a, up, gw)
}

fn standard(up: SocketAddr) -> String {
    route(
        "/photos",
        "[\"GET\"]",
        up,
        "local",
        "scopes = [\"photos:read\"]",
    ) + &route(
        "/orders",
        "[\"POST\"]",
        up,
        "introspect",
        "scopes = [\"orders:write\"]",
    ) + &route("/orders", "[\"GET\"]", up, "local", "")
        + &route("/public", "[\"GET\"]", up, "none", "")
}

#[tokio::test]
async fn rfc9068_local_route_forwards_the_verified_identity() {
    let (a, _up, gw) = setup("", standard).await;
    let t = a
        .token("m2m", &a.m2m_secret, "photos:read orders:write")
        .await;
    let e = get(&format!("{}/photos/1?size=big", gw.base), Some(&t))
        .await
        .echo();
    assert_eq!(e.target(), "/photos/1?size=big");
    assert_eq!(e.0["method"], "GET");
    assert_eq!(e.header("x-keycard-sub").as_deref(), Some("m2m"));
    assert_eq!(e.header("x-keycard-client-id").as_deref(), Some("m2m"));
    assert_eq!(
        e.header("x-keycard-scope").as_deref(),
        Some("orders:write photos:read")
    );
    assert_eq!(e.header("authorization"), None, "removed by default");
    assert!(e.header("x-request-id").is_some());
    assert_eq!(
        gw.gateway
            .metrics()
            .requests("/photos", "local", Outcome::Proxied),
        1
    );
    // `none` forwards without looking at a token, and adds no identity.
    let e = get(&format!("{}/public", gw.base), None).await.echo();
    assert_eq!(e.header("x-keycard-sub"), None);
}

#[tokio::test]
async fn rfc6750_s3_refusals_speak_one_voice() {
    let (a, _up, gw) = setup("", standard).await;
    let realm = "realm=\"https://api.example.com\"";
    let r = get(&format!("{}/photos", gw.base), None).await;
    assert_eq!((r.status, r.challenge()), (401, format!("Bearer {realm}")));
    assert!(r.body.is_empty());
    let r = get(&format!("{}/photos", gw.base), Some("not.a.token")).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.challenge(),
        format!("Bearer {realm}, error=\"invalid_token\"")
    );
    assert_eq!(r.json()["error"], "invalid_token");
    // A valid token without the route's scope: 403 with the scope it needs.
    let t = a.token("reader", &a.reader_secret, "photos:read").await;
    let r = send(http().post(format!("{}/orders", gw.base)).bearer_auth(&t)).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.challenge(),
        format!("Bearer {realm}, error=\"insufficient_scope\", scope=\"orders:write\"")
    );
    // Two Authorization headers: 400 invalid_request.
    let r = send(
        http()
            .get(format!("{}/photos", gw.base))
            .header("authorization", format!("Bearer {t}"))
            .header("authorization", "Bearer other"),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, "invalid_request".into())
    );
    // The route table's answers.
    let r = get(&format!("{}/nowhere", gw.base), None).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (404, "not_found".into())
    );
    let r = send(http().delete(format!("{}/orders/1", gw.base))).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "POST, GET");
    // An expired token, beyond the 30 s leeway.
    a.s.clock.advance(631);
    let r = get(&format!("{}/photos", gw.base), Some(&t)).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn rfc7662_introspect_route_asks_on_every_call_unless_cached() {
    let (a, _up, gw) = setup("", standard).await;
    let t = a
        .token("m2m", &a.m2m_secret, "photos:read orders:write")
        .await;
    for _ in 0..2 {
        let r = send(
            http()
                .post(format!("{}/orders", gw.base))
                .bearer_auth(&t)
                .body("{\"item\":1}"),
        )
        .await;
        let e = r.echo();
        assert_eq!(e.0["body"], "{\"item\":1}");
        assert_eq!(e.header("x-keycard-sub").as_deref(), Some("m2m"));
    }
    let m = gw.gateway.metrics();
    assert_eq!(
        m.introspections.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    // The authorization server's clock passes `exp`: inactive, invalid_token.
    a.s.clock.advance(601);
    let r = send(http().post(format!("{}/orders", gw.base)).bearer_auth(&t)).await;
    assert_eq!(r.status, 401);
    assert!(r.challenge().contains("invalid_token"));

    // With a cache: the second call is a hit, keyed by the token's digest.
    let (a, _up, gw) = setup("introspection_cache_ttl_secs = 30", standard).await;
    let t = a.token("m2m", &a.m2m_secret, "orders:write").await;
    for _ in 0..3 {
        let r = send(http().post(format!("{}/orders", gw.base)).bearer_auth(&t)).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let m = gw.gateway.metrics();
    assert_eq!(
        m.introspections.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        m.introspection_cache_hits
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    assert!(
        gw.gateway
            .metrics_text()
            .contains("keycard_gateway_introspection_cache_hits_total 2")
    );
}

#[tokio::test]
async fn identity_assertion_authorization_and_http2_per_route() {
    let (a, up, gw) = setup("", |up| {
        route(
            "/signed",
            "[\"GET\"]",
            up,
            "local",
            "identity_assertion = true\nforward_authorization = true",
        ) + &route("/h2", "[\"GET\"]", up, "none", "upstream_http2 = true")
    })
    .await;
    let t = a.token("m2m", &a.m2m_secret, "photos:read").await;
    let e = get(&format!("{}/signed", gw.base), Some(&t)).await.echo();
    assert_eq!(e.header("authorization"), Some(format!("Bearer {t}")));
    let jwt = e.header("x-keycard-identity").expect("an assertion");
    let jwks: Value = get(&format!("{}/.well-known/jwks.json", gw.base), None)
        .await
        .json();
    let jwks = keycard_jose::parse_jwks(&jwks).unwrap();
    let now = a.s.clock.now().secs();
    let claims: Value = keycard_jose::verify(&jwt, &jwks, "JWT", now).unwrap();
    assert_eq!(claims["aud"], format!("http://{}", up.addr));
    assert_eq!(claims["sub"], "m2m");
    assert_eq!(claims["iss"], "keycard-gateway");
    assert_eq!(claims["exp"].as_i64().unwrap() - now, 60);
    // An HTTP/2 upstream by prior knowledge.
    let e = get(&format!("{}/h2", gw.base), None).await.echo();
    assert_eq!(e.0["version"], "HTTP/2.0");
    assert_eq!(e.target(), "/h2");
}

#[tokio::test]
async fn rfc7662_concurrent_calls_with_one_token_share_one_introspection() {
    let fake = crate::fake_as::FakeAs::start().await;
    *fake.introspect_delay.lock().unwrap() = Duration::from_millis(300);
    let up = echo_upstream();
    let config =
        head(&fake.issuer, "") + &route("/orders", "[\"POST\"]", up.addr, "introspect", "");
    let options = GatewayOptions {
        clock: fake.clock.clone(),
        ..GatewayOptions::default()
    };
    let gw = start_gateway(&config, Some("s3cret"), options).await;
    gw.ready().await;
    let t = fake.token("alice", "0123456789abcdef0123456789abcdef", "orders:write");
    let other = fake.token("bob", "0123456789abcdef0123456789abcdef", "orders:write");
    let mut calls = Vec::new();
    for i in 0..8 {
        let url = format!("{}/orders", gw.base);
        let t = if i == 7 { other.clone() } else { t.clone() };
        calls.push(tokio::spawn(async move {
            send(http().post(url).bearer_auth(t)).await.status
        }));
    }
    for c in calls {
        assert_eq!(c.await.unwrap(), 200);
    }
    let asked = fake
        .introspections
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(asked, 2, "one per distinct token, with no cache configured");
}

use keycard_protocol::Clock as _;
