//! Topics and the registry of topics.
//!
//! A [`Topic`] has a fixed number of [`Partition`]s. A keyed record goes to Kafka's partition for
//! its key bytes ([`partition_for`]); a record without a key goes round-robin, from one atomic
//! counter per topic.
//!
//! [`Topics`] is the registry. Topics are created rarely and looked up on every request, so the
//! registry is an immutable map behind an `ArcSwap`: a lookup is one lock-free load and a hash
//! probe; a creation copies the map under a mutex (creations are serialized, lookups never wait)
//! and swaps the copy in.
//!
//! With a [`Storage`] (a broker's `--data-dir`), each partition is also a directory of segments
//! on disk (`crate::storage`), created with its topic and recovered on start: see
//! `topic/durable.rs`.
//!
//! # Orderings
//!
//! - The round-robin counter is `fetch_add(1, Relaxed)`: it only spreads records, publishes nothing,
//!   and the RMW alone makes each value handed out once.
//! - The map is published by `ArcSwap::store` and read by `ArcSwap::load`, which order the map's
//!   construction before any reader's use of it (arc-swap's own guarantee). Creators re-check the
//!   current map under the mutex, so two creations of one name cannot both insert.

mod durable;

pub use durable::Storage;

use crate::error::Error;
use crate::loom::{lock, Arc, ArcSwap, AtomicU64, Mutex, Ordering, StdArc};
use crate::partition::{Appends, Key, Partition};
use crate::partitioner::partition_for;
use crate::storage::LogConfig;
use crossbeam_utils::CachePadded;
use std::collections::{BTreeMap, HashMap};

/// A topic's config overrides: Kafka config name → value text (`retention.ms` → `"60000"`).
pub type Overrides = BTreeMap<String, String>;

/// The default partition count of a topic created on first use.
pub const DEFAULT_PARTITIONS: u32 = 8;

/// A topic: a name and a fixed number of partitions.
pub struct Topic {
    name: Box<str>,
    /// A random (version 4) UUID, fixed at creation: Kafka's topic id (KIP-516).
    id: [u8; 16],
    partitions: Box<[Partition]>,
    /// The next round-robin choice for a record without a key.
    next: CachePadded<AtomicU64>,
    /// Its log config (retention, segments), applied by housekeeping and, on disk, by storage;
    /// and the overrides it was made from (what DescribeConfigs shows as the topic's own).
    config: Mutex<(LogConfig, Overrides)>,
}

impl Topic {
    /// A topic named `name` with `partitions` empty partitions.
    ///
    /// # Panics
    ///
    /// If `partitions` is 0 ([`Topics::create`] refuses that with an error instead).
    pub fn new(name: &str, partitions: u32) -> Self {
        Self::with_appends(name, partitions, StdArc::default())
    }

    /// A topic whose partitions notify `appends` (shared by a registry's topics).
    ///
    /// # Panics
    ///
    /// If `partitions` is 0.
    pub fn with_appends(name: &str, partitions: u32, appends: StdArc<Appends>) -> Self {
        assert!(partitions > 0, "a topic has at least one partition");
        Self::from_parts(
            name,
            new_id(),
            (0..partitions)
                .map(|_| Partition::with_appends(appends.clone()))
                .collect(),
            LogConfig::default(),
            Overrides::new(),
        )
    }

    /// A topic of these partitions (at least one).
    fn from_parts(
        name: &str,
        id: [u8; 16],
        partitions: Box<[Partition]>,
        config: LogConfig,
        overrides: Overrides,
    ) -> Self {
        debug_assert!(!partitions.is_empty());
        Topic {
            name: name.into(),
            id,
            partitions,
            next: CachePadded::new(AtomicU64::new(0)),
            config: Mutex::new((config, overrides)),
        }
    }

    /// Its log config: Kafka's topic configs (`retention.ms`, `retention.bytes`, `segment.bytes`,
    /// `segment.ms`, …), the broker's defaults where not set for the topic.
    pub fn config(&self) -> LogConfig {
        lock(&self.config).0
    }

    /// The topic's own config overrides (the broker defaults apply to every other config).
    pub fn overrides(&self) -> Overrides {
        lock(&self.config).1.clone()
    }

    /// Replaces its log config (Kafka's IncrementalAlterConfigs), on disk too; `overrides` are
    /// what it was made from.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a config out of range; [`Error::Storage`] if a partition's log
    /// refused it.
    pub fn set_config(&self, config: LogConfig, overrides: Overrides) -> Result<(), Error> {
        config
            .validate()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let mut current = lock(&self.config);
        for p in self.partitions.iter() {
            if let Some(disk) = p.disk() {
                disk.set_config(config)
                    .map_err(|e| Error::Storage(e.to_string()))?;
            }
        }
        *current = (config, overrides);
        Ok(())
    }

    /// The topic's id: a version 4 UUID's 16 bytes, fixed at creation and never reused.
    pub fn id(&self) -> [u8; 16] {
        self.id
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The partition count.
    pub fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }

    /// Partition `p`.
    pub fn partition(&self, p: u32) -> Result<&Partition, Error> {
        self.partitions
            .get(p as usize)
            .ok_or_else(|| Error::UnknownPartition {
                topic: self.name.to_string(),
                partition: p,
            })
    }

    /// All partitions, indexed by partition number.
    pub fn partitions(&self) -> &[Partition] {
        &self.partitions
    }

    /// The partition a record goes to: murmur2 for a keyed record, round-robin for one without a key.
    pub fn partition_of(&self, key: Option<Key<'_>>) -> u32 {
        let n = self.partition_count();
        match key {
            Some(key) => partition_for(key.bytes, n),
            None => {
                // Relaxed: see "Orderings".
                let i = self.next.fetch_add(1, Ordering::Relaxed);
                (i % u64::from(n)) as u32
            }
        }
    }

    /// Appends to the partition chosen by [`Topic::partition_of`]; returns (partition, offset).
    pub fn append(&self, key: Option<Key<'_>>, value: &[u8]) -> (u32, u64) {
        let p = self.partition_of(key);
        (p, self.partitions[p as usize].append(key, value))
    }

    /// The sum of the partitions' log end offsets: how many records the topic holds.
    pub fn record_count(&self) -> u64 {
        self.partitions.iter().map(Partition::end).sum()
    }
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name)
            .field("partitions", &self.partitions.len())
            .finish_non_exhaustive()
    }
}

/// Kafka's INVALID_CONFIG text of a storage config error (its `Display` without our prefix).
fn invalid_config_text(e: crate::storage::StorageError) -> String {
    match e {
        crate::storage::StorageError::InvalidConfig(why) => why,
        other => other.to_string(),
    }
}

/// A random (version 4) UUID's 16 bytes: a new topic's id (KIP-516).
fn new_id() -> [u8; 16] {
    let mut id: [u8; 16] = rand::random();
    // RFC 4122 version 4 (random) and variant bits.
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}

type TopicMap = HashMap<Box<str>, Arc<Topic>, ahash::RandomState>;

/// The registry of topics.
pub struct Topics {
    default_partitions: u32,
    /// The event that every partition of every topic here notifies when it has waiters.
    appends: StdArc<Appends>,
    map: ArcSwap<TopicMap>,
    /// Serializes creations; lookups never take it.
    create: Mutex<()>,
    /// Where topics live on disk, for a broker with a data directory.
    storage: Option<StdArc<Storage>>,
}

impl Topics {
    /// An empty registry whose auto-created topics get `default_partitions` partitions (0 is taken
    /// as 1).
    pub fn new(default_partitions: u32) -> Self {
        Topics {
            default_partitions: default_partitions.max(1),
            appends: StdArc::default(),
            map: ArcSwap::from_pointee(TopicMap::default()),
            create: Mutex::new(()),
            storage: None,
        }
    }

    /// The partition count of topics created on first use.
    pub fn default_partitions(&self) -> u32 {
        self.default_partitions
    }

    /// The event that fetchers waiting for appends to any of these topics listen on.
    pub fn appends(&self) -> &Appends {
        &self.appends
    }

    /// The topic, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.map.load().get(name).cloned()
    }

    /// Calls `f` with the topic, if it exists, without touching its reference count (the hot path).
    pub fn with<R>(&self, name: &str, f: impl FnOnce(&Arc<Topic>) -> R) -> Option<R> {
        self.map.load().get(name).map(f)
    }

    /// Calls `f` with the topic, created with the default partition count on first use, without
    /// touching its reference count when it exists (the hot path).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the new topic's partitions could not be created on disk.
    pub fn with_or_create<R>(
        &self,
        name: &str,
        f: impl FnOnce(&Arc<Topic>) -> R,
    ) -> Result<R, Error> {
        if let Some(topic) = self.map.load().get(name) {
            return Ok(f(topic));
        }
        Ok(f(&self.get_or_create(name)?))
    }

    /// The topic, created with the default partition count on first use.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the new topic's partitions could not be created on disk.
    pub fn get_or_create(&self, name: &str) -> Result<Arc<Topic>, Error> {
        if let Some(topic) = self.get(name) {
            return Ok(topic);
        }
        self.insert(name, self.default_partitions, false, Overrides::new())
    }

    /// Creates a topic explicitly. Creating an existing topic with the same count is a no-op; with a
    /// different count it is [`Error::TopicExists`]. Zero partitions is [`Error::Invalid`].
    pub fn create(&self, name: &str, partitions: u32) -> Result<Arc<Topic>, Error> {
        if partitions == 0 {
            return Err(Error::Invalid(format!(
                "topic {name:?} needs at least one partition"
            )));
        }
        self.insert(name, partitions, true, Overrides::new())
    }

    /// [`Topics::create`] with config overrides of the topic's own over the defaults (Kafka's
    /// CreateTopics with configs); an existing topic keeps its config.
    ///
    /// # Errors
    ///
    /// As [`Topics::create`]; [`Error::InvalidConfig`] with Kafka's text for an override that
    /// [`LogConfig::with_overrides`] refuses; [`Error::Storage`] if the partitions could not be
    /// created on disk.
    pub fn create_with(
        &self,
        name: &str,
        partitions: u32,
        overrides: Overrides,
    ) -> Result<Arc<Topic>, Error> {
        if partitions == 0 {
            return Err(Error::Invalid(format!(
                "topic {name:?} needs at least one partition"
            )));
        }
        self.config_for(&overrides)?;
        self.insert(name, partitions, true, overrides)
    }

    /// The log config a topic with `overrides` gets.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] with Kafka's text (see [`LogConfig::with_overrides`]).
    pub fn config_for(&self, overrides: &Overrides) -> Result<LogConfig, Error> {
        self.default_config()
            .with_overrides(overrides)
            .map_err(|e| Error::InvalidConfig(invalid_config_text(e)))
    }

    /// Replaces the config overrides of the topic `name` (Kafka's IncrementalAlterConfigs after
    /// its SET and DELETE are applied): checked, stored in the topics file first with a data
    /// directory, then applied to every partition.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTopic`]; [`Error::InvalidConfig`]; [`Error::Storage`] if the topics file
    /// or a partition log refused it.
    pub fn alter_configs(&self, name: &str, overrides: Overrides) -> Result<(), Error> {
        let _serial = lock(&self.create);
        let topic = self
            .get(name)
            .ok_or_else(|| Error::UnknownTopic(name.to_string()))?;
        let config = self.config_for(&overrides)?;
        if let Some(storage) = &self.storage {
            storage.record(name, topic.id(), topic.partition_count(), &overrides)?;
        }
        topic.set_config(config, overrides)
    }

    /// The log config of a topic created without overrides: the storage's defaults (the
    /// broker's `--log-*` flags); in memory, Kafka's defaults except `retention.ms` -1: an
    /// in-memory broker deletes nothing unless a topic's own config says so.
    pub fn default_config(&self) -> LogConfig {
        self.storage.as_ref().map_or_else(
            || LogConfig {
                retention_ms: -1,
                ..LogConfig::default()
            },
            |s| s.defaults,
        )
    }

    /// Inserts `name` unless present. With `exact`, an existing topic must have `partitions`.
    #[cold]
    fn insert(
        &self,
        name: &str,
        partitions: u32,
        exact: bool,
        overrides: Overrides,
    ) -> Result<Arc<Topic>, Error> {
        let _serial = lock(&self.create);
        let current = self.map.load_full();
        if let Some(topic) = current.get(name) {
            if exact && topic.partition_count() != partitions {
                return Err(Error::TopicExists {
                    topic: name.to_string(),
                    partitions: topic.partition_count(),
                });
            }
            return Ok(topic.clone());
        }
        let config = self.config_for(&overrides)?;
        let id = new_id();
        let topic = Arc::new(match &self.storage {
            None => Topic::from_parts(
                name,
                id,
                (0..partitions)
                    .map(|_| Partition::with_appends(self.appends.clone()))
                    .collect(),
                config,
                overrides,
            ),
            Some(storage) => {
                // The topics file first: a topic is durable before any client sees it.
                let topic = storage.create(
                    name,
                    id,
                    partitions,
                    config,
                    overrides.clone(),
                    &self.appends,
                )?;
                if let Err(e) = storage.record(name, id, partitions, &overrides) {
                    storage.remove(&topic);
                    return Err(e);
                }
                topic
            }
        });
        let mut next = TopicMap::clone(&current);
        next.insert(name.into(), topic.clone());
        self.map.store(Arc::new(next));
        Ok(topic)
    }

    /// Deletes the topic `name`; returns it, or `None` if there was none. Holders of the topic's
    /// `Arc` go on using it; a later creation of the same name makes a new, empty topic with a new
    /// id.
    pub fn delete(&self, name: &str) -> Option<Arc<Topic>> {
        let _serial = lock(&self.create);
        let current = self.map.load_full();
        let topic = current.get(name)?.clone();
        if let Some(storage) = &self.storage {
            if let Err(e) = storage.forget(name) {
                tracing::error!("deleting topic {name:?}: {e}");
                return None;
            }
        }
        let mut next = TopicMap::clone(&current);
        next.remove(name);
        self.map.store(Arc::new(next));
        if let Some(storage) = &self.storage {
            storage.remove(&topic);
        }
        Some(topic)
    }

    /// All topics, sorted by name.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<Arc<Topic>> = self.map.load().values().cloned().collect();
        topics.sort_by(|a, b| a.name().cmp(b.name()));
        topics
    }
}

impl Default for Topics {
    fn default() -> Self {
        Topics::new(DEFAULT_PARTITIONS)
    }
}

impl std::fmt::Debug for Topics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topics")
            .field("default_partitions", &self.default_partitions)
            .field("topics", &self.map.load().len())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn keyed_records_follow_kafkas_partitioner() {
        let t = Topic::new("t", 10);
        let key = Key::str("foobar");
        assert_eq!(t.partition_of(Some(key)), 6);
        let (p, offset) = t.append(Some(key), b"1");
        assert_eq!((p, offset), (6, 0));
        assert_eq!(t.append(Some(key), b"2"), (6, 1));
        assert_eq!(t.partition(6).unwrap().end(), 2);
        assert_eq!(t.record_count(), 2);
        // A JSON key partitions by its text, like a string key with the same bytes.
        let json = Key {
            kind: crate::partition::KeyKind::Json,
            bytes: b"21",
        };
        assert_eq!(
            t.partition_of(Some(json)),
            crate::partitioner::partition_for(b"21", 10)
        );
    }

    #[test]
    fn keyless_records_go_round_robin() {
        let t = Topic::new("t", 3);
        let chosen: Vec<u32> = (0..7).map(|_| t.append(None, b"x").0).collect();
        assert_eq!(chosen, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(t.partition(0).unwrap().end(), 3);
        assert_eq!(
            t.partition(3).unwrap_err(),
            Error::UnknownPartition {
                topic: "t".into(),
                partition: 3
            }
        );
    }

    #[test]
    fn registry_creates_on_first_use_and_checks_counts() {
        let topics = Topics::new(4);
        assert!(topics.get("a").is_none());
        assert_eq!(topics.with("a", |t| t.partition_count()), None);
        let a = topics.get_or_create("a").unwrap();
        assert_eq!(a.partition_count(), 4);
        assert!(Arc::ptr_eq(&a, &topics.get_or_create("a").unwrap()));
        assert_eq!(topics.with_or_create("b", |t| t.partition_count()), Ok(4));
        assert_eq!(topics.create("c", 2).unwrap().partition_count(), 2);
        assert!(Arc::ptr_eq(
            &topics.create("c", 2).unwrap(),
            &topics.get("c").unwrap()
        ));
        assert_eq!(
            topics.create("c", 3).unwrap_err(),
            Error::TopicExists {
                topic: "c".into(),
                partitions: 2
            }
        );
        assert!(matches!(topics.create("d", 0), Err(Error::Invalid(_))));
        assert!(topics.get("d").is_none());
        // Creating an auto-created topic with its count is a no-op; data survives.
        a.append(None, b"kept");
        assert_eq!(topics.create("a", 4).unwrap().record_count(), 1);
        let names: Vec<String> = topics.list().iter().map(|t| t.name().to_string()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        // Deleting forgets the topic; re-creating it makes a new one with a new id.
        let old_id = a.id();
        assert_eq!(topics.delete("a").map(|t| t.id()), Some(old_id));
        assert!(topics.get("a").is_none() && topics.delete("a").is_none());
        let again = topics.create("a", 2).unwrap();
        assert_eq!((again.record_count(), again.partition_count()), (0, 2));
        assert_ne!(again.id(), old_id);
        assert_eq!(again.id()[6] >> 4, 4, "a version 4 UUID");
    }

    #[test]
    fn concurrent_creation_yields_one_topic() {
        let topics = Topics::new(8);
        let got: Vec<Arc<Topic>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| topics.get_or_create("x").unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(got.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])));
        assert_eq!(topics.list().len(), 1);
    }
}
