//! The cluster (issue 5), driven in-process through the harness in `cluster_util`.

mod cluster_util;

use cluster_util::{
    coordinator, group_on, key_led_by, leader_of, topic_homed, Net, GIVE_UP_MS, RETRY_MS,
};
use serde_json::{json, Value};

#[test]
fn every_node_places_partitions_and_groups_as_the_readme_says() {
    let mut net = Net::new(3);
    // A keyed send through any node is appended at its partition's leader alone.
    for (i, key) in ["a", "b", "k7"].into_iter().enumerate() {
        let (l, p) = leader_of(&net, key);
        let before: Vec<u64> = (0..3).map(|n| net.held(n, p)).collect();
        let r = net.call(i, json!({"type": "send", "key": key, "msg": 1}));
        assert_eq!(r["type"], "send_ok", "{r}");
        for (n, b) in before.into_iter().enumerate() {
            let want = b + u64::from(n == l);
            assert_eq!(
                net.held(n, p),
                want,
                "key {key} sent through n{i}, node n{n}"
            );
        }
    }
    // A group lives at its coordinator alone, whichever node a subscribe came through.
    for (i, g) in ["a", "b", "g7"].into_iter().enumerate() {
        let r = net.call(i, json!({"type": "subscribe", "group": g, "consumer": "x"}));
        assert_eq!(r["type"], "subscribe_ok", "{r}");
        let c = coordinator(3, g);
        for n in 0..3 {
            let known = net.nodes[n].broker().groups().group_epoch(g).is_some();
            assert_eq!(known, n == c, "group {g} through n{i}, node n{n}");
        }
    }
}

#[test]
fn a_send_is_appended_once_at_its_leader_and_replicated() {
    let mut net = Net::new(3);
    let key = key_led_by(&net, 2);
    let (_, p) = leader_of(&net, &key);
    // Sent through n0: forwarded to n2, which alone appends.
    let r = net.call(0, json!({"type": "send", "key": key, "msg": 1}));
    // Exactly Maelstrom's fields: the closed schema holds for forwarded replies too.
    let mut fields: Vec<&str> = r.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["in_reply_to", "msg_id", "offset", "type"]);
    assert_eq!(
        (r["type"].as_str(), r["offset"].as_u64()),
        (Some("send_ok"), Some(0))
    );
    let r = net.call(1, json!({"type": "send", "key": key, "msg": 2}));
    assert_eq!(r["offset"], 1);
    assert_eq!((net.held(0, p), net.held(1, p), net.held(2, p)), (0, 0, 2));
    // Sent at the leader itself: no server message at all.
    let before = net.server_msgs;
    net.call(2, json!({"type": "send", "key": key, "msg": 3}));
    assert_eq!(net.server_msgs, before);
    // The leader's timer replicates to both peers, which then serve polls from their copy.
    net.tick(100);
    assert_eq!((net.held(0, p), net.held(1, p), net.held(2, p)), (3, 3, 3));
    for i in 0..3 {
        let r = net.call(i, json!({"type": "poll", "offsets": {key.clone(): 1}}));
        assert_eq!(
            r["msgs"],
            json!({key.clone(): [[1, 2], [2, 3]]}),
            "node {i}"
        );
    }
}

#[test]
fn polls_over_keys_of_several_leaders_merge_on_any_node() {
    let mut net = Net::new(3);
    let keys: Vec<String> = (0..3).map(|n| key_led_by(&net, n)).collect();
    for (i, k) in keys.iter().enumerate() {
        for v in 0..3 {
            net.call((i + 1) % 3, json!({"type": "send", "key": k, "msg": v}));
        }
    }
    net.tick(100);
    let offsets: serde_json::Map<String, Value> =
        keys.iter().map(|k| (k.clone(), json!(0))).collect();
    let want: serde_json::Map<String, Value> = keys
        .iter()
        .map(|k| (k.clone(), json!([[0, 0], [1, 1], [2, 2]])))
        .collect();
    for i in 0..3 {
        let r = net.call(i, json!({"type": "poll", "offsets": offsets}));
        assert_eq!(r["msgs"], Value::Object(want.clone()), "node {i}");
    }
}

#[test]
fn a_replica_serves_a_prefix_while_cut_off_and_catches_up_after_heal() {
    let mut net = Net::new(2);
    let key = key_led_by(&net, 1);
    net.call(1, json!({"type": "send", "key": key, "msg": 1}));
    net.tick(100);
    net.isolate(0);
    net.call(1, json!({"type": "send", "key": key, "msg": 2}));
    net.tick(200);
    let r = net.call(0, json!({"type": "poll", "offsets": {key.clone(): 0}}));
    assert_eq!(r["msgs"], json!({key.clone(): [[0, 1]]}));
    net.heal();
    // The lost sync is resent from the acknowledged position.
    net.tick(600);
    let r = net.call(0, json!({"type": "poll", "offsets": {key.clone(): 0}}));
    assert_eq!(r["msgs"], json!({key.clone(): [[0, 1], [1, 2]]}));
}

#[test]
fn kafka_commits_are_max_merged_and_gossiped() {
    let mut net = Net::new(3);
    let r = net.call(
        0,
        json!({"type": "commit_offsets", "offsets": {"a": 5, "b": 2}}),
    );
    assert_eq!(r["type"], "commit_offsets_ok");
    net.call(1, json!({"type": "commit_offsets", "offsets": {"a": 3}}));
    net.tick(100);
    for i in 0..3 {
        let r = net.call(
            i,
            json!({"type": "list_committed_offsets", "keys": ["a", "b", "z"]}),
        );
        assert_eq!(r["offsets"], json!({"a": 5, "b": 2}), "node {i}");
    }
}

#[test]
fn group_requests_go_to_the_coordinator_from_any_node() {
    let mut net = Net::new(3);
    let g = group_on(&net, 2);
    let r = net.call(
        0,
        json!({"type": "create_topic", "topic": "t", "partitions": 2}),
    );
    assert_eq!(r["type"], "create_topic_ok");
    for n in &net.nodes {
        assert_eq!(n.broker().topics().get("t").unwrap().partition_count(), 2);
    }
    let r = net.call_as(
        0,
        "c5",
        json!({"type": "subscribe", "group": g, "topic": "t"}),
    );
    assert_eq!(r["type"], "subscribe_ok", "{r}");
    assert_eq!(r["partitions"], json!([0, 1]));
    // Only the coordinator knows the group; the consumer id defaulted to the client's src.
    assert!(net.nodes[2].broker().groups().group_epoch(&g).is_some());
    assert!(net.nodes[0].broker().groups().group_epoch(&g).is_none());
    for k in 0..6 {
        let r = net.call(
            1,
            json!({"type": "send", "topic": "t", "key": format!("k{k}"), "msg": k}),
        );
        assert_eq!(r["type"], "send_ok");
    }
    net.tick(100);
    let r = net.call(
        1,
        json!({"type": "poll", "group": g, "consumer": "c5", "max_messages": 100}),
    );
    assert_eq!(r["msgs"].as_array().unwrap().len(), 6, "{r}");
    // A forwarded commit, then a fenced one from a consumer that owns nothing.
    let r = net.call(0, json!({"type": "commit", "group": g, "consumer": "c5", "topic": "t", "partition": 0, "offset": 1}));
    assert_eq!(r["type"], "commit_ok", "{r}");
    let r = net.call(0, json!({"type": "commit", "group": g, "consumer": "other", "topic": "t", "partition": 0, "offset": 2}));
    assert_eq!(
        (r["type"].as_str(), r["code"].as_u64()),
        (Some("error"), Some(22))
    );
    let r = net.call(
        1,
        json!({"type": "list_committed_offsets", "group": g, "topic": "t"}),
    );
    assert_eq!(r["offsets"], json!({"0": 1}), "{r}");
    let d = net.call(0, json!({"type": "describe_group", "group": g}));
    assert_eq!(d["members"][0]["consumer"], "c5", "{d}");
    // list_groups fans out and merges.
    let g2 = group_on(&net, 0);
    net.call(
        1,
        json!({"type": "subscribe", "group": g2, "consumer": "x"}),
    );
    let r = net.call(1, json!({"type": "list_groups"}));
    let mut want = vec![g.clone(), g2.clone()];
    want.sort();
    assert_eq!(r["groups"], json!(want), "{r}");
}

#[test]
fn a_retried_forward_is_applied_once() {
    let mut net = Net::new(2);
    let key = key_led_by(&net, 1);
    let (_, p) = leader_of(&net, &key);
    // The answer from the leader is lost; the origin retries; the leader answers from its table.
    net.cut.insert((1, 0));
    let id = net.send(0, "c1", json!({"type": "send", "key": key, "msg": 7}));
    net.run();
    assert!(net.reply(id).is_none());
    assert_eq!(net.held(1, p), 1);
    net.heal();
    net.tick(super_retry());
    let r = net.reply(id).expect("answered after the retry").clone();
    assert_eq!(r["type"], "send_ok");
    assert_eq!(r["offset"], 0);
    assert_eq!(net.held(1, p), 1, "the retry did not append again");
    // Later sends go on normally.
    let r = net.call(0, json!({"type": "send", "key": key, "msg": 8}));
    assert_eq!(r["offset"], 1);
}

fn super_retry() -> u64 {
    RETRY_MS + 50
}

#[test]
fn give_up_says_11_only_when_the_operation_certainly_did_not_happen() {
    let mut net = Net::new(2);
    let key = key_led_by(&net, 1);
    let g = group_on(&net, 1);
    net.isolate(0);
    // Transmitted (then lost): may have happened → 13.
    let sent = net.send(0, "c1", json!({"type": "send", "key": key, "msg": 1}));
    // Queued behind the batch in flight, never transmitted → 11.
    let queued = net.send(0, "c2", json!({"type": "send", "key": key, "msg": 2}));
    net.run();
    net.tick(super_retry());
    assert!(net.reply(sent).is_none() && net.reply(queued).is_none());
    let give_up = GIVE_UP_MS + 100;
    net.tick(give_up);
    assert_eq!(net.reply(sent).unwrap()["code"], 13);
    assert_eq!(net.reply(queued).unwrap()["code"], 11);
    // A read that was transmitted: it changed nothing → 11. A group poll moves positions → 13.
    let read = net.send(0, "c3", json!({"type": "describe_group", "group": g}));
    net.run();
    net.tick(2 * give_up);
    let poll = net.send(0, "c4", json!({"type": "poll", "group": g}));
    net.run();
    net.tick(4 * give_up);
    assert_eq!(net.reply(read).unwrap()["code"], 11);
    assert_eq!(net.reply(poll).unwrap()["code"], 13);
    // The kafka workload's commits and polls never need another node.
    let r = net.call(
        0,
        json!({"type": "commit_offsets", "offsets": {key.clone(): 0}}),
    );
    assert_eq!(r["type"], "commit_offsets_ok");
    let r = net.call(0, json!({"type": "poll", "offsets": {key.clone(): 0}}));
    assert_eq!(r["type"], "poll_ok");
    // Nothing was appended twice or by the unreachable origin.
    assert_eq!(net.held(0, leader_of(&net, &key).1), 0);
}

#[test]
fn forwards_to_one_peer_are_coalesced_into_one_batch() {
    let mut net = Net::new(2);
    let key = key_led_by(&net, 1);
    let before = net.server_msgs;
    // Three clients' sends arrive before the first batch is answered.
    let ids: Vec<u64> = (0..3)
        .map(|c| {
            net.send(
                0,
                &format!("c{c}"),
                json!({"type": "send", "key": key, "msg": c}),
            )
        })
        .collect();
    net.run();
    let offsets: Vec<u64> = ids
        .iter()
        .map(|&id| net.reply(id).unwrap()["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [0, 1, 2]);
    // First batch: 1 item; second: the 2 that queued meanwhile. Two requests, two answers.
    assert_eq!(net.server_msgs - before, 4);
}

#[test]
fn a_topic_created_while_a_node_was_cut_off_reaches_it_after_heal() {
    let mut net = Net::new(3);
    net.isolate(2);
    let late = topic_homed(&net, 0, "late");
    let id = net.send(
        0,
        "c1",
        json!({"type": "create_topic", "topic": late, "partitions": 3}),
    );
    net.run();
    net.tick(super_retry());
    net.tick(GIVE_UP_MS + 100);
    // Created here and on n1, not on n2: it may have happened, so indefinite.
    assert_eq!(net.reply(id).unwrap()["code"], 13);
    assert!(net.nodes[2].broker().topics().get(&late).is_none());
    net.heal();
    net.tick(2 * GIVE_UP_MS);
    let t = net.nodes[2]
        .broker()
        .topics()
        .get(&late)
        .expect("learned from a sync");
    assert_eq!(t.partition_count(), 3);
    // The topic list stops travelling once every peer has it.
    net.tick(3 * GIVE_UP_MS);
    let before = net.server_msgs;
    net.tick(4 * GIVE_UP_MS);
    assert_eq!(net.server_msgs, before, "an idle cluster sends nothing");
}

#[test]
fn a_node_cut_off_from_a_topics_creation_does_not_invent_its_partition_count() {
    let mut net = Net::new(3);
    let t = topic_homed(&net, 0, "orders");
    net.isolate(2);
    // Created through n1: its home n0 creates it first, then n1 fans it out; n2 misses it.
    let id = net.send(
        1,
        "c1",
        json!({"type": "create_topic", "topic": t, "partitions": 3}),
    );
    net.run();
    net.tick(GIVE_UP_MS + 100);
    assert_eq!(
        net.reply(id).unwrap()["code"],
        13,
        "created, but not everywhere"
    );
    for i in 0..2 {
        assert_eq!(
            net.nodes[i]
                .broker()
                .topics()
                .get(&t)
                .unwrap()
                .partition_count(),
            3
        );
    }
    // Asked to use the topic while still cut off, n2 does not create it with its default
    // partition count (4): it answers 11, nothing happened.
    let r = net.call(2, json!({"type": "send", "topic": t, "key": "k", "msg": 1}));
    assert_eq!(r["code"], 11, "{r}");
    let g = group_on(&net, 2);
    let r = net.call(2, json!({"type": "subscribe", "group": g, "topic": t}));
    assert_eq!(r["code"], 11, "{r}");
    net.tick(GIVE_UP_MS + 200);
    assert!(net.nodes[2].broker().topics().get(&t).is_none());
    // After the heal it learns the home's count, and serves the topic.
    net.heal();
    let mut now = 3 * GIVE_UP_MS;
    let r = loop {
        let r = net.call(2, json!({"type": "send", "topic": t, "key": "k", "msg": 2}));
        if r["type"] == "send_ok" || now > 10 * GIVE_UP_MS {
            break r;
        }
        now += 20;
        net.tick(now);
    };
    assert_eq!(r["type"], "send_ok", "{r}");
    assert_eq!(
        net.nodes[2]
            .broker()
            .topics()
            .get(&t)
            .unwrap()
            .partition_count(),
        3
    );
}

#[test]
fn a_new_topic_is_created_by_its_home_and_learned_by_the_others() {
    let mut net = Net::new(3);
    // Through its home: created at once, with the default count.
    let here = topic_homed(&net, 1, "fresh");
    let r = net.call(
        1,
        json!({"type": "send", "topic": here, "key": "a", "msg": 1}),
    );
    assert!(r["type"] == "send_ok" || r["code"] == 11, "{r}");
    // Through another node: 11 first (nothing happened), then, once the home answered, served.
    let away = topic_homed(&net, 2, "fresh");
    let r = net.call(
        0,
        json!({"type": "send", "topic": away, "key": "a", "msg": 1}),
    );
    assert_eq!(r["code"], 11, "{r}");
    assert!(net.nodes[0].broker().topics().get(&away).is_none());
    net.tick(10);
    assert_eq!(
        net.nodes[0]
            .broker()
            .topics()
            .get(&away)
            .map(|t| t.partition_count()),
        Some(4),
        "learned from its home, with the home's (default) count"
    );
    let mut now = 10;
    let r = loop {
        let r = net.call(
            0,
            json!({"type": "send", "topic": away, "key": "a", "msg": 2}),
        );
        if r["type"] == "send_ok" || now > 5_000 {
            break r;
        }
        now += 60;
        net.tick(now);
    };
    assert_eq!(r["type"], "send_ok", "{r}");
    // Every node ends up with the home's count.
    net.tick(now + 1_000);
    for node in &net.nodes {
        for t in [&here, &away] {
            assert_eq!(
                node.broker().topics().get(t).map(|t| t.partition_count()),
                Some(4)
            );
        }
    }
}

#[test]
fn create_topic_through_any_node_is_decided_by_the_home() {
    let mut net = Net::new(3);
    let t = topic_homed(&net, 2, "made");
    let r = net.call(
        0,
        json!({"type": "create_topic", "topic": t, "partitions": 5}),
    );
    assert_eq!(r["type"], "create_topic_ok", "{r}");
    for node in &net.nodes {
        assert_eq!(node.broker().topics().get(&t).unwrap().partition_count(), 5);
    }
    // Another count, through a third node: the home's refusal (21) comes back.
    let r = net.call(
        1,
        json!({"type": "create_topic", "topic": t, "partitions": 6}),
    );
    assert_eq!(r["code"], 21, "{r}");
    // Bad arguments fail at once, before any peer sees them.
    let before = net.server_msgs;
    let r = net.call(
        1,
        json!({"type": "create_topic", "topic": t, "partitions": 0}),
    );
    assert_eq!(r["code"], 12, "{r}");
    assert_eq!(net.server_msgs, before);
}

#[test]
fn a_send_batch_over_several_leaders_is_split_and_answered_in_order() {
    let mut net = Net::new(3);
    let keys: Vec<String> = [2, 0, 1, 2]
        .iter()
        .enumerate()
        .map(|(i, &leader)| {
            // Distinct keys with the wanted leaders (the first and last share n2).
            (0..1000)
                .map(|j| format!("b{i}-{j}"))
                .find(|k| leader_of(&net, k).0 == leader)
                .unwrap()
        })
        .collect();
    let msgs: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| json!({"key": k, "msg": i}))
        .collect();
    let r = net.call(0, json!({"type": "send_batch", "msgs": msgs}));
    assert_eq!(r["type"], "send_batch_ok", "{r}");
    let offsets = r["offsets"].as_array().unwrap();
    assert_eq!(offsets.len(), 4);
    for (i, k) in keys.iter().enumerate() {
        let (leader, p) = leader_of(&net, k);
        assert_eq!(offsets[i][0], p, "record {i}: its key's partition");
        let o = offsets[i][1].as_u64().unwrap();
        // Appended once, at its leader, at the offset the reply names.
        let part = &net.nodes[leader].broker().default_topic().partitions()[p as usize];
        let mut got = None;
        part.read(o, 1, |r| got = Some((r.offset, r.value.to_vec())));
        let got = got.expect("at the leader");
        assert_eq!(got, (o, i.to_string().into_bytes()), "record {i}");
        for other in (0..3).filter(|&n| n != leader) {
            assert_eq!(
                net.held(other, p),
                0,
                "record {i} only at its leader before a sync"
            );
        }
    }
    // Every record is readable from any node once replicated.
    net.tick(100);
    for (i, k) in keys.iter().enumerate() {
        let r = net.call(1, json!({"type": "poll", "offsets": {k.clone(): 0}}));
        assert_eq!(r["msgs"][k][0][1], json!(i), "record {i}");
    }
}

#[test]
fn a_split_send_batch_with_an_unreachable_part_says_it_may_have_happened() {
    let mut net = Net::new(3);
    let here = key_led_by(&net, 0);
    let away = key_led_by(&net, 2);
    net.isolate(2);
    let id = net.send(
        0,
        "c1",
        json!({"type": "send_batch", "msgs": [{"key": here, "msg": 1}, {"key": away, "msg": 2}]}),
    );
    net.run();
    assert!(net.reply(id).is_none(), "waits for the unreachable part");
    net.tick(GIVE_UP_MS + 100);
    // n0 appended its own record: the batch happened in part, so 13, never 11.
    let r = net.reply(id).unwrap();
    assert_eq!(r["code"], 13, "{r}");
    let (_, p) = leader_of(&net, &here);
    assert_eq!(net.held(0, p), 1);
}

#[test]
fn list_offsets_reads_each_partitions_log_end_at_its_leader() {
    let mut net = Net::new(3);
    // Two records at n1's partition, one at n2's, through their leaders: no sync has run yet,
    // so n0's copies are empty.
    let k1 = key_led_by(&net, 1);
    let k2 = key_led_by(&net, 2);
    net.call(1, json!({"type": "send", "key": k1, "msg": 1}));
    net.call(1, json!({"type": "send", "key": k1, "msg": 2}));
    net.call(2, json!({"type": "send", "key": k2, "msg": 3}));
    let (_, p1) = leader_of(&net, &k1);
    let (_, p2) = leader_of(&net, &k2);
    assert_eq!((net.held(0, p1), net.held(0, p2)), (0, 0));
    let r = net.call(0, json!({"type": "list_offsets"}));
    assert_eq!(r["type"], "list_offsets_ok", "{r}");
    let offsets = r["offsets"].as_object().unwrap();
    assert_eq!(offsets.len(), 4);
    for (p, end) in offsets {
        let p: u32 = p.parse().unwrap();
        let want = if p == p1 {
            2
        } else if p == p2 {
            1
        } else {
            0
        };
        assert_eq!(end, want, "partition {p}");
    }
    // A read: with a leader cut off, 11 (nothing happened).
    net.isolate(2);
    let id = net.send(0, "c1", json!({"type": "list_offsets"}));
    net.run();
    net.tick(GIVE_UP_MS + 100);
    assert_eq!(net.reply(id).unwrap()["code"], 11);
}

#[test]
fn a_consumer_never_makes_a_topics_home_create_it() {
    let mut net = Net::new(3);
    let group = group_on(&net, 0);
    let ghost = topic_homed(&net, 1, "ghost");
    let poll = json!({"type": "poll", "group": group, "consumer": "c", "topic": ghost});
    // The coordinator does not know it: 11 while it asks the home, without creating it.
    let r = net.call(0, poll.clone());
    assert_eq!(r["code"], 11, "{r}");
    net.tick(10);
    for node in &net.nodes {
        assert!(node.broker().topics().get(&ghost).is_none(), "created");
    }
    // The home said it does not exist: now 20, and the group has no member.
    let r = net.call(0, poll.clone());
    assert_eq!(r["code"], 20, "{r}");
    let r = net.call(0, json!({"type": "describe_group", "group": group}));
    assert_eq!(r["code"], 20, "no group was made: {r}");
    // A producer does create it (at its home); then the consumer is served.
    let mut now = 10;
    let sent = loop {
        let r = net.call(
            2,
            json!({"type": "send", "topic": ghost, "key": "a", "msg": 1}),
        );
        if r["type"] == "send_ok" || now > 5_000 {
            break r;
        }
        now += 60;
        net.tick(now);
    };
    assert_eq!(sent["type"], "send_ok", "{sent}");
    let got = loop {
        let r = net.call(0, poll.clone());
        if r["type"] == "poll_ok" || now > 10_000 {
            break r;
        }
        now += 60;
        net.tick(now);
    };
    assert_eq!(got["type"], "poll_ok", "{got}");
}
