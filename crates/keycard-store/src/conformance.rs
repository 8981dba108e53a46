//! The store conformance suite: checks every backend must pass, generic over [`Store`].
#![allow(clippy::unwrap_used, clippy::panic)]
//!
//! Each backend's test module calls [`store_conformance_tests!`] with an async constructor, which
//! expands to one named `#[tokio::test]` per check (the rustls per-provider pattern).

use std::sync::Arc;

use keycard_protocol::authorize::AuthorizeRequest;
use keycard_protocol::pkce::CodeChallenge;
use keycard_protocol::policy::{Api, Client, GrantType};
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::{
    Audience, AuthorizationCode, ClientId, ClientSecret, CsrfToken, GrantId, Jti, Kid, Prompt,
    RefreshToken, ScopeSet, SecretHash, SessionId, SessionToken, State, TransactionId, UnixTime,
    UserId, Username, kind,
};

use crate::*;

/// Expands to one test per check for a backend constructor `async fn() -> Option<S>`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($ctor:path) => {
        $crate::store_conformance_tests!(@each $ctor,
            users_round_trip_with_unicode,
            clients_and_apis_round_trip,
            code_is_redeemed_once_under_16_concurrent_redemptions,
            refresh_rotation_has_one_winner_under_20_concurrent_uses,
            mixed_concurrent_redemptions_each_have_one_winner,
            revoked_grant_reaches_refresh_and_access_tokens,
            sessions_and_txns_expire_by_the_given_time,
            key_rotation_states,
            login_failures_count_atomically_and_lock,
            purge_removes_only_expired_rows
        );
    };
    (@each $ctor:path, $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                // A constructor returns `None` when its backend is not configured here (the
                // PostgreSQL URL is unset); the skip is printed, never silent.
                let Some(store) = $ctor().await else {
                    eprintln!("SKIPPED {}: backend not configured", stringify!($name));
                    return;
                };
                $crate::conformance::$name(std::sync::Arc::new(store)).await;
            }
        )*
    };
}

// Typed values for the checks below; every literal is valid, so parsing cannot fail.
fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}
fn uname(s: &str) -> Username {
    Username::parse(s).unwrap()
}
fn cid(s: &str) -> ClientId {
    ClientId::parse(s).unwrap()
}
fn gid(s: &str) -> GrantId {
    GrantId::parse(s).unwrap()
}
fn jti(s: &str) -> Jti {
    Jti::parse(s).unwrap()
}
fn aud(s: &str) -> Audience {
    Audience::parse(s).unwrap()
}
fn code_hash(s: &str) -> SecretHash<kind::AuthorizationCode> {
    AuthorizationCode::parse(s).unwrap().hash()
}
fn rt_hash(s: &str) -> SecretHash<kind::RefreshToken> {
    RefreshToken::parse(s).unwrap().hash()
}
fn session_hash(s: &str) -> SecretHash<kind::SessionToken> {
    SessionToken::parse(s).unwrap().hash()
}
fn phc(s: &str) -> PasswordHash {
    PasswordHash::from_phc(s.to_owned())
}
fn account(s: &str) -> ThrottleKey {
    ThrottleKey::account(s)
}
fn ip(s: &str) -> ThrottleKey {
    ThrottleKey::address(&s.parse().unwrap())
}

fn user(name: &str) -> User {
    User {
        id: uid(&format!("u-{name}")),
        username: uname(name),
        password_hash: phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        name: Some("Zoë 🦀 <b>".into()),
        given_name: None,
        family_name: None,
        picture: None,
        email: Some(format!("{name}@example.com")),
        email_verified: true,
        disabled: false,
        created_at: UnixTime(1),
    }
}

fn client(id: &str) -> Client {
    Client {
        id: cid(id),
        name: format!("App {id}"),
        secret_hash: Some(ClientSecret::parse("secret").unwrap().hash()),
        redirect_uris: vec![RedirectUri::from_stored(
            "https://app.example.com/cb".into(),
        )],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: ScopeSet::parse("openid offline_access read").unwrap_or_default(),
        audiences: vec![aud("https://api.example.com")],
        first_party: true,
    }
}

fn grant(id: &str, user_id: &str) -> Grant {
    Grant {
        id: gid(id),
        client_id: cid("app"),
        user_id: uid(user_id),
        scope: ScopeSet::parse("openid offline_access").unwrap_or_default(),
        audience: None,
        auth_time: UnixTime(100),
        sid: Some(SessionId::parse("sid-1").unwrap()),
        nonce: Some(keycard_protocol::Nonce::parse("n").unwrap()),
        created_at: UnixTime(100),
    }
}

fn code(secret: &str, grant_id: &str) -> Code {
    Code {
        hash: code_hash(secret),
        grant: grant(grant_id, "u-alice"),
        redirect_uri: RedirectUri::parse("https://app.example.com/cb").unwrap(),
        redirect_uri_sent: true,
        code_challenge: CodeChallenge::from_stored(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        ),
        expires_at: UnixTime(160),
        used: false,
    }
}

fn at(grant_id: &str) -> AccessTokenRecord {
    AccessTokenRecord {
        grant_id: gid(grant_id),
        expires_at: UnixTime(1000),
    }
}

fn rt(secret: &str, grant_id: &str) -> NewRefreshToken {
    NewRefreshToken {
        hash: rt_hash(secret),
        grant_id: gid(grant_id),
        scope: ScopeSet::parse("openid offline_access").unwrap_or_default(),
        expires_at: UnixTime(10_000),
    }
}

async fn setup<S: Store>(s: &S) {
    s.create_user(&user("alice"))
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    s.create_client(&client("app"), UnixTime(1))
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
}

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
    s.set_user_disabled(&uname("alice"), true).await.unwrap();
    assert!(
        s.user_by_username(&uname("alice"))
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    s.set_password(&uname("alice"), &phc("new-hash"))
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
    s.remove_user(&uname("бob")).await.unwrap();
    assert!(s.user_by_username(&uname("бob")).await.unwrap().is_none());
    assert!(matches!(
        s.remove_user(&uname("nobody")).await,
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
    s.remove_client(&cid("app")).await.unwrap();
    assert!(s.client(&cid("app")).await.unwrap().is_none());
    assert_eq!(s.list_clients().await.unwrap().len(), 0);
}

pub async fn code_is_redeemed_once_under_16_concurrent_redemptions<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    s.issue_code(&code("c1", "g1")).await.unwrap();
    let loaded = s.code(&code_hash("c1")).await.unwrap().unwrap();
    assert_eq!(loaded.grant, grant("g1", "u-alice"));
    assert!(!loaded.used);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.redeem_code(
                &code_hash("c1"),
                Some(&rt(&format!("r{i}"), "g1")),
                &at("g1"),
            )
            .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() == Redeemed::Won {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    assert!(s.code(&code_hash("c1")).await.unwrap().unwrap().used);
    assert!(s.code(&code_hash("nope")).await.unwrap().is_none());
}

pub async fn refresh_rotation_has_one_winner_under_20_concurrent_uses<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    s.issue_code(&code("c1", "g1")).await.unwrap();
    s.redeem_code(&code_hash("c1"), Some(&rt("r0", "g1")), &at("g1"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.rotate_refresh_token(&rt_hash("r0"), &rt(&format!("r1-{i}"), "g1"), &at("g1"))
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() == Redeemed::Won {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    let old = s.refresh_token(&rt_hash("r0")).await.unwrap().unwrap();
    assert!(old.used);
    assert_eq!(old.grant.id, gid("g1"));
    assert!(!old.grant_revoked);
}

/// RFC 9700 §4.14 under load: codes and refresh tokens of several grants redeemed at the same
/// time (a backend may commit them together), including a token of a revoked grant. Each
/// token has exactly one winner, only the winners' replacements exist, and the revoked grant's
/// token is never rotated.
pub async fn mixed_concurrent_redemptions_each_have_one_winner<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    for g in ["ga", "gb", "gr"] {
        s.issue_code(&code(&format!("c-{g}"), g)).await.unwrap();
        s.redeem_code(
            &code_hash(&format!("c-{g}")),
            Some(&rt(&format!("r-{g}"), g)),
            &at(g),
        )
        .await
        .unwrap();
    }
    s.issue_code(&code("c-gc", "gc")).await.unwrap();
    s.revoke_grant(&gid("gr")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        for g in ["ga", "gb", "gr"] {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let r = s
                    .rotate_refresh_token(
                        &rt_hash(&format!("r-{g}")),
                        &rt(&format!("r2-{g}-{i}"), g),
                        &at(g),
                    )
                    .await
                    .unwrap();
                (g, i, r)
            }));
        }
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let r = s
                .redeem_code(
                    &code_hash("c-gc"),
                    Some(&rt(&format!("r2-gc-{i}"), "gc")),
                    &at("gc"),
                )
                .await
                .unwrap();
            ("gc", i, r)
        }));
    }
    let mut winners = std::collections::BTreeMap::new();
    for t in tasks {
        let (g, i, r) = t.await.unwrap();
        if r == Redeemed::Won {
            assert!(winners.insert(g, i).is_none(), "two winners for {g}");
        }
    }
    assert_eq!(
        winners.keys().copied().collect::<Vec<_>>(),
        ["ga", "gb", "gc"]
    );
    for g in ["ga", "gb", "gc"] {
        for i in 0..8 {
            let new = s
                .refresh_token(&rt_hash(&format!("r2-{g}-{i}")))
                .await
                .unwrap();
            if winners[g] == i {
                let Some(new) = new else {
                    panic!("the winner's replacement for {g} is not stored");
                };
                assert_eq!(new.grant.id, gid(g));
                assert_eq!(new.scope, rt("x", g).scope);
                assert_eq!(new.expires_at, UnixTime(10_000));
                assert!(!new.used);
                assert!(
                    !s.access_token_revoked(&jti(&format!("{g}.j2-{i}")), Some(&gid(g)), None)
                        .await
                        .unwrap()
                );
            } else {
                assert!(new.is_none(), "a loser's replacement was stored for {g}");
            }
        }
    }
    for i in 0..8 {
        assert!(
            s.refresh_token(&rt_hash(&format!("r2-gr-{i}")))
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(
        !s.refresh_token(&rt_hash("r-gr"))
            .await
            .unwrap()
            .unwrap()
            .used
    );
    s.revoke_grant(&gid("ga")).await.unwrap();
    assert!(
        s.access_token_revoked(&jti("ga.j2"), Some(&gid("ga")), None)
            .await
            .unwrap()
    );
    assert!(
        !s.access_token_revoked(&jti("gb.j2"), Some(&gid("gb")), None)
            .await
            .unwrap()
    );
}

pub async fn revoked_grant_reaches_refresh_and_access_tokens<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    s.issue_code(&code("c1", "g1")).await.unwrap();
    s.redeem_code(&code_hash("c1"), Some(&rt("r0", "g1")), &at("g1"))
        .await
        .unwrap();
    assert!(
        !s.access_token_revoked(&jti("g1.j0"), Some(&gid("g1")), None)
            .await
            .unwrap()
    );
    assert!(
        !s.access_token_revoked(&jti("machine-jti"), None, None)
            .await
            .unwrap()
    );
    s.revoke_access_token(&jti("machine-jti"), UnixTime(1000))
        .await
        .unwrap();
    s.revoke_access_token(&jti("machine-jti"), UnixTime(1000))
        .await
        .unwrap();
    assert!(
        s.access_token_revoked(&jti("machine-jti"), None, None)
            .await
            .unwrap()
    );
    assert!(
        !s.access_token_revoked(&jti("other-jti"), None, None)
            .await
            .unwrap()
    );
    s.revoke_grant(&gid("g1")).await.unwrap();
    assert!(
        s.refresh_token(&rt_hash("r0"))
            .await
            .unwrap()
            .unwrap()
            .grant_revoked
    );
    assert!(
        s.access_token_revoked(&jti("g1.j0"), Some(&gid("g1")), None)
            .await
            .unwrap()
    );
    // A grant that is not stored (never was, or swept) leaves its tokens revoked: fail closed.
    assert!(
        s.access_token_revoked(&jti("gone.j0"), Some(&gid("gone")), None)
            .await
            .unwrap()
    );
    // So does a subject that is disabled or unknown, when the caller asks about it.
    assert!(
        !s.access_token_revoked(&jti("m"), None, Some(&uid("u-alice")))
            .await
            .unwrap()
    );
    assert!(
        s.access_token_revoked(&jti("m"), None, Some(&uid("u-nobody")))
            .await
            .unwrap()
    );
    s.set_user_disabled(&uname("alice"), true).await.unwrap();
    assert!(
        s.access_token_revoked(&jti("m"), None, Some(&uid("u-alice")))
            .await
            .unwrap()
    );
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
    assert_eq!(s.consent(&uid("u-alice"), &cid("app")).await.unwrap(), None);
    let scope = ScopeSet::parse("openid email").unwrap();
    s.record_consent(&uid("u-alice"), &cid("app"), &scope)
        .await
        .unwrap();
    s.record_consent(&uid("u-alice"), &cid("app"), &scope)
        .await
        .unwrap();
    assert_eq!(
        s.consent(&uid("u-alice"), &cid("app")).await.unwrap(),
        Some(scope)
    );
    // Changing the password ends the user's sessions.
    s.set_password(&uname("alice"), &phc("h")).await.unwrap();
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
    };
    s.insert_key(&key("k1", KeyState::Active)).await.unwrap();
    s.insert_key(&key("k2", KeyState::Next)).await.unwrap();
    s.rotate_keys(&key("k3", KeyState::Next), UnixTime(5000))
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

pub async fn purge_removes_only_expired_rows<S: Store>(s: Arc<S>) {
    setup(&*s).await;
    s.issue_code(&code("c1", "g1")).await.unwrap();
    let sess = Session {
        id_hash: session_hash("sess"),
        user_id: uid("u-alice"),
        auth_time: UnixTime(100),
        sid: SessionId::parse("sid").unwrap(),
        expires_at: UnixTime(200),
    };
    s.create_session(&sess).await.unwrap();
    let n = s.purge_expired(UnixTime(150)).await.unwrap();
    assert_eq!(n, 0);
    assert!(s.code(&code_hash("c1")).await.unwrap().is_some());
    let n = s.purge_expired(UnixTime(300)).await.unwrap();
    assert!(n >= 2, "{n}");
    assert!(s.code(&code_hash("c1")).await.unwrap().is_none());
    assert_eq!(s.session(&sess.id_hash, UnixTime(1)).await.unwrap(), None);

    // RFC 7009 §2.1: a grant whose code and refresh tokens are gone is kept while an access
    // token issued from it may still be live, so that token's revocation state survives.
    s.issue_code(&code("c2", "g2")).await.unwrap();
    let long_lived = AccessTokenRecord {
        grant_id: gid("g2"),
        expires_at: UnixTime(5_000),
    };
    s.redeem_code(&code_hash("c2"), None, &long_lived)
        .await
        .unwrap();
    s.purge_expired(UnixTime(4_000)).await.unwrap();
    assert!(s.code(&code_hash("c2")).await.unwrap().is_none());
    assert!(
        !s.access_token_revoked(&jti("g2.j"), Some(&gid("g2")), None)
            .await
            .unwrap()
    );
    s.purge_expired(UnixTime(5_000)).await.unwrap();
    assert!(
        s.access_token_revoked(&jti("g2.j"), Some(&gid("g2")), None)
            .await
            .unwrap()
    );
}

pub async fn login_failures_count_atomically_and_lock<S: Store>(s: Arc<S>) {
    fn policy(failures: i64) -> i64 {
        if failures >= 10 { 60 } else { 0 }
    }
    let now = UnixTime(1000);
    let mut tasks = Vec::new();
    for _ in 0..9 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.record_login_failure(&account("alice"), now, policy).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        s.login_lock(&account("alice"), &ip("1.2.3.4"), now)
            .await
            .unwrap(),
        0
    );
    s.record_login_failure(&account("alice"), now, policy)
        .await
        .unwrap();
    assert_eq!(
        s.login_lock(&account("alice"), &ip("1.2.3.4"), now)
            .await
            .unwrap(),
        60
    );
    assert_eq!(
        s.login_lock(&account("bob"), &ip("1.2.3.4"), now)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.login_lock(&account("bob"), &account("alice"), UnixTime(1030))
            .await
            .unwrap(),
        30
    );
    s.clear_login_failures(&account("alice")).await.unwrap();
    assert_eq!(
        s.login_lock(&account("alice"), &ip("10.0.0.1"), now)
            .await
            .unwrap(),
        0
    );
}
