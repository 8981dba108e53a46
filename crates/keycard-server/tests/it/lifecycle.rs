//! Revocation that reaches everything: an absolute grant lifetime, password changes, disabling
//! and removal of users and clients, emergency key revocation and scheduled rotation, each
//! seen at `/introspect` (RFC 7662) and `/token` (RFC 6749 §5.2) over HTTP. The store calls are
//! the ones `keycard user|client|keys ...` make.

use keycard_protocol::policy::GrantType;
use keycard_protocol::{ClientId, Kid, Username};
use keycard_store::{PasswordHash, Store};
use keycard_testkit::{
    API, Browser, ClientSpec, PASSWORD, REDIRECT, TestServer, authorize_query, jwt_parts,
};
use serde_json::{Value, json};

struct Fx {
    s: TestServer,
    rs: String,
    m2m: String,
}

/// A web app, a resource server for the API, a machine client that may request API tokens.
async fn fixture_with(adjust: impl FnOnce(&mut keycard_server::Settings)) -> Fx {
    let s = TestServer::start_with(adjust).await;
    s.add_api(API, "photos:read", 600).await;
    s.add_user("alice").await;
    s.add_client(ClientSpec::web("web")).await;
    let cc = |id, resource_servers| ClientSpec {
        id,
        confidential: true,
        first_party: false,
        grants: &[GrantType::ClientCredentials],
        scope: "photos:read",
        audiences: &[API],
        redirect_uris: &[],
        resource_servers,
    };
    let rs = s.add_client(cc("photos-api", &[API])).await.unwrap();
    let m2m = s.add_client(cc("m2m", &[])).await.unwrap();
    Fx { s, rs, m2m }
}

async fn fixture() -> Fx {
    fixture_with(|_| {}).await
}

async fn form(
    s: &TestServer,
    path: &str,
    who: Option<(&str, &str)>,
    f: &[(&str, &str)],
) -> (u16, Value) {
    let mut r = s.http.post(s.url(path)).form(f);
    if let Some((u, p)) = who {
        r = r.basic_auth(u, Some(p));
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

impl Fx {
    /// Alice's (access token, refresh token) for the web app.
    async fn user_tokens(&self) -> (String, String) {
        let mut b = Browser::new(&self.s);
        let (q, v) = authorize_query(
            "web",
            "openid offline_access photos:read",
            "audience=https%3A%2F%2Fapi.example.com",
        );
        let code = b
            .authorize(&q, "alice", PASSWORD)
            .await
            .location_param("code")
            .unwrap();
        let (st, t) = form(
            &self.s,
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", "web"),
                ("code_verifier", &v),
            ],
        )
        .await;
        assert_eq!(st, 200, "{t}");
        (
            t["access_token"].as_str().unwrap().to_owned(),
            t["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    async fn machine_token(&self) -> String {
        let (st, t) = form(
            &self.s,
            "/token",
            Some(("m2m", &self.m2m)),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(st, 200, "{t}");
        t["access_token"].as_str().unwrap().to_owned()
    }

    async fn active(&self, token: &str) -> bool {
        let (st, j) = form(
            &self.s,
            "/introspect",
            Some(("photos-api", &self.rs)),
            &[("token", token)],
        )
        .await;
        assert_eq!(st, 200);
        j["active"] == true
    }

    /// See `rfc7662_introspect::goes_inactive`.
    async fn goes_inactive(&self, token: &str) {
        crate::rfc7662_introspect::goes_inactive(&self.s, ("photos-api", &self.rs), token).await;
    }

    async fn refresh(&self, rt: &str) -> (u16, Value) {
        form(
            &self.s,
            "/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", "web"),
            ],
        )
        .await
    }
}

fn alice() -> Username {
    Username::parse("alice").unwrap()
}

#[tokio::test]
async fn rfc9700_s4_14_2_a_grant_has_an_absolute_lifetime_however_often_refreshed() {
    let f = fixture_with(|st| {
        st.grant_ttl_secs = 90 * 86_400;
        st.refresh_token_ttl_secs = 30 * 86_400;
    })
    .await;
    let (_, mut rt) = f.user_tokens().await;
    // Refreshing every 20 days keeps it alive, but never past day 90...
    for day in [20, 40, 60, 80] {
        f.s.clock.advance(20 * 86_400);
        let (st, t) = f.refresh(&rt).await;
        assert_eq!(st, 200, "day {day}: {t}");
        rt = t["refresh_token"].as_str().unwrap().to_owned();
        let left = 90 - day;
        assert!(
            t["refresh_token_expires_in"]
                .as_i64()
                .is_none_or(|s| s <= left * 86_400),
            "{t}"
        );
    }
    // ...day 100 is past the grant's end, though the token is 20 days old.
    f.s.clock.advance(20 * 86_400);
    let (st, t) = f.refresh(&rt).await;
    assert_eq!(
        (st, t["error"].as_str()),
        (400, Some("invalid_grant")),
        "{t}"
    );
}

#[tokio::test]
async fn rfc9700_s4_14_2_a_password_change_revokes_the_users_tokens() {
    let f = fixture().await;
    let (at, rt) = f.user_tokens().await;
    assert!(f.active(&at).await);
    let hash = PasswordHash::from_phc(keycard_server::hash_password("a new password").unwrap());
    f.s.store()
        .set_password(&alice(), &hash, f.s.revocation())
        .await
        .unwrap();
    // Refresh tokens are always read from the store: refused at once.
    assert!(!f.active(&rt).await);
    assert_eq!(f.refresh(&rt).await.1["error"], "invalid_grant");
    f.goes_inactive(&at).await;
}

#[tokio::test]
async fn disabling_a_user_revokes_and_enabling_revives_nothing() {
    let f = fixture().await;
    let (at, rt) = f.user_tokens().await;
    assert!(f.active(&at).await);
    let mut b = Browser::new(&f.s);
    let (q, _) = authorize_query("web", "openid", "");
    assert!(
        b.authorize(&q, "alice", PASSWORD)
            .await
            .location_param("code")
            .is_some()
    );
    f.s.store()
        .set_user_disabled(&alice(), true, f.s.revocation())
        .await
        .unwrap();
    f.s.store()
        .set_user_disabled(&alice(), false, f.s.revocation())
        .await
        .unwrap();
    assert_eq!(f.refresh(&rt).await.1["error"], "invalid_grant");
    f.goes_inactive(&at).await;
    // The browser session ended too: the next authorize asks for a password.
    let r = b.get(&format!("/authorize?{q}")).await;
    assert!(
        r.location.as_deref().unwrap().starts_with("/login"),
        "{r:?}"
    );
}

#[tokio::test]
async fn rfc7662_s2_2_removing_a_client_deactivates_every_token_it_holds() {
    let f = fixture().await;
    let machine = f.machine_token().await;
    let (at, _) = f.user_tokens().await;
    assert!(f.active(&machine).await);
    f.s.store()
        .remove_client(&ClientId::parse("m2m").unwrap(), f.s.revocation())
        .await
        .unwrap();
    f.goes_inactive(&machine).await;
    // Another client's tokens are untouched.
    assert!(f.active(&at).await);
}

#[tokio::test]
async fn rfc9700_s4_15_a_client_id_never_equals_a_user_id() {
    let f = fixture().await;
    let bob = f.s.add_user("bob").await;
    let id = bob.id.to_string();
    let c = keycard_protocol::policy::Client {
        id: ClientId::parse(&id).unwrap(),
        name: "Impostor".into(),
        secret_hash: None,
        redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: keycard_protocol::ScopeSet::parse("openid").unwrap(),
        audiences: vec![],
        first_party: false,
        resource_servers: vec![],
        feed: false,
        post_logout_redirect_uris: vec![],
        backchannel_logout: None,
    };
    let got = f.s.store().create_client(&c, f.s.revocation().at).await;
    assert!(
        matches!(got, Err(keycard_store::StoreError::Conflict)),
        "{got:?}"
    );
    // And machine tokens say what they are: their subject is their client.
    let (_, claims) = jwt_parts(&f.machine_token().await);
    assert_eq!(
        (claims["sub"].as_str(), claims["client_id"].as_str()),
        (Some("m2m"), Some("m2m"))
    );
}

#[tokio::test]
async fn rfc7662_s4_only_the_tokens_client_and_its_audiences_resource_servers_see_it() {
    let f = fixture().await;
    let (at, _) = f.user_tokens().await;
    // m2m may request tokens for the API, which does not make it the API.
    let (_, j) = form(
        &f.s,
        "/introspect",
        Some(("m2m", &f.m2m)),
        &[("token", &at)],
    )
    .await;
    assert_eq!(j, json!({ "active": false }));
    assert!(f.active(&at).await);
    // A machine token is visible to the client that holds it.
    let mt = f.machine_token().await;
    let (_, j) = form(
        &f.s,
        "/introspect",
        Some(("m2m", &f.m2m)),
        &[("token", &mt)],
    )
    .await;
    assert_eq!(j["active"], true);
}

#[tokio::test]
async fn rfc6749_s5_2_client_credentials_from_a_public_client_is_invalid_client() {
    let f = fixture().await;
    let (st, j) = form(
        &f.s,
        "/token",
        None,
        &[("grant_type", "client_credentials"), ("client_id", "web")],
    )
    .await;
    assert_eq!(
        (st, j["error"].as_str()),
        (401, Some("invalid_client")),
        "{j}"
    );
}

async fn jwks_kids(s: &TestServer) -> Vec<String> {
    let j: Value = s.get_json("/jwks.json").await;
    j["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn rfc7517_s5_a_revoked_key_leaves_the_jwks_and_its_tokens_die() {
    let f = fixture().await;
    let (at, _) = f.user_tokens().await;
    let kid = jwt_parts(&at).0["kid"].as_str().unwrap().to_owned();
    keycard_server::revoke_key(
        f.s.store(),
        &f.s.master_key(),
        &Kid::parse(&kid).unwrap(),
        keycard_jose::Alg::ES256,
        f.s.revocation().at,
        3600,
    )
    .await
    .unwrap();
    assert!(f.s.app.reload_keys().await.unwrap());
    assert!(!jwks_kids(&f.s).await.contains(&kid));
    assert!(!f.active(&at).await);
    // The server signs with the next key at once, and its tokens work.
    let fresh = f.machine_token().await;
    assert_ne!(jwt_parts(&fresh).0["kid"].as_str(), Some(kid.as_str()));
    assert!(f.active(&fresh).await);
}

#[tokio::test]
async fn rfc7517_s5_scheduled_rotation_publishes_before_use_and_keeps_the_retired_key() {
    let f = fixture_with(|st| {
        st.key_rotation_secs = Some(400);
        st.key_reload = std::time::Duration::from_millis(50);
    })
    .await;
    let before = f.s.app.active_kid().to_string();
    let at = f.machine_token().await;
    let published = jwks_kids(&f.s).await;
    // Due, while the token (600 s) signed by the old key still has time left.
    f.s.clock.advance(450);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while f.s.app.active_kid().as_str() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "no rotation within 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let after = f.s.app.active_kid().to_string();
    // The new signing key was in the JWKS before it signed; the old one still is.
    assert!(published.contains(&after), "{published:?} {after}");
    assert!(jwks_kids(&f.s).await.contains(&before));
    assert!(f.active(&at).await);
    // Once only: a second period has not passed.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(f.s.app.active_kid().as_str(), after);
}
