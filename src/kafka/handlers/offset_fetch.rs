//! OffsetFetch (key 9, v1–7): the engine's committed offsets (the next offset to consume) of one
//! group; -1 where nothing is committed, as Kafka. A null topic list (v2+) asks for every
//! committed offset of the group. The leader epoch is -1 and the metadata "".

use super::sb;
use crate::kafka::context::Context;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::ResponseError as E;
use std::collections::BTreeMap;

fn partition(index: i32, offset: i64, code: i16) -> OffsetFetchResponsePartition {
    OffsetFetchResponsePartition::default()
        .with_partition_index(index)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(-1)
        .with_metadata(Some(sb("")))
        .with_error_code(code)
}

/// The committed offsets asked for.
pub fn handle(ctx: &Context, version: i16, req: OffsetFetchRequest) -> OffsetFetchResponse {
    if req.group_id.is_empty() {
        return error(&req, E::InvalidGroupId.code()).with_error_code(if version >= 2 {
            E::InvalidGroupId.code()
        } else {
            0
        });
    }
    let group: &str = &req.group_id;
    let groups = &ctx.broker().groups();
    let topics = match &req.topics {
        Some(topics) => topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partition_indexes
                    .iter()
                    .map(|&p| {
                        let committed = u32::try_from(p)
                            .ok()
                            .and_then(|p| groups.committed(group, &t.name, p));
                        partition(p, committed.map_or(-1, |o| o as i64), 0)
                    })
                    .collect();
                OffsetFetchResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect(),
        None => {
            let mut by_topic: BTreeMap<String, Vec<OffsetFetchResponsePartition>> = BTreeMap::new();
            for (topic, p, offset) in groups.committed_offsets(group) {
                by_topic
                    .entry(topic)
                    .or_default()
                    .push(partition(p as i32, offset as i64, 0));
            }
            by_topic
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(sb(&name)))
                        .with_partitions(partitions)
                })
                .collect()
        }
    };
    OffsetFetchResponse::default().with_topics(topics)
}

/// `code` for every requested partition (and at the top level from v2).
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
                        .map(|&p| partition(p, -1, code))
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default()
        .with_topics(topics)
        .with_error_code(code)
}
