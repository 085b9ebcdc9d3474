//! The unsafe core under [`Log`](super::Log) and the partition's offset lists: an unbounded array of
//! slots in lazily allocated buckets that never move.
//!
//! Bucket `b` holds `1 << (SHIFT + b)` slots, so slot `i` lives in bucket
//! `⌊log2(i + 2^SHIFT)⌋ - SHIFT` and the first `2^SHIFT` slots share bucket 0. A bucket is a zeroed
//! allocation: a small one from the global allocator (`alloc_zeroed`), a large one (≥ 64 KiB)
//! straight from `mmap`, whose pages the kernel maps (zeroed) only when first written, so the
//! untouched tail of a large bucket costs no resident memory (the allocator's `calloc` may instead
//! `memset` a whole recycled chunk up front). Buckets of 2 MiB or more are mapped 2 MiB-aligned and
//! offered to transparent huge pages (`MADV_HUGEPAGE`), which cuts page faults by 512×.
//!
//! With `ARENA` (the log's records), the mid-sized buckets, from the first of at least 128 KiB up to
//! those that fit, share one 2 MiB-aligned 2 MiB mapping (the *arena*), also offered to huge
//! pages: their sizes double, so bucket `b` sits at offset `bytes(b) - bytes(first)`. A log then
//! takes huge pages from its ~4,000th record on instead of its ~65,000th; a page fault costs about
//! as much as writing a hundred records, and a partition's records fault in one 4 KiB page per 128
//! records otherwise. The price: once a log reaches the arena, up to 2 MiB of it may be resident
//! before records fill it.
//!
//! # Orderings
//!
//! - A bucket pointer is installed with `compare_exchange(null, new, AcqRel, Acquire)` and loaded
//!   with `Acquire`: whoever finds a bucket also sees its initial (zeroed, or under loom,
//!   constructed) slots. The loser of an install race frees its own allocation, which no other
//!   thread has seen, and uses the winner's (its failed exchange acquired it).
//! - The arena pointer is installed the same way (`compare_exchange(null, new, AcqRel, Acquire)`,
//!   loaded with `Acquire`); its memory is fresh zeroed pages, so there is nothing else to publish.
//!   Every thread computes the same address for a bucket in the arena, so an install race on such
//!   a bucket has nothing to free.
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
/// frees the slots, not anything they may own: that is the owner's job. With `ARENA`, mid-sized
/// buckets share one huge-page mapping (see the module docs; not under loom).
pub(crate) struct Buckets<S, const SHIFT: u32, const N: usize, const ARENA: bool = false> {
    buckets: [AtomicPtr<S>; N],
    /// The arena of mid-sized buckets, once one of them is needed (only with `ARENA`).
    #[cfg(not(loom))]
    arena: AtomicPtr<u8>,
}

/// Buckets of at least this many bytes come straight from `mmap`.
#[cfg(not(loom))]
const MMAP_MIN: usize = 64 << 10;
/// The huge page size (x86-64 and aarch64 with 4 KiB pages): buckets of at least this many bytes
/// are mapped aligned to it and offered to transparent huge pages; it is also the arena's size.
#[cfg(not(loom))]
const HUGE: usize = 2 << 20;
/// The first bucket of the arena is the first of at least this many bytes.
#[cfg(not(loom))]
const ARENA_MIN: usize = 128 << 10;

impl<S: Zeroable, const SHIFT: u32, const N: usize, const ARENA: bool> Buckets<S, SHIFT, N, ARENA> {
    pub(crate) fn new() -> Self {
        Buckets {
            buckets: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            #[cfg(not(loom))]
            arena: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The byte size of bucket `bucket`.
    #[cfg(not(loom))]
    fn bucket_bytes(bucket: usize) -> usize {
        std::mem::size_of::<S>() << (bucket as u32 + SHIFT)
    }

    /// Where bucket `bucket` sits in the arena, if it lives there: the buckets from the first of at
    /// least `ARENA_MIN` bytes on, as long as they fit in `HUGE` bytes. Sizes double, so the
    /// buckets before `bucket` in the arena take `bytes(bucket) - bytes(first)`.
    #[cfg(not(loom))]
    fn arena_offset(bucket: usize) -> Option<usize> {
        if !ARENA {
            return None;
        }
        let bytes = Self::bucket_bytes(bucket);
        if bytes < ARENA_MIN {
            return None;
        }
        let first = (0..=bucket)
            .map(Self::bucket_bytes)
            .find(|&b| b >= ARENA_MIN)
            .expect("bucket itself qualifies");
        let offset = bytes - first;
        (offset + bytes <= HUGE).then_some(offset)
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
        #[cfg(not(loom))]
        if let Some(offset) = Self::arena_offset(bucket) {
            // SAFETY:
            // 1. `arena_offset` keeps `offset + bytes(bucket) <= HUGE`, within the arena.
            // 2. The offset is a multiple of `size_of::<S>()` (a difference of two multiples),
            //    hence of `S`'s alignment, and the arena is page-aligned.
            let new = unsafe { self.arena().add(offset) }.cast::<S>();
            // AcqRel/Acquire: as below. Everyone installs the same pointer, so a lost race has
            // nothing to free.
            return match entry.compare_exchange(
                ptr::null_mut(),
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => new,
                Err(winner) => winner,
            };
        }
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

    /// The arena, mapped on first use.
    #[cfg(not(loom))]
    fn arena(&self) -> *mut u8 {
        // Acquire: pairs with the AcqRel install below.
        let arena = self.arena.load(Ordering::Acquire);
        if !arena.is_null() {
            return arena;
        }
        let new = map_zeroed(HUGE);
        // AcqRel/Acquire: see "Orderings".
        match self
            .arena
            .compare_exchange(ptr::null_mut(), new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => new,
            Err(winner) => {
                // SAFETY:
                // 1. `new` is a mapping of `HUGE` bytes that no one else has seen.
                unsafe { libc::munmap(new.cast(), HUGE) };
                winner
            }
        }
    }

    #[cfg(not(loom))]
    fn alloc_bucket(len: usize) -> *mut S {
        let layout = std::alloc::Layout::array::<S>(len).expect("bucket layout");
        if layout.size() >= MMAP_MIN {
            // Page-aligned, so aligned for any `S` up to 4 KiB alignment.
            return map_zeroed(layout.size()).cast();
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

impl<S, const SHIFT: u32, const N: usize, const ARENA: bool> Drop for Buckets<S, SHIFT, N, ARENA> {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        // Relaxed: `&mut self`, so every install happens-before.
        let arena = self.arena.load(Ordering::Relaxed);
        for (bucket, entry) in self.buckets.iter().enumerate() {
            // Relaxed: `&mut self`, so every install happens-before.
            let p = entry.load(Ordering::Relaxed);
            if p.is_null() {
                continue;
            }
            let len = 1usize << (bucket as u32 + SHIFT);
            #[cfg(not(loom))]
            if !arena.is_null() {
                let bytes = std::mem::size_of::<S>() * len;
                let (lo, hi) = (arena as usize, arena as usize + HUGE);
                if (lo..hi).contains(&(p as usize)) {
                    debug_assert!(p as usize + bytes <= hi);
                    continue; // Freed with the arena below.
                }
            }
            // SAFETY:
            // 1. Non-null entries outside the arena were installed by `alloc` from
            //    `alloc_bucket(len)` with this `len`, and nothing uses them after the drop.
            unsafe { free_any::<S>(p, len) };
        }
        #[cfg(not(loom))]
        if !arena.is_null() {
            // SAFETY:
            // 1. The arena is a mapping of `HUGE` bytes made by `map_zeroed`, used by nothing
            //    after the drop.
            unsafe { libc::munmap(arena.cast(), HUGE) };
        }
    }
}

/// A fresh anonymous mapping of `size` bytes (a multiple of the page size): zeroed, page-aligned,
/// and, from `HUGE` bytes on, `HUGE`-aligned and offered to transparent huge pages (an unaligned
/// mapping could use huge pages only for its aligned interior).
#[cfg(not(loom))]
fn map_zeroed(size: usize) -> *mut u8 {
    let huge = size >= HUGE;
    // Room to align: the slack is unmapped again below.
    let mapped = if huge { size + HUGE } else { size };
    // SAFETY:
    // 1. An anonymous private mapping with no address hint has no preconditions; the kernel
    //    returns zeroed, page-aligned memory, or MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            mapped,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        let layout = std::alloc::Layout::from_size_align(size, 4096).expect("mapping layout");
        std::alloc::handle_alloc_error(layout);
    }
    let p = p.cast::<u8>();
    if !huge {
        return p;
    }
    let head = (HUGE - (p as usize) % HUGE) % HUGE;
    let tail = HUGE - head;
    // SAFETY:
    // 1. `p..p + mapped` is the mapping just made; `head` and `tail` are page multiples (`p` is
    //    page-aligned) with `head + size + tail == mapped`, so both calls unmap parts of it that
    //    nothing uses (a zero length is a no-op), leaving `p + head..p + head + size`.
    // 2. A failure of `madvise` (THP disabled) only means small pages, so it is ignored.
    unsafe {
        if head > 0 {
            libc::munmap(p.cast(), head);
        }
        libc::munmap(p.add(head + size).cast(), tail);
        let aligned = p.add(head);
        libc::madvise(aligned.cast(), size, libc::MADV_HUGEPAGE);
        aligned
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

    /// Fills `n` slots of `b`, checking that each starts zeroed, then reads them all back.
    fn fill_and_check<const S: u32, const N: usize, const A: bool>(
        b: &Buckets<Slot, S, N, A>,
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

    #[test]
    fn arena_buckets_are_disjoint_and_inside_the_arena() {
        type B = Buckets<Slot, 2, 24, true>;
        let b = B::new();
        // Buckets of 128 KiB, 256 KiB, 512 KiB and 1 MiB live in the arena; 2 MiB does not fit.
        let in_arena: Vec<usize> = (0..24).filter(|&k| B::arena_offset(k).is_some()).collect();
        assert_eq!(in_arena, [12, 13, 14, 15]);
        assert_eq!(B::arena_offset(12), Some(0));
        assert_eq!(B::arena_offset(15), Some((1 << 20) - (128 << 10)));
        fill_and_check(&b, 1 << 19);
        // Relaxed (this and the bucket loads below): the installs were made by this thread.
        let arena = b.arena.load(Ordering::Relaxed) as usize;
        assert_ne!(arena, 0);
        assert_eq!(arena % HUGE, 0, "the arena is huge-page aligned");
        for k in 0..=16 {
            let p = b.buckets[k].load(Ordering::Relaxed) as usize;
            let inside = (arena..arena + HUGE).contains(&p);
            assert_eq!(inside, in_arena.contains(&k), "bucket {k}");
            if let Some(offset) = B::arena_offset(k) {
                assert_eq!(p, arena + offset);
            }
        }
        // A bucket of 2 MiB or more is aligned to 2 MiB.
        assert_eq!(b.buckets[16].load(Ordering::Relaxed) as usize % HUGE, 0);
    }
}
