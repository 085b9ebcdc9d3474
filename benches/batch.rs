//! How to store what a Kafka producer sends: the two designs issue 11 asks to measure.
//!
//! A produced batch of N = 1,000 records of 100-byte values and 8-byte keys, uncompressed (and
//! lz4), goes through a partition and back out as a fetch response's records:
//!
//! - `produce/stored` and `fetch/stored` (the design kgroups uses): the batch is checked
//!   (CRC-32C, header) and appended as one entry; a fetch shares its bytes, behind a fresh
//!   16-byte head with the base offset and leader epoch rewritten.
//! - `produce/decoded` and `fetch/decoded` (the alternative): the batch is decoded into its
//!   records, which are appended one by one; a fetch encodes them into a new batch.
//!
//! Elements are records, so results read as records per second.
//! Run briefly: `cargo bench --bench batch -- --warm-up-time 1 --measurement-time 3`.

use bytes::{Buf, BytesMut};
use bytes_utils::SegmentedBuf;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kgroups::batch::Batch;
use kgroups::partition::{Key, KeyKind, Partition};
use std::hint::black_box;

const N: usize = 1_000;

fn produced(compression: Compression) -> bytes::Bytes {
    let records: Vec<Record> = (0..N)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
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
            compression,
        },
    )
    .unwrap();
    out.freeze()
}

fn produce(c: &mut Criterion) {
    let mut group = c.benchmark_group("produce");
    group.throughput(Throughput::Elements(N as u64));
    for (name, codec) in [("none", Compression::None), ("lz4", Compression::Lz4)] {
        let bytes = produced(codec);
        group.bench_function(BenchmarkId::new("stored", name), |b| {
            let p = Partition::new();
            b.iter(|| {
                for batch in Batch::parse_all(bytes.clone()).unwrap() {
                    black_box(p.append_batch(batch).unwrap());
                }
            })
        });
        group.bench_function(BenchmarkId::new("decoded", name), |b| {
            let p = Partition::new();
            b.iter(|| {
                let set = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
                for r in &set.records {
                    let key = r.key.as_deref().map(|bytes| Key {
                        kind: KeyKind::Bytes,
                        bytes,
                    });
                    black_box(p.append_timed(key, r.value.as_deref().unwrap(), r.timestamp));
                }
            })
        });
    }
    group.finish();
}

fn fetch(c: &mut Criterion) {
    let mut group = c.benchmark_group("fetch");
    group.throughput(Throughput::Elements(N as u64));
    let bytes = produced(Compression::None);
    // 64 batches' worth of records in each partition; each iteration fetches one batch's worth.
    let stored = Partition::new();
    let decoded = Partition::new();
    for _ in 0..64 {
        for batch in Batch::parse_all(bytes.clone()).unwrap() {
            stored.append_batch(batch).unwrap();
        }
        let set = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
        for r in &set.records {
            let key = r.key.as_deref().map(|bytes| Key {
                kind: KeyKind::Bytes,
                bytes,
            });
            decoded.append_timed(key, r.value.as_deref().unwrap(), r.timestamp);
        }
    }
    // A budget of one produced batch's bytes: the stored partition returns that batch; the
    // decoded one as many records as its encoding estimate fits. Each is measured per record it
    // returns.
    let budget = bytes.len();
    for (name, p) in [("stored", &stored), ("decoded", &decoded)] {
        let mut probe = SegmentedBuf::new();
        let n = p.fetch(0, budget, &mut probe).unwrap();
        let per: u64 = Batch::parse_all(probe.copy_to_bytes(n))
            .unwrap()
            .iter()
            .map(|b| u64::from(b.count()))
            .sum();
        group.throughput(Throughput::Elements(per));
        group.bench_function(name, |b| {
            let mut from = 0;
            b.iter(|| {
                let mut out = SegmentedBuf::new();
                black_box(p.fetch(from, budget, &mut out).unwrap());
                black_box(out);
                from += per;
                if from + per > 64 * N as u64 {
                    from = 0;
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, produce, fetch);
criterion_main!(benches);
