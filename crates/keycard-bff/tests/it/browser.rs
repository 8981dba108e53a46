//! End to end in real Chromium (headless, chromedriver + fantoccini): sign in through the
//! provider's own pages, `/bff/session` and an API call from the page's script, a refresh
//! (the upstream refuses the token once), logout at the BFF ending the provider's session,
//! and logout at the provider reaching the BFF by back-channel — against node-oidc-provider,
//! and against Keycard for what Keycard already implements.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use keycard_os::SystemClock;
use serde_json::Value;

use crate::node_op::NodeOp;
use crate::support::{self, BffApp, param};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(15);

/// One Chromium at a time: two cores do not run two browsers well.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A chromedriver on a free port with one headless Chromium session; both end on drop.
struct Browser {
    driver: Child,
    client: Option<Client>,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "this test needs real Chromium: apt-get install -y chromium chromium-driver"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        while !reqwest::get(format!("{url}/status"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "chromedriver not ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = serde_json::json!({"goog:chromeOptions": {"binary": CHROMIUM, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            format!("--user-data-dir={}", profile.path().display())]}});
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot start Chromium: {e}"));
        Browser {
            driver,
            client: Some(client),
            _profile: profile,
        }
    }

    fn b(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.close().await;
        }
    }

    /// Polls until the URL starts with `prefix`.
    async fn wait_url(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let u = self.b().current_url().await.unwrap().to_string();
            if u.starts_with(prefix) {
                return u;
            }
            if Instant::now() > deadline {
                panic!(
                    "stuck at {u}, never reached {prefix}:\n{}",
                    self.b().source().await.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_title(&self, title: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.b().title().await.is_ok_and(|t| t == title) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page title never became {title:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_css(&self, css: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(e) = self.b().find(Locator::Css(css)).await {
                return e;
            }
            if Instant::now() > deadline {
                let u = self
                    .b()
                    .current_url()
                    .await
                    .map(String::from)
                    .unwrap_or_default();
                panic!(
                    "no {css} at {u}:\n{}",
                    self.b().source().await.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types into each field and clicks the button.
    async fn fill_and_submit(&self, fields: &[(&str, &str)], button: &str) {
        for (css, text) in fields {
            self.wait_css(css).await.send_keys(text).await.unwrap();
        }
        self.wait_css(button).await.click().await.unwrap();
    }

    /// `fetch` from the page, as the application's script would; returns `[status, json]`.
    async fn fetch(&self, method: &str, path: &str, csrf: bool) -> (u16, Value) {
        let script = r#"
            const [method, path, csrf, done] = arguments;
            fetch(path, {method, headers: csrf ? {'X-CSRF': '1'} : {}})
              .then(async r => done([r.status, await r.json().catch(() => null)]))
              .catch(e => done([0, String(e)]));"#;
        let v = self
            .b()
            .execute_async(script, vec![method.into(), path.into(), csrf.into()])
            .await
            .unwrap();
        (v[0].as_u64().unwrap() as u16, v[1].clone())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Runs `flow` with a browser, closing it even when the flow fails, then re-raises.
async fn with_browser<F, Fut>(flow: F)
where
    F: FnOnce(Arc<Browser>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let _one = ONE_BROWSER.lock().await;
    let browser = Arc::new(Browser::start().await);
    let result = tokio::spawn(flow(browser.clone())).await;
    if let Ok(b) = Arc::try_unwrap(browser) {
        b.close().await;
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The checks every provider passes once signed in: the session, the cookies a script cannot
/// read, an API call, and a refresh after the upstream refuses the token.
async fn signed_in_checks(b: &Browser, app: &BffApp) {
    let (status, s) = b.fetch("GET", "/bff/session", true).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["authenticated"], true, "{s}");
    assert!(s["name"].as_str().is_some_and(|n| !n.is_empty()), "{s}");
    let (status, _) = b.fetch("GET", "/bff/session", false).await;
    assert_eq!(status, 403, "no custom header, no answer");
    let cookies: Value = b
        .b()
        .execute("return document.cookie", vec![])
        .await
        .unwrap();
    assert_eq!(cookies, "", "HttpOnly cookies are invisible to scripts");
    let (status, first) = b.fetch("GET", "/api/echo/items", true).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["bearer"].clone(), first["cookie"].clone()),
        (true.into(), false.into())
    );
    let refreshes = app.counter.refreshes();
    app.echo
        .reject
        .lock()
        .unwrap()
        .insert(first["token"].as_str().unwrap().to_owned());
    let (status, second) = b.fetch("GET", "/api/echo/items", true).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(
        second["token"], first["token"],
        "the call was repeated with a refreshed token"
    );
    assert_eq!(app.counter.refreshes(), refreshes + 1);
}

async fn node_login(b: &Browser, op: &NodeOp, app: &BffApp) {
    b.b()
        .goto(&format!("{}/bff/login?return_to=/", app.base))
        .await
        .unwrap();
    b.wait_url(&format!("{}/interaction/", op.issuer)).await;
    b.fill_and_submit(
        &[
            ("input[name=login]", "alice"),
            ("input[name=password]", "any"),
        ],
        "button[type=submit]",
    )
    .await;
    b.wait_css("#home").await;
    assert_eq!(
        b.b().current_url().await.unwrap().as_str(),
        format!("{}/", app.base)
    );
}

/// Polls `/bff/session` until it says signed out.
async fn wait_signed_out(b: &Browser, context: impl Fn() -> String) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, s) = b.fetch("GET", "/bff/session", true).await;
        if s["authenticated"] == false {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the BFF session did not end: {s}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_against_node_oidc_provider() {
    let pending = support::reserve().await;
    let secret = "node-op-secret-0123456789abcdef0123456789";
    let op = NodeOp::start(&pending.base, "bff", secret, 300).await;
    let (echo_base, echo) = support::echo_upstream().await;
    let settings = support::settings(
        &op.issuer,
        "bff",
        secret,
        &pending.base,
        &echo_base,
        support::session_key(),
    );
    let (store, _) = support::sqlite_store().await;
    let app = pending
        .start(settings, store, Arc::new(SystemClock), echo)
        .await;
    let (op, app) = (Arc::new(op), Arc::new(app));
    let (op2, app2) = (op.clone(), app.clone());
    with_browser(move |b| async move {
        let (op, app) = (op2, app2);
        node_login(&b, &op, &app).await;
        signed_in_checks(&b, &app).await;

        // Logout at the BFF: the page navigates to the provider's end-session endpoint with
        // the id token as a hint, the user confirms, and the provider sends it back here.
        let (status, out) = b.fetch("POST", "/bff/logout", true).await;
        assert_eq!(status, 200, "{out}");
        let to = out["redirect_to"].as_str().unwrap().to_owned();
        assert!(
            to.starts_with(&format!("{}/session/end?", op.issuer)),
            "{to}"
        );
        assert!(
            param(&to, "id_token_hint").is_some() && param(&to, "state").is_some(),
            "{to}"
        );
        assert_eq!(
            param(&to, "post_logout_redirect_uri").unwrap(),
            format!("{}/", app.base)
        );
        b.b().goto(&to).await.unwrap();
        b.wait_css("button[name=logout][value=yes]")
            .await
            .click()
            .await
            .unwrap();
        b.wait_css("#home").await;
        let (_, s) = b.fetch("GET", "/bff/session", true).await;
        assert_eq!(s["authenticated"], false);
        // The provider's session is over: prompt=none now answers login_required.
        let silent = silent_authorize(&format!("{}/auth", op.issuer), &app);
        b.b().goto(&silent).await.unwrap();
        let landed = b.wait_url(&format!("{}/bff/callback", app.base)).await;
        assert_eq!(
            param(&landed, "error").as_deref(),
            Some("login_required"),
            "{landed}"
        );

        // Logout at the provider reaches the BFF by back-channel.
        node_login(&b, &op, &app).await;
        let (_, s) = b.fetch("GET", "/bff/session", true).await;
        assert_eq!(s["authenticated"], true);
        b.b()
            .goto(&format!("{}/session/end", op.issuer))
            .await
            .unwrap();
        b.wait_css("button[name=logout][value=yes]")
            .await
            .click()
            .await
            .unwrap();
        // The confirmation posts a form on the provider's own page: wait for its answer, or
        // it may land after (and replace) the next navigation.
        b.wait_title("Sign-out Success").await;
        b.b().goto(&format!("{}/", app.base)).await.unwrap();
        b.wait_css("#home").await;
        wait_signed_out(&b, || op.logs()).await;
    })
    .await;
    assert!(op.logs().contains("backchannel.success"), "{}", op.logs());
}

/// Keycard's sign-in page, from `/bff/login` back to the application.
async fn keycard_login(b: &Browser, app: &BffApp) {
    b.b()
        .goto(&format!("{}/bff/login?return_to=/", app.base))
        .await
        .unwrap();
    b.fill_and_submit(
        &[
            ("#username", "alice"),
            ("#password", keycard_testkit::PASSWORD),
        ],
        "#sign-in",
    )
    .await;
    b.wait_css("#home").await;
}

/// `prompt=none` at the provider for the BFF's client: where it sends the browser back.
fn silent_authorize(authorize: &str, app: &BffApp) -> String {
    let callback = format!("{}/bff/callback", app.base);
    url::Url::parse_with_params(
        authorize,
        [
            ("client_id", "bff"),
            ("response_type", "code"),
            ("scope", "openid"),
            ("prompt", "none"),
            ("state", "s"),
            ("redirect_uri", callback.as_str()),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap()
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_against_keycard() {
    let (kc, app) = crate::keycard::bff_on_keycard(|_| {}).await;
    let (kc, app) = (Arc::new(kc), Arc::new(app));
    let (kc2, app2) = (kc.clone(), app.clone());
    with_browser(move |b| async move {
        let (kc, app) = (kc2, app2);
        keycard_login(&b, &app).await;
        signed_in_checks(&b, &app).await;

        // Logout at the BFF: Keycard's end_session_endpoint takes the id token as proof of
        // the client, ends its session at once and sends the browser back.
        let (status, out) = b.fetch("POST", "/bff/logout", true).await;
        assert_eq!(status, 200, "{out}");
        let to = out["redirect_to"].as_str().unwrap().to_owned();
        assert!(to.starts_with(&kc.url("/logout?")), "{to}");
        b.b().goto(&to).await.unwrap();
        b.wait_css("#home").await;
        let (_, s) = b.fetch("GET", "/bff/session", true).await;
        assert_eq!(s["authenticated"], false);
        b.b()
            .goto(&silent_authorize(&kc.url("/authorize"), &app))
            .await
            .unwrap();
        let landed = b.wait_url(&format!("{}/bff/callback", app.base)).await;
        assert_eq!(
            param(&landed, "error").as_deref(),
            Some("login_required"),
            "{landed}"
        );

        // Logout at Keycard (its own confirmation page) reaches the BFF by back-channel.
        keycard_login(&b, &app).await;
        let (_, s) = b.fetch("GET", "/bff/session", true).await;
        assert_eq!(s["authenticated"], true);
        b.b().goto(&kc.url("/logout")).await.unwrap();
        b.wait_css("#sign-out").await.click().await.unwrap();
        // The form post must land before the next navigation, or its answer may replace it.
        b.wait_title("Signed out – Keycard").await;
        b.b().goto(&format!("{}/", app.base)).await.unwrap();
        b.wait_css("#home").await;
        wait_signed_out(&b, String::new).await;
    })
    .await;
}
