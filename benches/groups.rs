//! Criterion benches of the consumer-group coordinator.
//!
//! - `rebalance/assign/{range,roundrobin,cooperative-sticky}/{join,leave}`: the assignor alone, for
//!   M = 1,000 members over one topic of P = 10,000 partitions. `join`: member 1,000 joins a
//!   balanced group of 999 (the previous assignment is that group's, from the same assignor);
//!   `leave`: one of 1,000 leaves. Range and roundrobin ignore the previous assignment.
//! - `rebalance/coordinator/cooperative-sticky`: one member joins and leaves a group of 999 through
//!   [`Coordinator::subscribe`] / [`Coordinator::unsubscribe`]: two group epochs per element
//!   (assignor, reconciled snapshot, swap). The join leaves the partitions it moves pending
//!   revocation; the leave undoes that before anyone released them.
//! - `rebalance/reconcile/{cooperative-sticky,range}`: one whole rebalance of M = 1,000 members over
//!   P = 10,000 partitions, reconciliation included, per element: member 1,000 joins a stable group
//!   of 999, then every member makes one request ([`Coordinator::heartbeat`], as its next poll
//!   would): the ~10 (sticky) or ~1,000 (range) members with partitions to revoke release them,
//!   each release publishing a snapshot that hands them to the joiner, until the group is stable
//!   again. The joiner's leave that restores the group is not timed.
//! - `snapshot_load/{idle,during_rebalances}`: [`Coordinator::group_epoch`] (one lock-free snapshot
//!   load) per element, alone, and while another thread rebalances a 100-member, 1,000-partition
//!   group in a loop (the same group whose snapshot is loaded). The second reads as snapshot loads
//!   per second while rebalances run.
//!
//! - `poll/one-member/100`: one member of a group polls 100-record batches (auto-commit on) from an
//!   8-partition topic of 8 × 100,000 records; elements are records handed out. When the member has
//!   read everything, a fresh group starts over (untimed).
//!
//! Run briefly: `cargo bench --bench groups -- --warm-up-time 1 --measurement-time 2`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kgroups::assignor::{assign, AssignorKind, NO_OWNER};
use kgroups::group::{Coordinator, GroupConfig, JoinOptions};
use kgroups::topic::Topic;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const MEMBERS: usize = 1_000;
const PARTITIONS: u32 = 10_000;

fn subscriptions(n: usize) -> Vec<Vec<u32>> {
    vec![vec![0]; n]
}

/// Re-indexes `a` (for members 0..n) after member `gone` left: its partitions become unowned.
fn without(a: &[Vec<u32>], gone: u32) -> Vec<Vec<u32>> {
    a.iter()
        .map(|o| {
            o.iter()
                .map(|&m| match m {
                    NO_OWNER => NO_OWNER,
                    m if m == gone => NO_OWNER,
                    m if m > gone => m - 1,
                    m => m,
                })
                .collect()
        })
        .collect()
}

fn assignors(c: &mut Criterion) {
    let mut group = c.benchmark_group("rebalance/assign");
    group.throughput(Throughput::Elements(1));
    let partitions = [PARTITIONS];
    for kind in [
        AssignorKind::Range,
        AssignorKind::RoundRobin,
        AssignorKind::CooperativeSticky,
    ] {
        // The balanced assignment of 999 members; the joiner is the last (largest id).
        let before = assign(kind, &partitions, &subscriptions(MEMBERS - 1), &[]);
        let subs = subscriptions(MEMBERS);
        group.bench_function(BenchmarkId::new(kind.name(), "join"), |b| {
            b.iter(|| black_box(assign(kind, &partitions, &subs, black_box(&before))))
        });
        // 1,000 members, member 500 leaves.
        let full = assign(kind, &partitions, &subs, &before);
        let after_leave = without(&full, 500);
        let subs_left = subscriptions(MEMBERS - 1);
        group.bench_function(BenchmarkId::new(kind.name(), "leave"), |b| {
            b.iter(|| {
                black_box(assign(
                    kind,
                    &partitions,
                    &subs_left,
                    black_box(&after_leave),
                ))
            })
        });
    }
    group.finish();
}

fn coordinator(c: &mut Criterion) {
    let mut group = c.benchmark_group("rebalance/coordinator");
    group.throughput(Throughput::Elements(2));
    let coord = Coordinator::new(GroupConfig::default());
    let topic = Arc::new(Topic::new("t", PARTITIONS));
    let opts = JoinOptions::default();
    for m in 0..MEMBERS - 1 {
        coord
            .subscribe("g", &format!("m{m:04}"), &topic, &opts, 0)
            .unwrap();
    }
    group.bench_function("cooperative-sticky", |b| {
        b.iter(|| {
            coord.subscribe("g", "joiner", &topic, &opts, 0).unwrap();
            coord.unsubscribe("g", "joiner", 0).unwrap();
        })
    });
    group.finish();
}

fn reconcile(c: &mut Criterion) {
    let mut group = c.benchmark_group("rebalance/reconcile");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for kind in [AssignorKind::CooperativeSticky, AssignorKind::Range] {
        let coord = Coordinator::new(GroupConfig {
            assignor: kind,
            ..GroupConfig::default()
        });
        let topic = Arc::new(Topic::new("t", PARTITIONS));
        let opts = JoinOptions::default();
        let ids: Vec<String> = (0..MEMBERS - 1).map(|m| format!("m{m:04}")).collect();
        for id in &ids {
            coord.subscribe("g", id, &topic, &opts, 0).unwrap();
            for other in &ids {
                coord.heartbeat("g", other, 0).ok();
                if other == id {
                    break;
                }
            }
        }
        let settle = |coord: &Coordinator| {
            for id in &ids {
                coord.heartbeat("g", id, 0).unwrap();
            }
        };
        settle(&coord);
        assert!(!coord.reconciling("g"));
        // The joiner sorts last ("n…" > "m…"), as a new member usually does not take the first place.
        group.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    let start = std::time::Instant::now();
                    coord.subscribe("g", "n-joiner", &topic, &opts, 0).unwrap();
                    settle(&coord);
                    total += start.elapsed();
                    debug_assert!(!coord.reconciling("g"));
                    coord.unsubscribe("g", "n-joiner", 0).unwrap();
                }
                total
            })
        });
    }
    group.finish();
}

fn snapshot_loads(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot_load");
    group.throughput(Throughput::Elements(1));
    let coord = Coordinator::new(GroupConfig::default());
    let topic = Arc::new(Topic::new("t", 1_000));
    let opts = JoinOptions::default();
    for m in 0..100 {
        coord
            .subscribe("g", &format!("m{m:03}"), &topic, &opts, 0)
            .unwrap();
    }
    group.bench_function("idle", |b| b.iter(|| black_box(coord.group_epoch("g"))));
    let stop = AtomicBool::new(false);
    let rebalances = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                coord.subscribe("g", "joiner", &topic, &opts, 0).unwrap();
                coord.unsubscribe("g", "joiner", 0).unwrap();
                rebalances.fetch_add(2, Ordering::Relaxed);
            }
        });
        let start = std::time::Instant::now();
        group.bench_function("during_rebalances", |b| {
            b.iter(|| black_box(coord.group_epoch("g")))
        });
        stop.store(true, Ordering::Relaxed);
        let n = rebalances.load(Ordering::Relaxed);
        eprintln!(
            "snapshot_load/during_rebalances: {n} rebalances ran, {:.0}/s",
            n as f64 / start.elapsed().as_secs_f64()
        );
    });
    group.finish();
}

fn polls(c: &mut Criterion) {
    const BATCH: usize = 100;
    let mut group = c.benchmark_group("poll/one-member");
    group.throughput(Throughput::Elements(BATCH as u64));
    let topic = Arc::new(Topic::new("t", 8));
    for p in topic.partitions() {
        for i in 0..100_000u64 {
            p.append(None, itoa::Buffer::new().format(i).as_bytes());
        }
    }
    let coord = Coordinator::new(GroupConfig::default());
    let mut round = 0u64;
    let fresh = |round: &mut u64| {
        *round += 1;
        let g = format!("g{round}");
        coord
            .subscribe(&g, "m", &topic, &JoinOptions::default(), 0)
            .unwrap();
        g
    };
    let mut g = fresh(&mut round);
    group.bench_function(BenchmarkId::from_parameter(BATCH), |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let start = std::time::Instant::now();
                let mut got = 0;
                while done < iters {
                    let mut n = 0usize;
                    coord
                        .poll(&g, "m", BATCH, 0, |_, _, r| {
                            n += 1;
                            black_box(r.value);
                        })
                        .unwrap();
                    got += n;
                    done += 1;
                    if n < BATCH {
                        break;
                    }
                }
                total += start.elapsed();
                black_box(got);
                if done < iters {
                    g = fresh(&mut round);
                }
            }
            total
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    assignors,
    coordinator,
    reconcile,
    snapshot_loads,
    polls
);
criterion_main!(benches);
