//! The engine's facade: topics, the group coordinator and Maelstrom's per-key committed offsets.
//!
//! Maelstrom's `kafka` workload has no groups: a client commits "processed up to and including
//! offset" per key, and the broker keeps the maximum ever committed for each key in a `DashMap`
//! ([`Broker::commit_key`]). Those per-key offsets are independent of the groups' per-partition
//! offsets ([`crate::group`]).
//!
//! With a data directory ([`Broker::open`]), the groups' committed offsets and metadata are
//! kept in the offsets journal: see `broker/durable.rs`.

mod durable;

use crate::clock::Millis;
use crate::error::Error;
use crate::group::{Coordinator, GroupConfig, GroupDescription};
use crate::loom::{Arc, AtomicU64, DashMap, MapExt, Ordering};
use crate::partition::{Key, RecordRef};
use crate::topic::{Storage, Topic, Topics};

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Partitions of a topic created on first use.
    pub default_partitions: u32,
    /// The topic that Maelstrom's kafka workload (and requests that name no topic) use.
    pub default_topic: String,
    /// Defaults of every group and member.
    pub groups: GroupConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_partitions: crate::topic::DEFAULT_PARTITIONS,
            default_topic: "default".into(),
            groups: GroupConfig::default(),
        }
    }
}

/// One broker: what a single kgroups node serves.
pub struct Broker {
    topics: Topics,
    groups: Coordinator,
    config: Config,
    /// The default topic, resolved once.
    default: Arc<Topic>,
    /// Maelstrom's per-key committed offsets: the maximum committed per key.
    keys: DashMap<Box<str>, u64>,
    /// The offsets journal, with a data directory.
    offsets: Option<crate::storage::OffsetsJournal>,
    /// The next producer id that `init_producer_id` hands out in memory (a durable broker takes
    /// them from the blocks reserved in its topics file instead).
    producer_ids: AtomicU64,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("topics", &self.topics)
            .field("groups", &self.groups)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// An in-memory broker with only the (empty) default topic.
    pub fn new(config: Config) -> Self {
        let topics = Topics::new(config.default_partitions);
        Self::with_topics(config, topics, None).expect("an in-memory topic is always created")
    }

    /// A broker whose topics live in `storage` (a data directory), recovered from it: the topics
    /// found there and their records, the groups' committed offsets, and the default topic
    /// created if absent.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if the data directory cannot be opened (see [`Topics::open`]) or its
    /// offsets journal is damaged beyond a torn tail.
    pub fn open(config: Config, storage: Storage) -> Result<Self, Error> {
        let journal = durable::open_journal(&storage)?;
        let topics = Topics::open(config.default_partitions, storage)?;
        let broker = Self::with_topics(config, topics, Some(journal))?;
        broker.load_offsets();
        Ok(broker)
    }

    fn with_topics(
        config: Config,
        topics: Topics,
        offsets: Option<crate::storage::OffsetsJournal>,
    ) -> Result<Self, Error> {
        let default = topics.get_or_create(&config.default_topic)?;
        Ok(Broker {
            topics,
            groups: Coordinator::new(config.groups.clone()),
            config,
            default,
            keys: DashMap::with_hasher(ahash::RandomState::new()),
            offsets,
            producer_ids: AtomicU64::new(0),
        })
    }

    /// A new idempotent producer's (producer id, epoch): Kafka's InitProducerId without a
    /// transactional id. Ids are unique for the broker's life (and, with a data directory,
    /// across restarts: see [`Storage::next_producer_id`]), and the epoch is 0.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if a durable broker could not reserve new ids.
    pub fn init_producer_id(&self) -> Result<(i64, i16), Error> {
        if let Some(storage) = self.topics.storage() {
            return Ok((storage.next_producer_id()?, 0));
        }
        // Relaxed: only the RMW's atomicity matters (each id is handed out once).
        let id = self.producer_ids.fetch_add(1, Ordering::Relaxed);
        Ok(((id & i64::MAX as u64) as i64, 0))
    }

    /// Background work of a durable broker at `now_ms` (wall clock): retention, roll and the
    /// time-based flush policy (see [`Topics::housekeeping`]).
    pub fn housekeeping(&self, now_ms: i64) {
        self.topics.housekeeping(now_ms);
        if self
            .topics
            .storage()
            .is_some_and(|s| s.disk.flush.ms.is_some())
        {
            if let Err(e) = self.flush_offsets() {
                tracing::error!("flush: {e}");
            }
        }
    }

    /// Fsyncs everything written and records the recovery points (see [`Topics::checkpoint`]).
    /// A no-op in memory.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if an fsync or a write failed.
    pub fn checkpoint(&self) -> Result<(), Error> {
        self.topics.checkpoint()?;
        self.flush_offsets()
    }

    /// The topics.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The consumer-group coordinator.
    pub fn groups(&self) -> &Coordinator {
        &self.groups
    }

    /// The settings it was built with (fixed: the default topic is resolved once, at construction).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The default topic.
    pub fn default_topic(&self) -> &Arc<Topic> {
        &self.default
    }

    /// The topic named `name` (the default topic when `None`), created on first use.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if a new topic could not be created on disk.
    pub fn topic(&self, name: Option<&str>) -> Result<Arc<Topic>, Error> {
        match self.other_than_default(name) {
            None => Ok(Arc::clone(&self.default)),
            Some(n) => self.topics.get_or_create(n),
        }
    }

    /// `name`, unless it names the default topic (`None` or the default topic's name).
    pub fn other_than_default<'a>(&self, name: Option<&'a str>) -> Option<&'a str> {
        name.filter(|n| *n != &*self.config.default_topic)
    }

    /// Appends to `topic` (default topic when `None`, created on first use); returns (partition,
    /// offset).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if a new topic could not be created on disk.
    pub fn send(
        &self,
        topic: Option<&str>,
        key: Option<Key<'_>>,
        value: &[u8],
    ) -> Result<(u32, u64), Error> {
        match topic {
            None => Ok(self.default.append(key, value)),
            Some(name) => self.topics.with_or_create(name, |t| t.append(key, value)),
        }
    }

    /// Maelstrom `poll` for one key of the default topic: that key's records at offset ≥ `from`, in
    /// offset order, up to `max`; returns how many.
    pub fn poll_key(
        &self,
        key: Key<'_>,
        from: u64,
        max: usize,
        f: impl FnMut(RecordRef<'_>),
    ) -> usize {
        let p = self.default.partition_of(Some(key));
        self.default.partitions()[p as usize].read_key(key, from, max, f)
    }

    /// Maelstrom `commit_offsets` for one key: keeps the maximum seen.
    pub fn commit_key(&self, key: &str, offset: u64) {
        if self.keys.get_with(key, |&v| v >= offset) == Some(true) {
            return;
        }
        self.keys.update(key.into(), |current| match current {
            Some(&c) if c >= offset => (None, ()),
            _ => (Some(offset), ()),
        });
    }

    /// Maelstrom `list_committed_offsets` for one key.
    pub fn committed_key(&self, key: &str) -> Option<u64> {
        self.keys.get_with(key, |&v| v)
    }

    /// A group commit naming its topic (the default topic when `None`): the topic must exist and
    /// have the partition. See [`Coordinator::commit_topic`] (an admin commit makes the group know
    /// the topic, so `describe` shows it).
    pub fn commit(
        &self,
        group: &str,
        member: Option<&str>,
        topic: Option<&str>,
        partition: u32,
        offset: u64,
    ) -> Result<(), Error> {
        let topic = match topic {
            None => Arc::clone(&self.default),
            Some(name) => self
                .topics
                .get(name)
                .ok_or_else(|| Error::UnknownTopic(name.to_string()))?,
        };
        self.groups
            .commit_topic(group, member, &topic, partition, offset)
    }

    /// [`Coordinator::describe`], after expiring dead members at `now`.
    pub fn describe(&self, group: &str, now: Millis) -> Result<GroupDescription, Error> {
        self.groups.describe(group, now)
    }
}

impl Default for Broker {
    fn default() -> Self {
        Broker::new(Config::default())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn send_uses_the_default_topic_and_poll_key_reads_its_partition() {
        let b = Broker::new(Config {
            default_partitions: 4,
            ..Config::default()
        });
        let k1 = Key::str("k1");
        let (p1, o1) = b.send(None, Some(k1), b"1").unwrap();
        let (p1b, o2) = b.send(Some("default"), Some(k1), b"2").unwrap();
        assert_eq!(p1, p1b);
        assert!(o2 > o1);
        assert_eq!(p1, crate::partitioner::partition_for(b"k1", 4));
        b.send(None, Some(Key::str("other")), b"x").unwrap();
        let mut got = Vec::new();
        let n = b.poll_key(k1, 0, 10, |r| got.push((r.offset, r.value.to_vec())));
        assert_eq!(n, 2);
        assert_eq!(got, vec![(o1, b"1".to_vec()), (o2, b"2".to_vec())]);
        let mut later = Vec::new();
        b.poll_key(k1, o1 + 1, 10, |r| later.push(r.offset));
        assert_eq!(later, vec![o2]);
        // A named topic is created on first use and does not mix with the default one.
        let (_, o) = b.send(Some("other-topic"), Some(k1), b"3").unwrap();
        assert_eq!(o, 0);
        assert_eq!(b.topics.get("other-topic").unwrap().record_count(), 1);
    }

    #[test]
    fn commit_key_keeps_the_maximum() {
        let b = Broker::default();
        assert_eq!(b.committed_key("k"), None);
        b.commit_key("k", 5);
        b.commit_key("k", 3);
        assert_eq!(b.committed_key("k"), Some(5));
        b.commit_key("k", 9);
        assert_eq!(b.committed_key("k"), Some(9));
        assert_eq!(b.committed_key("other"), None);
    }

    #[test]
    fn broker_commit_checks_the_topic_and_registers_it_for_describe() {
        let b = Broker::default();
        assert_eq!(
            b.commit("g", None, Some("nope"), 0, 1),
            Err(Error::UnknownTopic("nope".into()))
        );
        b.topics.create("t", 2).unwrap();
        assert!(matches!(
            b.commit("g", None, Some("t"), 2, 1),
            Err(Error::UnknownPartition { .. })
        ));
        b.commit("g", None, Some("t"), 1, 7).unwrap();
        let d = b.describe("g", 0).unwrap();
        let row = d.partitions.iter().find(|r| r.partition == 1).unwrap();
        assert_eq!(
            (row.topic.as_str(), row.committed, row.lag),
            ("t", Some(7), Some(0))
        );
        assert_eq!(d.partitions.len(), 2);
    }
}
