//! kafka-python 3.0.12 (pure Python, classic groups) against `kgroups broker`: each
//! scenario of `tests/clients/kafka_python_scenarios.py` is one test. See `kafka_support` for how
//! the client is found.

mod kafka_support;

use kafka_support::{python, scenario, serial};

fn run(name: &str) {
    let _one = serial();
    let Some(py) = python() else { return };
    scenario(&py, "kafka_python_scenarios.py", name, &[]);
}

#[test]
fn keyed_produce_then_consume_keeps_keys_in_one_partition_in_order() {
    run("keyed");
}

#[test]
fn a_group_of_three_with_synchronous_commits_reads_each_record_once() {
    run("group3");
}

#[test]
fn joins_and_leaves_under_load_with_range() {
    run("churn-eager");
}

#[test]
fn joins_and_leaves_under_load_with_roundrobin() {
    run("churn-roundrobin");
}

#[test]
fn joins_and_leaves_under_load_with_cooperative_sticky() {
    run("churn-cooperative");
}

#[test]
fn a_new_member_resumes_from_the_commit() {
    run("resume");
}

#[test]
fn two_groups_each_read_everything() {
    run("two-groups");
}

#[test]
fn a_static_member_restarts_into_its_assignment() {
    run("static");
}

#[test]
fn admin_client_topics_groups_and_offsets() {
    run("admin");
}

#[test]
fn idempotent_producer() {
    run("idempotent");
}

#[test]
fn every_codec_round_trips() {
    run("codecs");
}
