//! Which groups consume more than one topic, so that replies can say which topic a partition
//! number belongs to.
//!
//! A `heartbeat_ok` or group `poll_ok` without `topic` lists the member's partitions: bare
//! numbers while the group has one topic (as they always were), `{topic, partition}` objects
//! once it has several — then `[0, 1, 0]` could not be told apart. A group's topics only grow
//! (a member subscribes, or an admin commit names a topic; the coordinator never forgets one),
//! and every request that adds one is served by this node's handlers (in a cluster, at the
//! group's coordinator), so a group noted here as multi-topic stays so, as in the coordinator.
//!
//! # Orderings
//! `any_multi` only spares single-topic nodes the map lookup: it is raised (Relaxed) after the
//! map under its lock says "several", and read Relaxed. A reader that misses a fresh `true`
//! answers as the map would have answered just before the topic was added: the reply is still
//! one of the two states the group was in while the request ran.

use crate::loom::{lock, AtomicBool, Mutex, Ordering};
use std::collections::HashMap;

/// The topics of each group, as far as the reply shape needs them.
#[derive(Debug, Default)]
pub(crate) struct GroupTopics {
    /// Whether some group has several topics.
    any_multi: AtomicBool,
    /// Group → its only topic, or `None` once it has several.
    groups: Mutex<HashMap<Box<str>, Option<Box<str>>>>,
}

impl GroupTopics {
    /// Notes that `group` consumes `topic`.
    pub(crate) fn note(&self, group: &str, topic: &str) {
        let mut groups = lock(&self.groups);
        match groups.get_mut(group) {
            None => {
                groups.insert(group.into(), Some(topic.into()));
            }
            Some(entry) => {
                if entry.as_deref().is_some_and(|only| only != topic) {
                    *entry = None;
                    // Relaxed: see the module's # Orderings.
                    self.any_multi.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// Whether `group` has more than one topic.
    #[inline]
    pub(crate) fn multi(&self, group: &str) -> bool {
        // Relaxed: see the module's # Orderings.
        self.any_multi.load(Ordering::Relaxed) && self.multi_slow(group)
    }

    #[cold]
    fn multi_slow(&self, group: &str) -> bool {
        matches!(lock(&self.groups).get(group), Some(None))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_group_turns_multi_topic_at_its_second_topic() {
        let g = GroupTopics::default();
        assert!(!g.multi("g"));
        g.note("g", "a");
        g.note("g", "a");
        g.note("h", "b");
        assert!(!g.multi("g") && !g.multi("h"));
        g.note("g", "b");
        assert!(g.multi("g") && !g.multi("h"));
        g.note("g", "a");
        assert!(g.multi("g"), "a group's topics only grow");
    }
}
