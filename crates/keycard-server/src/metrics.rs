//! Prometheus metrics: tokens issued per grant, login failures and introspection cache hits
//! (requests and latency per endpoint and outcome are `crate::edge`'s). Library code emits
//! through the `metrics` facade; `/metrics` renders.

use std::sync::OnceLock;

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

pub(crate) fn token_issued(grant: &'static str) {
    metrics::counter!("keycard_tokens_issued_total", "grant" => grant).increment(1);
}

pub(crate) fn login_failed(reason: &'static str) {
    metrics::counter!("keycard_login_failures_total", "reason" => reason).increment(1);
}

/// An introspection answered from the verified-token cache (`crate::verified`).
pub(crate) fn introspection_cached() {
    metrics::counter!("keycard_introspection_cache_hits_total").increment(1);
}
