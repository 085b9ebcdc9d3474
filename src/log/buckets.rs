//! The unsafe core under [`Log`](super::Log) and the partition's offset lists: an unbounded array of
//! slots in lazily allocated buckets that never move.
//!
//! Bucket `b` holds `1 << (SHIFT + b)` slots, so slot `i` lives in bucket
//! `⌊log2(i + 2^SHIFT)⌋ - SHIFT` and the first `2^SHIFT` slots share bucket 0. A bucket is a zeroed
//! allocation: a small one from the global allocator (`alloc_zeroed`), a large one (≥ 1 MiB) straight
//! from `mmap`, whose pages the kernel maps (zeroed) only when first written, so the untouched tail
//! of a large bucket costs no resident memory; buckets of 2 MiB or more are also offered to
//! transparent huge pages (`MADV_HUGEPAGE`), which cuts page faults by 512× for long logs.
//!
//! # Orderings
//!
//! - A bucket pointer is installed with `compare_exchange(null, new, AcqRel, Acquire)` and loaded
//!   with `Acquire`: whoever finds a bucket also sees its initial (zeroed, or under loom,
//!   constructed) slots. The loser of an install race frees its own allocation, which no other
//!   thread has seen, and uses the winner's (its failed exchange acquired it).
//! - Slots' own contents are the owner's business (see [`Log`](super::Log)'s Orderings).

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
/// frees the slots, not anything they may own: that is the owner's job.
pub(crate) struct Buckets<S, const SHIFT: u32, const N: usize> {
    buckets: [AtomicPtr<S>; N],
}

/// Buckets of at least this many bytes come straight from `mmap`.
#[cfg(not(loom))]
const MMAP_MIN: usize = 1 << 20;
/// Buckets of at least this many bytes are offered to transparent huge pages.
#[cfg(not(loom))]
const HUGE_MIN: usize = 2 << 20;

impl<S: Zeroable, const SHIFT: u32, const N: usize> Buckets<S, SHIFT, N> {
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
        if layout.size() >= MMAP_MIN {
            // SAFETY:
            // 1. An anonymous private mapping with no address hint has no preconditions; the kernel
            //    returns zeroed, page-aligned memory (so aligned for any `S` up to 4 KiB alignment)
            //    or MAP_FAILED.
            let p = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    layout.size(),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                std::alloc::handle_alloc_error(layout);
            }
            if layout.size() >= HUGE_MIN {
                // SAFETY:
                // 1. `p..p + size` is the mapping just created. A failure (THP disabled) only
                //    means small pages, so the result is ignored.
                unsafe { libc::madvise(p, layout.size(), libc::MADV_HUGEPAGE) };
            }
            return p as *mut S;
        }
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
        // SAFETY: 1. Passed on from the caller.
        unsafe { free_any(p, len) }
    }
}

impl<S, const SHIFT: u32, const N: usize> Drop for Buckets<S, SHIFT, N> {
    fn drop(&mut self) {
        for (bucket, entry) in self.buckets.iter().enumerate() {
            // Relaxed: `&mut self`, so every install happens-before.
            let p = entry.load(Ordering::Relaxed);
            if !p.is_null() {
                // SAFETY:
                // 1. Non-null entries were installed by `alloc` from `alloc_bucket(len)` with this
                //    `len`, and nothing uses them after the drop.
                unsafe { free_any::<S>(p, 1usize << (bucket as u32 + SHIFT)) };
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
unsafe fn free_any<S>(p: *mut S, len: usize) {
    let layout = std::alloc::Layout::array::<S>(len).expect("bucket layout");
    if layout.size() >= MMAP_MIN {
        // SAFETY: 1. A mapping of exactly this size, made by `alloc_bucket`.
        unsafe { libc::munmap(p.cast(), layout.size()) };
    } else {
        // SAFETY: 1. From `alloc_zeroed` with this layout.
        unsafe { std::alloc::dealloc(p.cast(), layout) };
    }
}

/// Frees a bucket of `len` slots, dropping them (loom's atomics and cells have drop glue).
///
/// # Safety
///
/// `p` must come from `Buckets::alloc_bucket(len)` and must not be used afterwards.
#[cfg(loom)]
unsafe fn free_any<S>(p: *mut S, len: usize) {
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

    #[test]
    fn slots_start_zeroed_and_keep_their_values_including_mmapped_buckets() {
        // 2^17 slots of 8 bytes reach buckets of 1 MiB, which come from mmap.
        let b = Buckets::<Slot, 0, 20>::new();
        assert!(b.get(5).is_none());
        let n = 1u64 << 18;
        for i in 0..n {
            let slot = b.get_or_alloc(i);
            assert_eq!(slot.0.load(Ordering::Relaxed), 0);
            slot.0.store(i + 1, Ordering::Relaxed);
        }
        for i in 0..n {
            assert_eq!(b.get(i).unwrap().0.load(Ordering::Relaxed), i + 1);
        }
    }
}
