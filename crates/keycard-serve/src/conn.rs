//! One connection: hyper serving it, and the watchdog that closes it when the client is too
//! slow to send a request head or the connection sits idle (RFC 9112 §9.5).
//!
//! [`run`] serves a connection until it ends, its watchdog expires or shutdown is asked for
//! (then hyper finishes the requests in flight and closes). [`ConnState`] is the phase the
//! watchdog reads: `Head` from accept, or from the first byte after an idle spell, until a
//! request head has been parsed; `Busy` while requests are in flight; `Idle` from the end of
//! the last response (of writing it, when that had to wait for the client). The stream
//! ([`Watched`]) and the request side ([`ConnState::begin`]) move it along; the watchdog looks
//! at it at least every `min(header_read_timeout, idle_timeout)` (`ConnState::next_look`), so
//! a request costs the watchdog no wake-up and no timer.
//!
//! Invariants: a `Head` phase ends only when hyper hands a parsed request to the service, so
//! dripping bytes never extends it; `Busy` has no deadline here because the request's own
//! body and handler timeouts bound it (`crate::request`). While a write waits for the client
//! to read, no phase deadline runs (a large response to a slow client is not cut); instead
//! [`Watched`] fails a write that has waited `idle_timeout`, which ends the connection. Not
//! here: accepting and the connection caps (`crate::accept`).

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, Sleep};

use crate::ServeOptions;
use crate::request::RequestService;

/// Where a connection is in its life, for the watchdog.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a complete request head since `since`.
    Head { since: Instant },
    /// This many requests in flight.
    Busy(usize),
    /// No request in flight since `since`.
    Idle { since: Instant },
}

#[derive(Debug)]
pub(crate) struct ConnState {
    phase: Mutex<Phase>,
    /// Set while `Idle`, so reads in the other phases skip the lock.
    idle: AtomicBool,
    /// Set while a write waits for the client to read.
    writing: AtomicBool,
    changed: Notify,
}

impl ConnState {
    fn new() -> Arc<ConnState> {
        Arc::new(ConnState {
            phase: Mutex::new(Phase::Head {
                since: Instant::now(),
            }),
            idle: AtomicBool::new(false),
            writing: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        // A panic while holding this lock cannot leave the phase half-written (it is one
        // `Copy` value), so a poisoned lock is still good.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request head has been parsed; the returned guard ends the request when dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Head { .. } | Phase::Idle { .. } => {
                self.idle.store(false, Ordering::Release);
                Phase::Busy(1)
            }
        };
        InFlight(self.clone())
    }

    fn end(&self) {
        let mut phase = self.phase();
        if let Phase::Busy(n) = *phase {
            *phase = if n > 1 {
                Phase::Busy(n - 1)
            } else {
                self.idle.store(true, Ordering::Release);
                Phase::Idle {
                    since: Instant::now(),
                }
            };
        }
    }

    /// Bytes arrived: on an idle connection, a new request head has begun.
    fn on_read(&self) {
        if !self.idle.load(Ordering::Acquire) {
            return;
        }
        let mut phase = self.phase();
        if let Phase::Idle { .. } = *phase {
            self.idle.store(false, Ordering::Release);
            *phase = Phase::Head {
                since: Instant::now(),
            };
        }
    }

    /// A write that had to wait has gone through: an idle spell starts only now.
    fn on_write_done(&self) {
        self.writing.store(false, Ordering::Release);
        let mut phase = self.phase();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Idle {
                since: Instant::now(),
            };
        }
        self.changed.notify_one();
    }

    /// When the current phase runs out, if it can.
    fn deadline(&self, options: &ServeOptions) -> Option<Instant> {
        if self.writing.load(Ordering::Acquire) {
            return None;
        }
        match *self.phase() {
            Phase::Head { since } => Some(since + options.header_read_timeout),
            Phase::Idle { since } => Some(since + options.idle_timeout),
            Phase::Busy(_) => None,
        }
    }

    /// What the watchdog does at `now`: close the connection (`Err`), or look again at the
    /// returned time (`None`: only when told, while a write waits for the client).
    ///
    /// Phase changes do not wake the watchdog (that would cost a wake-up and a timer per
    /// request); instead it never sleeps longer than `step`, the shortest deadline a phase can
    /// start with. A phase that begins after the watchdog went to sleep therefore ends no
    /// earlier than the watchdog's next look, which checks it against the clock.
    fn next_look(&self, options: &ServeOptions, now: Instant) -> Result<Option<Instant>, ()> {
        if self.writing.load(Ordering::Acquire) {
            return Ok(None);
        }
        let step = options.header_read_timeout.min(options.idle_timeout);
        match self.deadline(options) {
            Some(d) if d <= now => Err(()),
            Some(d) => Ok(Some(d.min(now + step))),
            None => Ok(Some(now + step)),
        }
    }
}

/// A request in flight; dropping it (when the response body is done, or the request is
/// abandoned) ends it.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The TCP stream, reporting reads to the connection's state and failing writes that stall.
#[derive(Debug)]
struct Watched {
    stream: TcpStream,
    state: Arc<ConnState>,
    write_timeout: Duration,
    /// Armed while a write is waiting for the client to read.
    write_stall: Option<Pin<Box<Sleep>>>,
}

impl Watched {
    /// Turns a pending write into a timeout once it has been pending too long.
    fn stall<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            if self.write_stall.take().is_some() {
                self.state.on_write_done();
            }
            return poll;
        }
        let (timeout, state) = (self.write_timeout, &self.state);
        let stall = self.write_stall.get_or_insert_with(|| {
            state.writing.store(true, Ordering::Release);
            Box::pin(tokio::time::sleep(timeout))
        });
        if stall.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read();
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.stall(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.stall(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves one accepted connection to its end.
pub(crate) async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    options: Arc<ServeOptions>,
    builder: Arc<Builder<TokioExecutor>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let state = ConnState::new();
    let io = TokioIo::new(Watched {
        stream,
        state: state.clone(),
        write_timeout: options.idle_timeout,
        write_stall: None,
    });
    let service = RequestService::new(router, state.clone(), peer, options.clone());
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = *shutdown.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let changed = state.changed.notified();
        let look = match state.next_look(&options, Instant::now()) {
            Ok(look) => look,
            Err(()) => {
                tracing::debug!(%peer, "closing a connection: header or idle timeout");
                return;
            }
        };
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            // The loop looks at the phase again.
            () = sleep_until(look) => {}
            () = changed => {}
            _ = shutdown.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
