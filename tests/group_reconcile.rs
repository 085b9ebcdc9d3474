//! Property tests of the coordinator's reconciliation (KIP-848) over random histories of joins,
//! leaves, polls, heartbeats that release nothing, sends and the passing of time, through the public
//! [`Coordinator`] API only:
//!
//! - a partition never has two owners (every snapshot's invariants hold after every step);
//! - a partition leaves a member that is still in the group only through that member's own release
//!   (its poll, or its join of another topic), and only if it was pending revocation: a member that
//!   releases nothing keeps its partitions until its rebalance timeout fences it;
//! - among live members (no expiry, no fencing) no record is handed out twice, and none is skipped;
//! - once the members stop changing and each makes a request, every partition of a subscribed
//!   topic is owned and the group has reached its target assignment.

use kgroups::assignor::AssignorKind;
use kgroups::group::{Coordinator, GroupConfig, JoinOptions, MemberState};
use kgroups::topic::Topic;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const SESSION_MS: u64 = 1_000;
const REBALANCE_MS: u64 = 400;

#[derive(Debug, Clone)]
enum Step {
    /// Member `m` subscribes to topic `t` (a join, a heartbeat, or a new subscription).
    Join(u8, u8),
    /// Member `m` leaves cleanly.
    Leave(u8),
    /// Member `m` polls up to `n` records (and so releases what it must).
    Poll(u8, u8),
    /// Member `m` heartbeats reporting it still owns everything it has: it releases nothing.
    Hold(u8),
    /// `n` records are appended to partition `p % count` of topic `t`.
    Send(u8, u8, u8),
    /// Time passes by `ms`; dead members are removed.
    Wait(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..5, 0u8..2).prop_map(|(m, t)| Step::Join(m, t)),
        1 => (0u8..5).prop_map(Step::Leave),
        6 => (0u8..5, 1u8..8).prop_map(|(m, n)| Step::Poll(m, n)),
        2 => (0u8..5).prop_map(Step::Hold),
        3 => (0u8..2, any::<u8>(), 1u8..6).prop_map(|(t, p, n)| Step::Send(t, p, n)),
        1 => (1u16..700).prop_map(Step::Wait),
    ]
}

fn name(m: u8) -> String {
    format!("m{m}")
}

/// (topic, partition) -> owner, from `describe`.
fn owners(c: &Coordinator, now: u64) -> BTreeMap<(String, u32), String> {
    match c.describe("g", now) {
        Ok(d) => d
            .partitions
            .into_iter()
            .filter_map(|r| Some(((r.topic, r.partition), r.owner?)))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// Per member: its partitions pending revocation.
fn revoking(c: &Coordinator, now: u64) -> BTreeMap<String, BTreeSet<(String, u32)>> {
    match c.describe("g", now) {
        Ok(d) => d
            .members
            .into_iter()
            .map(|m| (m.id, m.view.revoking.into_iter().collect()))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

fn members(c: &Coordinator, now: u64) -> BTreeSet<String> {
    match c.describe("g", now) {
        Ok(d) => d.members.into_iter().map(|m| m.id).collect(),
        Err(_) => BTreeSet::new(),
    }
}

fn run(assignor: AssignorKind, counts: [u32; 2], steps: &[Step]) -> Result<(), TestCaseError> {
    let c = Coordinator::new(GroupConfig {
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        assignor,
        ..GroupConfig::default()
    });
    let topics = [
        Arc::new(Topic::new("t0", counts[0])),
        Arc::new(Topic::new("t1", counts[1])),
    ];
    let mut now = 0u64;
    // Every (topic, partition, offset) handed out, and whether a member ever lost its partitions
    // without committing (expiry or fencing), which allows re-delivery past the last commit.
    let mut delivered: BTreeMap<(String, u32, u64), u32> = BTreeMap::new();
    let mut dropped = false;
    for s in steps {
        let before_owners = owners(&c, now);
        let before_revoking = revoking(&c, now);
        let before_members = members(&c, now);
        let mut releaser: Option<String> = None;
        let mut leaver: Option<String> = None;
        match *s {
            Step::Join(m, t) => {
                let _ = c.subscribe(
                    "g",
                    &name(m),
                    &topics[t as usize],
                    &JoinOptions::default(),
                    now,
                );
                releaser = Some(name(m));
            }
            Step::Leave(m) => {
                if c.unsubscribe("g", &name(m), now).is_ok() {
                    leaver = Some(name(m));
                }
            }
            Step::Poll(m, n) => {
                let r = c.poll("g", &name(m), n as usize, now, |t, p, r| {
                    *delivered
                        .entry((t.name().to_string(), p, r.offset))
                        .or_default() += 1;
                });
                if r.is_ok() {
                    releaser = Some(name(m));
                }
            }
            Step::Hold(m) => {
                let owned: Vec<(String, u32)> = before_owners
                    .iter()
                    .filter(|(_, o)| **o == name(m))
                    .map(|(k, _)| k.clone())
                    .collect();
                if let Ok(v) = c.release("g", &name(m), &owned, now) {
                    prop_assert_eq!(v.partitions.len(), owned.len(), "a hold releases nothing");
                }
            }
            Step::Send(t, p, n) => {
                let topic = &topics[t as usize];
                let part = topic
                    .partition(u32::from(p) % topic.partition_count())
                    .unwrap();
                for _ in 0..n {
                    part.append(None, b"r");
                }
            }
            Step::Wait(ms) => {
                now += u64::from(ms);
                c.expire(now);
            }
        }
        prop_assert!(
            c.check_snapshot("g").is_ok() || c.describe("g", now).is_err(),
            "{:?}",
            c.check_snapshot("g")
        );
        let after_members = members(&c, now);
        for m in before_members.difference(&after_members) {
            if leaver.as_deref() != Some(m) {
                dropped = true;
            }
        }
        // Ownership moves away from a member still in the group only by its own release of a
        // partition pending revocation.
        let after_owners = owners(&c, now);
        for (part, was) in &before_owners {
            if after_owners.get(part) == Some(was) || !after_members.contains(was) {
                continue;
            }
            prop_assert_eq!(
                releaser.as_deref(),
                Some(was.as_str()),
                "{:?} left {} at {:?}",
                part,
                was,
                s
            );
            prop_assert!(
                before_revoking.get(was).is_some_and(|r| r.contains(part)),
                "{:?} was not pending revocation from {}",
                part,
                was
            );
        }
    }
    if !dropped {
        let twice: Vec<_> = delivered.iter().filter(|(_, &n)| n > 1).collect();
        prop_assert!(
            twice.is_empty(),
            "handed out twice among live members: {:?}",
            twice
        );
        // Nothing skipped: per partition, the offsets handed out are a prefix 0..n.
        let mut next: BTreeMap<(String, u32), u64> = BTreeMap::new();
        for (t, p, o) in delivered.keys() {
            let n = next.entry((t.clone(), *p)).or_default();
            prop_assert_eq!(*n, *o, "{}-{} skipped to {}", t, p, o);
            *n += 1;
        }
    }
    // Quiescence: every live member makes a request (twice: a release may free partitions that
    // another member is waiting for). Then every partition of a subscribed topic is owned.
    let live = members(&c, now);
    for _ in 0..2 {
        for m in &live {
            c.heartbeat("g", m, now).unwrap();
        }
    }
    if let Ok(d) = c.describe("g", now) {
        let subscribed: BTreeSet<&str> = d
            .members
            .iter()
            .flat_map(|m| m.topics.iter().map(String::as_str))
            .collect();
        for r in &d.partitions {
            prop_assert_eq!(
                r.owner.is_some(),
                subscribed.contains(r.topic.as_str()),
                "{}-{} after quiescence",
                r.topic,
                r.partition
            );
        }
        for m in &d.members {
            prop_assert_eq!(m.view.state, MemberState::Stable, "{}", m.id);
            prop_assert_eq!(m.view.member_epoch, d.group_epoch);
        }
        prop_assert!(!c.reconciling("g"));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn reconciliation_keeps_its_invariants_uniform(
        counts in (1u32..10, 1u32..6),
        steps in prop::collection::vec(step(), 1..60),
    ) {
        run(AssignorKind::CooperativeSticky, [counts.0, counts.1], &steps)?;
    }

    #[test]
    fn reconciliation_keeps_its_invariants_range(
        counts in (1u32..10, 1u32..6),
        steps in prop::collection::vec(step(), 1..60),
    ) {
        run(AssignorKind::Range, [counts.0, counts.1], &steps)?;
    }
}
