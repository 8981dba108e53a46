//! Time as a value (RFC 7519 §2 NumericDate): [`UnixTime`], and the [`Clock`] trait every role
//! reads the current time through.
//!
//! This crate never reads the clock itself: rules take `now: UnixTime` as a parameter. The
//! [`Clock`] trait lives here so that the server, the validation library, the gateway and the
//! clients share one definition; the system clock is implemented in `keycard-os`, and
//! [`ManualClock`] (pure, an atomic counter) serves tests everywhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch. Time is always a parameter, never read inside this crate.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(pub i64);

impl UnixTime {
    pub fn plus(self, secs: i64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }

    pub fn secs(self) -> i64 {
        self.0
    }

    /// Seconds from `earlier` to `self`, zero when `earlier` is later.
    pub fn since(self, earlier: UnixTime) -> i64 {
        self.0.saturating_sub(earlier.0).max(0)
    }

    /// The later of the two.
    pub fn max(self, other: UnixTime) -> UnixTime {
        UnixTime(self.0.max(other.0))
    }

    /// The earlier of the two.
    pub fn min(self, other: UnixTime) -> UnixTime {
        UnixTime(self.0.min(other.0))
    }
}

/// A source of the current time. Handlers, validators and clients read `now` from one, so
/// tests can move it; any `Fn() -> UnixTime` closure is a clock.
///
/// ```
/// use keycard_protocol::{Clock, UnixTime};
/// let clock = || UnixTime(1_700_000_000);
/// assert_eq!(clock.now().secs(), 1_700_000_000);
/// ```
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixTime;
}

impl<F> Clock for F
where
    F: Fn() -> UnixTime + Send + Sync + 'static,
{
    fn now(&self) -> UnixTime {
        self()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> UnixTime {
        (**self).now()
    }
}

/// A clock that tests set and advance.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: i64) -> Self {
        ManualClock(AtomicI64::new(start))
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn set(&self, secs: i64) {
        self.0.store(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}
