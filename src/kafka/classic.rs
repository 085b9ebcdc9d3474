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

use crate::clock::Millis;
use bytes::Bytes;
use kafka_protocol::ResponseError as E;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;

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

/// A JoinGroup request, decoded.
#[derive(Debug, Clone, Default)]
pub struct JoinParams {
    pub group_id: String,
    /// Empty on a first join.
    pub member_id: String,
    /// `group.instance.id` (static membership).
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// JoinGroup v0 has none: pass the session timeout.
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (protocol name, subscription metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a dynamic member with an empty id first gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

/// One member in the leader's JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinOutcome {
    pub error: i16,
    /// -1 with an error.
    pub generation: i32,
    pub protocol_type: Option<String>,
    /// The chosen protocol (assignor name).
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member, for the leader only; empty for followers.
    pub members: Vec<JoinedMember>,
}

impl JoinOutcome {
    fn error(error: i16, member_id: &str) -> Self {
        JoinOutcome {
            error,
            generation: -1,
            member_id: member_id.to_string(),
            ..JoinOutcome::default()
        }
    }
}

/// A SyncGroup request, decoded.
#[derive(Debug, Clone, Default)]
pub struct SyncParams {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    /// SyncGroup v5+: checked against the group's when present.
    pub protocol_type: Option<String>,
    /// SyncGroup v5+: checked against the chosen protocol when present.
    pub protocol_name: Option<String>,
    /// The leader's (member id, assignment bytes); empty from followers.
    pub assignments: Vec<(String, Bytes)>,
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    /// The member's assignment, as the leader encoded it.
    pub assignment: Bytes,
}

impl SyncOutcome {
    fn error(error: i16) -> Self {
        SyncOutcome {
            error,
            ..SyncOutcome::default()
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

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Metadata for the chosen protocol (empty before the first generation).
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub state: State,
    pub protocol_type: String,
    pub protocol: String,
    pub generation: i32,
    pub members: Vec<MemberDescription>,
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

    fn expired(&self, now: Millis) -> bool {
        self.join.is_none()
            && self.sync.is_none()
            && now > self.last_seen.saturating_add(self.session_timeout_ms)
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

    /// Protocol names every member supports, in the order of `first`'s preference.
    fn candidates<'a>(&'a self, first: &'a [(String, Bytes)]) -> Vec<&'a str> {
        first
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            })
            .collect()
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && !self.candidates(protocols).is_empty()
    }

    /// Kafka's `selectProtocol`: each member votes for its most preferred protocol among those
    /// all support; the most votes wins (ties: the leader's preference).
    fn select_protocol(&self) -> Option<String> {
        let leader = self.leader.as_ref().and_then(|l| self.members.get(l))?;
        let candidates = self.candidates(&leader.protocols);
        let mut votes = vec![0usize; candidates.len()];
        for m in self.members.values() {
            if let Some(i) = m
                .protocols
                .iter()
                .find_map(|(n, _)| candidates.iter().position(|c| c == n))
            {
                votes[i] += 1;
            }
        }
        let best = votes.iter().copied().max()?;
        let i = votes.iter().position(|&v| v == best)?;
        Some(candidates[i].to_string())
    }

    /// Kafka's `isStaticMemberFenced`: the instance id is known and belongs to another member id.
    /// Checked before "is it a member", so a zombie static member is told it is fenced.
    fn fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        instance_id
            .and_then(|i| self.statics.get(i))
            .is_some_and(|id| id != member_id)
    }

    fn outcome_for(&self, member_id: &str) -> JoinOutcome {
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .iter()
                .map(|(id, m)| JoinedMember {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata(self.protocol.as_deref()),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinOutcome {
            error: NONE,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    fn join(
        &mut self,
        p: JoinParams,
        new_id: String,
        now: Millis,
        cfg: &ClassicConfig,
    ) -> Reply<JoinOutcome> {
        let fail = |e: E| Reply::Now(JoinOutcome::error(e.code(), &p.member_id));
        if self.state == State::Dead {
            return fail(E::CoordinatorNotAvailable);
        }
        if !self.supports(&p.protocol_type, &p.protocols) {
            return fail(E::InconsistentGroupProtocol);
        }
        if p.member_id.is_empty() {
            if let Some(old) = p
                .instance_id
                .as_ref()
                .and_then(|i| self.statics.get(i))
                .cloned()
            {
                return self.rejoin_static(old, new_id, p, now, cfg);
            }
            if p.instance_id.is_none() && p.require_known_member_id {
                let lapse = now.saturating_add(p.session_timeout_ms.max(0) as u64);
                self.pending.insert(new_id.clone(), lapse);
                return Reply::Now(JoinOutcome::error(E::MemberIdRequired.code(), &new_id));
            }
            return self.add_member(new_id, p, now, cfg);
        }
        if self.pending.remove(&p.member_id).is_some() {
            let id = p.member_id.clone();
            return self.add_member(id, p, now, cfg);
        }
        if self.fenced(p.instance_id.as_deref(), &p.member_id) {
            return fail(E::FencedInstanceId);
        }
        if !self.members.contains_key(&p.member_id) {
            return fail(E::UnknownMemberId);
        }
        let same = self.members[&p.member_id].protocols == p.protocols;
        match self.state {
            State::PreparingRebalance => self.update_member(p, now),
            State::CompletingRebalance if same => Reply::Now(self.outcome_for(&p.member_id)),
            State::Stable if same && self.leader.as_deref() != Some(&p.member_id) => {
                self.touch(&p.member_id, now);
                Reply::Now(self.outcome_for(&p.member_id))
            }
            State::CompletingRebalance | State::Stable => {
                let reply = self.update_member(p, now);
                self.prepare_rebalance(now, cfg);
                self.try_complete_join(now);
                reply
            }
            State::Empty | State::Dead => fail(E::UnknownMemberId),
        }
    }

    fn touch(&mut self, member_id: &str, now: Millis) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_seen = now;
        }
    }

    fn add_member(
        &mut self,
        id: String,
        p: JoinParams,
        now: Millis,
        cfg: &ClassicConfig,
    ) -> Reply<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        if let Some(i) = &p.instance_id {
            self.statics.insert(i.clone(), id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(p.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        let rebalance_timeout_ms = p.rebalance_timeout_ms.max(0) as u64;
        self.members.insert(
            id,
            Member {
                instance_id: p.instance_id,
                client_id: p.client_id,
                client_host: p.client_host,
                session_timeout_ms: p.session_timeout_ms.max(0) as u64,
                rebalance_timeout_ms,
                protocols: p.protocols,
                assignment: Bytes::new(),
                last_seen: now,
                join: Some(tx),
                sync: None,
            },
        );
        match self.state {
            State::PreparingRebalance => {
                if let Some((start, until)) = &mut self.delay {
                    // Kafka's InitialDelayedJoin: each new member extends the wait, up to the
                    // rebalance timeout.
                    let cap = start.saturating_add(rebalance_timeout_ms);
                    *until = now
                        .saturating_add(cfg.initial_rebalance_delay_ms)
                        .min(cap)
                        .max(*until);
                    self.rebalance_deadline = self.rebalance_deadline.max(cap);
                }
            }
            _ => self.prepare_rebalance(now, cfg),
        }
        self.try_complete_join(now);
        Reply::Later(rx)
    }

    /// A known member (re)joins: new protocols and timeouts, and it waits in the barrier.
    fn update_member(&mut self, p: JoinParams, now: Millis) -> Reply<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        let m = self
            .members
            .get_mut(&p.member_id)
            .expect("checked by the caller");
        if let Some(old) = m.join.replace(tx) {
            let _ = old.send(JoinOutcome::error(
                E::RebalanceInProgress.code(),
                &p.member_id,
            ));
        }
        m.protocols = p.protocols;
        m.session_timeout_ms = p.session_timeout_ms.max(0) as u64;
        m.rebalance_timeout_ms = p.rebalance_timeout_ms.max(0) as u64;
        m.client_id = p.client_id;
        m.client_host = p.client_host;
        m.last_seen = now;
        self.try_complete_join(now);
        Reply::Later(rx)
    }

    /// A static member rejoins with an empty member id: it replaces its old member id (KIP-345).
    fn rejoin_static(
        &mut self,
        old: String,
        new_id: String,
        p: JoinParams,
        now: Millis,
        cfg: &ClassicConfig,
    ) -> Reply<JoinOutcome> {
        let mut m = self.members.remove(&old).expect("statics point at members");
        if let Some(tx) = m.join.take() {
            let _ = tx.send(JoinOutcome::error(E::FencedInstanceId.code(), &old));
        }
        if let Some(tx) = m.sync.take() {
            let _ = tx.send(SyncOutcome::error(E::FencedInstanceId.code()));
        }
        let was_leader = self.leader.as_deref() == Some(old.as_str());
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        let same = m.protocols == p.protocols;
        m.last_seen = now;
        m.client_id = p.client_id.clone();
        m.client_host = p.client_host.clone();
        m.session_timeout_ms = p.session_timeout_ms.max(0) as u64;
        m.rebalance_timeout_ms = p.rebalance_timeout_ms.max(0) as u64;
        self.members.insert(new_id.clone(), m);
        if let Some(i) = &p.instance_id {
            self.statics.insert(i.clone(), new_id.clone());
        }
        if self.state == State::Stable && same && !was_leader {
            // Same subscription in a stable group: its old assignment, no rebalance.
            return Reply::Now(self.outcome_for(&new_id));
        }
        let p = JoinParams {
            member_id: new_id,
            ..p
        };
        let reply = self.update_member(p, now);
        if self.state != State::PreparingRebalance {
            self.prepare_rebalance(now, cfg);
            self.try_complete_join(now);
        }
        reply
    }

    fn prepare_rebalance(&mut self, now: Millis, cfg: &ClassicConfig) {
        if self.state == State::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(tx) = m.sync.take() {
                    let _ = tx.send(SyncOutcome::error(E::RebalanceInProgress.code()));
                }
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        self.delay =
            (self.state == State::Empty && cfg.initial_rebalance_delay_ms > 0).then(|| {
                (
                    now,
                    now.saturating_add(cfg.initial_rebalance_delay_ms.min(timeout)),
                )
            });
        self.state = State::PreparingRebalance;
        self.rebalance_deadline = now.saturating_add(timeout);
    }

    fn try_complete_join(&mut self, now: Millis) {
        if self.state != State::PreparingRebalance {
            return;
        }
        let all = self.pending.is_empty() && self.members.values().all(|m| m.join.is_some());
        let delayed = self.delay.is_some_and(|(_, until)| now < until);
        if (all && !delayed) || now >= self.rebalance_deadline {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Millis) {
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.join.is_none() && m.instance_id.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.delay = None;
        self.generation = self.generation.wrapping_add(1).max(1);
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            return;
        }
        let leader_ok = self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.get(l).is_some_and(|m| m.join.is_some()));
        if !leader_ok {
            let first = self.members.iter().find(|(_, m)| m.join.is_some());
            self.leader = first.map(|(id, _)| id.clone());
        }
        self.protocol = self.select_protocol();
        self.state = State::CompletingRebalance;
        let waiting: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.join.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for id in waiting {
            let outcome = self.outcome_for(&id);
            let m = self.members.get_mut(&id).expect("listed above");
            m.last_seen = now;
            if let Some(tx) = m.join.take() {
                let _ = tx.send(outcome);
            }
        }
    }

    fn remove_member(&mut self, id: &str) -> bool {
        let Some(mut m) = self.members.remove(id) else {
            return false;
        };
        if let Some(i) = &m.instance_id {
            if self.statics.get(i).map(String::as_str) == Some(id) {
                self.statics.remove(i);
            }
        }
        if let Some(tx) = m.join.take() {
            let _ = tx.send(JoinOutcome::error(E::UnknownMemberId.code(), id));
        }
        if let Some(tx) = m.sync.take() {
            let _ = tx.send(SyncOutcome::error(E::UnknownMemberId.code()));
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        true
    }

    /// After members were removed: rebalance, or let the join barrier finish without them.
    fn after_removal(&mut self, now: Millis, cfg: &ClassicConfig) {
        match self.state {
            State::Stable | State::CompletingRebalance => self.prepare_rebalance(now, cfg),
            State::PreparingRebalance => {}
            State::Empty | State::Dead => return,
        }
        self.try_complete_join(now);
    }

    fn sync(&mut self, p: SyncParams, now: Millis) -> Reply<SyncOutcome> {
        let fail = |e: E| Reply::Now(SyncOutcome::error(e.code()));
        if self.state == State::Dead {
            return fail(E::CoordinatorNotAvailable);
        }
        if self.fenced(p.instance_id.as_deref(), &p.member_id) {
            return fail(E::FencedInstanceId);
        }
        if !self.members.contains_key(&p.member_id) {
            return fail(E::UnknownMemberId);
        }
        if p.generation != self.generation {
            return fail(E::IllegalGeneration);
        }
        let type_ok = p.protocol_type.is_none() || p.protocol_type == self.protocol_type;
        let name_ok = p.protocol_name.is_none() || p.protocol_name == self.protocol;
        if !type_ok || !name_ok {
            return fail(E::InconsistentGroupProtocol);
        }
        match self.state {
            State::Empty | State::Dead => fail(E::UnknownMemberId),
            State::PreparingRebalance => fail(E::RebalanceInProgress),
            State::Stable => {
                self.touch(&p.member_id, now);
                Reply::Now(self.sync_outcome(&p.member_id))
            }
            State::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let m = self.members.get_mut(&p.member_id).expect("checked above");
                m.last_seen = now;
                if let Some(old) = m.sync.replace(tx) {
                    let _ = old.send(SyncOutcome::error(E::RebalanceInProgress.code()));
                }
                if self.leader.as_deref() == Some(p.member_id.as_str()) {
                    let mut given: HashMap<String, Bytes> = p.assignments.into_iter().collect();
                    for (id, m) in self.members.iter_mut() {
                        m.assignment = given.remove(id).unwrap_or_default();
                    }
                    self.state = State::Stable;
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let outcome = self.sync_outcome(&id);
                        if let Some(tx) = self.members.get_mut(&id).and_then(|m| m.sync.take()) {
                            let _ = tx.send(outcome);
                        }
                    }
                }
                Reply::Later(rx)
            }
        }
    }

    fn sync_outcome(&self, member_id: &str) -> SyncOutcome {
        SyncOutcome {
            error: NONE,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment: self.members[member_id].assignment.clone(),
        }
    }

    fn heartbeat(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Millis,
    ) -> i16 {
        if self.state == State::Dead {
            return E::CoordinatorNotAvailable.code();
        }
        if self.fenced(instance_id, member_id) {
            return E::FencedInstanceId.code();
        }
        if self.state == State::Empty || !self.members.contains_key(member_id) {
            return E::UnknownMemberId.code();
        }
        if generation != self.generation {
            return E::IllegalGeneration.code();
        }
        self.touch(member_id, now);
        if self.state == State::PreparingRebalance {
            E::RebalanceInProgress.code()
        } else {
            NONE
        }
    }

    fn leave(&mut self, member_id: &str, instance_id: Option<&str>) -> i16 {
        if let Some(i) = instance_id {
            return match self.statics.get(i).cloned() {
                None => E::UnknownMemberId.code(),
                Some(id) if !member_id.is_empty() && id != member_id => E::FencedInstanceId.code(),
                Some(id) => {
                    self.remove_member(&id);
                    NONE
                }
            };
        }
        if self.pending.remove(member_id).is_some() || self.remove_member(member_id) {
            NONE
        } else {
            E::UnknownMemberId.code()
        }
    }

    /// Kafka's `validateOffsetCommit` for a classic group.
    fn check_commit(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Millis,
    ) -> i16 {
        if self.state == State::Dead {
            return E::CoordinatorNotAvailable.code();
        }
        if generation < 0 && self.state == State::Empty {
            return NONE;
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            if self.fenced(instance_id, member_id) {
                return E::FencedInstanceId.code();
            }
            if !self.members.contains_key(member_id) {
                return E::UnknownMemberId.code();
            }
            if generation != self.generation {
                return E::IllegalGeneration.code();
            }
        } else {
            return E::UnknownMemberId.code();
        }
        if self.state == State::CompletingRebalance {
            return E::RebalanceInProgress.code();
        }
        self.touch(member_id, now);
        NONE
    }

    fn tick(&mut self, now: Millis, cfg: &ClassicConfig) {
        self.pending.retain(|_, lapse| *lapse >= now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.expired(now))
            .map(|(id, _)| id.clone())
            .collect();
        if !expired.is_empty() {
            for id in &expired {
                tracing::info!(member = %id, "classic group member's session expired");
                self.remove_member(id);
            }
            self.after_removal(now, cfg);
        }
        self.try_complete_join(now);
    }

    fn describe(&self) -> GroupDescription {
        GroupDescription {
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: self.protocol.clone().unwrap_or_default(),
            generation: self.generation,
            members: self
                .members
                .iter()
                .map(|(id, m)| MemberDescription {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata(self.protocol.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
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

/// Kafka's member id: `<client id or instance id>-<random UUID>`.
fn new_member_id(prefix: &str) -> String {
    let r: u128 = rand::random();
    let h = format!("{r:032x}");
    format!(
        "{prefix}-{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
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

    /// JoinGroup. The answer waits for the join barrier unless it is an error, MEMBER_ID_REQUIRED
    /// or a rejoin that changes nothing.
    pub fn join(&self, p: JoinParams, now: Millis) -> Reply<JoinOutcome> {
        let fail = |e: E| Reply::Now(JoinOutcome::error(e.code(), &p.member_id));
        if p.group_id.is_empty() {
            return fail(E::InvalidGroupId);
        }
        let timeout = i64::from(p.session_timeout_ms);
        let (lo, hi) = (
            self.config.min_session_timeout_ms,
            self.config.max_session_timeout_ms,
        );
        if timeout < lo as i64 || timeout > hi as i64 {
            return fail(E::InvalidSessionTimeout);
        }
        let g = if p.member_id.is_empty() {
            self.get_or_create(&p.group_id)
        } else {
            match self.get(&p.group_id) {
                Some(g) => g,
                None => return fail(E::UnknownMemberId),
            }
        };
        let prefix = p.instance_id.as_deref().unwrap_or(&p.client_id).to_string();
        let mut g = lock(&g);
        g.join(p, new_member_id(&prefix), now, &self.config)
    }

    /// SyncGroup. A follower's answer waits for the leader's SyncGroup.
    pub fn sync(&self, p: SyncParams, now: Millis) -> Reply<SyncOutcome> {
        match self.get(&p.group_id) {
            None => Reply::Now(SyncOutcome::error(E::UnknownMemberId.code())),
            Some(g) => lock(&g).sync(p, now),
        }
    }

    /// Heartbeat: NONE, REBALANCE_IN_PROGRESS (rejoin), or a fencing error.
    pub fn heartbeat(
        &self,
        group: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Millis,
    ) -> i16 {
        match self.get(group) {
            None => E::UnknownMemberId.code(),
            Some(g) => lock(&g).heartbeat(generation, member_id, instance_id, now),
        }
    }

    /// LeaveGroup of `members` (member id, instance id); one error code per member, or a
    /// group-level error.
    pub fn leave(
        &self,
        group: &str,
        members: &[(String, Option<String>)],
        now: Millis,
    ) -> Result<Vec<i16>, i16> {
        let Some(g) = self.get(group) else {
            return Ok(vec![E::UnknownMemberId.code(); members.len()]);
        };
        let mut g = lock(&g);
        if g.state == State::Dead {
            return Err(E::CoordinatorNotAvailable.code());
        }
        let codes: Vec<i16> = members
            .iter()
            .map(|(id, inst)| g.leave(id, inst.as_deref()))
            .collect();
        if codes.contains(&NONE) {
            g.after_removal(now, &self.config);
        }
        Ok(codes)
    }

    /// OffsetCommit's fencing (Kafka's `validateOffsetCommit`): on success runs `commit` while the
    /// group is locked, so no rebalance slips between the check and the commit. A group unknown
    /// here accepts only commits with a negative generation (no group management).
    pub fn commit<R>(
        &self,
        group: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Millis,
        commit: impl FnOnce() -> R,
    ) -> Result<R, i16> {
        let Some(g) = self.get(group) else {
            return if generation < 0 {
                Ok(commit())
            } else {
                Err(E::IllegalGeneration.code())
            };
        };
        let mut g = lock(&g);
        match g.check_commit(generation, member_id, instance_id, now) {
            NONE => Ok(commit()),
            e => Err(e),
        }
    }

    /// The group as DescribeGroups shows it, if it exists here.
    pub fn describe(&self, group: &str) -> Option<GroupDescription> {
        self.get(group).map(|g| lock(&g).describe())
    }

    /// (group id, state, protocol type) of every classic group, sorted by id.
    pub fn list(&self) -> Vec<(String, State, String)> {
        let all: Vec<(String, Shared)> = lock(&self.map)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out: Vec<(String, State, String)> = all
            .into_iter()
            .map(|(id, g)| {
                let g = lock(&g);
                (id, g.state, g.protocol_type.clone().unwrap_or_default())
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The metadata of every member for the chosen protocol (their subscriptions, for
    /// OffsetDelete's "is the topic subscribed" check).
    pub fn member_metadata(&self, group: &str) -> Vec<Bytes> {
        let Some(g) = self.get(group) else {
            return Vec::new();
        };
        let g = lock(&g);
        g.members
            .values()
            .map(|m| m.metadata(g.protocol.as_deref()))
            .collect()
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

    /// Expires sessions, pending member ids, initial delays and rebalance timeouts at `now`.
    pub fn tick(&self, now: Millis) {
        let all: Vec<Shared> = lock(&self.map).values().cloned().collect();
        for g in all {
            lock(&g).tick(now, &self.config);
        }
    }
}

#[cfg(test)]
mod tests;
