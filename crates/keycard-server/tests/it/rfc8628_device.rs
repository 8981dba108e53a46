//! The device authorization grant (RFC 8628): the device authorization endpoint, polling with
//! its errors and timings on the manual clock, `slow_down`, one winner under parallel polls, the
//! verification page (pre-filled, never skipping the confirmation), denial, expiry, the throttle
//! on code entry, and the grant being like any other (consent remembered, refresh tokens only
//! with `offline_access`, revocable).

use keycard_protocol::policy::GrantType;
use keycard_protocol::{Audience, ClientId, UserId};
use keycard_store::Store;
use keycard_testkit::{API, Browser, ClientSpec, PASSWORD, Resp, TestServer};
use serde_json::Value;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn setup() -> (TestServer, UserId) {
    let s = TestServer::start().await;
    let alice = s.add_user("alice").await;
    s.add_api(API, "photos:read", 900).await;
    s.add_client(ClientSpec {
        grants: &[GrantType::DeviceCode, GrantType::RefreshToken],
        redirect_uris: &[],
        ..ClientSpec::web("cli")
    })
    .await;
    s.add_client(ClientSpec::web("web")).await;
    (s, alice.id)
}

/// `POST /device_authorization` as the public client `cli`.
async fn authorize(s: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let mut form = form.to_vec();
    form.push(("client_id", "cli"));
    let r = s
        .http
        .post(s.url("/device_authorization"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Starts a device flow for `scope`; returns (device_code, user_code).
async fn start(s: &TestServer, scope: &str) -> (String, String) {
    start_with(s, &[("scope", scope)]).await
}

/// Starts a device flow for `scope` on the test API (RFC 8707 `resource`).
async fn start_for_api(s: &TestServer, scope: &str) -> (String, String) {
    start_with(s, &[("scope", scope), ("resource", API)]).await
}

async fn start_with(s: &TestServer, form: &[(&str, &str)]) -> (String, String) {
    let (status, j) = authorize(s, form).await;
    assert_eq!(status, 200, "{j}");
    (
        j["device_code"].as_str().unwrap().to_owned(),
        j["user_code"].as_str().unwrap().to_owned(),
    )
}

/// One poll of the token endpoint by `client`.
async fn poll_as(s: &TestServer, client: &str, device_code: &str) -> (u16, Value) {
    let r = s
        .http
        .post(s.url("/token"))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn poll(s: &TestServer, device_code: &str) -> (u16, Value) {
    poll_as(s, "cli", device_code).await
}

fn error(j: &Value) -> &str {
    j["error"].as_str().unwrap_or("-")
}

/// Posts the `/device` form with this browser's CSRF token (fetching the page first if the
/// browser has none yet).
async fn device_post(b: &mut Browser, fields: &[(&str, &str)]) -> Resp {
    let page = b.get("/device").await;
    let csrf = page.input("csrf").unwrap();
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    b.post_form("/device", &form).await
}

/// Enters the code, signs in if asked, and answers `decision` on the confirmation page.
async fn answer(b: &mut Browser, user_code: &str, decision: &str) -> Resp {
    let r = device_post(b, &[("user_code", user_code), ("action", "enter")]).await;
    let r = if r.body.contains("id=\"password\"") {
        device_post(
            b,
            &[
                ("user_code", user_code),
                ("action", "sign_in"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await
    } else {
        r
    };
    assert!(
        r.body.contains("id=\"approve\""),
        "no confirmation: {}",
        r.body
    );
    device_post(b, &[("user_code", user_code), ("action", decision)]).await
}

#[tokio::test]
async fn s3_1_s3_2_device_authorization_response_and_discovery() {
    let (s, _) = setup().await;
    let d: Value = s
        .http
        .get(s.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["device_authorization_endpoint"],
        s.url("/device_authorization")
    );
    assert!(
        d["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&DEVICE_GRANT.into())
    );
    let r = s
        .http
        .post(s.url("/device_authorization"))
        .form(&[("client_id", "cli"), ("scope", "openid offline_access")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let j: Value = r.json().await.unwrap();
    assert_eq!(
        j["device_code"].as_str().unwrap().len(),
        43,
        "256 bits: {j}"
    );
    let user_code = j["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9, "{j}");
    assert!(
        user_code.char_indices().all(|(i, c)| if i == 4 {
            c == '-'
        } else {
            "BCDFGHJKLMNPQRSTVWXZ".contains(c)
        }),
        "{user_code}"
    );
    assert_eq!(j["verification_uri"], s.url("/device"));
    assert_eq!(
        j["verification_uri_complete"],
        s.url(&format!("/device?user_code={user_code}"))
    );
    assert_eq!(
        (j["expires_in"].as_i64(), j["interval"].as_i64()),
        (Some(600), Some(5))
    );
    // Two requests, two different codes.
    let (other, other_user) = start(&s, "openid").await;
    assert_ne!(other, j["device_code"].as_str().unwrap());
    assert_ne!(other_user, user_code);
}

#[tokio::test]
async fn s3_1_only_clients_registered_for_the_grant_and_what_they_may_ask() {
    let (s, _) = setup().await;
    let post = |form: Vec<(&'static str, &'static str)>| {
        let http = s.http.clone();
        let url = s.url("/device_authorization");
        async move {
            let r = http.post(url).form(&form).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (st, j) = post(vec![("client_id", "web"), ("scope", "openid")]).await;
    assert_eq!((st, error(&j)), (400, "unauthorized_client"));
    let (st, j) = post(vec![("client_id", "nobody")]).await;
    assert_eq!((st, error(&j)), (401, "invalid_client"));
    let (st, j) = post(vec![]).await;
    assert_eq!((st, error(&j)), (401, "invalid_client"));
    let (st, j) = post(vec![("client_id", "cli"), ("scope", "admin")]).await;
    assert_eq!((st, error(&j)), (400, "invalid_scope"));
    let (st, j) = post(vec![
        ("client_id", "cli"),
        ("resource", "https://unknown.example"),
    ])
    .await;
    assert_eq!((st, error(&j)), (400, "invalid_target"));
    let (st, j) = post(vec![("client_id", "cli"), ("scope", "a"), ("scope", "b")]).await;
    assert_eq!((st, error(&j)), (400, "invalid_request"));
    let r = s
        .http
        .get(s.url("/device_authorization"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // The web client may not poll with a device code either.
    let (code, _) = start(&s, "openid").await;
    let (st, j) = poll_as(&s, "web", &code).await;
    assert_eq!((st, error(&j)), (400, "unauthorized_client"));
}

#[tokio::test]
async fn s3_5_pending_then_slow_down_grows_the_interval_by_five_seconds() {
    let (s, _) = setup().await;
    let (code, _) = start(&s, "openid").await;
    let (st, j) = poll(&s, &code).await;
    assert_eq!((st, error(&j)), (400, "authorization_pending"));
    // Again within the same second: too fast.
    let (st, j) = poll(&s, &code).await;
    assert_eq!((st, error(&j)), (400, "slow_down"));
    // Five seconds is no longer enough: the interval is now ten, for all later polls.
    s.clock.advance(5);
    assert_eq!(error(&poll(&s, &code).await.1), "slow_down");
    s.clock.advance(15);
    assert_eq!(error(&poll(&s, &code).await.1), "authorization_pending");
    s.clock.advance(14);
    assert_eq!(error(&poll(&s, &code).await.1), "slow_down");
    // Another client's poll of this code changes nothing for it.
    s.add_client(ClientSpec {
        grants: &[GrantType::DeviceCode],
        redirect_uris: &[],
        ..ClientSpec::web("cli2")
    })
    .await;
    s.clock.advance(20);
    let (st, j) = poll_as(&s, "cli2", &code).await;
    assert_eq!((st, error(&j)), (400, "invalid_grant"));
    assert_eq!(error(&poll(&s, &code).await.1), "authorization_pending");
    let (st, j) = poll(&s, "not-a-device-code").await;
    assert_eq!((st, error(&j)), (400, "invalid_grant"));
}

#[tokio::test]
async fn s3_5_expired_token_once_the_code_lives_out() {
    let (s, _) = setup().await;
    let (code, user_code) = start(&s, "openid").await;
    s.clock.advance(599);
    assert_eq!(error(&poll(&s, &code).await.1), "authorization_pending");
    s.clock.advance(1);
    let (st, j) = poll(&s, &code).await;
    assert_eq!((st, error(&j)), (400, "expired_token"));
    // Nor can anyone approve it now.
    let mut b = Browser::new(&s);
    let r = device_post(&mut b, &[("user_code", &user_code), ("action", "enter")]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("not valid or has expired"), "{}", r.body);
}

#[tokio::test]
async fn s3_5_a_denied_request_is_access_denied() {
    let (s, _) = setup().await;
    let (code, user_code) = start(&s, "openid").await;
    let mut b = Browser::new(&s);
    let r = answer(&mut b, &user_code, "deny").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Request denied"), "{}", r.body);
    for _ in 0..2 {
        let (st, j) = poll(&s, &code).await;
        assert_eq!((st, error(&j)), (400, "access_denied"));
        s.clock.advance(5);
    }
    // A denied code cannot be approved afterwards.
    let r = device_post(&mut b, &[("user_code", &user_code), ("action", "approve")]).await;
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test]
async fn s3_4_an_approved_code_is_redeemed_once_like_a_code() {
    let (s, alice) = setup().await;
    let (code, user_code) = start_for_api(&s, "openid offline_access photos:read").await;
    let mut b = Browser::new(&s);
    let r = answer(&mut b, &user_code, "approve").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Device connected"), "{}", r.body);
    // An approved code is answered at once, whatever the interval.
    let r = s
        .http
        .post(s.url("/token"))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", &code),
            ("client_id", "cli"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t: Value = r.json().await.unwrap();
    let (_, claims) = keycard_testkit::jwt_parts(t["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], alice.as_str());
    assert_eq!(claims["client_id"], "cli");
    assert_eq!(claims["scope"], "offline_access openid photos:read");
    assert!(
        claims["aud"].as_array().unwrap().contains(&API.into()),
        "{claims}"
    );
    let (_, id) = keycard_testkit::jwt_parts(t["id_token"].as_str().unwrap());
    assert_eq!(
        (id["aud"].as_str(), id["sub"].as_str()),
        (Some("cli"), Some(alice.as_str()))
    );
    assert!(
        id.get("sid").is_none(),
        "the device is not in the browser's session: {id}"
    );
    let rt = t["refresh_token"]
        .as_str()
        .expect("offline_access gives a refresh token");
    // The consent is remembered for this client and API, like the consent page's.
    let remembered = s
        .store()
        .consent(
            &alice,
            &ClientId::parse("cli").unwrap(),
            Some(&Audience::parse(API).unwrap()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(remembered.to_wire(), "offline_access openid photos:read");
    // A second redemption is refused and, as for a reused code, revokes the grant.
    let (st, j) = poll(&s, &code).await;
    assert_eq!((st, error(&j)), (400, "invalid_grant"));
    let r = s
        .http
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", "cli"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let j: Value = r.json().await.unwrap();
    assert_eq!(error(&j), "invalid_grant");
}

#[tokio::test]
async fn s3_4_refresh_tokens_only_with_offline_access() {
    let (s, _) = setup().await;
    let (code, user_code) = start(&s, "openid profile").await;
    let mut b = Browser::new(&s);
    answer(&mut b, &user_code, "approve").await;
    let (st, t) = poll(&s, &code).await;
    assert_eq!(st, 200, "{t}");
    assert!(t.get("refresh_token").is_none(), "{t}");
    assert!(t["id_token"].is_string(), "{t}");
    assert_eq!(t["scope"], "openid profile");
}

#[tokio::test]
async fn s3_4_parallel_polls_have_exactly_one_winner() {
    let (s, _) = setup().await;
    let (code, user_code) = start(&s, "openid offline_access").await;
    let mut b = Browser::new(&s);
    answer(&mut b, &user_code, "approve").await;
    let polls = (0..16).map(|_| poll(&s, &code));
    let got = futures_util::future::join_all(polls).await;
    let won: Vec<_> = got.iter().filter(|(st, _)| *st == 200).collect();
    let lost = got
        .iter()
        .filter(|(st, j)| *st == 400 && error(j) == "invalid_grant")
        .count();
    assert_eq!((won.len(), lost), (1, 15), "{got:?}");
    assert!(won[0].1["refresh_token"].is_string());
}

#[tokio::test]
async fn s3_3_1_verification_uri_complete_prefills_but_the_user_still_confirms() {
    let (s, _) = setup().await;
    let (code, user_code) = start_for_api(&s, "openid photos:read").await;
    let mut b = Browser::new(&s);
    // Sign in first and approve another request, so consent for this client is remembered.
    let (_, first) = start_for_api(&s, "openid photos:read").await;
    answer(&mut b, &first, "approve").await;
    let complete = format!("/device?user_code={}", user_code.to_lowercase());
    let page = b.get(&complete).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.input("user_code").as_deref(), Some(user_code.as_str()));
    assert!(!page.body.contains("id=\"approve\""), "{}", page.body);
    assert!(
        page.body.contains("Signed in as <strong>alice</strong>"),
        "{}",
        page.body
    );
    // Visiting the link decided nothing.
    assert_eq!(error(&poll(&s, &code).await.1), "authorization_pending");
    // Submitting the code shows the confirmation, even with the consent remembered.
    let r = device_post(&mut b, &[("user_code", &user_code), ("action", "enter")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for shown in [
        "Allow App cli on your device?",
        "<strong>photos:read</strong>",
        "<strong>openid</strong>",
        "<code>127.0.0.1</code>",
        "2027-01-15 08:00:00 UTC",
        "If you did not just start this on your own device, deny.",
        "id=\"deny\"",
    ] {
        assert!(r.body.contains(shown), "{shown} missing:\n{}", r.body);
    }
    s.clock.advance(5);
    assert_eq!(error(&poll(&s, &code).await.1), "authorization_pending");
}

#[tokio::test]
async fn s3_3_sign_in_on_the_device_page_then_confirm() {
    let (s, _) = setup().await;
    let (code, user_code) = start(&s, "openid").await;
    let mut b = Browser::new(&s);
    let r = device_post(&mut b, &[("user_code", &user_code), ("action", "enter")]).await;
    assert!(r.body.contains("id=\"password\""), "{}", r.body);
    assert!(r.body.contains("Sign in to connect App cli"), "{}", r.body);
    let sign_in = |pw: &'static str| {
        [
            ("user_code", user_code.clone()),
            ("action", "sign_in".into()),
            ("username", "alice".into()),
            ("password", pw.into()),
        ]
    };
    let form = sign_in("wrong");
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = device_post(&mut b, &fields).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("Wrong username or password."), "{}", r.body);
    // Approving without a session only brings the sign-in form back.
    let r = device_post(&mut b, &[("user_code", &user_code), ("action", "approve")]).await;
    assert!(r.body.contains("id=\"password\""), "{}", r.body);
    assert_eq!(error(&poll(&s, &code).await.1), "authorization_pending");
    let form = sign_in(PASSWORD);
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = device_post(&mut b, &fields).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("id=\"approve\""),
        "signing in is not approving: {}",
        r.body
    );
    assert!(b.cookies.contains_key("keycard_session"));
    s.clock.advance(5);
    assert_eq!(error(&poll(&s, &code).await.1), "authorization_pending");
    let r = device_post(&mut b, &[("user_code", &user_code), ("action", "approve")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(poll(&s, &code).await.0, 200);
}

#[tokio::test]
async fn s5_1_code_entry_is_throttled_per_browser_and_per_address() {
    let (s, _) = setup().await;
    let (_, user_code) = start(&s, "openid").await;
    let wrong = [
        "BBBB-BBBB",
        "CCCC-CCCC",
        "DDDD-DDDD",
        "FFFF-FFFF",
        "GGGG-GGGG",
    ];
    let entry = |code: &str| {
        [
            ("user_code", code.to_owned()),
            ("action", "enter".to_owned()),
        ]
    };
    async fn send(b: &mut Browser, f: &[(&str, String); 2]) -> Resp {
        device_post(b, &[(f[0].0, f[0].1.as_str()), (f[1].0, f[1].1.as_str())]).await
    }
    // Right codes are never counted: a browser may enter its own code again and again.
    let mut a = Browser::new(&s);
    for _ in 0..8 {
        assert_eq!(send(&mut a, &entry(&user_code)).await.status, 200);
    }
    // Five wrong codes; then this browser waits, even with the right code.
    for w in wrong {
        assert_eq!(send(&mut a, &entry(w)).await.status, 400);
    }
    let r = send(&mut a, &entry(&user_code)).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    // A malformed code is refused without costing anything.
    assert_eq!(send(&mut a, &entry("not a code")).await.status, 400);
    // Other browsers from the same address get their own five, until the address has had 20.
    for _ in 0..3 {
        let mut other = Browser::new(&s);
        for w in wrong {
            assert_eq!(send(&mut other, &entry(w)).await.status, 400);
        }
    }
    let mut fresh = Browser::new(&s);
    let r = send(&mut fresh, &entry(&user_code)).await;
    assert_eq!(r.status, 429, "the address is locked: {}", r.body);
    // Another address is not.
    let mut elsewhere = Browser::from_address(&s, [127, 0, 0, 2]);
    assert_eq!(send(&mut elsewhere, &entry(&user_code)).await.status, 200);
    // Locks pass with time.
    s.clock.advance(60);
    assert_eq!(send(&mut fresh, &entry(&user_code)).await.status, 200);
}

#[tokio::test]
async fn device_page_forms_need_the_csrf_token_and_our_origin() {
    let (s, _) = setup().await;
    let (_, user_code) = start(&s, "openid").await;
    let mut b = Browser::new(&s);
    let page = b.get("/device").await;
    assert_eq!(page.status, 200);
    let r = b
        .post_form(
            "/device",
            &[
                ("user_code", &user_code),
                ("action", "enter"),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let csrf = page.input("csrf").unwrap();
    let r = b
        .http()
        .post(s.url("/device"))
        .header("cookie", b.cookie_header())
        .header("origin", "https://evil.example")
        .form(&[
            ("user_code", user_code.as_str()),
            ("action", "enter"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn s3_4_a_user_disabled_after_approving_gets_no_tokens() {
    let (s, _) = setup().await;
    let (code, user_code) = start(&s, "openid offline_access").await;
    let mut b = Browser::new(&s);
    answer(&mut b, &user_code, "approve").await;
    s.store()
        .set_user_disabled(
            &keycard_protocol::Username::parse("alice").unwrap(),
            true,
            s.revocation(),
        )
        .await
        .unwrap();
    let (st, j) = poll(&s, &code).await;
    assert_eq!((st, error(&j)), (400, "invalid_grant"));
}
