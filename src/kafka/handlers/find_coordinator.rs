//! FindCoordinator (key 10): this broker coordinates every group.
//!
//! v0–3 carry one key; v4+ a batch of `coordinator_keys` (KIP-699) answered one by one. Key type
//! 0 is a group; 1 (a transactional id) gets COORDINATOR_NOT_AVAILABLE (15), since transactions
//! are not served.

use super::sb;
use crate::kafka::context::{Context, NODE_ID};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as E;

fn answer(ctx: &Context, key_type: i8) -> (i16, i32, StrBytes, i32) {
    if key_type == 0 {
        (
            0,
            NODE_ID,
            sb(&ctx.config.advertised_host),
            ctx.config.advertised_port,
        )
    } else {
        (E::CoordinatorNotAvailable.code(), -1, sb(""), -1)
    }
}

/// Our address, for each key.
pub fn handle(ctx: &Context, version: i16, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let (code, node, host, port) = answer(ctx, req.key_type);
    if version < 4 {
        return FindCoordinatorResponse::default()
            .with_error_code(code)
            .with_node_id(BrokerId(node))
            .with_host(host)
            .with_port(port);
    }
    let coordinators = req
        .coordinator_keys
        .into_iter()
        .map(|key| {
            Coordinator::default()
                .with_key(key)
                .with_error_code(code)
                .with_node_id(BrokerId(node))
                .with_host(host.clone())
                .with_port(port)
        })
        .collect();
    FindCoordinatorResponse::default().with_coordinators(coordinators)
}

/// `code`, in the shape of the request's version.
pub fn error(req: &FindCoordinatorRequest, version: i16, code: i16) -> FindCoordinatorResponse {
    if version < 4 {
        FindCoordinatorResponse::default()
            .with_error_code(code)
            .with_node_id(BrokerId(-1))
            .with_port(-1)
    } else {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                Coordinator::default()
                    .with_key(k.clone())
                    .with_error_code(code)
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    }
}
