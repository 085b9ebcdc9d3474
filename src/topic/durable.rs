//! Topics on disk: a registry opened from a data directory, partitions created as directories,
//! and the housekeeping that applies retention and flushes.
//!
//! - The data directory holds one `<topic>-<partition>` directory per partition (Kafka's layout,
//!   `crate::storage`), and the broker-wide `recovery-point-offset-checkpoint`: per partition, the
//!   end offset of its last fsync, below which recovery trusts the log.
//! - `topics.json` ([`TopicsFile`]) lists every topic with its id, partition count and config
//!   overrides, and the producer ids reserved (see "Broker state" in `crate::storage`). A topic
//!   is written there before any client sees it, and removed before its directories go.
//! - [`Topics::open`] reads the topics file and opens and recovers each partition of each topic
//!   from its recovery point, logging what recovery did; a partition directory of no listed topic
//!   is logged and left alone. A data directory without a topics file (written before it existed)
//!   takes its topics from the directory names (partitions `0..n` of each), with new ids, and
//!   writes the file.
//! - [`Topics::housekeeping`] applies each topic's retention and the time-based flush policy;
//!   [`Topics::checkpoint`] fsyncs every partition and writes the recovery points, so that the
//!   next start checks only what was written after it.

use super::{new_id, Overrides, Topic, TopicMap, Topics};
use crate::error::Error;
use crate::loom::{lock, Arc, ArcSwap, Mutex, StdArc};
use crate::partition::{Appends, DiskOptions, Partition};
use crate::storage::{
    Checkpoint, CheckpointEntry, LogConfig, TopicEntry, TopicsFile, TopicsState, TOPICS_FILE,
};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::PathBuf;

/// The broker-wide checkpoint of recovery points (Kafka's file name).
const RECOVERY_POINTS: &str = "recovery-point-offset-checkpoint";

/// Where a registry keeps its topics on disk, and how (a broker's `--data-dir` and flags).
#[derive(Debug)]
pub struct Storage {
    /// The data directory.
    pub dir: PathBuf,
    /// The log config of topics created without their own (Kafka's broker-wide `log.*`).
    pub defaults: LogConfig,
    /// The flush policy and in-memory tail of every partition.
    pub disk: DiskOptions,
    /// The recovery points read at open, by (topic, partition).
    recovery: Mutex<HashMap<(String, u32), u64>>,
    /// `topics.json`.
    file: TopicsFile,
    /// What `topics.json` holds; changed only through `file.update` under this lock.
    state: Mutex<TopicsState>,
    /// The reserved producer ids not yet handed out.
    producer_ids: Mutex<Range<i64>>,
}

impl Storage {
    /// Storage in `dir` with these defaults.
    pub fn new(dir: impl Into<PathBuf>, defaults: LogConfig, disk: DiskOptions) -> Self {
        let dir = dir.into();
        Storage {
            file: TopicsFile::new(&dir),
            dir,
            defaults,
            disk,
            recovery: Mutex::new(HashMap::new()),
            state: Mutex::new(TopicsState::default()),
            producer_ids: Mutex::new(0..0),
        }
    }

    /// Stores topic `name` (new, or with new `overrides`) in the topics file.
    pub(super) fn record(
        &self,
        name: &str,
        id: [u8; 16],
        partitions: u32,
        overrides: &Overrides,
    ) -> Result<(), Error> {
        let entry = TopicEntry {
            id,
            partitions,
            configs: overrides.clone(),
        };
        self.file
            .update(&mut lock(&self.state), |s| {
                s.topics.insert(name.to_string(), entry);
                Ok(())
            })
            .map_err(|e| Error::Storage(format!("{TOPICS_FILE}: {e}")))
    }

    /// Removes topic `name` from the topics file.
    pub(super) fn forget(&self, name: &str) -> Result<(), Error> {
        self.file
            .update(&mut lock(&self.state), |s| {
                s.topics.remove(name);
                Ok(())
            })
            .map_err(|e| Error::Storage(format!("{TOPICS_FILE}: {e}")))
    }

    /// A producer id never handed out before, by this run or an earlier one on the same data
    /// directory: from the block reserved in the topics file, reserving the next block (durably,
    /// before any of its ids is used) when this one is used up. InitProducerId is rare, so a
    /// mutex serves.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if a new block could not be reserved.
    pub fn next_producer_id(&self) -> Result<i64, Error> {
        let mut ids = lock(&self.producer_ids);
        if ids.is_empty() {
            *ids = self
                .file
                .reserve_producer_ids(&mut lock(&self.state))
                .map_err(|e| Error::Storage(format!("{TOPICS_FILE}: {e}")))?;
        }
        let id = ids.start;
        ids.start += 1;
        Ok(id)
    }

    fn partition_dir(&self, topic: &str, partition: u32) -> PathBuf {
        self.dir.join(format!("{topic}-{partition}"))
    }

    /// Opens (creating) the partitions `0..partitions` of `name` and builds the topic.
    pub(super) fn create(
        &self,
        name: &str,
        id: [u8; 16],
        partitions: u32,
        config: LogConfig,
        overrides: Overrides,
        appends: &StdArc<Appends>,
    ) -> Result<Topic, Error> {
        let recovery = lock(&self.recovery);
        let parts = (0..partitions)
            .map(|p| {
                let point = recovery.get(&(name.to_string(), p)).copied().unwrap_or(0);
                let (partition, report) = Partition::open(
                    &self.partition_dir(name, p),
                    config,
                    point,
                    self.disk,
                    appends.clone(),
                )
                .map_err(|e| Error::Storage(format!("opening {name}-{p}: {e}")))?;
                if report.truncated_bytes > 0
                    || !report.deleted_segments.is_empty()
                    || !report.rebuilt_indexes.is_empty()
                    || report.lost_flushed_data
                {
                    tracing::warn!(topic = name, partition = p, "recovered: {report:?}");
                } else {
                    tracing::debug!(topic = name, partition = p, "opened: {report:?}");
                }
                Ok(partition)
            })
            .collect::<Result<Box<[Partition]>, Error>>()?;
        Ok(Topic::from_parts(name, id, parts, config, overrides))
    }

    /// Deletes a deleted topic's partition directories (their files stay readable to holders of
    /// the topic until dropped: Linux keeps unlinked files open).
    pub(super) fn remove(&self, topic: &Topic) {
        // A topic created later under this name starts empty: forget the old recovery points.
        lock(&self.recovery).retain(|(name, _), _| name != topic.name());
        for p in 0..topic.partition_count() {
            let dir = self.partition_dir(topic.name(), p);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::error!("deleting {}: {e}", dir.display());
            }
        }
    }
}

/// `<topic>-<partition>` split at its last `-`, if the partition is a number.
fn parse_partition_dir(name: &str) -> Option<(&str, u32)> {
    let (topic, p) = name.rsplit_once('-')?;
    if topic.is_empty() || p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((topic, p.parse().ok()?))
}

impl Topics {
    /// The registry of the topics stored in `storage.dir` (created if absent): each
    /// `<topic>-<partition>` directory is opened and recovered (see the module docs). Topics
    /// created later get directories there too.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the directory cannot be read or created, a topic's partitions are
    /// not `0..n`, or a partition cannot be opened.
    pub fn open(default_partitions: u32, storage: Storage) -> Result<Topics, Error> {
        let io = |what: &str, e: &dyn std::fmt::Display| {
            Error::Storage(format!("{what} {}: {e}", storage.dir.display()))
        };
        std::fs::create_dir_all(&storage.dir).map_err(|e| io("creating", &e))?;
        let points = Checkpoint::new(storage.dir.join(RECOVERY_POINTS))
            .read()
            .unwrap_or_else(|e| {
                tracing::warn!("{RECOVERY_POINTS}: {e}; every partition is checked from 0");
                Vec::new()
            });
        *lock(&storage.recovery) = points
            .into_iter()
            .filter_map(|e| Some(((e.topic, u32::try_from(e.partition).ok()?), e.offset)))
            .collect();
        let mut found: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for entry in std::fs::read_dir(&storage.dir).map_err(|e| io("reading", &e))? {
            let entry = entry.map_err(|e| io("reading", &e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match parse_partition_dir(&name) {
                Some((topic, p)) if entry.path().is_dir() => {
                    found.entry(topic.to_string()).or_default().push(p)
                }
                _ if name == RECOVERY_POINTS
                    || name == TOPICS_FILE
                    || name == crate::storage::OFFSETS_DIR
                    || name.ends_with(".tmp") => {}
                _ => tracing::warn!(
                    "{}: not a partition directory, ignored",
                    entry.path().display()
                ),
            }
        }
        let stored = storage
            .file
            .load()
            .map_err(|e| Error::Storage(e.to_string()))?;
        let legacy = stored.is_none();
        let mut state = stored.unwrap_or_default();
        if legacy {
            // A data directory from before the topics file: the topics are its directories.
            for (name, mut partitions) in found {
                partitions.sort_unstable();
                let n = partitions.len() as u32;
                if partitions.iter().copied().ne(0..n) {
                    return Err(Error::Storage(format!(
                        "topic {name:?} has partition directories {partitions:?}, not 0..{n}"
                    )));
                }
                let entry = TopicEntry {
                    id: new_id(),
                    partitions: n,
                    configs: Overrides::new(),
                };
                state.topics.insert(name, entry);
            }
        } else {
            for (name, partitions) in &found {
                let listed = state.topics.get(name).map_or(0, |t| t.partitions);
                for p in partitions.iter().filter(|&&p| p >= listed) {
                    tracing::warn!(
                        "{}: a partition of no topic in {TOPICS_FILE}, ignored",
                        storage.partition_dir(name, *p).display()
                    );
                }
            }
        }
        let topics = Topics::new(default_partitions);
        let mut map = TopicMap::default();
        for (name, entry) in &state.topics {
            let config = entry
                .log_config(&storage.defaults)
                .map_err(|e| Error::Storage(format!("{TOPICS_FILE}: topic {name:?}: {e}")))?;
            let topic = storage.create(
                name,
                entry.id,
                entry.partitions,
                config,
                entry.configs.clone(),
                &topics.appends,
            )?;
            map.insert(name.as_str().into(), Arc::new(topic));
        }
        *lock(&storage.producer_ids) = storage
            .file
            .reserve_producer_ids(&mut state)
            .map_err(|e| Error::Storage(format!("{TOPICS_FILE}: {e}")))?;
        *lock(&storage.state) = state;
        let mut topics = topics;
        let storage = StdArc::new(storage);
        topics.map = ArcSwap::from_pointee(map);
        topics.storage = Some(storage);
        Ok(topics)
    }

    /// The storage, for a registry opened from a data directory.
    pub fn storage(&self) -> Option<&Storage> {
        self.storage.as_deref()
    }

    /// Applies every topic's retention (on disk: whole segments; in memory: whole batches) and
    /// the time-based flush policy, at `now_ms` (the wall clock, ms since the Unix epoch). Errors
    /// are logged: housekeeping goes on with the other partitions.
    pub fn housekeeping(&self, now_ms: i64) {
        for topic in self.list() {
            let config = topic.config();
            for (p, partition) in topic.partitions().iter().enumerate() {
                partition.apply_retention(now_ms, &config);
                if let Err(e) = partition.flush_if_due(now_ms) {
                    tracing::error!(topic = topic.name(), partition = p, "flush: {e}");
                }
            }
        }
    }

    /// Fsyncs every partition and records the recovery points, so that the next start checks
    /// only what is written after this. A no-op without storage.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if an fsync or the checkpoint write failed.
    pub fn checkpoint(&self) -> Result<(), Error> {
        let Some(storage) = &self.storage else {
            return Ok(());
        };
        let mut entries = Vec::new();
        for topic in self.list() {
            for (p, partition) in topic.partitions().iter().enumerate() {
                let point = partition
                    .flush()
                    .map_err(|e| Error::Storage(format!("flushing {}-{p}: {e}", topic.name())))?;
                if let Some(offset) = point {
                    entries.push(CheckpointEntry {
                        topic: topic.name().to_string(),
                        partition: p as i32,
                        offset,
                    });
                }
            }
        }
        Checkpoint::new(storage.dir.join(RECOVERY_POINTS))
            .write(&entries)
            .map_err(|e| Error::Storage(format!("{RECOVERY_POINTS}: {e}")))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::partition::Key;
    use std::path::Path;

    fn partition_dir(dir: &Path, topic: &str, p: u32) -> PathBuf {
        dir.join(format!("{topic}-{p}"))
    }

    fn storage(dir: &Path) -> Storage {
        Storage::new(dir, LogConfig::default(), DiskOptions::default())
    }

    #[test]
    fn partition_directory_names() {
        assert_eq!(parse_partition_dir("t-0"), Some(("t", 0)));
        assert_eq!(parse_partition_dir("my-topic-12"), Some(("my-topic", 12)));
        for bad in [
            "t",
            "t-",
            "-1",
            "t-x",
            "t-1a",
            "recovery-point-offset-checkpoint",
        ] {
            assert_eq!(parse_partition_dir(bad), None, "{bad}");
        }
    }

    #[test]
    fn topics_come_back_from_their_directories() {
        let dir = tempfile::tempdir().unwrap();
        {
            let topics = Topics::open(3, storage(dir.path())).unwrap();
            let t = topics.get_or_create("orders-eu").unwrap();
            assert_eq!(t.partition_count(), 3);
            topics.create("two", 2).unwrap();
            for i in 0..30u32 {
                t.append(Some(Key::str(&i.to_string())), b"1");
            }
            topics.create("gone", 1).unwrap();
            assert!(topics.delete("gone").is_some());
            topics.checkpoint().unwrap();
        }
        std::fs::write(dir.path().join("stray-file"), b"?").unwrap();
        let topics = Topics::open(5, storage(dir.path())).unwrap();
        let names: Vec<String> = topics.list().iter().map(|t| t.name().to_string()).collect();
        assert_eq!(names, ["orders-eu", "two"]);
        let t = topics.get("orders-eu").unwrap();
        assert_eq!((t.partition_count(), t.record_count()), (3, 30));
        assert_eq!(topics.get("two").unwrap().partition_count(), 2);
    }

    #[test]
    fn ids_configs_and_producer_ids_come_back_from_the_topics_file() {
        let dir = tempfile::tempdir().unwrap();
        let overrides: Overrides = [("retention.ms".to_string(), "60000".to_string())].into();
        let (id, first_pid) = {
            let topics = Topics::open(1, storage(dir.path())).unwrap();
            let t = topics.create_with("cfg", 2, overrides.clone()).unwrap();
            assert_eq!(t.config().retention_ms, 60000);
            assert!(matches!(
                topics.create_with("bad", 1, [("segment.ms".into(), "0".into())].into()),
                Err(Error::InvalidConfig(ref why)) if why.contains("at least 1")
            ));
            assert!(topics.get("bad").is_none());
            topics.create("gone", 1).unwrap();
            assert!(topics.delete("gone").is_some());
            let pid = topics.storage().unwrap().next_producer_id().unwrap();
            (t.id(), pid)
        };
        let topics = Topics::open(1, storage(dir.path())).unwrap();
        let t = topics.get("cfg").unwrap();
        assert_eq!((t.id(), t.partition_count()), (id, 2));
        assert_eq!(t.overrides(), overrides);
        assert_eq!(t.config().retention_ms, 60000);
        assert!(topics.get("gone").is_none());
        let pid = topics.storage().unwrap().next_producer_id().unwrap();
        assert!(pid > first_pid, "producer id {pid} after {first_pid}");
        let altered: Overrides = [("retention.bytes".to_string(), "4096".to_string())].into();
        topics.alter_configs("cfg", altered.clone()).unwrap();
        drop(topics);
        let topics = Topics::open(1, storage(dir.path())).unwrap();
        let t = topics.get("cfg").unwrap();
        assert_eq!(t.overrides(), altered);
        assert_eq!(
            (t.config().retention_bytes, t.config().retention_ms),
            (4096, LogConfig::default().retention_ms)
        );
    }

    #[test]
    fn a_gap_in_a_topics_partitions_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(partition_dir(dir.path(), "t", 0)).unwrap();
        std::fs::create_dir_all(partition_dir(dir.path(), "t", 2)).unwrap();
        let err = Topics::open(1, storage(dir.path())).unwrap_err();
        assert!(
            matches!(err, Error::Storage(ref why) if why.contains("not 0..2")),
            "{err}"
        );
    }
}
