//! OffsetCommit (key 8, v2–8): classic fencing by generation and member
//! ([`crate::kafka::classic::Groups::commit`]), then the commit into the engine's coordinator as
//! an admin commit, so Kafka and Maelstrom clients share one set of committed offsets.
//!
//! Generation -1 with an empty member id commits without group management, accepted while the
//! group has no members (Kafka's rule; AdminClient's alterConsumerGroupOffsets and manual-assign
//! consumers use it). Per partition: UNKNOWN_TOPIC_OR_PARTITION (3) for a topic or partition that
//! does not exist; INVALID_COMMIT_OFFSET_SIZE (28) for a negative offset, which the engine cannot
//! hold. The leader epoch and metadata string are not kept (OffsetFetch returns -1 and "").

use crate::kafka::context::Context;
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError as E;

fn commit_all(ctx: &Context, group: &str, topics: &[OffsetCommitRequestTopic]) -> Vec<Vec<i16>> {
    topics
        .iter()
        .map(|t| {
            let topic = ctx.broker().topics().get(&t.name);
            t.partitions
                .iter()
                .map(|p| {
                    let Some(topic) = &topic else {
                        return E::UnknownTopicOrPartition.code();
                    };
                    if p.committed_offset < 0 {
                        return E::InvalidCommitOffsetSize.code();
                    }
                    let partition = u32::try_from(p.partition_index).unwrap_or(u32::MAX);
                    let offset = p.committed_offset as u64;
                    match ctx
                        .broker()
                        .groups()
                        .commit_topic(group, None, topic, partition, offset)
                    {
                        Ok(()) => 0,
                        Err(_) => E::UnknownTopicOrPartition.code(),
                    }
                })
                .collect()
        })
        .collect()
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
