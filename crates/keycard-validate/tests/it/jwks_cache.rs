//! The issuer key cache (RFC 8725 §3.10; SECURITY.md §4.11): single flight, at most one fetch per
//! `min_refresh_interval`, Cache-Control expiry, old keys kept on failure.
//!
//! What is counted: `FakeIssuer::jwks_gets`, the number of GET requests to `{issuer}/jwks.json`
//! (discovery GETs are counted separately in `discovery_gets`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use keycard_jose::Alg;
use keycard_validate::{FetchError, ValidationError};
use serde_json::json;
use tokio::task::JoinSet;

use crate::*;

/// 10,000 tokens with random kids (valid claims, so they reach the key lookup), all at once.
async fn storm(s: &Setup, token: &str, seed: u64) -> usize {
    let mut set = JoinSet::new();
    for i in 0..10_000u64 {
        let kid = format!(
            "random-{seed}-{i}-{:x}",
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        );
        let forged = with_header(token, &json!({"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}));
        let v = s.validator.clone();
        set.spawn(async move { v.validate(&forged).await });
    }
    let mut unknown = 0;
    while let Some(r) = set.join_next().await {
        if matches!(r.unwrap(), Err(ValidationError::UnknownKey)) {
            unknown += 1;
        }
    }
    unknown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8725_s3_10_ten_thousand_random_kids_cause_at_most_one_fetch() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    *s.issuer.cache_control.lock().unwrap() = Some("max-age=600".into());
    *s.issuer.jwks_delay.lock().unwrap() = Duration::from_millis(50);
    let token = access_token(&k.key, &claims(T0));

    // The initial load: one discovery, one JWKS GET.
    s.validator.validate(&token).await.unwrap();
    assert_eq!(s.issuer.jwks_gets(), 1);

    // Within min_refresh_interval of that load: no fetch at all.
    assert_eq!(storm(&s, &token, 1).await, 10_000);
    assert_eq!(s.issuer.jwks_gets(), 1);

    // Past the interval (keys still fresh by max-age): exactly one more, shared by all.
    s.clock.advance(61);
    assert_eq!(storm(&s, &token, 2).await, 10_000);
    assert_eq!(s.issuer.jwks_gets(), 2);
    assert_eq!(s.issuer.discovery_gets.load(Ordering::SeqCst), 1);

    // The real key still works throughout.
    s.validator.validate(&token).await.unwrap();
    assert_eq!(s.issuer.jwks_gets(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8725_s3_10_cold_start_storm_is_single_flight() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    *s.issuer.jwks_delay.lock().unwrap() = Duration::from_millis(50);
    let token = access_token(&k.key, &claims(T0));
    assert_eq!(storm(&s, &token, 3).await, 10_000);
    assert_eq!(s.issuer.jwks_gets(), 1);
    assert_eq!(s.issuer.discovery_gets.load(Ordering::SeqCst), 1);
    s.validator.validate(&token).await.unwrap();
    assert_eq!(s.issuer.jwks_gets(), 1);
}

#[tokio::test]
async fn rfc9111_cache_control_max_age_expiry_triggers_a_refresh() {
    let k1 = key(Alg::EdDSA, "k1");
    let k2 = key(Alg::ES256, "k2");
    let s = setup(&[&k1.key]); // served with max-age=60
    let t1 = access_token(&k1.key, &claims(T0));
    s.validator.validate(&t1).await.unwrap();
    assert_eq!(s.issuer.jwks_gets(), 1);

    s.clock.advance(59);
    s.validator.validate(&t1).await.unwrap();
    assert_eq!(s.issuer.jwks_gets(), 1, "refreshed before max-age");

    // The issuer rotates: k1 retired, k2 active. After max-age the next request refetches.
    s.issuer.set_keys(&[&k2.key]);
    s.clock.advance(2);
    let e = s.validator.validate(&t1).await.unwrap_err();
    assert!(matches!(e, ValidationError::UnknownKey), "{e:?}");
    assert_eq!(s.issuer.jwks_gets(), 2);
    let t2 = access_token(&k2.key, &claims(s.clock.now()));
    s.validator.validate(&t2).await.unwrap();
    assert_eq!(s.issuer.jwks_gets(), 2);
}

#[tokio::test]
async fn rfc7517_unknown_kid_after_the_interval_finds_a_rotated_key() {
    let k1 = key(Alg::EdDSA, "k1");
    let k2 = key(Alg::EdDSA, "k2");
    let s = setup(&[&k1.key]);
    *s.issuer.cache_control.lock().unwrap() = Some("max-age=3600".into());
    s.validator
        .validate(&access_token(&k1.key, &claims(T0)))
        .await
        .unwrap();
    s.issuer.set_keys(&[&k1.key, &k2.key]);
    let t2 = access_token(&k2.key, &claims(T0));
    // Too soon after the last fetch: refused without fetching (and remembered as unknown).
    assert!(matches!(
        s.validator.validate(&t2).await,
        Err(ValidationError::UnknownKey)
    ));
    assert_eq!(s.issuer.jwks_gets(), 1);
    s.clock.advance(60);
    let at = s
        .validator
        .validate(&access_token(&k2.key, &claims(s.clock.now())))
        .await
        .unwrap();
    assert_eq!(at.sub(), "user-1");
    assert_eq!(s.issuer.jwks_gets(), 2);
}

#[tokio::test]
async fn rfc8725_s3_10_fetch_failure_keeps_the_old_keys() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    s.validator
        .validate(&access_token(&k.key, &claims(T0)))
        .await
        .unwrap();
    s.issuer.fail_jwks.store(true, Ordering::SeqCst);
    s.clock.advance(120); // keys are stale by max-age=60
    let token = access_token(&k.key, &claims(s.clock.now()));
    s.validator.validate(&token).await.unwrap();
    assert_eq!(s.issuer.jwks_gets(), 2, "a refresh was attempted");
    // An unknown kid is still just unknown, and the failed attempt counts for the interval.
    let other = with_header(
        &token,
        &json!({"alg": "EdDSA", "kid": "nope", "typ": "at+jwt"}),
    );
    assert!(matches!(
        s.validator.validate(&other).await,
        Err(ValidationError::UnknownKey)
    ));
    assert_eq!(s.issuer.jwks_gets(), 2);
    // Garbage from the issuer also keeps the old keys.
    s.issuer.fail_jwks.store(false, Ordering::SeqCst);
    *s.issuer.jwks.lock().unwrap() = json!({"keys": "nope"});
    s.clock.advance(61);
    s.validator
        .validate(&access_token(&k.key, &claims(s.clock.now())))
        .await
        .unwrap();
    assert_eq!(s.issuer.jwks_gets(), 3);
}

#[tokio::test]
async fn rfc8414_s3_3_unavailable_issuer_is_not_a_token_error() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup(&[&k.key]);
    s.issuer.fail_jwks.store(true, Ordering::SeqCst);
    let token = access_token(&k.key, &claims(T0));
    let e = s.validator.validate(&token).await.unwrap_err();
    assert!(
        matches!(e, ValidationError::KeysUnavailable(FetchError::Http(_))),
        "{e:?}"
    );
    let e = s.validator.refresh().await.unwrap_err();
    assert!(
        matches!(e, ValidationError::KeysUnavailable(FetchError::Backoff)),
        "{e:?}"
    );
    s.issuer.fail_jwks.store(false, Ordering::SeqCst);
    s.clock.advance(60);
    s.validator.refresh().await.unwrap();
    s.validator
        .validate(&access_token(&k.key, &claims(s.clock.now())))
        .await
        .unwrap();
}

#[tokio::test]
async fn rfc8414_s3_3_discovery_for_another_issuer_is_refused() {
    let k = key(Alg::EdDSA, "k1");
    let issuer = FakeIssuer::new(&[&k.key]);
    let v = keycard_validate::Validator::new(
        keycard_validate::Issuer::from_wire("http://127.0.0.1:8080/").unwrap(),
        aud(),
        issuer.clone(),
        keycard_validate::ValidatorOptions::default().clock(|| keycard_validate::UnixTime(T0)),
    );
    let e = v.refresh().await.unwrap_err();
    assert!(
        matches!(
            e,
            ValidationError::KeysUnavailable(FetchError::IssuerMismatch)
        ),
        "{e:?}"
    );
    assert_eq!(issuer.jwks_gets(), 0);
}

#[tokio::test]
async fn slow_jwks_times_out_and_oversized_jwks_is_refused() {
    let k = key(Alg::EdDSA, "k1");
    let s = setup_with(&[&k.key], |o| {
        o.fetch_timeout(Duration::from_millis(50))
            .min_refresh_interval(Duration::ZERO)
    });
    *s.issuer.jwks_delay.lock().unwrap() = Duration::from_millis(500);
    let e = s.validator.refresh().await.unwrap_err();
    assert!(
        matches!(e, ValidationError::KeysUnavailable(FetchError::Timeout)),
        "{e:?}"
    );

    let s = setup_with(&[&k.key], |o| o.max_jwks_bytes(100));
    let e = s.validator.refresh().await.unwrap_err();
    assert!(
        matches!(e, ValidationError::KeysUnavailable(FetchError::TooLarge)),
        "{e:?}"
    );
}

/// The signature memo (`ValidatorOptions::signature_memo`) counts only with the very key that
/// verified the token: when the issuer's JWKS comes back with other key material under the
/// same `kid`, a token that verified before is checked again, and refused (RFC 7515 §5.2).
#[tokio::test]
async fn rfc7515_s5_2_a_remembered_signature_counts_only_with_the_key_that_verified_it() {
    let before = key(Alg::EdDSA, "k1");
    let after = key(Alg::EdDSA, "k1");
    let s = setup(&[&before.key]); // served with max-age=60
    let token = access_token(&before.key, &claims(T0));
    for _ in 0..3 {
        s.validator.validate(&token).await.unwrap();
    }
    s.issuer.set_keys(&[&after.key]);
    s.clock.advance(61);
    let e = s.validator.validate(&token).await.unwrap_err();
    assert!(matches!(e, ValidationError::BadSignature), "{e:?}");
    assert_eq!(s.issuer.jwks_gets(), 2);
    // A token signed by the new key material verifies (and is then remembered in turn).
    let fresh = access_token(&after.key, &claims(s.clock.now()));
    s.validator.validate(&fresh).await.unwrap();
    s.validator.validate(&fresh).await.unwrap();
}
