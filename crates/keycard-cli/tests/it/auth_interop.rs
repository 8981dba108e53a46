//! `keycard auth` against another OpenID provider: node-oidc-provider with its device flow
//! (`bench/node/device-flow.mjs`). The CLI logs in with the device flow, the user approves on
//! the provider's own pages (walked here over plain HTTP: its development sign-in accepts any
//! password), then `auth token` refreshes and `auth logout` revokes at its RFC 7009 endpoint.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::auth::{Login, auth, stderr, stdout};
use crate::{Cookies, http, tag_attr};

fn node_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/node");
    let has_node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_node && dir.join("node_modules/oidc-provider").is_dir(),
        "this test needs node and node-oidc-provider: `apt-get install -y nodejs npm` and \
         `(cd bench/node && npm ci)` (.ci/run does both)"
    );
    dir
}

/// node-oidc-provider with the device flow on a free port, killed on drop.
async fn provider() -> (tokio::process::Child, String) {
    let port = crate::free_port();
    let child = tokio::process::Command::new("node")
        .arg("device-flow.mjs")
        .current_dir(node_dir())
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let issuer = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        let url = format!("{issuer}/.well-known/openid-configuration");
        if http()
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return (child, issuer);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node-oidc-provider did not start");
}

/// The first form of a page: its action and its fields, with `login`/`password` filled in.
fn form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let end = start + html[start..].find("</form>")?;
    let part = &html[start..end];
    let action = tag_attr(part, "form ", "action")?;
    let mut fields = Vec::new();
    let mut rest = part;
    while let Some(i) = rest.find("<input") {
        rest = &rest[i..];
        if let Some(name) = tag_attr(rest, "input", "name") {
            let value = match name.as_str() {
                "login" => "alice".to_owned(),
                "password" => "any password".to_owned(),
                _ => tag_attr(rest, "input", "value").unwrap_or_default(),
            };
            fields.push((name, value));
        }
        rest = &rest[1..];
    }
    Some((action, fields))
}

/// Walks the provider's pages from `url`: follows redirects, submits each form (the code, its
/// confirmation, the sign-in, the consent), until a page without a form.
async fn approve_on_provider(url: &str) -> String {
    let http = http();
    let mut cookies = Cookies::default();
    let mut at = url::Url::parse(url).unwrap();
    let mut r = http
        .get(at.as_str())
        .header(reqwest::header::COOKIE, cookies.header())
        .send()
        .await
        .unwrap();
    for _ in 0..20 {
        cookies.absorb(&r);
        if r.status().is_redirection() {
            let loc = r.headers()["location"].to_str().unwrap().to_owned();
            at = at.join(&loc).unwrap();
            r = http
                .get(at.as_str())
                .header(reqwest::header::COOKIE, cookies.header())
                .send()
                .await
                .unwrap();
            continue;
        }
        let page = r.text().await.unwrap();
        let Some((action, fields)) = form(&page) else {
            return page;
        };
        at = at.join(&action).unwrap();
        r = http
            .post(at.as_str())
            .header(reqwest::header::COOKIE, cookies.header())
            .form(&fields)
            .send()
            .await
            .unwrap();
    }
    panic!("the provider's pages never ended at {at}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_oidc_provider_device_login_token_refresh_and_logout() {
    let (_node, issuer) = provider().await;
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "login",
        "--issuer",
        &issuer,
        "--client-id",
        "keycard-cli",
        "--scope",
        "openid offline_access",
        "--device",
        "--json",
    ];
    let mut login = Login::spawn(dir.path(), &args);
    let shown = login.next_json();
    assert_eq!(shown["verification_uri"], format!("{issuer}/device"));
    let page = approve_on_provider(shown["verification_uri_complete"].as_str().unwrap()).await;
    assert!(page.contains("Sign-in Success"), "{page}");
    let (status, rest, err) = login.finish();
    assert!(status.success(), "login failed: {err}");
    let done: Value = serde_json::from_str(rest.last().expect("result line")).unwrap();
    assert_eq!(done["issuer"], issuer.as_str());
    assert_eq!(done["subject"], "alice");
    assert_eq!(done["refresh_token"], true, "{done}");

    let first = auth(dir.path(), &["token"]);
    assert!(first.status.success(), "{}", stderr(&first));
    // Far from expiry by this measure: the refresh token is used, and rotated or kept.
    let refreshed = auth(dir.path(), &["token", "--min-ttl", "100000"]);
    assert!(refreshed.status.success(), "{}", stderr(&refreshed));
    assert_ne!(stdout(&refreshed), stdout(&first));

    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let rt = stored["refresh_token"].as_str().unwrap().to_owned();
    let out = auth(dir.path(), &["logout", "--issuer", &issuer]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Revoked at the provider (RFC 7009): the refresh token no longer refreshes.
    let r = http()
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", "keycard-cli"),
        ])
        .send()
        .await
        .unwrap();
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["error"], "invalid_grant", "{j}");
    let out = auth(dir.path(), &["status", "--json"]);
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s["accounts"], serde_json::json!([]));
}
