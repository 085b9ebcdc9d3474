//! Metadata (key 3): this broker, and the partitions of the requested topics, each led by it.
//!
//! A requested topic that does not exist is created with `--partitions` when the request allows
//! it (`allow_auto_topic_creation`, v4+; always before v4), like Kafka's
//! `auto.create.topics.enable=true`; otherwise it gets UNKNOWN_TOPIC_OR_PARTITION (3). A name
//! outside Kafka's rule gets INVALID_TOPIC_EXCEPTION (17). A null topic list (v1+), or an empty
//! one at v0, means every topic. Leader epochs are -1 (unknown), so clients never ask for
//! OffsetForLeaderEpoch, which this broker does not serve. Topic ids (v10+) are the engine's
//! stable topic UUIDs, and a topic asked for by id alone (null name) is looked up by it (KIP-848
//! consumers resolve their assignment so), UNKNOWN_TOPIC_ID (100) if none; Fetch stays at v12 (names, not ids) because that is all we advertise.

use super::{sb, valid_topic_name};
use crate::kafka::context::{Context, CLUSTER_ID, NODE_ID};
use crate::topic::Topic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError as E;
use std::sync::Arc;

fn topic_entry(name: &str, error: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(sb(name))))
        .with_error_code(error)
}

fn described(topic: &Topic) -> MetadataResponseTopic {
    let partitions = (0..topic.partition_count() as i32)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(NODE_ID))
                .with_leader_epoch(-1)
                .with_replica_nodes(vec![BrokerId(NODE_ID)])
                .with_isr_nodes(vec![BrokerId(NODE_ID)])
        })
        .collect();
    topic_entry(topic.name(), 0)
        .with_topic_id(uuid::Uuid::from_bytes(topic.id()))
        .with_partitions(partitions)
}

/// The cluster (one broker) and the requested topics.
pub fn handle(ctx: &Context, version: i16, req: MetadataRequest) -> MetadataResponse {
    let auto_create = version < 4 || req.allow_auto_topic_creation;
    let all = match &req.topics {
        None => true,
        Some(t) => version == 0 && t.is_empty(),
    };
    let topics: Vec<MetadataResponseTopic> = if all {
        ctx.broker()
            .topics()
            .list()
            .iter()
            .map(|t| described(t))
            .collect()
    } else {
        req.topics
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let Some(name) = t.name else {
                    // By topic id (v10+; KIP-848 consumers look up their assignment so).
                    let id = *t.topic_id.as_bytes();
                    let found = ctx
                        .broker()
                        .topics()
                        .list()
                        .into_iter()
                        .find(|topic| topic.id() == id);
                    return match found {
                        Some(topic) => described(&topic),
                        None => MetadataResponseTopic::default()
                            .with_topic_id(t.topic_id)
                            .with_error_code(E::UnknownTopicId.code()),
                    };
                };
                let topics = &ctx.broker().topics();
                match topics.get(&name) {
                    Some(topic) => described(&topic),
                    None if !valid_topic_name(&name) => {
                        topic_entry(&name, E::InvalidTopicException.code())
                    }
                    None if auto_create => {
                        match super::blocking_if_durable(ctx, || topics.get_or_create(&name)) {
                            Ok(topic) => {
                                let topic: Arc<Topic> = topic;
                                tracing::info!(topic = %&*name, "auto-created by Metadata");
                                described(&topic)
                            }
                            Err(e) => {
                                tracing::warn!(topic = %&*name, "auto-create failed: {e}");
                                topic_entry(&name, E::KafkaStorageError.code())
                            }
                        }
                    }
                    None => topic_entry(&name, E::UnknownTopicOrPartition.code()),
                }
            })
            .collect()
    };
    MetadataResponse::default()
        .with_brokers(vec![broker(ctx)])
        .with_cluster_id(Some(sb(CLUSTER_ID)))
        .with_controller_id(BrokerId(NODE_ID))
        .with_topics(topics)
}

fn broker(ctx: &Context) -> MetadataResponseBroker {
    MetadataResponseBroker::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(sb(&ctx.config.advertised_host))
        .with_port(ctx.config.advertised_port)
}

/// `code` for every requested topic.
pub fn error(req: &MetadataRequest, code: i16) -> MetadataResponse {
    let topics = req
        .topics
        .iter()
        .flatten()
        .map(|t| {
            MetadataResponseTopic::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_error_code(code)
        })
        .collect();
    MetadataResponse::default()
        .with_topics(topics)
        .with_error_code(code)
}
