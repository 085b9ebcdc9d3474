//! Time, passed in by the caller.
//!
//! The engine never reads a clock for its decisions: every operation that depends on time (session
//! expiry) takes `now` as milliseconds from an arbitrary epoch. The node passes
//! [`MonotonicClock::now`]; tests pass whatever they like and never sleep. The one exception is a
//! record's timestamp when its sender gave none ([`wall_ms`]): it is data, not a decision.

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

/// The wall clock in milliseconds since the Unix epoch, from the kernel's coarse real-time clock
/// (`CLOCK_REALTIME_COARSE`: updated every tick, a few ns to read): the timestamp of a record
/// whose sender gave none, as Kafka's LogAppendTime. Falls back to `SystemTime` if the coarse
/// clock is unavailable.
pub fn wall_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY:
    // 1. `ts` is a valid, writable `timespec`; `clock_gettime` writes only it.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
        return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(all(test, not(loom)))]
mod tests {
    #[test]
    fn wall_ms_is_near_the_system_clock() {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let coarse = super::wall_ms();
        assert!((coarse - system).abs() < 1_000, "{coarse} vs {system}");
    }
}
