//! The revocation log and what it reaches: ordering under concurrency, the token-matching rules
//! of `access_token_revoked`, ending a user's and a session's sign-ins with their back-channel
//! logouts, the log's horizon, and the identity rules (case-insensitive usernames, client ids
//! that never equal user ids, consent per API, scheduled key rotation with one winner).

use std::sync::Arc;

use keycard_protocol::policy::BackchannelLogout;
use keycard_protocol::revocation::RevocationKind;

use super::*;

fn kinds(log: &RevocationLog) -> Vec<(u64, String, String)> {
    log.events
        .iter()
        .map(|e| (e.seq, e.kind.as_str().to_owned(), e.value.clone()))
        .collect()
}

async fn token_revoked<S: Store>(s: &S, user: Option<&str>, client: &str, iat: i64) -> bool {
    let user = user.map(uid);
    s.access_token_revoked(&RevocationQuery {
        jti: &jti("machine-or-other"),
        grant: None,
        user: user.as_ref(),
        client: &cid(client),
        iat: UnixTime(iat),
    })
    .await
    .unwrap()
}

pub async fn revocation_log_is_ordered_and_gap_free_under_concurrency<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    for i in 0..20 {
        s.issue_code(&code(&format!("c{i}"), &format!("g{i}")))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.revoke_grant(&gid(&format!("g{i}")), rv()).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Revoking again, or a token twice, is no new event.
    s.revoke_grant(&gid("g0"), rv()).await.unwrap();
    s.revoke_access_token(&jti("j1"), rv()).await.unwrap();
    s.revoke_access_token(&jti("j1"), rv()).await.unwrap();
    let log = s.revocations_since(0, 100).await.unwrap();
    let seqs: Vec<u64> = log.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=21).collect::<Vec<_>>());
    assert_eq!((log.last, log.oldest), (21, 1));
    let mut granted: Vec<String> = log.events[..20].iter().map(|e| e.value.clone()).collect();
    granted.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("g{i}")).collect();
    want.sort();
    assert_eq!(granted, want);
    assert!(
        log.events[..20]
            .iter()
            .all(|e| e.kind == RevocationKind::Grant)
    );
    assert_eq!(kinds(&log)[20], (21, "jti".into(), "j1".into()));
    assert_eq!(log.events[20].until, UnixTime(10_000));
    // Paging: after a sequence number, and at most `limit`.
    let page = s.revocations_since(19, 1).await.unwrap();
    assert_eq!(
        kinds(&page),
        vec![(20, "grant".into(), page.events[0].value.clone())]
    );
    assert_eq!(page.last, 21);
    assert!(s.revocations_since(21, 10).await.unwrap().events.is_empty());
}

pub async fn revocations_reach_tokens_by_sub_client_and_time<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    s.create_client(&client("m2m"), UnixTime(1)).await.unwrap();
    assert!(!token_revoked(&*s, Some("u-alice"), "app", 50).await);
    // A password change revokes the user's tokens issued until then, not those after it.
    s.set_password(&uname("alice"), &phc("new"), rv())
        .await
        .unwrap();
    assert!(token_revoked(&*s, Some("u-alice"), "app", 100).await);
    assert!(!token_revoked(&*s, Some("u-alice"), "app", 101).await);
    // A machine token's subject is its client: a user event never reaches it.
    assert!(!token_revoked(&*s, None, "m2m", 50).await);
    // A removed client's tokens are all inactive, and stay so if the id is registered again.
    s.remove_client(&cid("m2m"), rv()).await.unwrap();
    assert!(token_revoked(&*s, None, "m2m", 50).await);
    s.create_client(&client("m2m"), UnixTime(200))
        .await
        .unwrap();
    assert!(token_revoked(&*s, None, "m2m", 50).await);
    assert!(!token_revoked(&*s, None, "m2m", 150).await);
    let log = s.revocations_since(0, 10).await.unwrap();
    let k: Vec<(String, String)> = kinds(&log).into_iter().map(|(_, k, v)| (k, v)).collect();
    assert_eq!(
        k,
        vec![
            ("sub".into(), "u-alice".into()),
            ("client".into(), "m2m".into())
        ]
    );
}

fn with_logout(id: &str, session_required: bool) -> Client {
    Client {
        backchannel_logout: Some(
            BackchannelLogout::register(&format!("https://{id}.example.com/bcl"), session_required)
                .unwrap(),
        ),
        ..client(id)
    }
}

fn session(token: &str, sid: &str) -> Session {
    Session {
        id_hash: session_hash(token),
        user_id: uid("u-alice"),
        auth_time: UnixTime(100),
        sid: SessionId::parse(sid).unwrap(),
        expires_at: UnixTime(5_000),
    }
}

fn grant_in(id: &str, client_id: &str, sid: &str, scope: &str) -> Code {
    let mut c = code(&format!("code-{id}"), id);
    c.grant.client_id = cid(client_id);
    c.grant.sid = Some(SessionId::parse(sid).unwrap());
    c.grant.scope = ScopeSet::parse(scope).unwrap();
    c
}

pub async fn user_changes_end_sessions_revoke_grants_and_queue_logouts<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    s.create_client(&with_logout("bcl", false), UnixTime(1))
        .await
        .unwrap();
    s.create_session(&session("sess-1", "s1")).await.unwrap();
    s.issue_code(&grant_in("gb", "bcl", "s1", "openid offline_access"))
        .await
        .unwrap();
    s.redeem_code(&code_hash("code-gb"), Some(&rt("r-gb", "gb")), &at("gb"))
        .await
        .unwrap();
    s.issue_code(&grant_in("ga", "app", "s1", "openid"))
        .await
        .unwrap();
    s.set_user_disabled(&uname("alice"), true, rv())
        .await
        .unwrap();
    assert_eq!(
        s.session(&session_hash("sess-1"), UnixTime(150))
            .await
            .unwrap(),
        None
    );
    assert!(
        s.refresh_token(&rt_hash("r-gb"))
            .await
            .unwrap()
            .unwrap()
            .grant_revoked
    );
    let due = s.due_logout_deliveries(UnixTime(100), 10).await.unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(
        (
            due[0].client_id.as_str(),
            due[0].uri.as_str(),
            due[0].sub.as_str()
        ),
        ("bcl", "https://bcl.example.com/bcl", "u-alice")
    );
    assert_eq!(due[0].sid.as_deref(), Some("s1"));
    // Enabling revives nothing.
    s.set_user_disabled(&uname("alice"), false, rv())
        .await
        .unwrap();
    assert!(
        s.refresh_token(&rt_hash("r-gb"))
            .await
            .unwrap()
            .unwrap()
            .grant_revoked
    );
    // One of several nodes takes a due delivery; taken, it is not due until the lease ends.
    let id = due[0].id.clone();
    let mut claims = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        let id = id.clone();
        claims.push(tokio::spawn(async move {
            s.claim_logout_delivery(&id, UnixTime(100), UnixTime(160))
                .await
        }));
    }
    let mut taken = 0;
    for c in claims {
        taken += usize::from(c.await.unwrap().unwrap());
    }
    assert_eq!(taken, 1);
    assert!(
        s.due_logout_deliveries(UnixTime(159), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A delivery that failed is due again at its retry time; a delivered one never again.
    let failed = DeliveryOutcome::Failed {
        error: "connection refused".into(),
        retry_at: UnixTime(130),
    };
    s.finish_logout_delivery(&id, &failed).await.unwrap();
    assert_eq!(
        s.list_logout_deliveries(10).await.unwrap()[0].status(),
        DeliveryStatus::Pending {
            next_attempt_at: UnixTime(130)
        }
    );
    assert!(
        s.due_logout_deliveries(UnixTime(129), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.due_logout_deliveries(UnixTime(130), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    s.finish_logout_delivery(&id, &DeliveryOutcome::Delivered { at: UnixTime(131) })
        .await
        .unwrap();
    assert!(
        s.due_logout_deliveries(UnixTime(10_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let listed = s.list_logout_deliveries(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].attempts, listed[0].status()),
        (2, DeliveryStatus::Delivered { at: UnixTime(131) })
    );
}

pub async fn end_session_revokes_its_short_grants_and_queues_logouts<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    s.create_client(&with_logout("bcl", true), UnixTime(1))
        .await
        .unwrap();
    s.create_session(&session("sess-1", "s1")).await.unwrap();
    s.create_session(&session("sess-2", "s2")).await.unwrap();
    s.issue_code(&grant_in("g-short", "bcl", "s1", "openid"))
        .await
        .unwrap();
    s.issue_code(&grant_in("g-long", "app", "s1", "openid offline_access"))
        .await
        .unwrap();
    s.issue_code(&grant_in("g-other", "bcl", "s2", "openid"))
        .await
        .unwrap();
    let ended = s.end_session(&session_hash("sess-1"), rv()).await.unwrap();
    assert_eq!(ended.map(|e| e.sid.to_string()).as_deref(), Some("s1"));
    assert_eq!(
        s.session(&session_hash("sess-1"), UnixTime(150))
            .await
            .unwrap(),
        None
    );
    assert!(
        s.session(&session_hash("sess-2"), UnixTime(150))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        revoked(&*s, "g-short.j", Some("g-short"), None)
            .await
            .unwrap()
    );
    assert!(
        !revoked(&*s, "g-long.j", Some("g-long"), None)
            .await
            .unwrap()
    );
    assert!(
        !revoked(&*s, "g-other.j", Some("g-other"), None)
            .await
            .unwrap()
    );
    let due = s.due_logout_deliveries(UnixTime(100), 10).await.unwrap();
    let sent: Vec<(&str, Option<&str>)> = due
        .iter()
        .map(|d| (d.client_id.as_str(), d.sid.as_deref()))
        .collect();
    assert_eq!(sent, vec![("bcl", Some("s1"))]);
    // A delivery given up is never due again, and says so.
    let gave_up = DeliveryOutcome::GaveUp {
        error: "answered HTTP 500".into(),
    };
    s.finish_logout_delivery(&due[0].id, &gave_up)
        .await
        .unwrap();
    assert!(
        s.due_logout_deliveries(UnixTime(i64::MAX - 1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let listed = s.list_logout_deliveries(10).await.unwrap();
    assert_eq!(
        (
            listed[0].status(),
            listed[0].attempts,
            listed[0].last_error.as_deref()
        ),
        (DeliveryStatus::GaveUp, 1, Some("answered HTTP 500"))
    );
    let log = s.revocations_since(0, 10).await.unwrap();
    let k: Vec<(String, String)> = kinds(&log).into_iter().map(|(_, k, v)| (k, v)).collect();
    assert_eq!(
        k,
        vec![
            ("grant".into(), "g-short".into()),
            ("sid".into(), "s1".into())
        ]
    );
    // Ending a session that is already gone changes nothing.
    assert_eq!(
        s.end_session(&session_hash("sess-1"), rv()).await.unwrap(),
        None
    );
}

pub async fn expired_revocations_are_purged_and_leave_a_visible_gap<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    let short = Revocation {
        at: UnixTime(100),
        until: UnixTime(200),
    };
    s.revoke_access_token(&jti("a"), short).await.unwrap();
    s.revoke_access_token(&jti("b"), short).await.unwrap();
    s.revoke_access_token(&jti("c"), rv()).await.unwrap();
    s.purge_expired(UnixTime(300)).await.unwrap();
    let log = s.revocations_since(0, 10).await.unwrap();
    assert_eq!(kinds(&log), vec![(3, "jti".into(), "c".into())]);
    // A consumer that had seen only event 1 finds that 2 is gone.
    assert_eq!((log.last, log.oldest), (3, 3));
    s.purge_expired(UnixTime(20_000)).await.unwrap();
    let log = s.revocations_since(3, 10).await.unwrap();
    assert_eq!((log.last, log.oldest, log.events.len()), (3, 4, 0));
}

pub async fn usernames_are_unique_and_found_without_regard_to_case<S: Store>(s: Arc<S>) {
    s.create_user(&user("Alice")).await.unwrap();
    let mut twin = user("alice");
    twin.id = uid("u-twin");
    assert!(matches!(
        s.create_user(&twin).await,
        Err(StoreError::Conflict)
    ));
    let found = s.user_by_username(&uname("ALICE")).await.unwrap().unwrap();
    assert_eq!(found.username.as_str(), "Alice");
    s.set_password(&uname("aLiCe"), &phc("h2"), rv())
        .await
        .unwrap();
    let found = s.user_by_username(&uname("alice")).await.unwrap().unwrap();
    assert_eq!(found.password_hash, phc("h2"));
}

pub async fn client_ids_never_equal_user_ids<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    assert!(matches!(
        s.create_client(&client("u-alice"), UnixTime(1)).await,
        Err(StoreError::Conflict)
    ));
    let mut named_like_client = user("mallory");
    named_like_client.id = uid("app");
    assert!(matches!(
        s.create_user(&named_like_client).await,
        Err(StoreError::Conflict)
    ));
}

pub async fn consent_is_remembered_per_api<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    let photos = aud("https://api.example.com");
    let bank = aud("https://bank.example.com");
    let scope = ScopeSet::parse("photos:read").unwrap();
    s.record_consent(&uid("u-alice"), &cid("app"), Some(&photos), &scope)
        .await
        .unwrap();
    assert_eq!(
        s.consent(&uid("u-alice"), &cid("app"), Some(&photos))
            .await
            .unwrap(),
        Some(scope)
    );
    assert_eq!(
        s.consent(&uid("u-alice"), &cid("app"), Some(&bank))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.consent(&uid("u-alice"), &cid("app"), None).await.unwrap(),
        None
    );
}

fn key(kid: &str, state: KeyState, activated: Option<i64>) -> StoredKey {
    StoredKey {
        kid: Kid::parse(kid).unwrap(),
        alg: "ES256".into(),
        private_key_enc: vec![1],
        state,
        created_at: UnixTime(1),
        retire_until: None,
        activated_at: activated.map(UnixTime),
    }
}

pub async fn scheduled_rotation_has_one_winner_and_revoked_keys_go_at_once<S: Store>(s: Arc<S>) {
    s.insert_key(&key("k1", KeyState::Active, Some(10)))
        .await
        .unwrap();
    s.insert_key(&key("k2", KeyState::Next, None))
        .await
        .unwrap();
    let now = Revocation {
        at: UnixTime(1_000),
        until: UnixTime(5_000),
    };
    // Not due yet: active since 10, rotation after 1,000 seconds.
    let k3 = key("k3", KeyState::Next, None);
    assert!(
        !s.rotate_keys(&k3, UnixTime(5_000), Some(1_000), now)
            .await
            .unwrap()
    );
    let later = Revocation {
        at: UnixTime(1_010),
        until: UnixTime(5_000),
    };
    let mut tasks = Vec::new();
    for i in 0..5 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let k = key(&format!("n{i}"), KeyState::Next, None);
            s.rotate_keys(&k, UnixTime(5_000), Some(1_000), later).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap().unwrap());
    }
    assert_eq!(won, 1);
    let keys = s.signing_keys().await.unwrap();
    let active: Vec<_> = keys
        .iter()
        .filter(|k| k.state == KeyState::Active)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(
        (active[0].kid.as_str(), active[0].activated_at),
        ("k2", Some(UnixTime(1_010)))
    );
    assert_eq!(keys.iter().filter(|k| k.state == KeyState::Next).count(), 1);
    // An emergency revocation of the active key: the next one signs, a replacement is published.
    let replacement = key("r1", KeyState::Next, None);
    s.revoke_key(&Kid::parse("k2").unwrap(), &replacement, later)
        .await
        .unwrap();
    let keys = s.signing_keys().await.unwrap();
    assert!(keys.iter().all(|k| k.kid.as_str() != "k2"));
    assert_eq!(
        keys.iter().filter(|k| k.state == KeyState::Active).count(),
        1
    );
    assert!(
        keys.iter()
            .any(|k| k.kid.as_str() == "r1" && k.state == KeyState::Next)
    );
    assert!(matches!(
        s.revoke_key(&Kid::parse("k2").unwrap(), &replacement, later)
            .await,
        Err(StoreError::NotFound)
    ));
    let log = s.revocations_since(0, 10).await.unwrap();
    let k: Vec<String> = log
        .events
        .iter()
        .map(|e| e.kind.as_str().to_owned())
        .collect();
    assert_eq!(k, vec!["jwks", "kid", "jwks"]);
    assert_eq!(log.events[1].value, "k2");
}

pub async fn grants_keep_their_absolute_end<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    let mut c = code("c1", "g1");
    c.grant.expires_at = Some(UnixTime(9_000));
    s.issue_code(&c).await.unwrap();
    s.redeem_code(&code_hash("c1"), Some(&rt("r1", "g1")), &at("g1"))
        .await
        .unwrap();
    let stored = s.refresh_token(&rt_hash("r1")).await.unwrap().unwrap();
    assert_eq!(stored.grant.expires_at, Some(UnixTime(9_000)));
}
