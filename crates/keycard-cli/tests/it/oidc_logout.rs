//! `keycard logout-deliveries` against a running server (OIDC Back-Channel Logout 1.0): a
//! client registers a back-channel URI on a small local receiver that answers 500, Alice signs
//! in and logs out with `/logout?id_token_hint=...` (RP-Initiated Logout 1.0 §2), and the
//! administrator sees the failed delivery, its attempts and its error, as JSON and as a table.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{
    APP_REDIRECT as REDIRECT, Cookies, Keycard, PASSWORD, http, query, redeem_code,
    sign_in_with_reqwest, spawn_http,
};

/// A back-channel endpoint that answers 500 and keeps the bodies it was sent.
async fn failing_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/bcl",
        axum::routing::post(move |body: String| {
            seen.lock().unwrap().push(body);
            async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }
        }),
    );
    (format!("{}/bcl", spawn_http(app).await), got)
}

/// Signs Alice in to `web` on `browser`; returns her ID token.
async fn id_token(kc: &Keycard, secret: &str, browser: &mut Cookies) -> String {
    let (verifier, challenge) = keycard_testkit::pkce();
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", "web")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid")
        .append_pair("nonce", "n1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let url = format!("{}/authorize?{q}", kc.base);
    let done = sign_in_with_reqwest(&http(), browser, &url, REDIRECT, "alice", PASSWORD).await;
    let code = &query(&done)["code"];
    let t = redeem_code(&kc.base, ("web", secret), REDIRECT, code, &verifier).await;
    t["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no id_token: {t}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backchannel_logout_s2_5_a_failed_delivery_is_listed_with_its_attempts_and_error() {
    let kc = Keycard::serve().await;
    let (uri, got) = failing_receiver().await;
    let alice = kc.add_user("alice", "Alice", "alice@example.com");
    let web = kc.add_client(
        "web",
        &[
            "--confidential",
            "--first-party",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid",
            "--backchannel-logout-uri",
            &uri,
        ],
    );
    assert_eq!(kc.admin(&["logout-deliveries"], None), json!([]));
    let mut browser = Cookies::default();
    let hint = id_token(&kc, web["client_secret"].as_str().unwrap(), &mut browser).await;
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &hint)
        .finish();
    let r = http()
        .get(format!("{}/logout?{q}", kc.base))
        .header(reqwest::header::COOKIE, browser.header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the signed-out page");

    // The sender looks for due deliveries every second; the first attempt (and its 500) is
    // recorded a moment after that.
    let t0 = Instant::now();
    let listed = loop {
        let listed = kc.admin(&["logout-deliveries"], None);
        if listed[0]["attempts"].as_i64().unwrap_or(0) >= 1 {
            break listed;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no attempt recorded within 10 s: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let d = &listed[0];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        (
            d["client_id"].as_str(),
            d["uri"].as_str(),
            d["sub"].as_str(),
            d["status"].as_str(),
            d["attempts"].as_i64(),
            d["last_error"].as_str(),
            &d["delivered_at"],
        ),
        (
            Some("web"),
            Some(uri.as_str()),
            alice["id"].as_str(),
            Some("pending"),
            Some(1),
            Some("answered HTTP 500"),
            &Value::Null,
        ),
        "{d}"
    );
    // Retried later (5 s after a first failure), not at once.
    let (created, next) = (
        d["created_at"].as_i64().unwrap(),
        d["next_attempt_at"].as_i64().unwrap(),
    );
    assert!(next >= created + 5, "{d}");
    assert!(d["sid"].is_string(), "{d}");
    let bodies = got.lock().unwrap().clone();
    assert!(
        !bodies.is_empty() && bodies.iter().all(|b| b.starts_with("logout_token=")),
        "{bodies:?}"
    );

    // For people: a header and one row with the same facts.
    let out = kc.cli(&["logout-deliveries"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for column in [
        "CLIENT",
        "URI",
        "ATTEMPTS",
        "NEXT ATTEMPT",
        "DELIVERED AT",
        "LAST ERROR",
    ] {
        assert!(lines[0].contains(column), "{text}");
    }
    let row: Vec<&str> = lines[1]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        (row[0], row[1], row[2], row[4]),
        ("web", uri.as_str(), "1", "-"),
        "{text}"
    );
    assert!(row[3].ends_with('Z'), "a UTC time: {text}");
    assert_eq!(row[5..].join(" "), "answered HTTP 500", "{text}");
}
