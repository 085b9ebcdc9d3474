//! The lock-free append log that backs a partition.
//!
//! Contract:
//! - [`Log::append`] gives dense offsets 0, 1, 2, … and returns once the record is *published*
//!   (readable by every reader), so a record acknowledged to a client is readable at once.
//! - Readers see only a contiguous published prefix, `0..end()`: a read never returns offset n while an
//!   offset below n could still appear.
//! - Append and read take no lock. Record addresses are stable for the life of the log.
//! - [`Publish::publish`] runs exactly once per record, in strictly increasing offset order, never
//!   concurrently, before the watermark moves past the record.
//!
//! # Layout
//!
//! Records live in lazily allocated buckets (`log/buckets.rs`) of 32, 64, 128, … slots that never move
//! before the log is dropped, which is what keeps addresses stable. Buckets are zeroed allocations,
//! so the pages of a large bucket cost memory (RSS) only once records are written into them. The
//! `ready` flags live in a parallel array of one-byte flags, so a record costs `size_of::<T>() + 1`
//! bytes (33 for a partition's 32-byte record) and records pack densely into cache lines.
//!
//! # Appending and publishing
//!
//! An append (1) reserves an offset with one `fetch_add` on `reserved`, (2) writes its slot and sets
//! the slot's `ready` flag, (3) *notifies* by incrementing `pending`. The appender whose increment
//! found `pending == 0` becomes the *publisher*: it walks `end` forward over every contiguous ready
//! slot, calling [`Publish::publish`] on each, stores the new `end`, and then tries to hand the role
//! back with `compare_exchange(seen, 0)` on `pending`, where `seen` is the last value of `pending` it
//! read. If another appender notified meanwhile the exchange fails, the publisher reads the new count
//! and walks again. (4) An appender whose record is still above `end` waits for it: it spins briefly,
//! then yields. This is a *combining* publisher: one thread publishes for many, and only one thread at
//! a time ever runs `publish`.
//!
//! An append costs three uncontended RMWs. A *ticket* variant (each appender waits until
//! `end == offset`, then publishes its own record: one RMW) measured within noise of this design on
//! one thread, as an append's cost is dominated by writing fresh memory, and it hands every record
//! from thread to thread in offset order, so one preempted appender stalls all later ones even when
//! their records are written. The combining design publishes every written record it can reach.
//!
//! # Orderings
//!
//! - `reserved.fetch_add(1, Relaxed)`: only the atomicity of the RMW matters (each offset is handed
//!   out once, densely); no data is published through `reserved`.
//! - Slot write, then `ready.store(true, Release)`: pairs with the publisher's `ready.load(Acquire)`,
//!   so the publisher (and, through `end`, every reader) sees the record fully written.
//! - `pending` is only ever modified by RMWs (`fetch_add(1, AcqRel)` from appenders,
//!   `compare_exchange(seen, 0, AcqRel, Acquire)` from the publisher), so its modification order is
//!   one chain of RMWs, every one of which is a release and acquire. Hence:
//!   * Whoever reads a value of `pending` (by an RMW or by the failed exchange, Acquire) synchronizes
//!     with every increment before it in the chain, and so sees the `ready` flags those appenders set
//!     before incrementing.
//!   * *Mutual exclusion of the publisher role*: the role is held from an increment that read 0 to the
//!     successful exchange that writes 0. Between those two, `pending > 0`, so no other increment
//!     reads 0. Role hand-offs are ordered: the next holder's increment reads the 0 written by the
//!     previous holder's successful exchange (Release), or a later value in the chain, and so
//!     synchronizes with it. So `publish` calls never overlap, and the publisher keeps its position
//!     in a plain cell, `cursor`, that only the role holder touches (loom checks this exclusivity).
//!     The publisher never loads `end`, it only stores it.
//!   * *No lost publication*: let appender A increment `pending` after setting its `ready` flag. If
//!     A's increment reads 0, A publishes. Otherwise some publisher P holds the role and has not yet
//!     written 0. P can only leave by an exchange that expects exactly the value it last read; A's
//!     increment changed the value (the count only grows between two resets, so there is no ABA),
//!     so P's exchange fails until P has read a value that includes A's increment, and P's walk that
//!     follows that read sees A's `ready` flag. P's walk stops only at a slot that is not ready; that
//!     slot's appender has not yet notified, and when it does, the same argument applies to it, and
//!     the walk it causes continues over A's slot. So every record is published once every appender
//!     below it has finished step (3).
//! - `end.store(Release)` by the publisher, after its `publish` calls, pairs with
//!   `end.load(Acquire)` in readers ([`Log::end`], [`Log::get`], [`Log::read`]) and in waiting
//!   appenders: a reader that sees `end = e` sees every record below `e` and every effect of `publish`
//!   for them (the partition's key index relies on this).
//! - Buckets: see `log/buckets.rs`'s Orderings. A bucket is installed before the slot in it is written,
//!   so anyone who synchronized with that write finds the bucket.

mod buckets;

pub(crate) use buckets::{Buckets, Zeroable};

use crate::loom::{spin_loop, yield_now, AtomicBool, AtomicU64, Ordering, UnsafeCell};
use crossbeam_utils::CachePadded;
use std::mem::MaybeUninit;

/// A hook run exactly once per record, in offset order, by whichever thread publishes it, before the
/// record becomes visible to readers. A partition uses it to index records by key.
pub trait Publish {
    /// Called once for the record at `offset`, in strictly increasing offset order, never concurrently.
    fn publish(&self, _offset: u64) {}
}

impl Publish for u64 {}

/// log2 of the slot count of the first bucket of a [`Log`].
#[cfg(not(loom))]
const LOG_SHIFT: u32 = 5;
/// Under loom, tiny buckets (1, 2, 4, … slots) so that models with a handful of appends cross bucket
/// boundaries and race on bucket installation.
#[cfg(loom)]
const LOG_SHIFT: u32 = 0;

/// Bucket count of a [`Log`]: enough for `2^64 - 2^LOG_SHIFT` records.
#[cfg(not(loom))]
const LOG_BUCKETS: usize = 64 - LOG_SHIFT as usize;
#[cfg(loom)]
const LOG_BUCKETS: usize = 8;

/// How many times a waiting appender spins before it starts yielding its time slice.
const SPINS: u32 = 64;

/// A record's `ready` flag: set (Release) once the record is written; never cleared.
struct Ready(AtomicBool);

// SAFETY:
// 1. Outside loom, a zeroed std `AtomicBool` is a valid `false`, which is what `fresh` returns; it
//    has no drop glue and is one byte.
unsafe impl Zeroable for Ready {
    fn fresh() -> Self {
        Ready(AtomicBool::new(false))
    }
}

/// A record's storage: written once by its appender, then only read.
struct Cell<T>(UnsafeCell<MaybeUninit<T>>);

// SAFETY:
// 1. Outside loom, our `UnsafeCell` is a `core::cell::UnsafeCell` wrapper and `MaybeUninit<T>` has
//    no validity requirement, so zeroes are a valid (uninitialized) value, as `fresh` returns;
//    `MaybeUninit` has no drop glue. `T` is not zero-sized (checked in `Log::new`).
unsafe impl<T> Zeroable for Cell<T> {
    fn fresh() -> Self {
        Cell(UnsafeCell::new(MaybeUninit::uninit()))
    }
}

/// The publisher's output, on one cache line: both fields are written only by the publisher.
struct Watermark {
    /// The high watermark: every offset below it is published.
    end: AtomicU64,
    /// The publisher's own copy of `end`, read and written only by the holder of the publisher role.
    /// Keeping it apart from `end` means the publisher never loads `end`; readers alone do.
    cursor: UnsafeCell<u64>,
}

/// A lock-free, append-only log of `T`.
pub struct Log<T> {
    /// The next offset to hand out.
    reserved: CachePadded<AtomicU64>,
    /// Notifications not yet consumed by the publisher; see the module docs.
    pending: CachePadded<AtomicU64>,
    /// The high watermark: every offset below it is published. Written only by the publisher.
    end: CachePadded<Watermark>,
    ready: Buckets<Ready, LOG_SHIFT, LOG_BUCKETS>,
    values: Buckets<Cell<T>, LOG_SHIFT, LOG_BUCKETS>,
}

// SAFETY:
// 1. A `Log<T>` owns its `T`s; sending the log sends them, so `T: Send` suffices.
unsafe impl<T: Send> Send for Log<T> {}

// SAFETY:
// 1. `append(&self)` moves a `T` in from one thread and `Drop` may drop it on another: `T: Send`.
// 2. Readers on many threads get `&T` at once: `T: Sync`.
// 3. All shared mutation goes through atomics, or through slot writes that the protocol in the
//    module docs makes exclusive and orders before any read.
unsafe impl<T: Send + Sync> Sync for Log<T> {}

impl<T: Publish> Log<T> {
    /// An empty log.
    pub fn new() -> Self {
        assert!(
            std::mem::size_of::<T>() > 0,
            "a log of zero-sized records is not supported"
        );
        Log {
            reserved: CachePadded::new(AtomicU64::new(0)),
            pending: CachePadded::new(AtomicU64::new(0)),
            end: CachePadded::new(Watermark {
                end: AtomicU64::new(0),
                cursor: UnsafeCell::new(0),
            }),
            ready: Buckets::new(),
            values: Buckets::new(),
        }
    }

    /// Appends `value`, returning its offset once it is published.
    #[inline]
    pub fn append(&self, value: T) -> u64 {
        // Relaxed: only the RMW's atomicity matters, see "Orderings".
        let offset = self.reserved.fetch_add(1, Ordering::Relaxed);
        let cell = self.values.get_or_alloc(offset);
        // SAFETY:
        // 1. `offset` was handed out once, to this call, so no other thread writes this cell.
        // 2. No thread reads the value before `ready` is set below (the publisher) or before `end`
        //    passes `offset` (readers), both of which happen after this write.
        cell.0.with_mut(|p| unsafe { (*p).write(value) });
        // Release: pairs with the publisher's Acquire load of `ready` in `publish_from`.
        self.ready
            .get_or_alloc(offset)
            .0
            .store(true, Ordering::Release);
        // AcqRel: see "Orderings" (the `pending` chain).
        if self.pending.fetch_add(1, Ordering::AcqRel) == 0 {
            self.publish_from(1);
        }
        self.wait_published(offset);
        offset
    }

    /// Runs the publisher role, entered by the increment that made `pending` equal `seen`.
    fn publish_from(&self, mut seen: u64) {
        // SAFETY:
        // 1. Only the holder of the publisher role touches `cursor`, and we hold it.
        // 2. The previous holder's write happens-before this read through the `pending` chain.
        let mut end = self.end.cursor.with(|p| unsafe { *p });
        loop {
            // Relaxed: an upper bound only, so that the walk does not touch (and fault in) the
            // slot past the last reserved one. Every appender we synchronized with through
            // `pending` reserved before notifying, so its offset is below this bound (coherence).
            let reserved = self.reserved.load(Ordering::Relaxed);
            while end < reserved {
                let Some(ready) = self.ready.get(end) else {
                    break;
                };
                // Acquire: pairs with the Release store of `ready` in `append`.
                if !ready.0.load(Ordering::Acquire) {
                    break;
                }
                // SAFETY:
                // 1. `ready` is set and we acquired it, so the value is initialized and its write
                //    (and its cell's bucket) happens-before this read.
                // 2. Nothing mutates a published value.
                unsafe { self.value(end) }.publish(end);
                end += 1;
            }
            // SAFETY: as for the read of `cursor` above.
            self.end.cursor.with_mut(|p| unsafe { *p = end });
            // Release: pairs with the Acquire loads of `end` in readers and waiting appenders.
            self.end.end.store(end, Ordering::Release);
            // AcqRel/Acquire: see "Orderings" (the `pending` chain).
            match self
                .pending
                .compare_exchange(seen, 0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => seen = now,
            }
        }
    }

    /// Waits until `end` passes `offset`.
    fn wait_published(&self, offset: u64) {
        let mut spins = 0;
        // Acquire: pairs with the Release store in `publish_from`.
        while self.end.end.load(Ordering::Acquire) <= offset {
            if spins < SPINS {
                spins += 1;
                spin_loop();
            } else {
                yield_now();
            }
        }
    }

    /// The high watermark: every offset below it is published.
    pub fn end(&self) -> u64 {
        // Acquire: pairs with the Release store in `publish_from`.
        self.end.end.load(Ordering::Acquire)
    }

    /// The record at `offset`, if it is published.
    pub fn get(&self, offset: u64) -> Option<&T> {
        if offset < self.end() {
            // SAFETY:
            // 1. `offset` is below a value `end()` returned.
            Some(unsafe { self.get_unchecked(offset) })
        } else {
            None
        }
    }

    /// The record at `offset`, without checking that it is published.
    ///
    /// # Safety
    ///
    /// `offset` must be below a value that [`Log::end`] returned on this log (the watermark never
    /// moves back, so any earlier value will do).
    pub unsafe fn get_unchecked(&self, offset: u64) -> &T {
        // SAFETY:
        // 1. The caller saw `end > offset` with Acquire, so the record is initialized and its write
        //    happens-before this read.
        unsafe { self.value(offset) }
    }

    /// The record at `offset`.
    ///
    /// # Safety
    ///
    /// The record's write must happen-before this call (its `ready` flag or an `end` above it was
    /// acquired).
    #[inline]
    unsafe fn value(&self, offset: u64) -> &T {
        // The cell's bucket was installed before the record was written, which happens-before.
        let cell = self
            .values
            .get(offset)
            .expect("a written record has a bucket");
        // SAFETY:
        // 1. The record is initialized and its write happens-before (the caller's contract).
        // 2. Written values are never mutated nor dropped before the log is dropped, which cannot
        //    happen while `&self` is borrowed.
        cell.0.with(|p| unsafe { (*p).assume_init_ref() })
    }

    /// Calls `f` for the published records at `from..`, in offset order, at most `max` of them; returns
    /// how many it visited.
    pub fn read(&self, from: u64, max: usize, mut f: impl FnMut(u64, &T)) -> usize {
        let end = self.end();
        let stop = end.min(from.saturating_add(max as u64));
        let mut offset = from;
        while offset < stop {
            // SAFETY:
            // 1. `offset < stop <= end`, a value `end()` returned.
            f(offset, unsafe { self.get_unchecked(offset) });
            offset += 1;
        }
        stop.saturating_sub(from) as usize
    }
}

impl<T: Publish> Default for Log<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for Log<T> {
    fn drop(&mut self) {
        // Relaxed: `&mut self` means every append has returned and its effects happen-before.
        let reserved = self.reserved.load(Ordering::Relaxed);
        if !std::mem::needs_drop::<T>() {
            return;
        }
        for offset in 0..reserved {
            let Some(ready) = self.ready.get(offset) else {
                continue;
            };
            // Relaxed: as above, we have exclusive access.
            if ready.0.load(Ordering::Relaxed) {
                let cell = self
                    .values
                    .get(offset)
                    .expect("a written record has a bucket");
                // SAFETY:
                // 1. `ready` is set only after the value is written, so it is initialized.
                // 2. Each record is visited once and the log is being dropped, so the value is
                //    dropped exactly once and never read again.
                cell.0.with_mut(|p| unsafe { (*p).assume_init_drop() });
            }
        }
    }
}

impl<T> std::fmt::Debug for Log<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("end", &self.end.end.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::loom::{Arc, AtomicUsize, Mutex};

    #[test]
    fn append_then_read() {
        let log = Log::<u64>::new();
        assert_eq!(log.end(), 0);
        assert!(log.get(0).is_none());
        for i in 0..1000 {
            assert_eq!(log.append(i * 10), i);
        }
        assert_eq!(log.end(), 1000);
        assert_eq!(log.get(999), Some(&9990));
        assert!(log.get(1000).is_none());
        let mut seen = vec![];
        assert_eq!(log.read(995, 100, |o, v| seen.push((o, *v))), 5);
        assert_eq!(seen, (995..1000).map(|o| (o, o * 10)).collect::<Vec<_>>());
        assert_eq!(log.read(2000, 10, |_, _| panic!("nothing past the end")), 0);
        assert_eq!(log.read(0, 3, |_, _| {}), 3);
    }

    /// Records the order in which `publish` runs and whether it ever runs concurrently.
    struct Hooked<'a> {
        value: u64,
        seen: &'a Mutex<Vec<(u64, u64)>>,
        busy: &'a AtomicUsize,
    }

    impl Publish for Hooked<'_> {
        fn publish(&self, offset: u64) {
            assert_eq!(
                self.busy.fetch_add(1, Ordering::SeqCst),
                0,
                "publish overlapped"
            );
            self.seen.lock().unwrap().push((offset, self.value));
            self.busy.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn publish_runs_once_in_order_under_contention() {
        const THREADS: u64 = 4;
        const PER: u64 = 20_000;
        let seen = Mutex::new(vec![]);
        let busy = AtomicUsize::new(0);
        let log = Log::new();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (log, seen, busy) = (&log, &seen, &busy);
                s.spawn(move || {
                    for i in 0..PER {
                        let value = t * PER + i;
                        let offset = log.append(Hooked { value, seen, busy });
                        // Returned only once published: the hook already ran for it.
                        assert!(log.end() > offset);
                        assert_eq!(log.get(offset).unwrap().value, value);
                    }
                });
            }
        });
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len() as u64, THREADS * PER);
        for (i, (offset, value)) in seen.iter().enumerate() {
            assert_eq!(*offset, i as u64);
            assert_eq!(log.get(*offset).unwrap().value, *value);
        }
        let mut values: Vec<u64> = seen.iter().map(|(_, v)| *v).collect();
        values.sort_unstable();
        assert!(values.iter().copied().eq(0..THREADS * PER));
    }

    #[test]
    fn stress_readers_see_a_contiguous_prefix() {
        const THREADS: u64 = 4;
        const PER: u64 = 100_000;
        let log = Log::<u64>::new();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let writers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let log = &log;
                    s.spawn(move || {
                        let mut last = None;
                        for i in 0..PER {
                            // The value encodes (thread, sequence) so order per thread is checkable.
                            let offset = log.append(t << 32 | i);
                            assert!(last.map_or(true, |l| l < offset));
                            last = Some(offset);
                        }
                    })
                })
                .collect();
            let (log, done) = (&log, &done);
            s.spawn(move || {
                let mut checked = 0u64;
                let mut next_seq = [0u64; THREADS as usize];
                while !done.load(Ordering::SeqCst) || checked < log.end() {
                    let end = log.end();
                    assert!(end >= checked, "the watermark moved back");
                    let n = log.read(checked, 4096, |offset, v| {
                        assert_eq!(offset, checked);
                        let (t, seq) = ((v >> 32) as usize, v & 0xffff_ffff);
                        assert_eq!(seq, next_seq[t], "thread {t}'s records out of order");
                        next_seq[t] += 1;
                        checked += 1;
                    });
                    assert!(checked <= log.end());
                    if n == 0 {
                        std::thread::yield_now();
                    }
                }
                assert_eq!(checked, THREADS * PER);
            });
            for w in writers {
                w.join().unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        assert_eq!(log.end(), THREADS * PER);
    }

    #[test]
    fn drop_drops_each_record_once() {
        let counter = Arc::new(());
        {
            struct R(#[allow(dead_code)] Arc<()>);
            impl Publish for R {}
            let log = Log::new();
            for _ in 0..100 {
                log.append(R(counter.clone()));
            }
            assert_eq!(Arc::strong_count(&counter), 101);
        }
        assert_eq!(Arc::strong_count(&counter), 1);
    }
}
