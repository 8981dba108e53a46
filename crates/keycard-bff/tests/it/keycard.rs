//! The BFF against a real Keycard (`keycard_testkit::TestServer` on 127.0.0.1:0), driven over
//! HTTP like a browser: sign-in, `/bff/session`, cookies, CSRF, the return_to table, the proxy
//! allowlist and traversal table, hostile callbacks, logout through Keycard's end-session
//! endpoint (after which `prompt=none` gets `login_required`), and Keycard's own logout page
//! reaching the BFF by back-channel.

use std::sync::Arc;

use keycard_protocol::policy::{BackchannelLogout, GrantType};
use keycard_protocol::redirect::RedirectUri;
use keycard_testkit::{API, ClientSpec, PASSWORD, TestServer};

use keycard_protocol::UnixTime;

use crate::support::{self, Agent, BffApp, Resp, param};

/// A Keycard with user `alice` and a confidential client `bff` for a BFF at `base`.
pub(crate) async fn keycard(
    base: &str,
    adjust: impl FnOnce(&mut keycard_server::Settings),
) -> (TestServer, String) {
    let kc = TestServer::start_with(adjust).await;
    kc.add_user("alice").await;
    kc.add_api(API, "photos:read", 300).await;
    let redirect = format!("{base}/bff/callback");
    let secret = kc
        .add_client_with(
            ClientSpec {
                id: "bff",
                confidential: true,
                first_party: true,
                grants: &[GrantType::AuthorizationCode, GrantType::RefreshToken],
                scope: "openid profile email offline_access photos:read",
                audiences: &[API],
                redirect_uris: &[&redirect],
                resource_servers: &[],
            },
            |c| {
                c.post_logout_redirect_uris =
                    vec![RedirectUri::register(&format!("{base}/")).unwrap()];
                c.backchannel_logout = Some(
                    BackchannelLogout::register(&format!("{base}/bff/backchannel-logout"), true)
                        .unwrap(),
                );
            },
        )
        .await
        .unwrap();
    (kc, secret)
}

/// A BFF on SQLite in front of a fresh Keycard sharing its clock.
pub(crate) async fn bff_on_keycard(
    adjust: impl FnOnce(&mut keycard_server::Settings),
) -> (TestServer, BffApp) {
    bff_on_keycard_with(adjust, |_| {}).await
}

/// As [`bff_on_keycard`], with the BFF's settings adjusted too.
pub(crate) async fn bff_on_keycard_with(
    adjust: impl FnOnce(&mut keycard_server::Settings),
    adjust_bff: impl FnOnce(&mut Settings),
) -> (TestServer, BffApp) {
    let pending = support::reserve().await;
    let (kc, secret) = keycard(&pending.base, adjust).await;
    let (echo_base, echo) = support::echo_upstream().await;
    let mut settings = support::settings(
        &kc.base,
        "bff",
        &secret,
        &pending.base,
        &echo_base,
        support::session_key(),
    );
    settings.http_timeout = std::time::Duration::from_secs(10);
    adjust_bff(&mut settings);
    let (store, _) = support::sqlite_store().await;
    let app = pending.start(settings, store, kc.clock.clone(), echo).await;
    (kc, app)
}

use keycard_bff::Settings;

/// Follows a sign-in from `/bff/login` until the provider redirects back to the callback;
/// returns the callback URL without visiting it.
pub(crate) async fn until_callback(
    agent: &mut Agent,
    kc: &TestServer,
    app: &BffApp,
    return_to: &str,
) -> String {
    let start = format!(
        "{}/bff/login?return_to={}",
        app.base,
        url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
    );
    let r = agent.get(&start).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let mut next = r.location.unwrap();
    for _ in 0..8 {
        if next.starts_with(&format!("{}/bff/callback", app.base)) {
            return next;
        }
        let r = if next.starts_with(&format!("{}/login", kc.base)) {
            let page = agent.get(&next).await;
            let input = |name: &str| {
                let needle = format!("name=\"{name}\" value=\"");
                let start = page.body.find(&needle).unwrap() + needle.len();
                page.body[start..][..page.body[start..].find('"').unwrap()].to_owned()
            };
            let (txn, csrf) = (input("txn"), input("csrf"));
            let form = [
                ("txn", txn.as_str()),
                ("csrf", csrf.as_str()),
                ("username", "alice"),
                ("password", PASSWORD),
            ];
            agent
                .post_form(&kc.url("/login"), &form, &[("origin", &kc.base)])
                .await
        } else {
            agent.get(&next).await
        };
        next = r
            .location
            .unwrap_or_else(|| panic!("no redirect from {next}: {} {}", r.status, r.body));
    }
    panic!("the sign-in never came back to the BFF");
}

/// A whole sign-in; returns the callback's answer.
pub(crate) async fn sign_in(
    agent: &mut Agent,
    kc: &TestServer,
    app: &BffApp,
    return_to: &str,
) -> Resp {
    let cb = until_callback(agent, kc, app, return_to).await;
    agent.get(&cb).await
}

#[tokio::test]
async fn sign_in_session_cookies_proxy_and_logout() {
    let (kc, app) = bff_on_keycard(|_| {}).await;
    let mut agent = Agent::new();
    let anon = agent.api("GET", &format!("{}/bff/session", app.base)).await;
    assert_eq!(
        (anon.status, anon.json()),
        (200, serde_json::json!({"authenticated": false}))
    );

    // The login-state cookie: __Host-, HttpOnly, Secure, SameSite=Lax, Path=/, no Domain.
    let login = agent
        .get(&format!("{}/bff/login?return_to=/photos", app.base))
        .await;
    let lc = login.set_cookie("__Host-bff-login").unwrap().to_owned();
    assert!(
        lc.ends_with("; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600"),
        "{lc}"
    );
    assert!(!lc.to_ascii_lowercase().contains("domain"), "{lc}");
    let auth = login.location.unwrap();
    assert!(auth.starts_with(&kc.url("/authorize?")), "{auth}");
    for (k, v) in [
        ("response_type", "code"),
        ("client_id", "bff"),
        ("code_challenge_method", "S256"),
    ] {
        assert_eq!(param(&auth, k).as_deref(), Some(v), "{auth}");
    }
    assert_eq!(
        param(&auth, "redirect_uri").unwrap(),
        format!("{}/bff/callback", app.base)
    );
    assert!(
        param(&auth, "state").unwrap().len() >= 43 && param(&auth, "nonce").unwrap().len() >= 43
    );
    assert_eq!(param(&auth, "code_challenge").unwrap().len(), 43);

    let done = sign_in(&mut agent, &kc, &app, "/photos?x=1").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some(format!("{}/photos?x=1", app.base).as_str())
    );
    assert_eq!(done.header("cache-control"), Some("no-store"));
    // The session cookie: __Host-, Secure, HttpOnly, SameSite=Strict, Path=/, no Domain; its
    // value is 256 random bits, stored only as a hash.
    let sc = done.set_cookie("__Host-bff-session").unwrap().to_owned();
    assert!(
        sc.contains("; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age="),
        "{sc}"
    );
    assert!(!sc.to_ascii_lowercase().contains("domain"), "{sc}");
    let value = agent.cookie(&app.base, "__Host-bff-session").unwrap();
    assert_eq!(value.len(), 43);
    // The store knows the session by the cookie's SHA-256 only, and its tokens are sealed.
    let id = keycard_protocol::Secret::<keycard_bff::store::BffSessionKind>::parse(&value)
        .unwrap()
        .hash();
    let row = app
        .store
        .session(&id, UnixTime(kc.clock.now_secs()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.generation, 0);
    assert!(
        !String::from_utf8_lossy(&row.tokens).contains("eyJ"),
        "tokens are encrypted at rest"
    );
    assert!(
        done.set_cookie("__Host-bff-login")
            .unwrap()
            .contains("Max-Age=0")
    );

    let s = agent.api("GET", &format!("{}/bff/session", app.base)).await;
    let j = s.json();
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.header("cache-control"), Some("no-store"));
    assert_eq!(j["authenticated"], true);
    assert_eq!(j["name"], "alice Example");
    assert_eq!(j["email"], "alice@example.com");
    assert_eq!(j["logout_url"], "/bff/logout");
    assert!(j["expires_at"].as_i64().unwrap() > kc.clock.now_secs());
    assert!(
        !s.body.contains("eyJ"),
        "no token reaches the browser: {}",
        s.body
    );

    // An API call through the proxy: the token is attached, cookies and the CSRF header are not.
    let r = agent
        .api("GET", &format!("{}/api/echo/photos?page=2", app.base))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = r.json();
    assert_eq!(seen["target"], "/up/api/echo/photos?page=2");
    assert_eq!(
        (
            seen["bearer"].clone(),
            seen["cookie"].clone(),
            seen["csrf"].clone()
        ),
        (true.into(), false.into(), false.into())
    );
    assert!(r.set_cookies.is_empty(), "upstream cookies are dropped");
    assert_eq!(r.header("x-upstream"), Some("echo"));
    let post = agent
        .send(
            reqwest::Method::POST,
            &format!("{}/api/echo", app.base),
            &[("x-csrf", "1"), ("x-custom", "k")],
            Some("hello".into()),
        )
        .await;
    assert_eq!(
        (post.json()["body"].clone(), post.json()["custom"].clone()),
        ("hello".into(), "k".into())
    );
    // The application's own handler through the layer sees the same session and token.
    let me = agent.api("GET", &format!("{}/me", app.base)).await;
    assert_eq!(me.json()["token"], seen["token"], "{}", me.body);

    // Logout needs the header or the form token; the form token works for a plain form.
    let no_csrf = agent
        .post_form(&format!("{}/bff/logout", app.base), &[], &[])
        .await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
    let bad = agent
        .post_form(
            &format!("{}/bff/logout", app.base),
            &[("csrf_token", "AAAA")],
            &[],
        )
        .await;
    assert_eq!(bad.status, 403);
    let cross = agent
        .post_form(
            &format!("{}/bff/logout", app.base),
            &[("csrf_token", j["csrf_token"].as_str().unwrap())],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross.status, 403);
    let out = agent
        .post_form(
            &format!("{}/bff/logout", app.base),
            &[("csrf_token", j["csrf_token"].as_str().unwrap())],
            &[],
        )
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    // RP-Initiated Logout: to Keycard's end_session_endpoint with the id token as the hint,
    // the registered post-logout URI, the client and a state.
    let to = out.location.clone().unwrap();
    assert!(to.starts_with(&kc.url("/logout?")), "{to}");
    assert!(
        param(&to, "id_token_hint").is_some_and(|h| h.starts_with("eyJ")),
        "{to}"
    );
    assert_eq!(
        param(&to, "post_logout_redirect_uri").unwrap(),
        format!("{}/", app.base)
    );
    assert_eq!(param(&to, "client_id").as_deref(), Some("bff"));
    let state = param(&to, "state").unwrap();
    let back = agent.get(&to).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let landed = back.location.unwrap();
    assert!(landed.starts_with(&format!("{}/?", app.base)), "{landed}");
    assert_eq!(param(&landed, "state"), Some(state));
    // Keycard's session is over too: prompt=none now answers login_required.
    let (_, challenge) = keycard_testkit::pkce();
    let silent = url::Url::parse_with_params(
        &kc.url("/authorize"),
        [
            ("response_type", "code"),
            ("client_id", "bff"),
            ("redirect_uri", &format!("{}/bff/callback", app.base)),
            ("scope", "openid"),
            ("prompt", "none"),
            ("state", "s"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let r = agent.get(silent.as_str()).await;
    assert_eq!(
        param(r.location.as_deref().unwrap(), "error").as_deref(),
        Some("login_required")
    );
    assert!(
        out.set_cookie("__Host-bff-session")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        app.counter.revoke.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the refresh token was revoked"
    );
    agent.set_cookie(&app.base, "__Host-bff-session", &value);
    let after = agent.api("GET", &format!("{}/api/echo", app.base)).await;
    assert_eq!(
        (after.status, after.json()["error"].clone()),
        (401, "login_required".into())
    );
    assert_eq!(after.header("cache-control"), Some("no-store"));
}

trait NowSecs {
    fn now_secs(&self) -> i64;
}
impl NowSecs for Arc<keycard_server::ManualClock> {
    fn now_secs(&self) -> i64 {
        use keycard_protocol::Clock as _;
        self.now().secs()
    }
}

#[tokio::test]
async fn bba_s6_1_3_3_csrf_header_and_fetch_metadata_are_required() {
    let (kc, app) = bff_on_keycard(|_| {}).await;
    let mut agent = Agent::new();
    sign_in(&mut agent, &kc, &app, "/").await;
    for path in ["/bff/session", "/api/echo", "/me"] {
        let url = format!("{}{path}", app.base);
        let cases: [(&str, &[(&str, &str)]); 4] = [
            ("no header", &[]),
            ("wrong value", &[("x-csrf", "0")]),
            (
                "cross-site",
                &[("x-csrf", "1"), ("sec-fetch-site", "cross-site")],
            ),
            (
                "cross-site without header",
                &[("sec-fetch-site", "cross-site")],
            ),
        ];
        for (name, headers) in cases {
            let r = agent.send(reqwest::Method::GET, &url, headers, None).await;
            assert_eq!(r.status, 403, "{path} {name}: {}", r.body);
            assert_eq!(r.json()["error"], "access_denied");
        }
        let ok = agent
            .send(
                reqwest::Method::GET,
                &url,
                &[("x-csrf", "1"), ("sec-fetch-site", "same-origin")],
                None,
            )
            .await;
        assert_eq!(ok.status, 200, "{path}: {}", ok.body);
    }
}

#[tokio::test]
async fn rfc9700_s4_11_1_return_to_open_redirect_table() {
    let (kc, app) = bff_on_keycard(|_| {}).await;
    let mut agent = Agent::new();
    let table = [
        ("/photos/1", "/photos/1"),
        ("/a?b=c#d", "/a?b=c#d"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/%09/evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("https://evil.example", "/"),
        ("http:evil.example", "/"),
        ("/..//evil.example", "/"),
        ("/%2F%2Fevil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
    ];
    for (raw, want) in table {
        let r = sign_in(&mut agent, &kc, &app, raw).await;
        assert_eq!(r.status, 303, "{raw:?}: {}", r.body);
        assert_eq!(
            r.location.unwrap(),
            format!("{}{want}", app.base),
            "return_to {raw:?}"
        );
    }
}

#[tokio::test]
async fn rfc9207_callback_with_bad_state_iss_or_replayed_code_makes_no_session() {
    let (kc, app) = bff_on_keycard(|_| {}).await;
    let tamper = |cb: &str, name: &str, value: Option<&str>| {
        let mut u = url::Url::parse(cb).unwrap();
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| k != name)
            .collect();
        let mut q = u.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        if let Some(v) = value {
            q.append_pair(name, v);
        }
        drop(q);
        u.to_string()
    };
    let cases = [
        ("state", Some("forged-state")),
        ("state", None),
        ("iss", Some("http://evil.example")),
        ("iss", Some(&format!("{}/", kc.base) as &str)),
        // Keycard advertises RFC 9207 support, so a missing iss is a mix-up too.
        ("iss", None),
    ];
    for (name, value) in cases {
        let mut agent = Agent::new();
        let cb = until_callback(&mut agent, &kc, &app, "/").await;
        let codes = app.counter.codes();
        let r = agent.get(&tamper(&cb, name, value)).await;
        assert_eq!(r.status, 400, "{name}={value:?}: {}", r.body);
        assert!(r.set_cookie("__Host-bff-session").is_none());
        assert_eq!(
            app.counter.codes(),
            codes,
            "{name}={value:?}: the code was sent to the token endpoint"
        );
        // The pending login is gone: the genuine callback cannot complete it either.
        let genuine = agent.get(&cb).await;
        assert_eq!(genuine.status, 400, "{}", genuine.body);
        assert_eq!(app.counter.codes(), codes);
        let s = agent.api("GET", &format!("{}/bff/session", app.base)).await;
        assert_eq!(s.json()["authenticated"], false);
    }
    // A replayed callback (the same URL and the old login cookie) redeems nothing.
    let mut agent = Agent::new();
    let cb = until_callback(&mut agent, &kc, &app, "/").await;
    let login_cookie = agent.cookie(&app.base, "__Host-bff-login").unwrap();
    assert_eq!(agent.get(&cb).await.status, 303);
    let codes = app.counter.codes();
    let mut attacker = Agent::new();
    attacker.set_cookie(&app.base, "__Host-bff-login", &login_cookie);
    let replay = attacker.get(&cb).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(replay.set_cookie("__Host-bff-session").is_none());
    assert_eq!(app.counter.codes(), codes, "a replayed code was redeemed");
    // No login cookie at all.
    let r = Agent::new().get(&cb).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn bba_s6_1_3_6_proxy_allowlist_and_traversal_table() {
    let (kc, app) = bff_on_keycard(|_| {}).await;
    let mut agent = Agent::new();
    sign_in(&mut agent, &kc, &app, "/").await;
    let cookie = format!(
        "__Host-bff-session={}",
        agent.cookie(&app.base, "__Host-bff-session").unwrap()
    );
    let h = [("cookie", cookie.as_str()), ("x-csrf", "1")];
    let table: &[(&str, &str, u16)] = &[
        ("GET", "/api/echo", 200),
        ("GET", "/api/echo/", 200),
        ("GET", "/api/echo/a/b?q=../x", 200),
        ("POST", "/api/echo/a", 200),
        ("GET", "/api/ro/x", 200),
        ("DELETE", "/api/echo/a", 405),
        ("POST", "/api/ro", 405),
        ("GET", "/api", 403),
        ("GET", "/api/", 403),
        ("GET", "/api/other", 403),
        ("GET", "/api/echox", 403),
        ("GET", "/api/ECHO", 403),
        ("GET", "/api/echo/../ro", 403),
        ("GET", "/api/echo/./a", 403),
        ("GET", "/api/echo/%2e%2e/ro", 403),
        ("GET", "/api/echo/%2E%2E/ro", 403),
        ("GET", "/api/echo/..%2fro", 403),
        ("GET", "/api/echo%2f..%2fro", 403),
        ("GET", "/api/echo/%252e%252e/ro", 403),
        ("GET", "/api/echo/%c0%ae%c0%ae/ro", 403),
        ("GET", "/api/echo\\..\\ro", 403),
        ("GET", "/api//echo", 403),
        ("GET", "/api/echo//a", 403),
        ("GET", "/api/echo;x=1", 403),
        ("GET", "/api/%65cho", 403),
        ("GET", "/api/other/../echo", 403),
    ];
    for (method, target, want) in table {
        let got = support::raw_status(&app.base, method, target, &h).await;
        assert_eq!(got, *want, "{method} {target}");
    }
    // Everything that reached the upstream was under an allowlisted prefix.
    for seen in app.echo.seen.lock().unwrap().iter() {
        let t = seen["target"].as_str().unwrap();
        assert!(
            t.starts_with("/up/api/echo") || t.starts_with("/up/api/ro"),
            "{t}"
        );
    }
    // Without a session: 401 JSON, never a redirect.
    let r = support::raw_status(&app.base, "GET", "/api/echo", &[("x-csrf", "1")]).await;
    assert_eq!(r, 401);
}

#[tokio::test]
async fn end_sessions_is_the_hook_for_revocation_feed_events() {
    let (kc, app) = bff_on_keycard(|_| {}).await;
    let mut agent = Agent::new();
    sign_in(&mut agent, &kc, &app, "/").await;
    let s = agent
        .api("GET", &format!("{}/bff/session", app.base))
        .await
        .json();
    let sub = keycard_protocol::Subject::parse(s["sub"].as_str().unwrap()).unwrap();
    // A `sub` event of the feed (user disabled) ends the user's sessions.
    assert_eq!(app.bff.end_sessions(Some(&sub), None).await.unwrap(), 1);
    let after = agent.api("GET", &format!("{}/bff/session", app.base)).await;
    assert_eq!(after.json()["authenticated"], false);
    assert_eq!(app.bff.end_sessions(None, None).await.unwrap(), 0);
}

/// Polls `/bff/session` until it says signed out (back-channel delivery is asynchronous).
async fn wait_signed_out(agent: &mut Agent, app: &BffApp) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s = agent
            .api("GET", &format!("{}/bff/session", app.base))
            .await
            .json();
        if s["authenticated"] == false {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the BFF session did not end: {s}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn backchannel_logout_from_keycard_ends_the_bff_session() {
    let (kc, app) = bff_on_keycard(|_| {}).await;
    let mut agent = Agent::new();
    sign_in(&mut agent, &kc, &app, "/").await;
    let s = agent.api("GET", &format!("{}/bff/session", app.base)).await;
    assert_eq!(s.json()["authenticated"], true);
    // The user signs out at Keycard itself (its confirmation page, no RP involved).
    let page = agent.get(&kc.url("/logout")).await;
    let needle = "name=\"csrf\" value=\"";
    let start = page.body.find(needle).unwrap() + needle.len();
    let csrf = page.body[start..][..page.body[start..].find('"').unwrap()].to_owned();
    let done = agent
        .post_form(
            &kc.url("/logout"),
            &[("csrf", csrf.as_str())],
            &[("origin", &kc.base)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    wait_signed_out(&mut agent, &app).await;
}
