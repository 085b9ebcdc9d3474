//! Forged and hostile node-to-node traffic (issue 15 §1), through the in-process cluster harness.
//!
//! - A reply is accepted only from the peer its request went to: arbitrary bodies from arbitrary
//!   other senders, carrying the `in_reply_to` of live pending requests (a `sync` and a `fwd`),
//!   change nothing, get no answer, and leave the requests pending for their true replies.
//! - Every number in node-to-node messages is bounded before it sizes or indexes anything: a peer's
//!   `sync`, `sync_ok`, `fwd` and `topic_meta_ok` with huge partition numbers, counts and offsets
//!   neither panic nor abort the node.
//!
//! A panic inside `Node::handle` is caught there (the node goes on), so a panic hook counts them:
//! every property also asserts that none happened.

mod cluster_util;

use cluster_util::{key_led_by, leader_of, Net};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

/// Panics seen by the hook (any thread of this test binary).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// What a node holds: per topic, its partition count and each partition's log end; its groups.
fn state(net: &Net) -> Vec<(usize, String, u32, Vec<u64>)> {
    let mut s = Vec::new();
    for (i, n) in net.nodes.iter().enumerate() {
        for t in n.broker().topics().list() {
            let ends = t.partitions().iter().map(|p| p.end()).collect();
            s.push((i, t.name().to_string(), t.partition_count(), ends));
        }
        s.push((
            i,
            format!("groups {:?}", n.broker().groups().list_groups()),
            0,
            vec![],
        ));
    }
    s
}

/// A 2-node cluster with requests of its nodes' own in flight, held (not delivered):
/// - n1's `sync` to n0 (n1 leads a partition that has a record), and n0's to n1;
/// - n0's `fwd` to n1 of client `c7`'s send of a key n1 leads.
struct Setup {
    net: Net,
    held: Vec<(usize, String)>,
    /// (node that waits, the peer it waits on, msg_id) of each held request.
    live: Vec<(usize, usize, u64)>,
    /// The client request that waits on the `fwd`.
    client: u64,
    key: String,
    p: u32,
}

fn setup() -> Setup {
    let mut net = Net::new(2);
    let key = key_led_by(&net, 1);
    let (_, p) = leader_of(&net, &key);
    let r = net.call(1, json!({"type": "send", "key": key, "msg": 1}));
    assert_eq!(r["offset"], 0);
    net.tick_held(100);
    let client = net.send(0, "c7", json!({"type": "send", "key": key, "msg": 2}));
    let held: Vec<(usize, String)> = net.queue.drain(..).collect();
    let mut live = Vec::new();
    for (to, line) in &held {
        let v: Value = serde_json::from_str(line).unwrap();
        let from = cluster_util::node_index(v["src"].as_str().unwrap()).unwrap();
        live.push((from, *to, v["body"]["msg_id"].as_u64().unwrap()));
    }
    let types: Vec<String> = held
        .iter()
        .map(|(_, l)| serde_json::from_str::<Value>(l).unwrap()["body"]["type"].to_string())
        .collect();
    assert!(types.contains(&"\"sync\"".to_string()), "{types:?}");
    assert!(types.contains(&"\"fwd\"".to_string()), "{types:?}");
    Setup {
        net,
        held,
        live,
        client,
        key,
        p,
    }
}

impl Setup {
    /// Delivers the held requests and their true replies, then shows the cluster is whole: the
    /// client's forwarded send is answered at the next offset, and n0 holds both records after
    /// the sync.
    fn finish(mut self) {
        for m in self.held.drain(..) {
            self.net.queue.push_back(m);
        }
        self.net.run();
        let r = self
            .net
            .reply(self.client)
            .expect("the forwarded send is answered");
        assert_eq!(
            (r["type"].as_str(), r["offset"].as_u64()),
            (Some("send_ok"), Some(1)),
            "{r}"
        );
        self.net.tick(1_000);
        assert_eq!((self.net.held(0, self.p), self.net.held(1, self.p)), (2, 2));
        let r = self
            .net
            .call(0, json!({"type": "poll", "offsets": {self.key.clone(): 0}}));
        assert_eq!(r["msgs"], json!({self.key.clone(): [[0, 1], [1, 2]]}));
    }
}

/// A number as hostile input has them: small, at a type's edge, or huge.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..8).prop_map(Value::from),
        Just(json!(u64::from(u32::MAX))),
        Just(json!(u64::from(u32::MAX) + 1)),
        Just(json!(1_000_000_000_000u64)),
        Just(json!(u64::MAX)),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(json!(1.5)),
    ]
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("default".to_string()),
        Just("t".to_string()),
        Just("k".to_string()),
        "[a-z0-9]{0,6}",
    ]
}

/// Any JSON value, with the shapes of node-to-node payloads made likely: `[topic, n, n, …]`.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        number(),
        word().prop_map(Value::from),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            (word(), number(), number(), number()).prop_map(|(t, a, b, c)| json!([[
                t,
                a,
                b,
                c,
                [[1, "k", 1]]
            ]])),
            (word(), number(), number()).prop_map(|(t, a, b)| json!([[t, a, b]])),
            prop::collection::btree_map(word(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body: a type a node answers or sends, and some of the fields node-to-node messages carry.
fn body() -> impl Strategy<Value = Value> {
    let ty = prop_oneof![
        Just("sync_ok"),
        Just("fwd_ok"),
        Just("topic_meta_ok"),
        Just("send_batch_ok"),
        Just("list_offsets_ok"),
        Just("error"),
        Just("sync"),
        Just("fwd"),
        Just("topic_meta"),
        Just("send"),
    ];
    let fields = prop::collection::btree_map(
        prop_oneof![
            Just("msgs"),
            Just("seq"),
            Just("records"),
            Just("commits"),
            Just("version"),
            Just("topics"),
            Just("ends"),
            Just("offsets"),
            Just("offset"),
            Just("partitions"),
            Just("keys"),
            Just("code"),
            Just("text"),
            Just("topic"),
            Just("groups"),
        ],
        value(),
        0..6,
    );
    (ty, fields).prop_map(|(ty, fields)| {
        let mut b = json!({"type": ty});
        for (k, v) in fields {
            b[k] = v;
        }
        b
    })
}

/// A sender that is not the given peer.
fn src_other_than(peer: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..20).prop_map(|c| format!("c{c}")),
        (0u32..4).prop_map(|n| format!("n{n}")),
        "[a-z0-9]{0,4}",
    ]
    .prop_filter("not the peer the request went to", move |s| {
        *s != format!("n{peer}")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn forged_replies_to_live_requests_change_nothing(
        forged in prop::collection::vec((0usize..3, body(), src_other_than(0), src_other_than(1)), 1..12),
    ) {
        count_panics();
        let panics = PANICS.load(Ordering::SeqCst);
        let s = setup();
        let before = state(&s.net);
        for (pick, mut b, src0, src1) in forged {
            let (node, peer, id) = s.live[pick % s.live.len()];
            let src = if peer == 0 { src0 } else { src1 };
            b["in_reply_to"] = json!(id);
            let line = json!({"src": src, "dest": format!("n{node}"), "body": b}).to_string();
            let mut out = Vec::new();
            s.net.nodes[node].handle(line.as_bytes(), &mut out);
            prop_assert!(out.is_empty(), "a reply is never answered: {}", String::from_utf8_lossy(&out));
        }
        prop_assert_eq!(PANICS.load(Ordering::SeqCst), panics, "no request panicked");
        prop_assert_eq!(state(&s.net), before);
        s.finish();
    }

    #[test]
    fn hostile_numbers_from_the_true_peer_are_bounded(
        replies in prop::collection::vec((0usize..3, body()), 1..8),
        requests in prop::collection::vec(body(), 0..8),
    ) {
        count_panics();
        let panics = PANICS.load(Ordering::SeqCst);
        let mut s = setup();
        // Replies with the live requests' numbers, from the peers they went to.
        for (pick, mut b) in replies {
            let (node, peer, id) = s.live[pick % s.live.len()];
            b["in_reply_to"] = json!(id);
            let line = json!({"src": format!("n{peer}"), "dest": format!("n{node}"), "body": b}).to_string();
            let mut out = Vec::new();
            s.net.nodes[node].handle(line.as_bytes(), &mut out);
        }
        // Requests from a peer (`sync`, `fwd`, `topic_meta` …) with arbitrary numbers.
        for (i, mut b) in requests.into_iter().enumerate() {
            b["msg_id"] = json!(1000 + i);
            let line = json!({"src": "n1", "dest": "n0", "body": b}).to_string();
            s.net.feed(0, &line);
        }
        s.net.queue.clear();
        prop_assert_eq!(PANICS.load(Ordering::SeqCst), panics, "no request panicked");
        for n in &s.net.nodes {
            for t in n.broker().topics().list() {
                prop_assert!((1..=65_536).contains(&t.partition_count()));
            }
            prop_assert_eq!(n.broker().default_topic().partition_count(), 4);
        }
        // Both nodes still serve clients.
        for i in 0..2 {
            let r = s.net.call(i, json!({"type": "list_topics"}));
            prop_assert_eq!(&r["type"], "list_topics_ok");
        }
    }
}

/// The review's reproduction: a client's `sync_ok` carrying a live `sync`'s number and a
/// partition of 10^12 (the node used to grow a vector by it and abort).
#[test]
fn a_clients_sync_ok_with_a_huge_partition_is_dropped() {
    count_panics();
    let panics = PANICS.load(Ordering::SeqCst);
    let mut s = setup();
    let before = state(&s.net);
    let (node, _, id) = *s
        .live
        .iter()
        .find(|(n, _, _)| *n == 1)
        .expect("n1's sync is pending");
    let line = json!({"src": "c3", "dest": format!("n{node}"), "body": {
        "type": "sync_ok", "in_reply_to": id, "ends": [["default", 1_000_000_000_000u64, 5]]}})
    .to_string();
    let mut out = Vec::new();
    s.net.nodes[node].handle(line.as_bytes(), &mut out);
    assert!(out.is_empty());
    // The same from the true peer is bounded too: no such partition, nothing grows.
    let line = json!({"src": "n0", "dest": "n1", "body": {
        "type": "sync_ok", "in_reply_to": id, "ends": [["default", 1_000_000_000_000u64, 5]]}})
    .to_string();
    s.net.nodes[1].handle(line.as_bytes(), &mut out);
    assert_eq!(PANICS.load(Ordering::SeqCst), panics);
    assert_eq!(state(&s.net), before);
    // n1's sync was answered (by the peer, uselessly): the next tick resends it.
    s.held
        .retain(|(to, l)| !(*to == 0 && l.contains("\"sync\"") && l.contains("\"src\":\"n1\"")));
    s.net.tick(400);
    s.finish();
}

/// Node-to-node requests from a client are refused (10) and change nothing.
#[test]
fn node_to_node_requests_from_a_client_are_not_supported() {
    let mut s = setup();
    let before = state(&s.net);
    for body in [
        json!({"type": "sync", "records": [["default", 4, 0, 0, [[1, "k", 9]]]], "commits": {"k": 9}, "version": 1}),
        json!({"type": "fwd", "seq": 0, "msgs": [["c1", {"type": "send", "key": "k", "msg": 1}]]}),
        json!({"type": "topic_meta", "topic": "x"}),
    ] {
        let r = s.net.call_as(0, "c9", body);
        assert_eq!(r["code"], 10, "{r}");
    }
    let r = s
        .net
        .call(0, json!({"type": "list_committed_offsets", "keys": ["k"]}));
    assert_eq!(r["offsets"], json!({}));
    assert_eq!(state(&s.net), before);
    s.finish();
}
