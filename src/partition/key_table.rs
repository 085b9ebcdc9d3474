//! The partition's key index: one [`KeyEntry`] per distinct key, found through an insert-only,
//! lock-free hash table ([`KeyTable`]). See the partition's module docs for its Orderings.

use super::offset_list::OffsetList;
use super::value::{bytes_eq, load4, load8, Value};
use super::{Key, KeyKind};
use crate::loom::{lock, AtomicPtr, AtomicU64, Mutex, Ordering};
use std::ptr::NonNull;

/// One distinct key of a partition. Its first cache line holds the key (inline up to 23 bytes),
/// the offset list's length and the writer's cursor, so that publishing a record of the key
/// touches that line and the slot it writes. Lookups of short keys do not read entries at all:
/// the table's slots hold the keys.
#[repr(C, align(64))]
pub(super) struct KeyEntry {
    /// The key's bytes, in a [`Value`]: inline up to 23 bytes, boxed beyond.
    bytes: Value,
    kind: KeyKind,
    pub(super) offsets: OffsetList,
}

impl KeyEntry {
    pub(super) fn key(&self) -> Key<'_> {
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
        let kind = match key.kind {
            KeyKind::Str => 0u64,
            KeyKind::Json => 1,
            KeyKind::Bytes => 2,
        };
        let meta = n as u64 | kind << 32;
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
pub(super) struct KeyTable {
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
    pub(super) fn new() -> Self {
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
    pub(super) fn get(&self, key: Key<'_>) -> Option<NonNull<KeyEntry>> {
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
    pub(super) fn get_or_insert(&self, key: Key<'_>) -> NonNull<KeyEntry> {
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
