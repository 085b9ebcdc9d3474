//! KIP-848 consumer groups through the Kafka listener: confluent-kafka consumers with
//! `group.protocol=consumer` (the scenarios of `tests/clients/kip848_scenarios.py`), and
//! ConsumerGroupHeartbeat, OffsetCommit v9, OffsetFetch v9 and ConsumerGroupDescribe spoken
//! directly with the `kafka-protocol` crate for fencing, session expiry and assignors.
#![cfg(not(loom))]

mod kafka_support;

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, GroupId, ListGroupsRequest, ListGroupsResponse, MetadataRequest,
    MetadataResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_support::wire::call;
use kafka_support::{python, scenario, serial, Broker};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const FAST: &[&str] = &[
    "--group-consumer-heartbeat-interval-ms",
    "500",
    "--group-consumer-session-timeout-ms",
    "6000",
];

fn run(name: &str) {
    let _one = serial();
    let Some(py) = python() else { return };
    scenario(&py, "kip848_scenarios.py", name, FAST);
}

#[test]
fn one_consumer_reads_everything_and_commits_the_log_ends() {
    run("single");
}

#[test]
fn three_members_join_and_leave_under_load_with_no_redelivery() {
    run("churn");
}

#[test]
fn classic_and_consumer_protocols_do_not_mix_in_one_group() {
    run("mix");
}

#[test]
fn a_regex_subscription_follows_new_topics() {
    run("regex");
}

// ---- raw protocol ----

const UNKNOWN_MEMBER_ID: i16 = 25;
const UNSUPPORTED_ASSIGNOR: i16 = 112;
const FENCED_MEMBER_EPOCH: i16 = 110;
const STALE_MEMBER_EPOCH: i16 = 113;

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

struct Client {
    s: TcpStream,
    corr: i32,
}

impl Client {
    fn new(b: &Broker) -> Client {
        let s = TcpStream::connect(&b.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Client { s, corr: 0 }
    }

    fn next(&mut self) -> i32 {
        self.corr += 1;
        self.corr
    }

    /// Creates `topic` (auto-creation, `--partitions`) and returns its topic id.
    fn topic(&mut self, topic: &str) -> uuid::Uuid {
        let req = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(TopicName(sb(topic))))
            ]))
            .with_allow_auto_topic_creation(true);
        let c = self.next();
        let resp: MetadataResponse = call(&mut self.s, ApiKey::Metadata, 12, c, &req);
        assert_eq!(resp.topics[0].error_code, 0);
        resp.topics[0].topic_id
    }

    fn heartbeat(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
        topics: Option<&[&str]>,
        owned: Option<&[(uuid::Uuid, Vec<i32>)]>,
        assignor: Option<&str>,
    ) -> ConsumerGroupHeartbeatResponse {
        let req = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_member_id(sb(member))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(if epoch == 0 { 30_000 } else { -1 })
            .with_subscribed_topic_names(
                topics.map(|ts| ts.iter().map(|t| TopicName(sb(t))).collect()),
            )
            .with_server_assignor(assignor.map(sb))
            .with_topic_partitions(owned.map(|o| {
                o.iter()
                    .map(|(id, ps)| {
                        TopicPartitions::default()
                            .with_topic_id(*id)
                            .with_partitions(ps.clone())
                    })
                    .collect()
            }));
        let c = self.next();
        call(&mut self.s, ApiKey::ConsumerGroupHeartbeat, 1, c, &req)
    }

    /// Commits `offset` to `partitions` of `topic`; the per-partition error codes.
    fn commit(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
        topic: &str,
        partitions: &[i32],
        offset: i64,
    ) -> Vec<i16> {
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_member_id(sb(member))
            .with_generation_id_or_member_epoch(epoch)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(sb(topic)))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&p| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(offset)
                        })
                        .collect(),
                )]);
        let c = self.next();
        let resp: OffsetCommitResponse = call(&mut self.s, ApiKey::OffsetCommit, 9, c, &req);
        resp.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect()
    }

    /// OffsetFetch v9 as `member` at `epoch`: the group's error code and the committed offsets.
    fn fetch(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
        topic: &str,
        partitions: &[i32],
    ) -> (i16, Vec<i64>) {
        let req =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(sb(group)))
                .with_member_id(Some(sb(member)))
                .with_member_epoch(epoch)
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(TopicName(sb(topic)))
                    .with_partition_indexes(partitions.to_vec())]))]);
        let c = self.next();
        let resp: OffsetFetchResponse = call(&mut self.s, ApiKey::OffsetFetch, 9, c, &req);
        let g = &resp.groups[0];
        let offsets = g
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.committed_offset))
            .collect();
        (g.error_code, offsets)
    }

    fn describe(&mut self, group: &str) -> ConsumerGroupDescribeResponse {
        let req = ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(sb(group))]);
        let c = self.next();
        call(&mut self.s, ApiKey::ConsumerGroupDescribe, 0, c, &req)
    }
}

/// The partitions of an answer's assignment (one topic), sorted; `None` if it carries none.
fn assigned(r: &ConsumerGroupHeartbeatResponse) -> Option<Vec<i32>> {
    r.assignment.as_ref().map(|a| {
        let mut v: Vec<i32> = a
            .topic_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().copied())
            .collect();
        v.sort_unstable();
        v
    })
}

/// Heartbeats as `member` (reporting `owned` as what it owns, acknowledging revocations) until
/// `done` holds for its assignment, or fails after `limit` rounds.
fn heartbeat_until(
    c: &mut Client,
    group: &str,
    member: &str,
    epoch: &mut i32,
    owned: &mut Vec<i32>,
    id: uuid::Uuid,
    mut done: impl FnMut(&[i32]) -> bool,
) {
    for _ in 0..100 {
        let r = c.heartbeat(
            group,
            member,
            *epoch,
            None,
            Some(&[(id, owned.clone())]),
            None,
        );
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
        *epoch = r.member_epoch;
        if let Some(a) = assigned(&r) {
            *owned = a;
        }
        if done(owned) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{member} never reached the wanted assignment; it owns {owned:?}");
}

#[test]
fn a_commit_with_a_stale_or_fenced_member_epoch_is_refused() {
    let _one = serial();
    let b = Broker::start(&["--partitions", "4"]);
    let mut c = Client::new(&b);
    let id = c.topic("fence");
    let g = "g-fence";

    let a = c.heartbeat(g, "", 0, Some(&["fence"]), Some(&[]), Some("uniform"));
    assert_eq!(a.error_code, 0, "{:?}", a.error_message);
    let member_a = a
        .member_id
        .clone()
        .expect("the broker names a member")
        .to_string();
    assert!(!member_a.is_empty());
    let mut epoch_a = a.member_epoch;
    assert!(epoch_a > 0);
    let mut owned_a = assigned(&a).expect("a join carries the assignment");
    assert_eq!(owned_a, vec![0, 1, 2, 3]);
    assert_eq!(
        c.commit(g, &member_a, epoch_a, "fence", &[0, 1, 2, 3], 5),
        vec![0; 4]
    );

    // B joins: A must revoke two partitions, and stays at its member epoch until it does.
    let r = c.heartbeat(g, "member-b", 0, Some(&["fence"]), Some(&[]), None);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let mut epoch_b = r.member_epoch;
    assert!(epoch_b > epoch_a);
    let mut owned_b = assigned(&r).unwrap_or_default();
    let old_epoch = epoch_a;
    let r = c.heartbeat(g, &member_a, epoch_a, None, None, None);
    assert_eq!(
        r.member_epoch, old_epoch,
        "unrevoked: the member epoch stays"
    );
    let keep = assigned(&r).expect("a changed assignment is sent");
    assert_eq!(keep.len(), 2);
    // A acknowledges the revocation: it reports only what it keeps.
    owned_a = keep.clone();
    heartbeat_until(&mut c, g, &member_a, &mut epoch_a, &mut owned_a, id, |_| {
        true
    });
    assert!(epoch_a > old_epoch);
    heartbeat_until(&mut c, g, "member-b", &mut epoch_b, &mut owned_b, id, |o| {
        o.len() == 2
    });
    let moved: Vec<i32> = owned_b.clone();

    // The old epoch is stale; a newer one than the coordinator gave out is fenced.
    assert_eq!(
        c.commit(g, &member_a, old_epoch, "fence", &keep, 9),
        vec![STALE_MEMBER_EPOCH; 2]
    );
    assert_eq!(
        c.commit(g, &member_a, epoch_a + 5, "fence", &keep, 9),
        vec![FENCED_MEMBER_EPOCH; 2]
    );
    assert_eq!(
        c.commit(g, "zombie", epoch_a, "fence", &keep, 9),
        vec![UNKNOWN_MEMBER_ID; 2]
    );
    assert_eq!(
        c.commit(g, "", -1, "fence", &keep, 9),
        vec![UNKNOWN_MEMBER_ID; 2]
    );
    // At its epoch A may commit what it owns, but not what moved to B.
    assert_eq!(
        c.commit(g, &member_a, epoch_a, "fence", &keep, 9),
        vec![0; 2]
    );
    assert_eq!(
        c.commit(g, &member_a, epoch_a, "fence", &moved, 9),
        vec![STALE_MEMBER_EPOCH; 2]
    );
    assert_eq!(
        c.fetch(g, &member_a, old_epoch, "fence", &keep).0,
        STALE_MEMBER_EPOCH
    );
    assert_eq!(
        c.fetch(g, &member_a, epoch_a, "fence", &keep),
        (0, vec![9, 9])
    );
    assert_eq!(
        c.fetch(g, "member-b", epoch_b, "fence", &moved),
        (0, vec![5, 5])
    );

    // A heartbeat from the future is fenced.
    let r = c.heartbeat(g, &member_a, epoch_a + 5, None, None, None);
    assert_eq!(r.error_code, FENCED_MEMBER_EPOCH);

    let d = c.describe(g);
    let dg = &d.groups[0];
    assert_eq!(dg.error_code, 0, "{:?}", dg.error_message);
    assert_eq!(dg.assignor_name.as_str(), "uniform");
    assert_eq!(dg.members.len(), 2);
    assert_eq!(&*dg.group_state, "Stable");
    for m in &dg.members {
        let n: usize = m
            .assignment
            .topic_partitions
            .iter()
            .map(|t| t.partitions.len())
            .sum();
        assert_eq!(n, 2, "{m:?}");
        assert_eq!(m.assignment.topic_partitions[0].topic_id, id);
    }

    // ListGroups v5 types it "consumer".
    let req = ListGroupsRequest::default().with_types_filter(vec![sb("consumer")]);
    let c5 = c.next();
    let listed: ListGroupsResponse = call(&mut c.s, ApiKey::ListGroups, 5, c5, &req);
    let ids: Vec<&str> = listed.groups.iter().map(|g| &*g.group_id.0).collect();
    assert_eq!(ids, vec![g]);
    assert_eq!(&*listed.groups[0].group_type, "consumer");

    // A leaves; B gets everything.
    let r = c.heartbeat(g, &member_a, -1, None, None, None);
    assert_eq!((r.error_code, r.member_epoch), (0, -1));
    heartbeat_until(&mut c, g, "member-b", &mut epoch_b, &mut owned_b, id, |o| {
        o.len() == 4
    });
    assert_eq!(
        c.commit(g, &member_a, epoch_a, "fence", &keep, 9),
        vec![UNKNOWN_MEMBER_ID; 2]
    );
}

#[test]
fn session_expiry_moves_a_members_partitions() {
    let _one = serial();
    let b = Broker::start(&[
        "--partitions",
        "4",
        "--group-consumer-session-timeout-ms",
        "1000",
    ]);
    let mut c = Client::new(&b);
    let id = c.topic("expiry");
    let g = "g-expiry";
    let r = c.heartbeat(g, "a", 0, Some(&["expiry"]), Some(&[]), None);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let (mut epoch_a, mut owned_a) = (r.member_epoch, assigned(&r).unwrap());
    let r = c.heartbeat(g, "b", 0, Some(&["expiry"]), Some(&[]), None);
    let (mut epoch_b, mut owned_b) = (r.member_epoch, assigned(&r).unwrap_or_default());
    heartbeat_until(&mut c, g, "a", &mut epoch_a, &mut owned_a, id, |o| {
        o.len() == 2
    });
    heartbeat_until(&mut c, g, "b", &mut epoch_b, &mut owned_b, id, |o| {
        o.len() >= 2
    });
    // Only B heartbeats from now on: A's session runs out and B gets its partitions.
    let start = Instant::now();
    while owned_b.len() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "A's partitions never moved"
        );
        heartbeat_until(&mut c, g, "b", &mut epoch_b, &mut owned_b, id, |_| true);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(owned_b, vec![0, 1, 2, 3]);
    let r = c.heartbeat(g, "a", epoch_a, None, None, None);
    assert_eq!(r.error_code, UNKNOWN_MEMBER_ID);
    assert_eq!(
        c.commit(g, "a", epoch_a, "expiry", &owned_a, 1),
        vec![UNKNOWN_MEMBER_ID; 2]
    );
}

#[test]
fn describe_groups_shows_a_consumer_groups_client_id_host_and_server_assignor() {
    let _one = serial();
    let b = Broker::start(&["--partitions", "2"]);
    let mut c = Client::new(&b);
    c.topic("dg");
    let r = c.heartbeat("g-dg", "m1", 0, Some(&["dg"]), Some(&[]), None);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    // The classic API (what Kafka's and kgroups' consumer-groups tools send) on a KIP-848 group.
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(sb("g-dg"))]);
    let n = c.next();
    let d: DescribeGroupsResponse = call(&mut c.s, ApiKey::DescribeGroups, 5, n, &req);
    let g = &d.groups[0];
    assert_eq!(g.error_code, 0);
    assert_eq!(g.protocol_type.as_str(), "consumer");
    assert_eq!(
        g.protocol_data.as_str(),
        "uniform",
        "the server assignor's name"
    );
    assert!(
        ["Stable", "Reconciling"].contains(&g.group_state.as_str()),
        "{}",
        g.group_state.as_str()
    );
    assert_eq!(g.members.len(), 1);
    let m = &g.members[0];
    assert_eq!(m.member_id.as_str(), "m1");
    assert_eq!(
        m.client_id.as_str(),
        "wire-test",
        "the heartbeat's client id"
    );
    assert_eq!(m.client_host.as_str(), "/127.0.0.1");
    // An unknown group is Dead, as Kafka answers below DescribeGroups v6.
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(sb("no-such-group"))]);
    let n = c.next();
    let d: DescribeGroupsResponse = call(&mut c.s, ApiKey::DescribeGroups, 5, n, &req);
    assert_eq!(d.groups[0].group_state.as_str(), "Dead");
}

#[test]
fn server_assignors_uniform_and_range_others_refused() {
    let _one = serial();
    let b = Broker::start(&["--partitions", "4"]);
    let mut c = Client::new(&b);
    c.topic("ra");
    let r = c.heartbeat("g-x", "x", 0, Some(&["ra"]), Some(&[]), Some("sticky"));
    assert_eq!(r.error_code, UNSUPPORTED_ASSIGNOR);
    assert!(r.error_message.is_some());
    let r = c.heartbeat("g-r", "r1", 0, Some(&["ra"]), Some(&[]), Some("range"));
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let d = c.describe("g-r");
    assert_eq!(d.groups[0].assignor_name.as_str(), "range");
    // Bad input answers with an error, never a panic: no group id, no subscription on a join.
    let r = c.heartbeat("", "r2", 0, Some(&["ra"]), Some(&[]), None);
    assert_ne!(r.error_code, 0);
    let r = c.heartbeat("g-r", "r3", 0, None, Some(&[]), None);
    assert_ne!(r.error_code, 0);
    let r = c.heartbeat("g-r", "r4", -7, None, None, None);
    assert_ne!(r.error_code, 0);
    // A regular expression subscribes to every topic it matches whole; a bad one is refused.
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb("g-rx")))
        .with_member_id(sb("x"))
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_regex(Some(sb("r.")))
        .with_topic_partitions(Some(vec![]));
    let r: ConsumerGroupHeartbeatResponse =
        call(&mut c.s, ApiKey::ConsumerGroupHeartbeat, 1, 90, &req);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(assigned(&r), Some(vec![0, 1, 2, 3]));
    let bad = req
        .with_member_id(sb("y"))
        .with_subscribed_topic_regex(Some(sb("(")));
    let r: ConsumerGroupHeartbeatResponse =
        call(&mut c.s, ApiKey::ConsumerGroupHeartbeat, 1, 91, &bad);
    assert_eq!(r.error_code, 128);
    // One live member per instance id: another gets UNRELEASED_INSTANCE_ID until it leaves (-2).
    let stat = |member: &str, epoch: i32| {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(sb("g-static")))
            .with_member_id(sb(member))
            .with_member_epoch(epoch)
            .with_instance_id(Some(sb("i-1")))
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(sb("ra"))]))
            .with_topic_partitions(Some(vec![]))
    };
    let r: ConsumerGroupHeartbeatResponse = call(
        &mut c.s,
        ApiKey::ConsumerGroupHeartbeat,
        1,
        92,
        &stat("s1", 0),
    );
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let r: ConsumerGroupHeartbeatResponse = call(
        &mut c.s,
        ApiKey::ConsumerGroupHeartbeat,
        1,
        93,
        &stat("s2", 0),
    );
    assert_eq!(r.error_code, 111);
    let r: ConsumerGroupHeartbeatResponse = call(
        &mut c.s,
        ApiKey::ConsumerGroupHeartbeat,
        1,
        94,
        &stat("s1", -2),
    );
    assert_eq!((r.error_code, r.member_epoch), (0, -2));
    let r: ConsumerGroupHeartbeatResponse = call(
        &mut c.s,
        ApiKey::ConsumerGroupHeartbeat,
        1,
        95,
        &stat("s2", 0),
    );
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(assigned(&r), Some(vec![0, 1, 2, 3]));

    let d = c.describe("no-such-group");
    assert_eq!(d.groups[0].error_code, 69);
}
