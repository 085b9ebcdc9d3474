//! The sync barrier (SyncGroup): after the join barrier, followers wait for the leader's
//! SyncGroup, which brings every member's assignment; each member then gets its own bytes, as
//! the leader encoded them (the broker never reads them).

use super::{lock, Group, Groups, Reply, State, NONE};
use crate::clock::Millis;
use bytes::Bytes;
use kafka_protocol::ResponseError as E;
use std::collections::HashMap;
use tokio::sync::oneshot;

/// A SyncGroup request, decoded.
#[derive(Debug, Clone, Default)]
pub struct SyncParams {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    /// SyncGroup v5+: checked against the group's when present.
    pub protocol_type: Option<String>,
    /// SyncGroup v5+: checked against the chosen protocol when present.
    pub protocol_name: Option<String>,
    /// The leader's (member id, assignment bytes); empty from followers.
    pub assignments: Vec<(String, Bytes)>,
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    /// The member's assignment, as the leader encoded it.
    pub assignment: Bytes,
}

impl SyncOutcome {
    pub(super) fn error(error: i16) -> Self {
        SyncOutcome {
            error,
            ..SyncOutcome::default()
        }
    }
}

impl Group {
    fn sync(&mut self, p: SyncParams, now: Millis) -> Reply<SyncOutcome> {
        let fail = |e: E| Reply::Now(SyncOutcome::error(e.code()));
        if self.state == State::Dead {
            return fail(E::CoordinatorNotAvailable);
        }
        if self.fenced(p.instance_id.as_deref(), &p.member_id) {
            return fail(E::FencedInstanceId);
        }
        if !self.members.contains_key(&p.member_id) {
            return fail(E::UnknownMemberId);
        }
        if p.generation != self.generation {
            return fail(E::IllegalGeneration);
        }
        let type_ok = p.protocol_type.is_none() || p.protocol_type == self.protocol_type;
        let name_ok = p.protocol_name.is_none() || p.protocol_name == self.protocol;
        if !type_ok || !name_ok {
            return fail(E::InconsistentGroupProtocol);
        }
        match self.state {
            State::Empty | State::Dead => fail(E::UnknownMemberId),
            State::PreparingRebalance => fail(E::RebalanceInProgress),
            State::Stable => {
                self.touch(&p.member_id, now);
                Reply::Now(self.sync_outcome(&p.member_id))
            }
            State::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let m = self.members.get_mut(&p.member_id).expect("checked above");
                m.last_seen = now;
                if let Some(old) = m.sync.replace(tx) {
                    let _ = old.send(SyncOutcome::error(E::RebalanceInProgress.code()));
                }
                if self.leader.as_deref() == Some(p.member_id.as_str()) {
                    let mut given: HashMap<String, Bytes> = p.assignments.into_iter().collect();
                    for (id, m) in self.members.iter_mut() {
                        m.assignment = given.remove(id).unwrap_or_default();
                    }
                    self.state = State::Stable;
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let outcome = self.sync_outcome(&id);
                        if let Some(tx) = self.members.get_mut(&id).and_then(|m| m.sync.take()) {
                            let _ = tx.send(outcome);
                        }
                    }
                }
                Reply::Later(rx)
            }
        }
    }

    fn sync_outcome(&self, member_id: &str) -> SyncOutcome {
        SyncOutcome {
            error: NONE,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment: self.members[member_id].assignment.clone(),
        }
    }
}

impl Groups {
    /// SyncGroup. A follower's answer waits for the leader's SyncGroup.
    pub fn sync(&self, p: SyncParams, now: Millis) -> Reply<SyncOutcome> {
        match self.get(&p.group_id) {
            None => Reply::Now(SyncOutcome::error(E::UnknownMemberId.code())),
            Some(g) => lock(&g).sync(p, now),
        }
    }
}
