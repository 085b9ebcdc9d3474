//! The process-wide pool of huge-page chunks from which mid-sized buckets are carved.
//!
//! A bucket of `MIN..HUGE` bytes (64 KiB up to 1 MiB) is too large for the allocator to hand out
//! zeroed without a `memset`, and too small for a 2 MiB huge page of its own. Every log's
//! mid-sized record buckets (those of a `Buckets` with `POOLED`) are therefore bump-allocated from
//! one shared *chunk*: a 2 MiB-aligned 2 MiB anonymous mapping offered to transparent huge pages.
//! So
//! sixteen partitions whose record buckets reach 128 KiB share one huge page (one fault, 2 MiB
//! zeroed) instead of faulting 32 small pages each, and a partition of a few thousand records holds
//! its own bytes, not a 2 MiB arena of its own.
//!
//! Memory is fresh from the kernel and handed out once, so it is zeroed, as [`Buckets`] requires.
//! A chunk counts its live buckets; when a chunk has been replaced by a newer one (it is full) and
//! its last bucket is freed, it is unmapped. The current chunk is unmapped too once it is empty,
//! as its handed-out memory is no longer zero and cannot be handed out again. Freed space is not
//! reused otherwise: logs never free buckets before they drop, so a chunk empties only when the
//! logs that used it are gone.
//!
//! # Locking
//!
//! One mutex guards the pool. It is taken only to allocate or free a mid-sized bucket, which a log
//! does about once per doubling of its size (a handful of times over millions of appends), never
//! on the append or read path: appends and reads stay lock-free. Nothing else is held while the
//! mutex is, and no code that runs under it can panic except on an exhausted address space.
//!
//! [`Buckets`]: super::Buckets

use super::os::{map_zeroed, unmap, HUGE};
use crate::loom::{lock, Mutex};
use std::collections::BTreeMap;

/// Buckets of at least this many bytes, and below [`HUGE`], come from the pool.
pub(crate) const MIN: usize = 64 << 10;

/// Every bucket carved from a chunk starts at a multiple of this: a cache line, so that buckets of
/// different logs never share one.
const ALIGN: usize = 64;

/// A pool of chunks: the process has one, [`POOL`], under a mutex (tests make their own).
struct Pool {
    /// The chunk being carved, and how many of its bytes are handed out.
    current: Option<(usize, usize)>,
    /// Live buckets per chunk (by base address), for every chunk still mapped. A cold-path map
    /// (touched once per bucket), so a `BTreeMap`, which a `static` can hold without a lazy init.
    live: BTreeMap<usize, usize>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool::new());

fn pool() -> crate::loom::MutexGuard<'static, Pool> {
    // Each of the pool's updates is made whole or not at all (the only call that can panic, a
    // failed `mmap`, comes before them), so a poisoned lock still guards a consistent pool.
    lock(&POOL)
}

/// `size` zeroed bytes (`MIN <= size < HUGE`), aligned to 64 bytes, carved from a shared
/// huge-page chunk.
pub(crate) fn alloc(size: usize) -> *mut u8 {
    pool().alloc(size)
}

/// Gives back a bucket from [`alloc`].
///
/// # Safety
///
/// `p` must come from [`alloc`] and must not be used afterwards.
pub(crate) unsafe fn free(p: *mut u8) {
    // SAFETY: 1. Passed on from the caller; `alloc` took it from the process's pool.
    unsafe { pool().free(p) }
}

impl Pool {
    const fn new() -> Self {
        Pool {
            current: None,
            live: BTreeMap::new(),
        }
    }

    fn alloc(&mut self, size: usize) -> *mut u8 {
        debug_assert!((MIN..HUGE).contains(&size));
        let size = size.next_multiple_of(ALIGN);
        let (base, used) = match self.current {
            Some((base, used)) if used + size <= HUGE => (base, used),
            full => {
                let base = map_zeroed(HUGE) as usize;
                self.current = None;
                if let Some((old, _)) = full {
                    // The full chunk is retired; unmap it if nothing lives in it any more.
                    self.release_if_empty(old);
                }
                self.live.insert(base, 0);
                (base, 0)
            }
        };
        self.current = Some((base, used + size));
        *self.live.get_mut(&base).expect("a mapped chunk is counted") += 1;
        (base + used) as *mut u8
    }

    /// # Safety
    ///
    /// `p` must come from this pool's [`Pool::alloc`] and must not be used afterwards.
    unsafe fn free(&mut self, p: *mut u8) {
        let base = p as usize & !(HUGE - 1);
        let live = self
            .live
            .get_mut(&base)
            .expect("a pooled bucket's chunk is mapped");
        *live -= 1;
        if *live == 0 {
            if self.is_current(base) {
                // Its handed-out bytes are no longer zero: the next bucket starts a fresh chunk.
                self.current = None;
            }
            self.release_if_empty(base);
        }
    }

    fn is_current(&self, base: usize) -> bool {
        matches!(self.current, Some((current, _)) if current == base)
    }

    /// Unmaps chunk `base` if it holds no live bucket and is not the current chunk.
    fn release_if_empty(&mut self, base: usize) {
        if !self.is_current(base) && self.live.get(&base) == Some(&0) {
            self.live.remove(&base);
            // SAFETY:
            // 1. `base` is a chunk mapped by `map_zeroed(HUGE)` in `alloc`, still mapped (it is
            //    in `live`), and no bucket in it is live, so nothing uses its memory.
            unsafe { unmap(base as *mut u8, HUGE) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `p`'s chunk.
    fn chunk(p: *mut u8) -> usize {
        p as usize & !(HUGE - 1)
    }

    #[test]
    fn buckets_share_chunks_which_go_when_their_buckets_do() {
        let mut pool = Pool::new();
        // 64 KiB + 128 KiB + 4 × 256 KiB + 512 KiB fill 1,728 KiB of the first chunk; the next
        // 512 KiB does not fit (1,728 + 512 > 2,048) and starts a second chunk.
        let sizes = [
            MIN,
            2 * MIN,
            4 * MIN,
            4 * MIN,
            4 * MIN,
            4 * MIN,
            8 * MIN,
            8 * MIN,
        ];
        let buckets: Vec<(*mut u8, usize)> = sizes.iter().map(|&n| (pool.alloc(n), n)).collect();
        let first = chunk(buckets[0].0);
        assert_eq!(first % HUGE, 0);
        for (i, &(p, n)) in buckets.iter().enumerate() {
            assert_eq!(p as usize % ALIGN, 0);
            assert_eq!(chunk(p) == first, i < 7, "bucket {i}");
            assert!(
                p as usize + n <= chunk(p) + HUGE,
                "bucket {i} inside its chunk"
            );
            // SAFETY: 1. `p` is `n` bytes of ours, mapped, from this pool.
            let bytes = unsafe { std::slice::from_raw_parts_mut(p, n) };
            assert!(bytes.iter().all(|&x| x == 0), "fresh buckets are zeroed");
            bytes.fill(0xa5);
        }
        let mut spans: Vec<(usize, usize)> =
            buckets.iter().map(|&(p, n)| (p as usize, n)).collect();
        spans.sort_unstable();
        assert!(
            spans.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0),
            "disjoint"
        );
        assert_eq!(pool.live.len(), 2);
        assert_eq!(pool.live[&first], 7);
        // Freeing the full chunk's buckets unmaps it with the last of them.
        for &(p, _) in &buckets[..7] {
            assert!(pool.live.contains_key(&first));
            // SAFETY: 1. From this pool's `alloc`, not used again.
            unsafe { pool.free(p) };
        }
        assert!(
            !pool.live.contains_key(&first),
            "an empty retired chunk is unmapped"
        );
        // The current chunk goes too once empty, and the next bucket comes from a fresh one.
        // SAFETY: 1. As above.
        unsafe { pool.free(buckets[7].0) };
        assert!(pool.live.is_empty());
        assert!(pool.current.is_none());
        let again = pool.alloc(MIN);
        // SAFETY: 1. `again` is `MIN` bytes of ours.
        let bytes = unsafe { std::slice::from_raw_parts(again, MIN) };
        assert!(
            bytes.iter().all(|&x| x == 0),
            "never a reused, dirty bucket"
        );
        assert_eq!(pool.live.len(), 1);
        // SAFETY: 1. As above.
        unsafe { pool.free(again) };
        assert!(pool.live.is_empty());
    }
}
