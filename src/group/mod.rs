//! The consumer-group coordinator: membership, KIP-848 reconciliation (group epoch, target
//! assignment, member epochs, partitions pending revocation and assignment), sessions and rebalance
//! timeouts, snapshots swapped with arc-swap, fetch positions, committed offsets, fencing and
//! auto-commit.
//!
//! # Design
//!
//! - **Groups** live in a copy-on-write map behind an `ArcSwap`: a lookup is one lock-free load and a
//!   hash probe; creating a group copies the map under a mutex (rare).
//! - **Group epoch and target assignment.** Every change of membership, subscriptions or assignor
//!   (join, leave, session expiry, fencing) is the cold path: it takes the group's mutex, bumps the
//!   group epoch, runs the assignor ([`crate::assignor`]; `cooperative-sticky` is KIP-848's
//!   `uniform`) for the target assignment of that epoch and publishes an immutable, reconciled
//!   `Snapshot` (`group/snapshot.rs`, `group/reconcile.rs`) with `ArcSwap::store`.
//! - **Reconciliation** (Kafka's `CurrentAssignmentBuilder`). A partition that the target moves
//!   between two live members stays with its old owner, *pending revocation*, until that member
//!   releases it: its next poll or heartbeat (which first commits its position in it, with
//!   auto-commit), an explicit [`Coordinator::release`], or the end of its rebalance timeout (Kafka
//!   then fences the member: it is removed and its partitions are free). The new owner has it
//!   *pending assignment* meanwhile, and gets it in the very snapshot that takes it from the old
//!   owner. A member that leaves or expires releases everything at once. A partition therefore
//!   never has two owners, and the records its old owner was handed are not handed out again.
//! - **Member epochs.** A member with partitions to revoke stays at its member epoch; any other
//!   member reaches the group epoch at its next request ([`MemberView::member_epoch`]).
//! - **Polls, heartbeats and commits** load the current snapshot without a lock. A rebalance never
//!   blocks them, and a member takes the group's mutex only when it has partitions to release.
//! - **Positions.** The snapshot holds, per owned partition, an `Arc`'d `Cursor`
//!   (`group/cursor.rs`). A partition that keeps its owner keeps its cursor across snapshots; a moved
//!   partition gets a fresh one, initialized lazily from the committed offset, or with no commit from
//!   the reset policy. Ending an ownership closes its cursor first, so an old owner still polling
//!   with an old snapshot hands out nothing more and can never advance the new owner's position.
//!   Concurrent polls of one member claim disjoint ranges by compare-and-swap.
//! - **Committed offsets** live in a `DashMap` per group, keyed by (topic, partition); the value is the
//!   *next* offset to consume. A commit beyond the log end is accepted; polls just find nothing there
//!   until the log grows, and `describe` reports a lag of 0.
//! - **Auto-commit** (per member, on by default): a poll first commits the end of what the member's
//!   earlier polls handed out; a release and a clean leave commit the position each partition's
//!   cursor ended at; a position chosen by the `latest` reset is committed as soon as it is chosen.
//!   A member that expires or is fenced commits nothing more. So a partition that changes hands
//!   between live members resumes exactly where its old owner stopped, and one taken from a dead
//!   member is re-delivered from its last commit: at-least-once, never lost.
//!
//! # Fencing
//!
//! A commit on behalf of a member checks ownership against the *current* snapshot **while holding the
//! map entry's lock** (`MapExt::update` in `crate::loom`), and refuses with
//! [`Error::Fenced`] when the member does not own the partition there (a partition pending
//! revocation is still its own: Kafka lets the old owner commit it until it has released it). Take
//! an old owner `A`'s commit `c` racing the snapshot `S` that gives the partition to `B`:
//! - if `c` takes the entry lock before `B` reads the committed offset to initialize its cursor (or
//!   before `B` commits), `B` sees `c`'s value: `c` is linearized before `S`, and `B` resumes from
//!   it (or overwrites it);
//! - otherwise `B`'s read (or commit) released the entry lock before `c` acquired it, and `B` had
//!   loaded `S` before that; so `S` happens-before `c`'s snapshot load, which therefore sees `S` (or
//!   a later snapshot) and refuses `c`.
//!
//! Either way `c` can never overwrite `B`'s progress. A release commits `A`'s closed position under
//! the group's mutex before it stores `S`, so `B`, which loads `S`, finds that commit. An admin
//! commit (no member) is always accepted. `group/loom_tests.rs` checks these races under loom, on
//! this very code.
//!
//! # Orderings
//!
//! This module's own synchronization is the group mutex (membership), `ArcSwap` store/load
//! (snapshots, the group table: arc-swap orders a snapshot's construction before any use by a
//! thread that loads it) and the committed map's per-entry lock (fencing, as above). The atomics
//! inside snapshots are documented where they live: `group/cursor.rs` and `group/membership.rs`.

mod cursor;
mod membership;
mod reconcile;
mod snapshot;
mod state;

use crate::assignor::AssignorKind;
use crate::clock::Millis;
use crate::error::Error;
use crate::loom::{lock, Arc, ArcSwap, Loaded, MapExt, Mutex, StdArc};
use crate::partition::RecordRef;
use crate::topic::Topic;
use membership::{MemberInfo, MemberSlot};
use snapshot::Snapshot;
use state::{End, Group, Refused};
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
    /// How long a member may hold partitions pending revocation before it is fenced (default 300 s:
    /// Kafka's rebalance timeout is the consumer's `max.poll.interval.ms`).
    pub rebalance_timeout_ms: u64,
    /// The assignor of a new group (default `cooperative-sticky`, KIP-848's `uniform`).
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
            rebalance_timeout_ms: 300_000,
            assignor: AssignorKind::CooperativeSticky,
            auto_commit: true,
            reset: ResetPolicy::Earliest,
        }
    }
}

/// What a joining member may ask for.
#[derive(Debug, Clone, Default)]
pub struct JoinOptions {
    /// The member's session timeout, ms (must be > 0).
    pub session_timeout_ms: Option<u64>,
    /// The member's rebalance timeout, ms (must be > 0): how long it may keep partitions pending
    /// revocation (KIP-848's `RebalanceTimeoutMs`).
    pub rebalance_timeout_ms: Option<u64>,
    /// The group's assignor: set by the group's first member; a different one from a later member
    /// is [`Error::InconsistentAssignor`].
    pub assignor: Option<AssignorKind>,
    /// Whether this member auto-commits.
    pub auto_commit: Option<bool>,
}

/// A member's reconciliation state: Kafka's `MemberState` (`CurrentAssignmentBuilder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberState {
    /// It owns exactly its target assignment.
    Stable,
    /// It owns partitions that the target gives to others; it must release them
    /// (`UNREVOKED_PARTITIONS`). It stays at its member epoch and gets nothing new meanwhile.
    UnrevokedPartitions,
    /// Some partitions of its target are still owned by others (`UNRELEASED_PARTITIONS`).
    UnreleasedPartitions,
}

impl MemberState {
    /// Kafka's name: `STABLE`, `UNREVOKED_PARTITIONS`, `UNRELEASED_PARTITIONS`.
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Stable => "STABLE",
            MemberState::UnrevokedPartitions => "UNREVOKED_PARTITIONS",
            MemberState::UnreleasedPartitions => "UNRELEASED_PARTITIONS",
        }
    }
}

/// What a member owns now, and where its reconciliation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The member epoch (KIP-848): the group epoch of the last target assignment it reached. In the
    /// Maelstrom protocol this is the `generation` of a reply.
    pub member_epoch: u64,
    /// The group epoch of the current target assignment.
    pub group_epoch: u64,
    /// Where its reconciliation stands.
    pub state: MemberState,
    /// The (topic, partition)s it owns, sorted; including `revoking`.
    pub partitions: Vec<(String, u32)>,
    /// Owned partitions pending revocation, sorted.
    pub revoking: Vec<(String, u32)>,
    /// Partitions pending assignment (its target's, still owned by others), sorted.
    pub pending: Vec<(String, u32)>,
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
    /// The current owner (which may be revoking it).
    pub owner: Option<String>,
    pub committed: Option<u64>,
    pub log_end: u64,
    /// log end − committed (0 when the commit is beyond the end); `None` when nothing is committed.
    pub lag: Option<u64>,
}

/// A member as `describe` shows it (Kafka's `ConsumerGroupDescribe` member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub id: String,
    /// Its reconciliation (member epoch, state, owned, revoking, pending).
    pub view: MemberView,
    /// Its subscribed topics, sorted.
    pub topics: Vec<String>,
}

/// A group as `describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group: String,
    /// The group epoch.
    pub group_epoch: u64,
    pub assignor: AssignorKind,
    /// Sorted by id.
    pub members: Vec<MemberDescription>,
    /// Every partition of every topic the group knows, by (topic, partition).
    pub partitions: Vec<PartitionRow>,
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
        let m = snap.member(member).ok_or_else(|| unknown(g, member))?;
        let slot = &snap.members[m].slot;
        if slot.expired(now) {
            g.expire(now);
            return Err(unknown(g, member));
        }
        slot.touch(now);
        Ok(m)
    }

    /// A member's request (poll, heartbeat, subscribe of a live member): keeps it alive, releases
    /// its partitions pending revocation (committing its positions in them first, with
    /// auto-commit), and moves it to the group epoch. Returns the snapshot to serve it from, its
    /// index there and its member epoch. Lock-free unless it has something to release.
    #[inline]
    fn contact(
        &self,
        g: &Group,
        member: &str,
        now: Millis,
    ) -> Result<(Loaded<Snapshot>, usize, u64), Error> {
        let mut snap = g.snapshot.load();
        let mut m = self.live(g, &snap, member, now)?;
        if !snap.members[m].revoking.is_empty() {
            self.release_all(g, member, now);
            snap = g.snapshot.load();
            m = snap.member(member).ok_or_else(|| unknown(g, member))?;
        }
        let epoch = snap.reach(m);
        Ok((snap, m, epoch))
    }

    #[cold]
    #[inline(never)]
    fn release_all(&self, g: &Group, member: &str, now: Millis) {
        let membership = g.lock();
        g.release_locked(&membership, member, None, now);
    }

    /// Joins `member` to `group` for `topic` (or, for a live member already subscribed to it, acts
    /// as a heartbeat). A join, or a live member's new subscription, bumps the group epoch and
    /// reconciles; dead members are removed in the same change. Creates the group on first use.
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
        if opts.rebalance_timeout_ms == Some(0) {
            return Err(Error::Invalid(
                "rebalance_timeout_ms must be positive".into(),
            ));
        }
        let g = self.group_or_create(group);
        {
            let snap = g.snapshot.load();
            if let Some(m) = snap.member(member) {
                let slot = &snap.members[m].slot;
                let subscribed = snap.subscribed(m, topic.name());
                let same_assignor = !matches!(opts.assignor, Some(a) if a != snap.assignor);
                if subscribed && same_assignor && !slot.expired(now) {
                    drop(snap);
                    let (snap, m, epoch) = self.contact(&g, member, now)?;
                    return Ok(snap.view(m, epoch));
                }
            }
        }
        self.join(
            &g,
            member,
            std::slice::from_ref(topic),
            Subscription::Add,
            opts,
            now,
        )
    }

    /// KIP-848's subscription (ConsumerGroupHeartbeat): sets `member`'s subscribed topics to
    /// exactly `topics` (possibly none, while the topics it names do not exist yet), joining it if
    /// it is not a live member. Unlike [`Coordinator::subscribe`] it releases nothing: a Kafka
    /// member releases its partitions pending revocation only by acknowledging the revocation
    /// ([`Coordinator::release`]). Bumps the group epoch when membership, subscription or assignor
    /// changes; dead members are removed in the same change. Creates the group on first use.
    pub fn subscribe_exactly(
        &self,
        group: &str,
        member: &str,
        topics: &[Arc<Topic>],
        opts: &JoinOptions,
        now: Millis,
    ) -> Result<MemberView, Error> {
        if opts.session_timeout_ms == Some(0) {
            return Err(Error::Invalid("session_timeout_ms must be positive".into()));
        }
        if opts.rebalance_timeout_ms == Some(0) {
            return Err(Error::Invalid(
                "rebalance_timeout_ms must be positive".into(),
            ));
        }
        let g = self.group_or_create(group);
        self.join(&g, member, topics, Subscription::Exactly, opts, now)
    }

    /// The ids of the members of `group` live at `now` (sorted), without touching their sessions;
    /// empty for an unknown group.
    pub fn live_members(&self, group: &str, now: Millis) -> Vec<String> {
        self.with_group(group, |g| {
            Ok(g.snapshot
                .load()
                .members
                .iter()
                .filter(|m| !m.slot.expired(now))
                .map(|m| m.id.to_string())
                .collect())
        })
        .unwrap_or_default()
    }

    #[cold]
    #[inline(never)]
    fn join(
        &self,
        g: &Group,
        member: &str,
        topics: &[Arc<Topic>],
        mode: Subscription,
        opts: &JoinOptions,
        now: Millis,
    ) -> Result<MemberView, Error> {
        let mut membership = g.lock();
        let mut changed = g.remove_dead(&mut membership, now) > 0;
        if let Some(a) = opts.assignor {
            if a != membership.assignor {
                let others = membership.members.keys().any(|id| &**id != member);
                if others {
                    if changed {
                        g.bump(&mut membership, now);
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
        let names: BTreeSet<StdArc<str>> = topics
            .iter()
            .map(
                |topic| match membership.topics.get_key_value(topic.name()) {
                    Some((name, _)) => StdArc::clone(name),
                    None => {
                        let name: StdArc<str> = topic.name().into();
                        membership
                            .topics
                            .insert(StdArc::clone(&name), Arc::clone(topic));
                        name
                    }
                },
            )
            .collect();
        if mode == Subscription::Add && membership.members.contains_key(member) {
            // A live member's request: it releases what it has to before its subscription changes.
            if g.release_locked(&membership, member, None, now) {
                // Published already: `changed` only says whether the epoch must move.
            }
        }
        match membership.members.get_mut(member) {
            Some(info) => {
                info.slot.touch(now);
                match mode {
                    Subscription::Add => {
                        for name in names {
                            changed |= info.topics.insert(name);
                        }
                    }
                    Subscription::Exactly => {
                        if info.topics != names {
                            info.topics = names;
                            changed = true;
                        }
                    }
                }
            }
            None => {
                let slot = MemberSlot::new(
                    now,
                    opts.session_timeout_ms
                        .unwrap_or(self.config.session_timeout_ms),
                    opts.rebalance_timeout_ms
                        .unwrap_or(self.config.rebalance_timeout_ms),
                    opts.auto_commit.unwrap_or(self.config.auto_commit),
                );
                membership.members.insert(
                    member.into(),
                    MemberInfo {
                        topics: names,
                        slot: Arc::new(slot),
                    },
                );
                changed = true;
            }
        }
        if changed {
            g.bump(&mut membership, now);
        }
        let snap = g.snapshot.load();
        let m = snap.member(member).expect("joined under the lock");
        Ok(snap.view(m, snap.reach(m)))
    }

    /// A clean leave: commits the member's positions (auto-commit), then bumps the group epoch at
    /// once; everything it owned goes to its targets in the same snapshot.
    pub fn unsubscribe(&self, group: &str, member: &str, now: Millis) -> Result<(), Error> {
        let g = self.group(group)?;
        let mut membership = g.lock();
        if !membership.members.contains_key(member) {
            return Err(unknown(&g, member));
        }
        g.remove_locked(&mut membership, member, End::Commit);
        g.remove_dead(&mut membership, now);
        g.bump(&mut membership, now);
        Ok(())
    }

    /// Keeps the member alive and releases its partitions pending revocation (see
    /// [`Coordinator::poll`]); returns what it owns.
    pub fn heartbeat(&self, group: &str, member: &str, now: Millis) -> Result<MemberView, Error> {
        self.with_group(group, |g| {
            let (snap, m, epoch) = self.contact(g, member, now)?;
            Ok(snap.view(m, epoch))
        })
    }

    /// What a live member owns now, without releasing anything: its partitions pending
    /// revocation are still its own (it may commit them until it releases them, as in KIP-848).
    /// Keeps it alive. [`Error::UnknownMember`] if it is not a live member.
    pub fn member_view(&self, group: &str, member: &str, now: Millis) -> Result<MemberView, Error> {
        let g = self.group(group)?;
        let snap = g.snapshot.load();
        let m = self.live(&g, &snap, member, now)?;
        Ok(snap.view(m, snap.reach(m)))
    }

    /// KIP-848's acknowledgement of a revocation: releases the member's partitions pending
    /// revocation except those in `owned` (topic, partition), the ones it reports it still owns,
    /// and publishes the snapshot in which their new owners have them. With auto-commit the
    /// member's positions in them (if a poll set any) are committed first. Also a heartbeat.
    pub fn release(
        &self,
        group: &str,
        member: &str,
        owned: &[(String, u32)],
        now: Millis,
    ) -> Result<MemberView, Error> {
        let g = self.group(group)?;
        {
            let snap = g.snapshot.load();
            let m = self.live(&g, &snap, member, now)?;
            let all_kept = snap.members[m].revoking.iter().all(|&(t, p)| {
                let name = &*snap.topics[t as usize].name;
                owned.iter().any(|(n, q)| n == name && *q == p)
            });
            if all_kept {
                return Ok(snap.view(m, snap.reach(m)));
            }
        }
        {
            let membership = g.lock();
            g.release_locked(&membership, member, Some(owned), now);
        }
        let snap = g.snapshot.load();
        let m = snap.member(member).ok_or_else(|| unknown(&g, member))?;
        Ok(snap.view(m, snap.reach(m)))
    }

    /// Hands out up to `max` records from the member's partitions, fairly, advancing their positions;
    /// calls `f(topic, partition, record)` for each, in offset order per partition. Also a heartbeat:
    /// it first releases the member's partitions pending revocation (see [`crate::group`]) and,
    /// with auto-commit, commits what the member's earlier polls handed out.
    pub fn poll(
        &self,
        group: &str,
        member: &str,
        max: usize,
        now: Millis,
        mut f: impl FnMut(&Topic, u32, RecordRef<'_>),
    ) -> Result<MemberView, Error> {
        self.with_group(group, |g| {
            let (snap, m, epoch) = self.contact(g, member, now)?;
            if snap.members[m].slot.auto_commit {
                g.auto_commit(&snap, m);
            }
            g.hand_out(&snap, m, max, self.config.reset, &mut f);
            Ok(snap.view(m, epoch))
        })
    }

    /// Commits `offset` (the next to consume) for (topic, partition). With `member`, the member must
    /// own the partition in the current snapshot (pending revocation included), else
    /// [`Error::Fenced`] (or
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
            let m = snap.member(member).ok_or_else(|| unknown(g, member))?;
            let fenced = |group_epoch| Error::Fenced {
                group: group.to_string(),
                member: member.to_string(),
                topic: topic.to_string(),
                partition,
                group_epoch,
            };
            let t = snap.topic(topic).ok_or_else(|| fenced(snap.group_epoch))?;
            check_partition(&snap.topics[t].topic, partition)?;
            g.commit_as(
                &snap.members[m].slot,
                &snap.topics[t].name,
                partition,
                offset,
                None,
            )
            .map_err(|Refused::Fenced(epoch)| fenced(epoch))
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

    /// Removes the members whose session ran out by `now`, and fences (removes) those whose
    /// rebalance timeout ran out with partitions still pending revocation, as Kafka does; their
    /// groups move to a new epoch. Returns how many were removed.
    pub fn expire(&self, now: Millis) -> usize {
        let groups: Vec<Arc<Group>> = self.groups.load().values().cloned().collect();
        groups
            .iter()
            .filter(|g| g.any_dead(now))
            .map(|g| g.expire(now))
            .sum()
    }

    /// The group's epoch, assignor, members (with their member epochs and reconciliation) and, per
    /// partition of every topic it knows, owner, committed offset, log end and lag. Removes dead
    /// members first.
    pub fn describe(&self, group: &str, now: Millis) -> Result<GroupDescription, Error> {
        let g = self.group(group)?;
        let mut membership = g.lock();
        if g.remove_dead(&mut membership, now) > 0 {
            g.bump(&mut membership, now);
        }
        let snap = g.snapshot.load();
        let members = snap
            .members
            .iter()
            .enumerate()
            .map(|(m, e)| MemberDescription {
                id: e.id.to_string(),
                view: snap.view(m, e.slot.epoch()),
                topics: e
                    .topics
                    .iter()
                    .map(|&t| snap.topics[t as usize].name.to_string())
                    .collect(),
            })
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
            group_epoch: snap.group_epoch,
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
        if g.remove_dead(&mut membership, now) > 0 {
            g.bump(&mut membership, now);
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
            if g.remove_dead(&mut membership, now) > 0 {
                g.bump(&mut membership, now);
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

    /// The group's current group epoch (one lock-free snapshot load).
    pub fn group_epoch(&self, group: &str) -> Option<u64> {
        self.with_group(group, |g| Ok(g.snapshot.load().group_epoch))
            .ok()
    }

    /// Whether some member of `group` has partitions pending revocation or assignment: the group
    /// is still reconciling towards its target assignment (Kafka's `ASSIGNING`/`RECONCILING`).
    pub fn reconciling(&self, group: &str) -> bool {
        self.with_group(group, |g| Ok(g.reconciling()))
            .unwrap_or(false)
    }

    /// Checks the invariants of `group`'s current snapshot (one owner per partition, member lists,
    /// cursors, target, pending revocation and assignment, deadlines); returns the group epoch. For
    /// tests and debugging.
    pub fn check_snapshot(&self, group: &str) -> Result<u64, String> {
        let g = self.group(group).map_err(|e| e.to_string())?;
        let snap = g.snapshot.load();
        snap.check().map(|()| snap.group_epoch)
    }
}

/// How a join changes a live member's subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subscription {
    /// Adds the topics (the Maelstrom protocol's `subscribe`); releases what the member has
    /// pending revocation first.
    Add,
    /// Replaces the subscription (KIP-848's `SubscribedTopicNames`); releases nothing.
    Exactly,
}

fn check_partition(topic: &Topic, partition: u32) -> Result<(), Error> {
    topic.partition(partition).map(|_| ())
}

fn unknown(g: &Group, member: &str) -> Error {
    Error::UnknownMember {
        group: g.id.to_string(),
        member: member.to_string(),
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod reconcile_tests;
#[cfg(all(test, not(loom)))]
mod tests;
