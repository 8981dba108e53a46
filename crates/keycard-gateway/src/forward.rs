//! Forwarding to upstreams: the request and response headers a proxy must rewrite (RFC 9110
//! §7.6.1 hop-by-hop fields, §7.2 `Host`, §7.8 `Upgrade`; the de-facto `X-Forwarded-For`,
//! `X-Forwarded-Proto` and `X-Forwarded-Host`), the pooled HTTP/1.1 and HTTP/2 clients, and
//! WebSocket (and any other `Upgrade`) pass-through.
//!
//! [`Upstreams::new`] builds the pooled clients (hyper-util's legacy client over rustls with
//! aws-lc-rs for `https`, the system's CA certificates); [`Upstreams::send`] forwards one
//! request, streaming its body both ways, with the route's timeout on the response head, and
//! after a `101 Switching Protocols` splices the two upgraded connections together.
//! [`request_headers`] and [`response_headers`] are the pure header rewrites.
//!
//! Invariants: the request-target sent is [`Upstream::request_target`] of the path that
//! matched, byte for byte; hop-by-hop headers, and every header named in `Connection`, never
//! cross; `Authorization` crosses only when the route forwards it and `Proxy-Authorization`
//! never; every incoming copy of an identity header (any case, `_` for `-`) is removed before
//! the gateway's own are added; incoming forwarded headers are believed only from a trusted
//! proxy, and otherwise rebuilt from the connection.
//!
//! Not here: which route and identity (`gateway`), the checks (`policy`).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::config::IdentityHeaders;
use crate::path::CanonicalPath;
use crate::route::{Route, Upstream};

/// Errors inside a streamed body, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response the gateway sends.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream did not answer in time")]
    Timeout,
    #[error("the upstream could not be reached: {0}")]
    Unreachable(String),
    #[error("the upstream URL could not be built")]
    BadUri,
}

/// The pooled clients: HTTP/1.1 (ALPN `http/1.1` for https), and HTTP/2 only (h2c prior
/// knowledge for http, ALPN `h2` for https).
#[derive(Clone, Debug)]
pub struct Upstreams {
    h1: Client<Connector, Incoming>,
    h2: Client<Connector, Incoming>,
}

/// The hop-by-hop headers of RFC 9110 §7.6.1, plus `Proxy-Connection` (a pre-standard
/// spelling clients still send) and the proxy credentials, which are meant for the gateway.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// The forwarded headers, believed only from trusted proxies.
const FORWARDED: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-real-ip",
];

impl Upstreams {
    /// Clients whose connections time out after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Result<Upstreams, String> {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system certificates leave https upstreams failing with 502, not the
        // gateway failing to start for routes that may all be plain http.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        // The connector builder sets ALPN from the enabled versions (and panics if it is preset).
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = || {
            let mut c = HttpConnector::new();
            c.enforce_http(false);
            c.set_nodelay(true);
            c.set_connect_timeout(Some(connect_timeout));
            c
        };
        let h1_conn = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http());
        let h2_conn = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http2()
            .wrap_connector(http());
        let exec = TokioExecutor::new();
        Ok(Upstreams {
            h1: Client::builder(exec.clone())
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(64)
                .build(h1_conn),
            h2: Client::builder(exec)
                .http2_only(true)
                .pool_idle_timeout(Duration::from_secs(60))
                .build(h2_conn),
        })
    }

    /// Sends `req` (headers already rewritten) to the route's upstream at `target`.
    pub async fn send(
        &self,
        route: &Route,
        target: &CanonicalPath,
        mut req: Request<Incoming>,
    ) -> Result<Response<Body>, UpstreamError> {
        let upstream = route.upstream();
        let uri = upstream_uri(upstream, target)?;
        let upgrade = is_upgrade(req.headers());
        let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
        *req.uri_mut() = uri;
        *req.version_mut() = http::Version::HTTP_11;
        // An upgrade needs HTTP/1.1 whatever the route prefers (RFC 9110 §7.8).
        let client = if route.upstream_http2() && !upgrade {
            req.headers_mut().remove(header::HOST);
            &self.h2
        } else {
            &self.h1
        };
        let mut resp = match tokio::time::timeout(route.timeout(), client.request(req)).await {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(Err(e)) => return Err(UpstreamError::Unreachable(error_chain(&e))),
            Ok(Ok(resp)) => resp,
        };
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(client_side) = client_side
        {
            let upstream_side = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                if let (Ok(a), Ok(b)) = (client_side.await, upstream_side.await) {
                    let (mut a, mut b) = (TokioIo::new(a), TokioIo::new(b));
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                }
            });
        }
        let (mut parts, body) = resp.into_parts();
        response_headers(&mut parts.headers, parts.status);
        Ok(Response::from_parts(
            parts,
            body.map_err(|e| Box::new(e) as BoxError).boxed_unsync(),
        ))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn upstream_uri(upstream: &Upstream, target: &CanonicalPath) -> Result<Uri, UpstreamError> {
    let scheme = if upstream.is_https() { "https" } else { "http" };
    Uri::builder()
        .scheme(scheme)
        .authority(upstream.authority())
        .path_and_query(upstream.request_target(target))
        .build()
        .map_err(|_| UpstreamError::BadUri)
}

/// Whether the request asks to switch protocols (`Connection: upgrade` and `Upgrade`).
pub fn is_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE) && connection_tokens(h).iter().any(|t| t == "upgrade")
}

/// The field names listed in `Connection`, lower-cased.
fn connection_tokens(h: &HeaderMap) -> Vec<String> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Removes the hop-by-hop headers and those `Connection` names; keeps `Upgrade` and
/// `Connection: upgrade` when `keep_upgrade`, and `TE: trailers` (end to end in HTTP/2).
fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    let named = connection_tokens(h);
    let upgrade = h.get(header::UPGRADE).cloned();
    let trailers = h
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
    for name in HOP_BY_HOP.iter().copied() {
        h.remove(name);
    }
    for name in named {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            h.remove(name);
        }
    }
    if keep_upgrade && let Some(u) = upgrade {
        h.insert(header::UPGRADE, u);
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    if trailers {
        h.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// What the gateway tells the upstream about the caller.
#[derive(Debug)]
pub struct Outgoing<'a> {
    pub peer: SocketAddr,
    pub trusted_peer: bool,
    pub request_id: &'a str,
    pub names: &'a IdentityHeaders,
    /// `(header, value)` pairs for the verified identity; empty on `auth = "none"` routes.
    pub identity: Vec<(HeaderName, HeaderValue)>,
    pub forward_authorization: bool,
    pub upstream_authority: &'a str,
}

/// Rewrites a request's headers for the upstream (see the module invariants).
pub fn request_headers(h: &mut HeaderMap, uri: &Uri, out: Outgoing<'_>) {
    let upgrade = is_upgrade(h);
    strip_hop_by_hop(h, upgrade);
    let spoofed: Vec<HeaderName> = h
        .keys()
        .filter(|name| out.names.is_identity_header(name.as_str().as_bytes()))
        .cloned()
        .collect();
    for name in spoofed {
        h.remove(name);
    }
    if !out.forward_authorization {
        h.remove(header::AUTHORIZATION);
    }
    let host = h.get(header::HOST).cloned().or_else(|| {
        uri.authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let peer_ip = out.peer.ip().to_canonical().to_string();
    let xff = if out.trusted_peer {
        let earlier: Vec<&str> = h
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if earlier.is_empty() {
            peer_ip
        } else {
            format!("{}, {peer_ip}", earlier.join(", "))
        }
    } else {
        peer_ip
    };
    let (proto, fwd_host) = if out.trusted_peer {
        (
            h.get("x-forwarded-proto").cloned(),
            h.get("x-forwarded-host").cloned(),
        )
    } else {
        (None, None)
    };
    for name in FORWARDED.iter().copied() {
        if !out.trusted_peer || matches!(name, "x-forwarded-for") {
            h.remove(name);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    h.insert(
        "x-forwarded-proto",
        proto.unwrap_or_else(|| HeaderValue::from_static("http")),
    );
    if let Some(v) = fwd_host.or(host) {
        h.insert("x-forwarded-host", v);
    }
    if let Ok(v) = HeaderValue::from_str(out.upstream_authority) {
        h.insert(header::HOST, v);
    }
    if let Ok(v) = HeaderValue::from_str(out.request_id) {
        h.insert("x-request-id", v);
    }
    for (name, value) in out.identity {
        h.insert(name, value);
    }
}

/// Rewrites an upstream response's headers for the client.
pub fn response_headers(h: &mut HeaderMap, status: StatusCode) {
    strip_hop_by_hop(h, status == StatusCode::SWITCHING_PROTOCOLS);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(names: &IdentityHeaders, trusted: bool) -> Outgoing<'_> {
        Outgoing {
            peer: "[::ffff:192.0.2.7]:5000".parse().unwrap(),
            trusted_peer: trusted,
            request_id: "r1",
            names,
            identity: vec![(names.sub.clone(), HeaderValue::from_static("alice"))],
            forward_authorization: false,
            upstream_authority: "up:9090",
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn rfc9110_s7_6_1_hop_by_hop_and_connection_named_headers_are_removed() {
        let names = IdentityHeaders::default();
        let mut h = headers(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "gzip, trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic eA=="),
            ("authorization", "Bearer t"),
            ("x-keycard-sub", "mallory"),
            ("x_keycard_sub", "mallory"),
            ("X-KEYCARD-CLIENT_ID", "mallory"),
            ("x-forwarded-for", "203.0.113.1"),
            ("x-forwarded-host", "evil"),
            ("forwarded", "for=1.2.3.4"),
            ("host", "gw.example"),
            ("accept", "*/*"),
        ]);
        request_headers(&mut h, &Uri::from_static("/p"), outgoing(&names, false));
        let mut got: Vec<String> = h
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                "accept: */*",
                "host: up:9090",
                "te: trailers",
                "x-forwarded-for: 192.0.2.7",
                "x-forwarded-host: gw.example",
                "x-forwarded-proto: http",
                "x-keycard-sub: alice",
                "x-request-id: r1",
            ]
        );
    }

    #[test]
    fn forwarded_headers_are_kept_only_from_trusted_proxies() {
        let names = IdentityHeaders::default();
        let mut h = headers(&[
            ("x-forwarded-for", "203.0.113.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "api.example.com"),
            ("host", "gw"),
        ]);
        request_headers(&mut h, &Uri::from_static("/p"), outgoing(&names, true));
        assert_eq!(h["x-forwarded-for"], "203.0.113.1, 192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "api.example.com");
    }

    #[test]
    fn rfc9110_s7_8_upgrade_survives_only_when_asked_for() {
        let names = IdentityHeaders::default();
        let mut h = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(is_upgrade(&h));
        request_headers(&mut h, &Uri::from_static("/ws"), outgoing(&names, false));
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
        let mut h = headers(&[("upgrade", "websocket")]);
        response_headers(&mut h, StatusCode::OK);
        assert!(h.get("upgrade").is_none());
    }
}
