//! Durable storage: the on-disk log of one partition, in Kafka's layout (segments of RecordBatch
//! v2 batches with sparse offset and time indexes, crash recovery from a recovery point, roll and
//! retention), and beside the logs the broker's own durable state: the topics file
//! ([`TopicsFile`]) and the offsets journal ([`OffsetsJournal`]).
//!
//! # The data directory
//!
//! | path | what | written by |
//! |---|---|---|
//! | `topics.json` | every topic (name, id, partition count, config overrides) and the next unreserved producer id | [`TopicsFile`] (`topics.rs`) |
//! | `__consumer_offsets/<N>.snapshot`, `<N>.journal` | group committed offsets and group metadata | [`OffsetsJournal`] (`offsets/`) |
//! | `recovery-point-offset-checkpoint` | each partition's flushed end | the broker, with [`Checkpoint`] |
//! | `<topic>-<partition>/` | one partition's log (below) | [`PartitionLog`] |
//!
//! `topics.json` and the journal are described in their modules; the broker's side of them is
//! under "Broker state" at the end.
//!
//! # Layout
//!
//! A partition is a directory `<topic>-<partition>/` (Kafka's `UnifiedLog.logDirName`):
//!
//! | file | what |
//! |---|---|
//! | `00000000000000000000.log` | batches back to back, base offsets set, exactly as fetched ([`crate::batch`]) |
//! | `00000000000000000000.index` | sparse offset index: 8-byte entries (relative offset i32, file position i32), see `index.rs` |
//! | `00000000000000000000.timeindex` | time index: 12-byte entries (timestamp i64, relative offset i32), see `time_index.rs` |
//! | `log-start-offset-checkpoint` | the log start offset, in Kafka's checkpoint format ([`Checkpoint`]) |
//!
//! Files are named by the segment's base offset, 20 digits zero-padded (Kafka's
//! `LogFileUtils.filenamePrefixFromOffset`). Each segment holds offsets from its base to the next
//! segment's base. All integers are big-endian. The last segment is the *active* one: only it is
//! appended to. Kafka keeps the log start offset in one broker-wide `log-start-offset-checkpoint`;
//! here each partition keeps its own (same name and format, one entry), so that a partition log
//! is self-contained; the broker-wide `recovery-point-offset-checkpoint` is the caller's, written
//! with the same [`Checkpoint`] helper.
//!
//! # Durability
//!
//! [`PartitionLog::append`] `pwrite`s to the page cache: the data survives a crash of the process,
//! not of the machine (Kafka's default, `log.flush.interval.messages` = ∞).
//! [`PartitionLog::flush`] fsyncs every segment with unflushed data, log before indexes, and the
//! directory if a segment was created since, and returns the flushed end offset: the caller
//! stores it as the partition's **recovery point** (in `recovery-point-offset-checkpoint`) and
//! passes it to [`PartitionLog::open`] after a restart. The caller picks when to flush (every N
//! messages, every T ms, before acknowledging with `acks=all` and `--flush-messages 1`): one
//! `flush` covers every append before it, so concurrent producers share an fsync (group commit).
//!
//! # Recovery
//!
//! [`PartitionLog::open`] trusts everything below the recovery point and checks everything from
//! it, so its cost depends on the unflushed tail, not on the log's size. Step by step (see
//! `recovery.rs`): list the directory (unknown files are logged and left, orphaned indexes and
//! temporary files removed); for each segment wholly below the recovery point, check only its
//! index files' length and first and last entries, rebuilding an index that is missing or fails
//! (no `.log` byte is read otherwise); in the segment holding the recovery point, resume from the
//! last offset index entry below it (its batch must be where the entry says), check every batch
//! from there by length, CRC and offset continuity, and rebuild the index entries after that
//! point; check later segments whole. The first bad batch ends the log: the segment is cut there
//! and later segments are deleted (Kafka's `LogLoader.recoverLog`). [`Recovery`] reports what
//! was done. The log start offset is the larger of the checkpoint and the first segment's base;
//! if it is past the recovered end (segments lost), the log restarts empty at it, as Kafka does.
//!
//! # Roll and retention
//!
//! An append rolls a new active segment first if the active one is non-empty and the append
//! would take it past `segment.bytes`, if its batches' timestamps span more than `segment.ms`,
//! if an index is full, or if a relative offset would overflow an i32 (Kafka's
//! `LogSegment.shouldRoll`). [`PartitionLog::apply_retention`] deletes whole segments from the
//! start while the log is over `retention.bytes`, while a segment's largest timestamp is older
//! than `retention.ms`, or while a segment lies wholly below the log start offset (Kafka's
//! `UnifiedLog.deleteOldSegments`), never the active segment. [`PartitionLog::delete_records`]
//! moves the log start offset up (Kafka's DeleteRecords).
//!
//! # Concurrency
//!
//! One writer at a time: `append`, `apply_retention`, `delete_records` and `set_config` take an
//! internal mutex (the writer lock). Readers (`read`, `batches_from`, `offset_for_timestamp`,
//! `start`, `end`, `size_bytes`, `flush`) take no lock: they load the segment list from an
//! `ArcSwap` and read with `pread` below the sizes published by the writer, so they run during
//! appends, rolls and retention. A segment deleted under a reader stays readable through its open
//! files until the reader drops it. One process opens a partition directory at a time.
//!
//! # Orderings
//!
//! - `end` (the log end offset): the writer stores it with Release after publishing the segment
//!   (`Segment::publish`, whose own pairs are in `segment.rs`) and after storing a rolled segment
//!   list; readers load it with Acquire before loading the segment list, so the list they load
//!   holds every batch below the `end` they saw. Within the writer lock it is loaded Relaxed (the
//!   lock orders the writer's own stores).
//! - `start` only grows (`fetch_max`); it guards reads, and publishes no data: Relaxed. A reader
//!   that races a retention run may pass the check and then find its segment gone from the list:
//!   it reports OFFSET_OUT_OF_RANGE then, as if it had loaded the new start.
//! - `flushed` only grows (`fetch_max`, Relaxed): it only narrows which segments `flush` syncs;
//!   a stale value makes a flush sync one segment more.
//! - `dir_dirty`: a roll stores `true` with Release after creating the files; `flush` takes it
//!   with `swap(false, AcqRel)` before fsyncing the directory, and sets it back if that fails.
//!   A flush returns an `end` loaded before the swap, so every segment holding data below it was
//!   created before the swap: either the swap saw its `true`, or an earlier flush synced it.
//! - Index entry counts and segment sizes: `index.rs` and `segment.rs`.
//!
//! # Use in the broker
//!
//! The intended wiring (the partition's in-memory log stays the hot tail):
//!
//! - **Start**: read the broker-wide `recovery-point-offset-checkpoint` with [`Checkpoint`], call
//!   [`PartitionLog::open`]`(dir, config, recovery_point)` per partition, log the [`Recovery`]
//!   if it did anything, then replay [`PartitionLog::batches_from`] over the last part of the
//!   log to rebuild the idempotent producers' state (`Batch::parse_all` on each batch) and, if
//!   wanted, the in-memory tail. The in-memory log then starts at [`PartitionLog::end`].
//! - **Write path**: the partition assigns offsets in memory as today; a background writer
//!   hands each published batch, rewritten with its base offset (`Batch::served`; runs of
//!   single Maelstrom records encoded with `Batch::encode` first), to [`PartitionLog::append`],
//!   several batches per call if it likes. `end()` then says what is on disk.
//! - **Flush policy**: a flusher calls [`PartitionLog::flush`] every `--flush-ms`, or after
//!   `--flush-messages` records, and stores the returned offset in the recovery point file. For
//!   `--flush-messages 1`, producers wait until a flush returns an offset past their records:
//!   one fsync acknowledges every batch appended before it (group commit).
//! - **Eviction**: entries of the in-memory tail below `end()` may be dropped; a fetch below the
//!   in-memory start is served by [`PartitionLog::read`], whose
//!   [`StorageError::OffsetOutOfRange`] is the fetch's OFFSET_OUT_OF_RANGE.
//! - **Housekeeping**: a periodic task calls [`PartitionLog::apply_retention`] with the wall
//!   clock (Kafka checks every `log.retention.check.interval.ms`, 5 minutes); DeleteRecords
//!   calls [`PartitionLog::delete_records`]; CreateTopics and IncrementalAlterConfigs give a
//!   [`LogConfig`] to `open` and [`PartitionLog::set_config`]. ListOffsets by timestamp calls
//!   [`PartitionLog::offset_for_timestamp`] for offsets no longer in memory.
//!
//! Resources: each segment keeps its three files open (Kafka keeps its log files open too), and
//! nothing of a segment is held in memory beyond a few atomics: index lookups `pread` the index
//! files, so memory does not grow with the log; the page cache holds what is hot.
//!
//! # Broker state
//!
//! How the broker keeps topics, producer ids, committed offsets and group metadata across a
//! restart on the same data directory:
//!
//! - **Start, topics.** [`TopicsFile::new`]`(data_dir).`[`load`](TopicsFile::load)`()`:
//!   `Ok(None)` is a new broker (start from [`TopicsState::default`]); an `Err` stops the
//!   broker with the error, which names the file (starting without topics that exist on disk
//!   would orphan their partition directories). For each topic, create the engine's topic with
//!   its stored id and partition count (the engine needs a constructor that takes the id), and
//!   open each partition's [`PartitionLog`] with [`TopicEntry::log_config`]`(&defaults)`, the
//!   broker defaults coming from the flags. Keep the state in a `Mutex<TopicsState>`.
//! - **Start, producer ids.** [`TopicsFile::reserve_producer_ids`] once at start; InitProducerId
//!   hands out the block's ids from an atomic counter; the call that finds the block used up
//!   takes the state's lock and reserves the next block (a block is durable before any of its
//!   ids is handed out, so a restart never repeats an id).
//! - **Topic changes.** CreateTopics: check the name, count and
//!   `defaults.`[`with_overrides`](LogConfig::with_overrides)`(&configs)` (its error is
//!   INVALID_CONFIG with Kafka's message; `validate_only` stops here), then
//!   [`TopicsFile::update`] inserting the [`TopicEntry`] (with the engine topic's id) before the
//!   topic is visible to clients. DeleteTopics: `update` removing it, then
//!   [`OffsetsJournal::delete_topic`], then the partition directories. IncrementalAlterConfigs:
//!   apply SET and DELETE to a copy of the topic's `configs` (APPEND and SUBTRACT are
//!   INVALID_CONFIG for these non-list configs, as in Kafka), check it with `with_overrides`,
//!   store it with `update`, then [`PartitionLog::set_config`] on each partition.
//!   DescribeConfigs: [`describe_topic_configs`]. A Maelstrom topic created on first use is a
//!   topic like any other and goes through `update` too.
//! - **Start, groups.** [`OffsetsJournal::open`]`(data_dir/`[`OFFSETS_DIR`]`, default)`; an
//!   `Err` stops the broker (it names the file). Load [`OffsetsJournal::state`] into the
//!   coordinators: each committed offset (skip topics or partitions that no longer exist), and
//!   each group's [`GroupMetadata`]: a classic group comes back Empty with its generation, protocol
//!   type and protocol, so that its members rejoin into the next generation and stale
//!   generations stay fenced; an engine (consumer) group resumes its epoch.
//! - **Commits.** After the coordinator accepted an OffsetCommit, append one
//!   [`OffsetRecord::Commit`] per partition in one [`OffsetsJournal::append`] call (one frame:
//!   all kept or all lost), before answering. Append an [`OffsetRecord::Group`] at each new
//!   generation or epoch, [`OffsetRecord::OffsetDelete`] for OffsetDelete and
//!   [`OffsetRecord::GroupDelete`] for DeleteGroups. A record whose strings do not fit (more than
//!   65,535 bytes, possible only from the Maelstrom front) is refused with `InvalidInput`: refuse
//!   the commit.
//! - **Flush policy.** Without flush flags, appends reach the page cache only, like the logs.
//!   With `--flush-messages 1`, call [`OffsetsJournal::flush`] before answering a commit
//!   (concurrent commits share an fsync; or wait until [`OffsetsJournal::flushed`] passes the
//!   position `append` returned); with `--flush-ms`, call it from the flusher. Compaction runs by
//!   itself inside `append`; [`OffsetsJournal::compact`] at a clean shutdown makes the next start
//!   read one snapshot.
//! - **Errors.** An `Err` from `append` means the commit is not durable: answer it with
//!   KAFKA_STORAGE_ERROR ([`StorageError::code`]) or COORDINATOR_NOT_AVAILABLE. Once `flush`
//!   failed, the journal refuses every call: stop the broker, as Kafka does when its last log
//!   directory goes offline.

mod append;
mod checkpoint;
mod config;
mod error;
mod index;
mod layout;
mod offsets;
mod read;
mod recovery;
mod retention;
mod scan;
mod segment;
mod time_index;
mod topics;

#[cfg(all(test, not(loom)))]
mod tests;

pub use checkpoint::{Checkpoint, CheckpointEntry};
pub use config::{
    describe_topic_configs, LogConfig, TopicConfigValue, DEFAULT_SEGMENT_BYTES,
    INTERNAL_SEGMENT_BYTES, MIN_SEGMENT_BYTES, RETENTION_BYTES, RETENTION_MS, SEGMENT_BYTES,
    SEGMENT_MS, SEVEN_DAYS_MS, TOPIC_CONFIGS,
};
pub use error::{Result, StorageError};
pub use offsets::{
    CommittedOffset, GroupMetadata, GroupState, GroupType, OffsetRecord, OffsetsConfig,
    OffsetsJournal, OffsetsState, Replay, OFFSETS_DIR,
};
pub use read::Batches;
pub use recovery::Recovery;
pub use topics::{
    parse_uuid, uuid_string, TopicEntry, TopicsFile, TopicsState, PRODUCER_ID_BLOCK, TOPICS_FILE,
};

use crate::loom::{lock, Arc, ArcSwap, AtomicBool, AtomicU64, Mutex, Ordering};
use segment::Segment;
use std::path::{Path, PathBuf};
use time_index::Indexer;

/// The segments of a log, oldest first; the last is the active one. Never empty.
type Segments = Vec<Arc<Segment>>;

/// The on-disk log of one partition (see the module docs).
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    topic: String,
    partition: i32,
    segments: ArcSwap<Segments>,
    /// The log start offset.
    start: AtomicU64,
    /// The log end offset: the next offset to append.
    end: AtomicU64,
    /// The end offset of the last successful flush.
    flushed: AtomicU64,
    /// A segment file was created since the directory was last fsynced.
    dir_dirty: AtomicBool,
    writer: Mutex<Writer>,
}

/// The writer's state, under the writer lock.
#[derive(Debug)]
struct Writer {
    config: LogConfig,
    active: Arc<Segment>,
    /// Where the active segment's next index entries go.
    indexer: Indexer,
    /// The max timestamp of the active segment's first append (-1 if empty or none): the time
    /// `segment.ms` counts from (Kafka's `rollingBasedTimestamp`).
    first_timestamp: i64,
    /// The caller's clock at the active segment's first append since open or roll: the time
    /// `segment.ms` counts from when batches carry no timestamp (Kafka's `created`).
    created_ms: Option<i64>,
}

impl PartitionLog {
    /// Opens the partition directory `dir` (named `<topic>-<partition>`), creating it if needed,
    /// and recovers it as the module docs say. `recovery_point` is the end offset returned by the
    /// last [`PartitionLog::flush`] before the crash or shutdown (0 checks everything; `u64::MAX`
    /// trusts everything). Returns the log and what recovery did.
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidConfig`] for a bad `config`; [`StorageError::Io`] if the directory
    /// name is not `<topic>-<partition>` (`InvalidInput`) or a file cannot be read or written.
    /// Bad *contents* are not errors: they are recovered and logged.
    pub fn open(dir: &Path, config: LogConfig, recovery_point: u64) -> Result<(Self, Recovery)> {
        recovery::open(dir, config, recovery_point)
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log start offset: the first offset a read may ask for.
    pub fn start(&self) -> u64 {
        // Relaxed: see "Orderings".
        self.start.load(Ordering::Relaxed)
    }

    /// The log end offset: the next offset to append; every offset below it is readable.
    pub fn end(&self) -> u64 {
        // Acquire: pairs with the Release store in `append` (see "Orderings").
        self.end.load(Ordering::Acquire)
    }

    /// The bytes of every segment's published batches.
    pub fn size_bytes(&self) -> u64 {
        self.segments.load().iter().map(|s| s.size()).sum()
    }

    /// The base offsets of the segments, oldest first (the last is the active segment's).
    pub fn segment_bases(&self) -> Vec<u64> {
        self.segments.load().iter().map(|s| s.base()).collect()
    }

    /// The configuration in force.
    pub fn config(&self) -> LogConfig {
        lock(&self.writer).config
    }

    /// Replaces the configuration (IncrementalAlterConfigs); it applies from the next append or
    /// retention run.
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidConfig`]; the old configuration stays.
    pub fn set_config(&self, config: LogConfig) -> Result<()> {
        config.validate()?;
        lock(&self.writer).config = config;
        Ok(())
    }

    fn out_of_range(&self, offset: u64) -> StorageError {
        StorageError::OffsetOutOfRange {
            offset,
            start: self.start(),
            end: self.end(),
        }
    }
}
