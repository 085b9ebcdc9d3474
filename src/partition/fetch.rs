//! A Kafka fetch from a partition: whole RecordBatch v2 batches from an offset on, gathered as
//! pieces that a connection writes without copying the stored batches again
//! ([`Partition::fetch`]); the durable write-through reuses the in-memory half.

use super::{OffsetOutOfRange, Partition, Record};
use crate::batch::Batch;
use bytes::{Buf, Bytes, BytesMut};
use bytes_utils::SegmentedBuf;

/// Why [`Partition::fetch`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// Outside the log: Kafka's OFFSET_OUT_OF_RANGE (1).
    OutOfRange(OffsetOutOfRange),
    /// A read from disk failed: Kafka's KAFKA_STORAGE_ERROR (56).
    Storage(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::OutOfRange(e) => e.fmt(f),
            FetchError::Storage(why) => write!(f, "reading from disk failed: {why}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// A fetch from memory found the batch at this offset evicted (its bytes are on disk).
#[derive(Debug)]
pub(super) struct Evicted(u64);

/// The most records a run of single records is encoded into one batch by [`Partition::fetch`].
const FETCH_RUN: usize = 4096;

/// A stored batch at least this large is shared with a fetch's answer; a smaller one is copied,
/// so that an answer of many small batches is a few large pieces (a vectored write takes 64 at a
/// time), not two pieces per batch.
pub(super) const SHARE_MIN: usize = 4096;

/// What [`Partition::fetch_memory`] gathers: its pieces so far in `out`, then the bytes it copies
/// (batch heads, small batches, encoded runs of records) in `copied`, which becomes one piece
/// before each shared batch and at the end.
struct Gathered<'a> {
    out: &'a mut SegmentedBuf<Bytes>,
    copied: BytesMut,
    /// `len()` when the fetch began.
    before: usize,
}

impl Gathered<'_> {
    fn len(&self) -> usize {
        self.out.remaining() + self.copied.len()
    }

    /// Appends a stored batch, served from offset `base`.
    fn batch(&mut self, batch: &Batch, base: u64) {
        let (head, rest) = batch.served(base);
        self.copied.extend_from_slice(&head);
        if rest.len() < SHARE_MIN {
            self.copied.extend_from_slice(&rest);
        } else {
            self.flush();
            self.out.push(rest);
        }
    }

    fn flush(&mut self) {
        if !self.copied.is_empty() {
            self.out.push(self.copied.split().freeze());
        }
    }
}

impl Partition {
    /// Appends to `out` the RecordBatch v2 bytes of the records from offset `from` on, in whole
    /// batches, as a Kafka fetch returns them: at least one batch if there is any record at or
    /// above `from` (even one larger than `max_bytes`, as Kafka does, so that a consumer never
    /// stalls on a large batch), then more while the total stays within `max_bytes`. Stored
    /// batches in memory are not copied: each is a fresh 16-byte head (base offset, length,
    /// leader epoch) and a shared slice of the stored bytes (the first batch may start below
    /// `from`; consumers skip those records). Runs of single records are encoded into
    /// uncompressed batches. Offsets no longer in memory are read from the disk. Returns the bytes
    /// appended; 0 when `from` is the high watermark.
    ///
    /// # Errors
    ///
    /// [`FetchError::OutOfRange`] if `from` is below the log start offset or above the high
    /// watermark; [`FetchError::Storage`] if a read from disk failed (`out` keeps what it held).
    pub fn fetch(
        &self,
        from: u64,
        max_bytes: usize,
        out: &mut SegmentedBuf<Bytes>,
    ) -> Result<usize, FetchError> {
        let (start, end) = (self.start(), self.end());
        if from < start || from > end {
            return Err(FetchError::OutOfRange(OffsetOutOfRange {
                offset: from,
                start,
                end,
            }));
        }
        let from_disk = match &self.disk {
            Some(_) if from < self.resident_from() => from,
            _ => match self.fetch_memory(from, max_bytes, out) {
                Ok(n) => return Ok(n),
                Err(Evicted(at)) => at,
            },
        };
        let disk = self
            .disk
            .as_ref()
            .expect("only a partition with a disk evicts");
        let mut read = BytesMut::new();
        let n = disk
            .log
            .read(from_disk, max_bytes, &mut read)
            .map_err(|e| match e {
                crate::storage::StorageError::OffsetOutOfRange { .. } => {
                    FetchError::OutOfRange(OffsetOutOfRange {
                        offset: from,
                        start: self.start(),
                        end: self.end(),
                    })
                }
                e => FetchError::Storage(e.to_string()),
            })?;
        out.push(read.freeze());
        Ok(n)
    }

    /// [`Partition::fetch`] from the in-memory log only; `Err(Evicted(offset))` if nothing was
    /// written and the batch holding `offset` is no longer in memory.
    pub(super) fn fetch_memory(
        &self,
        from: u64,
        max_bytes: usize,
        out: &mut SegmentedBuf<Bytes>,
    ) -> Result<usize, Evicted> {
        let Some(mut index) = self.log.index_of(from) else {
            return Ok(0);
        };
        let mut out = Gathered {
            out,
            copied: BytesMut::new(),
            before: 0,
        };
        out.before = out.len();
        let mut run: Vec<(u64, &Record)> = Vec::new();
        let mut run_bytes = 0;
        while let Some(entry) = self.log.get(index) {
            let base = self.log.offsets(index).expect("a published entry").start;
            let written = out.len() - out.before;
            match entry.value.as_batch() {
                Some(stored) => {
                    if !run.is_empty() {
                        Self::encode_run(&mut run, &mut out.copied);
                        run_bytes = 0;
                        continue;
                    }
                    let Some(batch) = stored.load() else {
                        if written == 0 {
                            return Err(Evicted(base.max(from)));
                        }
                        break;
                    };
                    if written > 0 && written + batch.size() > max_bytes {
                        break;
                    }
                    out.batch(&batch, base);
                }
                None => {
                    // An estimate of the record's encoded size: its bytes plus the record's
                    // varints, and the batch header for the first record of a run.
                    let size = entry.value.as_slice().len()
                        + entry.entry().map_or(0, |k| k.key().bytes.len())
                        + 24
                        + if run.is_empty() {
                            crate::batch::HEADER
                        } else {
                            0
                        };
                    if (written > 0 || !run.is_empty()) && written + run_bytes + size > max_bytes {
                        break;
                    }
                    if base >= from {
                        run.push((base, entry));
                        run_bytes += size;
                    }
                    if run.len() == FETCH_RUN {
                        Self::encode_run(&mut run, &mut out.copied);
                        run_bytes = 0;
                    }
                }
            }
            index += 1;
        }
        Self::encode_run(&mut run, &mut out.copied);
        out.flush();
        Ok(out.len() - out.before)
    }

    /// Encodes a run of single records (offset, entry) as one batch into `out`, and empties it.
    fn encode_run(run: &mut Vec<(u64, &Record)>, out: &mut BytesMut) {
        Batch::encode(
            run.iter().map(|(offset, r)| {
                (
                    *offset,
                    r.timestamp,
                    r.entry().map(|k| k.key().bytes),
                    Some(r.value.as_slice()),
                )
            }),
            out,
        );
        run.clear();
    }
}
