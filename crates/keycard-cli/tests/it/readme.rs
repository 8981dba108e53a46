//! The README's quick start: `keycard demo` seeds a user, an app, a machine client and an API,
//! prints how to use them, and serves `/demo`.

use std::time::{Duration, Instant};

use crate::{API, Cookies, Keycard, http, query, sign_in_with_reqwest, tag_attr};

/// The word after `marker` in `text`.
fn word_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let at = text.find(marker)? + marker.len();
    text[at..].split_whitespace().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_demo_command_serves_the_demo() {
    let mut kc = Keycard::new();
    kc.start("demo").await;

    // The banner (stdout) names the user, the password and the machine client's secret.
    let deadline = Instant::now() + Duration::from_secs(15);
    let banner = loop {
        let out = std::fs::read_to_string(kc.stdout_path()).unwrap_or_default();
        if out.contains("client_secret=") && out.contains("alice / ") {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "no demo banner on stdout\n{}",
            kc.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        banner.contains(&format!("open {}/demo", kc.base)),
        "{banner}"
    );
    let password = word_after(&banner, "sign in as  alice / ")
        .or_else(|| word_after(&banner, "alice / "))
        .expect("the demo password")
        .to_owned();
    let secret = word_after(&banner, "client_secret=")
        .expect("the demo-m2m secret")
        .to_owned();
    assert!(banner.contains("client_id=demo-m2m"), "{banner}");

    // The banner's curl command: client_credentials with the printed secret.
    let http = http();
    let r = http
        .post(format!("{}/token", kc.base))
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
    assert_eq!(status, reqwest::StatusCode::OK, "{body}\n{}", kc.logs());
    let at = body["access_token"].as_str().expect("access_token");
    let claims = crate::jwt_part(at, 1);
    assert!(
        claims["aud"] == API
            || claims["aud"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == API)),
        "the demo token is for {API}: {claims}"
    );

    // /demo: a page with a "Sign in" link to /authorize.
    let mut cookies = Cookies::default();
    let r = http
        .get(format!("{}/demo", kc.base))
        .send()
        .await
        .expect("GET /demo");
    cookies.absorb(&r);
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let page = r.text().await.expect("demo page");
    let href = tag_attr(&page, "id=\"start\"", "href").expect("the sign-in link on /demo");
    assert!(href.starts_with("/authorize?"), "link {href}");

    // The printed password works: follow the link through login and consent to the callback.
    let redirect = format!("{}/demo/callback", kc.base);
    let authorize = format!("{}{href}", kc.base);
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
