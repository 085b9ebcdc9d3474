//! The broker binary's global allocator: the system allocator, except that a single allocation
//! of 1 GiB or more is an anonymous `mmap` with `MAP_NORESERVE`.
//!
//! Why: the `kafka-protocol` decoders size a `Vec` from the length an array claims before reading
//! its elements (`Vec::with_capacity(n)`), so a 30-byte JoinGroup that claims 2³¹ protocols asks
//! for ~170 GB. Linux's default heuristic overcommit refuses a request larger than RAM + swap,
//! and Rust aborts the process on a refused allocation — one bad frame would kill every
//! connection. A `MAP_NORESERVE` mapping is not counted against the overcommit heuristic (the
//! kernel's `accountable_mapping`), so the request succeeds as untouched address space; the
//! decoder then runs out of bytes, fails, and the mapping is unmapped. Memory that is actually
//! written is backed page by page as usual. Under `vm.overcommit_memory=2` such a mapping is
//! still refused (and the process aborts, as it would without this allocator).

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are mapped with `MAP_NORESERVE`.
pub const HUGE: usize = 1 << 30;

/// The system allocator with `MAP_NORESERVE` for huge allocations (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReserveHuge;

fn huge(layout: Layout) -> bool {
    layout.size() >= HUGE
}

/// Maps `size` bytes, zeroed, readable and writable; null on failure or an alignment above a
/// page.
fn map(layout: Layout) -> *mut u8 {
    if layout.align() > 4096 {
        return std::ptr::null_mut();
    }
    // SAFETY: 1. an anonymous private mapping at an address of the kernel's choice touches no
    // existing memory; 2. every argument is valid for mmap(2); 3. the result is checked against
    // MAP_FAILED before use.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            layout.size(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

// SAFETY: every method upholds `GlobalAlloc`'s contract: small layouts go to `System` unchanged;
// huge ones get a fresh page-aligned (hence suitably aligned, as align ≤ 4096 is checked) mapping
// of at least `size` bytes, released by `munmap` with the same size, which `dealloc` and
// `realloc` receive in `layout` by the trait's contract. Nothing here unwinds.
unsafe impl GlobalAlloc for NoReserveHuge {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if huge(layout) {
            map(layout)
        } else {
            // SAFETY: the caller's contract (non-zero size) is passed on unchanged.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if huge(layout) {
            // Anonymous mappings are zero-filled.
            map(layout)
        } else {
            // SAFETY: as in `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if huge(layout) {
            // SAFETY: 1. `ptr` came from `map` with this size (the caller passes the layout it
            // allocated with); 2. nothing uses the memory after dealloc.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            // SAFETY: `ptr` came from `System` with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !huge(layout) && new_size < HUGE {
            // SAFETY: both sizes are small: `System` owns `ptr` and serves the new size.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: `new_size` with the old alignment is a valid layout (the trait's contract
        // requires it not to overflow isize when rounded up to the alignment).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: non-zero size (≥ HUGE, or the old layout was huge and the caller's new size
        // is non-zero by contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: 1. both blocks are live and distinct; 2. the copy stays within both sizes;
            // 3. `ptr` was allocated by `self` with `layout`.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// glibc's `mmap` threshold for the broker: 32 MiB, fixed.
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// glibc's trim threshold for the broker: 64 MiB.
pub const TRIM_THRESHOLD: usize = 64 << 20;

/// Sets glibc malloc's `M_MMAP_THRESHOLD` to [`MMAP_THRESHOLD`] and `M_TRIM_THRESHOLD` to
/// [`TRIM_THRESHOLD`], unless `GLIBC_TUNABLES` is set (the operator's choice wins). A no-op on
/// other C libraries. Returns whether it set them.
///
/// Why: each Produce request is read into a connection buffer of the frame's size (64 KiB to
/// a few MiB) that the stored batches then share. By default glibc serves such a buffer with
/// its own `mmap` (the threshold starts at 128 KiB and only adapts later), and frees it with
/// `munmap`; with `--data-dir` the tail evicts written batches all the time, so every new frame
/// paid page faults and the kernel's page clearing on fresh memory (~18% of the broker's CPU
/// in a `perf` profile of 100-byte records). With the buffers on the heap, and freed heap kept
/// up to 64 MiB instead of trimmed, evicted buffers are reused without faults. Measured in
/// benches/README.md ("Durable storage"). Resident memory stays bounded: what is kept is what
/// the tail recently freed.
pub fn tune_malloc_for_frames() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("GLIBC_TUNABLES").is_some() {
            return false;
        }
        // SAFETY: mallopt only changes the allocator's parameters; it is called before any
        // other thread exists (the start of `kafka::main`), both values are valid sizes that
        // fit an int.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Backs the whole pages inside `region` with memory now, in one system call
/// (`madvise(MADV_POPULATE_WRITE)`, Linux 5.14+), instead of one page fault per 4 KiB page as
/// they are first written; returns the bytes asked for. A hint: an error (an older kernel) is
/// ignored, and the pages then fault as usual. A no-op elsewhere than Linux.
///
/// Why: a Produce request is read into a buffer of its own size, which its stored batches keep.
/// Faulting that fresh memory in page by page (exception, zeroing, memory-cgroup charge) was
/// ~45% of the broker's CPU per produced record in a `perf` profile of 100-byte records.
/// Populating the pages the frame will fill costs the zeroing and the charge, not the
/// exceptions. Only pages the caller will write are asked for, so no memory is added.
pub fn prefault(region: &mut [std::mem::MaybeUninit<u8>]) -> usize {
    const PAGE: usize = 4096;
    let start = region.as_ptr() as usize;
    let first = start.next_multiple_of(PAGE);
    let end = (start + region.len()) / PAGE * PAGE;
    if end <= first {
        return 0;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: 1. `first..end` lies inside `region`, memory this process owns and holds a unique
    // borrow of; 2. MADV_POPULATE_WRITE changes no byte of it (it faults pages in as a write
    // would, keeping the contents of pages already present).
    unsafe {
        libc::madvise(
            first as *mut libc::c_void,
            end - first,
            libc::MADV_POPULATE_WRITE,
        );
    }
    end - first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_requests_are_mapped_and_released_small_ones_pass_through() {
        let a = NoReserveHuge;
        // 64 GiB: more than this machine's RAM, refused by the default heuristic without
        // MAP_NORESERVE.
        let big = Layout::from_size_align(64 << 30, 8).unwrap();
        // SAFETY: non-zero layouts; every pointer is freed with the layout it was allocated with.
        unsafe {
            let p = a.alloc(big);
            assert!(!p.is_null());
            *p = 7;
            *p.add(big.size() - 1) = 9;
            assert_eq!(*p, 7);
            a.dealloc(p, big);
            let small = Layout::from_size_align(64, 8).unwrap();
            let q = a.alloc_zeroed(small);
            assert_eq!(*q, 0);
            let q = a.realloc(q, small, HUGE);
            assert!(!q.is_null());
            let q = a.realloc(q, Layout::from_size_align(HUGE, 8).unwrap(), 128);
            a.dealloc(q, Layout::from_size_align(128, 8).unwrap());
        }
    }

    #[test]
    fn prefault_asks_for_the_whole_pages_inside_the_region_and_keeps_contents() {
        let mut buf: Vec<u8> = Vec::with_capacity(5 * 4096);
        buf.extend_from_slice(b"kept");
        let spare = buf.spare_capacity_mut();
        let start = spare.as_ptr() as usize;
        let whole = (start + spare.len()) / 4096 * 4096 - start.next_multiple_of(4096);
        assert_eq!(prefault(spare), whole);
        assert!(whole >= 3 * 4096);
        assert_eq!(prefault(&mut spare[..4095]), 0);
        assert_eq!(&buf[..], b"kept");
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_takes_the_frame_thresholds_unless_the_operator_set_tunables() {
        let set = tune_malloc_for_frames();
        assert_eq!(set, std::env::var_os("GLIBC_TUNABLES").is_none());
    }
}
