//! Unit tests of the coordinator's rules. Time is the `now` argument; nothing sleeps.

use super::*;
use crate::partition::Key;

fn topic(name: &str, partitions: u32, records: u64) -> Arc<Topic> {
    let t = Arc::new(Topic::new(name, partitions));
    for p in 0..partitions {
        fill(&t, p, records);
    }
    t
}

fn fill(t: &Topic, p: u32, records: u64) {
    let part = t.partition(p).unwrap();
    for _ in 0..records {
        let i = part.end();
        part.append(Some(Key::str("k")), format!("{p}:{i}").as_bytes());
    }
}

fn join(c: &Coordinator, g: &str, m: &str, t: &Arc<Topic>, now: Millis) -> MemberView {
    c.subscribe(g, m, t, &JoinOptions::default(), now).unwrap()
}

/// Polls and returns the (partition, offset)s handed out.
fn poll(c: &Coordinator, g: &str, m: &str, max: usize, now: Millis) -> Vec<(u32, u64)> {
    let mut got = Vec::new();
    c.poll(g, m, max, now, |_, p, r| got.push((p, r.offset)))
        .unwrap();
    got
}

fn parts(v: &MemberView) -> Vec<u32> {
    v.partitions.iter().map(|(_, p)| *p).collect()
}

fn owned(c: &Coordinator, g: &str, m: &str, now: Millis) -> Vec<u32> {
    parts(&c.heartbeat(g, m, now).unwrap())
}

#[test]
fn joins_and_leaves_bump_the_group_epoch_and_partitions_move_on_release() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 4, 0);
    let a = join(&c, "g", "a", &t, 0);
    assert_eq!((a.member_epoch, parts(&a)), (1, vec![0, 1, 2, 3]));
    assert_eq!(a.state, MemberState::Stable);
    // A live member subscribing again is a heartbeat: no new epoch.
    assert_eq!(join(&c, "g", "a", &t, 1).member_epoch, 1);
    // b joins: epoch 2. Its target (two of a's partitions) is pending until a releases them.
    let b = join(&c, "g", "b", &t, 2);
    assert_eq!((b.member_epoch, b.group_epoch), (2, 2));
    assert!(b.partitions.is_empty());
    assert_eq!(b.pending.len(), 2);
    assert_eq!(b.state, MemberState::UnreleasedPartitions);
    assert!(c.reconciling("g"));
    // a still owns all four, two of them pending revocation, at its old member epoch.
    let d = c.describe("g", 2).unwrap();
    let da = &d.members[0].view;
    assert_eq!((da.member_epoch, da.partitions.len()), (1, 4));
    assert_eq!(da.revoking, b.pending);
    assert_eq!(da.state, MemberState::UnrevokedPartitions);
    assert_eq!(d.group_epoch, 2);
    // a's heartbeat releases them: a reaches epoch 2 with two, and b has the other two.
    let a = c.heartbeat("g", "a", 3).unwrap();
    assert_eq!((a.member_epoch, a.partitions.len()), (2, 2));
    assert!(a.revoking.is_empty());
    let b = c.heartbeat("g", "b", 3).unwrap();
    assert_eq!((b.member_epoch, b.state), (2, MemberState::Stable));
    assert_eq!(parts(&b).len(), 2);
    assert!(parts(&a).iter().all(|p| !parts(&b).contains(p)));
    assert!(!c.reconciling("g"));
    assert_eq!(c.check_snapshot("g"), Ok(2));
    // A leave releases everything at once.
    c.unsubscribe("g", "b", 4).unwrap();
    let a = c.heartbeat("g", "a", 5).unwrap();
    assert_eq!((a.member_epoch, parts(&a)), (3, vec![0, 1, 2, 3]));
    assert!(matches!(
        c.heartbeat("g", "b", 5),
        Err(Error::UnknownMember { .. })
    ));
}

#[test]
fn sticky_join_keeps_the_others_partitions() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 9, 0);
    join(&c, "g", "a", &t, 0);
    join(&c, "g", "b", &t, 0);
    let a1 = owned(&c, "g", "a", 0);
    let b1 = owned(&c, "g", "b", 0);
    join(&c, "g", "c", &t, 0);
    let a2 = owned(&c, "g", "a", 0);
    let b2 = owned(&c, "g", "b", 0);
    assert!(a2.iter().all(|p| a1.contains(p)));
    assert!(b2.iter().all(|p| b1.contains(p)));
    assert_eq!(owned(&c, "g", "c", 0).len(), 3);
}

#[test]
fn extra_members_stay_idle() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 2, 0);
    for m in ["a", "b", "c"] {
        join(&c, "g", m, &t, 0);
    }
    let counts: Vec<usize> = ["a", "b", "c"]
        .iter()
        .map(|m| owned(&c, "g", m, 0).len())
        .collect();
    assert_eq!(counts.iter().sum::<usize>(), 2);
    assert_eq!(counts.iter().filter(|&&n| n == 0).count(), 1);
}

#[test]
fn session_expiry_follows_the_injected_clock() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 2, 0);
    join(&c, "g", "a", &t, 0);
    join(&c, "g", "b", &t, 0);
    c.heartbeat("g", "a", 9_999).unwrap();
    assert_eq!(c.expire(9_999), 0);
    assert_eq!(c.check_snapshot("g"), Ok(2));
    // b was last seen at 0: at 10 000 its 10 s session has run out; a's has not.
    assert_eq!(c.expire(10_000), 1);
    assert_eq!(c.check_snapshot("g"), Ok(3));
    assert_eq!(owned(&c, "g", "a", 10_000), vec![0, 1]);
    assert!(matches!(
        c.heartbeat("g", "b", 10_000),
        Err(Error::UnknownMember { .. })
    ));
    // A poll is a heartbeat too.
    poll(&c, "g", "a", 1, 19_000);
    assert_eq!(c.expire(28_999), 0);
    assert_eq!(c.expire(29_000), 1);
    assert!(c.describe("g", 29_000).unwrap().members.is_empty());
}

#[test]
fn a_member_polling_after_its_session_ran_out_is_removed() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 1, 3);
    c.subscribe(
        "g",
        "a",
        &t,
        &JoinOptions {
            session_timeout_ms: Some(100),
            ..JoinOptions::default()
        },
        0,
    )
    .unwrap();
    assert_eq!(poll(&c, "g", "a", 1, 99).len(), 1);
    assert!(matches!(
        c.poll("g", "a", 1, 199, |_, _, _| {}),
        Err(Error::UnknownMember { .. })
    ));
    assert_eq!(c.check_snapshot("g"), Ok(2));
    // The refused poll committed nothing, and an expired member never commits: joining again
    // starts over from the reset policy.
    join(&c, "g", "a", &t, 200);
    assert_eq!(poll(&c, "g", "a", 10, 201), vec![(0, 0), (0, 1), (0, 2)]);
}

#[test]
fn polls_are_fair_across_partitions_and_advance_positions() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 3, 10);
    join(&c, "g", "a", &t, 0);
    let got = poll(&c, "g", "a", 6, 0);
    assert_eq!(got.len(), 6);
    for p in 0..3 {
        let offs: Vec<u64> = got.iter().filter(|x| x.0 == p).map(|x| x.1).collect();
        assert_eq!(offs, vec![0, 1], "partition {p}");
    }
    // Fewer than one per partition: the starting partition rotates.
    let mut firsts = BTreeSet::new();
    for _ in 0..3 {
        let got = poll(&c, "g", "a", 1, 0);
        assert_eq!(got.len(), 1);
        firsts.insert(got[0].0);
    }
    assert_eq!(firsts.len(), 3);
    // Leftover budget goes to partitions that still have records.
    fill(&t, 1, 20);
    let got = poll(&c, "g", "a", 41, 0);
    assert_eq!(got.iter().filter(|x| x.0 == 1).count(), 27);
    assert_eq!(got.len(), 7 + 27 + 7);
    assert_eq!(c.position("g", "a", "t", 1), Some(30));
    assert!(poll(&c, "g", "a", 10, 0).is_empty());
}

#[test]
fn auto_commit_commits_the_previous_poll() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 1, 10);
    join(&c, "g", "a", &t, 0);
    assert_eq!(poll(&c, "g", "a", 3, 0).len(), 3);
    assert_eq!(c.committed("g", "t", 0), None);
    assert_eq!(poll(&c, "g", "a", 2, 0), vec![(0, 3), (0, 4)]);
    assert_eq!(c.committed("g", "t", 0), Some(3));
    poll(&c, "g", "a", 0, 0);
    assert_eq!(c.committed("g", "t", 0), Some(5));
}

#[test]
fn without_auto_commit_nothing_is_committed() {
    let c = Coordinator::new(GroupConfig {
        auto_commit: false,
        ..GroupConfig::default()
    });
    let t = topic("t", 1, 10);
    join(&c, "g", "a", &t, 0);
    poll(&c, "g", "a", 3, 0);
    poll(&c, "g", "a", 3, 0);
    c.unsubscribe("g", "a", 0).unwrap();
    assert_eq!(c.committed("g", "t", 0), None);
    // Per member: a member may turn it on.
    c.subscribe(
        "g",
        "b",
        &t,
        &JoinOptions {
            auto_commit: Some(true),
            ..JoinOptions::default()
        },
        0,
    )
    .unwrap();
    assert_eq!(poll(&c, "g", "b", 4, 0).first(), Some(&(0, 0)));
    poll(&c, "g", "b", 1, 0);
    assert_eq!(c.committed("g", "t", 0), Some(4));
}

#[test]
fn a_clean_leave_commits_and_the_next_owner_resumes_there() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 1, 10);
    join(&c, "g", "a", &t, 0);
    assert_eq!(poll(&c, "g", "a", 5, 0).len(), 5);
    c.unsubscribe("g", "a", 0).unwrap();
    assert_eq!(c.committed("g", "t", 0), Some(5));
    join(&c, "g", "b", &t, 0);
    assert_eq!(poll(&c, "g", "b", 2, 0), vec![(0, 5), (0, 6)]);
}

/// The moved partition of a join: (moved, kept), after `b` joined a group where `a` owned both
/// partitions of `t`.
fn moved_and_kept(c: &Coordinator) -> (u32, u32) {
    let pending = c.describe("g", 0).unwrap().members[1].view.pending.clone();
    assert_eq!(pending.len(), 1);
    let moved = pending[0].1;
    (moved, 1 - moved)
}

#[test]
fn a_partition_moved_between_live_members_resumes_where_its_old_owner_stopped() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 2, 10);
    join(&c, "g", "a", &t, 0);
    poll(&c, "g", "a", 6, 0); // 3 from each
    poll(&c, "g", "a", 4, 0); // commits 3 and 3; hands out 2 more from each
    assert_eq!(c.committed("g", "t", 1), Some(3));
    join(&c, "g", "b", &t, 0);
    let (moved, kept) = moved_and_kept(&c);
    // Until a releases it, the moved partition is a's: b gets nothing, a may still commit it.
    assert!(poll(&c, "g", "b", 3, 0).is_empty());
    assert_eq!(c.position("g", "a", "t", moved), Some(5));
    // a's next poll releases it, committing a's position (5), then serves only what it kept.
    assert_eq!(poll(&c, "g", "a", 1, 0), vec![(kept, 5)]);
    assert_eq!(c.committed("g", "t", moved), Some(5));
    assert_eq!(c.position("g", "a", "t", moved), None);
    // b starts exactly there: nothing is delivered twice.
    assert_eq!(
        poll(&c, "g", "b", 3, 0),
        vec![(moved, 5), (moved, 6), (moved, 7)]
    );
    // a's auto-commit does not touch the moved partition: b's progress stands.
    poll(&c, "g", "a", 0, 0);
    poll(&c, "g", "b", 0, 0);
    assert_eq!(c.committed("g", "t", moved), Some(8));
    assert_eq!(c.committed("g", "t", kept), Some(6));
}

#[test]
fn a_partition_taken_from_an_expired_member_resumes_from_the_last_commit() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 2, 10);
    join(&c, "g", "a", &t, 0);
    poll(&c, "g", "a", 6, 0); // 3 from each
    poll(&c, "g", "a", 4, 0); // commits 3 and 3; hands out 2 more from each
    join(&c, "g", "b", &t, 5_000);
    let (moved, _) = moved_and_kept(&c);
    // a never comes back: at 10 s its session has run out; everything goes to b at once, from
    // the last commit (offsets 3 and 4 come again: at-least-once).
    assert_eq!(c.expire(10_000), 1);
    assert_eq!(owned(&c, "g", "b", 10_000), vec![0, 1]);
    let got = poll(&c, "g", "b", 4, 10_000);
    assert_eq!(
        got.iter().filter(|x| x.0 == moved).map(|x| x.1).min(),
        Some(3)
    );
    assert!(!got.iter().any(|x| x.1 < 3));
}

#[test]
fn without_auto_commit_a_release_commits_nothing() {
    let c = Coordinator::new(GroupConfig {
        auto_commit: false,
        ..GroupConfig::default()
    });
    let t = topic("t", 2, 10);
    join(&c, "g", "a", &t, 0);
    poll(&c, "g", "a", 6, 0);
    c.commit("g", Some("a"), "t", 0, 1).unwrap();
    c.commit("g", Some("a"), "t", 1, 1).unwrap();
    join(&c, "g", "b", &t, 0);
    let (moved, _) = moved_and_kept(&c);
    c.heartbeat("g", "a", 0).unwrap();
    assert_eq!(c.committed("g", "t", moved), Some(1));
    assert_eq!(poll(&c, "g", "b", 1, 0), vec![(moved, 1)]);
}

#[test]
fn a_commit_for_a_lost_partition_is_fenced() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 2, 0);
    join(&c, "g", "a", &t, 0);
    c.commit("g", Some("a"), "t", 1, 4).unwrap();
    c.commit("g", Some("a"), "t", 0, 2).unwrap();
    join(&c, "g", "b", &t, 0);
    let (moved, _) = moved_and_kept(&c);
    // Pending revocation: still a's to commit (Kafka's rule), not yet b's.
    c.commit("g", Some("a"), "t", moved, 5).unwrap();
    assert!(matches!(
        c.commit("g", Some("b"), "t", moved, 6),
        Err(Error::Fenced { .. })
    ));
    c.heartbeat("g", "a", 0).unwrap();
    assert_eq!(owned(&c, "g", "b", 0), vec![moved]);
    assert_eq!(c.committed("g", "t", moved), Some(5));
    c.commit("g", Some("b"), "t", moved, 7).unwrap();
    let err = c.commit("g", Some("a"), "t", moved, 1).unwrap_err();
    assert_eq!(
        err,
        Error::Fenced {
            group: "g".into(),
            member: "a".into(),
            topic: "t".into(),
            partition: moved,
            group_epoch: 2
        }
    );
    assert_eq!(c.committed("g", "t", moved), Some(7));
    // The partition a kept is still a's to commit.
    c.commit("g", Some("a"), "t", 1 - moved, 9).unwrap();
    // A topic the member does not own at all: fenced too.
    assert!(matches!(
        c.commit("g", Some("a"), "u", 0, 1),
        Err(Error::Fenced { .. })
    ));
    // Non-members and unknown partitions.
    assert!(matches!(
        c.commit("g", Some("z"), "t", 0, 1),
        Err(Error::UnknownMember { .. })
    ));
    assert!(matches!(
        c.commit("g", Some("a"), "t", 5, 1),
        Err(Error::UnknownPartition { .. })
    ));
    // An admin commit is accepted, whoever owns the partition.
    c.commit("g", None, "t", moved, 3).unwrap();
    assert_eq!(c.committed("g", "t", moved), Some(3));
}

#[test]
fn latest_starts_at_the_log_end_and_earliest_at_zero() {
    let c = Coordinator::new(GroupConfig {
        reset: ResetPolicy::Latest,
        ..GroupConfig::default()
    });
    let t = topic("t", 1, 5);
    join(&c, "g", "a", &t, 0);
    assert!(poll(&c, "g", "a", 10, 0).is_empty());
    fill(&t, 0, 2);
    assert_eq!(poll(&c, "g", "a", 10, 0), vec![(0, 5), (0, 6)]);

    let c = Coordinator::new(GroupConfig::default());
    join(&c, "g", "a", &t, 0);
    assert_eq!(poll(&c, "g", "a", 10, 0).len(), 7);
}

#[test]
fn a_commit_wins_over_the_reset_policy() {
    let c = Coordinator::new(GroupConfig {
        reset: ResetPolicy::Latest,
        ..GroupConfig::default()
    });
    let t = topic("t", 1, 5);
    c.commit("g", None, "t", 0, 2).unwrap();
    join(&c, "g", "a", &t, 0);
    assert_eq!(poll(&c, "g", "a", 10, 0), vec![(0, 2), (0, 3), (0, 4)]);
}

#[test]
fn a_commit_beyond_the_log_end_is_accepted_and_reads_clamp() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 1, 5);
    join(&c, "g", "a", &t, 0);
    c.commit("g", Some("a"), "t", 0, 100).unwrap();
    assert_eq!(c.committed("g", "t", 0), Some(100));
    assert!(poll(&c, "g", "a", 10, 0).is_empty());
    let d = c.describe("g", 0).unwrap();
    assert_eq!(d.partitions[0].lag, Some(0));
    assert_eq!(d.partitions[0].log_end, 5);
}

#[test]
fn describe_shows_owners_commits_log_ends_and_lag() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 2, 0);
    fill(&t, 0, 10);
    fill(&t, 1, 4);
    join(&c, "g", "a", &t, 0);
    c.commit("g", Some("a"), "t", 0, 7).unwrap();
    let d = c.describe("g", 0).unwrap();
    assert_eq!(d.group, "g");
    assert_eq!(d.group_epoch, 1);
    assert_eq!(d.assignor, AssignorKind::CooperativeSticky);
    assert_eq!(
        d.members,
        vec![MemberDescription {
            id: "a".to_string(),
            view: MemberView {
                member_epoch: 1,
                group_epoch: 1,
                state: MemberState::Stable,
                partitions: vec![("t".to_string(), 0), ("t".to_string(), 1)],
                revoking: vec![],
                pending: vec![],
            },
            topics: vec!["t".to_string()],
        }]
    );
    assert_eq!(
        d.partitions,
        vec![
            PartitionRow {
                topic: "t".into(),
                partition: 0,
                owner: Some("a".into()),
                committed: Some(7),
                log_end: 10,
                lag: Some(3),
            },
            PartitionRow {
                topic: "t".into(),
                partition: 1,
                owner: Some("a".into()),
                committed: None,
                log_end: 4,
                lag: None,
            },
        ]
    );
    assert_eq!(
        c.describe("nope", 0),
        Err(Error::UnknownGroup("nope".into()))
    );
}

#[test]
fn reset_offsets_needs_an_empty_group_and_clamps() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 2, 6);
    join(&c, "g", "a", &t, 0);
    assert_eq!(
        c.reset_offsets("g", None, ResetTo::Earliest, 0),
        Err(Error::GroupNotEmpty("g".into()))
    );
    c.unsubscribe("g", "a", 0).unwrap();
    c.reset_offsets("g", None, ResetTo::Latest, 0).unwrap();
    assert_eq!(c.committed("g", "t", 0), Some(6));
    assert_eq!(c.committed("g", "t", 1), Some(6));
    c.reset_offsets("g", Some(&t), ResetTo::Offset(1000), 0)
        .unwrap();
    assert_eq!(c.committed("g", "t", 1), Some(6));
    c.reset_offsets("g", Some(&t), ResetTo::Offset(2), 0)
        .unwrap();
    assert_eq!(c.committed("g", "t", 0), Some(2));
    join(&c, "g", "b", &t, 0);
    assert_eq!(poll(&c, "g", "b", 2, 0), vec![(0, 2), (1, 2)]);
    c.unsubscribe("g", "b", 0).unwrap();
    c.reset_offsets("g", None, ResetTo::Earliest, 0).unwrap();
    assert_eq!(c.committed("g", "t", 0), Some(0));
    // A member whose session ran out does not count as live.
    join(&c, "g", "c", &t, 0);
    c.reset_offsets("g", None, ResetTo::Latest, 10_000).unwrap();
    assert_eq!(
        c.reset_offsets("h", None, ResetTo::Latest, 0),
        Err(Error::UnknownGroup("h".into()))
    );
}

#[test]
fn list_groups_is_sorted() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 1, 0);
    for g in ["b", "c", "a"] {
        join(&c, g, "m", &t, 0);
    }
    assert_eq!(c.list_groups(), vec!["a", "b", "c"]);
}

#[test]
fn the_first_member_picks_the_assignor_and_others_must_agree() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 4, 0);
    let range = JoinOptions {
        assignor: Some(AssignorKind::Range),
        ..JoinOptions::default()
    };
    c.subscribe("g", "a", &t, &range, 0).unwrap();
    c.subscribe("g", "b", &t, &range, 0).unwrap();
    assert_eq!(c.describe("g", 0).unwrap().assignor, AssignorKind::Range);
    assert_eq!(owned(&c, "g", "a", 0), vec![0, 1]);
    let rr = JoinOptions {
        assignor: Some(AssignorKind::RoundRobin),
        ..JoinOptions::default()
    };
    assert!(matches!(
        c.subscribe("g", "c", &t, &rr, 0),
        Err(Error::InconsistentAssignor { .. })
    ));
    // Without a preference, a member takes the group's.
    join(&c, "g", "c", &t, 0);
    assert_eq!(c.check_snapshot("g"), Ok(3));
}

#[test]
fn members_of_different_topics_get_only_their_topics() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 2, 3);
    let u = topic("u", 3, 3);
    join(&c, "g", "a", &t, 0);
    join(&c, "g", "b", &u, 0);
    let a = c.heartbeat("g", "a", 0).unwrap();
    assert!(a.partitions.iter().all(|(n, _)| n == "t"));
    assert_eq!(a.partitions.len(), 2);
    // a subscribes to u as well: balance over eligible members.
    join(&c, "g", "a", &u, 0);
    let total = owned(&c, "g", "a", 0).len() + owned(&c, "g", "b", 0).len();
    assert_eq!(total, 5);
    assert_eq!(c.check_snapshot("g"), Ok(3));
    let mut topics = BTreeSet::new();
    c.poll("g", "b", 100, 0, |t, _, _| {
        topics.insert(t.name().to_string());
    })
    .unwrap();
    assert_eq!(topics, BTreeSet::from(["u".to_string()]));
}

#[test]
fn unknown_groups_and_members_are_errors() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 1, 0);
    assert!(matches!(
        c.poll("g", "a", 1, 0, |_, _, _| {}),
        Err(Error::UnknownGroup(_))
    ));
    assert!(matches!(
        c.heartbeat("g", "a", 0),
        Err(Error::UnknownGroup(_))
    ));
    assert!(matches!(
        c.unsubscribe("g", "a", 0),
        Err(Error::UnknownGroup(_))
    ));
    join(&c, "g", "a", &t, 0);
    assert!(matches!(
        c.poll("g", "b", 1, 0, |_, _, _| {}),
        Err(Error::UnknownMember { .. })
    ));
    assert!(matches!(
        c.unsubscribe("g", "b", 0),
        Err(Error::UnknownMember { .. })
    ));
    assert!(matches!(
        c.subscribe(
            "g",
            "b",
            &t,
            &JoinOptions {
                session_timeout_ms: Some(0),
                ..JoinOptions::default()
            },
            0
        ),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn concurrent_polls_of_one_member_hand_out_each_record_once() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 4, 500);
    join(&c, "g", "a", &t, 0);
    let all: Vec<Vec<(u32, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut got = Vec::new();
                    loop {
                        let n = got.len();
                        c.poll("g", "a", 7, 0, |_, p, r| got.push((p, r.offset)))
                            .unwrap();
                        if got.len() == n {
                            return got;
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut seen = BTreeSet::new();
    for got in &all {
        // Per thread, offsets of a partition come in increasing order.
        for p in 0..4 {
            let offs: Vec<u64> = got.iter().filter(|x| x.0 == p).map(|x| x.1).collect();
            assert!(offs.windows(2).all(|w| w[0] < w[1]));
        }
        for &x in got {
            assert!(seen.insert(x), "{x:?} handed out twice");
        }
    }
    assert_eq!(seen.len(), 2000);
}

#[test]
fn polls_during_rebalances_never_share_a_partition() {
    // A stress companion of the loom model: members join and leave while others poll; every
    // snapshot the pollers see has exactly one owner per partition.
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 6, 200);
    join(&c, "g", "a", &t, 0);
    join(&c, "g", "b", &t, 0);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..200 {
                let m = format!("x{}", i % 3);
                join(&c, "g", &m, &t, 0);
                assert!(c.check_snapshot("g").is_ok());
                c.unsubscribe("g", &m, 0).unwrap();
            }
        });
        for m in ["a", "b"] {
            let c = &c;
            s.spawn(move || {
                for _ in 0..500 {
                    let mut parts = BTreeSet::new();
                    let v = c
                        .poll("g", m, 5, 0, |_, p, _| {
                            parts.insert(p);
                        })
                        .unwrap();
                    // Everything handed out came from partitions of the snapshot the poll used.
                    let owned: BTreeSet<u32> = v.partitions.iter().map(|x| x.1).collect();
                    assert!(parts.is_subset(&owned));
                }
            });
        }
    });
    assert!(c.check_snapshot("g").is_ok());
}

#[test]
fn offsets_can_be_listed_and_deleted_and_empty_groups_deleted() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 2, 10);
    assert!(c.committed_offsets("g").is_empty());
    assert_eq!(c.delete_group("g", 0), Err(Error::UnknownGroup("g".into())));
    c.commit_topic("g", None, &t, 1, 7).unwrap();
    c.commit_topic("g", None, &t, 0, 3).unwrap();
    assert_eq!(
        c.committed_offsets("g"),
        [("t".to_string(), 0, 3), ("t".to_string(), 1, 7)]
    );
    assert!(c.delete_offset("g", "t", 1));
    assert!(!c.delete_offset("g", "t", 1));
    assert_eq!(c.committed("g", "t", 1), None);
    assert_eq!(c.committed("g", "t", 0), Some(3));
    // A group with a live member is not deleted; once the member leaves, it is, offsets and all.
    join(&c, "g", "m", &t, 0);
    assert_eq!(
        c.delete_group("g", 1),
        Err(Error::GroupNotEmpty("g".into()))
    );
    c.unsubscribe("g", "m", 2).unwrap();
    c.delete_group("g", 3).unwrap();
    assert!(c.list_groups().is_empty());
    assert_eq!(c.committed("g", "t", 0), None);
}

#[test]
fn subscribe_exactly_replaces_the_subscription_and_releases_nothing() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 2, 0);
    let u = topic("u", 2, 0);
    let opts = JoinOptions {
        auto_commit: Some(false),
        ..JoinOptions::default()
    };
    // A member may join before any of its topics exists: it owns nothing.
    let a = c.subscribe_exactly("g", "a", &[], &opts, 0).unwrap();
    assert!(a.partitions.is_empty());
    assert_eq!(c.live_members("g", 0), vec!["a".to_string()]);
    let a = c
        .subscribe_exactly("g", "a", &[t.clone(), u.clone()], &opts, 1)
        .unwrap();
    assert_eq!(a.partitions.len(), 4);
    let epoch = a.group_epoch;
    // The same subscription again changes nothing.
    let same = c
        .subscribe_exactly("g", "a", &[t.clone(), u.clone()], &opts, 2)
        .unwrap();
    assert_eq!(same.group_epoch, epoch);
    // b joins: a's partitions to move stay pending revocation through a's subscription change.
    c.subscribe_exactly("g", "b", &[t.clone(), u.clone()], &opts, 3)
        .unwrap();
    let a = c.member_view("g", "a", 4).unwrap();
    assert_eq!(a.revoking.len(), 2);
    let a = c
        .subscribe_exactly("g", "a", std::slice::from_ref(&t), &opts, 5)
        .unwrap();
    assert!(a.group_epoch > epoch);
    assert!(
        !a.revoking.is_empty(),
        "a subscription change releases nothing"
    );
    // Its acknowledgement releases them; it then owns only topic t's share.
    let a = c.release("g", "a", &[], 6).unwrap();
    assert!(a.revoking.is_empty());
    assert!(a.partitions.iter().all(|(n, _)| n == "t"), "{a:?}");
    let d = c.describe("g", 6).unwrap();
    assert_eq!(d.members[0].topics, vec!["t".to_string()]);
    assert_eq!(c.check_snapshot("g").map(|_| ()), Ok(()));
    // A member whose session ran out is not live.
    assert!(c.live_members("g", 1_000_000).is_empty());
}
