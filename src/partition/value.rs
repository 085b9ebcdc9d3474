//! A log entry's value in 24 bytes: a record's bytes inline up to 23 bytes, or boxed; or a boxed
//! [`Stored`] batch. And the word-wise byte helpers that the key table shares.

use super::Stored;

/// Values up to this many bytes are stored inside the record.
pub(super) const INLINE: usize = 23;

/// The tag (last byte) of a boxed value; a tag up to `INLINE` is the length of an inline value.
pub(super) const HEAP: u8 = u8::MAX;

/// The tag of a boxed [`Stored`] batch (its `Boxed::ptr` is a `Box<Stored>`, its `len` 0).
const BATCH: u8 = u8::MAX - 1;

/// A record's value in 24 bytes: up to 23 bytes inline (JSON numbers, the common case), or a boxed
/// slice, or a boxed batch. The last byte is the tag. An inline value is built from a few overlapping unaligned loads
/// combined in registers and stored as whole words, with no byte-wise stores that a later
/// word-sized copy of the record would have to wait for.
#[repr(C)]
pub(super) union Value {
    /// Inline: the bytes, little-endian within each word; the tag in the top byte of `[2]`.
    inline: [u64; 3],
    heap: Boxed,
}

/// The boxed form of a [`Value`].
#[repr(C)]
#[derive(Clone, Copy)]
struct Boxed {
    ptr: *mut u8,
    len: usize,
    /// `(HEAP as u64) << 56` in the native byte order of `inline[2]`.
    tag: u64,
}

const _: () = assert!(std::mem::size_of::<Boxed>() == 24);

/// `src[i..i + 8]` as a little-endian integer.
#[inline(always)]
pub(super) fn load8(src: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(src[i..i + 8].try_into().expect("8 bytes"))
}

/// `src[i..i + 4]` as a little-endian integer.
#[inline(always)]
pub(super) fn load4(src: &[u8], i: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        src[i..i + 4].try_into().expect("4 bytes"),
    ))
}

/// The three words of an inline value of `src` (at most `INLINE` bytes), tag included. Each size
/// class reads two or three overlapping chunks that together cover `src`; overlapping bytes are
/// the same, so or-ing or shifting them into place is exact.
#[inline(always)]
fn inline_words(src: &[u8]) -> [u64; 3] {
    let n = src.len();
    debug_assert!(n <= INLINE);
    let mut w = [0u64; 3];
    match n {
        0 => {}
        1..=3 => {
            w[0] = u64::from(src[0])
                | u64::from(src[n / 2]) << (8 * (n / 2))
                | u64::from(src[n - 1]) << (8 * (n - 1));
        }
        4..=8 => w[0] = load4(src, 0) | load4(src, n - 4) << (8 * (n - 4)),
        9..=16 => {
            w[0] = load8(src, 0);
            w[1] = load8(src, n - 8) >> (8 * (16 - n));
        }
        _ => {
            w[0] = load8(src, 0);
            w[1] = load8(src, 8);
            w[2] = load8(src, n - 8) >> (8 * (24 - n));
        }
    }
    w[2] |= (n as u64) << 56;
    // Stored so that the bytes in memory are little-endian on any target.
    [w[0].to_le(), w[1].to_le(), w[2].to_le()]
}

impl Value {
    #[inline]
    pub(super) fn new(value: &[u8]) -> Self {
        if value.len() <= INLINE {
            Value {
                inline: inline_words(value),
            }
        } else {
            let boxed: Box<[u8]> = value.into();
            let len = boxed.len();
            Value {
                heap: Boxed {
                    ptr: Box::into_raw(boxed) as *mut u8,
                    len,
                    tag: ((HEAP as u64) << 56).to_le(),
                },
            }
        }
    }

    /// A value that owns `batch`.
    pub(super) fn batch(batch: Box<Stored>) -> Self {
        Value {
            heap: Boxed {
                ptr: Box::into_raw(batch).cast::<u8>(),
                len: 0,
                tag: ((BATCH as u64) << 56).to_le(),
            },
        }
    }

    /// The batch, if this value is one.
    #[inline]
    pub(super) fn as_batch(&self) -> Option<&Stored> {
        if self.tag() == BATCH {
            // SAFETY:
            // 1. The tag says `heap` holds the `Box<Stored>` leaked in `batch`, which lives until
            //    `drop`, and `&self` outlives this borrow.
            Some(unsafe { &*self.heap.ptr.cast::<Stored>() })
        } else {
            None
        }
    }

    #[inline]
    pub(super) fn tag(&self) -> u8 {
        // SAFETY:
        // 1. All forms initialize all 24 bytes, and the last word is an integer in both
        //    (`inline[2]` or `Boxed::tag`), so reading it as `u64` is always valid.
        (u64::from_le(unsafe { self.inline[2] }) >> 56) as u8
    }

    /// The record's bytes; empty for a batch.
    #[inline]
    pub(super) fn as_slice(&self) -> &[u8] {
        let tag = self.tag();
        if tag == BATCH {
            &[]
        } else if tag == HEAP {
            // SAFETY:
            // 1. The tag says `heap` was written: `ptr` and `len` are those of the boxed slice
            //    leaked in `new`, which lives until `drop`, and `&self` outlives this borrow.
            unsafe { std::slice::from_raw_parts(self.heap.ptr, self.heap.len) }
        } else {
            // SAFETY:
            // 1. The tag says `inline` was written: 24 initialized bytes, whose first `tag`
            //    (≤ 23) are the value, in order (little-endian words).
            unsafe {
                std::slice::from_raw_parts(self.inline.as_ptr().cast::<u8>(), usize::from(tag))
            }
        }
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        if self.tag() == BATCH {
            // SAFETY:
            // 1. The tag says `heap` holds the `Box<Stored>` leaked in `batch`, dropped once, here.
            drop(unsafe { Box::from_raw(self.heap.ptr.cast::<Stored>()) });
        } else if self.tag() == HEAP {
            // SAFETY:
            // 1. The tag says `heap` was written: the boxed slice leaked in `new`, dropped once,
            //    here.
            unsafe {
                drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.heap.ptr,
                    self.heap.len,
                )))
            };
        }
    }
}

/// `a == b`, inline for the short keys that are the common case (no `memcmp` call).
#[inline]
pub(super) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=8 => load4(a, 0) == load4(b, 0) && load4(a, n - 4) == load4(b, n - 4),
        9..=16 => load8(a, 0) == load8(b, 0) && load8(a, n - 8) == load8(b, n - 8),
        _ => a == b,
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn bytes_eq_agrees_with_slice_equality() {
        let base: Vec<u8> = (0..40u8).collect();
        for n in 0..=40 {
            assert!(bytes_eq(&base[..n], &base[..n]));
            for i in 0..n {
                let mut other = base[..n].to_vec();
                other[i] ^= 0x80;
                assert!(!bytes_eq(&base[..n], &other), "length {n}, byte {i}");
            }
            if n > 0 {
                assert!(!bytes_eq(&base[..n], &base[..n - 1]));
            }
        }
    }

    #[test]
    fn values_of_every_length_round_trip() {
        let src: Vec<u8> = (1..=40u8).collect();
        for n in 0..=40 {
            let v = Value::new(&src[..n]);
            assert_eq!(v.as_slice(), &src[..n], "length {n}");
            assert_eq!(v.tag() == HEAP, n > INLINE, "length {n}");
        }
    }
}
