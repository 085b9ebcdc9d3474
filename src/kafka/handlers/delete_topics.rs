//! DeleteTopics (key 20), by name (v1–5).
//!
//! A missing topic gets UNKNOWN_TOPIC_OR_PARTITION (3). The engine's default topic (the one
//! Maelstrom's kafka workload writes) is never deleted: POLICY_VIOLATION (44). Readers that hold
//! a deleted topic finish with it; the name can then be created anew, empty.

use super::sb;
use crate::kafka::context::Context;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::ResponseError as E;

fn names(req: &DeleteTopicsRequest) -> Vec<TopicName> {
    let mut names = req.topic_names.clone();
    names.extend(req.topics.iter().filter_map(|t| t.name.clone()));
    names
}

/// Deletes each topic; one result per topic.
pub fn handle(ctx: &Context, version: i16, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let responses = names(&req)
        .into_iter()
        .map(|name| {
            let result = DeletableTopicResult::default().with_name(Some(name.clone()));
            let (code, msg) = if *name == *ctx.broker().config().default_topic {
                (
                    E::PolicyViolation.code(),
                    "the engine's default topic is never deleted",
                )
            } else if super::blocking_if_durable(ctx, || ctx.broker().delete_topic(&name)).is_some()
            {
                tracing::info!(topic = %&*name, "deleted by DeleteTopics");
                (0, "")
            } else {
                (E::UnknownTopicOrPartition.code(), "no such topic")
            };
            let result = result.with_error_code(code);
            if version >= 5 && code != 0 {
                result.with_error_message(Some(sb(msg)))
            } else {
                result
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

/// `code` for every topic.
pub fn error(req: &DeleteTopicsRequest, code: i16) -> DeleteTopicsResponse {
    let responses = names(req)
        .into_iter()
        .map(|n| {
            DeletableTopicResult::default()
                .with_name(Some(n))
                .with_error_code(code)
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
