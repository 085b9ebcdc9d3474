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
//! moves partition 1 to `b` (each model checks that).

use super::{Coordinator, GroupConfig, JoinOptions};
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

fn setup(records: u64) -> (Arc<Coordinator>, Arc<Topic>) {
    let c = Arc::new(Coordinator::new(GroupConfig::default()));
    let t = Arc::new(Topic::new("t", 2));
    for p in 0..2 {
        for _ in 0..records {
            t.partition(p).unwrap().append(None, b"v");
        }
    }
    c.subscribe("g", "a", &t, &JoinOptions::default(), 0)
        .unwrap();
    (c, t)
}

/// `b` joins; returns the partitions it owns, after checking the new snapshot.
fn join_b(c: &Coordinator, t: &Arc<Topic>) -> Vec<u32> {
    let v = c
        .subscribe("g", "b", t, &JoinOptions::default(), 0)
        .unwrap();
    assert_eq!(v.generation, 2);
    assert!(c.check_snapshot("g").is_ok());
    v.partitions.iter().map(|(_, p)| *p).collect()
}

/// A poll racing a rebalance never sees a partition owned by two members, and the old owner
/// cannot advance the new owner's cursor.
#[test]
fn poll_during_rebalance() {
    model(|| {
        let (c, t) = setup(1);
        let c1 = c.clone();
        let a = thread::spawn(move || {
            let mut got = Vec::new();
            let v = c1
                .poll("g", "a", 2, 0, |_, p, r| got.push((p, r.offset)))
                .unwrap();
            // Whatever `a` got came from partitions it owned in the snapshot its poll used.
            assert!(got
                .iter()
                .all(|(p, _)| v.partitions.contains(&("t".into(), *p))));
            assert!(c1.check_snapshot("g").is_ok());
            got
        });
        assert_eq!(join_b(&c, &t), vec![1]);
        let mut got_b = Vec::new();
        c.poll("g", "b", 2, 0, |_, p, r| got_b.push((p, r.offset)))
            .unwrap();
        let got_a = a.join().unwrap();
        // `a`'s single poll committed nothing, so `b` starts partition 1 at 0 — however far `a`
        // advanced its own (old) cursor of partition 1.
        assert_eq!(got_b, vec![(1, 0)]);
        assert_eq!(c.position("g", "b", "t", 1), Some(1));
        assert_eq!(c.position("g", "a", "t", 1), None);
        // `a` keeps partition 0 throughout, so its poll read it whatever the interleaving.
        assert!(got_a.contains(&(0, 0)));
        assert!(c.check_snapshot("g").is_ok());
    });
}

/// A commit by the old owner racing the new owner's commit can never win.
#[test]
fn fenced_commit_vs_new_owner() {
    model(|| {
        let (c, t) = setup(0);
        let c1 = c.clone();
        let a = thread::spawn(move || c1.commit("g", Some("a"), "t", 1, 5));
        assert_eq!(join_b(&c, &t), vec![1]);
        c.commit("g", Some("b"), "t", 1, 3).unwrap();
        let old = a.join().unwrap();
        // Accepted only if linearized before the rebalance; then `b` overwrote it.
        match old {
            Ok(()) => {}
            Err(crate::error::Error::Fenced { generation, .. }) => assert_eq!(generation, 2),
            Err(e) => panic!("unexpected {e}"),
        }
        assert_eq!(c.committed("g", "t", 1), Some(3));
    });
}

/// A commit by the old owner racing the rebalance is either seen by the new owner's lazily
/// initialized position or refused.
#[test]
fn fenced_commit_vs_new_owner_poll() {
    model(|| {
        let (c, t) = setup(2);
        let c1 = c.clone();
        let a = thread::spawn(move || c1.commit("g", Some("a"), "t", 1, 1));
        assert_eq!(join_b(&c, &t), vec![1]);
        let mut got_b = Vec::new();
        c.poll("g", "b", 2, 0, |_, p, r| got_b.push((p, r.offset)))
            .unwrap();
        let old = a.join().unwrap();
        if old.is_ok() {
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
