//! The offsets journal: round trips, torn and damaged tails, compaction, crashes between the
//! steps of a compaction, damaged snapshots, concurrent appenders.

use crate::storage::offsets::Step;
use crate::storage::{
    CommittedOffset, GroupMetadata, GroupType, OffsetRecord, OffsetsConfig, OffsetsJournal,
    OffsetsState, Replay, StorageError,
};
use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("s-offsets-")
        .tempdir()
        .unwrap()
}

/// No compaction unless asked.
const NEVER: OffsetsConfig = OffsetsConfig {
    compact_ratio: 1,
    compact_min_bytes: u64::MAX,
};

fn open(dir: &Path, config: OffsetsConfig) -> (OffsetsJournal, Replay) {
    OffsetsJournal::open(dir, config).unwrap()
}

fn commit(group: &str, topic: &str, partition: i32, offset: i64) -> OffsetRecord {
    OffsetRecord::Commit {
        group: group.into(),
        topic: topic.into(),
        partition,
        value: CommittedOffset {
            offset,
            leader_epoch: (offset % 3) as i32 - 1,
            metadata: "m".repeat((offset % 7) as usize),
            commit_timestamp_ms: 1_700_000_000_000 + offset,
        },
    }
}

fn group(group: &str, generation: i32) -> OffsetRecord {
    OffsetRecord::Group {
        group: group.into(),
        metadata: GroupMetadata {
            group_type: if generation % 2 == 0 {
                GroupType::Classic
            } else {
                GroupType::Consumer
            },
            generation,
            protocol_type: "consumer".into(),
            protocol: (generation > 0).then(|| "range".to_string()),
        },
    }
}

/// A random record over a small key space, so that keys are overwritten and deleted often.
fn random_record(rng: &mut SmallRng) -> OffsetRecord {
    let g = format!("g{}", rng.random_range(0..3));
    let t = format!("t{}", rng.random_range(0..3));
    let p = rng.random_range(0..4);
    match rng.random_range(0..20) {
        0..=12 => commit(&g, &t, p, rng.random_range(0..1_000_000)),
        13..=15 => OffsetRecord::OffsetDelete {
            group: g,
            topic: t,
            partition: p,
        },
        16..=18 => group(&g, rng.random_range(-1..50)),
        _ => OffsetRecord::GroupDelete { group: g },
    }
}

/// `n` random frames of 1–4 records appended to `journal`; returns the model state after each
/// frame (index 0: before any) and each frame's end position.
fn append_random(
    journal: &OffsetsJournal,
    rng: &mut SmallRng,
    n: usize,
    model: &mut OffsetsState,
) -> (Vec<OffsetsState>, Vec<u64>) {
    let mut models = vec![model.clone()];
    let mut ends = vec![journal.position()];
    for _ in 0..n {
        let records: Vec<OffsetRecord> = (0..rng.random_range(1..=4))
            .map(|_| random_record(rng))
            .collect();
        ends.push(journal.append(&records).unwrap());
        for r in &records {
            model.apply(r);
        }
        models.push(model.clone());
        assert_eq!(journal.live_bytes(), model.live_bytes());
    }
    assert_eq!(&journal.state(), model);
    (models, ends)
}

fn journal_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("{generation:020}.journal"))
}

fn snapshot_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("{generation:020}.snapshot"))
}

/// The file names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn records_round_trip_across_reopens() {
    let tmp = tmp();
    let dir = tmp.path().join("__consumer_offsets");
    let mut rng = SmallRng::seed_from_u64(1);
    let mut model = OffsetsState::default();
    let (journal, replay) = open(&dir, NEVER);
    assert_eq!(replay, Replay::default());
    assert_eq!(journal.state(), OffsetsState::default());
    assert_eq!(journal.append(&[]).unwrap(), 0, "nothing appended");
    let (_, ends) = append_random(&journal, &mut rng, 50, &mut model);
    assert!(ends.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(journal.flushed(), 0);
    assert_eq!(journal.flush().unwrap(), *ends.last().unwrap());
    assert_eq!(journal.flushed(), *ends.last().unwrap());
    let journal_len = journal.journal_bytes();
    drop(journal);
    let (journal, replay) = open(&dir, NEVER);
    assert_eq!(journal.state(), model);
    assert_eq!(journal.live_bytes(), model.live_bytes());
    assert_eq!(journal.journal_bytes(), journal_len);
    assert_eq!(replay.generation, 0);
    assert_eq!(replay.truncated_bytes, 0);
    assert!(replay.journal_records >= 50);
    // Appends go on after the reopened tail.
    append_random(&journal, &mut rng, 20, &mut model);
    drop(journal);
    assert_eq!(open(&dir, NEVER).0.state(), model);
    assert_eq!(names(&dir), ["00000000000000000000.journal"]);
}

#[test]
fn latest_value_per_key_and_deletes() {
    let tmp = tmp();
    let (journal, _) = open(tmp.path(), NEVER);
    journal
        .append(&[
            commit("a", "x", 0, 5),
            commit("a", "x", 0, 9),
            commit("a", "y", 1, 3),
            commit("b", "x", 0, 4),
            group("a", 2),
            group("a", 3),
        ])
        .unwrap();
    let s = journal.state();
    assert_eq!(s.committed("a", "x", 0).unwrap().offset, 9);
    assert_eq!(s.committed("a", "y", 1).unwrap().offset, 3);
    assert_eq!(s.groups["a"].metadata.as_ref().unwrap().generation, 3);
    assert_eq!(
        s.groups["a"].metadata.as_ref().unwrap().group_type.name(),
        "consumer"
    );
    assert!(s.groups["b"].metadata.is_none());
    // DeleteTopics: every group's offsets of the topic, nothing else.
    let (_, n) = journal.delete_topic("x").unwrap();
    assert_eq!(n, 2);
    let s = journal.state();
    assert!(s.committed("a", "x", 0).is_none());
    assert!(
        !s.groups.contains_key("b"),
        "a group left with nothing is gone"
    );
    assert_eq!(s.committed("a", "y", 1).unwrap().offset, 3);
    assert_eq!(journal.delete_topic("x").unwrap().1, 0);
    // Deletes of what is not there change nothing.
    journal
        .append(&[
            OffsetRecord::OffsetDelete {
                group: "zz".into(),
                topic: "x".into(),
                partition: 0,
            },
            OffsetRecord::GroupDelete { group: "zz".into() },
        ])
        .unwrap();
    assert_eq!(journal.state(), s);
    journal
        .append(&[OffsetRecord::GroupDelete { group: "a".into() }])
        .unwrap();
    assert_eq!(journal.state(), OffsetsState::default());
    assert_eq!(journal.live_bytes(), 0);
    // A group that keeps its metadata outlives its last offset.
    journal
        .append(&[
            group("c", 1),
            commit("c", "x", 0, 1),
            OffsetRecord::OffsetDelete {
                group: "c".into(),
                topic: "x".into(),
                partition: 0,
            },
        ])
        .unwrap();
    assert!(journal.state().groups["c"].offsets.is_empty());
    drop(journal);
    let (journal, _) = open(tmp.path(), NEVER);
    assert_eq!(journal.state().groups.len(), 1);
}

#[test]
fn a_record_that_does_not_fit_is_refused_and_changes_nothing() {
    let tmp = tmp();
    let (journal, _) = open(tmp.path(), NEVER);
    let p = journal.append(&[commit("g", "t", 0, 1)]).unwrap();
    let long = commit("g", &"t".repeat(70_000), 0, 2);
    let err = journal.append(&[commit("g", "t", 0, 3), long]).unwrap_err();
    assert!(matches!(&err, StorageError::Io(e) if e.kind() == std::io::ErrorKind::InvalidInput));
    assert_eq!(journal.position(), p);
    assert_eq!(journal.state().committed("g", "t", 0).unwrap().offset, 1);
    assert!(journal.append(&[commit("g", "t", 0, 4)]).unwrap() > p);
    drop(journal);
    assert_eq!(
        open(tmp.path(), NEVER)
            .0
            .state()
            .committed("g", "t", 0)
            .unwrap()
            .offset,
        4
    );
}

/// A journal of `n` random frames; returns the models and frame ends.
fn build(dir: &Path, seed: u64, n: usize) -> (Vec<OffsetsState>, Vec<u64>) {
    let (journal, _) = open(dir, NEVER);
    let mut rng = SmallRng::seed_from_u64(seed);
    append_random(&journal, &mut rng, n, &mut OffsetsState::default())
}

/// Reopens `dir` and checks that it holds exactly the first `k` frames, then that appends go on.
fn check_prefix(dir: &Path, models: &[OffsetsState], ends: &[u64], k: usize, len_before: u64) {
    let (journal, replay) = open(dir, NEVER);
    assert_eq!(journal.state(), models[k], "the first {k} frames");
    assert_eq!(journal.journal_bytes(), ends[k]);
    assert_eq!(replay.truncated_bytes, len_before - ends[k]);
    assert_eq!(fs::metadata(journal_path(dir, 0)).unwrap().len(), ends[k]);
    let mut model = models[k].clone();
    let r = commit("after", "t", 0, 77);
    journal.append(std::slice::from_ref(&r)).unwrap();
    model.apply(&r);
    drop(journal);
    let (journal, replay) = open(dir, NEVER);
    assert_eq!(journal.state(), model);
    assert_eq!(replay.truncated_bytes, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Cut the journal at any byte: the whole frames before the cut survive, the torn one goes,
    /// and the file is truncated to them.
    #[test]
    fn a_cut_journal_keeps_its_whole_frames(seed in any::<u64>(), n in 1usize..30, cut in 0.0..=1.0f64) {
        let tmp = tmp();
        let (models, ends) = build(tmp.path(), seed, n);
        let len = *ends.last().unwrap();
        let cut = ((len as f64) * cut) as u64;
        fs::OpenOptions::new().write(true).open(journal_path(tmp.path(), 0)).unwrap()
            .set_len(cut).unwrap();
        let k = ends.iter().rposition(|&e| e <= cut).unwrap();
        check_prefix(tmp.path(), &models, &ends, k, cut);
    }

    /// Flip bytes anywhere (and maybe cut too): everything before the first damaged frame
    /// survives, nothing from it on is trusted, and nothing panics.
    #[test]
    fn damaged_frames_end_the_journal(
        seed in any::<u64>(),
        n in 1usize..30,
        flips in proptest::collection::vec((0.0..1.0f64, 1u8..=255), 1..4),
        cut in proptest::option::of(0.0..=1.0f64),
    ) {
        let tmp = tmp();
        let (models, ends) = build(tmp.path(), seed, n);
        let path = journal_path(tmp.path(), 0);
        let mut len = *ends.last().unwrap();
        let file = fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let mut first_bad = len;
        let mut flipped = std::collections::HashSet::new();
        for (at, mask) in flips {
            let at = ((len as f64) * at) as u64;
            if !flipped.insert(at) {
                continue; // a second flip could undo the first
            }
            let mut b = [0u8];
            file.read_exact_at(&mut b, at).unwrap();
            file.write_all_at(&[b[0] ^ mask], at).unwrap();
            first_bad = first_bad.min(at);
        }
        if let Some(cut) = cut {
            len = ((len as f64) * cut) as u64;
            file.set_len(len).unwrap();
            first_bad = first_bad.min(len);
        }
        drop(file);
        // The last frame that ends at or before the first damaged byte.
        let k = ends.iter().rposition(|&e| e <= first_bad).unwrap();
        check_prefix(tmp.path(), &models, &ends, k, len);
    }
}

#[test]
fn garbage_after_the_last_frame_is_cut() {
    let tails: [&[u8]; 5] = [
        &[0; 100],
        &[0, 0, 0],
        &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1],
        &[0, 0, 0, 9, 1, 2, 3, 4, 1, 0, 0, 0, 0],
        b"garbage that is not a frame at all",
    ];
    for tail in tails {
        let tmp = tmp();
        let (models, ends) = build(tmp.path(), 3, 10);
        let path = journal_path(tmp.path(), 0);
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(tail, ends[10]).unwrap();
        drop(file);
        check_prefix(tmp.path(), &models, &ends, 10, ends[10] + tail.len() as u64);
    }
}

/// A frame with a good CRC that does not decode cannot come from a crash: an error naming the
/// file, and the file is left as it is.
#[test]
fn a_well_formed_frame_that_does_not_decode_is_an_error() {
    let tmp = tmp();
    let (_, ends) = build(tmp.path(), 4, 5);
    let path = journal_path(tmp.path(), 0);
    for payload in [
        &[2u8, 0, 0, 0, 0][..],
        &[1, 0, 0, 0, 1, 42],
        &[1, 0, 0, 0, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0],
    ] {
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
        frame.extend_from_slice(payload);
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(ends[5]).unwrap();
        file.write_all_at(&frame, ends[5]).unwrap();
        drop(file);
        let err = OffsetsJournal::open(tmp.path(), NEVER).unwrap_err();
        assert!(
            matches!(&err, StorageError::Corrupt { path: p, .. } if *p == path),
            "{err}"
        );
        assert!(
            err.to_string().contains("00000000000000000000.journal"),
            "{err}"
        );
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            ends[5] + frame.len() as u64
        );
    }
}

/// A small threshold: the journal compacts often, stays bounded, and reopens to the same state.
#[test]
fn compaction_keeps_the_state_and_bounds_the_journal() {
    let tmp = tmp();
    let dir = tmp.path();
    let config = OffsetsConfig {
        compact_ratio: 4,
        compact_min_bytes: 2048,
    };
    let (journal, _) = open(dir, config);
    let mut rng = SmallRng::seed_from_u64(5);
    let mut model = OffsetsState::default();
    let mut generations = 0;
    for _ in 0..40 {
        append_random(&journal, &mut rng, 25, &mut model);
        generations = generations.max(journal.generation());
        let live = journal.live_bytes();
        // The append that crossed the line compacted: below the line after each append.
        assert!(journal.journal_bytes() < (4 * live).max(2048));
        let g = journal.generation();
        let mut want = vec![format!("{g:020}.journal")];
        if g > 0 {
            want.push(format!("{g:020}.snapshot"));
        }
        assert_eq!(names(dir), want);
    }
    assert!(generations >= 5, "{generations} compactions");
    // Compaction makes everything durable.
    journal.compact().unwrap();
    assert_eq!(journal.flushed(), journal.position());
    assert_eq!(journal.journal_bytes(), 0);
    let g = journal.generation();
    drop(journal);
    let (journal, replay) = open(dir, config);
    assert_eq!(journal.state(), model);
    assert_eq!(journal.live_bytes(), model.live_bytes());
    assert_eq!(replay.generation, g);
    assert_eq!(replay.journal_records, 0);
    let live_records: usize = model
        .groups
        .values()
        .map(|g| g.offsets.len() + usize::from(g.metadata.is_some()))
        .sum();
    assert_eq!(replay.snapshot_records, live_records as u64);
    // An empty state compacts to an empty snapshot.
    let groups: Vec<OffsetRecord> = model
        .groups
        .keys()
        .map(|g| OffsetRecord::GroupDelete { group: g.clone() })
        .collect();
    journal.append(&groups).unwrap();
    journal.compact().unwrap();
    drop(journal);
    assert_eq!(open(dir, config).0.state(), OffsetsState::default());
}

/// A crash after each step of a compaction (and a torn temporary snapshot) reopens to the state
/// before it, in the right generation, with the leftovers removed; the journal then works.
#[test]
fn a_crash_between_compaction_steps_loses_nothing() {
    for stop in [Step::Written, Step::Renamed, Step::Switched] {
        for torn_tmp in [false, true] {
            if torn_tmp && stop != Step::Written {
                continue;
            }
            let tmp = tmp();
            let dir = tmp.path();
            let mut rng = SmallRng::seed_from_u64(6);
            let mut model = OffsetsState::default();
            let (journal, _) = open(dir, NEVER);
            append_random(&journal, &mut rng, 30, &mut model);
            // One whole compaction first, so that generation 1 has a snapshot and a journal.
            journal.compact().unwrap();
            append_random(&journal, &mut rng, 30, &mut model);
            journal.compact_until(stop).unwrap();
            if stop == Step::Switched {
                // Appends after the switch go to generation 2's journal.
                append_random(&journal, &mut rng, 10, &mut model);
            }
            drop(journal);
            let (mut leftover, next) = match stop {
                Step::Written => {
                    let tmp = dir.join("00000000000000000002.snapshot.tmp");
                    assert!(tmp.exists());
                    if torn_tmp {
                        let len = fs::metadata(&tmp).unwrap().len();
                        fs::OpenOptions::new()
                            .write(true)
                            .open(&tmp)
                            .unwrap()
                            .set_len(len / 2)
                            .unwrap();
                    }
                    (vec![tmp], 1)
                }
                _ => (vec![snapshot_path(dir, 1), journal_path(dir, 1)], 2),
            };
            leftover.sort();
            let (journal, replay) = open(dir, NEVER);
            assert_eq!(journal.state(), model, "{stop:?}");
            assert_eq!(replay.generation, next, "{stop:?}");
            let mut removed = replay.removed.clone();
            removed.sort();
            assert_eq!(removed, leftover, "{stop:?}");
            assert_eq!(
                names(dir),
                [
                    format!("{next:020}.journal"),
                    format!("{next:020}.snapshot")
                ],
                "{stop:?}"
            );
            append_random(&journal, &mut rng, 5, &mut model);
            journal.compact().unwrap();
            append_random(&journal, &mut rng, 5, &mut model);
            drop(journal);
            assert_eq!(open(dir, NEVER).0.state(), model, "{stop:?}");
        }
    }
}

#[test]
fn a_damaged_snapshot_is_an_error_naming_it() {
    let tmp = tmp();
    let dir = tmp.path();
    let (journal, _) = open(dir, NEVER);
    append_random(
        &journal,
        &mut SmallRng::seed_from_u64(7),
        40,
        &mut OffsetsState::default(),
    );
    journal.compact().unwrap();
    drop(journal);
    let path = snapshot_path(dir, 1);
    let good = fs::read(&path).unwrap();
    let mut damaged = Vec::new();
    for at in [0, 4, 9, good.len() / 2, good.len() - 1] {
        let mut b = good.clone();
        b[at] ^= 0x10;
        damaged.push(b);
    }
    damaged.push(good[..good.len() - 1].to_vec());
    damaged.push(good[..good.len() - 21].to_vec());
    damaged.push(Vec::new());
    damaged.push([good.clone(), vec![0]].concat());
    damaged.push([good.clone(), good.clone()].concat());
    for bytes in damaged {
        fs::write(&path, &bytes).unwrap();
        let err = OffsetsJournal::open(dir, NEVER).unwrap_err();
        assert!(
            matches!(&err, StorageError::Corrupt { path: p, .. } if *p == path),
            "{err}"
        );
        assert!(
            err.to_string().contains("00000000000000000001.snapshot"),
            "{err}"
        );
    }
    fs::write(&path, &good).unwrap();
    assert!(OffsetsJournal::open(dir, NEVER).is_ok());
    // A journal with no snapshot of its generation cannot come from a crash.
    fs::rename(&path, dir.join("keep")).unwrap();
    let err = OffsetsJournal::open(dir, NEVER).unwrap_err();
    assert!(
        matches!(&err, StorageError::Corrupt { path: p, .. } if *p == journal_path(dir, 1)),
        "{err}"
    );
}

#[test]
fn unknown_files_are_left_and_reported() {
    let tmp = tmp();
    let dir = tmp.path();
    fs::write(dir.join("notes.txt"), "x").unwrap();
    fs::write(dir.join("00000000000000000000.other"), "x").unwrap();
    let (_, replay) = open(dir, NEVER);
    assert_eq!(replay.ignored.len(), 2);
    assert!(dir.join("notes.txt").exists());
}

/// Threads append and flush at once (with compactions): every append is applied exactly once,
/// in an order consistent with each thread's, and the reopened state is the same.
#[test]
fn concurrent_appenders() {
    let tmp = tmp();
    let dir = tmp.path();
    let config = OffsetsConfig {
        compact_ratio: 2,
        compact_min_bytes: 4096,
    };
    let (journal, _) = open(dir, config);
    std::thread::scope(|s| {
        for t in 0..4 {
            let journal = &journal;
            s.spawn(move || {
                let g = format!("group-{t}");
                let mut last = 0;
                for i in 0..300 {
                    let p = journal
                        .append(&[commit(&g, "t", i % 5, i64::from(i)), group(&g, i)])
                        .unwrap();
                    assert!(p > last);
                    last = p;
                    if i % 50 == 0 {
                        assert!(journal.flush().unwrap() >= p);
                    }
                }
            });
        }
    });
    assert!(journal.generation() > 0, "compacted while appending");
    let state = journal.state();
    for t in 0..4 {
        let g = &state.groups[&format!("group-{t}")];
        assert_eq!(g.metadata.as_ref().unwrap().generation, 299);
        for p in 0..5 {
            assert_eq!(g.offsets[&("t".to_string(), p)].offset, 295 + i64::from(p));
        }
    }
    drop(journal);
    assert_eq!(open(dir, config).0.state(), state);
}
