//! A group's cold state, behind its mutex: the members (one [`MemberSlot`] per incarnation), their
//! subscriptions, the topics the group knows, the assignor and the group epoch.
//!
//! # Orderings
//!
//! - `MemberSlot::last_seen` is a timestamp raised with `fetch_max(Relaxed)` by polls and heartbeats
//!   and read `Relaxed` by expiry. It publishes nothing: a stale read can only misjudge a member
//!   that polled within the same instant as the expiry check, which is the inherent race of any
//!   session timeout (the member is then either kept or removed, and both are consistent states).
//! - `MemberSlot::next` picks the partition a poll starts at; `fetch_add(Relaxed)` suffices, as it
//!   only spreads the work.
//! - `MemberSlot::epoch` (the member epoch) is raised with `fetch_max(Relaxed)` by the member's own
//!   requests and read `Relaxed` for replies and `describe`. It guards nothing: ownership is decided
//!   by the published snapshot (see `group/snapshot.rs`), and a commit's fencing reads that snapshot
//!   under the committed map's entry lock. A reader that sees an older epoch sees one the member
//!   really held.

use crate::assignor::AssignorKind;
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
    /// How long the member may keep partitions pending revocation (Kafka's rebalance timeout,
    /// `max.poll.interval.ms` for the Java consumer).
    pub(crate) rebalance_timeout_ms: u64,
    pub(crate) auto_commit: bool,
    /// Where the next poll starts among the member's partitions.
    next: AtomicUsize,
    /// The member epoch: the group epoch of the last target assignment the member reached (0 until
    /// its first).
    epoch: AtomicU64,
}

impl MemberSlot {
    pub(crate) fn new(
        now: u64,
        session_timeout_ms: u64,
        rebalance_timeout_ms: u64,
        auto_commit: bool,
    ) -> Self {
        MemberSlot {
            last_seen: AtomicU64::new(now),
            session_timeout_ms,
            rebalance_timeout_ms,
            auto_commit,
            next: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
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

    /// The member epoch.
    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        // Relaxed: see "Orderings".
        self.epoch.load(Ordering::Relaxed)
    }

    /// Moves the member epoch up to `epoch` (never down); returns the epoch now.
    #[inline]
    pub(crate) fn advance(&self, epoch: u64) -> u64 {
        // Relaxed: see "Orderings". The load first keeps the common case (already there) a read.
        let current = self.epoch.load(Ordering::Relaxed);
        if current >= epoch {
            return current;
        }
        self.epoch.fetch_max(epoch, Ordering::Relaxed).max(epoch)
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
    /// Kafka's group epoch: bumped by every change of membership, subscriptions or assignor. The
    /// target assignment is recomputed for each.
    pub(crate) group_epoch: u64,
    pub(crate) assignor: AssignorKind,
    /// Every topic the group has seen (subscribed now or before, or committed through the broker).
    pub(crate) topics: BTreeMap<StdArc<str>, Arc<Topic>>,
    /// Live members, in Kafka's member order (by id).
    pub(crate) members: BTreeMap<StdArc<str>, MemberInfo>,
}

impl Membership {
    pub(crate) fn new(assignor: AssignorKind) -> Self {
        Membership {
            group_epoch: 0,
            assignor,
            topics: BTreeMap::new(),
            members: BTreeMap::new(),
        }
    }
}
