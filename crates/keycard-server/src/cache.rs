//! A small read-through cache with a time-to-live, for clients and APIs.
//!
//! The token endpoint reads the client (and often an API) on every request; serving those from
//! memory keeps the store off the hot path. Entries expire after the TTL (1 s by default), which
//! bounds how long a change made by the CLI or another node takes to be seen — the polling
//! fallback that needs no notification channel. Misses are cached too, so a flood of unknown
//! ids costs one store read per id per TTL; the map is cleared when it reaches its size cap.
//!
//! Loads are single flight per key: when an entry runs out under load, one request reads the
//! store and the others wait for its answer, instead of all of them going to the store at once
//! (measured: with PostgreSQL stalled for 2–3 s, every request waiting on an expired client
//! went to the pool together and some timed out).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// A load in progress, shared by everyone who asked for the key meanwhile.
type Inflight<V> = Arc<OnceCell<Option<V>>>;

/// Cached values by string key.
#[derive(Debug)]
pub(crate) struct TtlCache<V> {
    ttl: Duration,
    max_entries: usize,
    map: RwLock<HashMap<String, (Instant, Option<V>)>>,
    loading: Mutex<HashMap<String, Inflight<V>>>,
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new(ttl: Duration, max_entries: usize) -> Self {
        TtlCache {
            ttl,
            max_entries,
            map: RwLock::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the cached value, or loads (once for all concurrent callers), caches and
    /// returns it. A failed load is not shared: the next waiter tries itself.
    ///
    /// The load is made and boxed only on a miss: a store future held inline would make the
    /// future of every request that authenticates a client as large as the store's, and that
    /// future is moved by value on its way into the runtime, hit or miss.
    pub(crate) async fn get_or_load<E, L, F>(&self, key: &str, load: L) -> Result<Option<V>, E>
    where
        L: FnOnce() -> F,
        F: Future<Output = Result<Option<V>, E>>,
    {
        if self.ttl.is_zero() {
            return Box::pin(load()).await;
        }
        if let Ok(m) = self.map.read()
            && let Some((at, v)) = m.get(key)
            && at.elapsed() < self.ttl
        {
            return Ok(v.clone());
        }
        let cell = {
            let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
            loading.entry(key.to_owned()).or_default().clone()
        };
        let started = Instant::now();
        let mut loaded_here = false;
        let result = cell
            .get_or_try_init(|| {
                loaded_here = true;
                Box::pin(load())
            })
            .await
            .cloned();
        // Whoever loaded caches the value before the load stops being shared, so no caller
        // in between finds neither.
        if loaded_here
            && let Ok(v) = &result
            && let Ok(mut m) = self.map.write()
        {
            if m.len() >= self.max_entries {
                m.clear();
            }
            m.insert(key.to_owned(), (started, v.clone()));
        }
        if let Ok(mut loading) = self.loading.lock()
            && loading.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell))
        {
            loading.remove(key);
        }
        result
    }

    /// Drops one entry. Only tests need it: production relies on the TTL alone.
    #[cfg(test)]
    pub(crate) fn invalidate(&self, key: &str) {
        if let Ok(mut m) = self.map.write() {
            m.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_expire_after_the_ttl() {
        let c = TtlCache::new(Duration::from_millis(50), 10);
        let v: Result<_, ()> = c.get_or_load("a", || async { Ok(Some(1)) }).await;
        assert_eq!(v, Ok(Some(1)));
        let v: Result<_, ()> = c.get_or_load("a", || async { Ok(Some(2)) }).await;
        assert_eq!(v, Ok(Some(1)), "served from the cache");
        tokio::time::sleep(Duration::from_millis(60)).await;
        let v: Result<_, ()> = c.get_or_load("a", || async { Ok(Some(3)) }).await;
        assert_eq!(v, Ok(Some(3)), "reloaded after the ttl");
        c.invalidate("a");
        let v: Result<_, ()> = c.get_or_load("a", || async { Ok(None) }).await;
        assert_eq!(v, Ok(None));
    }

    /// Concurrent misses on one key read the store once; a failed load is not shared.
    #[tokio::test]
    async fn concurrent_misses_load_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let c = TtlCache::new(Duration::from_secs(60), 10);
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, ()>(Some(7))
        };
        let all = futures_util::future::join_all((0..10).map(|_| c.get_or_load("k", load))).await;
        assert!(all.iter().all(|v| *v == Ok(Some(7))), "{all:?}");
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        let failed: Result<Option<i32>, &str> = c.get_or_load("e", || async { Err("down") }).await;
        assert_eq!(failed, Err("down"));
        let v: Result<_, &str> = c.get_or_load("e", || async { Ok(Some(1)) }).await;
        assert_eq!(v, Ok(Some(1)));
    }
}
