//! Prometheus metrics: requests and latency per endpoint and outcome, tokens issued per grant,
//! login failures. Library code emits through the `metrics` facade; `/metrics` renders.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|()| handle)
        })
        .as_ref()
}

/// Middleware recording `keycard_http_requests_total` and `keycard_http_request_duration_seconds`.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let start = Instant::now();
    let resp = next.run(req).await;
    let outcome = match resp.status().as_u16() {
        200..=399 => "success",
        400..=499 => "client_error",
        _ => "server_error",
    };
    let labels = [("endpoint", endpoint), ("outcome", outcome.to_owned())];
    metrics::counter!("keycard_http_requests_total", &labels).increment(1);
    metrics::histogram!("keycard_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    resp
}

pub(crate) fn token_issued(grant: &'static str) {
    metrics::counter!("keycard_tokens_issued_total", "grant" => grant).increment(1);
}

pub(crate) fn login_failed(reason: &'static str) {
    metrics::counter!("keycard_login_failures_total", "reason" => reason).increment(1);
}
