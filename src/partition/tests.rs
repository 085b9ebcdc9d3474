//! The partition's unit tests: records, keys, batches, fetches, idempotence, the disk.

use super::fetch::SHARE_MIN;
use super::value::INLINE;
use super::*;
use crate::loom::AtomicBool;
use bytes::{Buf, Bytes, BytesMut};
use bytes_utils::SegmentedBuf;

fn collect(p: &Partition, key: Key<'_>, from: u64, max: usize) -> Vec<(u64, Vec<u8>)> {
    let mut out = vec![];
    let n = p.read_key(key, from, max, |r| {
        assert_eq!(r.key, Some(key));
        out.push((r.offset, r.value.to_vec()));
    });
    assert_eq!(n, out.len());
    out
}

#[test]
fn keys_of_every_length_and_both_kinds_stay_apart() {
    // Keys whose probe words coincide ("aaaa" and "aaaaa" read the same two words), keys that
    // differ in one byte, both kinds of the same bytes, and keys past the 16-byte inline probe.
    let mut keys: Vec<(KeyKind, Vec<u8>)> = vec![];
    for n in 0..=40usize {
        for kind in [KeyKind::Str, KeyKind::Json] {
            keys.push((kind, vec![b'a'; n]));
            for i in 0..n {
                let mut k = vec![b'a'; n];
                k[i] = b'b';
                keys.push((kind, k));
            }
        }
    }
    let p = Partition::new();
    for (i, (kind, bytes)) in keys.iter().enumerate() {
        let key = Key { kind: *kind, bytes };
        assert_eq!(p.append(Some(key), &(i as u64).to_le_bytes()), i as u64);
    }
    for (i, (kind, bytes)) in keys.iter().enumerate() {
        let key = Key { kind: *kind, bytes };
        assert_eq!(
            collect(&p, key, 0, 10),
            [(i as u64, (i as u64).to_le_bytes().to_vec())]
        );
        p.read(i as u64, 1, |r| assert_eq!(r.key, Some(key)));
    }
}

#[test]
fn many_keys_grow_the_key_table() {
    let p = Partition::new();
    let keys: Vec<String> = (0..2000).map(|k| format!("key-{k}")).collect();
    for round in 0..3u64 {
        for (k, key) in keys.iter().enumerate() {
            let offset = p.append(Some(Key::str(key)), &round.to_le_bytes());
            assert_eq!(offset, round * keys.len() as u64 + k as u64);
        }
    }
    for (k, key) in keys.iter().enumerate() {
        let mut got = vec![];
        p.read_key(Key::str(key), 0, 10, |r| {
            assert_eq!(r.key, Some(Key::str(key)));
            got.push(r.offset);
        });
        let n = keys.len() as u64;
        assert_eq!(got, [k as u64, n + k as u64, 2 * n + k as u64]);
    }
}

#[test]
fn values_inline_and_boxed_round_trip() {
    let p = Partition::new();
    let long = vec![7u8; 1000];
    let cases: Vec<&[u8]> = vec![b"", b"1", &[9; INLINE], &[8; INLINE + 1], &long];
    for (i, v) in cases.iter().enumerate() {
        assert_eq!(p.append(None, v), i as u64);
    }
    let mut got = vec![];
    p.read(0, 100, |r| {
        assert_eq!(r.key, None);
        got.push(r.value.to_vec());
    });
    assert_eq!(got, cases.iter().map(|v| v.to_vec()).collect::<Vec<_>>());
    assert_eq!(p.read(4, 1, |r| assert_eq!(r.value, &long[..])), 1);
    assert_eq!(p.read(5, 1, |_| panic!("past the end")), 0);
}

#[test]
fn read_key_returns_that_keys_records_from_an_offset() {
    let p = Partition::new();
    let a = Key::str("a");
    let b = Key::str("b");
    // Same bytes, other kind: a distinct key.
    let a_json = Key {
        kind: KeyKind::Json,
        bytes: b"a",
    };
    let mut expected_a = vec![];
    for i in 0..100u64 {
        let key = match i % 3 {
            0 => a,
            1 => b,
            _ => a_json,
        };
        let offset = p.append(Some(key), i.to_string().as_bytes());
        assert_eq!(offset, i);
        if i % 3 == 0 {
            expected_a.push((i, i.to_string().into_bytes()));
        }
    }
    assert_eq!(collect(&p, a, 0, usize::MAX), expected_a);
    // From an offset that is not one of a's: starts at the next one.
    let from_31: Vec<_> = expected_a
        .iter()
        .filter(|(o, _)| *o >= 31)
        .cloned()
        .collect();
    assert_eq!(collect(&p, a, 31, usize::MAX), from_31);
    assert_eq!(collect(&p, a, 31, 2), from_31[..2].to_vec());
    assert_eq!(collect(&p, a, 1000, 10), vec![]);
    assert_eq!(collect(&p, a, 0, 0), vec![]);
    assert_eq!(collect(&p, Key::str("nope"), 0, 10), vec![]);
    assert!(collect(&p, a_json, 0, 100).iter().all(|(o, _)| o % 3 == 2));
    assert_eq!(p.key_count(a), 34);
    assert_eq!(p.key_count(b), 33);
    assert_eq!(p.key_count(Key::str("nope")), 0);
    // A full read sees each key as it came.
    p.read(0, 3, |r| {
        let want = [a, b, a_json][r.offset as usize];
        assert_eq!(r.key, Some(want));
    });
}

#[test]
fn stress_per_key_order_and_prefix() {
    const THREADS: u64 = 4;
    const PER: u64 = 100_000;
    const KEYS: u64 = 7;
    let p = Partition::new();
    let done = AtomicBool::new(false);
    let key_names: Vec<String> = (0..KEYS).map(|k| format!("k{k}")).collect();
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (p, names) = (&p, &key_names);
                s.spawn(move || {
                    let mut last = vec![None; KEYS as usize];
                    for i in 0..PER {
                        let k = ((t + i) % KEYS) as usize;
                        let value = format!("{t}:{i}");
                        let offset = p.append(Some(Key::str(&names[k])), value.as_bytes());
                        // Published before append returns, and readable by key.
                        let mut found = false;
                        p.read_key(Key::str(&names[k]), offset, 1, |r| {
                            found = r.offset == offset && r.value == value.as_bytes();
                        });
                        assert!(found, "own record {offset} not readable by key");
                        assert!(last[k].is_none_or(|l| l < offset));
                        last[k] = Some(offset);
                    }
                })
            })
            .collect();
        // Per-key readers: offsets ascending, only below the watermark, and per (key, writer)
        // sequence numbers in order.
        for k in 0..2usize {
            let (p, names, done) = (&p, &key_names, &done);
            s.spawn(move || {
                let key = Key::str(&names[k]);
                let mut from = 0;
                let mut seen = 0u64;
                let mut next_i = vec![None::<u64>; THREADS as usize];
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    let n = p.read_key(key, from, 1000, |r| {
                        assert!(r.offset >= from);
                        assert!(r.offset < p.end(), "returned above the watermark");
                        let text = std::str::from_utf8(r.value).unwrap();
                        let (t, i) = text.split_once(':').unwrap();
                        let (t, i): (usize, u64) = (t.parse().unwrap(), i.parse().unwrap());
                        assert!(next_i[t].is_none_or(|n| n < i), "per-writer order");
                        next_i[t] = Some(i);
                        from = r.offset + 1;
                        seen += 1;
                    });
                    assert!(p.key_count(key) >= seen);
                    if finished && n == 0 {
                        assert_eq!(seen, p.key_count(key), "a record of the key was skipped");
                        break;
                    }
                    if n == 0 {
                        std::thread::yield_now();
                    }
                }
            });
        }
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
    });
    assert_eq!(p.end(), THREADS * PER);
    let mut total = 0;
    for name in &key_names {
        let records = collect(&p, Key::str(name), 0, usize::MAX);
        assert!(records.windows(2).all(|w| w[0].0 < w[1].0));
        total += records.len() as u64;
    }
    assert_eq!(total, THREADS * PER);
}

/// A Kafka batch of `n` records `k{i}`/`v{i}` with timestamps `ts0 + i`, as a producer sends
/// it (base offset 0); with `producer`, (id, epoch, base sequence).
fn kafka_batch(n: u32, ts0: i64, producer: Option<(i64, i16, i32)>) -> Batch {
    use kafka_protocol::records::{
        Compression, Record as KRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<KRecord> = (0..n)
        .map(|i| KRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer.map_or(-1, |p| p.0),
            producer_epoch: producer.map_or(-1, |p| p.1),
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: producer.map_or(i as i32 - 1, |p| p.2 + i as i32),
            timestamp: ts0 + i64::from(i),
            key: Some(format!("k{i}").into()),
            value: Some(format!("v{i}").into()),
            headers: Default::default(),
        })
        .collect();
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::Lz4,
    };
    RecordBatchEncoder::encode(&mut out, records.iter(), &options).unwrap();
    Batch::parse_all(out.freeze()).unwrap().pop().unwrap()
}

/// A record as a test reads it: (offset, key, value, kind).
type Owned = (u64, Option<Vec<u8>>, Vec<u8>, ValueKind);

/// Every record `read` returns from `from`.
fn read_all(p: &Partition, from: u64) -> Vec<Owned> {
    let mut got = vec![];
    p.read(from, usize::MAX, |r| {
        got.push((
            r.offset,
            r.key.map(|k| k.bytes.to_vec()),
            r.value.to_vec(),
            r.value_kind,
        ))
    });
    got
}

#[test]
fn batches_and_records_share_one_offset_space() {
    let p = Partition::new();
    assert_eq!(p.append_timed(Some(Key::str("a")), b"1", 10), 0);
    let appended = p.append_batch(kafka_batch(3, 100, None)).unwrap();
    assert_eq!(
        appended,
        Appended {
            base_offset: 1,
            duplicate: false
        }
    );
    assert_eq!(p.append_timed(None, b"2", 20), 4);
    assert_eq!(p.end(), 5);
    let all = read_all(&p, 0);
    let offsets: Vec<u64> = all.iter().map(|r| r.0).collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4]);
    assert_eq!(all[2].1.as_deref(), Some(&b"k1"[..]));
    assert_eq!(
        (all[2].2.as_slice(), all[2].3),
        (&b"v1"[..], ValueKind::Bytes)
    );
    assert_eq!(all[4].3, ValueKind::Json);
    // Reads from inside a batch start at the offset asked for, and honour `max`.
    let from_2: Vec<u64> = read_all(&p, 2).iter().map(|r| r.0).collect();
    assert_eq!(from_2, [2, 3, 4]);
    let mut two = vec![];
    assert_eq!(p.read(2, 2, |r| two.push(r.offset)), 2);
    assert_eq!(two, [2, 3]);
    // The key index holds the record, not the batch's records.
    assert_eq!(p.key_count(Key::str("a")), 1);
    let mut by_key = vec![];
    p.read_key(Key::str("a"), 0, 10, |r| {
        by_key.push((r.offset, r.timestamp))
    });
    assert_eq!(by_key, [(0, 10)]);
}

#[test]
fn fetch_serves_stored_batches_and_encodes_records() {
    let p = Partition::new();
    p.append_timed(Some(Key::str("a")), b"1", 10);
    p.append_timed(None, b"\"x\"", 11);
    p.append_batch(kafka_batch(3, 100, None)).unwrap();
    p.append_timed(Some(Key::str("z")), b"9", 12);
    let mut out = SegmentedBuf::new();
    let n = p.fetch(0, 1 << 20, &mut out).unwrap();
    assert_eq!(n, out.remaining());
    let batches = Batch::parse_all(out.copy_to_bytes(n)).unwrap();
    assert_eq!(batches.len(), 3, "records, the batch, a record");
    let mut offsets = vec![];
    let mut values = vec![];
    for b in &batches {
        let base = u64::from_be_bytes(b.bytes()[..8].try_into().unwrap());
        for r in b.records(base).unwrap() {
            offsets.push(r.offset);
            values.push(r.value.unwrap());
        }
    }
    assert_eq!(offsets, [0, 1, 2, 3, 4, 5]);
    assert_eq!(&values[1][..], b"\"x\"");
    assert_eq!(&values[3][..], b"v1");
    // From inside the stored batch: the whole batch comes (the consumer skips), then the rest.
    let batches = Batch::parse_all(fetched(&p, 3, 1 << 20)).unwrap();
    assert_eq!(batches.iter().map(Batch::count).collect::<Vec<_>>(), [3, 1]);
    // A tiny limit still returns one whole batch, never nothing.
    assert_eq!(Batch::parse_all(fetched(&p, 2, 1)).unwrap().len(), 1);
    assert_eq!(Batch::parse_all(fetched(&p, 0, 1)).unwrap()[0].count(), 1);
    // At the high watermark: empty; past it or below the start: out of range.
    let mut out = SegmentedBuf::new();
    assert_eq!(p.fetch(6, 100, &mut out), Ok(0));
    assert!(p.fetch(7, 100, &mut out).is_err());
    assert_eq!(p.delete_records(2), Ok(2));
    assert_eq!(p.delete_records(1), Ok(2), "the log start never moves back");
    assert!(p.delete_records(9).is_err());
    assert_eq!(
        p.fetch(1, 100, &mut out),
        Err(FetchError::OutOfRange(OffsetOutOfRange {
            offset: 1,
            start: 2,
            end: 6
        }))
    );
    assert_eq!(read_all(&p, 0)[0].0, 2, "reads start at the log start");
}

#[test]
fn delete_records_frees_the_batches_below_the_new_start() {
    let p = Partition::new();
    let first = kafka_batch(3, 0, None);
    let bytes = first.bytes().clone();
    p.append_batch(first).unwrap();
    p.append_batch(kafka_batch(3, 0, None)).unwrap();
    // The partition holds the batch's bytes (a second reference besides ours).
    assert!(!bytes.is_unique());
    assert_eq!(p.delete_records(2), Ok(2));
    assert!(!bytes.is_unique(), "offset 2 is still readable");
    assert_eq!(p.delete_records(3), Ok(3));
    assert!(bytes.is_unique(), "the batch below the start was freed");
    let offsets: Vec<u64> = read_all(&p, 0).iter().map(|r| r.0).collect();
    assert_eq!(offsets, [3, 4, 5]);
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let p = Partition::new();
    p.append_timed(None, b"1", 50);
    p.append_batch(kafka_batch(4, 100, None)).unwrap();
    p.append_timed(None, b"2", 200);
    assert_eq!(p.offset_for_timestamp(0), Some((0, 50)));
    assert_eq!(p.offset_for_timestamp(51), Some((1, 100)));
    assert_eq!(p.offset_for_timestamp(102), Some((3, 102)));
    assert_eq!(p.offset_for_timestamp(104), Some((5, 200)));
    assert_eq!(p.offset_for_timestamp(201), None);
}

#[test]
fn idempotent_retries_append_once() {
    let p = Partition::new();
    let first = p.append_batch(kafka_batch(2, 0, Some((5, 0, 0)))).unwrap();
    let retry = p.append_batch(kafka_batch(2, 0, Some((5, 0, 0)))).unwrap();
    assert_eq!(
        retry,
        Appended {
            base_offset: first.base_offset,
            duplicate: true
        }
    );
    assert_eq!(p.end(), 2);
    assert!(matches!(
        p.append_batch(kafka_batch(1, 0, Some((5, 0, 3)))),
        Err(AppendError::OutOfOrderSequence {
            expected: 2,
            got: 3,
            ..
        })
    ));
    assert_eq!(p.end(), 2, "a refused batch appends nothing");
    assert_eq!(
        p.append_batch(kafka_batch(1, 0, Some((5, 0, 2))))
            .unwrap()
            .base_offset,
        2
    );
}

#[test]
fn concurrent_idempotent_retries_and_records_never_duplicate() {
    const BATCHES: i32 = 200;
    let p = Partition::new();
    std::thread::scope(|s| {
        // Two senders race the same producer's batches (a retry storm); a third appends
        // records. Every batch must land exactly once, in sequence order.
        for _ in 0..2 {
            let p = &p;
            s.spawn(move || {
                for seq in 0..BATCHES {
                    loop {
                        match p.append_batch(kafka_batch(1, 0, Some((1, 0, seq)))) {
                            Ok(_) => break,
                            // Ahead of the other sender: wait for it to append.
                            Err(AppendError::OutOfOrderSequence { expected, got, .. })
                                if got > expected =>
                            {
                                std::thread::yield_now()
                            }
                            // Behind by more than the five batches remembered: already
                            // appended, refused rather than taken for a duplicate.
                            Err(AppendError::OutOfOrderSequence { .. }) => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
        let p = &p;
        s.spawn(move || {
            for i in 0..1000u32 {
                p.append(None, &i.to_le_bytes());
            }
        });
    });
    let batch_records = read_all(&p, 0)
        .into_iter()
        .filter(|r| r.3 == ValueKind::Bytes)
        .count();
    assert_eq!(batch_records, BATCHES as usize);
    assert_eq!(p.end(), 1000 + BATCHES as u64);
}

#[test]
fn a_watched_partition_wakes_its_listener() {
    let p = Partition::new();
    let listener = p.appends().listen();
    let watch = p.watch();
    std::thread::scope(|s| {
        s.spawn(|| p.append(None, b"1"));
        event_listener::Listener::wait(listener);
    });
    drop(watch);
    assert_eq!(p.end(), 1);
}

/// A durable partition in `dir` (partition directory `t-0`), with `tail_bytes` of batches kept
/// in memory and the given flush policy.
fn open_durable(dir: &std::path::Path, tail_bytes: u64, flush: FlushPolicy) -> Partition {
    let (p, _) = Partition::open(
        &dir.join("t-0"),
        crate::storage::LogConfig {
            segment_bytes: 4096,
            ..Default::default()
        },
        0,
        DiskOptions { flush, tail_bytes },
        Default::default(),
    )
    .unwrap();
    p
}

/// The bytes of one fetch from `from`, in one buffer.
fn fetched(p: &Partition, from: u64, max_bytes: usize) -> bytes::Bytes {
    let mut out = SegmentedBuf::new();
    let n = p.fetch(from, max_bytes, &mut out).unwrap();
    out.copy_to_bytes(n)
}

/// Every record a full fetch returns, decoded: (offset, key, value).
fn fetch_all(p: &Partition) -> Vec<(i64, Option<bytes::Bytes>, Option<bytes::Bytes>)> {
    let mut got = vec![];
    let mut from = p.start();
    while from < p.end() {
        for b in Batch::parse_all(fetched(p, from, 1 << 20)).unwrap() {
            let base = u64::from_be_bytes(b.bytes()[..8].try_into().unwrap());
            for r in b.records(base).unwrap() {
                if r.offset as u64 >= from {
                    got.push((r.offset, r.key, r.value));
                }
            }
        }
        from = got.last().map_or(p.end(), |r| r.0 as u64 + 1);
    }
    got
}

#[test]
fn a_durable_partition_reopens_with_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let p = open_durable(dir.path(), 1 << 20, FlushPolicy::default());
        p.append_timed(Some(Key::str("a")), b"1", 10);
        for i in 0..20 {
            p.append_batch(kafka_batch(5, 100 * i, None)).unwrap();
            p.append_timed(None, b"\"x\"", 10);
        }
        assert_eq!(p.delete_records(3), Ok(3));
        assert_eq!(p.disk().unwrap().end(), p.end(), "written through");
        assert!(p.disk().unwrap().segment_bases().len() > 1, "rolled");
        fetch_all(&p)
    };
    assert_eq!(before.len(), 121 - 3);
    let p = open_durable(dir.path(), 1 << 20, FlushPolicy::default());
    assert_eq!((p.start(), p.end()), (3, 121));
    assert_eq!(fetch_all(&p), before, "the same records after a restart");
    // Reads through the Maelstrom path see them too, and appends go on after them.
    let offsets: Vec<u64> = read_all(&p, 0).iter().map(|r| r.0).collect();
    assert_eq!(offsets, (3..121).collect::<Vec<_>>());
    assert_eq!(p.append_timed(None, b"2", 20), 121);
    // Batch 19 holds offsets 115..=119 with timestamps 1900..=1904 (on disk, found by its
    // time index); nothing is as late as 1905.
    assert_eq!(p.offset_for_timestamp(1_901), Some((116, 1_901)));
    assert_eq!(p.offset_for_timestamp(1_905), None);
}

#[test]
fn written_batches_beyond_the_tail_budget_leave_memory_and_are_read_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let p = open_durable(dir.path(), 2_000, FlushPolicy::default());
    let size = kafka_batch(5, 0, None).size() as u64;
    let mut first = None;
    for i in 0..40 {
        let b = kafka_batch(5, i, None);
        first.get_or_insert_with(|| b.bytes().clone());
        p.append_batch(b).unwrap();
        assert!(
            p.resident.load(Ordering::Relaxed) <= 2_000 + size,
            "resident batches stay near the budget"
        );
    }
    assert!(first.unwrap().is_unique(), "the first batch left memory");
    assert!(p.resident_from() > 0);
    let all = fetch_all(&p);
    assert_eq!(all.len(), 200);
    assert!(all.iter().enumerate().all(|(i, r)| r.0 == i as i64));
    let mut keys = 0;
    assert_eq!(p.read(0, 7, |r| keys += usize::from(r.key.is_some())), 7);
    assert_eq!(keys, 7, "records read back from disk by the Maelstrom path");
}

#[test]
fn idempotent_producers_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let p = open_durable(dir.path(), 1 << 20, FlushPolicy::default());
        p.append_batch(kafka_batch(2, 0, Some((7, 0, 0)))).unwrap();
        p.append_batch(kafka_batch(2, 0, Some((7, 0, 2)))).unwrap();
    }
    let p = open_durable(dir.path(), 1 << 20, FlushPolicy::default());
    let retry = p.append_batch(kafka_batch(2, 0, Some((7, 0, 2)))).unwrap();
    assert_eq!(
        retry,
        Appended {
            base_offset: 2,
            duplicate: true
        }
    );
    assert!(matches!(
        p.append_batch(kafka_batch(1, 0, Some((7, 0, 9)))),
        Err(AppendError::OutOfOrderSequence { expected: 4, .. })
    ));
    assert_eq!(p.end(), 4);
}

#[test]
fn flush_messages_one_fsyncs_before_an_append_returns() {
    let dir = tempfile::tempdir().unwrap();
    let p = open_durable(
        dir.path(),
        1 << 20,
        FlushPolicy {
            messages: Some(1),
            ms: None,
        },
    );
    for _ in 0..3 {
        p.append_batch(kafka_batch(3, 0, None)).unwrap();
        // A flush with nothing left to sync returns the recovery point at once: the end.
        assert_eq!(p.flush().unwrap(), Some(p.end()));
    }
}

#[test]
fn fetch_shares_large_stored_batches_and_copies_small_ones() {
    let p = Partition::new();
    p.append_batch(kafka_batch(2, 1, None)).unwrap();
    let big = kafka_batch(5000, 1, None);
    assert!(big.size() >= SHARE_MIN);
    let stored = big.bytes().clone();
    p.append_batch(big).unwrap();
    p.append_timed(None, b"x", 3);
    let mut out = SegmentedBuf::new();
    let n = p.fetch(0, usize::MAX, &mut out).unwrap();
    // [the small batch and the big one's head], [the big one's rest], [the encoded record].
    let pieces: Vec<Bytes> = out.into_inner().into();
    assert_eq!(pieces.len(), 3);
    assert_eq!(
        pieces[1].as_ptr(),
        stored[16..].as_ptr(),
        "shared, not copied"
    );
    let all: Bytes = pieces.concat().into();
    assert_eq!(all.len(), n);
    let counts: Vec<u32> = Batch::parse_all(all)
        .unwrap()
        .iter()
        .map(Batch::count)
        .collect();
    assert_eq!(counts, [2, 5000, 1]);
}
