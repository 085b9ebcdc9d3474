//! A group's membership (the cold state behind its mutex) and its published, immutable snapshot.
//!
//! Every membership change builds a new [`Snapshot`] from the [`Membership`] and the previous
//! snapshot, then the coordinator swaps it in. A snapshot never changes after it is built; what moves
//! inside it are the atomics of the [`Cursor`]s and [`MemberSlot`]s it shares with its neighbours.
//!
//! # Orderings
//!
//! - `MemberSlot::last_seen` is a timestamp raised with `fetch_max(Relaxed)` by polls and heartbeats
//!   and read `Relaxed` by expiry. It publishes nothing: a stale read can only misjudge a member
//!   that polled within the same instant as the expiry check, which is the inherent race of any
//!   session timeout (the member is then either kept or removed, and both are consistent states).
//! - `MemberSlot::next` picks the partition a poll starts at; `fetch_add(Relaxed)` suffices, as it
//!   only spreads the work.

use super::cursor::Cursor;
use super::MemberView;
use crate::assignor::{assign, AssignorKind, NO_OWNER};
use crate::loom::{Arc, AtomicU64, AtomicUsize, Ordering, StdArc};
use crate::topic::Topic;
use std::collections::{BTreeMap, BTreeSet};

/// One member incarnation's live state, shared by every snapshot that has the member. A member that
/// leaves or expires and joins again gets a new slot, so nothing of the old one carries over.
#[derive(Debug)]
pub(crate) struct MemberSlot {
    /// The last time (ms) the member joined, polled or heartbeat.
    last_seen: AtomicU64,
    pub(crate) session_timeout_ms: u64,
    pub(crate) auto_commit: bool,
    /// Where the next poll starts among the member's partitions.
    next: AtomicUsize,
}

impl MemberSlot {
    pub(crate) fn new(now: u64, session_timeout_ms: u64, auto_commit: bool) -> Self {
        MemberSlot {
            last_seen: AtomicU64::new(now),
            session_timeout_ms,
            auto_commit,
            next: AtomicUsize::new(0),
        }
    }

    /// Whether the session has run out by `now`: no join, poll or heartbeat for the timeout.
    #[inline]
    pub(crate) fn expired(&self, now: u64) -> bool {
        // Relaxed: see "Orderings".
        now.saturating_sub(self.last_seen.load(Ordering::Relaxed)) >= self.session_timeout_ms
    }

    /// Keeps the session alive until at least `now` + the timeout.
    #[inline]
    pub(crate) fn touch(&self, now: u64) {
        // Relaxed: see "Orderings".
        self.last_seen.fetch_max(now, Ordering::Relaxed);
    }

    /// The index of the partition the next poll starts at, among `n`.
    #[inline]
    pub(crate) fn next_start(&self, n: usize) -> usize {
        // Relaxed: see "Orderings".
        self.next.fetch_add(1, Ordering::Relaxed) % n
    }
}

/// A member as the cold state knows it.
#[derive(Debug)]
pub(crate) struct MemberInfo {
    /// The topics it subscribes to.
    pub(crate) topics: BTreeSet<StdArc<str>>,
    pub(crate) slot: Arc<MemberSlot>,
}

/// The cold state of a group, behind its mutex.
#[derive(Debug)]
pub(crate) struct Membership {
    pub(crate) generation: u64,
    pub(crate) assignor: AssignorKind,
    /// Every topic the group has seen (subscribed now or before, or committed through the broker).
    pub(crate) topics: BTreeMap<StdArc<str>, Arc<Topic>>,
    /// Live members, in Kafka's member order (by id).
    pub(crate) members: BTreeMap<StdArc<str>, MemberInfo>,
}

impl Membership {
    pub(crate) fn new(assignor: AssignorKind) -> Self {
        Membership {
            generation: 0,
            assignor,
            topics: BTreeMap::new(),
            members: BTreeMap::new(),
        }
    }

    /// Removes the members whose session ran out by `now`; returns how many.
    pub(crate) fn remove_expired(&mut self, now: u64) -> usize {
        let before = self.members.len();
        self.members.retain(|_, m| !m.slot.expired(now));
        before - self.members.len()
    }
}

/// One topic of a snapshot: who owns each partition, and the owners' cursors.
#[derive(Debug)]
pub(crate) struct TopicState {
    pub(crate) name: StdArc<str>,
    pub(crate) topic: Arc<Topic>,
    /// Member index per partition, or [`NO_OWNER`].
    pub(crate) owners: Box<[u32]>,
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
    /// Its partitions as (topic index, partition), sorted.
    pub(crate) owned: Box<[(u32, u32)]>,
}

/// A generation's assignment: immutable once published.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) generation: u64,
    pub(crate) assignor: AssignorKind,
    /// Sorted by name.
    pub(crate) topics: Box<[TopicState]>,
    /// Sorted by id.
    pub(crate) members: Box<[MemberEntry]>,
}

impl Snapshot {
    /// The snapshot of a new group: generation 0, nobody.
    pub(crate) fn empty(assignor: AssignorKind) -> Self {
        Snapshot {
            generation: 0,
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

    /// Whether the member incarnation `slot` owns partition `p` of topic `name` here.
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

    /// The owner of partition `p` of topic index `t`.
    pub(crate) fn owner(&self, t: usize, p: u32) -> Option<&MemberEntry> {
        let &o = self.topics[t].owners.get(p as usize)?;
        self.members.get(o as usize)
    }

    /// What member `m` owns, as the API shows it.
    pub(crate) fn view(&self, m: usize) -> MemberView {
        MemberView {
            generation: self.generation,
            partitions: self.members[m]
                .owned
                .iter()
                .map(|&(t, p)| (self.topics[t as usize].name.to_string(), p))
                .collect(),
        }
    }

    /// Every invariant of a published snapshot that can be checked from it alone: each partition of
    /// a subscribed topic has exactly one owner, a live member; the members' lists agree with the
    /// owners; each owned partition has a cursor and no unowned one does.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut counted = 0usize;
        for (t, ts) in self.topics.iter().enumerate() {
            if ts.owners.len() != ts.topic.partition_count() as usize
                || ts.cursors.len() != ts.owners.len()
            {
                return Err(format!("topic {} has the wrong shape", ts.name));
            }
            for (p, &o) in ts.owners.iter().enumerate() {
                if o == NO_OWNER {
                    if ts.cursors[p].is_some() {
                        return Err(format!("{}-{p} has a cursor but no owner", ts.name));
                    }
                    continue;
                }
                let Some(m) = self.members.get(o as usize) else {
                    return Err(format!("{}-{p} is owned by a non-member", ts.name));
                };
                if m.owned.binary_search(&(t as u32, p as u32)).is_err() {
                    return Err(format!("{}-{p}'s owner {} does not list it", ts.name, m.id));
                }
                if ts.cursors[p].is_none() {
                    return Err(format!("{}-{p} has no cursor", ts.name));
                }
                counted += 1;
            }
        }
        let listed: usize = self.members.iter().map(|m| m.owned.len()).sum();
        if listed != counted {
            return Err(format!(
                "members list {listed} partitions, owners say {counted}"
            ));
        }
        Ok(())
    }

    /// The snapshot for `membership`, which must already carry its new generation. A partition
    /// that keeps its owner (the same member incarnation) keeps its cursor; any other owned partition
    /// gets a fresh one.
    pub(crate) fn build(membership: &Membership, prev: &Snapshot) -> Snapshot {
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
        // Previous member index -> current index, for the same incarnation only.
        let remap: Vec<u32> = prev
            .members
            .iter()
            .map(|pm| {
                members
                    .binary_search_by(|(id, _)| (***id).cmp(&*pm.id))
                    .ok()
                    .filter(|&i| Arc::ptr_eq(&members[i].1.slot, &pm.slot))
                    .map_or(NO_OWNER, |i| i as u32)
            })
            .collect();
        let prev_topics: Vec<Option<&TopicState>> = topics
            .iter()
            .map(|(name, _)| prev.topic(name).map(|t| &prev.topics[t]))
            .collect();
        let previous: Vec<Vec<u32>> = prev_topics
            .iter()
            .map(|pt| match pt {
                Some(pt) => pt
                    .owners
                    .iter()
                    .map(|&o| remap.get(o as usize).copied().unwrap_or(NO_OWNER))
                    .collect(),
                None => Vec::new(),
            })
            .collect();
        let partitions: Vec<u32> = topics.iter().map(|(_, t)| t.partition_count()).collect();
        let assignment = assign(membership.assignor, &partitions, &subscriptions, &previous);

        let mut owned: Vec<Vec<(u32, u32)>> = vec![Vec::new(); members.len()];
        let topic_states: Box<[TopicState]> = topics
            .iter()
            .enumerate()
            .map(|(t, (name, topic))| {
                let owners = &assignment[t];
                let cursors = owners
                    .iter()
                    .enumerate()
                    .map(|(p, &o)| {
                        if o == NO_OWNER {
                            return None;
                        }
                        owned[o as usize].push((t as u32, p as u32));
                        let kept = previous[t].get(p) == Some(&o);
                        Some(match prev_topics[t] {
                            Some(pt) if kept => pt.cursors[p].clone().expect("owned has a cursor"),
                            _ => Arc::new(Cursor::new()),
                        })
                    })
                    .collect();
                TopicState {
                    name: StdArc::clone(name),
                    topic: Arc::clone(topic),
                    owners: owners.clone().into_boxed_slice(),
                    cursors,
                }
            })
            .collect();
        let member_entries = members
            .iter()
            .zip(owned)
            .zip(subscriptions)
            .map(|(((id, info), owned), topics)| MemberEntry {
                id: StdArc::clone(id),
                slot: Arc::clone(&info.slot),
                topics: topics.into_boxed_slice(),
                owned: owned.into_boxed_slice(),
            })
            .collect();
        Snapshot {
            generation: membership.generation,
            assignor: membership.assignor,
            topics: topic_states,
            members: member_entries,
        }
    }
}
