//! DescribeConfigs (key 32, v1–4): the read-only settings this broker actually has, enough for
//! AdminClient and tools (`kafka-configs --describe`, kcat's `-X dump`-style probes).
//!
//! Resource types are Kafka's: 2 = topic (UNKNOWN_TOPIC_OR_PARTITION if it does not exist),
//! 4 = broker (its name is the broker id, "0", or empty); others get INVALID_REQUEST (42).
//! `configuration_keys` filters by name. Sources: 5 = DEFAULT_CONFIG for topics, 4 =
//! STATIC_BROKER_CONFIG for the broker. Types (v3+): 1 boolean, 2 string, 3 int, 5 long.

use super::sb;
use crate::kafka::context::Context;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError as E;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// (name, value, config type) of a topic.
fn topic_configs() -> Vec<(&'static str, String, i8)> {
    vec![
        ("cleanup.policy", "delete".into(), 2),
        ("compression.type", "producer".into(), 2),
        ("max.message.bytes", "1048588".into(), 3),
        ("message.timestamp.type", "CreateTime".into(), 2),
        ("min.insync.replicas", "1".into(), 3),
        ("retention.bytes", "-1".into(), 5),
        ("retention.ms", "-1".into(), 5),
    ]
}

fn broker_configs(ctx: &Context) -> Vec<(&'static str, String, i8)> {
    let c = &ctx.config;
    let host_port = format!("PLAINTEXT://{}:{}", c.advertised_host, c.advertised_port);
    vec![
        ("advertised.listeners", host_port, 2),
        ("auto.create.topics.enable", "true".into(), 1),
        ("broker.id", "0".into(), 3),
        ("default.replication.factor", "1".into(), 3),
        (
            "group.initial.rebalance.delay.ms",
            c.classic.initial_rebalance_delay_ms.to_string(),
            3,
        ),
        (
            "group.max.session.timeout.ms",
            c.classic.max_session_timeout_ms.to_string(),
            3,
        ),
        (
            "group.min.session.timeout.ms",
            c.classic.min_session_timeout_ms.to_string(),
            3,
        ),
        ("max.connections", c.max_connections.to_string(), 3),
        (
            "num.partitions",
            ctx.broker().topics().default_partitions().to_string(),
            3,
        ),
        ("offsets.topic.replication.factor", "1".into(), 3),
        (
            "socket.request.max.bytes",
            c.max_request_bytes.to_string(),
            3,
        ),
    ]
}

/// Each resource's settings.
pub fn handle(ctx: &Context, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let results = req
        .resources
        .iter()
        .map(|r| {
            let out = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let (configs, source) = match r.resource_type {
                TOPIC if ctx.broker().topics().get(&r.resource_name).is_some() => {
                    (topic_configs(), 5)
                }
                TOPIC => {
                    return out
                        .with_error_code(E::UnknownTopicOrPartition.code())
                        .with_error_message(Some(sb("no such topic")))
                }
                BROKER if r.resource_name.is_empty() || &*r.resource_name == "0" => {
                    (broker_configs(ctx), 4)
                }
                _ => {
                    return out
                        .with_error_code(E::InvalidRequest.code())
                        .with_error_message(Some(sb("unknown resource")))
                }
            };
            let wanted = |name: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| &**k == name))
            };
            out.with_configs(
                configs
                    .into_iter()
                    .filter(|(name, _, _)| wanted(name))
                    .map(|(name, value, kind)| {
                        DescribeConfigsResourceResult::default()
                            .with_name(sb(name))
                            .with_value(Some(sb(&value)))
                            .with_read_only(true)
                            .with_config_source(source)
                            .with_config_type(kind)
                    })
                    .collect(),
            )
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// `code` for every resource.
pub fn error(req: &DescribeConfigsRequest, code: i16) -> DescribeConfigsResponse {
    DescribeConfigsResponse::default().with_results(
        req.resources
            .iter()
            .map(|r| {
                DescribeConfigsResult::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
                    .with_error_code(code)
            })
            .collect(),
    )
}
