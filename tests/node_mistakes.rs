//! Mistakes change no state (issue 14 §3): consumers never create topics, a multi-partition
//! commit applies all or none, topic names follow Kafka's rule, and any JSON value is a message.

mod node_util;

use node_util::{ints, Node};
use serde_json::{json, Value};

fn refused(r: &Value, code: u64, words: &[&str]) {
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], code, "{r}");
    let text = r["text"].as_str().unwrap();
    for w in words {
        assert!(text.contains(w), "{w:?} not in {text:?}");
    }
}

fn topics(n: &mut Node) -> Vec<String> {
    let r = n.ok("admin", json!({"type": "list_topics"}));
    r["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn consumers_never_create_topics() {
    let mut n = Node::started(&[]);
    n.ok(
        "admin",
        json!({"type": "create_topic", "topic": "t", "partitions": 2}),
    );
    // The group exists (an admin commit), with no live member.
    n.ok(
        "admin",
        json!({"type": "commit", "group": "g", "topic": "t", "partition": 0, "offset": 0}),
    );
    for body in [
        json!({"type": "poll", "group": "g", "consumer": "c", "topic": "nope"}),
        json!({"type": "subscribe", "group": "g", "consumer": "c", "topic": "nope"}),
        json!({"type": "poll", "offsets": {"k": 0}, "topic": "nope"}),
        json!({"type": "list_offsets", "topic": "nope"}),
        json!({"type": "list_committed_offsets", "group": "g", "topic": "nope"}),
        json!({"type": "commit", "group": "g", "topic": "nope", "partition": 0, "offset": 1}),
    ] {
        let r = n.rpc("c", body.clone());
        refused(&r, 20, &["nope"]);
    }
    assert_eq!(topics(&mut n), ["default", "t"]);
    // The failed polls made nobody a member: the group can still be reset.
    let d = n.ok("admin", json!({"type": "describe_group", "group": "g"}));
    assert_eq!(d["members"], json!([]));
    n.ok(
        "admin",
        json!({"type": "reset_offsets", "group": "g", "to": "earliest"}),
    );
    // A producer does create a topic on first use.
    n.ok(
        "p",
        json!({"type": "send", "topic": "made", "key": "k", "msg": 1}),
    );
    assert_eq!(topics(&mut n), ["default", "made", "t"]);
}

#[test]
fn a_multi_partition_commit_applies_all_or_none() {
    let mut n = Node::started(&[]);
    n.ok(
        "admin",
        json!({"type": "create_topic", "topic": "t", "partitions": 4}),
    );
    let sub = |n: &mut Node, c: &str| {
        n.ok(
            c,
            json!({"type": "subscribe", "group": "g", "consumer": c, "topic": "t"}),
        );
    };
    sub(&mut n, "a");
    sub(&mut n, "b");
    let mine = |n: &mut Node, c: &str| {
        let r = n.ok(
            c,
            json!({"type": "heartbeat", "group": "g", "consumer": c, "topic": "t"}),
        );
        ints(&r["partitions"])
    };
    let (pa, pb) = (mine(&mut n, "a"), mine(&mut n, "b"));
    assert_eq!(pa.len() + pb.len(), 4);
    let committed = |n: &mut Node| {
        n.ok(
            "admin",
            json!({"type": "list_committed_offsets", "group": "g", "topic": "t"}),
        )["offsets"]
            .clone()
    };
    // One of b's partitions among a's: fenced, and none of a's own is committed.
    let mut offsets = serde_json::Map::new();
    for p in &pa {
        offsets.insert(p.to_string(), json!(5));
    }
    offsets.insert(pb[0].to_string(), json!(7));
    let r = n.rpc(
        "a",
        json!({"type": "commit", "group": "g", "consumer": "a", "topic": "t", "offsets": offsets}),
    );
    refused(&r, 22, &["fenced"]);
    assert_eq!(committed(&mut n), json!({}));
    // A partition that does not exist among them: 20, none committed.
    let mut offsets = serde_json::Map::new();
    offsets.insert(pa[0].to_string(), json!(5));
    offsets.insert("9".into(), json!(5));
    let r = n.rpc(
        "a",
        json!({"type": "commit", "group": "g", "consumer": "a", "topic": "t", "offsets": offsets}),
    );
    refused(&r, 20, &["9"]);
    let r = n.rpc(
        "admin",
        json!({"type": "commit", "group": "g", "topic": "t", "offsets": {"0": 1, "4": 1}}),
    );
    refused(&r, 20, &["4"]);
    assert_eq!(committed(&mut n), json!({}));
    // All of a's own: all committed.
    let mut offsets = serde_json::Map::new();
    for p in &pa {
        offsets.insert(p.to_string(), json!(5));
    }
    n.ok(
        "a",
        json!({"type": "commit", "group": "g", "consumer": "a", "topic": "t", "offsets": offsets.clone()}),
    );
    assert_eq!(committed(&mut n), Value::Object(offsets));
}

#[test]
fn topic_names_follow_kafkas_rule() {
    let mut n = Node::started(&[]);
    let long = "x".repeat(250);
    for bad in ["", ".", "..", "a b", "a/b", "ü", long.as_str()] {
        let r = n.rpc(
            "admin",
            json!({"type": "create_topic", "topic": bad, "partitions": 1}),
        );
        refused(&r, 12, &["field `topic` must be a topic name"]);
        let r = n.rpc(
            "p",
            json!({"type": "send", "topic": bad, "key": "k", "msg": 1}),
        );
        refused(&r, 12, &["topic name"]);
        let r = n.rpc(
            "c",
            json!({"type": "subscribe", "group": "g", "consumer": "c", "topic": bad}),
        );
        refused(&r, 12, &["topic name"]);
    }
    assert_eq!(topics(&mut n), ["default"]);
    let ok = "Orders.v2_eu-1";
    n.ok(
        "admin",
        json!({"type": "create_topic", "topic": ok, "partitions": 1}),
    );
    n.ok(
        "admin",
        json!({"type": "create_topic", "topic": "y".repeat(249), "partitions": 1}),
    );
    assert_eq!(topics(&mut n).len(), 3);
}

#[test]
fn any_json_value_is_a_message_null_included() {
    let mut n = Node::started(&[]);
    let o = n.ok("p", json!({"type": "send", "key": "k", "msg": null}))["offset"]
        .as_u64()
        .unwrap();
    n.ok(
        "p",
        json!({"type": "send", "key": "k", "msg": {"a": [null, false]}}),
    );
    let r = n.ok("c", json!({"type": "poll", "offsets": {"k": 0}}));
    assert_eq!(r["msgs"]["k"][0], json!([o, null]));
    assert_eq!(r["msgs"]["k"][1][1], json!({"a": [null, false]}));
    let r = n.ok(
        "p",
        json!({"type": "send_batch", "msgs": [{"key": "j", "msg": null}]}),
    );
    assert_eq!(r["offsets"].as_array().unwrap().len(), 1);
    let r = n.ok(
        "c",
        json!({"type": "poll", "group": "g", "consumer": "c", "max_messages": 10}),
    );
    let msgs = r["msgs"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs.iter().filter(|m| m["msg"].is_null()).count(), 2);
    let r = n.ok("c", json!({"type": "echo", "echo": null}));
    assert_eq!(r.get("echo"), Some(&Value::Null));
    // A missing message is still refused.
    let r = n.rpc("p", json!({"type": "send", "key": "k"}));
    refused(&r, 12, &["missing field `msg`"]);
}
