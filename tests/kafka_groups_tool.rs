//! `kgroups groups …` against a `kgroups broker`: a group's offsets committed over the raw
//! protocol are listed, described (committed, log end, lag), reset (dry run and execute, clamped
//! to the log) and deleted; broker errors come out with Kafka's error name and exit code 1.
#![cfg(not(loom))]

mod kafka_support;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, ProduceRequest, ProduceResponse, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafka_support::wire::call;
use kafka_support::{serial, Broker};
use serde_json::Value;
use std::net::TcpStream;
use std::process::Command;

const TOPIC: &str = "tool-topic";
const GROUP: &str = "tool-group";

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn batch(n: usize) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
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

/// Creates the topic, produces 6 records to partition 0 and 4 to partition 1, and commits
/// offsets 4 and 3 for the group (generation -1, no member: an admin commit).
fn setup(addr: &str) {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(sb(TOPIC))))
        ]))
        .with_allow_auto_topic_creation(true);
    let md: MetadataResponse = call(&mut s, ApiKey::Metadata, 12, 1, &req);
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(md.topics[0].partitions.len(), 2);
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(sb(TOPIC)))
            .with_partition_data(vec![
                PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(6))),
                PartitionProduceData::default()
                    .with_index(1)
                    .with_records(Some(batch(4))),
            ])]);
    let pr: ProduceResponse = call(&mut s, ApiKey::Produce, 9, 2, &req);
    for p in &pr.responses[0].partition_responses {
        assert_eq!(p.error_code, 0, "produce to {}", p.index);
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(sb(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(sb(TOPIC)))
            .with_partitions(vec![
                OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(4),
                OffsetCommitRequestPartition::default()
                    .with_partition_index(1)
                    .with_committed_offset(3),
            ])]);
    let cr: OffsetCommitResponse = call(&mut s, ApiKey::OffsetCommit, 8, 3, &req);
    for p in &cr.topics[0].partitions {
        assert_eq!(p.error_code, 0, "commit {}", p.partition_index);
    }
}

fn subscription() -> Bytes {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&0i16.to_be_bytes());
    ConsumerProtocolSubscription::default()
        .with_topics(vec![sb(TOPIC)])
        .encode(&mut buf, 0)
        .unwrap();
    buf.freeze()
}

/// Joins the group over the raw protocol (JoinGroup v5, twice: MEMBER_ID_REQUIRED first).
fn join(s: &mut TcpStream) -> (StrBytes, i32) {
    let mut member_id = sb("");
    for corr in 10..12 {
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(sb(GROUP)))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(member_id.clone())
            .with_protocol_type(sb("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(sb("range"))
                .with_metadata(subscription())]);
        let r: JoinGroupResponse = call(s, ApiKey::JoinGroup, 5, corr, &req);
        member_id = r.member_id.clone();
        if r.error_code == 0 {
            return (member_id, r.generation_id);
        }
        assert_eq!(r.error_code, 79, "MEMBER_ID_REQUIRED first");
    }
    panic!("JoinGroup did not succeed");
}

/// Syncs as the leader, assigning both partitions to itself (SyncGroup v5).
fn sync(s: &mut TcpStream, member_id: &StrBytes, generation: i32) {
    let mut assignment = BytesMut::new();
    assignment.extend_from_slice(&0i16.to_be_bytes());
    ConsumerProtocolAssignment::default()
        .with_assigned_partitions(vec![TopicPartition::default()
            .with_topic(TopicName(sb(TOPIC)))
            .with_partitions(vec![0, 1])])
        .encode(&mut assignment, 0)
        .unwrap();
    let req = SyncGroupRequest::default()
        .with_group_id(GroupId(sb(GROUP)))
        .with_generation_id(generation)
        .with_member_id(member_id.clone())
        .with_protocol_type(Some(sb("consumer")))
        .with_protocol_name(Some(sb("range")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(member_id.clone())
            .with_assignment(assignment.freeze())]);
    let r: SyncGroupResponse = call(s, ApiKey::SyncGroup, 5, 15, &req);
    assert_eq!(r.error_code, 0);
}

/// Leaves the group (LeaveGroup v4).
fn leave(s: &mut TcpStream, member_id: StrBytes) {
    let req = LeaveGroupRequest::default()
        .with_group_id(GroupId(sb(GROUP)))
        .with_members(vec![MemberIdentity::default().with_member_id(member_id)]);
    let r: LeaveGroupResponse = call(s, ApiKey::LeaveGroup, 4, 20, &req);
    assert_eq!(r.error_code, 0);
}

/// Runs `kgroups groups --bootstrap-server addr args…`; (exit code, stdout, stderr).
fn tool(addr: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kgroups"))
        .args(["groups", "--bootstrap-server", addr])
        .args(args)
        .output()
        .expect("run kgroups groups");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(addr: &str, args: &[&str]) -> String {
    let (code, out, err) = tool(addr, args);
    assert_eq!(code, 0, "{args:?} failed\nstdout: {out}\nstderr: {err}");
    out
}

/// (partition, current, log end, lag) from `--describe --output json`, by partition.
fn described(addr: &str) -> Vec<(i64, Value, Value, Value)> {
    let out = ok(addr, &["--describe", "--group", GROUP, "--output", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let mut rows: Vec<_> = v
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| {
            assert_eq!(r["group"], GROUP);
            assert_eq!(r["topic"], TOPIC);
            (
                r["partition"].as_i64().unwrap(),
                r["current_offset"].clone(),
                r["log_end_offset"].clone(),
                r["lag"].clone(),
            )
        })
        .collect();
    rows.sort_by_key(|r| r.0);
    rows
}

fn row(p: i64, cur: i64, end: i64, lag: i64) -> (i64, Value, Value, Value) {
    (p, cur.into(), end.into(), lag.into())
}

#[test]
fn the_groups_tool_lists_describes_resets_and_deletes() {
    let _one = serial();
    let b = Broker::start(&["--partitions", "2"]);
    let a = b.addr.as_str();
    setup(a);

    let list = ok(a, &["--list"]);
    assert!(list.lines().any(|l| l == GROUP), "--list: {list}");
    let list: Value = serde_json::from_str(&ok(a, &["--list", "--output", "json"])).unwrap();
    assert!(list.as_array().unwrap().contains(&Value::from(GROUP)));

    assert_eq!(described(a), vec![row(0, 4, 6, 2), row(1, 3, 4, 1)]);
    let table = ok(a, &["--describe", "--group", GROUP]);
    let header = table.lines().find(|l| l.starts_with("GROUP")).unwrap();
    let cols: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ]
    );
    let p0: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with(GROUP) && l.split_whitespace().nth(2) == Some("0"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(p0, [GROUP, TOPIC, "0", "4", "6", "2", "-", "-", "-"]);

    let state: Value = serde_json::from_str(&ok(
        a,
        &[
            "--describe",
            "--group",
            GROUP,
            "--state",
            "--output",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(state["state"], "Empty");
    assert_eq!(state["members"], 0);

    // A dry run prints the new offsets and changes nothing; --to-offset clamps to the log end.
    let dry = ok(
        a,
        &[
            "--reset-offsets",
            "--group",
            GROUP,
            "--topic",
            TOPIC,
            "--to-earliest",
            "--output",
            "json",
        ],
    );
    let dry: Value = serde_json::from_str(&dry).unwrap();
    let news: Vec<i64> = dry
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["new_offset"].as_i64().unwrap())
        .collect();
    assert_eq!(news, [0, 0]);
    let clamp = ok(
        a,
        &[
            "--reset-offsets",
            "--group",
            GROUP,
            "--topic",
            TOPIC,
            "--to-offset",
            "100",
            "--dry-run",
        ],
    );
    assert!(
        clamp
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [GROUP, TOPIC, "0", "6"]),
        "{clamp}"
    );
    assert!(
        clamp
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [GROUP, TOPIC, "1", "4"]),
        "{clamp}"
    );
    assert_eq!(described(a), vec![row(0, 4, 6, 2), row(1, 3, 4, 1)]);

    // --to-datetime: the first record at or after the time (records are stamped 1.7e12 + i ms).
    let by_time = ok(
        a,
        &[
            "--reset-offsets",
            "--group",
            GROUP,
            "--topic",
            TOPIC,
            "--to-datetime",
            "2023-11-14T22:13:20.003",
        ],
    );
    for p in ["0", "1"] {
        assert!(
            by_time
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [GROUP, TOPIC, p, "3"]),
            "{by_time}"
        );
    }

    // --shift-by moves from the committed offsets; --execute commits.
    ok(
        a,
        &[
            "--reset-offsets",
            "--group",
            GROUP,
            "--topic",
            TOPIC,
            "--shift-by",
            "-1",
            "--execute",
        ],
    );
    assert_eq!(described(a), vec![row(0, 3, 6, 3), row(1, 2, 4, 2)]);
    let exec = ok(
        a,
        &[
            "--reset-offsets",
            "--group",
            GROUP,
            "--topic",
            TOPIC,
            "--to-earliest",
            "--execute",
        ],
    );
    assert!(exec.starts_with("GROUP"), "{exec}");
    assert_eq!(described(a), vec![row(0, 0, 6, 6), row(1, 0, 4, 4)]);

    // A live member: --members lists it, --state is not Empty, and a reset is refused.
    let mut member = TcpStream::connect(a).unwrap();
    let (member_id, generation) = join(&mut member);
    sync(&mut member, &member_id, generation);
    let out = ok(a, &["--describe", "--group", GROUP, "--output", "json"]);
    let owned: Value = serde_json::from_str(&out).unwrap();
    for r in owned.as_array().unwrap() {
        assert_eq!(r["consumer_id"], member_id.as_str(), "{out}");
        assert_eq!(r["client_id"], "wire-test", "{out}");
        assert_ne!(r["host"], Value::Null, "{out}");
    }
    let members: Value = serde_json::from_str(&ok(
        a,
        &[
            "--describe",
            "--group",
            GROUP,
            "--members",
            "--output",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(members[0]["partitions"], 2, "{members}");
    let members: Value = serde_json::from_str(&ok(
        a,
        &[
            "--describe",
            "--group",
            GROUP,
            "--members",
            "--output",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");
    assert_eq!(members[0]["client_id"], "wire-test");
    let state: Value = serde_json::from_str(&ok(
        a,
        &[
            "--describe",
            "--group",
            GROUP,
            "--state",
            "--output",
            "json",
        ],
    ))
    .unwrap();
    assert_ne!(state["state"], "Empty");
    assert_eq!(state["members"], 1);
    let (code, out, err) = tool(
        a,
        &[
            "--reset-offsets",
            "--group",
            GROUP,
            "--topic",
            TOPIC,
            "--to-latest",
            "--execute",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("inactive"), "{err}");
    assert_eq!(described(a).len(), 2);
    assert!(
        described(a).iter().all(|r| r.1 == 0),
        "a refused reset moved nothing"
    );
    leave(&mut member, member_id);

    // Errors: Kafka's name on stderr, exit code 1.
    let (code, _, err) = tool(
        a,
        &[
            "--reset-offsets",
            "--group",
            GROUP,
            "--topic",
            "no-such-topic",
            "--to-latest",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");

    let del = ok(a, &["--delete", "--group", GROUP]);
    assert!(del.contains("successful"), "{del}");
    let list = ok(a, &["--list"]);
    assert!(!list.lines().any(|l| l == GROUP), "still listed: {list}");
    let (code, _, err) = tool(a, &["--delete", "--group", GROUP]);
    assert_eq!(code, 1);
    assert!(err.contains("GROUP_ID_NOT_FOUND"), "{err}");
    // A group that is gone is reported as Kafka's tool reports it, for offsets and members.
    for extra in [&[][..], &["--members"][..]] {
        let args = [&["--describe", "--group", GROUP][..], extra].concat();
        let (code, out, err) = tool(a, &args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(
            err.contains(&format!("Consumer group '{GROUP}' does not exist.")),
            "{args:?}: {err}"
        );
    }
}
