//! DeleteRecords (key 21, v0–2): moves each partition's log start offset up to the requested
//! offset (AdminClient's `deleteRecords`, `kafka-delete-records.sh`). Offset -1 means the high
//! watermark, as in Kafka. Per partition, as Kafka answers: the new log start offset as
//! `low_watermark`; UNKNOWN_TOPIC_OR_PARTITION (3) for a topic or partition that does not exist;
//! OFFSET_OUT_OF_RANGE (1) for an offset above the high watermark or below -1. An offset below
//! the current log start changes nothing and answers the current start. With a data directory,
//! whole segments below the new start are deleted and the start is checkpointed.

use crate::kafka::context::Context;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError as E;

/// Deletes the records below each requested offset.
pub fn handle(ctx: &Context, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = ctx.broker().topics().get(&t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let out = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    let Some(partition) = super::partition(&topic, p.partition_index) else {
                        return out
                            .with_low_watermark(-1)
                            .with_error_code(E::UnknownTopicOrPartition.code());
                    };
                    let target = match p.offset {
                        -1 => partition.end(),
                        o if o < 0 => {
                            return out
                                .with_low_watermark(partition.start() as i64)
                                .with_error_code(E::OffsetOutOfRange.code())
                        }
                        o => o as u64,
                    };
                    match partition.delete_records(target) {
                        Ok(start) => out.with_low_watermark(start as i64),
                        Err(e) => out
                            .with_low_watermark(e.start as i64)
                            .with_error_code(E::OffsetOutOfRange.code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

/// `code` for every requested partition.
pub fn error(req: &DeleteRecordsRequest, code: i16) -> DeleteRecordsResponse {
    DeleteRecordsResponse::default().with_topics(
        req.topics
            .iter()
            .map(|t| {
                DeleteRecordsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                DeleteRecordsPartitionResult::default()
                                    .with_partition_index(p.partition_index)
                                    .with_low_watermark(-1)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}
