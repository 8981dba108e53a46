//! Configuration: [`BffConfig`], the serde form an application reads from TOML (and, if it
//! likes, from `KEYCARD_BFF_*` environment variables it passes in), and [`Settings`], the
//! validated form [`crate::Bff`] runs on, which code can also build directly.
//!
//! [`BffConfig::from_toml_str`] parses (unknown keys are errors); [`BffConfig::with_env`]
//! overlays variables the caller read; [`BffConfig::build`] validates everything into
//! [`Settings`]. This crate reads no file and no environment itself: the application does,
//! as Keycard's CLI does for the server.
//!
//! Rules checked: the issuer is https, or http on a loopback host when `allow_http` is set;
//! the public origin is an origin (no path) and http only on loopback, where browsers treat
//! `Secure` cookies as they do on https; the scope contains `openid`; cookie names carry the
//! `__Host-` prefix; the route prefix, the proxy prefix and every route path are canonical
//! paths (the gateway's rules), every route lies under the proxy prefix, and no path is listed
//! twice; timeouts are positive.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use keycard_gateway::path::CanonicalPath;
use keycard_gateway::route::{RoutePath, Upstream, parse_method};
use keycard_protocol::{Audience, ClientId, ClientSecret, Issuer, ScopeSet};
use serde::Deserialize;

use crate::seal::SessionKey;

/// The configuration as written in TOML. Every key is optional here; [`BffConfig::build`]
/// says which are required.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BffConfig {
    /// The OpenID provider's issuer identifier; discovery starts from it.
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// Better passed as `KEYCARD_BFF_CLIENT_SECRET` than written in a file.
    pub client_secret: Option<String>,
    /// Where browsers reach the application, e.g. `https://app.example.com`.
    pub public_origin: Option<String>,
    /// Allow an http issuer on a loopback host (development and tests).
    #[serde(default)]
    pub allow_http: bool,
    /// Default `openid profile email offline_access`.
    pub scope: Option<String>,
    /// RFC 8707 resource indicators sent with the authorization request.
    #[serde(default)]
    pub resource: Vec<String>,
    /// The BFF's routes live under this path; default `/bff`.
    pub prefix: Option<String>,
    /// 32 bytes, base64url: seals tokens at rest. Better passed as `KEYCARD_BFF_SESSION_KEY`.
    pub session_key: Option<String>,
    /// Keys that still open sessions sealed before a rotation.
    #[serde(default)]
    pub previous_session_keys: Vec<String>,
    /// `sqlite://PATH` or `postgres://…`, for [`crate::store::sql::connect`].
    pub database_url: Option<String>,
    /// Default: the public origin followed by `/`.
    pub post_logout_redirect_uri: Option<String>,
    pub idle_timeout_secs: Option<u64>,
    pub absolute_timeout_secs: Option<u64>,
    pub refresh_ahead_secs: Option<u64>,
    pub login_timeout_secs: Option<u64>,
    pub http_timeout_secs: Option<u64>,
    /// The access token's lifetime when the token response has no `expires_in`.
    pub default_access_token_ttl_secs: Option<u64>,
    /// The custom header every API call carries; default `X-CSRF`.
    pub csrf_header: Option<String>,
    /// Its required value; default `1`.
    pub csrf_value: Option<String>,
    pub session_cookie: Option<String>,
    pub login_cookie: Option<String>,
    #[serde(default)]
    pub proxy: ProxyConfig,
}

impl std::fmt::Debug for BffConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BffConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("public_origin", &self.public_origin)
            .field("prefix", &self.prefix)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

/// The API proxy's allowlist.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Every route lies under this path, and the BFF answers everything under it (403 for a
    /// path no route lists); default `/api`.
    pub prefix: Option<String>,
    /// The largest request or response body proxied; default 1 MiB.
    pub max_body_bytes: Option<usize>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// One allowlisted prefix.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A path prefix under the proxy prefix, e.g. `/api/photos`; covers everything under it.
    pub path: String,
    /// `http(s)://host[:port][/base]`: the request target is sent under the base path.
    pub upstream: String,
    /// Methods allowed, e.g. `["GET", "POST"]`.
    pub methods: Vec<String>,
    pub timeout_secs: Option<u64>,
    /// Send only what follows `path` under the upstream's base path (`/api/photos/1` to
    /// `http://gw/photos` becomes `/photos/1`), as Duende BFF's remote endpoints map a local
    /// path to a remote URL. Off by default: the whole target goes under the base path.
    #[serde(default)]
    pub strip_prefix: bool,
    /// When the upstream answers 401, refresh the tokens once and repeat the call (the
    /// default). Off, the upstream's 401 reaches the page as it is, and the session stays.
    pub refresh_on_401: Option<bool>,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
#[error("BFF configuration: {0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// One proxied prefix, validated.
#[derive(Clone, Debug)]
pub struct ProxyRoute {
    pub path: RoutePath,
    pub upstream: Upstream,
    pub methods: Vec<Method>,
    pub timeout: Duration,
    /// Whether `path` is removed from the target before it goes under the upstream's base.
    pub strip_prefix: bool,
    /// Whether an upstream 401 makes the BFF refresh once and repeat the call.
    pub refresh_on_401: bool,
}

impl ProxyRoute {
    /// The request target to send upstream for a canonical target this route matched.
    pub fn upstream_target(&self, target: &keycard_gateway::path::CanonicalPath) -> String {
        if !self.strip_prefix {
            return self.upstream.request_target(target);
        }
        // The route matched, so the target starts with the route's path at a segment boundary
        // and what follows is empty, `/...` or `?...`.
        let rest = target
            .as_str()
            .strip_prefix(self.path.as_str().trim_end_matches('/'))
            .unwrap_or(target.as_str());
        let base = self.upstream.base_path();
        match (base.is_empty(), rest.starts_with('/')) {
            (_, true) => format!("{base}{rest}"),
            (true, false) => format!("/{rest}"),
            (false, false) => format!("{base}{rest}"),
        }
    }
}

/// The validated settings. Build them with [`BffConfig::build`] or [`Settings::new`] and the
/// setters.
#[derive(Clone, Debug)]
pub struct Settings {
    pub issuer: Issuer,
    pub client_id: ClientId,
    pub client_secret: ClientSecret,
    /// `scheme://host[:port]`, no trailing slash.
    pub public_origin: String,
    pub scope: ScopeSet,
    pub resource: Vec<Audience>,
    /// The route prefix, e.g. `/bff`.
    pub prefix: RoutePath,
    pub session_key: SessionKey,
    pub previous_session_keys: Vec<SessionKey>,
    pub database_url: Option<String>,
    pub post_logout_redirect_uri: String,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// Refresh when the access token expires within this time.
    pub refresh_ahead: Duration,
    pub login_timeout: Duration,
    /// Timeout of every request to the provider.
    pub http_timeout: Duration,
    pub default_access_token_ttl: Duration,
    pub csrf_header: HeaderName,
    pub csrf_value: HeaderValue,
    pub session_cookie: String,
    pub login_cookie: String,
    pub proxy_prefix: RoutePath,
    pub max_body_bytes: usize,
    pub routes: Vec<ProxyRoute>,
}

impl BffConfig {
    /// Parses a TOML document whose top level is this configuration.
    pub fn from_toml_str(s: &str) -> Result<BffConfig, ConfigError> {
        toml::from_str(s).map_err(|e| err(e.to_string()))
    }

    /// Overlays `KEYCARD_BFF_ISSUER`, `_CLIENT_ID`, `_CLIENT_SECRET`, `_PUBLIC_ORIGIN`,
    /// `_SESSION_KEY` and `_DATABASE_URL` from the variables given (the application passes
    /// `std::env::vars()`); other variables are ignored.
    pub fn with_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> BffConfig {
        for (k, v) in vars {
            let slot = match k.strip_prefix("KEYCARD_BFF_") {
                Some("ISSUER") => &mut self.issuer,
                Some("CLIENT_ID") => &mut self.client_id,
                Some("CLIENT_SECRET") => &mut self.client_secret,
                Some("PUBLIC_ORIGIN") => &mut self.public_origin,
                Some("SESSION_KEY") => &mut self.session_key,
                Some("DATABASE_URL") => &mut self.database_url,
                _ => continue,
            };
            *slot = Some(v);
        }
        self
    }

    /// Validates everything into [`Settings`].
    pub fn build(self) -> Result<Settings, ConfigError> {
        let need =
            |v: Option<String>, name: &str| v.ok_or_else(|| err(format!("{name} is required")));
        let issuer = parse_issuer(&need(self.issuer, "issuer")?, self.allow_http)?;
        let client_id = ClientId::parse_strict(&need(self.client_id, "client_id")?)
            .map_err(|e| err(format!("client_id: {e}")))?;
        let client_secret = ClientSecret::parse(&need(self.client_secret, "client_secret")?)
            .map_err(|e| err(format!("client_secret: {e}")))?;
        let origin = need(self.public_origin, "public_origin")?;
        let key = SessionKey::parse(&need(self.session_key, "session_key")?)
            .map_err(|e| err(e.to_owned()))?;
        let mut s = Settings::new(issuer, client_id, client_secret, &origin, key)?;
        if let Some(scope) = self.scope {
            s = s.scope(&scope)?;
        }
        for r in &self.resource {
            s.resource
                .push(Audience::parse(r).map_err(|e| err(format!("resource: {e}")))?);
        }
        if let Some(p) = self.prefix {
            s.prefix = route_path(&p, "prefix")?;
        }
        for k in &self.previous_session_keys {
            s.previous_session_keys
                .push(SessionKey::parse(k).map_err(|e| err(e.to_owned()))?);
        }
        s.database_url = self.database_url;
        if let Some(u) = self.post_logout_redirect_uri {
            s.post_logout_redirect_uri = absolute_url(&u, "post_logout_redirect_uri")?;
        }
        let secs = |v: Option<u64>, d: Duration, name: &str| match v {
            None => Ok(d),
            Some(0) => Err(err(format!("{name} must be positive"))),
            Some(n) => Ok(Duration::from_secs(n)),
        };
        s.idle_timeout = secs(self.idle_timeout_secs, s.idle_timeout, "idle_timeout_secs")?;
        s.absolute_timeout = secs(
            self.absolute_timeout_secs,
            s.absolute_timeout,
            "absolute_timeout_secs",
        )?;
        s.refresh_ahead = self
            .refresh_ahead_secs
            .map_or(s.refresh_ahead, Duration::from_secs);
        s.login_timeout = secs(
            self.login_timeout_secs,
            s.login_timeout,
            "login_timeout_secs",
        )?;
        s.http_timeout = secs(self.http_timeout_secs, s.http_timeout, "http_timeout_secs")?;
        s.default_access_token_ttl = secs(
            self.default_access_token_ttl_secs,
            s.default_access_token_ttl,
            "default_access_token_ttl_secs",
        )?;
        if let Some(h) = self.csrf_header {
            s.csrf_header = HeaderName::try_from(h.as_str())
                .map_err(|_| err("csrf_header is not a header name"))?;
        }
        if let Some(v) = self.csrf_value {
            s.csrf_value = HeaderValue::try_from(v.as_str())
                .map_err(|_| err("csrf_value is not a header value"))?;
        }
        if let Some(c) = self.session_cookie {
            s.session_cookie = cookie_name(c, "session_cookie")?;
        }
        if let Some(c) = self.login_cookie {
            s.login_cookie = cookie_name(c, "login_cookie")?;
        }
        if let Some(p) = self.proxy.prefix {
            s.proxy_prefix = route_path(&p, "proxy.prefix")?;
        }
        if let Some(n) = self.proxy.max_body_bytes {
            s.max_body_bytes = n;
        }
        for r in self.proxy.routes {
            let methods = r
                .methods
                .iter()
                .map(|m| parse_method(m).map_err(|e| err(format!("route {}: {e}", r.path))))
                .collect::<Result<Vec<_>, _>>()?;
            let route = ProxyRoute {
                path: route_path(&r.path, "route path")?,
                upstream: Upstream::parse(&r.upstream)
                    .map_err(|e| err(format!("route {}: {e}", r.path)))?,
                methods,
                timeout: secs(r.timeout_secs, Duration::from_secs(30), "timeout_secs")?,
                strip_prefix: r.strip_prefix,
                refresh_on_401: r.refresh_on_401.unwrap_or(true),
            };
            s = s.route(route)?;
        }
        s.check_prefixes()?;
        Ok(s)
    }
}

impl Settings {
    /// Settings with the defaults: scope `openid profile email offline_access`, prefix `/bff`,
    /// proxy prefix `/api` with no routes, `X-CSRF: 1`, idle timeout 30 min, absolute 12 h,
    /// refresh 60 s ahead, provider timeout 5 s.
    pub fn new(
        issuer: Issuer,
        client_id: ClientId,
        client_secret: ClientSecret,
        public_origin: &str,
        session_key: SessionKey,
    ) -> Result<Settings, ConfigError> {
        let public_origin = origin(public_origin)?;
        Ok(Settings {
            issuer,
            client_id,
            client_secret,
            post_logout_redirect_uri: format!("{public_origin}/"),
            public_origin,
            scope: ScopeSet::parse("openid profile email offline_access")
                .map_err(|e| err(e.to_string()))?,
            resource: Vec::new(),
            prefix: route_path("/bff", "prefix")?,
            session_key,
            previous_session_keys: Vec::new(),
            database_url: None,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            refresh_ahead: Duration::from_secs(60),
            login_timeout: Duration::from_secs(10 * 60),
            http_timeout: Duration::from_secs(5),
            default_access_token_ttl: Duration::from_secs(5 * 60),
            csrf_header: HeaderName::from_static("x-csrf"),
            csrf_value: HeaderValue::from_static("1"),
            session_cookie: "__Host-bff-session".to_owned(),
            login_cookie: "__Host-bff-login".to_owned(),
            proxy_prefix: route_path("/api", "proxy prefix")?,
            max_body_bytes: 1024 * 1024,
            routes: Vec::new(),
        })
    }

    /// Replaces the scope; it must contain `openid`.
    pub fn scope(mut self, scope: &str) -> Result<Settings, ConfigError> {
        let scope = ScopeSet::parse(scope).map_err(|e| err(format!("scope: {e}")))?;
        if !scope.contains("openid") {
            return Err(err("scope must contain openid"));
        }
        self.scope = scope;
        Ok(self)
    }

    /// Adds a proxied route under the proxy prefix; a path may be listed once.
    pub fn route(mut self, route: ProxyRoute) -> Result<Settings, ConfigError> {
        if self.routes.iter().any(|r| r.path == route.path) {
            return Err(err(format!(
                "route {} is listed twice",
                route.path.as_str()
            )));
        }
        if route.methods.is_empty() {
            return Err(err(format!(
                "route {} lists no methods",
                route.path.as_str()
            )));
        }
        self.routes.push(route);
        self.check_prefixes()?;
        Ok(self)
    }

    /// `{public_origin}{prefix}/callback`: the redirect URI registered at the provider.
    pub fn redirect_uri(&self) -> String {
        format!("{}{}/callback", self.public_origin, self.prefix_str())
    }

    /// `{public_origin}{prefix}/backchannel-logout`: the back-channel logout URI registered at
    /// the provider.
    pub fn backchannel_logout_uri(&self) -> String {
        format!(
            "{}{}/backchannel-logout",
            self.public_origin,
            self.prefix_str()
        )
    }

    /// The route prefix without a trailing slash (empty when it is `/`).
    pub(crate) fn prefix_str(&self) -> &str {
        self.prefix.as_str().trim_end_matches('/')
    }

    fn check_prefixes(&self) -> Result<(), ConfigError> {
        for r in &self.routes {
            let p = CanonicalPath::parse(r.path.as_str()).map_err(|e| err(e.to_string()))?;
            if !self.proxy_prefix.matches(&p) {
                return Err(err(format!(
                    "route {} is not under the proxy prefix {}",
                    r.path.as_str(),
                    self.proxy_prefix.as_str()
                )));
            }
        }
        let bff = CanonicalPath::parse(self.prefix.as_str()).map_err(|e| err(e.to_string()))?;
        let api =
            CanonicalPath::parse(self.proxy_prefix.as_str()).map_err(|e| err(e.to_string()))?;
        if self.proxy_prefix.matches(&bff) || self.prefix.matches(&api) {
            return Err(err(
                "the BFF prefix and the proxy prefix must not contain each other",
            ));
        }
        Ok(())
    }
}

fn route_path(s: &str, name: &str) -> Result<RoutePath, ConfigError> {
    RoutePath::parse(s).map_err(|e| err(format!("{name}: {e}")))
}

fn cookie_name(c: String, name: &str) -> Result<String, ConfigError> {
    let token = c
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !c.starts_with("__Host-") || !token || c.len() > 64 {
        return Err(err(format!(
            "{name} must be a cookie name starting with __Host- (RFC 6265bis §4.1.3.2)"
        )));
    }
    Ok(c)
}

fn is_loopback(url: &url::Url) -> bool {
    matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
}

fn parse_issuer(s: &str, allow_http: bool) -> Result<Issuer, ConfigError> {
    let url = url::Url::parse(s).map_err(|e| err(format!("issuer: {e}")))?;
    if url.scheme() == "http" && !(allow_http && is_loopback(&url)) {
        return Err(err(
            "issuer must be https (http only on loopback with allow_http)",
        ));
    }
    Issuer::from_wire(s).map_err(|e| err(format!("issuer: {e}")))
}

fn origin(s: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(s).map_err(|e| err(format!("public_origin: {e}")))?;
    let ok_scheme = match url.scheme() {
        "https" => true,
        "http" => is_loopback(&url),
        _ => false,
    };
    if !ok_scheme {
        return Err(err(
            "public_origin must be https (http only on a loopback host)",
        ));
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(err(
            "public_origin must be an origin: scheme, host and port only",
        ));
    }
    Ok(url.origin().ascii_serialization())
}

fn absolute_url(s: &str, name: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(s).map_err(|e| err(format!("{name}: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.fragment().is_some() {
        return Err(err(format!(
            "{name} must be an http(s) URL without a fragment"
        )));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests;
