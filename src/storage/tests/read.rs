//! Appends, reads, iteration, timestamp lookups, rolls, concurrent readers.

use super::*;
use crate::storage::index::OffsetEntry;
use crate::storage::StorageError;
use rand::SeedableRng;

#[test]
fn round_trip_across_rolled_segments() {
    let (_tmp, dir) = partition_dir();
    let config = small();
    let (log, recovery) = open(&dir, config, 0);
    assert_eq!((recovery.start, recovery.end, recovery.segments), (0, 0, 1));
    assert!(file(&dir, 0, "log").exists());
    let mut model = Model::default();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut clock = 1_000;
    for _ in 0..120 {
        model.append_random(&log, &mut rng, &mut clock);
    }
    let bases = log.segment_bases();
    assert!(bases.len() >= 5, "{bases:?}");
    let sizes: u64 = bases
        .iter()
        .map(|&b| std::fs::metadata(file(&dir, b, "log")).unwrap().len())
        .sum();
    assert_eq!(sizes, log.size_bytes());
    assert_eq!(
        log.size_bytes(),
        model.batches.iter().map(|b| b.2.len() as u64).sum::<u64>()
    );
    for (i, &base) in bases.iter().enumerate() {
        // Each segment starts with a batch at its base and stays within segment.bytes.
        assert!(model.batches.iter().any(|b| b.0 == base));
        let len = std::fs::metadata(file(&dir, base, "log")).unwrap().len();
        assert!(len <= config.segment_bytes, "segment {i}: {len} bytes");
        assert!(file(&dir, base, "index").exists() && file(&dir, base, "timeindex").exists());
    }
    check_reads(&log, &model);
    check_indexes(&log, &model, config);
    // From inside a batch: the whole batch comes, starting below `from`.
    let inside = model.batches.iter().find(|b| b.1 > b.0).unwrap();
    let mut out = BytesMut::new();
    log.read(inside.0 + 1, 1, &mut out).unwrap();
    assert_eq!(&out[..], &inside.2[..]);
    let from_inside: Vec<_> = log.batches_from(inside.0 + 1).take(1).collect();
    assert_eq!(from_inside[0].as_ref().unwrap().0, inside.0);
}

/// Every offset index entry points at the batch it names, entries come only after more than
/// `index.interval.bytes`, and none is missing; time index entries increase and a rolled
/// segment's last one is its largest timestamp.
fn check_indexes(log: &PartitionLog, model: &Model, config: LogConfig) {
    let segments = log.segments.load();
    for (i, seg) in segments.iter().enumerate() {
        let mut position = 0;
        let mut since = 0;
        let mut want: Vec<OffsetEntry> = Vec::new();
        let mut max_ts = -1;
        for (base, last, bytes) in &model.batches {
            if *base < seg.base() || *last >= seg.end() {
                continue;
            }
            if since > u64::from(config.index_interval_bytes) {
                want.push(OffsetEntry {
                    offset: *last,
                    position,
                });
                since = 0;
            }
            since += bytes.len() as u64;
            position += bytes.len() as u64;
            let ts = model
                .records
                .iter()
                .filter(|r| r.0 >= *base && r.0 <= *last)
                .map(|r| r.1)
                .max()
                .unwrap();
            max_ts = max_ts.max(ts);
        }
        assert_eq!(seg.index_entries().unwrap(), want, "segment {}", seg.base());
        let times = seg.time_entries().unwrap();
        assert!(times.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        assert_eq!(seg.max_timestamp(), max_ts);
        if i + 1 < segments.len() {
            assert_eq!(times.last().unwrap().timestamp, max_ts, "closing entry");
        }
    }
}

#[test]
fn appends_that_do_not_continue_the_log_are_refused_and_change_nothing() {
    let (_tmp, dir) = partition_dir();
    let (log, _) = open(&dir, small(), 0);
    let mut model = Model::default();
    model.append(&log, &[1, 2, 3], 10);
    let good = encode(3, &[4, 5], 10);
    let wrong_base = encode(7, &[4], 10);
    let mut two = good.to_vec();
    two.extend_from_slice(&encode(5, &[6], 10)[..]);
    let mut gap = good.to_vec();
    gap.extend_from_slice(&encode(9, &[6], 10)[..]);
    let mut bad_magic = good.to_vec();
    bad_magic[16] = 1;
    for bad in [
        &b""[..],
        &good[..good.len() - 1],
        &good[..30],
        &wrong_base[..],
        &gap[..],
        &bad_magic[..],
    ] {
        let err = log.append(bad, 0).unwrap_err();
        assert!(matches!(err, StorageError::InvalidAppend(_)), "{err}");
        assert_eq!(err.code(), 2);
        assert_eq!(log.end(), 3);
    }
    assert_eq!(
        std::fs::metadata(file(&dir, 0, "log")).unwrap().len(),
        log.size_bytes()
    );
    // Several batches in one append are fine.
    assert_eq!(log.append(&two, 0).unwrap(), 6);
    model.push(3, &[4, 5], good);
    model.push(5, &[6], encode(5, &[6], 10));
    check_reads(&log, &model);
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after_across_segments() {
    let (_tmp, dir) = partition_dir();
    let config = small();
    let (log, _) = open(&dir, config, 0);
    let mut model = Model::default();
    let mut rng = SmallRng::seed_from_u64(3);
    // Mostly increasing timestamps with records that go back in time.
    let mut clock = 10_000;
    for _ in 0..150 {
        let n = rng.random_range(1..=3);
        let ts: Vec<i64> = (0..n)
            .map(|_| {
                clock += rng.random_range(0..20);
                clock - rng.random_range(0..2) * 30
            })
            .collect();
        model.append(&log, &ts, rng.random_range(0..100));
    }
    assert!(log.segment_bases().len() > 3);
    let check = |log: &PartitionLog, model: &Model| {
        for t in (9_900..clock + 20).step_by(7) {
            assert_eq!(
                log.offset_for_timestamp(t).unwrap(),
                model.first_at(t, log.start()),
                "timestamp {t}"
            );
        }
    };
    check(&log, &model);
    // From the log start offset on, after DeleteRecords.
    log.delete_records(200).unwrap();
    check(&log, &model);
    drop(log);
    let (log, _) = open(&dir, config, u64::MAX);
    check(&log, &model);
}

#[test]
fn rolls_by_time_span_of_timestamps_and_by_clock_without_them() {
    let (_tmp, dir) = partition_dir();
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let (log, _) = open(&dir, config, 0);
    let base = |ts: &[i64], now: i64| {
        let b = encode(log.end(), ts, 10);
        log.append(&b, now).unwrap();
        *log.segment_bases().last().unwrap()
    };
    assert_eq!(base(&[5_000], 0), 0);
    assert_eq!(
        base(&[5_900, 6_000], 0),
        0,
        "a span of 1000 ms is not more than segment.ms"
    );
    assert_eq!(base(&[6_001], 0), 3, "a span over segment.ms rolls");
    assert_eq!(base(&[7_001], 0), 3);
    assert_eq!(base(&[7_002], 0), 5);
    // A batch without timestamps does not count against a segment that has them.
    assert_eq!(base(&[-1], 1_000_000), 5);
    // A segment whose first batch has no timestamp (-1): the caller's clock from its first
    // append.
    let (_tmp, dir) = partition_dir();
    let (log, _) = open(&dir, config, 0);
    let base = |ts: &[i64], now: i64| {
        let b = encode(log.end(), ts, 10);
        log.append(&b, now).unwrap();
        *log.segment_bases().last().unwrap()
    };
    assert_eq!(base(&[-1], 100_000), 0);
    assert_eq!(base(&[-1], 100_500), 0);
    assert_eq!(base(&[-1], 101_001), 2);
    assert_eq!(base(&[-1], 101_002), 2);
    assert_eq!(base(&[5], 101_500), 2);
    assert_eq!(base(&[-1], 102_003), 5);
}

#[test]
fn rolls_when_the_index_is_full() {
    let (_tmp, dir) = partition_dir();
    // Two offset index entries per segment; an entry for every batch after the first.
    let config = LogConfig {
        index_interval_bytes: 0,
        segment_index_bytes: 24,
        ..LogConfig::default()
    };
    let (log, _) = open(&dir, config, 0);
    let mut model = Model::default();
    for i in 0..9 {
        model.append(&log, &[i], 10);
    }
    // The time index (12-byte entries, one kept spare) rolls first: one entry per segment.
    assert_eq!(log.segment_bases(), [0, 2, 4, 6, 8]);
    check_reads(&log, &model);
}

#[test]
fn readers_run_beside_the_writer_rolls_and_retention() {
    let (_tmp, dir) = partition_dir();
    let config = LogConfig {
        retention_bytes: 8 * 1024,
        ..small()
    };
    let (log, _) = open(&dir, config, 0);
    let log = std::sync::Arc::new(log);
    let batches: Vec<Bytes> = (0..600)
        .scan(0u64, |next, i| {
            let n = 1 + i % 3;
            let b = encode(*next, &vec![i as i64; n as usize], (i % 7) as usize * 20);
            *next += n;
            Some(b)
        })
        .collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for r in 0..2 {
            let log = &log;
            let stop = &stop;
            s.spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || reads < 100 {
                    let end = log.end();
                    let from = log.start() + (reads * 7 + r) % (end - log.start() + 1);
                    let mut out = BytesMut::new();
                    match log.read(from, 1000, &mut out) {
                        Ok(0) => assert!(from >= end),
                        Ok(_) => {
                            let got = Batch::parse_all(out.freeze()).expect("whole, valid batches");
                            let mut next = None;
                            for b in &got {
                                let base = i64::from_be_bytes(b.bytes()[..8].try_into().unwrap());
                                if let Some(n) = next {
                                    assert_eq!(base, n, "batches follow each other");
                                } else {
                                    assert!(base as u64 <= from);
                                }
                                next = Some(base + i64::from(b.count()));
                            }
                            assert!(next.unwrap() as u64 > from);
                        }
                        // Retention moved the start past `from` meanwhile.
                        Err(StorageError::OffsetOutOfRange { start, .. }) => assert!(start > from),
                        Err(e) => panic!("{e}"),
                    }
                    reads += 1;
                }
            });
        }
        for (i, b) in batches.iter().enumerate() {
            log.append(b, 0).unwrap();
            if i % 50 == 0 {
                log.apply_retention(0).unwrap();
                log.flush().unwrap();
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    log.apply_retention(0).unwrap();
    assert!(log.start() > 0);
    assert!(log.size_bytes() <= 8 * 1024 + config.segment_bytes);
}

#[test]
fn flush_returns_the_end_and_bad_configs_or_names_are_refused() {
    let (_tmp, dir) = partition_dir();
    let (log, _) = open(&dir, small(), 0);
    let mut model = Model::default();
    assert_eq!(log.flush().unwrap(), 0);
    for i in 0..40 {
        model.append(&log, &[i, i + 1], 60);
    }
    assert_eq!(log.flush().unwrap(), 80);
    assert_eq!(log.flush().unwrap(), 80);
    let bad = LogConfig {
        segment_bytes: 10,
        ..LogConfig::default()
    };
    assert!(matches!(
        log.set_config(bad),
        Err(StorageError::InvalidConfig(_))
    ));
    assert_eq!(log.config(), small());
    let parent = dir.parent().unwrap();
    for name in ["orders", "orders-x", "-3", "orders-"] {
        let err = PartitionLog::open(&parent.join(name), small(), 0).unwrap_err();
        assert!(
            matches!(err, StorageError::Io(ref e) if e.kind() == std::io::ErrorKind::InvalidInput),
            "{name}: {err}"
        );
    }
    let err = PartitionLog::open(&parent.join("orders-4"), bad, 0).unwrap_err();
    assert_eq!(err.code(), 40);
}
