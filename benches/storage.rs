//! The on-disk partition log (`kgroups::storage`) beside the raw file calls it is made of.
//!
//! A batch is N = 100 records of 100-byte values (about 13 KiB), base offsets set.
//!
//! - `append/page-cache`: `PartitionLog::append` of one batch (header walk, roll check, one
//!   `pwrite`, index entries, publish), with 64 MiB segments rolled and old ones deleted by
//!   `apply_retention` (256 MiB kept); baseline `pwrite`: the same bytes appended to a plain
//!   file, replaced by a new file every 64 MiB. Throughput in bytes.
//! - `read/sequential`: `PartitionLog::read` of 1 MiB at a time from the start of a 128 MiB log
//!   (index lookup, header walk, one `pread`); baseline `pread`: 1 MiB reads of the log's first
//!   segment file. All in the page cache. Throughput in bytes.
//! - `open/<log size>`: `PartitionLog::open` of a log of 16 MiB and 128 MiB with the recovery
//!   point at the end (the cost must not grow with the size), and of 16 MiB with recovery point 0
//!   (every batch's CRC checked).
//!
//! Run briefly: `cargo bench --bench storage -- --warm-up-time 1 --measurement-time 3`.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kgroups::storage::{LogConfig, PartitionLog};
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

const N: u64 = 100;

/// One batch of N records with base offset 0 (the base is rewritten in bytes 0..8, outside the
/// CRC).
fn batch() -> Vec<u8> {
    let records: Vec<Record> = (0..N)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(format!("key{:05}", i % 100).into()),
            value: Some(vec![b'x'; 100].into()),
            headers: Default::default(),
        })
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    out.to_vec()
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 20,
        retention_bytes: 256 << 20,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// Appends batches to `log` until it holds `bytes`.
fn fill(log: &PartitionLog, bytes: u64) {
    let mut b = batch();
    while log.size_bytes() < bytes {
        b[..8].copy_from_slice(&(log.end() as i64).to_be_bytes());
        log.append(&b, 0).unwrap();
    }
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    let template = batch();
    group.throughput(Throughput::Bytes(template.len() as u64));
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(&tmp.path().join("bench-0"), config(), 0).unwrap();
    group.bench_function("page-cache", |b| {
        b.iter_custom(|iters| {
            let mut batch = template.clone();
            let t = Instant::now();
            for i in 0..iters {
                batch[..8].copy_from_slice(&(log.end() as i64).to_be_bytes());
                log.append(black_box(&batch), 0).unwrap();
                if i % 4096 == 0 {
                    log.apply_retention(0).unwrap();
                }
            }
            t.elapsed()
        })
    });
    group.bench_function("pwrite", |b| {
        b.iter_custom(|iters| {
            let raw = tmp.path().join("raw");
            let mut file = std::fs::File::create(&raw).unwrap();
            let mut at = 0;
            let t = Instant::now();
            for _ in 0..iters {
                file.write_all_at(black_box(&template), at).unwrap();
                at += template.len() as u64;
                if at > config().segment_bytes {
                    // A new file, as a roll makes (and the old one deleted, as retention does).
                    std::fs::remove_file(&raw).unwrap();
                    file = std::fs::File::create(&raw).unwrap();
                    at = 0;
                }
            }
            t.elapsed()
        })
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Bytes(1 << 20));
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = PartitionLog::open(&tmp.path().join("bench-0"), config(), 0).unwrap();
    fill(&log, 128 << 20);
    let batch_len = batch().len() as u64;
    group.bench_function("sequential", |b| {
        let mut from = 0;
        let mut out = BytesMut::with_capacity(2 << 20);
        b.iter(|| {
            out.clear();
            log.read(from, 1 << 20, &mut out).unwrap();
            from += (out.len() as u64 / batch_len) * N;
            if from >= log.end() {
                from = 0;
            }
            black_box(&out);
        })
    });
    let first = std::fs::File::open(tmp.path().join("bench-0/00000000000000000000.log")).unwrap();
    group.bench_function("pread", |b| {
        let mut at = 0;
        let mut buf = vec![0; 1 << 20];
        b.iter(|| {
            first.read_exact_at(&mut buf, at).unwrap();
            at = (at + (1 << 20)) % (60 << 20);
            black_box(&buf);
        })
    });
    group.finish();
}

fn open(c: &mut Criterion) {
    let mut group = c.benchmark_group("open");
    group.sample_size(10);
    let tmp = tempfile::tempdir().unwrap();
    for (name, size) in [("16MiB", 16u64 << 20), ("128MiB", 128 << 20)] {
        let dir = tmp.path().join(format!("open{size}-0"));
        let rp = {
            let (log, _) = PartitionLog::open(&dir, config(), 0).unwrap();
            fill(&log, size);
            log.flush().unwrap()
        };
        let time = |dir: &Path, rp: u64, iters: u64| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(PartitionLog::open(dir, config(), rp).unwrap());
            }
            t.elapsed()
        };
        group.bench_function(format!("{name}/recovery-point-at-end"), |b| {
            b.iter_custom(|iters| time(&dir, rp, iters))
        });
        if size == 16 << 20 {
            group.bench_function(format!("{name}/recovery-point-0"), |b| {
                b.iter_custom(|iters| time(&dir, 0, iters))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = append, read, open
}
criterion_main!(benches);
