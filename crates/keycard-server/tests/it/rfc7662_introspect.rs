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
    let at = machine_token(&f).await;
    let at = at.as_str();
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
    let at = machine_token(&f).await;
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
    goes_inactive(&f.s, ("photos-api", &f.rs_secret), at).await;
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

/// The verified-token cache's hit count, read from `/metrics`.
async fn cache_hits(s: &keycard_testkit::TestServer) -> u64 {
    s.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("keycard_introspection_cache_hits_total "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// A client-credentials access token of `m2m` for the API.
pub(crate) async fn machine_token(f: &Fixture) -> String {
    let (_, t) = post(
        &f.s,
        "/token",
        ("m2m", &f.m2m_secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    t["access_token"].as_str().unwrap().to_owned()
}

/// A resource server introspecting the same token again is answered from memory (no
/// signature check, no store read), with the same claims, and only for callers who may see it.
#[tokio::test]
async fn s2_2_a_repeated_introspection_is_answered_from_memory_with_the_same_claims() {
    let f = fixture().await;
    let at = machine_token(&f).await;
    let rs = ("photos-api", f.rs_secret.as_str());
    let (_, first) = post(&f.s, "/introspect", rs, &[("token", &at)]).await;
    assert_eq!(first["active"], true, "{first}");
    let before = cache_hits(&f.s).await;
    for _ in 0..3 {
        let (_, again) = post(&f.s, "/introspect", rs, &[("token", &at)]).await;
        assert_eq!(again, first);
    }
    // Other tests in this binary may hit the cache too, so at least our three.
    assert!(cache_hits(&f.s).await >= before + 3);
    // A cached token is still not shown to a client that may not see it, nor once expired.
    let inactive = serde_json::json!({ "active": false });
    let other = ("other", f.other_secret.as_str());
    assert_eq!(
        post(&f.s, "/introspect", other, &[("token", &at)]).await.1,
        inactive
    );
    f.s.clock.advance(601);
    assert_eq!(
        post(&f.s, "/introspect", rs, &[("token", &at)]).await.1,
        inactive
    );
}

/// A revocation written to the store by someone else (another node, an admin command) reaches
/// a token this node answered for from memory within one read of the revocation log
/// (`feed_poll`, 250 ms; bounded here with slack), and from then on it stays inactive.
#[tokio::test]
async fn s2_2_a_revocation_written_elsewhere_reaches_a_remembered_answer_within_one_poll() {
    let f = fixture().await;
    let at = machine_token(&f).await;
    let rs = ("photos-api", f.rs_secret.as_str());
    for _ in 0..2 {
        let (_, j) = post(&f.s, "/introspect", rs, &[("token", &at)]).await;
        assert_eq!(j["active"], true, "{j}");
    }
    let jti = keycard_testkit::jwt_parts(&at).1["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    f.s.store()
        .revoke_access_token(
            &keycard_protocol::Jti::parse(&jti).unwrap(),
            f.s.revocation(),
        )
        .await
        .unwrap();
    goes_inactive(&f.s, rs, &at).await;
}

/// Waits until introspection calls the token inactive, then checks it stays so. A revocation
/// written straight to the store, as an admin command or another node writes it, reaches a
/// token this node already answered for at its next read of the log (`feed_poll`, 250 ms);
/// the bound adds slack for a loaded machine.
pub(crate) async fn goes_inactive(s: &keycard_testkit::TestServer, who: (&str, &str), token: &str) {
    let t0 = std::time::Instant::now();
    loop {
        let (_, j) = post(s, "/introspect", who, &[("token", token)]).await;
        if j == serde_json::json!({ "active": false }) {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_millis(1500),
            "still active {:?} after the revocation",
            t0.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    eprintln!("store revocation to an inactive answer: {:?}", t0.elapsed());
    for _ in 0..3 {
        let (_, j) = post(s, "/introspect", who, &[("token", token)]).await;
        assert_eq!(j, serde_json::json!({ "active": false }));
    }
}
