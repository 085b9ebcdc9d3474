//! Heartbeat (key 12): keeps a classic member's session; REBALANCE_IN_PROGRESS (27) tells it to
//! rejoin, UNKNOWN_MEMBER_ID (25), ILLEGAL_GENERATION (22) and FENCED_INSTANCE_ID (82) that it was
//! fenced.

use crate::kafka::context::Context;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

/// The member's standing.
pub fn handle(ctx: &Context, req: HeartbeatRequest) -> HeartbeatResponse {
    let code = ctx.classic.heartbeat(
        &req.group_id,
        req.generation_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        ctx.now(),
    );
    HeartbeatResponse::default().with_error_code(code)
}

/// `code`.
pub fn error(code: i16) -> HeartbeatResponse {
    HeartbeatResponse::default().with_error_code(code)
}
