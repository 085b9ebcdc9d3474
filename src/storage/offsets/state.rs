//! The offsets state: the latest value per key, built by applying records in order.

use super::record::{commit_len, group_len, CommittedOffset, GroupMetadata, OffsetRecord};
use std::collections::BTreeMap;

/// One group's durable state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupState {
    /// The latest metadata, if any was recorded since the group was created or last deleted.
    pub metadata: Option<GroupMetadata>,
    /// The committed offsets by (topic, partition).
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
}

impl GroupState {
    fn is_empty(&self) -> bool {
        self.metadata.is_none() && self.offsets.is_empty()
    }
}

/// Every group's durable state: what the journal restores after a restart (Kafka's
/// `GroupMetadataManager` rebuilds the same from `__consumer_offsets` when it loads a partition).
/// A group with neither metadata nor offsets is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetsState {
    /// The groups by id.
    pub groups: BTreeMap<String, GroupState>,
}

impl OffsetsState {
    /// The committed offset of `group` for `topic`-`partition`.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.groups
            .get(group)?
            .offsets
            .get(&(topic.to_owned(), partition))
    }

    /// Applies one record: a commit or metadata replaces the key's value, a delete removes it, a
    /// group delete removes the group with every offset. Returns the change in the live size:
    /// (bytes removed, bytes added), counted as [`OffsetRecord::encoded_len`] of the records a
    /// snapshot of the state holds.
    pub(crate) fn apply(&mut self, record: &OffsetRecord) -> (u64, u64) {
        match record {
            OffsetRecord::Commit {
                group,
                topic,
                partition,
                value,
            } => {
                let g = self.groups.entry(group.clone()).or_default();
                let old = g.offsets.insert((topic.clone(), *partition), value.clone());
                let removed = old.map_or(0, |v| commit_len(group, topic, &v.metadata) as u64);
                (removed, record.encoded_len() as u64)
            }
            OffsetRecord::OffsetDelete {
                group,
                topic,
                partition,
            } => {
                let Some(g) = self.groups.get_mut(group) else {
                    return (0, 0);
                };
                let old = g.offsets.remove(&(topic.clone(), *partition));
                if g.is_empty() {
                    self.groups.remove(group);
                }
                (
                    old.map_or(0, |v| commit_len(group, topic, &v.metadata) as u64),
                    0,
                )
            }
            OffsetRecord::Group { group, metadata } => {
                let g = self.groups.entry(group.clone()).or_default();
                let old = g.metadata.replace(metadata.clone());
                let removed = old.map_or(0, |m| group_len(group, &m) as u64);
                (removed, record.encoded_len() as u64)
            }
            OffsetRecord::GroupDelete { group } => {
                let Some(g) = self.groups.remove(group) else {
                    return (0, 0);
                };
                let bytes = g.metadata.map_or(0, |m| group_len(group, &m))
                    + g.offsets
                        .iter()
                        .map(|((t, _), v)| commit_len(group, t, &v.metadata))
                        .sum::<usize>();
                (bytes as u64, 0)
            }
        }
    }

    /// The records a snapshot holds: each group's metadata, then its offsets.
    pub(crate) fn records(&self) -> impl Iterator<Item = OffsetRecord> + '_ {
        self.groups.iter().flat_map(|(group, g)| {
            let metadata = g.metadata.iter().map(|m| OffsetRecord::Group {
                group: group.clone(),
                metadata: m.clone(),
            });
            let offsets = g
                .offsets
                .iter()
                .map(|((topic, partition), v)| OffsetRecord::Commit {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: v.clone(),
                });
            metadata.chain(offsets)
        })
    }

    /// The live size: the sum of [`OffsetRecord::encoded_len`] over [`OffsetsState::records`].
    pub(crate) fn live_bytes(&self) -> u64 {
        self.records().map(|r| r.encoded_len() as u64).sum()
    }
}
