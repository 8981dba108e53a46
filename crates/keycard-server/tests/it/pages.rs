use keycard_testkit::{Browser, ClientSpec, PASSWORD, TestServer, authorize_query};

async fn setup() -> TestServer {
    let s = TestServer::start().await;
    s.add_api(keycard_testkit::API, "photos:read", 600).await;
    s.add_user("alice").await;
    let mut spec = ClientSpec::web("web");
    spec.first_party = false;
    s.add_client(spec).await;
    s
}

async fn login_page(s: &TestServer, b: &mut Browser, extra: &str) -> keycard_testkit::Resp {
    let (q, _) = authorize_query("web", "openid email", extra);
    let r = b.get(&format!("/authorize?{q}")).await;
    let _ = s;
    b.get(r.location.as_deref().unwrap()).await
}

#[tokio::test]
async fn rfc9700_s4_16_pages_carry_anti_framing_and_no_store_headers() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let page = login_page(&s, &mut b, "").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(page.body.contains("<label for=\"password\">"));
    let csrf_cookie = page.headers.get_all("set-cookie");
    let _ = csrf_cookie;
    assert!(b.cookies.contains_key("keycard_csrf"));
}

#[tokio::test]
async fn oauth21_s7_12_hostile_values_are_escaped() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let page = login_page(
        &s,
        &mut b,
        "login_hint=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    )
    .await;
    assert!(!page.body.contains("<script>alert(1)"));
    assert!(
        page.body.contains("&#34;&gt;&lt;script&gt;")
            || page.body.contains("&quot;&gt;&lt;script&gt;")
    );
    let r = b
        .get("/authorize?client_id=%3Cimg%20src%3Dx%3E&response_type=code")
        .await;
    assert_eq!(r.status, 400);
    assert!(!r.body.contains("<img src=x>"));
}

#[tokio::test]
async fn consent_is_shown_remembered_and_deny_redirects_access_denied() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let page = login_page(&s, &mut b, "").await;
    let (txn, csrf) = (page.input("txn").unwrap(), page.input("csrf").unwrap());
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
    let consent = b.get(r.location.as_deref().unwrap()).await;
    assert!(consent.body.contains("App web") && consent.body.contains("email"));
    let deny = b
        .post_form(
            "/consent",
            &[("txn", &txn), ("csrf", &csrf), ("decision", "deny")],
        )
        .await;
    assert_eq!(
        deny.location_param("error").as_deref(),
        Some("access_denied")
    );
    // Approve once, then the same scopes go straight through.
    let (q, _) = authorize_query("web", "openid email", "");
    let r = b.authorize(&q, "alice", PASSWORD).await;
    assert!(r.location_param("code").is_some());
    let r = b.get(&format!("/authorize?{q}")).await;
    assert!(
        r.location_param("code").is_some(),
        "consent should be remembered"
    );
    let (q, _) = authorize_query("web", "openid email profile", "");
    let r = b.get(&format!("/authorize?{q}")).await;
    assert!(
        r.location.unwrap().starts_with("/consent"),
        "new scopes need consent again"
    );
}

#[tokio::test]
async fn csrf_and_cross_site_posts_are_refused() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let page = login_page(&s, &mut b, "").await;
    let txn = page.input("txn").unwrap();
    let r = b
        .post_form(
            "/login",
            &[
                ("txn", &txn),
                ("csrf", "forged"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    let csrf = page.input("csrf").unwrap();
    let cookie = format!("keycard_csrf={csrf}");
    let r = s
        .http
        .post(s.url("/login"))
        .header("cookie", cookie)
        .header("origin", "https://evil.example.com")
        .form(&[
            ("txn", txn.as_str()),
            ("csrf", csrf.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn asvs_6_3_8_login_failures_do_not_reveal_users_and_are_throttled() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let page = login_page(&s, &mut b, "").await;
    let (txn, csrf) = (page.input("txn").unwrap(), page.input("csrf").unwrap());
    let wrong = b
        .post_form(
            "/login",
            &[
                ("txn", &txn),
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", "nope"),
            ],
        )
        .await;
    let ghost = b
        .post_form(
            "/login",
            &[
                ("txn", &txn),
                ("csrf", &csrf),
                ("username", "ghost"),
                ("password", "nope"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(ghost.status, 401);
    let msg = |r: &keycard_testkit::Resp| {
        r.body
            .split("role=\"alert\"")
            .nth(1)
            .map(|s| s.split("</p>").next().unwrap_or("").to_owned())
    };
    assert_eq!(msg(&wrong), msg(&ghost));
    // Five failures for alice in all lock the account.
    for _ in 0..4 {
        b.post_form(
            "/login",
            &[
                ("txn", &txn),
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", "nope"),
            ],
        )
        .await;
    }
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
    assert_eq!(r.status, 429);
    assert!(r.headers.contains_key("retry-after"));
    s.clock.advance(5);
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
}

#[tokio::test]
async fn logout_ends_the_sso_session() {
    let s = setup().await;
    let mut b = Browser::new(&s);
    let (q, _) = authorize_query("web", "openid", "");
    assert!(
        b.authorize(&q, "alice", PASSWORD)
            .await
            .location_param("code")
            .is_some()
    );
    let page = b.get("/logout").await;
    let csrf = page.input("csrf").unwrap();
    let r = b.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 200);
    let r = b.get(&format!("/authorize?{q}")).await;
    assert!(r.location.unwrap().starts_with("/login"));
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let s = setup().await;
    assert_eq!(
        s.http.get(s.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        s.http.get(s.url("/readyz")).send().await.unwrap().status(),
        200
    );
    let _ = s
        .http
        .post(s.url("/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        s.http.get(s.url("/metrics")).send().await.unwrap().status(),
        404,
        "metrics are only on their own listener"
    );
    let m = s.metrics().await;
    assert!(m.contains("keycard_http_requests_total"), "{m}");
    assert!(m.contains("endpoint=\"/token\""));
}
