//! Recovery: torn and corrupt tails, bad index files, unknown files, the cost of opening.

use super::*;
use proptest::prelude::*;
use rand::SeedableRng;
use std::fs;
use std::os::unix::fs::FileExt;

/// A log of `n` random batches in `dir`, flushed after `flushed` of them; returns the model and
/// the recovery point.
fn build(dir: &Path, config: LogConfig, seed: u64, n: usize, flushed: usize) -> (Model, u64) {
    let (log, _) = open(dir, config, 0);
    let mut model = Model::default();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut clock = 50_000;
    let mut rp = 0;
    for i in 0..n {
        if i == flushed {
            rp = log.flush().unwrap();
        }
        model.append_random(&log, &mut rng, &mut clock);
    }
    if flushed >= n {
        rp = log.flush().unwrap();
    }
    assert_eq!(rp, model.prefix(flushed.min(n)).end());
    (model, rp)
}

/// The batches of the segment at `base` with their positions in its file.
fn layout_of(model: &Model, base: u64, next: Option<u64>) -> Vec<(u64, usize)> {
    let mut position = 0;
    let mut out = Vec::new();
    for (i, b) in model.batches.iter().enumerate() {
        if b.0 >= base && next.is_none_or(|n| b.0 < n) {
            out.push((position, i));
            position += b.2.len() as u64;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Cuts the active segment anywhere and flips bytes past the recovery point: recovery keeps
    /// exactly the whole valid batches before the first damage, never panics, and appends go on
    /// at the recovered end.
    #[test]
    fn torn_or_corrupt_tails_recover_to_exactly_the_valid_prefix(
        seed in any::<u64>(),
        flushed in 0usize..=40,
        cut in proptest::option::of(0.0..=1.0f64),
        flips in proptest::collection::vec((0.0..1.0f64, 1u8..=255), 0..4),
    ) {
        let (_tmp, dir) = partition_dir();
        let config = small();
        let (model, rp) = build(&dir, config, seed, 40, flushed);
        let bases = { let (log, _) = open(&dir, config, u64::MAX); log.segment_bases() };
        let active = *bases.last().unwrap();
        let path = file(&dir, active, "log");
        let mut bytes = fs::read(&path).unwrap();
        let batches = layout_of(&model, active, None);
        // The position of the first batch at or after the recovery point.
        let flushed_at = batches
            .iter()
            .find(|&&(_, i)| model.batches[i].0 >= rp)
            .map_or(bytes.len() as u64, |&(p, _)| p);
        let len = match cut {
            Some(f) => (f * bytes.len() as f64) as usize,
            None => bytes.len(),
        };
        bytes.truncate(len);
        let mut damaged = Vec::new();
        for &(f, x) in &flips {
            if (len as u64) > flushed_at {
                let at = flushed_at as usize + (f * (len - flushed_at as usize) as f64) as usize;
                bytes[at] ^= x;
                damaged.push(at as u64);
            }
        }
        fs::write(&path, &bytes).unwrap();
        // The valid prefix: whole batches before the first damaged one. A flip in a batch's
        // partition leader epoch (bytes 12..16) is not covered by the CRC: the batch stays.
        let mut expected = model.clone();
        let mut keep = batches.first().map_or(model.batches.len(), |&(_, i)| i);
        let mut valid = 0;
        for &(p, i) in &batches {
            let size = model.batches[i].2.len() as u64;
            if p + size > len as u64 {
                break;
            }
            let hits: Vec<u64> = damaged
                .iter()
                .filter(|&&d| d >= p && d < p + size)
                .map(|d| d - p)
                .collect();
            if hits.iter().any(|&d| !(12..16).contains(&d)) {
                break;
            }
            if !hits.is_empty() {
                let b = bytes[p as usize..(p + size) as usize].to_vec();
                expected.batches[i].2 = Bytes::from(b);
            }
            keep = i + 1;
            valid = p + size;
        }
        let expected = {
            let mut e = expected.prefix(keep);
            e.records = model.prefix(keep).records;
            e
        };
        let ((log, recovery), logs) = capture(|| open(&dir, config, rp));
        prop_assert_eq!(log.end(), expected.end());
        prop_assert_eq!(recovery.truncated_bytes, len as u64 - valid);
        prop_assert_eq!(recovery.lost_flushed_data, expected.end() < rp);
        if recovery.truncated_bytes > 0 {
            prop_assert!(logs.contains("cutting"), "{}", logs);
        }
        prop_assert_eq!(fs::metadata(&path).unwrap().len(), valid);
        check_reads(&log, &expected);
        // Appends continue at the recovered end; a clean reopen keeps everything.
        let mut expected = expected;
        expected.append(&log, &[99_999, 100_000], 30);
        let rp = log.flush().unwrap();
        drop(log);
        let (log, recovery) = open(&dir, config, rp);
        prop_assert_eq!(recovery.truncated_bytes, 0);
        check_reads(&log, &expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Overwrites the tails of index files with random bytes: opening never panics, nothing is
    /// cut, and every read is exact (the log is the truth; index entries are hints that reads
    /// check).
    #[test]
    fn random_index_damage_never_loses_or_misreads_data(
        seed in any::<u64>(),
        flushed in 0usize..=60,
        damage in proptest::collection::vec(
            (
                0.0..1.0f64,
                any::<bool>(),
                0.0..1.0f64,
                proptest::collection::vec(any::<u8>(), 0..40),
            ),
            1..5,
        ),
    ) {
        let (_tmp, dir) = partition_dir();
        let config = small();
        let (model, rp) = build(&dir, config, seed, 60, flushed);
        let bases = open(&dir, config, u64::MAX).0.segment_bases();
        for (which, time, at, garbage) in &damage {
            let base = bases[((which * bases.len() as f64) as usize).min(bases.len() - 1)];
            let path = file(&dir, base, if *time { "timeindex" } else { "index" });
            let mut bytes = fs::read(&path).unwrap();
            bytes.truncate((at * bytes.len() as f64) as usize);
            bytes.extend_from_slice(garbage);
            fs::write(&path, &bytes).unwrap();
        }
        let ((log, recovery), _) = capture(|| open(&dir, config, rp));
        prop_assert_eq!(recovery.truncated_bytes, 0);
        prop_assert_eq!(log.end(), model.end());
        let (_, _) = capture(|| check_reads(&log, &model));
    }
}

#[test]
fn garbage_or_zeros_after_the_last_batch_are_cut() {
    for tail in [
        vec![0u8; 4096],
        vec![0xab; 10],
        (0..200).map(|i| i as u8).collect(),
    ] {
        let (_tmp, dir) = partition_dir();
        let (model, rp) = build(&dir, small(), 11, 30, 30);
        let active = *open(&dir, small(), u64::MAX)
            .0
            .segment_bases()
            .last()
            .unwrap();
        let path = file(&dir, active, "log");
        let size = fs::metadata(&path).unwrap().len();
        fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all_at(&tail, size)
            .unwrap();
        let ((log, recovery), logs) = capture(|| open(&dir, small(), rp));
        assert_eq!(recovery.truncated_bytes, tail.len() as u64);
        assert!(logs.contains("invalid batch at byte"), "{logs}");
        assert_eq!(fs::metadata(&path).unwrap().len(), size);
        check_reads(&log, &model);
    }
}

#[test]
fn a_corrupt_or_missing_index_below_the_recovery_point_is_rebuilt_identically() {
    let (_tmp, dir) = partition_dir();
    let config = small();
    let (model, rp) = build(&dir, config, 5, 120, 120);
    let bases = open(&dir, config, u64::MAX).0.segment_bases();
    assert!(bases.len() > 5);
    let original: Vec<(PathBuf, Vec<u8>)> = bases[..5]
        .iter()
        .flat_map(|&b| [file(&dir, b, "index"), file(&dir, b, "timeindex")])
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    // 0: a torn entry; 1: a last entry far past the segment; 2: both indexes missing;
    // 3: a time index cut mid-entry; 4: a time index whose last timestamp went back.
    let append = |p: &Path, b: &[u8]| {
        let len = fs::metadata(p).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap()
            .write_all_at(b, len)
            .unwrap();
    };
    append(&file(&dir, bases[0], "index"), &[1, 2, 3]);
    append(&file(&dir, bases[1], "index"), &[0x7f, 0, 0, 0, 0, 0, 0, 9]);
    fs::remove_file(file(&dir, bases[2], "index")).unwrap();
    fs::remove_file(file(&dir, bases[2], "timeindex")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(file(&dir, bases[3], "timeindex"))
        .unwrap()
        .set_len(5)
        .unwrap();
    append(&file(&dir, bases[4], "timeindex"), &[0; 12]);
    let ((log, recovery), logs) = capture(|| open(&dir, config, rp));
    let rebuilt: Vec<PathBuf> = vec![
        file(&dir, bases[0], "index"),
        file(&dir, bases[1], "index"),
        file(&dir, bases[2], "index"),
        file(&dir, bases[2], "timeindex"),
        file(&dir, bases[3], "timeindex"),
        file(&dir, bases[4], "timeindex"),
    ];
    let mut got = recovery.rebuilt_indexes.clone();
    got.sort();
    assert_eq!(got, rebuilt);
    assert!(
        logs.contains("offset index missing; rebuilding it"),
        "{logs}"
    );
    assert!(logs.contains("not whole 8-byte entries"), "{logs}");
    assert!(logs.contains("outside the segment"), "{logs}");
    assert!(logs.contains("time index has 5 bytes"), "{logs}");
    assert_eq!(recovery.truncated_bytes, 0);
    for (path, bytes) in &original {
        assert_eq!(&fs::read(path).unwrap(), bytes, "{}", path.display());
    }
    check_reads(&log, &model);
}

#[test]
fn index_entries_garbled_in_the_middle_are_caught_by_reads() {
    let (_tmp, dir) = partition_dir();
    let config = small();
    let (model, rp) = build(&dir, config, 9, 80, 80);
    let bases = open(&dir, config, u64::MAX).0.segment_bases();
    let index = file(&dir, bases[0], "index");
    let mut bytes = fs::read(&index).unwrap();
    assert!(bytes.len() >= 32, "several entries");
    // Entry 1 points at the wrong position, entry 2 names the wrong offset; first and last
    // entries stay, so the cheap check at open passes.
    bytes[12..16].copy_from_slice(&3u32.to_be_bytes());
    bytes[16..20].copy_from_slice(&1u32.to_be_bytes());
    fs::write(&index, &bytes).unwrap();
    let ((log, recovery), _) = capture(|| open(&dir, config, rp));
    assert!(recovery.rebuilt_indexes.is_empty());
    let (_, logs) = capture(|| check_reads(&log, &model));
    assert!(
        logs.contains("offset index does not match the log"),
        "{logs}"
    );
    assert_eq!(
        logs.matches("does not match").count(),
        1,
        "reported once: {logs}"
    );
}

#[test]
fn a_corrupt_index_of_the_segment_holding_the_recovery_point_is_rebuilt() {
    let (_tmp, dir) = partition_dir();
    let config = LogConfig {
        segment_bytes: 1 << 20,
        ..small()
    };
    let (model, rp) = build(&dir, config, 13, 60, 40);
    for garbage in [vec![0xff; 64], vec![0; 64], vec![1, 2, 3]] {
        let index = file(&dir, 0, "index");
        let mut bytes = fs::read(&index).unwrap();
        let at = bytes.len() / 2;
        bytes.truncate(at);
        bytes.extend_from_slice(&garbage);
        fs::write(&index, &bytes).unwrap();
        let ((log, recovery), _) = capture(|| open(&dir, config, rp));
        assert_eq!(recovery.truncated_bytes, 0);
        assert!(recovery.checked_from <= rp);
        check_reads(&log, &model);
        assert!(log.segments.load()[0].index_entries().unwrap().len() > 4);
    }
}

#[test]
fn unknown_orphaned_and_temporary_files() {
    let (_tmp, dir) = partition_dir();
    let (model, rp) = build(&dir, small(), 17, 30, 30);
    let unknown = [
        dir.join("notes.txt"),
        dir.join("00000000000000000000.log.deleted"),
        dir.join("00000000000000000000.swap"),
    ];
    for p in &unknown {
        fs::write(p, b"hello").unwrap();
    }
    fs::create_dir(dir.join("subdir")).unwrap();
    let removed = [
        dir.join("00000000000000099999.index"),
        dir.join("00000000000000099999.timeindex"),
        dir.join("00000000000000000000.index.tmp"),
        dir.join("log-start-offset-checkpoint.tmp"),
    ];
    for p in &removed {
        fs::write(p, b"junk").unwrap();
    }
    let ((log, recovery), logs) = capture(|| open(&dir, small(), rp));
    let mut ignored = recovery.ignored_files.clone();
    ignored.sort();
    let mut want: Vec<PathBuf> = unknown.to_vec();
    want.push(dir.join("subdir"));
    want.sort();
    assert_eq!(ignored, want);
    assert!(unknown.iter().all(|p| p.exists()));
    let mut gone = recovery.removed_files.clone();
    gone.sort();
    let mut want = removed.to_vec();
    want.sort();
    assert_eq!(gone, want);
    assert!(removed.iter().all(|p| !p.exists()));
    assert_eq!(
        logs.matches("unknown file in a partition directory")
            .count(),
        4,
        "{logs}"
    );
    assert!(logs.contains("orphaned index file"), "{logs}");
    check_reads(&log, &model);
}

#[test]
fn opening_reads_only_the_tail_past_the_recovery_point() {
    let (_tmp, dir) = partition_dir();
    let config = small();
    let (model, rp) = build(&dir, config, 21, 200, 200);
    let bases = open(&dir, config, u64::MAX).0.segment_bases();
    assert!(bases.len() >= 10, "{}", bases.len());
    let total: u64 = model.batches.iter().map(|b| b.2.len() as u64).sum();
    let largest = model
        .batches
        .iter()
        .map(|b| b.2.len() as u64)
        .max()
        .unwrap();
    // With nothing trusted, everything is read.
    let (_, recovery) = open(&dir, config, 0);
    assert_eq!(recovery.log_bytes_read, total);
    assert_eq!(recovery.trusted_segments, 0);
    // Trusted segments' data is not read: it may be anything.
    let active = *bases.last().unwrap();
    for &b in &bases[..bases.len() - 1] {
        let path = file(&dir, b, "log");
        let len = fs::metadata(&path).unwrap().len() as usize;
        fs::write(&path, vec![0xaa; len]).unwrap();
    }
    let ((log, recovery), logs) = capture(|| open(&dir, config, rp));
    assert_eq!(recovery.trusted_segments, bases.len() - 1);
    assert!(
        recovery.log_bytes_read <= u64::from(config.index_interval_bytes) + 2 * largest,
        "read {} of {total} bytes",
        recovery.log_bytes_read
    );
    assert_eq!((recovery.truncated_bytes, recovery.end), (0, model.end()));
    assert!(
        recovery.rebuilt_indexes.is_empty() && !logs.contains("WARN"),
        "{logs}"
    );
    // The active segment reads back; the garbage segments give an error, not a panic.
    let mut out = BytesMut::new();
    log.read(active, 1 << 20, &mut out).unwrap();
    assert_eq!(&out[..], &model.expected(active, 1 << 20)[..]);
    let err = log.read(bases[1] + 1, 100, &mut out).unwrap_err();
    assert_eq!(err.code(), 56, "{err}");
}

#[test]
fn a_damaged_middle_segment_checked_from_the_recovery_point_ends_the_log() {
    let (_tmp, dir) = partition_dir();
    let config = small();
    let (model, _) = build(&dir, config, 23, 100, 100);
    let bases = open(&dir, config, u64::MAX).0.segment_bases();
    let victim = bases[2];
    let batches = layout_of(&model, victim, Some(bases[3]));
    let (p, i) = batches[1];
    let path = file(&dir, victim, "log");
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut byte = [0];
    f.read_exact_at(&mut byte, p + 70).unwrap();
    f.write_all_at(&[byte[0] ^ 1], p + 70).unwrap();
    let ((log, recovery), logs) = capture(|| open(&dir, config, bases[1]));
    assert_eq!(recovery.trusted_segments, 1);
    assert_eq!(recovery.end, model.batches[i].0);
    assert_eq!(recovery.deleted_segments, bases[3..].to_vec());
    assert!(logs.contains("deleting the"), "{logs}");
    assert!(bases[3..].iter().all(|&b| !file(&dir, b, "log").exists()));
    check_reads(&log, &model.prefix(i));
    // A gap: a segment that does not start where the previous one ends goes too.
    let mut model = model.prefix(i);
    for t in 0..30 {
        model.append(&log, &[t], 90);
    }
    let bases = log.segment_bases();
    drop(log);
    fs::remove_file(file(&dir, bases[bases.len() - 2], "log")).unwrap();
    let ((log, recovery), _) = capture(|| open(&dir, config, 0));
    assert_eq!(recovery.deleted_segments, [bases[bases.len() - 1]]);
    assert_eq!(log.end(), bases[bases.len() - 2]);
}

#[test]
fn the_log_start_offset_survives_reopening_and_a_lost_log_restarts_at_it() {
    let (_tmp, dir) = partition_dir();
    let config = small();
    let (model, rp) = build(&dir, config, 29, 60, 60);
    let (log, _) = open(&dir, config, rp);
    assert_eq!(log.delete_records(37).unwrap(), 37);
    drop(log);
    let (log, recovery) = open(&dir, config, rp);
    assert_eq!(recovery.start, 37);
    check_reads(&log, &model);
    drop(log);
    // An unreadable checkpoint: a warning, and the first segment's base stands.
    fs::write(dir.join("log-start-offset-checkpoint"), b"garbage").unwrap();
    let ((log, recovery), logs) = capture(|| open(&dir, config, rp));
    assert!(logs.contains("cannot read the log start offset"), "{logs}");
    assert_eq!(recovery.start, log.segment_bases()[0]);
    // A start past the end (segments lost): the log restarts empty there.
    log.delete_records(log.end()).unwrap();
    let end = log.end();
    drop(log);
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            fs::write(path, b"").unwrap();
        }
    }
    let ((log, recovery), logs) = capture(|| open(&dir, config, 0));
    assert!(logs.contains("past the recovered log end"), "{logs}");
    assert_eq!((recovery.start, recovery.end), (end, end));
    assert_eq!(log.segment_bases(), [end]);
    let mut model = Model::default();
    model.append(&log, &[1], 10);
    assert_eq!(log.end(), end + 1);
}

#[test]
fn missing_indexes_of_the_checked_tail_are_rebuilt_with_a_warning() {
    let (_tmp, dir) = partition_dir();
    let config = small();
    let (model, rp) = build(&dir, config, 31, 60, 30);
    let (log, _) = open(&dir, config, rp);
    let active = *log.segment_bases().last().unwrap();
    let entries = log.segments.load().last().unwrap().index_entries().unwrap();
    let times = log.segments.load().last().unwrap().time_entries().unwrap();
    drop(log);
    fs::remove_file(file(&dir, active, "index")).unwrap();
    fs::remove_file(file(&dir, active, "timeindex")).unwrap();
    let ((log, recovery), logs) = capture(|| open(&dir, config, rp));
    assert_eq!(
        recovery.rebuilt_indexes,
        [file(&dir, active, "index"), file(&dir, active, "timeindex")]
    );
    assert!(
        logs.contains("offset index missing; rebuilding it"),
        "{logs}"
    );
    assert!(logs.contains("time index missing; rebuilding it"), "{logs}");
    let seg = log.segments.load_full();
    let seg = seg.last().unwrap();
    assert_eq!(seg.index_entries().unwrap(), entries);
    assert_eq!(seg.time_entries().unwrap(), times);
    check_reads(&log, &model);
}
