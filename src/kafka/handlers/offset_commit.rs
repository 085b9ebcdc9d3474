//! OffsetCommit (key 8, v2–9): classic fencing by generation and member
//! ([`crate::kafka::classic::Groups::commit`]), then the commit into the engine's coordinator as
//! an admin commit, so Kafka and Maelstrom clients share one set of committed offsets.
//!
//! **Consumer-protocol groups** (KIP-848, [`crate::kafka::consumer`]): a member's commit carries
//! its member epoch in `generation_id_or_member_epoch`, checked as Kafka's
//! `ConsumerGroup.validateOffsetCommit` does: an unknown member (or none, on a group with live
//! members) gets UNKNOWN_MEMBER_ID (25), an older epoch than its last heartbeat answer
//! STALE_MEMBER_EPOCH (113), a newer one FENCED_MEMBER_EPOCH (110). The commit then goes to the
//! engine's coordinator *as the member*, which also checks that the member owns the partition
//! (pending revocation included); a partition it does not own gets STALE_MEMBER_EPOCH. With
//! generation -1, no member id and no live members, it is an admin commit as in the classic case.
//!
//! Generation -1 with an empty member id commits without group management, accepted while the
//! group has no members (Kafka's rule; AdminClient's alterConsumerGroupOffsets and manual-assign
//! consumers use it). Per partition: UNKNOWN_TOPIC_OR_PARTITION (3) for a topic or partition that
//! does not exist; INVALID_COMMIT_OFFSET_SIZE (28) for a negative offset, which the engine cannot
//! hold. The leader epoch and metadata string are kept beside the engine's offset
//! ([`crate::kafka::commit_extras`]) and journaled with it; OffsetFetch returns them.
//!
//! With a data directory, the accepted partitions' offsets are appended to the offsets journal
//! as one frame before any is committed or answered: a crash keeps all of them or none. If the
//! journal refuses, every accepted partition gets KAFKA_STORAGE_ERROR (56) and nothing is
//! committed. A consumer-protocol member's ownership is checked before the journal write, so a
//! refused partition is never journaled.

use crate::error::Error;
use crate::kafka::consumer::EpochCheck;
use crate::kafka::context::Context;
use crate::storage::{CommittedOffset, OffsetRecord};
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError as E;
use std::sync::Arc;

fn commit_all(
    ctx: &Context,
    group: &str,
    member: Option<&str>,
    topics: &[OffsetCommitRequestTopic],
) -> Vec<Vec<i16>> {
    // A consumer-protocol member may commit only what it owns (pending revocation included).
    let view = member.map(|m| ctx.broker().groups().member_view(group, m, ctx.now()));
    // Check every partition first, and make the accepted ones durable in one journal frame
    // before any is committed: all of them are kept, or (KAFKA_STORAGE_ERROR) none.
    let mut accepted = Vec::new();
    let mut codes: Vec<Vec<i16>> = topics
        .iter()
        .enumerate()
        .map(|(ti, t)| {
            let topic = ctx.broker().topics().get(&t.name);
            t.partitions
                .iter()
                .enumerate()
                .map(|(pi, p)| {
                    let Some(topic) = &topic else {
                        return E::UnknownTopicOrPartition.code();
                    };
                    if p.committed_offset < 0 {
                        return E::InvalidCommitOffsetSize.code();
                    }
                    let Ok(partition) = u32::try_from(p.partition_index) else {
                        return E::UnknownTopicOrPartition.code();
                    };
                    if topic.partition(partition).is_err() {
                        return E::UnknownTopicOrPartition.code();
                    }
                    match &view {
                        Some(Err(_)) => return E::UnknownMemberId.code(),
                        Some(Ok(v))
                            if !v
                                .partitions
                                .iter()
                                .any(|(n, q)| *q == partition && n == topic.name()) =>
                        {
                            return E::StaleMemberEpoch.code();
                        }
                        _ => {}
                    }
                    accepted.push((ti, pi, Arc::clone(topic), partition, p));
                    0
                })
                .collect()
        })
        .collect();
    if ctx.broker().durable_offsets() {
        let now = crate::clock::wall_ms();
        let records: Vec<OffsetRecord> = accepted
            .iter()
            .map(|(_, _, topic, _, p)| OffsetRecord::Commit {
                group: group.to_string(),
                topic: topic.name().to_string(),
                partition: p.partition_index,
                value: CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_deref().unwrap_or("").to_string(),
                    commit_timestamp_ms: now,
                },
            })
            .collect();
        let durable = super::blocking_if_durable(ctx, || ctx.broker().record_offsets(&records));
        if let Err(e) = durable {
            tracing::error!(group, "OffsetCommit not durable: {e}");
            for (ti, pi, ..) in &accepted {
                codes[*ti][*pi] = E::KafkaStorageError.code();
            }
            return codes;
        }
    }
    for (ti, pi, topic, partition, p) in accepted {
        let offset = p.committed_offset as u64;
        codes[ti][pi] = match ctx
            .broker()
            .groups()
            .commit_topic(group, member, &topic, partition, offset)
        {
            Ok(()) => {
                ctx.commit_extras.record(
                    group,
                    topic.name(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.committed_metadata.as_deref().unwrap_or(""),
                );
                0
            }
            Err(Error::Fenced { .. }) => E::StaleMemberEpoch.code(),
            Err(Error::UnknownMember { .. }) => E::UnknownMemberId.code(),
            Err(_) => E::UnknownTopicOrPartition.code(),
        };
    }
    codes
}

/// Commits every partition, or none when the member is fenced.
pub fn handle(ctx: &Context, req: OffsetCommitRequest) -> OffsetCommitResponse {
    if req.group_id.is_empty() {
        return error(&req, E::InvalidGroupId.code());
    }
    let now = ctx.now();
    let groups = ctx.broker().groups();
    let consumer_member =
        !req.member_id.is_empty() && ctx.consumer.get(&req.group_id, &req.member_id).is_some();
    let result = if consumer_member || ctx.consumer.active(groups, &req.group_id, now) {
        let check = ctx.consumer.check_epoch(
            groups,
            &req.group_id,
            &req.member_id,
            req.generation_id_or_member_epoch,
            now,
        );
        match check {
            EpochCheck::Current => Ok(commit_all(
                ctx,
                &req.group_id,
                Some(&req.member_id),
                &req.topics,
            )),
            EpochCheck::Stale => Err(E::StaleMemberEpoch.code()),
            EpochCheck::Fenced => Err(E::FencedMemberEpoch.code()),
            EpochCheck::Unknown => Err(E::UnknownMemberId.code()),
        }
    } else {
        ctx.classic.commit(
            &req.group_id,
            req.generation_id_or_member_epoch,
            &req.member_id,
            req.group_instance_id.as_deref(),
            now,
            || commit_all(ctx, &req.group_id, None, &req.topics),
        )
    };
    match result {
        Err(code) => error(&req, code),
        Ok(codes) => OffsetCommitResponse::default().with_topics(
            req.topics
                .iter()
                .zip(codes)
                .map(|(t, codes)| {
                    OffsetCommitResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .zip(codes)
                                .map(|(p, code)| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    }
}

/// `code` for every partition.
pub fn error(req: &OffsetCommitRequest, code: i16) -> OffsetCommitResponse {
    OffsetCommitResponse::default().with_topics(
        req.topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}
