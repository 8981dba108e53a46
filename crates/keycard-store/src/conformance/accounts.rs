//! Users, clients, APIs, sessions, transactions, consent, keys and login throttling.

use std::sync::Arc;

use super::*;

pub async fn users_round_trip_with_unicode<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    let got = s.user_by_username(&uname("alice")).await.unwrap().unwrap();
    assert_eq!(got, user("alice"));
    assert_eq!(
        s.user_by_id(&uid("u-alice"))
            .await
            .unwrap()
            .unwrap()
            .username,
        "alice"
    );
    assert!(matches!(
        s.create_user(&user("alice")).await,
        Err(StoreError::Conflict)
    ));
    s.create_user(&user("бob")).await.unwrap();
    assert_eq!(s.list_users().await.unwrap().len(), 2);
    s.set_user_disabled(&uname("alice"), true, rv())
        .await
        .unwrap();
    assert!(
        s.user_by_username(&uname("alice"))
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    s.set_password(&uname("alice"), &phc("new-hash"), rv())
        .await
        .unwrap();
    assert_eq!(
        s.user_by_username(&uname("alice"))
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        phc("new-hash")
    );
    s.remove_user(&uname("бob"), rv()).await.unwrap();
    assert!(s.user_by_username(&uname("бob")).await.unwrap().is_none());
    assert!(matches!(
        s.remove_user(&uname("nobody"), rv()).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn clients_and_apis_round_trip<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    let c = s.client(&cid("app")).await.unwrap().unwrap();
    assert_eq!(c.redirect_uris, client("app").redirect_uris);
    assert_eq!(c.grant_types, client("app").grant_types);
    assert_eq!(c.scopes, client("app").scopes);
    assert!(
        c.secret_hash
            .unwrap()
            .ct_eq(&ClientSecret::parse("secret").unwrap().hash())
    );
    assert!(matches!(
        s.create_client(&client("app"), UnixTime(1)).await,
        Err(StoreError::Conflict)
    ));
    let api = Api {
        identifier: aud("https://api.example.com"),
        name: "API".into(),
        scopes: ScopeSet::parse("read write").unwrap(),
        access_token_ttl_secs: 600,
    };
    s.create_api(&api, UnixTime(1)).await.unwrap();
    let got = s
        .api(&aud("https://api.example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.scopes, got.access_token_ttl_secs),
        (api.scopes.clone(), 600)
    );
    assert_eq!(s.list_apis().await.unwrap().len(), 1);
    s.remove_client(&cid("app"), rv()).await.unwrap();
    assert!(s.client(&cid("app")).await.unwrap().is_none());
    assert_eq!(s.list_clients().await.unwrap().len(), 0);
}

pub async fn sessions_and_txns_expire_by_the_given_time<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    let sess = Session {
        id_hash: session_hash("sess"),
        user_id: uid("u-alice"),
        auth_time: UnixTime(100),
        sid: SessionId::parse("sid").unwrap(),
        expires_at: UnixTime(200),
    };
    s.create_session(&sess).await.unwrap();
    assert_eq!(
        s.session(&sess.id_hash, UnixTime(199)).await.unwrap(),
        Some(sess.clone())
    );
    assert_eq!(s.session(&sess.id_hash, UnixTime(200)).await.unwrap(), None);
    let req = AuthorizeRequest {
        client_id: cid("app"),
        redirect_uri: RedirectUri::parse("http://127.0.0.1:8123/cb").unwrap(),
        redirect_uri_sent: true,
        state: Some(State::parse("s\u{0}t\"ate").unwrap()),
        nonce: None,
        scope: ScopeSet::parse("openid").unwrap(),
        audience: None,
        code_challenge: CodeChallenge::from_stored("x".into()),
        prompt: Prompt::default(),
        max_age: None,
        login_hint: None,
    };
    let t = AuthTxn {
        id_hash: TransactionId::parse("txn").unwrap().hash(),
        request: req,
        csrf_hash: CsrfToken::parse("csrf").unwrap().hash(),
        authenticated_user: None,
        expires_at: UnixTime(150),
    };
    s.create_txn(&t).await.unwrap();
    assert_eq!(
        s.txn(&t.id_hash, UnixTime(149)).await.unwrap(),
        Some(t.clone())
    );
    s.set_txn_authenticated(&t.id_hash, &uid("u-alice"))
        .await
        .unwrap();
    assert_eq!(
        s.txn(&t.id_hash, UnixTime(149))
            .await
            .unwrap()
            .unwrap()
            .authenticated_user,
        Some(uid("u-alice"))
    );
    assert_eq!(s.txn(&t.id_hash, UnixTime(150)).await.unwrap(), None);
    s.delete_txn(&t.id_hash).await.unwrap();
    assert_eq!(s.txn(&t.id_hash, UnixTime(1)).await.unwrap(), None);
    assert_eq!(
        s.consent(&uid("u-alice"), &cid("app"), None).await.unwrap(),
        None
    );
    let scope = ScopeSet::parse("openid email").unwrap();
    s.record_consent(&uid("u-alice"), &cid("app"), None, &scope)
        .await
        .unwrap();
    s.record_consent(&uid("u-alice"), &cid("app"), None, &scope)
        .await
        .unwrap();
    assert_eq!(
        s.consent(&uid("u-alice"), &cid("app"), None).await.unwrap(),
        Some(scope)
    );
    // Changing the password ends the user's sessions.
    s.set_password(&uname("alice"), &phc("h"), rv())
        .await
        .unwrap();
    assert_eq!(s.session(&sess.id_hash, UnixTime(150)).await.unwrap(), None);
}

pub async fn key_rotation_states<S: Store>(s: Arc<S>) {
    let key = |kid: &str, state| StoredKey {
        kid: Kid::parse(kid).unwrap(),
        alg: "ES256".into(),
        private_key_enc: vec![1, 2, 3],
        state,
        created_at: UnixTime(1),
        retire_until: None,
        activated_at: None,
    };
    s.insert_key(&key("k1", KeyState::Active)).await.unwrap();
    s.insert_key(&key("k2", KeyState::Next)).await.unwrap();
    s.rotate_keys(&key("k3", KeyState::Next), UnixTime(5000), None, rv())
        .await
        .unwrap();
    let mut keys = s.signing_keys().await.unwrap();
    keys.sort_by(|a, b| a.kid.cmp(&b.kid));
    let states: Vec<_> = keys
        .iter()
        .map(|k| (k.kid.as_str(), k.state, k.retire_until))
        .collect();
    assert_eq!(
        states,
        vec![
            ("k1", KeyState::Retired, Some(UnixTime(5000))),
            ("k2", KeyState::Active, None),
            ("k3", KeyState::Next, None)
        ]
    );
    assert_eq!(keys[0].private_key_enc, vec![1, 2, 3]);
    // Retired keys go once their last token has expired.
    s.purge_expired(UnixTime(5000)).await.unwrap();
    assert_eq!(s.signing_keys().await.unwrap().len(), 2);
}

pub async fn login_failures_count_atomically_and_lock<S: Store>(s: Arc<S>) {
    fn policy(failures: i64) -> i64 {
        if failures >= 10 { 60 } else { 0 }
    }
    fn five(failures: i64) -> i64 {
        if failures >= 5 { 5 } else { 0 }
    }
    let rule = |key: ThrottleKey, policy: fn(i64) -> i64| ThrottleRule {
        key,
        policy,
        only_if_failed: None,
    };
    let now = UnixTime(1000);
    let mut tasks = Vec::new();
    for _ in 0..9 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let rules = [rule(account("alice"), policy)];
            s.reserve_login_attempt(&rules, now).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), None);
    }
    let alice = [rule(account("alice"), policy)];
    // The tenth attempt is still allowed, and locks the key for the ones after it.
    assert_eq!(s.reserve_login_attempt(&alice, now).await.unwrap(), None);
    assert_eq!(
        s.reserve_login_attempt(&alice, now).await.unwrap(),
        Some(60)
    );
    let bob = [rule(account("bob"), policy)];
    assert_eq!(s.reserve_login_attempt(&bob, now).await.unwrap(), None);
    // Several keys: the longest lock answers, and nothing is counted.
    let both = [rule(account("bob"), policy), rule(account("alice"), policy)];
    assert_eq!(
        s.reserve_login_attempt(&both, UnixTime(1030))
            .await
            .unwrap(),
        Some(30)
    );
    s.clear_login_failures(&account("alice")).await.unwrap();
    assert_eq!(s.reserve_login_attempt(&alice, now).await.unwrap(), None);

    // Parallel attempts cannot walk past a limit: of 50 at once, exactly five are let through.
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.reserve_login_attempt(&[rule(account("carol"), five)], now)
                .await
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().is_none() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);

    // A lock that an address with no failures for the account still passes.
    let pair = |a: &str| ThrottleKey::other('p', &format!("dave {a}"));
    let global = |a: &str| ThrottleRule {
        key: account("dave"),
        policy: five,
        only_if_failed: Some(pair(a)),
    };
    for _ in 0..5 {
        let rules = [rule(pair("10.0.0.1"), policy), global("10.0.0.1")];
        assert_eq!(s.reserve_login_attempt(&rules, now).await.unwrap(), None);
    }
    let attacker = [rule(pair("10.0.0.1"), policy), global("10.0.0.1")];
    assert_eq!(
        s.reserve_login_attempt(&attacker, now).await.unwrap(),
        Some(5)
    );
    let clean = [rule(pair("10.0.0.2"), policy), global("10.0.0.2")];
    assert_eq!(s.reserve_login_attempt(&clean, now).await.unwrap(), None);
    // Once it has failed there too, the account's lock applies to that address as well.
    assert_eq!(s.reserve_login_attempt(&clean, now).await.unwrap(), Some(5));
}
