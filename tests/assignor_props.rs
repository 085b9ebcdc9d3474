//! Property tests of the assignors over random members, topics, partition counts and join/leave
//! sequences: exactly-one ownership, balance, and cooperative-sticky's minimal movement.
//!
//! The checks here are written out independently of the helpers in `kgroups::assignor`.

use kgroups::assignor::{assign, AssignorKind, NO_OWNER};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// One step of a membership history.
#[derive(Debug, Clone)]
enum Step {
    /// A member with this id (if free) joins with this topic mask (ignored for a uniform group).
    Join(u16, u8),
    /// The `n % members`-th member leaves.
    Leave(u16),
}

#[derive(Debug, Clone)]
struct Case {
    partitions: Vec<u32>,
    /// All members subscribe to the same topics (mask), or each to its own.
    uniform: Option<u8>,
    initial: Vec<(u16, u8)>,
    steps: Vec<Step>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(0u32..24, 1..5),
        prop::option::weighted(0.6, 1u8..16),
        prop::collection::vec((0u16..64, 1u8..16), 0..12),
        prop::collection::vec(
            prop_oneof![
                (0u16..64, 1u8..16).prop_map(|(id, m)| Step::Join(id, m)),
                any::<u16>().prop_map(Step::Leave),
            ],
            1..12,
        ),
    )
        .prop_map(|(partitions, uniform, initial, steps)| Case {
            partitions,
            uniform,
            initial,
            steps,
        })
}

/// The topics a mask selects, restricted to the topics that exist (at least topic 0).
fn topics_of(mask: u8, topics: usize) -> Vec<u32> {
    let t: Vec<u32> = (0..topics as u32)
        .filter(|t| mask & (1 << t) != 0)
        .collect();
    if t.is_empty() {
        vec![0]
    } else {
        t
    }
}

/// Members by id, each with its subscription.
type Members = BTreeMap<u16, Vec<u32>>;

/// Owners by member id (None = unowned), per topic and partition.
type ById = Vec<Vec<Option<u16>>>;

fn subscriptions(members: &Members) -> (Vec<u16>, Vec<Vec<u32>>) {
    members.iter().map(|(&id, s)| (id, s.clone())).unzip()
}

fn to_indices(prev: &ById, ids: &[u16]) -> Vec<Vec<u32>> {
    prev.iter()
        .map(|owners| {
            owners
                .iter()
                .map(|o| match o.and_then(|id| ids.binary_search(&id).ok()) {
                    Some(i) => i as u32,
                    None => NO_OWNER,
                })
                .collect()
        })
        .collect()
}

fn to_ids(a: &[Vec<u32>], ids: &[u16]) -> ById {
    a.iter()
        .map(|owners| {
            owners
                .iter()
                .map(|&m| (m != NO_OWNER).then(|| ids[m as usize]))
                .collect()
        })
        .collect()
}

fn subscribers(t: usize, subs: &[Vec<u32>]) -> Vec<usize> {
    (0..subs.len())
        .filter(|&m| subs[m].contains(&(t as u32)))
        .collect()
}

/// Exactly one owner per partition of a subscribed topic, and that owner subscribes to the topic;
/// partitions of unsubscribed topics are unowned.
fn check_ownership(partitions: &[u32], subs: &[Vec<u32>], a: &[Vec<u32>]) -> Result<(), String> {
    if a.len() != partitions.len() {
        return Err(format!("{} topics, expected {}", a.len(), partitions.len()));
    }
    for (t, owners) in a.iter().enumerate() {
        if owners.len() != partitions[t] as usize {
            return Err(format!("topic {t} has {} partitions", owners.len()));
        }
        let eligible = subscribers(t, subs);
        for (p, &m) in owners.iter().enumerate() {
            let ok = if eligible.is_empty() {
                m == NO_OWNER
            } else {
                eligible.contains(&(m as usize))
            };
            if !ok {
                return Err(format!("t{t}p{p} owned by {m}, eligible {eligible:?}"));
            }
        }
    }
    Ok(())
}

fn counts(members: usize, a: &[Vec<u32>]) -> Vec<u32> {
    let mut c = vec![0; members];
    for &m in a.iter().flatten().filter(|&&m| m != NO_OWNER) {
        c[m as usize] += 1;
    }
    c
}

fn spread(c: &[u32]) -> u32 {
    c.iter().max().unwrap_or(&0) - c.iter().min().unwrap_or(&0)
}

/// The balance each assignor promises.
fn check_balance(
    kind: AssignorKind,
    subs: &[Vec<u32>],
    uniform: bool,
    a: &[Vec<u32>],
) -> Result<(), String> {
    let c = counts(subs.len(), a);
    match kind {
        AssignorKind::Range => {
            for (t, owners) in a.iter().enumerate() {
                let eligible = subscribers(t, subs);
                let per: Vec<u32> = eligible
                    .iter()
                    .map(|&m| owners.iter().filter(|&&o| o as usize == m).count() as u32)
                    .collect();
                if spread(&per) > 1 {
                    return Err(format!("range: topic {t} counts {per:?}"));
                }
            }
        }
        AssignorKind::RoundRobin => {
            if uniform && spread(&c) > 1 {
                return Err(format!("roundrobin: counts {c:?}"));
            }
        }
        AssignorKind::CooperativeSticky => {
            if uniform && a.iter().flatten().any(|&m| m != NO_OWNER) && spread(&c) > 1 {
                return Err(format!("sticky: counts {c:?}"));
            }
            for (t, owners) in a.iter().enumerate() {
                let eligible = subscribers(t, subs);
                for &m in owners {
                    for &other in &eligible {
                        if c[m as usize] > c[other] + 1 {
                            return Err(format!(
                                "sticky: t{t} owner {m} has {}, subscriber {other} has {}",
                                c[m as usize], c[other]
                            ));
                        }
                    }
                }
            }
        }
        other => return Err(format!("no balance rule for the assignor {other:?}")),
    }
    Ok(())
}

/// Runs one history with one assignor, checking every assignment.
fn run(kind: AssignorKind, case: &Case) -> Result<(), TestCaseError> {
    let topics = case.partitions.len();
    let sub_of = |mask: u8| topics_of(case.uniform.unwrap_or(mask), topics);
    let mut members: Members = case
        .initial
        .iter()
        .map(|&(id, mask)| (id, sub_of(mask)))
        .collect();
    let mut prev: ById = case
        .partitions
        .iter()
        .map(|&n| vec![None; n as usize])
        .collect();
    let mut first = true;
    for step in std::iter::once(None).chain(case.steps.iter().map(Some)) {
        let mut joined = None;
        let mut left = None;
        match step {
            None => {}
            Some(Step::Join(id, mask)) if members.insert(*id, sub_of(*mask)).is_none() => {
                joined = Some(*id);
            }
            Some(Step::Leave(n)) if !members.is_empty() => {
                let id = *members.keys().nth(*n as usize % members.len()).unwrap();
                members.remove(&id);
                left = Some(id);
            }
            Some(_) => {}
        }
        let (ids, subs) = subscriptions(&members);
        let a = assign(kind, &case.partitions, &subs, &to_indices(&prev, &ids));
        check_ownership(&case.partitions, &subs, &a).map_err(TestCaseError::fail)?;
        check_balance(kind, &subs, case.uniform.is_some(), &a).map_err(TestCaseError::fail)?;
        let now = to_ids(&a, &ids);

        if kind == AssignorKind::CooperativeSticky && case.uniform.is_some() && !first {
            let pairs = prev.iter().flatten().zip(now.iter().flatten());
            if let Some(gone) = left {
                // A leave moves only the leaver's partitions.
                for (was, is) in pairs {
                    if was.is_some() && *was != Some(gone) {
                        prop_assert_eq!(was, is, "a leave moved a stayer's partition");
                    }
                }
            } else if let Some(new) = joined {
                // A join moves only partitions to the joiner, no more than its fair share.
                let total: u32 = case.partitions.iter().sum();
                let share = total.div_ceil(members.len() as u32);
                let mut moved = 0;
                for (was, is) in pairs {
                    if was != is {
                        prop_assert_eq!(*is, Some(new), "a join moved a partition elsewhere");
                        moved += 1;
                    }
                }
                prop_assert!(moved <= share, "join moved {moved} > share {share}");
            } else {
                // Nothing changed: nothing moves.
                prop_assert_eq!(&prev, &now);
            }
        }
        prev = now;
        first = false;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn range_owns_each_partition_once_and_balances_per_topic(case in case()) {
        run(AssignorKind::Range, &case)?;
    }

    #[test]
    fn roundrobin_owns_each_partition_once_and_balances(case in case()) {
        run(AssignorKind::RoundRobin, &case)?;
    }

    #[test]
    fn sticky_balances_and_moves_minimally(case in case()) {
        run(AssignorKind::CooperativeSticky, &case)?;
    }
}

/// A larger uniform group: leave and join one by one, checking the movement bounds at scale.
#[test]
fn sticky_large_group_leave_and_join() {
    let partitions = [500u32, 300, 37];
    let mut ids: Vec<u16> = (0..97).collect();
    let subs = |n: usize| vec![vec![0u32, 1, 2]; n];
    let mut prev = assign(
        AssignorKind::CooperativeSticky,
        &partitions,
        &subs(ids.len()),
        &[],
    );
    for round in 0..20u16 {
        // Leave: member at position round*7.
        let gone = ids.remove((round as usize * 7) % ids.len());
        let by_id = to_ids_full(&prev, &ids, gone);
        let a = assign(
            AssignorKind::CooperativeSticky,
            &partitions,
            &subs(ids.len()),
            &to_indices(&by_id, &ids),
        );
        let now = to_ids(&a, &ids);
        for (was, is) in by_id.iter().flatten().zip(now.iter().flatten()) {
            if was.is_some() {
                assert_eq!(was, is);
            }
        }
        assert!(spread(&counts(ids.len(), &a)) <= 1);
        // Join: a new id.
        let new = 1000 + round;
        let pos = ids.binary_search(&new).unwrap_err();
        ids.insert(pos, new);
        let b = assign(
            AssignorKind::CooperativeSticky,
            &partitions,
            &subs(ids.len()),
            &to_indices(&now, &ids),
        );
        let after = to_ids(&b, &ids);
        let moved = now
            .iter()
            .flatten()
            .zip(after.iter().flatten())
            .filter(|(a, b)| a != b)
            .count() as u32;
        let c = counts(ids.len(), &b);
        assert!(spread(&c) <= 1);
        assert_eq!(moved, c[pos]);
        prev = b;
    }
}

/// `prev` was computed for `ids` plus `gone` (sorted together); map it back to ids, with `gone`'s
/// partitions unowned.
fn to_ids_full(prev: &[Vec<u32>], ids: &[u16], gone: u16) -> ById {
    let mut all: Vec<u16> = ids.to_vec();
    all.push(gone);
    all.sort_unstable();
    let mut by_id = to_ids(prev, &all);
    for o in by_id.iter_mut().flatten() {
        if *o == Some(gone) {
            *o = None;
        }
    }
    by_id
}
