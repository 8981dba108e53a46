//! The layers every request passes, applied once around the whole router: panic catching,
//! the security headers, the request id (believed only from a trusted proxy), sensitive-header
//! marking, the request's log span, the body limit and the per-endpoint metrics.
//!
//! Why around the router and not `Router::layer`: axum applies `Router::layer` to each route
//! separately, and every request then clones that route's boxed stack of a dozen services —
//! a dozen allocations and virtual calls before the handler runs, the largest part of an empty
//! route's cost. Around the router the stack is one value, cloned once per request.
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
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// The header carrying the request id, in and out.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// The longest request id accepted from a trusted proxy.
const MAX_REQUEST_ID: usize = 128;

/// Wraps a finished router (state applied) in the shared layers.
pub(crate) fn wrap(inner: Router, routes: &'static [&'static str], max_body: usize) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID);
    let stack = ServiceBuilder::new()
        .layer(CatchPanicLayer::new())
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .map_request(request_id_from_trusted_proxy_only)
        .layer(SetRequestIdLayer::new(request_id.clone(), CountingId))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(DefaultBodyLimit::max(max_body))
        .layer(MetricsLayer { routes })
        .service(inner);
    Router::new().fallback_service(stack)
}

/// The request's log span; nothing is formatted when the level is off.
fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    if !tracing::enabled!(tracing::Level::INFO) {
        return tracing::Span::none();
    }
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let client = req
        .extensions()
        .get::<ClientAddr>()
        .map_or_else(|| "-".to_owned(), |c| c.ip().to_string());
    // The path only: queries can carry transaction handles.
    tracing::info_span!("request", id = %id, client = %client, method = %req.method(), path = %req.uri().path())
}

/// Drops an incoming `X-Request-Id` unless a trusted proxy sent exactly one that is 1 to 128
/// characters of `A-Z a-z 0-9 - _ . : + / =` (UUIDs, hex and base64 ids), so the request-id
/// layer after this one generates a fresh id for everyone else.
fn request_id_from_trusted_proxy_only(mut req: Request) -> Request {
    let trusted = req
        .extensions()
        .get::<ClientAddr>()
        .is_some_and(ClientAddr::is_from_trusted_proxy);
    let mut ids = req.headers().get_all(REQUEST_ID).iter();
    let well_formed = match (ids.next(), ids.next()) {
        (Some(id), None) => is_request_id(id.as_bytes()),
        (None, _) => return req,
        _ => false,
    };
    if !(trusted && well_formed) {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

fn is_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=".contains(b))
}

/// Request ids: 64 random bits chosen at start, then a counter (`3f9a…-0000000000000007`).
#[derive(Clone, Copy, Debug)]
struct CountingId;

fn id_prefix() -> u64 {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    *PREFIX.get_or_init(|| u64::from_le_bytes(keycard_os::random_bytes::<8>()))
}

impl MakeRequestId for CountingId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 33];
        hex_u64(id_prefix(), &mut buf[..16]);
        buf[16] = b'-';
        hex_u64(n, &mut buf[17..]);
        HeaderValue::from_bytes(&buf).ok().map(RequestId::new)
    }
}

fn hex_u64(v: u64, out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out.iter_mut().enumerate().take(16) {
        *b = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

/// `keycard_http_requests_total` and `keycard_http_request_duration_seconds` by endpoint and
/// outcome, through handles made once per label pair.
#[derive(Clone, Copy, Debug)]
struct MetricsLayer {
    routes: &'static [&'static str],
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Metrics<S> {
        Metrics {
            inner,
            routes: self.routes,
        }
    }
}

#[derive(Clone, Debug)]
struct Metrics<S> {
    inner: S,
    routes: &'static [&'static str],
}

/// The outcome labels, by status class.
const OUTCOMES: [&str; 3] = ["success", "client_error", "server_error"];

fn outcome(status: u16) -> usize {
    match status {
        200..=399 => 0,
        400..=499 => 1,
        _ => 2,
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

impl<S> Service<Request> for Metrics<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let path = req.uri().path();
        let endpoint = self
            .routes
            .iter()
            .position(|r| *r == path)
            .unwrap_or(self.routes.len());
        MetricsFuture {
            inner: self.inner.call(req),
            endpoint,
            routes: self.routes,
            start: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    struct MetricsFuture<F> {
        #[pin]
        inner: F,
        endpoint: usize,
        routes: &'static [&'static str],
        start: Instant,
    }
}

impl<F, E> Future for MetricsFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Ok(resp) = &out
            && let Some(row) = handles(this.routes).get(*this.endpoint)
        {
            let h = &row[outcome(resp.status().as_u16())];
            h.requests.increment(1);
            h.duration.record(this.start.elapsed().as_secs_f64());
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
        let req = axum::http::Request::new(());
        let a = CountingId.make_request_id(&req).unwrap();
        let b = CountingId.make_request_id(&req).unwrap();
        let (a, b) = (a.header_value().as_bytes(), b.header_value().as_bytes());
        assert_ne!(a, b);
        assert_eq!(a.len(), 33);
        assert!(is_request_id(a));
        assert_eq!(a[..17], b[..17], "one prefix per process");
    }
}
