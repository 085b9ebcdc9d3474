//! Consumer groups through the binary: every group RPC, splitting, fan-out to several groups,
//! minimal movement on join and leave, fencing, and resumption after a handoff.

mod node_util;

use node_util::{ints, keys, Node};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Sends `n` records over `keys` keys to `topic`; returns, per key, its values in send order.
fn produce(node: &mut Node, topic: &str, n: u64, keys: u64) -> BTreeMap<String, Vec<u64>> {
    let mut sent: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for i in 0..n {
        let key = format!("k{}", i % keys);
        node.ok(
            "p",
            json!({"type": "send", "topic": topic, "key": key, "msg": i}),
        );
        sent.entry(key).or_default().push(i);
    }
    sent
}

/// One record of a group poll: (partition, offset, key, value).
fn records(r: &Value) -> Vec<(u64, u64, String, u64)> {
    r["msgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(keys(m), ["key", "msg", "offset", "partition", "topic"]);
            (
                m["partition"].as_u64().unwrap(),
                m["offset"].as_u64().unwrap(),
                m["key"].as_str().unwrap().to_string(),
                m["msg"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Polls until a poll comes back empty; returns everything received, in order.
fn drain(
    node: &mut Node,
    group: &str,
    consumer: &str,
    topic: &str,
) -> Vec<(u64, u64, String, u64)> {
    let mut all = Vec::new();
    loop {
        let r = node.ok(
            consumer,
            json!({"type": "poll", "group": group, "consumer": consumer, "topic": topic, "max_messages": 7}),
        );
        let got = records(&r);
        assert!(got.len() <= 7);
        if got.is_empty() {
            return all;
        }
        all.extend(got);
    }
}

fn partitions_of(node: &mut Node, group: &str, consumer: &str, topic: &str) -> BTreeSet<u64> {
    let r = node.ok(
        consumer,
        json!({"type": "heartbeat", "group": group, "consumer": consumer, "topic": topic}),
    );
    ints(&r["partitions"]).into_iter().collect()
}

#[test]
fn every_group_rpc_answers_with_its_fields() {
    let mut n = Node::started(&[]);
    let r = n.ok(
        "c1",
        json!({"type": "create_topic", "topic": "orders", "partitions": 3}),
    );
    assert_eq!(keys(&r), ["in_reply_to", "msg_id", "type"]);
    // Idempotent with the same count; 21 with another; 12 for a silly count.
    n.ok(
        "c1",
        json!({"type": "create_topic", "topic": "orders", "partitions": 3}),
    );
    assert_eq!(
        n.rpc(
            "c1",
            json!({"type": "create_topic", "topic": "orders", "partitions": 4})
        )["code"],
        21
    );
    assert_eq!(
        n.rpc(
            "c1",
            json!({"type": "create_topic", "topic": "x", "partitions": 0})
        )["code"],
        12
    );
    assert_eq!(
        n.rpc(
            "c1",
            json!({"type": "create_topic", "topic": "x", "partitions": 4_000_000_000u64})
        )["code"],
        12
    );
    let r = n.ok("c1", json!({"type": "list_topics"}));
    assert_eq!(
        r["topics"],
        json!([{"topic": "default", "partitions": 8}, {"topic": "orders", "partitions": 3}])
    );

    let r = n.ok(
        "c1",
        json!({"type": "subscribe", "group": "g", "consumer": "a", "topic": "orders",
        "session_timeout_ms": 30000, "assignor": "range", "auto_commit": false}),
    );
    assert_eq!(
        keys(&r),
        ["generation", "in_reply_to", "msg_id", "partitions", "type"]
    );
    assert_eq!(ints(&r["partitions"]), [0, 1, 2]);
    let generation = r["generation"].as_u64().unwrap();
    let r = n.ok(
        "c1",
        json!({"type": "heartbeat", "group_id": "g", "member_id": "a"}),
    );
    assert_eq!(
        keys(&r),
        ["generation", "in_reply_to", "msg_id", "partitions", "type"]
    );
    assert_eq!(r["generation"], generation);

    produce(&mut n, "orders", 6, 3);
    let r = n.ok(
        "c1",
        json!({"type": "poll", "group": "g", "consumer_id": "a", "max_records": 4}),
    );
    assert_eq!(
        keys(&r),
        [
            "generation",
            "in_reply_to",
            "msg_id",
            "msgs",
            "partitions",
            "type"
        ]
    );
    assert_eq!(records(&r).len(), 4);
    assert!(records(&r).iter().all(|(_, _, k, _)| k.starts_with('k')));

    let r = n.ok("c1", json!({"type": "commit", "group": "g", "consumer": "a", "topic": "orders", "partition": 1, "offset": 1}));
    assert_eq!(keys(&r), ["in_reply_to", "msg_id", "type"]);
    n.ok("c1", json!({"type": "commit", "group": "g", "consumer": "a", "topic": "orders", "offsets": {"0": 2, "2": 1}}));
    let r = n.ok(
        "c1",
        json!({"type": "list_committed_offsets", "group": "g", "topic": "orders"}),
    );
    assert_eq!(r["offsets"], json!({"0": 2, "1": 1, "2": 1}));

    let r = n.ok("c1", json!({"type": "describe_group", "group": "g"}));
    assert_eq!(
        keys(&r),
        [
            "assignor",
            "generation",
            "group",
            "in_reply_to",
            "members",
            "msg_id",
            "partitions",
            "type"
        ]
    );
    assert_eq!(r["assignor"], "range");
    assert_eq!(r["members"][0]["consumer"], "a");
    assert_eq!(r["members"][0]["partitions"].as_array().unwrap().len(), 3);
    let rows = r["partitions"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert_eq!(
            keys(row),
            ["committed", "lag", "log_end", "owner", "partition", "topic"]
        );
        assert_eq!(row["owner"], "a");
        let (c, end) = (
            row["committed"].as_u64().unwrap(),
            row["log_end"].as_u64().unwrap(),
        );
        assert_eq!(row["lag"].as_u64().unwrap(), end.saturating_sub(c));
    }

    let r = n.ok("c1", json!({"type": "list_groups"}));
    assert_eq!(r["groups"], json!(["g"]));
    // reset_offsets needs an empty group.
    let e = n.rpc(
        "c1",
        json!({"type": "reset_offsets", "group": "g", "topic": "orders", "to": "earliest"}),
    );
    assert_eq!(e["code"], 22);
    let r = n.ok(
        "c1",
        json!({"type": "unsubscribe", "group": "g", "consumer": "a"}),
    );
    assert_eq!(keys(&r), ["in_reply_to", "msg_id", "type"]);
    n.ok(
        "c1",
        json!({"type": "leave_group", "group": "g", "consumer": "a"}),
    );
    n.ok(
        "c1",
        json!({"type": "reset_offsets", "group": "g", "topic": "orders", "to": "latest"}),
    );
    let r = n.ok(
        "c1",
        json!({"type": "list_committed_offsets", "group": "g", "topic": "orders"}),
    );
    let committed: BTreeMap<String, u64> = serde_json::from_value(r["offsets"].clone()).unwrap();
    let ends: BTreeMap<String, u64> = serde_json::from_value(
        n.ok("c1", json!({"type": "list_offsets", "topic": "orders"}))["offsets"].clone(),
    )
    .unwrap();
    assert_eq!(committed, ends);
    n.ok(
        "c1",
        json!({"type": "reset_offsets", "group": "g", "to": 0}),
    );
    let r = n.ok(
        "c1",
        json!({"type": "list_committed_offsets", "group": "g", "topic": "orders"}),
    );
    assert_eq!(r["offsets"], json!({"0": 0, "1": 0, "2": 0}));
    assert_eq!(
        n.rpc(
            "c1",
            json!({"type": "reset_offsets", "group": "g", "to": "yesterday"})
        )["code"],
        12
    );
    assert_eq!(
        n.rpc(
            "c1",
            json!({"type": "reset_offsets", "group": "nope", "to": 0})
        )["code"],
        20
    );
    assert_eq!(
        n.rpc(
            "c1",
            json!({"type": "heartbeat", "group": "g", "consumer": "a"})
        )["code"],
        22
    );
    assert_eq!(
        n.rpc(
            "c1",
            json!({"type": "subscribe", "group": "g", "assignor": "fastest"})
        )["code"],
        12
    );
}

#[test]
fn consumer_defaults_to_src_and_poll_joins() {
    let mut n = Node::started(&["--partitions", "2"]);
    // No subscribe: the poll joins, as Kafka's poll() does; the consumer is the src.
    let r = n.ok("c5", json!({"type": "poll", "group": "g"}));
    assert_eq!(ints(&r["partitions"]), [0, 1]);
    let d = n.ok("c1", json!({"type": "describe_group", "group": "g"}));
    assert_eq!(d["members"][0]["consumer"], "c5");
}

#[test]
fn two_consumers_split_the_partitions_with_no_record_twice_and_per_key_order() {
    let mut n = Node::started(&[]);
    n.ok(
        "p",
        json!({"type": "create_topic", "topic": "t", "partitions": 6}),
    );
    let sent = produce(&mut n, "t", 240, 20);
    n.ok(
        "a",
        json!({"type": "subscribe", "group": "g", "consumer": "a", "topic": "t"}),
    );
    n.ok(
        "b",
        json!({"type": "subscribe", "group": "g", "consumer": "b", "topic": "t"}),
    );
    let pa = partitions_of(&mut n, "g", "a", "t");
    let pb = partitions_of(&mut n, "g", "b", "t");
    assert_eq!((pa.len(), pb.len()), (3, 3));
    assert!(pa.is_disjoint(&pb));
    let ra = drain(&mut n, "g", "a", "t");
    let rb = drain(&mut n, "g", "b", "t");
    let mut per_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut owner_of_key: HashMap<String, &str> = HashMap::new();
    let mut seen = BTreeSet::new();
    for (who, recs, parts) in [("a", &ra, &pa), ("b", &rb, &pb)] {
        for (p, off, key, v) in recs.iter() {
            assert!(
                parts.contains(p),
                "{who} got a record of a partition it does not own"
            );
            assert!(seen.insert((*p, *off)), "record {p}/{off} delivered twice");
            assert_eq!(
                *owner_of_key.entry(key.clone()).or_insert(who),
                who,
                "key {key} split"
            );
            per_key.entry(key.clone()).or_default().push(*v);
        }
    }
    assert_eq!(per_key, sent, "every record once, each key in send order");
}

#[test]
fn two_groups_each_receive_every_record() {
    let mut n = Node::started(&["--partitions", "4"]);
    let sent = produce(&mut n, "default", 60, 6);
    for (group, consumer) in [("g1", "x"), ("g2", "y")] {
        let got = drain(&mut n, group, consumer, "default");
        let mut per_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (_, _, k, v) in got {
            per_key.entry(k).or_default().push(v);
        }
        assert_eq!(per_key, sent, "group {group}");
    }
}

#[test]
fn a_join_and_a_leave_move_only_the_partitions_they_must() {
    let mut n = Node::started(&[]);
    n.ok(
        "p",
        json!({"type": "create_topic", "topic": "t", "partitions": 9}),
    );
    for c in ["a", "b", "c"] {
        n.ok(
            c,
            json!({"type": "subscribe", "group": "g", "consumer": c, "topic": "t"}),
        );
    }
    let before: BTreeMap<&str, BTreeSet<u64>> = ["a", "b", "c"]
        .into_iter()
        .map(|c| (c, partitions_of(&mut n, "g", c, "t")))
        .collect();
    assert!(before.values().all(|p| p.len() == 3));
    n.ok(
        "d",
        json!({"type": "subscribe", "group": "g", "consumer": "d", "topic": "t"}),
    );
    let after: BTreeMap<&str, BTreeSet<u64>> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|c| (c, partitions_of(&mut n, "g", c, "t")))
        .collect();
    assert_eq!(
        after["d"].len(),
        2,
        "the joiner gets its fair share: 9 over 4"
    );
    for c in ["a", "b", "c"] {
        assert!(
            after[c].is_subset(&before[c]),
            "{c} only gave partitions away"
        );
    }
    let moved: usize = ["a", "b", "c"]
        .iter()
        .map(|c| before[c].len() - after[c].len())
        .sum();
    assert_eq!(moved, 2, "only the joiner's share moved");
    n.ok(
        "d",
        json!({"type": "unsubscribe", "group": "g", "consumer": "d"}),
    );
    let last: BTreeMap<&str, BTreeSet<u64>> = ["a", "b", "c"]
        .into_iter()
        .map(|c| (c, partitions_of(&mut n, "g", c, "t")))
        .collect();
    for c in ["a", "b", "c"] {
        assert!(last[c].is_superset(&after[c]), "{c} kept what it had");
        assert_eq!(last[c].len(), 3);
    }
}

#[test]
fn a_consumer_that_lost_a_partition_is_fenced() {
    let mut n = Node::started(&[]);
    n.ok(
        "p",
        json!({"type": "create_topic", "topic": "t", "partitions": 4}),
    );
    n.ok("a", json!({"type": "subscribe", "group": "g", "consumer": "a", "topic": "t", "auto_commit": false}));
    n.ok("b", json!({"type": "subscribe", "group": "g", "consumer": "b", "topic": "t", "auto_commit": false}));
    // b's partitions are still a's, pending revocation: b owns nothing yet, and a may still commit
    // them (Kafka's rule), until a's next request releases them.
    assert!(partitions_of(&mut n, "g", "b", "t").is_empty());
    let d = n.ok("p", json!({"type": "describe_group", "group": "g"}));
    assert_eq!(d["members"][0]["state"], "UNREVOKED_PARTITIONS");
    assert_eq!(d["members"][1]["state"], "UNRELEASED_PARTITIONS");
    let pending = d["members"][1]["pending"][0]["partition"].as_u64().unwrap();
    n.ok("a", json!({"type": "commit", "group": "g", "consumer": "a", "topic": "t", "partition": pending, "offset": 0}));
    assert_eq!(partitions_of(&mut n, "g", "a", "t").len(), 2);
    let lost = *partitions_of(&mut n, "g", "b", "t").iter().next().unwrap();
    let e = n.rpc("a", json!({"type": "commit", "group": "g", "consumer": "a", "topic": "t", "partition": lost, "offset": 3}));
    assert_eq!(e["type"], "error");
    assert_eq!(e["code"], 22);
    assert!(e["text"].as_str().unwrap().contains("fenced"), "{e}");
    // The refused commit changed nothing; the owner's commit lands.
    let r = n.ok(
        "p",
        json!({"type": "list_committed_offsets", "group": "g", "topic": "t"}),
    );
    assert_eq!(r["offsets"], json!({pending.to_string(): 0}));
    n.ok("b", json!({"type": "commit", "group": "g", "consumer": "b", "topic": "t", "partition": lost, "offset": 3}));
    // An admin commit (no consumer) is accepted.
    n.ok(
        "p",
        json!({"type": "commit", "group": "g", "topic": "t", "partition": lost, "offset": 4}),
    );
    let r = n.ok(
        "p",
        json!({"type": "list_committed_offsets", "group": "g", "topic": "t"}),
    );
    assert_eq!(r["offsets"][lost.to_string()], 4);
    // A consumer that is no member at all is refused too.
    let e = n.rpc("z", json!({"type": "commit", "group": "g", "consumer": "z", "topic": "t", "partition": 0, "offset": 1}));
    assert_eq!(e["code"], 22);
}

#[test]
fn a_new_owner_resumes_from_the_committed_offset() {
    let mut n = Node::started(&["--partitions", "1"]);
    produce(&mut n, "default", 20, 1);
    // Manual commit, then a clean leave.
    n.ok(
        "a",
        json!({"type": "subscribe", "group": "g", "consumer": "a", "auto_commit": false}),
    );
    let r = n.ok(
        "a",
        json!({"type": "poll", "group": "g", "consumer": "a", "max_messages": 8}),
    );
    let got = records(&r);
    assert_eq!(
        got.iter().map(|r| r.1).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    n.ok(
        "a",
        json!({"type": "commit", "group": "g", "consumer": "a", "partition": 0, "offset": 5}),
    );
    n.ok(
        "a",
        json!({"type": "unsubscribe", "group": "g", "consumer": "a"}),
    );
    let r = n.ok(
        "b",
        json!({"type": "poll", "group": "g", "consumer": "b", "max_messages": 3}),
    );
    assert_eq!(
        records(&r).iter().map(|r| r.1).collect::<Vec<_>>(),
        [5, 6, 7]
    );
    // With auto-commit: what b was handed is committed when it polls again or leaves.
    let r = n.ok(
        "b",
        json!({"type": "poll", "group": "g", "consumer": "b", "max_messages": 3}),
    );
    assert_eq!(
        records(&r).iter().map(|r| r.1).collect::<Vec<_>>(),
        [8, 9, 10]
    );
    n.ok(
        "b",
        json!({"type": "leave_group", "group": "g", "consumer": "b"}),
    );
    let r = n.ok(
        "c",
        json!({"type": "poll", "group": "g", "consumer": "c", "max_messages": 100}),
    );
    let rest: Vec<u64> = records(&r).iter().map(|r| r.1).collect();
    assert_eq!(rest, (11..20).collect::<Vec<_>>());
}

#[test]
fn an_expired_member_loses_its_partitions() {
    let mut n = Node::started(&["--partitions", "2"]);
    n.ok(
        "a",
        json!({"type": "subscribe", "group": "g", "consumer": "a", "session_timeout_ms": 200}),
    );
    n.ok(
        "b",
        json!({"type": "subscribe", "group": "g", "consumer": "b", "session_timeout_ms": 60000}),
    );
    partitions_of(&mut n, "g", "a", "default");
    assert_eq!(partitions_of(&mut n, "g", "b", "default").len(), 1);
    // The node's own timer expires `a`; no request about it is needed.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let d = n.ok("p", json!({"type": "list_groups"}));
    assert_eq!(d["groups"], json!(["g"]));
    assert_eq!(partitions_of(&mut n, "g", "b", "default").len(), 2);
    assert_eq!(
        n.rpc(
            "a",
            json!({"type": "heartbeat", "group": "g", "consumer": "a"})
        )["code"],
        22
    );
}

/// Issue 14 §1: with `--auto-offset-reset latest` the position a poll got by the reset is the
/// group's: the next owner reads what was sent after it, whether the partition moves by a leave or
/// by a join.
#[test]
fn a_latest_position_survives_a_hand_off() {
    // By a leave: one partition.
    let mut n = Node::started(&["--auto-offset-reset", "latest", "--workers", "0"]);
    n.ok(
        "p",
        json!({"type": "create_topic", "topic": "t", "partitions": 1}),
    );
    n.ok(
        "p",
        json!({"type": "send", "topic": "t", "key": "k", "msg": "r0"}),
    );
    let r = n.ok(
        "a",
        json!({"type": "poll", "group": "g", "consumer": "a", "topic": "t"}),
    );
    assert!(records(&r).is_empty());
    for v in ["r1", "r2"] {
        n.ok(
            "p",
            json!({"type": "send", "topic": "t", "key": "k", "msg": v}),
        );
    }
    n.ok(
        "a",
        json!({"type": "unsubscribe", "group": "g", "consumer": "a"}),
    );
    let mut got = Vec::new();
    for _ in 0..2 {
        let r = n.ok(
            "b",
            json!({"type": "poll", "group": "g", "consumer": "b", "topic": "t"}),
        );
        got.extend(
            r["msgs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["msg"].clone()),
        );
    }
    assert_eq!(got, [json!("r1"), json!("r2")]);

    // By a join: two partitions; a reads both ends, then b's join moves one of them to b.
    let mut n = Node::started(&["--auto-offset-reset", "latest", "--workers", "0"]);
    n.ok(
        "p",
        json!({"type": "create_topic", "topic": "t", "partitions": 2}),
    );
    let r = n.ok(
        "a",
        json!({"type": "poll", "group": "g", "consumer": "a", "topic": "t"}),
    );
    assert_eq!(ints(&r["partitions"]), [0, 1]);
    let mut sent = BTreeSet::new();
    for i in 0..8 {
        n.ok(
            "p",
            json!({"type": "send", "topic": "t", "key": format!("k{i}"), "msg": i}),
        );
        sent.insert(i);
    }
    n.ok(
        "b",
        json!({"type": "subscribe", "group": "g", "consumer": "b", "topic": "t"}),
    );
    let mut seen = BTreeSet::new();
    for _ in 0..3 {
        for c in ["a", "b"] {
            let r = n.ok(
                c,
                json!({"type": "poll", "group": "g", "consumer": c, "topic": "t", "max_messages": 100}),
            );
            for (_, _, _, v) in records(&r) {
                assert!(seen.insert(v), "{v} delivered twice");
            }
        }
    }
    assert_eq!(seen, sent);
    assert_eq!(partitions_of(&mut n, "g", "b", "t").len(), 1);
}

/// A join among live members re-delivers nothing: the partitions it moves pass to the joiner
/// only when their owner's next poll has released them, with its position committed.
#[test]
fn a_join_among_live_members_redelivers_nothing() {
    let mut n = Node::started(&[]);
    n.ok(
        "p",
        json!({"type": "create_topic", "topic": "t", "partitions": 4}),
    );
    let sent = produce(&mut n, "t", 80, 8);
    let total: usize = sent.values().map(Vec::len).sum();
    let mut seen = BTreeSet::new();
    let mut poll = |n: &mut Node, c: &str| {
        let r = n.ok(
            c,
            json!({"type": "poll", "group": "g", "consumer": c, "topic": "t", "max_messages": 6}),
        );
        for (p, off, _, _) in records(&r) {
            assert!(seen.insert((p, off)), "{p}/{off} delivered twice");
        }
    };
    poll(&mut n, "a");
    poll(&mut n, "a");
    n.ok(
        "b",
        json!({"type": "subscribe", "group": "g", "consumer": "b", "topic": "t"}),
    );
    poll(&mut n, "b");
    poll(&mut n, "a");
    n.ok(
        "c",
        json!({"type": "subscribe", "group": "g", "consumer": "c", "topic": "t"}),
    );
    for _ in 0..40 {
        for c in ["a", "b", "c"] {
            poll(&mut n, c);
        }
    }
    assert_eq!(seen.len(), total);
    let d = n.ok("p", json!({"type": "describe_group", "group": "g"}));
    for m in d["members"].as_array().unwrap() {
        assert_eq!(m["state"], "STABLE", "{d}");
    }
}
