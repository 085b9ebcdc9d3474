//! JoinGroup (key 11): the join barrier of [`crate::kafka::classic`].
//!
//! v0 has no rebalance timeout (the session timeout stands in, as in Kafka); v4+ first answers a
//! new dynamic member MEMBER_ID_REQUIRED (79) with its id; v5+ carry `group.instance.id`. The
//! protocol name is never null below v7 (librdkafka rejects a null one): errors carry "".
//!
//! A group with live consumer-protocol (KIP-848) members answers INCONSISTENT_GROUP_PROTOCOL (23):
//! see [`crate::kafka::consumer`].

use super::{sb, Conn};
use crate::kafka::classic::{JoinOutcome, JoinParams};
use crate::kafka::context::Context;
use crate::storage::{GroupMetadata, GroupType, OffsetRecord};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, RequestHeader};
use kafka_protocol::ResponseError as E;

/// Joins, waiting in the barrier when the rebalance is not complete.
pub async fn handle(
    ctx: &Context,
    conn: &Conn,
    header: &RequestHeader,
    req: JoinGroupRequest,
) -> JoinGroupResponse {
    let version = header.request_api_version;
    if ctx
        .consumer
        .active(ctx.broker().groups(), &req.group_id, ctx.now())
    {
        // Kafka 4 without its online upgrade path: protocols do not mix in one group.
        tracing::debug!(group = %&*req.group_id, "JoinGroup on a consumer-protocol group");
        return error(&req, version, E::InconsistentGroupProtocol.code());
    }
    let params = JoinParams {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: header
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        client_host: conn.client_host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if version == 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let member = params.member_id.clone();
    let outcome = ctx
        .classic
        .join(params, ctx.now())
        .wait(|| JoinOutcome {
            error: E::CoordinatorNotAvailable.code(),
            generation: -1,
            member_id: member,
            ..JoinOutcome::default()
        })
        .await;
    if outcome.error == 0 && outcome.member_id == outcome.leader && ctx.broker().durable_offsets() {
        // One record per generation: the leader's answer carries it.
        let record = [OffsetRecord::Group {
            group: req.group_id.to_string(),
            metadata: GroupMetadata {
                group_type: GroupType::Classic,
                generation: outcome.generation,
                protocol_type: outcome.protocol_type.clone().unwrap_or_default(),
                protocol: outcome.protocol.clone(),
            },
        }];
        let durable = super::blocking_if_durable(ctx, || ctx.broker().record_offsets(&record));
        if let Err(e) = durable {
            tracing::error!(group = %&*req.group_id, "group metadata not durable: {e}");
        }
    }
    response(outcome, version)
}

fn response(o: JoinOutcome, version: i16) -> JoinGroupResponse {
    let name = match o.protocol {
        Some(p) => Some(sb(&p)),
        None if version < 7 => Some(sb("")),
        None => None,
    };
    let members = o
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(sb(&m.member_id))
                .with_group_instance_id(m.instance_id.as_deref().map(sb))
                .with_metadata(m.metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(o.error)
        .with_generation_id(o.generation)
        .with_protocol_type(o.protocol_type.as_deref().map(sb))
        .with_protocol_name(name)
        .with_leader(sb(&o.leader))
        .with_member_id(sb(&o.member_id))
        .with_members(members)
}

/// `code`, generation -1.
pub fn error(req: &JoinGroupRequest, version: i16, code: i16) -> JoinGroupResponse {
    response(
        JoinOutcome {
            error: code,
            generation: -1,
            member_id: req.member_id.to_string(),
            ..JoinOutcome::default()
        },
        version,
    )
}
