//! `kgroups-lab bench`: a short run against the real node and the echo floor is valid and writes
//! every figure; a node that answers with bad offsets is reported invalid.

mod lab_support;

use std::path::PathBuf;
use std::process::Command;

use lab_support::lab;
use serde_json::Value;

fn echo_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kgroups-echo"))
}

fn bench(name: &str, args: &[&str]) -> (i32, Value, String) {
    let dir = std::env::temp_dir().join(format!("kgroups-lab-bench-{}-{name}", std::process::id()));
    let results = dir.join("results.json");
    let out = Command::new(lab())
        .arg("bench")
        .args(["--results", results.to_str().unwrap(), "--timeout", "30"])
        .args(args)
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), json, stdout)
}

#[test]
fn send_against_the_node_and_the_echo_is_valid_with_every_figure() {
    let (code, json, stdout) = bench(
        "send",
        &[
            "--ops",
            "20000",
            "--clients",
            "4",
            "--window",
            "16",
            "--echo",
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{json:#}");
    assert_eq!(json["valid"], true);
    assert_eq!(json["ops"], 20000);
    assert_eq!(json["mode"], "send");
    for key in [
        "throughput",
        "node_cpu_us_per_op",
        "peak_rss_bytes",
        "driver_cpu_us_per_op",
    ] {
        assert!(json[key].as_f64().unwrap() > 0.0, "{key}: {json:#}");
    }
    for q in ["p50", "p99", "max"] {
        assert!(json["latency_us"][q].as_f64().unwrap() > 0.0);
    }
    assert_eq!(json["echo"]["valid"], true);
    assert!(json["ratio_to_echo"]["throughput"].as_f64().is_some());
    assert!(stdout.contains("echo (floor)"));
}

#[test]
fn mixed_and_closed_loop_are_valid() {
    let (code, json, _) = bench("mixed", &["--mode", "mixed", "--ops", "20000"]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["mode"], "mixed");
    let (code, json, _) = bench(
        "closed",
        &["--ops", "2000", "--clients", "1", "--window", "1", "--echo"],
    );
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["ops"], 2000);
}

#[test]
fn groups_deliver_every_record_to_every_group() {
    let (code, json, _) = bench("groups", &["--mode", "groups", "--ops", "20000"]);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(json["records_delivered"], 40000);
    assert_eq!(json["redelivered"], 0);
    for key in ["node_cpu_us_per_record", "driver_cpu_us_per_record"] {
        assert!(json[key].as_f64().unwrap() > 0.0, "{key}: {json:#}");
    }
}

#[test]
fn a_node_with_bad_offsets_is_invalid() {
    let echo = echo_bin();
    let (code, json, stdout) = bench(
        "faulty",
        &[
            "--ops",
            "5000",
            "--no-readback",
            "--bin",
            echo.to_str().unwrap(),
            "--",
            "--fault",
            "stale-offset",
        ],
    );
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(json["valid"], false);
    assert!(json["errors"]["non-monotonic-send"].as_u64().unwrap() > 0);
}

#[test]
fn the_echo_stores_nothing_so_its_read_back_fails() {
    // The read-back is a real check: the echo acknowledges sends it never stored.
    let echo = echo_bin();
    let (code, json, _) = bench(
        "noread",
        &["--ops", "2000", "--bin", echo.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(
        json["errors"]["wrong-value"].as_u64().unwrap() > 0,
        "{json:#}"
    );
}
