use keycard_protocol::claims::{HalfHash, at_hash};
use keycard_testkit::{
    Browser, ClientSpec, PASSWORD, REDIRECT, TestServer, authorize_query, jwt_parts,
};

async fn setup() -> TestServer {
    let s = TestServer::start().await;
    s.add_api(keycard_testkit::API, "photos:read", 600).await;
    s.add_user("alice").await;
    s.add_client(ClientSpec::web("web")).await;
    s.add_client(ClientSpec::web("second")).await;
    s
}

async fn tokens(
    s: &TestServer,
    b: &mut Browser,
    client: &str,
    scope: &str,
    extra: &str,
) -> serde_json::Value {
    let (q, v) = authorize_query(client, scope, extra);
    let r = b.authorize(&q, "alice", PASSWORD).await;
    let code = r
        .location_param("code")
        .unwrap_or_else(|| panic!("no code: {r:?}"));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("client_id", client),
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
async fn s3_1_3_6_id_token_claims() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let t = tokens(&s, &mut b, "web", "openid profile email", "").await;
    let id = t["id_token"].as_str().unwrap();
    let (h, c) = jwt_parts(id);
    assert_eq!(h["typ"], "JWT");
    assert_eq!(c["iss"], s.base.as_str());
    assert_eq!(c["aud"], "web");
    assert_eq!(c["azp"], "web");
    assert_eq!(c["nonce"], "n-456");
    assert_eq!(
        c["at_hash"],
        at_hash(t["access_token"].as_str().unwrap(), HalfHash::Sha256)
    );
    assert_eq!(c["name"], "alice Example");
    assert_eq!(c["email"], "alice@example.com");
    assert_eq!(c["email_verified"], true);
    assert!(c["sid"].is_string() && c["auth_time"].is_i64());
    // The signature verifies against the published JWKS with an independent verifier.
    let jwks: serde_json::Value = s.get_json("/jwks.json").await;
    let set = keycard_jose::parse_jwks(&jwks).unwrap();
    let now = keycard_server::Clock::now(s.clock.as_ref()).secs();
    let _: serde_json::Value = keycard_jose::verify(id, &set, "JWT", now).unwrap();
}

#[tokio::test]
async fn s5_4_claims_by_scope_and_sso_keeps_sub_sid_and_auth_time() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let t1 = tokens(&s, &mut b, "web", "openid", "").await;
    let (_, c1) = jwt_parts(t1["id_token"].as_str().unwrap());
    assert!(c1.get("email").is_none() && c1.get("name").is_none());
    s.clock.advance(30);
    // The second app: no password form (Browser::authorize would fail the login step with a
    // wrong password if it were shown).
    let t2 = {
        let (q, v) = authorize_query("second", "openid email", "");
        let r = b.authorize(&q, "alice", "wrong password").await;
        let code = r
            .location_param("code")
            .expect("SSO should skip the login form");
        let form = [
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "second"),
            ("code_verifier", &v),
        ];
        s.http
            .post(s.url("/token"))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let (_, c2) = jwt_parts(t2["id_token"].as_str().unwrap());
    assert_eq!(c1["sub"], c2["sub"]);
    assert_eq!(c1["sid"], c2["sid"]);
    assert_eq!(c1["auth_time"], c2["auth_time"]);
    assert_eq!(c2["email"], "alice@example.com");
}

#[tokio::test]
async fn s3_1_2_1_prompt_login_and_max_age_force_reauthentication() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let t1 = tokens(&s, &mut b, "web", "openid", "").await;
    let (_, c1) = jwt_parts(t1["id_token"].as_str().unwrap());
    s.clock.advance(100);
    let (q, _) = authorize_query("web", "openid", "prompt=login");
    let r = b.get(&format!("/authorize?{q}")).await;
    assert!(r.location.unwrap().starts_with("/login"));
    let (q, _) = authorize_query("web", "openid", "max_age=50");
    let r = b.get(&format!("/authorize?{q}")).await;
    assert!(r.location.unwrap().starts_with("/login"));
    let (q, _) = authorize_query("web", "openid", "max_age=500");
    let r = b.get(&format!("/authorize?{q}")).await;
    assert!(r.location.unwrap().starts_with(REDIRECT));
    let t2 = tokens(&s, &mut b, "web", "openid", "prompt=login").await;
    let (_, c2) = jwt_parts(t2["id_token"].as_str().unwrap());
    assert!(c2["auth_time"].as_i64().unwrap() > c1["auth_time"].as_i64().unwrap());
    // prompt=none with a session is silent.
    let (q, _) = authorize_query("web", "openid", "prompt=none");
    let r = b.get(&format!("/authorize?{q}")).await;
    assert!(r.location_param("code").is_some());
}

#[tokio::test]
async fn s5_3_userinfo_get_and_post_with_rfc6750_errors() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let t = tokens(&s, &mut b, "web", "openid email", "").await;
    let at = t["access_token"].as_str().unwrap();
    let (_, claims) = jwt_parts(at);
    let r = s
        .http
        .get(s.url("/userinfo"))
        .header("authorization", format!("bEaReR {at}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let j: serde_json::Value = r.json().await.unwrap();
    assert_eq!(j["sub"], claims["sub"]);
    assert_eq!(j["email"], "alice@example.com");
    assert!(j.get("name").is_none());
    let r = s
        .http
        .post(s.url("/userinfo"))
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // No token: a bare challenge.
    let r = s
        .http
        .get(s.url(&format!("/userinfo?access_token={at}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"keycard\"");
    // A bad token.
    let mut bad = at.to_owned();
    bad.pop();
    let r = s
        .http
        .get(s.url("/userinfo"))
        .bearer_auth(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // Two methods at once.
    let r = s
        .http
        .post(s.url("/userinfo"))
        .bearer_auth(at)
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // An expired token.
    s.clock.advance(3601);
    let r = s
        .http
        .get(s.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn s5_3_3_userinfo_needs_openid_scope() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let t = tokens(
        &s,
        &mut b,
        "web",
        "photos:read",
        "audience=https%3A%2F%2Fapi.example.com",
    )
    .await;
    let at = t["access_token"].as_str().unwrap();
    // An API-only token is not for userinfo at all.
    let r = s
        .http
        .get(s.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let t = tokens(&s, &mut b, "web", "offline_access", "").await;
    let r = s
        .http
        .get(s.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
}
