//! Index files: fixed-size entries appended by the writer and searched by readers with `pread`,
//! and the offset index's entry (Kafka's `OffsetIndex`).
//!
//! # Offset index format
//!
//! `<base>.index` is a sequence of 8-byte entries, big-endian (Kafka's `OffsetIndex.java`):
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | relative offset: the last offset of a batch minus the segment's base offset (i32) |
//! | 4..8 | position: the byte position of that batch in the `.log` file (i32) |
//!
//! An entry is added for a batch when more than `index.interval.bytes` (4096) were appended
//! since the batch of the previous entry (Kafka's `LogSegment.append` and `recover`), so the
//! first batch of a segment never has one. Keys and positions strictly increase. A lookup of
//! offset `o` finds the last entry whose offset is ≤ `o` and scans batches from its position; no
//! entry means position 0. Unlike Kafka, the file is not preallocated (no `segment.index.bytes`
//! of zeros to trim): its length is always a whole number of entries, except after a torn write.
//!
//! # Search
//!
//! The file is not held in memory: entries are read with `pread` from the page cache, so resident
//! memory does not grow with the log. A lookup first reads the last 8 KiB of entries in one call
//! (Kafka's "warm section", `AbstractIndex.warmEntries`, where tailing readers' lookups land),
//! and otherwise binary-searches the rest with one `pread` per probe until 8 KiB remain, which it
//! reads at once.
//!
//! # Orderings
//!
//! The writer writes entries past `count` with `pwrite`, then stores `count` with Release; a
//! reader loads `count` with Acquire and reads only entries below it. The segment publishes its
//! size *before* the index count (see `Segment::publish`), and readers load the count *before*
//! the size (`Segment::locate`), so every entry a reader sees points below the size it sees.

use crate::loom::{AtomicU64, Ordering};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The bytes of the "warm section" read in one call (Kafka's 8192).
const WARM_BYTES: usize = 8192;

/// A fixed-size index entry.
pub(crate) trait Entry: Copy + std::fmt::Debug + PartialEq {
    /// Its size in the file, in bytes.
    const SIZE: usize;
    /// What the index is searched by.
    type Key: Ord + Copy;
    fn key(&self) -> Self::Key;
    /// Decodes `b` (`SIZE` bytes) of a segment whose base offset is `base`.
    fn decode(b: &[u8], base: u64) -> Self;
    /// Encodes into `out` (`SIZE` bytes).
    fn encode(&self, base: u64, out: &mut [u8]);
}

/// An offset index entry: the last offset of a batch and the batch's position in the `.log` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) offset: u64,
    pub(crate) position: u64,
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;
    type Key = u64;

    fn key(&self) -> u64 {
        self.offset
    }

    fn decode(b: &[u8], base: u64) -> Self {
        let rel = u32::from_be_bytes(b[0..4].try_into().expect("4 bytes"));
        let position = u32::from_be_bytes(b[4..8].try_into().expect("4 bytes"));
        OffsetEntry {
            offset: base + u64::from(rel),
            position: u64::from(position),
        }
    }

    fn encode(&self, base: u64, out: &mut [u8]) {
        out[0..4].copy_from_slice(&((self.offset - base) as u32).to_be_bytes());
        out[4..8].copy_from_slice(&(self.position as u32).to_be_bytes());
    }
}

impl OffsetEntry {
    /// Whether the entry can belong to a segment `base..end` whose log holds `size` bytes: a
    /// relative offset and position that fit an i32, within the segment.
    pub(crate) fn fits(&self, base: u64, end: u64, size: u64) -> bool {
        self.offset >= base
            && self.offset < end
            && self.offset - base <= i32::MAX as u64
            && self.position < size
            && self.position <= i32::MAX as u64
    }
}

/// One segment's index file of entries `E`.
#[derive(Debug)]
pub(crate) struct IndexFile<E> {
    file: File,
    path: PathBuf,
    base: u64,
    /// How many entries readers may read (see "Orderings").
    count: AtomicU64,
    _entry: PhantomData<E>,
}

impl<E: Entry> IndexFile<E> {
    /// Opens (or creates) `path` with no entry published; the caller checks the file and calls
    /// [`IndexFile::publish`] or [`IndexFile::truncate`].
    pub(crate) fn open(path: &Path, base: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(Self::from_file(file, path, base))
    }

    /// Creates `path` empty (truncating what was there).
    pub(crate) fn create(path: &Path, base: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Self::from_file(file, path, base))
    }

    /// Writes `entries` to `path` through a temporary file (write, fsync, rename), so a crash
    /// leaves the old file or the new one, and opens it with every entry published. The caller
    /// fsyncs the directory.
    pub(crate) fn rewrite(path: &Path, base: u64, entries: &[E]) -> io::Result<Self> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(super::layout::TMP);
        let tmp = PathBuf::from(tmp);
        let mut bytes = vec![0; entries.len() * E::SIZE];
        for (e, out) in entries.iter().zip(bytes.chunks_exact_mut(E::SIZE)) {
            e.encode(base, out);
        }
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        let index = Self::open(path, base)?;
        index.publish(entries.len() as u64);
        Ok(index)
    }

    fn from_file(file: File, path: &Path, base: u64) -> Self {
        IndexFile {
            file,
            path: path.to_owned(),
            base,
            count: AtomicU64::new(0),
            _entry: PhantomData,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length in bytes.
    pub(crate) fn file_len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// The published entry count.
    pub(crate) fn count(&self) -> u64 {
        // Acquire: pairs with the Release store in `publish` (see "Orderings").
        self.count.load(Ordering::Acquire)
    }

    /// Lets readers see the first `count` entries, which are written.
    pub(crate) fn publish(&self, count: u64) {
        // Release: pairs with the Acquire load in `count` (see "Orderings").
        self.count.store(count, Ordering::Release);
    }

    /// Entries `from..from + n` as the file holds them.
    pub(crate) fn read(&self, from: u64, n: u64) -> io::Result<Vec<E>> {
        let mut bytes = vec![0; n as usize * E::SIZE];
        self.file.read_exact_at(&mut bytes, from * E::SIZE as u64)?;
        Ok(bytes
            .chunks_exact(E::SIZE)
            .map(|b| E::decode(b, self.base))
            .collect())
    }

    /// Entry `i` as the file holds it.
    pub(crate) fn get(&self, i: u64) -> io::Result<E> {
        let mut bytes = [0; 16];
        let b = &mut bytes[..E::SIZE];
        self.file.read_exact_at(b, i * E::SIZE as u64)?;
        Ok(E::decode(b, self.base))
    }

    /// Writes `entries` at slots `slot..`; they are not published.
    pub(crate) fn write(&self, slot: u64, entries: &[E]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut bytes = vec![0; entries.len() * E::SIZE];
        for (e, out) in entries.iter().zip(bytes.chunks_exact_mut(E::SIZE)) {
            e.encode(self.base, out);
        }
        self.file.write_all_at(&bytes, slot * E::SIZE as u64)
    }

    /// Cuts the file to `n` entries and publishes `n`. Only while no reader can see the index
    /// (recovery) or to drop entries nobody was shown (a failed append).
    pub(crate) fn truncate(&self, n: u64) -> io::Result<()> {
        self.file.set_len(n * E::SIZE as u64)?;
        self.publish(n);
        Ok(())
    }

    /// Makes the file hold its first `keep` entries followed by `entries`, and publishes them all.
    /// Writes nothing if the file holds exactly that already (the usual case when opening an
    /// intact log), so a clean open does not dirty pages. Returns whether it wrote.
    pub(crate) fn replace_from(&self, keep: u64, entries: &[E]) -> io::Result<bool> {
        let total = keep + entries.len() as u64;
        if self.file_len()? == total * E::SIZE as u64
            && self.read(keep, entries.len() as u64)? == entries
        {
            self.publish(total);
            return Ok(false);
        }
        self.truncate(keep)?;
        self.write(keep, entries)?;
        self.publish(total);
        Ok(true)
    }

    /// fsync.
    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// The last of the first `count` entries whose key is ≤ `key` (see "Search"); `None` if
    /// there is none. If the file's keys are not sorted (corruption), the answer is some entry;
    /// callers check what they find at its position.
    pub(crate) fn lookup(&self, key: E::Key, count: u64) -> io::Result<Option<E>> {
        if count == 0 {
            return Ok(None);
        }
        let warm = (WARM_BYTES / E::SIZE) as u64;
        let block = warm.min(count);
        let tail = self.read(count - block, block)?;
        if tail[0].key() <= key {
            let n = tail.partition_point(|e| e.key() <= key);
            return Ok(Some(tail[n - 1]));
        }
        // The answer is below the warm section.
        let (mut lo, mut hi) = (0, count - block);
        let mut best = None;
        while hi - lo > warm {
            let mid = lo + (hi - lo) / 2;
            let e = self.get(mid)?;
            if e.key() <= key {
                best = Some(e);
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if hi > lo {
            let entries = self.read(lo, hi - lo)?;
            let n = entries.partition_point(|e| e.key() <= key);
            if n > 0 {
                best = Some(entries[n - 1]);
            }
        }
        Ok(best)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_last_entry_at_or_below_in_warm_and_cold_parts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let index = IndexFile::<OffsetEntry>::create(&path, 100).unwrap();
        // 5000 entries, offsets 100 + 10 i, positions 7 i: more than the warm section (1024).
        let entries: Vec<OffsetEntry> = (0..5000)
            .map(|i| OffsetEntry {
                offset: 100 + 10 * i,
                position: 7 * i,
            })
            .collect();
        index.write(0, &entries).unwrap();
        index.publish(5000);
        assert_eq!(index.lookup(99, 5000).unwrap(), None);
        for target in [
            100,
            101,
            109,
            110,
            12_345,
            39_000,
            40_000,
            49_990,
            50_089,
            1 << 40,
        ] {
            let want = entries.iter().rev().find(|e| e.offset <= target).copied();
            assert_eq!(index.lookup(target, 5000).unwrap(), want, "{target}");
        }
        // Only the published prefix is searched.
        assert_eq!(index.lookup(1 << 40, 3).unwrap(), Some(entries[2]));
        assert_eq!(index.file_len().unwrap(), 5000 * 8);
    }
}
