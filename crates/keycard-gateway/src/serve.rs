//! Accepting connections: the one function that turns a listener into served requests, so the
//! shared `keycard-serve` (connection limits, trusted proxies) can replace it in one place.
//!
//! [`serve`] accepts on the gateway's listener and serves HTTP/1.1 (with upgrades) and HTTP/2
//! (prior knowledge) on each connection with hyper-util's automatic builder; [`serve_metrics`]
//! does the same for the metrics listener. At most `max_connections` connections are served at
//! once (more wait in the listen queue), and a client gets `header_read_timeout` to send each
//! request head.
//!
//! Invariants: a failed accept (out of file descriptors, say) pauses briefly instead of
//! spinning or stopping; each connection runs on its own task, so one slow client holds only
//! its own. Not here: what a request gets (`gateway`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::Limits;
use crate::gateway::Gateway;

/// Serves `gateway` on `listener` forever.
pub async fn serve(listener: TcpListener, gateway: Gateway, limits: Limits) {
    let permits = Arc::new(Semaphore::new(
        usize::try_from(limits.max_connections).unwrap_or(1024),
    ));
    let builder = builder(limits.header_read_timeout);
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let gateway = gateway.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let gateway = gateway.clone();
                async move { Ok::<_, Infallible>(gateway.handle(req, peer).await) }
            });
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

/// Serves `/metrics` and `/healthz` on `listener` forever.
pub async fn serve_metrics(listener: TcpListener, gateway: Gateway) {
    let builder = builder(Duration::from_secs(10));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let gateway = gateway.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let gateway = gateway.clone();
                async move { Ok::<_, Infallible>(gateway.handle_metrics(req).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn builder(header_read_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    b.http2().timer(TokioTimer::new());
    b
}
