//! One consumer group: its cold state behind a mutex, its published snapshot, its committed offsets,
//! and the operations the [`Coordinator`](super::Coordinator) composes: publishing a reconciled
//! snapshot, ending ownerships (release, leave, expiry, fencing), commits with fencing, auto-commit
//! and handing out records.

use super::cursor::Cursor;
use super::membership::{MemberSlot, Membership};
use super::snapshot::{Snapshot, NO_DEADLINE};
use super::ResetPolicy;
use crate::assignor::AssignorKind;
use crate::clock::Millis;
use crate::loom::{lock, Arc, ArcSwap, DashMap, MapExt, Mutex, MutexGuard, StdArc};
use crate::partition::RecordRef;
use crate::topic::Topic;

/// The committed-offset key: (topic name, partition).
pub(crate) type OffsetKey = (StdArc<str>, u32);

/// Why a commit on behalf of a member was refused.
pub(crate) enum Refused {
    /// The member incarnation does not own the partition in the snapshot of this group epoch.
    Fenced(u64),
}

/// How an ownership ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The member hands the partitions over and, with auto-commit, commits its positions first
    /// (a release, a clean leave).
    Commit,
    /// The member is gone or fenced: nothing of its progress is committed (expiry, rebalance
    /// timeout).
    Drop,
}

/// One consumer group.
pub(crate) struct Group {
    pub(crate) id: StdArc<str>,
    /// The cold state; every change holds it while it builds and publishes a snapshot.
    membership: Mutex<Membership>,
    /// The current assignment; loaded without locks.
    pub(crate) snapshot: ArcSwap<Snapshot>,
    /// Committed offsets: the next offset to consume.
    pub(crate) committed: DashMap<OffsetKey, u64>,
}

impl Group {
    pub(crate) fn new(id: StdArc<str>, assignor: AssignorKind) -> Self {
        Group {
            id,
            membership: Mutex::new(Membership::new(assignor)),
            snapshot: ArcSwap::from_pointee(Snapshot::empty(assignor)),
            committed: DashMap::with_hasher(ahash::RandomState::new()),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Membership> {
        lock(&self.membership)
    }

    /// Builds and publishes the next snapshot after `released` (see [`Snapshot::build`]). Call with
    /// the membership locked: the snapshot loaded here is then the current one.
    #[cold]
    #[inline(never)]
    pub(crate) fn publish(&self, membership: &Membership, released: &[(u32, u32)], now: Millis) {
        let prev = self.snapshot.load_full();
        let next = Snapshot::build(membership, &prev, released, now);
        debug_assert_eq!(next.check(), Ok(()));
        self.snapshot.store(Arc::new(next));
    }

    /// Bumps the group epoch and publishes the target assignment for the membership now, reconciled.
    /// Call with the membership locked.
    #[cold]
    #[inline(never)]
    pub(crate) fn bump(&self, membership: &mut Membership, now: Millis) {
        membership.group_epoch += 1;
        self.publish(membership, &[], now);
    }

    /// Ends the ownerships of member `m` of `snap` (the current snapshot: call with the membership
    /// locked) over `parts` (topic index, partition): closes their cursors, so that no poll hands
    /// out anything further, and with [`End::Commit`] and auto-commit commits where each ended.
    pub(crate) fn end_ownerships(&self, snap: &Snapshot, m: usize, parts: &[(u32, u32)], end: End) {
        let slot = &snap.members[m].slot;
        for &(t, p) in parts {
            let ts = &snap.topics[t as usize];
            let cursor = ts.cursors[p as usize]
                .as_deref()
                .expect("owned has a cursor");
            let Some(position) = cursor.close() else {
                continue;
            };
            if end == End::Commit && slot.auto_commit {
                // The snapshot is current and the member owns the partition in it: this lands
                // (or is already there, when auto-commit stored it before).
                let _ = self.commit_as(slot, &ts.name, p, position, Some(cursor));
            }
        }
    }

    /// Releases member `member`'s partitions pending revocation, except those in `keep` (topic name,
    /// partition), committing its positions in them first (auto-commit), and publishes the
    /// reconciled snapshot in which their targets own them. Returns whether anything was released.
    /// Call with the membership locked.
    pub(crate) fn release_locked(
        &self,
        membership: &Membership,
        member: &str,
        keep: Option<&[(String, u32)]>,
        now: Millis,
    ) -> bool {
        let snap = self.snapshot.load_full();
        let Some(m) = snap.member(member) else {
            return false;
        };
        let released: Vec<(u32, u32)> = snap.members[m]
            .revoking
            .iter()
            .copied()
            .filter(|&(t, p)| {
                let name = &*snap.topics[t as usize].name;
                !keep.is_some_and(|k| k.iter().any(|(n, q)| n == name && *q == p))
            })
            .collect();
        if released.is_empty() {
            return false;
        }
        self.end_ownerships(&snap, m, &released, End::Commit);
        self.publish(membership, &released, now);
        true
    }

    /// Removes member `member` (which must be in the current snapshot or the membership), ending its
    /// ownerships as `end` says. Does not publish: the caller bumps the epoch. Call with the
    /// membership locked.
    pub(crate) fn remove_locked(&self, membership: &mut Membership, member: &str, end: End) {
        let snap = self.snapshot.load_full();
        if let Some(m) = snap.member(member) {
            let owned = &snap.members[m].owned;
            self.end_ownerships(&snap, m, owned, end);
        }
        membership.members.remove(member);
    }

    /// Removes the members whose session ran out, or whose rebalance timeout ran out with
    /// partitions still pending revocation (Kafka fences those), by `now`; returns how many. Their
    /// progress is not committed. Does not publish. Call with the membership locked.
    pub(crate) fn remove_dead(&self, membership: &mut Membership, now: Millis) -> usize {
        let snap = self.snapshot.load_full();
        let dead: Vec<StdArc<str>> = snap
            .members
            .iter()
            .filter(|m| m.slot.expired(now) || m.deadline <= now)
            .map(|m| StdArc::clone(&m.id))
            .collect();
        for id in &dead {
            self.remove_locked(membership, id, End::Drop);
        }
        dead.len()
    }

    /// Removes the dead members (see [`Group::remove_dead`]) and rebalances if there were any.
    #[cold]
    #[inline(never)]
    pub(crate) fn expire(&self, now: Millis) -> usize {
        let mut membership = self.lock();
        let removed = self.remove_dead(&mut membership, now);
        if removed > 0 {
            self.bump(&mut membership, now);
        }
        removed
    }

    /// Whether some member of the current snapshot is dead by `now` (no lock).
    pub(crate) fn any_dead(&self, now: Millis) -> bool {
        self.snapshot
            .load()
            .members
            .iter()
            .any(|m| m.slot.expired(now) || m.deadline <= now)
    }

    /// Whether some member has partitions pending revocation (no lock); for tests.
    pub(crate) fn reconciling(&self) -> bool {
        self.snapshot
            .load()
            .members
            .iter()
            .any(|m| m.deadline != NO_DEADLINE || !m.pending.is_empty())
    }

    /// The committed offset of (`name`, `p`).
    pub(crate) fn committed(&self, name: &StdArc<str>, p: u32) -> Option<u64> {
        self.committed.get_with(&(StdArc::clone(name), p), |&v| v)
    }

    /// Commits `offset` for (`name`, `p`) on behalf of the member incarnation `slot`, if it owns the
    /// partition in the snapshot current *while the entry is locked* (see "Fencing"). With `auto`,
    /// this is that cursor's auto-commit, which never moves back behind its own last auto-commit.
    pub(crate) fn commit_as(
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
                return (None, Err(Refused::Fenced(snap.group_epoch)));
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
    pub(crate) fn commit_admin(&self, name: StdArc<str>, p: u32, offset: u64) {
        self.committed.update((name, p), |_| (Some(offset), ()));
    }

    /// Auto-commits the end of what member `m` of `snap` was handed out, where it moved. A partition
    /// the member no longer owns is fenced and skipped.
    pub(crate) fn auto_commit(&self, snap: &Snapshot, m: usize) {
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

    /// Where a new ownership of (`name`, `p`) starts: the committed offset, else the reset policy's.
    /// A position the `latest` policy picks is committed at once for a member with auto-commit (if
    /// it still owns the partition and nothing was committed meanwhile), so that it survives any
    /// hand-off, even an expiry: the next owner resumes there rather than at a later log end,
    /// which would skip the records in between.
    fn initial_position(
        &self,
        slot: &Arc<MemberSlot>,
        name: &StdArc<str>,
        p: u32,
        cursor: &Cursor,
        end: u64,
        reset: ResetPolicy,
    ) -> u64 {
        if let Some(c) = self.committed(name, p) {
            return c;
        }
        match reset {
            ResetPolicy::Earliest => 0,
            ResetPolicy::Latest if !slot.auto_commit => end,
            ResetPolicy::Latest => self.committed.update((StdArc::clone(name), p), |now| {
                if let Some(&c) = now {
                    return (None, c);
                }
                if !self.snapshot.load().owns(slot, name, p) {
                    // Fenced: this cursor is an old one; nothing it hands out is committed.
                    return (None, end);
                }
                cursor.set_auto(end);
                (Some(end), end)
            }),
        }
    }

    /// Hands out up to `max` records from member `m`'s partitions, starting at a rotating partition:
    /// first up to `max / n` (at least 1) from each, then what is left of `max` in the same order.
    pub(crate) fn hand_out(
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
                let Some(pos) = cursor.position(|| {
                    self.initial_position(&member.slot, &ts.name, p, cursor, partition.end(), reset)
                }) else {
                    // Closed: the ownership ended after `snap` was loaded.
                    continue;
                };
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
