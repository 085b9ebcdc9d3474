//! The writer side: appends, rolls and flushes.

use super::checkpoint::sync_dir;
use super::error::{Result, StorageError};
use super::index::OffsetEntry;
use super::layout::Header;
use super::segment::Segment;
use super::time_index::{Indexer, TimeEntry};
use super::{PartitionLog, Writer};
use crate::batch::HEADER;
use crate::loom::{lock, Arc, Ordering};

impl PartitionLog {
    /// Appends `batches`: whole RecordBatch v2 batches, back to back, whose base offsets are
    /// already set and continue the log (the first starts at [`PartitionLog::end`], each next at
    /// the previous one's last offset + 1), as `Batch::served` produces them. Rolls a new
    /// segment first if the active one is due (see "Roll and retention"), writes the bytes with
    /// one `pwrite` (page cache, no fsync), adds the index entries they call for, and only then
    /// publishes the new end to readers. `now_ms` is the caller's wall clock in ms since the Unix
    /// epoch; it only matters for `segment.ms` when batches carry no timestamp. Returns the new
    /// log end offset. Only the headers are read (base offset, length, magic, last offset delta,
    /// max timestamp); CRCs were checked when the batches were produced.
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidAppend`] if `batches` is empty, not whole batches, or does not
    /// continue the log; [`StorageError::Io`] if a write fails. Either way nothing is published
    /// and the log is as before (a partial write is cut off), so the append may be retried.
    pub fn append(&self, batches: &[u8], now_ms: i64) -> Result<u64> {
        let mut w = lock(&self.writer);
        // Relaxed: the writer lock orders the writer's own stores (see "Orderings").
        let end = self.end.load(Ordering::Relaxed);
        let headers = parse(batches, end)?;
        let last = headers
            .last()
            .expect("parse returns at least one batch")
            .1
            .last;
        let max_timestamp = headers
            .iter()
            .map(|(_, h)| h.max_timestamp)
            .max()
            .unwrap_or(-1);
        let len = batches.len() as u64;
        if self.should_roll(&w, len, headers.len() as u64, last, max_timestamp, now_ms) {
            self.roll(&mut w, end, now_ms)?;
        }
        w.created_ms.get_or_insert(now_ms);
        let seg = Arc::clone(&w.active);
        if last - seg.base() > i32::MAX as u64 {
            return Err(StorageError::InvalidAppend(format!(
                "offsets {end}..={last} do not fit one segment (relative offsets are i32)"
            )));
        }
        let position = seg.size();
        let mut indexer = w.indexer;
        let interval = w.config.index_interval_bytes;
        let mut offsets: Vec<OffsetEntry> = Vec::new();
        let mut times: Vec<TimeEntry> = Vec::new();
        for (at, h) in &headers {
            let (o, t) = indexer.batch(position + at, h.size, h.last, h.max_timestamp, interval);
            offsets.extend(o);
            times.extend(t);
        }
        let (index_count, time_count) = (seg.index().count(), seg.time_index().count());
        let written = seg
            .write(position, batches)
            .and_then(|()| seg.index().write(index_count, &offsets))
            .and_then(|()| seg.time_index().write(time_count, &times));
        if let Err(e) = written {
            // Best effort: leave the files as readers know them (recovery cuts the rest anyway).
            let _ = seg.cut(position);
            let _ = seg.index().truncate(index_count);
            let _ = seg.time_index().truncate(time_count);
            return Err(e.into());
        }
        seg.publish(
            position + len,
            last + 1,
            indexer.max_timestamp,
            index_count + offsets.len() as u64,
            time_count + times.len() as u64,
        );
        w.indexer = indexer;
        if position == 0 {
            w.first_timestamp = max_timestamp;
        }
        // Release: pairs with the Acquire load in `end` (see "Orderings").
        self.end.store(last + 1, Ordering::Release);
        Ok(last + 1)
    }

    /// Kafka's `LogSegment.shouldRoll`, for an append of `len` bytes in `count` batches ending at
    /// offset `last` with max timestamp `max_timestamp`.
    fn should_roll(
        &self,
        w: &Writer,
        len: u64,
        count: u64,
        last: u64,
        max_timestamp: i64,
        now_ms: i64,
    ) -> bool {
        let seg = &w.active;
        let size = seg.size();
        if size == 0 {
            return false;
        }
        let c = &w.config;
        let waited = if w.first_timestamp >= 0 {
            max_timestamp.saturating_sub(w.first_timestamp)
        } else {
            now_ms.saturating_sub(w.created_ms.unwrap_or(now_ms))
        };
        size + len > c.segment_bytes
            || waited > c.segment_ms
            || seg.index().count() + count > c.max_index_entries()
            || seg.time_index().count() + count > c.max_time_entries()
            || last - seg.base() > i32::MAX as u64
    }

    /// Makes a new empty active segment at `end` (the current log end).
    fn roll(&self, w: &mut Writer, end: u64, now_ms: i64) -> Result<()> {
        let old = Arc::clone(&w.active);
        // The closing entry: the time index's last entry is then the segment's largest
        // timestamp (Kafka's `onBecomeInactiveSegment`). It is fsynced now, so that a segment
        // that recovery will trust (one with a successor) always has it on disk.
        let mut indexer = w.indexer;
        if let Some(t) = indexer.time_entry() {
            let count = old.time_index().count();
            old.time_index().write(count, &[t])?;
            old.time_index().publish(count + 1);
            w.indexer = indexer;
        }
        old.time_index().sync()?;
        let new = Arc::new(Segment::create(&self.dir, end)?);
        let mut segments: Vec<Arc<Segment>> = self.segments.load().iter().cloned().collect();
        segments.push(Arc::clone(&new));
        self.segments.store(Arc::new(segments));
        // Release: pairs with the AcqRel swap in `flush` (see "Orderings").
        self.dir_dirty.store(true, Ordering::Release);
        tracing::debug!(dir = %self.dir.display(), base = end, "rolled a new segment");
        w.active = new;
        w.indexer = Indexer::new(end);
        w.first_timestamp = -1;
        w.created_ms = Some(now_ms);
        Ok(())
    }

    /// fsyncs every segment that holds data past the last flush (its `.log`, then its indexes)
    /// and, if a segment was created since, the directory. Returns the flushed end offset: every
    /// offset below it is durable; store it as the recovery point. Runs beside appends without
    /// blocking them; concurrent flushes are fine.
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`] if an fsync fails; the recovery point must then not move.
    pub fn flush(&self) -> Result<u64> {
        // Acquire: see "Orderings" (the list loaded next holds every batch below `end`).
        let end = self.end.load(Ordering::Acquire);
        // Relaxed: see "Orderings".
        let flushed = self.flushed.load(Ordering::Relaxed);
        let segments = self.segments.load_full();
        for seg in segments.iter() {
            if seg.end() > flushed && seg.base() < end {
                seg.sync()?;
            }
        }
        // AcqRel: pairs with the Release store in `roll` (see "Orderings").
        if self.dir_dirty.swap(false, Ordering::AcqRel) {
            if let Err(e) = sync_dir(&self.dir) {
                self.dir_dirty.store(true, Ordering::Release);
                return Err(e.into());
            }
        }
        // Relaxed: see "Orderings".
        self.flushed.fetch_max(end, Ordering::Relaxed);
        Ok(end)
    }
}

/// The headers of `batches` with their positions in it, checked to be whole batches that
/// continue the log at `end`.
fn parse(batches: &[u8], end: u64) -> Result<Vec<(u64, Header)>> {
    let bad = |why: String| Err(StorageError::InvalidAppend(why));
    if batches.is_empty() {
        return bad("no batch".into());
    }
    if batches.len() > i32::MAX as usize {
        return bad(format!("{} bytes in one append", batches.len()));
    }
    let mut headers = Vec::new();
    let (mut at, mut next) = (0, end);
    while at < batches.len() {
        let rest = &batches[at..];
        if rest.len() < HEADER {
            return bad(format!(
                "{} bytes at byte {at}, less than a header",
                rest.len()
            ));
        }
        let h = match Header::parse(rest) {
            Ok(h) => h,
            Err(why) => return bad(format!("at byte {at}: {why}")),
        };
        if h.base != next {
            return bad(format!(
                "the batch at byte {at} has base offset {}, the log continues at {next}",
                h.base
            ));
        }
        if h.size > rest.len() as u64 {
            return bad(format!("the batch at byte {at} runs past the bytes given"));
        }
        headers.push((at as u64, h));
        next = h.last + 1;
        at += h.size as usize;
    }
    Ok(headers)
}
