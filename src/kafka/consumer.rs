//! KIP-848 consumer groups on the Kafka front: what ConsumerGroupHeartbeat, OffsetCommit,
//! OffsetFetch and ConsumerGroupDescribe need to know about a member beyond the engine's
//! coordinator ([`crate::group::Coordinator`]), which owns membership, the group epoch, the target
//! assignment, reconciliation and sessions.
//!
//! Kept here, per (group, member):
//! - the member epochs this front sent in its last two answers. The engine's member epoch moves
//!   as soon as the member is served from a newer snapshot; the client only learns it from a
//!   ConsumerGroupHeartbeat answer, and Kafka checks what the client sends against what it told
//!   it: a heartbeat may carry the last or the one before (its answer may have been lost), an
//!   OffsetCommit or OffsetFetch exactly the last (else STALE_MEMBER_EPOCH);
//! - the subscription as the client gave it (topic names, some of which may not exist yet, and a
//!   regular expression), and the topics of it that exist, which the engine's member subscribes
//!   to (checked again at each heartbeat, so that new topics join the subscription);
//! - the assignment last sent, so that an answer carries one only when it changed;
//! - client id, host, instance and rack ids, for ConsumerGroupDescribe.
//!
//! **Protocols do not mix** (Kafka 4 without its online upgrade path, as with
//! `group.consumer.migration.policy=disabled`): ConsumerGroupHeartbeat on a classic group with
//! members gets GROUP_ID_NOT_FOUND (69, "Group G is not a consumer group."), and JoinGroup on a
//! consumer group with live members gets INCONSISTENT_GROUP_PROTOCOL (23). An empty group of either
//! kind may be taken over by the other protocol, as Kafka converts empty groups.
//!
//! Concurrency: one `std::sync::Mutex` around the map, held for map lookups and updates only,
//! never across a call into the engine.

use crate::clock::Millis;
use crate::group::Coordinator;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The broker settings of consumer groups (Kafka's `group.consumer.*`).
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `group.consumer.session.timeout.ms` (Kafka: 45000): a member that does not heartbeat for
    /// this long is removed and its partitions move.
    pub session_timeout_ms: u64,
    /// `group.consumer.heartbeat.interval.ms` (Kafka: 5000), sent in every answer.
    pub heartbeat_interval_ms: u64,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
        }
    }
}

/// What the front knows of one consumer-protocol member.
#[derive(Debug, Clone, Default)]
pub struct Member {
    pub client_id: String,
    pub client_host: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// The subscribed topic names as the client sent them, sorted and deduplicated.
    pub topic_names: Vec<String>,
    /// The subscribed regular expression (`SubscribedTopicRegex`), matched against whole topic
    /// names, with its source text.
    pub regex: Option<(String, regex::Regex)>,
    /// The server assignor the member asked for (`uniform`, `range`), if any.
    pub assignor: Option<String>,
    /// The member epoch of the last answer.
    pub epoch: i32,
    /// The member epoch of the answer before (what a client whose last answer was lost sends).
    pub previous_epoch: i32,
    /// The subscribed topics that exist, as the engine's member subscribes to them (sorted).
    pub resolved: Vec<String>,
    /// The assignment last sent: (topic, partition), sorted.
    pub sent: Option<Vec<(String, u32)>>,
}

impl Member {
    /// Records an answer carrying member epoch `epoch`.
    pub fn answered(&mut self, epoch: i32) {
        if epoch != self.epoch {
            self.previous_epoch = self.epoch;
            self.epoch = epoch;
        }
    }
}

/// How a member epoch sent with OffsetCommit or OffsetFetch compares with the member's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochCheck {
    /// The member epoch of the member's last heartbeat answer.
    Current,
    /// Older: STALE_MEMBER_EPOCH (113); the client refreshes it with a heartbeat and retries.
    Stale,
    /// Newer than any this coordinator gave out: FENCED_MEMBER_EPOCH (110).
    Fenced,
    /// No such member (never joined, left, or removed by session expiry or rebalance timeout):
    /// UNKNOWN_MEMBER_ID (25).
    Unknown,
}

/// Every consumer-protocol member this front serves, by group.
#[derive(Debug, Default)]
pub struct ConsumerGroups {
    pub config: ConsumerConfig,
    map: Mutex<HashMap<String, HashMap<String, Member>>>,
}

impl ConsumerGroups {
    /// No members yet.
    pub fn new(config: ConsumerConfig) -> Self {
        ConsumerGroups {
            config,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, Member>>> {
        // A panic elsewhere cannot leave a map entry half-written: every update is one insert,
        // remove or field assignment.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the member's record.
    pub fn get(&self, group: &str, member: &str) -> Option<Member> {
        self.lock().get(group)?.get(member).cloned()
    }

    /// Runs `f` on the member's record, if there is one.
    pub fn update<R>(
        &self,
        group: &str,
        member: &str,
        f: impl FnOnce(&mut Member) -> R,
    ) -> Option<R> {
        self.lock().get_mut(group)?.get_mut(member).map(f)
    }

    /// Adds or replaces the member's record.
    pub fn insert(&self, group: &str, member: &str, record: Member) {
        self.lock()
            .entry(group.to_string())
            .or_default()
            .insert(member.to_string(), record);
    }

    /// Forgets the member; returns whether it was known.
    pub fn remove(&self, group: &str, member: &str) -> bool {
        let mut map = self.lock();
        let Some(members) = map.get_mut(group) else {
            return false;
        };
        let known = members.remove(member).is_some();
        if members.is_empty() {
            map.remove(group);
        }
        known
    }

    /// The records of `group`'s members that the engine still has live at `now` (sorted by id);
    /// forgets the others (removed by session expiry or rebalance timeout).
    pub fn live(&self, groups: &Coordinator, group: &str, now: Millis) -> Vec<(String, Member)> {
        let live = groups.live_members(group, now);
        let mut map = self.lock();
        let Some(members) = map.get_mut(group) else {
            return Vec::new();
        };
        members.retain(|id, _| live.binary_search(id).is_ok());
        let mut out: Vec<(String, Member)> = members
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if members.is_empty() {
            map.remove(group);
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The record of `member` in `live`, a list as [`ConsumerGroups::live`] returns it (sorted
    /// by id).
    pub fn find<'a>(live: &'a [(String, Member)], member: &str) -> Option<&'a Member> {
        live.binary_search_by(|(id, _)| id.as_str().cmp(member))
            .ok()
            .map(|i| &live[i].1)
    }

    /// Forgets the members the engine no longer has live at `now`, in every group (the server's
    /// timer calls it, so that members that expired and never came back leave no record).
    pub fn prune(&self, groups: &Coordinator, now: Millis) {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        for group in ids {
            self.live(groups, &group, now);
        }
    }

    /// Whether `group` is a consumer-protocol group with live members at `now`.
    pub fn active(&self, groups: &Coordinator, group: &str, now: Millis) -> bool {
        if !self.lock().contains_key(group) {
            return false;
        }
        !self.live(groups, group, now).is_empty()
    }

    /// Checks the member epoch of an OffsetCommit or OffsetFetch by `member` of `group`.
    pub fn check_epoch(
        &self,
        groups: &Coordinator,
        group: &str,
        member: &str,
        epoch: i32,
        now: Millis,
    ) -> EpochCheck {
        let Some(record) = self.get(group, member) else {
            return EpochCheck::Unknown;
        };
        if groups
            .live_members(group, now)
            .binary_search_by(|m| m.as_str().cmp(member))
            .is_err()
        {
            self.remove(group, member);
            return EpochCheck::Unknown;
        }
        match epoch.cmp(&record.epoch) {
            std::cmp::Ordering::Equal => EpochCheck::Current,
            std::cmp::Ordering::Less => EpochCheck::Stale,
            std::cmp::Ordering::Greater => EpochCheck::Fenced,
        }
    }
}

/// A new member id, as Kafka makes them for members that send none: a random UUID.
pub fn new_member_id() -> String {
    let r: u128 = rand::random();
    uuid::Uuid::from_u128(r).to_string()
}
