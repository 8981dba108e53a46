//! The node's view of the revocation log (a Keycard extension; ARCHITECTURE.md "Revocation
//! feed"): one poller per node reads what was appended to the store's log — by this node, by
//! another node on the same database, or by an admin command — and hands each new event to
//! every stream the node serves.
//!
//! [`FeedHub::spawn`] starts the poller; [`FeedHub::subscribe`] gives a stream its receiver and
//! the sequence number the hub has reached. Polling the store (every
//! `Settings::feed_poll`, 250 ms by default) is the notification channel: it works the same on
//! SQLite and PostgreSQL, needs no LISTEN/NOTIFY, and bounds how late another node's
//! revocation reaches this node's streams.
//!
//! The hub also gives introspection its [`Stamp`] (`verified`): what the log and this node had
//! revoked, or nothing when the poller has not read the log within `4 × feed_poll`.
//!
//! Not here: who may read the feed and the wire format (`routes::revocations`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keycard_protocol::revocation::RevocationEvent;
use keycard_store::Store;
use tokio::sync::broadcast;

use crate::app::App;
use crate::verified::Stamp;

/// How many events a slow stream may fall behind before it re-reads the store.
const BACKLOG: usize = 4096;

/// The node's fan-out of new revocation events.
#[derive(Debug)]
pub(crate) struct FeedHub {
    tx: broadcast::Sender<Arc<RevocationEvent>>,
    /// The highest sequence number handed to the streams.
    seen: AtomicU64,
    /// Set when the server begins to shut down: every stream then ends, so a graceful
    /// shutdown does not wait for subscribers that would never leave on their own (they
    /// reconnect, with `Last-Event-ID`, to another node or to this one once it is back).
    closing: tokio::sync::watch::Sender<bool>,
    /// How many revocations this node has written (see [`FeedHub::wrote`]).
    local: AtomicU64,
    /// When the poller last read the log successfully.
    last_read: Mutex<Option<Instant>>,
    /// How old that read may be for [`FeedHub::stamp`] to vouch for the view.
    fresh_for: Duration,
}

impl FeedHub {
    /// A hub that starts at `log_end`, the log's highest sequence number read just now (the
    /// poller goes on from there; a hub that began at its own first poll instead silently
    /// skipped whatever was appended before that poll, and a stream opened meanwhile waited for
    /// it in vain).
    pub(crate) fn new(poll: Duration, log_end: u64) -> FeedHub {
        FeedHub {
            tx: broadcast::channel(BACKLOG).0,
            seen: AtomicU64::new(log_end),
            closing: tokio::sync::watch::channel(false).0,
            local: AtomicU64::new(0),
            last_read: Mutex::new(Some(Instant::now())),
            fresh_for: poll.saturating_mul(4),
        }
    }

    /// Called after every revocation this node writes (whether or not the write reported
    /// success: it may have committed), so its own introspection answers change at once
    /// rather than at the next poll.
    pub(crate) fn wrote(&self) {
        self.local.fetch_add(1, Ordering::AcqRel);
    }

    /// What has been revoked, as far as this node knows; `None` when the poller's last
    /// successful read of the log is too old to vouch for it.
    pub(crate) fn stamp(&self) -> Option<Stamp> {
        let stamp = Stamp {
            seen: self.seen.load(Ordering::Acquire),
            local: self.local.load(Ordering::Acquire),
        };
        let last = *self.last_read.lock().ok()?;
        (last?.elapsed() < self.fresh_for).then_some(stamp)
    }

    /// Ends every stream, now and from now on.
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }

    /// What a stream watches to end when the server shuts down.
    pub(crate) fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// A receiver of the events after [`FeedHub::seen`] (read after subscribing, so nothing
    /// between the two is missed; a stream drops what it already sent by `seq`).
    pub(crate) fn subscribe(&self) -> (broadcast::Receiver<Arc<RevocationEvent>>, u64) {
        let rx = self.tx.subscribe();
        (rx, self.seen.load(Ordering::Acquire))
    }

    /// The highest sequence number handed to the streams.
    pub(crate) fn seen(&self) -> u64 {
        self.seen.load(Ordering::Acquire)
    }

    /// Starts the poller. It goes on from where the log ended when the hub was made
    /// ([`FeedHub::new`]'s `log_end`), so an event appended before its first read still reaches
    /// the streams; older ones the streams read from the store themselves.
    pub(crate) fn spawn<S: Store>(app: &Arc<App<S>>) {
        let a = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(a.settings.feed_poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let hub = &a.feed;
            loop {
                tick.tick().await;
                let since = hub.seen.load(Ordering::Acquire);
                let page = match a.store.revocations_since(since, 1000).await {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the revocation log failed");
                        continue;
                    }
                };
                for e in page.events {
                    let seq = e.seq;
                    // No receiver is not an error: nobody is streaming right now.
                    let _ = hub.tx.send(Arc::new(e));
                    hub.seen.store(seq, Ordering::Release);
                }
                if let Ok(mut last) = hub.last_read.lock() {
                    *last = Some(Instant::now());
                }
            }
        });
    }
}
