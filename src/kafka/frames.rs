//! The answers a connection has encoded and not yet written, kept as byte segments so that a
//! Fetch answer's records go to the socket straight from the stored batches (vectored writes,
//! 64 segments at a time), never copied into the answer.
//!
//! kafka-protocol encodes a Fetch answer's `records` field from one `Bytes`, while a fetch finds
//! its records as pieces (copied heads and small batches, and shared slices of the large stored
//! batches, [`crate::partition::Partition::fetch`]). The Fetch handler gives the field a *stand-in*
//! ([`Splices::field`]): a slice, of the pieces' total length, of a static all-zero region that
//! nothing ever reads. The crate writes the field's length prefix from it and then `put_slice`s
//! it into [`Frames`], the buffer it encodes into, which recognises the stand-in by its address
//! and records the pieces at that point instead of copying the zeros. Every other byte of every
//! answer is encoded by the crate into one `BytesMut`, as before; nothing of the wire format is
//! written here.
//!
//! A shared slice keeps its stored batch's buffer (the Produce request it came in) alive until
//! the answer is written, even if retention or the `--data-dir` tail drops the batch meanwhile:
//! at most one answer's worth per connection.

use bytes::buf::UninitSlice;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use bytes_utils::SegmentedBuf;
use kafka_protocol::messages::{ResponseHeader, ResponseKind};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::Encodable;
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::ops::Range;

/// The largest records field that is spliced rather than copied, in bytes. A partition's
/// records in one answer are bounded by the request's `partition_max_bytes` (librdkafka's
/// default is 1 MiB) except for a first batch larger than that (KIP-74); a larger field is
/// copied.
const STAND_IN_BYTES: usize = 64 << 20;

/// The stand-ins' region. An `UnsafeCell` so that it is placed in `.bss` (address space, no
/// file bytes, no memory: no byte of it is ever read or written) rather than among the
/// binary's read-only data.
struct StandIn(UnsafeCell<[u8; STAND_IN_BYTES]>);

// SAFETY: nothing ever writes through the cell; only shared references to its bytes are made
// (`stand_in`), which any number of threads may hold.
unsafe impl Sync for StandIn {}

static STAND_IN: StandIn = StandIn(UnsafeCell::new([0; STAND_IN_BYTES]));

/// The first `n` bytes of the stand-ins' region (`n` ≤ [`STAND_IN_BYTES`]).
fn stand_in(n: usize) -> &'static [u8] {
    // SAFETY: the region is never written (see `StandIn`), so a shared reference to it is
    // valid for as long as the program runs.
    let region: &'static [u8; STAND_IN_BYTES] = unsafe { &*STAND_IN.0.get() };
    &region[..n]
}

fn is_stand_in(src: &[u8]) -> bool {
    !src.is_empty() && std::ptr::eq(src.as_ptr(), STAND_IN.0.get().cast::<u8>())
}

/// The pieces that one answer's records fields stand for, in the order the encoder meets the
/// fields (the order of the answer's topics and partitions).
#[derive(Debug, Default)]
pub struct Splices {
    fields: VecDeque<SegmentedBuf<Bytes>>,
}

impl Splices {
    /// The value for a records field holding `pieces`: a stand-in that [`Frames`] replaces with
    /// the pieces, or (empty, or over 64 MiB) the bytes themselves.
    pub fn field(&mut self, mut pieces: SegmentedBuf<Bytes>) -> Bytes {
        let n = pieces.remaining();
        if n == 0 || n > STAND_IN_BYTES {
            return pieces.copy_to_bytes(n);
        }
        self.fields.push_back(pieces);
        Bytes::from_static(stand_in(n))
    }
}

/// Encoded answers, not yet written: the bytes the crate encoded, and the pieces spliced in at
/// their stand-ins' places.
#[derive(Debug)]
pub struct Frames {
    head: BytesMut,
    /// (offset in `head`, pieces written at that point), in offset order.
    spliced: Vec<(usize, SegmentedBuf<Bytes>)>,
    /// While an answer is encoded: the pieces its stand-ins wait for, the bytes spliced so far,
    /// and whether a stand-in came without pieces (a bug: the answer is dropped).
    pending: Splices,
    pending_bytes: usize,
    lost: bool,
}

impl Default for Frames {
    fn default() -> Self {
        Frames {
            head: BytesMut::with_capacity(64 * 1024),
            spliced: Vec::new(),
            pending: Splices::default(),
            pending_bytes: 0,
            lost: false,
        }
    }
}

impl Frames {
    /// Whether nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.spliced.is_empty()
    }

    /// Appends one framed answer: its size (i32), `header` at `header_version`, `body` at
    /// `version`, with `splices` in place of `body`'s stand-ins.
    ///
    /// # Errors
    ///
    /// The crate's encode error, a framed size over `i32::MAX`, or stand-ins and splices that do
    /// not match (a bug). The frames are left as they were.
    pub fn put_answer(
        &mut self,
        header: &ResponseHeader,
        header_version: i16,
        body: &ResponseKind,
        version: i16,
        splices: Splices,
    ) -> Result<(), String> {
        let start = self.head.len();
        let spliced_before = self.spliced.len();
        self.head.put_i32(0);
        self.pending = splices;
        self.pending_bytes = 0;
        self.lost = false;
        // Only a Fetch answer has records fields; the others go straight into `head`.
        let encoded = header
            .encode(&mut self.head, header_version)
            .and_then(|()| match body {
                ResponseKind::Fetch(fetch) => fetch.encode(self, version),
                other => other.encode(&mut self.head, version),
            })
            .map_err(|e| format!("{e:#}"));
        let size = self.head.len() - start - 4 + self.pending_bytes;
        let checked = encoded.and_then(|()| {
            if self.lost || !self.pending.fields.is_empty() {
                Err("a records stand-in and its pieces do not match".to_string())
            } else {
                i32::try_from(size).map_err(|_| format!("an answer of {size} bytes"))
            }
        });
        self.pending = Splices::default();
        match checked {
            Ok(size) => {
                self.head[start..start + 4].copy_from_slice(&size.to_be_bytes());
                Ok(())
            }
            Err(e) => {
                self.head.truncate(start);
                self.spliced.truncate(spliced_before);
                Err(e)
            }
        }
    }

    /// Everything appended so far, in order, for one vectored write; leaves the frames empty.
    pub fn take(&mut self) -> SegmentedBuf<Bytes> {
        let head = self.head.split().freeze();
        let mut out = SegmentedBuf::new();
        let mut at = 0;
        for (offset, pieces) in self.spliced.drain(..) {
            if offset > at {
                out.push(head.slice(at..offset));
            }
            at = offset;
            // `push`, not `extend`: `SegmentedBuf::extend` re-sums every segment.
            for piece in pieces.into_inner() {
                out.push(piece);
            }
        }
        if head.len() > at {
            out.push(head.slice(at..));
        }
        out
    }
}

// SAFETY: the unsafe parts of the contract (`chunk_mut` is writable memory, `advance_mut` only
// past initialised bytes, within `remaining_mut`) are `head`'s, a `BytesMut`, to which those
// three methods forward. `put_slice` forwards too, or writes nothing to `head` for a spliced
// stand-in; that is memory-safe, and on purpose it leaves `head`'s cursor (and `offset()`)
// short of the spliced bytes, which `take` writes at their place.
unsafe impl BufMut for Frames {
    fn remaining_mut(&self) -> usize {
        self.head.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's promise (the first `cnt` bytes of `chunk_mut`, which is `head`'s,
        // are initialised) is the one `BytesMut::advance_mut` needs.
        unsafe { self.head.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.head.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if is_stand_in(src) {
            match self.pending.fields.pop_front() {
                Some(pieces) if pieces.remaining() == src.len() => {
                    self.pending_bytes += src.len();
                    self.spliced.push((self.head.len(), pieces));
                    return;
                }
                _ => self.lost = true,
            }
        }
        self.head.put_slice(src);
    }
}

/// Offsets count the bytes in `head` only. The crate uses gaps (`put_gap`, `range`) to encode
/// record batches and compressed blocks, never around a records field of a message, so no gap
/// spans a splice.
impl ByteBufMut for Frames {
    fn offset(&self) -> usize {
        self.head.len()
    }

    fn seek(&mut self, offset: usize) {
        self.head.resize(offset, 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        &mut self.head[r]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::FetchResponse;
    use kafka_protocol::protocol::Decodable;

    fn pieces(parts: &[&'static [u8]]) -> SegmentedBuf<Bytes> {
        parts.iter().map(|p| Bytes::from_static(p)).collect()
    }

    fn answer(records: Vec<Bytes>) -> ResponseKind {
        ResponseKind::Fetch(FetchResponse::default().with_responses(
            vec![FetchableTopicResponse::default()
                .with_partitions(
                    records
                        .into_iter()
                        .enumerate()
                        .map(|(i, r)| {
                            PartitionData::default()
                                .with_partition_index(i as i32)
                                .with_records(Some(r))
                        })
                        .collect(),
                )],
        ))
    }

    /// Spliced answers are byte for byte what the crate encodes from the records themselves.
    #[test]
    fn spliced_answers_match_the_copied_encoding() {
        for version in [4, 11, 12] {
            let parts: [&[&'static [u8]]; 3] = [&[b"abc", b"defg"], &[], &[b"hi"]];
            let mut splices = Splices::default();
            let stand_ins = parts.iter().map(|p| splices.field(pieces(p))).collect();
            let copied = parts.iter().map(|p| Bytes::from(p.concat())).collect();
            let header = ResponseHeader::default().with_correlation_id(7);
            let mut frames = Frames::default();
            frames
                .put_answer(&header, 0, &answer(stand_ins), version, splices)
                .unwrap();
            frames
                .put_answer(&header, 0, &answer(vec![]), version, Splices::default())
                .unwrap();
            let mut want = Frames::default();
            for body in [answer(copied), answer(vec![])] {
                want.put_answer(&header, 0, &body, version, Splices::default())
                    .unwrap();
            }
            let mut got = frames.take();
            assert!(frames.is_empty());
            assert!(got.segments() > 2, "the records are separate segments");
            let mut want = want.take();
            assert_eq!(
                got.copy_to_bytes(got.remaining()),
                want.copy_to_bytes(want.remaining()),
                "v{version}"
            );
        }
    }

    #[test]
    fn the_spliced_bytes_decode_as_the_records() {
        let mut splices = Splices::default();
        let field = splices.field(pieces(&[b"0123", b"4567"]));
        let mut frames = Frames::default();
        let header = ResponseHeader::default();
        frames
            .put_answer(&header, 0, &answer(vec![field]), 12, splices)
            .unwrap();
        let mut out = frames.take();
        let mut bytes = out.copy_to_bytes(out.remaining());
        let size = bytes.get_i32() as usize;
        assert_eq!(size, bytes.len());
        ResponseHeader::decode(&mut bytes, 0).unwrap();
        let decoded = FetchResponse::decode(&mut bytes, 12).unwrap();
        assert_eq!(
            decoded.responses[0].partitions[0].records.as_deref(),
            Some(&b"01234567"[..])
        );
    }

    /// A stand-in whose pieces were not handed over is an error, and nothing is kept.
    #[test]
    fn a_stand_in_without_its_pieces_is_refused() {
        let mut splices = Splices::default();
        let field = splices.field(pieces(&[b"abc"]));
        let mut frames = Frames::default();
        let header = ResponseHeader::default();
        let body = answer(vec![field]);
        assert!(frames
            .put_answer(&header, 0, &body, 12, Splices::default())
            .is_err());
        assert!(frames.is_empty());
        // And pieces with no stand-in to take them.
        assert!(frames
            .put_answer(&header, 0, &answer(vec![]), 12, splices)
            .is_err());
        assert!(frames.is_empty());
    }
}
