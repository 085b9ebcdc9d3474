//! Criterion benches of the append log and partitions, with `Mutex` baselines in the same groups.
//!
//! - `append/16-partitions/{kgroups,mutex-vec,mutex-indexed}/T`: T threads append keyed records
//!   (100 keys, 5-byte values like a JSON number) to a 16-partition topic, each record going to
//!   Kafka's partition for its key. `kgroups` is [`Topic::append`] (lock-free log + key index);
//!   `mutex-vec` is 16 `Mutex<Vec<record>>` (no key index: less work than ours); `mutex-indexed`
//!   is 16 `Mutex<(Vec<record>, HashMap<key, Vec<offset>>)>`, the same work as ours under a lock.
//!   Each mutex is `CachePadded` (no false sharing between neighbouring partitions).
//!   `mutex-global` is one `Mutex<Vec<record>>` for the whole topic (no partitions, no index): the
//!   most literal reading of "a `Mutex<Vec<_>>` baseline", shown for completeness only.
//!   Elements are records appended, by all threads together.
//!
//!   **The target ("appends at 2 threads ≥ 2× the Mutex baseline") is read against
//!   `mutex-indexed`**: a partition must store the record *and* index it by key, since the kafka
//!   workload polls one key at a time, and `mutex-indexed` is the natural lock-based way to do that
//!   job: one `std::sync::Mutex` per partition (not one global lock), an ahash map from key to its
//!   `Vec` of offsets, records in a `Vec` (growing by doubling, as any `Vec`), the same 32-byte
//!   record, and the key handed over already interned (`key_id`), which only favours it.
//!   `mutex-vec` stays beside it as a floor: the cost of a bare locked push, without the index that
//!   a real partition needs, so it is not the same job.
//! - `append/16-partitions-affine/…/T`: the same, but each thread appends only the keys whose
//!   partitions are its own (partition mod T = thread index), as with one producer per partition:
//!   no partition's cache lines move between cores. In `append/16-partitions` every thread writes
//!   every partition, so on two cores about every other append finds the partition's lines (and
//!   its key's) in the other core's cache, whatever the design.
//! - `append/1-partition/…/T`: the same with a single partition, so that every append of every
//!   thread contends for it.
//! - `read/kgroups`: [`Partition::read`] of 1,000-record batches from a 1 M-record partition.
//! - `read_key/kgroups`: [`Partition::read_key`] of up to 100 records of one of 100 keys from a
//!   random offset, in a 1 M-record partition.
//! - `memory` (not a criterion group; `cargo bench --bench log -- memory [P N]`): appends N
//!   records (10 M by default) to a P-partition topic (8 by default; 100 keys, values like JSON
//!   numbers) and reports the resident memory per record beyond its key and value bytes. Many
//!   small partitions (`memory 64 250000`) show what mid-sized buckets cost.
//!
//! - `probe` (`cargo bench --bench log -- probe [N]`): the append contenders in turns, best of 15
//!   batches (of `N` records, `BATCH` by default) each, for a quick comparison on a busy machine;
//!   it also prints the CPU time the appending threads used per record (page faults included),
//!   which other load disturbs less.
//!   With `PROBE_ONLY=name` (or `name:T`) in the environment it runs only that contender, 16
//!   partitions, every (or only T) threads, best of 30 batches: a profiling aid for `perf record`,
//!   and a way to compare contenders each in a process of its own.
//!
//! Key and value bytes are generated before the timed loop. A batch's time runs from the first
//! worker's start to the last worker's end, read by the workers themselves.
//!
//! T is the thread count; N the records per timed batch (`BATCH`). Run briefly with
//! `cargo bench --bench log -- --warm-up-time 1 --measurement-time 2`.

#[path = "../src/bin/kgroups-lab/bench/cpu.rs"]
mod cpu;
use cpu::thread_cpu;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use crossbeam_utils::CachePadded;
use kgroups::partition::{Key, Partition};
use kgroups::partitioner::partition_for;
use kgroups::topic::Topic;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

const PARTITIONS: u32 = 16;
const KEYS: usize = 100;
/// Records appended per timed batch, all threads together: the structures are rebuilt (untimed)
/// between batches, so memory stays bounded however many iterations criterion asks for.
const BATCH: u64 = 1 << 20;

/// What the appending threads do: how many partitions, and whether each thread keeps to its own.
#[derive(Clone, Copy)]
struct Load {
    /// The criterion group's name and the probe's label.
    name: &'static str,
    partitions: u32,
    /// Each thread appends only keys whose partition is its own (partition mod threads = thread
    /// index), like one producer per partition; otherwise every thread walks every key.
    affine: bool,
}

const LOADS: [Load; 3] = [
    Load {
        name: "append/16-partitions",
        partitions: PARTITIONS,
        affine: false,
    },
    Load {
        name: "append/16-partitions-affine",
        partitions: PARTITIONS,
        affine: true,
    },
    Load {
        name: "append/1-partition",
        partitions: 1,
        affine: false,
    },
];

impl Load {
    /// The keys (indices into `keys`) thread `t` of `threads` appends, in its order.
    fn keys_of(&self, keys: &[String], t: usize, threads: usize) -> Vec<usize> {
        // Each thread walks the keys from its own place, so that in a shared load threads
        // collide on partitions only as often as hashing makes them.
        let walk = (0..KEYS).map(|k| (k + t * 37) % KEYS);
        let mine: Vec<usize> = if self.affine {
            walk.filter(|&k| {
                partition_for(keys[k].as_bytes(), self.partitions) as usize % threads == t
            })
            .collect()
        } else {
            walk.collect()
        };
        assert!(!mine.is_empty(), "{}: thread {t} has no key", self.name);
        mine
    }
}

fn keys() -> Vec<String> {
    (0..KEYS).map(|k| format!("key-{k}")).collect()
}

/// A value shaped like Maelstrom's: a small JSON number.
fn value(i: u64) -> [u8; 5] {
    let v = 10_000 + (i % 90_000);
    let mut buf = itoa::Buffer::new();
    let s = buf.format(v).as_bytes();
    [s[0], s[1], s[2], s[3], s[4]]
}

/// How many distinct values the append workload cycles through (a power of two).
const VALUES: usize = 1024;

/// Pre-generated values, so that formatting them is not part of the timed appends.
fn values() -> Vec<[u8; 5]> {
    (0..VALUES as u64).map(|i| value(i * 7919)).collect()
}

/// The baseline's record: the same 32 bytes as ours (interned key id + inline value).
#[derive(Clone, Copy)]
#[allow(dead_code)]
struct PlainRecord {
    key: usize,
    len: u8,
    value: [u8; 22],
}

impl PlainRecord {
    fn new(key: usize, v: &[u8]) -> Self {
        let mut value = [0; 22];
        value[..v.len()].copy_from_slice(v);
        PlainRecord {
            key,
            len: v.len() as u8,
            value,
        }
    }
}

/// What the append workload needs from each contender.
trait Appender: Sync {
    fn new(partitions: u32) -> Self;
    fn append(&self, key_id: usize, key: &[u8], value: &[u8]) -> u64;
}

impl Appender for Topic {
    fn new(partitions: u32) -> Self {
        Topic::new("bench", partitions)
    }

    #[inline]
    fn append(&self, _key_id: usize, key: &[u8], value: &[u8]) -> u64 {
        let key = Key {
            kind: kgroups::partition::KeyKind::Str,
            bytes: key,
        };
        Topic::append(self, Some(key), value).1
    }
}

/// Each partition's mutex on cache lines of its own (`CachePadded`), so that two threads writing
/// neighbouring partitions do not slow each other down through false sharing.
struct MutexVec(Vec<CachePadded<Mutex<Vec<PlainRecord>>>>);

impl Appender for MutexVec {
    fn new(partitions: u32) -> Self {
        MutexVec(
            (0..partitions)
                .map(|_| CachePadded::new(Mutex::new(Vec::new())))
                .collect(),
        )
    }

    #[inline]
    fn append(&self, key_id: usize, key: &[u8], value: &[u8]) -> u64 {
        let p = partition_for(key, self.0.len() as u32) as usize;
        let mut log = self.0[p].lock().unwrap();
        log.push(PlainRecord::new(key_id, value));
        log.len() as u64 - 1
    }
}

type Indexed = (
    Vec<PlainRecord>,
    HashMap<Box<[u8]>, Vec<u64>, ahash::RandomState>,
);

/// Padded as [`MutexVec`].
struct MutexIndexed(Vec<CachePadded<Mutex<Indexed>>>);

impl Appender for MutexIndexed {
    fn new(partitions: u32) -> Self {
        MutexIndexed(
            (0..partitions)
                .map(|_| CachePadded::new(Mutex::new(Default::default())))
                .collect(),
        )
    }

    #[inline]
    fn append(&self, key_id: usize, key: &[u8], value: &[u8]) -> u64 {
        let p = partition_for(key, self.0.len() as u32) as usize;
        let mut guard = self.0[p].lock().unwrap();
        let (log, index) = &mut *guard;
        let offset = log.len() as u64;
        log.push(PlainRecord::new(key_id, value));
        match index.get_mut(key) {
            Some(list) => list.push(offset),
            None => {
                index.insert(key.into(), vec![offset]);
            }
        }
        offset
    }
}

/// One `Mutex<Vec<record>>` for the whole topic: the most literal "Mutex<Vec<_>> baseline", in
/// which every append of every thread takes the same lock. It numbers records per topic, not per
/// partition, and keeps no key index: a floor of the naive design, not the same job.
struct MutexGlobal(CachePadded<Mutex<Vec<PlainRecord>>>);

impl Appender for MutexGlobal {
    fn new(_partitions: u32) -> Self {
        MutexGlobal(CachePadded::new(Mutex::new(Vec::new())))
    }

    #[inline]
    fn append(&self, key_id: usize, _key: &[u8], value: &[u8]) -> u64 {
        let mut log = self.0.lock().unwrap();
        log.push(PlainRecord::new(key_id, value));
        log.len() as u64 - 1
    }
}

/// Times `iters` appends spread over `threads` threads, in batches of at most `BATCH` records on
/// fresh structures; only the appends are timed (barrier to barrier).
fn run_appends<A: Appender>(load: Load, threads: usize, iters: u64, keys: &[String]) -> Duration {
    run_appends_cpu::<A>(load, threads, iters, keys).0
}

/// As [`run_appends`], also returning the CPU time the appending threads used in all (user and
/// system, page faults included), which a busy shared machine disturbs less than wall time.
fn run_appends_cpu<A: Appender>(
    load: Load,
    threads: usize,
    iters: u64,
    keys: &[String],
) -> (Duration, Duration) {
    let values = values();
    let values = &values;
    let mut total = Duration::ZERO;
    let mut cpu = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let batch = left.min(BATCH);
        left -= batch;
        let target = A::new(load.partitions);
        let start = Barrier::new(threads + 1);
        let end = Barrier::new(threads + 1);
        std::thread::scope(|s| {
            let mut workers = Vec::with_capacity(threads);
            for t in 0..threads {
                let (target, start, end) = (&target, &start, &end);
                let per = batch / threads as u64 + u64::from((t as u64) < batch % threads as u64);
                let mine = load.keys_of(keys, t, threads);
                workers.push(s.spawn(move || {
                    start.wait();
                    let t0 = Instant::now();
                    let cpu0 = thread_cpu();
                    let mut j = 0;
                    for i in 0..per {
                        let k = mine[j];
                        let v = &values[i as usize & (VALUES - 1)];
                        black_box(target.append(k, keys[k].as_bytes(), v));
                        j += 1;
                        if j == mine.len() {
                            j = 0;
                        }
                    }
                    let used = thread_cpu() - cpu0;
                    let t1 = Instant::now();
                    end.wait();
                    (t0, t1, used)
                }));
            }
            start.wait();
            end.wait();
            // From the first worker's start to the last one's end, as the workers saw them: a
            // timestamp taken by this thread around the barriers would miss the work done while
            // it was descheduled between the barrier and the clock read.
            let mut first = None::<Instant>;
            let mut last = None::<Instant>;
            for w in workers {
                let (t0, t1, used) = w.join().expect("appender panicked");
                first = Some(first.map_or(t0, |f| f.min(t0)));
                last = Some(last.map_or(t1, |l| l.max(t1)));
                cpu += used;
            }
            if let (Some(first), Some(last)) = (first, last) {
                total += last - first;
            }
        });
        drop(target);
        // A log never frees records, so in steady state every contender writes into fresh pages.
        // Give freed memory back to the kernel so that no contender reuses the previous batch's
        // already-faulted pages (glibc's heap would hand them to the Vec-based baselines).
        // SAFETY: 1. `malloc_trim` has no preconditions.
        unsafe { libc::malloc_trim(0) };
    }
    (total, cpu)
}

fn append(c: &mut Criterion) {
    let keys = keys();
    for load in LOADS {
        let mut group = c.benchmark_group(load.name);
        group.throughput(Throughput::Elements(1));
        for threads in [1usize, 2, 4] {
            let keys = &keys;
            group.bench_with_input(BenchmarkId::new("kgroups", threads), &threads, |b, &t| {
                b.iter_custom(|iters| run_appends::<Topic>(load, t, iters, keys))
            });
            group.bench_with_input(BenchmarkId::new("mutex-vec", threads), &threads, |b, &t| {
                b.iter_custom(|iters| run_appends::<MutexVec>(load, t, iters, keys))
            });
            group.bench_with_input(
                BenchmarkId::new("mutex-indexed", threads),
                &threads,
                |b, &t| b.iter_custom(|iters| run_appends::<MutexIndexed>(load, t, iters, keys)),
            );
            group.bench_with_input(
                BenchmarkId::new("mutex-global", threads),
                &threads,
                |b, &t| b.iter_custom(|iters| run_appends::<MutexGlobal>(load, t, iters, keys)),
            );
        }
        group.finish();
    }
}

fn filled_partition(records: u64, keys: &[String]) -> Partition {
    let p = Partition::new();
    for i in 0..records {
        p.append(Some(Key::str(&keys[(i % KEYS as u64) as usize])), &value(i));
    }
    p
}

fn read(c: &mut Criterion) {
    let keys = keys();
    let p = filled_partition(1 << 20, &keys);
    let mut group = c.benchmark_group("read");
    const MAX: usize = 1000;
    group.throughput(Throughput::Elements(MAX as u64));
    let mut from = 0;
    group.bench_function("kgroups", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            p.read(from, MAX, |r| sum += r.value.len());
            from = (from + MAX as u64) % (p.end() - MAX as u64);
            black_box(sum)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("read_key");
    const KEY_MAX: usize = 100;
    group.throughput(Throughput::Elements(KEY_MAX as u64));
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    group.bench_function("kgroups", |b| {
        b.iter(|| {
            // xorshift: a cheap random key and starting offset.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let key = Key::str(&keys[(rng % KEYS as u64) as usize]);
            let from = (rng >> 8) % (p.end() - (KEY_MAX * KEYS) as u64);
            let mut n = 0;
            p.read_key(key, from, KEY_MAX, |r| n += r.value.len());
            black_box(n)
        })
    });
    group.finish();
}

/// The resident set size now, from `/proc/self/statm`.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: 1. `sysconf` has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

/// The peak resident set size, from `getrusage`.
fn max_rss_bytes() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY:
    // 1. `usage` points to writable memory for one `rusage`.
    // 2. On success the kernel fills it in; zeroed is also a valid `rusage`.
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init().ru_maxrss as u64 * 1024
    }
}

/// Appends `records` records (10 M by default) to a topic of `partitions` partitions (8 by
/// default) and reports resident memory per record beyond the key and value bytes.
fn memory(partitions: u32, records: u64) {
    let keys = keys();
    let before = rss_bytes();
    let topic = Topic::new("memory", partitions);
    let mut payload = 0u64;
    for i in 0..records {
        let key = &keys[(i % KEYS as u64) as usize];
        let v = value(i);
        topic.append(Some(Key::str(key)), &v);
        payload += (key.len() + v.len()) as u64;
    }
    let after = rss_bytes();
    assert_eq!(topic.record_count(), records);
    let grown = after.saturating_sub(before);
    println!(
        "memory: {records} records, {KEYS} keys, 5-byte values, {partitions} partitions: RSS grew \
         {:.1} MiB ({:.1} bytes/record); key+value bytes {:.1} bytes/record; overhead {:.1} \
         bytes/record; peak RSS {:.1} MiB",
        grown as f64 / (1 << 20) as f64,
        grown as f64 / records as f64,
        payload as f64 / records as f64,
        (grown as f64 - payload as f64) / records as f64,
        max_rss_bytes() as f64 / (1 << 20) as f64,
    );
    black_box(&topic);
}

/// A quick, noise-resistant comparison for a shared machine: the contenders take turns, 15 rounds
/// of `batch` records each, and the best round of each is reported.
fn probe(batch: u64) {
    let keys = keys();
    let names = ["kgroups", "mutex-vec", "mutex-indexed", "mutex-global"];
    for load in LOADS {
        for threads in [1usize, 2, 4] {
            if let Ok(only) = std::env::var("PROBE_ONLY") {
                // One contender alone, in its own process (no other contender's memory or
                // cache state around it); `name` or `name:T` for one thread count.
                let (name, t) = only.split_once(':').unwrap_or((&only, ""));
                if load.partitions != PARTITIONS || !(t.is_empty() || t.parse() == Ok(threads)) {
                    continue;
                }
                let run = match name {
                    "kgroups" => run_appends_cpu::<Topic>,
                    "mutex-vec" => run_appends_cpu::<MutexVec>,
                    "mutex-indexed" => run_appends_cpu::<MutexIndexed>,
                    "mutex-global" => run_appends_cpu::<MutexGlobal>,
                    _ => panic!("PROBE_ONLY: unknown contender {name}"),
                };
                let (mut wall, mut cpu) = (Duration::MAX, Duration::MAX);
                for _ in 0..30 {
                    let (w, c) = run(load, threads, batch, &keys);
                    (wall, cpu) = (wall.min(w), cpu.min(c));
                }
                println!(
                    "probe {} {name} alone T={threads}: {:.1} M/s ({:.1} CPU-ns/record) (best of \
                     30 batches of {batch})",
                    load.name,
                    batch as f64 / wall.as_secs_f64() / 1e6,
                    cpu.as_secs_f64() * 1e9 / batch as f64
                );
                continue;
            }
            let mut best = [f64::MAX; 4];
            let mut best_cpu = [f64::MAX; 4];
            for _ in 0..15 {
                let runs = [
                    run_appends_cpu::<Topic>(load, threads, batch, &keys),
                    run_appends_cpu::<MutexVec>(load, threads, batch, &keys),
                    run_appends_cpu::<MutexIndexed>(load, threads, batch, &keys),
                    run_appends_cpu::<MutexGlobal>(load, threads, batch, &keys),
                ];
                for (i, (wall, cpu)) in runs.into_iter().enumerate() {
                    best[i] = best[i].min(wall.as_secs_f64());
                    best_cpu[i] = best_cpu[i].min(cpu.as_secs_f64());
                }
            }
            let line: Vec<String> = (0..4)
                .map(|i| {
                    format!(
                        "{} {:.1} M/s ({:.1} CPU-ns/record)",
                        names[i],
                        batch as f64 / best[i] / 1e6,
                        best_cpu[i] * 1e9 / batch as f64,
                    )
                })
                .collect();
            println!(
                "probe {} T={threads}: {} (best of 15 batches of {batch})",
                load.name,
                line.join(", ")
            );
        }
    }
}

criterion_group!(benches, append, read);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "memory") {
        // `memory [partitions records]`, 8 partitions and 10 M records by default.
        let partitions = args.get(i + 1).and_then(|n| n.parse().ok());
        let records = args.get(i + 2).and_then(|n| n.parse().ok());
        memory(partitions.unwrap_or(8), records.unwrap_or(10_000_000));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "probe") {
        // `probe [records per batch]`, `BATCH` by default.
        let batch = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(BATCH);
        probe(batch);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
