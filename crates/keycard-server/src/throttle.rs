//! Login throttling (ASVS 6.3.1; OWASP Authentication cheat sheet; NIST 800-63B §5.2.2), and
//! the throttle on user-code entry at `/device` (RFC 8628 §5.1; [`reserve_code_entry`]).
//!
//! Every attempt is reserved in the store, atomically, before any password hashing, against
//! three counters; a locked attempt gets 429 with `Retry-After` and costs no hash:
//! - the account from this address: 5 free failures, then a lock that doubles up to 15 min;
//! - this address, over all accounts: 20 free failures (credential stuffing from one host);
//! - the account from anywhere: 50 free failures — but this lock is one that an address with no
//!   failures for the account still passes, so knowing a username is not enough to lock its
//!   owner out (the attacker's addresses lock themselves; the owner signs in from theirs).
//!
//! A success clears the account-from-this-address counter and takes back its own reservation on
//! the other two (only failures count there); their earlier failures stay: they measure the
//! attack, which one correct password from elsewhere does not end. Accounts are keyed by
//! `Username::folded`, so `Alice` and `alice` share counters as they share an account, and the
//! client address is the one `keycard-serve` established (trusted proxies honoured). The counters
//! live in the store, so every node sees the same ones.

use std::net::IpAddr;

use keycard_protocol::{UnixTime, Username};
use keycard_store::{Store, StoreError, ThrottleKey, ThrottleRule};

const MAX_LOCK_SECS: i64 = 900;

/// Lock time after `failures` failures when the first `free` are free.
pub(crate) fn backoff(failures: i64, free: i64) -> i64 {
    if failures < free {
        0
    } else {
        (1i64 << (failures - free).min(10)).min(MAX_LOCK_SECS)
    }
}

fn pair_policy(failures: i64) -> i64 {
    backoff(failures, 5)
}

fn address_policy(failures: i64) -> i64 {
    backoff(failures, 20)
}

fn account_policy(failures: i64) -> i64 {
    backoff(failures, 50)
}

/// The account as counters see it: the folded username, or the folded text typed when it is
/// not a valid username (it still counts, on its own key).
fn account(typed: &str) -> String {
    match Username::parse(typed) {
        Ok(u) => u.folded(),
        Err(_) => typed.to_lowercase(),
    }
}

fn pair_key(typed: &str, ip: &IpAddr) -> ThrottleKey {
    ThrottleKey::other('p', &format!("{ip} {}", account(typed)))
}

/// Reserves one attempt; `Some(seconds)` when it must wait instead.
pub(crate) async fn reserve<S: Store>(
    store: &S,
    typed: &str,
    ip: &IpAddr,
    now: UnixTime,
) -> Result<Option<i64>, StoreError> {
    let rules = [
        ThrottleRule {
            key: pair_key(typed, ip),
            policy: pair_policy,
            only_if_failed: None,
        },
        ThrottleRule {
            key: ThrottleKey::address(ip),
            policy: address_policy,
            only_if_failed: None,
        },
        ThrottleRule {
            key: ThrottleKey::account(&account(typed)),
            policy: account_policy,
            only_if_failed: Some(pair_key(typed, ip)),
        },
    ];
    store.reserve_login_attempt(&rules, now).await
}

/// A correct password from this address: its counter for the account starts again, and the
/// attempt it reserved on the address's and the account's counters is taken back (they count
/// failures, and this was none: twenty people signing in behind one NAT address must not lock
/// it). The failures before it stay on those two.
pub(crate) async fn succeeded<S: Store>(
    store: &S,
    typed: &str,
    ip: &IpAddr,
) -> Result<(), StoreError> {
    store.clear_login_failures(&pair_key(typed, ip)).await?;
    store
        .refund_login_attempt(&[
            ThrottleKey::address(ip),
            ThrottleKey::account(&account(typed)),
        ])
        .await
}

fn code_entry_browser_policy(failures: i64) -> i64 {
    backoff(failures, 5)
}

fn code_entry_address_policy(failures: i64) -> i64 {
    backoff(failures, 20)
}

/// The counters a user-code entry on the verification page is reserved against (RFC 8628
/// §5.1: user codes are short, so guessing is bounded here): this browser — its SSO session,
/// or its CSRF cookie before it signs in — with 5 free wrong codes, and this address with 20.
/// A right code is refunded ([`refund_code_entry`]), so only wrong ones count, and a right one
/// never erases the wrong ones before it.
fn code_entry_rules(browser: &str, ip: &IpAddr) -> [ThrottleRule; 2] {
    [
        ThrottleRule {
            key: ThrottleKey::other('d', &format!("b {browser}")),
            policy: code_entry_browser_policy,
            only_if_failed: None,
        },
        ThrottleRule {
            key: ThrottleKey::other('d', &format!("i {ip}")),
            policy: code_entry_address_policy,
            only_if_failed: None,
        },
    ]
}

/// Reserves one code entry; `Some(seconds)` when it must wait instead.
pub(crate) async fn reserve_code_entry<S: Store>(
    store: &S,
    browser: &str,
    ip: &IpAddr,
    now: UnixTime,
) -> Result<Option<i64>, StoreError> {
    store
        .reserve_login_attempt(&code_entry_rules(browser, ip), now)
        .await
}

/// The code entered was a live one: it does not count.
pub(crate) async fn refund_code_entry<S: Store>(
    store: &S,
    browser: &str,
    ip: &IpAddr,
) -> Result<(), StoreError> {
    let keys = code_entry_rules(browser, ip).map(|r| r.key);
    store.refund_login_attempt(&keys).await
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

    #[test]
    fn rfc8265_s3_3_throttles_count_one_account_whatever_its_case() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(pair_key("Alice", &ip), pair_key("alice", &ip));
        assert_eq!(pair_key("ＡＬＩＣＥ", &ip), pair_key("alice", &ip));
        assert_ne!(
            pair_key("alice", &ip),
            pair_key("alice", &"10.0.0.2".parse().unwrap())
        );
    }
}
