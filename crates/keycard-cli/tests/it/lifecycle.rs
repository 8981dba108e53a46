//! What the admin commands do to a running server (issue 10, items 7, 8, 13–16 and 18), black
//! box: `keycard serve` runs on a SQLite database, and each `keycard user|client|keys ...` is a
//! separate process on the same database, as an operator runs them. The server is then asked
//! over HTTP: `/introspect` as the API's resource server (RFC 7662), `/token` (RFC 6749 §5.2)
//! and `/jwks.json` (RFC 7517).
//!
//! How the server sees those changes decides each wait. A refresh reads grants and users from
//! the store, so a refused refresh follows the command at once, without waiting (a wait there
//! would hide a cache where none may be). Introspection answers a token it has already found
//! active from memory until the node's poller reads a new event in the revocation log (every
//! `feed_poll`, 250 ms), so a token introspected before the command goes inactive within that
//! bound. Clients are cached for `cache_ttl` (1 s) and signing keys re-read every `key_reload`
//! (2 s). Each wait is bounded by its setting plus slack for a loaded machine.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    API, APP_REDIRECT as REDIRECT, Cookies, Keycard, PASSWORD, http, jwt_part, query, redeem_code,
    sign_in_with_reqwest,
};

const NEW_PASSWORD: &str = "a new password 42";
/// `Settings::cache_ttl` plus slack for a loaded machine.
const CLIENT_CACHE_BOUND: Duration = Duration::from_secs(2);
/// `Settings::key_reload` plus slack for a loaded machine.
const KEY_RELOAD_BOUND: Duration = Duration::from_secs(3);
/// `Settings::feed_poll` plus slack for a loaded machine.
const FEED_POLL_BOUND: Duration = Duration::from_millis(1500);

/// A server with the API, Alice, a first-party web app, the API's resource server
/// (`photos-api`, the one that introspects) and a machine client that may request API tokens.
struct Fx {
    kc: Keycard,
    web: String,
    rs: String,
    m2m: String,
}

async fn fixture() -> Fx {
    let kc = Keycard::serve().await;
    kc.add_api();
    kc.add_user("alice", "Alice", "alice@example.com");
    let secret = |v: Value| v["client_secret"].as_str().unwrap().to_owned();
    let web = secret(kc.add_client("web", crate::WEB_APP));
    let rs = secret(kc.add_client("photos-api", crate::RESOURCE_SERVER));
    let m2m = secret(kc.add_client("m2m", crate::MACHINE_CLIENT));
    Fx { kc, web, rs, m2m }
}

/// Alice's authorization request for the web app, for API tokens.
fn authorize_url(base: &str, challenge: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", "web")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid offline_access photos:read")
        .append_pair("audience", API)
        .append_pair("state", "s1")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    format!("{base}/authorize?{q}")
}

impl Fx {
    async fn post(&self, path: &str, who: (&str, &str), form: &[(&str, &str)]) -> (u16, Value) {
        let r = http()
            .post(format!("{}{path}", self.kc.base))
            .basic_auth(who.0, Some(who.1))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Alice signs in on `browser` with `password`; returns her (access, refresh) tokens.
    async fn user_tokens(&self, browser: &mut Cookies, password: &str) -> (String, String) {
        let (verifier, challenge) = keycard_testkit::pkce();
        let url = authorize_url(&self.kc.base, &challenge);
        let done = sign_in_with_reqwest(&http(), browser, &url, REDIRECT, "alice", password).await;
        let code = &query(&done)["code"];
        let t = redeem_code(&self.kc.base, ("web", &self.web), REDIRECT, code, &verifier).await;
        (
            t["access_token"].as_str().unwrap().to_owned(),
            t["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    /// The machine client's client-credentials request: its status and answer.
    async fn machine_grant(&self) -> (u16, Value) {
        self.post(
            "/token",
            ("m2m", &self.m2m),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "photos:read"),
            ],
        )
        .await
    }

    async fn machine_token(&self) -> String {
        let (st, t) = self.machine_grant().await;
        assert_eq!(st, 200, "{t}");
        t["access_token"].as_str().unwrap().to_owned()
    }

    /// `/introspect` as the API's resource server.
    async fn introspect(&self, token: &str) -> Value {
        let (st, j) = self
            .post("/introspect", ("photos-api", &self.rs), &[("token", token)])
            .await;
        assert_eq!(st, 200, "{j}");
        j
    }

    async fn active(&self, token: &str) -> bool {
        self.introspect(token).await["active"] == true
    }

    /// Waits until introspection calls the token inactive (a token introspected before a
    /// revocation may be answered from memory until the node's next read of the log), then
    /// checks it stays inactive.
    async fn goes_inactive(&self, token: &str) {
        let took = within(FEED_POLL_BOUND, "the token goes inactive", || async {
            !self.active(token).await
        })
        .await;
        eprintln!("revocation to an inactive introspection: {took:?}");
        assert_eq!(
            self.introspect(token).await,
            serde_json::json!({ "active": false })
        );
    }

    /// A refresh at `/token`; asserts RFC 6749 §5.2's `invalid_grant`.
    async fn assert_refresh_refused(&self, rt: &str) {
        let (st, t) = self
            .post(
                "/token",
                ("web", &self.web),
                &[("grant_type", "refresh_token"), ("refresh_token", rt)],
            )
            .await;
        assert_eq!(
            (st, t["error"].as_str()),
            (400, Some("invalid_grant")),
            "{t}"
        );
    }

    async fn jwks_kids(&self) -> Vec<String> {
        let j: Value = http()
            .get(format!("{}/jwks.json", self.kc.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        j["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Where `/authorize` sends a browser with these cookies: a live session goes straight
    /// back to the app (first party, nothing to ask), none goes to the login page.
    async fn authorize_goes_to(&self, browser: &Cookies) -> String {
        let (_, challenge) = keycard_testkit::pkce();
        let r = http()
            .get(authorize_url(&self.kc.base, &challenge))
            .header(reqwest::header::COOKIE, browser.header())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        r.headers()["location"].to_str().unwrap().to_owned()
    }
}

/// Revocations are recorded in whole seconds and also match tokens issued in their own second
/// (the safe side). A sign-in meant to show that new tokens work waits for a later second.
async fn next_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

/// Polls `check` every 50 ms until it holds; panics after `bound`. Returns how long it took.
async fn within<F, Fut>(bound: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    loop {
        if check().await {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < bound, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth21_s7_3_1_client_add_refuses_a_public_first_party_client() {
    let kc = Keycard::serve().await;
    let err = kc.refused(&[
        "client",
        "add",
        "native",
        "--public",
        "--first-party",
        "--redirect-uri",
        "http://127.0.0.1/cb",
    ]);
    assert!(
        err.contains("--first-party needs a confidential client")
            && err.contains("identity is not proven"),
        "{err}"
    );
    assert_eq!(kc.admin(&["client", "list"], None), serde_json::json!([]));
    // The refusal is about the flag: the same native app without it is registered.
    let added = kc.add_client(
        "native",
        &["--public", "--redirect-uri", "http://127.0.0.1/cb"],
    );
    assert_eq!(
        (added["type"].as_str(), added["first_party"].as_bool()),
        (Some("public"), Some(false))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8252_s8_3_client_add_refuses_localhost_redirect_uris_naming_the_ip_literals() {
    let kc = Keycard::serve().await;
    for kind in ["--confidential", "--public"] {
        let err = kc.refused(&[
            "client",
            "add",
            "app",
            kind,
            "--redirect-uri",
            "http://localhost:8080/cb",
        ]);
        assert!(
            err.contains("http://localhost:8080/cb")
                && err.contains("http://127.0.0.1")
                && err.contains("http://[::1]"),
            "{kind}: {err}"
        );
    }
    assert_eq!(kc.admin(&["client", "list"], None), serde_json::json!([]));
    let added = kc.add_client(
        "app",
        &["--public", "--redirect-uri", "http://127.0.0.1:8080/cb"],
    );
    assert_eq!(added["redirect_uris"][0], "http://127.0.0.1:8080/cb");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9700_s4_14_2_user_set_password_revokes_the_users_access_and_refresh_tokens() {
    let f = fixture().await;
    let (at, rt) = f.user_tokens(&mut Cookies::default(), PASSWORD).await;
    assert!(f.active(&at).await);
    f.kc.admin(
        &["user", "set-password", "alice", "--password-stdin"],
        Some(&format!("{NEW_PASSWORD}\n")),
    );
    f.assert_refresh_refused(&rt).await;
    f.goes_inactive(&at).await;
    // Alice, not the attacker, goes on: the new password gives tokens that work.
    next_second().await;
    let (fresh, _) = f.user_tokens(&mut Cookies::default(), NEW_PASSWORD).await;
    assert!(f.active(&fresh).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_disable_revokes_tokens_and_session_and_user_enable_revives_nothing() {
    let f = fixture().await;
    let mut browser = Cookies::default();
    let (at, rt) = f.user_tokens(&mut browser, PASSWORD).await;
    assert!(f.authorize_goes_to(&browser).await.starts_with(REDIRECT));
    assert!(f.active(&at).await);
    f.kc.admin(&["user", "disable", "alice"], None);
    f.assert_refresh_refused(&rt).await;
    f.goes_inactive(&at).await;
    f.kc.admin(&["user", "enable", "alice"], None);
    assert!(!f.active(&at).await);
    f.assert_refresh_refused(&rt).await;
    // The browser session ended with the disable and stays ended: a password is asked.
    let to = f.authorize_goes_to(&browser).await;
    assert!(to.starts_with("/login"), "{to}");
    next_second().await;
    let (fresh, _) = f.user_tokens(&mut Cookies::default(), PASSWORD).await;
    assert!(f.active(&fresh).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7662_s2_2_client_remove_makes_its_client_credentials_tokens_inactive() {
    let f = fixture().await;
    let machine = f.machine_token().await;
    let (users, _) = f.user_tokens(&mut Cookies::default(), PASSWORD).await;
    assert!(f.active(&machine).await);
    f.kc.admin(&["client", "remove", "m2m"], None);
    f.goes_inactive(&machine).await;
    // Another client's tokens are untouched.
    assert!(f.active(&users).await);
    // The server may still authenticate the removed client from its cache for `cache_ttl`;
    // then it is `invalid_client`. A token it got in that window is born inactive.
    let removed = Instant::now();
    let mut late = Vec::new();
    loop {
        let (st, t) = f.machine_grant().await;
        if st != 200 {
            assert_eq!(
                (st, t["error"].as_str()),
                (401, Some("invalid_client")),
                "{t}"
            );
            break;
        }
        late.push(t["access_token"].as_str().unwrap().to_owned());
        assert!(
            removed.elapsed() < CLIENT_CACHE_BOUND,
            "the removed client still gets tokens after {CLIENT_CACHE_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in late {
        assert!(
            !f.active(&t).await,
            "a token the removed client got is active"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9700_s4_15_client_add_refuses_an_existing_users_id() {
    let f = fixture().await;
    let bob = f.kc.add_user("bob", "Bob", "bob@example.com");
    let id = bob["id"].as_str().unwrap();
    let err = f.kc.refused(&[
        "client",
        "add",
        id,
        "--confidential",
        "--grant",
        "client_credentials",
        "--audience",
        API,
    ]);
    assert!(
        err.contains(&format!("cannot add client {id}")) && err.contains("user's id"),
        "{err}"
    );
    let clients = f.kc.admin(&["client", "list"], None);
    assert!(
        !clients
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == id),
        "{clients}"
    );
    // Machine tokens tell themselves apart: their subject is their client.
    let j = f.introspect(&f.machine_token().await).await;
    assert_eq!(
        (j["sub"].as_str(), j["client_id"].as_str()),
        (Some("m2m"), Some("m2m")),
        "{j}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7517_s5_keys_revoke_leaves_the_running_servers_jwks_and_its_tokens_die() {
    let f = fixture().await;
    let at = f.machine_token().await;
    let kid = jwt_part(&at, 0)["kid"].as_str().unwrap().to_owned();
    assert!(f.jwks_kids().await.contains(&kid));
    assert!(f.active(&at).await);
    f.kc.admin(&["keys", "revoke", &kid], None);
    // The server verifies and publishes the keys it holds in memory, re-read every
    // `key_reload`: the key goes from both within that bound.
    let took = within(
        KEY_RELOAD_BOUND,
        "the revoked key leaves the JWKS",
        || async { !f.jwks_kids().await.contains(&kid) },
    )
    .await;
    eprintln!("keys revoke to the key's removal from the JWKS: {took:?}");
    assert_eq!(
        f.introspect(&at).await,
        serde_json::json!({ "active": false })
    );
    // The server signs with another key at once, and its tokens work.
    let fresh = f.machine_token().await;
    assert_ne!(jwt_part(&fresh, 0)["kid"].as_str(), Some(kid.as_str()));
    assert!(f.active(&fresh).await);
    let keys = f.kc.admin(&["keys", "list"], None);
    assert!(
        !keys
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str()),
        "{keys}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_key_rotation_period_is_accepted_by_serve_and_shown_by_config_check() {
    let mut kc = Keycard::new();
    kc.start_with("serve", &["--key-rotation-days", "30"]).await;
    let r = http()
        .get(format!("{}/jwks.json", kc.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let shown = |extra: &[&str]| -> Value {
        let out = kc.cli(&[&["config-check"], extra].concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(
        shown(&["--key-rotation-days", "30"])["key_rotation_days"],
        30
    );
    assert_eq!(shown(&[])["key_rotation_days"], 90, "the default");
    assert_eq!(
        shown(&["--key-rotation-days", "0"])["key_rotation_days"],
        0,
        "off"
    );
    for bad in ["-1", "3651"] {
        let flag = format!("--key-rotation-days={bad}");
        let err = kc.refused(&["config-check", &flag]);
        assert!(
            err.contains("key_rotation_days must be 0 (off) or 1 to 3650"),
            "{err}"
        );
        let err = serve_refused(&kc, &flag).await;
        assert!(err.contains("key_rotation_days must be"), "{err}");
    }
}

/// Starts `keycard serve` with a bad `flag`, which must make it exit by itself, non-zero,
/// within 10 s (were it accepted, the server would run: it is killed and the test fails).
/// Returns its stderr.
async fn serve_refused(kc: &Keycard, flag: &str) -> String {
    use std::io::Read as _;
    let mut child = std::process::Command::new(crate::BIN)
        .args(["--database-url", &kc.db_url, "serve", flag])
        .args(["--addr", &format!("127.0.0.1:{}", crate::free_port())])
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("keycard serve {flag} is still running after 10 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        !status.success(),
        "keycard serve {flag} exited with {status}"
    );
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}
