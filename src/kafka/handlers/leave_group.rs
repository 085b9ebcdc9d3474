//! LeaveGroup (key 13): v0–2 one `member_id`, whose error is the top-level one; v3+ a batch of
//! members (KIP-345, static members by `group.instance.id`), each with its own error.

use super::sb;
use crate::kafka::context::Context;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

fn leaving(req: &LeaveGroupRequest, version: i16) -> Vec<(String, Option<String>)> {
    if version < 3 {
        vec![(req.member_id.to_string(), None)]
    } else {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    }
}

/// Removes the members; the group rebalances without them.
pub fn handle(ctx: &Context, version: i16, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let members = leaving(&req, version);
    match ctx.classic.leave(&req.group_id, &members, ctx.now()) {
        Err(code) => error(&req, code),
        Ok(codes) if version < 3 => LeaveGroupResponse::default().with_error_code(codes[0]),
        Ok(codes) => LeaveGroupResponse::default().with_members(
            members
                .iter()
                .zip(codes)
                .map(|((id, inst), code)| {
                    MemberResponse::default()
                        .with_member_id(sb(id))
                        .with_group_instance_id(inst.as_deref().map(sb))
                        .with_error_code(code)
                })
                .collect(),
        ),
    }
}

/// `code` at the top level.
pub fn error(_req: &LeaveGroupRequest, code: i16) -> LeaveGroupResponse {
    LeaveGroupResponse::default().with_error_code(code)
}
