//! The wire contract, seen through the binary: byte-exact init, key order, message numbering,
//! closed reply schemas, error codes.

mod node_util;

use node_util::{keys, Node};
use serde_json::{json, Value};

const INIT: &str = r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#;

#[test]
fn init_reply_is_byte_for_byte() {
    let mut n = Node::spawn(&[]);
    n.send_line(INIT);
    assert_eq!(
        n.recv_line(),
        r#"{"src":"n1","dest":"c0","body":{"type":"init_ok","in_reply_to":1,"msg_id":0}}"#
    );
    let (status, _) = n.close();
    assert!(status.success());
}

#[test]
fn replies_keep_key_order_and_count_msg_ids_from_zero() {
    let mut n = Node::spawn(&[]);
    n.send_line(INIT);
    n.recv_line();
    n.send_line(
        r#"{"id":9,"src":"c1","dest":"n1","body":{"type":"send","msg_id":1,"key":"k","msg":7}}"#,
    );
    assert_eq!(
        n.recv_line(),
        r#"{"src":"n1","dest":"c1","body":{"type":"send_ok","offset":0,"in_reply_to":1,"msg_id":1}}"#
    );
    n.send_line(r#"{"src":"c1","dest":"n1","body":{"msg":8,"key":"k","msg_id":2,"type":"send"}}"#);
    assert_eq!(
        n.recv_line(),
        r#"{"src":"n1","dest":"c1","body":{"type":"send_ok","offset":1,"in_reply_to":2,"msg_id":2}}"#
    );
    n.send_line(r#"{"src":"c1","dest":"n1","body":{"type":"poll","msg_id":3,"offsets":{"k":1}}}"#);
    assert_eq!(
        n.recv_line(),
        r#"{"src":"n1","dest":"c1","body":{"type":"poll_ok","msgs":{"k":[[1,8]]},"in_reply_to":3,"msg_id":3}}"#
    );
    n.send_line(r#"{"src":"c1","dest":"n1","body":{"type":"what","msg_id":4}}"#);
    assert_eq!(
        n.recv_line(),
        r#"{"src":"n1","dest":"c1","body":{"type":"error","code":10,"text":"unsupported request type \"what\"","in_reply_to":4,"msg_id":4}}"#
    );
}

#[test]
fn a_request_before_init_is_served_as_its_dest() {
    let mut n = Node::spawn(&[]);
    n.send_line(r#"{"src":"c3","dest":"n7","body":{"type":"send","msg_id":5,"key":"a","msg":1}}"#);
    assert_eq!(
        n.recv_line(),
        r#"{"src":"n7","dest":"c3","body":{"type":"send_ok","offset":0,"in_reply_to":5,"msg_id":0}}"#
    );
    // After init, the node is its node_id.
    n.send_line(INIT);
    assert!(n.recv_line().starts_with(r#"{"src":"n1","dest":"c0""#));
}

#[test]
fn kafka_replies_carry_exactly_their_documented_fields() {
    let mut n = Node::started(&[]);
    let r = n.ok("c1", json!({"type": "send", "key": "1", "msg": 10}));
    assert_eq!(keys(&r), ["in_reply_to", "msg_id", "offset", "type"]);
    assert!(r["offset"].is_u64());
    let r = n.ok("c1", json!({"type": "poll", "offsets": {"1": 0}}));
    assert_eq!(keys(&r), ["in_reply_to", "msg_id", "msgs", "type"]);
    assert_eq!(r["msgs"], json!({"1": [[0, 10]]}));
    let r = n.ok("c1", json!({"type": "commit_offsets", "offsets": {"1": 0}}));
    assert_eq!(keys(&r), ["in_reply_to", "msg_id", "type"]);
    let r = n.ok(
        "c1",
        json!({"type": "list_committed_offsets", "keys": ["1"]}),
    );
    assert_eq!(keys(&r), ["in_reply_to", "msg_id", "offsets", "type"]);
    assert_eq!(r["offsets"], json!({"1": 0}));
}

#[test]
fn error_codes_and_texts_name_the_field() {
    let mut n = Node::started(&[]);
    let e = n.rpc("c1", json!({"type": "send", "key": "k"}));
    assert_eq!(
        (e["type"].as_str(), e["code"].as_u64()),
        (Some("error"), Some(12))
    );
    assert!(e["text"].as_str().unwrap().contains("`msg`"), "{e}");
    let e = n.rpc("c1", json!({"type": "poll", "offsets": {"k": "zero"}}));
    assert_eq!(e["code"], 12);
    assert!(e["text"].as_str().unwrap().contains("offsets"), "{e}");
    let e = n.rpc(
        "c1",
        json!({"type": "commit", "group": "g", "partition": -1, "offset": 0}),
    );
    assert_eq!(e["code"], 12);
    assert!(e["text"].as_str().unwrap().contains("partition"), "{e}");
    let e = n.rpc("c1", json!({"type": "subscribe", "group_id": 5}));
    assert_eq!(e["code"], 12);
    assert!(e["text"].as_str().unwrap().contains("`group_id`"), "{e}");
    let e = n.rpc("c1", json!({"type": "teleport"}));
    assert_eq!(e["code"], 10);
    // A type that is not a string is a malformed request.
    n.send_line(r#"{"src":"c1","dest":"n1","body":{"type":3,"msg_id":77}}"#);
    let v: Value = serde_json::from_str(&n.recv_line()).unwrap();
    assert_eq!(
        (
            v["body"]["code"].as_u64(),
            v["body"]["in_reply_to"].as_u64()
        ),
        (Some(12), Some(77))
    );
    // An ill-typed msg_id cannot be replied to by id, but still gets its error.
    n.send_line(
        r#"{"src":"c1","dest":"n1","body":{"type":"send","msg_id":"x","key":"k","msg":1}}"#,
    );
    let v: Value = serde_json::from_str(&n.recv_line()).unwrap();
    assert_eq!(v["body"]["code"], 12);
    assert!(v["body"].get("in_reply_to").is_none());
    assert!(v["body"]["text"].as_str().unwrap().contains("msg_id"));
}

#[test]
fn echo_and_reply_lines_are_compact() {
    let mut n = Node::started(&[]);
    n.send_line(r#"{"src":"c1","dest":"n1","body":{"type":"echo","msg_id":1,"echo":{ "a" : [ 1, "x y" ] }}}"#);
    assert_eq!(
        n.recv_line(),
        r#"{"src":"n1","dest":"c1","body":{"type":"echo_ok","echo":{"a":[1,"x y"]},"in_reply_to":1,"msg_id":1}}"#
    );
}

#[test]
fn replies_to_replies_are_never_sent() {
    let mut n = Node::started(&[]);
    // A stray reply (as another node or a confused client might send) is dropped silently.
    n.send_line(r#"{"src":"n2","dest":"n1","body":{"type":"send_ok","in_reply_to":3,"offset":1}}"#);
    let r = n.ok("c1", json!({"type": "list_topics"}));
    assert_eq!(r["topics"], json!([{"topic": "default", "partitions": 8}]));
}

#[test]
fn escaped_strings_round_trip() {
    let mut n = Node::started(&[]);
    n.send_line(r#"{"src":"c\"1","dest":"n1","body":{"type":"send","msg_id":1,"key":"k\u00e9","msg":"a\nb"}}"#);
    assert_eq!(
        n.recv_line(),
        r#"{"src":"n1","dest":"c\"1","body":{"type":"send_ok","offset":0,"in_reply_to":1,"msg_id":1}}"#
    );
    // The escaped and the plain spelling of a key are one key.
    let r = n.ok("c2", json!({"type": "poll", "offsets": {"ké": 0}}));
    assert_eq!(r["msgs"], json!({"ké": [[0, "a\nb"]]}));
}
