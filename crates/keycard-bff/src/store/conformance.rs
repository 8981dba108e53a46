//! The conformance suite every [`BffStore`] passes: SQLite always, PostgreSQL when
//! `KEYCARD_TEST_PG_URL` is set, and any store an application writes itself.
//!
//! Each `check_*` takes a fresh store; [`bff_store_conformance_tests!`](crate::bff_store_conformance_tests)
//! turns each into a named `#[tokio::test]` for a constructor. The checks: sessions expire by
//! the `now` passed in (idle and absolute); a login is taken exactly once by 16 concurrent
//! takers; a logout-token `jti` is recorded once; back-channel matching by `sid`, `sub` or
//! both ends exactly the matching sessions of that issuer; `refresh_session` re-reads under its
//! lock, so eight concurrent refreshes of one session replace its tokens exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keycard_protocol::{Issuer, Jti, SecretHash, SessionId, Subject, UnixTime};

use super::{
    BffStore, LoginRecord, Profile, RefreshDecision, SessionHash, SessionRecord, TokenUpdate,
};

/// Makes one `#[tokio::test]` per check, each with a store from `$ctor` (an async expression).
#[macro_export]
macro_rules! bff_store_conformance_tests {
    ($ctor:expr) => {
        $crate::bff_store_conformance_tests!(@each $ctor,
            check_session_expiry,
            check_delete_session,
            check_end_sessions,
            check_take_login_once,
            check_logout_jti_once,
            check_refresh_decisions,
            check_refresh_single_flight,
            check_purge_expired,
        );
    };
    (@each $ctor:expr, $($name:ident,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(store) = $ctor.await else { return };
            $crate::store::conformance::$name(store).await;
        }
    )*};
}

const T0: i64 = 1_800_000_000;

fn hash(n: u8) -> SessionHash {
    SecretHash::from_bytes([n; 32])
}

fn issuer(s: &str) -> Issuer {
    Issuer::from_wire(s).unwrap()
}

/// A session of `sub` at `iss` with `sid`, live from T0 for 100 s (idle) and 1000 s (absolute).
pub fn session(n: u8, iss: &str, sub: &str, sid: Option<&str>) -> SessionRecord {
    SessionRecord {
        id: hash(n),
        issuer: issuer(iss),
        sub: Subject::parse(sub).unwrap(),
        sid: sid.map(|s| SessionId::parse(s).unwrap()),
        profile: Profile {
            name: Some("Alice Example".into()),
            email: None,
        },
        tokens: vec![n, 1, 2, 3],
        generation: 0,
        access_expires_at: UnixTime(T0 + 60),
        created_at: UnixTime(T0),
        idle_expires_at: UnixTime(T0 + 100),
        expires_at: UnixTime(T0 + 1000),
    }
}

pub async fn check_session_expiry(store: Arc<dyn BffStore>) {
    let s = session(1, "https://op.example.com", "alice", Some("s1"));
    store.create_session(&s).await.unwrap();
    assert_eq!(
        store.session(&s.id, UnixTime(T0)).await.unwrap(),
        Some(s.clone())
    );
    assert!(matches!(
        store.create_session(&s).await,
        Err(super::BffStoreError::Conflict)
    ));
    // Idle timeout, unless touched; a touch never moves the idle expiry back.
    assert_eq!(
        store.session(&s.id, UnixTime(T0 + 100)).await.unwrap(),
        None
    );
    store
        .touch_session(&s.id, UnixTime(T0 + 200))
        .await
        .unwrap();
    store
        .touch_session(&s.id, UnixTime(T0 + 150))
        .await
        .unwrap();
    let live = store
        .session(&s.id, UnixTime(T0 + 199))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.idle_expires_at, UnixTime(T0 + 200));
    // Absolute timeout, whatever the touches.
    store
        .touch_session(&s.id, UnixTime(T0 + 5000))
        .await
        .unwrap();
    assert!(
        store
            .session(&s.id, UnixTime(T0 + 999))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.session(&s.id, UnixTime(T0 + 1000)).await.unwrap(),
        None
    );
    assert_eq!(store.session(&hash(9), UnixTime(T0)).await.unwrap(), None);
}

pub async fn check_delete_session(store: Arc<dyn BffStore>) {
    let s = session(1, "https://op.example.com", "alice", None);
    store.create_session(&s).await.unwrap();
    assert_eq!(store.delete_session(&s.id).await.unwrap(), Some(s.clone()));
    assert_eq!(store.delete_session(&s.id).await.unwrap(), None);
    assert_eq!(store.session(&s.id, UnixTime(T0)).await.unwrap(), None);
}

pub async fn check_end_sessions(store: Arc<dyn BffStore>) {
    let op = "https://op.example.com";
    let other = "https://other.example.com";
    let rows = [
        session(1, op, "alice", Some("s1")),
        session(2, op, "alice", Some("s2")),
        session(3, op, "bob", Some("s1")),
        session(4, other, "alice", Some("s1")),
        session(5, op, "alice", None),
    ];
    for s in &rows {
        store.create_session(s).await.unwrap();
    }
    let alice = Subject::parse("alice").unwrap();
    let s1 = SessionId::parse("s1").unwrap();
    let live = |n: u8| {
        let store = store.clone();
        async move {
            store
                .session(&hash(n), UnixTime(T0))
                .await
                .unwrap()
                .is_some()
        }
    };
    // sub and sid together: only that session of that user at that issuer.
    assert_eq!(
        store
            .end_sessions(&issuer(op), Some(&alice), Some(&s1))
            .await
            .unwrap(),
        1
    );
    assert!(!live(1).await && live(2).await && live(3).await && live(4).await);
    // sid alone: every session with it at that issuer.
    assert_eq!(
        store
            .end_sessions(&issuer(op), None, Some(&s1))
            .await
            .unwrap(),
        1
    );
    assert!(!live(3).await && live(4).await);
    // sub alone: every session of the user at that issuer.
    assert_eq!(
        store
            .end_sessions(&issuer(op), Some(&alice), None)
            .await
            .unwrap(),
        2
    );
    assert!(!live(2).await && !live(5).await && live(4).await);
    assert_eq!(
        store.end_sessions(&issuer(op), None, None).await.unwrap(),
        0
    );
}

pub async fn check_take_login_once(store: Arc<dyn BffStore>) {
    let login = LoginRecord {
        id: SecretHash::from_bytes([7; 32]),
        sealed: vec![1, 2, 3],
        expires_at: UnixTime(T0 + 600),
    };
    store.put_login(&login).await.unwrap();
    let takers: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            let id = login.id;
            tokio::spawn(async move { store.take_login(&id, UnixTime(T0)).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for t in takers {
        if let Some(l) = t.await.unwrap() {
            assert_eq!(l, login);
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one of 16 concurrent takers gets the login");
    // An expired login is gone, not returned.
    let late = LoginRecord {
        id: SecretHash::from_bytes([8; 32]),
        ..login.clone()
    };
    store.put_login(&late).await.unwrap();
    assert_eq!(
        store
            .take_login(&late.id, UnixTime(T0 + 600))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.take_login(&late.id, UnixTime(T0)).await.unwrap(),
        None
    );
}

pub async fn check_logout_jti_once(store: Arc<dyn BffStore>) {
    let jti = Jti::parse("j-1").unwrap();
    let op = issuer("https://op.example.com");
    let until = UnixTime(T0 + 120);
    assert!(store.record_logout_jti(&op, &jti, until).await.unwrap());
    assert!(!store.record_logout_jti(&op, &jti, until).await.unwrap());
    let other = issuer("https://other.example.com");
    assert!(store.record_logout_jti(&other, &jti, until).await.unwrap());
}

pub async fn check_refresh_decisions(store: Arc<dyn BffStore>) {
    let s = session(1, "https://op.example.com", "alice", None);
    store.create_session(&s).await.unwrap();
    let now = UnixTime(T0);
    let kept = store
        .refresh_session(
            &s.id,
            now,
            Box::new(|_| Box::pin(async { RefreshDecision::Keep })),
        )
        .await
        .unwrap();
    assert_eq!(kept, Some(s.clone()));
    let update = TokenUpdate {
        tokens: vec![9, 9],
        access_expires_at: UnixTime(T0 + 120),
    };
    let u = update.clone();
    let replaced = store
        .refresh_session(
            &s.id,
            now,
            Box::new(move |_| Box::pin(async move { RefreshDecision::Replace(u) })),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (replaced.generation, replaced.tokens.clone()),
        (1, vec![9, 9])
    );
    assert_eq!(store.session(&s.id, now).await.unwrap(), Some(replaced));
    // An expired session is not offered to the caller at all.
    let called = Arc::new(AtomicUsize::new(0));
    let c = called.clone();
    let late = store
        .refresh_session(
            &s.id,
            UnixTime(T0 + 1000),
            Box::new(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
                Box::pin(async { RefreshDecision::Keep })
            }),
        )
        .await
        .unwrap();
    assert_eq!((late, called.load(Ordering::SeqCst)), (None, 0));
    let ended = store
        .refresh_session(
            &s.id,
            now,
            Box::new(|_| Box::pin(async { RefreshDecision::End })),
        )
        .await
        .unwrap();
    assert_eq!(ended, None);
    assert_eq!(store.session(&s.id, now).await.unwrap(), None);
}

pub async fn check_refresh_single_flight(store: Arc<dyn BffStore>) {
    let s = session(1, "https://op.example.com", "alice", None);
    store.create_session(&s).await.unwrap();
    let replaced = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, replaced) = (store.clone(), replaced.clone());
            tokio::spawn(async move {
                store
                    .refresh_session(
                        &hash(1),
                        UnixTime(T0),
                        Box::new(move |current| {
                            Box::pin(async move {
                                if current.generation > 0 {
                                    return RefreshDecision::Keep;
                                }
                                // Hold the lock a while, as a refresh request would.
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                replaced.fetch_add(1, Ordering::SeqCst);
                                RefreshDecision::Replace(TokenUpdate {
                                    tokens: vec![2],
                                    access_expires_at: UnixTime(T0 + 120),
                                })
                            })
                        }),
                    )
                    .await
                    .unwrap()
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().generation, 1);
    }
    assert_eq!(replaced.load(Ordering::SeqCst), 1);
}

pub async fn check_purge_expired(store: Arc<dyn BffStore>) {
    let s = session(1, "https://op.example.com", "alice", None);
    store.create_session(&s).await.unwrap();
    store
        .create_session(&session(2, "https://op.example.com", "bob", None))
        .await
        .unwrap();
    store
        .touch_session(&hash(2), UnixTime(T0 + 500))
        .await
        .unwrap();
    let op = issuer("https://op.example.com");
    let jti = Jti::parse("j").unwrap();
    store
        .record_logout_jti(&op, &jti, UnixTime(T0 + 120))
        .await
        .unwrap();
    store
        .put_login(&LoginRecord {
            id: SecretHash::from_bytes([3; 32]),
            sealed: vec![],
            expires_at: UnixTime(T0 + 120),
        })
        .await
        .unwrap();
    // Session 1 is idle at T0 + 100; the jti and the login expire at T0 + 120.
    assert_eq!(store.purge_expired(UnixTime(T0 + 150)).await.unwrap(), 3);
    assert!(
        store
            .session(&hash(2), UnixTime(T0 + 150))
            .await
            .unwrap()
            .is_some()
    );
    // The jti is forgotten, so recording it again succeeds.
    assert!(
        store
            .record_logout_jti(&op, &jti, UnixTime(T0 + 300))
            .await
            .unwrap()
    );
}
