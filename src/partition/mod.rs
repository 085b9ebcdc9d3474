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

mod key_table;
mod offset_list;
mod producers;
mod value;

pub use producers::AppendError;

use crate::batch::Batch;
use crate::log::{Log, Publish};
use crate::loom::{fence, lock, Arc, ArcSwapOption, AtomicU32, AtomicU64, Mutex, Ordering, StdArc};
use bytes::BytesMut;
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
    batch: ArcSwapOption<Batch>,
}

impl Stored {
    fn new(batch: Batch) -> Self {
        Stored {
            count: batch.count(),
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

/// The most records a run of single records is encoded into one batch by [`Partition::fetch`].
const FETCH_RUN: usize = 4096;

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
        }
    }

    /// Appends a record stamped with the wall clock; returns its offset once it is published
    /// (readable).
    pub fn append(&self, key: Option<Key<'_>>, value: &[u8]) -> u64 {
        self.append_timed(key, value, crate::clock::wall_ms())
    }

    /// Appends a record with `timestamp` (ms since the Unix epoch); returns its offset once it is
    /// published.
    pub fn append_timed(&self, key: Option<Key<'_>>, value: &[u8], timestamp: i64) -> u64 {
        let index = self.log.append(self.record(key, value, timestamp));
        self.appended();
        self.offset_of(index)
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
            return Ok(Appended {
                base_offset: self.push_batch(batch),
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
                let base_offset = self.push_batch(batch);
                producers.record(producer, count, base_offset);
                Ok(Appended {
                    base_offset,
                    duplicate: false,
                })
            }
        }
    }

    fn push_batch(&self, batch: Batch) -> u64 {
        let timestamp = batch.max_timestamp();
        let index = self.log.append(Record {
            key: None,
            value: Value::batch(Box::new(Stored::new(batch))),
            timestamp,
        });
        self.appended();
        self.offset_of(index)
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
        // Relaxed: see "Orderings".
        let start = self.start.fetch_max(offset, Ordering::Relaxed).max(offset);
        self.evict_below(start);
        Ok(start)
    }

    /// Frees the bytes of the stored batches that lie wholly below `offset`. Records appended
    /// one by one stay (they are a few dozen bytes each).
    fn evict_below(&self, offset: u64) {
        let mut evicted = lock(&self.evicted);
        while let Some(range) = self.log.offsets(*evicted) {
            if range.end > offset {
                break;
            }
            if let Some(stored) = self.log.get(*evicted).and_then(|e| e.value.as_batch()) {
                stored.evict();
            }
            *evicted += 1;
        }
    }

    /// Calls `f` for up to `max` published records at offsets `from..` (from the log start offset
    /// if `from` is below it), in offset order; returns the count. Batches are decoded.
    pub fn read(&self, from: u64, max: usize, mut f: impl FnMut(RecordRef<'_>)) -> usize {
        let from = from.max(self.start());
        let Some(first) = self.log.index_of(from) else {
            return 0;
        };
        let mut n = 0;
        let mut index = first;
        while n < max {
            let mut more = false;
            self.log.read(index, 64, |_, base, entry| {
                more = true;
                if n < max {
                    n += match entry.value.as_batch() {
                        Some(stored) => stored
                            .load()
                            .map_or(0, |b| read_batch(&b, base, from, max - n, &mut f)),
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
        let entries = self.log.entries();
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
            debug_assert!(index < entries);
            // SAFETY: 1. `index` is below the entry count `index_of` read.
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

    /// Appends to `out` the RecordBatch v2 bytes of the records from offset `from` on, in whole
    /// batches, as a Kafka fetch returns them: at least one batch if there is any record at or
    /// above `from` (even one larger than `max_bytes`, as Kafka does, so that a consumer never
    /// stalls on a large batch), then more while the total stays within `max_bytes`. Stored
    /// batches are copied as they came (the first may start below `from`; consumers skip those
    /// records); runs of single records are encoded into uncompressed batches. Returns the bytes
    /// written; 0 when `from` is the high watermark.
    ///
    /// # Errors
    ///
    /// [`OffsetOutOfRange`] if `from` is below the log start offset or above the high watermark.
    pub fn fetch(
        &self,
        from: u64,
        max_bytes: usize,
        out: &mut BytesMut,
    ) -> Result<usize, OffsetOutOfRange> {
        let (start, end) = (self.start(), self.end());
        if from < start || from > end {
            return Err(OffsetOutOfRange {
                offset: from,
                start,
                end,
            });
        }
        let Some(mut index) = self.log.index_of(from) else {
            return Ok(0);
        };
        let before = out.len();
        let mut run: Vec<(u64, &Record)> = Vec::new();
        let mut run_bytes = 0;
        while let Some(entry) = self.log.get(index) {
            let base = self.log.offsets(index).expect("a published entry").start;
            let written = out.len() - before;
            match entry.value.as_batch() {
                Some(stored) => {
                    if !run.is_empty() {
                        Self::encode_run(&mut run, out);
                        run_bytes = 0;
                        continue;
                    }
                    let Some(batch) = stored.load() else {
                        // Evicted: below the log start offset, which `from` is not.
                        index += 1;
                        continue;
                    };
                    if written > 0 && written + batch.size() > max_bytes {
                        break;
                    }
                    batch.write_to(base, out);
                }
                None => {
                    // An estimate of the record's encoded size: its bytes plus the record's
                    // varints, and the batch header for the first record of a run.
                    let size = entry.value.as_slice().len()
                        + entry.entry().map_or(0, |k| k.key().bytes.len())
                        + 24
                        + if run.is_empty() {
                            crate::batch::HEADER
                        } else {
                            0
                        };
                    if (written > 0 || !run.is_empty()) && written + run_bytes + size > max_bytes {
                        break;
                    }
                    if base >= from {
                        run.push((base, entry));
                        run_bytes += size;
                    }
                    if run.len() == FETCH_RUN {
                        Self::encode_run(&mut run, out);
                        run_bytes = 0;
                    }
                }
            }
            index += 1;
        }
        Self::encode_run(&mut run, out);
        Ok(out.len() - before)
    }

    /// Encodes a run of single records (offset, entry) as one batch into `out`, and empties it.
    fn encode_run(run: &mut Vec<(u64, &Record)>, out: &mut BytesMut) {
        Batch::encode(
            run.iter().map(|(offset, r)| {
                (
                    *offset,
                    r.timestamp,
                    r.entry().map(|k| k.key().bytes),
                    Some(r.value.as_slice()),
                )
            }),
            out,
        );
        run.clear();
    }

    /// The first record whose timestamp is at least `timestamp` (ms since the Unix epoch), as
    /// `(offset, its timestamp)`: Kafka's ListOffsets by timestamp. `None` if there is none.
    /// A scan from the log start offset.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Option<(u64, i64)> {
        let mut index = self.log.index_of(self.start())?;
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
mod tests {
    use super::value::INLINE;
    use super::*;
    use crate::loom::AtomicBool;

    fn collect(p: &Partition, key: Key<'_>, from: u64, max: usize) -> Vec<(u64, Vec<u8>)> {
        let mut out = vec![];
        let n = p.read_key(key, from, max, |r| {
            assert_eq!(r.key, Some(key));
            out.push((r.offset, r.value.to_vec()));
        });
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn keys_of_every_length_and_both_kinds_stay_apart() {
        // Keys whose probe words coincide ("aaaa" and "aaaaa" read the same two words), keys that
        // differ in one byte, both kinds of the same bytes, and keys past the 16-byte inline probe.
        let mut keys: Vec<(KeyKind, Vec<u8>)> = vec![];
        for n in 0..=40usize {
            for kind in [KeyKind::Str, KeyKind::Json] {
                keys.push((kind, vec![b'a'; n]));
                for i in 0..n {
                    let mut k = vec![b'a'; n];
                    k[i] = b'b';
                    keys.push((kind, k));
                }
            }
        }
        let p = Partition::new();
        for (i, (kind, bytes)) in keys.iter().enumerate() {
            let key = Key { kind: *kind, bytes };
            assert_eq!(p.append(Some(key), &(i as u64).to_le_bytes()), i as u64);
        }
        for (i, (kind, bytes)) in keys.iter().enumerate() {
            let key = Key { kind: *kind, bytes };
            assert_eq!(
                collect(&p, key, 0, 10),
                [(i as u64, (i as u64).to_le_bytes().to_vec())]
            );
            p.read(i as u64, 1, |r| assert_eq!(r.key, Some(key)));
        }
    }

    #[test]
    fn many_keys_grow_the_key_table() {
        let p = Partition::new();
        let keys: Vec<String> = (0..2000).map(|k| format!("key-{k}")).collect();
        for round in 0..3u64 {
            for (k, key) in keys.iter().enumerate() {
                let offset = p.append(Some(Key::str(key)), &round.to_le_bytes());
                assert_eq!(offset, round * keys.len() as u64 + k as u64);
            }
        }
        for (k, key) in keys.iter().enumerate() {
            let mut got = vec![];
            p.read_key(Key::str(key), 0, 10, |r| {
                assert_eq!(r.key, Some(Key::str(key)));
                got.push(r.offset);
            });
            let n = keys.len() as u64;
            assert_eq!(got, [k as u64, n + k as u64, 2 * n + k as u64]);
        }
    }

    #[test]
    fn values_inline_and_boxed_round_trip() {
        let p = Partition::new();
        let long = vec![7u8; 1000];
        let cases: Vec<&[u8]> = vec![b"", b"1", &[9; INLINE], &[8; INLINE + 1], &long];
        for (i, v) in cases.iter().enumerate() {
            assert_eq!(p.append(None, v), i as u64);
        }
        let mut got = vec![];
        p.read(0, 100, |r| {
            assert_eq!(r.key, None);
            got.push(r.value.to_vec());
        });
        assert_eq!(got, cases.iter().map(|v| v.to_vec()).collect::<Vec<_>>());
        assert_eq!(p.read(4, 1, |r| assert_eq!(r.value, &long[..])), 1);
        assert_eq!(p.read(5, 1, |_| panic!("past the end")), 0);
    }

    #[test]
    fn read_key_returns_that_keys_records_from_an_offset() {
        let p = Partition::new();
        let a = Key::str("a");
        let b = Key::str("b");
        // Same bytes, other kind: a distinct key.
        let a_json = Key {
            kind: KeyKind::Json,
            bytes: b"a",
        };
        let mut expected_a = vec![];
        for i in 0..100u64 {
            let key = match i % 3 {
                0 => a,
                1 => b,
                _ => a_json,
            };
            let offset = p.append(Some(key), i.to_string().as_bytes());
            assert_eq!(offset, i);
            if i % 3 == 0 {
                expected_a.push((i, i.to_string().into_bytes()));
            }
        }
        assert_eq!(collect(&p, a, 0, usize::MAX), expected_a);
        // From an offset that is not one of a's: starts at the next one.
        let from_31: Vec<_> = expected_a
            .iter()
            .filter(|(o, _)| *o >= 31)
            .cloned()
            .collect();
        assert_eq!(collect(&p, a, 31, usize::MAX), from_31);
        assert_eq!(collect(&p, a, 31, 2), from_31[..2].to_vec());
        assert_eq!(collect(&p, a, 1000, 10), vec![]);
        assert_eq!(collect(&p, a, 0, 0), vec![]);
        assert_eq!(collect(&p, Key::str("nope"), 0, 10), vec![]);
        assert!(collect(&p, a_json, 0, 100).iter().all(|(o, _)| o % 3 == 2));
        assert_eq!(p.key_count(a), 34);
        assert_eq!(p.key_count(b), 33);
        assert_eq!(p.key_count(Key::str("nope")), 0);
        // A full read sees each key as it came.
        p.read(0, 3, |r| {
            let want = [a, b, a_json][r.offset as usize];
            assert_eq!(r.key, Some(want));
        });
    }

    #[test]
    fn stress_per_key_order_and_prefix() {
        const THREADS: u64 = 4;
        const PER: u64 = 100_000;
        const KEYS: u64 = 7;
        let p = Partition::new();
        let done = AtomicBool::new(false);
        let key_names: Vec<String> = (0..KEYS).map(|k| format!("k{k}")).collect();
        std::thread::scope(|s| {
            let writers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (p, names) = (&p, &key_names);
                    s.spawn(move || {
                        let mut last = vec![None; KEYS as usize];
                        for i in 0..PER {
                            let k = ((t + i) % KEYS) as usize;
                            let value = format!("{t}:{i}");
                            let offset = p.append(Some(Key::str(&names[k])), value.as_bytes());
                            // Published before append returns, and readable by key.
                            let mut found = false;
                            p.read_key(Key::str(&names[k]), offset, 1, |r| {
                                found = r.offset == offset && r.value == value.as_bytes();
                            });
                            assert!(found, "own record {offset} not readable by key");
                            assert!(last[k].map_or(true, |l| l < offset));
                            last[k] = Some(offset);
                        }
                    })
                })
                .collect();
            // Per-key readers: offsets ascending, only below the watermark, and per (key, writer)
            // sequence numbers in order.
            for k in 0..2usize {
                let (p, names, done) = (&p, &key_names, &done);
                s.spawn(move || {
                    let key = Key::str(&names[k]);
                    let mut from = 0;
                    let mut seen = 0u64;
                    let mut next_i = vec![None::<u64>; THREADS as usize];
                    loop {
                        let finished = done.load(Ordering::SeqCst);
                        let n = p.read_key(key, from, 1000, |r| {
                            assert!(r.offset >= from);
                            assert!(r.offset < p.end(), "returned above the watermark");
                            let text = std::str::from_utf8(r.value).unwrap();
                            let (t, i) = text.split_once(':').unwrap();
                            let (t, i): (usize, u64) = (t.parse().unwrap(), i.parse().unwrap());
                            assert!(next_i[t].map_or(true, |n| n < i), "per-writer order");
                            next_i[t] = Some(i);
                            from = r.offset + 1;
                            seen += 1;
                        });
                        assert!(p.key_count(key) >= seen);
                        if finished && n == 0 {
                            assert_eq!(seen, p.key_count(key), "a record of the key was skipped");
                            break;
                        }
                        if n == 0 {
                            std::thread::yield_now();
                        }
                    }
                });
            }
            for w in writers {
                w.join().unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        assert_eq!(p.end(), THREADS * PER);
        let mut total = 0;
        for name in &key_names {
            let records = collect(&p, Key::str(name), 0, usize::MAX);
            assert!(records.windows(2).all(|w| w[0].0 < w[1].0));
            total += records.len() as u64;
        }
        assert_eq!(total, THREADS * PER);
    }

    /// A Kafka batch of `n` records `k{i}`/`v{i}` with timestamps `ts0 + i`, as a producer sends
    /// it (base offset 0); with `producer`, (id, epoch, base sequence).
    fn kafka_batch(n: u32, ts0: i64, producer: Option<(i64, i16, i32)>) -> Batch {
        use kafka_protocol::records::{
            Compression, Record as KRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let records: Vec<KRecord> = (0..n)
            .map(|i| KRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: producer.map_or(-1, |p| p.0),
                producer_epoch: producer.map_or(-1, |p| p.1),
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                sequence: producer.map_or(i as i32 - 1, |p| p.2 + i as i32),
                timestamp: ts0 + i64::from(i),
                key: Some(format!("k{i}").into()),
                value: Some(format!("v{i}").into()),
                headers: Default::default(),
            })
            .collect();
        let mut out = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::Lz4,
        };
        RecordBatchEncoder::encode(&mut out, records.iter(), &options).unwrap();
        Batch::parse_all(out.freeze()).unwrap().pop().unwrap()
    }

    /// A record as a test reads it: (offset, key, value, kind).
    type Owned = (u64, Option<Vec<u8>>, Vec<u8>, ValueKind);

    /// Every record `read` returns from `from`.
    fn read_all(p: &Partition, from: u64) -> Vec<Owned> {
        let mut got = vec![];
        p.read(from, usize::MAX, |r| {
            got.push((
                r.offset,
                r.key.map(|k| k.bytes.to_vec()),
                r.value.to_vec(),
                r.value_kind,
            ))
        });
        got
    }

    #[test]
    fn batches_and_records_share_one_offset_space() {
        let p = Partition::new();
        assert_eq!(p.append_timed(Some(Key::str("a")), b"1", 10), 0);
        let appended = p.append_batch(kafka_batch(3, 100, None)).unwrap();
        assert_eq!(
            appended,
            Appended {
                base_offset: 1,
                duplicate: false
            }
        );
        assert_eq!(p.append_timed(None, b"2", 20), 4);
        assert_eq!(p.end(), 5);
        let all = read_all(&p, 0);
        let offsets: Vec<u64> = all.iter().map(|r| r.0).collect();
        assert_eq!(offsets, [0, 1, 2, 3, 4]);
        assert_eq!(all[2].1.as_deref(), Some(&b"k1"[..]));
        assert_eq!(
            (all[2].2.as_slice(), all[2].3),
            (&b"v1"[..], ValueKind::Bytes)
        );
        assert_eq!(all[4].3, ValueKind::Json);
        // Reads from inside a batch start at the offset asked for, and honour `max`.
        let from_2: Vec<u64> = read_all(&p, 2).iter().map(|r| r.0).collect();
        assert_eq!(from_2, [2, 3, 4]);
        let mut two = vec![];
        assert_eq!(p.read(2, 2, |r| two.push(r.offset)), 2);
        assert_eq!(two, [2, 3]);
        // The key index holds the record, not the batch's records.
        assert_eq!(p.key_count(Key::str("a")), 1);
        let mut by_key = vec![];
        p.read_key(Key::str("a"), 0, 10, |r| {
            by_key.push((r.offset, r.timestamp))
        });
        assert_eq!(by_key, [(0, 10)]);
    }

    #[test]
    fn fetch_serves_stored_batches_and_encodes_records() {
        let p = Partition::new();
        p.append_timed(Some(Key::str("a")), b"1", 10);
        p.append_timed(None, b"\"x\"", 11);
        p.append_batch(kafka_batch(3, 100, None)).unwrap();
        p.append_timed(Some(Key::str("z")), b"9", 12);
        let mut out = BytesMut::new();
        let n = p.fetch(0, 1 << 20, &mut out).unwrap();
        assert_eq!(n, out.len());
        let batches = Batch::parse_all(out.freeze()).unwrap();
        assert_eq!(batches.len(), 3, "records, the batch, a record");
        let mut offsets = vec![];
        let mut values = vec![];
        for b in &batches {
            let base = u64::from_be_bytes(b.bytes()[..8].try_into().unwrap());
            for r in b.records(base).unwrap() {
                offsets.push(r.offset);
                values.push(r.value.unwrap());
            }
        }
        assert_eq!(offsets, [0, 1, 2, 3, 4, 5]);
        assert_eq!(&values[1][..], b"\"x\"");
        assert_eq!(&values[3][..], b"v1");
        // From inside the stored batch: the whole batch comes (the consumer skips), then the rest.
        let mut out = BytesMut::new();
        p.fetch(3, 1 << 20, &mut out).unwrap();
        let batches = Batch::parse_all(out.freeze()).unwrap();
        assert_eq!(batches.iter().map(Batch::count).collect::<Vec<_>>(), [3, 1]);
        // A tiny limit still returns one whole batch, never nothing.
        let mut out = BytesMut::new();
        p.fetch(2, 1, &mut out).unwrap();
        assert_eq!(Batch::parse_all(out.freeze()).unwrap().len(), 1);
        let mut out = BytesMut::new();
        p.fetch(0, 1, &mut out).unwrap();
        assert_eq!(Batch::parse_all(out.freeze()).unwrap()[0].count(), 1);
        // At the high watermark: empty; past it or below the start: out of range.
        let mut out = BytesMut::new();
        assert_eq!(p.fetch(6, 100, &mut out), Ok(0));
        assert!(p.fetch(7, 100, &mut out).is_err());
        assert_eq!(p.delete_records(2), Ok(2));
        assert_eq!(p.delete_records(1), Ok(2), "the log start never moves back");
        assert!(p.delete_records(9).is_err());
        assert_eq!(
            p.fetch(1, 100, &mut out),
            Err(OffsetOutOfRange {
                offset: 1,
                start: 2,
                end: 6
            })
        );
        assert_eq!(read_all(&p, 0)[0].0, 2, "reads start at the log start");
    }

    #[test]
    fn delete_records_frees_the_batches_below_the_new_start() {
        let p = Partition::new();
        let first = kafka_batch(3, 0, None);
        let bytes = first.bytes().clone();
        p.append_batch(first).unwrap();
        p.append_batch(kafka_batch(3, 0, None)).unwrap();
        // The partition holds the batch's bytes (a second reference besides ours).
        assert!(!bytes.is_unique());
        assert_eq!(p.delete_records(2), Ok(2));
        assert!(!bytes.is_unique(), "offset 2 is still readable");
        assert_eq!(p.delete_records(3), Ok(3));
        assert!(bytes.is_unique(), "the batch below the start was freed");
        let offsets: Vec<u64> = read_all(&p, 0).iter().map(|r| r.0).collect();
        assert_eq!(offsets, [3, 4, 5]);
    }

    #[test]
    fn offset_for_timestamp_finds_the_first_record_at_or_after() {
        let p = Partition::new();
        p.append_timed(None, b"1", 50);
        p.append_batch(kafka_batch(4, 100, None)).unwrap();
        p.append_timed(None, b"2", 200);
        assert_eq!(p.offset_for_timestamp(0), Some((0, 50)));
        assert_eq!(p.offset_for_timestamp(51), Some((1, 100)));
        assert_eq!(p.offset_for_timestamp(102), Some((3, 102)));
        assert_eq!(p.offset_for_timestamp(104), Some((5, 200)));
        assert_eq!(p.offset_for_timestamp(201), None);
    }

    #[test]
    fn idempotent_retries_append_once() {
        let p = Partition::new();
        let first = p.append_batch(kafka_batch(2, 0, Some((5, 0, 0)))).unwrap();
        let retry = p.append_batch(kafka_batch(2, 0, Some((5, 0, 0)))).unwrap();
        assert_eq!(
            retry,
            Appended {
                base_offset: first.base_offset,
                duplicate: true
            }
        );
        assert_eq!(p.end(), 2);
        assert!(matches!(
            p.append_batch(kafka_batch(1, 0, Some((5, 0, 3)))),
            Err(AppendError::OutOfOrderSequence {
                expected: 2,
                got: 3,
                ..
            })
        ));
        assert_eq!(p.end(), 2, "a refused batch appends nothing");
        assert_eq!(
            p.append_batch(kafka_batch(1, 0, Some((5, 0, 2))))
                .unwrap()
                .base_offset,
            2
        );
    }

    #[test]
    fn concurrent_idempotent_retries_and_records_never_duplicate() {
        const BATCHES: i32 = 200;
        let p = Partition::new();
        std::thread::scope(|s| {
            // Two senders race the same producer's batches (a retry storm); a third appends
            // records. Every batch must land exactly once, in sequence order.
            for _ in 0..2 {
                let p = &p;
                s.spawn(move || {
                    for seq in 0..BATCHES {
                        loop {
                            match p.append_batch(kafka_batch(1, 0, Some((1, 0, seq)))) {
                                Ok(_) => break,
                                // Ahead of the other sender: wait for it to append.
                                Err(AppendError::OutOfOrderSequence { expected, got, .. })
                                    if got > expected =>
                                {
                                    std::thread::yield_now()
                                }
                                // Behind by more than the five batches remembered: already
                                // appended, refused rather than taken for a duplicate.
                                Err(AppendError::OutOfOrderSequence { .. }) => break,
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                });
            }
            let p = &p;
            s.spawn(move || {
                for i in 0..1000u32 {
                    p.append(None, &i.to_le_bytes());
                }
            });
        });
        let batch_records = read_all(&p, 0)
            .into_iter()
            .filter(|r| r.3 == ValueKind::Bytes)
            .count();
        assert_eq!(batch_records, BATCHES as usize);
        assert_eq!(p.end(), 1000 + BATCHES as u64);
    }

    #[test]
    fn a_watched_partition_wakes_its_listener() {
        let p = Partition::new();
        let listener = p.appends().listen();
        let watch = p.watch();
        std::thread::scope(|s| {
            s.spawn(|| p.append(None, b"1"));
            event_listener::Listener::wait(listener);
        });
        drop(watch);
        assert_eq!(p.end(), 1);
    }
}
