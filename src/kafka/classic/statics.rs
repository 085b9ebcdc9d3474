//! Static membership (KIP-345, `group.instance.id`): an instance id names one member id at a
//! time; a request from any other member id with that instance id is fenced, and a static member
//! that rejoins with an empty member id takes over its old member (and, in a stable group with an
//! unchanged subscription, its old assignment, with no rebalance unless it led the group).

use super::{ClassicConfig, Group, JoinOutcome, JoinParams, Reply, State, SyncOutcome};
use crate::clock::Millis;
use kafka_protocol::ResponseError as E;

impl Group {
    /// Kafka's `isStaticMemberFenced`: the instance id is known and belongs to another member id.
    /// Checked before "is it a member", so a zombie static member is told it is fenced.
    pub(super) fn fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        instance_id
            .and_then(|i| self.statics.get(i))
            .is_some_and(|id| id != member_id)
    }

    /// A static member rejoins with an empty member id: it replaces its old member id (KIP-345).
    pub(super) fn rejoin_static(
        &mut self,
        old: String,
        new_id: String,
        p: JoinParams,
        now: Millis,
        cfg: &ClassicConfig,
    ) -> Reply<JoinOutcome> {
        let mut m = self.members.remove(&old).expect("statics point at members");
        if let Some(tx) = m.join.take() {
            let _ = tx.send(JoinOutcome::error(E::FencedInstanceId.code(), &old));
        }
        if let Some(tx) = m.sync.take() {
            let _ = tx.send(SyncOutcome::error(E::FencedInstanceId.code()));
        }
        let was_leader = self.leader.as_deref() == Some(old.as_str());
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        let same = m.protocols == p.protocols;
        m.last_seen = now;
        m.client_id = p.client_id.clone();
        m.client_host = p.client_host.clone();
        m.session_timeout_ms = p.session_timeout_ms.max(0) as u64;
        m.rebalance_timeout_ms = p.rebalance_timeout_ms.max(0) as u64;
        self.members.insert(new_id.clone(), m);
        if let Some(i) = &p.instance_id {
            self.statics.insert(i.clone(), new_id.clone());
        }
        if self.state == State::Stable && same && !was_leader {
            // Same subscription in a stable group: its old assignment, no rebalance.
            return Reply::Now(self.outcome_for(&new_id));
        }
        let p = JoinParams {
            member_id: new_id,
            ..p
        };
        let reply = self.update_member(p, now);
        if self.state != State::PreparingRebalance {
            self.prepare_rebalance(now, cfg);
            self.try_complete_join(now);
        }
        reply
    }
}
