//! Fixtures: a BFF application on 127.0.0.1:0, an echo upstream, a browser-like agent with
//! one cookie jar per origin, and an HTTP client that counts the BFF's token requests.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::routing::{any, get};
use keycard_bff::store::BffStore;
use keycard_bff::{Bff, BffOptions, BffSession, ProxyRoute, SessionKey, Settings};
use keycard_protocol::{ClientId, ClientSecret, Clock, Issuer};
use keycard_validate::{
    BasicAuth, BoxFuture, HttpClient, HttpError, HttpResponse, ReqwestClient, StreamingResponse,
};
use serde_json::{Value, json};

/// How many token-endpoint requests of each kind the BFF made.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    pub(crate) code: AtomicUsize,
    pub(crate) refresh: AtomicUsize,
    pub(crate) revoke: AtomicUsize,
    /// Refresh requests fail as a network error would.
    pub(crate) fail_refresh: std::sync::atomic::AtomicBool,
    /// Refresh requests carry a refresh token the provider does not know (`invalid_grant`).
    pub(crate) bogus_refresh: std::sync::atomic::AtomicBool,
}

impl Counter {
    pub(crate) fn refreshes(&self) -> usize {
        self.refresh.load(Ordering::SeqCst)
    }
    pub(crate) fn codes(&self) -> usize {
        self.code.load(Ordering::SeqCst)
    }
}

/// The default HTTP client, counting what goes to the provider.
pub(crate) struct CountingHttp {
    inner: ReqwestClient,
    pub(crate) counter: Arc<Counter>,
}

impl CountingHttp {
    pub(crate) fn new(counter: Arc<Counter>) -> Arc<CountingHttp> {
        Arc::new(CountingHttp {
            inner: ReqwestClient::new().unwrap(),
            counter,
        })
    }
}

impl HttpClient for CountingHttp {
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        self.inner.get(url)
    }

    fn post_form<'a>(
        &'a self,
        url: &'a str,
        auth: &'a BasicAuth,
        form: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<HttpResponse, HttpError>> {
        let c = &self.counter;
        match form
            .iter()
            .find(|(k, _)| *k == "grant_type")
            .map(|(_, v)| *v)
        {
            Some("authorization_code") => c.code.fetch_add(1, Ordering::SeqCst),
            Some("refresh_token") => {
                if c.fail_refresh.load(Ordering::SeqCst) {
                    return Box::pin(async { Err(HttpError::new("connection refused")) });
                }
                if c.bogus_refresh.load(Ordering::SeqCst) {
                    return Box::pin(async move {
                        let form = [("grant_type", "refresh_token"), ("refresh_token", "bogus")];
                        self.inner.post_form(url, auth, &form).await
                    });
                }
                c.refresh.fetch_add(1, Ordering::SeqCst)
            }
            _ if form.iter().any(|(k, _)| *k == "token") => c.revoke.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
        self.inner.post_form(url, auth, form)
    }

    fn get_streaming<'a>(
        &'a self,
        url: &'a str,
        auth: &'a BasicAuth,
        headers: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<StreamingResponse, HttpError>> {
        self.inner.get_streaming(url, auth, headers)
    }
}

/// A fresh 32-byte session key.
pub(crate) fn session_key() -> SessionKey {
    SessionKey::from_bytes(keycard_os::random_bytes::<32>())
}

/// What the echo upstream saw and answers.
#[derive(Default)]
pub(crate) struct Echo {
    pub(crate) seen: Mutex<Vec<Value>>,
    /// Digests of `Authorization` values answered with 401.
    pub(crate) reject: Mutex<HashSet<String>>,
}

/// An upstream API that answers every request with what it received (the token as a digest).
pub(crate) async fn echo_upstream() -> (String, Arc<Echo>) {
    let echo = Arc::new(Echo::default());
    async fn handle(State(echo): State<Arc<Echo>>, req: Request) -> axum::response::Response {
        use axum::response::IntoResponse;
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let auth = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let seen = json!({
            "method": parts.method.as_str(),
            "target": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or(""),
            "token": auth.as_deref().map(digest),
            "bearer": auth.as_deref().is_some_and(|a| a.starts_with("Bearer ")),
            "cookie": parts.headers.contains_key("cookie"),
            "csrf": parts.headers.contains_key("x-csrf"),
            "custom": parts.headers.get("x-custom").and_then(|v| v.to_str().ok()),
            "body": String::from_utf8_lossy(&body),
        });
        echo.seen.lock().unwrap().push(seen.clone());
        if auth.is_some_and(|a| echo.reject.lock().unwrap().contains(&digest(&a))) {
            return (axum::http::StatusCode::UNAUTHORIZED, "expired").into_response();
        }
        (
            [("set-cookie", "upstream=1; Path=/"), ("x-upstream", "echo")],
            axum::Json(seen),
        )
            .into_response()
    }
    let app = Router::new()
        .route("/", any(handle))
        .route("/{*rest}", any(handle))
        .with_state(echo.clone());
    (serve(app).await, echo)
}

/// A short digest of a header value, so tests compare tokens without printing them.
pub(crate) fn digest(s: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    d.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Serves a router on 127.0.0.1:0; returns its base URL.
pub(crate) async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// A running BFF application: `/` (a page), `/me` (the application's own API, through
/// `BffSession`) and the BFF's routes, with the proxy routes `/api/echo` (GET, POST) and
/// `/api/ro` (GET) to the echo upstream under `/up`.
pub(crate) struct BffApp {
    pub(crate) base: String,
    pub(crate) bff: Bff,
    pub(crate) store: Arc<dyn BffStore>,
    pub(crate) counter: Arc<Counter>,
    pub(crate) echo: Arc<Echo>,
}

/// The settings of a BFF at `base` for `issuer`, with the two echo routes.
pub(crate) fn settings(
    issuer: &str,
    client_id: &str,
    secret: &str,
    base: &str,
    echo: &str,
    key: SessionKey,
) -> Settings {
    let route = |path: &str, methods: &[&str]| ProxyRoute {
        path: keycard_gateway::route::RoutePath::parse(path).unwrap(),
        upstream: keycard_gateway::route::Upstream::parse(&format!("{echo}/up")).unwrap(),
        methods: methods
            .iter()
            .map(|m| keycard_gateway::route::parse_method(m).unwrap())
            .collect(),
        timeout: std::time::Duration::from_secs(10),
        strip_prefix: false,
        refresh_on_401: true,
    };
    Settings::new(
        Issuer::from_wire(issuer).unwrap(),
        ClientId::parse(client_id).unwrap(),
        ClientSecret::parse(secret).unwrap(),
        base,
        key,
    )
    .unwrap()
    .route(route("/api/echo", &["GET", "POST"]))
    .unwrap()
    .route(route("/api/ro", &["GET"]))
    .unwrap()
}

/// Binds a listener first (the BFF's redirect URI needs its port), then builds the BFF.
pub(crate) struct Pending {
    pub(crate) listener: tokio::net::TcpListener,
    pub(crate) base: String,
}

pub(crate) async fn reserve() -> Pending {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    Pending { listener, base }
}

async fn me(user: BffSession) -> axum::Json<Value> {
    axum::Json(json!({"sub": user.sub(), "name": user.name(),
        "token": digest(&format!("Bearer {}", user.access_token().unwrap().secret()))}))
}

impl Pending {
    pub(crate) async fn start(
        self,
        settings: Settings,
        store: Arc<dyn BffStore>,
        clock: Arc<dyn Clock>,
        echo: Arc<Echo>,
    ) -> BffApp {
        let counter = Arc::new(Counter::default());
        let options = BffOptions::default()
            .clock(clock)
            .http(CountingHttp::new(counter.clone()));
        let bff = Bff::new(settings, store.clone(), options).await.unwrap();
        let app = Router::new()
            .route(
                "/",
                get(|| async {
                    axum::response::Html("<!doctype html><title>home</title><p id=home>home</p>")
                }),
            )
            .route("/me", get(me))
            .layer(bff.layer())
            .merge(bff.router());
        let listener = self.listener;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        BffApp {
            base: self.base,
            bff,
            store,
            counter,
            echo,
        }
    }
}

/// A SQLite store in a fresh temporary file (the directory outlives the test).
pub(crate) async fn sqlite_store() -> (Arc<dyn BffStore>, String) {
    let dir = tempfile::tempdir().unwrap().keep();
    let url = format!("sqlite://{}?mode=rwc", dir.join("bff.db").display());
    (keycard_bff::store::sql::connect(&url).await.unwrap(), url)
}

/// A response reduced to what tests read.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    /// `Location`, made absolute against the request URL.
    pub(crate) location: Option<String>,
    pub(crate) set_cookies: Vec<String>,
    pub(crate) body: String,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub(crate) fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(String::as_str)
    }
}

/// A browser tab with a cookie jar per origin (`Secure` cookies are kept on http://127.0.0.1,
/// as browsers keep them) and no automatic redirects.
pub(crate) struct Agent {
    http: reqwest::Client,
    pub(crate) jar: HashMap<String, HashMap<String, String>>,
}

fn origin_of(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    u.origin().ascii_serialization()
}

impl Default for Agent {
    fn default() -> Agent {
        Agent::new()
    }
}

impl Agent {
    pub(crate) fn new() -> Agent {
        Agent {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
            jar: HashMap::new(),
        }
    }

    pub(crate) fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.jar.get(&origin_of(url))?.get(name).cloned()
    }

    pub(crate) fn set_cookie(&mut self, url: &str, name: &str, value: &str) {
        self.jar
            .entry(origin_of(url))
            .or_default()
            .insert(name.into(), value.into());
    }

    pub(crate) async fn send(
        &mut self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Resp {
        let origin = origin_of(url);
        let cookies = self
            .jar
            .get(&origin)
            .map(|j| {
                j.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        let mut rb = self.http.request(method, url);
        if !cookies.is_empty() {
            rb = rb.header("cookie", cookies);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let r = rb.send().await.unwrap();
        let mut set_cookies = Vec::new();
        for sc in r.headers().get_all("set-cookie") {
            let s = sc.to_str().unwrap().to_owned();
            if let Some((k, v)) = s.split(';').next().and_then(|p| p.split_once('=')) {
                let jar = self.jar.entry(origin.clone()).or_default();
                if v.is_empty() || s.contains("Max-Age=0") {
                    jar.remove(k);
                } else {
                    jar.insert(k.to_owned(), v.to_owned());
                }
            }
            set_cookies.push(s);
        }
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|l| url::Url::parse(url).unwrap().join(l).unwrap().to_string());
        let body = r.text().await.unwrap_or_default();
        Resp {
            status,
            headers,
            location,
            set_cookies,
            body,
        }
    }

    pub(crate) async fn get(&mut self, url: &str) -> Resp {
        self.send(reqwest::Method::GET, url, &[], None).await
    }

    /// A call as the page's script makes it: with `X-CSRF: 1`.
    pub(crate) async fn api(&mut self, method: &str, url: &str) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.send(
            m,
            url,
            &[("x-csrf", "1"), ("sec-fetch-site", "same-origin")],
            None,
        )
        .await
    }

    pub(crate) async fn post_form(
        &mut self,
        url: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Resp {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
        h.extend_from_slice(headers);
        self.send(reqwest::Method::POST, url, &h, Some(Bytes::from(body)))
            .await
    }
}

/// A query parameter of a URL.
pub(crate) fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Sends one raw HTTP/1.1 request (so that `..` and `%2e` reach the server as written) and
/// returns the status.
pub(crate) async fn raw_status(
    base: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    sock.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
