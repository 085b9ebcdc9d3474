//! jepsen's kafka checker (`jepsen.tests.kafka`), as Maelstrom's kafka workload runs it: keys map to
//! logs, each completed operation is a single `send` or `poll` (no transactions), and subscriptions go
//! through `assign` only (so poll skips and non-monotonic polls are errors).
//!
//! The analysis, following jepsen's definitions:
//! 1. **Version orders.** Per key, a log from offsets to the values seen there: from every poll, and
//!    from sends that must have committed (ok, or info with a value some ok poll read). An offset with
//!    two values is `inconsistent-offsets`. Dense *indices* number the non-empty offsets in order;
//!    `by_index` takes one value per index, `by_value` maps a value to its (last) index.
//! 2. `G1a`: an ok poll read a value whose send failed (definite error).
//! 3. `lost-write`: per key, take the highest index whose value some ok poll read; every value whose
//!    last appearance is at or below it must have been read by someone, unless its send was neither ok
//!    nor proven visible.
//! 4. `int-poll-skip` / `int-nonmonotonic-poll`: two successive values in one poll whose indices
//!    differ by more than one, or by less than one.
//! 5. `poll-skip` / `nonmonotonic-poll`: per process (client), the first value of a key in a poll
//!    against the last value of that key in the process's previous ok poll of it; an ok `assign` keeps
//!    only the assigned keys' history.
//! 6. `nonmonotonic-send`: per process, successive sends to one key whose indices do not increase.
//! 7. `duplicate`: a value at more than one offset of a key.
//! 8. `unseen`: acknowledged sends no ok poll ever returned.
//!
//! Not reproduced: Elle's cycle search (G0, G1c …: sends are single operations here, so it finds only
//! what the checks above already find) and the transactional checks (`int-send-skip`, precommitted
//! reads), which need multi-operation transactions. One addition: `phantom`, a polled value that no
//! client ever sent (jepsen aborts its analysis on it).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::Anomalies;

/// A kafka key (a string; the workload uses decimal integers).
pub type Key = String;
/// A message value (the workload sends integers).
pub type Value = i64;

/// How an operation completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpType {
    /// It happened, and this is what it returned.
    Ok,
    /// It certainly did not happen (definite error).
    Fail,
    /// Unknown (timeout, indefinite error, crash).
    Info,
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// `send`: the value sent to a key and, when acknowledged, its offset.
    Send {
        /// The key.
        key: Key,
        /// The value.
        value: Value,
        /// The acknowledged offset.
        offset: Option<u64>,
    },
    /// `poll`: per key, the `[offset, value]` pairs returned (empty unless ok).
    Poll {
        /// The pairs, per key, in the order returned.
        reads: Vec<(Key, Vec<(u64, Value)>)>,
    },
    /// `assign`: the client now reads exactly these keys.
    Assign {
        /// The assigned keys.
        keys: Vec<Key>,
    },
    /// The client was dropped; a new process takes its place.
    Crash,
}

/// One completed operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The process (client number) that ran it.
    pub process: u64,
    /// How it completed.
    pub typ: OpType,
    /// What it did.
    pub kind: OpKind,
    /// When it was invoked, in ns since the start of the run.
    pub invoke_ns: u64,
    /// When it completed, in ns since the start of the run.
    pub complete_ns: u64,
    /// The error, when not ok.
    pub error: Option<String>,
}

/// A key's version order.
#[derive(Debug, Default)]
struct Order {
    /// Non-empty offsets in ascending order, with the values seen at each.
    log: Vec<(u64, BTreeSet<Value>)>,
    /// One value per dense index.
    by_index: Vec<Value>,
    /// Value → dense index (the last one, where a value repeats).
    by_value: HashMap<Value, usize>,
}

impl Order {
    fn delta(&self, v1: Option<Value>, v2: Option<Value>) -> i64 {
        match (
            v1.and_then(|v| self.by_value.get(&v)),
            v2.and_then(|v| self.by_value.get(&v)),
        ) {
            (Some(&i1), Some(&i2)) => i2 as i64 - i1 as i64,
            _ => 1,
        }
    }

    fn skipped(&self, v1: Option<Value>, v2: Option<Value>) -> Vec<Value> {
        match (
            v1.and_then(|v| self.by_value.get(&v)),
            v2.and_then(|v| self.by_value.get(&v)),
        ) {
            (Some(&i1), Some(&i2)) if i2 > i1 + 1 => self.by_index[i1 + 1..i2].to_vec(),
            _ => Vec::new(),
        }
    }
}

fn delta_of(orders: &HashMap<&str, Order>, k: &str, v1: Option<Value>, v2: Option<Value>) -> i64 {
    orders.get(k).map_or(1, |o| o.delta(v1, v2))
}

/// Checks a history (in completion order; each process's operations in the order it ran them).
pub fn check(history: &[Op]) -> Anomalies {
    let mut found = Anomalies::default();

    // Reads by ok polls, failed writes, writers.
    let mut reads_ok: HashMap<&str, HashSet<Value>> = HashMap::new();
    let mut writes_fail: HashMap<&str, HashSet<Value>> = HashMap::new();
    let mut sent_ok: BTreeMap<&str, BTreeSet<Value>> = BTreeMap::new();
    let mut writer_of: HashMap<(&str, Value), usize> = HashMap::new();
    for (i, op) in history.iter().enumerate() {
        match &op.kind {
            OpKind::Send { key, value, .. } => {
                writer_of.insert((key.as_str(), *value), i);
                match op.typ {
                    OpType::Fail => {
                        writes_fail.entry(key).or_default().insert(*value);
                    }
                    OpType::Ok => {
                        sent_ok.entry(key).or_default().insert(*value);
                    }
                    OpType::Info => {}
                }
            }
            OpKind::Poll { reads } if op.typ == OpType::Ok => {
                for (k, pairs) in reads {
                    reads_ok
                        .entry(k)
                        .or_default()
                        .extend(pairs.iter().map(|&(_, v)| v));
                }
            }
            _ => {}
        }
    }
    let must_have_committed = |op: &Op| match (&op.typ, &op.kind) {
        (OpType::Ok, _) => true,
        (OpType::Info, OpKind::Send { key, value, .. }) => reads_ok
            .get(key.as_str())
            .is_some_and(|vs| vs.contains(value)),
        _ => false,
    };

    // 1. Version orders.
    let mut logs: HashMap<&str, BTreeMap<u64, BTreeSet<Value>>> = HashMap::new();
    for op in history {
        match &op.kind {
            OpKind::Send {
                key,
                value,
                offset: Some(o),
            } if must_have_committed(op) => {
                logs.entry(key)
                    .or_default()
                    .entry(*o)
                    .or_default()
                    .insert(*value);
            }
            OpKind::Poll { reads } => {
                for (k, pairs) in reads {
                    let log = logs.entry(k).or_default();
                    for &(o, v) in pairs {
                        log.entry(o).or_default().insert(v);
                    }
                }
            }
            _ => {}
        }
    }
    let mut keys: Vec<&str> = logs.keys().copied().collect();
    keys.sort_unstable();
    let mut orders: HashMap<&str, Order> = HashMap::new();
    for k in keys {
        let log: Vec<(u64, BTreeSet<Value>)> =
            logs.remove(k).unwrap_or_default().into_iter().collect();
        let mut order = Order::default();
        for (index, (offset, values)) in log.iter().enumerate() {
            if values.len() > 1 {
                found.add("inconsistent-offsets", || {
                    format!("key {k}: offset {offset} (index {index}) holds values {values:?}")
                });
            }
            let first = *values.iter().next().expect("log entries are non-empty");
            order.by_index.push(first);
        }
        for (i, &v) in order.by_index.iter().enumerate() {
            order.by_value.insert(v, i);
        }
        order.log = log;
        orders.insert(k, order);
    }

    // phantom (addition): a value in some log that nobody sent.
    let mut order_keys: Vec<&&str> = orders.keys().collect();
    order_keys.sort_unstable();
    for k in order_keys {
        for (offset, values) in &orders[*k].log {
            for v in values {
                if !writer_of.contains_key(&(*k, *v)) {
                    found.add("phantom", || {
                        format!("key {k}: offset {offset} holds {v}, which no client sent")
                    });
                }
            }
        }
    }

    // 2. G1a.
    for op in history.iter().filter(|op| op.typ == OpType::Ok) {
        if let OpKind::Poll { reads } = &op.kind {
            for (k, pairs) in reads {
                for &(o, v) in pairs {
                    if writes_fail.get(k.as_str()).is_some_and(|f| f.contains(&v)) {
                        found.add("G1a", || {
                            format!(
                                "key {k}: c{} polled {v} at offset {o}, whose send failed",
                                op.process
                            )
                        });
                    }
                }
            }
        }
    }

    // 3. lost-write.
    let mut read_keys: Vec<&&str> = reads_ok.keys().collect();
    read_keys.sort_unstable();
    for k in read_keys {
        let vs = &reads_ok[*k];
        let Some(order) = orders.get(*k) else {
            continue;
        };
        let mut first_index: HashMap<Value, usize> = HashMap::new();
        let mut last_index: HashMap<Value, usize> = HashMap::new();
        for (i, (_, values)) in order.log.iter().enumerate() {
            for &v in values {
                first_index.entry(v).or_insert(i);
                last_index.insert(v, i);
            }
        }
        let mut last_index_values: Vec<Vec<Value>> = vec![Vec::new(); order.log.len()];
        for (&v, &i) in &last_index {
            last_index_values[i].push(v);
        }
        for vals in &mut last_index_values {
            vals.sort_unstable();
        }
        let Some(bound) = vs.iter().filter_map(|v| first_index.get(v)).max().copied() else {
            continue;
        };
        for (index, vals) in last_index_values[..=bound].iter().enumerate() {
            for &v in vals {
                if vs.contains(&v) {
                    continue;
                }
                let Some(&w) = writer_of.get(&(*k, v)) else {
                    continue;
                };
                if must_have_committed(&history[w]) {
                    found.add("lost-write", || {
                        format!(
                            "key {k}: value {v} (index {index}) was never polled, though index {bound} was (sent by c{})",
                            history[w].process
                        )
                    });
                }
            }
        }
    }

    // 4. Within one poll.
    for op in history {
        let OpKind::Poll { reads } = &op.kind else {
            continue;
        };
        for (k, pairs) in reads {
            for w in pairs.windows(2) {
                let (v1, v2) = (Some(w[0].1), Some(w[1].1));
                let delta = delta_of(&orders, k, v1, v2);
                if delta > 1 {
                    found.add("int-poll-skip", || {
                        let skipped = orders
                            .get(k.as_str())
                            .map(|o| o.skipped(v1, v2))
                            .unwrap_or_default();
                        format!(
                            "key {k}: c{} polled {} then {} in one poll, skipping {skipped:?}",
                            op.process, w[0].1, w[1].1
                        )
                    });
                } else if delta < 1 {
                    found.add("int-nonmonotonic-poll", || {
                        format!(
                            "key {k}: c{} polled {}@{} then {}@{} in one poll (delta {delta})",
                            op.process, w[0].1, w[0].0, w[1].1, w[1].0
                        )
                    });
                }
            }
        }
    }

    // 5 and 6. Per process.
    let mut by_process: BTreeMap<u64, Vec<&Op>> = BTreeMap::new();
    for op in history {
        by_process.entry(op.process).or_default().push(op);
    }
    for (process, ops) in &by_process {
        let mut last_reads: HashMap<&str, Option<Value>> = HashMap::new();
        let mut last_sends: HashMap<&str, Value> = HashMap::new();
        for op in ops {
            match &op.kind {
                OpKind::Assign { keys } if op.typ != OpType::Fail => {
                    last_reads.retain(|k, _| keys.iter().any(|a| a == k));
                    last_sends.retain(|k, _| keys.iter().any(|a| a == k));
                }
                OpKind::Poll { reads } => {
                    for (k, pairs) in reads {
                        let Some(&last) = last_reads.get(k.as_str()) else {
                            continue;
                        };
                        let first = pairs.first().map(|&(_, v)| v);
                        let delta = delta_of(&orders, k, last, first);
                        if delta > 1 {
                            found.add("poll-skip", || {
                                let skipped = orders.get(k.as_str()).map(|o| o.skipped(last, first)).unwrap_or_default();
                                format!(
                                    "key {k}: c{process} polled {}, then its next poll began at {}, skipping {skipped:?}",
                                    super::opt(last), super::opt(first)
                                )
                            });
                        } else if delta < 1 {
                            found.add("nonmonotonic-poll", || {
                                format!(
                                    "key {k}: c{process} polled {}, then its next poll began at {} (delta {delta})",
                                    super::opt(last), super::opt(first)
                                )
                            });
                        }
                    }
                    if op.typ == OpType::Ok {
                        for (k, pairs) in reads {
                            last_reads.insert(k, pairs.last().map(|&(_, v)| v));
                        }
                    }
                }
                OpKind::Send { key, value, offset } if op.typ != OpType::Fail => {
                    if let Some(&last) = last_sends.get(key.as_str()) {
                        let delta = delta_of(&orders, key, Some(last), Some(*value));
                        if delta < 1 {
                            found.add("nonmonotonic-send", || {
                                format!(
                                    "key {key}: c{process} sent {last}, then {value} (offset {}) which is not later (delta {delta})", super::opt(*offset)
                                )
                            });
                        }
                    }
                    last_sends.insert(key, *value);
                }
                _ => {}
            }
        }
    }

    // 7. duplicate.
    let mut dup_keys: Vec<&&str> = orders.keys().collect();
    dup_keys.sort_unstable();
    for k in dup_keys {
        let mut offsets_of: BTreeMap<Value, Vec<u64>> = BTreeMap::new();
        for (offset, values) in &orders[*k].log {
            for &v in values {
                offsets_of.entry(v).or_default().push(*offset);
            }
        }
        for (v, offsets) in offsets_of {
            if offsets.len() > 1 {
                found.add("duplicate", || {
                    format!("key {k}: value {v} at offsets {offsets:?}")
                });
            }
        }
    }

    // 8. unseen.
    for (k, sent) in &sent_ok {
        let read = reads_ok.get(k);
        for v in sent {
            if !read.is_some_and(|r| r.contains(v)) {
                found.add("unseen", || {
                    format!("key {k}: value {v} was acknowledged but never polled")
                });
            }
        }
    }

    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(p: u64, k: &str, v: Value, o: Option<u64>, typ: OpType) -> Op {
        Op {
            process: p,
            typ,
            kind: OpKind::Send {
                key: k.into(),
                value: v,
                offset: o,
            },
            invoke_ns: 0,
            complete_ns: 0,
            error: None,
        }
    }
    fn ok_send(p: u64, k: &str, v: Value, o: u64) -> Op {
        send(p, k, v, Some(o), OpType::Ok)
    }
    fn poll(p: u64, reads: &[(&str, &[(u64, Value)])]) -> Op {
        let reads = reads
            .iter()
            .map(|(k, pairs)| (k.to_string(), pairs.to_vec()))
            .collect();
        Op {
            process: p,
            typ: OpType::Ok,
            kind: OpKind::Poll { reads },
            invoke_ns: 0,
            complete_ns: 0,
            error: None,
        }
    }
    fn assign(p: u64, keys: &[&str]) -> Op {
        let keys = keys.iter().map(|k| k.to_string()).collect();
        Op {
            process: p,
            typ: OpType::Ok,
            kind: OpKind::Assign { keys },
            invoke_ns: 0,
            complete_ns: 0,
            error: None,
        }
    }
    fn kinds(a: &Anomalies) -> Vec<&str> {
        a.counts.keys().map(String::as_str).collect()
    }

    #[test]
    fn a_clean_history_is_valid() {
        let h = vec![
            ok_send(0, "1", 1, 0),
            ok_send(1, "1", 2, 3), // sparse offsets are fine
            ok_send(0, "2", 1, 1),
            poll(2, &[("1", &[(0, 1)])]),
            poll(2, &[("1", &[(3, 2)]), ("2", &[(1, 1)])]),
            poll(2, &[("1", &[])]),
            ok_send(0, "1", 3, 7),
            poll(2, &[("1", &[(7, 3)])]),
            poll(3, &[("1", &[(0, 1), (3, 2), (7, 3)])]),
            send(1, "3", 1, None, OpType::Info), // unknown and never read: fine
        ];
        let a = check(&h);
        assert!(a.is_empty(), "{a:?}");
    }

    #[test]
    fn lost_write_when_a_later_value_was_read_but_an_earlier_acked_one_never() {
        let h = vec![
            ok_send(0, "1", 1, 0),
            ok_send(0, "1", 2, 1),
            ok_send(0, "1", 3, 2),
            poll(1, &[("1", &[(0, 1)])]),
            poll(2, &[("1", &[(2, 3)])]),
        ];
        let a = check(&h);
        assert_eq!(a.count("lost-write"), 1, "{a:?}");
        assert_eq!(a.count("unseen"), 1);
        assert!(a.examples["lost-write"][0].contains("value 2"));
    }

    #[test]
    fn an_info_send_is_not_lost_unless_proven_visible() {
        let h = vec![
            ok_send(0, "1", 1, 0),
            send(0, "1", 2, None, OpType::Info),
            ok_send(0, "1", 3, 2),
            poll(1, &[("1", &[(0, 1), (2, 3)])]),
        ];
        assert!(check(&h).is_empty());
    }

    #[test]
    fn unseen_alone_when_nothing_later_was_read() {
        let h = vec![
            ok_send(0, "1", 1, 0),
            ok_send(0, "1", 2, 1),
            poll(1, &[("1", &[(0, 1)])]),
        ];
        let a = check(&h);
        assert_eq!(kinds(&a), vec!["unseen"]);
        assert_eq!(a.count("unseen"), 1);
    }

    #[test]
    fn duplicate_and_its_internal_nonmonotonic_poll() {
        let h = vec![ok_send(0, "1", 1, 0), poll(1, &[("1", &[(0, 1), (1, 1)])])];
        let a = check(&h);
        assert_eq!(a.count("duplicate"), 1, "{a:?}");
        assert_eq!(a.count("int-nonmonotonic-poll"), 1);
    }

    #[test]
    fn inconsistent_offsets_from_two_acks_at_one_offset() {
        let h = vec![
            ok_send(0, "1", 1, 0),
            ok_send(1, "1", 2, 0),
            poll(2, &[("1", &[(0, 1)])]),
        ];
        let a = check(&h);
        assert_eq!(a.count("inconsistent-offsets"), 1, "{a:?}");
    }

    #[test]
    fn g1a_when_a_failed_send_is_read() {
        let h = vec![
            send(0, "1", 5, None, OpType::Fail),
            poll(1, &[("1", &[(0, 5)])]),
        ];
        let a = check(&h);
        assert_eq!(kinds(&a), vec!["G1a"]);
    }

    #[test]
    fn int_poll_skip_and_int_nonmonotonic_poll() {
        let h = vec![
            ok_send(0, "1", 1, 0),
            ok_send(0, "1", 2, 1),
            ok_send(0, "1", 3, 2),
            poll(1, &[("1", &[(0, 1), (1, 2), (2, 3)])]),
            poll(2, &[("1", &[(0, 1), (2, 3)])]),
            poll(3, &[("1", &[(1, 2), (0, 1)])]),
        ];
        let a = check(&h);
        assert_eq!(a.count("int-poll-skip"), 1, "{a:?}");
        assert_eq!(a.count("int-nonmonotonic-poll"), 1, "{a:?}");
        assert_eq!(a.count("lost-write"), 0);
    }

    #[test]
    fn poll_skip_and_nonmonotonic_poll_across_a_process_polls() {
        let h = vec![
            ok_send(0, "1", 1, 0),
            ok_send(0, "1", 2, 1),
            ok_send(0, "1", 3, 2),
            poll(9, &[("1", &[(0, 1), (1, 2), (2, 3)])]),
            // process 1 skips value 2
            poll(1, &[("1", &[(0, 1)])]),
            poll(1, &[("1", &[(2, 3)])]),
            // process 2 goes back
            poll(2, &[("1", &[(0, 1), (1, 2)])]),
            poll(2, &[("1", &[(1, 2)])]),
        ];
        let a = check(&h);
        assert_eq!(kinds(&a), vec!["nonmonotonic-poll", "poll-skip"], "{a:?}");
    }

    #[test]
    fn assign_resets_a_process_poll_history_and_new_processes_start_fresh() {
        let h = vec![
            ok_send(0, "1", 1, 0),
            ok_send(0, "1", 2, 1),
            ok_send(0, "1", 3, 2),
            poll(9, &[("1", &[(0, 1), (1, 2), (2, 3)])]),
            poll(1, &[("1", &[(0, 1)])]),
            assign(1, &["2"]),
            poll(1, &[("1", &[(2, 3)])]),
            poll(2, &[("1", &[(0, 1), (1, 2)])]),
            poll(3, &[("1", &[(0, 1)])]),
        ];
        assert!(check(&h).is_empty());
        // An assign that keeps the key keeps its history.
        let h2 = vec![
            ok_send(0, "1", 1, 0),
            ok_send(0, "1", 2, 1),
            ok_send(0, "1", 3, 2),
            poll(9, &[("1", &[(0, 1), (1, 2), (2, 3)])]),
            poll(1, &[("1", &[(0, 1)])]),
            assign(1, &["1"]),
            poll(1, &[("1", &[(2, 3)])]),
        ];
        assert_eq!(kinds(&check(&h2)), vec!["poll-skip"]);
    }

    #[test]
    fn nonmonotonic_send_when_a_process_sends_go_back() {
        let h = vec![
            ok_send(0, "1", 1, 5),
            ok_send(0, "1", 2, 3),
            poll(1, &[("1", &[(3, 2), (5, 1)])]),
        ];
        let a = check(&h);
        assert_eq!(a.count("nonmonotonic-send"), 1, "{a:?}");
        // Different processes may interleave freely.
        let h2 = vec![
            ok_send(0, "1", 1, 5),
            ok_send(1, "1", 2, 3),
            poll(2, &[("1", &[(3, 2), (5, 1)])]),
        ];
        assert!(check(&h2).is_empty());
    }

    #[test]
    fn phantom_values_are_reported() {
        let h = vec![poll(1, &[("1", &[(0, 42)])])];
        assert_eq!(kinds(&check(&h)), vec!["phantom"]);
    }
}
