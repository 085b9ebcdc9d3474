//! A panic in each long-lived thread of the node (issue 15 §2), injected through the binary's
//! test hook `KGROUPS_INJECT_PANIC` (see `guard.rs`): the node either goes on serving or exits
//! with a clear message. It never hangs (every wait here is bounded).

mod node_util;

use node_util::Node;
use serde_json::json;
use std::time::{Duration, Instant};

fn spawn(place: &str, args: &[&str]) -> Node {
    Node::spawn_env(args, &[("KGROUPS_INJECT_PANIC", place)])
}

fn init(n: &mut Node) -> serde_json::Value {
    n.rpc(
        "c0",
        json!({"type": "init", "node_id": "n1", "node_ids": ["n1"]}),
    )
}

/// The node exits by itself with Rust's panic code and a message naming the thread.
fn assert_exits_loudly(n: Node, names: &str) {
    let (status, stderr) = n.wait_exit();
    assert_eq!(status.code(), Some(101), "{stderr}");
    assert!(
        stderr.contains(&format!("kgroups: {names} panicked (a panic injected at")),
        "{stderr}"
    );
    assert!(stderr.contains("exiting"), "{stderr}");
}

#[test]
fn a_panic_handling_one_request_loses_only_that_reply() {
    let mut n = spawn("handle", &["--workers", "0"]);
    n.send_line(r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#);
    assert_eq!(n.try_recv_line(Duration::from_millis(500)), None);
    assert_eq!(init(&mut n)["type"], "init_ok");
    let r = n.ok("c1", json!({"type": "send", "key": "k", "msg": 1}));
    assert_eq!(r["offset"], 0);
    let (status, stderr) = n.close();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("a request panicked (a panic injected at handle"),
        "{stderr}"
    );
}

#[test]
fn a_panic_in_the_timer_does_not_stop_session_expiry() {
    let mut n = spawn("timer", &[]);
    assert_eq!(init(&mut n)["type"], "init_ok");
    n.ok(
        "c1",
        json!({"type": "subscribe", "group": "g", "consumer": "a", "session_timeout_ms": 300}),
    );
    // The first tick panicked (about 100 ms after the start); later ones still expire members.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = n.ok("c1", json!({"type": "describe_group", "group": "g"}));
        if d["members"] == json!([]) {
            break;
        }
        assert!(Instant::now() < deadline, "the member never expired: {d}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, stderr) = n.close();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("the timer's work panicked (a panic injected at timer"),
        "{stderr}"
    );
}

#[test]
fn a_panic_in_a_worker_ends_the_process_loudly() {
    // --inline-max 0: every line goes to a worker.
    let mut n = spawn("worker", &["--workers", "2", "--inline-max", "0"]);
    n.send_line(r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#);
    assert_exits_loudly(n, "a worker");
}

#[test]
fn a_panic_in_the_reader_ends_the_process_loudly() {
    let mut n = spawn("reader", &[]);
    n.send_line(r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#);
    assert_exits_loudly(n, "the reader");
}

#[test]
fn a_panic_writing_the_output_ends_the_process_loudly() {
    let mut n = spawn("output", &[]);
    n.send_line(r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#);
    assert_exits_loudly(n, "the output (writing to stdout)");
}
