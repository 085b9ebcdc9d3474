//! ListGroups (key 16, v0–5): the classic groups with their states, and the groups only the
//! engine knows ("Empty", or "Stable" with Maelstrom members; protocol type "consumer"). v4+
//! filter by state, v5+ by type: "consumer" for a group with live KIP-848 members (state
//! "Stable", or "Reconciling" while members converge), "classic" for the others.

use super::sb;
use crate::kafka::context::Context;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use std::collections::BTreeMap;

/// Every group that passes the filters.
pub fn handle(ctx: &Context, req: ListGroupsRequest) -> ListGroupsResponse {
    // id -> (state, protocol type, group type)
    let mut all: BTreeMap<String, (String, String, &str)> = BTreeMap::new();
    let now = ctx.now();
    let groups = ctx.broker().groups();
    for id in groups.list_groups() {
        if ctx.consumer.active(groups, &id, now) {
            let state = if groups.reconciling(&id) {
                "Reconciling"
            } else {
                "Stable"
            };
            all.insert(id, (state.to_string(), "consumer".to_string(), "consumer"));
            continue;
        }
        let state = match ctx.broker().describe(&id, now) {
            Ok(d) if !d.members.is_empty() => "Stable",
            _ => "Empty",
        };
        all.insert(id, (state.to_string(), "consumer".to_string(), "classic"));
    }
    for (id, state, protocol_type) in ctx.classic.list() {
        if all.get(&id).is_some_and(|(_, _, kind)| *kind == "consumer") {
            continue;
        }
        all.insert(id, (state.name().to_string(), protocol_type, "classic"));
    }
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let groups = all
        .into_iter()
        .filter(|(_, (state, _, _))| states.is_empty() || states.contains(&state.to_lowercase()))
        .filter(|(_, (_, _, kind))| types.is_empty() || types.iter().any(|t| t == kind))
        .map(|(id, (state, protocol_type, kind))| {
            ListedGroup::default()
                .with_group_id(GroupId(sb(&id)))
                .with_protocol_type(sb(&protocol_type))
                .with_group_state(sb(&state))
                .with_group_type(sb(kind))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// `code`, no groups.
pub fn error(code: i16) -> ListGroupsResponse {
    ListGroupsResponse::default().with_error_code(code)
}
