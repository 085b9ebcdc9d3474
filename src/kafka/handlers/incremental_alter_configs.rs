//! IncrementalAlterConfigs (key 44, v0–1): changes a topic's config overrides.
//!
//! Per resource (Kafka's `ConfigAdminManager`): only topics (resource type 2); a broker (4) gets
//! INVALID_REQUEST (42), since its configs are its flags. A topic that does not exist gets
//! UNKNOWN_TOPIC_OR_PARTITION (3). Operations: SET (0) sets the override, DELETE (1) removes it
//! (the broker default applies again); APPEND (2) and SUBTRACT (3) are INVALID_CONFIG (40), as
//! Kafka answers them for configs that are not lists; a name given twice is INVALID_REQUEST. The
//! result is checked as CreateTopics checks configs (INVALID_CONFIG with Kafka's message);
//! `validate_only` stops there. Otherwise it is stored in the topics file (data directory) and
//! applied to every partition: retention and roll follow it from the next housekeeping run.

use super::create_topics::config_text;
use super::sb;
use crate::error::Error;
use crate::kafka::context::Context;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::ResponseError as E;
use std::collections::HashSet;

const TOPIC: i8 = 2;
const SET: i8 = 0;
const DELETE: i8 = 1;

fn alter(ctx: &Context, r: &AlterConfigsResource, validate_only: bool) -> Result<(), (E, String)> {
    if r.resource_type != TOPIC {
        return Err((
            E::InvalidRequest,
            format!(
                "resource type {}: only topic configs (2) can be altered",
                r.resource_type
            ),
        ));
    }
    let topics = ctx.broker().topics();
    let Some(topic) = topics.get(&r.resource_name) else {
        return Err((
            E::UnknownTopicOrPartition,
            format!("no topic {:?}", &*r.resource_name),
        ));
    };
    let mut seen = HashSet::new();
    let mut overrides = topic.overrides();
    for c in &r.configs {
        if !seen.insert(&*c.name) {
            return Err((
                E::InvalidRequest,
                format!("Error due to duplicate config keys: {}", &*c.name),
            ));
        }
        match (c.config_operation, &c.value) {
            (SET, Some(value)) => {
                overrides.insert(c.name.to_string(), value.to_string());
            }
            (SET, None) => {
                return Err((
                    E::InvalidConfig,
                    format!("Null value not supported for : {}", &*c.name),
                ))
            }
            (DELETE, _) => {
                overrides.remove(&*c.name);
            }
            (op @ (2 | 3), _) => {
                let what = if op == 2 { "APPEND" } else { "SUBTRACT" };
                return Err((
                    E::InvalidConfig,
                    format!(
                        "Config value append is not allowed for config key: {} ({what})",
                        &*c.name
                    ),
                ));
            }
            (op, _) => {
                return Err((E::InvalidRequest, format!("unknown config operation {op}")));
            }
        }
    }
    if let Err(e) = topics.config_for(&overrides) {
        return Err((E::InvalidConfig, config_text(e)));
    }
    if validate_only {
        return Ok(());
    }
    let done =
        super::blocking_if_durable(ctx, || topics.alter_configs(&r.resource_name, overrides));
    match done {
        Ok(()) => {
            tracing::info!(topic = %&*r.resource_name, "configs altered");
            Ok(())
        }
        Err(Error::UnknownTopic(_)) => {
            Err((E::UnknownTopicOrPartition, "deleted concurrently".into()))
        }
        Err(e @ Error::InvalidConfig(_)) => Err((E::InvalidConfig, config_text(e))),
        Err(e @ Error::Storage(_)) => Err((E::KafkaStorageError, e.to_string())),
        Err(e) => Err((E::InvalidRequest, e.to_string())),
    }
}

/// Alters each resource; one result per resource.
pub fn handle(
    ctx: &Context,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = req
        .resources
        .iter()
        .map(|r| {
            let out = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match alter(ctx, r, req.validate_only) {
                Ok(()) => out,
                Err((e, msg)) => out
                    .with_error_code(e.code())
                    .with_error_message(Some(sb(&msg))),
            }
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// `code` for every resource.
pub fn error(req: &IncrementalAlterConfigsRequest, code: i16) -> IncrementalAlterConfigsResponse {
    IncrementalAlterConfigsResponse::default().with_responses(
        req.resources
            .iter()
            .map(|r| {
                AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
                    .with_error_code(code)
            })
            .collect(),
    )
}
