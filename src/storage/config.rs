//! A partition log's configuration: Kafka's topic configs that storage obeys.

use super::error::{Result, StorageError};

/// When a partition log rolls a new segment and what it keeps. Every field is Kafka's topic config
/// of the same name, with Kafka's default (`LogConfig.java` and `ServerLogConfigs.java` in
/// `apache/kafka`); [`Default`] gives those defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: the active segment rolls before an append would take it past this many
    /// bytes. Default 1 GiB (1,073,741,824); from 61 (one batch header) up to `i32::MAX`, as file
    /// positions in the offset index are 32-bit.
    pub segment_bytes: u64,
    /// `segment.ms`: the active segment rolls once its batches' timestamps span more than this
    /// many ms (or, with no timestamps, once it is older than this by the caller's clock).
    /// Default 7 days (604,800,000); at least 1.
    pub segment_ms: i64,
    /// `retention.ms`: a segment whose largest timestamp is older than this many ms is deleted;
    /// -1 keeps segments forever. Default 7 days (604,800,000).
    pub retention_ms: i64,
    /// `retention.bytes`: whole segments are deleted from the start while the log is larger than
    /// this many bytes; -1 means no limit. Default -1.
    pub retention_bytes: i64,
    /// `index.interval.bytes`: an offset index entry is added once more than this many bytes
    /// were appended since the last one. Default 4096.
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: the most bytes an index file of one segment may hold; the segment
    /// rolls when its offset index (8-byte entries) or time index (12-byte entries, one kept
    /// spare for the roll) is full. Default 10 MiB (10,485,760); at least 12.
    pub segment_index_bytes: u32,
}

/// Kafka's `DEFAULT_SEGMENT_BYTES`.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
/// Kafka's `DEFAULT_SEGMENT_MS` and `DEFAULT_RETENTION_MS`: 7 days.
pub const SEVEN_DAYS_MS: i64 = 7 * 24 * 60 * 60 * 1000;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: SEVEN_DAYS_MS,
            retention_ms: SEVEN_DAYS_MS,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
        }
    }
}

impl LogConfig {
    /// Checks every field against its range (Kafka's `ConfigDef` bounds).
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidConfig`] naming the first field out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| Err(StorageError::InvalidConfig(why));
        if !(crate::batch::HEADER as u64..=i32::MAX as u64).contains(&self.segment_bytes) {
            return bad(format!("segment.bytes {}", self.segment_bytes));
        }
        if self.segment_ms < 1 {
            return bad(format!("segment.ms {}", self.segment_ms));
        }
        if self.retention_ms < -1 {
            return bad(format!("retention.ms {}", self.retention_ms));
        }
        if self.retention_bytes < -1 {
            return bad(format!("retention.bytes {}", self.retention_bytes));
        }
        if self.segment_index_bytes < 12 {
            return bad(format!("segment.index.bytes {}", self.segment_index_bytes));
        }
        Ok(())
    }

    /// The most entries one segment's offset index may hold.
    pub(crate) fn max_index_entries(&self) -> u64 {
        u64::from(self.segment_index_bytes)
            / <super::index::OffsetEntry as super::index::Entry>::SIZE as u64
    }

    /// The most entries one segment's time index may hold before a roll; the last slot is kept for
    /// the entry written at the roll (Kafka's `TimeIndex.isFull`).
    pub(crate) fn max_time_entries(&self) -> u64 {
        u64::from(self.segment_index_bytes)
            / <super::time_index::TimeEntry as super::index::Entry>::SIZE as u64
            - 1
    }
}
