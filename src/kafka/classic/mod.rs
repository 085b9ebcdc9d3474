//! Classic consumer groups (Kafka's JoinGroup / SyncGroup / Heartbeat / LeaveGroup protocol): the
//! broker runs the barrier and relays an assignment that the group's leader computed.
//!
//! The rules follow Kafka's classic group coordinator (`GroupCoordinator.scala` before 3.7,
//! `ClassicGroup.java` and `GroupMetadataManager.java` after):
//!
//! - **States.** `Empty` → `PreparingRebalance` (the join barrier) → `CompletingRebalance` (the
//!   sync barrier: waiting for the leader's assignment) → `Stable`; `Dead` once deleted.
//! - **Join barrier.** A rebalance completes when every known member has a JoinGroup waiting and
//!   no member id handed out with MEMBER_ID_REQUIRED is still outstanding, or when the rebalance
//!   timeout (the largest of the members') runs out; dynamic members that did not rejoin by then
//!   are removed, static ones stay. The generation then increases by one, the protocol most
//!   members prefer among those all support is chosen, and every waiting member gets its answer;
//!   only the leader gets the member list with each member's subscription metadata.
//! - **Initial delay.** The first rebalance of an empty group waits
//!   `group.initial.rebalance.delay.ms`, extended by that much at each new member, up to the
//!   rebalance timeout, so that consumers started together form one generation.
//! - **Sync barrier.** Followers' SyncGroup waits until the leader's SyncGroup brings the
//!   assignment (members it leaves out get an empty one); then every member gets its own bytes,
//!   as the leader sent them. The broker never reads them, so range, roundrobin and
//!   cooperative-sticky (whose second round is just another rebalance triggered by the members
//!   that revoked partitions, rejoining with new metadata) all work.
//! - **Sessions.** A member that is not waiting in a barrier and has not been heard from
//!   (JoinGroup, SyncGroup, Heartbeat, OffsetCommit) for its session timeout is removed and the
//!   group rebalances. [`Groups::tick`] checks deadlines; the server calls it every
//!   [`TICK`].
//! - **Static membership (KIP-345).** A member with `group.instance.id` that rejoins with an empty
//!   member id takes over its old member (and, in a stable group, its old assignment, with no
//!   rebalance unless it led the group or its subscription changed); the old member id is fenced
//!   with FENCED_INSTANCE_ID.
//! - **Errors** (Kafka's codes): UNKNOWN_MEMBER_ID (25), ILLEGAL_GENERATION (22),
//!   REBALANCE_IN_PROGRESS (27), MEMBER_ID_REQUIRED (79, JoinGroup v4+), FENCED_INSTANCE_ID (82),
//!   INCONSISTENT_GROUP_PROTOCOL (23), INVALID_SESSION_TIMEOUT (26), INVALID_GROUP_ID (24),
//!   COORDINATOR_NOT_AVAILABLE (15, a group deleted under a request), NON_EMPTY_GROUP (68).
//!
//! Committed offsets are not kept here: [`Groups::commit`] applies the classic fencing and runs
//! the caller's commit into the engine's coordinator while the group's lock is held, so a commit
//! and a rebalance are ordered as in Kafka.
//!
//! Concurrency: one `std::sync::Mutex` per group (membership changes are rare and short) and one
//! around the map of groups; a waiting JoinGroup or SyncGroup holds a `oneshot` receiver, never a
//! lock. The front is not loom-modeled (tokio does not build under `--cfg loom`).
//!
//! Files, one concept each:
//! - `join.rs`: the join barrier: JoinGroup, MEMBER_ID_REQUIRED, protocol selection, the initial
//!   delay, rebalance timeouts and the new generation.
//! - `sync.rs`: the sync barrier: SyncGroup and the relay of the leader's assignment.
//! - `statics.rs`: static membership (KIP-345): fencing by `group.instance.id` and a static
//!   member's rejoin under a new member id.
//! - `session.rs`: heartbeats, LeaveGroup, session expiry and the removal of members.
//! - `commit.rs`: OffsetCommit's fencing against the group's generation and members.
//! - `describe.rs`: the group as DescribeGroups, ListGroups and OffsetDelete see it.
//! - `mod.rs`: the coordinator ([`Groups`]), a group's and a member's state, and the group
//!   map's lifecycle (restore after a restart, DeleteGroups).

mod commit;
mod describe;
mod join;
mod session;
mod statics;
mod sync;

use crate::clock::Millis;
use bytes::Bytes;
use kafka_protocol::ResponseError as E;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;

pub use describe::{GroupDescription, MemberDescription};
pub use join::{JoinOutcome, JoinParams, JoinedMember};
pub use sync::{SyncOutcome, SyncParams};

/// How often the server calls [`Groups::tick`].
pub const TICK: Duration = Duration::from_millis(50);

const NONE: i16 = 0;

/// Group timeouts, as Kafka's broker settings.
#[derive(Debug, Clone)]
pub struct ClassicConfig {
    /// `group.min.session.timeout.ms` (Kafka: 6000).
    pub min_session_timeout_ms: u64,
    /// `group.max.session.timeout.ms` (Kafka: 1800000).
    pub max_session_timeout_ms: u64,
    /// `group.initial.rebalance.delay.ms` (Kafka: 3000).
    pub initial_rebalance_delay_ms: u64,
}

impl Default for ClassicConfig {
    fn default() -> Self {
        ClassicConfig {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3000,
        }
    }
}

/// A classic group's state, named as Kafka names it in DescribeGroups and ListGroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No members (offsets may still be committed with generation -1).
    Empty,
    /// The join barrier: waiting for members to (re)join.
    PreparingRebalance,
    /// The sync barrier: waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment for the current generation.
    Stable,
    /// Deleted.
    Dead,
}

impl State {
    /// Kafka's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

/// An answer now, or a receiver that gets it when a barrier completes.
#[derive(Debug)]
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

impl<T> Reply<T> {
    /// The answer, awaiting the barrier if needed; `dropped` if the group dropped the waiter
    /// without answering (it is deleted).
    pub async fn wait(self, dropped: impl FnOnce() -> T) -> T {
        match self {
            Reply::Now(t) => t,
            Reply::Later(rx) => rx.await.unwrap_or_else(|_| dropped()),
        }
    }
}

struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: u64,
    rebalance_timeout_ms: u64,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_seen: Millis,
    join: Option<oneshot::Sender<JoinOutcome>>,
    sync: Option<oneshot::Sender<SyncOutcome>>,
}

impl Member {
    fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|p| self.protocols.iter().find(|(n, _)| n == p))
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

struct Group {
    state: State,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// By member id.
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the time they lapse.
    pending: HashMap<String, Millis>,
    /// Static members: instance id → member id.
    statics: HashMap<String, String>,
    /// When the join barrier gives up on members that have not rejoined.
    rebalance_deadline: Millis,
    /// The initial delay of an empty group's first rebalance: (started, until).
    delay: Option<(Millis, Millis)>,
}

impl Group {
    fn new() -> Self {
        Group {
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            statics: HashMap::new(),
            rebalance_deadline: 0,
            delay: None,
        }
    }

    fn touch(&mut self, member_id: &str, now: Millis) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_seen = now;
        }
    }
}

type Shared = Arc<Mutex<Group>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere (a bug) must not take every later request of the group down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every classic group of the broker.
pub struct Groups {
    config: ClassicConfig,
    map: Mutex<HashMap<String, Shared>>,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups")
            .field("config", &self.config)
            .field("groups", &lock(&self.map).len())
            .finish()
    }
}

impl Groups {
    /// No groups yet.
    pub fn new(config: ClassicConfig) -> Self {
        Groups {
            config,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, id: &str) -> Option<Shared> {
        lock(&self.map).get(id).cloned()
    }

    fn get_or_create(&self, id: &str) -> Shared {
        lock(&self.map)
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(Group::new())))
            .clone()
    }

    /// Brings back a group stored before a restart: Empty, at `generation`, with its protocol
    /// type and protocol, so that its members rejoin into the next generation and commits of
    /// older generations stay fenced. A group that exists already is left alone.
    pub fn restore(
        &self,
        group: &str,
        generation: i32,
        protocol_type: Option<String>,
        protocol: Option<String>,
    ) {
        lock(&self.map).entry(group.to_string()).or_insert_with(|| {
            let mut g = Group::new();
            g.generation = generation.max(0);
            g.protocol_type = protocol_type;
            g.protocol = protocol;
            Arc::new(Mutex::new(g))
        });
    }

    /// Deletes an empty group: NON_EMPTY_GROUP while it has members. `Ok(false)` if it was not a
    /// classic group.
    pub fn delete(&self, group: &str) -> Result<bool, i16> {
        let mut map = lock(&self.map);
        let Some(g) = map.get(group).cloned() else {
            return Ok(false);
        };
        let mut g = lock(&g);
        if !g.members.is_empty() || g.state != State::Empty {
            return Err(E::NonEmptyGroup.code());
        }
        g.state = State::Dead;
        map.remove(group);
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
