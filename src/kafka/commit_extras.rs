//! What an OffsetCommit carries beside the offset: the committed leader epoch and the client's
//! metadata string, returned by OffsetFetch (Kafka's `OffsetAndMetadata`).
//!
//! The engine keeps only the offset (it is shared with the Maelstrom front, whose commits have
//! neither). So the Kafka front keeps the extras here, keyed by (group, topic, partition) and
//! tagged with the offset they came with: OffsetFetch returns them only while the engine's
//! committed offset is still that offset. A commit from elsewhere (a Maelstrom client, the
//! engine's auto-commit, a reset by the groups tool through an admin commit without metadata)
//! moves the offset and the extras no longer apply, as Kafka's would be replaced. With
//! `--data-dir` they are journaled with the offset and loaded back at start.

use dashmap::DashMap;

/// One commit's extras: (offset they came with, leader epoch or -1, metadata).
type Extras = (i64, i32, String);

/// The extras of the latest Kafka commit per (group, topic, partition).
#[derive(Debug, Default)]
pub struct CommitExtras {
    map: DashMap<(String, String, i32), Extras>,
}

impl CommitExtras {
    /// Keeps `leader_epoch` and `metadata` for a commit of `offset`; a commit with neither (-1,
    /// empty) forgets what an earlier one left.
    pub fn record(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        offset: i64,
        leader_epoch: i32,
        metadata: &str,
    ) {
        let key = (group.to_string(), topic.to_string(), partition);
        if leader_epoch < 0 && metadata.is_empty() {
            self.map.remove(&key);
        } else {
            self.map
                .insert(key, (offset, leader_epoch, metadata.to_string()));
        }
    }

    /// (leader epoch, metadata) for the committed `offset`, or (-1, "") when the last Kafka
    /// commit there was of another offset (or carried none).
    pub fn get(&self, group: &str, topic: &str, partition: i32, offset: i64) -> (i32, String) {
        self.map
            .get(&(group.to_string(), topic.to_string(), partition))
            .filter(|e| e.0 == offset)
            .map_or((-1, String::new()), |e| (e.1, e.2.clone()))
    }

    /// Forgets every extra of `group` (DeleteGroups).
    pub fn forget_group(&self, group: &str) {
        self.map.retain(|k, _| k.0 != group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_apply_only_to_the_offset_they_came_with() {
        let x = CommitExtras::default();
        x.record("g", "t", 0, 10, 3, "meta");
        assert_eq!(x.get("g", "t", 0, 10), (3, "meta".to_string()));
        assert_eq!(x.get("g", "t", 0, 11), (-1, String::new()));
        assert_eq!(x.get("g", "t", 1, 10), (-1, String::new()));
        x.record("g", "t", 0, 12, -1, "");
        assert_eq!(x.get("g", "t", 0, 10), (-1, String::new()));
        x.record("g", "t", 0, 12, 4, "");
        x.forget_group("g");
        assert_eq!(x.get("g", "t", 0, 12), (-1, String::new()));
    }
}
