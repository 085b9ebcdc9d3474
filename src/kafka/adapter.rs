//! **TEMPORARY ADAPTER** — remove when the engine's batch storage (`engine: Kafka batches` on
//! main) is merged; the Produce, Fetch and ListOffsets handlers then call the engine's
//! `Batch::parse_all`, `Partition::{append_batch, fetch, start, end, offset_for_timestamp,
//! listen}` and `Broker::init_producer_id` instead of the functions here, which have those shapes.
//!
//! Over today's engine, which stores decoded (key, value) records, this adapter:
//! - decodes each produced RecordBatch v2 with the crate's `RecordBatchDecoder` (CRC-32C checked:
//!   a mismatch is [`BatchError::Corrupt`]) and appends its records one by one — not one
//!   reservation per batch; headers, timestamps and producer ids are dropped; no idempotent
//!   dedupe; compressed batches are refused as [`BatchError::Invalid`] (no codec features);
//! - serves Fetch by re-encoding stored records as one uncompressed batch (timestamp 0);
//! - answers by-timestamp ListOffsets with `None` (no timestamps are kept);
//! - wakes long-polling fetches through one process-wide `Notify`.

use crate::partition::{Key, KeyKind, Partition};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use tokio::sync::Notify;

/// A RecordBatch v2 as produced (adapter: decoded records).
#[derive(Debug, Clone)]
pub struct Batch {
    records: Vec<Record>,
}

/// Why a produced record set was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// A CRC-32C mismatch: CORRUPT_MESSAGE (2).
    Corrupt,
    /// Anything else that does not decode: INVALID_RECORD (87).
    Invalid(String),
}

impl Batch {
    /// Every batch in a Produce request's `records`.
    pub fn parse_all(mut records: Bytes) -> Result<Vec<Batch>, BatchError> {
        let mut out = Vec::new();
        while !records.is_empty() {
            let set = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                RecordBatchDecoder::decode(&mut records)
            }))
            .map_err(|_| BatchError::Invalid("the decoder panicked".into()))?
            .map_err(|e| {
                let e = format!("{e:#}");
                if e.contains("Cyclic redundancy") {
                    BatchError::Corrupt
                } else {
                    BatchError::Invalid(e)
                }
            })?;
            if set.compression != Compression::None || set.version != 2 {
                return Err(BatchError::Invalid(
                    "adapter: only uncompressed v2 batches".into(),
                ));
            }
            out.push(Batch {
                records: set.records,
            });
        }
        Ok(out)
    }
}

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: u64,
    /// -1: CreateTime (the adapter never uses LogAppendTime).
    pub log_append_time: i64,
}

/// Appends every record of `batch` to `p`; wakes long-polling fetches.
pub fn append_batch(p: &Partition, batch: Batch) -> Appended {
    let mut base = None;
    for r in &batch.records {
        let key = r.key.as_deref().map(|bytes| Key {
            kind: KeyKind::Str,
            bytes,
        });
        let offset = p.append(key, r.value.as_deref().unwrap_or_default());
        base.get_or_insert(offset);
    }
    notify().notify_waiters();
    Appended {
        base_offset: base.unwrap_or_else(|| p.end()),
        log_append_time: -1,
    }
}

/// The offset is past the high watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetOutOfRange;

/// The log start offset (today's engine never truncates).
pub fn start(_p: &Partition) -> u64 {
    0
}

/// Records from `from` as one batch, about `max_bytes` at most but at least one record.
pub fn fetch(
    p: &Partition,
    from: u64,
    max_bytes: usize,
    out: &mut BytesMut,
) -> Result<(), OffsetOutOfRange> {
    let end = p.end();
    if from > end {
        return Err(OffsetOutOfRange);
    }
    let mut records = Vec::new();
    let mut size = 0usize;
    let mut at = from;
    while at < end && (records.is_empty() || size < max_bytes) {
        let n = p.read(at, 64, |r| {
            if !records.is_empty() && size >= max_bytes {
                return;
            }
            size += r.value.len() + r.key.map_or(0, |k| k.bytes.len()) + 24;
            records.push(Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: r.offset as i64,
                sequence: -1,
                timestamp: 0,
                key: r.key.map(|k| Bytes::copy_from_slice(k.bytes)),
                value: Some(Bytes::copy_from_slice(r.value)),
                headers: Default::default(),
            });
        });
        if n == 0 {
            break;
        }
        at = records
            .last()
            .map_or(at + n as u64, |r| r.offset as u64 + 1);
        if size >= max_bytes {
            break;
        }
    }
    if records.is_empty() {
        return Ok(());
    }
    let opts = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(out, records.iter(), &opts).map_err(|_| OffsetOutOfRange)
}

/// The adapter keeps no timestamps.
pub fn offset_for_timestamp(_p: &Partition, _ts_ms: i64) -> Option<(u64, i64)> {
    None
}

fn notify() -> &'static Notify {
    static N: OnceLock<Notify> = OnceLock::new();
    N.get_or_init(Notify::new)
}

/// A future that resolves after a later append (create it before reading, then await it).
pub fn listen() -> tokio::sync::futures::Notified<'static> {
    notify().notified()
}

/// A new producer id, epoch 0.
pub fn init_producer_id() -> (i64, i16) {
    static NEXT: AtomicI64 = AtomicI64::new(1000);
    (NEXT.fetch_add(1, Ordering::Relaxed), 0)
}
