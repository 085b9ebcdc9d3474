//! The unsafe core under [`Log`](super::Log) and the partition's offset lists: an unbounded array of
//! slots in lazily allocated buckets that never move.
//!
//! Bucket `b` holds `1 << (SHIFT + b)` slots, so slot `i` lives in bucket
//! `⌊log2(i + 2^SHIFT)⌋ - SHIFT` and the first `2^SHIFT` slots share bucket 0. A bucket is a zeroed
//! allocation, by size:
//! - below 64 KiB, from the global allocator (`alloc_zeroed`), aligned to a cache line;
//! - from 64 KiB on, from `mmap`, whose pages the kernel maps (zeroed) only when first written, so
//!   the untouched tail of a large bucket costs no resident memory (the allocator's `calloc` may
//!   instead `memset` a whole recycled chunk up front); from 2 MiB on, mapped 2 MiB-aligned and
//!   offered to transparent huge pages (`MADV_HUGEPAGE`), which cuts page faults by 512×;
//! - with `POOLED` (a log's records), from 64 KiB up to 1 MiB, carved instead from the
//!   process-wide pool of 2 MiB huge-page chunks (`log/pool.rs`), shared by every log. A log then
//!   takes huge pages from its ~2,000th record on (32-byte records) instead of its ~65,000th,
//!   without holding a huge page of its own; otherwise a partition's records fault in one 4 KiB
//!   page per 128 records (the cost of a fault is in `benches/README.md`). The price: a chunk is resident as a whole once touched, so the unfilled part of
//!   each log's last pooled bucket is resident too. That suits records, which fill their buckets
//!   at the log's full rate, and not offset lists, one per key, which fill at a fraction of it.

//! # Orderings
//!
//! - A bucket pointer is installed with `compare_exchange(null, new, AcqRel, Acquire)` and loaded
//!   with `Acquire`: whoever finds a bucket also sees its initial (zeroed, or under loom,
//!   constructed) slots. The loser of an install race frees its own allocation, which no other
//!   thread has seen, and uses the winner's (its failed exchange acquired it).
//! - The pool hands out memory under its own mutex; a bucket's memory is fresh zeroed pages that
//!   no other bucket ever had, so there is nothing else to publish.
//! - Slots' own contents are the owner's business (see [`Log`](super::Log)'s Orderings).

#[cfg(not(loom))]
use super::os::{map_zeroed, unmap, HUGE};
#[cfg(not(loom))]
use super::pool;
use crate::loom::{AtomicPtr, Ordering};
use std::ptr;

/// A slot type that [`Buckets`] can allocate.
///
/// # Safety
///
/// Outside loom, a value whose bytes are all zero must be a valid value equal (in meaning) to
/// [`Zeroable::fresh`], and the type must have no drop glue. The type must not be zero-sized.
pub(crate) unsafe trait Zeroable: Sized {
    /// A fresh slot. Under loom, buckets are built from these (loom's atomics and cells cannot be
    /// zero-initialized); otherwise buckets are zeroed allocations.
    #[cfg_attr(not(loom), allow(dead_code))]
    fn fresh() -> Self;
}

/// An unbounded array of `S` in lazily allocated buckets: bucket `b` holds `1 << (SHIFT + b)` slots,
/// and there are `N` buckets. Slots never move; buckets are freed only on drop. Dropping a `Buckets`
/// frees the slots, not anything they may own: that is the owner's job. With `POOLED`, mid-sized
/// buckets come from the huge-page pool (see the module docs).
pub(crate) struct Buckets<S, const SHIFT: u32, const N: usize, const POOLED: bool = false> {
    buckets: [AtomicPtr<S>; N],
}

impl<S: Zeroable, const SHIFT: u32, const N: usize, const POOLED: bool>
    Buckets<S, SHIFT, N, POOLED>
{
    pub(crate) fn new() -> Self {
        Buckets {
            buckets: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }
    }

    /// (bucket, index in bucket) of slot `i`.
    #[inline]
    pub(crate) fn locate(i: u64) -> (usize, usize) {
        let j = i
            .checked_add(1 << SHIFT)
            .expect("bucket array index overflow");
        let bucket = (63 - j.leading_zeros() - SHIFT) as usize;
        let index = (j - (1u64 << (bucket as u32 + SHIFT))) as usize;
        (bucket, index)
    }

    /// The slot count of bucket `bucket`.
    #[inline]
    pub(crate) fn bucket_len(bucket: usize) -> usize {
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
            base = self.alloc(entry, bucket);
        }
        // SAFETY: as in `get`.
        unsafe { &*base.add(index) }
    }

    #[cold]
    #[inline(never)]
    fn alloc(&self, entry: &AtomicPtr<S>, bucket: usize) -> *mut S {
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
        let layout = bucket_layout::<S>(len);
        // Mapped and pooled memory is page or 64-byte aligned, so aligned for any `S` of up to
        // 64-byte alignment, which `bucket_layout` checks.
        match Source::of(layout.size(), POOLED) {
            Source::Map => map_zeroed(layout.size()).cast(),
            Source::Pool => pool::alloc(layout.size()).cast(),
            Source::Heap => {
                // SAFETY:
                // 1. `layout` has a non-zero size: `len >= 1` and `S` is not zero-sized
                //    (`Zeroable`).
                let p = unsafe { std::alloc::alloc_zeroed(layout) } as *mut S;
                if p.is_null() {
                    std::alloc::handle_alloc_error(layout);
                }
                // All-zero slots are valid fresh slots (`Zeroable`).
                p
            }
        }
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
        // SAFETY: 1. Passed on from the caller.
        unsafe { free_any(p, len, POOLED) }
    }
}

impl<S, const SHIFT: u32, const N: usize, const POOLED: bool> Drop
    for Buckets<S, SHIFT, N, POOLED>
{
    fn drop(&mut self) {
        for (bucket, entry) in self.buckets.iter().enumerate() {
            // Relaxed: `&mut self`, so every install happens-before.
            let p = entry.load(Ordering::Relaxed);
            if !p.is_null() {
                let len = 1usize << (bucket as u32 + SHIFT);
                // SAFETY:
                // 1. Non-null entries were installed by `alloc` from `alloc_bucket(len)` with this
                //    `len`, and nothing uses them after the drop.
                unsafe { free_any::<S>(p, len, POOLED) };
            }
        }
    }
}

/// Frees a bucket of `len` slots. A free function, as `Drop` cannot require `S: Zeroable`.
///
/// # Safety
///
/// `p` must come from `Buckets::alloc_bucket(len)` and must not be used afterwards. `S` has no
/// drop glue outside loom (`Zeroable`).
#[cfg(not(loom))]
unsafe fn free_any<S>(p: *mut S, len: usize, pooled: bool) {
    let layout = bucket_layout::<S>(len);
    match Source::of(layout.size(), pooled) {
        // SAFETY: 1. A mapping of exactly this size, made by `alloc_bucket`; not used again.
        Source::Map => unsafe { unmap(p.cast(), layout.size()) },
        // SAFETY: 1. From `pool::alloc`, by `alloc_bucket`; not used again.
        Source::Pool => unsafe { pool::free(p.cast()) },
        // SAFETY: 1. From `alloc_zeroed` with this layout.
        Source::Heap => unsafe { std::alloc::dealloc(p.cast(), layout) },
    }
}

/// Where a bucket's memory comes from (see the module docs).
#[cfg(not(loom))]
enum Source {
    /// The global allocator.
    Heap,
    /// The huge-page pool.
    Pool,
    /// An `mmap` of its own.
    Map,
}

#[cfg(not(loom))]
impl Source {
    fn of(size: usize, pooled: bool) -> Source {
        if size < pool::MIN {
            Source::Heap
        } else if pooled && size < HUGE {
            Source::Pool
        } else {
            Source::Map
        }
    }
}

/// The layout of a bucket of `len` slots, aligned to a cache line like every pooled bucket.
#[cfg(not(loom))]
fn bucket_layout<S>(len: usize) -> std::alloc::Layout {
    assert!(
        std::mem::align_of::<S>() <= 64,
        "slots aligned beyond a cache line"
    );
    std::alloc::Layout::array::<S>(len)
        .and_then(|l| l.align_to(64))
        .expect("bucket layout")
}

/// Frees a bucket of `len` slots, dropping them (loom's atomics and cells have drop glue).
///
/// # Safety
///
/// `p` must come from `Buckets::alloc_bucket(len)` and must not be used afterwards.
#[cfg(loom)]
unsafe fn free_any<S>(p: *mut S, len: usize, _pooled: bool) {
    // SAFETY: 1. A `Box<[S]>` of `len` slots leaked by `alloc_bucket`.
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p, len)) });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::loom::AtomicU64;

    struct Slot(AtomicU64);

    // SAFETY: 1. A zeroed std `AtomicU64` is a valid 0, and it has no drop glue.
    unsafe impl Zeroable for Slot {
        fn fresh() -> Self {
            Slot(AtomicU64::new(0))
        }
    }

    #[test]
    fn locate_is_dense_across_buckets() {
        type B = Buckets<Slot, 2, 10>;
        let mut expected = (0usize, 0usize);
        for i in 0..1000u64 {
            assert_eq!(B::locate(i), expected, "slot {i}");
            expected.1 += 1;
            if expected.1 == B::bucket_len(expected.0) {
                expected = (expected.0 + 1, 0);
            }
        }
    }

    /// Fills `n` slots of `b`, checking that each starts zeroed, then reads them all back.
    fn fill_and_check<const S: u32, const N: usize, const P: bool>(
        b: &Buckets<Slot, S, N, P>,
        n: u64,
    ) {
        assert!(b.get(5).is_none());
        // Relaxed (all loads and stores of slots here): one thread writes and reads its own
        // slots, so program order suffices; nothing pairs with them.
        for i in 0..n {
            let slot = b.get_or_alloc(i);
            assert_eq!(slot.0.load(Ordering::Relaxed), 0, "slot {i}");
            slot.0.store(i + 1, Ordering::Relaxed);
        }
        for i in 0..n {
            assert_eq!(b.get(i).unwrap().0.load(Ordering::Relaxed), i + 1);
        }
    }

    #[test]
    fn slots_start_zeroed_and_keep_their_values_including_mmapped_buckets() {
        // 2^19 slots of 8 bytes reach buckets from the allocator, from mmap (64 KiB on) and
        // 2 MiB-aligned huge mappings (2 MiB on).
        fill_and_check(&Buckets::<Slot, 0, 20>::new(), 1 << 19);
    }

    /// Fills `b` with 2^19 slots of 8 bytes, so buckets of 32 B (malloc) up to 4 MiB (a huge
    /// mapping of its own), and checks where each bucket lies.
    fn check_sources<const P: bool>(b: &Buckets<Slot, 2, 24, P>) {
        fill_and_check(b, 1 << 19);
        for k in 0..=17 {
            // Relaxed: the installs were made by this thread.
            let p = b.buckets[k].load(Ordering::Relaxed) as usize;
            let bytes = 8 << (k + 2);
            assert_eq!(p % 64, 0, "bucket {k} is cache-line aligned");
            if bytes >= HUGE {
                assert_eq!(p % HUGE, 0, "bucket {k} is huge-page aligned");
            } else if bytes >= pool::MIN && P {
                let chunk = p & !(HUGE - 1);
                assert!(
                    p + bytes <= chunk + HUGE,
                    "bucket {k} lies inside one chunk"
                );
            } else if bytes >= pool::MIN {
                assert_eq!(p % 4096, 0, "bucket {k} is a mapping of its own");
            }
        }
    }

    #[test]
    fn buckets_come_from_the_heap_the_pool_or_their_own_mapping() {
        check_sources(&Buckets::<Slot, 2, 24, false>::new());
        check_sources(&Buckets::<Slot, 2, 24, true>::new());
    }
}
