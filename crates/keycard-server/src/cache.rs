//! A small read-through cache with a time-to-live, for clients and APIs.
//!
//! The token endpoint reads the client (and often an API) on every request; serving those from
//! memory keeps the store off the hot path. Entries expire after the TTL (1 s by default), which
//! bounds how long a change made by the CLI or another node takes to be seen — the polling
//! fallback that needs no notification channel. Misses are cached too, so a flood of unknown
//! ids costs one store read per id per TTL; the map is cleared when it reaches its size cap.

use std::collections::HashMap;
use std::future::Future;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Cached values by string key.
#[derive(Debug)]
pub(crate) struct TtlCache<V> {
    ttl: Duration,
    max_entries: usize,
    map: RwLock<HashMap<String, (Instant, Option<V>)>>,
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new(ttl: Duration, max_entries: usize) -> Self {
        TtlCache {
            ttl,
            max_entries,
            map: RwLock::new(HashMap::new()),
        }
    }

    /// Returns the cached value, or loads, caches and returns it.
    pub(crate) async fn get_or_load<E, F>(&self, key: &str, load: F) -> Result<Option<V>, E>
    where
        F: Future<Output = Result<Option<V>, E>>,
    {
        if self.ttl.is_zero() {
            return load.await;
        }
        let now = Instant::now();
        if let Ok(m) = self.map.read()
            && let Some((at, v)) = m.get(key)
            && now.duration_since(*at) < self.ttl
        {
            return Ok(v.clone());
        }
        let v = load.await?;
        if let Ok(mut m) = self.map.write() {
            if m.len() >= self.max_entries {
                m.clear();
            }
            m.insert(key.to_owned(), (now, v.clone()));
        }
        Ok(v)
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
        let v: Result<_, ()> = c.get_or_load("a", async { Ok(Some(1)) }).await;
        assert_eq!(v, Ok(Some(1)));
        let v: Result<_, ()> = c.get_or_load("a", async { Ok(Some(2)) }).await;
        assert_eq!(v, Ok(Some(1)), "served from the cache");
        tokio::time::sleep(Duration::from_millis(60)).await;
        let v: Result<_, ()> = c.get_or_load("a", async { Ok(Some(3)) }).await;
        assert_eq!(v, Ok(Some(3)), "reloaded after the ttl");
        c.invalidate("a");
        let v: Result<_, ()> = c.get_or_load("a", async { Ok(None) }).await;
        assert_eq!(v, Ok(None));
    }
}
