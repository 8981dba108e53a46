use keycard_protocol::policy::GrantType;
use keycard_store::Store;
use keycard_testkit::{API, Browser, ClientSpec, PASSWORD, REDIRECT, TestServer, authorize_query};
use serde_json::Value;

pub(crate) struct Fixture {
    pub s: TestServer,
    pub rs_secret: String,
    pub m2m_secret: String,
    pub other_secret: String,
}

/// A resource server client (registered as the API's resource server), a machine client that
/// may only request tokens for the API, a web app, and another confidential client with no
/// audience (for "foreign" checks).
pub(crate) async fn fixture() -> Fixture {
    let s = TestServer::start().await;
    s.add_api(API, "photos:read orders:write", 600).await;
    s.add_user("alice").await;
    s.add_client(ClientSpec::web("web")).await;
    let cc = |id, audiences, resource_servers| ClientSpec {
        id,
        confidential: true,
        first_party: false,
        grants: &[GrantType::ClientCredentials],
        scope: "photos:read",
        audiences,
        redirect_uris: &[],
        resource_servers,
    };
    let rs_secret = s
        .add_client(cc("photos-api", &[API], &[API]))
        .await
        .unwrap();
    let m2m_secret = s.add_client(cc("m2m", &[API], &[])).await.unwrap();
    let other_secret = s.add_client(cc("other", &[], &[])).await.unwrap();
    Fixture {
        s,
        rs_secret,
        m2m_secret,
        other_secret,
    }
}

pub(crate) async fn post(
    s: &TestServer,
    path: &str,
    who: (&str, &str),
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = s
        .http
        .post(s.url(path))
        .basic_auth(who.0, Some(who.1))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn user_tokens(s: &TestServer) -> Value {
    let mut b = Browser::new(s);
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
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("client_id", "web"),
        ("code_verifier", &v),
    ];
    s.http
        .post(s.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn s2_2_active_access_token_reports_its_claims() {
    let f = fixture().await;
    let (_, t) = post(
        &f.s,
        "/token",
        ("m2m", &f.m2m_secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let at = t["access_token"].as_str().unwrap();
    let (status, j) = post(
        &f.s,
        "/introspect",
        ("photos-api", &f.rs_secret),
        &[("token", at)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(j["active"], true);
    assert_eq!(j["client_id"], "m2m");
    assert_eq!(j["sub"], "m2m");
    assert_eq!(j["scope"], "photos:read");
    assert_eq!(j["aud"], API);
    assert_eq!(j["iss"], f.s.base.as_str());
    assert_eq!(j["token_type"], "Bearer");
    for k in ["exp", "iat", "jti"] {
        assert!(!j[k].is_null(), "{k}");
    }
}

#[tokio::test]
async fn s2_2_inactive_tokens_say_only_active_false() {
    let f = fixture().await;
    let (_, t) = post(
        &f.s,
        "/token",
        ("m2m", &f.m2m_secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    let mut flipped = at.clone();
    flipped.pop();
    let cases = [
        flipped,
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        "x".repeat(5000),
    ];
    for token in &cases {
        let (status, j) = post(
            &f.s,
            "/introspect",
            ("photos-api", &f.rs_secret),
            &[("token", token)],
        )
        .await;
        assert_eq!((status, j), (200, serde_json::json!({ "active": false })));
    }
    // A client that is neither the token's client nor its audience sees nothing.
    let (_, j) = post(
        &f.s,
        "/introspect",
        ("other", &f.other_secret),
        &[("token", &at)],
    )
    .await;
    assert_eq!(j, serde_json::json!({ "active": false }));
    // Expired.
    f.s.clock.advance(601);
    let (_, j) = post(
        &f.s,
        "/introspect",
        ("photos-api", &f.rs_secret),
        &[("token", &at)],
    )
    .await;
    assert_eq!(j, serde_json::json!({ "active": false }));
}

#[tokio::test]
async fn s2_1_caller_must_authenticate() {
    let f = fixture().await;
    let r =
        f.s.http
            .post(f.s.url("/introspect"))
            .form(&[("token", "x")])
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["error"], "invalid_client");
    let (status, j) = post(
        &f.s,
        "/introspect",
        ("photos-api", "wrong"),
        &[("token", "x")],
    )
    .await;
    assert_eq!((status, j["error"].as_str()), (401, Some("invalid_client")));
    // Public clients cannot introspect.
    let r =
        f.s.http
            .post(f.s.url("/introspect"))
            .form(&[("token", "x"), ("client_id", "web")])
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    let (status, j) = post(&f.s, "/introspect", ("photos-api", &f.rs_secret), &[]).await;
    assert_eq!(
        (status, j["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(
        f.s.http
            .get(f.s.url("/introspect"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

#[tokio::test]
async fn s2_2_user_tokens_and_refresh_tokens() {
    let f = fixture().await;
    let t = user_tokens(&f.s).await;
    let at = t["access_token"].as_str().unwrap();
    let (_, j) = post(
        &f.s,
        "/introspect",
        ("photos-api", &f.rs_secret),
        &[("token", at)],
    )
    .await;
    assert_eq!(j["active"], true);
    assert_eq!(j["client_id"], "web");
    // The refresh token is visible to its own client only, and web is public; it is inactive
    // for everyone else.
    let rt = t["refresh_token"].as_str().unwrap();
    let (_, j) = post(
        &f.s,
        "/introspect",
        ("photos-api", &f.rs_secret),
        &[("token", rt), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(j, serde_json::json!({ "active": false }));
    // A disabled user's tokens are inactive.
    f.s.store()
        .set_user_disabled(
            &keycard_protocol::Username::parse("alice").unwrap(),
            true,
            f.s.revocation(),
        )
        .await
        .unwrap();
    let (_, j) = post(
        &f.s,
        "/introspect",
        ("photos-api", &f.rs_secret),
        &[("token", at)],
    )
    .await;
    assert_eq!(j, serde_json::json!({ "active": false }));
}

#[tokio::test]
async fn s2_2_refresh_token_introspected_by_its_confidential_client() {
    let f = fixture().await;
    let secret =
        f.s.add_client(ClientSpec {
            id: "conf",
            confidential: true,
            ..ClientSpec::web("conf")
        })
        .await
        .unwrap();
    let mut b = Browser::new(&f.s);
    let (q, v) = authorize_query("conf", "openid offline_access", "");
    let code = b
        .authorize(&q, "alice", PASSWORD)
        .await
        .location_param("code")
        .unwrap();
    let (_, t) = post(
        &f.s,
        "/token",
        ("conf", &secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &v),
        ],
    )
    .await;
    let rt = t["refresh_token"].as_str().unwrap();
    let (_, j) = post(&f.s, "/introspect", ("conf", &secret), &[("token", rt)]).await;
    assert_eq!(j["active"], true);
    assert_eq!(j["token_type"], "refresh_token");
    assert_eq!(j["client_id"], "conf");
    assert_eq!(j["scope"], "offline_access openid");
}
