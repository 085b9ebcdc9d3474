//! The consumer-group checker.
//!
//! Records are identified by their value (the workload makes values unique). Per group it checks:
//! - `undelivered`: an acknowledged record that no consumer of the group ever received (so every group
//!   must see every record, at least once);
//! - `key-order`: within one consumer session (one client: a consumer restarted after an indefinite
//!   error resumes from its group's commit, as a restarted Kafka consumer does) and one generation, a
//!   key's records arrive in increasing offset order, none twice;
//! - `double-assign`: within one generation, records of one partition were delivered to two consumers;
//! - `bad-redelivery`: a record delivered again (to anyone, in any generation) at an offset below the
//!   group's committed offset for its partition, as known (commit acknowledged) before the poll began
//!   — after a handoff only records after the last commit may come again;
//!
//! and over all groups: `phantom` (a delivered record that was never sent, or whose send failed),
//! `duplicate` (one record at two partition offsets) and `inconsistent-offsets` (one partition offset
//! holding two records, or a record delivered at an offset other than its send acknowledged, or under
//! another key).
//!
//! It also measures re-deliveries, rebalances (generations seen, minus one) and, for each membership
//! change, the time until every partition is served again: the latest, over the partitions, of the first
//! reply of a newer generation that lists the partition, minus the moment the change took effect.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::kafka::OpType;
use super::Anomalies;

/// One record handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its partition.
    pub partition: u32,
    /// Its offset in the partition.
    pub offset: u64,
    /// Its key.
    pub key: String,
    /// Its value (unique per record).
    pub value: i64,
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GOpKind {
    /// A producer's `send`.
    Send {
        /// The key.
        key: String,
        /// The value.
        value: i64,
        /// The acknowledged offset.
        offset: Option<u64>,
    },
    /// `subscribe`.
    Subscribe {
        /// Group.
        group: String,
        /// Consumer.
        consumer: String,
        /// Partitions owned per the reply.
        partitions: Vec<u32>,
        /// Generation per the reply.
        generation: Option<u64>,
    },
    /// A group `poll`.
    Poll {
        /// Group.
        group: String,
        /// Consumer.
        consumer: String,
        /// Records returned, in order.
        msgs: Vec<Delivery>,
        /// Partitions owned per the reply.
        partitions: Vec<u32>,
        /// Generation per the reply.
        generation: Option<u64>,
    },
    /// `commit` of next offsets to consume.
    Commit {
        /// Group.
        group: String,
        /// Consumer.
        consumer: String,
        /// (partition, next offset to consume).
        offsets: Vec<(u32, u64)>,
    },
    /// `unsubscribe`.
    Unsubscribe {
        /// Group.
        group: String,
        /// Consumer.
        consumer: String,
    },
}

/// One completed operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GOp {
    /// The client number.
    pub process: u64,
    /// How it completed.
    pub typ: OpType,
    /// What it did.
    pub kind: GOpKind,
    /// Invocation time, ns since the start.
    pub invoke_ns: u64,
    /// Completion time, ns since the start.
    pub complete_ns: u64,
    /// The error, when not ok.
    pub error: Option<String>,
}

/// A membership change the workload caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipEvent {
    /// The group.
    pub group: String,
    /// `join`, `leave` or `stall`.
    pub kind: &'static str,
    /// The consumer.
    pub consumer: String,
    /// When the workload made the change (ns).
    pub at_ns: u64,
    /// When the group should notice it (ns): the same for join and leave, plus the session timeout for
    /// a stall.
    pub effective_ns: u64,
}

/// The checker's findings and measurements.
#[derive(Debug, Default, Clone)]
pub struct GroupsReport {
    /// Anomalies.
    pub anomalies: Anomalies,
    /// Deliveries of a record to a group beyond the first.
    pub redeliveries: u64,
    /// Per group, generations seen minus one.
    pub rebalances: BTreeMap<String, u64>,
    /// For each membership change that was followed by full service, the time it took (ms).
    pub recovery_ms: Vec<f64>,
    /// Membership changes after which some partition was never served again in a newer generation.
    pub unrecovered: u64,
    /// Total deliveries.
    pub deliveries: u64,
    /// Acknowledged records.
    pub acked: u64,
}

/// Checks a groups history. `groups` names every group that ran (so a group that received nothing is
/// still checked); `history` is in completion order.
pub fn check(history: &[GOp], events: &[MembershipEvent], groups: &[String]) -> GroupsReport {
    let mut rep = GroupsReport::default();
    let a = &mut rep.anomalies;

    // Sends.
    let mut sent: HashMap<i64, (&str, OpType, Option<u64>)> = HashMap::new();
    for op in history {
        if let GOpKind::Send { key, value, offset } = &op.kind {
            sent.insert(*value, (key, op.typ, *offset));
        }
    }
    let mut acked: Vec<i64> = sent
        .iter()
        .filter(|(_, s)| s.1 == OpType::Ok)
        .map(|(&v, _)| v)
        .collect();
    acked.sort_unstable();
    rep.acked = acked.len() as u64;

    // Record identity across all deliveries.
    let mut at_of: BTreeMap<i64, BTreeSet<(u32, u64)>> = BTreeMap::new();
    let mut value_at: BTreeMap<(u32, u64), BTreeSet<i64>> = BTreeMap::new();
    let mut reported_phantom: HashSet<i64> = HashSet::new();
    let mut reported_mismatch: HashSet<i64> = HashSet::new();
    for op in history.iter().filter(|op| op.typ == OpType::Ok) {
        let GOpKind::Poll {
            msgs,
            consumer,
            group,
            ..
        } = &op.kind
        else {
            continue;
        };
        for d in msgs {
            rep.deliveries += 1;
            at_of
                .entry(d.value)
                .or_default()
                .insert((d.partition, d.offset));
            value_at
                .entry((d.partition, d.offset))
                .or_default()
                .insert(d.value);
            match sent.get(&d.value) {
                None | Some((_, OpType::Fail, _)) => {
                    if reported_phantom.insert(d.value) {
                        let why = if sent.contains_key(&d.value) {
                            "whose send failed"
                        } else {
                            "never sent"
                        };
                        a.add("phantom", || {
                            format!(
                                "{group}/{consumer} received value {} (p{} @{}), {why}",
                                d.value, d.partition, d.offset
                            )
                        });
                    }
                }
                Some((key, _, acked_offset)) => {
                    let wrong_offset = acked_offset.is_some_and(|o| o != d.offset);
                    if (*key != d.key || wrong_offset) && reported_mismatch.insert(d.value) {
                        a.add("inconsistent-offsets", || {
                            format!(
                                "value {} was sent to key {key} (offset {}) but delivered as key {} at p{} @{}",
                                d.value, super::opt(*acked_offset), d.key, d.partition, d.offset
                            )
                        });
                    }
                }
            }
        }
    }
    for (v, places) in &at_of {
        if places.len() > 1 {
            a.add("duplicate", || {
                format!("value {v} delivered at {places:?} (partition, offset)")
            });
        }
    }
    for ((p, o), values) in &value_at {
        if values.len() > 1 {
            a.add("inconsistent-offsets", || {
                format!("p{p} @{o} delivered as values {values:?}")
            });
        }
    }

    // Per group.
    for group in groups {
        let mut delivered: HashSet<i64> = HashSet::new();
        let mut commits: HashMap<u32, Vec<(u64, u64)>> = HashMap::new(); // partition → (complete_ns, offset)
        let mut last_by_consumer: HashMap<(&str, u64, Option<u64>, &str), u64> = HashMap::new();
        let mut served: BTreeMap<(Option<u64>, u32), BTreeSet<&str>> = BTreeMap::new();
        let mut generations: BTreeSet<u64> = BTreeSet::new();
        // (complete_ns, generation, partitions) of every ok reply carrying an assignment.
        let mut views: Vec<(u64, u64, &[u32])> = Vec::new();
        let mut all_partitions: BTreeSet<u32> = BTreeSet::new();

        for op in history.iter().filter(|op| op.typ == OpType::Ok) {
            match &op.kind {
                GOpKind::Commit {
                    group: g, offsets, ..
                } if g == group => {
                    for &(p, o) in offsets {
                        commits.entry(p).or_default().push((op.complete_ns, o));
                    }
                }
                GOpKind::Subscribe {
                    group: g,
                    partitions,
                    generation,
                    ..
                } if g == group => {
                    all_partitions.extend(partitions.iter().copied());
                    if let Some(gen) = *generation {
                        generations.insert(gen);
                        views.push((op.complete_ns, gen, partitions));
                    }
                }
                _ => {}
            }
        }
        for op in history.iter().filter(|op| op.typ == OpType::Ok) {
            let GOpKind::Poll {
                group: g,
                consumer,
                msgs,
                partitions,
                generation,
            } = &op.kind
            else {
                continue;
            };
            if g != group {
                continue;
            }
            all_partitions.extend(partitions.iter().copied());
            if let Some(gen) = *generation {
                generations.insert(gen);
                views.push((op.complete_ns, gen, partitions));
            }
            for d in msgs {
                all_partitions.insert(d.partition);
                served
                    .entry((*generation, d.partition))
                    .or_default()
                    .insert(consumer);
                let last = last_by_consumer
                    .entry((consumer, op.process, *generation, &d.key))
                    .or_insert(u64::MAX);
                if *last != u64::MAX && d.offset <= *last {
                    let prev = *last;
                    a.add("key-order", || {
                        format!(
                            "{group}/{consumer} (c{}, generation {generation:?}) received key {} at offset {} after offset {prev}",
                            op.process, d.key, d.offset
                        )
                    });
                }
                *last = d.offset;
                if !delivered.insert(d.value) {
                    rep.redeliveries += 1;
                    let committed = commits
                        .get(&d.partition)
                        .into_iter()
                        .flatten()
                        .filter(|&&(t, _)| t < op.invoke_ns)
                        .map(|&(_, o)| o)
                        .max();
                    if let Some(c) = committed.filter(|&c| d.offset < c) {
                        a.add("bad-redelivery", || {
                            format!(
                                "{group}/{consumer} received value {} (p{} @{}) again, below the committed offset {c}",
                                d.value, d.partition, d.offset
                            )
                        });
                    }
                }
            }
        }
        for ((gen, p), consumers) in &served {
            if consumers.len() > 1 {
                a.add("double-assign", || {
                    format!(
                        "{group}: generation {} served p{p} to {consumers:?}",
                        super::opt(*gen)
                    )
                });
            }
        }
        for v in &acked {
            if !delivered.contains(v) {
                let key = sent.get(v).map(|s| s.0).unwrap_or("?");
                a.add("undelivered", || {
                    format!("{group} never received value {v} (key {key}), acknowledged")
                });
            }
        }
        rep.rebalances
            .insert(group.clone(), generations.len().saturating_sub(1) as u64);

        // Recovery after each membership change of this group.
        views.sort_by_key(|v| v.0);
        for e in events.iter().filter(|e| &e.group == group) {
            let before = views.iter().filter(|v| v.0 < e.at_ns).map(|v| v.1).max();
            let mut worst: Option<u64> = Some(0);
            for p in &all_partitions {
                let first = views
                    .iter()
                    .find(|v| v.0 >= e.at_ns && before.is_none_or(|b| v.1 > b) && v.2.contains(p))
                    .map(|v| v.0);
                worst = match (worst, first) {
                    (Some(w), Some(t)) => Some(w.max(t)),
                    _ => None,
                };
            }
            match worst {
                Some(t) => rep
                    .recovery_ms
                    .push(t.saturating_sub(e.effective_ns) as f64 / 1e6),
                None => rep.unrecovered += 1,
            }
        }
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(v: i64, k: &str, o: u64) -> GOp {
        GOp {
            process: 0,
            typ: OpType::Ok,
            kind: GOpKind::Send {
                key: k.into(),
                value: v,
                offset: Some(o),
            },
            invoke_ns: 0,
            complete_ns: 0,
            error: None,
        }
    }
    fn d(p: u32, o: u64, k: &str, v: i64) -> Delivery {
        Delivery {
            partition: p,
            offset: o,
            key: k.into(),
            value: v,
        }
    }
    fn poll(t: u64, g: &str, c: &str, gen: u64, parts: &[u32], msgs: Vec<Delivery>) -> GOp {
        GOp {
            process: 1,
            typ: OpType::Ok,
            kind: GOpKind::Poll {
                group: g.into(),
                consumer: c.into(),
                msgs,
                partitions: parts.to_vec(),
                generation: Some(gen),
            },
            invoke_ns: t,
            complete_ns: t + 1,
            error: None,
        }
    }
    fn commit(t: u64, g: &str, c: &str, p: u32, o: u64) -> GOp {
        GOp {
            process: 1,
            typ: OpType::Ok,
            kind: GOpKind::Commit {
                group: g.into(),
                consumer: c.into(),
                offsets: vec![(p, o)],
            },
            invoke_ns: t,
            complete_ns: t + 1,
            error: None,
        }
    }
    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }
    fn kinds(r: &GroupsReport) -> Vec<&str> {
        r.anomalies.counts.keys().map(String::as_str).collect()
    }

    /// Two records on p0, one on p1; group g handed p0 from a to b after a commit.
    fn base() -> Vec<GOp> {
        vec![
            send(1, "a", 0),
            send(2, "a", 1),
            send(3, "b", 0),
            poll(
                10,
                "g",
                "a",
                1,
                &[0, 1],
                vec![d(0, 0, "a", 1), d(1, 0, "b", 3)],
            ),
            commit(20, "g", "a", 0, 1),
            poll(30, "g", "a", 1, &[0, 1], vec![d(0, 1, "a", 2)]),
            // b joins: generation 2 gives it p0; it re-reads from the commit (offset 1): allowed.
            poll(40, "g", "b", 2, &[0], vec![d(0, 1, "a", 2)]),
            poll(40, "g", "a", 2, &[1], vec![]),
        ]
    }

    #[test]
    fn a_clean_handoff_is_valid_and_counts_a_redelivery_and_a_rebalance() {
        let events = vec![MembershipEvent {
            group: "g".into(),
            kind: "join",
            consumer: "b".into(),
            at_ns: 35,
            effective_ns: 35,
        }];
        let r = check(&base(), &events, &groups(&["g"]));
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
        assert_eq!(r.redeliveries, 1);
        assert_eq!(r.rebalances["g"], 1);
        assert_eq!(r.recovery_ms.len(), 1);
        assert_eq!(r.unrecovered, 0);
    }

    #[test]
    fn every_group_must_see_every_acked_record() {
        let r = check(&base(), &[], &groups(&["g", "h"]));
        assert_eq!(kinds(&r), vec!["undelivered"]);
        assert_eq!(r.anomalies.count("undelivered"), 3);
    }

    #[test]
    fn redelivery_below_the_commit_is_bad() {
        let mut h = base();
        h.push(commit(50, "g", "b", 0, 2));
        h.push(poll(60, "g", "c", 3, &[0], vec![d(0, 0, "a", 1)]));
        let r = check(&h, &[], &groups(&["g"]));
        assert_eq!(kinds(&r), vec!["bad-redelivery"]);
    }

    #[test]
    fn key_order_within_a_consumer_generation() {
        let mut h = base();
        h.push(poll(45, "g", "b", 2, &[0], vec![d(0, 0, "a", 1)]));
        let r = check(&h, &[], &groups(&["g"]));
        assert!(kinds(&r).contains(&"key-order"), "{:?}", r.anomalies);
    }

    #[test]
    fn double_assign_when_two_consumers_serve_one_partition_in_one_generation() {
        let mut h = base();
        h.push(poll(45, "g", "a", 2, &[1], vec![d(0, 1, "a", 2)]));
        let r = check(&h, &[], &groups(&["g"]));
        assert!(kinds(&r).contains(&"double-assign"), "{:?}", r.anomalies);
    }

    #[test]
    fn duplicates_inconsistencies_and_phantoms() {
        let mut h = base();
        h.push(poll(50, "g", "b", 2, &[0], vec![d(0, 2, "a", 2)])); // value 2 again at another offset
        h.push(poll(51, "g", "b", 2, &[0], vec![d(0, 3, "a", 99)])); // never sent
        let r = check(&h, &[], &groups(&["g"]));
        assert!(kinds(&r).contains(&"duplicate"), "{:?}", r.anomalies);
        assert!(
            kinds(&r).contains(&"inconsistent-offsets"),
            "{:?}",
            r.anomalies
        );
        assert!(kinds(&r).contains(&"phantom"), "{:?}", r.anomalies);
    }

    #[test]
    fn a_change_never_followed_by_full_service_is_unrecovered() {
        let events = vec![MembershipEvent {
            group: "g".into(),
            kind: "leave",
            consumer: "b".into(),
            at_ns: 100,
            effective_ns: 100,
        }];
        let r = check(&base(), &events, &groups(&["g"]));
        assert_eq!(r.unrecovered, 1);
        assert!(r.recovery_ms.is_empty());
    }
}
