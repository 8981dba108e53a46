//! The route table: which upstream and which check a request gets (RFC 9110 §9.1 methods,
//! §15.5.5 404, §15.5.6 405 and `Allow`; RFC 6749 §3.3 scope tokens).
//!
//! A [`Route`] covers a [`RoutePath`] and everything under it (`/photos` matches `/photos`,
//! `/photos/` and `/photos/1`, never `/photosx`), for the listed methods, and names its
//! [`Upstream`], its [`Auth`] policy, the scopes a token must all carry, whether the
//! `Authorization` header is forwarded, and a request timeout. [`RouteTable::new`] refuses two
//! routes that could answer the same request; [`RouteTable::lookup`] takes the longest
//! matching path and answers [`Match::Route`], [`Match::NotFound`] or
//! [`Match::MethodNotAllowed`] with the `Allow` list. A longer path with no route for the method
//! answers 405; it never falls back to a shorter path, so one path is never served by two
//! upstreams depending on the method unless routes say so.
//!
//! Invariants: routes match [`CanonicalPath::path`] as sent, and the upstream is sent
//! [`Upstream::request_target`], which is that same target under the upstream's base path, so
//! what matched is what is served. Route paths are written only with RFC 3986 unreserved
//! characters and `/`; since [`CanonicalPath`] refuses escapes of those characters and of `/`,
//! a path matches a route exactly when its percent-decoded form does, whatever the upstream
//! decodes. Matching is case-sensitive. No I/O, no clock.
//!
//! Not here: reading routes from a file (`config`), and the checks each [`Auth`] stands for.
//!
//! [`CanonicalPath::path`]: crate::path::CanonicalPath::path

use std::time::Duration;

use http::Method;
use keycard_protocol::Scope;

use crate::path::{CanonicalPath, PathError, is_unreserved};

/// The longest request timeout a route may have.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// The request timeout of a route that does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A route's path prefix: a canonical path of unreserved characters and `/`, without a query
/// and without a trailing slash (except `/` itself, which covers every path).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RoutePath(String);

/// Where a route's requests go: `http` or `https`, an authority, and an optional base path
/// that is put in front of every forwarded target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    url: String,
    https: bool,
    authority: String,
    base_path: String,
}

/// How a route checks the bearer token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// No check; the request is forwarded as it is (identity headers are still removed).
    None,
    /// RFC 9068 validation with cached keys, plus the revocation feed when the issuer has one.
    Local,
    /// As `Local`, and a feed stale beyond the configured bound refuses or introspects.
    LocalStrict,
    /// RFC 7662 introspection of every token.
    Introspect,
}

/// A route as configured, before the checks that relate its fields ([`Route::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub path: RoutePath,
    pub methods: Vec<Method>,
    pub upstream: Upstream,
    pub auth: Auth,
    /// Every listed scope must be in the token.
    pub scopes: Vec<Scope>,
    /// Whether the `Authorization` header reaches the upstream. Off by default: the upstream
    /// trusts the gateway's identity headers, and a token it never sees cannot leak from its
    /// logs or be replayed by it (RFC 9700 §4.9.3, least exposure of bearer tokens).
    pub forward_authorization: bool,
    /// Until the upstream's response head arrives; bodies and upgraded connections then stream
    /// without it.
    pub timeout: Duration,
    /// Speak HTTP/2 to the upstream: prior knowledge (h2c) for `http`, ALPN `h2` only for
    /// `https`. Off: HTTP/1.1 (and, for `https`, whatever ALPN settles, preferring HTTP/1.1).
    pub upstream_http2: bool,
    /// Send a short-lived JWT, signed by the gateway, with the verified identity.
    pub identity_assertion: bool,
}

/// A validated route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route(RouteSpec);

/// A set of routes of which at most one answers any request.
#[derive(Clone, Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// Indexes into `routes`, grouped by path, longest path first.
    groups: Vec<Vec<usize>>,
}

/// The outcome of a lookup.
#[derive(Debug, PartialEq)]
pub enum Match<'a> {
    Route(&'a Route),
    /// No route covers the path: 404.
    NotFound,
    /// Routes cover the path but not the method: 405 with these methods in `Allow`.
    MethodNotAllowed {
        allow: Vec<Method>,
    },
}

/// Why a route, or a part of one, was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("route path is not a canonical path: {0}")]
    Path(PathError),
    #[error("route path must not have a query")]
    PathQuery,
    #[error("route path may contain only letters, digits, '-', '.', '_', '~' and '/'")]
    PathCharacters,
    #[error("route path must not end with '/' (write {write}; it covers everything under it)")]
    PathTrailingSlash { write: String },
    #[error("upstream is not a URL: {0}")]
    UpstreamNotUrl(String),
    #[error("upstream scheme {0} is not allowed (use http or https)")]
    UpstreamScheme(String),
    #[error("upstream must not contain user information")]
    UpstreamUserinfo,
    #[error("upstream must not have a query or a fragment")]
    UpstreamQuery,
    #[error("upstream base path is not a canonical path: {0}")]
    UpstreamPath(PathError),
    #[error("upstream is not in normal form; write {write}")]
    UpstreamNotNormal { write: String },
    #[error("unknown method {0}")]
    UnknownMethod(String),
    #[error("methods are case-sensitive (RFC 9110 §9.1); write {0}")]
    MethodCase(String),
    #[error("method {0} is not proxied")]
    MethodRefused(&'static str),
    #[error("a route needs at least one method")]
    NoMethods,
    #[error("method {0} is listed twice")]
    DuplicateMethod(Method),
    #[error("{0:?} is not an RFC 6749 §3.3 scope token")]
    Scope(String),
    #[error("scope {0} is listed twice")]
    DuplicateScope(String),
    #[error("scopes need a token check; auth = \"none\" cannot require them")]
    ScopesWithoutAuth,
    #[error("timeout must be between 1 ms and 24 hours")]
    Timeout,
}

/// Two routes that would both answer a request; `index` is the later one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("route {path} lists {method}, which an earlier route with the same path lists")]
pub struct TableError {
    pub index: usize,
    pub earlier: usize,
    pub path: String,
    pub method: Method,
}

impl RoutePath {
    pub fn parse(s: &str) -> Result<Self, RouteError> {
        CanonicalPath::parse(s).map_err(RouteError::Path)?;
        if s.contains('?') {
            return Err(RouteError::PathQuery);
        }
        if !s.bytes().all(|b| b == b'/' || is_unreserved(b)) {
            return Err(RouteError::PathCharacters);
        }
        if s.len() > 1 && s.ends_with('/') {
            return Err(RouteError::PathTrailingSlash {
                write: s.trim_end_matches('/').to_owned(),
            });
        }
        Ok(RoutePath(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `path` is this path or lies under it.
    pub fn matches(&self, path: &CanonicalPath) -> bool {
        if self.0 == "/" {
            return true;
        }
        match path.path().strip_prefix(self.0.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

impl Upstream {
    pub fn parse(s: &str) -> Result<Self, RouteError> {
        let url = url::Url::parse(s).map_err(|e| RouteError::UpstreamNotUrl(e.to_string()))?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(RouteError::UpstreamScheme(other.to_owned())),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RouteError::UpstreamUserinfo);
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(RouteError::UpstreamQuery);
        }
        let Some(host) = url.host_str() else {
            return Err(RouteError::UpstreamNotUrl("no host".into()));
        };
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let base_path = match url.path() {
            "/" => "",
            path => path,
        };
        let normal = format!("{}://{authority}{base_path}", url.scheme());
        // What is configured is what is used: no silent lower-casing, default-port removal or
        // re-encoding by the URL parser.
        if s != normal && !(base_path.is_empty() && s == format!("{normal}/")) {
            return Err(RouteError::UpstreamNotNormal { write: normal });
        }
        if !base_path.is_empty() {
            CanonicalPath::parse(base_path).map_err(RouteError::UpstreamPath)?;
            if base_path.ends_with('/') {
                return Err(RouteError::UpstreamNotNormal {
                    write: normal.trim_end_matches('/').to_owned(),
                });
            }
        }
        Ok(Upstream {
            base_path: base_path.to_owned(),
            url: normal,
            https,
            authority,
        })
    }

    /// The upstream in normal form, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    pub fn is_https(&self) -> bool {
        self.https
    }

    /// `host[:port]`, as sent in `Host` / `:authority` to the upstream.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The base path (empty, or `/api` without a trailing slash).
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The request-target sent upstream: the base path, then the target exactly as received.
    pub fn request_target(&self, target: &CanonicalPath) -> String {
        format!("{}{}", self.base_path, target.as_str())
    }
}

impl Auth {
    pub fn as_str(self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Local => "local",
            Auth::LocalStrict => "local_strict",
            Auth::Introspect => "introspect",
        }
    }

    /// Whether the route checks a bearer token at all.
    pub fn is_checked(self) -> bool {
        match self {
            Auth::None => false,
            Auth::Local | Auth::LocalStrict | Auth::Introspect => true,
        }
    }
}

/// Parses a method name as listed in a route. Extension methods are refused (a typo must not
/// become a method nobody sends), and so are `CONNECT` (a tunnel, not a request) and `TRACE`
/// (it echoes the request, credentials included, RFC 9110 §9.3.8).
pub fn parse_method(s: &str) -> Result<Method, RouteError> {
    let known = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ];
    if let Some(m) = known.iter().find(|m| m.as_str() == s) {
        return Ok(m.clone());
    }
    match s.to_ascii_uppercase().as_str() {
        "CONNECT" => Err(RouteError::MethodRefused("CONNECT")),
        "TRACE" => Err(RouteError::MethodRefused("TRACE")),
        upper if known.iter().any(|m| m.as_str() == upper) => {
            Err(RouteError::MethodCase(upper.to_owned()))
        }
        _ => Err(RouteError::UnknownMethod(s.to_owned())),
    }
}

/// Parses one RFC 6749 §3.3 scope token for a route.
pub fn parse_scope(s: &str) -> Result<Scope, RouteError> {
    Scope::parse(s).map_err(|_| RouteError::Scope(s.to_owned()))
}

impl RouteSpec {
    /// A spec with no scopes, `Authorization` removed and the default timeout.
    pub fn new(path: RoutePath, methods: Vec<Method>, upstream: Upstream, auth: Auth) -> Self {
        RouteSpec {
            path,
            methods,
            upstream,
            auth,
            scopes: Vec::new(),
            forward_authorization: false,
            timeout: DEFAULT_TIMEOUT,
            upstream_http2: false,
            identity_assertion: false,
        }
    }
}

impl Route {
    pub fn new(spec: RouteSpec) -> Result<Self, RouteError> {
        if spec.methods.is_empty() {
            return Err(RouteError::NoMethods);
        }
        for (i, m) in spec.methods.iter().enumerate() {
            if spec.methods.iter().take(i).any(|earlier| earlier == m) {
                return Err(RouteError::DuplicateMethod(m.clone()));
            }
        }
        for (i, s) in spec.scopes.iter().enumerate() {
            if spec.scopes.iter().take(i).any(|earlier| earlier == s) {
                return Err(RouteError::DuplicateScope(s.as_str().to_owned()));
            }
        }
        if !spec.auth.is_checked() && !spec.scopes.is_empty() {
            return Err(RouteError::ScopesWithoutAuth);
        }
        if spec.timeout < Duration::from_millis(1) || spec.timeout > MAX_TIMEOUT {
            return Err(RouteError::Timeout);
        }
        Ok(Route(spec))
    }

    pub fn path(&self) -> &RoutePath {
        &self.0.path
    }

    /// The methods, in the order configured.
    pub fn methods(&self) -> &[Method] {
        &self.0.methods
    }

    pub fn upstream(&self) -> &Upstream {
        &self.0.upstream
    }

    pub fn auth(&self) -> Auth {
        self.0.auth
    }

    /// The scopes a token must all carry.
    pub fn scopes(&self) -> &[Scope] {
        &self.0.scopes
    }

    pub fn forwards_authorization(&self) -> bool {
        self.0.forward_authorization
    }

    pub fn timeout(&self) -> Duration {
        self.0.timeout
    }

    pub fn upstream_http2(&self) -> bool {
        self.0.upstream_http2
    }

    pub fn identity_assertion(&self) -> bool {
        self.0.identity_assertion
    }
}

impl RouteTable {
    /// Builds the table. Routes may share a path only with disjoint methods, so that `GET` can
    /// be checked locally and `POST` by introspection on the same path, and no request is ever
    /// a tie.
    pub fn new(routes: Vec<Route>) -> Result<Self, TableError> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (index, route) in routes.iter().enumerate() {
            let group = groups.iter_mut().find(|g| {
                g.first()
                    .and_then(|&i| routes.get(i))
                    .is_some_and(|r| r.path() == route.path())
            });
            let Some(group) = group else {
                groups.push(vec![index]);
                continue;
            };
            for &earlier in group.iter() {
                let clash = routes
                    .get(earlier)
                    .and_then(|e| route.methods().iter().find(|m| e.methods().contains(m)));
                if let Some(method) = clash {
                    return Err(TableError {
                        index,
                        earlier,
                        path: route.path().as_str().to_owned(),
                        method: method.clone(),
                    });
                }
            }
            group.push(index);
        }
        // Longest first, so the first group that matches is the longest match; two different
        // paths of the same length never both match one request.
        let len = |g: &Vec<usize>| {
            g.first()
                .and_then(|&i| routes.get(i))
                .map_or(0, |r| r.path().as_str().len())
        };
        groups.sort_by_key(|g| std::cmp::Reverse(len(g)));
        Ok(RouteTable { routes, groups })
    }

    /// The routes in the order configured.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for a request: longest matching path, then the route listing the method.
    pub fn lookup(&self, path: &CanonicalPath, method: &Method) -> Match<'_> {
        for group in &self.groups {
            let members = || group.iter().filter_map(|&i| self.routes.get(i));
            if !members().next().is_some_and(|r| r.path().matches(path)) {
                continue;
            }
            if let Some(route) = members().find(|r| r.methods().contains(method)) {
                return Match::Route(route);
            }
            let allow = members()
                .flat_map(|r| r.methods().iter().cloned())
                .collect();
            return Match::MethodNotAllowed { allow };
        }
        Match::NotFound
    }
}

#[cfg(test)]
mod tests;
