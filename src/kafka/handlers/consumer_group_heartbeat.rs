//! ConsumerGroupHeartbeat (key 68, v0–1): KIP-848's one RPC of a consumer-protocol member, served
//! by the engine's coordinator ([`crate::group::Coordinator`]), which runs the server assignor,
//! keeps the group epoch and reconciles each member on its own.
//!
//! By member epoch (Kafka's `GroupMetadataManager.consumerGroupHeartbeat`):
//! - **0, join** (or a rejoin after being fenced): a member id the client sent is kept, an empty
//!   one gets a new UUID (v0 lets the broker choose; v1 clients make their own). The first request
//!   must carry `RebalanceTimeoutMs` and `SubscribedTopicNames`, else INVALID_REQUEST. A member id
//!   that is still a member rejoins as a new incarnation: what it owned is released at once (the
//!   client has dropped it as lost). The answer carries the assignment.
//! - **> 0, heartbeat**: the member epoch must be the last one answered or the one before
//!   (its answer may have been lost), else FENCED_MEMBER_EPOCH (110); an unknown member (never
//!   joined, or removed by session expiry or its rebalance timeout) gets UNKNOWN_MEMBER_ID (25).
//!   A changed `SubscribedTopicNames` or `ServerAssignor` changes the subscription (a new group
//!   epoch); `TopicPartitions` (what the member owns) acknowledges revocations: partitions
//!   pending revocation that it no longer reports are released to their new owners
//!   ([`crate::group::Coordinator::release`]). Null fields mean "unchanged".
//! - **-1, leave**, and **-2, a static member's temporary leave**: the member is removed and its
//!   partitions go to the others at once. (Kafka keeps a static member's assignment for its
//!   session timeout after -2; here -2 is a leave like -1.) A join with the instance id of
//!   another live member gets UNRELEASED_INSTANCE_ID (111) until that member leaves or expires.
//!
//! The assignment in an answer is what the member may own now: its current partitions minus those
//! pending revocation, by topic id (the ids Metadata reports). Partitions pending assignment
//! arrive in a later answer, once their old owner has released them. The member epoch stays at
//! its old value while it has partitions to revoke, as in Kafka. The answer carries an assignment
//! on a join, when it changed since the last answer, or when the request reported owned
//! partitions.
//!
//! Server assignors: `uniform` (the engine's cooperative-sticky: balance first, then stickiness)
//! and `range`; another gets UNSUPPORTED_ASSIGNOR (112). The group keeps the assignor its first
//! member chose (Kafka picks the one most members ask for); a later member's different choice is
//! logged and ignored. Topics that do not exist yet are subscribed when they appear (checked at
//! each heartbeat). `SubscribedTopicRegex` subscribes to every topic whose whole name matches it
//! (Rust's `regex` syntax, close to Kafka's RE2/J), beside `SubscribedTopicNames`, again
//! re-evaluated at each heartbeat; an empty one clears it, an invalid one gets
//! INVALID_REGULAR_EXPRESSION (128).

use super::{sb, Conn};
use crate::assignor::AssignorKind;
use crate::error::Error;
use crate::group::{JoinOptions, MemberView};
use crate::kafka::consumer::{new_member_id, Member};
use crate::kafka::context::Context;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, RequestHeader,
};
use kafka_protocol::ResponseError as E;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Kafka's name for the engine's assignor (`uniform` is the engine's cooperative-sticky).
pub fn assignor_name(a: AssignorKind) -> &'static str {
    match a {
        AssignorKind::CooperativeSticky => "uniform",
        other => other.name(),
    }
}

fn parse_assignor(name: &str) -> Option<AssignorKind> {
    match name {
        "uniform" => Some(AssignorKind::CooperativeSticky),
        "range" => Some(AssignorKind::Range),
        _ => None,
    }
}

/// An answer with error `code` and its text.
fn fail(code: E, message: String) -> ConsumerGroupHeartbeatResponse {
    tracing::debug!(code = code.code(), "ConsumerGroupHeartbeat: {message}");
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(sb(&message)))
        .with_member_epoch(-1)
}

/// The answer to one ConsumerGroupHeartbeat.
pub fn handle(
    ctx: &Context,
    conn: &Conn,
    header: &RequestHeader,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let group = req.group_id.to_string();
    if group.is_empty() {
        return fail(E::InvalidRequest, "GroupId can't be empty.".into());
    }
    if let Some(name) = req.server_assignor.as_deref() {
        if parse_assignor(name).is_none() {
            return fail(
                E::UnsupportedAssignor,
                format!(
                    "ServerAssignor {name} is not supported. Supported assignors: uniform, range."
                ),
            );
        }
    }
    match req.member_epoch {
        0 => join(ctx, conn, header, &group, req),
        -1 | -2 => leave(ctx, &group, req),
        e if e > 0 => heartbeat(ctx, &group, req),
        e => fail(E::InvalidRequest, format!("MemberEpoch {e} is invalid.")),
    }
}

/// The topics subscribed by name or by `regex` that exist now, sorted by name.
fn resolve(
    ctx: &Context,
    names: &[String],
    regex: Option<&(String, regex::Regex)>,
) -> Vec<Arc<crate::topic::Topic>> {
    let topics = ctx.broker().topics();
    match regex {
        None => names.iter().filter_map(|n| topics.get(n)).collect(),
        Some((_, re)) => topics
            .list()
            .into_iter()
            .filter(|t| {
                names.binary_search_by(|n| n.as_str().cmp(t.name())).is_ok()
                    || re.is_match(t.name())
            })
            .collect(),
    }
}

/// A subscribed regular expression: its source text and the compiled whole-name matcher.
type TopicRegex = (String, regex::Regex);

/// `SubscribedTopicRegex`: `Ok(None)` for null (unchanged), `Ok(Some(None))` for "" (cleared);
/// the error answer (INVALID_REGULAR_EXPRESSION) for one that does not compile.
fn parse_regex(
    regex: Option<&str>,
) -> Result<Option<Option<TopicRegex>>, Box<ConsumerGroupHeartbeatResponse>> {
    match regex {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some(src) => match regex::Regex::new(&format!("^(?:{src})$")) {
            Ok(re) => Ok(Some(Some((src.to_string(), re)))),
            Err(e) => Err(Box::new(fail(
                E::InvalidRegularExpression,
                format!("SubscribedTopicRegex {src} is not a valid regular expression: {e}"),
            ))),
        },
    }
}

fn sorted_names(names: &[kafka_protocol::messages::TopicName]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn options(ctx: &Context, rebalance_timeout_ms: i32, assignor: Option<&str>) -> JoinOptions {
    JoinOptions {
        session_timeout_ms: Some(ctx.consumer.config.session_timeout_ms.max(1)),
        rebalance_timeout_ms: u64::try_from(rebalance_timeout_ms).ok().filter(|&t| t > 0),
        assignor: assignor.and_then(parse_assignor),
        // A Kafka client commits through OffsetCommit itself.
        auto_commit: Some(false),
    }
}

/// Sets the engine member's subscription; a group that already has another assignor keeps it.
fn subscribe(
    ctx: &Context,
    group: &str,
    member: &str,
    topics: &[Arc<crate::topic::Topic>],
    mut opts: JoinOptions,
) -> Result<MemberView, Error> {
    let groups = ctx.broker().groups();
    match groups.subscribe_exactly(group, member, topics, &opts, ctx.now()) {
        Err(Error::InconsistentAssignor { current, .. }) => {
            tracing::info!(
                group,
                member,
                "the group keeps its server assignor {}",
                assignor_name(current)
            );
            opts.assignor = None;
            groups.subscribe_exactly(group, member, topics, &opts, ctx.now())
        }
        other => other,
    }
}

fn engine_error(e: &Error, group: &str, member: &str) -> ConsumerGroupHeartbeatResponse {
    match e {
        Error::UnknownMember { .. } | Error::UnknownGroup(_) => fail(
            E::UnknownMemberId,
            format!("Member {member} is not a member of group {group}."),
        ),
        Error::Invalid(why) => fail(E::InvalidRequest, why.clone()),
        other => {
            tracing::warn!(group, member, "ConsumerGroupHeartbeat: {other}");
            fail(E::UnknownServerError, other.to_string())
        }
    }
}

fn join(
    ctx: &Context,
    conn: &Conn,
    header: &RequestHeader,
    group: &str,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let now = ctx.now();
    if ctx
        .classic
        .describe(group)
        .is_some_and(|d| !d.members.is_empty())
    {
        return fail(
            E::GroupIdNotFound,
            format!("Group {group} is not a consumer group."),
        );
    }
    if req.rebalance_timeout_ms < 0 {
        return fail(
            E::InvalidRequest,
            "RebalanceTimeoutMs must be provided in first request.".into(),
        );
    }
    let regex = match parse_regex(req.subscribed_topic_regex.as_deref()) {
        Ok(r) => r.flatten(),
        Err(answer) => return *answer,
    };
    let names = req.subscribed_topic_names.as_deref();
    if names.is_none() && regex.is_none() {
        return fail(
            E::InvalidRequest,
            "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.".into(),
        );
    }
    let names = names.unwrap_or_default();
    let member = if req.member_id.is_empty() {
        new_member_id()
    } else {
        req.member_id.to_string()
    };
    let groups = ctx.broker().groups();
    if let Some(instance) = req.instance_id.as_deref() {
        let taken = ctx
            .consumer
            .live(groups, group, now)
            .iter()
            .any(|(id, r)| *id != member && r.instance_id.as_deref() == Some(instance));
        if taken {
            return fail(
                E::UnreleasedInstanceId,
                format!(
                    "Static member {member} with instance id {instance} cannot join the group \
                     because the instance id is owned by another member."
                ),
            );
        }
    }
    if groups
        .live_members(group, now)
        .binary_search(&member)
        .is_ok()
    {
        // A rejoin at epoch 0: a new incarnation; the old one's partitions are free at once.
        let _ = groups.unsubscribe(group, &member, now);
    }
    let topic_names = sorted_names(names);
    let topics = resolve(ctx, &topic_names, regex.as_ref());
    let assignor = req.server_assignor.as_deref().map(|s| s.to_string());
    let opts = options(ctx, req.rebalance_timeout_ms, assignor.as_deref());
    let view = match subscribe(ctx, group, &member, &topics, opts) {
        Ok(v) => v,
        Err(e) => return engine_error(&e, group, &member),
    };
    let mut record = Member {
        client_id: header
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        client_host: conn.client_host.clone(),
        instance_id: req.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: req.rack_id.as_ref().map(|s| s.to_string()),
        topic_names,
        regex,
        assignor,
        epoch: 0,
        previous_epoch: 0,
        resolved: topics.iter().map(|t| t.name().to_string()).collect(),
        sent: None,
    };
    let response = answer(ctx, &member, &mut record, &view, true);
    ctx.consumer.insert(group, &member, record);
    tracing::debug!(group, member, epoch = view.member_epoch, "consumer joined");
    response
}

fn leave(
    ctx: &Context,
    group: &str,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let member = req.member_id.to_string();
    if req.member_epoch == -2 && req.instance_id.is_none() {
        return fail(
            E::InvalidRequest,
            "InstanceId can't be null when MemberEpoch is -2.".into(),
        );
    }
    let known = ctx.consumer.remove(group, &member);
    let left = ctx
        .broker()
        .groups()
        .unsubscribe(group, &member, ctx.now())
        .is_ok();
    if !known && !left {
        return fail(
            E::UnknownMemberId,
            format!("Member {member} is not a member of group {group}."),
        );
    }
    tracing::debug!(group, member, "consumer left");
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(sb(&member)))
        .with_member_epoch(req.member_epoch)
        .with_heartbeat_interval_ms(interval(ctx))
}

fn heartbeat(
    ctx: &Context,
    group: &str,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let now = ctx.now();
    let member = req.member_id.to_string();
    let groups = ctx.broker().groups();
    let unknown = || {
        fail(
            E::UnknownMemberId,
            format!("Member {member} is not a member of group {group}."),
        )
    };
    let Some(mut record) = ctx.consumer.get(group, &member) else {
        return unknown();
    };
    if let Err(e) = groups.member_view(group, &member, now) {
        ctx.consumer.remove(group, &member);
        return engine_error(&e, group, &member);
    }
    if req.member_epoch != record.epoch && req.member_epoch != record.previous_epoch {
        let (which, than) = if req.member_epoch > record.epoch {
            ("larger", record.epoch)
        } else {
            ("smaller", record.epoch)
        };
        return fail(
            E::FencedMemberEpoch,
            format!(
                "The consumer group member has a {which} member epoch ({}) than the one known by \
                 the group coordinator ({than}). The member must abandon all its partitions and \
                 rejoin.",
                req.member_epoch
            ),
        );
    }
    // Subscription and assignor changes; topics that appeared since.
    let mut resubscribe = false;
    if let Some(names) = req.subscribed_topic_names.as_deref() {
        let names = sorted_names(names);
        if names != record.topic_names {
            record.topic_names = names;
            resubscribe = true;
        }
    }
    match parse_regex(req.subscribed_topic_regex.as_deref()) {
        Err(answer) => return *answer,
        Ok(None) => {}
        Ok(Some(regex)) => {
            let old = record.regex.as_ref().map(|(s, _)| s.as_str());
            if old != regex.as_ref().map(|(s, _)| s.as_str()) {
                record.regex = regex;
                resubscribe = true;
            }
        }
    }
    let mut assignor = None;
    if let Some(a) = req.server_assignor.as_deref() {
        if record.assignor.as_deref() != Some(a) {
            record.assignor = Some(a.to_string());
            assignor = Some(a.to_string());
            resubscribe = true;
        }
    }
    let topics = resolve(ctx, &record.topic_names, record.regex.as_ref());
    let resolved: Vec<String> = topics.iter().map(|t| t.name().to_string()).collect();
    if resolved != record.resolved {
        record.resolved = resolved;
        resubscribe = true;
    }
    if resubscribe {
        let opts = options(ctx, req.rebalance_timeout_ms, assignor.as_deref());
        if let Err(e) = subscribe(ctx, group, &member, &topics, opts) {
            return engine_error(&e, group, &member);
        }
    }
    // Revocation acknowledgement.
    let view = match &req.topic_partitions {
        Some(owned) => {
            let by_id: BTreeMap<[u8; 16], String> = ctx
                .broker()
                .topics()
                .list()
                .iter()
                .map(|t| (t.id(), t.name().to_string()))
                .collect();
            let owned: Vec<(String, u32)> = owned
                .iter()
                .filter_map(|tp| by_id.get(tp.topic_id.as_bytes()).map(|n| (n, tp)))
                .flat_map(|(n, tp)| {
                    tp.partitions
                        .iter()
                        .filter_map(|&p| u32::try_from(p).ok())
                        .map(move |p| (n.clone(), p))
                })
                .collect();
            groups.release(group, &member, &owned, now)
        }
        None => groups.member_view(group, &member, now),
    };
    let view = match view {
        Ok(v) => v,
        Err(e) => {
            ctx.consumer.remove(group, &member);
            return engine_error(&e, group, &member);
        }
    };
    let full = req.topic_partitions.is_some();
    let response = answer(ctx, &member, &mut record, &view, full);
    let (epoch, previous, sent) = (record.epoch, record.previous_epoch, record.sent.clone());
    let (names, regex, resolved, assignor) = (
        record.topic_names.clone(),
        record.regex.clone(),
        record.resolved.clone(),
        record.assignor.clone(),
    );
    ctx.consumer.update(group, &member, |r| {
        r.epoch = epoch;
        r.previous_epoch = previous;
        r.sent = sent;
        r.topic_names = names;
        r.regex = regex;
        r.resolved = resolved;
        r.assignor = assignor;
    });
    response
}

fn interval(ctx: &Context) -> i32 {
    i32::try_from(ctx.consumer.config.heartbeat_interval_ms).unwrap_or(i32::MAX)
}

/// The answer for a member at `view`; updates the record's epochs and last sent assignment.
fn answer(
    ctx: &Context,
    member: &str,
    record: &mut Member,
    view: &MemberView,
    full: bool,
) -> ConsumerGroupHeartbeatResponse {
    let epoch = i32::try_from(view.member_epoch).unwrap_or(i32::MAX);
    record.answered(epoch);
    let assigned: Vec<(String, u32)> = view
        .partitions
        .iter()
        .filter(|p| view.revoking.binary_search(p).is_err())
        .cloned()
        .collect();
    let mut response = ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(sb(member)))
        .with_member_epoch(epoch)
        .with_heartbeat_interval_ms(interval(ctx));
    if full || record.sent.as_ref() != Some(&assigned) {
        response.assignment =
            Some(Assignment::default().with_topic_partitions(topic_partitions(ctx, &assigned)));
        record.sent = Some(assigned);
    }
    response
}

/// `parts` as (topic id, partitions); a topic deleted meanwhile is left out.
fn topic_partitions(ctx: &Context, parts: &[(String, u32)]) -> Vec<TopicPartitions> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, p) in parts {
        by_topic
            .entry(topic)
            .or_default()
            .push(i32::try_from(*p).unwrap_or(i32::MAX));
    }
    by_topic
        .into_iter()
        .filter_map(|(topic, partitions)| {
            let t = ctx.broker().topics().get(topic)?;
            Some(
                TopicPartitions::default()
                    .with_topic_id(uuid::Uuid::from_bytes(t.id()))
                    .with_partitions(partitions),
            )
        })
        .collect()
}

/// `code` with no member epoch.
pub fn error(code: i16) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code)
        .with_member_epoch(-1)
}
