//! The lab's synchronization primitives: std's (the lab is not loom-modeled), and a lock that
//! outlives a panicking holder.

pub(crate) use arc_swap::ArcSwap;
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Locks `m`, and takes its guard even if a thread panicked while holding it.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
