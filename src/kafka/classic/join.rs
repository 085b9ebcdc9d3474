//! The join barrier (JoinGroup): a rebalance gathers every member's JoinGroup, hands new dynamic
//! members their id with MEMBER_ID_REQUIRED first, waits the initial delay of an empty group,
//! and completes when all have rejoined or the rebalance timeout runs out; then the generation
//! increases, the protocol is chosen, and the leader alone gets the member list.

use super::{lock, ClassicConfig, Group, Groups, Member, Reply, State, SyncOutcome, NONE};
use crate::clock::Millis;
use bytes::Bytes;
use kafka_protocol::ResponseError as E;
use tokio::sync::oneshot;

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
    pub(super) fn error(error: i16, member_id: &str) -> Self {
        JoinOutcome {
            error,
            generation: -1,
            member_id: member_id.to_string(),
            ..JoinOutcome::default()
        }
    }
}

impl Group {
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

    pub(super) fn outcome_for(&self, member_id: &str) -> JoinOutcome {
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
    pub(super) fn update_member(&mut self, p: JoinParams, now: Millis) -> Reply<JoinOutcome> {
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

    pub(super) fn prepare_rebalance(&mut self, now: Millis, cfg: &ClassicConfig) {
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

    pub(super) fn try_complete_join(&mut self, now: Millis) {
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
}
