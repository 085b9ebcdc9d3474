//! The reader side: fetches, iteration and timestamp lookups. No lock; see "Concurrency".

use super::error::{Result, StorageError};
use super::layout::Header;
use super::scan::CHUNK;
use super::{PartitionLog, Segments};
use crate::loom::Arc;
use bytes::{Bytes, BytesMut};

impl PartitionLog {
    /// Appends to `out` the stored batches that hold offsets ≥ `from`, as a Kafka fetch returns
    /// them: at least one batch if there is any (even one larger than `max_bytes`, so a consumer
    /// never stalls on a large batch), then more while the bytes stay within `max_bytes`,
    /// continuing into later segments. The first batch may start below `from` (consumers skip
    /// those records). Batches are copied as stored, with `pread`. Returns the bytes appended;
    /// 0 when `from` is the log end offset.
    ///
    /// # Errors
    ///
    /// [`StorageError::OffsetOutOfRange`] if `from` is below [`PartitionLog::start`] or above
    /// [`PartitionLog::end`]; [`StorageError::Corrupt`] if a segment below the recovery point is
    /// damaged where the read lands; [`StorageError::Io`]. `out` keeps what it held.
    pub fn read(&self, from: u64, max_bytes: usize, out: &mut BytesMut) -> Result<usize> {
        let (start, end) = (self.start(), self.end());
        if from < start || from > end {
            return Err(self.out_of_range(from));
        }
        if from == end {
            return Ok(0);
        }
        let segments = self.segments.load();
        let before = out.len();
        match read_segments(&segments, from, max_bytes, out) {
            Ok(Some(n)) => Ok(n),
            Ok(None) => Err(self.out_of_range(from)),
            Err(e) => {
                out.truncate(before);
                Err(e)
            }
        }
    }

    /// The stored batches from the one holding `from` on, in offset order, as (base offset,
    /// bytes), read in chunks of about 1 MiB from the segments as they are now (later appends
    /// are not seen; segments deleted meanwhile stay readable). For replaying the log on start
    /// (producer state, the in-memory tail). The first batch may start below `from`.
    ///
    /// The iterator yields one `Err` and stops: [`StorageError::OffsetOutOfRange`] if `from` is
    /// outside `start..=end`, or the error of a failed read.
    pub fn batches_from(&self, from: u64) -> Batches {
        let (start, end) = (self.start(), self.end());
        let error = (from < start || from > end).then(|| self.out_of_range(from));
        Batches {
            segments: self.segments.load_full(),
            next: from,
            end,
            buf: Bytes::new(),
            error,
            done: false,
        }
    }

    /// The first record at or after the log start offset whose timestamp is ≥ `timestamp` (ms
    /// since the Unix epoch), as (offset, its timestamp): Kafka's ListOffsets by timestamp.
    /// `None` if there is none. The first segment whose largest timestamp reaches `timestamp` is
    /// searched through its time index, then its offset index, then its batches' records
    /// (Kafka's `UnifiedLog.fetchOffsetByTimestamp`).
    ///
    /// # Errors
    ///
    /// [`StorageError::Corrupt`] if a batch on the way does not decode; [`StorageError::Io`].
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(u64, i64)>> {
        let start = self.start();
        let segments = self.segments.load();
        for seg in segments.iter() {
            if seg.end() <= start || seg.max_timestamp() < timestamp {
                continue;
            }
            if let Some(found) = seg.find_timestamp(timestamp, start)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

/// Reads whole batches holding offsets ≥ `from` from `segments` into `out` (see
/// [`PartitionLog::read`]); `None` if `from` is below the first segment.
fn read_segments(
    segments: &Segments,
    from: u64,
    max_bytes: usize,
    out: &mut BytesMut,
) -> Result<Option<usize>> {
    let first = segments.partition_point(|s| s.base() <= from);
    if first == 0 {
        return Ok(None);
    }
    let mut total = 0;
    for seg in &segments[first - 1..] {
        let Some((position, header)) = seg.locate(from)? else {
            continue;
        };
        let (n, to_end) = seg.read_into(position, &header, max_bytes - total, total == 0, out)?;
        total += n;
        if !to_end || total >= max_bytes {
            break;
        }
    }
    Ok(Some(total))
}

/// The iterator of [`PartitionLog::batches_from`].
#[derive(Debug)]
pub struct Batches {
    segments: Arc<Segments>,
    /// The next offset to yield a batch for.
    next: u64,
    /// The log end offset when the iterator was made.
    end: u64,
    /// Whole batches read and not yet yielded.
    buf: Bytes,
    error: Option<StorageError>,
    done: bool,
}

impl Iterator for Batches {
    type Item = Result<(u64, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            self.done = true;
            return Some(Err(e));
        }
        loop {
            if !self.buf.is_empty() {
                // `read_into` keeps whole batches whose headers parse.
                let h = Header::parse(&self.buf).expect("whole batches were read");
                if h.base >= self.end {
                    self.done = true;
                    return None;
                }
                let bytes = self.buf.split_to(h.size as usize);
                self.next = h.last + 1;
                return Some(Ok((h.base, bytes)));
            }
            if self.done || self.next >= self.end {
                return None;
            }
            let mut out = BytesMut::new();
            match read_segments(&self.segments, self.next, CHUNK as usize, &mut out) {
                Ok(Some(n)) if n > 0 => self.buf = out.freeze(),
                Ok(_) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
