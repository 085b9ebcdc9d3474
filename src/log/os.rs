//! The operating system's memory mappings, for the log's buckets and the huge-page pool: fresh
//! zeroed anonymous mappings (`mmap`), offered to transparent huge pages (`madvise`), and their
//! release (`munmap`). Linux only.

use std::ptr;

/// The huge page size (x86-64 and aarch64 with 4 KiB pages): buckets of at least this many bytes
/// are mapped aligned to it and offered to transparent huge pages; it is also the size of the
/// pool's chunks.
pub(super) const HUGE: usize = 2 << 20;

/// A fresh anonymous mapping of `size` bytes (a multiple of the page size): zeroed, page-aligned,
/// and, from `HUGE` bytes on, `HUGE`-aligned and offered to transparent huge pages (an unaligned
/// mapping could use huge pages only for its aligned interior).
pub(super) fn map_zeroed(size: usize) -> *mut u8 {
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

/// Unmaps `size` bytes at `p`.
///
/// # Safety
///
/// `p..p + size` must be (part of) a mapping made by [`map_zeroed`], page-aligned, that nothing
/// uses any more.
pub(super) unsafe fn unmap(p: *mut u8, size: usize) {
    // SAFETY: 1. Passed on from the caller; a failure (which the contract rules out) would only
    //    leave the memory mapped.
    unsafe { libc::munmap(p.cast(), size) };
}
