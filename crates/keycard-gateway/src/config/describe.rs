//! The human-readable summary printed by `keycard gateway check`: the effective settings,
//! defaults included, and one row per route in the order configured.
//!
//! Invariants: never prints a secret (only the name of the variable that holds it). Not here:
//! validation, which has already happened.

use std::fmt::Write;

use super::{GatewayConfig, StaleFallback};
use crate::route::Route;

impl GatewayConfig {
    /// The settings and the route table, aligned for a terminal.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let or = |v: Option<&str>, none: &'static str| v.map_or(none.to_owned(), str::to_owned);
        let metrics = self.metrics_listen.map(|a| a.to_string());
        let client = self
            .client
            .as_ref()
            .map(|c| format!("{} (secret from ${})", c.client_id, c.client_secret_env));
        let feed = match (&self.client, self.feed_stale_fallback) {
            (None, _) => "off (no client_id): local routes cannot see revocations".to_owned(),
            (Some(_), fallback) => format!(
                "used when the issuer advertises it; local_strict routes {} once it is \
                 stale for {} s",
                match fallback {
                    StaleFallback::Refuse => "answer 503",
                    StaleFallback::Introspect => "introspect",
                },
                self.feed_max_staleness.as_secs()
            ),
        };
        let cache = self
            .introspection_cache_ttl
            .map(|t| format!("{} s, never past a token's exp", t.as_secs()));
        let proxies = if self.trusted_proxies.is_empty() {
            "none (forwarded headers are rebuilt from the connection)".to_owned()
        } else {
            let all: Vec<String> = self
                .trusted_proxies
                .iter()
                .map(ToString::to_string)
                .collect();
            all.join(", ")
        };
        let h = &self.identity_headers;
        let l = &self.limits;
        let settings = [
            ("listen", self.listen.to_string()),
            ("metrics", or(metrics.as_deref(), "off")),
            ("issuer", or(self.issuer(), "none")),
            ("audience", or(self.audience(), "none")),
            ("client", or(client.as_deref(), "none")),
            ("revocation feed", feed),
            ("introspection cache", or(cache.as_deref(), "off")),
            ("trusted proxies", proxies),
            (
                "identity headers",
                if self.routes.routes().iter().any(Route::identity_assertion) {
                    format!(
                        "{}, {}, {}, assertion in {}",
                        h.sub, h.client_id, h.scope, h.assertion
                    )
                } else {
                    format!("{}, {}, {}", h.sub, h.client_id, h.scope)
                },
            ),
            (
                "limits",
                format!(
                    "header read {} s, idle {} s, upstream connect {} s, {} connections",
                    l.header_read_timeout.as_secs(),
                    l.idle_timeout.as_secs(),
                    l.upstream_connect_timeout.as_secs(),
                    l.max_connections
                ),
            ),
        ];
        for (name, value) in settings {
            let _ = writeln!(out, "{name:<21}{value}");
        }
        out.push('\n');
        let header = [
            "PATH",
            "METHODS",
            "AUTH",
            "SCOPES",
            "UPSTREAM",
            "TIMEOUT",
            "AUTHORIZATION",
        ];
        let mut rows = vec![header.map(str::to_owned)];
        rows.extend(self.routes.routes().iter().map(row));
        let mut widths = [0usize; 7];
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for r in &rows {
            let mut line = String::new();
            for (w, cell) in widths.iter().zip(r) {
                let _ = write!(line, "{cell:<w$}  ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn row(r: &Route) -> [String; 7] {
    let methods: Vec<&str> = r.methods().iter().map(http::Method::as_str).collect();
    let scopes: Vec<&str> = r.scopes().iter().map(|s| s.as_str()).collect();
    [
        r.path().as_str().to_owned(),
        methods.join(","),
        r.auth().as_str().to_owned(),
        if scopes.is_empty() {
            "-".to_owned()
        } else {
            scopes.join(" ")
        },
        if r.upstream_http2() {
            format!("{} (http/2)", r.upstream().as_str())
        } else {
            r.upstream().as_str().to_owned()
        },
        format!("{} s", r.timeout().as_secs()),
        format!(
            "{}{}",
            if r.forwards_authorization() {
                "forwarded"
            } else {
                "removed"
            },
            if r.identity_assertion() {
                ", assertion"
            } else {
                ""
            }
        ),
    ]
}
