//! Opening a partition directory after a clean shutdown or a crash (Kafka's `LogLoader`).
//!
//! Step by step:
//!
//! 1. **List** the directory. `<base>.log`, `.index` and `.timeindex` are segment files;
//!    `log-start-offset-checkpoint` is the log start offset; leftover `*.tmp` files (an atomic
//!    write cut short) are removed; an index without its `.log` (a deletion cut short) is
//!    removed (Kafka: "Found an orphaned index file"); anything else is logged and left alone.
//! 2. **Trust** every segment that ends at or below the recovery point (it has a successor whose
//!    base offset is ≤ the recovery point): its end is the next segment's base and its size the
//!    file's length. Its `.log` is not read. Its indexes get Kafka's sanity check plus a little
//!    (`check_offsets`, `check_times`: a whole number of entries, first and last entries inside
//!    the segment and increasing); an index that is missing or fails is rebuilt from a walk of
//!    the batch headers and written atomically. The time index's last entry gives the segment's
//!    largest timestamp (a roll writes and fsyncs that closing entry).
//! 3. **Check** the segment holding the recovery point from the last offset index entry below
//!    the recovery point (entries below it were fsynced with their batches by the flush that
//!    returned it): the batch at the entry's position must end at the entry's offset, or the
//!    whole segment is checked instead. Every batch from there is checked by length, magic,
//!    CRC-32C, record count and offset continuity, and the index entries after that point are
//!    written afresh by the same rule the appends use (`Indexer`). Later segments are checked
//!    whole, and each must start where the previous one ends.
//! 4. **Cut** at the first batch that fails: the segment is truncated there and every later
//!    segment deleted (Kafka's `LogLoader.recoverLog`), with a warning naming the file, the byte
//!    and the reason. Each checked segment's time index gets its closing entry.
//! 5. **Start offset**: the larger of the checkpoint and the first segment's base. If it is past
//!    the recovered end (segments lost), every segment is deleted and the log restarts empty at
//!    it (Kafka's `deleteSegmentsIfLogStartGreaterThanLogEnd`).

use super::checkpoint::{sync_dir, Checkpoint};
use super::error::Result;
use super::index::{IndexFile, OffsetEntry};
use super::layout::{self, parse_name, FileKind, LOG, LOG_START_CHECKPOINT, TMP};
use super::scan::{Step, Walk};
use super::segment::Segment;
use super::time_index::{Indexer, TimeEntry};
use super::{LogConfig, PartitionLog, Writer};
use crate::loom::{Arc, ArcSwap, AtomicBool, AtomicU64, Mutex};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// What [`PartitionLog::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Segments in the log once opened.
    pub segments: usize,
    /// Segments trusted without reading their `.log` (unless an index had to be rebuilt).
    pub trusted_segments: usize,
    /// The base offset of the first batch checked by CRC (the log end offset if none was).
    pub checked_from: u64,
    /// Bytes of `.log` files read: the tail checked, plus segments walked to rebuild an index.
    pub log_bytes_read: u64,
    /// Bytes cut from the end of a segment: a torn write or corrupt batches.
    pub truncated_bytes: u64,
    /// Base offsets of segments deleted: after a cut or a gap, or all if the log start offset
    /// was past the recovered end.
    pub deleted_segments: Vec<u64>,
    /// Index files rebuilt because they were missing, or (below the recovery point) failed the
    /// sanity check. The checked tail's entries are re-derived on every open and not listed.
    pub rebuilt_indexes: Vec<PathBuf>,
    /// Files removed: orphaned indexes and leftover temporary files.
    pub removed_files: Vec<PathBuf>,
    /// Files that are not storage's, left in place.
    pub ignored_files: Vec<PathBuf>,
    /// The log start offset after recovery.
    pub start: u64,
    /// The log end offset after recovery.
    pub end: u64,
    /// True if the log ends below the recovery point given (and that was not `u64::MAX`):
    /// data that a flush had made durable is gone (lost or damaged files).
    pub lost_flushed_data: bool,
}

/// What a directory listing found for one base offset.
#[derive(Debug, Default)]
struct Files {
    /// The `.log` file's length, if there is one.
    log: Option<u64>,
    index: bool,
    time: bool,
}

/// See [`PartitionLog::open`].
pub(super) fn open(
    dir: &Path,
    config: LogConfig,
    recovery_point: u64,
) -> Result<(PartitionLog, Recovery)> {
    config.validate()?;
    let (topic, partition) = topic_partition(dir)?;
    fs::create_dir_all(dir)?;
    let mut report = Recovery::default();
    let checkpoint_start = read_start(dir, &topic, partition);
    let files = list(dir, &mut report)?;
    let bases: Vec<u64> = files.keys().copied().collect();
    let mut segments: Vec<Arc<Segment>> = Vec::new();
    let mut writer = (Indexer::new(checkpoint_start), -1);
    let mut created = bases.is_empty();
    if bases.is_empty() {
        segments.push(Arc::new(Segment::create(dir, checkpoint_start)?));
    } else {
        // The segment holding the recovery point: the last whose base is ≤ it.
        let first_checked = bases
            .partition_point(|&b| b <= recovery_point)
            .saturating_sub(1);
        for (i, &base) in bases[..first_checked].iter().enumerate() {
            let size = files[&base].log.unwrap_or(0);
            let next = bases[i + 1];
            let interval = config.index_interval_bytes;
            let seg = open_trusted(dir, base, size, next, &files[&base], interval, &mut report)?;
            segments.push(Arc::new(seg));
        }
        report.trusted_segments = first_checked;
        for (i, &base) in bases.iter().enumerate().skip(first_checked) {
            if let Some(prev) = segments.last() {
                if prev.end() != base {
                    tracing::warn!(
                        dir = %dir.display(),
                        "segment {base} does not start where segment {} ends ({}); deleting it \
                         and every later segment",
                        prev.base(),
                        prev.end()
                    );
                    delete(dir, &bases[i..], &mut report);
                    break;
                }
            }
            let size = files[&base].log.unwrap_or(0);
            let rp = (i == first_checked).then_some(recovery_point);
            let checked = check_segment(dir, base, size, rp, &files[&base], &config, &mut report)?;
            if i == first_checked {
                report.checked_from = checked.first_checked;
            }
            segments.push(Arc::new(checked.segment));
            writer = (checked.indexer, checked.first_timestamp);
            if checked.truncated > 0 && i + 1 < bases.len() {
                tracing::warn!(
                    dir = %dir.display(),
                    "segment {base} was cut; deleting the {} segments after it",
                    bases.len() - i - 1
                );
                delete(dir, &bases[i + 1..], &mut report);
                break;
            }
        }
    }
    let mut end = segments.last().expect("one segment at least").end();
    let start = checkpoint_start.max(segments[0].base());
    if start > end {
        tracing::warn!(
            dir = %dir.display(),
            "the log start offset {start} is past the recovered log end {end} (segment files \
             were lost); deleting every segment and starting the log empty at {start}"
        );
        for seg in &segments {
            if let Err(e) = seg.delete_files() {
                tracing::warn!(segment = %seg.log_path().display(), "cannot delete: {e}");
            }
            report.deleted_segments.push(seg.base());
        }
        segments = vec![Arc::new(Segment::create(dir, start)?)];
        created = true;
        writer = (Indexer::new(start), -1);
        end = start;
    }
    if end < recovery_point && recovery_point != u64::MAX {
        report.lost_flushed_data = true;
        tracing::warn!(
            dir = %dir.display(),
            "the log ends at {end}, below its recovery point {recovery_point}: flushed data \
             was lost"
        );
    }
    if report.trusted_segments == segments.len() {
        report.checked_from = end;
    }
    // Names created, removed or replaced above must survive a crash before anything relies on
    // them; an open that changed no name skips the fsync (a few ms).
    if created
        || !report.removed_files.is_empty()
        || !report.deleted_segments.is_empty()
        || !report.rebuilt_indexes.is_empty()
    {
        sync_dir(dir)?;
    }
    report.segments = segments.len();
    report.start = start;
    report.end = end;
    let active = Arc::clone(segments.last().expect("one segment at least"));
    let log = PartitionLog {
        dir: dir.to_owned(),
        topic,
        partition,
        segments: ArcSwap::from_pointee(segments),
        start: AtomicU64::new(start),
        end: AtomicU64::new(end),
        flushed: AtomicU64::new(recovery_point.min(end)),
        dir_dirty: AtomicBool::new(false),
        writer: Mutex::new(Writer {
            config,
            active,
            indexer: writer.0,
            first_timestamp: writer.1,
            created_ms: None,
        }),
    };
    Ok((log, report))
}

/// `<topic>-<partition>` from the directory's name.
fn topic_partition(dir: &Path) -> Result<(String, i32)> {
    dir.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once('-'))
        .and_then(|(topic, p)| {
            let p = p.parse::<i32>().ok().filter(|p| *p >= 0)?;
            (!topic.is_empty()).then(|| (topic.to_owned(), p))
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "partition directory {} is not named <topic>-<partition>",
                    dir.display()
                ),
            )
            .into()
        })
}

/// The log start offset from the partition's checkpoint; 0 if absent or unreadable (then the
/// first segment's base offset stands).
fn read_start(dir: &Path, topic: &str, partition: i32) -> u64 {
    let checkpoint = Checkpoint::new(dir.join(LOG_START_CHECKPOINT));
    match checkpoint.read() {
        Ok(entries) => entries
            .iter()
            .find(|e| e.topic == topic && e.partition == partition)
            .map_or(0, |e| e.offset),
        Err(e) => {
            tracing::warn!(
                "cannot read the log start offset ({e}); the first segment's base offset stands"
            );
            0
        }
    }
}

/// Step 1: the segment files by base offset (see the module docs).
fn list(dir: &Path, report: &mut Recovery) -> Result<BTreeMap<u64, Files>> {
    let mut files: BTreeMap<u64, Files> = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let is_file = entry.file_type()?.is_file();
        if let (true, Some(name)) = (is_file, name.to_str()) {
            if let Some((base, kind)) = parse_name(name) {
                let f = files.entry(base).or_default();
                match kind {
                    FileKind::Log => f.log = Some(entry.metadata()?.len()),
                    FileKind::Index => f.index = true,
                    FileKind::TimeIndex => f.time = true,
                }
                continue;
            }
            if name == LOG_START_CHECKPOINT {
                continue;
            }
            if let Some(stem) = name.strip_suffix(TMP) {
                if parse_name(stem).is_some() || stem == LOG_START_CHECKPOINT {
                    tracing::info!(
                        file = %path.display(),
                        "removing a temporary file left by a crash"
                    );
                    remove(&path, report);
                    continue;
                }
            }
        }
        tracing::warn!(
            file = %path.display(),
            "unknown file in a partition directory; ignored"
        );
        report.ignored_files.push(path);
    }
    files.retain(|&base, f| {
        if f.log.is_some() {
            return true;
        }
        for (present, ext) in [(f.index, layout::INDEX), (f.time, layout::TIME_INDEX)] {
            if present {
                let path = dir.join(layout::file_name(base, ext));
                tracing::warn!(
                    file = %path.display(),
                    "orphaned index file with no log file; removing it"
                );
                remove(&path, report);
            }
        }
        false
    });
    Ok(files)
}

fn remove(path: &Path, report: &mut Recovery) {
    match fs::remove_file(path) {
        Ok(()) => report.removed_files.push(path.to_owned()),
        Err(e) => tracing::warn!(file = %path.display(), "cannot remove: {e}"),
    }
}

/// Deletes the files of the segments at `bases`.
fn delete(dir: &Path, bases: &[u64], report: &mut Recovery) {
    for &base in bases {
        for ext in [LOG, layout::INDEX, layout::TIME_INDEX] {
            let path = dir.join(layout::file_name(base, ext));
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(file = %path.display(), "cannot delete: {e}");
                }
            }
        }
        report.deleted_segments.push(base);
    }
}

/// Step 2: a segment `base..end` of `size` bytes below the recovery point.
fn open_trusted(
    dir: &Path,
    base: u64,
    size: u64,
    end: u64,
    files: &Files,
    interval: u32,
    report: &mut Recovery,
) -> Result<Segment> {
    let log_path = dir.join(layout::file_name(base, LOG));
    let log = File::open(&log_path)?;
    let index_path = dir.join(layout::file_name(base, layout::INDEX));
    let time_path = dir.join(layout::file_name(base, layout::TIME_INDEX));
    let mut index = None;
    let mut time = None;
    let mut max_timestamp = -1;
    let mut why_index = "missing".to_owned();
    let mut why_time = "missing".to_owned();
    if files.index {
        let idx = IndexFile::<OffsetEntry>::open(&index_path, base)?;
        match check_offsets(&idx, base, end, size)? {
            Ok(n) => {
                idx.publish(n);
                index = Some(idx);
            }
            Err(why) => why_index = why,
        }
    }
    if files.time {
        let t = IndexFile::<TimeEntry>::open(&time_path, base)?;
        match check_times(&t, base, end)? {
            Ok((n, max)) => {
                t.publish(n);
                time = Some(t);
                max_timestamp = max;
            }
            Err(why) => why_time = why,
        }
    }
    if index.is_none() || time.is_none() {
        let rebuilt = walk_headers(&log, &log_path, base, size, end, interval)?;
        report.log_bytes_read += rebuilt.read;
        if index.is_none() {
            tracing::warn!(
                index = %index_path.display(),
                "offset index {why_index}; rebuilding it"
            );
            index = Some(IndexFile::rewrite(&index_path, base, &rebuilt.offsets)?);
            report.rebuilt_indexes.push(index_path);
        }
        if time.is_none() {
            tracing::warn!(index = %time_path.display(), "time index {why_time}; rebuilding it");
            time = Some(IndexFile::rewrite(&time_path, base, &rebuilt.times)?);
            report.rebuilt_indexes.push(time_path);
            max_timestamp = rebuilt.max_timestamp;
        }
    }
    let (index, time) = (index.expect("set above"), time.expect("set above"));
    Ok(Segment::from_parts(
        base,
        log_path,
        log,
        index,
        time,
        size,
        end,
        max_timestamp,
    ))
}

/// Kafka's `OffsetIndex.sanityCheck`, plus the first entry and order: the entry count, or why
/// the index cannot be used.
fn check_offsets(
    index: &IndexFile<OffsetEntry>,
    base: u64,
    end: u64,
    size: u64,
) -> io::Result<std::result::Result<u64, String>> {
    let len = index.file_len()?;
    if len % 8 != 0 {
        return Ok(Err(format!("has {len} bytes, not whole 8-byte entries")));
    }
    let n = len / 8;
    if n == 0 {
        return Ok(Ok(0));
    }
    let (first, last) = (index.get(0)?, index.get(n - 1)?);
    for e in [first, last] {
        if !e.fits(base, end, size) {
            return Ok(Err(format!(
                "has entry (offset {}, position {}) outside the segment (offsets {base}..{end}, \
                 {size} bytes)",
                e.offset, e.position
            )));
        }
    }
    if n > 1 && (last.offset <= first.offset || last.position <= first.position) {
        return Ok(Err("has entries out of order".into()));
    }
    Ok(Ok(n))
}

/// Kafka's `TimeIndex.sanityCheck`, plus the first entry: the entry count and the last
/// timestamp (-1 with none), or why the index cannot be used.
fn check_times(
    index: &IndexFile<TimeEntry>,
    base: u64,
    end: u64,
) -> io::Result<std::result::Result<(u64, i64), String>> {
    let len = index.file_len()?;
    if len % 12 != 0 {
        return Ok(Err(format!("has {len} bytes, not whole 12-byte entries")));
    }
    let n = len / 12;
    if n == 0 {
        return Ok(Ok((0, -1)));
    }
    let (first, last) = (index.get(0)?, index.get(n - 1)?);
    if !first.fits(base, end) || !last.fits(base, end) {
        return Ok(Err(format!(
            "has entries outside the segment's offsets {base}..{end}"
        )));
    }
    if n > 1 && (last.timestamp <= first.timestamp || last.offset < first.offset) {
        return Ok(Err("has entries out of order".into()));
    }
    Ok(Ok((n, last.timestamp)))
}

/// Index entries rebuilt from a walk of a trusted segment's headers.
struct Rebuilt {
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
    max_timestamp: i64,
    read: u64,
}

/// Walks the headers of a trusted segment (no CRC: it is trusted) and indexes it as the appends
/// did. A segment that is not whole batches with consecutive offsets inside `base..end` is
/// indexed up to the damage, with a warning; reads that reach the damage fail with `Corrupt`.
fn walk_headers(
    log: &File,
    path: &Path,
    base: u64,
    size: u64,
    end: u64,
    interval: u32,
) -> io::Result<Rebuilt> {
    let mut indexer = Indexer::new(base);
    let mut rebuilt = Rebuilt {
        offsets: Vec::new(),
        times: Vec::new(),
        max_timestamp: -1,
        read: 0,
    };
    let mut walk = Walk::new(log, 0, size, false);
    let mut next = base;
    loop {
        match walk.next_batch()? {
            Step::Batch { position, header } if header.base == next && header.last < end => {
                next = header.last + 1;
                let (o, t) = indexer.batch(
                    position,
                    header.size,
                    header.last,
                    header.max_timestamp,
                    interval,
                );
                rebuilt.offsets.extend(o);
                rebuilt.times.extend(t);
            }
            Step::Batch { position, .. } | Step::Bad { position, .. } => {
                tracing::warn!(
                    segment = %path.display(),
                    "damaged at byte {position} (below the recovery point); indexed up to there"
                );
                break;
            }
            Step::End => break,
        }
    }
    rebuilt.times.extend(indexer.time_entry());
    rebuilt.max_timestamp = indexer.max_timestamp;
    rebuilt.read = walk.read;
    Ok(rebuilt)
}

/// A segment checked by steps 3 and 4.
struct Checked {
    segment: Segment,
    indexer: Indexer,
    first_timestamp: i64,
    truncated: u64,
    first_checked: u64,
}

/// The outcome of a checked walk from one position.
struct Tail {
    /// Bytes of whole valid batches from the segment's start.
    valid: u64,
    /// The offset after the last valid batch.
    end: u64,
    indexer: Indexer,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
    /// Where and why the walk stopped before the file's end.
    bad: Option<(u64, String)>,
    first_timestamp: Option<i64>,
    first_checked: Option<u64>,
    read: u64,
}

/// Steps 3 and 4 for one segment; `recovery_point` is given for the segment that holds it.
fn check_segment(
    dir: &Path,
    base: u64,
    size: u64,
    recovery_point: Option<u64>,
    files: &Files,
    config: &LogConfig,
    report: &mut Recovery,
) -> Result<Checked> {
    let log_path = dir.join(layout::file_name(base, LOG));
    let log = OpenOptions::new().read(true).write(true).open(&log_path)?;
    let index_path = dir.join(layout::file_name(base, layout::INDEX));
    let time_path = dir.join(layout::file_name(base, layout::TIME_INDEX));
    for (present, path, what) in [
        (files.index, &index_path, "offset index"),
        (files.time, &time_path, "time index"),
    ] {
        if !present {
            tracing::warn!(
                index = %path.display(),
                "{what} missing; rebuilding it from the checked batches"
            );
            report.rebuilt_indexes.push(path.clone());
        }
    }
    let index = IndexFile::<OffsetEntry>::open(&index_path, base)?;
    let time = IndexFile::<TimeEntry>::open(&time_path, base)?;
    let (mut keep_offsets, mut keep_times) = match recovery_point {
        Some(rp) => kept(&index, &time, base, size, rp, config)?,
        None => (Vec::new(), Vec::new()),
    };
    let interval = config.index_interval_bytes;
    let tail = loop {
        let indexer = match keep_times.last() {
            Some(t) => Indexer {
                since: 0,
                max_timestamp: t.timestamp,
                max_offset: t.offset,
                last_time_entry: t.timestamp,
            },
            None => Indexer::new(base),
        };
        let entry = keep_offsets.last().copied();
        match check_tail(&log, base, size, entry, indexer, interval)? {
            Ok(tail) => break tail,
            Err(why) => {
                tracing::warn!(
                    index = %index.path().display(),
                    "offset index entry below the recovery point does not match the log ({why}); \
                     checking the whole segment"
                );
                keep_offsets.clear();
                keep_times.clear();
            }
        }
    };
    report.log_bytes_read += tail.read;
    let truncated = size - tail.valid;
    if let Some((position, why)) = &tail.bad {
        tracing::warn!(
            segment = %log_path.display(),
            "invalid batch at byte {position} ({why}); cutting the {truncated} bytes from there \
             (a torn or corrupt tail)"
        );
        log.set_len(tail.valid)?;
        report.truncated_bytes += truncated;
    }
    let mut indexer = tail.indexer;
    index.replace_from(keep_offsets.len() as u64, &tail.offsets)?;
    let mut times = tail.times;
    times.extend(indexer.time_entry());
    time.replace_from(keep_times.len() as u64, &times)?;
    let first_timestamp = match tail.first_timestamp {
        Some(t) => t,
        None => first_batch_timestamp(&log, tail.valid)?,
    };
    Ok(Checked {
        segment: Segment::from_parts(
            base,
            log_path,
            log,
            index,
            time,
            tail.valid,
            tail.end,
            indexer.max_timestamp,
        ),
        indexer,
        first_timestamp,
        truncated,
        first_checked: tail.first_checked.unwrap_or(tail.end),
    })
}

/// The index entries of the segment holding the recovery point that are below it and look
/// right: a prefix of increasing entries inside the segment; and the time entries up to the last
/// of those.
fn kept(
    index: &IndexFile<OffsetEntry>,
    time: &IndexFile<TimeEntry>,
    base: u64,
    size: u64,
    recovery_point: u64,
    config: &LogConfig,
) -> io::Result<(Vec<OffsetEntry>, Vec<TimeEntry>)> {
    let n = (index.file_len()? / 8).min(config.max_index_entries());
    let mut offsets: Vec<OffsetEntry> = Vec::new();
    for e in index.read(0, n)? {
        let increasing = offsets
            .last()
            .is_none_or(|p| e.offset > p.offset && e.position > p.position);
        if e.offset >= recovery_point || !e.fits(base, u64::MAX, size) || !increasing {
            break;
        }
        offsets.push(e);
    }
    let mut times: Vec<TimeEntry> = Vec::new();
    if let Some(last) = offsets.last() {
        let n = (time.file_len()? / 12).min(config.max_time_entries() + 1);
        for t in time.read(0, n)? {
            let increasing = times
                .last()
                .is_none_or(|p| t.timestamp > p.timestamp && t.offset >= p.offset);
            if t.offset > last.offset || t.offset < base || !increasing {
                break;
            }
            times.push(t);
        }
    }
    Ok((offsets, times))
}

/// Walks `log` from `entry`'s position (or 0), checking every batch (see step 3). With `entry`,
/// `Err` says why the batch there is not the one the entry indexed.
fn check_tail(
    log: &File,
    base: u64,
    size: u64,
    entry: Option<OffsetEntry>,
    indexer: Indexer,
    interval: u32,
) -> io::Result<std::result::Result<Tail, String>> {
    let start = entry.map_or(0, |e| e.position);
    let mut walk = Walk::new(log, start, size, true);
    let mut tail = Tail {
        valid: start,
        end: base,
        indexer,
        offsets: Vec::new(),
        times: Vec::new(),
        bad: None,
        first_timestamp: None,
        first_checked: None,
        read: 0,
    };
    loop {
        let first = tail.first_checked.is_none();
        let why = match walk.next_batch()? {
            Step::End if first && entry.is_some() => "the file ends there".to_owned(),
            Step::End => break,
            Step::Bad { position, why } => format!("at byte {position}: {why}"),
            Step::Batch {
                position,
                header: h,
            } => {
                let expected = match (first, entry) {
                    (true, Some(e)) => h.last == e.offset,
                    (true, None) => h.base == base,
                    (false, _) => h.base == tail.end,
                };
                if !expected || h.last - base > i32::MAX as u64 {
                    format!(
                        "the batch at byte {position} holds offsets {}..={}, after offset {}",
                        h.base,
                        h.last,
                        tail.end.max(base)
                    )
                } else {
                    if let (true, Some(_)) = (first, entry) {
                        // Indexed already: only account for it.
                        tail.indexer.since = h.size;
                        if h.max_timestamp > tail.indexer.max_timestamp {
                            tail.indexer.max_timestamp = h.max_timestamp;
                            tail.indexer.max_offset = h.last;
                        }
                    } else {
                        let (o, t) =
                            tail.indexer
                                .batch(position, h.size, h.last, h.max_timestamp, interval);
                        tail.offsets.extend(o);
                        tail.times.extend(t);
                    }
                    if position == 0 {
                        tail.first_timestamp = Some(h.max_timestamp);
                    }
                    tail.first_checked.get_or_insert(h.base);
                    tail.end = h.last + 1;
                    tail.valid = position + h.size;
                    continue;
                }
            }
        };
        if first && entry.is_some() {
            return Ok(Err(why));
        }
        tail.bad = Some((tail.valid, why));
        break;
    }
    tail.read = walk.read;
    Ok(Ok(tail))
}

/// The max timestamp of the batch at position 0 (-1 if the segment is empty or unreadable
/// there): what `segment.ms` counts from.
fn first_batch_timestamp(log: &File, size: u64) -> io::Result<i64> {
    let mut buf = [0; crate::batch::HEADER];
    if size < buf.len() as u64 {
        return Ok(-1);
    }
    log.read_exact_at(&mut buf, 0)?;
    Ok(layout::Header::parse(&buf).map_or(-1, |h| h.max_timestamp))
}
