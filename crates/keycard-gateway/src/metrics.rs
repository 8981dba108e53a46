//! The gateway's Prometheus metrics (text exposition format 0.0.4), kept per gateway instance.
//!
//! [`Metrics::record`] counts a finished request by route, policy and [`Outcome`] and adds its
//! latency to a histogram; the counters for JWKS and discovery fetches, introspection calls and
//! introspection-cache hits are bumped where those happen; [`Metrics::render`] writes them all,
//! with the revocation feed's state (connected, lag in seconds, events applied, last sequence
//! number) read at that moment.
//!
//! Invariants: labels are route paths (unreserved characters and `/` only), policy names and
//! fixed outcome names, so no label carries client input; memory grows with the number of
//! routes, never with traffic. Own counters rather than the `metrics` facade's global recorder,
//! so that several gateways in one process (the tests) each report their own.
//!
//! Not here: serving `/metrics` (the gateway's handler).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use keycard_validate::RevocationFeed;

/// How a request ended, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// The upstream answered (whatever its status).
    Proxied,
    /// 400: the request-target was refused.
    BadRequest,
    /// 401: no token, or an invalid or revoked one.
    Unauthorized,
    /// 403: a scope was missing.
    Forbidden,
    /// 503: keys, introspection or a fresh enough feed were unavailable.
    Unavailable,
    /// 502: the upstream could not be reached or broke.
    UpstreamError,
    /// 504: the upstream did not answer within the route's timeout.
    UpstreamTimeout,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Proxied => "proxied",
            Outcome::BadRequest => "bad_request",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Forbidden => "forbidden",
            Outcome::Unavailable => "unavailable",
            Outcome::UpstreamError => "upstream_error",
            Outcome::UpstreamTimeout => "upstream_timeout",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The gateway's counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str, Outcome), u64>>,
    latency: Mutex<BTreeMap<(String, &'static str), Histogram>>,
    /// Requests that matched no route (404), used a method no route lists (405), or hit the
    /// gateway's own paths.
    pub unrouted: AtomicU64,
    pub jwks_fetches: AtomicU64,
    pub discovery_fetches: AtomicU64,
    pub introspections: AtomicU64,
    pub introspection_cache_hits: AtomicU64,
    pub introspection_cache_misses: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Metrics {
    /// Counts one routed request.
    pub fn record(&self, route: &str, policy: &'static str, outcome: Outcome, took: Duration) {
        *lock(&self.requests)
            .entry((route.to_owned(), policy, outcome))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        let mut latency = lock(&self.latency);
        let h = latency.entry((route.to_owned(), policy)).or_default();
        h.count += 1;
        h.sum += secs;
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b)
            && let Some(slot) = h.buckets.get_mut(i)
        {
            *slot += 1;
        }
    }

    /// The number of requests counted for this route, policy and outcome.
    pub fn requests(&self, route: &str, policy: &'static str, outcome: Outcome) -> u64 {
        lock(&self.requests)
            .get(&(route.to_owned(), policy, outcome))
            .copied()
            .unwrap_or(0)
    }

    /// The exposition text.
    pub fn render(&self, feed: Option<&RevocationFeed>) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP keycard_gateway_requests_total Requests by route, policy and outcome.\n\
             # TYPE keycard_gateway_requests_total counter\n",
        );
        for ((route, policy, outcome), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "keycard_gateway_requests_total{{route=\"{}\",policy=\"{policy}\",outcome=\"{}\"}} {n}",
                escape(route),
                outcome.as_str()
            );
        }
        out.push_str(
            "# HELP keycard_gateway_request_duration_seconds Time from the request head to the \
             response head.\n# TYPE keycard_gateway_request_duration_seconds histogram\n",
        );
        for ((route, policy), h) in lock(&self.latency).iter() {
            let labels = format!("route=\"{}\",policy=\"{policy}\"", escape(route));
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "keycard_gateway_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "keycard_gateway_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
                 keycard_gateway_request_duration_seconds_sum{{{labels}}} {}\n\
                 keycard_gateway_request_duration_seconds_count{{{labels}}} {}",
                h.count, h.sum, h.count
            );
        }
        let counters = [
            (
                "keycard_gateway_unrouted_requests_total",
                "Requests answered 404 or 405, or by the gateway's own paths.",
                &self.unrouted,
            ),
            (
                "keycard_gateway_jwks_fetches_total",
                "JWKS requests to the authorization server.",
                &self.jwks_fetches,
            ),
            (
                "keycard_gateway_discovery_fetches_total",
                "Discovery requests to the authorization server.",
                &self.discovery_fetches,
            ),
            (
                "keycard_gateway_introspections_total",
                "Introspection requests to the authorization server.",
                &self.introspections,
            ),
            (
                "keycard_gateway_introspection_cache_hits_total",
                "Introspection answers served from the cache.",
                &self.introspection_cache_hits,
            ),
            (
                "keycard_gateway_introspection_cache_misses_total",
                "Introspection answers not in the cache.",
                &self.introspection_cache_misses,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let (connected, lag, applied, seq) = match feed {
            Some(f) => (
                u8::from(f.is_connected()),
                match f.staleness() {
                    Duration::MAX => f64::INFINITY,
                    d => d.as_secs_f64(),
                },
                f.events_applied(),
                f.last_seq(),
            ),
            None => (0, f64::INFINITY, 0, 0),
        };
        let lag = if lag.is_finite() {
            format!("{lag:.3}")
        } else {
            "+Inf".to_owned()
        };
        let _ = write!(
            out,
            "# HELP keycard_gateway_feed_connected Whether the revocation feed stream is open.\n\
             # TYPE keycard_gateway_feed_connected gauge\nkeycard_gateway_feed_connected {connected}\n\
             # HELP keycard_gateway_feed_lag_seconds Seconds since the feed last sent a byte.\n\
             # TYPE keycard_gateway_feed_lag_seconds gauge\nkeycard_gateway_feed_lag_seconds {lag}\n\
             # HELP keycard_gateway_feed_events_applied_total Revocation events applied.\n\
             # TYPE keycard_gateway_feed_events_applied_total counter\n\
             keycard_gateway_feed_events_applied_total {applied}\n\
             # HELP keycard_gateway_feed_last_seq The last revocation sequence number applied.\n\
             # TYPE keycard_gateway_feed_last_seq gauge\nkeycard_gateway_feed_last_seq {seq}\n"
        );
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_counts_and_histograms() {
        let m = Metrics::default();
        m.record(
            "/photos",
            "local",
            Outcome::Proxied,
            Duration::from_micros(300),
        );
        m.record(
            "/photos",
            "local",
            Outcome::Unauthorized,
            Duration::from_secs(9),
        );
        let text = m.render(None);
        assert!(text.contains(
            "keycard_gateway_requests_total{route=\"/photos\",policy=\"local\",outcome=\"proxied\"} 1\n"
        ));
        assert!(text.contains(
            "keycard_gateway_request_duration_seconds_bucket{route=\"/photos\",policy=\"local\",le=\"0.0005\"} 1\n"
        ));
        assert!(text.contains(
            "keycard_gateway_request_duration_seconds_bucket{route=\"/photos\",policy=\"local\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains("keycard_gateway_feed_lag_seconds +Inf\n"));
        assert_eq!(m.requests("/photos", "local", Outcome::Proxied), 1);
    }
}
