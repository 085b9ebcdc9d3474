//! Maelstrom's kafka RPCs (and send_batch / list_offsets) through the binary, including many
//! pipelined clients at once.

mod node_util;

use node_util::Node;
use serde_json::{json, Value};
use std::collections::HashMap;

#[test]
fn send_and_poll_give_each_key_a_contiguous_ascending_prefix() {
    let mut n = Node::started(&[]);
    let mut offsets: HashMap<&str, Vec<u64>> = HashMap::new();
    for i in 0..30u64 {
        for key in ["a", "b", "c"] {
            let r = n.ok("c1", json!({"type": "send", "key": key, "msg": i}));
            offsets
                .entry(key)
                .or_default()
                .push(r["offset"].as_u64().unwrap());
        }
    }
    for (key, offs) in &offsets {
        assert!(offs.windows(2).all(|w| w[0] < w[1]), "{key}: {offs:?}");
    }
    // From the start: all 30 values of a key, in order.
    let r = n.ok(
        "c2",
        json!({"type": "poll", "offsets": {"a": 0, "b": offsets["b"][10]}}),
    );
    let a: Vec<(u64, u64)> = serde_json::from_value(r["msgs"]["a"].clone()).unwrap();
    assert_eq!(
        a,
        offsets["a"].iter().copied().zip(0..30).collect::<Vec<_>>()
    );
    let b: Vec<(u64, u64)> = serde_json::from_value(r["msgs"]["b"].clone()).unwrap();
    assert_eq!(
        b,
        offsets["b"][10..]
            .iter()
            .copied()
            .zip(10..30)
            .collect::<Vec<_>>()
    );
    assert!(r["msgs"].get("c").is_none());
    // From a sparse offset between two records of a key: starts at the next one.
    let between = offsets["c"][3] + 1;
    let r = n.ok(
        "c2",
        json!({"type": "poll", "offsets": {"c": between, "nope": 0}}),
    );
    assert_eq!(r["msgs"]["c"][0], json!([offsets["c"][4], 4]));
    assert!(
        r["msgs"].get("nope").is_none(),
        "keys without records are left out"
    );
    // Nothing asked, nothing given.
    let r = n.ok("c2", json!({"type": "poll", "offsets": {}}));
    assert_eq!(r["msgs"], json!({}));
}

#[test]
fn poll_caps_each_key_at_its_batch() {
    let mut n = Node::started(&["--partitions", "1"]);
    for i in 0..45 {
        n.ok("c1", json!({"type": "send", "key": "k", "msg": i}));
    }
    let r = n.ok("c1", json!({"type": "poll", "offsets": {"k": 0}}));
    let got = r["msgs"]["k"].as_array().unwrap();
    assert_eq!(got.len(), 32);
    assert_eq!(got[31], json!([31, 31]));
    let r = n.ok("c1", json!({"type": "poll", "offsets": {"k": 32}}));
    assert_eq!(r["msgs"]["k"].as_array().unwrap().len(), 13);
}

#[test]
fn messages_are_stored_compact_and_returned_as_sent() {
    let mut n = Node::started(&[]);
    n.send_line(r#"{"src":"c1","dest":"n1","body":{"type":"send","msg_id":1,"key":"k","msg":{ "x" : [1, 2.5, "a b", null, true] }}}"#);
    n.recv_line();
    n.send_line(r#"{"src":"c1","dest":"n1","body":{"type":"poll","msg_id":2,"offsets":{"k":0}}}"#);
    assert_eq!(
        n.recv_line(),
        r#"{"src":"n1","dest":"c1","body":{"type":"poll_ok","msgs":{"k":[[0,{"x":[1,2.5,"a b",null,true]}]]},"in_reply_to":2,"msg_id":2}}"#
    );
}

#[test]
fn commit_offsets_keeps_the_maximum_and_list_leaves_unknown_keys_out() {
    let mut n = Node::started(&[]);
    n.ok(
        "c1",
        json!({"type": "commit_offsets", "offsets": {"a": 5, "b": 2}}),
    );
    n.ok("c2", json!({"type": "commit_offsets", "offsets": {"a": 3}}));
    n.ok("c2", json!({"type": "commit_offsets", "offsets": {}}));
    let r = n.ok(
        "c3",
        json!({"type": "list_committed_offsets", "keys": ["a", "b", "zz"]}),
    );
    assert_eq!(r["offsets"], json!({"a": 5, "b": 2}));
    // A commit with one bad entry changes nothing.
    let e = n.rpc(
        "c1",
        json!({"type": "commit_offsets", "offsets": {"a": 9, "b": -1}}),
    );
    assert_eq!(e["code"], 12);
    let r = n.ok(
        "c3",
        json!({"type": "list_committed_offsets", "keys": ["a", "b"]}),
    );
    assert_eq!(r["offsets"], json!({"a": 5, "b": 2}));
    let r = n.ok("c3", json!({"type": "list_committed_offsets", "keys": []}));
    assert_eq!(r["offsets"], json!({}));
}

#[test]
fn send_batch_list_offsets_and_named_topics() {
    let mut n = Node::started(&[]);
    n.ok(
        "c1",
        json!({"type": "create_topic", "topic": "t", "partitions": 2}),
    );
    let r = n.ok(
        "c1",
        json!({"type": "send_batch", "topic": "t", "msgs": [
            {"key": "a", "msg": 1}, {"key": "a", "value": 2}, {"msg": 3}, {"key": 7, "message": "x"}
        ]}),
    );
    let pairs: Vec<(u32, u64)> = serde_json::from_value(r["offsets"].clone()).unwrap();
    assert_eq!(pairs.len(), 4);
    assert_eq!(pairs[0].0, pairs[1].0, "one key, one partition");
    assert_eq!(pairs[1].1, pairs[0].1 + 1);
    let r = n.ok("c1", json!({"type": "list_offsets", "topic": "t"}));
    let ends: HashMap<String, u64> = serde_json::from_value(r["offsets"].clone()).unwrap();
    assert_eq!(ends.len(), 2);
    assert_eq!(ends.values().sum::<u64>(), 4);
    // A send naming a topic answers exactly {offset}.
    let r = n.ok(
        "c1",
        json!({"type": "send", "topic": "t", "key": "a", "msg": 4}),
    );
    assert_eq!(
        node_util::keys(&r),
        ["in_reply_to", "msg_id", "offset", "type"]
    );
    assert_eq!(
        r["offset"],
        ends[&pairs[0].0.to_string()],
        "the next offset of a's partition"
    );
    // The default topic saw none of it.
    let r = n.ok("c1", json!({"type": "list_offsets"}));
    let ends: HashMap<String, u64> = serde_json::from_value(r["offsets"].clone()).unwrap();
    assert_eq!(ends.values().sum::<u64>(), 0);
    // A malformed record fails the whole batch.
    let e = n.rpc(
        "c1",
        json!({"type": "send_batch", "topic": "t", "msgs": [{"key": "a", "msg": 1}, {"key": "b"}]}),
    );
    assert_eq!(e["code"], 12);
    let r = n.ok("c1", json!({"type": "list_offsets", "topic": "t"}));
    let ends: HashMap<String, u64> = serde_json::from_value(r["offsets"].clone()).unwrap();
    assert_eq!(ends.values().sum::<u64>(), 5);
    let e = n.rpc("c1", json!({"type": "list_offsets", "topic": "nope"}));
    assert_eq!(e["code"], 20);
}

/// Many clients write pipelined requests at once; each client's replies come back in its order,
/// and its sends to one key get increasing offsets.
fn pipelined(workers: &str, inline_max: &str) {
    let mut n = Node::started(&["--workers", workers, "--inline-max", inline_max]);
    const CLIENTS: usize = 8;
    const PER: u64 = 300;
    let mut lines = Vec::new();
    for i in 1..=PER {
        for c in 0..CLIENTS {
            let body = json!({"type": "send", "msg_id": i, "key": format!("k{}", c % 3), "msg": i});
            lines.push(
                json!({"src": format!("c{c}"), "dest": "n1", "body": body}).to_string() + "\n",
            );
        }
    }
    // Half in one write (big reads), half in bursts of 1 to 12 lines with pauses (small reads).
    let (bulk, bursts) = lines.split_at(lines.len() / 2);
    n.write(bulk.concat().as_bytes());
    let mut rest = bursts;
    for k in (1..=12).cycle() {
        if rest.is_empty() {
            break;
        }
        let (now, later) = rest.split_at(k.min(rest.len()));
        n.write(now.concat().as_bytes());
        std::thread::sleep(std::time::Duration::from_micros(100));
        rest = later;
    }
    let mut last: HashMap<String, (u64, u64)> = HashMap::new();
    let mut seen_ids = std::collections::HashSet::new();
    for _ in 0..CLIENTS as u64 * PER {
        let v: Value = serde_json::from_str(&n.recv_line()).unwrap();
        let dest = v["dest"].as_str().unwrap().to_string();
        let irt = v["body"]["in_reply_to"].as_u64().unwrap();
        let off = v["body"]["offset"].as_u64().unwrap();
        assert!(
            seen_ids.insert(v["body"]["msg_id"].as_u64().unwrap()),
            "msg_ids are unique"
        );
        let (prev_irt, prev_off) = last.get(&dest).copied().unwrap_or((0, 0));
        assert_eq!(irt, prev_irt + 1, "{dest}: replies in request order");
        assert!(
            irt == 1 || off > prev_off,
            "{dest}: offsets of one key increase"
        );
        last.insert(dest, (irt, off));
    }
    // Every record is readable afterwards.
    let r = n.ok("c99", json!({"type": "list_offsets"}));
    let total: u64 = r["offsets"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, CLIENTS as u64 * PER);
}

#[test]
fn pipelined_clients_keep_their_order_with_two_workers() {
    // Every read goes to the workers.
    pipelined("2", "0");
}

#[test]
fn pipelined_clients_keep_their_order_with_five_workers_and_some_reads_inline() {
    // Reads of up to 8 lines are served inline when their shard is idle: both paths interleave.
    pipelined("5", "8");
}

#[test]
fn pipelined_clients_keep_their_order_with_the_defaults() {
    pipelined("2", "1024");
}

#[test]
fn pipelined_clients_keep_their_order_with_no_workers() {
    pipelined("0", "0");
}
