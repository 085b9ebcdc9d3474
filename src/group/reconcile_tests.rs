//! Unit tests of reconciliation: releases, rebalance timeouts, member epochs and states, and
//! positions that must survive a hand-off (issue 14 §1). Time is the `now` argument.

use super::*;

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
        part.append(None, b"v");
    }
}

fn join_with(c: &Coordinator, m: &str, t: &Arc<Topic>, opts: &JoinOptions, now: Millis) {
    c.subscribe("g", m, t, opts, now).unwrap();
}

fn join(c: &Coordinator, m: &str, t: &Arc<Topic>, now: Millis) {
    join_with(c, m, t, &JoinOptions::default(), now);
}

fn poll(c: &Coordinator, m: &str, max: usize, now: Millis) -> Vec<(u32, u64)> {
    let mut got = Vec::new();
    c.poll("g", m, max, now, |_, p, r| got.push((p, r.offset)))
        .unwrap();
    got
}

fn member<'a>(d: &'a GroupDescription, id: &str) -> &'a MemberView {
    &d.members.iter().find(|m| m.id == id).unwrap().view
}

fn owners(c: &Coordinator, now: Millis) -> Vec<Option<String>> {
    c.describe("g", now)
        .unwrap()
        .partitions
        .into_iter()
        .map(|r| r.owner)
        .collect()
}

#[test]
fn a_member_that_releases_nothing_keeps_its_partitions_until_its_rebalance_timeout() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 4, 0);
    let slow = JoinOptions {
        session_timeout_ms: Some(60_000),
        rebalance_timeout_ms: Some(5_000),
        ..JoinOptions::default()
    };
    join_with(&c, "a", &t, &slow, 0);
    join(&c, "b", &t, 1_000);
    let all: Vec<(String, u32)> = (0..4).map(|p| ("t".to_string(), p)).collect();
    // a heartbeats reporting it still owns everything (KIP-848's owned partitions): it releases
    // nothing, stays at member epoch 1 and keeps all four.
    for now in [2_000, 4_000, 5_999] {
        let v = c.release("g", "a", &all, now).unwrap();
        assert_eq!((v.member_epoch, v.partitions.len()), (1, 4), "at {now}");
        assert_eq!(v.state, MemberState::UnrevokedPartitions);
        assert_eq!(c.expire(now), 0);
        assert!(c.heartbeat_view("b", now).partitions.is_empty());
    }
    // The deadline is 1 000 (when b's join made a revoke) + 5 000.
    assert_eq!(c.expire(6_000), 1);
    assert_eq!(c.heartbeat_view("b", 6_000).partitions.len(), 4);
    assert!(matches!(
        c.heartbeat("g", "a", 6_000),
        Err(Error::UnknownMember { .. })
    ));
    assert_eq!(c.check_snapshot("g"), Ok(3));
}

impl Coordinator {
    fn heartbeat_view(&self, m: &str, now: Millis) -> MemberView {
        self.heartbeat("g", m, now).unwrap()
    }
}

#[test]
fn a_partial_release_hands_over_only_what_was_released() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 6, 0);
    join(&c, "a", &t, 0);
    join(&c, "b", &t, 0);
    let revoking = member(&c.describe("g", 0).unwrap(), "a").revoking.clone();
    assert_eq!(revoking.len(), 3);
    // a says it still owns everything but the first of them.
    let keep: Vec<(String, u32)> = (0..6)
        .map(|p| ("t".to_string(), p))
        .filter(|x| *x != revoking[0])
        .collect();
    let a = c.release("g", "a", &keep, 0).unwrap();
    assert_eq!(a.revoking, revoking[1..].to_vec());
    assert_eq!(a.member_epoch, 1, "still revoking: the old epoch");
    let b = c.heartbeat_view("b", 0);
    assert_eq!(b.partitions, vec![revoking[0].clone()]);
    assert_eq!(b.pending, revoking[1..].to_vec());
    assert_eq!(b.state, MemberState::UnreleasedPartitions);
    // An empty report releases the rest.
    let a = c.release("g", "a", &[], 0).unwrap();
    assert_eq!((a.member_epoch, a.state), (2, MemberState::Stable));
    assert_eq!(c.heartbeat_view("b", 0).partitions, revoking);
}

#[test]
fn a_revocation_that_the_target_undoes_leaves_the_partitions_in_place() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 4, 0);
    join(&c, "a", &t, 0);
    join(&c, "b", &t, 0);
    assert_eq!(
        member(&c.describe("g", 0).unwrap(), "a").state,
        MemberState::UnrevokedPartitions
    );
    // b leaves before a released anything: epoch 3 gives a everything back.
    c.unsubscribe("g", "b", 0).unwrap();
    let d = c.describe("g", 0).unwrap();
    let a = member(&d, "a");
    assert_eq!((a.state, a.partitions.len()), (MemberState::Stable, 4));
    assert_eq!(c.heartbeat_view("a", 0).member_epoch, 3);
}

#[test]
fn a_member_with_partitions_to_revoke_gets_nothing_new_until_it_releases() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 6, 0);
    join(&c, "a", &t, 0);
    join(&c, "b", &t, 0);
    c.heartbeat("g", "a", 0).unwrap();
    c.heartbeat("g", "b", 0).unwrap();
    // c joins: a and b each have one to revoke. Then b leaves before releasing: its partitions are
    // free, and those the new target gives to a stay unowned until a has revoked its own.
    join(&c, "c", &t, 0);
    c.unsubscribe("g", "b", 0).unwrap();
    let d = c.describe("g", 0).unwrap();
    let a = member(&d, "a").clone();
    let free: Vec<u32> = d
        .partitions
        .iter()
        .filter(|r| r.owner.is_none())
        .map(|r| r.partition)
        .collect();
    if a.state == MemberState::UnrevokedPartitions {
        // Every free partition is a's to get.
        for p in &free {
            assert!(a.pending.contains(&("t".to_string(), *p)), "{p} {a:?}");
        }
    } else {
        assert!(free.is_empty());
    }
    assert_eq!(c.check_snapshot("g"), Ok(4));
    c.heartbeat("g", "a", 0).unwrap();
    c.heartbeat("g", "c", 0).unwrap();
    assert!(owners(&c, 0).iter().all(Option::is_some));
    assert!(!c.reconciling("g"));
}

#[test]
fn range_moves_partitions_one_release_at_a_time() {
    let c = Coordinator::new(GroupConfig {
        assignor: AssignorKind::Range,
        ..GroupConfig::default()
    });
    let t = topic("t", 6, 0);
    for m in ["b", "c"] {
        join(&c, m, &t, 0);
        c.heartbeat("g", "b", 0).unwrap();
        c.heartbeat("g", m, 0).unwrap();
    }
    // Range: b = 0..3, c = 3..6. a joins in front (member order): a = 0,1; b = 2,3; c = 4,5, so b
    // must give up 0 and 1 to a and c must give 3 to b.
    join(&c, "a", &t, 0);
    let d = c.describe("g", 0).unwrap();
    assert_eq!(member(&d, "b").revoking.len(), 2);
    assert_eq!(member(&d, "c").revoking, vec![("t".to_string(), 3)]);
    assert_eq!(member(&d, "a").pending.len(), 2);
    // c releases first: 3 cannot go to b yet (b still has to revoke), so it stays free.
    c.heartbeat("g", "c", 0).unwrap();
    assert_eq!(owners(&c, 0)[3], None);
    c.heartbeat("g", "b", 0).unwrap();
    let owned: Vec<Option<String>> = owners(&c, 0);
    let want: Vec<Option<String>> = ["a", "a", "b", "b", "c", "c"]
        .iter()
        .map(|s| Some(s.to_string()))
        .collect();
    assert_eq!(owned, want);
}

#[test]
fn a_latest_position_survives_a_leave_a_join_and_an_expiry() {
    // Issue 14 §1: `latest`, one partition; A's first poll gets nothing (its position is the log
    // end, 1); r1 and r2 are sent; the partition moves. The next owner must read r1 and r2.
    let latest = GroupConfig {
        reset: ResetPolicy::Latest,
        ..GroupConfig::default()
    };
    // By a leave.
    let c = Coordinator::new(latest.clone());
    let t = topic("t", 1, 1);
    join(&c, "a", &t, 0);
    assert!(poll(&c, "a", 10, 0).is_empty());
    fill(&t, 0, 2);
    c.unsubscribe("g", "a", 0).unwrap();
    join(&c, "b", &t, 0);
    assert!(poll(&c, "b", 10, 0) == vec![(0, 1), (0, 2)]);

    // By a join: two partitions, A reads both ends, B's join moves one.
    let c = Coordinator::new(latest.clone());
    let t = topic("t", 2, 1);
    join(&c, "a", &t, 0);
    assert!(poll(&c, "a", 10, 0).is_empty());
    fill(&t, 0, 2);
    fill(&t, 1, 2);
    join(&c, "b", &t, 0);
    let moved = member(&c.describe("g", 0).unwrap(), "b").pending[0].1;
    let got_a = poll(&c, "a", 10, 0);
    assert_eq!(got_a, vec![(1 - moved, 1), (1 - moved, 2)]);
    assert_eq!(poll(&c, "b", 10, 0), vec![(moved, 1), (moved, 2)]);

    // By an expiry: the position was committed when the reset chose it.
    let c = Coordinator::new(latest.clone());
    let t = topic("t", 1, 1);
    join(&c, "a", &t, 0);
    assert!(poll(&c, "a", 10, 0).is_empty());
    assert_eq!(c.committed("g", "t", 0), Some(1));
    fill(&t, 0, 2);
    assert_eq!(c.expire(10_000), 1);
    join(&c, "b", &t, 10_000);
    assert_eq!(poll(&c, "b", 10, 10_000), vec![(0, 1), (0, 2)]);

    // Without auto-commit, nothing is committed for the member: the application commits.
    let c = Coordinator::new(GroupConfig {
        auto_commit: false,
        ..latest
    });
    join(&c, "a", &t, 0);
    assert!(poll(&c, "a", 10, 0).is_empty());
    assert_eq!(c.committed("g", "t", 0), None);
}

#[test]
fn a_stale_poll_of_the_old_owner_hands_out_nothing_after_the_release() {
    // The old owner's two polls race: one releases, the other still holds the older snapshot.
    // The released cursor is closed, so the stale one cannot hand out what the new owner reads.
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 2, 5);
    join(&c, "a", &t, 0);
    poll(&c, "a", 2, 0);
    join(&c, "b", &t, 0);
    let moved = member(&c.describe("g", 0).unwrap(), "b").pending[0].1;
    let g = c.group("g").unwrap();
    let stale = g.snapshot.load_full();
    c.heartbeat("g", "a", 0).unwrap();
    let m = stale.member("a").unwrap();
    let mut got = Vec::new();
    g.hand_out(&stale, m, 10, ResetPolicy::Earliest, &mut |_, p, r| {
        got.push((p, r.offset))
    });
    assert!(got.iter().all(|&(p, _)| p != moved), "{got:?}");
    assert_eq!(poll(&c, "b", 10, 0).first(), Some(&(moved, 1)));
}

#[test]
fn member_epochs_follow_the_group_epoch_at_each_request() {
    let c = Coordinator::new(GroupConfig::default());
    let t = topic("t", 4, 0);
    join(&c, "a", &t, 0);
    join(&c, "b", &t, 0);
    c.heartbeat("g", "a", 0).unwrap();
    join(&c, "x", &t, 0);
    c.unsubscribe("g", "x", 0).unwrap();
    // b made no request since epoch 2: describe shows the epoch it was last told.
    let d = c.describe("g", 0).unwrap();
    assert_eq!(d.group_epoch, 4);
    assert_eq!(member(&d, "b").member_epoch, 2);
    assert_eq!(c.heartbeat_view("b", 0).member_epoch, 4);
    assert_eq!(c.group_epoch("g"), Some(4));
}
