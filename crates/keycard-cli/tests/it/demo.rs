//! `keycard demo`, started as a user starts it (the real binary, on free ports, in a fresh data
//! folder), driven end to end in real Chromium: sign in through the BFF and Keycard's pages,
//! the profile beside `/userinfo`, the decoded access token, both APIs through the gateway,
//! refresh, revocation reaching the introspected route at once and the local one within 2 s,
//! RP-initiated sign-out, and back-channel logout reaching a second tab. Plus the `--json`
//! line, start-up time and a clean Ctrl-C.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};

use crate::browser::{ChromeDriver, WAIT};
use crate::{BIN, free_port, http};

/// A running `keycard demo`, stopped with SIGINT on drop.
pub(crate) struct Demo {
    pub(crate) dir: tempfile::TempDir,
    child: Option<Child>,
    /// The `--json` line (null without `--json`).
    pub(crate) info: serde_json::Value,
    /// What it printed for people (empty with `--json`).
    pub(crate) banner: String,
    /// From spawning the process to its `--json` line.
    pub(crate) started_in: Duration,
}

impl Demo {
    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("demo.stderr")).unwrap_or_default()
    }

    pub(crate) fn get(&self, key: &str) -> String {
        self.info[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {}", self.info))
            .to_owned()
    }

    /// Starts the demo on free ports and waits for its JSON line.
    pub(crate) async fn start() -> Demo {
        Demo::start_with(true).await
    }

    /// Starts the demo on free ports, with or without `--json`, and waits for what it prints.
    pub(crate) async fn start_with(json: bool) -> Demo {
        let dir = tempfile::tempdir().expect("tempdir");
        let data: PathBuf = dir.path().join("keycard-demo");
        let ports: Vec<String> = (0..4)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let t0 = Instant::now();
        let child = Command::new(BIN)
            .arg("demo")
            .args(json.then_some("--json"))
            .arg("--dir")
            .arg(&data)
            .args(["--addr", &ports[0], "--gateway-addr", &ports[1]])
            .args(["--api-addr", &ports[2], "--app-addr", &ports[3]])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("demo.stdout")).expect("stdout"))
            .stderr(std::fs::File::create(dir.path().join("demo.stderr")).expect("stderr"))
            .spawn()
            .expect("spawn keycard demo");
        let mut demo = Demo {
            dir,
            child: Some(child),
            info: serde_json::Value::Null,
            banner: String::new(),
            started_in: Duration::ZERO,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out =
                std::fs::read_to_string(demo.dir.path().join("demo.stdout")).unwrap_or_default();
            if json && let Some(line) = out.lines().next().filter(|_| out.ends_with('\n')) {
                demo.started_in = t0.elapsed();
                demo.info = serde_json::from_str(line).expect("the --json line is JSON");
                return demo;
            }
            if !json && out.contains("Ctrl-C stops everything") {
                demo.started_in = t0.elapsed();
                demo.banner = out;
                return demo;
            }
            if let Some(status) = demo
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("keycard demo exited with {status}\n{}", demo.logs());
            }
            assert!(
                Instant::now() < deadline,
                "nothing printed in 30 s\n{}",
                demo.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGINT and returns how the process ended, within 10 s.
    pub(crate) fn interrupt(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "keycard demo did not stop within 10 s of SIGINT\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_one_json_line_starts_within_a_second_and_stops_on_ctrl_c() {
    let mut demo = Demo::start().await;
    for key in [
        "app",
        "issuer",
        "gateway",
        "api",
        "username",
        "password",
        "m2m_client_id",
    ] {
        assert!(demo.info[key].is_string(), "{key} in {}", demo.info);
    }
    assert_eq!(demo.get("username"), "alice");
    let ms = demo.info["startup_ms"].as_u64().expect("startup_ms");
    eprintln!(
        "demo start-up: {ms} ms inside the process, {:?} from spawn to the JSON line",
        demo.started_in
    );
    // The bound is for a release build; this debug build hashes and signs more slowly, so
    // the test allows it twice over (bench/RESULTS.md records the release figure).
    assert!(ms < 2000, "start-up took {ms} ms\n{}", demo.logs());
    // The machine client's credentials work, and its token passes the gateway's local route.
    let http = http();
    let t: serde_json::Value = http
        .post(format!("{}/token", demo.get("issuer")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", demo.get("m2m_client_id").as_str()),
            ("client_secret", demo.get("m2m_client_secret").as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = t["access_token"].as_str().expect("a token");
    let r = http
        .get(format!("{}/photos", demo.get("gateway")))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", demo.logs());
    let status = demo.interrupt();
    assert!(status.success(), "exit status after SIGINT: {status}");
}

/// Waits until `css` is on the page.
async fn find(b: &Client, css: &str, demo: &Demo) -> fantoccini::elements::Element {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(e) = b.find(Locator::Css(css)).await
            && e.is_displayed().await.unwrap_or(false)
        {
            return e;
        }
        if Instant::now() > deadline {
            let u = b.current_url().await.map(String::from).unwrap_or_default();
            let src = b.source().await.unwrap_or_default();
            panic!("no visible {css} at {u}:\n{src}\n{}", demo.logs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click(b: &Client, css: &str, demo: &Demo) {
    find(b, css, demo).await.click().await.expect("click");
}

async fn text(b: &Client, css: &str, demo: &Demo) -> String {
    find(b, css, demo).await.text().await.expect("text")
}

/// Signs in from the app's page through Keycard's login (and, the first time, consent) page.
async fn sign_in(b: &Client, demo: &Demo, consent: bool) {
    b.goto(&demo.get("app")).await.expect("open the app");
    click(b, "a#sign-in", demo).await;
    find(b, "#username", demo)
        .await
        .send_keys("alice")
        .await
        .expect("username");
    find(b, "#password", demo)
        .await
        .send_keys(&demo.get("password"))
        .await
        .expect("password");
    click(b, "button#sign-in", demo).await;
    if consent {
        let approve = find(b, "#approve", demo).await;
        let page = b.source().await.expect("consent page");
        assert!(page.contains("Photo App"), "consent names the app:\n{page}");
        approve.click().await.expect("approve");
    }
    find(b, "#signed-in", demo).await;
}

/// The log line of the latest call to `api` with `status`, waiting for it.
async fn logged(b: &Client, api: &str, status: u16, demo: &Demo) -> String {
    text(
        b,
        &format!("#log li[data-api='{api}'][data-status='{status}']"),
        demo,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_end_to_end_in_chromium() {
    let demo = Demo::start().await;
    let mut driver = ChromeDriver::start(&demo.dir.path().join("chromedriver.log")).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let b = driver.browser(profile.path()).await;
    let demo = std::sync::Arc::new(demo);
    let flow = tokio::spawn({
        let (b, demo) = (b.clone(), demo.clone());
        async move { flow(&b, &demo).await }
    })
    .await;
    let _ = b.close().await;
    drop(driver);
    if let Err(e) = flow {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn flow(b: &Client, demo: &Demo) {
    // 1. Sign in through the BFF and Keycard's pages, and back.
    sign_in(b, demo, true).await;
    assert_eq!(text(b, "#who", demo).await, "Alice Example");
    // The session cookie is HttpOnly: the page's script sees no cookie at all.
    let cookies = b
        .execute("return document.cookie", vec![])
        .await
        .expect("document.cookie");
    assert_eq!(cookies, serde_json::json!(""));

    // 2. The profile: id-token claims beside /userinfo.
    let id_claims = text(b, "#id-claims", demo).await;
    let userinfo = text(b, "#userinfo", demo).await;
    for t in [&id_claims, &userinfo] {
        assert!(t.contains("alice@example.com"), "{t}");
    }
    assert!(
        id_claims.contains("nonce") || id_claims.contains("aud"),
        "{id_claims}"
    );

    // 3. The access token, decoded, each role explained.
    let token = text(b, "#token-claims", demo).await;
    for needle in [
        "box office",
        "venue",
        "concertgoer",
        "concierge",
        "demo-web",
        "jti",
    ] {
        assert!(token.contains(needle), "{needle} in {token}");
    }
    let page = b.source().await.expect("source");
    assert!(!page.contains("eyJ"), "no JWT in the page:\n{page}");

    // 4. Both APIs through the gateway; refresh; revoke and watch both refuse.
    click(b, "#call-photos", demo).await;
    assert!(logged(b, "photos", 200, demo).await.contains("local check"));
    click(b, "#call-orders", demo).await;
    assert!(
        logged(b, "orders", 200, demo)
            .await
            .contains("introspection")
    );
    let jti_before = text(b, "#token-claims", demo).await;
    click(b, "#refresh", demo).await;
    let deadline = Instant::now() + WAIT;
    while text(b, "#token-claims", demo).await == jti_before {
        assert!(
            Instant::now() < deadline,
            "the token did not change after a refresh"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    click(b, "#revoke", demo).await;
    let refused = text(b, "#photos-refused", demo).await;
    assert!(
        logged(b, "orders", 401, demo)
            .await
            .contains("invalid_token")
    );
    let ms: u64 = refused
        .split("refused after ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no time in {refused}"));
    eprintln!("demo: revocation to refusal on the local route: {ms} ms");
    assert!(ms < 2000, "{refused}");

    // Sign out (RP-initiated logout): the app and Keycard's session end.
    click(b, "#sign-out", demo).await;
    find(b, "#signed-out", demo).await;
    click(b, "a#sign-in", demo).await;
    find(b, "#username", demo).await;

    // 5. Signed in again, in two tabs; signing out on Keycard's own page reaches the other tab
    // by back-channel logout.
    sign_in(b, demo, false).await;
    let first = b.window().await.expect("window");
    let second = b.new_window(true).await.expect("new tab").handle;
    b.switch_to_window(second.clone()).await.expect("switch");
    b.goto(&demo.get("app")).await.expect("open the app");
    find(b, "#signed-in", demo).await;
    b.switch_to_window(first).await.expect("switch back");
    b.goto(&format!("{}/logout", demo.get("issuer")))
        .await
        .expect("Keycard's logout page");
    click(b, "button#sign-out", demo).await;
    b.switch_to_window(second).await.expect("switch");
    find(b, "#status[data-ended='backchannel']", demo).await;
    find(b, "#signed-out", demo).await;
}
