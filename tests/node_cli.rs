//! The command line: --help, flags, and the KGROUPS_* environment variables.

mod node_util;

use node_util::{ints, Node};
use serde_json::json;
use std::process::Command;

fn kgroups(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kgroups"))
        .args(args)
        .output()
        .expect("run kgroups")
}

#[test]
fn help_explains_every_flag_and_its_variable() {
    let out = kgroups(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--partitions",
        "--workers",
        "--session-timeout-ms",
        "--assignor",
        "--auto-commit",
        "--auto-offset-reset",
        "--log-level",
        "--max-line-bytes",
        "KGROUPS_MAX_LINE_BYTES",
        "KGROUPS_PARTITIONS",
        "KGROUPS_WORKERS",
        "KGROUPS_SESSION_TIMEOUT_MS",
        "KGROUPS_ASSIGNOR",
        "KGROUPS_AUTO_COMMIT",
        "KGROUPS_LOG_LEVEL",
        "Maelstrom",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn bad_flags_are_refused() {
    for args in [
        &["--partitions", "0"][..],
        &["--partitions", "many"],
        &["--assignor", "best"],
        &["--assignor", "sticky"],
        &["--max-line-bytes", "10"],
        &["--max-line-bytes", "999999999"],
        &["--auto-commit", "maybe"],
        &["--log-level", "[[["],
    ] {
        let out = kgroups(args);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(out.stdout.is_empty(), "errors go to stderr");
    }
}

#[test]
fn assignor_names_take_any_case_and_sticky_points_to_cooperative_sticky() {
    let out = kgroups(&["--assignor", "sticky"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cooperative-sticky"), "{err}");
    let mut n = Node::started(&["--assignor", "RANGE"]);
    n.ok(
        "c",
        json!({"type": "subscribe", "group": "g", "consumer": "c"}),
    );
    let d = n.ok("c", json!({"type": "describe_group", "group": "g"}));
    assert_eq!(d["assignor"], "range");
}

#[test]
fn flags_set_the_engine() {
    let mut n = Node::started(&["--partitions", "3", "--workers", "1", "--assignor", "range"]);
    let r = n.ok(
        "a",
        json!({"type": "subscribe", "group": "g", "consumer": "a"}),
    );
    assert_eq!(ints(&r["partitions"]), [0, 1, 2]);
    let d = n.ok("a", json!({"type": "describe_group", "group": "g"}));
    assert_eq!(d["assignor"], "range");
}

#[test]
fn environment_variables_set_the_engine() {
    let mut n = Node::spawn_env(
        &[],
        &[
            ("KGROUPS_PARTITIONS", "5"),
            ("KGROUPS_WORKERS", "0"),
            ("KGROUPS_ASSIGNOR", "roundrobin"),
            ("KGROUPS_AUTO_COMMIT", "false"),
            ("KGROUPS_LOG_LEVEL", "info"),
        ],
    );
    let r = n.ok(
        "a",
        json!({"type": "subscribe", "group": "g", "consumer": "a"}),
    );
    assert_eq!(ints(&r["partitions"]), [0, 1, 2, 3, 4]);
    let d = n.ok("a", json!({"type": "describe_group", "group": "g"}));
    assert_eq!(d["assignor"], "roundrobin");
    // auto_commit off: a poll hands out records but commits nothing.
    n.ok("p", json!({"type": "send", "key": "k", "msg": 1}));
    n.ok("a", json!({"type": "poll", "group": "g", "consumer": "a"}));
    n.ok("a", json!({"type": "poll", "group": "g", "consumer": "a"}));
    let r = n.ok("a", json!({"type": "list_committed_offsets", "group": "g"}));
    assert_eq!(r["offsets"], json!({}));
    let (status, log) = n.close();
    assert!(status.success());
    assert!(
        log.contains("kgroups node starting"),
        "info logs on stderr: {log}"
    );
}

#[test]
fn logs_stay_quiet_by_default() {
    let mut n = Node::started(&[]);
    n.ok("a", json!({"type": "send", "key": "k", "msg": 1}));
    let (status, log) = n.close();
    assert!(status.success());
    assert_eq!(log, "", "default level is warn: nothing to say");
}
