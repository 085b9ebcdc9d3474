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
//! Records live in lazily allocated *buckets* ([`Buckets`]): bucket `b` holds `FIRST << b` slots, so
//! offset `i` lives in bucket `⌊log2(i + FIRST)⌋ - log2(FIRST)`; buckets are never moved or freed
//! before the log is dropped, which is what keeps addresses stable. A bucket is allocated zeroed, so
//! the pages of a large bucket cost memory (RSS) only once records are written into them. A slot is
//! a `ready` flag and the record: `size_of::<T>() + align_of::<T>()` bytes for a `T` aligned to 8
//! (40 bytes for a partition's 32-byte record).
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
//! - Bucket pointers are installed with `compare_exchange(null, new, AcqRel, Acquire)` and loaded
//!   with `Acquire`, so whoever finds a bucket also sees its zeroed (or, under loom, constructed)
//!   slots. A loser of the race frees its own allocation, which nobody else has seen.

use crate::loom::{spin_loop, yield_now, AtomicBool, AtomicPtr, AtomicU64, Ordering, UnsafeCell};
use crossbeam_utils::CachePadded;
use std::mem::MaybeUninit;
use std::ptr;

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

/// One record's place in the log.
struct Slot<T> {
    /// Set (Release) once `value` is written; never cleared.
    ready: AtomicBool,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY (for the impl below):
// 1. Every field of `Slot<T>` is valid when all its bytes are zero outside loom: std's `AtomicBool`
//    (false), our std `UnsafeCell` (a `core::cell::UnsafeCell` wrapper) around `MaybeUninit<T>`
//    (no validity requirement).
// 2. `fresh` returns the same state: not ready, value uninitialized.
unsafe impl<T> Zeroable for Slot<T> {
    fn fresh() -> Self {
        Slot {
            ready: AtomicBool::new(false),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

/// A lock-free, append-only log of `T`.
pub struct Log<T> {
    /// The next offset to hand out.
    reserved: CachePadded<AtomicU64>,
    /// Notifications not yet consumed by the publisher; see the module docs.
    pending: CachePadded<AtomicU64>,
    /// The high watermark: every offset below it is published. Written only by the publisher.
    end: CachePadded<AtomicU64>,
    /// The publisher's own copy of `end`, read and written only by the holder of the publisher role.
    /// Keeping it apart from `end` means the publisher never loads `end`; readers alone do.
    cursor: UnsafeCell<u64>,
    slots: Buckets<Slot<T>, LOG_SHIFT, LOG_BUCKETS>,
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
        Log {
            reserved: CachePadded::new(AtomicU64::new(0)),
            pending: CachePadded::new(AtomicU64::new(0)),
            end: CachePadded::new(AtomicU64::new(0)),
            cursor: UnsafeCell::new(0),
            slots: Buckets::new(),
        }
    }

    /// Appends `value`, returning its offset once it is published.
    pub fn append(&self, value: T) -> u64 {
        // Relaxed: only the RMW's atomicity matters, see "Orderings".
        let offset = self.reserved.fetch_add(1, Ordering::Relaxed);
        let slot = self.slots.get_or_alloc(offset);
        // SAFETY:
        // 1. `offset` was handed out once, to this call, so no other thread writes this slot.
        // 2. No thread reads the value before `ready` is set below (the publisher) or before `end`
        //    passes `offset` (readers), both of which happen after this write.
        slot.value.with_mut(|p| unsafe { (*p).write(value) });
        // Release: pairs with the publisher's Acquire load of `ready` in `publish_from`.
        slot.ready.store(true, Ordering::Release);
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
        let mut end = self.cursor.with(|p| unsafe { *p });
        loop {
            while let Some(slot) = self.slots.get(end) {
                // Acquire: pairs with the Release store of `ready` in `append`.
                if !slot.ready.load(Ordering::Acquire) {
                    break;
                }
                // SAFETY:
                // 1. `ready` is set and we acquired it, so the value is initialized and its write
                //    happens-before this read.
                // 2. Nothing mutates a published value.
                slot.value
                    .with(|p| unsafe { (*p).assume_init_ref() })
                    .publish(end);
                end += 1;
            }
            // SAFETY: as for the read of `cursor` above.
            self.cursor.with_mut(|p| unsafe { *p = end });
            // Release: pairs with the Acquire loads of `end` in readers and waiting appenders.
            self.end.store(end, Ordering::Release);
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
        while self.end.load(Ordering::Acquire) <= offset {
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
        self.end.load(Ordering::Acquire)
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
        // The bucket was installed before the record was written, which happens-before the `end`
        // the caller observed.
        let slot = self
            .slots
            .get(offset)
            .expect("a published offset has a bucket");
        // SAFETY:
        // 1. The caller saw `end > offset` with Acquire, so the record is initialized and its write
        //    happens-before this read.
        // 2. Published values are never mutated nor dropped before the log is dropped, which cannot
        //    happen while `&self` is borrowed.
        slot.value.with(|p| unsafe { (*p).assume_init_ref() })
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
        for offset in 0..reserved {
            let Some(slot) = self.slots.get(offset) else {
                continue;
            };
            // Relaxed: as above, we have exclusive access.
            if slot.ready.load(Ordering::Relaxed) {
                // SAFETY:
                // 1. `ready` is set only after the value is written, so it is initialized.
                // 2. Each slot is visited once and the log is being dropped, so the value is dropped
                //    exactly once and never read again.
                slot.value.with_mut(|p| unsafe { (*p).assume_init_drop() });
            }
        }
    }
}

impl<T> std::fmt::Debug for Log<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("end", &self.end.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A slot type that a [`Buckets`] can allocate.
///
/// # Safety
///
/// Outside loom, a value whose bytes are all zero must be a valid value equal (in meaning) to
/// [`Zeroable::fresh`]. The type must not be zero-sized.
pub(crate) unsafe trait Zeroable: Sized {
    /// A fresh slot. Under loom, buckets are built from these (loom's atomics and cells cannot be
    /// zero-initialized); otherwise buckets are zeroed allocations.
    #[cfg_attr(not(loom), allow(dead_code))]
    fn fresh() -> Self;
}

/// An unbounded array of `S` in lazily allocated buckets: bucket `b` holds `1 << (SHIFT + b)` slots.
/// Slots never move; buckets are freed only on drop. Dropping a `Buckets` drops the slots themselves,
/// not anything they may own: that is the owner's job.
pub(crate) struct Buckets<S, const SHIFT: u32, const N: usize> {
    buckets: [AtomicPtr<S>; N],
}

impl<S: Zeroable, const SHIFT: u32, const N: usize> Buckets<S, SHIFT, N> {
    pub(crate) fn new() -> Self {
        Buckets {
            buckets: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }
    }

    /// (bucket, index in bucket) of slot `i`.
    #[inline]
    fn locate(i: u64) -> (usize, usize) {
        let j = i
            .checked_add(1 << SHIFT)
            .expect("bucket array index overflow");
        let bucket = (63 - j.leading_zeros() - SHIFT) as usize;
        let index = (j - (1u64 << (bucket as u32 + SHIFT))) as usize;
        (bucket, index)
    }

    #[inline]
    fn bucket_len(bucket: usize) -> usize {
        1usize << (bucket as u32 + SHIFT)
    }

    /// Slot `i`, if its bucket is allocated.
    #[inline]
    pub(crate) fn get(&self, i: u64) -> Option<&S> {
        let (bucket, index) = Self::locate(i);
        // Acquire: pairs with the AcqRel install in `alloc`, so the slots' initial state is visible.
        let base = self.buckets.get(bucket)?.load(Ordering::Acquire);
        if base.is_null() {
            return None;
        }
        // SAFETY:
        // 1. `base` points to a live bucket of `bucket_len(bucket)` slots (freed only on drop, which
        //    `&self` excludes), and `index < bucket_len(bucket)` by `locate`.
        Some(unsafe { &*base.add(index) })
    }

    /// Slot `i`, allocating its bucket if needed.
    #[inline]
    pub(crate) fn get_or_alloc(&self, i: u64) -> &S {
        let (bucket, index) = Self::locate(i);
        let entry = self
            .buckets
            .get(bucket)
            .expect("bucket array capacity exceeded");
        // Acquire: as in `get`.
        let mut base = entry.load(Ordering::Acquire);
        if base.is_null() {
            base = Self::alloc(entry, bucket);
        }
        // SAFETY: as in `get`.
        unsafe { &*base.add(index) }
    }

    #[cold]
    #[inline(never)]
    fn alloc(entry: &AtomicPtr<S>, bucket: usize) -> *mut S {
        let len = Self::bucket_len(bucket);
        let new = Self::alloc_bucket(len);
        // AcqRel: Release publishes the bucket's initial slots to the Acquire loads in `get`;
        // Acquire (also on failure) makes the winner's slots visible to us.
        match entry.compare_exchange(ptr::null_mut(), new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => new,
            Err(winner) => {
                // SAFETY:
                // 1. `new` came from `alloc_bucket(len)` and was never shared (the exchange failed).
                unsafe { Self::free_bucket(new, len) };
                winner
            }
        }
    }

    #[cfg(not(loom))]
    fn alloc_bucket(len: usize) -> *mut S {
        let layout = std::alloc::Layout::array::<S>(len).expect("bucket layout");
        // SAFETY:
        // 1. `layout` has a non-zero size: `len >= 1` and `S` is not zero-sized (`Zeroable`).
        let p = unsafe { std::alloc::alloc_zeroed(layout) } as *mut S;
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        // All-zero slots are valid fresh slots (`Zeroable`).
        p
    }

    #[cfg(loom)]
    fn alloc_bucket(len: usize) -> *mut S {
        let slots: Box<[S]> = (0..len).map(|_| S::fresh()).collect();
        Box::into_raw(slots) as *mut S
    }

    /// # Safety
    ///
    /// `p` must come from `alloc_bucket(len)` and must not be used afterwards.
    unsafe fn free_bucket(p: *mut S, len: usize) {
        // SAFETY:
        // 1. `p` holds `len` initialized slots in an allocation of `Layout::array::<S>(len)`, which
        //    is the layout `Box<[S]>` uses for `len` elements of a non-zero-sized `S`.
        drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p, len)) });
    }
}

impl<S, const SHIFT: u32, const N: usize> Drop for Buckets<S, SHIFT, N> {
    fn drop(&mut self) {
        for (bucket, entry) in self.buckets.iter().enumerate() {
            // Relaxed: `&mut self`, so every install happens-before.
            let p = entry.load(Ordering::Relaxed);
            if !p.is_null() {
                let len = 1usize << (bucket as u32 + SHIFT);
                // SAFETY:
                // 1. Non-null entries were installed by `alloc` from `alloc_bucket(len)` (the same
                //    `len` formula), and nothing uses them after the drop.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p, len)) });
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::loom::{Arc, AtomicUsize, Mutex};

    #[test]
    fn locate_is_dense_across_buckets() {
        type B = Buckets<Slot<u64>, 2, 10>;
        let mut expected = (0usize, 0usize);
        for i in 0..1000u64 {
            assert_eq!(B::locate(i), expected, "slot {i}");
            expected.1 += 1;
            if expected.1 == B::bucket_len(expected.0) {
                expected = (expected.0 + 1, 0);
            }
        }
    }

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
