//! DescribeConfigs (key 32, v1–4): the read-only settings this broker actually has, enough for
//! AdminClient and tools (`kafka-configs --describe`, kcat's `-X dump`-style probes).
//!
//! Resource types are Kafka's: 2 = topic (UNKNOWN_TOPIC_OR_PARTITION if it does not exist),
//! 4 = broker (its name is the broker id, "0", or empty); others get INVALID_REQUEST (42).
//! `configuration_keys` filters by name. A topic's `retention.ms`, `retention.bytes`,
//! `segment.bytes` and `segment.ms` are its values in force (IncrementalAlterConfigs changes
//! them): source 1 = DYNAMIC_TOPIC_CONFIG where the topic overrides it, else 5 = DEFAULT_CONFIG
//! (the broker's `--log-*` flags); its other configs are read-only, source 5. The broker's are 4
//! = STATIC_BROKER_CONFIG. Types (v3+): 1 boolean, 2 string, 3 int, 5 long.

use super::sb;
use crate::kafka::context::Context;
use crate::storage::{describe_topic_configs, SEGMENT_BYTES};
use crate::topic::Topic;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError as E;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// A config as described: (name, value, config type, source, read-only).
type Described = (&'static str, String, i8, i8, bool);

/// A topic's configs, sorted by name.
fn topic_configs(ctx: &Context, topic: &Topic) -> Vec<Described> {
    let mut out: Vec<Described> = vec![
        ("cleanup.policy", "delete".into(), 2, 5, true),
        ("compression.type", "producer".into(), 2, 5, true),
        ("max.message.bytes", "1048588".into(), 3, 5, true),
        ("message.timestamp.type", "CreateTime".into(), 2, 5, true),
        ("min.insync.replicas", "1".into(), 3, 5, true),
    ];
    let defaults = ctx.broker().topics().default_config();
    for c in describe_topic_configs(&defaults, topic.overrides()) {
        let kind = if c.name == SEGMENT_BYTES { 3 } else { 5 };
        let source = if c.overridden { 1 } else { 5 };
        out.push((c.name, c.value, kind, source, false));
    }
    out.sort_by_key(|c| c.0);
    out
}

fn broker_configs(ctx: &Context) -> Vec<Described> {
    let d = ctx.broker().topics().default_config();
    let c = &ctx.config;
    let host_port = format!("PLAINTEXT://{}:{}", c.advertised_host, c.advertised_port);
    let mut out = vec![
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
    ];
    out.extend([
        ("log.retention.bytes", d.retention_bytes.to_string(), 5),
        ("log.retention.ms", d.retention_ms.to_string(), 5),
        ("log.roll.ms", d.segment_ms.to_string(), 5),
        ("log.segment.bytes", d.segment_bytes.to_string(), 3),
    ]);
    out.sort_by_key(|c| c.0);
    out.into_iter()
        .map(|(name, value, kind)| (name, value, kind, 4, true))
        .collect()
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
            let configs = match r.resource_type {
                TOPIC => match ctx.broker().topics().get(&r.resource_name) {
                    Some(topic) => topic_configs(ctx, &topic),
                    None => {
                        return out
                            .with_error_code(E::UnknownTopicOrPartition.code())
                            .with_error_message(Some(sb("no such topic")))
                    }
                },
                BROKER if r.resource_name.is_empty() || &*r.resource_name == "0" => {
                    broker_configs(ctx)
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
                    .filter(|(name, ..)| wanted(name))
                    .map(|(name, value, kind, source, read_only)| {
                        DescribeConfigsResourceResult::default()
                            .with_name(sb(name))
                            .with_value(Some(sb(&value)))
                            .with_read_only(read_only)
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
