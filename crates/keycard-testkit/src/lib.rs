//! Test fixtures: a real Keycard server on 127.0.0.1:0 (served by keycard-serve with its
//! default limits, and `/metrics` on a listener of its own) with a temporary database and an
//! advanceable clock. The database is SQLite, or PostgreSQL (a fresh schema per server in the
//! database named by `KEYCARD_TEST_PG_URL`) when `KEYCARD_TEST_BACKEND=postgres`, so the same
//! black-box suite checks both backends byte for byte. Plus a tiny cookie-keeping "browser"
//! (reqwest, redirects off) that walks the authorize → login → consent pages like a user would.
//!
//! Only tests use this crate, so a failed set-up step panics with its message: the test fails
//! at the step that broke instead of threading errors through every fixture call.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;

use keycard_os::{new_id, new_secret, random_bytes};
use keycard_protocol::pkce::{CodeChallenge, CodeVerifier};
use keycard_protocol::policy::{Api, Client, GrantType};
use keycard_protocol::redirect::RedirectUri;
use keycard_protocol::{Audience, ClientId, Clock as _, Issuer, ScopeSet, UserId, Username};
use keycard_server::{App, ManualClock, MasterKey, Settings};
use keycard_store::{PasswordHash, Store, User};
use keycard_store_sql::{AnyStore, PgStore, SqliteStore};

pub const PASSWORD: &str = "correct horse battery staple";
pub const API: &str = "https://api.example.com";
pub const REDIRECT: &str = "https://app.example.com/cb";

/// A running server.
pub struct TestServer {
    pub base: String,
    /// The separate listener serving `/metrics`.
    pub metrics_base: String,
    /// The master key's bytes, so a test can rotate keys as `keycard keys rotate` does.
    master: [u8; 32],
    pub app: Arc<App<AnyStore>>,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("base", &self.base)
            .finish()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after letting the test adjust the settings.
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = test_store(&dir).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut settings = Settings::new(Issuer::parse(&base, true).expect("issuer"));
        settings.signing_alg = keycard_jose::Alg::ES256;
        adjust(&mut settings);
        let clock = Arc::new(ManualClock::new(1_800_000_000));
        let master = random_bytes::<32>();
        let app = App::new(
            store,
            settings,
            MasterKey::from_bytes(master),
            clock.clone(),
        )
        .await
        .expect("app");
        keycard_server::metrics_handle();
        // The feed's poller, the back-channel sender, key reload and scheduled rotation run as
        // they do in `keycard serve`.
        keycard_server::spawn_background(&app);
        let router = keycard_server::router(app.clone());
        let options = keycard_serve::ServeOptions::default();
        tokio::spawn(keycard_serve::serve(
            listener,
            router,
            options.clone(),
            std::future::pending(),
        ));
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind metrics");
        let metrics_base = format!("http://{}", metrics.local_addr().expect("addr"));
        tokio::spawn(keycard_serve::serve(
            metrics,
            keycard_server::metrics_router(),
            options,
            std::future::pending(),
        ));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        TestServer {
            base,
            metrics_base,
            master,
            app,
            clock,
            http,
            _dir: dir,
        }
    }

    pub fn store(&self) -> &AnyStore {
        &self.app.store
    }

    /// A revocation made now, as the server would make it.
    pub fn revocation(&self) -> keycard_store::Revocation {
        let at = self.clock.now();
        keycard_store::Revocation {
            at,
            until: at.plus(self.app.settings.max_jwt_ttl()),
        }
    }

    /// The server's master key (it encrypts the signing keys at rest).
    pub fn master_key(&self) -> MasterKey {
        MasterKey::from_bytes(self.master)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `GET path` as JSON (discovery, the JWKS): the test fails if it is not.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.http.get(self.url(path)).send().await.expect("get");
        r.json().await.expect("a JSON answer")
    }

    /// A URL on the metrics listener.
    pub fn metrics_url(&self, path: &str) -> String {
        format!("{}{}", self.metrics_base, path)
    }

    /// The Prometheus text of the metrics listener.
    pub async fn metrics(&self) -> String {
        let r = self.http.get(self.metrics_url("/metrics")).send().await;
        r.expect("metrics").text().await.expect("metrics body")
    }

    pub async fn add_user(&self, username: &str) -> User {
        let u = User {
            id: new_id::<UserId>(),
            username: Username::parse(username).expect("username"),
            password_hash: PasswordHash::from_phc(
                keycard_server::hash_password(PASSWORD).expect("hash"),
            ),
            name: Some(format!("{username} Example")),
            given_name: Some(username.to_owned()),
            family_name: Some("Example".into()),
            picture: None,
            email: Some(format!("{username}@example.com")),
            email_verified: true,
            disabled: false,
            created_at: self.clock.now(),
        };
        self.store().create_user(&u).await.expect("create user");
        u
    }

    pub async fn add_api(&self, identifier: &str, scope: &str, ttl: i64) {
        let api = Api {
            identifier: Audience::parse(identifier).expect("audience"),
            name: "Test API".into(),
            scopes: ScopeSet::parse(scope).expect("scope"),
            access_token_ttl_secs: ttl,
        };
        self.store()
            .create_api(&api, self.clock.now())
            .await
            .expect("api");
    }

    /// Registers a client; returns its secret for confidential clients.
    pub async fn add_client(&self, spec: ClientSpec<'_>) -> Option<String> {
        self.add_client_with(spec, |_| {}).await
    }

    /// Registers a client after letting the test set what [`ClientSpec`] does not carry (the
    /// feed permission, post-logout and back-channel logout URIs).
    pub async fn add_client_with(
        &self,
        spec: ClientSpec<'_>,
        adjust: impl FnOnce(&mut Client),
    ) -> Option<String> {
        let secret = spec
            .confidential
            .then(new_secret::<keycard_protocol::kind::ClientSecret>);
        let c = Client {
            id: ClientId::parse(spec.id).expect("id"),
            name: format!("App {}", spec.id),
            secret_hash: secret.as_ref().map(|s| s.hash()),
            redirect_uris: spec
                .redirect_uris
                .iter()
                .map(|r| RedirectUri::register(r).expect("redirect"))
                .collect(),
            grant_types: spec.grants.to_vec(),
            scopes: ScopeSet::parse(spec.scope).expect("scope"),
            audiences: spec
                .audiences
                .iter()
                .map(|a| Audience::parse(a).expect("audience"))
                .collect(),
            first_party: spec.first_party,
            resource_servers: spec
                .resource_servers
                .iter()
                .map(|a| Audience::parse(a).expect("audience"))
                .collect(),
            feed: false,
            post_logout_redirect_uris: vec![],
            backchannel_logout: None,
        };
        let mut c = c;
        adjust(&mut c);
        self.store()
            .create_client(&c, self.clock.now())
            .await
            .expect("client");
        secret.map(|s| s.secret().to_owned())
    }
}

/// The backend the tests run on (see the crate docs).
async fn test_store(dir: &tempfile::TempDir) -> AnyStore {
    if std::env::var("KEYCARD_TEST_BACKEND").as_deref() == Ok("postgres") {
        let url = std::env::var("KEYCARD_TEST_PG_URL")
            .expect("KEYCARD_TEST_PG_URL for the postgres backend");
        let schema = format!("kc_test_{}", new_id::<keycard_protocol::GrantId>());
        let admin = PgStore::connect(&url, false).await.expect("connect");
        admin.create_schema(&schema).await.expect("schema");
        let url = format!(
            "{url}{}options=-c%20search_path%3D{schema}",
            if url.contains('?') { '&' } else { '?' }
        );
        AnyStore::Postgres(PgStore::connect(&url, true).await.expect("store"))
    } else {
        AnyStore::Sqlite(
            SqliteStore::open(&dir.path().join("keycard.db"))
                .await
                .expect("open store"),
        )
    }
}

/// What a test client looks like.
#[derive(Debug, Clone)]
pub struct ClientSpec<'a> {
    pub id: &'a str,
    pub confidential: bool,
    pub first_party: bool,
    pub grants: &'a [GrantType],
    pub scope: &'a str,
    pub audiences: &'a [&'a str],
    pub redirect_uris: &'a [&'a str],
    /// APIs it may introspect tokens for (RFC 7662 §4).
    pub resource_servers: &'a [&'a str],
}

impl<'a> ClientSpec<'a> {
    /// A public, first-party web app with code + refresh grants.
    pub fn web(id: &'a str) -> Self {
        ClientSpec {
            id,
            confidential: false,
            first_party: true,
            grants: &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope: "openid profile email offline_access photos:read",
            audiences: &[API],
            redirect_uris: &[REDIRECT],
            resource_servers: &[],
        }
    }
}

/// A fresh PKCE pair.
pub fn pkce() -> (String, String) {
    let v = CodeVerifier::from_random(&random_bytes::<32>());
    let c = CodeChallenge::s256(&v);
    (v.secret().to_owned(), c.as_str().to_owned())
}

/// A response reduced to what tests look at.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The value of a hidden form input.
    pub fn input(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&needle)? + needle.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].to_owned())
    }

    /// A query parameter of the redirect target.
    pub fn location_param(&self, name: &str) -> Option<String> {
        let loc = self.location.as_deref()?;
        let url = url::Url::parse(loc)
            .or_else(|_| url::Url::parse(&format!("http://x{loc}")))
            .ok()?;
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A cookie-keeping HTTP client that behaves like a browser tab (same-origin form posts).
#[derive(Debug)]
pub struct Browser {
    base: String,
    http: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new(server: &TestServer) -> Browser {
        Browser {
            base: server.base.clone(),
            http: server.http.clone(),
            cookies: HashMap::new(),
        }
    }

    /// A browser on another machine: its connections come from `ip` (any 127.0.0.0/8 address
    /// reaches the server on Linux), so per-address rules see a different peer.
    pub fn from_address(server: &TestServer, ip: [u8; 4]) -> Browser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .expect("client");
        Browser {
            base: server.base.clone(),
            http,
            cookies: HashMap::new(),
        }
    }

    /// The `Cookie` header this browser sends (for tests that fire requests in parallel).
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The HTTP client this browser's requests go out on.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn finish(&mut self, r: reqwest::Response) -> Resp {
        for sc in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let s = sc.to_str().unwrap_or("");
            let pair = s.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || s.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let location = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = r.text().await.unwrap_or_default();
        Resp {
            status,
            location,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path_or_url: &str) -> Resp {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{}", self.base, path_or_url)
        };
        let r = self
            .http
            .get(url)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header("sec-fetch-site", "none")
            .send()
            .await
            .expect("get");
        self.finish(r).await
    }

    pub async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let r = self
            .http
            .post(format!("{}{}", self.base, path))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(reqwest::header::ORIGIN, self.base.clone())
            .form(form)
            .send()
            .await
            .expect("post");
        self.finish(r).await
    }

    /// Follows the authorize request through login (and consent, when shown) to the final
    /// redirect back to the client. Returns that last response.
    pub async fn authorize(&mut self, query: &str, username: &str, password: &str) -> Resp {
        let mut r = self.get(&format!("/authorize?{query}")).await;
        for _ in 0..6 {
            let Some(loc) = r.location.clone() else {
                return r;
            };
            if loc.starts_with("/login") {
                let page = self.get(&loc).await;
                let (txn, csrf) = (
                    page.input("txn").unwrap_or_default(),
                    page.input("csrf").unwrap_or_default(),
                );
                r = self
                    .post_form(
                        "/login",
                        &[
                            ("txn", &txn),
                            ("csrf", &csrf),
                            ("username", username),
                            ("password", password),
                        ],
                    )
                    .await;
            } else if loc.starts_with("/consent") {
                let page = self.get(&loc).await;
                let (txn, csrf) = (
                    page.input("txn").unwrap_or_default(),
                    page.input("csrf").unwrap_or_default(),
                );
                r = self
                    .post_form(
                        "/consent",
                        &[("txn", &txn), ("csrf", &csrf), ("decision", "approve")],
                    )
                    .await;
            } else {
                return r;
            }
        }
        r
    }
}

/// Builds an authorize query with PKCE; returns (query, verifier).
pub fn authorize_query(client_id: &str, scope: &str, extra: &str) -> (String, String) {
    let (v, c) = pkce();
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", "st-123")
        .append_pair("nonce", "n-456")
        .append_pair("code_challenge", &c)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let q = if extra.is_empty() {
        q
    } else {
        format!("{q}&{extra}")
    };
    (q, v)
}

/// Decodes a JWT's header and claims without verifying (tests verify separately).
pub fn jwt_parts(token: &str) -> (serde_json::Value, serde_json::Value) {
    use base64::Engine as _;
    let mut parts = token.split('.');
    let dec = |s: Option<&str>| {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.unwrap_or(""))
            .unwrap_or_default();
        serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null)
    };
    (dec(parts.next()), dec(parts.next()))
}
