//! The README's quick start: `keycard demo` prints where everything is and how to use it, and
//! the printed commands work: the machine client's `curl`, the gateway's two routes, and the
//! by-hand `/demo` page with the printed password.

use crate::demo::Demo;
use crate::{API, Cookies, http, query, sign_in_with_reqwest, tag_attr};

/// The word after `marker` in `text`.
fn word_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let at = text.find(marker)? + marker.len();
    text[at..].split_whitespace().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_demo_command_serves_the_demo() {
    // The quick start's `keycard demo`, as a person runs it (no --json), on free ports.
    let demo = Demo::start_with(false).await;
    let banner = demo.banner.clone();
    let app = word_after(&banner, "Web app:      open ").expect("the app URL");
    let issuer = word_after(&banner, "Keycard:      ")
        .expect("the issuer")
        .to_owned();
    let gateway = word_after(&banner, "Gateway:      ")
        .expect("the gateway")
        .to_owned();
    assert!(app.starts_with("http://127.0.0.1:"), "{banner}");
    let password = word_after(&banner, "sign in as  alice / ")
        .expect("the demo password")
        .to_owned();
    let secret = word_after(&banner, "client_secret=")
        .expect("the demo-m2m secret")
        .to_owned();
    assert!(banner.contains("client_id=demo-m2m"), "{banner}");
    assert!(
        banner.contains(&format!("by hand: {issuer}/demo")),
        "{banner}"
    );

    // The banner's curl command: client_credentials with the printed secret.
    let http = http();
    let r = http
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-m2m"),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .expect("token request");
    let status = r.status();
    let body: serde_json::Value = r.json().await.expect("token JSON");
    assert_eq!(status, reqwest::StatusCode::OK, "{body}\n{}", demo.logs());
    let at = body["access_token"].as_str().expect("access_token");
    let claims = crate::jwt_part(at, 1);
    assert!(
        claims["aud"] == API
            || claims["aud"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == API)),
        "the demo token is for {API}: {claims}"
    );
    // The README's walk through the gateway: both routes take the token.
    let r = http
        .get(format!("{gateway}/photos"))
        .bearer_auth(at)
        .send()
        .await
        .expect("GET /photos");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let r = http
        .post(format!("{gateway}/orders"))
        .bearer_auth(at)
        .send()
        .await
        .expect("POST /orders");
    assert_eq!(r.status(), reqwest::StatusCode::OK);

    // /demo: a page with a "Sign in" link to /authorize.
    let mut cookies = Cookies::default();
    let r = http
        .get(format!("{issuer}/demo"))
        .send()
        .await
        .expect("GET /demo");
    cookies.absorb(&r);
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let page = r.text().await.expect("demo page");
    let href = tag_attr(&page, "id=\"start\"", "href").expect("the sign-in link on /demo");
    assert!(href.starts_with("/authorize?"), "link {href}");

    // The printed password works: follow the link through login and consent to the callback.
    let redirect = format!("{issuer}/demo/callback");
    let authorize = format!("{issuer}{href}");
    let landed = sign_in_with_reqwest(
        &http,
        &mut cookies,
        &authorize,
        &redirect,
        "alice",
        &password,
    )
    .await;
    let q = query(&landed);
    assert!(q.contains_key("code"), "code in {landed}");
    let r = http
        .get(landed.as_str())
        .header(reqwest::header::COOKIE, cookies.header())
        .send()
        .await
        .expect("GET /demo/callback");
    assert_eq!(
        r.status(),
        reqwest::StatusCode::OK,
        "the demo callback page"
    );
}
