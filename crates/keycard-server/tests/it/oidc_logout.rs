//! OIDC RP-Initiated Logout 1.0 (the `end_session_endpoint`) and Back-Channel Logout 1.0 (the
//! logout tokens Keycard POSTs to clients), over real HTTP: a small receiver on 127.0.0.1
//! plays the client's back-channel endpoint.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keycard_protocol::policy::BackchannelLogout;
use keycard_protocol::redirect::RedirectUri;
use keycard_testkit::{
    API, Browser, ClientSpec, PASSWORD, REDIRECT, Resp, TestServer, authorize_query, jwt_parts,
};
use serde_json::Value;

const BYE: &str = "https://app.example.com/bye";

/// What the back-channel receiver got, and how it answers (a status per call, then 200).
#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<String>>,
    answers: Mutex<Vec<u16>>,
}

async fn receiver(answers: Vec<u16>) -> (Arc<Receiver>, String) {
    let rx = Arc::new(Receiver {
        answers: Mutex::new(answers),
        ..Receiver::default()
    });
    let state = rx.clone();
    let app = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(
            move |axum::Form(f): axum::Form<std::collections::HashMap<String, String>>| {
                let state = state.clone();
                async move {
                    state
                        .got
                        .lock()
                        .unwrap()
                        .push(f.get("logout_token").cloned().unwrap_or_default());
                    let mut a = state.answers.lock().unwrap();
                    let code = if a.is_empty() { 200 } else { a.remove(0) };
                    axum::http::StatusCode::from_u16(code).unwrap()
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/backchannel", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (rx, url)
}

impl Receiver {
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{} of {n} deliveries", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A server whose web app registered a post-logout URI and, with `bcl`, a back-channel URI.
async fn setup(bcl: Option<&str>) -> TestServer {
    let s = TestServer::start().await;
    s.add_api(API, "photos:read", 600).await;
    s.add_user("alice").await;
    s.add_client_with(ClientSpec::web("web"), |c| {
        c.post_logout_redirect_uris = vec![RedirectUri::register(BYE).unwrap()];
        c.backchannel_logout = bcl.map(|u| BackchannelLogout::register(u, true).unwrap());
    })
    .await;
    s
}

/// Signs alice in and returns her id token (the browser keeps the session).
async fn id_token(s: &TestServer, b: &mut Browser) -> String {
    let (q, v) = authorize_query("web", "openid", "");
    let code = b
        .authorize(&q, "alice", PASSWORD)
        .await
        .location_param("code")
        .unwrap();
    let t: Value = s
        .http
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "web"),
            ("code_verifier", &v),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    t["id_token"].as_str().unwrap().to_owned()
}

async fn signed_in(b: &mut Browser) -> bool {
    let (q, _) = authorize_query("web", "openid", "");
    let r = b.get(&format!("/authorize?{q}")).await;
    r.location_param("code").is_some()
}

fn logout_query(hint: &str, uri: &str, state: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", hint)
        .append_pair("post_logout_redirect_uri", uri)
        .append_pair("state", state)
        .finish()
}

#[tokio::test]
async fn rp_logout_s2_a_valid_hint_ends_the_session_and_returns_with_state() {
    let s = setup(None).await;
    let mut b = Browser::new(&s);
    let hint = id_token(&s, &mut b).await;
    assert!(signed_in(&mut b).await);
    let r = b
        .get(&format!("/logout?{}", logout_query(&hint, BYE, "st-9")))
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.location.as_deref(),
        Some(format!("{BYE}?state=st-9").as_str())
    );
    assert!(!signed_in(&mut b).await);
    // The discovery document says where this is.
    let d: Value = s.get_json("/.well-known/openid-configuration").await;
    assert_eq!(d["end_session_endpoint"], s.url("/logout"));
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);
}

#[tokio::test]
async fn rp_logout_s3_never_to_an_unregistered_uri_and_never_on_a_bad_hint() {
    let s = setup(None).await;
    let mut b = Browser::new(&s);
    let hint = id_token(&s, &mut b).await;
    let mut forged = hint.clone();
    forged.pop();
    let cases: Vec<(String, &str)> = vec![
        (
            logout_query(&hint, "https://evil.example.com/bye", "x"),
            "unregistered",
        ),
        (
            logout_query(&hint, "https://app.example.com/bye/", "x"),
            "not exact",
        ),
        (logout_query(&forged, BYE, "x"), "forged hint"),
        (
            logout_query(&hint, BYE, &"x".repeat(513)),
            "oversized state",
        ),
        (
            format!("{}&client_id=other", logout_query(&hint, BYE, "x")),
            "another client",
        ),
    ];
    for (q, what) in cases {
        let r: Resp = b.get(&format!("/logout?{q}")).await;
        assert_eq!((r.status, r.location.as_deref()), (400, None), "{what}");
    }
    assert!(signed_in(&mut b).await, "nothing above signed alice out");
}

#[tokio::test]
async fn rp_logout_s2_without_a_hint_the_user_confirms_on_a_csrf_protected_page() {
    let s = setup(None).await;
    let mut b = Browser::new(&s);
    id_token(&s, &mut b).await;
    let page = b
        .get(&format!(
            "/logout?client_id=web&post_logout_redirect_uri={BYE}"
        ))
        .await;
    assert_eq!((page.status, page.location.as_deref()), (200, None));
    assert!(page.body.contains("App web"), "names the client");
    let csrf = page.input("csrf").unwrap();
    // A cross-site post (no Origin of ours) and a wrong token change nothing.
    let r = b.post_form("/logout", &[("csrf", "not-the-token")]).await;
    assert_eq!(r.status, 403);
    assert!(signed_in(&mut b).await);
    let r = b.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(
        (r.status, r.location),
        (200, None),
        "our own signed-out page"
    );
    assert!(!signed_in(&mut b).await);
}

#[tokio::test]
async fn bcl_s2_4_logout_sends_a_signed_logout_token_with_sid() {
    let (rx, url) = receiver(vec![]).await;
    let s = setup(Some(&url)).await;
    let mut b = Browser::new(&s);
    let hint = id_token(&s, &mut b).await;
    let id_claims = jwt_parts(&hint).1;
    let r = b
        .get(&format!("/logout?{}", logout_query(&hint, BYE, "s")))
        .await;
    assert_eq!(r.status, 303);
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    let (header, claims) = jwt_parts(&got[0]);
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(header["kid"], jwt_parts(&hint).0["kid"]);
    assert_eq!(claims["iss"], s.base);
    assert_eq!(claims["aud"], "web");
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert_eq!(claims["sid"], id_claims["sid"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    assert!(claims["exp"].as_i64() > claims["iat"].as_i64());
    // The signature checks against the published keys, as a relying party would check it.
    let jwks: Value = s.get_json("/jwks.json").await;
    let set = keycard_jose::parse_jwks(&jwks).unwrap();
    let now = claims["iat"].as_i64().unwrap();
    let verified: Value = keycard_jose::verify(&got[0], &set, "logout+jwt", now).unwrap();
    assert_eq!(verified, claims);
}

#[tokio::test]
async fn bcl_s2_8_a_failed_delivery_is_retried() {
    let (rx, url) = receiver(vec![503]).await;
    let s = setup(Some(&url)).await;
    let mut b = Browser::new(&s);
    let hint = id_token(&s, &mut b).await;
    b.get(&format!("/logout?{}", logout_query(&hint, BYE, "s")))
        .await;
    rx.wait_for(1, Duration::from_secs(5)).await;
    // The retry is due five seconds later on the server's clock.
    s.clock.advance(6);
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    assert_ne!(jwt_parts(&got[0]).1["jti"], jwt_parts(&got[1]).1["jti"]);
    // Once delivered, it is not sent again.
    s.clock.advance(60);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.got.lock().unwrap().len(), 2);
}
