//! Time, passed in by the caller.
//!
//! The engine never reads a clock itself: every operation that depends on time (session expiry) takes
//! `now` as milliseconds from an arbitrary epoch. The node passes [`MonotonicClock::now`]; tests pass
//! whatever they like and never sleep.

use std::time::Instant;

/// Milliseconds since an arbitrary, fixed epoch.
pub type Millis = u64;

/// A monotonic clock in milliseconds, counted from the moment it was created.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    start: Instant,
}

impl MonotonicClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        MonotonicClock {
            start: Instant::now(),
        }
    }

    /// Milliseconds since this clock was created.
    pub fn now(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}
