//! The time index's entry (Kafka's `TimeIndex`).
//!
//! `<base>.timeindex` is a sequence of 12-byte entries, big-endian (Kafka's `TimeIndex.java`):
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | timestamp: the largest batch max timestamp seen so far in the segment (i64, ms) |
//! | 8..12 | relative offset: the last offset of the batch that first reached it, minus the base (i32) |
//!
//! An entry is considered whenever an offset index entry is added, and written only if the
//! timestamp grew past the last entry's (so timestamps strictly increase); when a segment stops
//! being the active one (a roll, or recovery), one more entry records its largest timestamp
//! (Kafka's `onBecomeInactiveSegment` and `LogSegment.recover`). The last entry is therefore the
//! segment's largest timestamp, which time-based retention reads without touching the log.
//!
//! Entry `(T, O)` means: no record before the batch ending at `O` has a timestamp ≥ `T`, so a
//! search for the first record at or after timestamp `t` starts at the batch holding the offset of
//! the last entry with `T ≤ t` and scans forward (Kafka's `LogSegment.findOffsetByTimestamp`).

use super::index::Entry;

/// A time index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    /// ms since the Unix epoch.
    pub(crate) timestamp: i64,
    /// The last offset of the batch whose max timestamp first reached `timestamp`.
    pub(crate) offset: u64,
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;
    type Key = i64;

    fn key(&self) -> i64 {
        self.timestamp
    }

    fn decode(b: &[u8], base: u64) -> Self {
        let timestamp = i64::from_be_bytes(b[0..8].try_into().expect("8 bytes"));
        let rel = u32::from_be_bytes(b[8..12].try_into().expect("4 bytes"));
        TimeEntry {
            timestamp,
            offset: base + u64::from(rel),
        }
    }

    fn encode(&self, base: u64, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&((self.offset - base) as u32).to_be_bytes());
    }
}

impl TimeEntry {
    /// Whether the entry can belong to a segment `base..end`.
    pub(crate) fn fits(&self, base: u64, end: u64) -> bool {
        self.offset >= base && self.offset < end && self.offset - base <= i32::MAX as u64
    }
}

/// What the indexes of a segment need to know about the batches appended so far, and the rule
/// that decides where entries go. The writer's appends and recovery's scans share it, so a
/// rebuilt index is the one the appends wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Indexer {
    /// Bytes from the position of the last indexed batch (or 0) to the end of the segment.
    pub(crate) since: u64,
    /// The largest batch max timestamp so far (-1 before any).
    pub(crate) max_timestamp: i64,
    /// The last offset of the batch that first reached `max_timestamp`.
    pub(crate) max_offset: u64,
    /// The timestamp of the last time index entry (-1 with none).
    pub(crate) last_time_entry: i64,
}

impl Indexer {
    /// For an empty segment at `base`.
    pub(crate) fn new(base: u64) -> Self {
        Indexer {
            since: 0,
            max_timestamp: -1,
            max_offset: base,
            last_time_entry: -1,
        }
    }

    /// Accounts for a batch of `size` bytes at `position` with last offset `last` and
    /// `max_timestamp`; returns the index entries to write for it (Kafka's rule in
    /// `LogSegment.append`: an entry once *more* than `interval` bytes came since the last one).
    pub(crate) fn batch(
        &mut self,
        position: u64,
        size: u64,
        last: u64,
        max_timestamp: i64,
        interval: u32,
    ) -> (Option<super::index::OffsetEntry>, Option<TimeEntry>) {
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.max_offset = last;
        }
        let mut entries = (None, None);
        if self.since > u64::from(interval) {
            entries.0 = Some(super::index::OffsetEntry {
                offset: last,
                position,
            });
            entries.1 = self.time_entry();
            self.since = 0;
        }
        self.since += size;
        entries
    }

    /// The time index entry to write now, if the largest timestamp grew since the last one.
    pub(crate) fn time_entry(&mut self) -> Option<TimeEntry> {
        (self.max_timestamp > self.last_time_entry).then(|| {
            self.last_time_entry = self.max_timestamp;
            TimeEntry {
                timestamp: self.max_timestamp,
                offset: self.max_offset,
            }
        })
    }
}
