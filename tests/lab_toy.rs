//! kgroups-lab against the toy node (examples/toy_node.rs): valid when correct, on one node and on
//! three (with partitions and latency); invalid with the matching error kind for each deliberate fault,
//! on one node and on three.

mod lab_support;

use lab_support::{run_workload, toy_node};

fn kafka(nodes: &str, extra: &[&str], node_args: &[&str]) -> lab_support::Run {
    let settings = [
        "--concurrency",
        "2n",
        "--rate",
        "300",
        "--time-limit",
        "3",
        "--final-wait",
        "0.5",
        "--final-time-limit",
        "5",
    ];
    run_workload("kafka", &toy_node(), nodes, &settings, extra, node_args)
}

fn groups(nodes: &str, extra: &[&str], node_args: &[&str]) -> lab_support::Run {
    let settings = [
        "--rate",
        "200",
        "--time-limit",
        "3",
        "--final-wait",
        "0.5",
        "--final-time-limit",
        "5",
        "--churn",
        "0.4",
        "--session-timeout-ms",
        "600",
    ];
    run_workload("groups", &toy_node(), nodes, &settings, extra, node_args)
}

#[test]
fn kafka_is_valid_on_one_node() {
    let run = kafka("1", &["--seed", "1"], &[]);
    run.assert_valid(300);
    assert_eq!(
        run.json["net"]["server_msgs"], 0,
        "one node sends nothing to other nodes"
    );
    assert_eq!(run.json["workload"], "kafka");
}

#[test]
fn kafka_is_valid_on_three_nodes_with_partitions_and_latency() {
    let run = kafka(
        "3",
        &[
            "--seed",
            "2",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "0.7",
            "--latency",
            "2",
            "--latency-dist",
            "exponential",
        ],
        &[],
    );
    run.assert_valid(300);
    assert!(
        run.json["net"]["server_msgs"].as_u64().unwrap() > 0,
        "followers forward to n0"
    );
    assert!(
        !run.json["nemesis"].as_array().unwrap().is_empty(),
        "the nemesis acted"
    );
}

#[test]
fn groups_are_valid_on_one_node_with_churn() {
    let run = groups("1", &["--seed", "3"], &[]);
    run.assert_valid(300);
    let stats = &run.json["workload_stats"];
    let churn: u64 = stats["churn"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(churn >= 3, "membership changed: {stats}");
    assert!(
        stats["rebalances"]["g0"].as_u64().unwrap() + stats["rebalances"]["g1"].as_u64().unwrap()
            >= 3
    );
    assert_eq!(stats["recovery_ms"]["unrecovered"], 0, "{stats}");
}

#[test]
fn groups_are_valid_on_three_nodes_with_churn_and_partitions() {
    let run = groups(
        "3",
        &[
            "--seed",
            "4",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "0.8",
        ],
        &[],
    );
    run.assert_valid(300);
}

#[test]
fn lost_writes_are_caught_on_one_and_three_nodes() {
    kafka("1", &["--seed", "5"], &["--fault", "lose-write"]).assert_invalid_with("lost-write");
    kafka("3", &["--seed", "5"], &["--fault", "lose-write"]).assert_invalid_with("lost-write");
}

#[test]
fn skipped_offsets_are_caught_on_one_and_three_nodes() {
    kafka(
        "1",
        &["--seed", "6"],
        &["--fault", "skip-offset", "--fault-every", "3"],
    )
    .assert_invalid_with("poll-skip");
    kafka(
        "3",
        &["--seed", "6"],
        &["--fault", "skip-offset", "--fault-every", "3"],
    )
    .assert_invalid_with("poll-skip");
}

#[test]
fn duplicates_are_caught_on_one_and_three_nodes() {
    kafka("1", &["--seed", "7"], &["--fault", "duplicate"]).assert_invalid_with("duplicate");
    kafka("3", &["--seed", "7"], &["--fault", "duplicate"]).assert_invalid_with("duplicate");
}

#[test]
fn double_assignment_is_caught_on_one_and_three_nodes() {
    groups("1", &["--seed", "8"], &["--fault", "double-assign"])
        .assert_invalid_with("double-assign");
    groups("3", &["--seed", "8"], &["--fault", "double-assign"])
        .assert_invalid_with("double-assign");
}

#[test]
fn a_lost_record_is_undelivered_to_the_groups() {
    groups(
        "1",
        &["--seed", "9", "--churn", "0", "--final-time-limit", "2"],
        &["--fault", "lose-write"],
    )
    .assert_invalid_with("undelivered");
}
