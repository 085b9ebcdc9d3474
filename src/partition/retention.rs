//! Retention: the log start offset moves forward over whole segments (on disk) or whole entries
//! (in memory), by a topic's `retention.bytes` and `retention.ms` (Kafka's
//! `UnifiedLog.deleteOldSegments`).

use super::Partition;
use crate::loom::Ordering;
use crate::storage::LogConfig;

impl Partition {
    /// Applies `config`'s retention at `now_ms` (the wall clock, ms since the Unix epoch) and
    /// returns the log start offset.
    ///
    /// - With a disk: whole segments go from the start while the log is over `retention.bytes`
    ///   or a segment's largest timestamp is older than `retention.ms`, never the active segment
    ///   (see `crate::storage`); the in-memory bytes below the new start go too.
    /// - In memory: whole entries go from the start while the stored batches in memory are over
    ///   `retention.bytes`, or an entry's (largest) timestamp is older than `retention.ms`, never
    ///   the last entry (as Kafka never deletes the active segment). Single records count for
    ///   time but not for bytes (a few dozen bytes each).
    ///
    /// A failure on disk is logged, and the start stays.
    pub fn apply_retention(&self, now_ms: i64, config: &LogConfig) -> u64 {
        let start = match &self.disk {
            Some(disk) => match disk.log.apply_retention(now_ms) {
                Ok(start) => start,
                Err(e) => {
                    tracing::error!("retention on disk: {e}");
                    return self.start();
                }
            },
            None => self.memory_retention_point(now_ms, config),
        };
        // Relaxed: see the module docs' "Orderings" (the start publishes nothing).
        let start = self.start.fetch_max(start, Ordering::Relaxed).max(start);
        self.evict(start, 0);
        start
    }

    /// Where retention moves the start of an in-memory partition.
    fn memory_retention_point(&self, now_ms: i64, config: &LogConfig) -> u64 {
        let entries = self.log.entries();
        let Some(mut index) = self.log.index_of(self.start()) else {
            return self.start();
        };
        // Relaxed: a statistic, see `push_batch`.
        let mut resident = self.resident.load(Ordering::Relaxed) as i64;
        let mut start = self.start();
        while index + 1 < entries {
            let entry = self.log.get(index).expect("below the entry count");
            let range = self.log.offsets(index).expect("below the entry count");
            let size = entry.value.as_batch().map_or(0, |b| i64::from(b.size));
            let over_bytes = config.retention_bytes >= 0 && resident > config.retention_bytes;
            let too_old =
                config.retention_ms >= 0 && entry.timestamp < now_ms - config.retention_ms;
            if !(over_bytes || too_old) {
                break;
            }
            resident -= size;
            start = range.end;
            index += 1;
        }
        start
    }
}
