//! Fetch (key 1, v4–12): whole RecordBatch v2 batches from each requested partition, with a long
//! poll.
//!
//! - **Long poll.** The answer is sent as soon as at least `min_bytes` of records are ready, or
//!   when `max_wait_ms` has passed, or at once if a partition has an error; until then the
//!   handler waits for an append (it holds only its own connection).
//! - **Sizes.** Each partition gives at most `partition_max_bytes`, the response at most
//!   `max_bytes` — except that the first non-empty partition always gives at least one batch
//!   (KIP-74), so a batch larger than the limits still makes progress.
//! - **Every requested partition is answered** (kafka-python rejects a response that omits one),
//!   with the high watermark (read again after the records, so that it is past every record in
//!   the answer, as Kafka's is), `last_stable_offset` = high watermark (no transactions;
//!   librdkafka reads `read_committed` by default) and the log start offset. A fetch offset
//!   beyond the high watermark or below the log start gets OFFSET_OUT_OF_RANGE (1); exactly at
//!   the high watermark returns no records.
//! - No fetch sessions (KIP-227): `session_id` 0, so clients send full fetches.

use super::partition;
use crate::kafka::context::Context;
use crate::kafka::frames::Splices;
use crate::partition::{FetchError, Partition};
use crate::topic::Topic;
use bytes::Buf;
use bytes_utils::SegmentedBuf;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError as E;
use std::sync::Arc;
use std::time::Duration;

/// One pass over the requested partitions: the response, the stored bytes its records fields
/// stand for, how many record bytes it holds, and whether some partition has an error.
fn gather(
    req: &FetchRequest,
    topics: &[Option<Arc<Topic>>],
) -> (FetchResponse, Splices, usize, bool) {
    let mut splices = Splices::default();
    let mut total = 0usize;
    let mut errors = false;
    let max_bytes = usize::try_from(req.max_bytes).unwrap_or(0);
    let responses = req
        .topics
        .iter()
        .zip(topics)
        .map(|(t, topic)| {
            let partitions = t
                .partitions
                .iter()
                .map(|fp| {
                    let out = PartitionData::default().with_partition_index(fp.partition);
                    let Some(p) = partition(topic, fp.partition) else {
                        errors = true;
                        return out
                            .with_error_code(E::UnknownTopicOrPartition.code())
                            .with_high_watermark(-1);
                    };
                    let hw = p.end() as i64;
                    let start = p.start() as i64;
                    let out = out
                        .with_high_watermark(hw)
                        .with_last_stable_offset(hw)
                        .with_log_start_offset(start);
                    if fp.fetch_offset < start || fp.fetch_offset > hw {
                        errors = true;
                        return out.with_error_code(E::OffsetOutOfRange.code());
                    }
                    let room = if total == 0 {
                        usize::MAX
                    } else {
                        max_bytes.saturating_sub(total)
                    };
                    let limit = usize::try_from(fp.partition_max_bytes)
                        .unwrap_or(0)
                        .min(room);
                    if fp.fetch_offset == hw || limit == 0 {
                        return out.with_records(Some(Default::default()));
                    }
                    let mut pieces = SegmentedBuf::new();
                    match p.fetch(fp.fetch_offset as u64, limit, &mut pieces) {
                        Ok(_) => {}
                        Err(FetchError::OutOfRange(_)) => {
                            errors = true;
                            return out.with_error_code(E::OffsetOutOfRange.code());
                        }
                        Err(FetchError::Storage(e)) => {
                            tracing::warn!("fetch failed: {e}");
                            errors = true;
                            return out.with_error_code(E::KafkaStorageError.code());
                        }
                    }
                    total += pieces.remaining();
                    // Read again after the fetch, so that the high watermark covers every record
                    // in the answer (a record appended since the first read may be in it).
                    let hw = p.end() as i64;
                    out.with_high_watermark(hw)
                        .with_last_stable_offset(hw)
                        .with_records(Some(splices.field(pieces)))
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    (
        FetchResponse::default().with_responses(responses),
        splices,
        total,
        errors,
    )
}

/// The records, after the long poll, and the stored bytes that stand behind them
/// ([`crate::kafka::frames`]).
pub async fn handle(ctx: &Context, _version: i16, req: FetchRequest) -> (FetchResponse, Splices) {
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + wait;
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0).max(1);
    let topics: Vec<Option<Arc<Topic>>> = req
        .topics
        .iter()
        .map(|t| ctx.broker().topics().get(&t.topic))
        .collect();
    loop {
        // Listen, then watch the partitions, then read: an append after the read wakes us
        // (`Partition::watch`).
        let listener = ctx.broker().topics().appends().listen();
        let watches: Vec<_> = req
            .topics
            .iter()
            .zip(&topics)
            .flat_map(|(t, topic)| {
                t.partitions
                    .iter()
                    .filter_map(|fp| partition(topic, fp.partition))
            })
            .map(Partition::watch)
            .collect();
        let (resp, splices, bytes, errors) = gather(&req, &topics);
        if bytes >= min_bytes || errors || tokio::time::Instant::now() >= deadline {
            return (resp, splices);
        }
        let woke = tokio::time::timeout_at(deadline, listener).await;
        drop(watches);
        if woke.is_err() {
            let (resp, splices, ..) = gather(&req, &topics);
            return (resp, splices);
        }
    }
}

/// `code` for every requested partition.
pub fn error(req: &FetchRequest, code: i16) -> FetchResponse {
    FetchResponse::default()
        .with_error_code(code)
        .with_responses(
            req.topics
                .iter()
                .map(|t| {
                    FetchableTopicResponse::default()
                        .with_topic(t.topic.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    PartitionData::default()
                                        .with_partition_index(p.partition)
                                        .with_error_code(code)
                                        .with_high_watermark(-1)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}
