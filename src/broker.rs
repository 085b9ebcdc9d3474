//! The engine's facade: topics, the group coordinator and Maelstrom's per-key committed offsets. (Skeleton.)

use crate::group::{Coordinator, GroupConfig};
use crate::partition::{Key, RecordRef};
use crate::topic::Topics;

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Partitions of a topic created on first use.
    pub default_partitions: u32,
    /// The topic that Maelstrom's kafka workload (and requests that name no topic) use.
    pub default_topic: String,
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
    pub topics: Topics,
    pub groups: Coordinator,
    pub config: Config,
}

impl Broker {
    pub fn new(_config: Config) -> Self {
        todo!()
    }

    /// Appends to `topic` (default topic when `None`); returns (partition, offset).
    pub fn send(&self, _topic: Option<&str>, _key: Option<Key<'_>>, _value: &[u8]) -> (u32, u64) {
        todo!()
    }

    /// Maelstrom `poll` for one key of the default topic: that key's records at offset ≥ `from`.
    pub fn poll_key(
        &self,
        _key: Key<'_>,
        _from: u64,
        _max: usize,
        _f: impl FnMut(RecordRef<'_>),
    ) -> usize {
        todo!()
    }

    /// Maelstrom `commit_offsets` for one key: keeps the maximum seen.
    pub fn commit_key(&self, _key: &str, _offset: u64) {
        todo!()
    }

    /// Maelstrom `list_committed_offsets` for one key.
    pub fn committed_key(&self, _key: &str) -> Option<u64> {
        todo!()
    }
}
