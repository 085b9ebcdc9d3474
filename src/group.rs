//! The consumer-group coordinator. (Skeleton: the engine issue fills this in; signatures may grow.)

use crate::assignor::AssignorKind;
use crate::clock::Millis;
use crate::error::Error;
use crate::partition::RecordRef;
use crate::topic::Topic;

/// Where a partition with no committed offset starts: Kafka's `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResetPolicy {
    /// From the log start.
    #[default]
    Earliest,
    /// From the log end at the moment the position is first needed.
    Latest,
}

/// Defaults for groups; each member may override some of them when it joins.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub session_timeout_ms: u64,
    pub assignor: AssignorKind,
    pub auto_commit: bool,
    pub reset: ResetPolicy,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            session_timeout_ms: 10_000,
            assignor: AssignorKind::CooperativeSticky,
            auto_commit: true,
            reset: ResetPolicy::Earliest,
        }
    }
}

/// What a joining member may ask for.
#[derive(Debug, Clone, Default)]
pub struct JoinOptions {
    pub session_timeout_ms: Option<u64>,
    pub assignor: Option<AssignorKind>,
    pub auto_commit: Option<bool>,
}

/// What a member owns in the current generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub generation: u64,
    /// (topic, partition), sorted.
    pub partitions: Vec<(String, u32)>,
}

/// Where `reset_offsets` moves a group's committed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    Offset(u64),
}

/// One row of `describe`: Kafka's `kafka-consumer-groups --describe` columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRow {
    pub topic: String,
    pub partition: u32,
    pub owner: Option<String>,
    pub committed: Option<u64>,
    pub log_end: u64,
    /// log end − committed; `None` when nothing is committed.
    pub lag: Option<u64>,
}

/// A group as `describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group: String,
    pub generation: u64,
    pub assignor: AssignorKind,
    /// (member, its (topic, partition)s), sorted by member.
    pub members: Vec<(String, Vec<(String, u32)>)>,
    pub partitions: Vec<PartitionRow>,
}

/// The coordinator of every group of one broker.
pub struct Coordinator {}

impl Coordinator {
    pub fn new(_config: GroupConfig) -> Self {
        todo!()
    }

    /// Joins `member` to `group` for `topic` (or heartbeats a live member). Rebalances on a join.
    pub fn subscribe(
        &self,
        _group: &str,
        _member: &str,
        _topic: &std::sync::Arc<Topic>,
        _opts: &JoinOptions,
        _now: Millis,
    ) -> Result<MemberView, Error> {
        todo!()
    }

    /// A clean leave: auto-commits the member's handed-out positions, then rebalances at once.
    pub fn unsubscribe(&self, _group: &str, _member: &str, _now: Millis) -> Result<(), Error> {
        todo!()
    }

    /// Keeps the member alive.
    pub fn heartbeat(
        &self,
        _group: &str,
        _member: &str,
        _now: Millis,
    ) -> Result<MemberView, Error> {
        todo!()
    }

    /// Hands out up to `max` records from the member's partitions, fairly, advancing their positions;
    /// calls `f(topic, partition, record)` for each. Also a heartbeat; auto-commits the previous poll.
    pub fn poll(
        &self,
        _group: &str,
        _member: &str,
        _max: usize,
        _now: Millis,
        _f: impl FnMut(&Topic, u32, RecordRef<'_>),
    ) -> Result<MemberView, Error> {
        todo!()
    }

    /// Commits `offset` (the next to consume) for (topic, partition). `member: None` is an admin commit.
    pub fn commit(
        &self,
        _group: &str,
        _member: Option<&str>,
        _topic: &str,
        _partition: u32,
        _offset: u64,
        _now: Millis,
    ) -> Result<(), Error> {
        todo!()
    }

    /// The committed offset, if any.
    pub fn committed(&self, _group: &str, _topic: &str, _partition: u32) -> Option<u64> {
        todo!()
    }

    /// Removes members whose session expired by `now`, rebalancing their groups.
    pub fn expire(&self, _now: Millis) {
        todo!()
    }

    pub fn describe(&self, _group: &str, _now: Millis) -> Result<GroupDescription, Error> {
        todo!()
    }

    /// Group ids, sorted.
    pub fn list_groups(&self) -> Vec<String> {
        todo!()
    }

    /// Only for a group with no live members (else [`Error::GroupNotEmpty`]).
    pub fn reset_offsets(
        &self,
        _group: &str,
        _topic: Option<&Topic>,
        _to: ResetTo,
        _now: Millis,
    ) -> Result<(), Error> {
        todo!()
    }
}
