//! The protocol calls the tool makes, each returning plain data or Kafka's error name.
//! API versions are ones kgroups' broker serves (`src/kafka/versions.rs`) and Kafka 3.x/4.x do.

use super::conn::{check, Conn};
use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ConsumerProtocolAssignment, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, ListGroupsRequest, ListGroupsResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use std::collections::BTreeMap;

/// Latest offset (ListOffsets timestamp -1).
pub const LATEST: i64 = -1;
/// Earliest offset (ListOffsets timestamp -2).
pub const EARLIEST: i64 = -2;

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A member of a classic group with the partitions its assignment names.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub host: String,
    pub client_id: String,
    pub partitions: Vec<(String, i32)>,
}

/// DescribeGroups' answer for one group.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<Member>,
}

/// Group ids the broker knows (ListGroups v4).
pub fn list_groups(c: &mut Conn) -> Result<Vec<String>, String> {
    let r: ListGroupsResponse = c.call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())?;
    check(r.error_code, "ListGroups")?;
    let mut ids: Vec<String> = r.groups.iter().map(|g| g.group_id.to_string()).collect();
    ids.sort();
    Ok(ids)
}

/// DescribeGroups v5 of `group`; member assignments decoded as `ConsumerProtocolAssignment`.
pub fn describe_group(c: &mut Conn, group: &str) -> Result<GroupInfo, String> {
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(sb(group))]);
    let r: DescribeGroupsResponse = c.call(ApiKey::DescribeGroups, 5, &req)?;
    let g = r
        .groups
        .into_iter()
        .next()
        .ok_or("DescribeGroups: empty answer")?;
    if g.error_code == 69 {
        // GROUP_ID_NOT_FOUND: what older brokers report as the state Dead.
        return Ok(GroupInfo {
            state: "Dead".to_string(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        });
    }
    check(g.error_code, &format!("DescribeGroups {group}"))?;
    let members = g
        .members
        .iter()
        .map(|m| Member {
            id: m.member_id.to_string(),
            host: m.client_host.to_string(),
            client_id: m.client_id.to_string(),
            partitions: if g.protocol_type.as_str() == "consumer" {
                decode_assignment(&m.member_assignment)
            } else {
                Vec::new()
            },
        })
        .collect();
    Ok(GroupInfo {
        state: g.group_state.to_string(),
        protocol_type: g.protocol_type.to_string(),
        protocol: g.protocol_data.to_string(),
        members,
    })
}

/// The (topic, partition) pairs of a `ConsumerProtocolAssignment` (i16 version, then the body);
/// empty if the bytes do not decode.
pub fn decode_assignment(bytes: &Bytes) -> Vec<(String, i32)> {
    let mut b = bytes.clone();
    if b.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([b[0], b[1]]);
    bytes::Buf::advance(&mut b, 2);
    match ConsumerProtocolAssignment::decode(&mut b, version.clamp(0, 3)) {
        Ok(a) => a
            .assigned_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.to_string(), p)))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Committed offsets of `group` (OffsetFetch v7, all topics): (topic, partition) → offset
/// (-1 = none).
pub fn fetch_offsets(c: &mut Conn, group: &str) -> Result<BTreeMap<(String, i32), i64>, String> {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_topics(None);
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 7, &req)?;
    check(r.error_code, &format!("OffsetFetch {group}"))?;
    let mut out = BTreeMap::new();
    for t in &r.topics {
        for p in &t.partitions {
            check(
                p.error_code,
                &format!("OffsetFetch {}-{}", t.name.as_str(), p.partition_index),
            )?;
            out.insert((t.name.to_string(), p.partition_index), p.committed_offset);
        }
    }
    Ok(out)
}

/// Partition count of each of `topics` (Metadata v12, no auto-creation).
pub fn partitions(c: &mut Conn, topics: &[String]) -> Result<BTreeMap<String, i32>, String> {
    let req = MetadataRequest::default()
        .with_topics(Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(sb(t)))))
                .collect(),
        ))
        .with_allow_auto_topic_creation(false);
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &req)?;
    let mut out = BTreeMap::new();
    for t in &r.topics {
        let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
        check(t.error_code, &format!("Metadata {name}"))?;
        out.insert(name, t.partitions.len() as i32);
    }
    Ok(out)
}

/// ListOffsets v7 for `parts` at `timestamp` (LATEST, EARLIEST or ms): (topic, partition) →
/// offset (-1 when no record is at or after the timestamp).
pub fn list_offsets(
    c: &mut Conn,
    parts: &[(String, i32)],
    timestamp: i64,
) -> Result<BTreeMap<(String, i32), i64>, String> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in parts {
        by_topic.entry(t).or_default().push(*p);
    }
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(0)
        .with_topics(
            by_topic
                .iter()
                .map(|(t, ps)| {
                    ListOffsetsTopic::default()
                        .with_name(TopicName(sb(t)))
                        .with_partitions(
                            ps.iter()
                                .map(|&p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(p)
                                        .with_current_leader_epoch(-1)
                                        .with_timestamp(timestamp)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &req)?;
    let mut out = BTreeMap::new();
    for t in &r.topics {
        for p in &t.partitions {
            check(
                p.error_code,
                &format!("ListOffsets {}-{}", t.name.as_str(), p.partition_index),
            )?;
            out.insert((t.name.to_string(), p.partition_index), p.offset);
        }
    }
    Ok(out)
}

/// Commits `offsets` for `group` as an admin (OffsetCommit v8, generation -1, no member).
pub fn commit_offsets(
    c: &mut Conn,
    group: &str,
    offsets: &BTreeMap<(String, i32), i64>,
) -> Result<(), String> {
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for ((t, p), o) in offsets {
        by_topic.entry(t).or_default().push((*p, *o));
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(sb(""))
        .with_topics(
            by_topic
                .iter()
                .map(|(t, ps)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(sb(t)))
                        .with_partitions(
                            ps.iter()
                                .map(|&(p, o)| {
                                    OffsetCommitRequestPartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(o)
                                        .with_committed_leader_epoch(-1)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 8, &req)?;
    for t in &r.topics {
        for p in &t.partitions {
            check(
                p.error_code,
                &format!("OffsetCommit {}-{}", t.name.as_str(), p.partition_index),
            )?;
        }
    }
    Ok(())
}

/// Deletes `group` (DeleteGroups v2).
pub fn delete_group(c: &mut Conn, group: &str) -> Result<(), String> {
    let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb(group))]);
    let r: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 2, &req)?;
    for g in &r.results {
        check(
            g.error_code,
            &format!("DeleteGroups {}", g.group_id.as_str()),
        )?;
    }
    Ok(())
}

/// The coordinator of `group` as (node id, "host:port") (FindCoordinator v4, key type 0).
pub fn find_coordinator(c: &mut Conn, group: &str) -> Result<(i32, String), String> {
    use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
    let req = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![sb(group)]);
    let r: FindCoordinatorResponse = c.call(ApiKey::FindCoordinator, 4, &req)?;
    let co = r
        .coordinators
        .into_iter()
        .next()
        .ok_or("FindCoordinator: empty answer")?;
    check(co.error_code, &format!("FindCoordinator {group}"))?;
    Ok((co.node_id.0, format!("{}:{}", co.host.as_str(), co.port)))
}
