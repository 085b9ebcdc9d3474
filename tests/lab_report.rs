//! What a Maelstrom user sees of a run (issue 14 §6): plots next to results.json, numbers as
//! numbers, rates, the words explained, startup failures that say why, progress in a log.

mod lab_support;

use std::path::Path;
use std::process::Command;

use lab_support::{kgroups, lab, run_lab};
use serde_json::Value;

/// The directory of a run's results.json, from what it printed.
fn run_dir(stdout: &str) -> &Path {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("results"))
        .expect("the results path is printed");
    Path::new(line.trim_start().trim_start_matches("results").trim())
        .parent()
        .unwrap()
}

#[test]
fn a_run_writes_its_plots_and_reports_numbers_as_numbers() {
    let bin = kgroups();
    let run = run_lab(
        &[
            "-w",
            "kafka",
            "--bin",
            bin.to_str().unwrap(),
            "--node-count",
            "2",
            "--concurrency",
            "2n",
            "--rate",
            "200",
            "--time-limit",
            "2",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "0.4",
            "--final-wait",
            "0.5",
        ],
        &[],
    );
    run.assert_valid(50);
    let j = &run.json;
    // Plots: PNG and SVG of latency and rate, beside results.json, their paths printed.
    let dir = run_dir(&run.stdout);
    assert_eq!(
        j["plots"],
        serde_json::json!(["latency.png", "latency.svg", "rate.png", "rate.svg"]),
        "{}",
        j["plots_error"]
    );
    for name in ["latency", "rate"] {
        let png = std::fs::read(dir.join(format!("{name}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000,
            "{name}.png"
        );
        let svg = std::fs::read_to_string(dir.join(format!("{name}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{name}.svg");
        assert!(
            svg.contains("network cut"),
            "{name}.svg shades the nemesis windows"
        );
        assert!(
            run.stdout.contains(&format!("{name}.png")),
            "{}",
            run.stdout
        );
    }
    let latency = std::fs::read_to_string(dir.join("latency.svg")).unwrap();
    assert!(
        latency.contains("send ok") && latency.contains("poll ok"),
        "one series per op and outcome"
    );
    // Numbers are numbers.
    assert!(
        j["workload_stats"]["sends"]["ok"].is_u64(),
        "{}",
        j["workload_stats"]
    );
    assert!(j["workload_stats"]["sends"]["total"].is_u64());
    assert!(j["workload_stats"]["assigns"].is_u64());
    for k in [
        "target",
        "attempted_per_s",
        "sends_per_s",
        "records_delivered_per_s",
    ] {
        assert!(j["rates"][k].is_number(), "rates.{k}: {}", j["rates"]);
    }
    assert!(j["rates"]["sends_per_s"].as_f64().unwrap() > 0.0);
    assert!(j["rates"]["reached"].is_boolean());
    let cuts: Vec<&Value> = j["nemesis"].as_array().unwrap().iter().collect();
    assert!(!cuts.is_empty());
    assert!(cuts
        .iter()
        .all(|e| e["at_s"].is_f64() && e["action"].is_string()));
    // The table: rates, no raw JSON, no Rust debug text.
    assert!(
        run.stdout.contains("acknowledged sends/s"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("records delivered/s"), "{}", run.stdout);
    assert!(
        !run.stdout.contains('{') && !run.stdout.contains("Some("),
        "{}",
        run.stdout
    );
}

#[test]
fn the_groups_table_has_numbers_and_delivery_rates() {
    let bin = kgroups();
    let run = run_lab(
        &[
            "-w",
            "groups",
            "--bin",
            bin.to_str().unwrap(),
            "--rate",
            "100",
            "--time-limit",
            "2",
            "--churn",
            "0.5",
            "--session-timeout-ms",
            "400",
            "--final-wait",
            "0.5",
        ],
        &[],
    );
    run.assert_valid(20);
    let s = &run.json["workload_stats"];
    assert!(
        s["records"]["acknowledged"].is_u64() && s["records"]["deliveries"].is_u64(),
        "{s}"
    );
    assert!(s["recovery_ms"]["measured"].is_u64(), "{s}");
    assert!(
        run.json["rates"]["records_delivered_per_s"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        !run.stdout.contains('{') && !run.stdout.contains("Some("),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("acknowledged "), "{}", run.stdout);
}

#[test]
fn a_rate_out_of_reach_is_said_and_rate_0_is_as_fast_as_possible() {
    let bin = kgroups();
    let base = [
        "-w",
        "kafka",
        "--bin",
        bin.to_str().unwrap(),
        "--concurrency",
        "1",
        "--time-limit",
        "1",
        "--final-wait",
        "0",
    ];
    let mut args = base.to_vec();
    args.extend(["--rate", "1000000"]);
    let run = run_lab(&args, &[]);
    run.assert_valid(10);
    assert_eq!(run.json["rates"]["reached"], false);
    assert!(run.stdout.contains("NOT reached"), "{}", run.stdout);
    let mut args = base.to_vec();
    args.extend(["--rate", "0"]);
    let run = run_lab(&args, &[]);
    run.assert_valid(10);
    assert_eq!(run.json["rates"]["reached"], true);
    assert!(
        run.stdout.contains("--rate 0: as fast as the clients go"),
        "{}",
        run.stdout
    );
}

#[test]
fn help_explains_the_words_of_the_report() {
    let out = Command::new(lab())
        .args(["test", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "  info ",
        "  crash ",
        "  assigns ",
        "  phantom ",
        "0: no pacing",
        "latency.png",
    ] {
        assert!(help.contains(word), "test --help lacks {word:?}:\n{help}");
    }
}

#[test]
fn a_node_that_fails_to_start_shows_its_stderr_and_log() {
    let bin = kgroups();
    let run = run_lab(
        &[
            "-w",
            "kafka",
            "--bin",
            bin.to_str().unwrap(),
            "--time-limit",
            "1",
        ],
        &["--no-such-flag"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let why = run.json["could_not_run"].as_str().unwrap();
    for part in [
        "did not answer init",
        "n0's stderr (",
        "n0.log",
        "--no-such-flag",
    ] {
        assert!(why.contains(part), "{part:?} not in {why}");
        assert!(run.stderr.contains(part), "{part:?} not in {}", run.stderr);
    }
}

#[test]
fn progress_goes_to_a_log_as_plain_lines() {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lab-progress-{}", std::process::id()));
    let out = Command::new(lab())
        .args(["test", "-w", "kafka", "--bin"])
        .arg(kgroups())
        .args(["--time-limit", "1", "--final-wait", "0", "--results"])
        .arg(dir.join("results.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("kgroups-lab: kafka ") && err.contains(" ops "),
        "{err}"
    );
    assert!(!err.contains('\r'), "no terminal redraws in a log");
}
