use keycard_testkit::{Browser, ClientSpec, PASSWORD, REDIRECT, TestServer, authorize_query};

async fn setup() -> TestServer {
    let s = TestServer::start().await;
    s.add_api(keycard_testkit::API, "photos:read orders:write", 600)
        .await;
    s.add_user("alice").await;
    s.add_client(ClientSpec::web("web")).await;
    s
}

#[tokio::test]
async fn s4_1_2_1_unknown_client_or_redirect_shows_page_and_never_redirects() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let (q, _) = authorize_query("web", "openid", "");
    let cases = [
        q.replace("client_id=web", "client_id=nobody"),
        q.replace("app.example.com%2Fcb", "evil.example.com%2Fcb"),
        q.replace("app.example.com%2Fcb", "app.example.com%2FCB"),
        q.replace("app.example.com%2Fcb", "app.example.com%2Fcb%2F"),
        q.replace("client_id=web&", ""),
        format!("{q}&client_id=web"),
    ];
    for c in cases {
        let r = b.get(&format!("/authorize?{c}")).await;
        assert_eq!(r.status, 400, "{c}");
        assert!(r.location.is_none(), "{c}");
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}

#[tokio::test]
async fn s4_1_2_1_other_errors_redirect_with_state_and_iss() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let (q, _) = authorize_query("web", "openid", "");
    let cases = [
        (
            q.replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            q.replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            q.split("&code_challenge=").next().unwrap().to_owned(),
            "invalid_request",
        ),
        (q.replace("scope=openid", "scope=admin"), "invalid_scope"),
        (
            format!("{q}&resource=https%3A%2F%2Fother.example.com"),
            "invalid_target",
        ),
        (format!("{q}&prompt=none"), "login_required"),
    ];
    for (c, code) in cases {
        let r = b.get(&format!("/authorize?{c}")).await;
        assert_eq!(r.status, 303, "{c}");
        assert!(r.location.as_deref().unwrap().starts_with(REDIRECT), "{c}");
        assert_eq!(r.location_param("error").as_deref(), Some(code), "{c}");
        if !c.ends_with("S256") || code != "invalid_request" {
            assert_eq!(r.location_param("state").as_deref(), Some("st-123"), "{c}");
        }
        assert_eq!(r.location_param("iss").as_deref(), Some(s.base.as_str()));
    }
}

#[tokio::test]
async fn s4_1_2_code_response_carries_state_and_iss_and_login_answers_303() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let (q, _) = authorize_query("web", "openid", "");
    let r = b.get(&format!("/authorize?{q}")).await;
    assert_eq!(r.status, 303);
    let login = b.get(r.location.as_deref().unwrap()).await;
    assert_eq!(login.status, 200);
    let txn = login.input("txn").unwrap();
    let csrf = login.input("csrf").unwrap();
    let r = b
        .post_form(
            "/login",
            &[
                ("txn", &txn),
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(r.location.as_deref().unwrap().starts_with(REDIRECT));
    assert_eq!(r.location_param("code").unwrap().len(), 43);
    assert_eq!(r.location_param("state").as_deref(), Some("st-123"));
    assert_eq!(r.location_param("iss").as_deref(), Some(s.base.as_str()));
}

#[tokio::test]
async fn rfc8252_s7_3_loopback_redirect_may_vary_port() {
    let s = setup().await;
    let mut spec = ClientSpec::web("native");
    spec.redirect_uris = &["http://127.0.0.1/callback"];
    s.add_client(spec).await;
    let mut b = Browser::new(&s);
    let (q, _) = authorize_query("native", "openid", "");
    let q = q.replace(
        "https%3A%2F%2Fapp.example.com%2Fcb",
        "http%3A%2F%2F127.0.0.1%3A53123%2Fcallback",
    );
    let r = b.authorize(&q, "alice", PASSWORD).await;
    assert!(
        r.location
            .as_deref()
            .unwrap()
            .starts_with("http://127.0.0.1:53123/callback?code="),
        "{r:?}"
    );
    let bad = q.replace("%2Fcallback", "%2Fcallback2");
    assert_eq!(b.get(&format!("/authorize?{bad}")).await.status, 400);
}

#[tokio::test]
async fn oidc_core_s3_1_2_1_post_to_authorize_works() {
    let s = setup().await;
    let (q, _) = authorize_query("web", "openid", "");
    let r = s
        .http
        .post(s.url("/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(q)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?txn=")
    );
}
