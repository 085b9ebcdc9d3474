//! kcat 1.7.1 (Debian's, built on librdkafka 2.0.2: Metadata v4, Produce v7, JoinGroup v5)
//! against `kgroups broker`: `-L`, `-P`, `-C -e` and `-G`.
#![cfg(not(loom))]

mod kafka_support;

use kafka_support::{kcat, run, serial, Broker};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

fn kcat_out(bin: &std::path::Path, b: &Broker, args: &[&str]) -> String {
    let mut cmd = Command::new(bin);
    cmd.args(["-b", &b.addr]).args(args);
    let out = run(cmd, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "kcat {args:?}: {:?}\n{}\n--- broker\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        b.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn produce(bin: &std::path::Path, b: &Broker, topic: &str, lines: &str) {
    let mut child = Command::new(bin)
        .args(["-b", &b.addr, "-P", "-t", topic, "-K", ":"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kcat -P: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn list_produce_consume_and_group() {
    let _one = serial();
    let Some(bin) = kcat() else { return };
    let mut b = Broker::start(&["--partitions", "4"]);

    let listing = kcat_out(&bin, &b, &["-L", "-t", "k1"]);
    assert!(
        listing.contains(&format!("broker 0 at {}", b.addr)),
        "{listing}"
    );
    assert!(
        listing.contains("topic \"k1\" with 4 partitions"),
        "auto-created: {listing}"
    );

    let lines: String = (0..40).map(|i| format!("key{}:v{i}\n", i % 5)).collect();
    produce(&bin, &b, "k1", &lines);

    // -C -e: every record, per key in one partition and in order; exits at the high watermark.
    let fmt = "%p %o %k %s\\n";
    let all = kcat_out(
        &bin,
        &b,
        &["-C", "-t", "k1", "-o", "beginning", "-e", "-f", fmt],
    );
    let rows: Vec<(u32, u64, String, u32)> = all
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].to_string(),
                f[3][1..].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 40, "{all}");
    for k in 0..5 {
        let key = format!("key{k}");
        let mine: Vec<&(u32, u64, String, u32)> = rows.iter().filter(|r| r.2 == key).collect();
        assert!(
            mine.windows(2).all(|w| w[0].0 == w[1].0),
            "{key} in one partition"
        );
        assert!(
            mine.windows(2).all(|w| w[0].3 < w[1].3 && w[0].1 < w[1].1),
            "{key} in order"
        );
    }

    // -G: a group member reads everything, commits, and a second run has nothing left.
    let group = [
        "-G",
        "kg",
        "-X",
        "auto.offset.reset=earliest",
        "-e",
        "-f",
        fmt,
        "k1",
    ];
    let first = kcat_out(&bin, &b, &group);
    assert_eq!(first.lines().count(), 40, "{first}");
    let second = kcat_out(&bin, &b, &group);
    assert_eq!(
        second.lines().count(),
        0,
        "resumed from the commit: {second}"
    );
    assert!(b.alive());
}
