//! Retention and DeleteRecords: deleting whole segments from the start and moving the log start
//! offset (Kafka's `UnifiedLog.deleteOldSegments` and `deleteRecords`).
//!
//! Both run under the writer lock, since they replace the segment list. The order of a deletion:
//! the new log start offset is written to the checkpoint (fsynced) and stored; the shorter list
//! is published; then the segments' files are removed, `.log` first. A crash at any point leaves
//! a directory that opens to the same log start offset (the checkpoint, or the first remaining
//! segment's base, whichever is larger; leftover files below it are deleted by the next run).

use super::checkpoint::CheckpointEntry;
use super::error::Result;
use super::layout::LOG_START_CHECKPOINT;
use super::segment::Segment;
use super::{Checkpoint, PartitionLog};
use crate::loom::{lock, Arc, Ordering};

impl PartitionLog {
    /// Deletes whole segments from the start while any of these holds for the oldest one, and
    /// never the active segment: the next segment starts at or below the log start offset; its
    /// largest timestamp (its largest batch max timestamp, or the file's modification time if
    /// it has none) is more than `retention.ms` before `now_ms`; the log is larger than
    /// `retention.bytes` even without it. `now_ms` is the wall clock in ms since the Unix epoch
    /// (record timestamps use it). Returns the log start offset, moved up to the first remaining
    /// segment's base if that is larger.
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`](super::StorageError::Io) if the checkpoint cannot be written
    /// (nothing is deleted then). A segment file that cannot be removed is only logged: it is
    /// out of the log already, and a later run deletes it (it lies below the log start offset).
    pub fn apply_retention(&self, now_ms: i64) -> Result<u64> {
        let w = lock(&self.writer);
        let segments = self.segments.load_full();
        let n = segments.len();
        let start = self.start();
        let mut k = 0;
        while k + 1 < n && segments[k + 1].base() <= start {
            k += 1;
        }
        let c = w.config;
        if c.retention_ms >= 0 {
            while k + 1 < n
                && now_ms.saturating_sub(segments[k].largest_timestamp()) > c.retention_ms
            {
                k += 1;
            }
        }
        if c.retention_bytes >= 0 {
            let total: u64 = segments[k..].iter().map(|s| s.size()).sum();
            let mut over = i128::from(total) - i128::from(c.retention_bytes);
            while k + 1 < n && over - i128::from(segments[k].size()) >= 0 {
                over -= i128::from(segments[k].size());
                k += 1;
            }
        }
        self.delete_front(&segments, k)?;
        Ok(self.start())
    }

    /// Moves the log start offset up to `before` (Kafka's DeleteRecords): offsets below it are
    /// no longer readable, and segments wholly below it are deleted. The new start is durable
    /// (checkpoint fsynced) before this returns. A `before` at or below the start changes
    /// nothing. Returns the log start offset.
    ///
    /// `before` is checked against *this* log's end: a broker whose in-memory tail runs ahead of
    /// its background writer passes `min(before, end())` here and the rest once the writer has
    /// caught up (or waits for it first).
    ///
    /// # Errors
    ///
    /// [`StorageError::OffsetOutOfRange`](super::StorageError::OffsetOutOfRange) if `before` is
    /// above the log end offset (Kafka's answer); [`StorageError::Io`](super::StorageError::Io)
    /// if the checkpoint cannot be written (the start then does not move).
    pub fn delete_records(&self, before: u64) -> Result<u64> {
        let _w = lock(&self.writer);
        if before > self.end() {
            return Err(self.out_of_range(before));
        }
        let start = self.start();
        if before <= start {
            return Ok(start);
        }
        self.write_start(before)?;
        // Relaxed: see "Orderings" in the module docs.
        self.start.fetch_max(before, Ordering::Relaxed);
        let segments = self.segments.load_full();
        let mut k = 0;
        while k + 1 < segments.len() && segments[k + 1].base() <= before {
            k += 1;
        }
        self.delete_front(&segments, k)?;
        Ok(self.start())
    }

    /// Deletes `segments[..k]` (under the writer lock; see the module docs for the order).
    fn delete_front(&self, segments: &[Arc<Segment>], k: usize) -> Result<()> {
        if k == 0 {
            return Ok(());
        }
        let new_start = segments[k].base();
        if new_start > self.start() {
            self.write_start(new_start)?;
            // Relaxed: see "Orderings" in the module docs.
            self.start.fetch_max(new_start, Ordering::Relaxed);
        }
        self.segments.store(Arc::new(segments[k..].to_vec()));
        for seg in &segments[..k] {
            match seg.delete_files() {
                Ok(()) => tracing::debug!(segment = %seg.log_path().display(), "deleted segment"),
                Err(e) => tracing::warn!(
                    segment = %seg.log_path().display(),
                    "cannot delete a segment out of the log ({e}); a later retention run deletes it"
                ),
            }
        }
        Ok(())
    }

    /// Writes the log start offset checkpoint (atomically, fsynced).
    fn write_start(&self, start: u64) -> Result<()> {
        Checkpoint::new(self.dir.join(LOG_START_CHECKPOINT)).write(&[CheckpointEntry {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: start,
        }])
    }
}
