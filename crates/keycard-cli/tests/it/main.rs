//! End-to-end tests of the real `keycard` binary: a third-party OIDC library against it
//! (`interop`), real Chromium through the login and consent pages (`browser`), `keycard auth`
//! against `keycard serve` and node-oidc-provider (`auth`, `auth_interop`), and the
//! README's `keycard demo` quick start (`readme`), `keycard backup` (`backup`), the listener's
//! connection limits, trusted proxies and metrics listener (`limits`), file modes and
//! `config-check` redaction (`files`), what the admin commands revoke in a running server
//! (`lifecycle`), `keycard logout-deliveries` (`oidc_logout`), and several nodes on
//! PostgreSQL (`multinode`), with a gateway on the revocation feed (`multinode_gateway`).
//!
//! Every test starts its own server process on a free port with a fresh SQLite database in a
//! temporary directory; the process is killed when the test's [`Keycard`] handle drops.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod auth;
mod auth_interop;
mod backup;
mod browser;
mod demo;
mod demo_api;
mod files;
mod interop;
mod lifecycle;
mod limits;
mod multinode;
mod multinode_gateway;
mod oidc_logout;
mod readme;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_keycard");
pub const API: &str = "https://api.example.com";
pub const PASSWORD: &str = "password123";
/// Where the web app's authorization responses go (never followed: the tests read `Location`).
pub const APP_REDIRECT: &str = "https://app.example.com/cb";
/// `keycard client add <id>` flags of a confidential first-party web app that signs users in
/// for [`API`] tokens and refreshes them.
pub const WEB_APP: &[&str] = &[
    "--confidential",
    "--first-party",
    "--grant",
    "authorization_code",
    "--grant",
    "refresh_token",
    "--redirect-uri",
    APP_REDIRECT,
    "--scope",
    "openid offline_access photos:read",
    "--audience",
    API,
];
/// `keycard client add <id>` flags of [`API`]'s resource server: it may introspect the API's
/// tokens (RFC 7662 §4).
pub const RESOURCE_SERVER: &[&str] = &[
    "--confidential",
    "--grant",
    "client_credentials",
    "--audience",
    API,
    "--resource-server",
    API,
];
/// `keycard client add <id>` flags of a machine client that may request [`API`] tokens with
/// `photos:read` (RFC 6749 §4.4).
pub const MACHINE_CLIENT: &[&str] = &[
    "--confidential",
    "--grant",
    "client_credentials",
    "--scope",
    "photos:read",
    "--audience",
    API,
];

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A `reqwest` client that never follows redirects (the tests read every `Location`).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// A `keycard` database in a temporary directory, and optionally a running server on it.
pub struct Keycard {
    pub dir: tempfile::TempDir,
    pub db_url: String,
    pub port: u16,
    pub base: String,
    child: Option<Child>,
}

impl std::fmt::Debug for Keycard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keycard").field("base", &self.base).finish()
    }
}

impl Default for Keycard {
    fn default() -> Keycard {
        Keycard::new()
    }
}

impl Keycard {
    /// A fresh database; no server yet.
    pub fn new() -> Keycard {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("keycard.db");
        let db_url = format!("sqlite://{}", db.display());
        let port = free_port();
        Keycard {
            dir,
            db_url,
            port,
            base: format!("http://127.0.0.1:{port}"),
            child: None,
        }
    }

    /// A fresh database with `keycard serve` running on it and ready.
    pub async fn serve() -> Keycard {
        let mut k = Keycard::new();
        k.start("serve").await;
        k
    }

    pub fn stdout_path(&self) -> PathBuf {
        self.dir.path().join("server.stdout")
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("server.stderr")
    }

    /// The server's stdout and stderr so far (for failure messages).
    pub fn logs(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- server stdout ---\n{}\n--- server stderr ---\n{}",
            read(&self.stdout_path()),
            read(&self.stderr_path())
        )
    }

    /// Starts `keycard <subcommand>` (`serve` or `demo`) and waits for `/readyz`.
    pub async fn start(&mut self, subcommand: &str) {
        self.start_with(subcommand, &[]).await;
    }

    /// Starts `keycard <subcommand> <extra...>` and waits for `/readyz`.
    pub async fn start_with(&mut self, subcommand: &str, extra: &[&str]) {
        assert!(self.child.is_none(), "server already started");
        let stdout = std::fs::File::create(self.stdout_path()).expect("stdout file");
        let stderr = std::fs::File::create(self.stderr_path()).expect("stderr file");
        let child = Command::new(BIN)
            .args(["--database-url", &self.db_url, subcommand])
            .args(["--addr", &format!("127.0.0.1:{}", self.port)])
            .args(["--issuer", &self.base])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn keycard");
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        // No pooled connection is left behind: tests of the connection caps count from zero.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(5))
            .build()
            .expect("reqwest client");
        let url = format!("{}/readyz", self.base);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("try_wait"))
            {
                panic!("keycard exited early with {status}\n{}", self.logs());
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status() == reqwest::StatusCode::OK
            {
                return;
            }
            if Instant::now() > deadline {
                panic!("{url} not ready within 15 s\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `keycard --database-url <db> --json <args>` (with `stdin` piped in) and returns its
    /// JSON output; panics with the output if the command fails.
    pub fn admin(&self, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
        let mut child = Command::new(BIN)
            .args(["--database-url", &self.db_url, "--json"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keycard admin command");
        {
            let mut pipe = child.stdin.take().expect("stdin");
            if let Some(s) = stdin {
                pipe.write_all(s.as_bytes()).expect("write stdin");
            }
        }
        let out = child.wait_with_output().expect("admin output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "keycard {args:?} failed with {}\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!("keycard {args:?} printed no JSON ({e}): {stdout}\nstderr: {stderr}")
        })
    }

    /// Runs `keycard --database-url <db> <args>` without `--json` and returns how it ended,
    /// success or not: for commands whose text or refusal is under test.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(["--database-url", &self.db_url])
            .args(args)
            // The error line is under test; a backtrace after it would only bury it.
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .output()
            .expect("run keycard")
    }

    /// Runs a command that must be refused: asserts a non-zero exit, returns its stderr.
    pub fn refused(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "keycard {args:?} was accepted: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `keycard user add <name> --password-stdin ...` with [`PASSWORD`].
    pub fn add_user(&self, username: &str, name: &str, email: &str) -> serde_json::Value {
        self.admin(
            &[
                "user",
                "add",
                username,
                "--password-stdin",
                "--name",
                name,
                "--email",
                email,
                "--email-verified",
            ],
            Some(&format!("{PASSWORD}\n")),
        )
    }

    /// `keycard api add <API> --scope "photos:read"`.
    pub fn add_api(&self) -> serde_json::Value {
        self.admin(&["api", "add", API, "--scope", "photos:read"], None)
    }

    /// `keycard client add <id> <extra...>`; returns the JSON (with `client_secret` if any).
    pub fn add_client(&self, id: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["client", "add", id];
        args.extend_from_slice(extra);
        self.admin(&args, None)
    }
}

impl Drop for Keycard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Serves `router` on a free 127.0.0.1 port until the test ends; returns its base URL. The
/// tests' stand-ins for a client's back-channel endpoint and for an API behind the gateway.
pub async fn spawn_http(router: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let base = format!("http://{}", l.local_addr().expect("local addr"));
    tokio::spawn(async move { axum::serve(l, router).await });
    base
}

/// A client-credentials access token (RFC 6749 §4.4) for `scope` from the server at `base`.
pub async fn client_credentials(base: &str, client: &str, secret: &str, scope: &str) -> String {
    let r: serde_json::Value = http()
        .post(format!("{base}/token"))
        .basic_auth(client, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {r}"))
        .to_owned()
}

/// Redeems an authorization code with PKCE (RFC 6749 §4.1.3, RFC 7636 §4.5) as the confidential
/// `client`; asserts 200 and returns the token response.
pub async fn redeem_code(
    base: &str,
    (client, secret): (&str, &str),
    redirect_uri: &str,
    code: &str,
    verifier: &str,
) -> serde_json::Value {
    let r = http()
        .post(format!("{base}/token"))
        .basic_auth(client, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let t: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, reqwest::StatusCode::OK, "{t}");
    t
}

/// A minimal cookie jar for `reqwest` without its cookie feature: name → value.
#[derive(Debug, Default)]
pub struct Cookies(pub BTreeMap<String, String>);

impl Cookies {
    pub fn absorb(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let pair = v.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
                let expired = v.to_ascii_lowercase().contains("max-age=0");
                if value.is_empty() || expired {
                    self.0.remove(&name);
                } else {
                    self.0.insert(name, value);
                }
            }
        }
    }

    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The `value` of `<input ... name="NAME" value="...">` in a page.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    tag_attr(html, &format!("name=\"{name}\""), "value")
}

/// The (HTML-unescaped) `attr` of the first tag containing `marker`.
pub fn tag_attr(html: &str, marker: &str, attr: &str) -> Option<String> {
    let at = html.find(marker)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let key = format!(" {attr}=\"");
    let v = tag.find(&key)? + key.len();
    let end = v + tag[v..].find('"')?;
    Some(
        tag[v..end]
            .replace("&quot;", "\"")
            .replace("&#x2f;", "/")
            .replace("&#x2F;", "/")
            .replace("&#x27;", "'")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// A cookie-keeping, redirect-reading "browser" on reqwest that signs in with a password and
/// approves consent, until the server redirects to `redirect_uri`. Returns that final URL.
pub async fn sign_in_with_reqwest(
    http: &reqwest::Client,
    cookies: &mut Cookies,
    authorize_url: &str,
    redirect_uri: &str,
    username: &str,
    password: &str,
) -> url::Url {
    let mut url = url::Url::parse(authorize_url).expect("authorize url");
    let mut posted_login = false;
    for _ in 0..10 {
        let r = http
            .get(url.as_str())
            .header(reqwest::header::COOKIE, cookies.header())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let r = match handle(r, cookies, &url, redirect_uri).await {
            Step::Done(u) => return u,
            Step::Go(u) => {
                url = u;
                continue;
            }
            Step::Page(page) => page,
        };
        let (path, form): (&str, Vec<(&str, String)>) = if r.contains("id=\"password\"") {
            assert!(!posted_login, "the login form came back:\n{r}");
            posted_login = true;
            (
                "/login",
                vec![
                    ("username", username.to_owned()),
                    ("password", password.to_owned()),
                ],
            )
        } else if r.contains("id=\"approve\"") {
            ("/consent", vec![("decision", "approve".to_owned())])
        } else {
            panic!("unexpected page at {url}:\n{r}");
        };
        let mut form = form;
        for hidden in ["txn", "csrf"] {
            let v = hidden_input(&r, hidden)
                .unwrap_or_else(|| panic!("no hidden input {hidden} on {url}:\n{r}"));
            form.push((hidden, v));
        }
        let post_url = url.join(path).expect("join");
        let resp = http
            .post(post_url.as_str())
            .header(reqwest::header::COOKIE, cookies.header())
            .form(&form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {post_url}: {e}"));
        match handle(resp, cookies, &post_url, redirect_uri).await {
            Step::Done(u) => return u,
            Step::Go(u) => url = u,
            Step::Page(page) => panic!("POST {post_url} answered a page, not a redirect:\n{page}"),
        }
    }
    panic!("too many steps before reaching {redirect_uri}");
}

enum Step {
    Done(url::Url),
    Go(url::Url),
    Page(String),
}

async fn handle(
    r: reqwest::Response,
    cookies: &mut Cookies,
    at: &url::Url,
    redirect_uri: &str,
) -> Step {
    cookies.absorb(&r);
    let status = r.status();
    if status.is_redirection() {
        assert_eq!(status, reqwest::StatusCode::SEE_OTHER, "redirect from {at}");
        let loc = r
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("redirect without Location from {at}"));
        let next = at.join(loc).expect("Location");
        if next.as_str().starts_with(redirect_uri) {
            return Step::Done(next);
        }
        return Step::Go(next);
    }
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, reqwest::StatusCode::OK, "{at} answered:\n{body}");
    Step::Page(body)
}

/// The query parameters of a URL as a map.
pub fn query(u: &url::Url) -> BTreeMap<String, String> {
    u.query_pairs().into_owned().collect()
}

/// The decoded JSON payload of a compact JWS (no verification).
pub fn jwt_part(jwt: &str, index: usize) -> serde_json::Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(index).expect("JWT part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JWT JSON")
}
