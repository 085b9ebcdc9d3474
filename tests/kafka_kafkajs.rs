//! kafkajs 2.2 (pure JavaScript on Debian's nodejs; classic groups, its roundRobin assignor)
//! against `kgroups broker`: each scenario of `tests/clients/kafkajs_scenarios.js` is one test.
//! See `kafka_support` for how the client is found.

mod kafka_support;

use kafka_support::{node, scenario_in, serial};

fn run(name: &str) {
    let _one = serial();
    let Some(cmd) = node() else { return };
    scenario_in(cmd, "kafkajs_scenarios.js", name, &[]);
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
fn joins_and_leaves_under_load_with_roundrobin() {
    run("churn");
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
fn admin_topics_groups_and_offsets() {
    run("admin");
}

#[test]
fn idempotent_producer() {
    run("idempotent");
}

#[test]
fn gzip_round_trips() {
    run("codecs");
}
