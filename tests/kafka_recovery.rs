//! `kgroups broker --data-dir` started on a damaged data directory: a torn tail of the active
//! segment cut at random byte offsets, a corrupt offset index, a missing time index and unknown
//! files. Each start must succeed, log what it repaired, serve exactly the whole batches before
//! the cut, and go on appending from there. Records are produced and fetched over the raw
//! protocol (the `kafka-protocol` crate's client side), so no client library is needed.
#![cfg(not(loom))]

mod kafka_support;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafka_support::wire::call;
use kafka_support::{serial, Broker};
use rand::{Rng, SeedableRng};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

const TOPIC: &str = "torn";

fn start(dir: &Path) -> (Broker, TcpStream) {
    let b = Broker::start(&["--data-dir", dir.to_str().unwrap(), "--partitions", "1"]);
    let s = TcpStream::connect(&b.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (b, s)
}

/// One batch of `n` records whose values are `v<first + i>`.
fn batch(first: u64, n: usize) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // `offset - sequence` constant: one batch (base sequence -1, no producer).
            sequence: i as i32 - 1,
            timestamp: 1_700_000_000_000 + (first + i as u64) as i64,
            key: None,
            value: Some(Bytes::from(format!("v{}", first + i as u64))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let opts = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &opts).unwrap();
    buf.freeze()
}

/// Produces one batch of `n` records; returns its base offset.
fn produce(s: &mut TcpStream, first: u64, n: usize, corr: i32) -> i64 {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(first, n)))])]);
    let resp: ProduceResponse = call(s, ApiKey::Produce, 9, corr, &req);
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "produce");
    p.base_offset
}

/// (high watermark, every record's (offset, value)) from offset 0.
fn fetch_all(s: &mut TcpStream, corr: i32) -> (i64, Vec<(i64, String)>) {
    let mut out = Vec::new();
    let mut next = 0i64;
    loop {
        let req = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(next)
                    .with_partition_max_bytes(1 << 20)])]);
        let resp: FetchResponse = call(s, ApiKey::Fetch, 12, corr, &req);
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch at {next}");
        let mut bytes = p.records.clone().unwrap_or_default();
        if bytes.is_empty() {
            return (p.high_watermark, out);
        }
        for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
            for r in set.records {
                let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                out.push((r.offset, v));
                next = r.offset + 1;
            }
        }
    }
}

fn create_topic(s: &mut TcpStream) {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))]))
        .with_allow_auto_topic_creation(true);
    let resp: MetadataResponse = call(s, ApiKey::Metadata, 12, 1, &req);
    assert_eq!(resp.topics[0].error_code, 0);
}

/// The (start, end) byte ranges of the batches in a segment file, from their length fields.
fn batch_ranges(log: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at + 12 <= log.len() {
        let len = i32::from_be_bytes(log[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push((at, at + 12 + len));
        at += 12 + len;
    }
    out
}

#[test]
fn a_torn_tail_keeps_exactly_the_whole_batches_before_the_cut() {
    let _one = serial();
    let seed: u64 = rand::rng().random();
    eprintln!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let part = data.join(format!("{TOPIC}-0"));
    let log_path = part.join("00000000000000000000.log");
    let (mut b, mut s) = start(&data);
    create_topic(&mut s);
    let mut expected: Vec<(i64, String)> = Vec::new();
    let mut next = 0u64;
    for cycle in 0..6 {
        // Append a few batches of 1–7 records.
        for k in 0..rng.random_range(2..6) {
            let n = rng.random_range(1..8);
            let base = produce(&mut s, next, n, 10 + k);
            assert_eq!(
                base as u64, next,
                "cycle {cycle}: offsets continue after recovery"
            );
            expected.extend((0..n as u64).map(|i| ((next + i) as i64, format!("v{}", next + i))));
            next += n as u64;
        }
        // A crash: no flush, no checkpoint (the records are in the page cache).
        b.stop("KILL");
        let bytes = std::fs::read(&log_path).unwrap();
        let ranges = batch_ranges(&bytes);
        assert_eq!(
            ranges.last().unwrap().1,
            bytes.len(),
            "whole batches on disk"
        );
        // Cut somewhere in the last three batches.
        let from = ranges[ranges.len().saturating_sub(3)].0 + 1;
        let cut = rng.random_range(from..bytes.len());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&log_path)
            .unwrap()
            .set_len(cut as u64)
            .unwrap();
        let kept_records: usize = {
            let kept = ranges.iter().filter(|r| r.1 <= cut).count();
            let mut all = bytes.clone();
            all.truncate(ranges.get(kept.max(1) - 1).map_or(0, |r| r.1));
            if kept == 0 {
                0
            } else {
                let mut buf = Bytes::from(all);
                RecordBatchDecoder::decode_all(&mut buf)
                    .unwrap()
                    .iter()
                    .map(|set| set.records.len())
                    .sum()
            }
        };
        expected.truncate(kept_records);
        next = kept_records as u64;
        // More damage on some cycles: a corrupt offset index, a missing time index, strays.
        match cycle % 3 {
            0 => std::fs::write(part.join("00000000000000000000.index"), [0xAB; 37]).unwrap(),
            1 => {
                let _ = std::fs::remove_file(part.join("00000000000000000000.timeindex"));
            }
            _ => {
                std::fs::write(part.join("stray.tmp"), b"not a segment").unwrap();
                std::fs::write(data.join("unknown-file"), b"?").unwrap();
            }
        }
        let (nb, ns) = start(&data);
        b = nb;
        s = ns;
        assert!(b.alive(), "cycle {cycle}: the broker started\n{}", b.log());
        let repairs: Vec<String> = b
            .log()
            .lines()
            .filter(|l| l.contains("WARN"))
            .map(|l| l.chars().take(200).collect())
            .collect();
        eprintln!(
            "cycle {cycle}: cut at byte {cut} of {}: {repairs:#?}",
            bytes.len()
        );
        let (hw, got) = fetch_all(&mut s, 100 + cycle);
        assert_eq!(
            (hw as usize, &got),
            (expected.len(), &expected),
            "cycle {cycle} (seed {seed}, cut at byte {cut} of {}): exactly the whole batches \
             before the cut\n{}",
            bytes.len(),
            b.log()
        );
        let log = b.log();
        match cycle % 3 {
            1 => assert!(log.contains("time index missing"), "cycle {cycle}\n{log}"),
            2 => assert!(
                log.contains("not a partition directory")
                    && log.contains("unknown file in a partition directory"),
                "cycle {cycle}: strays are logged and ignored\n{log}"
            ),
            _ => {}
        }
        if cut < bytes.len() && ranges.iter().all(|r| r.1 != cut) {
            assert!(
                b.logged("torn", Duration::from_secs(2))
                    || b.logged("truncat", Duration::from_secs(2))
                    || b.logged("cut", Duration::from_secs(2)),
                "cycle {cycle}: the repair is logged\n{}",
                b.log()
            );
        }
    }
}
