//! The running gateway: one request from the socket to the upstream and back, and the
//! configuration it is judged by, swapped atomically on reload.
//!
//! [`Gateway::new`] builds it from a validated [`GatewayConfig`] and the client secret;
//! [`Gateway::handle`] serves one request — the gateway's own paths (`/healthz`, and
//! `/.well-known/jwks.json` when a route sends identity assertions), then
//! [`CanonicalPath::parse`] (400), [`RouteTable::lookup`](crate::route::RouteTable::lookup)
//! (404 / 405 with `Allow`), [`policy::check`] (the RFC 6750 answers), the header rewrite and
//! [`Upstreams::send`] (502 / 504 JSON when the upstream fails); [`Gateway::reload`] swaps in a
//! new configuration; [`Gateway::handle_metrics`] serves the metrics listener.
//!
//! Invariants: every request reads the configuration once, at its start, as an `Arc`, so a
//! reload never changes the rules under a request in flight and never drops it; a reload that
//! keeps the issuer, audience, client and cache TTL keeps the authority (cached keys, the feed
//! connection, the introspection cache). Logs carry a request id, the method, the path without
//! its query, the route, the policy, the status and the time — never a header value or a token.
//!
//! Not here: accepting connections (`serve`), reading the file and the environment
//! (`keycard-cli`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use keycard_protocol::{ClientId, ClientSecret, Clock};
use keycard_validate::{FeedOptions, HttpClient, ReqwestClient, RevocationFeed};

use crate::assertion::{AssertionSigner, Identity};
use crate::authority::{Authority, AuthorityKey, AuthorityOptions};
use crate::config::GatewayConfig;
use crate::forward::{self, Body, Outgoing, UpstreamError, Upstreams};
use crate::metrics::{Metrics, Outcome};
use crate::path::CanonicalPath;
use crate::policy;
use crate::route::{Match, Route};

/// What the embedding program (or a test) may change.
#[derive(Clone)]
pub struct GatewayOptions {
    /// The time tokens are judged at; default the system clock.
    pub clock: Arc<dyn Clock>,
    /// HTTP to the authorization server; default reqwest (rustls, no redirects, 5 s timeout).
    pub http: Option<Arc<dyn HttpClient>>,
    /// The revocation feed's reconnect backoff and idle timeout.
    pub feed: FeedOptions,
    /// The least time between two JWKS fetches; default 60 s.
    pub jwks_min_refresh: Duration,
}

impl Default for GatewayOptions {
    fn default() -> GatewayOptions {
        GatewayOptions {
            clock: Arc::new(keycard_os::SystemClock),
            http: None,
            feed: FeedOptions::default(),
            jwks_min_refresh: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for GatewayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayOptions")
            .field("feed", &self.feed)
            .field("jwks_min_refresh", &self.jwks_min_refresh)
            .finish_non_exhaustive()
    }
}

/// Why the gateway could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the environment variable {0} (client_secret_env) is not set or empty")]
    MissingSecret(String),
    #[error("the client secret is not acceptable: {0}")]
    BadSecret(String),
    #[error("{0}")]
    Authority(#[from] crate::authority::AuthorityError),
    #[error("listen cannot change on reload ({old} → {new}); restart the gateway")]
    ListenChanged { old: SocketAddr, new: SocketAddr },
    #[error("cannot create the identity assertion key: {0}")]
    Key(String),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// The gateway. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

struct Shared {
    state: RwLock<Arc<State>>,
    metrics: Arc<Metrics>,
    signer: AssertionSigner,
    options: GatewayOptions,
    http: Arc<dyn HttpClient>,
    instance: String,
    next_id: AtomicU64,
}

struct State {
    config: GatewayConfig,
    authority: Option<Arc<Authority>>,
    upstreams: Upstreams,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("listen", &self.state().config.listen())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway for `config`. `client_secret` is the value of `client_secret_env`.
    pub fn new(
        config: GatewayConfig,
        client_secret: Option<&str>,
        options: GatewayOptions,
    ) -> Result<Gateway, GatewayError> {
        let http = match &options.http {
            Some(h) => h.clone(),
            None => Arc::new(ReqwestClient::new().map_err(|e| GatewayError::Http(e.to_string()))?),
        };
        let shared = Arc::new(Shared {
            state: RwLock::new(Arc::new(State {
                upstreams: Upstreams::new(config.limits().upstream_connect_timeout)
                    .map_err(GatewayError::Http)?,
                authority: None,
                config: config.clone(),
            })),
            metrics: Arc::new(Metrics::default()),
            signer: AssertionSigner::generate().map_err(|e| GatewayError::Key(e.to_string()))?,
            options,
            http,
            instance: hex4(),
            next_id: AtomicU64::new(0),
        });
        let gateway = Gateway { shared };
        let state = gateway.build(config, client_secret, None)?;
        *gateway.write() = Arc::new(state);
        Ok(gateway)
    }

    /// Swaps in a new configuration, or refuses it and keeps serving the old one.
    pub fn reload(
        &self,
        config: GatewayConfig,
        client_secret: Option<&str>,
    ) -> Result<(), GatewayError> {
        let old = self.state();
        if old.config.listen() != config.listen() {
            return Err(GatewayError::ListenChanged {
                old: old.config.listen(),
                new: config.listen(),
            });
        }
        let state = self.build(config, client_secret, Some(&old))?;
        *self.write() = Arc::new(state);
        Ok(())
    }

    fn build(
        &self,
        config: GatewayConfig,
        client_secret: Option<&str>,
        old: Option<&State>,
    ) -> Result<State, GatewayError> {
        let credentials = match config.client() {
            None => None,
            Some(c) => {
                let secret = client_secret
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| GatewayError::MissingSecret(c.client_secret_env.clone()))?;
                let id = ClientId::parse(&c.client_id)
                    .map_err(|e| GatewayError::BadSecret(e.to_string()))?;
                let secret = ClientSecret::parse(secret)
                    .map_err(|_| GatewayError::BadSecret("too long or empty".into()))?;
                Some((id, secret))
            }
        };
        let authority = match (config.issuer(), config.audience()) {
            (Some(issuer), Some(audience)) => {
                let key = AuthorityKey {
                    issuer: issuer.to_owned(),
                    audience: audience.to_owned(),
                    client_id: credentials.as_ref().map(|(id, _)| id.as_str().to_owned()),
                    secret_digest: credentials
                        .as_ref()
                        .map(|(_, s)| keycard_validate::token_digest(s.secret())),
                    cache_ttl: config.introspection_cache_ttl(),
                };
                match old.and_then(|o| o.authority.clone()) {
                    Some(a) if a.key == key => Some(a),
                    _ => Some(Authority::start(
                        key,
                        credentials,
                        self.shared.metrics.clone(),
                        AuthorityOptions {
                            clock: self.shared.options.clock.clone(),
                            http: self.shared.http.clone(),
                            feed: self.shared.options.feed.clone(),
                            jwks_min_refresh: self.shared.options.jwks_min_refresh,
                        },
                    )?),
                }
            }
            _ => None,
        };
        let upstreams = match old {
            Some(o)
                if o.config.limits().upstream_connect_timeout
                    == config.limits().upstream_connect_timeout =>
            {
                o.upstreams.clone()
            }
            _ => Upstreams::new(config.limits().upstream_connect_timeout)
                .map_err(GatewayError::Http)?,
        };
        Ok(State {
            config,
            authority,
            upstreams,
        })
    }

    fn state(&self) -> Arc<State> {
        self.shared
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Arc<State>> {
        self.shared
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration in force.
    pub fn config(&self) -> GatewayConfig {
        self.state().config.clone()
    }

    /// The counters behind `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The revocation feed, once discovery found one.
    pub fn feed(&self) -> Option<RevocationFeed> {
        let state = self.state();
        state.authority.as_ref()?.ready()?.feed.clone()
    }

    /// Whether discovery has succeeded (checked routes can judge tokens).
    pub fn is_ready(&self) -> bool {
        let state = self.state();
        state.authority.as_ref().is_none_or(|a| a.ready().is_some())
    }

    /// The `/metrics` text.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.render(self.feed().as_ref())
    }

    /// Serves the metrics listener: `/metrics` and `/healthz`.
    pub async fn handle_metrics(&self, req: Request<Incoming>) -> Response<Body> {
        match req.uri().path() {
            "/metrics" => {
                let mut r = Response::new(full(self.metrics_text()));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                r
            }
            "/healthz" => self.health(),
            _ => json_error(StatusCode::NOT_FOUND, "not_found", "no such path"),
        }
    }

    fn health(&self) -> Response<Body> {
        let feed = self.feed();
        let body = serde_json::json!({
            "status": "ok",
            "authorization_server": if self.is_ready() { "reached" } else { "not reached yet" },
            "feed": feed.as_ref().map(|f| serde_json::json!({
                "connected": f.is_connected(),
                "last_seq": f.last_seq(),
                "lag_seconds": match f.staleness() {
                    Duration::MAX => None,
                    d => Some(d.as_secs_f64()),
                },
                "last_error": f.last_error(),
            })),
        });
        json(StatusCode::OK, body.to_string())
    }

    /// Serves one request from `peer`.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let start = Instant::now();
        let state = self.state();
        let n = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("{}-{n}", self.shared.instance);
        let method = req.method().clone();
        let raw = req
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        match req.uri().path() {
            "/healthz" => {
                self.shared.metrics.unrouted.fetch_add(1, Ordering::Relaxed);
                return self.health();
            }
            "/.well-known/jwks.json"
                if state
                    .config
                    .routes()
                    .routes()
                    .iter()
                    .any(Route::identity_assertion) =>
            {
                self.shared.metrics.unrouted.fetch_add(1, Ordering::Relaxed);
                let mut r = json(StatusCode::OK, self.shared.signer.jwks());
                r.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("max-age=300"),
                );
                return r;
            }
            _ => {}
        }
        let target = match CanonicalPath::parse(&raw) {
            Ok(t) => t,
            Err(e) => {
                self.shared.metrics.unrouted.fetch_add(1, Ordering::Relaxed);
                tracing::info!(request_id, %method, status = 400, reason = %e, "refused path");
                return json_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string());
            }
        };
        let route = match state.config.routes().lookup(&target, &method) {
            Match::Route(r) => r,
            Match::NotFound => {
                self.shared.metrics.unrouted.fetch_add(1, Ordering::Relaxed);
                tracing::info!(request_id, %method, path = target.path(), status = 404, "no route");
                return json_error(StatusCode::NOT_FOUND, "not_found", "no route for this path");
            }
            Match::MethodNotAllowed { allow } => {
                self.shared.metrics.unrouted.fetch_add(1, Ordering::Relaxed);
                let allow: Vec<&str> = allow.iter().map(http::Method::as_str).collect();
                let mut r = json_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "the route does not allow this method",
                );
                if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                    r.headers_mut().insert(header::ALLOW, v);
                }
                return r;
            }
        };
        let (resp, outcome) = self
            .routed(req, route, &target, &state, peer, &request_id)
            .await;
        let took = start.elapsed();
        let policy = route.auth().as_str();
        self.shared
            .metrics
            .record(route.path().as_str(), policy, outcome, took);
        tracing::info!(
            request_id,
            %method,
            path = target.path(),
            route = route.path().as_str(),
            policy,
            status = resp.status().as_u16(),
            outcome = outcome.as_str(),
            micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            "request"
        );
        resp
    }

    async fn routed(
        &self,
        mut req: Request<Incoming>,
        route: &Route,
        target: &CanonicalPath,
        state: &State,
        peer: SocketAddr,
        request_id: &str,
    ) -> (Response<Body>, Outcome) {
        let config = &state.config;
        let realm = config.audience().unwrap_or("keycard-gateway");
        let identity =
            match policy::check(route, req.headers(), state.authority.as_deref(), config).await {
                Ok(identity) => identity,
                Err(refusal) => return (refusal.to_response(realm), refusal.outcome()),
            };
        let names = config.identity_headers();
        let mut pairs: Vec<(HeaderName, HeaderValue)> = Vec::new();
        if let Some(id) = &identity {
            let mut add = |name: &HeaderName, value: Option<&str>| {
                if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
                    pairs.push((name.clone(), v));
                }
            };
            add(&names.sub, id.sub.as_deref());
            add(&names.client_id, id.client_id.as_deref());
            add(&names.scope, Some(&id.scope));
            if route.identity_assertion() {
                let jwt = self.assertion(id, route);
                add(&names.assertion, jwt.as_deref());
            }
        }
        let uri = req.uri().clone();
        forward::request_headers(
            req.headers_mut(),
            &uri,
            Outgoing {
                peer,
                trusted_peer: config.is_trusted_proxy(peer.ip()),
                request_id,
                names,
                identity: pairs,
                forward_authorization: route.forwards_authorization(),
                upstream_authority: route.upstream().authority(),
            },
        );
        match state.upstreams.send(route, target, req).await {
            Ok(resp) => (resp, Outcome::Proxied),
            Err(UpstreamError::Timeout) => (
                json_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    "the upstream did not answer in time",
                ),
                Outcome::UpstreamTimeout,
            ),
            Err(e) => {
                tracing::warn!(request_id, upstream = route.upstream().as_str(), error = %e, "upstream failed");
                (
                    json_error(
                        StatusCode::BAD_GATEWAY,
                        "bad_gateway",
                        "the upstream could not be reached",
                    ),
                    Outcome::UpstreamError,
                )
            }
        }
    }

    fn assertion(&self, id: &Identity, route: &Route) -> Option<String> {
        let now = self.shared.options.clock.now();
        self.shared.signer.sign(id, route.upstream().as_str(), now)
    }
}

/// A short random prefix for this process's request ids.
fn hex4() -> String {
    keycard_os::random_bytes::<4>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A body from bytes in memory.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The gateway's own errors (400, 404, 405, 502, 504): the RFC 6749 §5.2 error shape.
pub fn json_error(status: StatusCode, error: &str, description: &str) -> Response<Body> {
    let body = serde_json::json!({"error": error, "error_description": description});
    json(status, body.to_string())
}
