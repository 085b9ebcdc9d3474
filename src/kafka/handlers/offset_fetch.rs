//! OffsetFetch (key 9, v1–9): the engine's committed offsets (the next offset to consume) of one
//! group (v1–7) or of several (v8+, `groups`); -1 where nothing is committed, as Kafka. A null
//! topic list (v2+) asks for every committed offset of the group, with the leader epoch and
//! metadata of the Kafka commit that set it ([`crate::kafka::commit_extras`]; -1 and "" when
//! another front or an admin reset set it).
//!
//! v9 carries a KIP-848 member id and epoch: for a consumer-protocol group they are checked as
//! OffsetCommit checks them (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH, FENCED_MEMBER_EPOCH, in the
//! group's error code). A null member id or epoch -1 reads without a check, as Kafka's admin
//! client does.

use super::sb;
use crate::kafka::consumer::EpochCheck;
use crate::kafka::context::Context;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::ResponseError as E;
use std::collections::BTreeMap;

/// One partition's answer.
struct Part {
    index: i32,
    /// The committed offset, or -1.
    offset: i64,
    code: i16,
    leader_epoch: i32,
    metadata: String,
}

impl Part {
    fn new(ctx: &Context, group: &str, topic: &str, index: i32, offset: i64) -> Part {
        let (leader_epoch, metadata) = if offset >= 0 {
            ctx.commit_extras.get(group, topic, index, offset)
        } else {
            (-1, String::new())
        };
        Part {
            index,
            offset,
            code: 0,
            leader_epoch,
            metadata,
        }
    }

    fn error(index: i32, code: i16) -> Part {
        Part {
            index,
            offset: -1,
            code,
            leader_epoch: -1,
            metadata: String::new(),
        }
    }
}

/// (topic, its partitions' answers).
type Offsets = Vec<(TopicName, Vec<Part>)>;

/// The committed offsets of `group` for `topics` ((name, partitions)), or all of them.
fn offsets(ctx: &Context, group: &str, topics: Option<Vec<(TopicName, Vec<i32>)>>) -> Offsets {
    let groups = ctx.broker().groups();
    match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|p| {
                        let committed = u32::try_from(p)
                            .ok()
                            .and_then(|p| groups.committed(group, &name, p));
                        Part::new(ctx, group, &name, p, committed.map_or(-1, |o| o as i64))
                    })
                    .collect();
                (name, partitions)
            })
            .collect(),
        None => {
            let mut by_topic: BTreeMap<String, Vec<Part>> = BTreeMap::new();
            for (topic, p, offset) in groups.committed_offsets(group) {
                let part = Part::new(ctx, group, &topic, p as i32, offset as i64);
                by_topic.entry(topic).or_default().push(part);
            }
            by_topic
                .into_iter()
                .map(|(name, partitions)| (TopicName(sb(&name)), partitions))
                .collect()
        }
    }
}

fn partition(p: Part) -> OffsetFetchResponsePartition {
    OffsetFetchResponsePartition::default()
        .with_partition_index(p.index)
        .with_committed_offset(p.offset)
        .with_committed_leader_epoch(p.leader_epoch)
        .with_metadata(Some(sb(&p.metadata)))
        .with_error_code(p.code)
}

fn partitions(p: Part) -> OffsetFetchResponsePartitions {
    OffsetFetchResponsePartitions::default()
        .with_partition_index(p.index)
        .with_committed_offset(p.offset)
        .with_committed_leader_epoch(p.leader_epoch)
        .with_metadata(Some(sb(&p.metadata)))
        .with_error_code(p.code)
}

fn v8_group(
    group: &kafka_protocol::messages::GroupId,
    offsets: Offsets,
    code: i16,
) -> OffsetFetchResponseGroup {
    OffsetFetchResponseGroup::default()
        .with_group_id(group.clone())
        .with_error_code(code)
        .with_topics(
            offsets
                .into_iter()
                .map(|(name, ps)| {
                    OffsetFetchResponseTopics::default()
                        .with_name(name)
                        .with_partitions(ps.into_iter().map(partitions).collect())
                })
                .collect(),
        )
}

/// The member check of a v9 request (0 when it passes or does not apply).
fn check_member(ctx: &Context, group: &str, member: Option<&str>, epoch: i32) -> i16 {
    let now = ctx.now();
    let groups = ctx.broker().groups();
    let Some(member) = member.filter(|m| !m.is_empty()) else {
        return 0;
    };
    if epoch < 0 {
        return 0;
    }
    if ctx.consumer.get(group, member).is_none() && !ctx.consumer.active(groups, group, now) {
        // A classic group's member (or none): classic OffsetFetch does not check members.
        return 0;
    }
    match ctx.consumer.check_epoch(groups, group, member, epoch, now) {
        EpochCheck::Current => 0,
        EpochCheck::Stale => E::StaleMemberEpoch.code(),
        EpochCheck::Fenced => E::FencedMemberEpoch.code(),
        EpochCheck::Unknown => E::UnknownMemberId.code(),
    }
}

/// The committed offsets asked for.
pub fn handle(ctx: &Context, version: i16, req: OffsetFetchRequest) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                if g.group_id.is_empty() {
                    return v8_group(&g.group_id, Vec::new(), E::InvalidGroupId.code());
                }
                let code = check_member(ctx, &g.group_id, g.member_id.as_deref(), g.member_epoch);
                if code != 0 {
                    return v8_group(&g.group_id, Vec::new(), code);
                }
                let topics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                        .collect()
                });
                v8_group(&g.group_id, offsets(ctx, &g.group_id, topics), 0)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    if req.group_id.is_empty() {
        return error(&req, E::InvalidGroupId.code()).with_error_code(if version >= 2 {
            E::InvalidGroupId.code()
        } else {
            0
        });
    }
    let topics = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.clone(), t.partition_indexes.clone()))
            .collect()
    });
    let topics = offsets(ctx, &req.group_id, topics)
        .into_iter()
        .map(|(name, ps)| {
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(ps.into_iter().map(partition).collect())
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

/// `code` for every requested partition (and at the top level from v2; per group from v8).
pub fn error(req: &OffsetFetchRequest, code: i16) -> OffsetFetchResponse {
    let topics = req
        .topics
        .iter()
        .flatten()
        .map(|t| {
            OffsetFetchResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partition_indexes
                        .iter()
                        .map(|&p| partition(Part::error(p, code)))
                        .collect(),
                )
        })
        .collect();
    let groups = req
        .groups
        .iter()
        .map(|g| v8_group(&g.group_id, Vec::new(), code))
        .collect();
    OffsetFetchResponse::default()
        .with_topics(topics)
        .with_groups(groups)
        .with_error_code(code)
}
