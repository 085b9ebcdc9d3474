//! ListOffsets (key 2, v1–7): per partition, the offset for a timestamp. -2 = earliest (the log
//! start offset), -1 = latest (the high watermark; also the last stable offset, as there are no
//! transactions), -3 (v7, KIP-734) = the last record, a timestamp ≥ 0 = the first record whose
//! timestamp is at or after it (offset -1 and timestamp -1 if none, as Kafka). Leader epochs are
//! -1.

use crate::kafka::context::Context;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError as E;

/// Earliest, latest or by timestamp.
pub fn handle(ctx: &Context, _version: i16, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = ctx.broker().topics().get(&t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|lp| {
                    let out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(lp.partition_index);
                    let Some(p) = super::partition(&topic, lp.partition_index) else {
                        return out
                            .with_error_code(E::UnknownTopicOrPartition.code())
                            .with_offset(-1)
                            .with_timestamp(-1);
                    };
                    let end = p.end() as i64;
                    let (offset, ts) = match lp.timestamp {
                        -2 => (p.start() as i64, -1),
                        -1 => (end, -1),
                        -3 if end > 0 => (end - 1, -1),
                        ts if ts >= 0 => p
                            .offset_for_timestamp(ts)
                            .map_or((-1, -1), |(o, ts)| (o as i64, ts)),
                        _ => (-1, -1),
                    };
                    out.with_offset(offset).with_timestamp(ts)
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// `code` for every partition.
pub fn error(req: &ListOffsetsRequest, code: i16) -> ListOffsetsResponse {
    ListOffsetsResponse::default().with_topics(
        req.topics
            .iter()
            .map(|t| {
                ListOffsetsTopicResponse::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                ListOffsetsPartitionResponse::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code)
                                    .with_offset(-1)
                                    .with_timestamp(-1)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}
