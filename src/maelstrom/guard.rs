//! What a panic does to the node's long-lived threads, and the hook that injects one in tests.
//!
//! Every long-lived thread either survives a panic in its work or ends the process loudly; none
//! dies quietly and leaves the node hung:
//!
//! | thread | on a panic |
//! |---|---|
//! | reader, worker: handling one line ([`Node::handle`](super::Node::handle)) | caught; that line gets no reply; the thread goes on |
//! | timer: one tick (session expiry, the cluster's retries and replication) | caught and logged; the next tick runs as usual |
//! | reader: reading and dispatching | the process ends with a message ([`or_exit`]) |
//! | worker: its queue and its submissions | the process ends with a message (its shard's count of lines in flight would be wrong) |
//! | output: a write to stdout (the writer thread's or a direct one) | the process ends with a message (a line may be half written) |
//!
//! # Injected panics
//!
//! A test sets `KGROUPS_INJECT_PANIC` to a comma-separated list of the places above (`handle`,
//! `timer`, `reader`, `worker`, `output`); the first pass through each listed place panics, once.
//! The variable is read once, on the first check; unset (as always outside the tests), a check is
//! one load of a `OnceLock` and an empty scan.

use crate::loom::{AtomicBool, OnceLock, Ordering};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The exit code of a process ended by a panic in one of its threads (as Rust's own).
pub const PANIC_EXIT: i32 = 101;

/// Runs `work`, the body of long-lived thread `what`; if it panics, ends the process with a
/// message on stderr naming the thread, and [`PANIC_EXIT`].
pub(crate) fn or_exit<R>(what: &str, work: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(r) => r,
        Err(p) => {
            let msg = message(&*p);
            tracing::error!("{what} panicked: {msg}");
            eprintln!("kgroups: {what} panicked ({msg}); the node cannot go on safely, exiting");
            std::process::exit(PANIC_EXIT)
        }
    }
}

/// The text of a panic's payload.
pub(crate) fn message(p: &(dyn Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-text payload")
}

/// The places listed in `KGROUPS_INJECT_PANIC`, each with whether it has fired.
fn armed() -> &'static [(Box<str>, AtomicBool)] {
    static ARMED: OnceLock<Vec<(Box<str>, AtomicBool)>> = OnceLock::new();
    ARMED.get_or_init(|| {
        std::env::var("KGROUPS_INJECT_PANIC")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| (s.into(), AtomicBool::new(false)))
            .collect()
    })
}

/// Panics the first time it is called at `place`, if the test armed that place (see the module
/// docs); otherwise does nothing.
#[inline]
pub(crate) fn inject(place: &str) {
    let armed = armed();
    if armed.is_empty() {
        return;
    }
    if let Some((_, fired)) = armed.iter().find(|(p, _)| **p == *place) {
        // Relaxed: only the flag's own value matters (one panic per place); it orders nothing.
        if !fired.swap(true, Ordering::Relaxed) {
            panic!("a panic injected at {place} (KGROUPS_INJECT_PANIC)");
        }
    }
}
