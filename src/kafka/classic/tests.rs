//! The classic coordinator's rules, driven with an injected clock; nothing sleeps.

use super::*;

const CFG: ClassicConfig = ClassicConfig {
    min_session_timeout_ms: 10,
    max_session_timeout_ms: 100_000,
    initial_rebalance_delay_ms: 0,
};

fn params(member: &str, meta: &'static [u8]) -> JoinParams {
    JoinParams {
        group_id: "g".into(),
        member_id: member.into(),
        instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 1000,
        rebalance_timeout_ms: 5000,
        protocol_type: "consumer".into(),
        protocols: vec![
            ("range".into(), Bytes::from_static(meta)),
            ("roundrobin".into(), Bytes::from_static(meta)),
        ],
        require_known_member_id: true,
    }
}

fn now<T: std::fmt::Debug>(r: Reply<T>) -> T {
    match r {
        Reply::Now(t) => t,
        Reply::Later(_) => panic!("expected an immediate answer"),
    }
}

/// The answer, now or already delivered to the receiver.
fn done<T: std::fmt::Debug>(r: Reply<T>) -> T {
    match r {
        Reply::Now(t) => t,
        Reply::Later(mut rx) => rx.try_recv().expect("answered"),
    }
}

fn later<T>(r: Reply<T>) -> oneshot::Receiver<T> {
    match r {
        Reply::Later(rx) => rx,
        Reply::Now(_) => panic!("expected a wait"),
    }
}

/// Joins a new dynamic member through MEMBER_ID_REQUIRED; returns its id and the join receiver.
fn join_new(g: &Groups, t: Millis) -> (String, oneshot::Receiver<JoinOutcome>) {
    let first = now(g.join(params("", b"m"), t));
    assert_eq!(first.error, E::MemberIdRequired.code());
    assert!(first.member_id.starts_with("c-"));
    let rx = later(g.join(params(&first.member_id, b"m"), t));
    (first.member_id, rx)
}

fn sync(
    g: &Groups,
    gen: i32,
    member: &str,
    assignments: &[(&str, &'static [u8])],
) -> Reply<SyncOutcome> {
    g.sync(
        SyncParams {
            group_id: "g".into(),
            generation: gen,
            member_id: member.into(),
            assignments: assignments
                .iter()
                .map(|(m, a)| (m.to_string(), Bytes::from_static(a)))
                .collect(),
            ..SyncParams::default()
        },
        0,
    )
}

#[test]
fn two_members_pass_the_join_and_sync_barriers() {
    let g = Groups::new(CFG);
    let (a, mut rx_a) = join_new(&g, 0);
    // Alone, `a` completes generation 1 at once and leads it.
    let ja = rx_a.try_recv().unwrap();
    assert_eq!(
        (ja.error, ja.generation, ja.leader.as_str()),
        (0, 1, a.as_str())
    );
    assert_eq!(ja.protocol.as_deref(), Some("range"));
    assert_eq!(ja.members.len(), 1);
    assert_eq!(done(sync(&g, 1, &a, &[(&a, b"A1")])).assignment, &b"A1"[..]);
    assert_eq!(g.heartbeat("g", 1, &a, None, 1), 0);

    // `b` joins: the group prepares a rebalance; `a` learns it from its heartbeat.
    let (b, mut rx_b) = join_new(&g, 2);
    assert!(rx_b.try_recv().is_err(), "the barrier waits for a");
    assert_eq!(
        g.heartbeat("g", 1, &a, None, 3),
        E::RebalanceInProgress.code()
    );
    let mut rx_a = later(g.join(params(&a, b"m"), 4));
    let (ja, jb) = (rx_a.try_recv().unwrap(), rx_b.try_recv().unwrap());
    assert_eq!((ja.generation, jb.generation), (2, 2));
    assert_eq!(
        (ja.leader.as_str(), jb.leader.as_str()),
        (a.as_str(), a.as_str())
    );
    assert_eq!(ja.members.len(), 2, "the leader gets the member list");
    assert!(jb.members.is_empty(), "followers get none");

    // The follower's sync waits for the leader's, then gets the bytes the leader gave it.
    let mut sb = later(sync(&g, 2, &b, &[]));
    assert!(sb.try_recv().is_err());
    assert_eq!(
        now_or_wait(sync(&g, 2, &a, &[(&a, b"A2"), (&b, b"B2")])),
        &b"A2"[..]
    );
    assert_eq!(sb.try_recv().unwrap().assignment, &b"B2"[..]);
    assert_eq!(g.heartbeat("g", 2, &b, None, 5), 0);
    assert_eq!(
        g.heartbeat("g", 1, &b, None, 5),
        E::IllegalGeneration.code()
    );
    assert_eq!(
        g.heartbeat("g", 2, "nobody", None, 5),
        E::UnknownMemberId.code()
    );
    assert_eq!(g.describe("g").unwrap().state, State::Stable);
}

fn now_or_wait(r: Reply<SyncOutcome>) -> Bytes {
    match r {
        Reply::Now(s) => s.assignment,
        Reply::Later(mut rx) => rx.try_recv().unwrap().assignment,
    }
}

#[test]
fn a_member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
    let g = Groups::new(CFG);
    let (a, mut rx) = join_new(&g, 0);
    rx.try_recv().unwrap();
    done(sync(&g, 1, &a, &[(&a, b"x")]));
    let (b, mut rx_b) = join_new(&g, 10);
    // `a` keeps its session (its heartbeat says: rejoin) but never rejoins.
    assert_eq!(
        g.heartbeat("g", 1, &a, None, 900),
        E::RebalanceInProgress.code()
    );
    g.tick(1800);
    assert!(rx_b.try_recv().is_err());
    g.tick(5010); // 10 + the rebalance timeout 5000
    assert_eq!(g.describe("g").unwrap().generation, 2);
    let jb = rx_b.try_recv().unwrap();
    assert_eq!((jb.generation, jb.leader.as_str()), (2, b.as_str()));
    assert_eq!(
        g.heartbeat("g", 1, &a, None, 5011),
        E::UnknownMemberId.code()
    );
}

#[test]
fn a_silent_member_expires_and_the_group_rebalances() {
    let g = Groups::new(CFG);
    let (a, mut rx) = join_new(&g, 0);
    rx.try_recv().unwrap();
    done(sync(&g, 1, &a, &[]));
    g.tick(1000);
    assert_eq!(g.heartbeat("g", 1, &a, None, 1000), 0);
    g.tick(2001); // 1000 ms after the heartbeat at 1000
    let d = g.describe("g").unwrap();
    assert_eq!(
        (d.state, d.generation, d.members.len()),
        (State::Empty, 2, 0)
    );
}

#[test]
fn leave_rebalances_and_unknown_members_are_refused() {
    let g = Groups::new(CFG);
    let (a, mut rx) = join_new(&g, 0);
    rx.try_recv().unwrap();
    done(sync(&g, 1, &a, &[]));
    assert_eq!(
        g.leave("g", &[("x".into(), None)], 1),
        Ok(vec![E::UnknownMemberId.code()])
    );
    assert_eq!(g.leave("g", &[(a.clone(), None)], 1), Ok(vec![0]));
    let d = g.describe("g").unwrap();
    assert_eq!((d.state, d.generation), (State::Empty, 2));
    // A known-member join to an empty group, and a sync from a stranger, are refused.
    assert_eq!(
        now(g.join(params(&a, b"m"), 2)).error,
        E::UnknownMemberId.code()
    );
    assert_eq!(done(sync(&g, 2, &a, &[])).error, E::UnknownMemberId.code());
    assert_eq!(
        now(g.join(params("zzz", b"m"), 2)).error,
        E::UnknownMemberId.code()
    );
}

#[test]
fn protocols_must_overlap_and_session_timeouts_stay_in_bounds() {
    let g = Groups::new(CFG);
    let (_, mut rx) = join_new(&g, 0);
    rx.try_recv().unwrap();
    let mut other = params("", b"m");
    other.protocols = vec![("sticky".into(), Bytes::new())];
    assert_eq!(
        now(g.join(other, 1)).error,
        E::InconsistentGroupProtocol.code()
    );
    let mut short = params("", b"m");
    short.session_timeout_ms = 1;
    assert_eq!(now(g.join(short, 1)).error, E::InvalidSessionTimeout.code());
    let mut no_group = params("", b"m");
    no_group.group_id.clear();
    assert_eq!(now(g.join(no_group, 1)).error, E::InvalidGroupId.code());
}

#[test]
fn a_static_member_rejoining_gets_its_assignment_back_and_fences_its_old_id() {
    let g = Groups::new(CFG);
    let mut p = params("", b"m");
    p.instance_id = Some("i1".into());
    // Static members skip MEMBER_ID_REQUIRED.
    let first = done(g.join(p.clone(), 0));
    let s1 = first.member_id.clone();
    assert!(s1.starts_with("i1-"));
    done(sync(&g, 1, &s1, &[(&s1, b"S1")]));
    // A static leader's restart rebalances (it must see the member list again); its old id is
    // fenced at once.
    let mut rx_s = later(g.join(p.clone(), 1));
    assert_eq!(
        g.heartbeat("g", 1, &s1, Some("i1"), 1),
        E::FencedInstanceId.code()
    );
    let j = rx_s.try_recv().unwrap();
    let s2 = j.member_id.clone();
    assert_ne!(s2, s1);
    assert_eq!((j.generation, j.leader.as_str()), (2, s2.as_str()));
    done(sync(&g, 2, &s2, &[(&s2, b"S2")]));
    // It leaves by instance id; `b` joins and leads generation 4 alone.
    assert_eq!(
        g.leave("g", &[(String::new(), Some("i1".into()))], 2),
        Ok(vec![0])
    );
    let (b, mut rx_b) = join_new(&g, 3);
    let jb = rx_b.try_recv().unwrap();
    assert_eq!((jb.generation, jb.leader.as_str()), (4, b.as_str()));
    done(sync(&g, 4, &b, &[(&b, b"B4")]));
    // The static member comes back as a follower: generation 5, assignment from the leader.
    let mut rx_s = later(g.join(p.clone(), 4));
    let mut rx_b = later(g.join(params(&b, b"m"), 4));
    let js = rx_s.try_recv().unwrap();
    rx_b.try_recv().unwrap();
    let mut sync_s = later(sync(&g, 5, &js.member_id, &[]));
    done(sync(&g, 5, &b, &[(&b, b"B5"), (&js.member_id, b"S5")]));
    assert_eq!(sync_s.try_recv().unwrap().assignment, &b"S5"[..]);
    // A follower's restart in a stable group: same generation, same assignment, no rebalance.
    let again = done(g.join(p.clone(), 7));
    assert_eq!((again.error, again.generation), (0, 5));
    assert_ne!(again.member_id, js.member_id);
    assert_eq!(
        done(sync(&g, 5, &again.member_id, &[])).assignment,
        &b"S5"[..]
    );
    assert_eq!(g.describe("g").unwrap().state, State::Stable);
    assert_eq!(
        g.heartbeat("g", 5, &js.member_id, Some("i1"), 8),
        E::FencedInstanceId.code()
    );
    assert_eq!(g.heartbeat("g", 5, &again.member_id, Some("i1"), 8), 0);
    assert_eq!(g.heartbeat("g", 5, &b, None, 8), 0);
}

#[test]
fn commits_are_fenced_by_generation_and_member() {
    let g = Groups::new(CFG);
    // No group: only generation -1 (no group management) commits.
    assert_eq!(g.commit("g", -1, "", None, 0, || 7), Ok(7));
    assert_eq!(
        g.commit("g", 3, "m", None, 0, || 7),
        Err(E::IllegalGeneration.code())
    );
    let (a, mut rx) = join_new(&g, 0);
    rx.try_recv().unwrap();
    assert_eq!(
        g.commit("g", 1, &a, None, 0, || ()),
        Err(E::RebalanceInProgress.code())
    );
    done(sync(&g, 1, &a, &[]));
    assert_eq!(g.commit("g", 1, &a, None, 0, || 1), Ok(1));
    assert_eq!(
        g.commit("g", 0, &a, None, 0, || ()),
        Err(E::IllegalGeneration.code())
    );
    assert_eq!(
        g.commit("g", 1, "x", None, 0, || ()),
        Err(E::UnknownMemberId.code())
    );
    assert_eq!(
        g.commit("g", -1, "", None, 0, || ()),
        Err(E::UnknownMemberId.code())
    );
    // While the group prepares a rebalance, the current generation may still commit (eager
    // consumers commit in their revocation callback before rejoining).
    let (_b, _rx_b) = join_new(&g, 1);
    assert_eq!(g.commit("g", 1, &a, None, 1, || 2), Ok(2));
    // An empty group accepts admin commits again.
    g.leave("g", &[(a.clone(), None), (_b.clone(), None)], 2)
        .unwrap();
    assert_eq!(g.commit("g", -1, "", None, 2, || 3), Ok(3));
    // Deleting: only an empty group.
    assert_eq!(g.delete("g"), Ok(true));
    assert_eq!(g.delete("g"), Ok(false));
}

#[test]
fn the_initial_delay_gathers_members_into_one_generation() {
    let g = Groups::new(ClassicConfig {
        initial_rebalance_delay_ms: 100,
        ..CFG
    });
    let (_, mut rx_a) = join_new(&g, 0);
    let (_, mut rx_b) = join_new(&g, 50);
    g.tick(120);
    assert!(
        rx_a.try_recv().is_err(),
        "b's join extended the delay to 150"
    );
    g.tick(150);
    let (ja, jb) = (rx_a.try_recv().unwrap(), rx_b.try_recv().unwrap());
    assert_eq!((ja.generation, jb.generation), (1, 1));
}

#[test]
fn a_non_empty_group_is_not_deleted_and_lists_show_state() {
    let g = Groups::new(CFG);
    let (_, mut rx) = join_new(&g, 0);
    rx.try_recv().unwrap();
    assert_eq!(g.delete("g"), Err(E::NonEmptyGroup.code()));
    assert_eq!(
        g.list(),
        [(
            "g".to_string(),
            State::CompletingRebalance,
            "consumer".to_string()
        )]
    );
    assert_eq!(g.member_metadata("g"), [Bytes::from_static(b"m")]);
}
