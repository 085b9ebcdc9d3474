//! ConsumerGroupDescribe (key 69, v0–1): consumer-protocol groups as the engine's coordinator
//! describes them ([`crate::group::Coordinator::describe`]): group epoch, assignment epoch (the
//! target is computed with each group epoch, so they are equal), the server assignor, and per
//! member its member epoch, subscription, current assignment (owned minus pending revocation) and
//! target assignment (that plus pending assignment), by topic id and name.
//!
//! State (Kafka's `ConsumerGroupState` names): `Empty` without members, `Reconciling` while some
//! member has partitions pending revocation or assignment, else `Stable`. A classic group with
//! members gets GROUP_ID_NOT_FOUND ("Group G is not a consumer group."), an unknown one
//! GROUP_ID_NOT_FOUND ("Group G not found."), as in Kafka.

use super::consumer_group_heartbeat::assignor_name;
use super::sb;
use crate::kafka::consumer::ConsumerGroups;
use crate::kafka::context::Context;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId, TopicName,
};
use kafka_protocol::ResponseError as E;
use std::collections::BTreeMap;

fn assignment(ctx: &Context, parts: &[(String, u32)]) -> Assignment {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, p) in parts {
        by_topic
            .entry(topic)
            .or_default()
            .push(i32::try_from(*p).unwrap_or(i32::MAX));
    }
    Assignment::default().with_topic_partitions(
        by_topic
            .into_iter()
            .filter_map(|(topic, partitions)| {
                let t = ctx.broker().topics().get(topic)?;
                Some(
                    TopicPartitions::default()
                        .with_topic_id(uuid::Uuid::from_bytes(t.id()))
                        .with_topic_name(TopicName(sb(topic)))
                        .with_partitions(partitions),
                )
            })
            .collect(),
    )
}

fn failed(id: &GroupId, code: E, message: String) -> DescribedGroup {
    DescribedGroup::default()
        .with_group_id(id.clone())
        .with_error_code(code.code())
        .with_error_message(Some(sb(&message)))
}

fn describe(ctx: &Context, id: &GroupId) -> DescribedGroup {
    let group: &str = id;
    let now = ctx.now();
    let groups = ctx.broker().groups();
    if ctx.classic.describe(group).is_some() && !ctx.consumer.active(groups, group, now) {
        return failed(
            id,
            E::GroupIdNotFound,
            format!("Group {group} is not a consumer group."),
        );
    }
    let Ok(d) = groups.describe(group, now) else {
        return failed(id, E::GroupIdNotFound, format!("Group {group} not found."));
    };
    let records = ctx.consumer.live(groups, group, now);
    let state = if d.members.is_empty() {
        "Empty"
    } else if groups.reconciling(group) {
        "Reconciling"
    } else {
        "Stable"
    };
    let epoch = i32::try_from(d.group_epoch).unwrap_or(i32::MAX);
    let members = d
        .members
        .iter()
        .map(|m| {
            let r = ConsumerGroups::find(&records, &m.id);
            let current: Vec<(String, u32)> = m
                .view
                .partitions
                .iter()
                .filter(|p| m.view.revoking.binary_search(p).is_err())
                .cloned()
                .collect();
            let mut target = current.clone();
            target.extend(m.view.pending.iter().cloned());
            target.sort_unstable();
            Member::default()
                .with_member_id(sb(&m.id))
                .with_instance_id(r.and_then(|r| r.instance_id.as_deref()).map(sb))
                .with_rack_id(r.and_then(|r| r.rack_id.as_deref()).map(sb))
                .with_member_epoch(r.map_or(
                    i32::try_from(m.view.member_epoch).unwrap_or(i32::MAX),
                    |r| r.epoch,
                ))
                .with_client_id(sb(r.map_or("", |r| r.client_id.as_str())))
                .with_client_host(sb(r.map_or("", |r| r.client_host.as_str())))
                .with_subscribed_topic_names(m.topics.iter().map(|t| TopicName(sb(t))).collect())
                .with_subscribed_topic_regex(r.and_then(|r| r.regex.as_ref()).map(|(s, _)| sb(s)))
                .with_assignment(assignment(ctx, &current))
                .with_target_assignment(assignment(ctx, &target))
                .with_member_type(1)
        })
        .collect();
    DescribedGroup::default()
        .with_group_id(id.clone())
        .with_group_state(sb(state))
        .with_group_epoch(epoch)
        .with_assignment_epoch(epoch)
        .with_assignor_name(sb(assignor_name(d.assignor)))
        .with_members(members)
}

/// Every group asked for.
pub fn handle(ctx: &Context, req: ConsumerGroupDescribeRequest) -> ConsumerGroupDescribeResponse {
    ConsumerGroupDescribeResponse::default()
        .with_groups(req.group_ids.iter().map(|id| describe(ctx, id)).collect())
}

/// `code` for every group.
pub fn error(req: &ConsumerGroupDescribeRequest, code: i16) -> ConsumerGroupDescribeResponse {
    ConsumerGroupDescribeResponse::default().with_groups(
        req.group_ids
            .iter()
            .map(|id| {
                DescribedGroup::default()
                    .with_group_id(id.clone())
                    .with_error_code(code)
            })
            .collect(),
    )
}
