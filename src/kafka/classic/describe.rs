//! Read-only views of classic groups: DescribeGroups (state, protocol, members with their
//! metadata and assignment), ListGroups, and the members' subscriptions for OffsetDelete.

use super::{lock, Group, Groups, Shared, State};
use bytes::Bytes;

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Metadata for the chosen protocol (empty before the first generation).
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub state: State,
    pub protocol_type: String,
    pub protocol: String,
    pub generation: i32,
    pub members: Vec<MemberDescription>,
}

impl Group {
    fn describe(&self) -> GroupDescription {
        GroupDescription {
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: self.protocol.clone().unwrap_or_default(),
            generation: self.generation,
            members: self
                .members
                .iter()
                .map(|(id, m)| MemberDescription {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata(self.protocol.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }
}

impl Groups {
    /// The group as DescribeGroups shows it, if it exists here.
    pub fn describe(&self, group: &str) -> Option<GroupDescription> {
        self.get(group).map(|g| lock(&g).describe())
    }

    /// (group id, state, protocol type) of every classic group, sorted by id.
    pub fn list(&self) -> Vec<(String, State, String)> {
        let all: Vec<(String, Shared)> = lock(&self.map)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out: Vec<(String, State, String)> = all
            .into_iter()
            .map(|(id, g)| {
                let g = lock(&g);
                (id, g.state, g.protocol_type.clone().unwrap_or_default())
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The metadata of every member for the chosen protocol (their subscriptions, for
    /// OffsetDelete's "is the topic subscribed" check).
    pub fn member_metadata(&self, group: &str) -> Vec<Bytes> {
        let Some(g) = self.get(group) else {
            return Vec::new();
        };
        let g = lock(&g);
        g.members
            .values()
            .map(|m| m.metadata(g.protocol.as_deref()))
            .collect()
    }
}
