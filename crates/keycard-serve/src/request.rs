//! One request on its way into the router: its [`ClientAddr`], its body deadline and its
//! handler timeout (RFC 9110 §15.5.9 408 Request Timeout, §15.6.4 503 Service Unavailable).
//!
//! [`RequestService`] is the hyper service of one connection. It marks the connection busy
//! until the response body is done, attaches the client address, wraps the body in
//! [`DeadlineBody`] and runs the router under the request timeout.
//!
//! Invariants: a body that has not fully arrived `body_timeout` after its head fails to read,
//! and the response is then 408 with `Connection: close` whatever the handler made of the
//! failure; a handler still running after `request_timeout` is dropped and answered 503 with
//! `Connection: close`. Both close the connection, since its framing is no longer known to be
//! intact. Not here: the phases between requests (`crate::conn`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;
use tower::ServiceExt as _;

use crate::ServeOptions;
use crate::client_addr::ClientAddr;
use crate::conn::{ConnState, InFlight};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
pub(crate) struct RequestService {
    router: axum::Router,
    conn: Arc<ConnState>,
    peer: SocketAddr,
    options: Arc<ServeOptions>,
}

impl RequestService {
    pub(crate) fn new(
        router: axum::Router,
        conn: Arc<ConnState>,
        peer: SocketAddr,
        options: Arc<ServeOptions>,
    ) -> Self {
        RequestService {
            router,
            conn,
            peer,
            options,
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for RequestService {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let in_flight = self.conn.begin();
        let router = self.router.clone();
        let options = self.options.clone();
        let peer = self.peer;
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let client = ClientAddr::new(peer, &parts.headers, &options.trusted_proxies);
            parts.extensions.insert(client);
            parts.extensions.insert(ConnectInfo(peer));
            let expired = Arc::new(AtomicBool::new(false));
            let body = DeadlineBody::new(body, options.body_timeout, expired.clone());
            let req = Request::from_parts(parts, axum::body::Body::new(body));
            let resp =
                match tokio::time::timeout(options.request_timeout, router.oneshot(req)).await {
                    Ok(Ok(resp)) if !expired.load(Ordering::Acquire) => resp,
                    Ok(Ok(_)) => {
                        tracing::debug!(%peer, "request body too slow");
                        closing(StatusCode::REQUEST_TIMEOUT)
                    }
                    Ok(Err(never)) => match never {},
                    Err(_) => {
                        tracing::warn!(%peer, "handler timed out");
                        closing(StatusCode::SERVICE_UNAVAILABLE)
                    }
                };
            Ok(resp.map(|body| Tracked {
                body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// An empty answer that also closes the connection.
fn closing(status: StatusCode) -> Response<axum::body::Body> {
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// A response body that keeps its request in flight until hyper is done with it.
#[derive(Debug)]
pub(crate) struct Tracked {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The request body failed to arrive in time.
#[derive(Debug)]
struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that must be complete by a deadline counted from the request head.
struct DeadlineBody {
    body: Incoming,
    /// `None` for a body that was empty from the start (no timer is armed for a GET).
    deadline: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn new(body: Incoming, timeout: std::time::Duration, expired: Arc<AtomicBool>) -> Self {
        let deadline = (!body.is_end_stream()).then(|| Box::pin(tokio::time::sleep(timeout)));
        DeadlineBody {
            body,
            deadline,
            expired,
        }
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BoxError::from)));
        }
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            this.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
