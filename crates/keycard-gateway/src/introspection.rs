//! Introspection for `introspect` routes (RFC 7662 §2): single flight per token, and an
//! optional short cache keyed by the token's SHA-256, bounded by the token's `exp` and evicted
//! by the revocation feed.
//!
//! [`IntrospectionCache::introspect`] answers from the cache when it can; otherwise the first
//! caller for a token asks the authorization server while concurrent callers with the same
//! token wait for that one answer (a burst of one client's requests costs one introspection).
//! [`IntrospectionCache::evict`] drops the answers a revocation event covers (by `jti`, the
//! grant inside it, `sub` or `client_id`); [`IntrospectionCache::clear`] drops everything,
//! for the events that cannot be matched against an answer (`kid`) or were missed.
//!
//! Invariants: the raw token is never stored or logged, only its digest; an active answer is
//! never served past its `exp` nor longer than the TTL; the cache holds at most its capacity
//! (when full, expired entries go first, and new answers are not cached until there is room).
//! Failures are never cached.
//!
//! Not here: the HTTP exchange (`keycard_validate::Introspector`), what the answer allows
//! (`policy`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keycard_protocol::Clock;
use keycard_protocol::UnixTime;
use keycard_protocol::claims::jti_grant;
use keycard_validate::feed::{RevocationEvent, RevocationKind};
use keycard_validate::{Introspection, Introspector};
use tokio::sync::OnceCell;

use crate::metrics::Metrics;

/// A failed introspection (not an inactive token), as a message for the log.
pub type Failure = String;

type Outcome = Result<Arc<Introspection>, Failure>;

/// A cached answer and the time it stops being served.
type Entry = (Arc<Introspection>, UnixTime);

/// The cache and the single-flight table.
pub struct IntrospectionCache {
    ttl: Option<i64>,
    capacity: usize,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    inflight: Mutex<HashMap<[u8; 32], Arc<OnceCell<Outcome>>>>,
}

impl std::fmt::Debug for IntrospectionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl IntrospectionCache {
    /// A cache keeping answers for `ttl` (`None`: single flight only, nothing kept).
    pub fn new(
        ttl: Option<Duration>,
        capacity: usize,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> IntrospectionCache {
        IntrospectionCache {
            ttl: ttl.map(|t| i64::try_from(t.as_secs()).unwrap_or(i64::MAX)),
            capacity,
            clock,
            metrics,
            entries: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// The answer for `token`: cached, shared with a concurrent caller, or asked for.
    pub async fn introspect(&self, introspector: &Introspector, token: &str) -> Outcome {
        let key = keycard_validate::token_digest(token);
        if self.ttl.is_some() {
            let now = self.clock.now();
            if let Some((answer, until)) = lock(&self.entries).get(&key)
                && now < *until
            {
                self.metrics
                    .introspection_cache_hits
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(answer.clone());
            }
            self.metrics
                .introspection_cache_misses
                .fetch_add(1, Ordering::Relaxed);
        }
        let cell = lock(&self.inflight).entry(key).or_default().clone();
        let outcome = cell
            .get_or_init(|| async {
                let outcome = introspector
                    .introspect(token)
                    .await
                    .map(Arc::new)
                    .map_err(|e| e.to_string());
                if let Ok(answer) = &outcome {
                    self.put(key, answer.clone());
                }
                outcome
            })
            .await
            .clone();
        let mut inflight = lock(&self.inflight);
        if inflight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            inflight.remove(&key);
        }
        outcome
    }

    fn put(&self, key: [u8; 32], answer: Arc<Introspection>) {
        let Some(ttl) = self.ttl else { return };
        let now = self.clock.now();
        let mut until = now.plus(ttl);
        // An active answer without `exp` is kept for the TTL only.
        if answer.active
            && let Some(exp) = answer.exp
        {
            until = until.min(exp);
        }
        if until <= now {
            return;
        }
        let mut entries = lock(&self.entries);
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, u)| now < *u);
        }
        if entries.len() < self.capacity {
            entries.insert(key, (answer, until));
        }
    }

    /// Drops the answers a revocation event covers.
    pub fn evict(&self, e: &RevocationEvent) {
        let covered = |a: &Introspection| match e.kind {
            RevocationKind::Jti => a.jti.as_ref().is_some_and(|j| j.as_str() == e.value),
            RevocationKind::Grant => a
                .jti
                .as_ref()
                .and_then(jti_grant)
                .is_some_and(|g| g.as_str() == e.value),
            RevocationKind::Sub => a.sub.as_ref().is_some_and(|s| s.as_str() == e.value),
            RevocationKind::Client => a.client_id.as_ref().is_some_and(|c| c.as_str() == e.value),
            // Answers do not name their key; `kid` events clear the whole cache instead.
            _ => false,
        };
        lock(&self.entries).retain(|_, (a, _)| !covered(a));
    }

    /// Drops every answer.
    pub fn clear(&self) {
        lock(&self.entries).clear();
    }

    /// How many answers are cached.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Whether no answer is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
