//! The revocation feed through the gateway, against the fake authorization server:
//! revocation-to-refusal on a `local` route within 2 s, feed outage and resume with
//! `Last-Event-ID`, `local_strict` refusing or introspecting while the feed is stale, and the
//! whole authorization server dying and coming back.

use std::time::Instant;

use keycard_validate::FeedOptions;

use crate::fake_as::FakeAs;
use crate::*;

const GRANT: &str = "0123456789abcdef0123456789abcdef";

fn options(fake: &FakeAs) -> GatewayOptions {
    GatewayOptions {
        clock: fake.clock.clone(),
        feed: FeedOptions::default()
            .backoff(Duration::from_millis(50), Duration::from_millis(200))
            .idle_timeout(Duration::from_secs(2)),
        ..GatewayOptions::default()
    }
}

async fn connected(gw: &Gw) {
    gw.ready().await;
    eventually("the feed to connect", || {
        gw.gateway.feed().is_some_and(|f| f.is_connected())
    })
    .await;
}

#[tokio::test]
async fn feed_spec_revocation_reaches_a_local_route_within_two_seconds() {
    let fake = FakeAs::start().await;
    let up = echo_upstream();
    let config = head(&fake.issuer, "introspection_cache_ttl_secs = 60")
        + &route("/photos", "[\"GET\"]", up.addr, "local", "")
        + &route("/orders", "[\"POST\"]", up.addr, "introspect", "");
    let gw = start_gateway(&config, Some("s3cret"), options(&fake)).await;
    connected(&gw).await;
    let t = fake.token("alice", GRANT, "photos:read");
    let other = fake.token("bob", "ffffffffffffffffffffffffffffffff", "photos:read");
    assert_eq!(
        get(&format!("{}/photos", gw.base), Some(&t)).await.status,
        200
    );
    let orders = || send(http().post(format!("{}/orders", gw.base)).bearer_auth(&t));
    assert_eq!(orders().await.status, 200);
    assert_eq!(orders().await.status, 200, "now from the cache");
    let asked = fake
        .introspections
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(asked, 1);
    let t0 = Instant::now();
    let seq = fake.revoke("grant", GRANT);
    loop {
        let r = get(&format!("{}/photos", gw.base), Some(&t)).await;
        if r.status == 401 {
            assert!(r.challenge().contains("invalid_token"));
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "not refused within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The feed evicted the cached introspection answer: the next call asks again, and the
    // authorization server says inactive.
    assert_eq!(orders().await.status, 401);
    assert_eq!(gw.gateway.feed().unwrap().last_seq(), seq);
    assert_eq!(
        get(&format!("{}/photos", gw.base), Some(&other))
            .await
            .status,
        200
    );
    // A token issued after the revocation, from the same grant id, is not revoked by it.
    fake.clock.advance(1);
    let fresh = fake.token("alice", GRANT, "photos:read");
    assert_eq!(
        get(&format!("{}/photos", gw.base), Some(&fresh))
            .await
            .status,
        200
    );
    let metrics = gw.gateway.metrics_text();
    assert!(
        metrics.contains("keycard_gateway_feed_connected 1"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("keycard_gateway_feed_last_seq {seq}")));
}

#[tokio::test]
async fn feed_spec_outage_makes_local_strict_refuse_or_introspect_and_resume_catches_up() {
    let fake = FakeAs::start().await;
    let up = echo_upstream();
    let routes = route("/photos", "[\"GET\"]", up.addr, "local", "")
        + &route("/strict", "[\"GET\"]", up.addr, "local_strict", "");
    let refuse = start_gateway(
        &(head(&fake.issuer, "feed_max_staleness_secs = 1") + &routes),
        Some("s3cret"),
        options(&fake),
    )
    .await;
    let fallback = start_gateway(
        &(head(
            &fake.issuer,
            "feed_max_staleness_secs = 1\nfeed_stale_fallback = \"introspect\"",
        ) + &routes),
        Some("s3cret"),
        options(&fake),
    )
    .await;
    connected(&refuse).await;
    connected(&fallback).await;
    let t = fake.token("alice", GRANT, "photos:read");
    let revoked_later = fake.token("carol", "abababababababababababababababab", "photos:read");
    fake.revoke("jti", "unrelated");
    eventually("event 1", || refuse.gateway.feed().unwrap().last_seq() == 1).await;
    for gw in [&refuse, &fallback] {
        assert_eq!(
            get(&format!("{}/strict", gw.base), Some(&t)).await.status,
            200
        );
    }
    let asked = || {
        fake.introspections
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    assert_eq!(asked(), 0, "a fresh feed needs no introspection");

    fake.set_feed_down(true);
    let feed = refuse.gateway.feed().unwrap();
    eventually("the stream to drop", || !feed.is_connected()).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(feed.staleness() > Duration::from_secs(1));
    let r = get(&format!("{}/strict", refuse.base), Some(&t)).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (503, "temporarily_unavailable".into())
    );
    assert_eq!(
        get(&format!("{}/photos", refuse.base), Some(&t))
            .await
            .status,
        200
    );
    let r = get(&format!("{}/strict", fallback.base), Some(&t)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(asked(), 1, "the fallback introspected");
    assert!(
        refuse
            .gateway
            .metrics_text()
            .contains("keycard_gateway_feed_connected 0")
    );

    // Revoked while the feed is down: the resumed stream brings it.
    fake.revoke("grant", "abababababababababababababababab");
    fake.set_feed_down(false);
    eventually("both to resume", || {
        refuse.gateway.feed().unwrap().last_seq() == 2
            && fallback.gateway.feed().unwrap().last_seq() == 2
    })
    .await;
    let resumes = fake.resumes();
    assert!(
        resumes.iter().filter(|r| r.as_deref() == Some("1")).count() >= 2,
        "both resumed from the last id applied: {resumes:?}"
    );
    for gw in [&refuse, &fallback] {
        assert_eq!(
            get(&format!("{}/photos", gw.base), Some(&revoked_later))
                .await
                .status,
            401
        );
        assert_eq!(
            get(&format!("{}/strict", gw.base), Some(&t)).await.status,
            200
        );
    }
}

#[tokio::test]
async fn authorization_server_dies_and_comes_back() {
    let fake = FakeAs::start().await;
    let up = echo_upstream();
    let config = head(&fake.issuer, "")
        + &route("/photos", "[\"GET\"]", up.addr, "local", "")
        + &route("/orders", "[\"POST\"]", up.addr, "introspect", "");
    let gw = start_gateway(&config, Some("s3cret"), options(&fake)).await;
    connected(&gw).await;
    let t = fake.token("alice", GRANT, "photos:read");
    assert_eq!(
        get(&format!("{}/photos", gw.base), Some(&t)).await.status,
        200
    );
    fake.kill();
    let feed = gw.gateway.feed().unwrap();
    eventually("the stream to drop", || !feed.is_connected()).await;
    assert_eq!(
        get(&format!("{}/photos", gw.base), Some(&t)).await.status,
        200,
        "cached keys"
    );
    let r = send(http().post(format!("{}/orders", gw.base)).bearer_auth(&t)).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (503, "temporarily_unavailable".into())
    );
    fake.restart();
    eventually("the feed to reconnect", || feed.is_connected()).await;
    fake.revoke("sub", "alice");
    eventually("the revocation", || feed.last_seq() == 1).await;
    assert_eq!(
        get(&format!("{}/photos", gw.base), Some(&t)).await.status,
        401
    );
    let h = get(&format!("{}/healthz", gw.base), None).await.json();
    assert_eq!(h["feed"]["connected"], true);
    assert_eq!(h["feed"]["last_seq"], 1);
}

/// The same path end to end with a real Keycard: `/revoke` of an access token (a `jti` event)
/// and removal of a client (a `client` event) reach a `local` route within 2 s.
#[tokio::test]
async fn feed_spec_real_keycard_revocations_reach_a_local_route_within_two_seconds() {
    let a = real_as().await;
    let up = echo_upstream();
    let config = head(&a.s.base, "")
        + &route("/photos", "[\"GET\"]", up.addr, "local", "")
        + &route("/orders", "[\"POST\"]", up.addr, "introspect", "");
    let gw = start_gateway(&config, Some(&a.gateway_secret), a.options()).await;
    connected(&gw).await;
    let refused_within = |t: String| {
        let base = gw.base.clone();
        async move {
            let t0 = Instant::now();
            loop {
                let r = get(&format!("{base}/photos"), Some(&t)).await;
                if r.status == 401 {
                    assert!(r.challenge().contains("invalid_token"));
                    return t0.elapsed();
                }
                assert_eq!(r.status, 200);
                assert!(
                    t0.elapsed() < Duration::from_secs(2),
                    "not refused within 2 s"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let t = a.token("m2m", &a.m2m_secret, "photos:read").await;
    let kept = a.token("reader", &a.reader_secret, "photos:read").await;
    assert_eq!(
        get(&format!("{}/photos", gw.base), Some(&t)).await.status,
        200
    );
    let r =
        a.s.http
            .post(a.s.url("/revoke"))
            .basic_auth("m2m", Some(&a.m2m_secret))
            .form(&[("token", t.as_str())])
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let orders = send(http().post(format!("{}/orders", gw.base)).bearer_auth(&t)).await;
    assert_eq!(orders.status, 401, "introspection refuses at once");
    let took = refused_within(t).await;
    eprintln!("jti revocation to refusal on a local route: {took:?}");
    assert_eq!(
        get(&format!("{}/photos", gw.base), Some(&kept))
            .await
            .status,
        200
    );
    // Removing a client ends every token it holds.
    keycard_store::Store::remove_client(
        a.s.store(),
        &keycard_protocol::ClientId::parse("reader").unwrap(),
        a.s.revocation(),
    )
    .await
    .unwrap();
    let took = refused_within(kept).await;
    eprintln!("client removal to refusal on a local route: {took:?}");
}
