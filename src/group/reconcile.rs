//! Reconciliation: the next [`Snapshot`] from the membership, the previous snapshot and what was
//! released. KIP-848's model (Kafka's `GroupMetadataManager`, `TargetAssignmentBuilder` and
//! `CurrentAssignmentBuilder`), run by the coordinator for every member at once:
//!
//! 1. **Current assignment.** Each partition keeps the owner it had, if that member incarnation is
//!    still in the group and did not just release it; a member that left, expired or was fenced
//!    released everything at once.
//! 2. **Target assignment.** When the group epoch moved (a join, a leave, an expiry, a subscription
//!    or assignor change), the group's assignor computes the target of the new epoch from the
//!    previous target (which is what makes `cooperative-sticky`, Kafka's `uniform`, sticky).
//!    Otherwise the target stays.
//! 3. **Per member** (`CurrentAssignmentBuilder.computeNextAssignment`): `revoking` = owned −
//!    target. A member with something to revoke is `UNREVOKED_PARTITIONS`: it keeps everything it
//!    owns, gets nothing new and stays at its member epoch until it releases, at the latest by its
//!    rebalance timeout (the deadline is set when it enters the state). A member with nothing to
//!    revoke gets every partition of its target that nobody owns; the rest (still owned by others)
//!    stay pending (`UNRELEASED_PARTITIONS`) until their owners release them, and a request
//!    moves its member epoch to the group epoch.
//!
//! So a partition passes between two live members only through a release by its old owner, and
//! never has two owners: the new owner gets it in the snapshot that removes it from the old one.
//!
//! A partition whose owner is unchanged keeps its cursor; every other owned partition gets a fresh
//! one (its old cursor was closed by whoever ended the old ownership, before this build).
//!
//! The cost is O(P + M) for P partitions and M members, plus the assignor's when the epoch moved.

use super::cursor::Cursor;
use super::membership::{MemberInfo, Membership};
use super::snapshot::{MemberEntry, Snapshot, TopicState, NO_DEADLINE};
use crate::assignor::{assign, NO_OWNER};
use crate::loom::{Arc, StdArc};
use crate::topic::Topic;

impl Snapshot {
    /// The snapshot for `membership` after `prev`, at time `now` (ms). `released` lists partitions,
    /// as (topic index in `prev`, partition), that their owner in `prev` has just released; the
    /// caller closed their cursors. The target is recomputed iff `membership.group_epoch` differs
    /// from `prev`'s.
    pub(crate) fn build(
        membership: &Membership,
        prev: &Snapshot,
        released: &[(u32, u32)],
        now: u64,
    ) -> Snapshot {
        let topics: Vec<(&StdArc<str>, &Arc<Topic>)> = membership.topics.iter().collect();
        let members: Vec<(&StdArc<str>, &MemberInfo)> = membership.members.iter().collect();
        let topic_index = |name: &str| {
            topics
                .binary_search_by(|(n, _)| (***n).cmp(name))
                .expect("subscribed topics are registered") as u32
        };
        let subscriptions: Vec<Vec<u32>> = members
            .iter()
            .map(|(_, info)| info.topics.iter().map(|n| topic_index(n)).collect())
            .collect();
        // Previous member index -> current index, for the same incarnation only. Both lists are
        // sorted by id, so a walk in step finds most members by one pointer comparison; a binary
        // search covers the rest (joins and leaves shift the walk).
        let mut next = 0usize;
        let remap: Vec<u32> = prev
            .members
            .iter()
            .map(|pm| {
                let at = match members.get(next) {
                    Some((_, info)) if Arc::ptr_eq(&info.slot, &pm.slot) => Some(next),
                    _ => members
                        .binary_search_by(|(id, _)| (***id).cmp(&*pm.id))
                        .ok()
                        .filter(|&i| Arc::ptr_eq(&members[i].1.slot, &pm.slot)),
                };
                match at {
                    Some(i) => {
                        next = i + 1;
                        i as u32
                    }
                    None => NO_OWNER,
                }
            })
            .collect();
        let remapped = |o: u32| remap.get(o as usize).copied().unwrap_or(NO_OWNER);
        // Current index of each previous topic (topics are never removed from a group).
        let prev_topics: Vec<Option<&TopicState>> = topics
            .iter()
            .map(|(name, _)| prev.topic(name).map(|t| &prev.topics[t]))
            .collect();
        let index_of_prev: Vec<u32> = prev.topics.iter().map(|ts| topic_index(&ts.name)).collect();
        let partitions: Vec<u32> = topics.iter().map(|(_, t)| t.partition_count()).collect();

        // 1. The current assignment after removals and releases.
        let carry = |t: usize, of: fn(&TopicState) -> &[u32]| -> Vec<u32> {
            let mut v = vec![NO_OWNER; partitions[t] as usize];
            if let Some(pt) = prev_topics[t] {
                for (slot, &o) in v.iter_mut().zip(of(pt)) {
                    *slot = remapped(o);
                }
            }
            v
        };
        let mut base: Vec<Vec<u32>> = (0..topics.len())
            .map(|t| carry(t, |ts| &ts.owners))
            .collect();
        for &(pt, p) in released {
            base[index_of_prev[pt as usize] as usize][p as usize] = NO_OWNER;
        }

        // 2. The target assignment of the group epoch.
        let target: Vec<Vec<u32>> = {
            let previous: Vec<Vec<u32>> = (0..topics.len())
                .map(|t| carry(t, |ts| &ts.target))
                .collect();
            if membership.group_epoch != prev.group_epoch {
                assign(membership.assignor, &partitions, &subscriptions, &previous)
            } else {
                previous
            }
        };

        // 3. Per member: who has something to revoke, then every free partition goes to its target
        //    unless that member must revoke first.
        let mut unrevoked = vec![false; members.len()];
        for (owners, targets) in base.iter().zip(&target) {
            for (&o, &tg) in owners.iter().zip(targets) {
                if o != NO_OWNER && o != tg {
                    unrevoked[o as usize] = true;
                }
            }
        }
        // The owners after this step: every free partition goes to its target unless that member
        // must revoke first. Counted per member first, so that each member's lists are allocated
        // once, at their exact size.
        let owners: Vec<Vec<u32>> = base
            .iter()
            .zip(&target)
            .map(|(base, targets)| {
                base.iter()
                    .zip(targets)
                    .map(|(&o, &tg)| {
                        if o == NO_OWNER && tg != NO_OWNER && !unrevoked[tg as usize] {
                            tg
                        } else {
                            o
                        }
                    })
                    .collect()
            })
            .collect();
        let mut counts = vec![[0usize; 3]; members.len()];
        for (owners, targets) in owners.iter().zip(&target) {
            for (&o, &tg) in owners.iter().zip(targets) {
                if o != NO_OWNER {
                    counts[o as usize][0] += 1;
                    counts[o as usize][1] += usize::from(o != tg);
                }
                if tg != NO_OWNER && tg != o {
                    counts[tg as usize][2] += 1;
                }
            }
        }
        let lists = |i: usize| -> Vec<Vec<(u32, u32)>> {
            counts.iter().map(|c| Vec::with_capacity(c[i])).collect()
        };
        let (mut owned, mut revoking, mut pending) = (lists(0), lists(1), lists(2));
        let topic_states: Box<[TopicState]> = topics
            .iter()
            .zip(owners.into_iter().zip(target))
            .enumerate()
            .map(|(t, ((name, topic), (owners, targets)))| {
                let base = &base[t];
                let mut cursors = Vec::with_capacity(owners.len());
                for (p, (&o, &tg)) in owners.iter().zip(&targets).enumerate() {
                    let at = (t as u32, p as u32);
                    if o != NO_OWNER {
                        owned[o as usize].push(at);
                        if o != tg {
                            revoking[o as usize].push(at);
                        }
                    }
                    if tg != NO_OWNER && tg != o {
                        pending[tg as usize].push(at);
                    }
                    cursors.push(if o == NO_OWNER {
                        None
                    } else if o == base[p] {
                        // Kept by the same incarnation: `base` came from `prev`, which had a cursor.
                        let pt = prev_topics[t].expect("a kept partition was owned before");
                        pt.cursors[p].clone()
                    } else {
                        Some(Arc::new(Cursor::new()))
                    });
                }
                TopicState {
                    name: StdArc::clone(name),
                    topic: Arc::clone(topic),
                    owners: owners.into_boxed_slice(),
                    target: targets.into_boxed_slice(),
                    cursors: cursors.into_boxed_slice(),
                }
            })
            .collect();

        // Deadlines: kept while a member stays unrevoked, set when it becomes so.
        let mut prev_deadline = vec![NO_DEADLINE; members.len()];
        for (pm, &m) in prev.members.iter().zip(&remap) {
            if m != NO_OWNER {
                prev_deadline[m as usize] = pm.deadline;
            }
        }
        let member_entries = members
            .iter()
            .enumerate()
            .zip(owned.into_iter().zip(revoking).zip(pending))
            .zip(subscriptions)
            .map(
                |(((m, (id, info)), ((owned, revoking), pending)), topics)| {
                    let deadline = match (revoking.is_empty(), prev_deadline[m]) {
                        (true, _) => NO_DEADLINE,
                        (false, NO_DEADLINE) => now.saturating_add(info.slot.rebalance_timeout_ms),
                        (false, d) => d,
                    };
                    MemberEntry {
                        id: StdArc::clone(id),
                        slot: Arc::clone(&info.slot),
                        topics: topics.into_boxed_slice(),
                        owned: owned.into_boxed_slice(),
                        revoking: revoking.into_boxed_slice(),
                        pending: pending.into_boxed_slice(),
                        deadline,
                    }
                },
            )
            .collect();
        Snapshot {
            group_epoch: membership.group_epoch,
            assignor: membership.assignor,
            topics: topic_states,
            members: member_entries,
        }
    }
}
