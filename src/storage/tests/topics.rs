//! The topics file, topic config overrides and producer id blocks.

use crate::storage::{
    describe_topic_configs, parse_uuid, uuid_string, LogConfig, StorageError, TopicEntry,
    TopicsFile, TopicsState, PRODUCER_ID_BLOCK,
};
use std::collections::BTreeMap;
use std::fs;

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("s-topics-")
        .tempdir()
        .unwrap()
}

fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn entry(id: u8, partitions: u32, pairs: &[(&str, &str)]) -> TopicEntry {
    let mut bytes = [0u8; 16];
    bytes[0] = id;
    bytes[15] = 1;
    TopicEntry {
        id: bytes,
        partitions,
        configs: configs(pairs),
    }
}

fn state() -> TopicsState {
    let mut s = TopicsState::default();
    s.topics
        .insert("orders".into(), entry(1, 8, &[("retention.ms", "60000")]));
    s.topics.insert("a.b_c-d".into(), entry(2, 1, &[]));
    s.topics
        .insert("maelstrom key/ é".into(), entry(3, 65_536, &[]));
    s
}

#[test]
fn absent_is_empty_and_a_store_reads_back() {
    let tmp = tmp();
    let file = TopicsFile::new(tmp.path());
    assert_eq!(file.path(), tmp.path().join("topics.json"));
    assert_eq!(file.load().unwrap(), None);
    let s = state();
    file.store(&s).unwrap();
    assert_eq!(file.load().unwrap(), Some(s.clone()));
    assert!(!tmp.path().join("topics.json.tmp").exists());
    // Another handle (a restart) reads the same.
    assert_eq!(TopicsFile::new(tmp.path()).load().unwrap(), Some(s));
    file.store(&TopicsState::default()).unwrap();
    assert_eq!(file.load().unwrap(), Some(TopicsState::default()));
}

#[test]
fn the_file_is_the_documented_json() {
    let tmp = tmp();
    let file = TopicsFile::new(tmp.path());
    let mut s = TopicsState {
        next_producer_id: 3000,
        ..TopicsState::default()
    };
    s.topics.insert(
        "orders".into(),
        entry(
            0xf0,
            8,
            &[("segment.bytes", "1048576"), ("retention.ms", "86400000")],
        ),
    );
    file.store(&s).unwrap();
    let text = fs::read_to_string(file.path()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "version": 1,
            "next_producer_id": 3000,
            "topics": [{
                "name": "orders",
                "id": "8AAAAAAAAAAAAAAAAAAAAQ",
                "partitions": 8,
                "configs": {"retention.ms": "86400000", "segment.bytes": "1048576"}
            }]
        })
    );
    assert!(text.ends_with("}\n"));
}

#[test]
fn uuids_print_as_kafka_prints_them() {
    // Kafka's Uuid.ZERO_UUID and Uuid.ONE_UUID (0, 1).
    assert_eq!(uuid_string(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
    let mut one = [0; 16];
    one[15] = 1;
    assert_eq!(uuid_string(&one), "AAAAAAAAAAAAAAAAAAAAAQ");
    assert_eq!(uuid_string(&[0xff; 16]), "_____________________w");
    for _ in 0..1000 {
        let id: [u8; 16] = rand::random();
        let s = uuid_string(&id);
        assert_eq!(s.len(), 22);
        assert_eq!(parse_uuid(&s), Some(id));
    }
    for bad in [
        "",
        "AAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAB", // unused low bits set
        "AAAAAAAAAAAAAAAAAAAA+A",
        "AAAAAAAAAAAAAAAAAAAA/A",
        "AAAAAAAAAAAAAAAAAAAAA=",
        "AAAAAAAAAAAAAAAAAAAAéA",
    ] {
        assert_eq!(parse_uuid(bad), None, "{bad}");
    }
}

/// Whatever is wrong with the file, load says which file, and never panics.
#[test]
fn a_corrupt_file_is_an_error_naming_it() {
    let tmp = tmp();
    let file = TopicsFile::new(tmp.path());
    let good = r#"{"version":1,"next_producer_id":0,"topics":[
        {"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":1,"configs":{}}]}"#;
    fs::write(file.path(), good).unwrap();
    assert_eq!(file.load().unwrap().unwrap().topics.len(), 1);
    let topic = |t: &str| format!(r#"{{"version":1,"next_producer_id":0,"topics":[{t}]}}"#);
    let a = r#"{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":1}"#;
    let mut cases: Vec<String> = vec![
        String::new(),
        "{".into(),
        good[..good.len() / 2].into(),
        "\u{0}\u{1}\u{2}".into(),
        "[]".into(),
        r#"{"version":2,"next_producer_id":0,"topics":[]}"#.into(),
        r#"{"next_producer_id":0,"topics":[]}"#.into(),
        r#"{"version":1,"next_producer_id":-1,"topics":[]}"#.into(),
        r#"{"version":1,"next_producer_id":"0","topics":[]}"#.into(),
        topic(&format!("{a},{a}")),
        topic(
            r#"{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":1},{"name":"b","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":1}"#,
        ),
        topic(r#"{"name":"","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":1}"#),
        topic(r#"{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAA","partitions":1}"#),
        topic(r#"{"name":"a","id":"not a uuid","partitions":1}"#),
        topic(r#"{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":0}"#),
        topic(r#"{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":-1}"#),
        topic(r#"{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":3000000000}"#),
        topic(
            r#"{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":1,"configs":{"retention.ms":"-2"}}"#,
        ),
        topic(
            r#"{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":1,"configs":{"cleanup.policy":"compact"}}"#,
        ),
        topic(
            r#"{"name":"a","id":"AAAAAAAAAAAAAAAAAAAAAQ","partitions":1,"configs":{"segment.ms":7}}"#,
        ),
    ];
    cases.push(String::from_utf8_lossy(&[0xff, 0xfe, b'{']).into_owned());
    for text in cases {
        fs::write(file.path(), &text).unwrap();
        let err = file.load().unwrap_err();
        assert!(
            matches!(&err, StorageError::Corrupt { path, .. } if path == file.path()),
            "{text}: {err}"
        );
        assert!(err.to_string().contains("topics.json"), "{err}");
        assert_eq!(err.code(), 56);
    }
    fs::write(file.path(), [0xff, 0xfe]).unwrap();
    assert!(matches!(file.load(), Err(StorageError::Corrupt { .. })));
}

#[test]
fn a_state_that_would_not_load_is_not_stored() {
    let tmp = tmp();
    let file = TopicsFile::new(tmp.path());
    file.store(&state()).unwrap();
    let before = fs::read(file.path()).unwrap();
    let mut bad = Vec::new();
    let mut s = state();
    s.topics.insert("dup".into(), entry(1, 1, &[]));
    bad.push(s);
    let mut s = state();
    s.topics.insert(
        "zero".into(),
        TopicEntry {
            id: [0; 16],
            ..entry(9, 1, &[])
        },
    );
    bad.push(s);
    let mut s = state();
    s.topics.insert("none".into(), entry(9, 0, &[]));
    bad.push(s);
    let mut s = state();
    s.topics
        .insert("cfg".into(), entry(9, 1, &[("segment.bytes", "1")]));
    bad.push(s);
    let mut s = state();
    s.topics.insert(String::new(), entry(9, 1, &[]));
    bad.push(s);
    bad.push(TopicsState {
        next_producer_id: -5,
        ..state()
    });
    for s in bad {
        let err = file.store(&s).unwrap_err();
        assert!(
            matches!(&err, StorageError::Io(e) if e.kind() == std::io::ErrorKind::InvalidInput)
        );
        assert_eq!(fs::read(file.path()).unwrap(), before);
    }
}

#[test]
fn update_changes_memory_only_with_the_file() {
    let tmp = tmp();
    let file = TopicsFile::new(tmp.path());
    let mut s = TopicsState::default();
    file.update(&mut s, |s| {
        s.topics.insert("a".into(), entry(1, 3, &[]));
        Ok(())
    })
    .unwrap();
    assert_eq!(file.load().unwrap(), Some(s.clone()));
    // The change fails: nothing moves.
    let err = file
        .update(&mut s, |s| {
            s.topics.clear();
            Err::<(), _>(StorageError::InvalidConfig("no".into()))
        })
        .unwrap_err();
    assert_eq!(err.code(), 40);
    assert_eq!(s.topics.len(), 1);
    // The store fails (an id used twice): nothing moves either.
    assert!(file
        .update(&mut s, |s| {
            s.topics.insert("b".into(), entry(1, 3, &[]));
            Ok(())
        })
        .is_err());
    assert_eq!(s.topics.len(), 1);
    assert_eq!(file.load().unwrap(), Some(s.clone()));
    // IncrementalAlterConfigs: the overrides are checked, then stored.
    let defaults = LogConfig::default();
    let config = file
        .update(&mut s, |s| {
            let t = s.topics.get_mut("a").unwrap();
            t.configs.insert("retention.bytes".into(), "1000".into());
            t.log_config(&defaults)
        })
        .unwrap();
    assert_eq!(config.retention_bytes, 1000);
    assert_eq!(file.load().unwrap(), Some(s));
}

/// Blocks never overlap, across any number of restarts; a block reserved and never used is
/// skipped, not reused.
#[test]
fn producer_id_blocks_never_repeat_across_reopen() {
    let tmp = tmp();
    let mut seen: Vec<std::ops::Range<i64>> = Vec::new();
    for run in 0..20 {
        let file = TopicsFile::new(tmp.path());
        let mut s = file.load().unwrap().unwrap_or_default();
        // Each run reserves a block at start, and some runs use several.
        for _ in 0..=(run % 3) {
            let block = file.reserve_producer_ids(&mut s).unwrap();
            assert_eq!(block.end - block.start, PRODUCER_ID_BLOCK);
            assert_eq!(s.next_producer_id, block.end);
            if let Some(last) = seen.last() {
                assert!(block.start >= last.end, "{block:?} after {last:?}");
            }
            seen.push(block);
        }
        if run % 4 == 0 {
            // Topic changes between reservations keep the reservation.
            file.update(&mut s, |s| {
                s.topics
                    .insert(format!("t{run}"), entry(run as u8 + 1, 1, &[]));
                Ok(())
            })
            .unwrap();
        }
        // A crash: the in-memory state is lost; a stale temporary file is left behind.
        fs::write(tmp.path().join("topics.json.tmp"), "{ torn").unwrap();
    }
    assert_eq!(seen.first().unwrap().start, 0);
    assert_eq!(seen.len(), (0..20).map(|r| r % 3 + 1).sum::<usize>());
    let mut s = TopicsState {
        next_producer_id: i64::MAX - 10,
        ..TopicsState::default()
    };
    let file = TopicsFile::new(tmp.path());
    assert!(file.reserve_producer_ids(&mut s).is_err());
    assert_eq!(s.next_producer_id, i64::MAX - 10);
}

#[test]
fn overrides_apply_over_the_broker_defaults() {
    let defaults = LogConfig {
        retention_ms: 1000,
        segment_bytes: 4096,
        ..LogConfig::default()
    };
    assert_eq!(defaults.with_overrides(configs(&[])).unwrap(), defaults);
    let c = defaults
        .with_overrides(configs(&[
            ("retention.ms", "-1"),
            ("retention.bytes", " 2048\n"),
            ("segment.bytes", "+1048576"),
            ("segment.ms", "60000"),
        ]))
        .unwrap();
    assert_eq!(c.retention_ms, -1);
    assert_eq!(c.retention_bytes, 2048);
    assert_eq!(c.segment_bytes, 1 << 20);
    assert_eq!(c.segment_ms, 60_000);
    assert_eq!(c.index_interval_bytes, defaults.index_interval_bytes);
    // Every negative retention.bytes is "no limit", as in Kafka.
    let c = defaults
        .with_overrides([("retention.bytes", "-12345")])
        .unwrap();
    assert_eq!(c.retention_bytes, -1);
    // Kafka's internal test override wins over segment.bytes and has no 1 MiB floor.
    let c = defaults
        .with_overrides([
            ("internal.segment.bytes", "100"),
            ("segment.bytes", "2097152"),
        ])
        .unwrap();
    assert_eq!(c.segment_bytes, 100);
}

#[test]
fn invalid_overrides_are_kafkas_invalid_config() {
    let d = LogConfig::default();
    for (pairs, message) in [
        (
            vec![("retention.ms", "1"), ("cleanup.policy", "compact")],
            "Unknown topic config name: cleanup.policy",
        ),
        (
            vec![("Retention.ms", "1")],
            "Unknown topic config name: Retention.ms",
        ),
        (
            vec![("retention.ms", "-2")],
            "Invalid value -2 for configuration retention.ms: Value must be at least -1",
        ),
        (
            vec![("retention.ms", "1h")],
            "Invalid value 1h for configuration retention.ms: Not a number of type LONG",
        ),
        (
            vec![("retention.bytes", "")],
            "Invalid value  for configuration retention.bytes: Not a number of type LONG",
        ),
        (
            vec![("retention.bytes", "99999999999999999999")],
            "Invalid value 99999999999999999999 for configuration retention.bytes: Not a number \
             of type LONG",
        ),
        (
            vec![("segment.bytes", "1048575")],
            "Invalid value 1048575 for configuration segment.bytes: Value must be at least 1048576",
        ),
        (
            vec![("segment.bytes", "3000000000")],
            "Invalid value 3000000000 for configuration segment.bytes: Not a number of type INT",
        ),
        (
            vec![("segment.bytes", "1.5")],
            "Invalid value 1.5 for configuration segment.bytes: Not a number of type INT",
        ),
        (
            vec![("segment.ms", "0")],
            "Invalid value 0 for configuration segment.ms: Value must be at least 1",
        ),
        (
            vec![("internal.segment.bytes", "60")],
            "Invalid value 60 for configuration internal.segment.bytes: Value must be at least 61",
        ),
    ] {
        match d.with_overrides(pairs.iter().copied()) {
            Err(StorageError::InvalidConfig(why)) => assert_eq!(why, message),
            other => panic!("{pairs:?}: {other:?}"),
        }
        assert_eq!(
            d.with_overrides(pairs.iter().copied()).unwrap_err().code(),
            40
        );
    }
}

#[test]
fn describe_shows_overrides_and_defaults() {
    let d = LogConfig::default();
    let rows = describe_topic_configs(
        &d,
        &configs(&[("retention.ms", " 5000"), ("internal.segment.bytes", "100")]),
    );
    let rows: Vec<(&str, &str, bool)> = rows
        .iter()
        .map(|r| (r.name, r.value.as_str(), r.overridden))
        .collect();
    assert_eq!(
        rows,
        [
            ("retention.bytes", "-1", false),
            ("retention.ms", " 5000", true),
            ("segment.bytes", "1073741824", false),
            ("segment.ms", "604800000", false),
        ]
    );
}
