//! Retention by size and by time, DeleteRecords, and readers of deleted segments.

use super::*;
use rand::SeedableRng;

fn filled(dir: &Path, config: LogConfig, n: usize, seed: u64) -> (PartitionLog, Model) {
    let (log, _) = open(dir, config, 0);
    let mut model = Model::default();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut clock = 1_000;
    for _ in 0..n {
        model.append_random(&log, &mut rng, &mut clock);
    }
    (log, model)
}

fn sizes(log: &PartitionLog) -> Vec<u64> {
    log.segments.load().iter().map(|s| s.size()).collect()
}

#[test]
fn retention_by_bytes_deletes_whole_segments_from_the_start_never_the_active_one() {
    let (_tmp, dir) = partition_dir();
    let config = LogConfig {
        retention_ms: -1,
        ..small()
    };
    let (log, model) = filled(&dir, config, 120, 1);
    let bases = log.segment_bases();
    let sizes = sizes(&log);
    assert!(bases.len() > 6);
    assert_eq!(
        log.apply_retention(0).unwrap(),
        0,
        "retention.bytes -1 keeps everything"
    );
    assert_eq!(log.segment_bases(), bases);
    // Kafka's rule: drop the oldest segment while the log is still at least retention.bytes
    // without it.
    let limit = 5_000u64;
    log.set_config(LogConfig {
        retention_bytes: limit as i64,
        ..config
    })
    .unwrap();
    let total: u64 = sizes.iter().sum();
    let mut k = 0;
    let mut left = total;
    while k + 1 < sizes.len() && left - sizes[k] >= limit {
        left -= sizes[k];
        k += 1;
    }
    assert!(k > 0);
    assert_eq!(log.apply_retention(0).unwrap(), bases[k]);
    assert_eq!(log.segment_bases(), bases[k..]);
    assert_eq!(log.size_bytes(), left);
    assert!(left >= limit && left - sizes[k] < limit);
    for &b in &bases[..k] {
        for ext in ["log", "index", "timeindex"] {
            assert!(!file(&dir, b, ext).exists());
        }
    }
    check_reads(&log, &model);
    let mut out = BytesMut::new();
    assert_eq!(log.read(0, 100, &mut out).unwrap_err().code(), 1);
    // retention.bytes 0: everything but the active segment.
    log.set_config(LogConfig {
        retention_bytes: 0,
        ..config
    })
    .unwrap();
    let active = *bases.last().unwrap();
    assert_eq!(log.apply_retention(0).unwrap(), active);
    assert_eq!(log.segment_bases(), [active]);
    check_reads(&log, &model);
    drop(log);
    let (log, recovery) = open(&dir, config, 0);
    assert_eq!(recovery.start, active);
    check_reads(&log, &model);
}

#[test]
fn retention_by_time_uses_each_segments_largest_timestamp_and_stops_at_a_young_one() {
    let (_tmp, dir) = partition_dir();
    let config = LogConfig {
        retention_ms: 10_000,
        ..small()
    };
    let (log, _) = open(&dir, config, 0);
    let mut model = Model::default();
    for i in 0..100 {
        model.append(&log, &[1_000 * i, 1_000 * i + 5], 60);
    }
    let segments = log.segments.load_full();
    let largest: Vec<i64> = segments.iter().map(|s| s.max_timestamp()).collect();
    let bases = log.segment_bases();
    assert!(bases.len() > 5);
    let now = largest[3] + 10_001;
    assert_eq!(
        log.apply_retention(now - 1).unwrap(),
        bases[3],
        "segment 3 is exactly at the limit"
    );
    assert_eq!(log.apply_retention(now).unwrap(), bases[4]);
    check_reads(&log, &model);
    assert_eq!(
        log.apply_retention(i64::MAX).unwrap(),
        *bases.last().unwrap()
    );
    assert_eq!(
        log.segment_bases().len(),
        1,
        "the active segment stays, however old"
    );

    // A young segment before old ones stops the deletion (Kafka deletes a prefix).
    let (_tmp, dir) = partition_dir();
    let (log, _) = open(&dir, config, 0);
    for i in 0..40 {
        let ts = if i < 10 { 1_000_000 } else { 1_000 };
        Model::default().append(&log, &[ts], 100);
    }
    let bases = log.segment_bases();
    assert!(bases.len() > 2);
    assert_eq!(log.segments.load()[0].max_timestamp(), 1_000_000);
    assert_eq!(log.apply_retention(500_000).unwrap(), 0);
    assert_eq!(log.segment_bases(), bases);

    // Segments without timestamps age by their file's modification time.
    let (_tmp, dir) = partition_dir();
    let (log, _) = open(&dir, config, 0);
    for _ in 0..40 {
        Model::default().append(&log, &[-1], 100);
    }
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(log.apply_retention(wall).unwrap(), 0);
    assert_eq!(
        log.apply_retention(wall + 60_000).unwrap(),
        *log.segment_bases().last().unwrap()
    );
}

#[test]
fn delete_records_moves_the_start_and_deletes_segments_wholly_below_it() {
    let (_tmp, dir) = partition_dir();
    let config = small();
    let (log, model) = filled(&dir, config, 100, 2);
    let bases = log.segment_bases();
    let before = bases[2] + 2;
    assert_eq!(log.delete_records(before).unwrap(), before);
    assert_eq!(log.segment_bases(), bases[2..]);
    assert!(!file(&dir, bases[1], "log").exists());
    assert_eq!(
        log.delete_records(before - 1).unwrap(),
        before,
        "never moves back"
    );
    assert_eq!(log.start(), before);
    check_reads(&log, &model);
    let mut out = BytesMut::new();
    log.read(before, 1, &mut out).unwrap();
    assert_eq!(&out[..], &model.expected(before, 1)[..]);
    assert_eq!(
        log.offset_for_timestamp(0).unwrap(),
        model.first_at(0, before),
        "timestamps from the start on"
    );
    let end = log.end();
    let err = log.delete_records(end + 1).unwrap_err();
    assert_eq!(err.code(), 1, "{err}");
    drop(log);
    let (log, recovery) = open(&dir, config, 0);
    assert_eq!(recovery.start, before);
    check_reads(&log, &model);
    // Up to the end: only the active segment stays, and it reads nothing.
    assert_eq!(log.delete_records(end).unwrap(), end);
    assert_eq!(log.segment_bases(), [*bases.last().unwrap()]);
    assert_eq!(log.read(end, 100, &mut out).unwrap(), 0);
    assert_eq!(log.read(end - 1, 100, &mut out).unwrap_err().code(), 1);
    // The retention run that follows deletes nothing more and keeps the start.
    assert_eq!(log.apply_retention(i64::MAX).unwrap(), end);
}

#[test]
fn readers_keep_reading_segments_deleted_under_them() {
    let (_tmp, dir) = partition_dir();
    let (log, model) = filled(&dir, small(), 100, 3);
    let mut iter = log.batches_from(0);
    let first: Vec<(u64, Bytes)> = iter.by_ref().take(3).map(|b| b.unwrap()).collect();
    log.set_config(LogConfig {
        retention_bytes: 0,
        ..small()
    })
    .unwrap();
    log.apply_retention(0).unwrap();
    assert_eq!(log.segment_bases().len(), 1);
    let rest: Vec<(u64, Bytes)> = iter.map(|b| b.unwrap()).collect();
    let all: Vec<(u64, Bytes)> = first.into_iter().chain(rest).collect();
    let want: Vec<(u64, Bytes)> = model.batches.iter().map(|b| (b.0, b.2.clone())).collect();
    assert_eq!(all, want);
    let mut stale = log.batches_from(0);
    assert_eq!(stale.next().unwrap().unwrap_err().code(), 1);
    assert!(stale.next().is_none());
}
