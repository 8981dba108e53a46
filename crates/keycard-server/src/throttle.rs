//! Login throttling per account and per client IP (ASVS 6.3.1; OWASP Authentication cheat sheet).
//!
//! After `free` failures, each further failure locks the key for an exponentially growing time
//! (capped at 15 minutes); a success clears the account's counter. Locked requests get 429 with
//! `Retry-After` before any password hashing happens, so throttling also bounds CPU spent.
//! Counters live in this process's memory; several nodes each keep their own.

use std::collections::HashMap;
use std::sync::Mutex;

use keycard_protocol::UnixTime;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    locked_until: UnixTime,
    last: UnixTime,
}

/// Failure counters keyed by account or IP.
#[derive(Debug)]
pub struct Throttle {
    entries: Mutex<HashMap<String, Entry>>,
    account_free: u32,
    ip_free: u32,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            entries: Mutex::new(HashMap::new()),
            account_free: 5,
            ip_free: 20,
        }
    }
}

const MAX_LOCK_SECS: i64 = 900;

impl Throttle {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> R) -> R {
        match self.entries.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Seconds until the account or the IP may try again, if either is locked.
    pub fn retry_after(&self, account: &str, ip: &str, now: UnixTime) -> Option<i64> {
        self.with(|m| {
            [format!("a:{}", account.to_lowercase()), format!("i:{ip}")]
                .iter()
                .filter_map(|k| m.get(k))
                .map(|e| e.locked_until.secs() - now.secs())
                .filter(|s| *s > 0)
                .max()
        })
    }

    pub fn record_failure(&self, account: &str, ip: &str, now: UnixTime) {
        self.with(|m| {
            for (key, free) in [
                (format!("a:{}", account.to_lowercase()), self.account_free),
                (format!("i:{ip}"), self.ip_free),
            ] {
                let e = m.entry(key).or_insert(Entry {
                    failures: 0,
                    locked_until: UnixTime(0),
                    last: now,
                });
                e.failures += 1;
                e.last = now;
                if e.failures >= free {
                    let exp = (e.failures - free).min(10);
                    e.locked_until = now.plus((1i64 << exp).min(MAX_LOCK_SECS));
                }
            }
        })
    }

    pub fn record_success(&self, account: &str) {
        self.with(|m| m.remove(&format!("a:{}", account.to_lowercase())));
    }

    /// Drops entries idle for an hour.
    pub fn forget_old(&self, now: UnixTime) {
        self.with(|m| m.retain(|_, e| now.secs() - e.last.secs() < 3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asvs_6_3_1_account_locks_after_five_failures_and_backs_off() {
        let t = Throttle::default();
        let now = UnixTime(1000);
        for _ in 0..4 {
            t.record_failure("Alice", "1.2.3.4", now);
        }
        assert_eq!(t.retry_after("alice", "9.9.9.9", now), None);
        t.record_failure("alice", "1.2.3.4", now);
        assert_eq!(t.retry_after("ALICE", "9.9.9.9", now), Some(1));
        t.record_failure("alice", "1.2.3.4", now);
        assert_eq!(t.retry_after("alice", "9.9.9.9", now), Some(2));
        assert_eq!(t.retry_after("alice", "9.9.9.9", now.plus(2)), None);
        t.record_success("alice");
        assert_eq!(t.retry_after("alice", "9.9.9.9", now), None);
    }

    #[test]
    fn asvs_6_3_1_ip_locks_across_accounts() {
        let t = Throttle::default();
        let now = UnixTime(1000);
        for i in 0..20 {
            t.record_failure(&format!("user{i}"), "6.6.6.6", now);
        }
        assert_eq!(t.retry_after("fresh", "6.6.6.6", now), Some(1));
        assert_eq!(t.retry_after("fresh", "7.7.7.7", now), None);
    }
}
