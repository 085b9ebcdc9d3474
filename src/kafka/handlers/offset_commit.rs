//! OffsetCommit (key 8, v2–8): classic fencing by generation and member
//! ([`crate::kafka::classic::Groups::commit`]), then the commit into the engine's coordinator as
//! an admin commit, so Kafka and Maelstrom clients share one set of committed offsets.
//!
//! Generation -1 with an empty member id commits without group management, accepted while the
//! group has no members (Kafka's rule; AdminClient's alterConsumerGroupOffsets and manual-assign
//! consumers use it). Per partition: UNKNOWN_TOPIC_OR_PARTITION (3) for a topic or partition that
//! does not exist; INVALID_COMMIT_OFFSET_SIZE (28) for a negative offset, which the engine cannot
//! hold. The leader epoch and metadata string are not kept (OffsetFetch returns -1 and "").
//!
//! With a data directory, the accepted partitions' offsets are appended to the offsets journal
//! as one frame before any is committed or answered: a crash keeps all of them or none. If the
//! journal refuses, every accepted partition gets KAFKA_STORAGE_ERROR (56) and nothing is
//! committed.

use crate::kafka::context::Context;
use crate::storage::{CommittedOffset, OffsetRecord};
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError as E;
use std::sync::Arc;

fn commit_all(ctx: &Context, group: &str, topics: &[OffsetCommitRequestTopic]) -> Vec<Vec<i16>> {
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
        if ctx
            .broker()
            .groups()
            .commit_topic(group, None, &topic, partition, offset)
            .is_err()
        {
            codes[ti][pi] = E::UnknownTopicOrPartition.code();
        }
    }
    codes
}

/// Commits every partition, or none when the member is fenced.
pub fn handle(ctx: &Context, req: OffsetCommitRequest) -> OffsetCommitResponse {
    if req.group_id.is_empty() {
        return error(&req, E::InvalidGroupId.code());
    }
    let now = ctx.now();
    let result = ctx.classic.commit(
        &req.group_id,
        req.generation_id_or_member_epoch,
        &req.member_id,
        req.group_instance_id.as_deref(),
        now,
        || commit_all(ctx, &req.group_id, &req.topics),
    );
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
