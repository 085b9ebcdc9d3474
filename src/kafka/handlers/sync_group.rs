//! SyncGroup (key 14): the sync barrier of [`crate::kafka::classic`]. The leader brings every
//! member's assignment; each member gets its own bytes, as the leader encoded them.

use super::sb;
use crate::kafka::classic::{SyncOutcome, SyncParams};
use crate::kafka::context::Context;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::ResponseError as E;

/// Syncs, waiting for the leader's assignment when needed.
pub async fn handle(ctx: &Context, req: SyncGroupRequest) -> SyncGroupResponse {
    let params = SyncParams {
        group_id: req.group_id.to_string(),
        generation: req.generation_id,
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        protocol_type: req.protocol_type.as_ref().map(|s| s.to_string()),
        protocol_name: req.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let o = ctx
        .classic
        .sync(params, ctx.now())
        .wait(|| SyncOutcome {
            error: E::CoordinatorNotAvailable.code(),
            ..SyncOutcome::default()
        })
        .await;
    SyncGroupResponse::default()
        .with_error_code(o.error)
        .with_protocol_type(o.protocol_type.as_deref().map(sb))
        .with_protocol_name(o.protocol.as_deref().map(sb))
        .with_assignment(o.assignment)
}

/// `code`, empty assignment.
pub fn error(code: i16) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(code)
}
