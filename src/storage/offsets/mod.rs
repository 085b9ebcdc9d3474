//! The offsets journal: group committed offsets and group metadata, durable across restarts.
//!
//! Kafka keeps them in the compacted internal topic `__consumer_offsets`, and rebuilds the
//! groups from it when a broker becomes coordinator (`GroupMetadataManager`). kgroups has one
//! broker and no replication, so it keeps them in a journal plus snapshot, which issue 13 allows:
//! the same records, the same "latest value per key" rule, compaction by rewriting the live
//! records.
//!
//! # Layout
//!
//! `DIR/__consumer_offsets/` holds one *generation* `N` (20 zero-padded digits, as segment
//! names), sometimes with the files of `N - 1` beside it after a crash:
//!
//! | file | what |
//! |---|---|
//! | `<N>.snapshot` | every live record when generation `N` began, then an end frame with their count; absent for `N` = 0 (empty) |
//! | `<N>.journal` | every record appended since, in order; absent means empty |
//! | `<N>.snapshot.tmp` | a snapshot being written; removed on open |
//!
//! Both are sequences of frames (length, CRC-32C, payload), see `record.rs` for the bytes. The
//! state is the snapshot's records, then the journal's, applied in order: a commit or metadata
//! replaces the value of its key ((group, topic, partition) or group), an offset delete removes
//! its key, a group delete removes the group's metadata and every offset (Kafka's tombstones).
//!
//! # Durability
//!
//! [`OffsetsJournal::append`] writes one frame with one `pwrite`: to the page cache, so it
//! survives a crash of the process (Kafka's default). [`OffsetsJournal::flush`] fsyncs it; the
//! broker calls it per its flush policy (with `--flush-messages 1`, before it answers the
//! OffsetCommit; one fsync covers every append before it, so concurrent commits share it).
//!
//! # Recovery
//!
//! [`OffsetsJournal::open`] loads the newest snapshot, removes older files and temporary ones,
//! and replays the journal. The first frame that is cut short, has a length out of range or a
//! CRC that does not match ends the journal: the file is truncated there with a log line (a torn
//! write), and nothing after it is trusted. A frame whose CRC matches but whose payload does not
//! decode, a damaged snapshot, or a journal newer than the newest snapshot cannot come from a
//! crash: `open` fails with [`StorageError::Corrupt`] naming the file rather than drop or
//! misread committed offsets, and the broker should refuse to start.
//!
//! # Compaction
//!
//! Once the journal holds at least `compact_min_bytes` and `compact_ratio` times the live size
//! (what a snapshot would hold), the append that crossed the line rewrites the live state as
//! generation `N + 1`, under the journal's lock:
//!
//! 1. write `<N+1>.snapshot.tmp`, fsync it;
//! 2. rename it to `<N+1>.snapshot`, fsync the directory;
//! 3. create an empty `<N+1>.journal`, fsync it and the directory; appends go there from now;
//! 4. remove `<N>.snapshot` and `<N>.journal`, fsync the directory.
//!
//! A crash before step 2 leaves generation `N` whole (the `.tmp` is removed on open); from step 2
//! on, `<N+1>.snapshot` holds everything `N` held, so open takes it and removes `N`'s files. No
//! record is lost, and none is applied twice in a way that matters: replaying a record over a
//! state that already has it sets the same value. If step 2 or 3 fails, the new files are removed
//! again and appends go on into `<N>.journal`; if even that fails, the journal refuses every
//! later call (see "Errors"). Compaction also makes every earlier append durable.
//!
//! # Errors
//!
//! A failed `pwrite` is undone by truncating the journal to its length before the append, so a
//! failed append leaves neither a partial frame nor a changed state. If that truncation fails, or
//! an fsync fails (after which the page cache may have dropped the unsynced pages: PostgreSQL's
//! "fsyncgate"), the journal is *failed*: every later call returns an error, and the broker
//! should stop, as Kafka takes a log directory offline on an I/O error and a broker with no
//! directory left stops.
//!
//! # Concurrency
//!
//! Every call takes `&self`; appends and compaction serialize on an internal mutex (commits are
//! far rarer than records). `flush` holds the mutex only to read the current file and position,
//! and fsyncs outside it, so appends go on during an fsync. One process opens the directory at a
//! time.

mod record;
mod state;

pub use record::{CommittedOffset, GroupMetadata, GroupType, OffsetRecord};
pub use state::{GroupState, OffsetsState};

use super::checkpoint::sync_dir;
use super::error::{Result, StorageError};
use crate::loom::{lock, AtomicU64, Mutex, Ordering};
use record::{Payload, FRAME_HEADER};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The journal's directory name in the data directory (Kafka's internal topic name; Kafka's own
/// partition directories are `__consumer_offsets-<p>`, so the two never collide).
pub const OFFSETS_DIR: &str = "__consumer_offsets";

const SNAPSHOT: &str = "snapshot";
const JOURNAL: &str = "journal";
/// The size of the snapshot frames (the last record may take a frame past it).
const SNAPSHOT_FRAME: usize = 64 << 10;

/// When the journal compacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetsConfig {
    /// Compact once the journal is at least this many times the live size. Default 4; at least 1.
    pub compact_ratio: u64,
    /// … and at least this many bytes. Default 1 MiB.
    pub compact_min_bytes: u64,
}

impl Default for OffsetsConfig {
    fn default() -> Self {
        OffsetsConfig {
            compact_ratio: 4,
            compact_min_bytes: 1 << 20,
        }
    }
}

/// What [`OffsetsJournal::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    /// The generation opened.
    pub generation: u64,
    /// The records of its snapshot.
    pub snapshot_records: u64,
    /// The records of its journal that were replayed.
    pub journal_records: u64,
    /// The bytes cut from the journal's end (a torn or damaged tail); 0 if none.
    pub truncated_bytes: u64,
    /// Files removed: older generations and temporary files left by a crash.
    pub removed: Vec<PathBuf>,
    /// Files in the directory that are none of the journal's; left alone.
    pub ignored: Vec<PathBuf>,
}

/// The offsets journal of a data directory (see the module docs).
#[derive(Debug)]
pub struct OffsetsJournal {
    dir: PathBuf,
    config: OffsetsConfig,
    inner: Mutex<Inner>,
    /// The position that the last successful flush or compaction made durable.
    flushed: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    generation: u64,
    /// `<generation>.journal`, open for writing (shared with `flush`, which fsyncs it unlocked).
    file: Arc<File>,
    /// The journal file's length.
    len: u64,
    state: OffsetsState,
    /// The live size: see `OffsetsState::live_bytes`.
    live: u64,
    /// The bytes appended since open, over every generation: a position that only grows.
    position: u64,
    /// Why the journal refuses every call, once it does.
    failed: Option<String>,
    /// After a failed compaction, the journal length to reach before the next try.
    retry_at: u64,
    /// The frame buffer, reused.
    buf: Vec<u8>,
}

impl Inner {
    fn check(&self) -> Result<()> {
        match &self.failed {
            None => Ok(()),
            Some(why) => Err(io::Error::other(format!("the offsets journal failed: {why}")).into()),
        }
    }
}

impl OffsetsJournal {
    /// Opens the journal in `dir` (normally `<data dir>/`[`OFFSETS_DIR`]), creating it if needed,
    /// and recovers it as the module docs say. Returns the journal and what was done; the state
    /// is [`OffsetsJournal::state`].
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidConfig`] for `compact_ratio` 0; [`StorageError::Corrupt`] naming
    /// the file for a damaged snapshot, a CRC-valid frame that does not decode, or a journal
    /// newer than the newest snapshot; [`StorageError::Io`] if a file cannot be read or written.
    /// A torn journal tail is not an error: it is truncated, logged and reported.
    pub fn open(dir: &Path, config: OffsetsConfig) -> Result<(Self, Replay)> {
        if config.compact_ratio == 0 {
            return Err(StorageError::InvalidConfig(
                "offsets journal compact_ratio 0".into(),
            ));
        }
        if !dir.exists() {
            fs::create_dir_all(dir)?;
            sync_dir(dir.parent().unwrap_or(Path::new(".")))?;
        }
        let mut replay = Replay::default();
        let (snapshots, journals) = list(dir, &mut replay)?;
        let generation = snapshots.iter().copied().max().unwrap_or(0);
        if let Some(&j) = journals.iter().find(|&&j| j > generation) {
            return Err(StorageError::Corrupt {
                path: dir.join(name(j, JOURNAL)),
                why: format!("a journal newer than the newest snapshot ({generation})"),
            });
        }
        replay.generation = generation;
        let mut state = OffsetsState::default();
        if snapshots.contains(&generation) {
            replay.snapshot_records =
                load_snapshot(&dir.join(name(generation, SNAPSHOT)), &mut state)?;
        }
        let old = snapshots
            .iter()
            .map(|&s| name(s, SNAPSHOT))
            .chain(journals.iter().map(|&j| name(j, JOURNAL)))
            .filter(|n| !n.starts_with(&format!("{generation:020}.")));
        let mut dir_changed = false;
        for n in old {
            let path = dir.join(n);
            tracing::info!(file = %path.display(), "removing a file of an older offsets generation");
            dir_changed |= remove(path, &mut replay);
        }
        let path = dir.join(name(generation, JOURNAL));
        let len = if journals.contains(&generation) {
            replay_journal(&path, &mut state, &mut replay)?
        } else {
            0
        };
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if !journals.contains(&generation) {
            file.sync_all()?;
            dir_changed = true;
        }
        if dir_changed {
            sync_dir(dir)?;
        }
        let live = state.live_bytes();
        let journal = OffsetsJournal {
            dir: dir.to_owned(),
            config,
            inner: Mutex::new(Inner {
                generation,
                file: Arc::new(file),
                len,
                state,
                live,
                position: 0,
                failed: None,
                retry_at: 0,
                buf: Vec::new(),
            }),
            flushed: AtomicU64::new(0),
        };
        {
            let mut inner = lock(&journal.inner);
            if journal.due(&inner) {
                journal.compact_due(&mut inner);
            }
        }
        Ok((journal, replay))
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A copy of the state: every group's metadata and committed offsets.
    pub fn state(&self) -> OffsetsState {
        lock(&self.inner).state.clone()
    }

    /// The bytes in the current journal file (what compaction compares with the live size).
    pub fn journal_bytes(&self) -> u64 {
        lock(&self.inner).len
    }

    /// The live size: the bytes of the records a snapshot of the state would hold.
    pub fn live_bytes(&self) -> u64 {
        lock(&self.inner).live
    }

    /// The current generation (the number in the file names).
    pub fn generation(&self) -> u64 {
        lock(&self.inner).generation
    }

    /// The position after the last append: bytes appended since open (it only grows).
    pub fn position(&self) -> u64 {
        lock(&self.inner).position
    }

    /// The position that the last successful [`OffsetsJournal::flush`] (or compaction) made
    /// durable: every append that returned a position up to it is on disk.
    pub fn flushed(&self) -> u64 {
        // Acquire: pairs with the Release in `flush` and compaction; a position read here was
        // stored after its fsync returned.
        self.flushed.load(Ordering::Acquire)
    }

    /// Appends `records` as one frame (kept or lost together after a crash) and applies them to
    /// the state; returns the position after them (for [`OffsetsJournal::flushed`]). Then
    /// compacts if the journal is due (module docs): such a call also writes a snapshot and
    /// fsyncs, once per `compact_ratio` times the live size appended, under the lock. An empty
    /// `records` writes nothing.
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`] (`InvalidInput`) if a string is longer than 65,535 bytes or the
    /// frame longer than 64 MiB (nothing is written); [`StorageError::Io`] if the write fails
    /// (nothing is written, the state is unchanged) or the journal has failed (module docs).
    /// A failed compaction is logged, not returned: the append itself is in the journal.
    pub fn append(&self, records: &[OffsetRecord]) -> Result<u64> {
        let mut inner = lock(&self.inner);
        self.append_locked(&mut inner, records)
    }

    /// Removes every group's committed offsets for `topic` (DeleteTopics: Kafka's
    /// `GroupMetadataManager` writes a tombstone for each offset of a deleted partition) with one
    /// frame of [`OffsetRecord::OffsetDelete`]s; returns the position after it and how many
    /// offsets went. Errors as [`OffsetsJournal::append`].
    pub fn delete_topic(&self, topic: &str) -> Result<(u64, usize)> {
        let mut inner = lock(&self.inner);
        let deletes: Vec<OffsetRecord> = inner
            .state
            .groups
            .iter()
            .flat_map(|(group, g)| {
                g.offsets.keys().filter(|(t, _)| t == topic).map(|(t, p)| {
                    OffsetRecord::OffsetDelete {
                        group: group.clone(),
                        topic: t.clone(),
                        partition: *p,
                    }
                })
            })
            .collect();
        let position = self.append_locked(&mut inner, &deletes)?;
        Ok((position, deletes.len()))
    }

    /// fsyncs the journal; returns the position now durable (at least every position returned
    /// by an append that finished before this call began). Appends go on meanwhile.
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`] if the fsync fails; the journal has then failed (module docs).
    pub fn flush(&self) -> Result<u64> {
        let (file, position) = {
            let inner = lock(&self.inner);
            inner.check()?;
            (inner.file.clone(), inner.position)
        };
        if self.flushed() >= position {
            return Ok(self.flushed());
        }
        if let Err(e) = file.sync_data() {
            lock(&self.inner).failed = Some(format!("fsync: {e}"));
            return Err(e.into());
        }
        // Release: see `flushed`.
        self.flushed.fetch_max(position, Ordering::Release);
        Ok(position)
    }

    /// Compacts now, whatever the sizes (module docs), e.g. at a clean shutdown.
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`] if a step fails (the journal goes on in the old generation, or has
    /// failed if even the undo failed).
    pub fn compact(&self) -> Result<()> {
        let mut inner = lock(&self.inner);
        inner.check()?;
        self.compact_locked(&mut inner, Step::Done)
    }

    fn append_locked(&self, inner: &mut Inner, records: &[OffsetRecord]) -> Result<u64> {
        inner.check()?;
        if records.is_empty() {
            return Ok(inner.position);
        }
        let mut buf = std::mem::take(&mut inner.buf);
        buf.clear();
        if let Err(record::TooLong(n)) = record::encode_frame(records, &mut buf) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("an offsets record field or frame of {n} bytes is too long"),
            )
            .into());
        }
        let at = inner.len;
        if let Err(e) = inner.file.write_all_at(&buf, at) {
            if let Err(undo) = inner.file.set_len(at) {
                inner.failed = Some(format!("append: {e}; truncating back: {undo}"));
            }
            return Err(e.into());
        }
        let n = buf.len() as u64;
        inner.len += n;
        inner.position += n;
        for r in records {
            let (removed, added) = inner.state.apply(r);
            inner.live = inner.live.saturating_sub(removed) + added;
        }
        if buf.capacity() <= 1 << 20 {
            inner.buf = buf;
        }
        let position = inner.position;
        if self.due(inner) {
            self.compact_due(inner);
        }
        Ok(position)
    }

    /// Whether the journal is due for compaction.
    fn due(&self, inner: &Inner) -> bool {
        inner.len >= self.config.compact_min_bytes
            && inner.len >= self.config.compact_ratio.saturating_mul(inner.live)
            && inner.len >= inner.retry_at
    }

    /// Compacts because the journal is due; a failure is logged, and the next try waits until
    /// the journal has grown by another `compact_min_bytes` (a full disk is not rewritten on
    /// every append).
    fn compact_due(&self, inner: &mut Inner) {
        if let Err(e) = self.compact_locked(inner, Step::Done) {
            inner.retry_at = inner
                .len
                .saturating_add(self.config.compact_min_bytes.max(1));
            tracing::warn!(dir = %self.dir.display(), "offsets compaction failed: {e}");
        }
    }

    /// The compaction of the module docs, stopping after `stop` (tests simulate crashes).
    fn compact_locked(&self, inner: &mut Inner, stop: Step) -> Result<()> {
        let next = inner.generation + 1;
        let snapshot = self.dir.join(name(next, SNAPSHOT));
        let tmp = self
            .dir
            .join(format!("{}{}", name(next, SNAPSHOT), super::layout::TMP));
        if let Err(e) = write_snapshot(&tmp, &inner.state) {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        if stop == Step::Written {
            return Ok(());
        }
        if let Err(e) = fs::rename(&tmp, &snapshot) {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        if let Err(e) = sync_dir(&self.dir) {
            return Err(self.undo(inner, next, e));
        }
        if stop == Step::Renamed {
            return Ok(());
        }
        let journal = match create_journal(&self.dir.join(name(next, JOURNAL)), &self.dir) {
            Ok(f) => f,
            Err(e) => return Err(self.undo(inner, next, e)),
        };
        let old = inner.generation;
        inner.generation = next;
        inner.file = Arc::new(journal);
        inner.len = 0;
        inner.retry_at = 0;
        // Release: see `flushed`; the snapshot, fsynced, holds every append so far.
        self.flushed.fetch_max(inner.position, Ordering::Release);
        if stop == Step::Switched {
            return Ok(());
        }
        let mut removed = false;
        for n in [name(old, SNAPSHOT), name(old, JOURNAL)] {
            let path = self.dir.join(n);
            match fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                // Harmless: open removes older generations.
                Err(e) => tracing::warn!(file = %path.display(), "cannot remove: {e}"),
            }
        }
        if removed {
            if let Err(e) = sync_dir(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), "cannot fsync: {e}");
            }
        }
        tracing::debug!(
            dir = %self.dir.display(),
            generation = next,
            live_bytes = inner.live,
            "offsets journal compacted"
        );
        Ok(())
    }

    /// Removes generation `next`'s files after a failed step 2 or 3, so that open does not take
    /// a generation whose journal misses the appends that go on into the current one; fails the
    /// journal if that does not work. Returns the step's error.
    fn undo(&self, inner: &mut Inner, next: u64, e: io::Error) -> StorageError {
        let mut undo = Ok(());
        for n in [name(next, JOURNAL), name(next, SNAPSHOT)] {
            match fs::remove_file(self.dir.join(n)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => undo = Err(e),
                _ => {}
            }
        }
        if let Err(undo) = undo.and_then(|()| sync_dir(&self.dir)) {
            inner.failed = Some(format!(
                "compaction: {e}; removing generation {next}: {undo}"
            ));
        }
        e.into()
    }
}

/// Where a compaction stops: `Done` in the broker; earlier in tests, to leave the files a crash
/// at that point would leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// After step 1: the `.tmp` snapshot written.
    Written,
    /// After step 2: the snapshot renamed.
    Renamed,
    /// After step 3: the new journal created and in use; the old files not yet removed.
    Switched,
    Done,
}

#[cfg(all(test, not(loom)))]
impl OffsetsJournal {
    /// Compacts and stops after `stop`, as a crash there would.
    pub(crate) fn compact_until(&self, stop: Step) -> Result<()> {
        let mut inner = lock(&self.inner);
        self.compact_locked(&mut inner, stop)
    }
}

/// `<generation, 20 digits>.<ext>`.
fn name(generation: u64, ext: &str) -> String {
    format!("{generation:020}.{ext}")
}

/// The generation and kind of a journal file name.
fn parse(name: &str) -> Option<(u64, &str)> {
    let (digits, ext) = name.split_once('.')?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, ext))
}

/// The snapshot and journal generations in `dir`; removes temporary files and notes unknown
/// ones.
fn list(dir: &Path, replay: &mut Replay) -> Result<(Vec<u64>, Vec<u64>)> {
    let (mut snapshots, mut journals) = (Vec::new(), Vec::new());
    let mut removed = false;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let tmp = file_name
            .strip_suffix(super::layout::TMP)
            .and_then(parse)
            .is_some_and(|(_, ext)| ext == SNAPSHOT);
        match parse(&file_name) {
            Some((g, SNAPSHOT)) => snapshots.push(g),
            Some((g, JOURNAL)) => journals.push(g),
            _ if tmp => {
                tracing::info!(file = %path.display(), "removing a temporary file left by a crash");
                removed |= remove(path, replay);
            }
            _ => {
                tracing::warn!(file = %path.display(), "unknown file in the offsets directory; ignored");
                replay.ignored.push(path);
            }
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok((snapshots, journals))
}

/// Removes a leftover file and notes it; a failure is logged, not returned (the file is of an
/// older generation or temporary, and the next open tries again). Returns whether it went.
fn remove(path: PathBuf, replay: &mut Replay) -> bool {
    match fs::remove_file(&path) {
        Ok(()) => {
            replay.removed.push(path);
            true
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), "cannot remove: {e}");
            false
        }
    }
}

/// Reads as many bytes as `buf` holds, fewer only at the end of the file.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The next frame of `r` at `position` in a file of `len` bytes: `Ok(None)` at the end,
/// `Ok(Some(Err(why)))` for a frame that is cut short, out of range or fails its CRC.
fn next_frame(
    r: &mut impl Read,
    position: u64,
    len: u64,
) -> io::Result<Option<std::result::Result<Vec<u8>, String>>> {
    let mut header = [0u8; FRAME_HEADER];
    match read_full(r, &mut header)? {
        0 => return Ok(None),
        FRAME_HEADER => {}
        n => return Ok(Some(Err(format!("a frame header cut after {n} bytes")))),
    }
    let n = match record::frame_len(&header) {
        Ok(n) => n,
        Err(why) => return Ok(Some(Err(why))),
    };
    if position + (FRAME_HEADER + n) as u64 > len {
        return Ok(Some(Err(format!(
            "a frame of {n} bytes runs past the end of the file"
        ))));
    }
    let mut payload = vec![0; n];
    if read_full(r, &mut payload)? < n {
        return Ok(Some(Err("the file ended inside a frame".into())));
    }
    if !record::crc_ok(&header, &payload) {
        return Ok(Some(Err("CRC-32C mismatch".into())));
    }
    Ok(Some(Ok(payload)))
}

/// Applies the snapshot at `path` to `state`; returns its record count.
fn load_snapshot(path: &Path, state: &mut OffsetsState) -> Result<u64> {
    let corrupt = |why: String| StorageError::Corrupt {
        path: path.to_owned(),
        why,
    };
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut r = BufReader::new(file);
    let (mut position, mut count) = (0u64, 0u64);
    loop {
        let payload = match next_frame(&mut r, position, len)? {
            None => return Err(corrupt("no end frame: the snapshot is cut short".into())),
            Some(frame) => frame.map_err(|why| corrupt(format!("at byte {position}: {why}")))?,
        };
        position += (FRAME_HEADER + payload.len()) as u64;
        match record::decode_payload(&payload) {
            Err(e) => return Err(corrupt(format!("at byte {position}: {e}"))),
            Ok(Payload::SnapshotEnd(n)) => {
                if n != count {
                    return Err(corrupt(format!("{n} records announced, {count} found")));
                }
                if position != len {
                    return Err(corrupt(format!(
                        "{} bytes after the end frame",
                        len - position
                    )));
                }
                return Ok(count);
            }
            Ok(Payload::Records(records)) => {
                for r in &records {
                    if !matches!(r, OffsetRecord::Commit { .. } | OffsetRecord::Group { .. }) {
                        return Err(corrupt(format!("a delete in a snapshot: {r:?}")));
                    }
                    state.apply(r);
                }
                count += records.len() as u64;
            }
        }
    }
}

/// Applies the journal at `path` to `state`, truncating it at its first bad frame; returns its
/// length after that.
fn replay_journal(path: &Path, state: &mut OffsetsState, replay: &mut Replay) -> Result<u64> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut r = BufReader::new(file);
    let mut position = 0u64;
    let bad = loop {
        let payload = match next_frame(&mut r, position, len)? {
            None => break None,
            Some(Err(why)) => break Some(why),
            Some(Ok(payload)) => payload,
        };
        let records = match record::decode_payload(&payload) {
            Ok(Payload::Records(records)) => records,
            Ok(Payload::SnapshotEnd(_)) => {
                return Err(StorageError::Corrupt {
                    path: path.to_owned(),
                    why: format!("a snapshot end frame at byte {position}"),
                })
            }
            Err(e) => {
                return Err(StorageError::Corrupt {
                    path: path.to_owned(),
                    why: format!("a frame at byte {position} with a good CRC: {e}"),
                })
            }
        };
        for r in &records {
            state.apply(r);
        }
        replay.journal_records += records.len() as u64;
        position += (FRAME_HEADER + payload.len()) as u64;
    };
    if let Some(why) = bad {
        let dropped = len - position;
        tracing::warn!(
            file = %path.display(),
            "offsets journal: {why} at byte {position}; truncating the last {dropped} bytes \
             (a write torn by a crash, or damage): the records before it are kept"
        );
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(position)?;
        f.sync_all()?;
        replay.truncated_bytes = dropped;
    }
    Ok(position)
}

/// Writes the snapshot of `state` to `path` and fsyncs it.
fn write_snapshot(path: &Path, state: &OffsetsState) -> io::Result<()> {
    let mut out = std::io::BufWriter::new(File::create(path)?);
    let mut frame = Vec::new();
    let mut chunk = Vec::new();
    let mut chunk_len = 0;
    let mut count = 0u64;
    let mut records = state.records().peekable();
    while let Some(r) = records.next() {
        chunk_len += r.encoded_len();
        chunk.push(r);
        count += 1;
        if chunk_len >= SNAPSHOT_FRAME || records.peek().is_none() {
            frame.clear();
            record::encode_frame(&chunk, &mut frame).map_err(|record::TooLong(n)| {
                io::Error::new(io::ErrorKind::InvalidData, format!("a field of {n} bytes"))
            })?;
            out.write_all(&frame)?;
            chunk.clear();
            chunk_len = 0;
        }
    }
    frame.clear();
    record::encode_snapshot_end(count, &mut frame);
    out.write_all(&frame)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// Creates an empty journal at `path` and makes its name durable.
fn create_journal(path: &Path, dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}
