//! Device authorizations (RFC 8628): polls judged and recorded atomically, one redemption under
//! concurrency, answers only while pending, expiry and the janitor; and refunded throttle
//! attempts.

use std::sync::Arc;

use keycard_protocol::device::{DeviceState, Poll, UserCode};
use keycard_protocol::{DeviceCode, kind};

use super::*;

pub(crate) fn device_hash(s: &str) -> SecretHash<kind::DeviceCode> {
    DeviceCode::parse(s).unwrap().hash()
}

pub(crate) fn user_code(s: &str) -> SecretHash<kind::UserCode> {
    UserCode::parse(s).unwrap().hash()
}

/// A pending authorization for client `app`, asked at 100, expiring at 700, interval 5.
pub(crate) fn device(code: &str, user: &str) -> DeviceAuthorization {
    DeviceAuthorization {
        hash: device_hash(code),
        user_code: user_code(user),
        client_id: cid("app"),
        scope: ScopeSet::parse("openid offline_access").unwrap(),
        audience: Some(aud("https://api.example.com")),
        requested_from: Some("192.0.2.7".parse().unwrap()),
        created_at: UnixTime(100),
        expires_at: UnixTime(700),
        interval: 5,
        last_poll_at: None,
        state: DeviceState::Pending,
        grant_id: None,
    }
}

async fn poll<S: Store>(s: &S, code: &str, client: &str, now: i64) -> Option<Poll> {
    s.poll_device_code(&device_hash(code), &cid(client), UnixTime(now))
        .await
        .unwrap()
        .map(|p| p.outcome)
}

/// The user's answer: approve with `grant`, or deny.
async fn answer<S: Store>(s: &S, user: &str, grant: Option<&Grant>, now: i64) -> bool {
    let d = match grant {
        Some(g) => DeviceDecision::Approve(g),
        None => DeviceDecision::Deny,
    };
    s.decide_device_authorization(&user_code(user), d, UnixTime(now))
        .await
        .unwrap()
}

pub async fn device_polls_are_judged_and_recorded_one_at_a_time<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    let d = device("dc1", "BCDF-GHJK");
    s.create_device_authorization(&d).await.unwrap();
    let loaded = s
        .device_authorization(&user_code("bcdfghjk"), UnixTime(100))
        .await
        .unwrap();
    assert_eq!(loaded, Some(d.clone()));
    assert_eq!(poll(&*s, "nope", "app", 100).await, None);
    // Another client's poll changes nothing: the owner's first poll is still not too soon.
    assert_eq!(
        poll(&*s, "dc1", "other", 100).await,
        Some(Poll::OtherClient)
    );
    assert_eq!(poll(&*s, "dc1", "app", 101).await, Some(Poll::Pending));
    assert_eq!(poll(&*s, "dc1", "app", 103).await, Some(Poll::SlowDown));
    let after = s
        .device_authorization(&d.user_code, UnixTime(103))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (after.last_poll_at, after.interval),
        (Some(UnixTime(103)), 10)
    );
    // Sixteen polls at one instant, after the interval: exactly one is on time; each of the
    // others sees the poll before it and slows down, five more seconds each.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(
            async move { poll(&*s, "dc1", "app", 113).await },
        ));
    }
    let mut pending = 0;
    let mut slowed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Some(Poll::Pending) => pending += 1,
            Some(Poll::SlowDown) => slowed += 1,
            other => panic!("unexpected poll outcome {other:?}"),
        }
    }
    assert_eq!((pending, slowed), (1, 15));
    let after = s
        .device_authorization(&d.user_code, UnixTime(113))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (after.last_poll_at, after.interval),
        (Some(UnixTime(113)), 10 + 15 * 5)
    );
    assert_eq!(poll(&*s, "dc1", "app", 700).await, Some(Poll::Expired));
    assert_eq!(
        s.device_authorization(&d.user_code, UnixTime(700))
            .await
            .unwrap(),
        None
    );
}

pub async fn device_code_is_redeemed_once_under_16_concurrent_polls<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    s.create_device_authorization(&device("dc2", "CDFG-HJKL"))
        .await
        .unwrap();
    let g = Grant {
        sid: None,
        nonce: None,
        audience: Some(aud("https://api.example.com")),
        ..grant("gd", "u-alice")
    };
    assert!(
        s.decide_device_authorization(
            &user_code("CDFG-HJKL"),
            DeviceDecision::Approve(&g),
            UnixTime(120)
        )
        .await
        .unwrap()
    );
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (s, g) = (s.clone(), g.clone());
        tasks.push(tokio::spawn(async move {
            let p = s
                .poll_device_code(&device_hash("dc2"), &cid("app"), UnixTime(121))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(p.grant.as_ref(), Some(&g));
            // A poll after the winner's redemption already sees the code spent.
            if p.outcome == Poll::AlreadyRedeemed {
                return Redeemed::AlreadyUsed;
            }
            assert_eq!(p.outcome, Poll::Approved);
            s.redeem_device_code(
                &device_hash("dc2"),
                Some(&rt(&format!("rd{i}"), "gd")),
                &at("gd"),
            )
            .await
            .unwrap()
        }));
    }
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if t.await.unwrap() == Redeemed::Won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    for i in 0..16 {
        let stored = s.refresh_token(&rt_hash(&format!("rd{i}"))).await.unwrap();
        assert_eq!(stored.is_some(), winners == [i], "refresh token rd{i}");
    }
    let again = s
        .poll_device_code(&device_hash("dc2"), &cid("app"), UnixTime(130))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.outcome, Poll::AlreadyRedeemed);
    assert_eq!(again.grant.map(|g| g.id), Some(gid("gd")));
    assert_eq!(
        s.redeem_device_code(&device_hash("dc2"), None, &at("gd"))
            .await
            .unwrap(),
        Redeemed::AlreadyUsed
    );
}

pub async fn device_answers_count_once_and_only_while_pending<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    for (code, user) in [
        ("dc-a", "BBBB-CCCC"),
        ("dc-d", "DDDD-FFFF"),
        ("dc-x", "GGGG-HHHH"),
        ("dc-r", "JJJJ-KKKK"),
    ] {
        s.create_device_authorization(&device(code, user))
            .await
            .unwrap();
    }
    // A user code held by another authorization is a conflict: the server draws again.
    assert!(matches!(
        s.create_device_authorization(&device("dc-dup", "BBBB-CCCC"))
            .await,
        Err(StoreError::Conflict)
    ));
    let approve = |g: &'static str| Grant {
        sid: None,
        ..grant(g, "u-alice")
    };
    let (ga, gr, gx) = (approve("ga"), approve("gr"), approve("gx"));
    assert!(answer(&*s, "BBBB-CCCC", Some(&ga), 110).await);
    assert!(!answer(&*s, "BBBB-CCCC", None, 111).await);
    assert!(!answer(&*s, "BBBB-CCCC", Some(&gx), 111).await);
    assert_eq!(poll(&*s, "dc-a", "app", 112).await, Some(Poll::Approved));
    assert!(answer(&*s, "DDDD-FFFF", None, 110).await);
    assert!(!answer(&*s, "DDDD-FFFF", None, 110).await);
    assert_eq!(poll(&*s, "dc-d", "app", 112).await, Some(Poll::Denied));
    // Past its expiry, nobody can answer for it.
    assert!(!answer(&*s, "GGGG-HHHH", Some(&gx), 700).await);
    assert_eq!(poll(&*s, "dc-x", "app", 701).await, Some(Poll::Expired));
    // A grant revoked before the device collects it: no tokens.
    assert!(answer(&*s, "JJJJ-KKKK", Some(&gr), 110).await);
    s.revoke_grant(&gid("gr"), rv()).await.unwrap();
    assert_eq!(poll(&*s, "dc-r", "app", 112).await, Some(Poll::Revoked));
    assert_eq!(
        s.redeem_device_code(&device_hash("dc-r"), Some(&rt("rr", "gr")), &at("gr"))
            .await
            .unwrap(),
        Redeemed::AlreadyUsed
    );
    assert!(s.refresh_token(&rt_hash("rr")).await.unwrap().is_none());
    // The janitor keeps the approved grant while its device code may still be collected, then
    // drops both.
    s.purge_expired(UnixTime(699)).await.unwrap();
    assert_eq!(poll(&*s, "dc-a", "app", 699).await, Some(Poll::Approved));
    assert!(!revoked(&*s, "ga.j", Some("ga"), None).await.unwrap());
    s.purge_expired(UnixTime(700)).await.unwrap();
    s.purge_expired(UnixTime(700)).await.unwrap();
    assert_eq!(poll(&*s, "dc-a", "app", 700).await, None);
    assert!(revoked(&*s, "ga.j", Some("ga"), None).await.unwrap());
}

pub async fn refunded_login_attempts_no_longer_count<S: Store>(s: Arc<S>) {
    fn two_then_lock(failures: i64) -> i64 {
        if failures >= 2 { 60 } else { 0 }
    }
    let rules = |k: &str| {
        [ThrottleRule {
            key: account(k),
            policy: two_then_lock,
            only_if_failed: None,
        }]
    };
    let now = UnixTime(1000);
    // Without a refund the second attempt locks the third.
    for _ in 0..2 {
        assert_eq!(
            s.reserve_login_attempt(&rules("plain"), now).await.unwrap(),
            None
        );
    }
    assert!(
        s.reserve_login_attempt(&rules("plain"), now)
            .await
            .unwrap()
            .is_some()
    );
    // A refunded attempt (a right answer) leaves room for one more.
    assert_eq!(
        s.reserve_login_attempt(&rules("refunded"), now)
            .await
            .unwrap(),
        None
    );
    s.refund_login_attempt(&[account("refunded")])
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            s.reserve_login_attempt(&rules("refunded"), now)
                .await
                .unwrap(),
            None
        );
    }
    assert!(
        s.reserve_login_attempt(&rules("refunded"), now)
            .await
            .unwrap()
            .is_some()
    );
    // A refund never goes below zero, and an unknown key is no error.
    s.refund_login_attempt(&[account("never"), account("never")])
        .await
        .unwrap();
    assert_eq!(
        s.reserve_login_attempt(&rules("never"), now).await.unwrap(),
        None
    );
    assert_eq!(
        s.reserve_login_attempt(&rules("never"), now).await.unwrap(),
        None
    );
    assert!(
        s.reserve_login_attempt(&rules("never"), now)
            .await
            .unwrap()
            .is_some()
    );
}
