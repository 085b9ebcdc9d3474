//! ListGroups (key 16, v0–5): the classic groups with their states, and the groups only the
//! engine knows ("Empty", or "Stable" with Maelstrom members; protocol type "consumer"). v4+
//! filter by state, v5+ by type ("classic" for all of them).

use super::sb;
use crate::kafka::context::Context;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use std::collections::BTreeMap;

/// Every group that passes the filters.
pub fn handle(ctx: &Context, req: ListGroupsRequest) -> ListGroupsResponse {
    let mut all: BTreeMap<String, (String, String)> = BTreeMap::new();
    let now = ctx.now();
    for id in ctx.broker().groups().list_groups() {
        let state = match ctx.broker().describe(&id, now) {
            Ok(d) if !d.members.is_empty() => "Stable",
            _ => "Empty",
        };
        all.insert(id, (state.to_string(), "consumer".to_string()));
    }
    for (id, state, protocol_type) in ctx.classic.list() {
        all.insert(id, (state.name().to_string(), protocol_type));
    }
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let groups = all
        .into_iter()
        .filter(|(_, (state, _))| states.is_empty() || states.contains(&state.to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
        .map(|(id, (state, protocol_type))| {
            ListedGroup::default()
                .with_group_id(GroupId(sb(&id)))
                .with_protocol_type(sb(&protocol_type))
                .with_group_state(sb(&state))
                .with_group_type(sb("classic"))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// `code`, no groups.
pub fn error(code: i16) -> ListGroupsResponse {
    ListGroupsResponse::default().with_error_code(code)
}
