//! Loom models of the group coordinator.
//!
//! Run: `CARGO_TARGET_DIR=target/loom RUSTFLAGS="--cfg loom" cargo test --release --lib loom`
//! (with the log's models; the README gives the time budget). The models run with a preemption
//! bound of 3 (`LOOM_MAX_PREEMPTIONS` overrides it). Unbounded, the coordinator's many atomics
//! (cursors, sessions, the log under the partition) make the search explode. Bound 2 already
//! catches both classic
//! mistakes: validating a commit's ownership before taking the entry lock, and carrying a cursor
//! over to a partition's new owner.
//!
//! These drive the real [`Coordinator`]: under `cfg(loom)`, `crate::loom` swaps its atomics, its
//! mutexes, `ArcSwap` (a loom `RwLock<Arc<_>>`) and `DashMap` (a loom `Mutex<HashMap>`) for loom's,
//! so loom explores every interleaving of the coordinator's own protocol: the snapshot swap, the
//! cursors' compare-and-swap, and the commit's ownership check under the entry lock.
//!
//! In every model member `a` owns both partitions of topic `t`, then `b` joins; the sticky assignor
//! moves partition 1 to `b` (each model checks that). Partition 1 stays `a`'s, pending revocation,
//! until `a` releases it (its next poll or heartbeat), is fenced by its rebalance timeout, or
//! leaves: the models race that hand-over with `a`'s own polls and commits.

use super::{Coordinator, GroupConfig, JoinOptions};
use crate::error::Error;
use crate::loom::Arc;
use crate::topic::Topic;
use loom::thread;

/// Runs `f` under loom with a preemption bound of 3, unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

fn setup_with(records: u64, opts: &JoinOptions) -> (Arc<Coordinator>, Arc<Topic>) {
    let c = Arc::new(Coordinator::new(GroupConfig::default()));
    let t = Arc::new(Topic::new("t", 2));
    for p in 0..2 {
        for _ in 0..records {
            t.partition(p).unwrap().append(None, b"v");
        }
    }
    c.subscribe("g", "a", &t, opts, 0).unwrap();
    (c, t)
}

fn setup(records: u64) -> (Arc<Coordinator>, Arc<Topic>) {
    setup_with(records, &JoinOptions::default())
}

/// `b` joins: group epoch 2, and partition 1 is pending: `b` owns nothing until `a` releases it.
fn join_b(c: &Coordinator, t: &Arc<Topic>) {
    let v = c
        .subscribe("g", "b", t, &JoinOptions::default(), 0)
        .unwrap();
    assert_eq!(v.group_epoch, 2);
    assert!(v.partitions.is_empty());
    assert_eq!(v.pending, vec![("t".to_string(), 1)]);
    assert!(c.check_snapshot("g").is_ok());
}

fn poll(c: &Coordinator, m: &str, max: usize) -> Result<Vec<(u32, u64)>, Error> {
    let mut got = Vec::new();
    c.poll("g", m, max, 0, |_, p, r| got.push((p, r.offset)))?;
    Ok(got)
}

/// A poll of `a` holding the snapshot from before `b`'s join races the join, `a`'s releasing poll
/// and `b`'s first poll. Partition 1's records are handed out exactly once in all: what the stale
/// poll claimed before the release closed `a`'s cursor is inside the committed position `b`
/// resumes from, and after the close it can claim nothing.
#[test]
fn stale_poll_vs_release() {
    model(|| {
        let (c, t) = setup(2);
        let c1 = c.clone();
        let a = thread::spawn(move || poll(&c1, "a", 4).unwrap());
        join_b(&c, &t);
        let a2 = poll(&c, "a", 4).unwrap();
        let b = poll(&c, "b", 4).unwrap();
        let a1 = a.join().unwrap();
        let mut p1: Vec<u64> = a1
            .iter()
            .chain(&a2)
            .chain(&b)
            .filter(|x| x.0 == 1)
            .map(|x| x.1)
            .collect();
        p1.sort_unstable();
        assert_eq!(p1, vec![0, 1], "a1 {a1:?} a2 {a2:?} b {b:?}");
        assert!(b.iter().all(|x| x.0 == 1));
        assert_eq!(c.position("g", "a", "t", 1), None);
        assert!(c.check_snapshot("g").is_ok());
    });
}

/// A commit by the old owner racing the hand-over (b's join, a's release, b's commit) can never
/// overwrite the new owner's: it is accepted only while `a` still owns the partition (pending
/// revocation included), and then `b`, which commits after the release, overwrites it.
#[test]
fn fenced_commit_vs_new_owner() {
    model(|| {
        let (c, t) = setup(0);
        let c1 = c.clone();
        let a = thread::spawn(move || c1.commit("g", Some("a"), "t", 1, 5));
        join_b(&c, &t);
        c.heartbeat("g", "a", 0).unwrap();
        c.commit("g", Some("b"), "t", 1, 3).unwrap();
        match a.join().unwrap() {
            Ok(()) => {}
            Err(Error::Fenced { group_epoch, .. }) => assert_eq!(group_epoch, 2),
            Err(e) => panic!("unexpected {e}"),
        }
        assert_eq!(c.committed("g", "t", 1), Some(3));
    });
}

/// A commit by the old owner racing the hand-over is either seen by the new owner's lazily
/// initialized position or refused.
#[test]
fn fenced_commit_vs_new_owner_poll() {
    model(|| {
        let (c, t) = setup(2);
        let c1 = c.clone();
        let a = thread::spawn(move || c1.commit("g", Some("a"), "t", 1, 1));
        join_b(&c, &t);
        c.heartbeat("g", "a", 0).unwrap();
        let got_b = poll(&c, "b", 2).unwrap();
        if a.join().unwrap().is_ok() {
            assert_eq!(got_b, vec![(1, 1)], "an accepted commit is where b resumes");
        } else {
            assert_eq!(
                got_b,
                vec![(1, 0), (1, 1)],
                "a refused commit left no trace"
            );
        }
    });
}

/// `a`'s releasing poll races its rebalance timeout. Either the release wins (its position is
/// committed and `b` resumes there) or `a` is fenced first (it is removed, commits nothing, and
/// its poll is refused); never both, and `b` always ends up owning partition 1.
#[test]
fn release_vs_rebalance_timeout() {
    model(|| {
        let opts = JoinOptions {
            rebalance_timeout_ms: Some(10),
            ..JoinOptions::default()
        };
        let (c, t) = setup_with(2, &opts);
        // a is handed offset 0 of each partition: its position in partition 1 is 1.
        assert_eq!(poll(&c, "a", 2).unwrap().len(), 2);
        join_b(&c, &t);
        let c1 = c.clone();
        let fence = thread::spawn(move || c1.expire(10));
        let a = poll(&c, "a", 2);
        let fenced = fence.join().unwrap() == 1;
        let b = poll(&c, "b", 2).unwrap();
        match (fenced, &a) {
            (false, Ok(_)) => {
                assert_eq!(c.committed("g", "t", 1), Some(1));
                assert_eq!(b, vec![(1, 1)]);
            }
            (true, Err(Error::UnknownMember { .. })) => {
                assert_eq!(c.committed("g", "t", 1), None);
                // Nothing of a's was committed: b starts both partitions over.
                assert_eq!(b, vec![(0, 0), (1, 0)]);
            }
            other => panic!("release and fencing both or neither: {other:?}"),
        }
        assert!(c.check_snapshot("g").is_ok());
    });
}
