//! The calling thread's CPU time. Self-contained (std and libc only), so that the criterion benches
//! include this very file (`#[path]`) rather than a copy.

use std::time::Duration;

/// The calling thread's CPU time (user and system), from `CLOCK_THREAD_CPUTIME_ID`.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: 1. `ts` is a valid, writable `timespec`; 2. the clock id is a constant Linux knows.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
