//! The two inputs Keycard's rules take as parameters and never read themselves: the system
//! clock ([`SystemClock`]) and the operating system's random generator ([`random_bytes`],
//! [`new_secret`], [`new_id`]).
//!
//! Every role uses this crate — the server, the validation library, the gateway, the BFF, the
//! CLI and the test kit — so fresh secrets and identifiers are made one way everywhere: 256-bit
//! secrets from aws-lc's CSRNG as base64url, 128-bit identifiers as hex.
//!
//! Invariants: this crate and `keycard-jose`'s ECDSA nonces are the only places randomness
//! enters Keycard; [`SystemClock`] is the only reader of the system time (`clippy.toml`
//! disallows `SystemTime::now` everywhere else).

use keycard_protocol::{Clock, RandomId, SECRET_BYTES, Secret, SecretKind, UnixTime};

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one sanctioned read of the system clock.
    fn now(&self) -> UnixTime {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        UnixTime(secs)
    }
}

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // aws-lc's RNG fails only if the OS has no entropy source, which is not a state a program
    // handing out secrets can run in; an all-zero buffer would be worse than stopping.
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        std::process::abort();
    }
    b
}

/// A fresh 256-bit secret of kind `K` (a code, a refresh token, a session id, ...).
pub fn new_secret<K: SecretKind>() -> Secret<K> {
    Secret::from_random(&random_bytes::<SECRET_BYTES>())
}

/// A fresh random identifier (not a secret) of an id type: 128 bits as 32 hex digits.
///
/// ```
/// let g: keycard_protocol::GrantId = keycard_os::new_id();
/// assert_eq!(g.as_str().len(), 32);
/// ```
pub fn new_id<T: RandomId>() -> T {
    T::from_random(&random_bytes::<16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_are_fresh_and_well_formed() {
        let a: keycard_protocol::GrantId = new_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_id::<keycard_protocol::GrantId>());
        let s: keycard_protocol::RefreshToken = new_secret();
        assert_eq!(s.secret().len(), 43);
        assert!(!s.matches(&new_secret()));
    }

    #[test]
    fn system_clock_is_after_2026() {
        assert!(SystemClock.now().secs() > 1_767_225_600);
    }
}
