//! CreateTopics (key 19).
//!
//! Errors, as Kafka's: TOPIC_ALREADY_EXISTS (36); INVALID_TOPIC_EXCEPTION (17) for a name outside
//! Kafka's rule; INVALID_PARTITIONS (37) for a count below 1 (other than -1, the default
//! `--partitions`) or above 65536; INVALID_REPLICATION_FACTOR (38) for anything but 1 or -1,
//! since there is one broker. Manual assignments set the count (every replica must be broker 0).
//! `validate_only` checks without creating. Topic configs (`retention.ms`, `retention.bytes`,
//! `segment.bytes`, `segment.ms`) become the topic's overrides, kept in the topics file with a
//! data directory; an unknown name, a null value or a value out of range is INVALID_CONFIG (40)
//! with Kafka's message, and creates nothing.

use super::{sb, valid_topic_name};
use crate::error::Error;
use crate::kafka::context::{Context, NODE_ID};
use crate::topic::Overrides;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::ResponseError as E;

fn create(
    ctx: &Context,
    t: &CreatableTopic,
    validate_only: bool,
) -> Result<(u32, [u8; 16]), (E, String)> {
    let name: &str = &t.name;
    if !valid_topic_name(name) {
        return Err((
            E::InvalidTopicException,
            format!("invalid topic name {name:?}"),
        ));
    }
    if ctx.broker().topics().get(name).is_some() {
        return Err((
            E::TopicAlreadyExists,
            format!("topic {name:?} already exists"),
        ));
    }
    let partitions = if !t.assignments.is_empty() {
        if t.assignments
            .iter()
            .any(|a| a.broker_ids.iter().any(|b| b.0 != NODE_ID))
        {
            return Err((E::InvalidReplicaAssignment, "the only broker is 0".into()));
        }
        t.assignments.len() as i64
    } else if t.num_partitions == -1 {
        i64::from(ctx.broker().topics().default_partitions())
    } else {
        i64::from(t.num_partitions)
    };
    if !(1..=65536).contains(&partitions) {
        return Err((
            E::InvalidPartitions,
            format!("{partitions} partitions: need 1 to 65536"),
        ));
    }
    let rf = t.replication_factor;
    if rf != -1 && rf != 1 && t.assignments.is_empty() {
        return Err((
            E::InvalidReplicationFactor,
            format!("replication factor {rf}: one broker"),
        ));
    }
    let mut overrides = Overrides::new();
    for c in &t.configs {
        let Some(value) = &c.value else {
            return Err((
                E::InvalidConfig,
                format!("Null value not supported for topic configs: {}", &*c.name),
            ));
        };
        overrides.insert(c.name.to_string(), value.to_string());
    }
    let topics = ctx.broker().topics();
    if let Err(e) = topics.config_for(&overrides) {
        return Err((E::InvalidConfig, config_text(e)));
    }
    if validate_only {
        return Ok((partitions as u32, [0; 16]));
    }
    let created = super::blocking_if_durable(ctx, || {
        topics.create_with(name, partitions as u32, overrides)
    });
    match created {
        Ok(topic) => Ok((partitions as u32, topic.id())),
        Err(Error::TopicExists { .. }) => {
            Err((E::TopicAlreadyExists, "created concurrently".into()))
        }
        Err(e @ Error::InvalidConfig(_)) => Err((E::InvalidConfig, config_text(e))),
        Err(e @ Error::Storage(_)) => Err((E::KafkaStorageError, e.to_string())),
        Err(e) => Err((E::InvalidRequest, e.to_string())),
    }
}

/// Kafka's text of a config error (without our `Display` prefix).
pub(crate) fn config_text(e: Error) -> String {
    match e {
        Error::InvalidConfig(why) => why,
        other => other.to_string(),
    }
}

/// Creates each topic; one result per topic.
pub fn handle(ctx: &Context, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            match create(ctx, t, req.validate_only) {
                Ok((n, id)) => {
                    if !req.validate_only {
                        tracing::info!(topic = %&*t.name, partitions = n, "created by CreateTopics");
                    }
                    result
                        .with_topic_id(uuid::Uuid::from_bytes(id))
                        .with_num_partitions(n as i32)
                        .with_replication_factor(1)
                }
                Err((e, msg)) => result.with_error_code(e.code()).with_error_message(Some(sb(&msg))),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

/// `code` for every topic.
pub fn error(req: &CreateTopicsRequest, code: i16) -> CreateTopicsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_error_code(code)
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}
