//! `kgroups broker --data-dir` with real clients: what survives a clean stop (SIGTERM) and a
//! crash (SIGKILL), and retention. The client side is `tests/clients/durable_scenarios.py`
//! (confluent-kafka); this file starts, stops and kills the broker between its steps.

mod kafka_support;

use kafka_support::{python, run, script, serial, Broker};
use rand::Rng;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn broker(dir: &Path, extra: &[&str]) -> Broker {
    let mut args = vec!["--data-dir", dir.to_str().unwrap(), "--partitions", "1"];
    args.extend_from_slice(extra);
    Broker::start(&args)
}

/// Runs `step` of the script; asserts it passed.
fn step(py: &Path, broker: &mut Broker, name: &str, state: &Path) -> String {
    let mut cmd = Command::new(py);
    cmd.arg(script("durable_scenarios.py"))
        .arg(&broker.addr)
        .arg(name)
        .arg(state);
    let out = run(cmd, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed ({:?})\n--- stdout\n{stdout}\n--- stderr\n{}\n--- broker\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        broker.log()
    );
    assert!(broker.alive(), "the broker died\n{}", broker.log());
    stdout
}

/// Writes, stops with SIGTERM, restarts on the same directory with the same `flags`, verifies.
fn round_trip(flags: &[&str]) {
    let _one = serial();
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let data = dir.path().join("data");
    let mut b = broker(&data, flags);
    step(&py, &mut b, "write", &state);
    assert!(b.stop("TERM"), "SIGTERM is a clean exit\n{}", b.log());
    assert!(b.log().contains("SIGTERM: flushing and stopping"));
    let mut b = broker(&data, flags);
    step(&py, &mut b, "verify", &state);
    // Nothing was torn: a clean stop leaves nothing for recovery to repair.
    assert!(!b.log().contains("recovered"), "{}", b.log());
}

#[test]
fn restart_round_trip_keeps_records_ids_configs_and_commits() {
    round_trip(&[]);
}

#[test]
fn restart_round_trip_with_an_fsync_before_every_ack() {
    round_trip(&["--flush-messages", "1", "--flush-ms", "100"]);
}

#[test]
fn acknowledged_records_and_commits_survive_sigkill() {
    let _one = serial();
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acked: PathBuf = dir.path().join("acked.jsonl");
    std::fs::write(&acked, b"").unwrap();
    let mut rng = rand::rng();
    let mut b = broker(&data, &[]);
    for cycle in 0..20 {
        let mut producer = Command::new(&py)
            .arg(script("durable_scenarios.py"))
            .arg(&b.addr)
            .arg("produce")
            .arg(&acked)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill while records flow: once this producer's first acknowledgement is in, at a random
        // moment of the next 400 ms.
        let before = std::fs::metadata(&acked).unwrap().len();
        let start = std::time::Instant::now();
        while std::fs::metadata(&acked).unwrap().len() == before
            && start.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..400)));
        b.stop("KILL");
        let _ = producer.kill();
        let _ = producer.wait();
        b = broker(&data, &[]);
        let said = step(&py, &mut b, "crash-check", &acked);
        eprintln!("cycle {cycle}: {}", said.trim());
    }
    let lines = std::fs::read_to_string(&acked).unwrap().lines().count();
    assert!(lines > 0, "no record was ever acknowledged");
    assert!(!b.log().contains("panicked"), "{}", b.log());
}

#[test]
fn retention_deletes_old_segments_and_a_consumer_below_the_start_resets() {
    let _one = serial();
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let data = dir.path().join("data");
    let mut b = broker(&data, &[]);
    step(&py, &mut b, "retention-write", &state);
    let said = step(&py, &mut b, "retention-check", &state);
    eprintln!("{}", said.trim());
    let segments = std::fs::read_dir(data.join("retained-0"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .count();
    // 600 records of ~260 bytes in 4 KiB segments make ~40; 16 KiB of retention keeps ~5.
    assert!(segments <= 8, "{segments} segments left");
    let first = std::fs::read_dir(data.join("retained-0"))
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name() == "00000000000000000000.log");
    assert!(!first, "the first segment is still there");
}
