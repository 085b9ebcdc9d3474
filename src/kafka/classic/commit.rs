//! OffsetCommit's fencing for a classic group (Kafka's `validateOffsetCommit`): the commit
//! must come from a current member at the current generation (or, to an Empty group, with
//! generation -1), outside the sync barrier, and runs while the group is locked so that a commit
//! and a rebalance are ordered as in Kafka.

use super::{lock, Group, Groups, State, NONE};
use crate::clock::Millis;
use kafka_protocol::ResponseError as E;

impl Group {
    /// Kafka's `validateOffsetCommit` for a classic group.
    fn check_commit(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Millis,
    ) -> i16 {
        if self.state == State::Dead {
            return E::CoordinatorNotAvailable.code();
        }
        if generation < 0 && self.state == State::Empty {
            return NONE;
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            if self.fenced(instance_id, member_id) {
                return E::FencedInstanceId.code();
            }
            if !self.members.contains_key(member_id) {
                return E::UnknownMemberId.code();
            }
            if generation != self.generation {
                return E::IllegalGeneration.code();
            }
        } else {
            return E::UnknownMemberId.code();
        }
        if self.state == State::CompletingRebalance {
            return E::RebalanceInProgress.code();
        }
        self.touch(member_id, now);
        NONE
    }
}

impl Groups {
    /// OffsetCommit's fencing (Kafka's `validateOffsetCommit`): on success runs `commit` while the
    /// group is locked, so no rebalance slips between the check and the commit. A group unknown
    /// here accepts only commits with a negative generation (no group management).
    pub fn commit<R>(
        &self,
        group: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Millis,
        commit: impl FnOnce() -> R,
    ) -> Result<R, i16> {
        let Some(g) = self.get(group) else {
            return if generation < 0 {
                Ok(commit())
            } else {
                Err(E::IllegalGeneration.code())
            };
        };
        let mut g = lock(&g);
        match g.check_commit(generation, member_id, instance_id, now) {
            NONE => Ok(commit()),
            e => Err(e),
        }
    }
}
