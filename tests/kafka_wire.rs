//! The listener's handling of the wire itself, with requests encoded by the `kafka-protocol`
//! crate's client side over a plain socket: ApiVersions and its KIP-511 fallback, unsupported
//! versions, and bad input (oversized frames, unknown API keys, undecodable bodies, absurd array
//! lengths) closing only the offending connection.
#![cfg(not(loom))]

mod kafka_support;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProduceRequest, ProduceResponse};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_support::wire::{call, frame, read_frame, request};
use kafka_support::{serial, Broker};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn connect(b: &Broker) -> TcpStream {
    let s = TcpStream::connect(&b.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

/// A round trip of ApiVersions v3 on a new connection: the broker still serves.
fn still_serves(b: &Broker) {
    let mut s = connect(b);
    s.write_all(&request(
        ApiKey::ApiVersions,
        3,
        1,
        &ApiVersionsRequest::default(),
    ))
    .unwrap();
    let mut r = read_frame(&mut s).expect("a healthy connection is answered");
    assert_eq!(r.get_i32(), 1, "correlation id");
    let resp = ApiVersionsResponse::decode(&mut r, 3).unwrap();
    assert_eq!(resp.error_code, 0);
}

#[test]
fn api_versions_lists_the_table_with_a_v0_header() {
    let _one = serial();
    let b = Broker::start(&[]);
    let mut s = connect(&b);
    s.write_all(&request(
        ApiKey::ApiVersions,
        3,
        7,
        &ApiVersionsRequest::default(),
    ))
    .unwrap();
    let mut r = read_frame(&mut s).unwrap();
    // Header v0: the correlation id alone, no tagged fields (KIP-511).
    assert_eq!(r.get_i32(), 7);
    let resp = ApiVersionsResponse::decode(&mut r, 3).unwrap();
    assert!(r.is_empty(), "nothing after the body");
    let fetch = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Fetch as i16)
        .unwrap();
    assert_eq!((fetch.min_version, fetch.max_version), (4, 12));
    let metadata = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Metadata as i16)
        .unwrap();
    assert_eq!((metadata.min_version, metadata.max_version), (0, 12));
    assert!(resp.supported_features.is_empty() && resp.finalized_features.is_empty());
}

#[test]
fn api_versions_above_our_range_gets_the_kip_511_fallback() {
    let _one = serial();
    let b = Broker::start(&[]);
    let mut s = connect(&b);
    // A v9 request: header v2 (flexible); the body is never read.
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(9)
        .with_correlation_id(3)
        .encode(&mut buf, 2)
        .unwrap();
    buf.put_slice(&[0, 0, 0]);
    s.write_all(&frame(&buf)).unwrap();
    let mut r = read_frame(&mut s).unwrap();
    assert_eq!(r.get_i32(), 3);
    let resp = ApiVersionsResponse::decode(&mut r, 0).unwrap();
    assert_eq!(resp.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(resp
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version == 4));
    // The connection stays usable at a version we speak.
    s.write_all(&request(
        ApiKey::ApiVersions,
        0,
        4,
        &ApiVersionsRequest::default(),
    ))
    .unwrap();
    let mut r = read_frame(&mut s).unwrap();
    assert_eq!(r.get_i32(), 4);
    assert_eq!(
        ApiVersionsResponse::decode(&mut r, 0).unwrap().error_code,
        0
    );
}

#[test]
fn an_unsupported_version_gets_unsupported_version() {
    let _one = serial();
    let b = Broker::start(&[]);
    let mut s = connect(&b);
    // Metadata v13 decodes in the crate but is above our 12.
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("t"))))]));
    s.write_all(&request(ApiKey::Metadata, 13, 9, &req))
        .unwrap();
    let mut r = read_frame(&mut s).unwrap();
    assert_eq!(r.get_i32(), 9);
    r.advance(1); // header v1: empty tagged fields
    let resp = MetadataResponse::decode(&mut r, 13).unwrap();
    assert_eq!(resp.error_code, 35);
    assert_eq!(resp.topics[0].error_code, 35);
    // Same connection, supported version: served.
    s.write_all(&request(ApiKey::Metadata, 12, 10, &req))
        .unwrap();
    let mut r = read_frame(&mut s).unwrap();
    assert_eq!(r.get_i32(), 10);
    r.advance(1);
    let resp = MetadataResponse::decode(&mut r, 12).unwrap();
    assert_eq!(resp.topics[0].error_code, 0, "auto-created");
    assert_eq!(resp.topics[0].partitions.len(), 8);
}

#[test]
fn bad_input_closes_only_its_connection() {
    let _one = serial();
    let mut b = Broker::start(&["--socket-request-max-bytes", "1000"]);
    let mut bystander = connect(&b);

    // A frame over the size limit.
    let mut s = connect(&b);
    s.write_all(&1001i32.to_be_bytes()).unwrap();
    assert!(closed(&mut s), "oversized frame");

    // A negative size.
    let mut s = connect(&b);
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(closed(&mut s), "negative size");

    // An unknown API key.
    let mut s = connect(&b);
    s.write_all(&frame(&[0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0xff, 0xff]))
        .unwrap();
    assert!(closed(&mut s), "unknown api key");

    // A known key with a body that does not decode.
    let mut s = connect(&b);
    let mut body = vec![0, 11, 0, 5, 0, 0, 0, 1, 0xff, 0xff];
    body.extend_from_slice(&[0x00, 0x05, b'g']);
    s.write_all(&frame(&body)).unwrap();
    assert!(closed(&mut s), "truncated JoinGroup");

    // A JoinGroup v5 whose protocols array claims 2^31 - 1 entries: must not allocate for them.
    let mut s = connect(&b);
    let mut body = BytesMut::new();
    body.put_slice(&[0, 11, 0, 5, 0, 0, 0, 2, 0xff, 0xff]);
    body.put_i16(1);
    body.put_u8(b'g');
    body.put_i32(10_000);
    body.put_i32(10_000);
    body.put_i16(0); // member id ""
    body.put_i16(-1); // instance id null
    body.put_i16(8);
    body.put_slice(b"consumer");
    body.put_i32(i32::MAX);
    s.write_all(&frame(&body)).unwrap();
    assert!(closed(&mut s), "absurd array length");

    // An API this broker does not serve (SaslHandshake).
    let mut s = connect(&b);
    s.write_all(&frame(&[
        0, 17, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0, 5, b'P', b'L', b'A', b'I', b'N',
    ]))
    .unwrap();
    assert!(closed(&mut s), "unserved api");

    assert!(b.alive(), "the broker survived\n{}", b.log());
    // The bystander and new connections are unaffected.
    bystander
        .write_all(&request(
            ApiKey::ApiVersions,
            3,
            1,
            &ApiVersionsRequest::default(),
        ))
        .unwrap();
    assert!(read_frame(&mut bystander).is_some());
    still_serves(&b);
    assert!(
        b.logged("closing the connection", Duration::from_secs(5)),
        "bad input is logged\n{}",
        b.log()
    );
}

#[test]
fn max_connections_closes_the_extra_connection() {
    let _one = serial();
    let b = Broker::start(&["--max-connections", "2"]);
    let mut one = connect(&b);
    let mut two = connect(&b);
    for s in [&mut one, &mut two] {
        s.write_all(&request(
            ApiKey::ApiVersions,
            3,
            1,
            &ApiVersionsRequest::default(),
        ))
        .unwrap();
        assert!(read_frame(s).is_some());
    }
    let mut three = connect(&b);
    assert!(closed(&mut three), "a third connection is closed");
    drop(one);
    std::thread::sleep(Duration::from_millis(200));
    still_serves(&b);
}

/// A RecordBatch v2 of `n` records from producer `pid` (epoch 0) starting at `sequence`.
fn batch(n: usize, pid: i64, sequence: i32) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: if pid < 0 { -1 } else { 0 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if pid < 0 { -1 } else { sequence + i as i32 },
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
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

fn produce_req(topic: &str, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

fn fetch_all(s: &mut TcpStream, topic: &str, corr: i32) -> (i64, Vec<Record>) {
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let resp: FetchResponse = call(s, ApiKey::Fetch, 12, corr, &req);
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.last_stable_offset, p.high_watermark);
    let mut bytes = p.records.clone().unwrap_or_default();
    let mut records = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
        records.extend(set.records);
    }
    (p.high_watermark, records)
}

fn create_topic(s: &mut TcpStream, topic: &str) {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_string())),
        ))]))
        .with_allow_auto_topic_creation(true);
    let resp: MetadataResponse = call(s, ApiKey::Metadata, 12, 1, &req);
    assert_eq!(resp.topics[0].error_code, 0);
}

#[test]
fn a_bad_crc_gets_corrupt_message_and_appends_nothing() {
    let _one = serial();
    let b = Broker::start(&["--partitions", "1"]);
    let mut s = connect(&b);
    create_topic(&mut s, "crc");
    let mut bad = BytesMut::from(&batch(3, -1, 0)[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff; // inside the records: covered by the CRC-32C
    let resp: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        9,
        2,
        &produce_req("crc", -1, bad.freeze()),
    );
    assert_eq!(
        resp.responses[0].partition_responses[0].error_code, 2,
        "CORRUPT_MESSAGE"
    );
    assert_eq!(fetch_all(&mut s, "crc", 3).0, 0, "nothing appended");
    let resp: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        9,
        4,
        &produce_req("crc", -1, batch(3, -1, 0)),
    );
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    let (hw, records) = fetch_all(&mut s, "crc", 5);
    assert_eq!(hw, 3);
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(records[2].timestamp, 1_700_000_000_002, "timestamps kept");
}

#[test]
fn an_idempotent_retry_is_not_appended_twice_and_gaps_are_refused() {
    let _one = serial();
    let b = Broker::start(&["--partitions", "1"]);
    let mut s = connect(&b);
    create_topic(&mut s, "idem");
    let init: kafka_protocol::messages::InitProducerIdResponse = call(
        &mut s,
        ApiKey::InitProducerId,
        4,
        2,
        &kafka_protocol::messages::InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60000)
            .with_producer_id(kafka_protocol::messages::ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(init.error_code, 0);
    let pid = init.producer_id.0;
    assert!(pid >= 0);
    let first: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        9,
        3,
        &produce_req("idem", -1, batch(4, pid, 0)),
    );
    let retry: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        9,
        4,
        &produce_req("idem", -1, batch(4, pid, 0)),
    );
    let (a, r) = (
        &first.responses[0].partition_responses[0],
        &retry.responses[0].partition_responses[0],
    );
    assert_eq!((a.error_code, r.error_code), (0, 0));
    assert_eq!(
        a.base_offset, r.base_offset,
        "the retry is answered with the original offset"
    );
    let gap: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        9,
        5,
        &produce_req("idem", -1, batch(1, pid, 9)),
    );
    assert_eq!(
        gap.responses[0].partition_responses[0].error_code, 45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    let (hw, records) = fetch_all(&mut s, "idem", 6);
    assert_eq!((hw, records.len()), (4, 4), "one copy");
}

#[test]
fn acks_zero_gets_no_response() {
    let _one = serial();
    let b = Broker::start(&["--partitions", "1"]);
    let mut s = connect(&b);
    create_topic(&mut s, "fire");
    s.write_all(&request(
        ApiKey::Produce,
        9,
        2,
        &produce_req("fire", 0, batch(2, -1, 0)),
    ))
    .unwrap();
    // The next answer on the connection is the fetch's (correlation 3), which sees the records.
    let (hw, _) = fetch_all(&mut s, "fire", 3);
    assert_eq!(hw, 2);
}

#[test]
fn a_long_poll_returns_as_soon_as_records_arrive() {
    let _one = serial();
    let b = Broker::start(&["--partitions", "1"]);
    let mut s = connect(&b);
    create_topic(&mut s, "lp");
    let addr = b.addr.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut w = TcpStream::connect(addr).unwrap();
        let _: ProduceResponse = call(
            &mut w,
            ApiKey::Produce,
            9,
            1,
            &produce_req("lp", -1, batch(1, -1, 0)),
        );
    });
    let req = FetchRequest::default()
        .with_max_wait_ms(10_000)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("lp")))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let start = std::time::Instant::now();
    let resp: FetchResponse = call(&mut s, ApiKey::Fetch, 12, 2, &req);
    let took = start.elapsed();
    writer.join().unwrap();
    assert!(resp.responses[0].partitions[0]
        .records
        .as_ref()
        .is_some_and(|r| !r.is_empty()));
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "woke after {took:?}"
    );
    // Beyond the high watermark: OFFSET_OUT_OF_RANGE, at once.
    let req = req.with_topics(vec![FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_static_str("lp")))
        .with_partitions(vec![FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(5)
            .with_partition_max_bytes(1 << 20)])]);
    let resp: FetchResponse = call(&mut s, ApiKey::Fetch, 12, 3, &req);
    assert_eq!(resp.responses[0].partitions[0].error_code, 1);
}

fn delete_records(s: &mut TcpStream, topic: &str, offset: i64, corr: i32) -> (i16, i64) {
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsTopic,
    };
    use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
    let req = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(offset)])]);
    let resp: DeleteRecordsResponse = call(s, ApiKey::DeleteRecords, 2, corr, &req);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

/// The log start offset of partition 0 of `topic`, by ListOffsets earliest (-2).
fn earliest(s: &mut TcpStream, topic: &str, corr: i32) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
    let req = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-2)])]);
    let resp: ListOffsetsResponse = call(s, ApiKey::ListOffsets, 7, corr, &req);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

#[test]
fn delete_records_moves_the_log_start_offset() {
    let _one = serial();
    let b = Broker::start(&["--partitions", "1"]);
    let mut s = connect(&b);
    create_topic(&mut s, "dr");
    let resp: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        9,
        2,
        &produce_req("dr", -1, batch(10, -1, 0)),
    );
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(delete_records(&mut s, "dr", 4, 3), (0, 4));
    assert_eq!(earliest(&mut s, "dr", 4), 4);
    // Below the start: nothing changes; above the high watermark: OFFSET_OUT_OF_RANGE.
    assert_eq!(delete_records(&mut s, "dr", 2, 5), (0, 4));
    assert_eq!(delete_records(&mut s, "dr", 11, 6).0, 1);
    assert_eq!(delete_records(&mut s, "dr", -5, 7).0, 1);
    assert_eq!(
        delete_records(&mut s, "nope", 1, 8).0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    // A fetch below the new start is out of range; from it, the rest is there.
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("dr")))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(1)
                .with_partition_max_bytes(1 << 20)])]);
    let resp: FetchResponse = call(&mut s, ApiKey::Fetch, 12, 9, &req);
    let p = &resp.responses[0].partitions[0];
    assert_eq!((p.error_code, p.log_start_offset), (1, 4));
    // -1 is the high watermark: everything goes.
    assert_eq!(delete_records(&mut s, "dr", -1, 10), (0, 10));
    assert_eq!(earliest(&mut s, "dr", 11), 10);
    still_serves(&b);
}
