//! One partition: a `Log` of entries plus a per-key index.
//!
//! An entry is either one **record**, appended by the Maelstrom front ([`Partition::append`]),
//! or one Kafka **batch** of N records ([`Partition::append_batch`]), stored as the producer sent
//! it (`crate::batch`) and taking N offsets in one reservation. Readers see both kinds through
//! the same calls: [`Partition::read`] gives records one by one (decoding batches), and
//! [`Partition::fetch`] gives RecordBatch v2 bytes (encoding runs of records into batches).
//!
//! Keys are opaque bytes plus a [`KeyKind`], so the wire layer can give a JSON string key and the same
//! text as a non-string JSON key back as they came. A record's value is opaque bytes (the
//! Maelstrom front stores the compact JSON text of the message, [`ValueKind::Json`]); a batch's
//! records are [`KeyKind::Bytes`] and [`ValueKind::Bytes`].
//!
//! # The key index
//!
//! Each distinct key of a partition has one `KeyEntry`, allocated once and never freed before the
//! partition: its kind and bytes, and the ascending list of the offsets of its records. The map from
//! key to entry is a `KeyTable` (`partition/key_table.rs`): an insert-only open-addressing hash
//! table that readers probe without locks, while inserts of new keys take a mutex. A record points
//! at its key's entry, so the key bytes are stored once per key, not per record. Only records are
//! indexed; the records inside batches are not (the index serves Maelstrom's per-key `poll`).
//!
//! The offset list (`partition/offset_list.rs`) is appended to only by the log's publisher,
//! through `Publish::publish`, which the log runs for one entry at a time, in offset order,
//! *before* the watermark passes the entry. So a reader that loads the watermark `end` and then
//! the list's length finds every offset of the key below `end` (and maybe a few more, which it
//! skips). [`Partition::read_key`] binary-searches the list for `from` and walks it: O(log n +
//! max), never a scan of the partition.
//!
//! # Memory per record
//!
//! A record entry is 40 bytes: an 8-byte pointer to its key entry (null without a key), a 24-byte
//! `Value` (`partition/value.rs`) that holds up to 23 bytes inline (JSON numbers, the common
//! case) or a boxed slice, and an 8-byte timestamp. The log adds a one-byte `ready` flag and an
//! 8-byte offset end (in parallel arrays), and the key's offset list 8 bytes per keyed record.
//! A larger value adds its boxed copy: 16 bytes of pointer and length, plus the allocator's
//! rounding and header. A batch entry is the same 57 bytes plus its boxed `Batch` (the bytes as
//! sent, shared with the request they came in, and a few fields), whatever its record count.
//! Buckets double, but they are zeroed and the large ones are mapped lazily, so the unused tail of
//! the last bucket is not resident, except for a log's buckets of 64 KiB to 1 MiB, which come
//! from huge pages shared by every log (see `log/buckets.rs`). Each distinct key costs one
//! `KeyEntry` (320 bytes with its list's bucket table) and a table slot, plus its bytes if longer
//! than 23. `cargo bench --bench log -- memory` measures it; `benches/README.md` has the figures.
//!
//! # Orderings
//!
//! - Offset list: the single writer writes element `len` (through its cursor, a plain cell only the
//!   writer touches), then `len.store(len + 1, Release)`; readers
//!   `len.load(Acquire)` and read elements below it. The writer loads `len` with `Relaxed`: it is the
//!   only writer, and the previous writer's store happens-before through the log's publisher
//!   hand-off (see `log.rs`'s Orderings).
//! - [`Partition::read_key`] loads the log's `end` (Acquire) *before* the list's length (Acquire): the
//!   publisher pushed every offset below `end` before its Release store of `end`, so those pushes
//!   happen-before the length load.
//! - Key table: a slot's key words are written (Relaxed) before its entry pointer, which is stored
//!   with Release; a lookup loads the pointer with Acquire and only then the key words (see
//!   `find`). A new entry is stored into a table slot with Release, and a new table into
//!   `current` with Release (after every slot of it is filled); lookups load `current` and slots
//!   with Acquire, so a found entry is fully built. Slots go only from null to an entry, and a
//!   table that has been replaced is never written again, so a lookup that raced a resize probes a
//!   consistent (if older) table. It can miss only keys inserted after it loaded `current`:
//!   * an appender that misses falls back to the insert path, which re-checks under the mutex;
//!   * a reader of key K loads `end` first (Acquire). Every record of K below that `end` was
//!     appended after K's entry was inserted (the appender found or inserted the entry first),
//!     and that append happens-before the `end` store the reader saw, so the reader's later load
//!     of `current` and of the slot see K's entry (coherence). A key inserted after that `end` has
//!     no record the reader may return anyway.
//! - Waking fetchers (a Dekker pair): a fetcher that waits for appends first listens on the
//!   topic's [`Appends`] event, then registers with [`Partition::watch`] (`waiters.fetch_add`,
//!   SeqCst), then re-reads the high watermark. An appender publishes (Release store of `end`),
//!   then runs a SeqCst fence, then loads `waiters` (Relaxed, ordered by the fence). The fence and
//!   the SeqCst RMW forbid both sides missing each other: either the fetcher sees the new
//!   watermark, or the appender sees the waiter and notifies the event.
//! - The log start offset only grows (`fetch_max`) and publishes nothing (records below it stay
//!   in memory): its loads and stores are Relaxed.
//! - Idempotent producers' state is under a mutex, held across the check, the append and the
//!   update, so two batches of one producer are never both appended as new.

mod durable;
mod fetch;
mod key_table;
mod offset_list;
mod producers;
mod retention;
mod value;

pub use durable::{DiskOptions, FlushPolicy};
pub use fetch::FetchError;
pub use producers::AppendError;

use crate::batch::Batch;
use crate::log::{Log, Publish};
use crate::loom::{fence, lock, Arc, ArcSwapOption, AtomicU32, AtomicU64, Mutex, Ordering, StdArc};
use durable::Disk;
use key_table::{KeyEntry, KeyTable};
use producers::{Producers, Verdict};
use std::ptr::NonNull;
use value::Value;

/// How the wire layer wants a key's bytes read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// The bytes are the UTF-8 of a string key.
    Str,
    /// The bytes are the compact JSON text of a non-string key.
    Json,
    /// Opaque bytes (a Kafka record's key).
    Bytes,
}

/// A key as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key<'a> {
    pub kind: KeyKind,
    pub bytes: &'a [u8],
}

impl<'a> Key<'a> {
    /// A string key.
    pub fn str(s: &'a str) -> Self {
        Key {
            kind: KeyKind::Str,
            bytes: s.as_bytes(),
        }
    }
}

/// What a record's value bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueKind {
    /// Compact JSON text (what the Maelstrom front stores).
    Json,
    /// Opaque bytes (a Kafka record's value).
    Bytes,
    /// No value: a Kafka record with a null value (a tombstone); the bytes are empty.
    Null,
}

/// A published record, borrowed from its partition (or from a batch decoded for the reader).
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub offset: u64,
    /// Milliseconds since the Unix epoch: when the record was appended (Maelstrom), or the
    /// producer's CreateTime (Kafka).
    pub timestamp: i64,
    pub key: Option<Key<'a>>,
    pub value: &'a [u8],
    pub value_kind: ValueKind,
}

/// One log entry: a record, or a batch (then `key` is `None` and `value` holds the batch).
struct Record {
    /// The key's entry in this partition's index; `None` for a record without a key.
    key: Option<NonNull<KeyEntry>>,
    value: Value,
    /// A record's timestamp, or a batch's largest (ms since the Unix epoch).
    timestamp: i64,
}

const _: () = assert!(std::mem::size_of::<Value>() == 24);
const _: () = assert!(std::mem::size_of::<Record>() == 40);

// SAFETY:
// 1. The key pointer targets a `KeyEntry` owned by the same partition as the record, which is
//    shared safely (see `KeyTable`'s impls) and outlives the record's use; the record never mutates
//    through it except in `publish`, whose exclusivity the log guarantees.
// 2. A boxed value or batch is owned by the record alone (like a `Box<[u8]>`, which is `Send`;
//    a `Batch` is `Send`).
unsafe impl Send for Record {}
// SAFETY: as for `Send`; `&Record` only exposes reads of the entry's immutable fields, synchronized
// reads of its offset list, and reads of the value's bytes or batch (`Batch` is `Sync`).
unsafe impl Sync for Record {}

impl Record {
    #[inline]
    fn entry(&self) -> Option<&KeyEntry> {
        // SAFETY:
        // 1. The entry is owned by the partition's key map, which never removes entries and is
        //    dropped only with the partition; records are only reached through `&Partition`.
        self.key.map(|p| unsafe { p.as_ref() })
    }

    /// The record at `offset`; only for an entry that is a record, not a batch.
    #[inline]
    fn view(&self, offset: u64) -> RecordRef<'_> {
        RecordRef {
            offset,
            timestamp: self.timestamp,
            key: self.entry().map(KeyEntry::key),
            value: self.value.as_slice(),
            value_kind: ValueKind::Json,
        }
    }
}

/// A stored batch as its log entry holds it: the fields readers need without its bytes, and
/// the bytes until they are evicted (after which they are read from disk, or, without a data
/// directory, lie below the log start offset where no read may go).
pub(crate) struct Stored {
    count: u32,
    /// The batch's size in bytes.
    size: u32,
    batch: ArcSwapOption<Batch>,
}

impl Stored {
    fn new(batch: Batch) -> Self {
        Stored {
            count: batch.count(),
            size: batch.size() as u32,
            batch: ArcSwapOption::new(Some(Arc::new(batch))),
        }
    }

    /// The batch, unless evicted.
    fn load(&self) -> Option<Arc<Batch>> {
        self.batch.load_full()
    }

    /// Drops the in-memory bytes; readers that loaded them keep their `Arc` until done.
    fn evict(&self) {
        self.batch.store(None);
    }
}

impl Publish for Record {
    #[inline]
    fn count(&self) -> u64 {
        match self.value.as_batch() {
            Some(stored) => u64::from(stored.count),
            None => 1,
        }
    }

    #[inline]
    fn publish(&self, offset: u64) {
        if let Some(entry) = self.entry() {
            // SAFETY:
            // 1. Records of a partition live only in that partition's log, and entries are per
            //    partition, so every push to this list comes from this log's `publish` calls.
            // 2. The log runs `publish` never concurrently, with each call happening-before the next.
            // 3. Offsets arrive in strictly increasing order, keeping the list sorted.
            unsafe { entry.offsets.push(offset) };
        }
    }
}

/// Calls `f` for the records of `batch` (at offsets from `base`) whose offset is ≥ `from`, at most
/// `max`; returns how many. A batch whose records do not decode yields none (its header and CRC
/// were checked when it was stored; the records were not).
fn read_batch(
    batch: &Batch,
    base: u64,
    from: u64,
    max: usize,
    f: &mut impl FnMut(RecordRef<'_>),
) -> usize {
    let records = match batch.records(base) {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!(
                base,
                "skipping a stored batch whose records do not decode: {e}"
            );
            return 0;
        }
    };
    let mut n = 0;
    for r in records.iter().filter(|r| r.offset as u64 >= from).take(max) {
        f(RecordRef {
            offset: r.offset as u64,
            timestamp: r.timestamp,
            key: r.key.as_deref().map(|bytes| Key {
                kind: KeyKind::Bytes,
                bytes,
            }),
            value: r.value.as_deref().unwrap_or_default(),
            value_kind: if r.value.is_some() {
                ValueKind::Bytes
            } else {
                ValueKind::Null
            },
        });
        n += 1;
    }
    n
}

/// The event that fetchers waiting for new records listen on: one per broker, shared by every
/// partition, notified after an append to a partition that has waiters (see [`Partition::watch`]).
#[derive(Debug, Default)]
pub struct Appends(#[cfg(not(loom))] event_listener::Event);

impl Appends {
    /// A listener that completes after a later notification. Listen *before* checking whether the
    /// records you wait for are there, and register with [`Partition::watch`] in between.
    #[cfg(not(loom))]
    pub fn listen(&self) -> event_listener::EventListener {
        self.0.listen()
    }

    /// Wakes every listener.
    fn notify(&self) {
        // Under loom nothing listens: the models check the log, not the fronts' waits.
        #[cfg(not(loom))]
        self.0.notify(usize::MAX);
    }
}

/// Registered interest in appends to one partition, from [`Partition::watch`]: while it lives,
/// each append notifies the partition's [`Appends`].
#[derive(Debug)]
pub struct Watch<'a>(&'a Partition);

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        // Relaxed: a waiter that leaves needs no ordering; an appender that still sees it only
        // notifies once too often.
        self.0.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What [`Partition::append_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The first offset of the batch.
    pub base_offset: u64,
    /// True if the batch was a retry of one already appended (idempotent producer): nothing was
    /// appended, and `base_offset` is the original's.
    pub duplicate: bool,
}

/// A read outside `log start offset ..= high watermark`: Kafka's OFFSET_OUT_OF_RANGE (1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetOutOfRange {
    /// The offset asked for.
    pub offset: u64,
    /// The log start offset.
    pub start: u64,
    /// The high watermark.
    pub end: u64,
}

impl std::fmt::Display for OffsetOutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "offset {} is outside the log ({}..={})",
            self.offset, self.start, self.end
        )
    }
}

impl std::error::Error for OffsetOutOfRange {}

/// One partition of a topic.
pub struct Partition {
    /// Declared first so that it drops first: records point into `keys`.
    log: Log<Record>,
    keys: KeyTable,
    /// The log start offset (Kafka's `logStartOffset`): reads below it are out of range.
    start: AtomicU64,
    /// How many [`Watch`]es are live.
    waiters: AtomicU32,
    appends: StdArc<Appends>,
    producers: Mutex<Producers>,
    /// The index below which every batch's bytes are evicted; also serializes evictions.
    evicted: Mutex<u64>,
    /// Bytes of stored batches whose bytes are in memory.
    resident: AtomicU64,
    /// The first offset held in memory: below it, reads go to the disk.
    resident_from: AtomicU64,
    /// The on-disk log, for a partition of a broker with a data directory.
    disk: Option<Disk>,
}

impl Partition {
    /// An empty partition with an [`Appends`] event of its own.
    pub fn new() -> Self {
        Self::with_appends(StdArc::default())
    }

    /// An empty partition that notifies `appends` when it has waiters.
    pub fn with_appends(appends: StdArc<Appends>) -> Self {
        Partition {
            log: Log::new(),
            keys: KeyTable::new(),
            start: AtomicU64::new(0),
            waiters: AtomicU32::new(0),
            appends,
            producers: Mutex::new(Producers::default()),
            evicted: Mutex::new(0),
            resident: AtomicU64::new(0),
            resident_from: AtomicU64::new(0),
            disk: None,
        }
    }

    /// Appends a record stamped with the wall clock; returns its offset once it is published
    /// (readable).
    pub fn append(&self, key: Option<Key<'_>>, value: &[u8]) -> u64 {
        self.append_timed(key, value, crate::clock::wall_ms())
    }

    /// Appends a record with `timestamp` (ms since the Unix epoch); returns its offset once it is
    /// published.
    /// With a disk, the record is written through before this returns; a failed write is
    /// logged (the record stays readable in memory).
    pub fn append_timed(&self, key: Option<Key<'_>>, value: &[u8], timestamp: i64) -> u64 {
        let index = self.log.append(self.record(key, value, timestamp));
        self.appended();
        self.written_through();
        self.offset_of(index)
    }

    /// [`Partition::write_through`], logging a failure: for the appends of single records,
    /// whose callers have no error to give.
    fn written_through(&self) {
        if let Err(e) = self.write_through() {
            tracing::error!("a record was published but not written to disk: {e}");
        }
    }

    /// Appends a record only if it gets offset `expected`: `Ok(expected)` once published, or
    /// `Err(next)` with the offset the next append would get, appending nothing. A replica that
    /// copies its leader's records in order with this call is a prefix of the leader's log by
    /// construction. For partitions of single records only (the Maelstrom cluster's): a partition
    /// holding a batch refuses with `Err(end)`.
    pub fn append_at(
        &self,
        expected: u64,
        key: Option<Key<'_>>,
        value: &[u8],
        timestamp: i64,
    ) -> Result<u64, u64> {
        let end = self.end();
        if end != self.log.entries() {
            return Err(end);
        }
        let index = self
            .log
            .append_at(expected, self.record(key, value, timestamp))?;
        self.appended();
        self.written_through();
        Ok(self.offset_of(index))
    }

    fn record(&self, key: Option<Key<'_>>, value: &[u8], timestamp: i64) -> Record {
        Record {
            key: key.map(|k| self.keys.get_or_insert(k)),
            value: Value::new(value),
            timestamp,
        }
    }

    /// The first offset of the published entry `index`.
    fn offset_of(&self, index: u64) -> u64 {
        self.log
            .offsets(index)
            .expect("an appended entry is published")
            .start
    }

    /// Appends one Kafka batch; its N records take N offsets in one reservation. A batch with a
    /// producer id goes through the idempotent producer's checks first (see
    /// `partition/producers.rs`): a retry of one of the producer's last five batches is answered
    /// with the original offsets and appends nothing.
    ///
    /// # Errors
    ///
    /// [`AppendError`] for an idempotent batch out of sequence or from a fenced epoch; nothing is
    /// appended.
    pub fn append_batch(&self, batch: Batch) -> Result<Appended, AppendError> {
        let Some(producer) = batch.producer() else {
            let base_offset = self.push_batch(batch).map_err(|(_, e)| e)?;
            return Ok(Appended {
                base_offset,
                duplicate: false,
            });
        };
        let count = batch.count();
        let mut producers = lock(&self.producers);
        match producers.check(producer, count)? {
            Verdict::Duplicate(base_offset) => Ok(Appended {
                base_offset,
                duplicate: true,
            }),
            Verdict::Append => {
                let appended = self.push_batch(batch);
                let base_offset = match &appended {
                    Ok(base) => *base,
                    Err((base, _)) => *base,
                };
                producers.record(producer, count, base_offset);
                appended.map_err(|(_, e)| e)?;
                Ok(Appended {
                    base_offset,
                    duplicate: false,
                })
            }
        }
    }

    /// Appends a batch and writes it through; its base offset, or that and the write's error.
    fn push_batch(&self, batch: Batch) -> Result<u64, (u64, AppendError)> {
        let timestamp = batch.max_timestamp();
        let size = batch.size() as u64;
        let index = self.log.append(Record {
            key: None,
            value: Value::batch(Box::new(Stored::new(batch))),
            timestamp,
        });
        // Relaxed: a statistic for the eviction policy, which tolerates a stale value.
        self.resident.fetch_add(size, Ordering::Relaxed);
        self.appended();
        let base = self.offset_of(index);
        self.write_through()
            .map_err(|e| (base, AppendError::Storage(e.to_string())))?;
        Ok(base)
    }

    /// After an append: wakes the fetchers that watch this partition (see "Orderings").
    #[inline]
    fn appended(&self) {
        // SeqCst: pairs with the SeqCst `fetch_add` in `watch`: see "Orderings".
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above.
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.appends.notify();
        }
    }

    /// Registers interest in appends to this partition: until the [`Watch`] drops, every append
    /// notifies the partition's [`Appends`]. Listen on that event first, then watch, then check
    /// the high watermark: an append after the check is then never missed.
    pub fn watch(&self) -> Watch<'_> {
        // SeqCst: pairs with the fence in `appended`: see "Orderings".
        self.waiters.fetch_add(1, Ordering::SeqCst);
        Watch(self)
    }

    /// The event that this partition's appends notify.
    pub fn appends(&self) -> &Appends {
        &self.appends
    }

    /// The high watermark (log end offset): every offset below it is published.
    pub fn end(&self) -> u64 {
        self.log.end()
    }

    /// The log start offset: the first offset a read may ask for.
    pub fn start(&self) -> u64 {
        // Relaxed: see "Orderings".
        self.start.load(Ordering::Relaxed)
    }

    /// Moves the log start offset up to `offset` (Kafka's DeleteRecords); it never moves back.
    /// Returns the new log start offset.
    ///
    /// # Errors
    ///
    /// [`OffsetOutOfRange`] if `offset` is above the high watermark.
    pub fn delete_records(&self, offset: u64) -> Result<u64, OffsetOutOfRange> {
        let end = self.end();
        if offset > end {
            return Err(OffsetOutOfRange {
                offset,
                start: self.start(),
                end,
            });
        }
        if let Some(disk) = &self.disk {
            // Every published record is written through before its append returns, so the
            // disk's end is at most a concurrent append behind: clamp to it.
            if let Err(e) = disk.log.delete_records(offset.min(disk.log.end())) {
                tracing::error!("DeleteRecords on disk failed: {e}");
            }
        }
        // Relaxed: see "Orderings".
        let start = self.start.fetch_max(offset, Ordering::Relaxed).max(offset);
        self.evict(start, 0);
        Ok(start)
    }

    /// Frees the bytes of the oldest stored batches wholly below `below`, until at most `target`
    /// bytes of batches stay resident. Records appended one by one stay (a few dozen bytes each).
    fn evict(&self, below: u64, target: u64) {
        let mut evicted = lock(&self.evicted);
        while let Some(range) = self.log.offsets(*evicted) {
            // Relaxed: a statistic, see `push_batch`.
            if range.end > below || self.resident.load(Ordering::Relaxed) <= target {
                break;
            }
            if let Some(stored) = self.log.get(*evicted).and_then(|e| e.value.as_batch()) {
                stored.evict();
                // Relaxed: as above.
                self.resident
                    .fetch_sub(u64::from(stored.size), Ordering::Relaxed);
            }
            *evicted += 1;
            // Relaxed: a hint for readers, who fall back to the disk when they find an evicted
            // batch anyway (see `fetch`).
            self.resident_from.store(range.end, Ordering::Relaxed);
        }
    }

    /// The first offset whose bytes are in memory (a hint: see `evict`).
    fn resident_from(&self) -> u64 {
        // Relaxed: see `evict`.
        self.resident_from
            .load(Ordering::Relaxed)
            .max(self.log_first())
    }

    /// The first offset of the in-memory log.
    fn log_first(&self) -> u64 {
        self.log.offsets(0).map_or(self.end(), |r| r.start)
    }

    /// Calls `f` for up to `max` published records at offsets `from..` (from the log start offset
    /// if `from` is below it), in offset order; returns the count. Batches are decoded.
    pub fn read(&self, from: u64, max: usize, mut f: impl FnMut(RecordRef<'_>)) -> usize {
        let from = from.max(self.start());
        if self.disk.is_some() && from < self.resident_from() {
            return self.read_disk(from, max, &mut f);
        }
        let Some(first) = self.log.index_of(from) else {
            return 0;
        };
        let mut n = 0;
        let mut index = first;
        // Set when a batch turns out evicted: the read goes on from the disk there.
        let mut evicted_at = None;
        while n < max && evicted_at.is_none() {
            let mut more = false;
            self.log.read(index, 64, |_, base, entry| {
                more = true;
                if n < max && evicted_at.is_none() {
                    n += match entry.value.as_batch() {
                        Some(stored) => match stored.load() {
                            Some(b) => read_batch(&b, base, from, max - n, &mut f),
                            None => {
                                evicted_at = Some(base.max(from));
                                0
                            }
                        },
                        None => {
                            f(entry.view(base));
                            1
                        }
                    };
                }
            });
            if !more {
                break;
            }
            index += 64;
        }
        match evicted_at {
            Some(at) if self.disk.is_some() => n + self.read_disk(at, max - n, &mut f),
            _ => n,
        }
    }

    /// [`Partition::read`] from the disk: records at offsets `from..`, at most `max`.
    fn read_disk(&self, from: u64, max: usize, f: &mut impl FnMut(RecordRef<'_>)) -> usize {
        let Some(disk) = &self.disk else {
            return 0;
        };
        let mut n = 0;
        for item in disk.log.batches_from(from) {
            if n >= max {
                break;
            }
            let (base, bytes) = match item {
                Ok(item) => item,
                Err(e) => {
                    tracing::warn!(from, "a read from disk failed: {e}");
                    break;
                }
            };
            for batch in Batch::parse_all(bytes).unwrap_or_default() {
                n += read_batch(&batch, base, from, max - n, f);
            }
        }
        n
    }

    /// Calls `f` for up to `max` published records of `key` at offsets `from..`, in offset order, in
    /// O(log n + max); returns the count. Only records appended one by one are indexed by key,
    /// not the records of batches.
    pub fn read_key(
        &self,
        key: Key<'_>,
        from: u64,
        max: usize,
        mut f: impl FnMut(RecordRef<'_>),
    ) -> usize {
        // The watermark first, then the key table and the list: see "Orderings".
        let end = self.log.end();
        let Some(entry) = self.keys.get(key) else {
            return 0;
        };
        // SAFETY: 1. Entries live as long as the partition (see `Record::entry`).
        let entry = unsafe { entry.as_ref() };
        let count = entry.offsets.count();
        let from = from.max(self.start());
        // SAFETY: 1. `count` came from `count()`.
        let mut i = unsafe { entry.offsets.search(count, from) };
        let mut n = 0;
        while n < max && i < count {
            // SAFETY: 1. `i < count`.
            let offset = unsafe { entry.offsets.get(i) };
            if offset >= end {
                break;
            }
            let index = self
                .log
                .index_of(offset)
                .expect("an indexed offset below the watermark has its entry");
            // SAFETY: 1. `index` is below the entry count `index_of` read. (Not below an entry
            // count read before `end`: entries published in between are below `end` too.)
            let record = unsafe { self.log.get_unchecked(index) };
            f(record.view(offset));
            n += 1;
            i += 1;
        }
        n
    }

    /// How many published records `key` has in this partition (records appended one by one).
    pub fn key_count(&self, key: Key<'_>) -> u64 {
        // As in `read_key`: the watermark first.
        let end = self.log.end();
        let Some(entry) = self.keys.get(key) else {
            return 0;
        };
        // SAFETY: 1. Entries live as long as the partition (see `Record::entry`).
        let entry = unsafe { entry.as_ref() };
        let count = entry.offsets.count();
        // SAFETY: 1. `count` came from `count()`.
        unsafe { entry.offsets.search(count, end) }
    }

    /// The first record whose timestamp is at least `timestamp` (ms since the Unix epoch), as
    /// `(offset, its timestamp)`: Kafka's ListOffsets by timestamp. `None` if there is none.
    /// A scan from the log start offset.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Option<(u64, i64)> {
        let mut from = self.start();
        if let Some(disk) = &self.disk {
            // The disk holds every offset below its end: ask it first (its time index), then
            // scan only what is in memory and not yet on disk.
            match disk.log.offset_for_timestamp(timestamp) {
                Ok(Some(found)) if found.0 >= from => return Some(found),
                Ok(_) => {}
                Err(e) => tracing::warn!("a timestamp lookup on disk failed: {e}"),
            }
            from = from.max(disk.log.end());
        }
        let mut index = self.log.index_of(from)?;
        while let Some(entry) = self.log.get(index) {
            if entry.timestamp >= timestamp {
                let base = self.log.offsets(index).expect("a published entry").start;
                let Some(stored) = entry.value.as_batch() else {
                    return Some((base, entry.timestamp));
                };
                let Some(batch) = stored.load() else {
                    index += 1;
                    continue;
                };
                let mut found = None;
                read_batch(&batch, base, base, usize::MAX, &mut |r| {
                    if found.is_none() && r.timestamp >= timestamp {
                        found = Some((r.offset, r.timestamp));
                    }
                });
                if found.is_some() {
                    return found;
                }
            }
            index += 1;
        }
        None
    }
}

impl Default for Partition {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("start", &self.start())
            .field("end", &self.end())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
