//! The time source, injectable so tests control expiry and cache lifetimes.

/// A source of the current time in Unix seconds.
///
/// Any `Fn() -> u64 + Send + Sync` closure is a clock, which is handy in tests:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use keycard_validate::Clock;
///
/// let t = Arc::new(AtomicU64::new(1_700_000_000));
/// let clock = { let t = t.clone(); move || t.load(Ordering::SeqCst) };
/// t.fetch_add(61, Ordering::SeqCst);
/// assert_eq!(clock.now(), 1_700_000_061);
/// ```
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

impl<F> Clock for F
where
    F: Fn() -> u64 + Send + Sync,
{
    fn now(&self) -> u64 {
        self()
    }
}

/// The system clock; the only place this crate reads the real time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one sanctioned read of the system clock.
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}
