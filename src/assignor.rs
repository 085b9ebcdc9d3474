//! The assignors: `range`, `roundrobin` and `cooperative-sticky`, per Kafka's definitions.
//!
//! Every assignor is a pure function over an assignment problem in *index form*:
//!
//! - topics are numbered `0..partitions.len()` in name order, and `partitions[t]` is topic `t`'s
//!   partition count;
//! - members are numbered `0..subscriptions.len()` in Kafka's member order (sorted by member id), and
//!   `subscriptions[m]` lists the topics member `m` subscribes to (topic indices; order and duplicates
//!   do not matter, indices out of range are ignored);
//! - an [`Assignment`] gives, per topic and partition, the index of the owning member or [`NO_OWNER`].
//!
//! The coordinator ([`crate::group`]) translates ids to indices once per rebalance, so the inner loops
//! here touch only `Vec<u32>`s, never strings or maps.
//!
//! # What each assignor guarantees
//!
//! For all three: every partition of a topic with at least one subscriber is owned by exactly one
//! member subscribed to that topic; every partition of a topic without subscribers is [`NO_OWNER`].
//! Members beyond what the partitions can feed stay idle.
//!
//! - [`range`] (Kafka's `RangeAssignor`): per topic, the subscribers in member order get contiguous
//!   ranges, the first `P % n` of them one partition more. Balanced *within each topic* (counts differ
//!   by at most one among that topic's subscribers), not across topics — as in Kafka. Not sticky.
//! - [`roundrobin`] (Kafka's `RoundRobinAssignor`): all partitions in (topic, partition) order are dealt
//!   to the members in turn, skipping members not subscribed to the partition's topic. With identical
//!   subscriptions, counts differ by at most one. Not sticky.
//! - [`cooperative_sticky`] (Kafka's `CooperativeStickyAssignor`, the default): balance first, then
//!   stickiness. The result is always **balanced** in the sense of [`is_balanced`]: no partition can
//!   move to another member subscribed to its topic and narrow the spread, i.e. for every partition
//!   owned by `m` and every member `m'` subscribed to its topic, `count(m) ≤ count(m') + 1`. With
//!   identical subscriptions this is exactly "counts differ by at most one". Stickiness: a member
//!   keeps every partition it owned before unless balance forces it out, and then it gives up only
//!   its excess. With identical subscriptions, starting from a balanced assignment:
//!   - a leave moves only the leaver's partitions (each to one of the least-loaded members);
//!   - a join moves exactly the partitions the joiner ends up with (at most `⌈T / n⌉`), each taken
//!     from a most-loaded member.
//!
//!   With different subscriptions the result is still balanced as above and keeps every previous
//!   owner that balance allows, but the minimal-movement bounds are not promised.
//!
//! Kafka's cooperative variant withholds a moving partition for one round until its old owner revoked
//! it. kgroups does not need that round: the coordinator hands a moved partition straight to its new
//! owner and fences the old one (see [`crate::group`]), so this function returns the final target.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::str::FromStr;

/// Which assignor a group uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AssignorKind {
    /// Kafka's `RangeAssignor`: per topic, contiguous ranges.
    Range,
    /// Kafka's `RoundRobinAssignor`: all partitions dealt in turn.
    RoundRobin,
    /// Kafka's `CooperativeStickyAssignor`: balance first, then keep what members own.
    #[default]
    CooperativeSticky,
}

impl AssignorKind {
    /// The name clients use: `range`, `roundrobin`, `cooperative-sticky`.
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Range => "range",
            AssignorKind::RoundRobin => "roundrobin",
            AssignorKind::CooperativeSticky => "cooperative-sticky",
        }
    }
}

/// The assignor names [`AssignorKind`]'s `FromStr` takes (in any case), for help and error texts.
pub const ASSIGNORS: &str = "range, roundrobin (or round-robin), cooperative-sticky";

impl FromStr for AssignorKind {
    type Err = String;

    /// A name of [`AssignorKind::name`], in any case; `round-robin` is also taken. Kafka's eager
    /// `sticky` assignor is not one of them: its text points to `cooperative-sticky`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "range" => Ok(AssignorKind::Range),
            "roundrobin" | "round-robin" => Ok(AssignorKind::RoundRobin),
            "cooperative-sticky" => Ok(AssignorKind::CooperativeSticky),
            "sticky" => Err(format!(
                "unknown assignor {s:?}: Kafka's eager sticky assignor is not implemented; \
                 cooperative-sticky is its incremental form (assignors: {ASSIGNORS})"
            )),
            _ => Err(format!("unknown assignor {s:?} (assignors: {ASSIGNORS})")),
        }
    }
}

/// The owner of a partition that nobody owns.
pub const NO_OWNER: u32 = u32::MAX;

/// `assignment[t][p]` is the index of the member that owns partition `p` of topic `t`, or [`NO_OWNER`].
pub type Assignment = Vec<Vec<u32>>;

/// Runs the assignor `kind`. `previous` is the assignment in force, re-indexed to the current members
/// (an owner that left is [`NO_OWNER`]; missing topics or partitions count as unowned); only the
/// sticky assignor reads it.
pub fn assign<S: AsRef<[u32]>>(
    kind: AssignorKind,
    partitions: &[u32],
    subscriptions: &[S],
    previous: &[Vec<u32>],
) -> Assignment {
    match kind {
        AssignorKind::Range => range(partitions, subscriptions),
        AssignorKind::RoundRobin => roundrobin(partitions, subscriptions),
        AssignorKind::CooperativeSticky => cooperative_sticky(partitions, subscriptions, previous),
    }
}

/// Which members subscribe to which topic: one bit per (topic, member).
struct Subscribed {
    words: usize,
    bits: Vec<u64>,
    /// Per topic, its subscribers in member order.
    eligible: Vec<Vec<u32>>,
}

impl Subscribed {
    fn new<S: AsRef<[u32]>>(topics: usize, subscriptions: &[S]) -> Self {
        let words = subscriptions.len().div_ceil(64);
        let mut bits = vec![0u64; words * topics];
        let mut eligible = vec![Vec::new(); topics];
        for (m, subs) in subscriptions.iter().enumerate() {
            for &t in subs.as_ref() {
                let t = t as usize;
                if t >= topics {
                    continue;
                }
                let word = &mut bits[t * words + m / 64];
                let bit = 1u64 << (m % 64);
                if *word & bit == 0 {
                    *word |= bit;
                    eligible[t].push(m as u32);
                }
            }
        }
        Subscribed {
            words,
            bits,
            eligible,
        }
    }

    #[inline]
    fn has(&self, topic: usize, member: u32) -> bool {
        let m = member as usize;
        self.bits[topic * self.words + m / 64] & (1u64 << (m % 64)) != 0
    }
}

fn unowned(partitions: &[u32]) -> Assignment {
    partitions
        .iter()
        .map(|&n| vec![NO_OWNER; n as usize])
        .collect()
}

/// Kafka's `RangeAssignor`: per topic, the subscribers in member order get contiguous ranges; the
/// first `P % n` get one more.
pub fn range<S: AsRef<[u32]>>(partitions: &[u32], subscriptions: &[S]) -> Assignment {
    let subs = Subscribed::new(partitions.len(), subscriptions);
    let mut out = unowned(partitions);
    for (t, owners) in out.iter_mut().enumerate() {
        let eligible = &subs.eligible[t];
        let n = eligible.len();
        if n == 0 {
            continue;
        }
        let (q, r) = (owners.len() / n, owners.len() % n);
        let mut p = 0;
        for (i, &m) in eligible.iter().enumerate() {
            let take = q + usize::from(i < r);
            owners[p..p + take].fill(m);
            p += take;
        }
    }
    out
}

/// Kafka's `RoundRobinAssignor`: partitions in (topic, partition) order go to the members in turn,
/// skipping those not subscribed to the partition's topic.
pub fn roundrobin<S: AsRef<[u32]>>(partitions: &[u32], subscriptions: &[S]) -> Assignment {
    let subs = Subscribed::new(partitions.len(), subscriptions);
    let mut out = unowned(partitions);
    let members = subscriptions.len() as u32;
    let mut next = 0u32;
    for (t, owners) in out.iter_mut().enumerate() {
        if subs.eligible[t].is_empty() {
            continue;
        }
        for owner in owners.iter_mut() {
            // Terminates: topic `t` has at least one subscriber.
            while !subs.has(t, next) {
                next = (next + 1) % members;
            }
            *owner = next;
            next = (next + 1) % members;
        }
    }
    out
}

/// Kafka's `CooperativeStickyAssignor`: balance first, then keep previous owners. See the module docs
/// for what it guarantees.
///
/// 1. Keep every previous owner that is still a subscriber of the partition's topic.
/// 2. Give each unowned partition to the least-loaded subscriber of its topic (ties: lowest index),
///    topics with the fewest subscribers first.
/// 3. While some partition is owned by `m` and a subscriber `m'` of its topic has
///    `count(m') + 2 ≤ count(m)`, move one of `m`'s partitions of that subscriber set (the one it got
///    last) to the least-loaded such `m'`. Each move lowers Σ count² by at least 2, so this ends, and
///    it ends exactly when the assignment is balanced.
pub fn cooperative_sticky<S: AsRef<[u32]>>(
    partitions: &[u32],
    subscriptions: &[S],
    previous: &[Vec<u32>],
) -> Assignment {
    let members = subscriptions.len();
    let subs = Subscribed::new(partitions.len(), subscriptions);
    let mut out = unowned(partitions);
    let mut counts = vec![0u32; members];

    // 1. Keep the previous owners that still qualify.
    for (t, owners) in out.iter_mut().enumerate() {
        if subs.eligible[t].is_empty() {
            continue;
        }
        let Some(prev) = previous.get(t) else {
            continue;
        };
        for (owner, &was) in owners.iter_mut().zip(prev) {
            if (was as usize) < members && subs.has(t, was) {
                *owner = was;
                counts[was as usize] += 1;
            }
        }
    }

    // Classes of topics with the same subscriber set; the fewest subscribers first.
    let mut order: Vec<usize> = (0..partitions.len())
        .filter(|&t| !subs.eligible[t].is_empty())
        .collect();
    order.sort_by(|&a, &b| {
        let (ea, eb) = (&subs.eligible[a], &subs.eligible[b]);
        ea.len().cmp(&eb.len()).then_with(|| ea.cmp(eb))
    });
    let mut classes: Vec<&[usize]> = Vec::new();
    let mut rest = &order[..];
    while let Some(&first) = rest.first() {
        let len = rest
            .iter()
            .take_while(|&&t| subs.eligible[t] == subs.eligible[first])
            .count();
        classes.push(&rest[..len]);
        rest = &rest[len..];
    }

    // 2. Unowned partitions go to the least-loaded subscriber.
    let mut heap = BinaryHeap::new();
    for class in &classes {
        let eligible = &subs.eligible[class[0]];
        heap.clear();
        heap.extend(eligible.iter().map(|&m| Reverse((counts[m as usize], m))));
        for &t in class.iter() {
            for owner in out[t].iter_mut().filter(|o| **o == NO_OWNER) {
                let Reverse((c, m)) = heap.pop().expect("a class has subscribers");
                *owner = m;
                counts[m as usize] = c + 1;
                heap.push(Reverse((c + 1, m)));
            }
        }
    }

    // 3. Move partitions from the most- to the least-loaded subscribers until balanced.
    let mut local = vec![u32::MAX; members];
    let mut owned: Vec<Vec<(u32, u32)>> = Vec::new();
    let mut by_count = BTreeSet::new();
    loop {
        let mut moved = false;
        for class in &classes {
            let eligible = &subs.eligible[class[0]];
            // Per subscriber (by its position in `eligible`), the partitions it owns in this class.
            owned.iter_mut().for_each(Vec::clear);
            owned.resize_with(eligible.len(), Vec::new);
            for (i, &m) in eligible.iter().enumerate() {
                local[m as usize] = i as u32;
            }
            for &t in class.iter() {
                for (p, &m) in out[t].iter().enumerate() {
                    owned[local[m as usize] as usize].push((t as u32, p as u32));
                }
            }
            by_count.clear();
            by_count.extend(eligible.iter().map(|&m| (counts[m as usize], m)));
            loop {
                let &(low, to) = by_count.first().expect("a class has subscribers");
                let from = by_count
                    .iter()
                    .rev()
                    .take_while(|&&(c, _)| c >= low + 2)
                    .find(|&&(_, m)| !owned[local[m as usize] as usize].is_empty())
                    .copied();
                let Some((high, from)) = from else { break };
                let (t, p) = owned[local[from as usize] as usize]
                    .pop()
                    .expect("found non-empty");
                out[t as usize][p as usize] = to;
                owned[local[to as usize] as usize].push((t, p));
                by_count.remove(&(high, from));
                by_count.remove(&(low, to));
                by_count.insert((high - 1, from));
                by_count.insert((low + 1, to));
                counts[from as usize] = high - 1;
                counts[to as usize] = low + 1;
                moved = true;
            }
        }
        // With one class, a pass that balanced it cannot have unbalanced anything else.
        if !moved || classes.len() <= 1 {
            break;
        }
    }
    out
}

/// Whether `assignment` satisfies the ownership rule: every partition of a topic with subscribers is
/// owned by a subscriber of that topic; the others are unowned. Also checks the shape.
pub fn is_complete<S: AsRef<[u32]>>(
    partitions: &[u32],
    subscriptions: &[S],
    assignment: &[Vec<u32>],
) -> bool {
    let subs = Subscribed::new(partitions.len(), subscriptions);
    assignment.len() == partitions.len()
        && assignment.iter().enumerate().all(|(t, owners)| {
            owners.len() == partitions[t] as usize
                && owners.iter().all(|&m| {
                    if subs.eligible[t].is_empty() {
                        m == NO_OWNER
                    } else {
                        (m as usize) < subscriptions.len() && subs.has(t, m)
                    }
                })
        })
}

/// Partitions per member.
pub fn counts(members: usize, assignment: &[Vec<u32>]) -> Vec<u32> {
    let mut counts = vec![0u32; members];
    for &m in assignment.iter().flatten() {
        if let Some(c) = counts.get_mut(m as usize) {
            *c += 1;
        }
    }
    counts
}

/// The balance rule of [`cooperative_sticky`]: for every partition owned by `m` and every member `m'`
/// subscribed to its topic, `count(m) ≤ count(m') + 1`.
pub fn is_balanced<S: AsRef<[u32]>>(
    partitions: &[u32],
    subscriptions: &[S],
    assignment: &[Vec<u32>],
) -> bool {
    let subs = Subscribed::new(partitions.len(), subscriptions);
    let counts = counts(subscriptions.len(), assignment);
    assignment.iter().enumerate().all(|(t, owners)| {
        let Some(low) = subs.eligible[t].iter().map(|&m| counts[m as usize]).min() else {
            return true;
        };
        owners
            .iter()
            .all(|&m| m == NO_OWNER || counts[m as usize] <= low + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(members: usize, topics: u32) -> Vec<Vec<u32>> {
        vec![(0..topics).collect(); members]
    }

    #[test]
    fn names_round_trip() {
        for kind in [
            AssignorKind::Range,
            AssignorKind::RoundRobin,
            AssignorKind::CooperativeSticky,
        ] {
            assert_eq!(kind.name().parse::<AssignorKind>(), Ok(kind));
        }
        assert!("fair".parse::<AssignorKind>().is_err());
        // Any case; every spelling taken is listed in ASSIGNORS, and `sticky` is not one.
        assert_eq!("RANGE".parse(), Ok(AssignorKind::Range));
        assert_eq!("Round-Robin".parse(), Ok(AssignorKind::RoundRobin));
        assert_eq!(
            "Cooperative-Sticky".parse(),
            Ok(AssignorKind::CooperativeSticky)
        );
        let e = "sticky".parse::<AssignorKind>().unwrap_err();
        assert!(
            e.contains("cooperative-sticky") && e.contains("not implemented"),
            "{e}"
        );
        for name in ["range", "roundrobin", "round-robin", "cooperative-sticky"] {
            assert!(ASSIGNORS.contains(name) && name.parse::<AssignorKind>().is_ok());
        }
    }

    #[test]
    fn range_matches_kafka() {
        // Kafka's RangeAssignor javadoc: t0, t1 with 3 partitions each, C0 and C1:
        // C0: [t0p0, t0p1, t1p0, t1p1], C1: [t0p2, t1p2].
        let a = range(&[3, 3], &all(2, 2));
        assert_eq!(a, vec![vec![0, 0, 1], vec![0, 0, 1]]);
        // Uneven: 7 partitions over 3 members.
        assert_eq!(range(&[7], &all(3, 1)), vec![vec![0, 0, 0, 1, 1, 2, 2]]);
    }

    #[test]
    fn roundrobin_matches_kafka() {
        // Kafka's RoundRobinAssignor javadoc, identical subscriptions:
        // C0: [t0p0, t0p2, t1p1], C1: [t0p1, t1p0, t1p2].
        assert_eq!(
            roundrobin(&[3, 3], &all(2, 2)),
            vec![vec![0, 1, 0], vec![1, 0, 1]]
        );
        // Different subscriptions: C0 [t0], C1 [t0, t1], C2 [t0, t1, t2]; t0 1p, t1 2p, t2 3p.
        // Kafka: C0 [t0p0], C1 [t1p0], C2 [t1p1, t2p0, t2p1, t2p2].
        let subs = vec![vec![0], vec![0, 1], vec![0, 1, 2]];
        assert_eq!(
            roundrobin(&[1, 2, 3], &subs),
            vec![vec![0], vec![1, 2], vec![2, 2, 2]]
        );
    }

    #[test]
    fn sticky_example_from_kafka() {
        // Topics t0..t3 with 2 partitions each; C0 = [t0p0, t1p1, t3p0], C1 = [t0p1, t2p0, t3p1],
        // C2 = [t1p0, t2p1]. C1 leaves: nothing that stayed moves, and C1's three partitions split.
        let prev_after_leave = vec![
            vec![0, NO_OWNER],
            vec![1, 0],
            vec![NO_OWNER, 1],
            vec![0, NO_OWNER],
        ];
        let subs = all(2, 4);
        let a = cooperative_sticky(&[2, 2, 2, 2], &subs, &prev_after_leave);
        for (t, owners) in prev_after_leave.iter().enumerate() {
            for (p, &o) in owners.iter().enumerate() {
                if o != NO_OWNER {
                    assert_eq!(a[t][p], o, "t{t}p{p} moved");
                }
            }
        }
        assert_eq!(counts(2, &a), vec![4, 4]);
        assert!(is_balanced(&[2, 2, 2, 2], &subs, &a));
    }

    #[test]
    fn sticky_join_moves_only_the_joiners_share() {
        let subs3 = all(3, 1);
        let before = cooperative_sticky(&[10], &subs3, &[]);
        assert_eq!(counts(3, &before), vec![4, 3, 3]);
        let subs4 = all(4, 1);
        let after = cooperative_sticky(&[10], &subs4, &before);
        let moved = before[0]
            .iter()
            .zip(&after[0])
            .filter(|(a, b)| a != b)
            .count();
        let c = counts(4, &after);
        assert_eq!(moved as u32, c[3]);
        assert!(c.iter().all(|&n| n == 2 || n == 3));
    }

    #[test]
    fn sticky_different_subscriptions_balance_per_eligible_members() {
        // C0 subscribes t0 and t1, C1 only t1. t0 has 4 partitions, t1 has 2: C0 must take all of
        // t0 and C1 takes both of t1 (C0 would otherwise have 5 vs 1, movable).
        let subs = vec![vec![0, 1], vec![1]];
        let a = cooperative_sticky(&[4, 2], &subs, &[]);
        assert_eq!(a, vec![vec![0; 4], vec![1, 1]]);
        assert!(is_balanced(&[4, 2], &subs, &a));
        assert!(is_complete(&[4, 2], &subs, &a));
    }

    #[test]
    fn unsubscribed_topics_stay_unowned_and_extra_members_idle() {
        let subs = vec![vec![1], vec![1], vec![1]];
        for kind in [
            AssignorKind::Range,
            AssignorKind::RoundRobin,
            AssignorKind::CooperativeSticky,
        ] {
            let a = assign(kind, &[3, 2], &subs, &[]);
            assert_eq!(a[0], vec![NO_OWNER; 3], "{kind:?}");
            assert!(is_complete(&[3, 2], &subs, &a));
            let c = counts(3, &a);
            assert_eq!(c.iter().filter(|&&n| n == 0).count(), 1, "{kind:?}");
        }
    }

    #[test]
    fn previous_owner_no_longer_subscribed_loses_its_partitions() {
        let subs = vec![vec![0], vec![1]];
        let prev = vec![vec![1, 1], vec![1]];
        let a = cooperative_sticky(&[2, 1], &subs, &prev);
        assert_eq!(a, vec![vec![0, 0], vec![1]]);
    }
}
