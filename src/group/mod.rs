//! The consumer-group coordinator: membership, sessions, snapshots swapped with arc-swap, fetch
//! positions, committed offsets, fencing and auto-commit.
//!
//! # Design
//!
//! - **Groups** live in a copy-on-write map behind an `ArcSwap`: a lookup is one lock-free load and a
//!   hash probe; creating a group copies the map under a mutex (rare).
//! - **Membership** (join, leave, session expiry, subscription change) is the cold path: it takes the
//!   group's mutex, bumps the generation, runs the assignor ([`crate::assignor`]) and publishes a new
//!   immutable `Snapshot` (`group/snapshot.rs`) with `ArcSwap::store`. Generations strictly increase
//!   and every snapshot carries its own.
//! - **Polls, heartbeats and commits** load the current snapshot without a lock. A rebalance never
//!   blocks them: a poll holding the previous snapshot keeps reading the partitions it had.
//! - **Positions.** The snapshot holds, per owned partition, an `Arc`'d `Cursor`
//!   (`group/cursor.rs`). A partition that keeps its owner keeps its cursor across snapshots; a moved
//!   partition gets a fresh one, initialized lazily from the committed offset, or with no commit from
//!   the reset policy. So a member that loses a partition drops its position, and an old owner still
//!   holding an old snapshot can never advance the new owner's position. Concurrent polls of one
//!   member claim disjoint ranges by compare-and-swap.
//! - **Committed offsets** live in a `DashMap` per group, keyed by (topic, partition); the value is the
//!   *next* offset to consume. A commit beyond the log end is accepted; polls just find nothing there
//!   until the log grows, and `describe` reports a lag of 0.
//! - **Auto-commit** (per member, on by default): a poll first commits the end of what the member's
//!   earlier polls handed out; a clean leave does too, before its rebalance. A member that expires
//!   commits nothing. So a partition that changes hands is re-delivered from its last commit:
//!   at-least-once, never lost.
//!
//! # Fencing
//!
//! A commit on behalf of a member checks ownership against the *current* snapshot **while holding the
//! map entry's lock** (`MapExt::update` in `crate::loom`), and refuses with
//! [`Error::Fenced`] when the member does not own the partition there. Take an old owner `A`'s commit
//! `c` racing the rebalance `S` that moves the partition to `B`:
//! - if `c` takes the entry lock before `B` reads the committed offset to initialize its cursor (or
//!   before `B` commits), `B` sees `c`'s value: `c` is linearized before `S`, and `B` resumes from
//!   it (or overwrites it);
//! - otherwise `B`'s read (or commit) released the entry lock before `c` acquired it, and `B` had
//!   loaded the snapshot published by `S` before that; so `S` happens-before `c`'s snapshot load,
//!   which therefore sees `S`'s snapshot (or a later one) and refuses `c`.
//!
//! Either way `c` can never overwrite `B`'s progress. An admin commit (no member) is always accepted.
//! `group/loom_tests.rs` checks both races under loom, on this very code.
//!
//! # Orderings
//!
//! This module's own synchronization is the group mutex (membership), `ArcSwap` store/load
//! (snapshots, the group table: arc-swap orders a snapshot's construction before any use by a
//! thread that loads it) and the committed map's per-entry lock (fencing, as above). The atomics
//! inside snapshots are documented where they live: `group/cursor.rs` and `group/snapshot.rs`.

mod cursor;
mod snapshot;

use crate::assignor::AssignorKind;
use crate::clock::Millis;
use crate::error::Error;
use crate::loom::{lock, Arc, ArcSwap, DashMap, MapExt, Mutex, MutexGuard, StdArc};
use crate::partition::RecordRef;
use crate::topic::Topic;
use cursor::Cursor;
use snapshot::{MemberInfo, MemberSlot, Membership, Snapshot};
use std::collections::{BTreeSet, HashMap};

/// Where a partition with no committed offset starts: Kafka's `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResetPolicy {
    /// From the log start.
    #[default]
    Earliest,
    /// From the log end at the moment the position is first needed.
    Latest,
}

impl ResetPolicy {
    /// The name Kafka's `auto.offset.reset` uses: `earliest`, `latest`.
    pub fn name(self) -> &'static str {
        match self {
            ResetPolicy::Earliest => "earliest",
            ResetPolicy::Latest => "latest",
        }
    }
}

impl std::str::FromStr for ResetPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "earliest" => Ok(ResetPolicy::Earliest),
            "latest" => Ok(ResetPolicy::Latest),
            other => Err(format!("unknown reset policy {other:?} (earliest, latest)")),
        }
    }
}

/// Defaults for groups; each member may override some of them when it joins.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// A member that neither polls nor heartbeats for this long is removed (default 10 s).
    pub session_timeout_ms: u64,
    /// The assignor of a new group (default `cooperative-sticky`).
    pub assignor: AssignorKind,
    /// Whether members auto-commit (default true).
    pub auto_commit: bool,
    /// Where a partition with no commit starts (default `earliest`).
    pub reset: ResetPolicy,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            session_timeout_ms: 10_000,
            assignor: AssignorKind::CooperativeSticky,
            auto_commit: true,
            reset: ResetPolicy::Earliest,
        }
    }
}

/// What a joining member may ask for.
#[derive(Debug, Clone, Default)]
pub struct JoinOptions {
    /// The member's session timeout (must be > 0).
    pub session_timeout_ms: Option<u64>,
    /// The group's assignor: set by the group's first member; a different one from a later member
    /// is [`Error::InconsistentAssignor`].
    pub assignor: Option<AssignorKind>,
    /// Whether this member auto-commits.
    pub auto_commit: Option<bool>,
}

/// What a member owns in the current generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The generation of the snapshot this view comes from.
    pub generation: u64,
    /// (topic, partition), sorted.
    pub partitions: Vec<(String, u32)>,
}

/// Where `reset_offsets` moves a group's committed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetTo {
    /// Offset 0.
    Earliest,
    /// The log end.
    Latest,
    /// This offset, clamped to the log end.
    Offset(u64),
}

/// One row of `describe`: Kafka's `kafka-consumer-groups --describe` columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRow {
    pub topic: String,
    pub partition: u32,
    pub owner: Option<String>,
    pub committed: Option<u64>,
    pub log_end: u64,
    /// log end − committed (0 when the commit is beyond the end); `None` when nothing is committed.
    pub lag: Option<u64>,
}

/// A group as `describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group: String,
    pub generation: u64,
    pub assignor: AssignorKind,
    /// (member, its (topic, partition)s), sorted by member.
    pub members: Vec<(String, Vec<(String, u32)>)>,
    /// Every partition of every topic the group knows, by (topic, partition).
    pub partitions: Vec<PartitionRow>,
}

/// The committed-offset key: (topic name, partition).
type OffsetKey = (StdArc<str>, u32);

/// One consumer group.
struct Group {
    id: StdArc<str>,
    /// The cold state; every membership change holds it while it builds and publishes a snapshot.
    membership: Mutex<Membership>,
    /// The current generation's assignment; loaded without locks.
    snapshot: ArcSwap<Snapshot>,
    /// Committed offsets: the next offset to consume.
    committed: DashMap<OffsetKey, u64>,
}

/// Why a commit on behalf of a member was refused.
enum Refused {
    /// The member incarnation does not own the partition in this generation.
    Fenced(u64),
}

impl Group {
    fn new(id: StdArc<str>, assignor: AssignorKind) -> Self {
        Group {
            id,
            membership: Mutex::new(Membership::new(assignor)),
            snapshot: ArcSwap::from_pointee(Snapshot::empty(assignor)),
            committed: DashMap::with_hasher(ahash::RandomState::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Membership> {
        lock(&self.membership)
    }

    /// Bumps the generation and publishes the assignment for the membership now. Call with the
    /// membership locked.
    #[cold]
    #[inline(never)]
    fn rebalance(&self, membership: &mut Membership) {
        membership.generation += 1;
        let prev = self.snapshot.load_full();
        let next = Snapshot::build(membership, &prev);
        debug_assert_eq!(next.check(), Ok(()));
        self.snapshot.store(Arc::new(next));
    }

    /// Removes the members expired by `now`, rebalancing if there were any.
    #[cold]
    #[inline(never)]
    fn expire(&self, now: Millis) -> usize {
        let mut membership = self.lock();
        let removed = membership.remove_expired(now);
        if removed > 0 {
            self.rebalance(&mut membership);
        }
        removed
    }

    /// Whether some member of the current snapshot has expired by `now` (no lock).
    fn any_expired(&self, now: Millis) -> bool {
        self.snapshot
            .load()
            .members
            .iter()
            .any(|m| m.slot.expired(now))
    }

    /// The committed offset of (`name`, `p`).
    fn committed(&self, name: &StdArc<str>, p: u32) -> Option<u64> {
        self.committed.get_with(&(StdArc::clone(name), p), |&v| v)
    }

    /// Commits `offset` for (`name`, `p`) on behalf of the member incarnation `slot`, if it owns the
    /// partition in the snapshot current *while the entry is locked* (see "Fencing"). With `auto`,
    /// this is that cursor's auto-commit, which never moves back behind its own last auto-commit.
    fn commit_as(
        &self,
        slot: &Arc<MemberSlot>,
        name: &StdArc<str>,
        p: u32,
        offset: u64,
        auto: Option<&Cursor>,
    ) -> Result<(), Refused> {
        self.committed.update((StdArc::clone(name), p), |_| {
            let snap = self.snapshot.load();
            if !snap.owns(slot, name, p) {
                return (None, Err(Refused::Fenced(snap.generation)));
            }
            if let Some(cursor) = auto {
                if offset <= cursor.auto() {
                    return (None, Ok(()));
                }
                cursor.set_auto(offset);
            }
            (Some(offset), Ok(()))
        })
    }

    /// An admin commit: accepted as is.
    fn commit_admin(&self, name: StdArc<str>, p: u32, offset: u64) {
        self.committed.update((name, p), |_| (Some(offset), ()));
    }

    /// Auto-commits the end of what member `m` of `snap` was handed out, where it moved. A partition
    /// the member no longer owns is fenced and skipped.
    fn auto_commit(&self, snap: &Snapshot, m: usize) {
        let member = &snap.members[m];
        for &(t, p) in member.owned.iter() {
            let ts = &snap.topics[t as usize];
            let cursor = ts.cursors[p as usize]
                .as_deref()
                .expect("owned has a cursor");
            if let Some(offset) = cursor.pending() {
                // Fenced: the partition moved since `snap`; its new owner resumes from the last
                // commit that did land.
                let _ = self.commit_as(&member.slot, &ts.name, p, offset, Some(cursor));
            }
        }
    }

    /// Hands out up to `max` records from member `m`'s partitions, starting at a rotating partition:
    /// first up to `max / n` (at least 1) from each, then what is left of `max` in the same order.
    fn hand_out(
        &self,
        snap: &Snapshot,
        m: usize,
        max: usize,
        reset: ResetPolicy,
        f: &mut impl FnMut(&Topic, u32, RecordRef<'_>),
    ) -> usize {
        let member = &snap.members[m];
        let n = member.owned.len();
        if n == 0 || max == 0 {
            return 0;
        }
        let start = member.slot.next_start(n);
        let share = (max / n).max(1);
        let mut left = max;
        for pass in 0..2 {
            for i in 0..n {
                if left == 0 {
                    return max;
                }
                let (t, p) = member.owned[(start + i) % n];
                let ts = &snap.topics[t as usize];
                let cursor = ts.cursors[p as usize]
                    .as_deref()
                    .expect("owned has a cursor");
                let partition = &ts.topic.partitions()[p as usize];
                let pos = cursor.position(|| {
                    self.committed(&ts.name, p).unwrap_or_else(|| match reset {
                        ResetPolicy::Earliest => 0,
                        ResetPolicy::Latest => partition.end(),
                    })
                });
                let limit = if pass == 0 { share.min(left) } else { left };
                if let Some((from, count)) = cursor.claim(pos, || partition.end(), limit as u64) {
                    let read = partition.read(from, count as usize, |r| f(&ts.topic, p, r));
                    debug_assert_eq!(read as u64, count, "claimed below the watermark");
                    cursor.handed_out(from + count);
                    left -= count as usize;
                }
            }
        }
        max - left
    }
}

type GroupTable = HashMap<StdArc<str>, Arc<Group>, ahash::RandomState>;

/// The coordinator of every group of one broker.
pub struct Coordinator {
    config: GroupConfig,
    groups: ArcSwap<GroupTable>,
    /// Serializes group creations; lookups never take it.
    create: Mutex<()>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("config", &self.config)
            .field("groups", &self.groups.load().len())
            .finish()
    }
}

impl Coordinator {
    /// A coordinator with no groups; `config` gives the defaults of every group and member.
    pub fn new(config: GroupConfig) -> Self {
        Coordinator {
            config,
            groups: ArcSwap::from_pointee(GroupTable::default()),
            create: Mutex::new(()),
        }
    }

    /// The defaults this coordinator was built with.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Runs `f` with group `id` from the current table, without touching its reference count (the
    /// path of every poll and heartbeat); [`Error::UnknownGroup`] if there is no such group.
    #[inline]
    fn with_group<R>(
        &self,
        id: &str,
        f: impl FnOnce(&Arc<Group>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let table = self.groups.load();
        let g = table
            .get(id)
            .ok_or_else(|| Error::UnknownGroup(id.to_string()))?;
        f(g)
    }

    /// Group `id`, kept (for the cold paths that lock its membership).
    fn group(&self, id: &str) -> Result<Arc<Group>, Error> {
        self.with_group(id, |g| Ok(Arc::clone(g)))
    }

    #[cold]
    fn group_or_create(&self, id: &str) -> Arc<Group> {
        if let Ok(g) = self.group(id) {
            return g;
        }
        let _serial = lock(&self.create);
        let current = self.groups.load_full();
        if let Some(g) = current.get(id) {
            return g.clone();
        }
        let id: StdArc<str> = id.into();
        let group = Arc::new(Group::new(StdArc::clone(&id), self.config.assignor));
        let mut next = GroupTable::clone(&current);
        next.insert(id, group.clone());
        self.groups.store(Arc::new(next));
        group
    }

    /// The index of `member` in `snap` if it is live at `now`, touching its session. A member whose
    /// session has run out is removed now (the group rebalances) and is unknown.
    #[inline]
    fn live(&self, g: &Group, snap: &Snapshot, member: &str, now: Millis) -> Result<usize, Error> {
        let unknown = || Error::UnknownMember {
            group: g.id.to_string(),
            member: member.to_string(),
        };
        let m = snap.member(member).ok_or_else(unknown)?;
        let slot = &snap.members[m].slot;
        if slot.expired(now) {
            g.expire(now);
            return Err(unknown());
        }
        slot.touch(now);
        Ok(m)
    }

    /// Joins `member` to `group` for `topic` (or heartbeats a live member already subscribed to it).
    /// A join, or a live member's new subscription, rebalances the group; expired members are
    /// removed in the same rebalance. Creates the group on first use.
    pub fn subscribe(
        &self,
        group: &str,
        member: &str,
        topic: &Arc<Topic>,
        opts: &JoinOptions,
        now: Millis,
    ) -> Result<MemberView, Error> {
        if opts.session_timeout_ms == Some(0) {
            return Err(Error::Invalid("session_timeout_ms must be positive".into()));
        }
        let g = self.group_or_create(group);
        {
            let snap = g.snapshot.load();
            if let Some(m) = snap.member(member) {
                let slot = &snap.members[m].slot;
                let subscribed = snap.subscribed(m, topic.name());
                let same_assignor = !matches!(opts.assignor, Some(a) if a != snap.assignor);
                if subscribed && same_assignor && !slot.expired(now) {
                    slot.touch(now);
                    return Ok(snap.view(m));
                }
            }
        }
        self.join(&g, member, topic, opts, now)
    }

    #[cold]
    #[inline(never)]
    fn join(
        &self,
        g: &Group,
        member: &str,
        topic: &Arc<Topic>,
        opts: &JoinOptions,
        now: Millis,
    ) -> Result<MemberView, Error> {
        let mut membership = g.lock();
        let mut changed = membership.remove_expired(now) > 0;
        if let Some(a) = opts.assignor {
            if a != membership.assignor {
                let others = membership.members.keys().any(|id| &**id != member);
                if others {
                    if changed {
                        g.rebalance(&mut membership);
                    }
                    return Err(Error::InconsistentAssignor {
                        group: g.id.to_string(),
                        assignor: a,
                        current: membership.assignor,
                    });
                }
                membership.assignor = a;
                changed = true;
            }
        }
        let name: StdArc<str> = match membership.topics.get_key_value(topic.name()) {
            Some((name, _)) => StdArc::clone(name),
            None => {
                let name: StdArc<str> = topic.name().into();
                membership
                    .topics
                    .insert(StdArc::clone(&name), Arc::clone(topic));
                name
            }
        };
        match membership.members.get_mut(member) {
            Some(info) => {
                info.slot.touch(now);
                changed |= info.topics.insert(name);
            }
            None => {
                let slot = MemberSlot::new(
                    now,
                    opts.session_timeout_ms
                        .unwrap_or(self.config.session_timeout_ms),
                    opts.auto_commit.unwrap_or(self.config.auto_commit),
                );
                membership.members.insert(
                    member.into(),
                    MemberInfo {
                        topics: BTreeSet::from([name]),
                        slot: Arc::new(slot),
                    },
                );
                changed = true;
            }
        }
        if changed {
            g.rebalance(&mut membership);
        }
        let snap = g.snapshot.load();
        let m = snap.member(member).expect("joined under the lock");
        Ok(snap.view(m))
    }

    /// A clean leave: auto-commits the member's handed-out positions, then rebalances at once.
    pub fn unsubscribe(&self, group: &str, member: &str, now: Millis) -> Result<(), Error> {
        let g = self.group(group)?;
        let mut membership = g.lock();
        let Some(info) = membership.members.get(member) else {
            return Err(Error::UnknownMember {
                group: group.to_string(),
                member: member.to_string(),
            });
        };
        if info.slot.auto_commit {
            // The snapshot cannot change while the membership is locked: every commit lands.
            let snap = g.snapshot.load();
            if let Some(m) = snap.member(member) {
                g.auto_commit(&snap, m);
            }
        }
        membership.members.remove(member);
        membership.remove_expired(now);
        g.rebalance(&mut membership);
        Ok(())
    }

    /// Keeps the member alive; returns what it owns.
    pub fn heartbeat(&self, group: &str, member: &str, now: Millis) -> Result<MemberView, Error> {
        self.with_group(group, |g| {
            let snap = g.snapshot.load();
            let m = self.live(g, &snap, member, now)?;
            Ok(snap.view(m))
        })
    }

    /// Hands out up to `max` records from the member's partitions, fairly, advancing their positions;
    /// calls `f(topic, partition, record)` for each, in offset order per partition. Also a heartbeat;
    /// with auto-commit, first commits what the member's earlier polls handed out.
    pub fn poll(
        &self,
        group: &str,
        member: &str,
        max: usize,
        now: Millis,
        mut f: impl FnMut(&Topic, u32, RecordRef<'_>),
    ) -> Result<MemberView, Error> {
        self.with_group(group, |g| {
            let snap = g.snapshot.load();
            let m = self.live(g, &snap, member, now)?;
            if snap.members[m].slot.auto_commit {
                g.auto_commit(&snap, m);
            }
            g.hand_out(&snap, m, max, self.config.reset, &mut f);
            Ok(snap.view(m))
        })
    }

    /// Commits `offset` (the next to consume) for (topic, partition). With `member`, the member must
    /// own the partition in the current generation, else [`Error::Fenced`] (or
    /// [`Error::UnknownMember`]). `member: None` is an admin commit, always accepted (it creates the
    /// group if needed). A commit beyond the log end is accepted.
    pub fn commit(
        &self,
        group: &str,
        member: Option<&str>,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<(), Error> {
        let Some(member) = member else {
            let g = self.group_or_create(group);
            let name = {
                let snap = g.snapshot.load();
                match snap.topic(topic) {
                    Some(t) => {
                        check_partition(&snap.topics[t].topic, partition)?;
                        StdArc::clone(&snap.topics[t].name)
                    }
                    None => topic.into(),
                }
            };
            g.commit_admin(name, partition, offset);
            return Ok(());
        };
        self.with_group(group, |g| {
            let snap = g.snapshot.load();
            let m = snap.member(member).ok_or_else(|| Error::UnknownMember {
                group: group.to_string(),
                member: member.to_string(),
            })?;
            let fenced = |generation| Error::Fenced {
                group: group.to_string(),
                member: member.to_string(),
                topic: topic.to_string(),
                partition,
                generation,
            };
            let t = snap.topic(topic).ok_or_else(|| fenced(snap.generation))?;
            check_partition(&snap.topics[t].topic, partition)?;
            g.commit_as(
                &snap.members[m].slot,
                &snap.topics[t].name,
                partition,
                offset,
                None,
            )
            .map_err(|Refused::Fenced(generation)| fenced(generation))
        })
    }

    /// Like [`Coordinator::commit`], for a topic given by reference: an admin commit also makes the
    /// group know the topic, so that [`Coordinator::describe`] shows its partitions.
    pub fn commit_topic(
        &self,
        group: &str,
        member: Option<&str>,
        topic: &Arc<Topic>,
        partition: u32,
        offset: u64,
    ) -> Result<(), Error> {
        check_partition(topic, partition)?;
        if member.is_none() {
            let g = self.group_or_create(group);
            let mut membership = g.lock();
            if !membership.topics.contains_key(topic.name()) {
                membership
                    .topics
                    .insert(topic.name().into(), Arc::clone(topic));
            }
        }
        self.commit(group, member, topic.name(), partition, offset)
    }

    /// The committed offset, if any.
    pub fn committed(&self, group: &str, topic: &str, partition: u32) -> Option<u64> {
        let g = self.group(group).ok()?;
        let name = {
            let snap = g.snapshot.load();
            match snap.topic(topic) {
                Some(t) => StdArc::clone(&snap.topics[t].name),
                None => topic.into(),
            }
        };
        g.committed(&name, partition)
    }

    /// The fetch position of `member` in (topic, partition), if it owns the partition now and a poll
    /// has set it.
    pub fn position(&self, group: &str, member: &str, topic: &str, partition: u32) -> Option<u64> {
        let g = self.group(group).ok()?;
        let snap = g.snapshot.load();
        let t = snap.topic(topic)?;
        let owner = snap.owner(t, partition)?;
        if &*owner.id != member {
            return None;
        }
        snap.topics[t].cursors[partition as usize].as_ref()?.peek()
    }

    /// Removes members whose session expired by `now`, rebalancing their groups. Returns how many.
    pub fn expire(&self, now: Millis) -> usize {
        let groups: Vec<Arc<Group>> = self.groups.load().values().cloned().collect();
        groups
            .iter()
            .filter(|g| g.any_expired(now))
            .map(|g| g.expire(now))
            .sum()
    }

    /// The group's members, generation, assignor and, per partition of every topic it knows, owner,
    /// committed offset, log end and lag. Expires dead members first.
    pub fn describe(&self, group: &str, now: Millis) -> Result<GroupDescription, Error> {
        let g = self.group(group)?;
        let mut membership = g.lock();
        if membership.remove_expired(now) > 0 {
            g.rebalance(&mut membership);
        }
        let snap = g.snapshot.load();
        let members = (0..snap.members.len())
            .map(|m| (snap.members[m].id.to_string(), snap.view(m).partitions))
            .collect();
        let mut partitions = Vec::new();
        for (name, topic) in &membership.topics {
            let t = snap.topic(name);
            for (p, part) in topic.partitions().iter().enumerate() {
                let p = p as u32;
                let committed = g.committed(name, p);
                let log_end = part.end();
                partitions.push(PartitionRow {
                    topic: name.to_string(),
                    partition: p,
                    owner: t.and_then(|t| snap.owner(t, p)).map(|m| m.id.to_string()),
                    committed,
                    log_end,
                    lag: committed.map(|c| log_end.saturating_sub(c)),
                });
            }
        }
        Ok(GroupDescription {
            group: group.to_string(),
            generation: snap.generation,
            assignor: snap.assignor,
            members,
            partitions,
        })
    }

    /// Group ids, sorted.
    pub fn list_groups(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.groups.load().keys().map(|k| k.to_string()).collect();
        ids.sort_unstable();
        ids
    }

    /// Moves the committed offsets of `topic` (or of every topic the group knows) to `to`, clamped to
    /// the log. Only for a group with no live members (else [`Error::GroupNotEmpty`]).
    pub fn reset_offsets(
        &self,
        group: &str,
        topic: Option<&Topic>,
        to: ResetTo,
        now: Millis,
    ) -> Result<(), Error> {
        let g = self.group(group)?;
        let mut membership = g.lock();
        if membership.remove_expired(now) > 0 {
            g.rebalance(&mut membership);
        }
        if !membership.members.is_empty() {
            return Err(Error::GroupNotEmpty(group.to_string()));
        }
        let known: Vec<&Topic> = match topic {
            Some(t) => vec![t],
            None => membership.topics.values().map(|t| &**t).collect(),
        };
        for topic in known {
            let name: StdArc<str> = membership
                .topics
                .get_key_value(topic.name())
                .map_or_else(|| topic.name().into(), |(n, _)| StdArc::clone(n));
            for (p, part) in topic.partitions().iter().enumerate() {
                let end = part.end();
                let offset = match to {
                    ResetTo::Earliest => 0,
                    ResetTo::Latest => end,
                    ResetTo::Offset(o) => o.min(end),
                };
                g.commit_admin(StdArc::clone(&name), p as u32, offset);
            }
        }
        Ok(())
    }

    /// Every committed offset of `group`: (topic, partition, next offset to consume), sorted. Empty
    /// for an unknown group.
    pub fn committed_offsets(&self, group: &str) -> Vec<(String, u32, u64)> {
        let Ok(g) = self.group(group) else {
            return Vec::new();
        };
        let mut all: Vec<(String, u32, u64)> = g
            .committed
            .entries()
            .into_iter()
            .map(|((topic, p), offset)| (topic.to_string(), p, offset))
            .collect();
        all.sort_unstable();
        all
    }

    /// Removes the committed offset of (topic, partition) in `group`; returns whether there was
    /// one (Kafka's OffsetDelete). The caller checks that no member consumes the topic.
    pub fn delete_offset(&self, group: &str, topic: &str, partition: u32) -> bool {
        let Ok(g) = self.group(group) else {
            return false;
        };
        g.committed
            .remove_key(&(StdArc::<str>::from(topic), partition))
            .is_some()
    }

    /// Deletes `group` with its committed offsets (Kafka's DeleteGroups). Refused with
    /// [`Error::GroupNotEmpty`] while it has live members at `now`; [`Error::UnknownGroup`] if
    /// there is no such group.
    pub fn delete_group(&self, group: &str, now: Millis) -> Result<(), Error> {
        let g = self.group(group)?;
        {
            let mut membership = g.lock();
            if membership.remove_expired(now) > 0 {
                g.rebalance(&mut membership);
            }
            if !membership.members.is_empty() {
                return Err(Error::GroupNotEmpty(group.to_string()));
            }
        }
        let _serial = lock(&self.create);
        let mut next = GroupTable::clone(&self.groups.load_full());
        next.remove(group);
        self.groups.store(Arc::new(next));
        Ok(())
    }

    /// The group's current generation (one lock-free snapshot load).
    pub fn generation(&self, group: &str) -> Option<u64> {
        self.with_group(group, |g| Ok(g.snapshot.load().generation))
            .ok()
    }

    /// Checks the invariants of `group`'s current snapshot (ownership, member lists, cursors);
    /// returns the generation. For tests and debugging.
    pub fn check_snapshot(&self, group: &str) -> Result<u64, String> {
        let g = self.group(group).map_err(|e| e.to_string())?;
        let snap = g.snapshot.load();
        snap.check().map(|()| snap.generation)
    }
}

fn check_partition(topic: &Topic, partition: u32) -> Result<(), Error> {
    topic.partition(partition).map(|_| ())
}

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;
