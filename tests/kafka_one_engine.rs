//! One engine, two fronts in one process: a Maelstrom `Node` and the Kafka listener over the same
//! engine. Records a Maelstrom client sends are fetched by a Kafka client (key bytes and the
//! message's JSON text), and committed offsets are shared both ways.
#![cfg(not(loom))]

mod kafka_support;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, GroupId, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use kafka_support::wire::call;
use kgroups::broker::Config;
use kgroups::kafka::{server, Context, FrontConfig};
use kgroups::maelstrom::Node;
use serde_json::Value;
use std::net::TcpStream;
use std::sync::Arc;

fn maelstrom(node: &Node, body: &str) -> Value {
    let mut out = Vec::new();
    node.handle(
        format!(r#"{{"src":"c1","dest":"n0","body":{body}}}"#).as_bytes(),
        &mut out,
    );
    let line = String::from_utf8(out).unwrap();
    let reply: Value = serde_json::from_str(line.lines().next().expect("a reply")).unwrap();
    reply["body"].clone()
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

#[test]
fn maelstrom_and_kafka_clients_share_records_and_committed_offsets() {
    let node = Arc::new(Node::new(Config {
        default_partitions: 2,
        ..Config::default()
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let config = FrontConfig {
        advertised_port: i32::from(addr.port()),
        ..FrontConfig::default()
    };
    let ctx = Arc::new(Context::with_engine(node.clone(), config));
    rt.spawn(server::run(ctx, listener));

    let init = maelstrom(
        &node,
        r#"{"type":"init","msg_id":1,"node_id":"n0","node_ids":["n0"]}"#,
    );
    assert_eq!(init["type"], "init_ok");
    let sent = maelstrom(
        &node,
        r#"{"type":"send","msg_id":2,"key":"k2","msg":{"a":1},"topic":"shared"}"#,
    );
    assert_eq!(sent["type"], "send_ok", "{sent}");

    // A Kafka fetch of both partitions finds the record: the key's bytes, the message's JSON.
    let mut s = TcpStream::connect(addr).unwrap();
    let fetch = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name("shared"))
            .with_partitions(
                (0..2)
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )]);
    let resp: FetchResponse = call(&mut s, ApiKey::Fetch, 12, 1, &fetch);
    let mut found = Vec::new();
    for p in &resp.responses[0].partitions {
        let mut bytes = p.records.clone().unwrap_or_default();
        for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
            for r in set.records {
                found.push((
                    p.partition_index,
                    r.offset,
                    r.key.unwrap(),
                    r.value.unwrap(),
                ));
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    let (partition, offset, key, value) = found.pop().unwrap();
    assert_eq!(
        (offset, &key[..], &value[..]),
        (0, &b"k2"[..], &br#"{"a":1}"#[..])
    );

    // A Kafka commit (no group management) is what Maelstrom's list_committed_offsets reads.
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(name("shared"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(1)])]);
    let resp: OffsetCommitResponse = call(&mut s, ApiKey::OffsetCommit, 8, 2, &commit);
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    let listed = maelstrom(
        &node,
        r#"{"type":"list_committed_offsets","msg_id":3,"group":"g","topic":"shared"}"#,
    );
    assert_eq!(listed["offsets"][partition.to_string()], 1, "{listed}");

    // And a Maelstrom admin commit is what a Kafka OffsetFetch reads.
    let body = format!(
        r#"{{"type":"commit","msg_id":4,"group":"g2","topic":"shared","partition":{partition},"offset":1}}"#
    );
    assert_eq!(maelstrom(&node, &body)["type"], "commit_ok");
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g2")))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(name("shared"))
            .with_partition_indexes(vec![partition])]));
    let resp: OffsetFetchResponse = call(&mut s, ApiKey::OffsetFetch, 7, 3, &fetch);
    assert_eq!(resp.topics[0].partitions[0].committed_offset, 1);
}
