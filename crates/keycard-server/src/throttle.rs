//! Login throttling per account and per client IP (ASVS 6.3.1; OWASP Authentication cheat sheet).
//!
//! After a number of free failures (5 per account, 20 per IP), each further failure locks the
//! key for an exponentially growing time, capped at 15 minutes; a success clears the account's
//! counter. Locked requests get 429 with `Retry-After` before any password hashing happens, so
//! throttling also bounds the CPU an attacker can make us spend. The counters live in the store,
//! so every node sees the same ones.

use std::net::IpAddr;

use keycard_protocol::UnixTime;
use keycard_store::{Store, StoreError, ThrottleKey};

const MAX_LOCK_SECS: i64 = 900;

/// Lock time after `failures` failures when the first `free` are free.
pub(crate) fn backoff(failures: i64, free: i64) -> i64 {
    if failures < free {
        0
    } else {
        (1i64 << (failures - free).min(10)).min(MAX_LOCK_SECS)
    }
}

fn account_policy(failures: i64) -> i64 {
    backoff(failures, 5)
}

fn ip_policy(failures: i64) -> i64 {
    backoff(failures, 20)
}

fn account_key(account: &str) -> ThrottleKey {
    ThrottleKey::account(&account.to_lowercase())
}

/// Seconds until the account or the IP may try again, if either is locked.
pub(crate) async fn retry_after<S: Store>(
    store: &S,
    account: &str,
    ip: &IpAddr,
    now: UnixTime,
) -> Result<Option<i64>, StoreError> {
    let secs = store
        .login_lock(&account_key(account), &ThrottleKey::address(ip), now)
        .await?;
    Ok((secs > 0).then_some(secs))
}

pub(crate) async fn record_failure<S: Store>(
    store: &S,
    account: &str,
    ip: &IpAddr,
    now: UnixTime,
) -> Result<(), StoreError> {
    store
        .record_login_failure(&account_key(account), now, account_policy)
        .await?;
    store
        .record_login_failure(&ThrottleKey::address(ip), now, ip_policy)
        .await
}

pub(crate) async fn record_success<S: Store>(store: &S, account: &str) -> Result<(), StoreError> {
    store.clear_login_failures(&account_key(account)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asvs_6_3_1_backoff_doubles_after_the_free_failures_and_caps() {
        let got: Vec<i64> = (0..8).map(|f| backoff(f, 5)).collect();
        assert_eq!(got, vec![0, 0, 0, 0, 0, 1, 2, 4]);
        assert_eq!(backoff(100, 5), MAX_LOCK_SECS);
        assert_eq!(backoff(19, 20), 0);
        assert_eq!(backoff(20, 20), 1);
    }
}
