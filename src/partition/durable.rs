//! A partition's durable side: its on-disk log ([`crate::storage::PartitionLog`]) behind the
//! in-memory tail.
//!
//! - **Write path.** Every append is published in memory first (offsets, readers, the key index,
//!   exactly as without a disk), then written through to the on-disk log before the append
//!   returns: the appender takes the partition's writer lock and writes *everything* published
//!   and not yet on disk (batches as stored, with their base offsets; runs of single records
//!   encoded as batches). So concurrent appenders share one `write` (and, with a flush policy,
//!   one fsync: group commit), and an acknowledged record is in the page cache, which survives a
//!   crash of the process (Kafka's default durability).
//! - **Flush policy** (Kafka's `log.flush.interval.messages` and `log.flush.interval.ms`): after
//!   `messages` records written since the last fsync, the writer fsyncs before it returns, so
//!   with `messages = 1` no append returns before its record is fsynced. `ms` is applied by
//!   [`Partition::flush_if_due`], which the broker's housekeeping calls.
//! - **Eviction.** Once written, a stored batch's bytes may leave memory: when the batches resident
//!   in memory pass the tail budget, the oldest written ones are evicted down to half of it.
//!   Reads of evicted offsets, and of offsets from before the process started, go to the disk.
//!   Single records (the Maelstrom front's) stay in memory: a few dozen bytes each.
//! - **Start.** [`Partition::open`] recovers the on-disk log, starts the in-memory log at its end,
//!   and rebuilds the idempotent producers' state from the active segment's batches.

use super::Partition;
use crate::batch::Batch;
use crate::loom::{lock, Mutex};
use crate::storage::{LogConfig, PartitionLog, Recovery, Result as StorageResult};
use bytes::{BufMut, BytesMut};
use bytes_utils::SegmentedBuf;
use std::path::Path;

/// When written records are fsynced (Kafka's `log.flush.interval.*`; both `None` by default:
/// the page cache only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushPolicy {
    /// Fsync once this many records were written since the last fsync; 1: before every
    /// acknowledgement (`--flush-messages`).
    pub messages: Option<u64>,
    /// Fsync data older than this many ms, from the broker's housekeeping (`--flush-ms`).
    pub ms: Option<u64>,
}

/// How a durable partition uses its disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskOptions {
    /// The flush policy.
    pub flush: FlushPolicy,
    /// The most bytes of stored batches kept in memory per partition once written (the hot
    /// tail); older ones are read from disk.
    pub tail_bytes: u64,
}

impl Default for DiskOptions {
    fn default() -> Self {
        DiskOptions {
            flush: FlushPolicy::default(),
            tail_bytes: 8 << 20,
        }
    }
}

/// The most bytes one write-through call gathers before handing them to the disk.
const WRITE_CHUNK: usize = 4 << 20;

/// The disk behind a partition.
pub(super) struct Disk {
    pub(super) log: PartitionLog,
    options: DiskOptions,
    writer: Mutex<Writer>,
}

/// The writer's state, under its lock.
struct Writer {
    /// Records written since the last fsync.
    unflushed: u64,
    /// The wall clock of the last fsync (ms).
    last_flush_ms: i64,
    buf: BytesMut,
}

impl Disk {
    fn new(log: PartitionLog, options: DiskOptions) -> Self {
        Disk {
            log,
            options,
            writer: Mutex::new(Writer {
                unflushed: 0,
                last_flush_ms: crate::clock::wall_ms(),
                buf: BytesMut::new(),
            }),
        }
    }
}

impl Partition {
    /// Opens the partition stored in `dir` (named `<topic>-<partition>`, created if absent):
    /// recovers its on-disk log from `recovery_point` (see [`PartitionLog::open`]), starts the
    /// in-memory tail at the log's end, and rebuilds the idempotent producers' state from the
    /// batches of the active segment. `appends` is the broker's shared [`super::Appends`].
    ///
    /// # Errors
    ///
    /// What [`PartitionLog::open`] refuses (a bad config, an unreadable directory).
    pub fn open(
        dir: &Path,
        config: LogConfig,
        recovery_point: u64,
        options: DiskOptions,
        appends: crate::loom::StdArc<super::Appends>,
    ) -> StorageResult<(Partition, Recovery)> {
        let (log, recovery) = PartitionLog::open(dir, config, recovery_point)?;
        let mut p = Partition::with_appends(appends);
        p.log = crate::log::Log::starting_at(log.end());
        // Relaxed (both): nothing else sees the partition yet.
        p.start.store(log.start(), crate::loom::Ordering::Relaxed);
        p.resident_from
            .store(log.end(), crate::loom::Ordering::Relaxed);
        let from = log
            .segment_bases()
            .last()
            .copied()
            .unwrap_or(0)
            .max(log.start());
        {
            let mut producers = lock(&p.producers);
            for item in log.batches_from(from) {
                let (base, bytes) = item?;
                // Stored batches passed recovery's checks; one that does not parse again is
                // skipped here and reported by reads.
                for batch in Batch::parse_all(bytes).unwrap_or_default() {
                    if let Some(producer) = batch.producer() {
                        producers.record(producer, batch.count(), base);
                    }
                }
            }
        }
        p.disk = Some(Disk::new(log, options));
        Ok((p, recovery))
    }

    /// Writes everything published and not yet on disk to the on-disk log, then fsyncs if the
    /// flush policy says so; then evicts written batches beyond the tail budget. A no-op without
    /// a disk. See the module docs.
    pub(super) fn write_through(&self) -> StorageResult<()> {
        let Some(disk) = &self.disk else {
            return Ok(());
        };
        let mut w = lock(&disk.writer);
        let Writer {
            unflushed,
            last_flush_ms,
            buf,
        } = &mut *w;
        let before = disk.log.end();
        while disk.log.end() < self.end() {
            buf.clear();
            let mut pieces = SegmentedBuf::new();
            self.fetch_memory(disk.log.end(), WRITE_CHUNK, &mut pieces)
                .expect("the disk's end is inside the in-memory log");
            buf.put(pieces);
            if buf.is_empty() {
                break;
            }
            disk.log.append(buf, crate::clock::wall_ms())?;
        }
        *unflushed += disk.log.end() - before;
        if disk
            .options
            .flush
            .messages
            .is_some_and(|n| *unflushed >= n && *unflushed > 0)
        {
            disk.log.flush()?;
            *unflushed = 0;
            *last_flush_ms = crate::clock::wall_ms();
        }
        drop(w);
        let resident = self.resident.load(crate::loom::Ordering::Relaxed);
        if resident > disk.options.tail_bytes {
            self.evict(disk.log.end(), disk.options.tail_bytes / 2);
        }
        Ok(())
    }

    /// Fsyncs the records written since the last fsync if that was at least the flush policy's
    /// `ms` ago (`now_ms`: the wall clock). A no-op without a disk or without `ms`.
    ///
    /// # Errors
    ///
    /// A failed fsync.
    pub fn flush_if_due(&self, now_ms: i64) -> StorageResult<()> {
        let Some(disk) = &self.disk else {
            return Ok(());
        };
        let Some(ms) = disk.options.flush.ms else {
            return Ok(());
        };
        let mut w = lock(&disk.writer);
        if w.unflushed > 0 && now_ms - w.last_flush_ms >= ms as i64 {
            disk.log.flush()?;
            w.unflushed = 0;
            w.last_flush_ms = now_ms;
        }
        Ok(())
    }

    /// Fsyncs everything written (a clean shutdown, or the periodic flush that bounds recovery);
    /// returns the recovery point, or `None` without a disk.
    ///
    /// # Errors
    ///
    /// A failed fsync.
    pub fn flush(&self) -> StorageResult<Option<u64>> {
        let Some(disk) = &self.disk else {
            return Ok(None);
        };
        let mut w = lock(&disk.writer);
        let point = disk.log.flush()?;
        w.unflushed = 0;
        w.last_flush_ms = crate::clock::wall_ms();
        Ok(Some(point))
    }

    /// The on-disk log, if the partition has one.
    pub fn disk(&self) -> Option<&PartitionLog> {
        self.disk.as_ref().map(|d| &d.log)
    }
}
