//! Members' sessions: Heartbeat keeps a member alive (and tells it to rejoin during a
//! rebalance), LeaveGroup removes it, and [`Groups::tick`] expires sessions, member ids handed
//! out with MEMBER_ID_REQUIRED, initial delays and rebalance timeouts. A removal answers the
//! member's waiting requests and rebalances the rest of the group.

use super::{
    lock, ClassicConfig, Group, Groups, JoinOutcome, Member, Shared, State, SyncOutcome, NONE,
};
use crate::clock::Millis;
use kafka_protocol::ResponseError as E;

impl Member {
    fn expired(&self, now: Millis) -> bool {
        self.join.is_none()
            && self.sync.is_none()
            && now > self.last_seen.saturating_add(self.session_timeout_ms)
    }
}

impl Group {
    pub(super) fn remove_member(&mut self, id: &str) -> bool {
        let Some(mut m) = self.members.remove(id) else {
            return false;
        };
        if let Some(i) = &m.instance_id {
            if self.statics.get(i).map(String::as_str) == Some(id) {
                self.statics.remove(i);
            }
        }
        if let Some(tx) = m.join.take() {
            let _ = tx.send(JoinOutcome::error(E::UnknownMemberId.code(), id));
        }
        if let Some(tx) = m.sync.take() {
            let _ = tx.send(SyncOutcome::error(E::UnknownMemberId.code()));
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        true
    }

    /// After members were removed: rebalance, or let the join barrier finish without them.
    fn after_removal(&mut self, now: Millis, cfg: &ClassicConfig) {
        match self.state {
            State::Stable | State::CompletingRebalance => self.prepare_rebalance(now, cfg),
            State::PreparingRebalance => {}
            State::Empty | State::Dead => return,
        }
        self.try_complete_join(now);
    }

    fn heartbeat(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Millis,
    ) -> i16 {
        if self.state == State::Dead {
            return E::CoordinatorNotAvailable.code();
        }
        if self.fenced(instance_id, member_id) {
            return E::FencedInstanceId.code();
        }
        if self.state == State::Empty || !self.members.contains_key(member_id) {
            return E::UnknownMemberId.code();
        }
        if generation != self.generation {
            return E::IllegalGeneration.code();
        }
        self.touch(member_id, now);
        if self.state == State::PreparingRebalance {
            E::RebalanceInProgress.code()
        } else {
            NONE
        }
    }

    fn leave(&mut self, member_id: &str, instance_id: Option<&str>) -> i16 {
        if let Some(i) = instance_id {
            return match self.statics.get(i).cloned() {
                None => E::UnknownMemberId.code(),
                Some(id) if !member_id.is_empty() && id != member_id => E::FencedInstanceId.code(),
                Some(id) => {
                    self.remove_member(&id);
                    NONE
                }
            };
        }
        if self.pending.remove(member_id).is_some() || self.remove_member(member_id) {
            NONE
        } else {
            E::UnknownMemberId.code()
        }
    }

    fn tick(&mut self, now: Millis, cfg: &ClassicConfig) {
        self.pending.retain(|_, lapse| *lapse >= now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.expired(now))
            .map(|(id, _)| id.clone())
            .collect();
        if !expired.is_empty() {
            for id in &expired {
                tracing::info!(member = %id, "classic group member's session expired");
                self.remove_member(id);
            }
            self.after_removal(now, cfg);
        }
        self.try_complete_join(now);
    }
}

impl Groups {
    /// Heartbeat: NONE, REBALANCE_IN_PROGRESS (rejoin), or a fencing error.
    pub fn heartbeat(
        &self,
        group: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Millis,
    ) -> i16 {
        match self.get(group) {
            None => E::UnknownMemberId.code(),
            Some(g) => lock(&g).heartbeat(generation, member_id, instance_id, now),
        }
    }

    /// LeaveGroup of `members` (member id, instance id); one error code per member, or a
    /// group-level error.
    pub fn leave(
        &self,
        group: &str,
        members: &[(String, Option<String>)],
        now: Millis,
    ) -> Result<Vec<i16>, i16> {
        let Some(g) = self.get(group) else {
            return Ok(vec![E::UnknownMemberId.code(); members.len()]);
        };
        let mut g = lock(&g);
        if g.state == State::Dead {
            return Err(E::CoordinatorNotAvailable.code());
        }
        let codes: Vec<i16> = members
            .iter()
            .map(|(id, inst)| g.leave(id, inst.as_deref()))
            .collect();
        if codes.contains(&NONE) {
            g.after_removal(now, &self.config);
        }
        Ok(codes)
    }

    /// Expires sessions, pending member ids, initial delays and rebalance timeouts at `now`.
    pub fn tick(&self, now: Millis) {
        let all: Vec<Shared> = lock(&self.map).values().cloned().collect();
        for g in all {
            lock(&g).tick(now, &self.config);
        }
    }
}
