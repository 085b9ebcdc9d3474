//! One segment: a `.log` file of batches and its two index files (Kafka's `LogSegment`).
//!
//! The segment's published state is three atomics: `size` (bytes of whole batches readers may
//! read), `end` (the offset after its last published batch) and `max_timestamp`, plus each index
//! file's entry count. Only the writer (under `PartitionLog`'s writer lock) changes them, through
//! [`Segment::publish`], after its `pwrite`s returned; readers read only below what they loaded,
//! so they never see a half-written batch. The files are never changed below `size`, except by
//! recovery before anyone can read them.
//!
//! # Orderings
//!
//! `publish` stores `size`, `end` and `max_timestamp` with Release, then the index counts with
//! Release. A reader that loads an index count (Acquire) and *then* `size` (Acquire) sees a
//! size that covers every entry below the count (`locate`); one that loads `max_timestamp`
//! (Acquire) first sees the batches that carry it (`find_timestamp`). The bytes themselves are
//! ordered by the same pairs: the `pwrite` returned before the Release store, and the reader's
//! `pread` comes after its Acquire load.

use super::error::{Result, StorageError};
use super::index::{IndexFile, OffsetEntry};
use super::layout::{self, Header};
use super::time_index::TimeEntry;
use crate::batch::{Batch, HEADER};
use crate::loom::{AtomicBool, AtomicU64, Ordering};
use bytes::{Bytes, BytesMut};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One segment of a partition log.
#[derive(Debug)]
pub(crate) struct Segment {
    base: u64,
    log_path: PathBuf,
    log: File,
    index: IndexFile<OffsetEntry>,
    time: IndexFile<TimeEntry>,
    size: AtomicU64,
    end: AtomicU64,
    /// The largest batch max timestamp (an `i64`, -1 for none) as bits.
    max_timestamp: AtomicU64,
    /// Whether a bad index entry was already reported (once per segment is enough).
    warned: AtomicBool,
}

/// Where a walk of headers from an index position ended.
enum Scan {
    /// The first batch whose last offset is ≥ the target, at this position.
    Found(u64, Header),
    /// No batch of the segment reaches the target.
    Past,
    /// The bytes are not batches where the index said they were.
    Bad(String),
}

impl Segment {
    /// Creates the three files of an empty segment at `base` in `dir` (replacing any).
    pub(crate) fn create(dir: &Path, base: u64) -> io::Result<Segment> {
        let log_path = dir.join(layout::file_name(base, layout::LOG));
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)?;
        let index = IndexFile::create(&dir.join(layout::file_name(base, layout::INDEX)), base)?;
        let time = IndexFile::create(&dir.join(layout::file_name(base, layout::TIME_INDEX)), base)?;
        Ok(Self::from_parts(
            base, log_path, log, index, time, 0, base, -1,
        ))
    }

    /// A segment of checked files: `size` bytes of whole batches ending before offset `end`,
    /// indexes with their counts published.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        base: u64,
        log_path: PathBuf,
        log: File,
        index: IndexFile<OffsetEntry>,
        time: IndexFile<TimeEntry>,
        size: u64,
        end: u64,
        max_timestamp: i64,
    ) -> Segment {
        Segment {
            base,
            log_path,
            log,
            index,
            time,
            size: AtomicU64::new(size),
            end: AtomicU64::new(end),
            max_timestamp: AtomicU64::new(max_timestamp as u64),
            warned: AtomicBool::new(false),
        }
    }

    /// The base offset: the segment's first offset, and its files' name.
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    /// Published bytes.
    pub(crate) fn size(&self) -> u64 {
        // Acquire: pairs with the Release store in `publish` (see "Orderings").
        self.size.load(Ordering::Acquire)
    }

    /// The offset after the last published batch (the base while empty).
    pub(crate) fn end(&self) -> u64 {
        // Acquire: pairs with the Release store in `publish`.
        self.end.load(Ordering::Acquire)
    }

    /// The largest batch max timestamp published (ms), -1 if none.
    pub(crate) fn max_timestamp(&self) -> i64 {
        // Acquire: pairs with the Release store in `publish` (see "Orderings").
        self.max_timestamp.load(Ordering::Acquire) as i64
    }

    pub(crate) fn index(&self) -> &IndexFile<OffsetEntry> {
        &self.index
    }

    pub(crate) fn time_index(&self) -> &IndexFile<TimeEntry> {
        &self.time
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Writer: writes `bytes` at `position` of the `.log` file (not published).
    pub(crate) fn write(&self, position: u64, bytes: &[u8]) -> io::Result<()> {
        self.log.write_all_at(bytes, position)
    }

    /// Writer: cuts the `.log` file back to `len` bytes after a failed write (nothing past the
    /// published size was shown to anyone).
    pub(crate) fn cut(&self, len: u64) -> io::Result<()> {
        self.log.set_len(len)
    }

    /// Writer: shows readers the batches and index entries written so far (see "Orderings").
    pub(crate) fn publish(&self, size: u64, end: u64, max_timestamp: i64, index: u64, time: u64) {
        // Release (all three): pair with the Acquire loads in `size`, `end`, `max_timestamp`.
        self.size.store(size, Ordering::Release);
        self.end.store(end, Ordering::Release);
        self.max_timestamp
            .store(max_timestamp as u64, Ordering::Release);
        self.index.publish(index);
        self.time.publish(time);
    }

    /// fsyncs the `.log` file, then both indexes (so an index entry on disk never points past
    /// durable data).
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.log.sync_data()?;
        self.index.sync()?;
        self.time.sync()
    }

    /// Removes the segment's files: the `.log` first, so that a crash midway leaves orphaned
    /// indexes (removed at the next open), never a log without its indexes. Open handles keep
    /// working (readers that hold the segment finish their reads). A file already gone is fine.
    pub(crate) fn delete_files(&self) -> io::Result<()> {
        let mut first_error = None;
        for path in [self.log_path.as_path(), self.index.path(), self.time.path()] {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    first_error.get_or_insert(e);
                }
                _ => {}
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The segment's largest timestamp for retention (Kafka's `LogSegment.largestTimestamp`):
    /// its largest batch max timestamp, or, with none, the `.log` file's modification time (ms
    /// since the Unix epoch); `i64::MAX` (never expires) if that cannot be read.
    pub(crate) fn largest_timestamp(&self) -> i64 {
        let t = self.max_timestamp();
        if t >= 0 {
            return t;
        }
        self.log
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(i64::MAX, |d| d.as_millis() as i64)
    }

    /// The first batch whose last offset is ≥ `from`, as (position, header); `None` if no
    /// published batch of the segment reaches `from`. Looks `from` up in the offset index and
    /// walks headers from there; an index entry that does not match the log (a corrupt index)
    /// is reported once and the walk starts from the segment's first batch instead.
    ///
    /// # Errors
    ///
    /// [`StorageError::Corrupt`] if the published bytes are not batches even from position 0
    /// (a damaged segment below the recovery point); [`StorageError::Io`].
    pub(crate) fn locate(&self, from: u64) -> Result<Option<(u64, Header)>> {
        // The count before the size: see "Orderings".
        let count = self.index.count();
        let size = self.size();
        if let Some(e) = self.index.lookup(from, count)? {
            if e.position < size && e.offset >= self.base {
                match self.scan(e.position, size, from, Some(e.offset))? {
                    Scan::Found(p, h) => return Ok(Some((p, h))),
                    Scan::Past => return Ok(None),
                    Scan::Bad(why) => self.warn_index(&why),
                }
            } else {
                self.warn_index(&format!(
                    "entry (offset {}, position {}) lies outside the segment's {size} bytes",
                    e.offset, e.position
                ));
            }
        }
        match self.scan(0, size, from, None)? {
            Scan::Found(p, h) => Ok(Some((p, h))),
            Scan::Past => Ok(None),
            Scan::Bad(why) => Err(StorageError::Corrupt {
                path: self.log_path.clone(),
                why,
            }),
        }
    }

    /// Walks headers from `position` (below `size`) to the first batch whose last offset is
    /// ≥ `from`. With `entry`, the first batch must end at that offset (it was indexed so).
    fn scan(
        &self,
        mut position: u64,
        size: u64,
        from: u64,
        entry: Option<u64>,
    ) -> io::Result<Scan> {
        let mut buf = [0; HEADER];
        let mut first = true;
        while position < size {
            if size - position < HEADER as u64 {
                return Ok(Scan::Bad(format!(
                    "a batch header at byte {position} runs past the segment's {size} bytes"
                )));
            }
            self.log.read_exact_at(&mut buf, position)?;
            let h = match Header::parse(&buf) {
                Ok(h) if h.size <= size - position => h,
                Ok(h) => {
                    return Ok(Scan::Bad(format!(
                    "the batch at byte {position} ({} bytes) runs past the segment's {size} bytes",
                    h.size
                )))
                }
                Err(why) => return Ok(Scan::Bad(format!("at byte {position}: {why}"))),
            };
            if let (true, Some(last)) = (first, entry) {
                if h.last != last {
                    return Ok(Scan::Bad(format!(
                        "an entry for offset {last} points at byte {position}, a batch ending \
                         at {}",
                        h.last
                    )));
                }
            }
            first = false;
            if h.last >= from {
                return Ok(Scan::Found(position, h));
            }
            position += h.size;
        }
        Ok(Scan::Past)
    }

    #[cold]
    #[inline(never)]
    fn warn_index(&self, why: &str) {
        // Relaxed: only decides whether to log; no data depends on it.
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                index = %self.index.path().display(),
                "offset index does not match the log ({why}); scanning the segment from its start \
                 (reads stay correct; the index is rebuilt when the log is next opened below it)"
            );
        }
    }

    /// Appends to `out` whole batches from `position`, where the batch `first` starts: that batch
    /// even if it is larger than `budget` when `at_least_one`, then more while the bytes copied
    /// stay within `budget`. Returns the bytes copied and whether they reach the published end
    /// of the segment. One `pread`.
    ///
    /// # Errors
    ///
    /// [`StorageError::Corrupt`] if the bytes at `position` are not the batch `first` said;
    /// [`StorageError::Io`]. `out` is as it was on error.
    pub(crate) fn read_into(
        &self,
        position: u64,
        first: &Header,
        budget: usize,
        at_least_one: bool,
        out: &mut BytesMut,
    ) -> Result<(usize, bool)> {
        let size = self.size();
        if !at_least_one && first.size > budget as u64 {
            return Ok((0, false));
        }
        let want = size
            .saturating_sub(position)
            .min((budget as u64).max(first.size)) as usize;
        let old = out.len();
        out.resize(old + want, 0);
        if let Err(e) = self.log.read_exact_at(&mut out[old..], position) {
            out.truncate(old);
            return Err(e.into());
        }
        let mut took = 0;
        while want - took >= HEADER {
            let h = match Header::parse(&out[old + took..]) {
                Ok(h) => h,
                Err(why) if took == 0 => {
                    out.truncate(old);
                    return Err(StorageError::Corrupt {
                        path: self.log_path.clone(),
                        why: format!("at byte {position}: {why}"),
                    });
                }
                Err(_) => break,
            };
            let len = h.size as usize;
            if len > want - took || (took > 0 && took + len > budget) {
                break;
            }
            took += len;
        }
        out.truncate(old + took);
        Ok((took, position + took as u64 == size))
    }

    /// The first record at or after offset `min_offset` whose timestamp is ≥ `timestamp`, as
    /// (offset, timestamp): the time index gives the batch to start from, then batches whose max
    /// timestamp reaches `timestamp` are decoded (Kafka's `LogSegment.findOffsetByTimestamp`).
    ///
    /// # Errors
    ///
    /// [`StorageError::Corrupt`] if a batch does not decode; [`StorageError::Io`].
    pub(crate) fn find_timestamp(
        &self,
        timestamp: i64,
        min_offset: u64,
    ) -> Result<Option<(u64, i64)>> {
        let count = self.time.count();
        let from = self
            .time
            .lookup(timestamp, count)?
            .filter(|e| e.offset >= self.base)
            .map_or(self.base, |e| e.offset)
            .max(min_offset);
        let Some((mut position, mut h)) = self.locate(from)? else {
            return Ok(None);
        };
        let size = self.size();
        loop {
            if h.max_timestamp >= timestamp {
                let mut bytes = vec![0; h.size as usize];
                self.log.read_exact_at(&mut bytes, position)?;
                let corrupt = |why: String| StorageError::Corrupt {
                    path: self.log_path.clone(),
                    why: format!("batch at byte {position}: {why}"),
                };
                let batch = Batch::parse_all(Bytes::from(bytes))
                    .map_err(|e| corrupt(e.to_string()))?
                    .swap_remove(0);
                let records = batch.records(h.base).map_err(|e| corrupt(e.to_string()))?;
                if let Some(r) = records
                    .iter()
                    .find(|r| r.timestamp >= timestamp && r.offset as u64 >= min_offset)
                {
                    return Ok(Some((r.offset as u64, r.timestamp)));
                }
            }
            position += h.size;
            if size.saturating_sub(position) < HEADER as u64 {
                return Ok(None);
            }
            let mut buf = [0; HEADER];
            self.log.read_exact_at(&mut buf, position)?;
            h = Header::parse(&buf)
                .and_then(|h| {
                    (h.size <= size - position)
                        .then_some(h)
                        .ok_or_else(|| format!("a batch of {} bytes runs past the end", h.size))
                })
                .map_err(|why| StorageError::Corrupt {
                    path: self.log_path.clone(),
                    why: format!("at byte {position}: {why}"),
                })?;
        }
    }

    /// The offset index entries of the segment's whole published index (for tests and checks).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn index_entries(&self) -> io::Result<Vec<OffsetEntry>> {
        self.index.read(0, self.index.count())
    }

    /// The time index entries published.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn time_entries(&self) -> io::Result<Vec<TimeEntry>> {
        self.time.read(0, self.time.count())
    }
}
