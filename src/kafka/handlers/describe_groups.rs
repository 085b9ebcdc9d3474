//! DescribeGroups (key 15, v0–5).
//!
//! A classic group is described from [`crate::kafka::classic`]: state, protocol type, chosen
//! protocol, and each member's id, instance id, client id, host, subscription metadata and
//! assignment bytes. A group the engine knows but the classic coordinator does not (one that only
//! has committed offsets, or whose members are KIP-848 or Maelstrom consumers) is "Empty", or
//! "Stable" ("Reconciling" while a KIP-848 group reconciles, as Kafka 4 names it) with its engine
//! members and their assignments encoded as `ConsumerProtocolAssignment` v0; KIP-848 members show
//! the client id, host and instance id of their heartbeats and the server assignor's name
//! (`uniform`, `range`). An unknown group is "Dead" with no error, as Kafka answers below v6.

use super::sb;
use crate::kafka::consumer::ConsumerGroups;
use crate::kafka::context::Context;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DescribeGroupsRequest, DescribeGroupsResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::Encodable;
use std::collections::BTreeMap;

/// `ConsumerProtocolAssignment` v0 bytes (i16 version, then the body) for `partitions`.
pub fn encode_assignment(partitions: &[(String, u32)]) -> Bytes {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t).or_default().push(*p as i32);
    }
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        by_topic
            .into_iter()
            .map(|(t, ps)| {
                TopicPartition::default()
                    .with_topic(TopicName(sb(t)))
                    .with_partitions(ps)
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    match assignment.encode(&mut buf, 0) {
        Ok(()) => buf.freeze(),
        Err(_) => Bytes::new(),
    }
}

fn describe(ctx: &Context, group: &GroupId) -> DescribedGroup {
    let out = DescribedGroup::default().with_group_id(group.clone());
    if let Some(d) = ctx.classic.describe(group) {
        let members = d
            .members
            .into_iter()
            .map(|m| {
                DescribedGroupMember::default()
                    .with_member_id(sb(&m.member_id))
                    .with_group_instance_id(m.instance_id.as_deref().map(sb))
                    .with_client_id(sb(&m.client_id))
                    .with_client_host(sb(&m.client_host))
                    .with_member_metadata(m.metadata)
                    .with_member_assignment(m.assignment)
            })
            .collect();
        return out
            .with_group_state(sb(d.state.name()))
            .with_protocol_type(sb(&d.protocol_type))
            .with_protocol_data(sb(&d.protocol))
            .with_members(members);
    }
    let now = ctx.now();
    let groups = ctx.broker().groups();
    match ctx.broker().describe(group, now) {
        Ok(d) if d.members.is_empty() => out.with_group_state(sb("Empty")),
        Ok(d) => {
            // KIP-848 members carry the client id, host and instance id of their heartbeats;
            // Maelstrom consumers have none (their member id stands for the client id).
            let records = ctx.consumer.live(groups, group, now);
            let kip848 = !records.is_empty();
            let state = if kip848 && groups.reconciling(group) {
                "Reconciling"
            } else {
                "Stable"
            };
            let assignor = if kip848 {
                super::consumer_group_heartbeat::assignor_name(d.assignor)
            } else {
                d.assignor.name()
            };
            out.with_group_state(sb(state))
                .with_protocol_type(sb("consumer"))
                .with_protocol_data(sb(assignor))
                .with_members(
                    d.members
                        .iter()
                        .map(|m| {
                            let r = ConsumerGroups::find(&records, &m.id);
                            DescribedGroupMember::default()
                                .with_member_id(sb(&m.id))
                                .with_group_instance_id(
                                    r.and_then(|r| r.instance_id.as_deref()).map(sb),
                                )
                                .with_client_id(sb(r.map_or(m.id.as_str(), |r| &r.client_id)))
                                .with_client_host(sb(r.map_or("", |r| &r.client_host)))
                                .with_member_assignment(encode_assignment(&m.view.partitions))
                        })
                        .collect(),
                )
        }
        Err(_) => out.with_group_state(sb("Dead")),
    }
}

/// Each group's description.
pub fn handle(ctx: &Context, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    DescribeGroupsResponse::default()
        .with_groups(req.groups.iter().map(|g| describe(ctx, g)).collect())
}

/// `code` for every group.
pub fn error(req: &DescribeGroupsRequest, code: i16) -> DescribeGroupsResponse {
    DescribeGroupsResponse::default().with_groups(
        req.groups
            .iter()
            .map(|g| {
                DescribedGroup::default()
                    .with_group_id(g.clone())
                    .with_error_code(code)
            })
            .collect(),
    )
}
