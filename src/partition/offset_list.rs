//! An append-only list of offsets with one writer at a time and lock-free readers: a key's
//! offsets in the key index. See the partition's module docs for its Orderings.

use crate::log::{prefetch_write, Buckets, Zeroable};
use crate::loom::{AtomicU64, Ordering, UnsafeCell};

#[cfg(not(loom))]
const LIST_SHIFT: u32 = 2;
#[cfg(not(loom))]
const LIST_BUCKETS: usize = 30;
#[cfg(loom)]
const LIST_SHIFT: u32 = 0;
#[cfg(loom)]
const LIST_BUCKETS: usize = 8;

/// One element of an offset list.
struct OffsetSlot(UnsafeCell<u64>);

// SAFETY:
// 1. Outside loom the slot is a `core::cell::UnsafeCell<u64>` wrapper: all zeroes is a valid `0`,
//    which is also what `fresh` returns. It is not zero-sized.
unsafe impl Zeroable for OffsetSlot {
    fn fresh() -> Self {
        OffsetSlot(UnsafeCell::new(0))
    }
}

/// An append-only list of offsets: one writer at a time, many lock-free readers.
pub(super) struct OffsetList {
    len: AtomicU64,
    /// The writer's cursor: the slot for the next push and the end of its bucket (both null
    /// before the first push). Only the writer touches it, so a push of a known key reads and
    /// writes this cache line and the slot, and reaches the bucket table once per bucket.
    tail: UnsafeCell<Tail>,
    slots: Buckets<OffsetSlot, LIST_SHIFT, LIST_BUCKETS>,
}

#[derive(Clone, Copy)]
struct Tail {
    next: *const OffsetSlot,
    end: *const OffsetSlot,
}

// SAFETY:
// 1. Slots are written only by the single writer at index `len` before `len` is released, and read
//    only below an acquired `len`; see "Orderings".
// 2. `tail` is read and written only by the single writer; its pointers point into `slots`.
unsafe impl Sync for OffsetList {}
// SAFETY: the list owns plain integers.
unsafe impl Send for OffsetList {}

impl OffsetList {
    pub(super) fn new() -> Self {
        OffsetList {
            len: AtomicU64::new(0),
            tail: UnsafeCell::new(Tail {
                next: std::ptr::null(),
                end: std::ptr::null(),
            }),
            slots: Buckets::new(),
        }
    }

    /// Appends `offset`.
    ///
    /// # Safety
    ///
    /// Calls must not overlap: each push must happen-before the next.
    pub(super) unsafe fn push(&self, offset: u64) {
        // Relaxed: the single writer reads its own last store, or one that happens-before.
        let len = self.len.load(Ordering::Relaxed);
        // SAFETY:
        // 1. Only the writer touches `tail`, and pushes do not overlap (the caller's contract),
        //    each happening-before the next.
        let mut tail = self.tail.with(|t| unsafe { *t });
        if tail.next == tail.end {
            // The first push, or the bucket is full: find slot `len` and its bucket's end.
            let (bucket, index) = Buckets::<OffsetSlot, LIST_SHIFT, LIST_BUCKETS>::locate(len);
            let first: *const OffsetSlot = self.slots.get_or_alloc(len);
            let left = Buckets::<OffsetSlot, LIST_SHIFT, LIST_BUCKETS>::bucket_len(bucket) - index;
            tail = Tail {
                next: first,
                // SAFETY:
                // 1. Slot `len` is at `index` of a bucket of `bucket_len(bucket)` slots, so `first
                //    + left` is one past the bucket's end, in (or just past) the same allocation.
                end: unsafe { first.add(left) },
            };
        }
        // SAFETY:
        // 1. `tail.next` is slot `len`: set so when its bucket was reached, and advanced by one
        //    per push since, never past its bucket's end; buckets never move.
        // 2. Slot `len` is not yet visible to readers (they read below `len`), and pushes do not
        //    overlap, so this write is exclusive.
        unsafe { (*tail.next).0.with_mut(|p| *p = offset) };
        // The list's next cache line, for a later push (see `prefetch_write` in `Log::append`).
        prefetch_write(tail.next.wrapping_add(8));
        tail.next = tail.next.wrapping_add(1);
        // SAFETY: as for the read of `tail` above.
        self.tail.with_mut(|t| unsafe { *t = tail });
        // Release: pairs with the Acquire load in `count`.
        self.len.store(len + 1, Ordering::Release);
    }

    /// How many offsets are readable.
    #[inline]
    pub(super) fn count(&self) -> u64 {
        // Acquire: pairs with the Release store in `push`.
        self.len.load(Ordering::Acquire)
    }

    /// Element `i`.
    ///
    /// # Safety
    ///
    /// `i` must be below a value `count()` returned.
    #[inline]
    pub(super) unsafe fn get(&self, i: u64) -> u64 {
        let slot = self.slots.get(i).expect("a counted element has a bucket");
        // SAFETY:
        // 1. `i < count()`, so the write of element `i` happens-before (Release/Acquire on `len`)
        //    and no write to it follows.
        slot.0.with(|p| unsafe { *p })
    }

    /// The first index in `0..count` whose offset is ≥ `from`.
    ///
    /// # Safety
    ///
    /// `count` must be a value `self.count()` returned.
    pub(super) unsafe fn search(&self, count: u64, from: u64) -> u64 {
        let (mut lo, mut hi) = (0, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            // SAFETY: 1. `mid < hi <= count`.
            if unsafe { self.get(mid) } < from {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}
