//! Loom models of the append log and the per-key index.
//!
//! Run: `CARGO_TARGET_DIR=target/loom RUSTFLAGS="--cfg loom" cargo test --release --lib loom`.
//! Under `cfg(loom)` the log's buckets hold 1, 2, 4, … slots, so these few appends cross bucket
//! boundaries and race on installing a bucket. An append that is never published would spin forever,
//! which loom reports as a failure, so every model also checks that no publication is lost.
//!
//! Each model has at most two appenders (plus a reader). With three, two appenders can wait at
//! once, and loom explores their spin loops taking turns without bound (a turn at a yield is not a
//! preemption, so the bound does not stop it) and gives up with "max branches". The std stress
//! tests in `src/log.rs` and `src/partition.rs` cover four appenders.

use super::{Log, Publish};
use crate::loom::{Arc, UnsafeCell};
use crate::partition::{Key, Partition};
use loom::thread;

/// A log of `Hooked` records records the offsets that `publish` ran for, in a loom cell: two
/// overlapping `publish` calls would be a data race that loom reports.
struct Hook(UnsafeCell<Vec<(u64, u64)>>);

// SAFETY: the log promises that `publish` calls never overlap; loom checks that promise through the
// cell's access tracking.
unsafe impl Sync for Hook {}
// SAFETY: a `Vec` of integers may move between threads; the cell only tracks accesses.
unsafe impl Send for Hook {}

struct Hooked {
    value: u64,
    hook: Arc<Hook>,
}

impl Publish for Hooked {
    fn publish(&self, offset: u64) {
        // SAFETY: exclusive if the log keeps its promise; loom fails the model otherwise.
        self.hook
            .0
            .with_mut(|v| unsafe { (*v).push((offset, self.value)) });
    }
}

fn hooked_log() -> (Arc<Log<Hooked>>, Arc<Hook>) {
    (
        Arc::new(Log::new()),
        Arc::new(Hook(UnsafeCell::new(vec![]))),
    )
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// Checks, after every thread joined: offsets dense and unique, each value at the offset its
/// append returned, and `publish` ran once per record, in offset order, with the right value.
fn check_final(log: &Log<Hooked>, hook: &Hook, appended: &[(u64, u64)]) {
    let n = appended.len() as u64;
    assert_eq!(log.end(), n);
    let mut offsets: Vec<u64> = appended.iter().map(|(o, _)| *o).collect();
    offsets.sort_unstable();
    assert!(
        offsets.iter().copied().eq(0..n),
        "offsets not dense: {offsets:?}"
    );
    for (offset, value) in appended {
        assert_eq!(log.get(*offset).unwrap().value, *value);
    }
    let published = hook.0.with(|v| unsafe { (*v).clone() });
    let mut expected: Vec<(u64, u64)> = appended.to_vec();
    expected.sort_unstable();
    assert_eq!(published, expected, "publish order");
}

#[test]
fn append_append() {
    model(|| {
        let (log, hook) = hooked_log();
        let handles: Vec<_> = (0..2u64)
            .map(|t| {
                let (log, hook) = (log.clone(), hook.clone());
                thread::spawn(move || {
                    let value = 10 + t;
                    let offset = log.append(Hooked { value, hook });
                    // Returned only once published.
                    assert!(log.end() > offset);
                    assert_eq!(log.get(offset).unwrap().value, value);
                    (offset, value)
                })
            })
            .collect();
        let appended: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        check_final(&log, &hook, &appended);
    });
}

#[test]
fn append_twice_append() {
    // One thread appends twice while another appends once: the publisher role passes back and
    // forth, and a publisher may leave while its own record waits behind a gap.
    model(|| {
        let (log, hook) = hooked_log();
        let other = {
            let (log, hook) = (log.clone(), hook.clone());
            thread::spawn(move || vec![(log.append(Hooked { value: 1, hook }), 1)])
        };
        let mut appended = vec![];
        for value in [2, 3] {
            let offset = log.append(Hooked {
                value,
                hook: hook.clone(),
            });
            if let Some((last, _)) = appended.last() {
                assert!(
                    offset > *last,
                    "one thread's appends get increasing offsets"
                );
            }
            appended.push((offset, value));
        }
        appended.extend(other.join().unwrap());
        check_final(&log, &hook, &appended);
    });
}

#[test]
fn append_read() {
    // Two appenders and a reader: the reader sees a contiguous prefix, each record fully written,
    // and never more than the watermark it observed after reading.
    model(|| {
        let log: Arc<Log<u64>> = Arc::new(Log::new());
        let writers: Vec<_> = (0..2u64)
            .map(|t| {
                let log = log.clone();
                thread::spawn(move || (log.append(100 + t), 100 + t))
            })
            .collect();
        let end_before = log.end();
        let mut seen = vec![];
        let n = log.read(0, 10, |offset, _, v| seen.push((offset, *v)));
        let end_after = log.end();
        assert_eq!(n, seen.len());
        assert!(end_before as usize <= n && n as u64 <= end_after);
        assert!(seen.iter().enumerate().all(|(i, (o, _))| *o == i as u64));
        assert!(seen.iter().all(|(_, v)| *v == 100 || *v == 101));
        for i in 0..end_after {
            assert!(log.get(i).is_some(), "a hole below the watermark");
        }
        let appended: Vec<_> = writers.into_iter().map(|h| h.join().unwrap()).collect();
        for (offset, value) in appended {
            assert_eq!(log.get(offset), Some(&value));
            if let Some((_, v)) = seen.iter().find(|(o, _)| *o == offset) {
                assert_eq!(*v, value, "the reader saw another value at {offset}");
            }
        }
    });
}

#[test]
fn append_read_key() {
    // Two appenders of key "k" and a key reader: the reader gets k's records in offset order, only
    // below the watermark, and all of them below the watermark it saw first; an appender reads its
    // own record by key as soon as append returns.
    model(|| {
        let p = Arc::new(Partition::new());
        let writers: Vec<_> = (0..2u8)
            .map(|t| {
                let p = p.clone();
                thread::spawn(move || {
                    let offset = p.append(Some(Key::str("k")), &[t]);
                    let mut found = 0;
                    p.read_key(Key::str("k"), offset, 1, |r| {
                        assert_eq!((r.offset, r.value), (offset, &[t][..]));
                        found += 1;
                    });
                    assert_eq!(found, 1, "own record not readable by key");
                    offset
                })
            })
            .collect();
        let end_before = p.end();
        let got = read_key_all(&p, "k");
        let end_after = p.end();
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(got.iter().all(|(o, _)| *o < end_after));
        // Every record of "k" below `end_before` was returned, and nothing else came before them.
        let below = read_all_of(&p, "k", end_before);
        assert_eq!(got[..below.len()], below[..]);
        let mut offsets: Vec<u64> = writers.into_iter().map(|h| h.join().unwrap()).collect();
        offsets.sort_unstable();
        assert_eq!(offsets, [0, 1]);
        assert_eq!(p.key_count(Key::str("k")), 2);
        let all: Vec<u64> = read_key_all(&p, "k").iter().map(|(o, _)| *o).collect();
        assert_eq!(all, offsets);
    });
}

#[test]
fn key_insert_resize_read_key() {
    // Under loom the key table starts with two slots, so the second key makes it grow: a reader
    // racing the resize still finds every key that has a record below the watermark it saw.
    model(|| {
        let p = Arc::new(Partition::new());
        let writer = {
            let p = p.clone();
            thread::spawn(move || {
                let a = p.append(Some(Key::str("a")), b"1");
                let b = p.append(Some(Key::str("b")), b"2");
                (a, b)
            })
        };
        let end = p.end();
        for key in ["b", "a"] {
            let got = read_key_all(&p, key);
            let below = read_all_of(&p, key, end);
            assert_eq!(got[..below.len()], below[..], "key {key}");
            assert!(got.len() <= 1);
        }
        let (a, b) = writer.join().unwrap();
        assert_eq!((a, b), (0, 1));
        assert_eq!(read_key_all(&p, "a"), [(0, b"1".to_vec())]);
        assert_eq!(read_key_all(&p, "b"), [(1, b"2".to_vec())]);
    });
}

#[test]
fn append_append_drop() {
    // Records published on the fast path (no `ready` flag) and on the slow path (flag set, maybe
    // published by the other appender) are each dropped exactly once with the log.
    model(|| {
        let token = Arc::new(());
        let log: Arc<Log<Dropped>> = Arc::new(Log::new());
        let other = {
            let (log, token) = (log.clone(), token.clone());
            thread::spawn(move || {
                log.append(Dropped(token));
            })
        };
        log.append(Dropped(token.clone()));
        other.join().unwrap();
        assert_eq!(log.end(), 2);
        assert_eq!(Arc::strong_count(&token), 3);
        drop(log);
        assert_eq!(
            Arc::strong_count(&token),
            1,
            "a record dropped twice or never"
        );
    });
}

/// An entry that takes `count` offsets.
struct Weighted(u64);

impl Publish for Weighted {
    fn count(&self) -> u64 {
        self.0
    }
}

#[test]
fn weighted_append_append_read() {
    // Two appenders of entries of 2 and 3 offsets (batches) and a reader: each append gets a
    // disjoint range, the ranges tile 0..5, and a reader that sees the high watermark `e` finds
    // every offset below `e` in a published entry whose range holds it.
    model(|| {
        let log: Arc<Log<Weighted>> = Arc::new(Log::new());
        let writers: Vec<_> = [2u64, 3]
            .into_iter()
            .map(|count| {
                let log = log.clone();
                thread::spawn(move || {
                    let index = log.append(Weighted(count));
                    let range = log.offsets(index).expect("published on return");
                    assert_eq!(range.end - range.start, count);
                    range
                })
            })
            .collect();
        let end = log.end();
        assert!(
            [0, 2, 3, 5].contains(&end),
            "a watermark inside an entry: {end}"
        );
        for offset in 0..end {
            let index = log.index_of(offset).expect("an offset below the watermark");
            assert!(log.offsets(index).unwrap().contains(&offset));
        }
        let mut ranges: Vec<_> = writers.into_iter().map(|h| h.join().unwrap()).collect();
        ranges.sort_by_key(|r| r.start);
        assert_eq!(ranges[0].start, 0);
        assert_eq!(ranges[0].end, ranges[1].start, "ranges tile the offsets");
        assert_eq!((ranges[1].end, log.end()), (5, 5));
    });
}

/// A record that holds a reference count, to count drops.
struct Dropped(#[allow(dead_code)] Arc<()>);

impl Publish for Dropped {}

#[test]
fn new_keys_race() {
    // Two appenders of two new keys at once: under loom the key table starts with two slots, so
    // the second insert grows it while the other appender may be probing; both keys end up in
    // the table once, each with its own record.
    model(|| {
        let p = Arc::new(Partition::new());
        let handles: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|key| {
                let p = p.clone();
                thread::spawn(move || {
                    let offset = p.append(Some(Key::str(key)), key.as_bytes());
                    assert_eq!(read_key_all(&p, key), [(offset, key.as_bytes().to_vec())]);
                    offset
                })
            })
            .collect();
        let mut offsets: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        offsets.sort_unstable();
        assert_eq!(offsets, [0, 1]);
        assert_eq!(p.key_count(Key::str("a")), 1);
        assert_eq!(p.key_count(Key::str("b")), 1);
    });
}

/// Every record of `key` that `read_key` returns, from offset 0.
fn read_key_all(p: &Partition, key: &str) -> Vec<(u64, Vec<u8>)> {
    let mut got = vec![];
    p.read_key(Key::str(key), 0, 10, |r| {
        assert_eq!(r.key, Some(Key::str(key)));
        got.push((r.offset, r.value.to_vec()));
    });
    got
}

/// The records of `key` below `end`, found by a full read.
fn read_all_of(p: &Partition, key: &str, end: u64) -> Vec<(u64, Vec<u8>)> {
    let mut below = vec![];
    p.read(0, end as usize, |r| {
        if r.key == Some(Key::str(key)) {
            below.push((r.offset, r.value.to_vec()));
        }
    });
    below
}
