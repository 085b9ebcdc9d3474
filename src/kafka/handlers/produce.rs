//! Produce (key 0, v3–11): RecordBatch v2 appended to the engine's partitions.
//!
//! - acks=0 gets no response at all (Kafka's protocol guide); acks 1 and -1 (all) are the same
//!   here, since one broker holds the only replica: the answer is sent once the batch is in the
//!   log and visible to fetches.
//! - Batches are stored as sent, compressed or not (`crate::batch`); a batch of N records takes
//!   N offsets in one reservation.
//! - A batch that fails its CRC-32C, or does not parse, gets CORRUPT_MESSAGE (2) and nothing of
//!   that partition's records is appended; a transactional or control batch gets
//!   INVALID_RECORD (87).
//! - Idempotent producer (KIP-98): a retried batch (same producer id, epoch and sequence) is
//!   answered with its original offsets and not appended again; a sequence gap gets
//!   OUT_OF_ORDER_SEQUENCE_NUMBER (45), an old epoch INVALID_PRODUCER_EPOCH (47).
//! - A topic or partition that does not exist gets UNKNOWN_TOPIC_OR_PARTITION (3) (topics are
//!   auto-created by Metadata, as in Kafka, not by Produce).
//! - `base_offset` is the offset of the partition's first appended record: the client's
//!   delivery-report offset. `log_start_offset` (v5+) is the partition's.
//! - Transactional produce is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).

use crate::batch::{Batch, BatchError};
use crate::kafka::context::Context;
use crate::partition::AppendError;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError as E;

fn append(ctx: &Context, topic: &str, data: PartitionProduceData) -> PartitionProduceResponse {
    let out = PartitionProduceResponse::default().with_index(data.index);
    let fail = |e: E| out.clone().with_error_code(e.code()).with_base_offset(-1);
    let topic = ctx.broker().topics().get(topic);
    let Some(p) = super::partition(&topic, data.index) else {
        return fail(E::UnknownTopicOrPartition);
    };
    let batches = match Batch::parse_all(data.records.unwrap_or_default()) {
        Ok(b) => b,
        Err(e @ (BatchError::Corrupt(_) | BatchError::Invalid(_))) => {
            tracing::debug!("refused a produced batch: {e}");
            return fail(E::CorruptMessage);
        }
        Err(e) => {
            tracing::debug!("refused a produced batch: {e}");
            return fail(E::InvalidRecord);
        }
    };
    let mut base = None;
    for batch in batches {
        match p.append_batch(batch) {
            Ok(appended) => {
                base.get_or_insert(appended.base_offset);
            }
            Err(e) => {
                tracing::debug!("refused a batch: {e}");
                return fail(match e {
                    AppendError::OutOfOrderSequence { .. } => E::OutOfOrderSequenceNumber,
                    AppendError::ProducerFenced { .. } => E::InvalidProducerEpoch,
                    AppendError::Storage(_) => E::KafkaStorageError,
                });
            }
        }
    }
    out.with_base_offset(base.map_or(p.end() as i64, |b| b as i64))
        .with_log_start_offset(p.start() as i64)
}

/// Appends every partition's batches; `None` for acks=0.
pub fn handle(ctx: &Context, req: ProduceRequest) -> Option<ProduceResponse> {
    if req.transactional_id.is_some() {
        let resp = error(&req, E::TransactionalIdAuthorizationFailed.code());
        return (req.acks != 0).then_some(resp);
    }
    let acks = req.acks;
    let responses = req
        .topic_data
        .into_iter()
        .map(|t| {
            let name = t.name.clone();
            let partitions = t
                .partition_data
                .into_iter()
                .map(|d| append(ctx, &name, d))
                .collect();
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(partitions)
        })
        .collect();
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

/// `code` for every partition.
pub fn error(req: &ProduceRequest, code: i16) -> ProduceResponse {
    ProduceResponse::default().with_responses(
        req.topic_data
            .iter()
            .map(|t| {
                TopicProduceResponse::default()
                    .with_name(t.name.clone())
                    .with_partition_responses(
                        t.partition_data
                            .iter()
                            .map(|d| {
                                PartitionProduceResponse::default()
                                    .with_index(d.index)
                                    .with_error_code(code)
                                    .with_base_offset(-1)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}
