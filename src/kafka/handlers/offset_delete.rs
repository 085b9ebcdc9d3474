//! OffsetDelete (key 47, v0): removes committed offsets of a group. A partition of a topic that a
//! live classic member subscribes to (read from its `ConsumerProtocolSubscription`) gets
//! GROUP_SUBSCRIBED_TO_TOPIC (86); a group nobody knows gets GROUP_ID_NOT_FOUND (69).

use crate::kafka::context::Context;
use crate::storage::OffsetRecord;
use bytes::Buf;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, OffsetDeleteRequest, OffsetDeleteResponse,
};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError as E;
use std::collections::HashSet;

/// The topics in classic members' subscriptions (metadata that does not decode is skipped).
fn subscribed(ctx: &Context, group: &str) -> HashSet<String> {
    let mut topics = HashSet::new();
    for mut meta in ctx.classic.member_metadata(group) {
        if meta.remaining() < 2 {
            continue;
        }
        let version = meta.get_i16();
        let decoded = std::panic::catch_unwind(move || {
            ConsumerProtocolSubscription::decode(&mut meta, version)
        });
        if let Ok(Ok(s)) = decoded {
            topics.extend(s.topics.iter().map(|t| t.to_string()));
        }
    }
    topics
}

/// Deletes the offsets, partition by partition.
pub fn handle(ctx: &Context, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group: &str = &req.group_id;
    let known =
        ctx.classic.describe(group).is_some() || ctx.broker().groups().group_epoch(group).is_some();
    if !known {
        return error(E::GroupIdNotFound.code());
    }
    let busy = subscribed(ctx, group);
    let mut deleted = Vec::new();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let in_use = busy.contains(&**t.name);
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let code = if in_use {
                                E::GroupSubscribedToTopic.code()
                            } else {
                                if let Ok(i) = u32::try_from(p.partition_index) {
                                    if ctx.broker().groups().delete_offset(group, &t.name, i) {
                                        deleted.push(OffsetRecord::OffsetDelete {
                                            group: group.to_string(),
                                            topic: t.name.to_string(),
                                            partition: p.partition_index,
                                        });
                                    }
                                }
                                0
                            };
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    // The deletes are already in effect in memory; a journal that refuses them is logged: the
    // offsets may come back after a restart.
    let durable = super::blocking_if_durable(ctx, || ctx.broker().record_offsets(&deleted));
    if let Err(e) = durable {
        tracing::error!(group, "OffsetDelete not durable: {e}");
        return error(E::KafkaStorageError.code());
    }
    OffsetDeleteResponse::default().with_topics(topics)
}

/// `code` at the top level.
pub fn error(code: i16) -> OffsetDeleteResponse {
    OffsetDeleteResponse::default().with_error_code(code)
}
