//! Tests of the partition log: helpers here, one file per concern.

mod offsets;
mod read;
mod recovery;
mod retention;
mod topics;

use super::{LogConfig, PartitionLog, Recovery};
use crate::batch::Batch;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rand::rngs::SmallRng;
use rand::Rng;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One RecordBatch v2 with a record per timestamp, values of `value_len` bytes, base offset
/// `base` (set with `Batch::served`, as the broker does).
pub(super) fn encode(base: u64, timestamps: &[i64], value_len: usize) -> Bytes {
    let records: Vec<Record> = timestamps
        .iter()
        .enumerate()
        .map(|(i, &timestamp)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // `offset - sequence` constant: the crate starts a new batch where it changes.
            sequence: i as i32 - 1,
            timestamp,
            key: Some(Bytes::from(format!("k{}", base + i as u64))),
            value: Some(Bytes::from(vec![b'v'; value_len])),
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
    let batch = Batch::parse_all(out.freeze()).unwrap().remove(0);
    {
        let (head, rest) = batch.served(base);
        [&head[..], &rest].concat().into()
    }
}

/// What the log should hold: every batch appended, in order.
#[derive(Debug, Default, Clone)]
pub(super) struct Model {
    /// (base offset, last offset, bytes).
    pub(super) batches: Vec<(u64, u64, Bytes)>,
    /// Each record's (offset, timestamp).
    pub(super) records: Vec<(u64, i64)>,
}

impl Model {
    pub(super) fn end(&self) -> u64 {
        self.batches.last().map_or(0, |b| b.1 + 1)
    }

    /// Appends to `log` and to the model a batch with one record per timestamp.
    pub(super) fn append(&mut self, log: &PartitionLog, timestamps: &[i64], value_len: usize) {
        let base = log.end();
        let bytes = encode(base, timestamps, value_len);
        assert_eq!(
            log.append(&bytes, 0).unwrap(),
            base + timestamps.len() as u64
        );
        self.push(base, timestamps, bytes);
    }

    pub(super) fn push(&mut self, base: u64, timestamps: &[i64], bytes: Bytes) {
        let last = base + timestamps.len() as u64 - 1;
        self.batches.push((base, last, bytes));
        for (i, &t) in timestamps.iter().enumerate() {
            self.records.push((base + i as u64, t));
        }
    }

    /// A batch of 1–4 records with timestamps from `*clock` on and values of 0–150 bytes.
    pub(super) fn append_random(
        &mut self,
        log: &PartitionLog,
        rng: &mut SmallRng,
        clock: &mut i64,
    ) {
        let n = rng.random_range(1..=4);
        let timestamps: Vec<i64> = (0..n)
            .map(|_| {
                *clock += rng.random_range(0..3);
                *clock
            })
            .collect();
        self.append(log, &timestamps, rng.random_range(0..150));
    }

    /// What a read from `from` with `max` bytes should give (Kafka's fetch rule).
    pub(super) fn expected(&self, from: u64, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for (_, last, b) in &self.batches {
            if *last < from {
                continue;
            }
            if !out.is_empty() && out.len() + b.len() > max {
                break;
            }
            out.extend_from_slice(b);
        }
        out
    }

    /// The first record at or after `start` with a timestamp ≥ `t`.
    pub(super) fn first_at(&self, t: i64, start: u64) -> Option<(u64, i64)> {
        self.records
            .iter()
            .find(|&&(o, ts)| o >= start && ts >= t)
            .copied()
    }

    /// The model cut to its first `n` batches.
    pub(super) fn prefix(&self, n: usize) -> Model {
        let batches = self.batches[..n].to_vec();
        let end = batches.last().map_or(0, |b| b.1 + 1);
        Model {
            records: self.records.iter().filter(|r| r.0 < end).copied().collect(),
            batches,
        }
    }
}

/// A small configuration that rolls often: 2 KiB segments, an index entry every 128 bytes.
pub(super) fn small() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 128,
        ..LogConfig::default()
    }
}

/// A fresh partition directory `orders-3` in a temporary directory.
pub(super) fn partition_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("orders-3");
    (tmp, dir)
}

pub(super) fn open(dir: &Path, config: LogConfig, recovery_point: u64) -> (PartitionLog, Recovery) {
    PartitionLog::open(dir, config, recovery_point).unwrap()
}

/// Checks every read the model can answer: each offset from the start to the end, several
/// budgets; the end reads nothing; past the end and below the start are out of range.
pub(super) fn check_reads(log: &PartitionLog, model: &Model) {
    let (start, end) = (log.start(), log.end());
    assert_eq!(end, model.end());
    for from in start..end {
        for max in [0, 1, 100, 700, 3000, 1 << 20] {
            let mut out = BytesMut::from(&b"keep"[..]);
            let n = log.read(from, max, &mut out).unwrap();
            assert_eq!(n, out.len() - 4);
            assert_eq!(&out[..4], b"keep");
            assert!(
                out[4..] == model.expected(from, max)[..],
                "read from {from} with {max} bytes"
            );
        }
    }
    let mut out = BytesMut::new();
    assert_eq!(log.read(end, 100, &mut out).unwrap(), 0);
    let err = log.read(end + 1, 100, &mut out).unwrap_err();
    assert_eq!(err.code(), 1, "{err}");
    if start > 0 {
        assert_eq!(log.read(start - 1, 100, &mut out).unwrap_err().code(), 1);
    }
    assert!(out.is_empty());
    let all: Vec<(u64, Bytes)> = log.batches_from(start).map(|b| b.unwrap()).collect();
    let want: Vec<(u64, Bytes)> = model
        .batches
        .iter()
        .filter(|b| b.1 >= start)
        .map(|b| (b.0, b.2.clone()))
        .collect();
    assert_eq!(all, want);
}

/// Runs `f` with a tracing subscriber that records what is logged on this thread.
pub(super) fn capture<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf(Arc::default());
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (out, text)
}

/// The path of a segment file.
pub(super) fn file(dir: &Path, base: u64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}"))
}
