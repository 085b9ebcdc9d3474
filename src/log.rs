//! The lock-free append log that backs a partition.
//!
//! Contract:
//! - [`Log::append`] gives dense *indexes* 0, 1, 2, … to entries, and each entry `T::count()`
//!   dense *offsets* in index order (a record takes one, a batch of N records N), and returns
//!   once the entry is *published* (readable by every reader), so a record acknowledged to a
//!   client is readable at once. One append is one reservation, whatever its count.
//! - Readers see only a contiguous published prefix: entries `0..entries()`, covering offsets
//!   `0..end()`. A read never returns offset n while an offset below n could still appear.
//! - Append and read take no lock. Entry addresses are stable for the life of the log.
//! - [`Publish::publish`] runs exactly once per entry, in strictly increasing offset order, never
//!   concurrently, before the watermark moves past the entry.
//! - A panic between an append's reservation and its publication aborts the process (with a
//!   message on stderr): the reserved index would otherwise never be published, and every later
//!   append would wait for it forever.

//! # Layout
//!
//! Records live in lazily allocated buckets (`log/buckets.rs`) of 32, 64, 128, … slots that never move
//! before the log is dropped, which is what keeps addresses stable. Buckets are zeroed allocations:
//! the mid-sized ones (64 KiB to 1 MiB) are carved from huge pages shared by every log, and the
//! pages of larger ones cost memory (RSS) only once records are written into them. The
//! `ready` flags live in a parallel array of one-byte flags, so a record costs `size_of::<T>() + 1`
//! bytes (33 for a partition's 32-byte record) and records pack densely into cache lines.
//!
//! # Appending and publishing
//!
//! The *publisher role* travels with the watermark `end`: the role at `end == x` belongs to the
//! appender of offset `x`, and only the role holder calls [`Publish::publish`] and stores `end`.
//!
//! An append (1) reserves an offset `x` with one `fetch_add` on `reserved`, (2) loads `end`, and (3)
//! writes its slot. On the fast path `end == x`: every record below `x` is published, so the
//! appender holds the role (4), and it publishes its record from the value in hand before writing
//! it (both precede its store of `end`). Otherwise it sets the slot's `ready` flag, so that a role
//! holder below it may publish the record for it, and waits until `end ≥ x` (spinning briefly, then
//! yielding): `end > x` means somebody published its record and it returns; `end == x` means the
//! role came to it (the holder below stopped before its flag was set), and it goes on to (4).
//! (4) The holder publishes its own record, then walks on over every following slot whose `ready`
//! flag is set (up to the `reserved` it loaded once), publishing each, and finally stores the new
//! `end`, which hands the role to the appender of that offset. This is a *combining* publisher: a
//! holder publishes for every written record it can reach, so appenders who arrive while it works
//! need not run `publish` themselves; and only one thread at a time ever runs `publish`.
//!
//! An uncontended append costs one RMW (`reserved`), made before the record is written: nothing
//! after the record's stores waits for them to drain from the store buffer. (An earlier design
//! with a `pending` counter cost three RMWs, two of them after the record's stores: a locked
//! instruction waits for the store buffer, which holds the write of the record into fresh memory,
//! and those two RMWs were about a fifth of an append's time.) The fast path does not even set the
//! `ready` flag. As before, one appender preempted between (1) and (3) stalls all later appends of
//! the log until it runs; new here, so does one preempted while it waits, as the role may come to
//! it. A `Mutex` holder preempted inside its critical section stalls its waiters the same way.
//!
//! # Orderings
//!
//! - `reserved.fetch_add(1, Relaxed)`: only the atomicity of the RMW matters (each offset is handed
//!   out once, densely); no data is published through `reserved`. The holder's
//!   `reserved.load(Relaxed)` is only an upper bound for its walk, so that it does not touch (and
//!   fault in) flags past the last reserved slot.
//! - Slot write, then `ready.store(true, Release)` (slow path only): pairs with the holder's
//!   `ready.load(Acquire)` in its walk, so the holder (and, through `end`, every reader) sees the
//!   record fully written.
//! - `end.store(e, Release)` by the holder, after its `publish` calls, pairs with every
//!   `end.load(Acquire)`: in readers ([`Log::end`], [`Log::get`], [`Log::read`]), who then see every
//!   record below `e` and every effect of `publish` for them (the partition's key index relies on
//!   this); in appenders, whose load that returns `e` makes them the next holder, after all the
//!   previous holder's `publish` calls; and in waiting appenders whose record is below `e`.
//! - *One holder at a time, publishes in order.* `end` is stored only by a holder, as its last act
//!   on the log, and each store is larger than the last (a holder publishes at least its own
//!   record). So each value `x` is stored at most once, and between that store and the next one,
//!   made by holder `x` itself, `end` reads `x`. Only appender `x` acts on reading `end == x`; so
//!   the holders form one chain, `x0 = 0 < x1 < x2 < …`, in which holder `x(i+1)` acquires the store
//!   of `x(i+1)` that is holder `x(i)`'s last act. Hence `publish` calls never overlap, each happens
//!   before the next, and offsets are published in increasing order (holder `x(i)` publishes
//!   `x(i)..x(i+1)`).
//! - *Fast path without a flag.* An appender that reads `end == x` (before writing its record or
//!   setting its flag) holds the role at once: holder `x(i)` stopped at `x` and will never look at
//!   `x`'s flag again, so no one else will publish `x`. `end > x` cannot be read there: `end` passes `x` only when `x` is
//!   published, by its own appender or by a holder that saw its flag.
//! - *No lost publication.* Let appender `x` set its flag and then wait. A holder `h < x` whose
//!   walk reaches `x` either sees the flag (and publishes `x`, storing `end > x`) or does not (and
//!   stores `end = x`, which appender `x` will read, as no one else stores `end` until it does).
//!   A holder whose walk stops below `x` stops at some `y` whose appender has not yet set its flag
//!   or read `end == y`; the same argument applies to `y`, and so on up to `x`. So every append
//!   returns once every appender below it has written its record and set its flag or read `end`.
//! - Offsets: the role holder alone reads and writes `next` (the first offset of the entry at
//!   `end`) and writes `ends[i]` (the first offset after entry `i`) when it publishes entry `i`,
//!   before its Release store of `end`. So the next holder (which acquires that store) continues
//!   from the right `next`, and a reader that acquires `end = e` reads `ends[..e]` fully written;
//!   `ends[i]` never changes once written. The high watermark is `ends[e - 1]`.
//! - Buckets: see `log/buckets.rs`'s Orderings. A bucket is installed before the slot in it is written,
//!   so anyone who synchronized with that write finds the bucket.

mod buckets;
#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(not(loom))]
mod os;
#[cfg(not(loom))]
mod pool;

pub(crate) use buckets::{Buckets, Zeroable};

use crate::loom::{spin_loop, yield_now, AtomicBool, AtomicU64, Ordering, UnsafeCell};
use crossbeam_utils::CachePadded;
use std::mem::MaybeUninit;

/// Asks the CPU to bring the cache line at `p` into this core's cache, ahead of a store to it.
/// Only a hint: `p` may be any address (past an allocation's end, unmapped), as a prefetch never
/// faults and does not dereference `p` in Rust's sense. A no-op off x86-64 and under loom.
#[inline(always)]
pub(crate) fn prefetch_write<T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    // SAFETY:
    // 1. A prefetch reads no memory and cannot fault, whatever the address; the intrinsic is
    //    `unsafe` only for its target feature, SSE, which x86-64 always has.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = p;
}

/// What a log entry tells the log: how many offsets it takes, and a hook run exactly once per
/// entry, in offset order, by whichever thread publishes it, before the entry becomes visible to
/// readers. A partition uses the hook to index records by key.
pub trait Publish {
    /// How many offsets the entry takes: 1 for a record, N for a batch of N records. Must be ≥ 1
    /// and must not change once the entry is built.
    fn count(&self) -> u64 {
        1
    }

    /// Called once for the entry whose first offset is `base`, in strictly increasing order,
    /// never concurrently.
    fn publish(&self, _base: u64) {}
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

/// An offset-list end: written once, by the publisher of its entry, before the entry is published.
struct EndCell(UnsafeCell<u64>);

// SAFETY:
// 1. Outside loom the slot is a `core::cell::UnsafeCell<u64>` wrapper: all zeroes is a valid `0`,
//    which is also what `fresh` returns. It is not zero-sized and has no drop glue.
unsafe impl Zeroable for EndCell {
    fn fresh() -> Self {
        EndCell(UnsafeCell::new(0))
    }
}

/// Aborts the process if it is dropped: armed across the part of an append that other appenders
/// wait for (from the reservation to the hand-off of the publisher role), and disarmed with
/// `mem::forget` at its end. A panic in between (in a `Publish` hook, or an allocation failure
/// reported as a panic) would otherwise leave a reserved offset that is never published, and
/// every later append of the log would wait for it forever. Aborting with a message is loud; a
/// wedged log is silent.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    #[cold]
    fn drop(&mut self) {
        // Straight to the stderr handle, not `eprintln!`, which a test harness may capture and
        // lose with the process.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"kgroups: a panic unwound through a log append; aborting, as the log's later appends \
              would wait for this one forever\n",
        );
        std::process::abort();
    }
}

/// A lock-free, append-only log of `T`.
///
/// Entries are numbered densely by *index* (0, 1, 2, …); each also takes `T::count()` *offsets*,
/// assigned in index order by the publisher (see the module docs), so that a batch of N records is
/// one entry and one reservation. A log of single records has `index == offset`.
///
/// `reserved`, `end` and the publisher's `next` share one cache line (and the bucket tables
/// start on the next): an append's fast path does its RMW on `reserved`, loads `end` and stores
/// it, so with appenders on two cores one line moves per append instead of two.
#[repr(C)]
pub struct Log<T> {
    /// The next index to hand out.
    reserved: AtomicU64,
    /// The index watermark: every entry below it is published. Stored only by the holder of the
    /// publisher role, whose index it is; see the module docs.
    end: AtomicU64,
    /// The first offset of the entry at `end`: read and written only by the holder of the role.
    next: UnsafeCell<u64>,
    /// The first offset of entry 0 (0, or where a log reopened from disk goes on).
    first: u64,
    ready: CachePadded<Buckets<Ready, LOG_SHIFT, LOG_BUCKETS>>,
    values: Buckets<Cell<T>, LOG_SHIFT, LOG_BUCKETS, true>,
    /// `ends[i]`: the first offset after entry `i` (so entry `i` covers `ends[i - 1]..ends[i]`).
    ends: Buckets<EndCell, LOG_SHIFT, LOG_BUCKETS, true>,
}

// SAFETY:
// 1. A `Log<T>` owns its `T`s; sending the log sends them, so `T: Send` suffices.
unsafe impl<T: Send> Send for Log<T> {}

// SAFETY:
// 1. `append(&self)` moves a `T` in from one thread and `Drop` may drop it on another: `T: Send`.
// 2. Readers on many threads get `&T` at once: `T: Sync`.
// 3. All shared mutation goes through atomics, or through slot writes (values, `ends`, `next`)
//    that the protocol in the module docs makes exclusive and orders before any read.
unsafe impl<T: Send + Sync> Sync for Log<T> {}

impl<T: Publish> Log<T> {
    /// An empty log.
    pub fn new() -> Self {
        Self::starting_at(0)
    }

    /// An empty log whose first entry will start at offset `first` (a log that goes on where the
    /// offsets held elsewhere, such as on disk, end).
    pub fn starting_at(first: u64) -> Self {
        assert!(
            std::mem::size_of::<T>() > 0,
            "a log of zero-sized records is not supported"
        );
        Log {
            reserved: AtomicU64::new(0),
            end: AtomicU64::new(0),
            next: UnsafeCell::new(first),
            first,
            ready: CachePadded::new(Buckets::new()),
            values: Buckets::new(),
            ends: Buckets::new(),
        }
    }

    /// Appends `value`, returning its index once it is published; its offsets are
    /// [`Log::base`]`(index)..` `+ value.count()`.
    #[inline]
    pub fn append(&self, value: T) -> u64 {
        // Relaxed: only the RMW's atomicity matters, see "Orderings".
        let index = self.reserved.fetch_add(1, Ordering::Relaxed);
        self.append_reserved(index, value);
        index
    }

    /// Appends `value` only if it gets index `expected` (a compare-and-swap on the reservation):
    /// `Ok(expected)` once it is published, or `Err(next)` with the index the next append would
    /// get, without appending. A replica that copies its leader's entries in order with this call
    /// is a prefix of the leader's log by construction.
    pub fn append_at(&self, expected: u64, value: T) -> Result<u64, u64> {
        // Relaxed (both): as the `fetch_add` in `append`, only the RMW's atomicity matters.
        self.reserved.compare_exchange(
            expected,
            expected + 1,
            Ordering::Relaxed,
            Ordering::Relaxed,
        )?;
        self.append_reserved(expected, value);
        Ok(expected)
    }

    /// Writes and publishes `value` at `index`, which this call alone reserved.
    #[inline]
    fn append_reserved(&self, index: u64, value: T) {
        let armed = AbortOnUnwind;
        let cell = self.values.get_or_alloc(index);
        // The next cache line of this log's records, written by a later append: fetching it now
        // takes its miss (fresh memory) off that append's stores, which the next `fetch_add`
        // would otherwise wait for.
        prefetch_write(std::ptr::from_ref(cell).cast::<u8>().wrapping_add(64));
        // Acquire: pairs with the Release store of `end` by the previous holder (the hand-off).
        let end = self.end.load(Ordering::Acquire);
        debug_assert!(end <= index, "an entry was published before it was written");
        if end == index {
            // The fast path: we hold the role (see "Orderings"), so we publish our entry from
            // the value in hand, before writing it: both happen before we store `end`.
            // SAFETY: 1. We hold the role.
            unsafe { self.publish_one(index, &value) };
            // SAFETY:
            // 1. `index` was handed out once, to this call, so no other thread writes this cell.
            // 2. No other thread reads it before it acquires an `end` above `index`, which we
            //    store after this write.
            cell.0.with_mut(|p| unsafe { (*p).write(value) });
            self.walk_from(index + 1);
        } else {
            // SAFETY:
            // 1. As above, no other thread writes this cell.
            // 2. No other thread reads it before it acquires the `ready` flag set in `wait_turn`
            //    (a role holder) or an `end` above `index` (readers), both after this write.
            cell.0.with_mut(|p| unsafe { (*p).write(value) });
            if self.wait_turn(index) {
                // SAFETY:
                // 1. We wrote the entry (program order) and hold the role, so no one else
                //    publishes it; nothing mutates a written value.
                unsafe { self.publish_one(index, self.value(index)) };
                self.walk_from(index + 1);
            }
        }
        std::mem::forget(armed);
    }

    /// Publishes the entry at `index`: gives it its offsets (`next..next + count`), records its
    /// end in `ends`, runs its hook.
    ///
    /// # Safety
    ///
    /// The caller holds the publisher role at `index` (every entry below it is published, none at
    /// or above it), so it alone touches `next` and `ends[index]`.
    #[inline]
    unsafe fn publish_one(&self, index: u64, value: &T) {
        // SAFETY:
        // 1. Only the role holder reads or writes `next`, and the role is handed over through the
        //    Release/Acquire of `end`, so the previous holder's write happens-before.
        let base = self.next.with(|p| unsafe { *p });
        let count = value.count();
        debug_assert!(count >= 1, "an entry takes at least one offset");
        let end = base + count;
        // SAFETY:
        // 1. As for `next`: `ends[index]` is written once, by the holder of `index`, and read by
        //    others only after they acquire an `end` above `index`.
        self.ends
            .get_or_alloc(index)
            .0
            .with_mut(|p| unsafe { *p = end });
        value.publish(base);
        // SAFETY: as above.
        self.next.with_mut(|p| unsafe { *p = end });
    }

    /// The slow path of an append whose entry is written but not yet reachable by the role:
    /// sets its `ready` flag and waits until `end` reaches `index`. Returns true if the role came
    /// to this appender (`end == index`), false if its entry was published by a holder below it.
    #[cold]
    #[inline(never)]
    fn wait_turn(&self, index: u64) -> bool {
        // Release: pairs with the holder's Acquire load of `ready` in `walk_from`.
        self.ready
            .get_or_alloc(index)
            .0
            .store(true, Ordering::Release);
        let mut spins = 0;
        loop {
            // Acquire: pairs with the Release store in `walk_from`.
            let end = self.end.load(Ordering::Acquire);
            if end >= index {
                return end == index;
            }
            if spins < SPINS {
                spins += 1;
                spin_loop();
            } else {
                yield_now();
            }
        }
    }

    /// The rest of the publisher role, held by the appender of `start - 1`, which has published
    /// its own entry: publishes every ready entry from `start` on, then hands the role on
    /// through `end`.
    #[inline]
    fn walk_from(&self, start: u64) {
        let mut end = start;
        // Relaxed: an upper bound for the walk only, see "Orderings". An entry reserved after
        // this load is published by its own appender, which will read `end == index`.
        let reserved = self.reserved.load(Ordering::Relaxed);
        while end < reserved {
            let Some(ready) = self.ready.get(end) else {
                break;
            };
            // Acquire: pairs with the Release store of `ready` in `wait_turn`.
            if !ready.0.load(Ordering::Acquire) {
                break;
            }
            // SAFETY:
            // 1. `ready` is set and we acquired it, so the value is initialized and its write
            //    (and its cell's bucket) happens-before this read; nothing mutates it.
            // 2. We hold the role at `end`: every entry below it is published by us or before us.
            unsafe { self.publish_one(end, self.value(end)) };
            end += 1;
        }
        // Release: pairs with the Acquire loads of `end` in readers and appenders; this is our
        // last act as the holder.
        self.end.store(end, Ordering::Release);
    }

    /// How many entries are published (the index watermark).
    pub fn entries(&self) -> u64 {
        // Acquire: pairs with the Release store in `walk_from`.
        self.end.load(Ordering::Acquire)
    }

    /// The high watermark: every offset below it is published.
    pub fn end(&self) -> u64 {
        let entries = self.entries();
        // SAFETY: 1. `entries` is a value `entries()` returned.
        unsafe { self.base_unchecked(entries) }
    }

    /// The first offset of entry `index` (`index` = the published count gives the high watermark).
    ///
    /// # Safety
    ///
    /// `index` must be at most a value that [`Log::entries`] returned on this log.
    #[inline]
    unsafe fn base_unchecked(&self, index: u64) -> u64 {
        if index == 0 {
            return self.first;
        }
        let cell = self
            .ends
            .get(index - 1)
            .expect("a published entry has its end");
        // SAFETY:
        // 1. Entry `index - 1` is published (the caller's contract): its end was written before
        //    the Release store of `end` that the caller acquired, and never changes.
        cell.0.with(|p| unsafe { *p })
    }

    /// The offsets of entry `index`, `base..end`, if it is published.
    pub fn offsets(&self, index: u64) -> Option<std::ops::Range<u64>> {
        if index < self.entries() {
            // SAFETY: 1. `index + 1` is at most a value `entries()` returned.
            unsafe { Some(self.base_unchecked(index)..self.base_unchecked(index + 1)) }
        } else {
            None
        }
    }

    /// The index of the published entry that holds `offset`, if any, in O(1) when every entry up
    /// to there holds one offset and O(log n) otherwise.
    pub fn index_of(&self, offset: u64) -> Option<u64> {
        let entries = self.entries();
        // SAFETY:
        // 1. Every index passed below is at most `entries`, a value `entries()` returned.
        let base = |i: u64| unsafe { self.base_unchecked(i) };
        if offset >= base(entries) || offset < self.first {
            return None;
        }
        // Every entry takes at least one offset, so entry `i` starts at or after offset
        // `first + i`: the entry of `offset` has an index of at most `offset - first`.
        let guess = (offset - self.first).min(entries - 1);
        if base(guess) <= offset && offset < base(guess + 1) {
            return Some(guess);
        }
        // The first index whose end is above `offset`.
        let (mut lo, mut hi) = (0, guess + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if base(mid + 1) <= offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Some(lo)
    }

    /// The entry at `index`, if it is published.
    pub fn get(&self, index: u64) -> Option<&T> {
        if index < self.entries() {
            // SAFETY:
            // 1. `index` is below a value `entries()` returned.
            Some(unsafe { self.get_unchecked(index) })
        } else {
            None
        }
    }

    /// The entry at `index`, without checking that it is published.
    ///
    /// # Safety
    ///
    /// `index` must be below a value that [`Log::entries`] returned on this log (the watermark
    /// never moves back, so any earlier value will do).
    pub(crate) unsafe fn get_unchecked(&self, index: u64) -> &T {
        // SAFETY:
        // 1. The caller saw `end > index` with Acquire, so the entry is initialized and its write
        //    happens-before this read.
        unsafe { self.value(index) }
    }

    /// The entry at `index`.
    ///
    /// # Safety
    ///
    /// The entry's write must happen-before this call (its `ready` flag or an `end` above it was
    /// acquired).
    #[inline]
    unsafe fn value(&self, index: u64) -> &T {
        // The cell's bucket was installed before the entry was written, which happens-before.
        let cell = self
            .values
            .get(index)
            .expect("a written entry has a bucket");
        // SAFETY:
        // 1. The entry is initialized and its write happens-before (the caller's contract).
        // 2. Written values are never mutated nor dropped before the log is dropped, which cannot
        //    happen while `&self` is borrowed.
        cell.0.with(|p| unsafe { (*p).assume_init_ref() })
    }

    /// Calls `f(index, base offset, entry)` for the published entries at indexes `from..`, in
    /// order, at most `max` of them; returns how many it visited.
    pub fn read(&self, from: u64, max: usize, mut f: impl FnMut(u64, u64, &T)) -> usize {
        let end = self.entries();
        let stop = end.min(from.saturating_add(max as u64));
        let mut index = from;
        // SAFETY: 1. `index <= stop <= end`, a value `entries()` returned.
        let mut base = unsafe { self.base_unchecked(index.min(stop)) };
        while index < stop {
            // SAFETY:
            // 1. `index < stop <= end`, a value `entries()` returned.
            let (entry, next) =
                unsafe { (self.get_unchecked(index), self.base_unchecked(index + 1)) };
            f(index, base, entry);
            base = next;
            index += 1;
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
        if !std::mem::needs_drop::<T>() {
            return;
        }
        // Relaxed (both): `&mut self` means every append has returned and its effects
        // happen-before.
        let reserved = self.reserved.load(Ordering::Relaxed);
        let end = self.end.load(Ordering::Relaxed);
        for offset in 0..reserved {
            // Below `end`, every record is written (published); at or above it (only if an
            // append panicked before its record was published), exactly those whose `ready` flag
            // is set, as the fast path, which skips the flag, publishes before it returns.
            let written = offset < end
                || self
                    .ready
                    .get(offset)
                    // Relaxed: as above, we have exclusive access.
                    .is_some_and(|r| r.0.load(Ordering::Relaxed));
            if written {
                let cell = self
                    .values
                    .get(offset)
                    .expect("a written record has a bucket");
                // SAFETY:
                // 1. `offset` is below `end` (published, so written) or its `ready` flag, set only
                //    after the write, is set: the value is initialized.
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
            // Relaxed: a diagnostic snapshot; nothing is read through it, so it pairs with nothing.
            .field("end", &self.end.load(Ordering::Relaxed))
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
        assert_eq!(log.read(995, 100, |i, o, v| seen.push((i, o, *v))), 5);
        assert_eq!(
            seen,
            (995..1000).map(|o| (o, o, o * 10)).collect::<Vec<_>>()
        );
        assert_eq!(
            log.read(2000, 10, |_, _, _| panic!("nothing past the end")),
            0
        );
        assert_eq!(log.read(0, 3, |_, _, _| {}), 3);
        assert_eq!((log.index_of(7), log.index_of(1000)), (Some(7), None));
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
                            assert!(last.is_none_or(|l| l < offset));
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
                    let n = log.read(checked, 4096, |offset, _, v| {
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

    /// An entry that takes `count` offsets.
    struct Weighted {
        count: u64,
        seen: Option<Arc<Mutex<Vec<u64>>>>,
    }

    impl Publish for Weighted {
        fn count(&self) -> u64 {
            self.count
        }
        fn publish(&self, base: u64) {
            if let Some(seen) = &self.seen {
                seen.lock().unwrap().push(base);
            }
        }
    }

    #[test]
    fn entries_take_their_count_of_offsets() {
        let log = Log::new();
        let counts = [1u64, 5, 1, 1, 3, 2, 1];
        let mut bases = vec![];
        let mut expected = 0;
        let seen = Arc::new(Mutex::new(vec![]));
        for &count in &counts {
            let seen = Some(seen.clone());
            let index = log.append(Weighted { count, seen });
            let range = log.offsets(index).unwrap();
            assert_eq!(range, expected..expected + count);
            bases.push(expected);
            expected += count;
        }
        assert_eq!(
            *seen.lock().unwrap(),
            bases,
            "publish gets each entry's base"
        );
        assert_eq!((log.entries(), log.end()), (counts.len() as u64, expected));
        // Every offset maps to the entry that holds it; past the end, nothing.
        for (index, &base) in bases.iter().enumerate() {
            for offset in base..base + counts[index] {
                assert_eq!(log.index_of(offset), Some(index as u64), "offset {offset}");
            }
        }
        assert_eq!(log.index_of(expected), None);
        let mut read = vec![];
        log.read(2, 3, |i, base, e| read.push((i, base, e.count)));
        assert_eq!(read, [(2, 6, 1), (3, 7, 1), (4, 8, 3)]);
    }

    #[test]
    fn a_log_can_start_at_any_offset() {
        let log = Log::starting_at(1_000);
        assert_eq!((log.end(), log.index_of(1_000)), (1_000, None));
        let a = log.append(Weighted {
            count: 3,
            seen: None,
        });
        let b = log.append(Weighted {
            count: 1,
            seen: None,
        });
        assert_eq!((a, b), (0, 1));
        assert_eq!(log.offsets(0), Some(1_000..1_003));
        assert_eq!(log.offsets(1), Some(1_003..1_004));
        assert_eq!(log.end(), 1_004);
        assert_eq!(log.index_of(999), None);
        assert_eq!(log.index_of(1_002), Some(0));
        assert_eq!(log.index_of(1_003), Some(1));
        assert_eq!(log.index_of(1_004), None);
    }

    #[test]
    fn concurrent_weighted_appends_get_disjoint_dense_offsets() {
        const THREADS: u64 = 4;
        const PER: u64 = 20_000;
        let log = Log::new();
        let ranges: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let log = &log;
                    s.spawn(move || {
                        (0..PER)
                            .map(|i| {
                                let count = 1 + (t + i) % 4;
                                let index = log.append(Weighted { count, seen: None });
                                let range = log.offsets(index).unwrap();
                                assert_eq!(range.end - range.start, count);
                                range
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let mut ranges = ranges;
        ranges.sort_by_key(|r| r.start);
        let mut next = 0;
        for r in &ranges {
            assert_eq!(r.start, next, "offsets are dense and disjoint");
            next = r.end;
        }
        assert_eq!(log.end(), next);
    }

    #[test]
    fn append_at_appends_only_at_the_expected_index() {
        let log = Log::<u64>::new();
        assert_eq!(log.append_at(0, 10), Ok(0));
        assert_eq!(
            log.append_at(0, 11),
            Err(1),
            "a stale expectation appends nothing"
        );
        assert_eq!(log.append_at(5, 11), Err(1), "nor does one from the future");
        assert_eq!(log.append_at(1, 11), Ok(1));
        assert_eq!((log.end(), log.get(1)), (2, Some(&11)));
    }

    /// An entry whose hook panics.
    struct Panics(#[allow(dead_code)] u64);

    impl Publish for Panics {
        fn publish(&self, _: u64) {
            panic!("injected panic in a publish hook");
        }
    }

    #[test]
    fn a_panic_inside_an_append_aborts_the_process_with_a_message() {
        const CHILD: &str = "KGROUPS_TEST_APPEND_PANIC_CHILD";
        if std::env::var_os(CHILD).is_some() {
            let log = Log::new();
            log.append(Panics(1));
            // Unreachable if the guard works: the append above aborts the process.
            std::process::exit(0);
        }
        // The test in a child process of its own: it must die, loudly, not hang.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "log::tests::a_panic_inside_an_append_aborts_the_process_with_a_message",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "the child went on: {stderr}");
        assert!(
            stderr.contains("a panic unwound through a log append; aborting"),
            "no clear message: {stderr}"
        );
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
