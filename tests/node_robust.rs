//! Bad input of every kind: the node logs or answers it, changes nothing, and serves the next line.

mod node_util;

use node_util::Node;
use serde_json::{json, Value};
use std::time::Duration;

/// The node still works, and the default topic holds exactly `records` records.
fn still_serving(n: &mut Node, records: u64) {
    let r = n.ok("check", json!({"type": "list_offsets"}));
    let total: u64 = r["offsets"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, records, "no state changed");
}

/// The line gets no reply at all.
fn no_reply(n: &mut Node) {
    assert_eq!(n.try_recv_line(Duration::from_millis(150)), None);
}

/// The next line is error 12 to `src`'s request `id`, its text holding each of `words`.
fn refused_line(n: &mut Node, src: &str, id: u64, words: &[&str]) {
    let v: Value = serde_json::from_str(&n.recv_line()).unwrap();
    assert_eq!(v["dest"], src, "{v}");
    let b = &v["body"];
    assert_eq!(
        (b["type"].as_str(), b["code"].as_u64()),
        (Some("error"), Some(12)),
        "{v}"
    );
    assert_eq!(b["in_reply_to"], id, "{v}");
    let text = b["text"].as_str().unwrap();
    for w in words {
        assert!(text.contains(w), "{w:?} not in {text:?}");
    }
}

#[test]
fn lines_that_are_not_messages_are_logged_and_skipped() {
    let mut n = Node::started(&[]);
    for bad in [
        "not json at all",
        "{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"send\",\"key\":\"k\",\"msg\":1", // truncated
        "{\"dest\":\"n1\",\"body\":{\"type\":\"send\",\"msg_id\":1,\"key\":\"k\",\"msg\":1}}", // no src
        "{\"src\":7,\"dest\":\"n1\",\"body\":{\"type\":\"send\",\"msg_id\":1,\"key\":\"k\",\"msg\":1}}",
        "{\"src\":\"c1\",\"dest\":\"n1\",\"body\":[1,2]}",
        "{\"src\":\"c1\",\"dest\":\"n1\"}",
        "[1,2,3]",
        "\"just a string\"",
        "{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{}} trailing",
        "{\"src\":\"c1\",\"src\"}",
        "   ",
        "",
        "\r",
    ] {
        n.send_line(bad);
        no_reply(&mut n);
        still_serving(&mut n, 0);
    }
    let (status, log) = n.close();
    assert!(status.success());
    assert!(log.contains("skipped an input line"), "{log}");
}

#[test]
fn binary_garbage_and_invalid_utf8_are_skipped() {
    let mut n = Node::started(&[]);
    let mut junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    junk.retain(|&b| b != b'\n');
    junk.push(b'\n');
    n.write(&junk);
    // Valid JSON around an invalid UTF-8 byte: its start names the sender and msg_id, so it is
    // answered (12), not left to time out.
    n.write(b"{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"send\",\"msg_id\":1,\"key\":\"\xff\",\"msg\":1}}\n");
    refused_line(&mut n, "c1", 1, &["not UTF-8"]);
    n.write(b"\x00\x00\x00\n\xc3\x28\n");
    no_reply(&mut n);
    still_serving(&mut n, 0);
}

#[test]
fn deep_nesting_is_refused_and_shallow_nesting_kept() {
    let mut n = Node::started(&[]);
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    n.send_line(&format!(
        r#"{{"src":"c1","dest":"n1","body":{{"type":"send","msg_id":1,"key":"k","msg":{deep}}}}}"#
    ));
    refused_line(&mut n, "c1", 1, &["deeper than 128 levels"]);
    // The same with the msg_id after the deep value: still read.
    n.send_line(&format!(
        r#"{{"src":"c1","dest":"n1","body":{{"type":"send","key":"k","msg":{deep},"msg_id":3}}}}"#
    ));
    refused_line(&mut n, "c1", 3, &["deeper than 128 levels"]);
    // Unbalanced, endless nesting, no sender: logged only.
    n.send_line(&"{\"a\":".repeat(50_000));
    no_reply(&mut n);
    still_serving(&mut n, 0);
    let nested = "[".repeat(60) + "1" + &"]".repeat(60);
    n.send_line(&format!(
        r#"{{"src":"c1","dest":"n1","body":{{"type":"send","msg_id":2,"key":"k","msg":{nested}}}}}"#
    ));
    let v: Value = serde_json::from_str(&n.recv_line()).unwrap();
    assert_eq!(v["body"]["type"], "send_ok");
    let r = n.ok("c1", json!({"type": "poll", "offsets": {"k": 0}}));
    assert_eq!(r["msgs"]["k"][0][1].to_string(), nested);
}

#[test]
fn huge_lines_are_dropped_without_stalling() {
    let mut n = Node::started(&[]);
    // 3 MiB without a newline, then its newline: one over-long line.
    let blob = "x".repeat(3 << 20);
    n.write(
        format!(
            r#"{{"src":"c1","dest":"n1","body":{{"type":"send","msg_id":1,"key":"k","msg":"{blob}"#
        )
        .as_bytes(),
    );
    n.write(b"\"}}\n");
    refused_line(
        &mut n,
        "c1",
        1,
        &["longer than 1048576 bytes", "--max-line-bytes"],
    );
    no_reply(&mut n);
    still_serving(&mut n, 0);
    // A large line within the cap is served.
    let big = "y".repeat(700_000);
    let r = n.ok("c1", json!({"type": "send", "key": "big", "msg": big}));
    assert_eq!(r["offset"], 0);
    // Two over-long lines back to back, the second followed by a valid request in the same write.
    let mut chunk = "z".repeat((1 << 20) + 10);
    chunk.push('\n');
    chunk.push_str(&"w".repeat((1 << 20) + 10));
    chunk.push('\n');
    chunk.push_str(
        r#"{"src":"c2","dest":"n1","body":{"type":"send","msg_id":1,"key":"k","msg":1}}"#,
    );
    chunk.push('\n');
    n.write(chunk.as_bytes());
    let v: Value = serde_json::from_str(&n.recv_line()).unwrap();
    assert_eq!(
        (v["dest"].as_str(), v["body"]["type"].as_str()),
        (Some("c2"), Some("send_ok"))
    );
    still_serving(&mut n, 2);
    let (_, log) = n.close();
    assert!(log.contains("longer than"), "{log}");
}

#[test]
fn the_line_limit_is_a_flag_and_named_in_the_refusal() {
    let mut n = Node::started(&["--max-line-bytes", "2048"]);
    let send = |id: u64, len: usize| {
        format!(
            r#"{{"src":"c1","dest":"n1","body":{{"type":"send","msg_id":{id},"key":"k","msg":"{}"}}}}"#,
            "v".repeat(len)
        )
    };
    // Over the limit, in one write: refused, naming the limit.
    n.send_line(&send(1, 3000));
    refused_line(
        &mut n,
        "c1",
        1,
        &["longer than 2048 bytes", "--max-line-bytes"],
    );
    // Under it: served.
    let r = n.ok(
        "c1",
        json!({"type": "send", "key": "k", "msg": "w".repeat(1500)}),
    );
    assert_eq!(r["type"], "send_ok");
    // Over it, written in pieces (the reader drops it as it comes).
    let long = send(7, 20_000);
    for piece in long.as_bytes().chunks(1000) {
        n.write(piece);
    }
    n.write(b"\n");
    refused_line(&mut n, "c1", 7, &["2048"]);
    // A msg_id beyond the limit cannot be read: logged only.
    n.send_line(&format!(
        r#"{{"src":"c1","dest":"n1","body":{{"type":"send","key":"k","msg":"{}","msg_id":9}}}}"#,
        "v".repeat(3000)
    ));
    no_reply(&mut n);
    // A reply (in_reply_to) is never answered.
    n.send_line(&format!(
        r#"{{"src":"n2","dest":"n1","body":{{"type":"x_ok","in_reply_to":4,"msg_id":9,"pad":"{}"}}}}"#,
        "v".repeat(3000)
    ));
    no_reply(&mut n);
    still_serving(&mut n, 1);
}

#[test]
fn wrong_types_get_error_12_and_change_nothing() {
    let mut n = Node::started(&[]);
    for body in [
        json!({"type": "send", "key": "k"}),
        json!({"type": "send", "key": "k", "msg": 1, "topic": 5}),
        json!({"type": "poll", "offsets": [1]}),
        json!({"type": "poll", "offsets": {"k": 1.5}}),
        json!({"type": "commit_offsets", "offsets": {"k": "1"}}),
        json!({"type": "commit_offsets"}),
        json!({"type": "list_committed_offsets", "keys": "k"}),
        json!({"type": "list_committed_offsets", "keys": [{"a": 1}]}),
        json!({"type": "subscribe", "group": "g", "session_timeout_ms": -5}),
        json!({"type": "subscribe", "group": "g", "auto_commit": "yes"}),
        json!({"type": "poll", "group": "g", "max_messages": "ten"}),
        json!({"type": "commit", "group": "g", "partition": 0}),
        json!({"type": "commit", "group": "g", "offsets": {"zero": 1}}),
        json!({"type": "send_batch", "msgs": [1]}),
        json!({"type": "create_topic", "topic": "t"}),
        json!({"type": "init", "node_id": 1}),
    ] {
        let e = n.rpc("c1", body.clone());
        assert_eq!(
            (e["type"].as_str(), e["code"].as_u64()),
            (Some("error"), Some(12)),
            "{body} -> {e}"
        );
        assert!(
            e["text"].as_str().is_some_and(|t| t.contains('`')),
            "the text names the field: {e}"
        );
    }
    // An integer beyond u64.
    n.send_line(r#"{"src":"c1","dest":"n1","body":{"type":"commit","msg_id":99,"group":"g","partition":0,"offset":18446744073709551616}}"#);
    let v: Value = serde_json::from_str(&n.recv_line()).unwrap();
    assert_eq!(
        (
            v["body"]["code"].as_u64(),
            v["body"]["in_reply_to"].as_u64()
        ),
        (Some(12), Some(99))
    );
    still_serving(&mut n, 0);
    let r = n.ok("c1", json!({"type": "list_groups"}));
    assert_eq!(
        r["groups"],
        json!([]),
        "no malformed request created a group"
    );
    let r = n.ok(
        "c1",
        json!({"type": "list_committed_offsets", "keys": ["k"]}),
    );
    assert_eq!(r["offsets"], json!({}));
}

#[test]
fn a_last_line_without_newline_is_served_and_eof_ends_the_node() {
    let mut n = Node::started(&[]);
    n.write(br#"{"src":"c1","dest":"n1","body":{"type":"send","msg_id":1,"key":"k","msg":1}}"#);
    let (status, rest) = n.close_and_drain();
    assert!(status.success());
    assert_eq!(rest.len(), 1);
    assert!(rest[0].contains("send_ok"));
}
