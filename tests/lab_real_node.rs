//! kgroups-lab against the real kgroups node: one node, and clusters of three with network
//! partitions (the cluster, issue 5). Each run takes a few seconds.

mod lab_support;

use lab_support::{kgroups, run_workload};

fn kafka(nodes: &str, extra: &[&str]) -> lab_support::Run {
    let settings = [
        "--concurrency",
        "2n",
        "--rate",
        "500",
        "--time-limit",
        "5",
        "--final-wait",
        "1",
    ];
    run_workload("kafka", &kgroups(), nodes, &settings, extra, &[])
}

fn groups(nodes: &str, extra: &[&str]) -> lab_support::Run {
    let settings = [
        "--rate",
        "300",
        "--time-limit",
        "5",
        "--final-wait",
        "1",
        "--churn",
        "0.5",
    ];
    run_workload("groups", &kgroups(), nodes, &settings, extra, &[])
}

#[test]
fn real_node_kafka_on_one_node() {
    kafka("1", &["--seed", "1"]).assert_valid(500);
}

#[test]
fn real_node_kafka_on_three_nodes_with_partitions() {
    kafka(
        "3",
        &[
            "--seed",
            "2",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "1",
        ],
    )
    .assert_valid(500);
}

#[test]
fn real_node_groups_on_one_node_with_churn() {
    groups("1", &["--seed", "3"]).assert_valid(500);
}

#[test]
fn real_node_groups_on_three_nodes_with_churn() {
    groups("3", &["--seed", "4"]).assert_valid(500);
}

#[test]
fn real_node_groups_on_three_nodes_with_churn_and_partitions() {
    groups(
        "3",
        &[
            "--seed",
            "5",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "1",
        ],
    )
    .assert_valid(500);
}

#[test]
fn real_node_kafka_on_two_nodes() {
    kafka("2", &["--seed", "6"]).assert_valid(500);
}
