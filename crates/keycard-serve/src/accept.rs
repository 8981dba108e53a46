//! The accept loop: connection caps, surplus refused at once, and a bounded graceful shutdown.
//!
//! [`serve`] accepts until its shutdown future completes, hands each connection to
//! `crate::conn::run`, then stops accepting, asks every connection to finish the requests it
//! has, and waits for them at most `shutdown_grace`.
//!
//! Invariants: a connection over `max_connections`, or over `max_connections_per_peer` for its
//! peer, is accepted and closed at once (nothing is written: under a flood, a reset is the
//! cheapest answer, and a proxy retries it elsewhere); accepting never stops, and a failed
//! accept (out of descriptors) waits a moment and goes on. Peers are counted per IPv4 address
//! and per IPv6 /64, the smallest block one subscriber is usually given (RFC 6177), since a
//! single host can use every address of its /64; trusted proxies carry many clients and are
//! exempt from the per-peer cap. Not here: what happens on a connection (`crate::conn`).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::ServeOptions;

/// Concurrent HTTP/2 streams per connection; hyper's default (200) is documented as not
/// stable, and Keycard's clients never need many.
const MAX_STREAMS: u32 = 100;

/// How long to wait after an accept failure that is not the peer's doing (out of descriptors
/// or memory) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How often a refusal or accept failure is logged at most.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` with `options` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) {
    let options = Arc::new(options);
    let limiter = Arc::new(Limiter::new(&options));
    let builder = Arc::new(builder());
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; when the last one is gone, `recv` returns `None`.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    let mut last_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(&e, &mut last_warning).await;
                    continue;
                }
            },
        };
        let exempt = options.trusted_proxies.contains(peer.ip());
        let slot = match limiter.acquire(peer.ip(), exempt) {
            Ok(slot) => slot,
            Err(refusal) => {
                drop(stream);
                metrics::counter!("keycard_connections_refused_total", "reason" => refusal.as_str())
                    .increment(1);
                if warn_now(&mut last_warning) {
                    tracing::warn!(%peer, reason = refusal.as_str(), "refusing connections");
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (router, options, builder) = (router.clone(), options.clone(), builder.clone());
        let (stop, open) = (stop_rx.clone(), open_tx.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let _open = open;
            crate::conn::run(stream, peer, router, options, builder, stop).await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_tx);
    if tokio::time::timeout(options.shutdown_grace, open_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            open = limiter.open(),
            "shutdown grace elapsed; closing the remaining connections"
        );
    }
}

fn builder() -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    // hyper's header timer would also cut idle kept-alive connections at the header timeout;
    // `crate::conn` times both phases itself.
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS);
    b
}

async fn accept_failed(e: &io::Error, last_warning: &mut Option<Instant>) {
    use io::ErrorKind::*;
    // These are the peer's doing (it went away before we accepted): accept the next one.
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    if warn_now(last_warning) {
        tracing::warn!(error = %e, "accept failed; retrying");
    }
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

fn warn_now(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if last.is_some_and(|t| now < t + WARN_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    MaxConnections,
    MaxConnectionsPerPeer,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::MaxConnectionsPerPeer => "max_connections_per_peer",
        }
    }
}

/// The open connections, in total and per peer.
#[derive(Debug)]
struct Limiter {
    max: usize,
    max_per_peer: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    open: usize,
    per_peer: HashMap<IpAddr, usize>,
}

/// One open connection; dropping it frees its place.
#[derive(Debug)]
struct Slot {
    limiter: Arc<Limiter>,
    /// The peer it counts against, unless the peer is exempt.
    peer: Option<IpAddr>,
}

impl Limiter {
    fn new(options: &ServeOptions) -> Limiter {
        Limiter {
            max: options.max_connections,
            max_per_peer: options.max_connections_per_peer,
            counts: Mutex::default(),
        }
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // Counts are updated in one step under the lock, so a poisoned lock is still exact.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> usize {
        self.counts().open
    }

    fn acquire(self: &Arc<Self>, ip: IpAddr, exempt: bool) -> Result<Slot, Refusal> {
        let mut c = self.counts();
        if c.open >= self.max {
            return Err(Refusal::MaxConnections);
        }
        let peer = (!exempt).then(|| peer_key(ip));
        if let Some(key) = peer {
            let n = c.per_peer.entry(key).or_insert(0);
            if *n >= self.max_per_peer {
                return Err(Refusal::MaxConnectionsPerPeer);
            }
            *n += 1;
        }
        c.open += 1;
        metrics::gauge!("keycard_connections_open").set(c.open as f64);
        Ok(Slot {
            limiter: self.clone(),
            peer,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.limiter.counts();
        c.open = c.open.saturating_sub(1);
        if let Some(key) = self.peer
            && let Some(n) = c.per_peer.get_mut(&key)
        {
            *n -= 1;
            if *n == 0 {
                c.per_peer.remove(&key);
            }
        }
        metrics::gauge!("keycard_connections_open").set(c.open as f64);
    }
}

/// The address a peer is counted under: IPv4 as is, IPv6 by its /64.
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::MAX >> 64);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max: usize, per_peer: usize) -> Arc<Limiter> {
        Arc::new(Limiter::new(&ServeOptions {
            max_connections: max,
            max_connections_per_peer: per_peer,
            ..ServeOptions::default()
        }))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_peer_cap_counts_ipv6_by_its_64_and_frees_on_drop() {
        let l = limiter(100, 2);
        let a = l.acquire(ip("2001:db8:1:2::1"), false).unwrap();
        let _b = l.acquire(ip("2001:db8:1:2:ffff::9"), false).unwrap();
        assert_eq!(
            l.acquire(ip("2001:db8:1:2::3"), false).unwrap_err(),
            Refusal::MaxConnectionsPerPeer
        );
        assert!(
            l.acquire(ip("2001:db8:1:3::1"), false).is_ok(),
            "another /64"
        );
        drop(a);
        assert!(l.acquire(ip("2001:db8:1:2::3"), false).is_ok());
        let _v4 = l.acquire(ip("::ffff:192.0.2.1"), false).unwrap();
        let _v4b = l.acquire(ip("192.0.2.1"), false).unwrap();
        assert_eq!(
            l.acquire(ip("192.0.2.1"), false).unwrap_err(),
            Refusal::MaxConnectionsPerPeer,
            "IPv4-mapped addresses count as their IPv4 address"
        );
        assert!(l.acquire(ip("192.0.2.2"), false).is_ok());
    }

    #[test]
    fn exempt_peers_skip_the_per_peer_cap_but_not_the_total() {
        let l = limiter(3, 1);
        let _a = l.acquire(ip("10.0.0.1"), true).unwrap();
        let _b = l.acquire(ip("10.0.0.1"), true).unwrap();
        let _c = l.acquire(ip("10.0.0.1"), true).unwrap();
        assert_eq!(
            l.acquire(ip("10.0.0.1"), true).unwrap_err(),
            Refusal::MaxConnections
        );
        assert_eq!(l.open(), 3);
    }
}
