//! RFC 7662 through `Introspector` against the fake issuer.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keycard_jose::Alg;
use keycard_validate::{IntrospectionError, Introspector};
use serde_json::json;

use keycard_validate::{ClientId, ClientSecret, UnixTime};

use crate::*;

fn introspector(issuer: &Arc<FakeIssuer>, clock: &ManualClock) -> Introspector {
    Introspector::new(
        format!("{ISSUER}/introspect"),
        &ClientId::parse("rs:photos").unwrap(),
        &ClientSecret::parse("s3cret/with+odd=chars").unwrap(),
        issuer.clone(),
    )
    .with_clock(clock.as_fn())
}

fn active(exp: i64) -> String {
    json!({
        "active": true, "scope": "openid photos:read", "client_id": "app", "sub": "user-1",
        "aud": [AUDIENCE], "iss": ISSUER, "exp": exp, "iat": exp - 300, "jti": "jti-1",
        "token_type": "Bearer",
    })
    .to_string()
}

#[tokio::test]
async fn rfc7662_s2_1_request_is_a_basic_authenticated_form_post() {
    let k = key(Alg::EdDSA, "k1");
    let issuer = FakeIssuer::new(&[&k.key]);
    let clock = ManualClock::start();
    *issuer.introspection.lock().unwrap() = (200, active(T0 + 100));
    let i = introspector(&issuer, &clock);
    let r = i.introspect("tok.en-value").await.unwrap();
    assert!(r.active);
    let posts = issuer.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1);
    let (url, auth, form) = &posts[0];
    assert_eq!(url, &format!("{ISSUER}/introspect"));
    // RFC 6749 §2.3.1: form-urlencode id and secret, then base64 "id:secret".
    let expected = format!(
        "Basic {}",
        STANDARD.encode("rs%3Aphotos:s3cret%2Fwith%2Bodd%3Dchars")
    );
    assert_eq!(auth, &expected);
    assert_eq!(
        form,
        &vec![
            ("token".to_owned(), "tok.en-value".to_owned()),
            ("token_type_hint".to_owned(), "access_token".to_owned()),
        ]
    );
}

#[tokio::test]
async fn rfc7662_s2_2_active_and_inactive_answers_are_parsed() {
    let k = key(Alg::EdDSA, "k1");
    let issuer = FakeIssuer::new(&[&k.key]);
    let clock = ManualClock::start();
    let i = introspector(&issuer, &clock);
    *issuer.introspection.lock().unwrap() = (200, active(T0 + 100));
    let a = i.introspect("a").await.unwrap();
    assert!(a.active && a.has_scope("photos:read") && !a.has_scope("admin"));
    assert_eq!(a.client_id.as_deref(), Some("app"));
    assert_eq!(a.sub.as_deref(), Some("user-1"));
    assert_eq!(a.aud, [AUDIENCE]);
    assert_eq!(a.iss.as_deref(), Some(ISSUER));
    assert_eq!(
        (a.exp, a.iat),
        (Some(UnixTime(T0 + 100)), Some(UnixTime(T0 - 200)))
    );
    assert_eq!(a.jti.as_deref(), Some("jti-1"));
    assert_eq!(a.token_type.as_deref(), Some("Bearer"));

    *issuer.introspection.lock().unwrap() = (200, r#"{"active":false}"#.into());
    let n = i.introspect("b").await.unwrap();
    assert!(!n.active && !n.has_scope("photos:read"));

    *issuer.introspection.lock().unwrap() = (401, r#"{"error":"invalid_client"}"#.into());
    assert!(matches!(
        i.introspect("c").await,
        Err(IntrospectionError::Status(401))
    ));
    *issuer.introspection.lock().unwrap() = (200, r#"{"active":"yes"}"#.into());
    assert!(matches!(
        i.introspect("d").await,
        Err(IntrospectionError::Malformed(_))
    ));
}

#[tokio::test]
async fn rfc7662_s4_cache_never_outlives_the_token() {
    let k = key(Alg::EdDSA, "k1");
    let issuer = FakeIssuer::new(&[&k.key]);
    let clock = ManualClock::start();
    let i = introspector(&issuer, &clock).with_cache(Duration::from_secs(300), 100);
    let posts = || issuer.posts.lock().unwrap().len();

    // Token expires in 10 s although the cache TTL is 300 s.
    *issuer.introspection.lock().unwrap() = (200, active(T0 + 10));
    assert!(i.introspect("short").await.unwrap().active);
    assert!(i.introspect("short").await.unwrap().active);
    assert_eq!(posts(), 1);
    clock.advance(10);
    *issuer.introspection.lock().unwrap() = (200, r#"{"active":false}"#.into());
    assert!(!i.introspect("short").await.unwrap().active);
    assert_eq!(posts(), 2);

    // Inactive answers are cached for the (short) TTL too.
    assert!(!i.introspect("short").await.unwrap().active);
    assert_eq!(posts(), 2);
    clock.advance(300);
    assert!(!i.introspect("short").await.unwrap().active);
    assert_eq!(posts(), 3);

    // An active answer whose exp already passed is not cached at all.
    *issuer.introspection.lock().unwrap() = (200, active(clock.now() - 1));
    i.introspect("stale").await.unwrap();
    i.introspect("stale").await.unwrap();
    assert_eq!(posts(), 5);
}

#[tokio::test]
async fn rfc7662_without_a_cache_every_call_asks() {
    let k = key(Alg::EdDSA, "k1");
    let issuer = FakeIssuer::new(&[&k.key]);
    let clock = ManualClock::start();
    *issuer.introspection.lock().unwrap() = (200, active(T0 + 100));
    let i = introspector(&issuer, &clock);
    i.introspect("x").await.unwrap();
    i.introspect("x").await.unwrap();
    assert_eq!(issuer.posts.lock().unwrap().len(), 2);
    // Oversized tokens are inactive without a request.
    assert!(!i.introspect(&"a".repeat(9000)).await.unwrap().active);
    assert_eq!(issuer.posts.lock().unwrap().len(), 2);
}
