//! Kafka's RecordBatch v2: the unit in which the engine stores what a Kafka producer sends.
//!
//! A batch is stored as the producer sent it, compressed or not, so that a fetch serves it without
//! re-encoding; only its base offset and partition leader epoch are rewritten on the way out.
//! The CRC-32C covers the bytes from the attributes on, so rewriting those two fields keeps it
//! valid (Kafka's "Message Format" documentation, `kafka.apache.org/documentation/#recordbatch`).
//!
//! Layout of the 61-byte header (big-endian), from the same documentation:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | baseOffset |
//! | 8..12 | batchLength (bytes after this field) |
//! | 12..16 | partitionLeaderEpoch |
//! | 16 | magic (2) |
//! | 17..21 | crc (CRC-32C of bytes 21..) |
//! | 21..23 | attributes (bits 0–2 compression, 3 timestamp type, 4 transactional, 5 control) |
//! | 23..27 | lastOffsetDelta |
//! | 27..35 | baseTimestamp |
//! | 35..43 | maxTimestamp |
//! | 43..51 | producerId |
//! | 51..53 | producerEpoch |
//! | 53..57 | baseSequence |
//! | 57..61 | records count |
//!
//! Checking the CRC and decoding records is the `kafka-protocol` crate's work
//! (`RecordBatchDecoder`); this module reads the fixed header fields it needs and nothing else.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use std::fmt;

/// The size of a RecordBatch v2 header, in bytes.
pub const HEADER: usize = 61;

/// Why a produced batch was refused. Each maps to a Kafka error code in the Kafka front.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchError {
    /// The CRC-32C does not match the bytes: Kafka's CORRUPT_MESSAGE (2).
    Corrupt(String),
    /// The bytes are not a well-formed RecordBatch v2 (truncated, bad lengths or counts, another
    /// magic): Kafka's CORRUPT_MESSAGE (2) as well, or INVALID_RECORD (87) in newer brokers.
    Invalid(String),
    /// A transactional or control batch: kgroups has no transactions.
    Unsupported(String),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Corrupt(why) => write!(f, "corrupt record batch: {why}"),
            BatchError::Invalid(why) => write!(f, "invalid record batch: {why}"),
            BatchError::Unsupported(why) => write!(f, "unsupported record batch: {why}"),
        }
    }
}

impl std::error::Error for BatchError {}

/// The idempotent producer's fields of a batch (KIP-98): who sent it and its sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// The producer id that `InitProducerId` gave the producer (≥ 0).
    pub id: i64,
    /// The producer epoch.
    pub epoch: i16,
    /// The sequence number of the batch's first record; the last is `base_sequence + count - 1`,
    /// wrapping past `i32::MAX` to 0.
    pub base_sequence: i32,
}

/// One validated RecordBatch v2, exactly as its producer sent it.
#[derive(Clone, PartialEq, Eq)]
pub struct Batch {
    bytes: Bytes,
    count: u32,
    max_timestamp: i64,
    producer: Option<ProducerBatch>,
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("bytes", &self.bytes.len())
            .field("count", &self.count)
            .field("max_timestamp", &self.max_timestamp)
            .field("producer", &self.producer)
            .finish()
    }
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Batch {
    /// Splits a Produce request's `records` into batches and validates each: length fields within
    /// the bytes, magic 2, the CRC-32C, a record count of at least 1 that matches
    /// `lastOffsetDelta + 1`, and no transactional or control batch.
    ///
    /// # Errors
    ///
    /// The first batch that fails, as [`BatchError`]; then nothing of `records` may be appended.
    pub fn parse_all(records: Bytes) -> Result<Vec<Batch>, BatchError> {
        let mut rest = records;
        let mut batches = Vec::new();
        while !rest.is_empty() {
            if rest.len() < HEADER {
                return Err(BatchError::Invalid(format!(
                    "{} bytes left, less than a batch header ({HEADER})",
                    rest.len()
                )));
            }
            let length = i32_at(&rest, 8);
            let size = usize::try_from(length)
                .ok()
                .and_then(|l| l.checked_add(12))
                .filter(|&s| s >= HEADER)
                .ok_or_else(|| BatchError::Invalid(format!("batch length {length}")))?;
            if size > rest.len() {
                return Err(BatchError::Invalid(format!(
                    "batch length {length} runs past the {} bytes sent",
                    rest.len()
                )));
            }
            batches.push(Batch::parse(rest.split_to(size))?);
        }
        if batches.is_empty() {
            return Err(BatchError::Invalid("no record batch".into()));
        }
        Ok(batches)
    }

    /// Validates one batch whose length field matches `bytes`.
    fn parse(bytes: Bytes) -> Result<Batch, BatchError> {
        let magic = bytes[16] as i8;
        if magic != 2 {
            return Err(BatchError::Invalid(format!(
                "magic {magic}: only RecordBatch v2 (magic 2) is supported"
            )));
        }
        let info = RecordBatchDecoder::decode_batch_info(&mut bytes.clone())
            .map_err(|e| {
                let text = e.to_string();
                if text.contains("Cyclic redundancy check") {
                    BatchError::Corrupt(text)
                } else {
                    BatchError::Invalid(text)
                }
            })?
            .pop()
            .ok_or_else(|| BatchError::Invalid("no batch header".into()))?;
        if info.transactional || info.control {
            return Err(BatchError::Unsupported(
                "transactional and control batches: kgroups has no transactions".into(),
            ));
        }
        let count = info.record_count;
        let last_delta = i32_at(&bytes, 23);
        if count < 1 || last_delta != count - 1 {
            return Err(BatchError::Invalid(format!(
                "{count} records with last offset delta {last_delta}"
            )));
        }
        let producer = (info.producer_id >= 0).then_some(ProducerBatch {
            id: info.producer_id,
            epoch: info.producer_epoch,
            base_sequence: info.base_sequence,
        });
        Ok(Batch {
            max_timestamp: i64_at(&bytes, 35),
            count: count as u32,
            producer,
            bytes,
        })
    }

    /// How many records (and offsets) the batch holds.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The batch's bytes as the producer sent them (base offset as sent, usually 0).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The batch's size in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The largest record timestamp in the batch (milliseconds since the Unix epoch, as the
    /// producer set it; -1 if none).
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// The idempotent producer's fields, for a batch whose producer id is set.
    pub fn producer(&self) -> Option<ProducerBatch> {
        self.producer
    }

    /// The compression codec (attributes bits 0–2): 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> i16 {
        i16_at(&self.bytes, 21) & 0x7
    }

    /// The batch as a fetch serves it, in two pieces: its first 16 bytes rewritten (base offset
    /// `base`, the batch length, partition leader epoch -1: kgroups has no leader epochs, so
    /// clients skip their validation), then the rest as stored, shared rather than copied.
    pub fn served(&self, base: u64) -> ([u8; 16], Bytes) {
        let mut head = [0; 16];
        head[..8].copy_from_slice(&(base as i64).to_be_bytes());
        head[8..12].copy_from_slice(&self.bytes[8..12]);
        head[12..].copy_from_slice(&(-1i32).to_be_bytes());
        (head, self.bytes.slice(16..))
    }

    /// The batch's records, decompressed and decoded, with offsets counted from `base`.
    ///
    /// # Errors
    ///
    /// [`BatchError::Invalid`] if the records do not decode (the header and CRC were checked
    /// when the batch was stored, the records themselves were not).
    pub fn records(&self, base: u64) -> Result<Vec<Record>, BatchError> {
        let set = RecordBatchDecoder::decode(&mut self.bytes.clone())
            .map_err(|e| BatchError::Invalid(e.to_string()))?;
        let first = i64_at(&self.bytes, 0);
        Ok(set
            .records
            .into_iter()
            .map(|mut r| {
                r.offset = r.offset - first + base as i64;
                r
            })
            .collect())
    }

    /// Encodes `records` (offset, timestamp in ms, key, value) as one uncompressed RecordBatch v2
    /// with no producer id, appended to `out`. Offsets must be increasing.
    pub fn encode<'a>(
        records: impl IntoIterator<Item = (u64, i64, Option<&'a [u8]>, Option<&'a [u8]>)>,
        out: &mut BytesMut,
    ) {
        let mut first = None;
        let records: Vec<Record> = records
            .into_iter()
            .map(|(offset, timestamp, key, value)| {
                let first = *first.get_or_insert(offset);
                Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: offset as i64,
                    // The crate starts a new batch where `offset - sequence` changes: keep it
                    // constant, so that the base sequence comes out as -1 (no producer).
                    sequence: (offset - first) as i32 - 1,
                    timestamp,
                    key: key.map(Bytes::copy_from_slice),
                    value: value.map(Bytes::copy_from_slice),
                    headers: Default::default(),
                }
            })
            .collect();
        if records.is_empty() {
            return;
        }
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(out, records.iter(), &options)
            .expect("encoding uncompressed records into memory cannot fail");
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn encoded(n: u64, compression: Compression, producer: Option<(i64, i16, i32)>) -> Bytes {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: producer.map_or(-1, |p| p.0),
                producer_epoch: producer.map_or(-1, |p| p.1),
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // `offset - sequence` constant: the crate starts a new batch where it changes.
                sequence: producer.map_or(i as i32 - 1, |p| p.2 + i as i32),
                timestamp: 1_000 + i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("v{i}"))),
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

    #[test]
    fn parses_every_codec_and_decodes_its_records() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batches = Batch::parse_all(encoded(5, codec, None)).unwrap();
            assert_eq!(batches.len(), 1);
            let b = &batches[0];
            assert_eq!(
                (b.count(), b.max_timestamp(), b.producer()),
                (5, 1_004, None)
            );
            assert_eq!(b.compression(), codec as i16);
            let records = b.records(100).unwrap();
            let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, [100, 101, 102, 103, 104], "{codec:?}");
            assert_eq!(records[3].value.as_deref(), Some(&b"v3"[..]));
        }
    }

    #[test]
    fn several_batches_split_and_producer_fields_read() {
        let mut both = BytesMut::new();
        both.put_slice(&encoded(3, Compression::None, Some((7, 2, 10))));
        both.put_slice(&encoded(2, Compression::Lz4, None));
        let batches = Batch::parse_all(both.freeze()).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(
            batches[0].producer(),
            Some(ProducerBatch {
                id: 7,
                epoch: 2,
                base_sequence: 10
            })
        );
        assert_eq!(batches[1].count(), 2);
    }

    #[test]
    fn a_flipped_bit_is_corrupt_and_a_cut_batch_is_invalid() {
        let good = encoded(4, Compression::None, None);
        for at in [21, 30, 61, good.len() - 1] {
            let mut bad = good.to_vec();
            bad[at] ^= 0x10;
            assert!(
                matches!(Batch::parse_all(bad.into()), Err(BatchError::Corrupt(_))),
                "flip at {at}"
            );
        }
        for cut in [0, 1, 12, 60, good.len() - 1] {
            let r = Batch::parse_all(good.slice(..cut));
            assert!(
                matches!(r, Err(BatchError::Invalid(_))),
                "cut at {cut}: {r:?}"
            );
        }
        let mut v1 = good.to_vec();
        v1[16] = 1;
        assert!(matches!(
            Batch::parse_all(v1.into()),
            Err(BatchError::Invalid(_))
        ));
        let mut huge = good.to_vec();
        huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            Batch::parse_all(huge.into()),
            Err(BatchError::Invalid(_))
        ));
        let mut negative = good.to_vec();
        negative[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(
            Batch::parse_all(negative.into()),
            Err(BatchError::Invalid(_))
        ));
    }

    #[test]
    fn served_sets_base_offset_and_epoch_and_keeps_the_crc() {
        let b = &Batch::parse_all(encoded(3, Compression::Zstd, None)).unwrap()[0];
        let (head, rest) = b.served(42);
        let again = &Batch::parse_all([&head[..], &rest].concat().into()).unwrap()[0];
        assert_eq!(i64_at(again.bytes(), 0), 42);
        assert_eq!(i32_at(again.bytes(), 12), -1);
        let offsets: Vec<i64> = again
            .records(42)
            .unwrap()
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, [42, 43, 44]);
    }

    #[test]
    fn encode_makes_one_batch_without_a_producer() {
        let mut out = BytesMut::new();
        let recs = [
            (10u64, 5i64, Some(&b"a"[..]), Some(&b"1"[..])),
            (11, 6, None, Some(&b"2"[..])),
            (12, 4, Some(&b"c"[..]), None),
        ];
        Batch::encode(recs, &mut out);
        let batches = Batch::parse_all(out.freeze()).unwrap();
        assert_eq!(batches.len(), 1, "one batch, not one per record");
        let b = &batches[0];
        assert_eq!((b.count(), b.max_timestamp(), b.producer()), (3, 6, None));
        assert_eq!(i32_at(b.bytes(), 53), -1, "no base sequence");
        let records = b.records(10).unwrap();
        assert_eq!(records[1].key, None);
        assert_eq!(records[2].value, None);
        assert_eq!(records[2].offset, 12);
    }
}
