//! Placement, the same on every node from `init`'s `node_ids` (Kafka's `toPositive(murmur2)`):
//! partition `p` of topic `t` is led by node `(murmur2(t) + p) mod n`, consecutive partitions on
//! consecutive nodes; group `g` is coordinated by node `murmur2(g) mod n`; topic `t`'s home, which
//! alone creates it, is node `murmur2(t) mod n`.

use super::Cluster;
use crate::partitioner::{murmur2, to_positive};
use crate::topic::Topic;

/// The hash placement uses: Kafka's `toPositive(murmur2(bytes))`.
fn place(name: &str) -> u64 {
    u64::from(to_positive(murmur2(name.as_bytes())))
}

impl Cluster {
    /// The index of the leader of partition `p` of `topic`.
    pub fn leader(&self, topic: &str, p: u32) -> usize {
        ((place(topic) + u64::from(p)) % self.ids.len() as u64) as usize
    }

    /// The index of the home node of `topic`, which alone creates it and so decides its
    /// partition count (see "Topics" in the module docs).
    pub fn home(&self, topic: &str) -> usize {
        (place(topic) % self.ids.len() as u64) as usize
    }

    /// The index of the coordinator of `group`.
    pub fn coordinator(&self, group: &str) -> usize {
        (place(group) % self.ids.len() as u64) as usize
    }

    /// A partition of `t` this node leads, round-robin; `None` if it leads none.
    pub(super) fn pick_led(&self, t: &Topic) -> Option<u32> {
        let n = t.partition_count();
        let start = t.partition_of(None);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&p| self.leader(t.name(), p) == self.me)
    }

    pub(super) fn is_peer(&self, src: &str) -> bool {
        self.ids.iter().any(|i| &**i == src)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn placement_is_stable_and_spreads_partitions() {
        let ids: Vec<Box<str>> = vec!["n0".into(), "n1".into(), "n2".into()];
        let a = Cluster::new("n0", &ids).unwrap();
        let b = Cluster::new("n2", &ids).unwrap();
        for p in 0..8 {
            assert_eq!(a.leader("default", p), b.leader("default", p));
        }
        let leaders: BTreeSet<usize> = (0..3).map(|p| a.leader("t", p)).collect();
        assert_eq!(leaders.len(), 3, "3 consecutive partitions land on 3 nodes");
        assert_eq!(a.coordinator("g"), b.coordinator("g"));
        assert!(Cluster::new("n0", &ids[..1]).is_none());
        assert!(Cluster::new("n9", &ids).is_none());
    }
}
