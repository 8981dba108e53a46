//! The revocation feed subscriber: local validation that sees what the authorization server
//! revoked (Keycard's revocation feed, ARCHITECTURE.md "Revocation feed"; Server-Sent Events, WHATWG HTML
//! §9.2; client authentication as RFC 6749 §2.3.1 `client_secret_basic`).
//!
//! [`RevocationFeed::new`] takes the feed endpoint (the provider metadata's
//! `keycard_revocation_feed_endpoint`), the client credentials and an [`HttpClient`];
//! [`RevocationFeed::spawn`] (or [`RevocationFeed::run`] on a task of your own) keeps it in
//! sync: a JSON snapshot `GET endpoint?since=0` (paged while `more`), then the event stream
//! `GET endpoint` with `Last-Event-ID`, reconnecting after a failure with backoff (1 s doubling
//! to 30 s, with jitter) and resuming from the last sequence number applied. A `410` (the
//! resume point was dropped) starts over with `since=0`; a gap in the sequence takes a snapshot
//! from the last number applied; a stream silent for longer than the idle timeout (three
//! keep-alive intervals by default) is dropped and reconnected. [`RevocationFeed::is_revoked`]
//! answers for a validated [`AccessToken`] and its header `kid`; give the feed to
//! [`ValidatorOptions::revocation_feed`](crate::ValidatorOptions::revocation_feed) and
//! [`Validator::validate`](crate::Validator::validate) refuses revoked tokens itself
//! ([`ValidationError::Revoked`](crate::ValidationError::Revoked)) and drops revoked keys.
//!
//! Invariants: memory is bounded (one event-stream line and one snapshot page are capped, and
//! the set holds at most [`FeedOptions::capacity`] entries, each forgotten after its `until`);
//! a hostile or broken stream ends the connection, never the process; freshness is the time of
//! the last byte received, keep-alive comments included ([`RevocationFeed::staleness`]), so a
//! caller can refuse to trust a feed that has been quiet too long. Nothing here logs: the last
//! failure is kept for the caller ([`RevocationFeed::last_error`]).
//!
//! Not here: the event-stream framing ([`sse`]), the event and matching rules ([`set`]),
//! what a gateway does with a stale feed (the caller decides).

pub mod set;
pub mod sse;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use keycard_os::SystemClock;
use keycard_protocol::{ClientId, ClientSecret, Clock, UnixTime};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::access_token::AccessToken;
use crate::http::{BasicAuth, HttpClient};
pub use set::{RevocationEvent, RevocationKind, RevocationSet, TokenFacts};
pub use sse::{SseError, SseEvent, SseParser};

/// How a [`RevocationFeed`] behaves. Build it from `default()` with the setters.
#[derive(Clone)]
pub struct FeedOptions {
    clock: Arc<dyn Clock>,
    idle_timeout: Duration,
    request_timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    capacity: usize,
    max_snapshot_bytes: usize,
}

impl Default for FeedOptions {
    fn default() -> FeedOptions {
        FeedOptions {
            clock: Arc::new(SystemClock),
            idle_timeout: Duration::from_secs(45),
            request_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            capacity: 100_000,
            max_snapshot_bytes: 4 * 1024 * 1024,
        }
    }
}

impl FeedOptions {
    /// The time source for `at` / `until`; default [`SystemClock`].
    pub fn clock(mut self, clock: impl Clock + 'static) -> FeedOptions {
        self.clock = Arc::new(clock);
        self
    }

    /// A stream silent this long is dropped and reconnected; default 45 s (the server sends a
    /// keep-alive at least every 15 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> FeedOptions {
        self.idle_timeout = timeout;
        self
    }

    /// Timeout for a snapshot request and for the stream's response head; default 5 s.
    pub fn request_timeout(mut self, timeout: Duration) -> FeedOptions {
        self.request_timeout = timeout;
        self
    }

    /// The first and the longest wait before reconnecting; default 1 s and 30 s.
    pub fn backoff(mut self, min: Duration, max: Duration) -> FeedOptions {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// The most revocations held at once; default 100,000.
    pub fn capacity(mut self, entries: usize) -> FeedOptions {
        self.capacity = entries;
        self
    }
}

impl fmt::Debug for FeedOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeedOptions")
            .field("idle_timeout", &self.idle_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// A subscription to one authorization server's revocation feed. Cheap to clone (an `Arc`);
/// every clone sees the same state.
#[derive(Clone)]
pub struct RevocationFeed {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: String,
    auth: BasicAuth,
    http: Arc<dyn HttpClient>,
    opts: FeedOptions,
    set: RwLock<RevocationSet>,
    last_seq: AtomicU64,
    last_contact: Mutex<Option<Instant>>,
    last_prune: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
    connected: AtomicBool,
    applied: AtomicU64,
    keys_generation: AtomicU64,
    events: broadcast::Sender<RevocationEvent>,
}

impl fmt::Debug for RevocationFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationFeed")
            .field("endpoint", &self.inner.endpoint)
            .field("last_seq", &self.last_seq())
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

/// Why one connection ended.
enum Ended {
    /// The resume point was dropped (410): start over from `since=0`.
    Resync,
    /// A sequence number was skipped: take a snapshot from the last one applied.
    Gap,
    /// The server closed a stream that had been working.
    Closed,
    /// The request failed or the stream broke.
    Failed(String),
}

/// The answer to a snapshot request.
enum Snapshot {
    Page { last: u64, more: bool },
    Resync,
}

impl RevocationFeed {
    /// A subscriber for `endpoint`, authenticating as `client_id`. Nothing is fetched until
    /// [`RevocationFeed::run`] or [`RevocationFeed::spawn`].
    pub fn new(
        endpoint: impl Into<String>,
        client_id: &ClientId,
        client_secret: &ClientSecret,
        http: Arc<dyn HttpClient>,
        options: FeedOptions,
    ) -> RevocationFeed {
        let (events, _) = broadcast::channel(1024);
        RevocationFeed {
            inner: Arc::new(Inner {
                endpoint: endpoint.into(),
                auth: BasicAuth::new(client_id, client_secret),
                http,
                set: RwLock::new(RevocationSet::new(options.capacity)),
                opts: options,
                last_seq: AtomicU64::new(0),
                last_contact: Mutex::new(None),
                last_prune: Mutex::new(None),
                last_error: Mutex::new(None),
                connected: AtomicBool::new(false),
                applied: AtomicU64::new(0),
                keys_generation: AtomicU64::new(0),
                events,
            }),
        }
    }

    /// Runs [`RevocationFeed::run`] on a new tokio task; abort the handle to stop it.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let feed = self.clone();
        tokio::spawn(async move { feed.run().await })
    }

    /// Keeps the feed in sync, forever: snapshot, stream, reconnect with backoff.
    pub async fn run(&self) {
        let opts = &self.inner.opts;
        let mut snapshot_from = Some(0);
        let mut backoff = opts.backoff_min;
        let mut resyncs = 0u32;
        loop {
            let ended = self.session(&mut snapshot_from).await;
            self.inner.connected.store(false, Ordering::Release);
            let wait = match ended {
                Ended::Resync => {
                    self.note_error("the resume point was dropped; resynchronising");
                    self.inner.last_seq.store(0, Ordering::Release);
                    snapshot_from = Some(0);
                    resyncs += 1;
                    // A server answering 410 to `since=0` must not make this loop spin.
                    if resyncs > 1 { backoff } else { Duration::ZERO }
                }
                Ended::Gap => {
                    snapshot_from = Some(self.last_seq());
                    Duration::ZERO
                }
                Ended::Closed => {
                    resyncs = 0;
                    backoff = opts.backoff_min;
                    backoff
                }
                Ended::Failed(why) => {
                    self.note_error(&why);
                    backoff
                }
            };
            if !wait.is_zero() {
                tokio::time::sleep(jitter(wait)).await;
                backoff = (backoff * 2).min(opts.backoff_max);
            }
        }
    }

    /// Time since the last byte received from the feed (an event or a keep-alive), or
    /// `Duration::MAX` when it was never reached.
    pub fn staleness(&self) -> Duration {
        match *lock(&self.inner.last_contact) {
            Some(t) => t.elapsed(),
            None => Duration::MAX,
        }
    }

    /// Whether the event stream is open now.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// The highest sequence number applied (0 before the first snapshot).
    pub fn last_seq(&self) -> u64 {
        self.inner.last_seq.load(Ordering::Acquire)
    }

    /// How many events were applied since the start.
    pub fn events_applied(&self) -> u64 {
        self.inner.applied.load(Ordering::Relaxed)
    }

    /// Why the last connection failed, if one did.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.inner.last_error).clone()
    }

    /// Whether live revocations had to be dropped to stay within the capacity: the set is then
    /// incomplete, and a caller that must not miss a revocation should not rely on it alone.
    pub fn is_overflowed(&self) -> bool {
        self.read_set().overflowed()
    }

    /// Whether a recorded event revokes this validated token, whose JWS header named
    /// `header_kid`.
    pub fn is_revoked(&self, token: &AccessToken, header_kid: Option<&str>) -> bool {
        let now = self.inner.opts.clock.now();
        self.read_set().is_revoked(token, header_kid, now)
    }

    /// Whether the signing key `kid` was revoked.
    pub fn is_kid_revoked(&self, kid: &str) -> bool {
        let now = self.inner.opts.clock.now();
        self.read_set().is_kid_revoked(kid, now)
    }

    /// Whether the browser session `sid` was ended (for BFFs).
    pub fn is_session_ended(&self, sid: &str) -> bool {
        let now = self.inner.opts.clock.now();
        self.read_set().is_session_ended(sid, now)
    }

    /// Every event applied from now on, for caches that must evict what was revoked. A
    /// receiver that falls behind loses the oldest events (`RecvError::Lagged`) and should
    /// then clear its cache.
    pub fn subscribe(&self) -> broadcast::Receiver<RevocationEvent> {
        self.inner.events.subscribe()
    }

    /// Bumped by every `kid` and `jwks` event: a key cache that saw another value should drop
    /// revoked keys and refetch.
    pub fn keys_generation(&self) -> u64 {
        self.inner.keys_generation.load(Ordering::Acquire)
    }

    fn read_set(&self) -> std::sync::RwLockReadGuard<'_, RevocationSet> {
        self.inner
            .set
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn note_error(&self, why: &str) {
        *lock(&self.inner.last_error) = Some(why.to_owned());
    }

    fn touch(&self) {
        let now = Instant::now();
        *lock(&self.inner.last_contact) = Some(now);
        let mut last_prune = lock(&self.inner.last_prune);
        if last_prune.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10)) {
            *last_prune = Some(now);
            drop(last_prune);
            let clock_now = self.inner.opts.clock.now();
            self.inner
                .set
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .prune(clock_now);
        }
    }

    fn apply(&self, e: RevocationEvent, now: UnixTime) {
        self.inner
            .set
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(&e, now);
        if matches!(e.kind, RevocationKind::Kid | RevocationKind::Jwks) {
            self.inner.keys_generation.fetch_add(1, Ordering::AcqRel);
        }
        self.inner.last_seq.fetch_max(e.seq, Ordering::AcqRel);
        self.inner.applied.fetch_add(1, Ordering::Relaxed);
        // Nobody listening is fine.
        let _ = self.inner.events.send(e);
    }

    async fn session(&self, snapshot_from: &mut Option<u64>) -> Ended {
        if let Some(since) = *snapshot_from {
            match self.snapshot(since).await {
                Ok(true) => *snapshot_from = None,
                Ok(false) => return Ended::Resync,
                Err(e) => return Ended::Failed(e),
            }
        }
        self.stream().await
    }

    /// Pages through the snapshot from `since`; `Ok(false)` when the server asks for a resync.
    async fn snapshot(&self, mut since: u64) -> Result<bool, String> {
        loop {
            match self.snapshot_page(since).await? {
                Snapshot::Resync => return Ok(false),
                Snapshot::Page { last, more } => {
                    let applied = self.last_seq();
                    if !more || applied <= since {
                        // A page that says "more" but moved nothing forward ends the paging;
                        // the stream carries on from what was applied.
                        self.inner
                            .last_seq
                            .fetch_max(if more { applied } else { last }, Ordering::AcqRel);
                        return Ok(true);
                    }
                    since = applied;
                }
            }
        }
    }

    async fn snapshot_page(&self, since: u64) -> Result<Snapshot, String> {
        let inner = &self.inner;
        let sep = if inner.endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{sep}since={since}", inner.endpoint);
        let headers = [("accept", "application/json")];
        let fetch = async {
            let resp = inner
                .http
                .get_streaming(&url, &inner.auth, &headers)
                .await
                .map_err(|e| format!("snapshot: {e}"))?;
            let status = resp.status;
            let body = resp
                .collect(inner.opts.max_snapshot_bytes)
                .await
                .map_err(|e| format!("snapshot: {e}"))?;
            Ok::<_, String>((status, body))
        };
        let (status, body) = tokio::time::timeout(inner.opts.request_timeout, fetch)
            .await
            .map_err(|_| "snapshot: timed out".to_owned())??;
        match status {
            200 => {}
            410 => return Ok(Snapshot::Resync),
            other => return Err(format!("snapshot: HTTP {other}")),
        }
        self.touch();
        let doc: Value =
            serde_json::from_slice(&body).map_err(|_| "snapshot: not JSON".to_owned())?;
        let events = doc
            .get("events")
            .and_then(Value::as_array)
            .ok_or("snapshot: no events array")?;
        let last = doc
            .get("last")
            .and_then(Value::as_u64)
            .ok_or("snapshot: no last")?;
        let more = doc.get("more").and_then(Value::as_bool).unwrap_or(false);
        let now = inner.opts.clock.now();
        for e in events.iter().filter_map(RevocationEvent::from_value) {
            self.apply(e, now);
        }
        Ok(Snapshot::Page { last, more })
    }

    async fn stream(&self) -> Ended {
        let inner = &self.inner;
        let resume = self.last_seq().to_string();
        let headers = [
            ("accept", "text/event-stream"),
            ("last-event-id", resume.as_str()),
        ];
        let open = inner
            .http
            .get_streaming(&inner.endpoint, &inner.auth, &headers);
        let mut resp = match tokio::time::timeout(inner.opts.request_timeout, open).await {
            Err(_) => return Ended::Failed("stream: timed out".into()),
            Ok(Err(e)) => return Ended::Failed(format!("stream: {e}")),
            Ok(Ok(resp)) => resp,
        };
        match resp.status {
            200 => {}
            410 => return Ended::Resync,
            other => return Ended::Failed(format!("stream: HTTP {other}")),
        }
        inner.connected.store(true, Ordering::Release);
        self.touch();
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        loop {
            let chunk = tokio::time::timeout(inner.opts.idle_timeout, resp.body.next_chunk());
            let chunk = match chunk.await {
                Err(_) => return Ended::Failed("stream: silent for too long".into()),
                Ok(Err(e)) => return Ended::Failed(format!("stream: {e}")),
                Ok(Ok(None)) => return Ended::Closed,
                Ok(Ok(Some(chunk))) => chunk,
            };
            self.touch();
            if let Err(e) = parser.push(&chunk, &mut events) {
                return Ended::Failed(format!("stream: {e}"));
            }
            let now = inner.opts.clock.now();
            for ev in events.drain(..) {
                if ev.event != "revocation" {
                    continue;
                }
                let Some(e) = RevocationEvent::from_json(ev.data.as_bytes()) else {
                    continue;
                };
                let last = self.last_seq();
                if e.seq > last.saturating_add(1) {
                    return Ended::Gap;
                }
                self.apply(e, now);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `d` scaled by a random factor between 0.75 and 1.25, so that many subscribers cut off at
/// once do not reconnect at once.
fn jitter(d: Duration) -> Duration {
    let [r] = keycard_os::random_bytes::<1>();
    d.mul_f64(0.75 + f64::from(r) / 510.0)
}

#[cfg(test)]
mod tests;
