//! Fields take effect or are refused (issue 14 §2), and alike things behave alike (§4): through
//! the binary.

mod node_util;

use node_util::{ints, Node};
use serde_json::{json, Value};

/// Asserts `r` is error `code` and its text holds every one of `words`.
fn refused(r: &Value, code: u64, words: &[&str]) {
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], code, "{r}");
    let text = r["text"].as_str().unwrap();
    for w in words {
        assert!(text.contains(w), "{w:?} not in {text:?}");
    }
}

#[test]
fn partitions_are_topic_qualified_once_a_group_has_two_topics() {
    let mut n = Node::started(&[]);
    n.ok(
        "a",
        json!({"type": "create_topic", "topic": "a", "partitions": 3}),
    );
    n.ok(
        "a",
        json!({"type": "create_topic", "topic": "b", "partitions": 2}),
    );
    let sub = |n: &mut Node, group: &str, topic: &str| {
        n.ok(
            "c",
            json!({"type": "subscribe", "group": group, "consumer": "c", "topic": topic}),
        )
    };
    // One topic: bare numbers everywhere, as before.
    assert_eq!(ints(&sub(&mut n, "g", "a")["partitions"]), [0, 1, 2]);
    let hb = n.ok(
        "c",
        json!({"type": "heartbeat", "group": "g", "consumer": "c"}),
    );
    assert_eq!(ints(&hb["partitions"]), [0, 1, 2]);
    // A second topic: subscribe_ok stays about its own topic ...
    assert_eq!(ints(&sub(&mut n, "g", "b")["partitions"]), [0, 1]);
    // ... heartbeat and poll without `topic` name the topic of each partition ...
    let want = json!([
        {"topic": "a", "partition": 0}, {"topic": "a", "partition": 1}, {"topic": "a", "partition": 2},
        {"topic": "b", "partition": 0}, {"topic": "b", "partition": 1}
    ]);
    let hb = n.ok(
        "c",
        json!({"type": "heartbeat", "group": "g", "consumer": "c"}),
    );
    assert_eq!(hb["partitions"], want);
    let p = n.ok("c", json!({"type": "poll", "group": "g", "consumer": "c"}));
    assert_eq!(p["partitions"], want);
    // ... and with `topic`, the numbers of that topic.
    let hb = n.ok(
        "c",
        json!({"type": "heartbeat", "group": "g", "consumer": "c", "topic": "b"}),
    );
    assert_eq!(ints(&hb["partitions"]), [0, 1]);
    // Another group of one topic is unchanged.
    sub(&mut n, "h", "b");
    let hb = n.ok(
        "c",
        json!({"type": "heartbeat", "group": "h", "consumer": "c"}),
    );
    assert_eq!(ints(&hb["partitions"]), [0, 1]);
}

#[test]
fn maelstrom_poll_and_commits_honour_topic() {
    let mut n = Node::started(&[]);
    let o = n.ok(
        "p",
        json!({"type": "send", "topic": "T", "key": "k", "msg": 7}),
    )["offset"]
        .as_u64()
        .unwrap();
    let r = n.ok(
        "c",
        json!({"type": "poll", "offsets": {"k": 0}, "topic": "T"}),
    );
    assert_eq!(r["msgs"], json!({"k": [[o, 7]]}));
    // The default topic holds nothing of key k.
    let r = n.ok("c", json!({"type": "poll", "offsets": {"k": 0}}));
    assert_eq!(r["msgs"], json!({}));
    // Commits are kept per topic.
    n.ok(
        "c",
        json!({"type": "commit_offsets", "offsets": {"k": 5}, "topic": "T"}),
    );
    n.ok("c", json!({"type": "commit_offsets", "offsets": {"k": 2}}));
    let r = n.ok(
        "c",
        json!({"type": "list_committed_offsets", "keys": ["k"], "topic": "T"}),
    );
    assert_eq!(r["offsets"], json!({"k": 5}));
    let r = n.ok(
        "c",
        json!({"type": "list_committed_offsets", "keys": ["k"]}),
    );
    assert_eq!(r["offsets"], json!({"k": 2}));
    // Naming the default topic is the same as naming none; a default-topic key that looks like
    // an encoded one does not meet topic T's.
    let r = n.ok(
        "c",
        json!({"type": "list_committed_offsets", "keys": ["k"], "topic": "default"}),
    );
    assert_eq!(r["offsets"], json!({"k": 2}));
    let r = n.ok(
        "c",
        json!({"type": "list_committed_offsets", "keys": ["\u{0}T\u{0}k"]}),
    );
    assert_eq!(r["offsets"], json!({}));
    // A consumer's read of a topic that does not exist is 20, and creates nothing.
    let r = n.rpc(
        "c",
        json!({"type": "poll", "offsets": {"k": 0}, "topic": "nope"}),
    );
    refused(&r, 20, &["nope"]);
    let r = n.rpc(
        "c",
        json!({"type": "commit_offsets", "offsets": {"k": 1}, "topic": "nope"}),
    );
    refused(&r, 20, &["nope"]);
    let t = n.ok("c", json!({"type": "list_topics"}));
    assert!(!t.to_string().contains("nope"), "{t}");
}

#[test]
fn fields_a_request_does_not_read_are_refused_with_a_hint() {
    let mut n = Node::started(&[]);
    n.ok("p", json!({"type": "send", "key": "k", "msg": 1}));
    // commit_offsets with a group: Maelstrom's per-key commit has none.
    let r = n.rpc(
        "c",
        json!({"type": "commit_offsets", "group": "g", "offsets": {"k": 0}}),
    );
    refused(&r, 12, &["commit_offsets", "`group`", "commit {group"]);
    let r = n.ok(
        "c",
        json!({"type": "list_committed_offsets", "keys": ["k"]}),
    );
    assert_eq!(r["offsets"], json!({}), "nothing was committed");
    // A poll with a group and offsets: one or the other.
    let r = n.rpc(
        "c",
        json!({"type": "poll", "group": "g", "offsets": {"k": 0}}),
    );
    refused(&r, 12, &["not both", "offsets"]);
    let r = n.rpc("c", json!({"type": "describe_group", "group": "g"}));
    refused(&r, 20, &["g"]);
    // list_committed_offsets with a group and keys.
    let r = n.rpc(
        "c",
        json!({"type": "list_committed_offsets", "group": "g", "keys": ["k"]}),
    );
    refused(&r, 12, &["not both"]);
    // unsubscribe from one topic is not a thing: refused, and the member stays.
    n.ok(
        "c",
        json!({"type": "subscribe", "group": "g", "consumer": "c"}),
    );
    let r = n.rpc(
        "c",
        json!({"type": "unsubscribe", "group": "g", "consumer": "c", "topic": "default"}),
    );
    refused(&r, 12, &["unsubscribe", "all its topics"]);
    let d = n.ok("c", json!({"type": "describe_group", "group": "g"}));
    assert_eq!(d["members"][0]["consumer"], "c");
    // A commit with both forms.
    let r = n.rpc(
        "c",
        json!({"type": "commit", "group": "g", "partition": 0, "offset": 1, "offsets": {"1": 1}}),
    );
    refused(&r, 12, &["either", "not both"]);
    // A misspelled field is refused, with the field it likely meant.
    let r = n.rpc(
        "p",
        json!({"type": "send", "key": "k", "msg": 2, "topik": "x"}),
    );
    refused(&r, 12, &["unknown field `topik`", "`send` takes"]);
    let r = n.rpc("c", json!({"type": "poll", "group.id": "g"}));
    refused(&r, 12, &["`group.id`", "did you mean `group`"]);
    let r = n.rpc(
        "c",
        json!({"type": "subscribe", "group": "g", "consumer": "c", "topics": ["a"]}),
    );
    refused(&r, 12, &["one topic"]);
    // Nothing was appended by the refused send.
    let ends = n.ok("c", json!({"type": "list_offsets"}));
    let total: u64 = ends["offsets"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 1);
}

#[test]
fn kafka_style_spellings_are_aliases() {
    let mut n = Node::started(&[]);
    n.ok("p", json!({"type": "send", "key": "k", "msg": 1}));
    let r = n.ok(
        "c",
        json!({"type": "poll", "groupId": "G", "memberId": "m", "maxMessages": 5}),
    );
    assert_eq!(r["msgs"].as_array().unwrap().len(), 1);
    let d = n.ok("c", json!({"type": "describe_group", "groupId": "G"}));
    assert_eq!(d["members"][0]["consumer"], "m");
    n.ok(
        "c",
        json!({"type": "subscribe", "groupId": "H", "consumerId": "x", "sessionTimeoutMs": 5000, "autoCommit": false}),
    );
}

#[test]
fn alike_things_behave_alike() {
    let mut n = Node::started(&[]);
    // Numbers out of range are refused in one wording: "field `x` must be …".
    let r = n.rpc(
        "c",
        json!({"type": "poll", "group": "g", "consumer": "c", "max_messages": 0}),
    );
    refused(&r, 12, &["field `max_messages` must be a positive integer"]);
    let r = n.rpc(
        "c",
        json!({"type": "subscribe", "group": "g", "consumer": "c", "session_timeout_ms": 0}),
    );
    refused(
        &r,
        12,
        &["field `session_timeout_ms` must be a positive integer"],
    );
    let r = n.rpc(
        "c",
        json!({"type": "create_topic", "topic": "t", "partitions": 0}),
    );
    refused(&r, 12, &["field `partitions` must be"]);
    // Neither refused request made a group.
    let r = n.ok("c", json!({"type": "list_groups"}));
    assert_eq!(r["groups"], json!([]));
    // Large max_messages are clamped, not refused.
    n.ok(
        "c",
        json!({"type": "poll", "group": "g", "consumer": "c", "max_messages": 1_000_000}),
    );
    // Assignor names in any case; `sticky` is refused with a pointer to cooperative-sticky.
    n.ok(
        "c",
        json!({"type": "subscribe", "group": "r", "consumer": "c", "assignor": "RANGE"}),
    );
    let d = n.ok("c", json!({"type": "describe_group", "group": "r"}));
    assert_eq!(d["assignor"], "range");
    let r = n.rpc(
        "c",
        json!({"type": "subscribe", "group": "s", "consumer": "c", "assignor": "sticky"}),
    );
    refused(&r, 12, &["cooperative-sticky"]);
    // What is committed for a group nobody knows is nothing; describing it is 20 (README:
    // "Semantics and choices" says why they differ).
    let r = n.ok(
        "c",
        json!({"type": "list_committed_offsets", "group": "nogroup"}),
    );
    assert_eq!(r["offsets"], json!({}));
    let r = n.rpc("c", json!({"type": "describe_group", "group": "nogroup"}));
    refused(&r, 20, &["nogroup"]);
}
