//! `keycard auth` end to end against a running `keycard serve`: the device flow approved in
//! real Chromium, the loopback flow with Chromium as the browser, `auth token` refreshing (and
//! two concurrent calls sharing one refresh), `auth status`, `auth logout` leaving the tokens
//! inactive, the token file's mode, and one-line failures with a non-zero exit for bad input.
//! Each test keeps its tokens in its own `KEYCARD_AUTH_DIR`.

use std::io::BufRead as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::Value;

use crate::browser::{ChromeDriver, wait_for, wait_for_url};
use crate::{API, BIN, Cookies, Keycard, PASSWORD, hidden_input, http, jwt_part};

/// A `keycard auth ...` process with its own token directory.
pub(crate) fn auth_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("auth")
        .args(args)
        .env("KEYCARD_AUTH_DIR", dir)
        .env_remove("BROWSER")
        .env_remove("SSH_CONNECTION")
        .env_remove("SSH_TTY")
        .stdin(Stdio::null());
    c
}

/// Runs a one-shot `keycard auth` command, killed after 60 s.
pub(crate) fn auth(dir: &Path, args: &[&str]) -> Output {
    let child = auth_cmd(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keycard auth");
    wait_output(child, Duration::from_secs(60))
}

fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "keycard auth did not finish within {limit:?}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_owned()
}

/// A running `keycard auth login` whose stdout lines are read as they come.
pub(crate) struct Login {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
}

impl Login {
    pub(crate) fn spawn(dir: &Path, args: &[&str]) -> Login {
        let mut child = auth_cmd(dir, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keycard auth login");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Login {
            child: Some(child),
            lines,
        }
    }

    /// The next JSON line on stdout, waiting at most 30 s.
    pub(crate) fn next_json(&mut self) -> Value {
        match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")),
            Err(e) => {
                let out = self.child.take().map(|mut c| {
                    let _ = c.kill();
                    c.wait_with_output().expect("output")
                });
                panic!(
                    "no line from keycard auth login ({e}); stderr: {}",
                    out.map(|o| stderr(&o)).unwrap_or_default()
                )
            }
        }
    }

    /// Waits for the process (60 s at most); returns its status, its remaining stdout lines
    /// and its stderr.
    pub(crate) fn finish(mut self) -> (std::process::ExitStatus, Vec<String>, String) {
        let child = self.child.take().expect("running");
        let out = wait_output(child, Duration::from_secs(60));
        let rest = self.lines.try_iter().collect();
        (out.status, rest, stderr(&out))
    }
}

impl Drop for Login {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A server whose devices may poll every second, with the CLI's public client registered for
/// both flows, the photos API and a resource server that may introspect its tokens.
async fn server() -> (Keycard, String) {
    let mut kc = Keycard::new();
    kc.add_api();
    kc.add_user("alice", "Alice", "alice@example.com");
    kc.add_client(
        "keycard-cli",
        &[
            "--public",
            "--grant",
            "device_code",
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--scope",
            "openid profile offline_access photos:read",
            "--audience",
            API,
        ],
    );
    let rs = kc.add_client(
        "photos-rs",
        &[
            "--confidential",
            "--grant",
            "client_credentials",
            "--scope",
            "photos:read",
            "--audience",
            API,
            "--resource-server",
            API,
        ],
    );
    kc.start_with("serve", &["--device-poll-interval", "1"])
        .await;
    (kc, rs["client_secret"].as_str().unwrap().to_owned())
}

fn login_args<'a>(kc: &'a Keycard, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "login",
        "--issuer",
        kc.base.as_str(),
        "--client-id",
        "keycard-cli",
        "--scope",
        "openid profile offline_access photos:read",
        "--resource",
        API,
        "--json",
    ];
    v.extend_from_slice(extra);
    v
}

/// Answers a device code on `/device` as alice, with plain HTTP (no browser).
pub(crate) async fn answer_device(base: &str, user_code: &str, decision: &str) -> String {
    let http = http();
    let mut cookies = Cookies::default();
    let page = http
        .get(format!("{base}/device"))
        .send()
        .await
        .expect("GET /device");
    cookies.absorb(&page);
    let csrf = hidden_input(&page.text().await.unwrap(), "csrf").expect("csrf");
    let mut last = String::new();
    for (action, extra) in [
        ("enter", vec![]),
        (
            "sign_in",
            vec![("username", "alice"), ("password", PASSWORD)],
        ),
        (decision, vec![]),
    ] {
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("user_code", user_code),
            ("action", action),
        ];
        form.extend(extra);
        let r = http
            .post(format!("{base}/device"))
            .header(reqwest::header::COOKIE, cookies.header())
            .header(reqwest::header::ORIGIN, base)
            .form(&form)
            .send()
            .await
            .expect("POST /device");
        cookies.absorb(&r);
        last = r.text().await.unwrap();
    }
    last
}

/// Logs in with the device flow, approving over plain HTTP; returns the token directory.
async fn device_login(kc: &Keycard) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut login = Login::spawn(dir.path(), &login_args(kc, &["--device"]));
    let shown = login.next_json();
    let page = answer_device(&kc.base, shown["user_code"].as_str().unwrap(), "approve").await;
    assert!(page.contains("Device connected"), "{page}");
    let (status, _, err) = login.finish();
    assert!(status.success(), "login failed: {err}\n{}", kc.logs());
    dir
}

async fn introspect(kc: &Keycard, secret: &str, token: &str) -> Value {
    http()
        .post(format!("{}/introspect", kc.base))
        .basic_auth("photos-rs", Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn token_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a token file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8628_device_login_approved_in_chromium_then_token_status_logout() {
    let (kc, rs_secret) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut login = Login::spawn(dir.path(), &login_args(&kc, &["--device"]));
    // The device JSON line comes before the CLI waits.
    let shown = login.next_json();
    let user_code = shown["user_code"].as_str().unwrap().to_owned();
    assert_eq!(shown["verification_uri"], format!("{}/device", kc.base));
    assert_eq!(
        shown["verification_uri_complete"],
        format!("{}/device?user_code={user_code}", kc.base)
    );
    assert_eq!(shown["expires_in"], 600);

    let mut driver = ChromeDriver::start(&kc.dir.path().join("chromedriver.log")).await;
    let profile = tempfile::tempdir().unwrap();
    let b = driver.browser(profile.path()).await;
    let kc = std::sync::Arc::new(kc);
    let steps = tokio::spawn({
        let (b, kc) = (b.clone(), kc.clone());
        let complete = shown["verification_uri_complete"]
            .as_str()
            .unwrap()
            .to_owned();
        async move {
            b.goto(&complete)
                .await
                .expect("goto verification_uri_complete");
            let field = wait_for(&b, "#user_code", &kc).await;
            assert_eq!(
                field.prop("value").await.unwrap().as_deref(),
                Some(user_code.as_str())
            );
            b.find(Locator::Css("#continue"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            wait_for(&b, "#username", &kc)
                .await
                .send_keys("alice")
                .await
                .unwrap();
            b.find(Locator::Css("#password"))
                .await
                .unwrap()
                .send_keys(PASSWORD)
                .await
                .unwrap();
            b.find(Locator::Css("#sign-in"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            let approve = wait_for(&b, "#approve", &kc).await;
            let page = b.source().await.unwrap();
            for shown in [
                "keycard-cli",
                "photos:read",
                "offline_access",
                "127.0.0.1",
                "deny",
            ] {
                assert!(
                    page.contains(shown),
                    "{shown} not on the confirmation:\n{page}"
                );
            }
            approve.click().await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let done = b.source().await.unwrap();
                if done.contains("Device connected") {
                    break;
                }
                assert!(Instant::now() < deadline, "never connected:\n{done}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
    .await;
    let _ = b.close().await;
    drop(driver);
    if let Err(e) = steps {
        std::panic::resume_unwind(e.into_panic());
    }
    let (status, rest, err) = login.finish();
    assert!(status.success(), "login failed: {err}\n{}", kc.logs());
    let done: Value = serde_json::from_str(rest.last().expect("result line")).unwrap();
    assert_eq!(done["issuer"], kc.base.as_str());
    assert_eq!(done["refresh_token"], true);
    assert_eq!(done["name"], "Alice");

    // The token file is private, and refused once it is not.
    let file = token_file(dir.path());
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = auth(dir.path(), &["token"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let at = stdout(&out);
    let claims = jwt_part(&at, 1);
    assert!(
        claims["aud"].as_array().unwrap().contains(&API.into()),
        "{claims}"
    );
    assert_eq!(claims["client_id"], "keycard-cli");
    assert_eq!(introspect(&kc, &rs_secret, &at).await["active"], true);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = auth(dir.path(), &["token"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("wider than 600"), "{}", stderr(&out));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Status names the account and where it is kept, and never a token.
    let out = auth(dir.path(), &["status", "--json"]);
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let acct = &s["accounts"][0];
    assert_eq!(acct["issuer"], kc.base.as_str());
    assert_eq!(acct["scope"], "offline_access openid photos:read profile");
    assert_eq!(acct["stored_in"], file.to_str().unwrap());
    assert_eq!(acct["default"], true);
    assert!(!stdout(&out).contains(&at));

    // Logout revokes at the provider: the access token and the refresh token stop working.
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let rt = stored["refresh_token"].as_str().unwrap().to_owned();
    let out = auth(dir.path(), &["logout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!file.exists());
    assert_eq!(
        introspect(&kc, &rs_secret, &at).await,
        serde_json::json!({"active": false})
    );
    let r = http()
        .post(format!("{}/token", kc.base))
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
    let out = auth(dir.path(), &["token"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not logged in"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8252_loopback_login_with_chromium_as_the_browser() {
    let (kc, rs_secret) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut login = Login::spawn(dir.path(), &login_args(&kc, &["--web", "--no-browser"]));
    let shown = login.next_json();
    let url = url::Url::parse(shown["authorization_url"].as_str().unwrap()).unwrap();
    let q: std::collections::BTreeMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 32, "{q:?}");
    assert!(q["redirect_uri"].starts_with("http://127.0.0.1:"), "{q:?}");
    // Another program's callback with a wrong state is turned away, and the login goes on.
    let wrong = format!("{}?code=forged&state=wrong", q["redirect_uri"]);
    assert_eq!(http().get(&wrong).send().await.unwrap().status(), 400);

    let mut driver = ChromeDriver::start(&kc.dir.path().join("chromedriver.log")).await;
    let profile = tempfile::tempdir().unwrap();
    let b = driver.browser(profile.path()).await;
    let kc = std::sync::Arc::new(kc);
    let callback = q["redirect_uri"].clone();
    let steps = tokio::spawn({
        let (b, kc, url) = (b.clone(), kc.clone(), url.to_string());
        async move {
            b.goto(&url).await.expect("goto authorization url");
            wait_for(&b, "#username", &kc)
                .await
                .send_keys("alice")
                .await
                .unwrap();
            b.find(Locator::Css("#password"))
                .await
                .unwrap()
                .send_keys(PASSWORD)
                .await
                .unwrap();
            b.find(Locator::Css("#sign-in"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            // A public client on a loopback redirect is always asked for consent.
            wait_for(&b, "#approve", &kc).await.click().await.unwrap();
            wait_for_url(&b, &callback, &kc).await;
            let page = b.source().await.unwrap();
            assert!(page.contains("Signed in."), "{page}");
        }
    })
    .await;
    let _ = b.close().await;
    drop(driver);
    if let Err(e) = steps {
        std::panic::resume_unwind(e.into_panic());
    }
    let (status, rest, err) = login.finish();
    assert!(status.success(), "login failed: {err}\n{}", kc.logs());
    let done: Value = serde_json::from_str(rest.last().expect("result line")).unwrap();
    assert_eq!(done["subject"].as_str().map(str::len), Some(32), "{done}");
    let at = stdout(&auth(dir.path(), &["token"]));
    assert_eq!(introspect(&kc, &rs_secret, &at).await["active"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_token_refreshes_once_for_two_concurrent_callers() {
    let (kc, rs_secret) = server().await;
    let dir = device_login(&kc).await;
    let file = token_file(dir.path());
    let first = stdout(&auth(dir.path(), &["token"]));
    // A fresh token is printed as stored, without a refresh.
    assert_eq!(stdout(&auth(dir.path(), &["token"])), first);
    let mut stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let old_rt = stored["refresh_token"].as_str().unwrap().to_owned();
    // The stored token now expires in 10 s (the file keeps its mode when rewritten).
    let soon = keycard_protocol::Clock::now(&keycard_os::SystemClock).secs() + 10;
    stored["access"][0]["expires_at"] = soon.into();
    std::fs::write(&file, stored.to_string()).unwrap();
    // Both callers find the token too close to its expiry; one refreshes, the other waits for
    // the lock and then finds the new token fresh. A second refresh with the old refresh token
    // would be a reuse, which revokes the grant (RFC 9700 §4.14.2): that must not happen.
    let spawn = || {
        auth_cmd(dir.path(), &["token", "--min-ttl", "60"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        wait_output(a, Duration::from_secs(60)),
        wait_output(b, Duration::from_secs(60)),
    );
    assert!(
        a.status.success() && b.status.success(),
        "{} / {}",
        stderr(&a),
        stderr(&b)
    );
    assert_eq!(stdout(&a), stdout(&b), "both print the one refreshed token");
    assert_ne!(stdout(&a), first);
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_ne!(stored["refresh_token"].as_str().unwrap(), old_rt, "rotated");
    assert_eq!(
        introspect(&kc, &rs_secret, &stdout(&a)).await["active"],
        true
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "still private after the rewrite");

    // A refresh the provider refuses (the user was disabled) is one line and a failure.
    kc.admin(&["user", "disable", "alice"], None);
    let out = auth(dir.path(), &["token", "--min-ttl", "100000"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("refused the refresh"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_device_code_and_an_unreachable_issuer_fail_in_one_line() {
    let (kc, _) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut login = Login::spawn(dir.path(), &login_args(&kc, &["--device"]));
    let shown = login.next_json();
    let page = answer_device(&kc.base, shown["user_code"].as_str().unwrap(), "deny").await;
    assert!(page.contains("Request denied"), "{page}");
    let (status, _, err) = login.finish();
    assert!(!status.success());
    assert_eq!(
        err.lines().last(),
        Some("Error: the sign-in was denied"),
        "{err}"
    );

    let nobody = format!("http://127.0.0.1:{}", crate::free_port());
    let out = auth(
        dir.path(),
        &["login", "--issuer", &nobody, "--client-id", "x", "--device"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot reach"), "{err}");
    let out = auth(
        dir.path(),
        &[
            "login",
            "--issuer",
            "http://example.com",
            "--client-id",
            "x",
        ],
    );
    assert!(stderr(&out).contains("use https"), "{}", stderr(&out));
    assert!(!out.status.success());
}

/// A provider that never approves: discovery (with or without a device endpoint), a device
/// endpoint with a one-second interval, and a token endpoint that answers `slow_down` once and
/// then `expired_token`, recording when each poll came.
async fn stubborn_provider(
    device: bool,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Instant>>>) {
    use axum::routing::{get, post};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut doc = serde_json::json!({
        "issuer": base, "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
    });
    if device {
        doc["device_authorization_endpoint"] = format!("{base}/device_authorization").into();
    }
    let device_doc = serde_json::json!({
        "device_code": "dc", "user_code": "WDJB-MJHT", "verification_uri": format!("{base}/device"),
        "expires_in": 30, "interval": 1,
    });
    let polls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = polls.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { axum::Json(doc) }),
        )
        .route(
            "/device_authorization",
            post(move || async move { axum::Json(device_doc) }),
        )
        .route(
            "/token",
            post(move || async move {
                let n = {
                    let mut p = seen.lock().unwrap();
                    p.push(Instant::now());
                    p.len()
                };
                let error = if n == 1 { "slow_down" } else { "expired_token" };
                (
                    axum::http::StatusCode::BAD_REQUEST,
                    axum::Json(serde_json::json!({ "error": error })),
                )
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, polls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8628_s3_5_the_cli_slows_down_by_five_seconds_and_stops_at_expired_token() {
    let (base, polls) = stubborn_provider(true).await;
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let args = [
        "login",
        "--issuer",
        &base,
        "--client-id",
        "cli",
        "--device",
        "--json",
    ];
    let mut login = Login::spawn(dir.path(), &args);
    assert_eq!(login.next_json()["user_code"], "WDJB-MJHT");
    let (status, _, err) = login.finish();
    assert!(!status.success());
    assert!(
        err.ends_with(
            "Error: the code expired before it was approved; run `keycard auth login` again"
        ),
        "{err}"
    );
    let polls = polls.lock().unwrap().clone();
    assert_eq!(polls.len(), 2, "{polls:?}");
    assert!(
        polls[0] - started >= Duration::from_secs(1),
        "the first poll waits the interval"
    );
    let gap = polls[1] - polls[0];
    assert!(
        gap >= Duration::from_secs(6),
        "slow_down adds 5 s to the 1 s interval: {gap:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_follows_the_terminal_and_the_provider() {
    let (with_device, _) = stubborn_provider(true).await;
    let (without, _) = stubborn_provider(false).await;
    let dir = tempfile::tempdir().unwrap();
    // Asking for the device flow where there is none: one line, non-zero.
    let out = auth(
        dir.path(),
        &[
            "login",
            "--issuer",
            &without,
            "--client-id",
            "cli",
            "--device",
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no device authorization endpoint"), "{err}");
    // Over SSH the device flow is chosen; without a device endpoint, the URL is printed.
    let over_ssh = |issuer: &str| {
        let mut child = auth_cmd(
            dir.path(),
            &["login", "--issuer", issuer, "--client-id", "cli", "--json"],
        )
        .env("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22")
        .env("BROWSER", "/bin/false")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        serde_json::from_str::<Value>(&line).unwrap()
    };
    assert_eq!(over_ssh(&with_device)["user_code"], "WDJB-MJHT");
    let web = over_ssh(&without);
    let url = web["authorization_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{without}/authorize?")), "{url}");
}
