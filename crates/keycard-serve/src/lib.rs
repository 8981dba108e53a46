//! Serving an axum `Router` over TCP with the limits every Keycard listener needs (RFC 9112
//! §9.3 persistent connections, §9.5 timeouts; RFC 9110 §15.5.9 408, §15.6.4 503; RFC 9700
//! §4.13 reverse proxies; RFC 7239 `Forwarded`).
//!
//! [`serve`] runs the accept loop on hyper-util's HTTP/1.1 + HTTP/2 (prior knowledge) server
//! until a shutdown future completes, then drains: in-flight requests finish, bounded by
//! [`ServeOptions::shutdown_grace`]. Each request carries a [`ClientAddr`] extension: the TCP
//! peer, or, when the peer is one of the [`TrustedProxies`], the rightmost untrusted hop of
//! their forwarded header (axum's `ConnectInfo<SocketAddr>` is set too).
//!
//! Invariants, each with its default in [`ServeOptions::default`]:
//! - a client has `header_read_timeout` from accepting the connection, or from the first byte
//!   of the next request on a kept-alive one, to send a whole request head (slowloris);
//! - a kept-alive connection with no request in flight is closed after `idle_timeout`, and an
//!   idle connection that starts a request falls under the header timeout again, so neither
//!   bytes dripped between requests nor HTTP/2 pings keep it open; a client that stops reading
//!   its responses is disconnected once a write has waited `idle_timeout`;
//! - a request body must arrive within `body_timeout` of its head (408 and close), and a
//!   handler has `request_timeout` to answer (503 and close);
//! - at most `max_connections` are open, and at most `max_connections_per_peer` from one peer
//!   (an IPv4 address or an IPv6 /64; trusted proxies are exempt): a surplus connection is
//!   accepted and closed at once, and accepting never stops.
//!
//! hyper's own header timer is off: it starts when a kept-alive connection goes idle, so it
//! would also close every idle connection after the header timeout and leave no separate
//! idle timeout (hyper 1.x `Conn::poll_read_head`). One watchdog per connection implements
//! both phases instead.
//!
//! No file or environment is read here: options are built in code (the binary parses its
//! flags into them). Not here: the forwarded-header rule itself
//! (`keycard_protocol::forwarded`), request ids, logging and metrics per request (the
//! application's layers), TLS (a proxy in front).

mod accept;
mod client_addr;
mod conn;
mod request;

use std::time::Duration;

pub use accept::serve;
pub use client_addr::ClientAddr;
pub use keycard_protocol::forwarded::{ForwardedHeader, TrustedProxies, TrustedProxy};

/// The limits of one listener. [`ServeOptions::default`] is the safe default every Keycard
/// listener starts from.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Time to send a whole request head, from accept or from the first byte of the next
    /// request on a kept-alive connection.
    pub header_read_timeout: Duration,
    /// Time a connection may stay open with no request in flight, and a response write may
    /// wait for the client to read.
    pub idle_timeout: Duration,
    /// Time for a request body to arrive completely, counted from its head.
    pub body_timeout: Duration,
    /// Time for a handler to answer, body reading included.
    pub request_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one IPv4 address or IPv6 /64 (trusted proxies exempt).
    pub max_connections_per_peer: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// The proxies whose forwarded header names the client (none by default).
    pub trusted_proxies: TrustedProxies,
}

impl Default for ServeOptions {
    /// 10 s for a request head (a head is a few hundred bytes, so 10 s is generous even on a
    /// bad mobile link), 60 s idle (what proxies such as nginx keep their own idle upstream
    /// connections for, so a proxy's pool is not cut short), 30 s for a body (Keycard's bodies
    /// are forms of at most 64 KiB), 60 s per request, [`default_max_connections`], 256 per
    /// peer (dozens of browsers behind one NAT address still fit), 20 s to drain on shutdown
    /// (below the 30 s after which Kubernetes kills a pod), and no trusted proxies.
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(),
            max_connections_per_peer: 256,
            shutdown_grace: Duration::from_secs(20),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// The most connections served by default: 10,000, or fewer when the open-file limit
/// (`RLIMIT_NOFILE`) would not leave room for them.
///
/// A connection the limit cannot accept stays in the kernel's queue, where it can be neither
/// served nor refused, so the cap must sit below the limit. The headroom (256 descriptors, or
/// half a limit under 512) is for everything else the process opens: the database files and
/// pools, a metrics listener, logs, and a gateway's upstream connections. 10,000 bounds memory:
/// each connection holds a task and hyper's buffers.
pub fn default_max_connections() -> usize {
    const MOST: u64 = 10_000;
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let headroom = (limit / 2).min(256);
    usize::try_from(limit.saturating_sub(headroom).clamp(1, MOST)).unwrap_or(1)
}

/// Raises this process's soft open-file limit to its hard limit, as the Go runtime does, and
/// returns the new soft limit. Many systems start services at a soft limit of 1,024 with a
/// far higher hard limit; the administrator's ceiling is the hard one. Failures leave the
/// limit as it was.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current != now.maximum {
        let raised = Rlimit {
            current: now.maximum,
            maximum: now.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_err() {
            tracing::debug!("could not raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_max_connections_leaves_headroom_below_the_file_limit() {
        let max = super::default_max_connections() as u64;
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        assert!((1..=10_000).contains(&max));
        if let Some(limit) = limit {
            assert!(max < limit, "{max} connections with a limit of {limit}");
        }
    }
}
