//! The gateway's configuration file: TOML, every key known, every value validated, every error
//! placed at a line and column (RFC 8414 §3.3 issuer identity; RFC 6749 §3.3 scopes, §2.2
//! client ids; RFC 9110 §5.1 header names).
//!
//! [`GatewayConfig::parse`] turns the text into a [`GatewayConfig`] or a [`ConfigError`] with
//! the 1-based line and column of the offending key or `[[route]]`, so `keycard gateway check`
//! and a refused reload can say exactly what is wrong. [`GatewayConfig::describe`] prints the
//! effective settings and the route table for humans. `gateway.example.toml` next to this
//! crate's manifest documents every key and is loaded by a test.
//!
//! Invariants: unknown keys are errors, defaults are safe (no trusted proxies, `Authorization`
//! removed, a stale feed refuses `local_strict` routes, no introspection cache), and the issuer
//! is kept exactly as written because it is compared byte for byte with `iss`. Secrets never
//! appear here: `client_secret_env` names the environment variable the binary reads. No I/O,
//! no environment, no clock.
//!
//! Not here: reading the file and the secret (`keycard-cli`), reloading, and what the settings
//! do at run time (the proxy).

mod describe;

use std::net::{IpAddr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::time::Duration;

use http::HeaderName;
use serde::Deserialize;
use toml::Spanned;

use crate::route::{
    Auth, DEFAULT_TIMEOUT, MAX_TIMEOUT, Route, RouteError, RoutePath, RouteSpec, RouteTable,
    Upstream, parse_method, parse_scope,
};
pub use keycard_protocol::forwarded::TrustedProxy;

/// A validated gateway configuration.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    issuer: Option<String>,
    audience: Option<String>,
    client: Option<ClientCredentials>,
    trusted_proxies: Vec<TrustedProxy>,
    identity_headers: IdentityHeaders,
    feed_max_staleness: Duration,
    feed_stale_fallback: StaleFallback,
    introspection_cache_ttl: Option<Duration>,
    limits: Limits,
    routes: RouteTable,
}

/// The gateway's own client at the authorization server, for `/introspect` and `/revocations`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: String,
    /// The name of the environment variable holding the secret, never the secret.
    pub client_secret_env: String,
}

/// What a `local_strict` route does once the revocation feed has been stale too long.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaleFallback {
    /// Answer 503: never accept a token whose revocation could have been missed.
    #[default]
    Refuse,
    /// Ask the authorization server about every token until the feed is back.
    Introspect,
}

/// Connection-level limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send the request head (slowloris).
    pub header_read_timeout: Duration,
    /// How long a kept-alive client connection may sit idle.
    pub idle_timeout: Duration,
    /// How long connecting to an upstream may take.
    pub upstream_connect_timeout: Duration,
    /// Client connections served at once; more wait in the listen queue.
    pub max_connections: u32,
}

/// The headers that carry the verified identity to the upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub sub: HeaderName,
    pub client_id: HeaderName,
    pub scope: HeaderName,
    /// Carries the gateway-signed identity assertion on routes with `identity_assertion`.
    pub assertion: HeaderName,
}

/// A configuration error at a 1-based line and column (columns count characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ConfigError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Headers a configured identity header must never be: hop-by-hop and framing headers, the
/// credentials themselves, and the forwarded headers the gateway rebuilds.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-type",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
    "via",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Spanned<String>,
    metrics_listen: Option<Spanned<String>>,
    issuer: Option<Spanned<String>>,
    #[serde(default)]
    insecure_http: bool,
    audience: Option<Spanned<String>>,
    client_id: Option<Spanned<String>>,
    client_secret_env: Option<Spanned<String>>,
    #[serde(default)]
    trusted_proxies: Vec<Spanned<String>>,
    identity_headers: Option<RawHeaders>,
    feed_max_staleness_secs: Option<Spanned<u64>>,
    #[serde(default)]
    feed_stale_fallback: StaleFallback,
    introspection_cache_ttl_secs: Option<Spanned<u64>>,
    header_read_timeout_secs: Option<Spanned<u64>>,
    idle_timeout_secs: Option<Spanned<u64>>,
    upstream_connect_timeout_secs: Option<Spanned<u64>>,
    max_connections: Option<Spanned<u64>>,
    #[serde(default, rename = "route")]
    routes: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaders {
    sub: Option<Spanned<String>>,
    client_id: Option<Spanned<String>>,
    scope: Option<Spanned<String>>,
    assertion: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    path: Spanned<String>,
    methods: Spanned<Vec<Spanned<String>>>,
    upstream: Spanned<String>,
    auth: Spanned<Auth>,
    #[serde(default)]
    scopes: Vec<Spanned<String>>,
    #[serde(default)]
    forward_authorization: bool,
    timeout_secs: Option<Spanned<u64>>,
    #[serde(default)]
    upstream_http2: bool,
    identity_assertion: Option<Spanned<bool>>,
}

/// Places errors in the text being parsed.
struct Source<'a>(&'a str);

impl Source<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let offset = span.start.min(self.0.len());
        let before = self.0.get(..offset).unwrap_or(self.0);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        ConfigError {
            line: before.matches('\n').count() + 1,
            column: before.get(line_start..).unwrap_or("").chars().count() + 1,
            message: message.into(),
        }
    }

    fn at<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        self.error(value.span(), message)
    }

    /// An optional number of seconds within `range`, or `default`.
    fn secs(
        &self,
        value: &Option<Spanned<u64>>,
        name: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) if range.contains(v.get_ref()) => Ok(*v.get_ref()),
            Some(v) => Err(self.at(
                v,
                format!(
                    "{name} must be between {} and {}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }
}

impl GatewayConfig {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let src = Source(text);
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| src.error(e.span().unwrap_or(0..0), e.message().trim_end()))?;
        let listen = socket_addr(&src, &raw.listen, "listen")?;
        let metrics_listen = match &raw.metrics_listen {
            Some(m) => {
                let addr = socket_addr(&src, m, "metrics_listen")?;
                if addr == listen {
                    return Err(src.at(m, "metrics_listen must differ from listen"));
                }
                Some(addr)
            }
            None => None,
        };
        let issuer = match &raw.issuer {
            Some(i) => Some(issuer(i.get_ref(), raw.insecure_http).map_err(|e| src.at(i, e))?),
            None => None,
        };
        let audience = match &raw.audience {
            Some(a) => Some(audience(a.get_ref()).map_err(|e| src.at(a, e))?),
            None => None,
        };
        let client = client(&src, &raw)?;
        let trusted_proxies = raw
            .trusted_proxies
            .iter()
            .map(|p| TrustedProxy::parse(p.get_ref()).map_err(|e| src.at(p, e)))
            .collect::<Result<_, _>>()?;
        let identity_headers = identity_headers(&src, raw.identity_headers.as_ref())?;
        let feed_max_staleness = src.secs(
            &raw.feed_max_staleness_secs,
            "feed_max_staleness_secs",
            30,
            1..=3600,
        )?;
        let ttl = src.secs(
            &raw.introspection_cache_ttl_secs,
            "introspection_cache_ttl_secs",
            0,
            0..=300,
        )?;
        let limits = Limits {
            header_read_timeout: Duration::from_secs(src.secs(
                &raw.header_read_timeout_secs,
                "header_read_timeout_secs",
                10,
                1..=300,
            )?),
            idle_timeout: Duration::from_secs(src.secs(
                &raw.idle_timeout_secs,
                "idle_timeout_secs",
                60,
                1..=3600,
            )?),
            upstream_connect_timeout: Duration::from_secs(src.secs(
                &raw.upstream_connect_timeout_secs,
                "upstream_connect_timeout_secs",
                5,
                1..=300,
            )?),
            max_connections: u32::try_from(src.secs(
                &raw.max_connections,
                "max_connections",
                1024,
                1..=1_000_000,
            )?)
            .unwrap_or(1024),
        };
        let routes = routes(
            &src,
            &raw,
            issuer.is_some(),
            audience.is_some(),
            client.is_some(),
        )?;
        Ok(GatewayConfig {
            listen,
            metrics_listen,
            issuer,
            audience,
            client,
            trusted_proxies,
            identity_headers,
            feed_max_staleness: Duration::from_secs(feed_max_staleness),
            feed_stale_fallback: raw.feed_stale_fallback,
            introspection_cache_ttl: (ttl > 0).then(|| Duration::from_secs(ttl)),
            limits,
            routes,
        })
    }

    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The separate listener for `/metrics`, if any; it is never served on `listen`.
    pub fn metrics_listen(&self) -> Option<SocketAddr> {
        self.metrics_listen
    }

    /// The issuer exactly as configured (compared byte for byte with `iss`, RFC 8414 §3.3).
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    pub fn client(&self) -> Option<&ClientCredentials> {
        self.client.as_ref()
    }

    pub fn trusted_proxies(&self) -> &[TrustedProxy] {
        &self.trusted_proxies
    }

    /// Whether forwarded headers from this peer are believed.
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|p| p.contains(peer))
    }

    pub fn identity_headers(&self) -> &IdentityHeaders {
        &self.identity_headers
    }

    /// How long the revocation feed may be disconnected before `local_strict` routes stop
    /// trusting local validation alone.
    pub fn feed_max_staleness(&self) -> Duration {
        self.feed_max_staleness
    }

    pub fn feed_stale_fallback(&self) -> StaleFallback {
        self.feed_stale_fallback
    }

    /// The introspection cache lifetime (`None`: off). A cached answer never outlives the
    /// token's own `exp`.
    pub fn introspection_cache_ttl(&self) -> Option<Duration> {
        self.introspection_cache_ttl
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        IdentityHeaders {
            sub: HeaderName::from_static("x-keycard-sub"),
            client_id: HeaderName::from_static("x-keycard-client-id"),
            scope: HeaderName::from_static("x-keycard-scope"),
            assertion: HeaderName::from_static("x-keycard-identity"),
        }
    }
}

impl IdentityHeaders {
    /// Whether an incoming header is a copy of one of these, to be removed before forwarding:
    /// names compare case-insensitively and with `_` read as `-`, because some upstream stacks
    /// (CGI-style environments among them) map both spellings to the same variable.
    pub fn is_identity_header(&self, incoming: &[u8]) -> bool {
        [&self.sub, &self.client_id, &self.scope, &self.assertion]
            .iter()
            .any(|name| same_header(name.as_str().as_bytes(), incoming))
    }
}

fn same_header(ours: &[u8], incoming: &[u8]) -> bool {
    let fold = |b: u8| {
        if b == b'_' {
            b'-'
        } else {
            b.to_ascii_lowercase()
        }
    };
    ours.len() == incoming.len() && ours.iter().zip(incoming).all(|(&a, &b)| fold(a) == fold(b))
}

impl StaleFallback {
    pub fn as_str(self) -> &'static str {
        match self {
            StaleFallback::Refuse => "refuse",
            StaleFallback::Introspect => "introspect",
        }
    }
}

fn socket_addr(
    src: &Source<'_>,
    v: &Spanned<String>,
    name: &str,
) -> Result<SocketAddr, ConfigError> {
    v.get_ref().parse().map_err(|_| {
        src.at(
            v,
            format!("{name} must be an IP address and a port, such as 127.0.0.1:8081"),
        )
    })
}

/// The issuer: https, or http on a loopback host (or anywhere with `insecure_http`), without
/// query, fragment or user information, and kept as written, trailing slash included.
fn issuer(s: &str, insecure_http: bool) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("issuer is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if insecure_http || is_loopback(&url) => {}
        "http" => {
            return Err(
                "issuer must be https (http only on a loopback host, or with \
                        insecure_http = true)"
                    .into(),
            );
        }
        other => return Err(format!("issuer scheme {other} is not allowed (use https)")),
    }
    if url.query().is_some() || url.fragment().is_some() || s.contains(['?', '#']) {
        return Err("issuer must not have a query or a fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("issuer must not contain user information".into());
    }
    Ok(s.to_owned())
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

fn audience(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 2000 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("audience must be non-empty, without spaces or control characters".into());
    }
    Ok(s.to_owned())
}

fn client(src: &Source<'_>, raw: &RawConfig) -> Result<Option<ClientCredentials>, ConfigError> {
    let (id, env) = match (&raw.client_id, &raw.client_secret_env) {
        (None, None) => return Ok(None),
        (Some(id), Some(env)) => (id, env),
        (Some(id), None) => return Err(src.at(id, "client_id needs client_secret_env")),
        (None, Some(env)) => return Err(src.at(env, "client_secret_env needs client_id")),
    };
    // RFC 6749 §2.2 leaves the syntax open; VSCHAR (%x20-7E) is what Basic credentials carry.
    let id_ok = !id.get_ref().is_empty()
        && id.get_ref().len() <= 256
        && id.get_ref().bytes().all(|b| (0x20..=0x7e).contains(&b));
    if !id_ok {
        return Err(src.at(id, "client_id must be 1 to 256 printable ASCII characters"));
    }
    let mut name = env.get_ref().bytes();
    let env_ok = name
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !env_ok {
        return Err(src.at(
            env,
            "client_secret_env must name an environment variable (letters, digits, '_'), \
             not hold the secret",
        ));
    }
    Ok(Some(ClientCredentials {
        client_id: id.get_ref().clone(),
        client_secret_env: env.get_ref().clone(),
    }))
}

fn identity_headers(
    src: &Source<'_>,
    raw: Option<&RawHeaders>,
) -> Result<IdentityHeaders, ConfigError> {
    let mut headers = IdentityHeaders::default();
    let Some(raw) = raw else {
        return Ok(headers);
    };
    for (value, slot) in [
        (&raw.sub, &mut headers.sub),
        (&raw.client_id, &mut headers.client_id),
        (&raw.scope, &mut headers.scope),
        (&raw.assertion, &mut headers.assertion),
    ] {
        let Some(value) = value else { continue };
        let name = HeaderName::from_bytes(value.get_ref().as_bytes())
            .map_err(|_| src.at(value, "not a valid header name (RFC 9110 §5.1)"))?;
        if value.get_ref().contains('_') {
            return Err(src.at(value, "identity header names must use '-', not '_'"));
        }
        if RESERVED_HEADERS.contains(&name.as_str()) {
            return Err(src.at(value, format!("{name} cannot carry the identity")));
        }
        *slot = name;
    }
    // The defaults differ, so a clash involves at least one configured name: point at it.
    let names = [
        &headers.sub,
        &headers.client_id,
        &headers.scope,
        &headers.assertion,
    ];
    let values = [&raw.sub, &raw.client_id, &raw.scope, &raw.assertion];
    for (i, a) in names.iter().enumerate() {
        for (j, b) in names.iter().enumerate().skip(i + 1) {
            if a == b {
                let configured = [j, i].into_iter().find_map(|k| values.get(k)?.as_ref());
                let message = "each identity header needs its own name";
                return Err(match configured {
                    Some(v) => src.at(v, message),
                    None => src.error(0..0, message),
                });
            }
        }
    }
    Ok(headers)
}

fn routes(
    src: &Source<'_>,
    raw: &RawConfig,
    has_issuer: bool,
    has_audience: bool,
    has_client: bool,
) -> Result<RouteTable, ConfigError> {
    if raw.routes.is_empty() {
        return Err(src.error(
            0..0,
            "no [[route]]: the gateway would answer 404 to every request",
        ));
    }
    let mut routes = Vec::with_capacity(raw.routes.len());
    for r in &raw.routes {
        let path =
            RoutePath::parse(r.path.get_ref()).map_err(|e| src.at(&r.path, e.to_string()))?;
        let methods = r
            .methods
            .get_ref()
            .iter()
            .map(|m| parse_method(m.get_ref()).map_err(|e| src.at(m, e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let upstream = Upstream::parse(r.upstream.get_ref())
            .map_err(|e| src.at(&r.upstream, e.to_string()))?;
        let scopes = r
            .scopes
            .iter()
            .map(|s| parse_scope(s.get_ref()).map_err(|e| src.at(s, e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let auth = *r.auth.get_ref();
        let needs = |what: &str| {
            src.at(
                &r.auth,
                format!("auth = \"{}\" needs {what}", auth.as_str()),
            )
        };
        if auth.is_checked() && !has_issuer {
            return Err(needs("issuer (where keys and introspection come from)"));
        }
        if auth.is_checked() && !has_audience {
            return Err(needs(
                "audience (tokens must be meant for this gateway's APIs)",
            ));
        }
        if matches!(auth, Auth::LocalStrict | Auth::Introspect) && !has_client {
            return Err(needs(
                "client_id and client_secret_env (for introspection and the feed)",
            ));
        }
        let timeout = src.secs(
            &r.timeout_secs,
            "timeout_secs",
            DEFAULT_TIMEOUT.as_secs(),
            1..=MAX_TIMEOUT.as_secs(),
        )?;
        let identity_assertion = r.identity_assertion.as_ref().is_some_and(|a| *a.get_ref());
        if let Some(a) = &r.identity_assertion
            && identity_assertion
            && !auth.is_checked()
        {
            return Err(src.at(
                a,
                "identity_assertion needs a token check (auth other than \"none\")",
            ));
        }
        let spec = RouteSpec {
            scopes,
            forward_authorization: r.forward_authorization,
            timeout: Duration::from_secs(timeout),
            upstream_http2: r.upstream_http2,
            identity_assertion,
            ..RouteSpec::new(path, methods, upstream, auth)
        };
        let route = Route::new(spec).map_err(|e| match e {
            RouteError::NoMethods | RouteError::DuplicateMethod(_) => {
                src.at(&r.methods, e.to_string())
            }
            RouteError::ScopesWithoutAuth => src.at(&r.auth, e.to_string()),
            RouteError::DuplicateScope(ref scope) => {
                match r.scopes.iter().rev().find(|s| s.get_ref() == scope) {
                    Some(s) => src.at(s, e.to_string()),
                    None => src.at(&r.path, e.to_string()),
                }
            }
            _ => src.at(&r.path, e.to_string()),
        })?;
        routes.push(route);
    }
    RouteTable::new(routes).map_err(|e| {
        let line = |i: usize| {
            raw.routes
                .get(i)
                .map(|r| src.at(&r.path, "").line)
                .unwrap_or(0)
        };
        let here = raw.routes.get(e.index).map_or(0..0, |r| r.path.span());
        src.error(here, format!("{e} (the route at line {})", line(e.earlier)))
    })
}

#[cfg(test)]
mod tests;
