//! Topics and the registry of topics. (Skeleton.)

use crate::error::Error;
use crate::partition::{Key, Partition};
use std::sync::Arc;

/// The default partition count of a topic created on first use.
pub const DEFAULT_PARTITIONS: u32 = 8;

/// A topic: a name and a fixed number of partitions.
pub struct Topic {
    name: Arc<str>,
    partitions: Box<[Partition]>,
}

impl Topic {
    /// A topic named `name` with `partitions` empty partitions.
    pub fn new(name: &str, partitions: u32) -> Self {
        Topic {
            name: name.into(),
            partitions: (0..partitions).map(|_| Partition::new()).collect(),
        }
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

    /// The partition a record goes to: murmur2 for a keyed record, round-robin for one without a key.
    pub fn partition_of(&self, _key: Option<Key<'_>>) -> u32 {
        todo!()
    }

    /// Appends to the partition chosen by [`Topic::partition_of`]; returns (partition, offset).
    pub fn append(&self, _key: Option<Key<'_>>, _value: &[u8]) -> (u32, u64) {
        todo!()
    }
}

/// The registry of topics.
pub struct Topics {}

impl Topics {
    /// An empty registry whose auto-created topics get `default_partitions` partitions.
    pub fn new(_default_partitions: u32) -> Self {
        todo!()
    }

    /// The topic, if it exists.
    pub fn get(&self, _name: &str) -> Option<Arc<Topic>> {
        todo!()
    }

    /// The topic, created with the default partition count on first use.
    pub fn get_or_create(&self, _name: &str) -> Arc<Topic> {
        todo!()
    }

    /// Creates a topic explicitly. Creating an existing topic with the same count is a no-op; with a
    /// different count it is [`Error::TopicExists`].
    pub fn create(&self, _name: &str, _partitions: u32) -> Result<Arc<Topic>, Error> {
        todo!()
    }

    /// All topics, sorted by name.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        todo!()
    }
}
