//! A group's published, immutable snapshot: the current assignment (who owns each partition now),
//! the target assignment of the group epoch, and per member what it is still to revoke or to
//! receive.
//!
//! Every change builds a new [`Snapshot`] from the [`Membership`](super::membership::Membership) and
//! the previous snapshot (`group/reconcile.rs`), then the coordinator swaps it in. A snapshot never
//! changes after it is built; what moves inside it are the atomics of the [`Cursor`]s and
//! [`MemberSlot`]s it shares with its neighbours.

use super::cursor::Cursor;
use super::membership::MemberSlot;
use super::{MemberState, MemberView};
use crate::assignor::{AssignorKind, NO_OWNER};
use crate::loom::{Arc, StdArc};
use crate::topic::Topic;

/// No rebalance deadline.
pub(crate) const NO_DEADLINE: u64 = u64::MAX;

/// One topic of a snapshot: who owns each partition, who is to own it, and the owners' cursors.
#[derive(Debug)]
pub(crate) struct TopicState {
    pub(crate) name: StdArc<str>,
    pub(crate) topic: Arc<Topic>,
    /// The current owner (member index) per partition, or [`NO_OWNER`]. A partition pending
    /// revocation is still owned by its old owner.
    pub(crate) owners: Box<[u32]>,
    /// The owner per partition in the target assignment of the group epoch, or [`NO_OWNER`].
    pub(crate) target: Box<[u32]>,
    /// The owner's cursor per owned partition.
    pub(crate) cursors: Box<[Option<Arc<Cursor>>]>,
}

/// One member of a snapshot.
#[derive(Debug)]
pub(crate) struct MemberEntry {
    pub(crate) id: StdArc<str>,
    pub(crate) slot: Arc<MemberSlot>,
    /// The topics it subscribes to (topic indices, sorted).
    pub(crate) topics: Box<[u32]>,
    /// The partitions it owns now, as (topic index, partition), sorted; includes `revoking`.
    pub(crate) owned: Box<[(u32, u32)]>,
    /// Owned partitions that the target assignment gives to another member (or to nobody): pending
    /// revocation, until the member releases them.
    pub(crate) revoking: Box<[(u32, u32)]>,
    /// Partitions the target assignment gives it that it does not own yet: pending assignment
    /// (held by another member until released, or waiting for this member's own revocations).
    pub(crate) pending: Box<[(u32, u32)]>,
    /// When its rebalance timeout runs out (ms), while it has partitions pending revocation; else
    /// [`NO_DEADLINE`].
    pub(crate) deadline: u64,
}

impl MemberEntry {
    /// Kafka's member state (`MemberState` in `CurrentAssignmentBuilder`).
    pub(crate) fn state(&self) -> MemberState {
        if !self.revoking.is_empty() {
            MemberState::UnrevokedPartitions
        } else if !self.pending.is_empty() {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        }
    }
}

/// A group epoch's assignment, as far as reconciliation has gone: immutable once published.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The group epoch whose target assignment this snapshot carries.
    pub(crate) group_epoch: u64,
    pub(crate) assignor: AssignorKind,
    /// Sorted by name.
    pub(crate) topics: Box<[TopicState]>,
    /// Sorted by id.
    pub(crate) members: Box<[MemberEntry]>,
}

impl Snapshot {
    /// The snapshot of a new group: epoch 0, nobody.
    pub(crate) fn empty(assignor: AssignorKind) -> Self {
        Snapshot {
            group_epoch: 0,
            assignor,
            topics: Box::new([]),
            members: Box::new([]),
        }
    }

    /// The index of member `id`.
    #[inline]
    pub(crate) fn member(&self, id: &str) -> Option<usize> {
        self.members.binary_search_by(|m| (*m.id).cmp(id)).ok()
    }

    /// The index of topic `name`.
    #[inline]
    pub(crate) fn topic(&self, name: &str) -> Option<usize> {
        self.topics.binary_search_by(|t| (*t.name).cmp(name)).ok()
    }

    /// Whether the member incarnation `slot` owns partition `p` of topic `name` here (pending
    /// revocation included: Kafka lets the old owner commit those until it releases them).
    #[inline]
    pub(crate) fn owns(&self, slot: &Arc<MemberSlot>, name: &str, p: u32) -> bool {
        self.topic(name)
            .and_then(|t| self.topics[t].owners.get(p as usize))
            .and_then(|&o| self.members.get(o as usize))
            .is_some_and(|m| Arc::ptr_eq(&m.slot, slot))
    }

    /// Whether member `m` subscribes to topic `name`.
    pub(crate) fn subscribed(&self, m: usize, name: &str) -> bool {
        self.topic(name)
            .is_some_and(|t| self.members[m].topics.contains(&(t as u32)))
    }

    /// The current owner of partition `p` of topic index `t`.
    pub(crate) fn owner(&self, t: usize, p: u32) -> Option<&MemberEntry> {
        let &o = self.topics[t].owners.get(p as usize)?;
        self.members.get(o as usize)
    }

    /// The member epoch that member `m` reaches by a request served from this snapshot: the group
    /// epoch, unless it still has partitions to revoke (then it stays where it was, as in Kafka).
    #[inline]
    pub(crate) fn reach(&self, m: usize) -> u64 {
        let member = &self.members[m];
        if member.revoking.is_empty() {
            member.slot.advance(self.group_epoch)
        } else {
            member.slot.epoch()
        }
    }

    fn names(&self, parts: &[(u32, u32)]) -> Vec<(String, u32)> {
        parts
            .iter()
            .map(|&(t, p)| (self.topics[t as usize].name.to_string(), p))
            .collect()
    }

    /// What member `m` owns, as the API shows it, at member epoch `epoch`.
    pub(crate) fn view(&self, m: usize, epoch: u64) -> MemberView {
        let member = &self.members[m];
        MemberView {
            member_epoch: epoch,
            group_epoch: self.group_epoch,
            state: member.state(),
            partitions: self.names(&member.owned),
            revoking: self.names(&member.revoking),
            pending: self.names(&member.pending),
        }
    }

    /// Every invariant of a published snapshot that can be checked from it alone:
    /// - each partition has at most one owner, a member, whose lists agree; each owned partition has
    ///   a cursor and no unowned one does;
    /// - every partition of a topic with subscribers has a target owner that subscribes to it, and
    ///   the others have none;
    /// - `revoking` is exactly the owned partitions whose target is someone else (or nobody), and
    ///   `pending` the targeted ones the member does not own;
    /// - a member with partitions to revoke has a deadline, and one without has none;
    /// - a partition is unowned only if its target member still has partitions to revoke (or it
    ///   has no target): reconciliation hands every free partition to its target at once.
    pub(crate) fn check(&self) -> Result<(), String> {
        let n = self.members.len();
        let mut owned = vec![Vec::new(); n];
        let mut revoking = vec![Vec::new(); n];
        let mut pending = vec![Vec::new(); n];
        for (t, ts) in self.topics.iter().enumerate() {
            let count = ts.topic.partition_count() as usize;
            if ts.owners.len() != count || ts.cursors.len() != count || ts.target.len() != count {
                return Err(format!("topic {} has the wrong shape", ts.name));
            }
            let subscribed = self.members.iter().any(|m| m.topics.contains(&(t as u32)));
            for p in 0..count {
                let (o, tg) = (ts.owners[p], ts.target[p]);
                let at = (t as u32, p as u32);
                if (o == NO_OWNER) != ts.cursors[p].is_none() {
                    return Err(format!("{}-{p}: owner and cursor disagree", ts.name));
                }
                if o != NO_OWNER {
                    if o as usize >= n {
                        return Err(format!("{}-{p} is owned by a non-member", ts.name));
                    }
                    owned[o as usize].push(at);
                    if tg != o {
                        revoking[o as usize].push(at);
                    }
                }
                if subscribed != (tg != NO_OWNER) {
                    return Err(format!(
                        "{}-{p}: target and subscriptions disagree",
                        ts.name
                    ));
                }
                if tg != NO_OWNER {
                    if tg as usize >= n || !self.members[tg as usize].topics.contains(&(t as u32)) {
                        return Err(format!("{}-{p} targets a non-subscriber", ts.name));
                    }
                    if tg != o {
                        pending[tg as usize].push(at);
                        if o == NO_OWNER && self.members[tg as usize].revoking.is_empty() {
                            return Err(format!(
                                "{}-{p} is free but not given to its target",
                                ts.name
                            ));
                        }
                    }
                }
            }
        }
        for (m, member) in self.members.iter().enumerate() {
            if *member.owned != *owned[m]
                || *member.revoking != *revoking[m]
                || *member.pending != *pending[m]
            {
                return Err(format!(
                    "member {}'s lists disagree with the owners",
                    member.id
                ));
            }
            if member.revoking.is_empty() != (member.deadline == NO_DEADLINE) {
                return Err(format!("member {}'s deadline disagrees", member.id));
            }
        }
        Ok(())
    }
}
