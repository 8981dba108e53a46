//! Real Chromium (headless, via chromedriver and `fantoccini`) through the login page, the
//! consent page and single sign-on for a second client.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use openidconnect::PkceCodeChallenge;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{Keycard, PASSWORD, free_port, http, query};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// A chromedriver process on a free port, killed on drop.
pub(crate) struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    pub(crate) async fn start(log: &Path) -> ChromeDriver {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "this test needs real Chromium: {CHROMEDRIVER} and {CHROMIUM} are missing; \
             install them with `apt-get install -y chromium chromium-driver` (.ci/run does)"
        );
        let port = free_port();
        let log_file = std::fs::File::create(log).expect("chromedriver log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("spawn chromedriver");
        let mut d = ChromeDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = http();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = d.child.try_wait().expect("try_wait") {
                panic!(
                    "chromedriver exited with {status}: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if let Ok(r) = http.get(format!("{}/status", d.url)).send().await
                && r.status().is_success()
            {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn browser(&mut self, profile: &Path) -> Client {
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot start a Chromium session: {e}"))
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny HTTP endpoint that answers `200 ok` to anything: the clients' redirect URI.
async fn landing_listener() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind landing listener");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/callback")
}

fn authorize_url(
    kc: &Keycard,
    client_id: &str,
    redirect: &str,
    state: &str,
    challenge: &str,
) -> String {
    url::Url::parse_with_params(
        &format!("{}/authorize", kc.base),
        [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect),
            ("scope", "openid profile email"),
            ("state", state),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .expect("authorize url")
    .into()
}

/// Polls until the browser is at a URL starting with `prefix`.
pub(crate) async fn wait_for_url(b: &Client, prefix: &str, kc: &Keycard) -> url::Url {
    let deadline = Instant::now() + WAIT;
    loop {
        let u = b.current_url().await.expect("current url");
        if u.as_str().starts_with(prefix) {
            return u;
        }
        if Instant::now() > deadline {
            let src = b.source().await.unwrap_or_default();
            panic!(
                "browser stuck at {u}, never reached {prefix}:\n{src}\n{}",
                kc.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until `css` is on the page.
pub(crate) async fn wait_for(b: &Client, css: &str, kc: &Keycard) -> fantoccini::elements::Element {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(e) = b.find(Locator::Css(css)).await {
            return e;
        }
        if Instant::now() > deadline {
            let u = b.current_url().await.map(String::from).unwrap_or_default();
            let src = b.source().await.unwrap_or_default();
            panic!("no {css} at {u}:\n{src}\n{}", kc.logs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_login_consent_and_sso() {
    let kc = Keycard::serve().await;
    kc.add_user("alice", "Alice", "alice@example.com");
    let redirect = landing_listener().await;
    for id in ["browser-app-a", "browser-app-b"] {
        kc.add_client(
            id,
            &[
                "--public",
                "--grant",
                "authorization_code",
                "--redirect-uri",
                &redirect,
                "--scope",
                "openid profile email",
            ],
        );
    }

    let mut driver = ChromeDriver::start(&kc.dir.path().join("chromedriver.log")).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let b = driver.browser(profile.path()).await;
    // Run the steps in a task so the browser session is closed (and Chromium exits) even when
    // an assertion fails; then re-raise the failure.
    let kc = std::sync::Arc::new(kc);
    let flow = tokio::spawn({
        let (b, kc, redirect) = (b.clone(), kc.clone(), redirect.clone());
        async move { run_flow(&b, &kc, &redirect).await }
    })
    .await;
    let _ = b.close().await;
    drop(driver);
    if let Err(e) = flow {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn run_flow(b: &Client, kc: &Keycard, redirect: &str) {
    // Client A: password form, then consent listing the scopes, then the redirect.
    let (challenge_a, _verifier_a) = PkceCodeChallenge::new_random_sha256();
    b.goto(&authorize_url(
        kc,
        "browser-app-a",
        redirect,
        "state-a",
        challenge_a.as_str(),
    ))
    .await
    .expect("goto authorize A");
    wait_for(b, "#username", kc)
        .await
        .send_keys("alice")
        .await
        .expect("type username");
    b.find(Locator::Css("#password"))
        .await
        .expect("password field")
        .send_keys(PASSWORD)
        .await
        .expect("type password");
    b.find(Locator::Css("#sign-in"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("click sign in");
    let approve = wait_for(b, "#approve", kc).await;
    let consent = b.source().await.expect("consent page");
    for scope in ["openid", "profile", "email"] {
        assert!(
            consent.contains(&format!("<strong>{scope}</strong>")),
            "consent page lists {scope}:\n{consent}"
        );
    }
    assert!(
        consent.contains("browser-app-a"),
        "consent names the client:\n{consent}"
    );
    approve.click().await.expect("click approve");
    let landed_a = wait_for_url(b, redirect, kc).await;
    let qa = query(&landed_a);
    assert!(!qa.contains_key("error"), "error redirect: {landed_a}");
    assert!(qa.contains_key("code"), "code in {landed_a}");
    assert_eq!(qa.get("state").map(String::as_str), Some("state-a"));
    assert_eq!(qa.get("iss").map(String::as_str), Some(kc.base.as_str()));

    // Client B: the SSO session skips the password form; consent is still asked.
    let (challenge_b, verifier_b) = PkceCodeChallenge::new_random_sha256();
    b.goto(&authorize_url(
        kc,
        "browser-app-b",
        redirect,
        "state-b",
        challenge_b.as_str(),
    ))
    .await
    .expect("goto authorize B");
    let deadline = Instant::now() + WAIT;
    loop {
        let u = b.current_url().await.expect("current url");
        if u.as_str().starts_with(redirect) {
            break;
        }
        if let Ok(e) = b.find(Locator::Css("#approve")).await {
            let page = b.source().await.expect("page");
            assert!(page.contains("browser-app-b"), "consent for B:\n{page}");
            e.click().await.expect("click approve for B");
            break;
        }
        assert!(
            b.find(Locator::Css("#password")).await.is_err(),
            "the password form was shown again despite the SSO session ({u})"
        );
        assert!(
            Instant::now() < deadline,
            "B's sign-in never reached consent or the redirect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let landed_b = wait_for_url(b, redirect, kc).await;
    let qb = query(&landed_b);
    assert!(!qb.contains_key("error"), "error redirect: {landed_b}");
    assert_eq!(qb.get("state").map(String::as_str), Some("state-b"));
    assert_eq!(qb.get("iss").map(String::as_str), Some(kc.base.as_str()));
    let code_b = qb.get("code").expect("code for B").clone();

    // The code is real: redeem it (public client, PKCE) at /token.
    let r = http()
        .post(format!("{}/token", kc.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code_b.as_str()),
            ("redirect_uri", redirect),
            ("client_id", "browser-app-b"),
            ("code_verifier", verifier_b.secret().as_str()),
        ])
        .send()
        .await
        .expect("token request");
    let status = r.status();
    let body: serde_json::Value = r.json().await.expect("token JSON");
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
    assert!(body["id_token"].is_string(), "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
}
