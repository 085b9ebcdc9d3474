//! kgroups-lab's command line, exit codes and protocol reporting.

mod lab_support;

use std::process::Command;

use lab_support::{lab, run_lab, toy_node};

#[test]
fn help_explains_the_maelstrom_style_flags() {
    let out = Command::new(lab())
        .args(["test", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--workload",
        "--bin",
        "--node-count",
        "--concurrency",
        "--rate",
        "--time-limit",
        "--latency",
        "--latency-dist",
        "--nemesis",
        "--nemesis-interval",
        "--seed",
        "--churn",
        "--results",
        "--final-wait",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn bad_arguments_could_not_run() {
    let out = Command::new(lab())
        .args(["test", "-w", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_missing_binary_could_not_run() {
    let run = run_lab(
        &[
            "-w",
            "kafka",
            "--bin",
            "/nonexistent/node",
            "--time-limit",
            "1",
        ],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.json["valid"], false);
    assert!(run.json["could_not_run"]
        .as_str()
        .unwrap()
        .contains("does not exist"));
}

#[test]
fn a_node_that_exits_before_init_could_not_run() {
    let run = run_lab(
        &["-w", "kafka", "--bin", "/bin/true", "--time-limit", "1"],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("did not answer init"), "{}", run.stderr);
}

#[test]
fn invalid_lines_and_unknown_destinations_are_reported() {
    let bin = toy_node();
    let run = run_lab(
        &[
            "-w",
            "kafka",
            "--bin",
            bin.to_str().unwrap(),
            "--rate",
            "50",
            "--time-limit",
            "1",
            "--final-wait",
            "0",
        ],
        &["--fault", "bad-lines"],
    );
    run.assert_invalid_with("invalid-line");
    run.assert_invalid_with("unknown-dest");
    let issues = run.json["node_issues"].as_array().unwrap();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0]["node"], "n0");
    assert_eq!(issues[0]["invalid_lines"], 1);
    assert_eq!(issues[0]["unknown_dest"], 1);
    let examples = issues[0]["examples"].to_string();
    assert!(
        examples.contains("this line is not a message") && examples.contains("c999999"),
        "{examples}"
    );
    assert_eq!(run.json["net"]["invalid_lines"], 1);
}

#[test]
fn extra_node_arguments_reach_the_nodes() {
    // The toy node rejects an unknown flag and exits: proof that `-- args` are passed through.
    let bin = toy_node();
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
}
