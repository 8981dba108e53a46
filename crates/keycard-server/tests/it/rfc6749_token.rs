use keycard_protocol::policy::GrantType;
use keycard_store::Store;
use keycard_testkit::{
    API, Browser, ClientSpec, PASSWORD, REDIRECT, Resp, TestServer, authorize_query, jwt_parts,
};

async fn setup() -> TestServer {
    let s = TestServer::start().await;
    s.add_api(API, "photos:read orders:write", 600).await;
    s.add_user("alice").await;
    s.add_client(ClientSpec::web("web")).await;
    s
}

async fn post(s: &TestServer, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Resp {
    let mut r = s.http.post(s.url("/token")).form(form);
    if let Some((u, p)) = basic {
        r = r.basic_auth(u, Some(p));
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Resp {
        status,
        location: None,
        headers,
        body: r.text().await.unwrap(),
    }
}

/// Runs the browser flow and returns (code, verifier).
async fn code_for(s: &TestServer, client: &str, scope: &str) -> (String, String) {
    let mut b = Browser::new(s);
    let (q, v) = authorize_query(client, scope, "audience=https%3A%2F%2Fapi.example.com");
    let r = b.authorize(&q, "alice", PASSWORD).await;
    (r.location_param("code").expect("code"), v)
}

async fn exchange(s: &TestServer, code: &str, verifier: &str) -> Resp {
    post(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", "web"),
            ("code_verifier", verifier),
        ],
        None,
    )
    .await
}

fn error_of(r: &Resp) -> String {
    r.json()["error"].as_str().unwrap_or("").to_owned()
}

#[tokio::test]
async fn s4_1_3_code_exchange_returns_rfc9068_access_token_and_no_store() {
    let s = setup().await;
    let (code, v) = code_for(&s, "web", "openid offline_access photos:read").await;
    let r = exchange(&s, &code, &v).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let j = r.json();
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["expires_in"], 600);
    assert_eq!(j["scope"], "offline_access openid photos:read");
    assert!(j["refresh_token"].as_str().unwrap().len() >= 43);
    let (h, c) = jwt_parts(j["access_token"].as_str().unwrap());
    assert_eq!(h["typ"], "at+jwt");
    assert!(h["kid"].is_string());
    assert_eq!(c["iss"], s.base.as_str());
    assert_eq!(
        c["aud"],
        serde_json::json!([API, format!("{}/userinfo", s.base)])
    );
    assert_eq!(c["client_id"], "web");
    for k in ["sub", "exp", "iat", "jti", "auth_time", "scope"] {
        assert!(!c[k].is_null(), "{k}");
    }
}

#[tokio::test]
async fn s4_1_2_code_reuse_is_invalid_grant_and_revokes_issued_tokens() {
    let s = setup().await;
    let (code, v) = code_for(&s, "web", "openid offline_access").await;
    let first = exchange(&s, &code, &v).await.json();
    let second = exchange(&s, &code, &v).await;
    assert_eq!(
        (second.status, error_of(&second)),
        (400, "invalid_grant".into())
    );
    let rt = first["refresh_token"].as_str().unwrap();
    let r = post(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", "web"),
        ],
        None,
    )
    .await;
    assert_eq!(error_of(&r), "invalid_grant");
    let ui = s
        .http
        .get(s.url("/userinfo"))
        .bearer_auth(first["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 401);
}

#[tokio::test]
async fn rfc7636_s4_6_wrong_or_missing_verifier_and_binding_checks() {
    let s = setup().await;
    s.add_client(ClientSpec::web("other")).await;
    let (code, v) = code_for(&s, "web", "openid").await;
    let wrong = "a".repeat(43);
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "web"),
            ("code_verifier", &wrong),
        ],
        vec![
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "web"),
        ],
        vec![
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://app.example.com/cb/"),
            ("client_id", "web"),
            ("code_verifier", &v),
        ],
        vec![
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "other"),
            ("code_verifier", &v),
        ],
        vec![
            ("grant_type", "authorization_code"),
            ("code", "not-a-real-code"),
            ("redirect_uri", REDIRECT),
            ("client_id", "web"),
            ("code_verifier", &v),
        ],
    ];
    for form in cases {
        let r = post(&s, &form, None).await;
        assert_eq!(
            (r.status, error_of(&r)),
            (400, "invalid_grant".into()),
            "{form:?}"
        );
    }
    // None of the invalid attempts burned the code.
    assert_eq!(exchange(&s, &code, &v).await.status, 200);
}

#[tokio::test]
async fn s4_1_2_code_expires_after_60_seconds() {
    let s = setup().await;
    let (code, v) = code_for(&s, "web", "openid").await;
    s.clock.advance(60);
    let r = exchange(&s, &code, &v).await;
    assert_eq!(error_of(&r), "invalid_grant");
}

#[tokio::test]
async fn rfc9700_s4_14_2_refresh_rotates_and_reuse_revokes_the_family() {
    let s = setup().await;
    let (code, v) = code_for(&s, "web", "openid offline_access").await;
    let rt1 = exchange(&s, &code, &v).await.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt1),
            ("client_id", "web"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rt2 = r.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert_eq!(r.json()["scope"], "offline_access openid");
    // Widening is refused; narrowing is allowed and the rotated token keeps the full scope.
    let wide = post(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt2),
            ("client_id", "web"),
            ("scope", "openid email"),
        ],
        None,
    )
    .await;
    assert_eq!(error_of(&wide), "invalid_scope");
    // Reusing rt1 revokes the family, so rt2 dies too.
    let reuse = post(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt1),
            ("client_id", "web"),
        ],
        None,
    )
    .await;
    assert_eq!(error_of(&reuse), "invalid_grant");
    let after = post(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt2),
            ("client_id", "web"),
        ],
        None,
    )
    .await;
    assert_eq!(error_of(&after), "invalid_grant");
}

#[tokio::test]
async fn rfc9700_s4_14_2_concurrent_refresh_has_exactly_one_winner() {
    let s = std::sync::Arc::new(setup().await);
    let (code, v) = code_for(&s, "web", "openid offline_access").await;
    let rt = exchange(&s, &code, &v).await.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (s, rt) = (s.clone(), rt.clone());
        tasks.push(tokio::spawn(async move {
            post(
                &s,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", "web"),
                ],
                None,
            )
            .await
            .status
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            400 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn s4_4_client_credentials_basic_and_post() {
    let s = setup().await;
    let secret = s
        .add_client(ClientSpec {
            id: "m2m",
            confidential: true,
            first_party: false,
            grants: &[GrantType::ClientCredentials],
            scope: "photos:read",
            audiences: &[API],
            redirect_uris: &[],
            resource_servers: &[],
        })
        .await
        .unwrap();
    let r = post(
        &s,
        &[("grant_type", "client_credentials")],
        Some(("m2m", &secret)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert!(j.get("refresh_token").is_none() && j.get("id_token").is_none());
    let (_, c) = jwt_parts(j["access_token"].as_str().unwrap());
    assert_eq!(
        (c["sub"].as_str(), c["aud"].as_str(), c["scope"].as_str()),
        (Some("m2m"), Some(API), Some("photos:read"))
    );
    let r = post(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "m2m"),
            ("client_secret", &secret),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    // Two methods at once.
    let r = post(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", &secret),
        ],
        Some(("m2m", &secret)),
    )
    .await;
    assert_eq!((r.status, error_of(&r)), (400, "invalid_request".into()));
    // A wrong secret via Basic: 401 with a challenge.
    let r = post(
        &s,
        &[("grant_type", "client_credentials")],
        Some(("m2m", "wrong")),
    )
    .await;
    assert_eq!((r.status, error_of(&r)), (401, "invalid_client".into()));
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    // Scope and target outside the client's registration.
    let r = post(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "orders:write"),
        ],
        Some(("m2m", &secret)),
    )
    .await;
    assert_eq!(error_of(&r), "invalid_scope");
    let r = post(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://other.example.com"),
        ],
        Some(("m2m", &secret)),
    )
    .await;
    assert_eq!(error_of(&r), "invalid_target");
    // A grant the client is not registered for.
    let r = post(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        Some(("m2m", &secret)),
    )
    .await;
    assert_eq!(error_of(&r), "unauthorized_client");
    // Public clients cannot use client credentials: they cannot authenticate, so they are no
    // client for it at all (RFC 6749 §5.2: 401 invalid_client).
    let r = post(
        &s,
        &[("grant_type", "client_credentials"), ("client_id", "web")],
        None,
    )
    .await;
    assert_eq!(error_of(&r), "invalid_client");
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn s5_2_malformed_requests_get_the_rfc_error() {
    let s = setup().await;
    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "application/x-www-form-urlencoded",
            "grant_type=password&client_id=web&username=a&password=b",
            400,
            "unsupported_grant_type",
        ),
        (
            "application/x-www-form-urlencoded",
            "grant_type=implicit&client_id=web",
            400,
            "unsupported_grant_type",
        ),
        (
            "application/x-www-form-urlencoded",
            "grant_type=foo&client_id=web",
            400,
            "unsupported_grant_type",
        ),
        (
            "application/x-www-form-urlencoded",
            "client_id=web",
            400,
            "invalid_request",
        ),
        (
            "application/x-www-form-urlencoded",
            "grant_type=authorization_code&grant_type=authorization_code&client_id=web",
            400,
            "invalid_request",
        ),
        (
            "application/json",
            r#"{"grant_type":"client_credentials"}"#,
            400,
            "invalid_request",
        ),
        (
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials",
            401,
            "invalid_client",
        ),
        (
            "application/x-www-form-urlencoded",
            "%zz=%%&&==",
            401,
            "invalid_client",
        ),
    ];
    for (ct, body, status, err) in cases {
        let r = s
            .http
            .post(s.url("/token"))
            .header("content-type", *ct)
            .body(*body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), *status, "{body}");
        let j: serde_json::Value = r.json().await.unwrap();
        assert_eq!(j["error"], *err, "{body}");
    }
    let r = s.http.get(s.url("/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let big = format!("grant_type=client_credentials&x={}", "a".repeat(100_000));
    let r = s
        .http
        .post(s.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let long = format!(
        "grant_type=client_credentials&client_id=web&scope={}",
        "a".repeat(9000)
    );
    let r = s
        .http
        .post(s.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(long)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn disabled_user_gets_no_tokens_from_any_grant() {
    let s = setup().await;
    let (code, v) = code_for(&s, "web", "openid offline_access").await;
    let (code2, v2) = code_for(&s, "web", "openid offline_access").await;
    let rt = exchange(&s, &code, &v).await.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    s.store()
        .set_user_disabled(
            &keycard_protocol::Username::parse("alice").unwrap(),
            true,
            s.revocation(),
        )
        .await
        .unwrap();
    let r = exchange(&s, &code2, &v2).await;
    assert_eq!(error_of(&r), "invalid_grant");
    let r = post(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", "web"),
        ],
        None,
    )
    .await;
    assert_eq!(error_of(&r), "invalid_grant");
    let mut b = Browser::new(&s);
    let (q, _) = authorize_query("web", "openid", "");
    let r = b.authorize(&q, "alice", PASSWORD).await;
    assert_eq!(r.status, 401, "a disabled user cannot log in");
}
