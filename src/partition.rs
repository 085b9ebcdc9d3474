//! One partition: a [`Log`] of records plus a per-key index.
//!
//! Keys are opaque bytes plus a [`KeyKind`], so the wire layer can give a JSON string key and the same
//! text as a non-string JSON key back as they came. The value is opaque bytes (the node stores the
//! compact JSON text of the message).
//!
//! # The key index
//!
//! Each distinct key of a partition has one `KeyEntry`, allocated once and never freed before the
//! partition: its kind and bytes, and the ascending list of the offsets of its records. The map from
//! key to entry is a `KeyTable`: an insert-only open-addressing hash table that readers probe
//! without locks, while inserts of new keys take a mutex. A record points at its key's entry, so the
//! key bytes are stored once per key, not per record.
//!
//! The offset list is appended to only by the log's publisher, through [`Publish::publish`], which
//! the log runs for one record at a time, in offset order, *before* the watermark passes the record.
//! So a reader that loads the watermark `end` and then the list's length finds every offset of the
//! key below `end` (and maybe a few more, which it skips). [`Partition::read_key`] binary-searches
//! the list for `from` and walks it: O(log n + max), never a scan of the partition.
//!
//! # Memory per record
//!
//! A record is 32 bytes: an 8-byte pointer to its key entry (null without a key) and a 24-byte
//! `Value` that holds up to 23 bytes inline (JSON numbers, the common case) or a boxed slice.
//! The log adds a one-byte `ready` flag (in a parallel array), and the key's offset list 8 bytes
//! per keyed record: **41 bytes per keyed record with a value of up to 23 bytes**, so 41 bytes of
//! overhead beyond the value, counting the key bytes as stored once per key. A larger value adds
//! its boxed copy: 16 bytes of pointer and length, plus the allocator's rounding and header (8 to
//! 24 bytes with glibc). Buckets double, but they are zeroed and the large ones are mapped lazily,
//! so the unused tail of the last bucket is not resident, except for a log's record buckets of
//! 64 KiB to 1 MiB (its ~2,000th to ~65,000th records), which come from huge pages shared by
//! every log (see `log/buckets.rs`): the unfilled part of such a bucket is resident. Each
//! distinct key costs about 400 bytes once (a 320-byte entry with the key inline up to 23 bytes
//! and its offset list's bucket table, and 64 bytes of table slots at most half full), plus its
//! bytes if longer than 23.
//! `cargo bench --bench log -- memory` measures it: 10 M records of 100 keys with 5-byte values
//! in 8 partitions (`memory 64 250000`: many partitions of ~4,000 records).
//!
//! # Orderings
//!
//! - Offset list: the single writer writes element `len` (through its cursor, a plain cell only the
//!   writer touches), then `len.store(len + 1, Release)`; readers
//!   `len.load(Acquire)` and read elements below it. The writer loads `len` with `Relaxed`: it is the
//!   only writer, and the previous writer's store happens-before through the log's publisher
//!   hand-off (see [`crate::log`]'s Orderings).
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

use crate::log::{prefetch_write, Buckets, Log, Publish, Zeroable};
use crate::loom::{lock, AtomicPtr, AtomicU64, Mutex, Ordering, UnsafeCell};
use std::ptr::NonNull;

/// How the wire layer wants a key's bytes read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// The bytes are the UTF-8 of a string key.
    Str,
    /// The bytes are the compact JSON text of a non-string key.
    Json,
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

/// A published record, borrowed from its partition.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub offset: u64,
    pub key: Option<Key<'a>>,
    pub value: &'a [u8],
}

/// Values up to this many bytes are stored inside the record.
const INLINE: usize = 23;

/// The tag (last byte) of a boxed value; a tag up to `INLINE` is the length of an inline value.
const HEAP: u8 = u8::MAX;

/// A record's value in 24 bytes: up to 23 bytes inline (JSON numbers, the common case), or a boxed
/// slice. The last byte is the tag. An inline value is built from a few overlapping unaligned loads
/// combined in registers and stored as whole words, with no byte-wise stores that a later
/// word-sized copy of the record would have to wait for.
#[repr(C)]
union Value {
    /// Inline: the bytes, little-endian within each word; the tag in the top byte of `[2]`.
    inline: [u64; 3],
    heap: Boxed,
}

/// The boxed form of a [`Value`].
#[repr(C)]
#[derive(Clone, Copy)]
struct Boxed {
    ptr: *mut u8,
    len: usize,
    /// `(HEAP as u64) << 56` in the native byte order of `inline[2]`.
    tag: u64,
}

const _: () = assert!(std::mem::size_of::<Boxed>() == 24);

/// `src[i..i + 8]` as a little-endian integer.
#[inline(always)]
fn load8(src: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(src[i..i + 8].try_into().expect("8 bytes"))
}

/// `src[i..i + 4]` as a little-endian integer.
#[inline(always)]
fn load4(src: &[u8], i: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        src[i..i + 4].try_into().expect("4 bytes"),
    ))
}

/// The three words of an inline value of `src` (at most `INLINE` bytes), tag included. Each size
/// class reads two or three overlapping chunks that together cover `src`; overlapping bytes are
/// the same, so or-ing or shifting them into place is exact.
#[inline(always)]
fn inline_words(src: &[u8]) -> [u64; 3] {
    let n = src.len();
    debug_assert!(n <= INLINE);
    let mut w = [0u64; 3];
    match n {
        0 => {}
        1..=3 => {
            w[0] = u64::from(src[0])
                | u64::from(src[n / 2]) << (8 * (n / 2))
                | u64::from(src[n - 1]) << (8 * (n - 1));
        }
        4..=8 => w[0] = load4(src, 0) | load4(src, n - 4) << (8 * (n - 4)),
        9..=16 => {
            w[0] = load8(src, 0);
            w[1] = load8(src, n - 8) >> (8 * (16 - n));
        }
        _ => {
            w[0] = load8(src, 0);
            w[1] = load8(src, 8);
            w[2] = load8(src, n - 8) >> (8 * (24 - n));
        }
    }
    w[2] |= (n as u64) << 56;
    // Stored so that the bytes in memory are little-endian on any target.
    [w[0].to_le(), w[1].to_le(), w[2].to_le()]
}

impl Value {
    #[inline]
    fn new(value: &[u8]) -> Self {
        if value.len() <= INLINE {
            Value {
                inline: inline_words(value),
            }
        } else {
            let boxed: Box<[u8]> = value.into();
            let len = boxed.len();
            Value {
                heap: Boxed {
                    ptr: Box::into_raw(boxed) as *mut u8,
                    len,
                    tag: ((HEAP as u64) << 56).to_le(),
                },
            }
        }
    }

    #[inline]
    fn tag(&self) -> u8 {
        // SAFETY:
        // 1. Both forms initialize all 24 bytes, and the last word is an integer in both
        //    (`inline[2]` or `Boxed::tag`), so reading it as `u64` is always valid.
        (u64::from_le(unsafe { self.inline[2] }) >> 56) as u8
    }

    #[inline]
    fn as_slice(&self) -> &[u8] {
        let tag = self.tag();
        if tag == HEAP {
            // SAFETY:
            // 1. The tag says `heap` was written: `ptr` and `len` are those of the boxed slice
            //    leaked in `new`, which lives until `drop`, and `&self` outlives this borrow.
            unsafe { std::slice::from_raw_parts(self.heap.ptr, self.heap.len) }
        } else {
            // SAFETY:
            // 1. The tag says `inline` was written: 24 initialized bytes, whose first `tag`
            //    (≤ 23) are the value, in order (little-endian words).
            unsafe {
                std::slice::from_raw_parts(self.inline.as_ptr().cast::<u8>(), usize::from(tag))
            }
        }
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        if self.tag() == HEAP {
            // SAFETY:
            // 1. The tag says `heap` was written: the boxed slice leaked in `new`, dropped once,
            //    here.
            unsafe {
                drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.heap.ptr,
                    self.heap.len,
                )))
            };
        }
    }
}

/// One record in the log.
struct Record {
    /// The key's entry in this partition's index; `None` for a record without a key.
    key: Option<NonNull<KeyEntry>>,
    value: Value,
}

const _: () = assert!(std::mem::size_of::<Value>() == 24);
const _: () = assert!(std::mem::size_of::<Record>() == 32);

// SAFETY:
// 1. The key pointer targets a `KeyEntry` owned by the same partition as the record, which is
//    shared safely (see `KeyTable`'s impls) and outlives the record's use; the record never mutates
//    through it except in `publish`, whose exclusivity the log guarantees.
// 2. A boxed value is owned by the record alone (like a `Box<[u8]>`, which is `Send`).
unsafe impl Send for Record {}
// SAFETY: as for `Send`; `&Record` only exposes reads of the entry's immutable fields, synchronized
// reads of its offset list, and reads of the value's bytes.
unsafe impl Sync for Record {}

impl Record {
    #[inline]
    fn entry(&self) -> Option<&KeyEntry> {
        // SAFETY:
        // 1. The entry is owned by the partition's key map, which never removes entries and is
        //    dropped only with the partition; records are only reached through `&Partition`.
        self.key.map(|p| unsafe { p.as_ref() })
    }

    #[inline]
    fn view(&self, offset: u64) -> RecordRef<'_> {
        RecordRef {
            offset,
            key: self.entry().map(KeyEntry::key),
            value: self.value.as_slice(),
        }
    }
}

impl Publish for Record {
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

/// `a == b`, inline for the short keys that are the common case (no `memcmp` call).
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=8 => load4(a, 0) == load4(b, 0) && load4(a, n - 4) == load4(b, n - 4),
        9..=16 => load8(a, 0) == load8(b, 0) && load8(a, n - 8) == load8(b, n - 8),
        _ => a == b,
    }
}

/// One distinct key of a partition. Its first cache line holds the key (inline up to 23 bytes),
/// the offset list's length and the writer's cursor, so that publishing a record of the key
/// touches that line and the slot it writes. Lookups of short keys do not read entries at all:
/// the table's slots hold the keys.
#[repr(C, align(64))]
struct KeyEntry {
    /// The key's bytes, in a [`Value`]: inline up to 23 bytes, boxed beyond.
    bytes: Value,
    kind: KeyKind,
    offsets: OffsetList,
}

impl KeyEntry {
    fn key(&self) -> Key<'_> {
        Key {
            kind: self.kind,
            bytes: self.bytes.as_slice(),
        }
    }

    #[inline]
    fn is(&self, key: Key<'_>) -> bool {
        self.kind == key.kind && bytes_eq(self.bytes.as_slice(), key.bytes)
    }
}

/// A key as a [`KeyTable`] slot holds it, so that a probe compares keys without reading the
/// entries. A key of up to 16 bytes (the common case) is its length and kind (`meta`) and two
/// words that, for that length, determine its bytes (overlapping reads, as in [`inline_words`];
/// up to 8 bytes, all in `x`):
/// equal probes mean equal keys. A longer key is its length, kind and `LONG` flag, and its ahash
/// in `x`: equal probes then still need a byte comparison with the entry.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Probe {
    meta: u64,
    x: u64,
    y: u64,
}

/// The flag in [`Probe::meta`] of a key longer than 16 bytes.
const LONG: u64 = 1 << 40;

/// Hashes keys for a [`KeyTable`]: a keyed (random per table) hash, so that clients cannot choose
/// keys that collide. A short key's probe words are mixed with the secret keys by one (up to 8
/// bytes) or two 64×64→128-bit multiplies, each folded to 64 bits; a long key goes through ahash.
#[repr(C)]
struct KeyHasher {
    keys: [u64; 4],
    long: ahash::RandomState,
}

/// The 128-bit product of `a` and `b`, folded to 64 bits by xor of its halves.
#[inline(always)]
fn folded_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl KeyHasher {
    fn new() -> Self {
        #[cfg(not(loom))]
        let long = ahash::RandomState::new();
        // Loom replays executions, which must not depend on a random seed.
        #[cfg(loom)]
        let long = ahash::RandomState::with_seeds(1, 2, 3, 4);
        // The short-key keys come from the same random state: four distinct inputs, hashed.
        let keys = std::array::from_fn(|i| long.hash_one(i as u64));
        KeyHasher { keys, long }
    }

    /// The probe of `key` and its hash (where its probe sequence starts).
    #[inline]
    fn probe(&self, key: Key<'_>) -> (Probe, u64) {
        let b = key.bytes;
        let n = b.len();
        let meta = n as u64 | u64::from(key.kind == KeyKind::Json) << 32;
        let (x, y) = match n {
            0 => (0, 0),
            1..=3 => (
                u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
                0,
            ),
            4..=8 => (load4(b, 0) | load4(b, n - 4) << 32, 0),
            9..=16 => (load8(b, 0), load8(b, n - 8)),
            _ => {
                let hash = self.long.hash_one(b);
                let probe = Probe {
                    meta: meta | LONG,
                    x: hash,
                    y: 0,
                };
                return (probe, hash);
            }
        };
        let probe = Probe { meta, x, y };
        (probe, self.hash(&probe))
    }

    /// The hash of a probe, for a resize to re-place the key without reading its entry.
    #[inline]
    fn hash(&self, p: &Probe) -> u64 {
        if p.meta & LONG != 0 {
            return p.x;
        }
        let [k0, k1, k2, k3] = self.keys;
        if p.meta as u32 <= 8 {
            // Up to 8 bytes, the key is all in `x`: one multiply.
            folded_mul(p.x ^ k0, p.meta ^ k1)
        } else {
            folded_mul(folded_mul(p.x ^ k0, p.y ^ k1) ^ k2, p.meta ^ k3)
        }
    }
}

/// The insert-only hash table from key to [`KeyEntry`]: lock-free lookups, inserts serialized by a
/// mutex (a new key is rare next to appends of known keys).
///
/// A table is an open-addressing array of slots with linear probing, at most half full. A slot
/// holds an entry pointer and the key's [`Probe`], so that a lookup of a short key reads the
/// table's slots and nothing else; its first slot is a header holding the mask, so that `current`
/// is one pointer to one allocation. Readers load the current table (Acquire) and probe it. The
/// inserter, under the mutex, either fills a null slot (Release) of the current table, or, when the
/// table would pass half full, builds a table twice as large holding every entry plus the new one
/// and publishes it (Release). Old tables are kept, unchanged, until the partition drops, so a
/// reader that loaded one may finish probing it; it just may miss a key inserted after the swap,
/// which is fine: see "Orderings" for why nobody who needs that key can miss it. Entries are freed
/// only when the table drops.
///
/// `repr(C)`: `current` and the hasher's keys, which every append reads, come first, so that they
/// share a cache line.
#[repr(C)]
struct KeyTable {
    /// The first slot (the header) of the current table.
    current: AtomicPtr<Slot>,
    hasher: KeyHasher,
    /// Serializes inserts; holds every table ever published (the last one is `current`) so that
    /// they are freed on drop, and the entry count.
    writer: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    /// `KeyTable::current` points into the last one; a `Table`'s slots do not move with it.
    all: Vec<Table>,
    entries: usize,
}

/// One table: `1 + capacity` slots, the first a header whose `x` is the mask (`capacity - 1`).
struct Table(Box<[Slot]>);

/// A table slot. `meta`, `x` and `y` (the key's [`Probe`]) are written (Relaxed) before `entry` is
/// stored (Release), and never change after.
struct Slot {
    entry: AtomicPtr<KeyEntry>,
    meta: AtomicU64,
    x: AtomicU64,
    y: AtomicU64,
}

impl Slot {
    fn empty() -> Self {
        Slot {
            entry: AtomicPtr::new(std::ptr::null_mut()),
            meta: AtomicU64::new(0),
            x: AtomicU64::new(0),
            y: AtomicU64::new(0),
        }
    }

    /// The slot's probe. Call only after an Acquire load of `entry` found it non-null, or as the
    /// inserter: the Relaxed loads then see the values written before `entry` was stored.
    #[inline]
    fn probe(&self) -> Probe {
        Probe {
            // Relaxed (all three): see above.
            meta: self.meta.load(Ordering::Relaxed),
            x: self.x.load(Ordering::Relaxed),
            y: self.y.load(Ordering::Relaxed),
        }
    }
}

impl Table {
    fn new(capacity: usize) -> Table {
        debug_assert!(capacity.is_power_of_two());
        let slots: Box<[Slot]> = (0..=capacity).map(|_| Slot::empty()).collect();
        // Relaxed: published with the table (the `KeyTable` under construction, or the Release
        // store of `current`).
        slots[0].x.store(capacity as u64 - 1, Ordering::Relaxed);
        Table(slots)
    }

    fn header(&self) -> *mut Slot {
        self.0.as_ptr() as *mut Slot
    }

    /// The slots of the table whose header is `header`.
    ///
    /// # Safety
    ///
    /// `header` must come from [`Table::header`] of a table that outlives `'a`, and the table's
    /// construction must happen-before this call.
    #[inline]
    unsafe fn slots<'a>(header: *const Slot) -> &'a [Slot] {
        // SAFETY:
        // 1. `header` points to the first of `mask + 2` live slots of one allocation (the
        //    caller's contract), and the mask was written before the table was shared.
        unsafe {
            // Relaxed: see the contract: the write happens-before.
            let mask = (*header).x.load(Ordering::Relaxed) as usize;
            std::slice::from_raw_parts(header, mask + 2)
        }
    }
}

/// The entry for `key` (of probe `probe` and hash `hash`) in the table `slots`, if it is there.
#[inline(always)]
fn find(slots: &[Slot], hash: u64, probe: &Probe, key: Key<'_>) -> Option<NonNull<KeyEntry>> {
    let mask = slots.len() - 2;
    let mut i = hash as usize & mask;
    loop {
        let slot = &slots[1 + i];
        // Acquire: pairs with the Release store in `place`, so the entry and the slot's probe are
        // visible.
        let entry = NonNull::new(slot.entry.load(Ordering::Acquire))?;
        if slot.probe() == *probe
            && (probe.meta & LONG == 0
                // SAFETY:
                // 1. Non-null slots point to entries allocated by `KeyTable::insert`, freed only
                //    when the `KeyTable` drops, which the borrow of its table excludes.
                || unsafe { entry.as_ref() }.is(key))
        {
            return Some(entry);
        }
        // The table is at most half full, so a null slot ends every probe.
        i = (i + 1) & mask;
    }
}

/// Puts `entry` (of probe `probe` and hash `hash`) in the first free slot of its probe sequence.
/// Only the inserter, holding the mutex, calls it.
fn place(slots: &[Slot], hash: u64, probe: &Probe, entry: *mut KeyEntry) {
    let mask = slots.len() - 2;
    let mut i = hash as usize & mask;
    // Relaxed: only the inserter writes slots, and reads its own writes.
    while !slots[1 + i].entry.load(Ordering::Relaxed).is_null() {
        i = (i + 1) & mask;
    }
    let slot = &slots[1 + i];
    // Relaxed (all three): published by the Release store of `entry` just below.
    slot.meta.store(probe.meta, Ordering::Relaxed);
    slot.x.store(probe.x, Ordering::Relaxed);
    slot.y.store(probe.y, Ordering::Relaxed);
    // Release: pairs with the Acquire load in `find`.
    slot.entry.store(entry, Ordering::Release);
}

#[cfg(not(loom))]
const FIRST_TABLE: usize = 16;
#[cfg(loom)]
const FIRST_TABLE: usize = 2;

impl KeyTable {
    fn new() -> Self {
        let first = Table::new(FIRST_TABLE);
        KeyTable {
            current: AtomicPtr::new(first.header()),
            writer: Mutex::new(Tables {
                all: vec![first],
                entries: 0,
            }),
            hasher: KeyHasher::new(),
        }
    }

    /// The entry for `key`, if it exists.
    #[inline]
    fn get(&self, key: Key<'_>) -> Option<NonNull<KeyEntry>> {
        let (probe, hash) = self.hasher.probe(key);
        // Acquire: pairs with the Release store of a new table in `insert`.
        let header = self.current.load(Ordering::Acquire);
        // SAFETY:
        // 1. Tables are freed only when the `KeyTable` drops, which `&self` excludes.
        // 2. The table was built before it was published (Release, acquired above), or before
        //    the `KeyTable` was shared.
        find(unsafe { Table::slots(header) }, hash, &probe, key)
    }

    /// The entry for `key`, inserted if absent.
    #[inline]
    fn get_or_insert(&self, key: Key<'_>) -> NonNull<KeyEntry> {
        match self.get(key) {
            Some(entry) => entry,
            None => self.insert(key),
        }
    }

    #[cold]
    #[inline(never)]
    fn insert(&self, key: Key<'_>) -> NonNull<KeyEntry> {
        let (probe, hash) = self.hasher.probe(key);
        let mut tables = lock(&self.writer);
        if let Some(entry) = find(Self::last(&tables), hash, &probe, key) {
            return entry;
        }
        tables.entries += 1;
        let entries = tables.entries;
        let slots = Self::last(&tables);
        let capacity = slots.len() - 1;
        let entry = Box::into_raw(Box::new(KeyEntry {
            bytes: Value::new(key.bytes),
            kind: key.kind,
            offsets: OffsetList::new(),
        }));
        if entries * 2 > capacity {
            let bigger = Table::new(capacity * 2);
            for slot in &slots[1..] {
                // Relaxed: we are the only writer of slots, under the mutex.
                let p = slot.entry.load(Ordering::Relaxed);
                if !p.is_null() {
                    let old = slot.probe();
                    place(&bigger.0, self.hasher.hash(&old), &old, p);
                }
            }
            place(&bigger.0, hash, &probe, entry);
            // Release: pairs with the Acquire load in `get`; the new table and every entry in it
            // are visible to whoever loads it.
            self.current.store(bigger.header(), Ordering::Release);
            tables.all.push(bigger);
        } else {
            place(slots, hash, &probe, entry);
        }
        // SAFETY: 1. `Box::into_raw` never returns null.
        unsafe { NonNull::new_unchecked(entry) }
    }

    fn last(tables: &Tables) -> &[Slot] {
        &tables.all.last().expect("a key table has a first table").0
    }
}

impl Drop for KeyTable {
    fn drop(&mut self) {
        let tables = self.writer.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = tables.all.last() {
            for slot in &last.0[1..] {
                // Relaxed: `&mut self`, so every insert happens-before.
                let p = slot.entry.load(Ordering::Relaxed);
                if !p.is_null() {
                    // SAFETY:
                    // 1. Every entry ever inserted is in the last table (a resize copies all).
                    // 2. Each appears once there, came from `Box::into_raw`, and nothing uses it
                    //    after the partition (whose log drops before this table) is gone.
                    drop(unsafe { Box::from_raw(p) });
                }
            }
        }
    }
}

// SAFETY:
// 1. Entries are immutable after construction except their offset lists, which follow the
//    single-writer protocol in "Orderings"; tables are only mutated through atomics, under the
//    mutex. So sharing and sending the table across threads is sound.
unsafe impl Send for KeyTable {}
// SAFETY: as for `Send`.
unsafe impl Sync for KeyTable {}

#[cfg(not(loom))]
const LIST_SHIFT: u32 = 2;
#[cfg(not(loom))]
const LIST_BUCKETS: usize = 30;
#[cfg(loom)]
const LIST_SHIFT: u32 = 0;
#[cfg(loom)]
const LIST_BUCKETS: usize = 8;

/// One element of an offset list.
struct OffsetSlot(UnsafeCell<u64>);

// SAFETY:
// 1. Outside loom the slot is a `core::cell::UnsafeCell<u64>` wrapper: all zeroes is a valid `0`,
//    which is also what `fresh` returns. It is not zero-sized.
unsafe impl Zeroable for OffsetSlot {
    fn fresh() -> Self {
        OffsetSlot(UnsafeCell::new(0))
    }
}

/// An append-only list of offsets: one writer at a time, many lock-free readers.
struct OffsetList {
    len: AtomicU64,
    /// The writer's cursor: the slot for the next push and the end of its bucket (both null
    /// before the first push). Only the writer touches it, so a push of a known key reads and
    /// writes this cache line and the slot, and reaches the bucket table once per bucket.
    tail: UnsafeCell<Tail>,
    slots: Buckets<OffsetSlot, LIST_SHIFT, LIST_BUCKETS>,
}

#[derive(Clone, Copy)]
struct Tail {
    next: *const OffsetSlot,
    end: *const OffsetSlot,
}

// SAFETY:
// 1. Slots are written only by the single writer at index `len` before `len` is released, and read
//    only below an acquired `len`; see "Orderings".
// 2. `tail` is read and written only by the single writer; its pointers point into `slots`.
unsafe impl Sync for OffsetList {}
// SAFETY: the list owns plain integers.
unsafe impl Send for OffsetList {}

impl OffsetList {
    fn new() -> Self {
        OffsetList {
            len: AtomicU64::new(0),
            tail: UnsafeCell::new(Tail {
                next: std::ptr::null(),
                end: std::ptr::null(),
            }),
            slots: Buckets::new(),
        }
    }

    /// Appends `offset`.
    ///
    /// # Safety
    ///
    /// Calls must not overlap: each push must happen-before the next.
    unsafe fn push(&self, offset: u64) {
        // Relaxed: the single writer reads its own last store, or one that happens-before.
        let len = self.len.load(Ordering::Relaxed);
        // SAFETY:
        // 1. Only the writer touches `tail`, and pushes do not overlap (the caller's contract),
        //    each happening-before the next.
        let mut tail = self.tail.with(|t| unsafe { *t });
        if tail.next == tail.end {
            // The first push, or the bucket is full: find slot `len` and its bucket's end.
            let (bucket, index) = Buckets::<OffsetSlot, LIST_SHIFT, LIST_BUCKETS>::locate(len);
            let first: *const OffsetSlot = self.slots.get_or_alloc(len);
            let left = Buckets::<OffsetSlot, LIST_SHIFT, LIST_BUCKETS>::bucket_len(bucket) - index;
            tail = Tail {
                next: first,
                // SAFETY:
                // 1. Slot `len` is at `index` of a bucket of `bucket_len(bucket)` slots, so `first
                //    + left` is one past the bucket's end, in (or just past) the same allocation.
                end: unsafe { first.add(left) },
            };
        }
        // SAFETY:
        // 1. `tail.next` is slot `len`: set so when its bucket was reached, and advanced by one
        //    per push since, never past its bucket's end; buckets never move.
        // 2. Slot `len` is not yet visible to readers (they read below `len`), and pushes do not
        //    overlap, so this write is exclusive.
        unsafe { (*tail.next).0.with_mut(|p| *p = offset) };
        // The list's next cache line, for a later push (see `prefetch_write` in `Log::append`).
        prefetch_write(tail.next.wrapping_add(8));
        tail.next = tail.next.wrapping_add(1);
        // SAFETY: as for the read of `tail` above.
        self.tail.with_mut(|t| unsafe { *t = tail });
        // Release: pairs with the Acquire load in `count`.
        self.len.store(len + 1, Ordering::Release);
    }

    /// How many offsets are readable.
    #[inline]
    fn count(&self) -> u64 {
        // Acquire: pairs with the Release store in `push`.
        self.len.load(Ordering::Acquire)
    }

    /// Element `i`.
    ///
    /// # Safety
    ///
    /// `i` must be below a value `count()` returned.
    #[inline]
    unsafe fn get(&self, i: u64) -> u64 {
        let slot = self.slots.get(i).expect("a counted element has a bucket");
        // SAFETY:
        // 1. `i < count()`, so the write of element `i` happens-before (Release/Acquire on `len`)
        //    and no write to it follows.
        slot.0.with(|p| unsafe { *p })
    }

    /// The first index in `0..count` whose offset is ≥ `from`.
    ///
    /// # Safety
    ///
    /// `count` must be a value `self.count()` returned.
    unsafe fn search(&self, count: u64, from: u64) -> u64 {
        let (mut lo, mut hi) = (0, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            // SAFETY: 1. `mid < hi <= count`.
            if unsafe { self.get(mid) } < from {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// One partition of a topic.
pub struct Partition {
    /// Declared first so that it drops first: records point into `keys`.
    log: Log<Record>,
    keys: KeyTable,
}

impl Partition {
    /// An empty partition.
    pub fn new() -> Self {
        Partition {
            log: Log::new(),
            keys: KeyTable::new(),
        }
    }

    /// Appends a record; returns its offset once it is published (readable).
    pub fn append(&self, key: Option<Key<'_>>, value: &[u8]) -> u64 {
        let key = key.map(|k| self.keys.get_or_insert(k));
        self.log.append(Record {
            key,
            value: Value::new(value),
        })
    }

    /// The log end offset (high watermark).
    pub fn end(&self) -> u64 {
        self.log.end()
    }

    /// The record at `offset`, if it is published.
    pub fn get(&self, offset: u64) -> Option<RecordRef<'_>> {
        self.log.get(offset).map(|r| r.view(offset))
    }

    /// Calls `f` for up to `max` published records at offsets `from..`, in offset order; returns the count.
    pub fn read(&self, from: u64, max: usize, mut f: impl FnMut(RecordRef<'_>)) -> usize {
        self.log.read(from, max, |offset, r| f(r.view(offset)))
    }

    /// Calls `f` for up to `max` published records of `key` at offsets `from..`, in offset order, in
    /// O(log n + max); returns the count.
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
        // SAFETY: 1. `count` came from `count()`.
        let mut i = unsafe { entry.offsets.search(count, from) };
        let mut n = 0;
        while n < max && i < count {
            // SAFETY: 1. `i < count`.
            let offset = unsafe { entry.offsets.get(i) };
            if offset >= end {
                break;
            }
            // SAFETY: 1. `offset < end`, a value `Log::end` returned.
            let record = unsafe { self.log.get_unchecked(offset) };
            f(record.view(offset));
            n += 1;
            i += 1;
        }
        n
    }

    /// How many published records `key` has in this partition.
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
}

impl Default for Partition {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("end", &self.end())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
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
    fn bytes_eq_agrees_with_slice_equality() {
        let base: Vec<u8> = (0..40u8).collect();
        for n in 0..=40 {
            assert!(bytes_eq(&base[..n], &base[..n]));
            for i in 0..n {
                let mut other = base[..n].to_vec();
                other[i] ^= 0x80;
                assert!(!bytes_eq(&base[..n], &other), "length {n}, byte {i}");
            }
            if n > 0 {
                assert!(!bytes_eq(&base[..n], &base[..n - 1]));
            }
        }
    }

    #[test]
    fn values_of_every_length_round_trip() {
        let src: Vec<u8> = (1..=40u8).collect();
        for n in 0..=40 {
            let v = Value::new(&src[..n]);
            assert_eq!(v.as_slice(), &src[..n], "length {n}");
            assert_eq!(v.tag() == HEAP, n > INLINE, "length {n}");
        }
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
            assert_eq!(p.get(i as u64).unwrap().key, Some(key));
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
        assert_eq!(p.get(4).unwrap().value, &long[..]);
        assert!(p.get(5).is_none());
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
}
