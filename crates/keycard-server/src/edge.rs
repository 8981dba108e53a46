//! The layers every request passes, applied once around the whole router: panic catching,
//! the edge service (the request id, believed only from a trusted proxy; the request's log span
//! and its one log line; the security headers; the per-endpoint metrics), sensitive-header
//! marking and the body limit.
//!
//! Why around the router and not `Router::layer`: axum applies `Router::layer` to each route
//! separately, and every request then clones that route's boxed stack of a dozen services —
//! a dozen allocations and virtual calls before the handler runs, the largest part of an empty
//! route's cost. Around the router the stack is one value, cloned once per request.
//!
//! Why one [`Edge`] service rather than tower-http's five `SetResponseHeader`s, its two
//! request-id layers, its `TraceLayer` and a metrics layer: each layer wraps the next one's
//! future in its own (and `TraceLayer` the body too), and a request and its response are moved
//! through every level (`memmove` was 4 % of an empty route's CPU, the ten levels' code as much
//! again). One service does the same work in one future, with one clock read at each end.
//!
//! Invariants: every response carries `X-Request-Id`, `X-Frame-Options: DENY`,
//! `Referrer-Policy: no-referrer`, `X-Content-Type-Options: nosniff`, the CSP and
//! `Cache-Control: no-store` unless a route set its own; a client's `X-Request-Id` survives only
//! from a trusted proxy; metrics are labelled with the route's path only when it is one of ours
//! (every Keycard route is a fixed path), so a scan of random paths cannot grow the label set.
//! Request ids are a per-process random prefix and a counter: unique, unguessable across
//! restarts, and free of a system call per request.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use keycard_serve::ClientAddr;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

/// The header carrying the request id, in and out.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// The longest request id accepted from a trusted proxy.
const MAX_REQUEST_ID: usize = 128;

/// [`REQUEST_ID`] as a header name, checked at compile time.
const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static(REQUEST_ID);

/// The headers every response carries unless its route set its own (values checked at compile
/// time, so none is validated per request).
const SECURITY_HEADERS: [(HeaderName, HeaderValue); 5] = [
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
        ),
    ),
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
];

/// Wraps a finished router (state applied) in the shared layers.
pub(crate) fn wrap(inner: Router, routes: &'static [&'static str], max_body: usize) -> Router {
    let stack = ServiceBuilder::new()
        .layer(CatchPanicLayer::new())
        .layer(EdgeLayer { routes })
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(DefaultBodyLimit::max(max_body))
        .service(inner);
    Router::new().fallback_service(stack)
}

/// The request's log span; nothing is formatted when the level is off.
fn request_span<B>(req: &axum::http::Request<B>, id: &HeaderValue) -> tracing::Span {
    if !tracing::enabled!(tracing::Level::INFO) {
        return tracing::Span::none();
    }
    let id = id.to_str().unwrap_or("-");
    let client = req
        .extensions()
        .get::<ClientAddr>()
        .map_or_else(|| "-".to_owned(), |c| c.ip().to_string());
    // The path only: queries can carry transaction handles.
    tracing::info_span!("request", id = %id, client = %client, method = %req.method(), path = %req.uri().path())
}

/// The request's id: the one a trusted proxy sent, if it sent exactly one that is 1 to 128
/// characters of `A-Z a-z 0-9 - _ . : + / =` (UUIDs, hex and base64 ids); otherwise a fresh
/// one, which replaces whatever the client sent. The request carries it on from here (the log
/// span reads it), and so does the response.
fn request_id(req: &mut Request) -> HeaderValue {
    let trusted = req
        .extensions()
        .get::<ClientAddr>()
        .is_some_and(ClientAddr::is_from_trusted_proxy);
    let mut ids = req.headers().get_all(&REQUEST_ID_HEADER).iter();
    if let (Some(id), None) = (ids.next(), ids.next())
        && trusted
        && is_request_id(id.as_bytes())
    {
        return id.clone();
    }
    let id = new_request_id();
    req.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
    id
}

fn is_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=".contains(b))
}

/// Request ids: 64 random bits chosen at start, then a counter (`3f9a…-0000000000000007`).
fn id_prefix() -> u64 {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    *PREFIX.get_or_init(|| u64::from_le_bytes(keycard_os::random_bytes::<8>()))
}

fn new_request_id() -> HeaderValue {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut buf = [0u8; 33];
    hex_u64(id_prefix(), &mut buf[..16]);
    buf[16] = b'-';
    hex_u64(n, &mut buf[17..]);
    // Hex digits and a dash are always a valid header value.
    HeaderValue::from_bytes(&buf).unwrap_or(HeaderValue::from_static("-"))
}

fn hex_u64(v: u64, out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out.iter_mut().enumerate().take(16) {
        *b = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

/// The edge service's layer: the request id, the request's span and log line, the security
/// headers and `keycard_http_requests_total` / `keycard_http_request_duration_seconds` by
/// endpoint and outcome, through handles made once per label pair.
#[derive(Clone, Copy, Debug)]
struct EdgeLayer {
    routes: &'static [&'static str],
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            routes: self.routes,
        }
    }
}

#[derive(Clone, Debug)]
struct Edge<S> {
    inner: S,
    routes: &'static [&'static str],
}

/// The outcome labels, by status class.
const OUTCOMES: [&str; 3] = ["success", "client_error", "server_error"];

/// The index of `server_error` in [`OUTCOMES`].
const SERVER_ERROR: usize = 2;

fn outcome(status: u16) -> usize {
    match status {
        200..=399 => 0,
        400..=499 => 1,
        _ => SERVER_ERROR,
    }
}

/// The metric handles of one (endpoint, outcome) pair.
struct Handles {
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

/// Handles for every route (in `routes` order, then "unmatched"), made on first use, after
/// the process's recorder is installed.
fn handles(routes: &'static [&'static str]) -> &'static [[Handles; 3]] {
    static ALL: OnceLock<Vec<[Handles; 3]>> = OnceLock::new();
    ALL.get_or_init(|| {
        routes
            .iter()
            .copied()
            .chain(std::iter::once("unmatched"))
            .map(|endpoint| {
                OUTCOMES.map(|outcome| {
                    let labels = [("endpoint", endpoint), ("outcome", outcome)];
                    Handles {
                        requests: metrics::counter!("keycard_http_requests_total", &labels),
                        duration: metrics::histogram!(
                            "keycard_http_request_duration_seconds",
                            &labels
                        ),
                    }
                })
            })
            .collect()
    })
}

impl<S, B> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let start = Instant::now();
        let id = request_id(&mut req);
        let span = request_span(&req, &id);
        let path = req.uri().path();
        let endpoint = self
            .routes
            .iter()
            .position(|r| *r == path)
            .unwrap_or(self.routes.len());
        // The handler runs inside the request's span, so its own log lines carry the id.
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        EdgeFuture {
            inner,
            span,
            id: Some(id),
            endpoint,
            routes: self.routes,
            start,
        }
    }
}

pin_project_lite::pin_project! {
    struct EdgeFuture<F> {
        #[pin]
        inner: F,
        span: tracing::Span,
        id: Option<HeaderValue>,
        endpoint: usize,
        routes: &'static [&'static str],
        start: Instant,
    }
}

impl<F, B, E> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let mut out = std::task::ready!(this.inner.poll(cx));
        if let Ok(resp) = &mut out {
            let elapsed = this.start.elapsed();
            let status = resp.status().as_u16();
            let class = outcome(status);
            if let Some(row) = handles(this.routes).get(*this.endpoint) {
                let h = &row[class];
                h.requests.increment(1);
                h.duration.record(elapsed.as_secs_f64());
            }
            // One line per request, inside its span (id, client, method, path); a server error
            // (the metrics' `server_error` outcome) at ERROR.
            let latency_us = elapsed.as_micros() as u64;
            if class == SERVER_ERROR {
                tracing::error!(status, latency_us, "request failed");
            } else {
                tracing::info!(status, latency_us, "request finished");
            }
            let headers = resp.headers_mut();
            for (name, value) in SECURITY_HEADERS {
                if !headers.contains_key(&name) {
                    headers.insert(name, value);
                }
            }
            if let Some(id) = this.id.take()
                && !headers.contains_key(&REQUEST_ID_HEADER)
            {
                headers.insert(REQUEST_ID_HEADER, id);
            }
        }
        Poll::Ready(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_and_plain() {
        for ok in [
            "a",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "Root=1-5759e988:x/y+z_",
        ] {
            assert!(is_request_id(ok.as_bytes()), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in ["", "a b", "a\"b", "<script>", "id\n", long.as_str()] {
            assert!(!is_request_id(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn generated_request_ids_are_distinct_and_well_formed() {
        let (a, b) = (new_request_id(), new_request_id());
        let (a, b) = (a.as_bytes(), b.as_bytes());
        assert_ne!(a, b);
        assert_eq!(a.len(), 33);
        assert!(is_request_id(a));
        assert_eq!(a[..17], b[..17], "one prefix per process");
    }

    /// A router with one empty route and one that sets its own `Cache-Control`, wrapped.
    fn wrapped() -> Router {
        use axum::routing::get;
        let inner = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/cached",
                get(|| async { ([(header::CACHE_CONTROL, "max-age=60")], "cached") }),
            );
        wrap(inner, &["/healthz", "/cached"], 1024)
    }

    async fn get(path: &str, request_id: Option<&str>) -> Response {
        use tower::ServiceExt as _;
        let mut req = axum::http::Request::get(path);
        if let Some(id) = request_id {
            req = req.header(REQUEST_ID, id);
        }
        wrapped()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap()
    }

    // RFC 9700 §4.16 (clickjacking) and RFC 6749 §5.1 (no-store) on every response, a route's
    // own Cache-Control kept, and unmatched paths (axum's 404) alike.
    #[tokio::test]
    async fn rfc9700_s4_16_every_response_carries_the_security_headers_and_a_request_id() {
        for path in ["/healthz", "/cached", "/no-such-route"] {
            let resp = get(path, None).await;
            let h = resp.headers();
            assert_eq!(h["x-frame-options"], "DENY", "{path}");
            assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
            assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
            assert!(
                h["content-security-policy"]
                    .to_str()
                    .unwrap()
                    .contains("frame-ancestors 'none'"),
                "{path}"
            );
            let want = if path == "/cached" {
                "max-age=60"
            } else {
                "no-store"
            };
            assert_eq!(h["cache-control"], want, "{path}");
            assert_eq!(h.get_all(header::CACHE_CONTROL).iter().count(), 1);
            let id = h[REQUEST_ID].as_bytes();
            assert_eq!(id.len(), 33, "{path}: a generated id");
            assert!(is_request_id(id));
        }
    }

    #[tokio::test]
    async fn a_request_id_from_anyone_but_a_trusted_proxy_is_replaced() {
        // No `ClientAddr` at all (no trusted proxy): the client's id is dropped.
        let resp = get("/healthz", Some("spoofed-id")).await;
        let id = resp.headers()[REQUEST_ID].to_str().unwrap();
        assert_ne!(id, "spoofed-id");
        assert_eq!(id.len(), 33);
        let again = get("/healthz", None).await;
        assert_ne!(again.headers()[REQUEST_ID].to_str().unwrap(), id);
    }
}
