//! Consumer-group RPCs: `subscribe`, `unsubscribe`/`leave_group`, group `poll`, `commit`,
//! `heartbeat`, `describe_group`, `list_groups`, `create_topic`, `list_topics`, `reset_offsets` and
//! the group form of `list_committed_offsets`.

use super::node::{
    opt_topic, Node, ReplyTo, GROUP_POLL_DEFAULT, GROUP_POLL_MAX, MAX_PARTITIONS, PARTITIONS_RANGE,
};
use crate::error::Error;
use crate::group::{JoinOptions, MemberView, ResetTo};
use crate::loom::Arc;
use crate::maelstrom::wire::{Body, Field, FieldError, JsonOut, Message, WireError};
use crate::topic::Topic;
use std::borrow::Cow;

/// The consumer a request speaks for: its `consumer` field, else its `src`.
fn consumer<'a>(msg: &Message<'a>) -> Result<Cow<'a, str>, WireError> {
    Ok(match msg.body.opt_str(Field::Consumer)? {
        Some(c) => c.decode(),
        None => msg.src.decode(),
    })
}

/// Writes `,"partitions":[…],"generation":g`: the member's partitions of `topic` as numbers; with
/// no `topic`, all of its partitions: numbers while its group has one topic, `{topic, partition}`
/// objects when `qualified` (the group has several, so numbers alone would be ambiguous).
fn write_view(out: &mut Vec<u8>, view: &MemberView, topic: Option<&str>, qualified: bool) {
    out.key("partitions").push(b'[');
    let mut first = true;
    for (t, p) in &view.partitions {
        if topic.is_some_and(|want| want != t) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        if qualified && topic.is_none() {
            out.raw(b"{\"topic\":").string(t);
            out.key("partition").uint(u64::from(*p)).push(b'}');
        } else {
            out.uint(u64::from(*p));
        }
    }
    out.push(b']');
    out.key("generation").uint(view.member_epoch);
}

/// The `topic` and `partitions` of a `create_topic`, checked.
pub(crate) fn create_topic_args<'a>(b: &Body<'a>) -> Result<(Cow<'a, str>, u32), WireError> {
    let topic = b.str(Field::Topic)?.decode();
    super::node::check_topic_name(b.name_of(Field::Topic), &topic)?;
    let n = b.u32(Field::Partitions)?;
    if n == 0 || n > MAX_PARTITIONS {
        return Err(WireError::malformed(
            b.name_of(Field::Partitions),
            PARTITIONS_RANGE,
        ));
    }
    Ok((topic, n))
}

impl Node {
    /// The named topic (which must exist), or the default topic: [`Node::consumer_topic`].
    pub(crate) fn topic_or_default(&self, b: &Body<'_>) -> Result<Arc<Topic>, WireError> {
        self.consumer_topic(opt_topic(b)?.as_deref())
    }

    /// The named topic or the default one, for a consumer: never created here (error 20 if it
    /// does not exist; see [`Node::consumer_topic`]).
    fn topic_for_join(&self, b: &Body<'_>) -> Result<Arc<Topic>, WireError> {
        self.consumer_topic(opt_topic(b)?.as_deref())
    }

    /// The topics a poll by a non-member joins: the request's `topic`; else every topic the group
    /// already knows (a member that expired — say, cut off from its coordinator — rejoins its
    /// group's subscription, as a Kafka consumer rejoins with its own); else the default topic.
    #[cold]
    fn topics_for_rejoin(
        &self,
        b: &Body<'_>,
        group: &str,
        now: crate::clock::Millis,
    ) -> Result<Vec<Arc<Topic>>, WireError> {
        if opt_topic(b)?.is_none() {
            if let Ok(d) = self.broker.groups().describe(group, now) {
                let mut names: Vec<&str> = d.partitions.iter().map(|r| r.topic.as_str()).collect();
                names.dedup();
                let known: Vec<Arc<Topic>> = names
                    .into_iter()
                    .filter_map(|n| self.broker.topics().get(n))
                    .collect();
                if !known.is_empty() {
                    return Ok(known);
                }
            }
        }
        Ok(vec![self.topic_for_join(b)?])
    }

    fn join_options(b: &Body<'_>) -> Result<JoinOptions, WireError> {
        let assignor = match b.opt_str(Field::Assignor)? {
            None => None,
            Some(s) => Some(s.decode().parse().map_err(|e: String| {
                WireError::new(
                    crate::maelstrom::wire::Code::MalformedRequest,
                    format!("field `assignor`: {e}"),
                )
            })?),
        };
        let session_timeout_ms = b.opt_u64(Field::SessionTimeoutMs)?;
        if session_timeout_ms == Some(0) {
            return Err(WireError::malformed(
                b.name_of(Field::SessionTimeoutMs),
                "a positive integer (milliseconds)",
            ));
        }
        Ok(JoinOptions {
            session_timeout_ms,
            assignor,
            auto_commit: b.opt_bool(Field::AutoCommit)?,
            ..JoinOptions::default()
        })
    }

    /// `subscribe {group, consumer?, topic?, session_timeout_ms?, assignor?, auto_commit?}` →
    /// `subscribe_ok {partitions, generation}`.
    pub(crate) fn subscribe(
        &self,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let b = &msg.body;
        let group = b.str(Field::Group)?.decode();
        let member = consumer(msg)?;
        let topic = self.topic_for_join(b)?;
        let opts = Self::join_options(b)?;
        let view = self
            .broker
            .groups()
            .subscribe(&group, &member, &topic, &opts, self.now())?;
        self.group_topics.note(&group, topic.name());
        self.ok(to, out);
        write_view(out, &view, Some(topic.name()), false);
        self.done(to, out);
        Ok(())
    }

    /// `unsubscribe {group, consumer?}` (alias `leave_group`) → `unsubscribe_ok {}`. Leaving a group
    /// one is not in succeeds (a retried leave is not an error).
    pub(crate) fn unsubscribe(
        &self,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let group = msg.body.str(Field::Group)?.decode();
        let member = consumer(msg)?;
        match self
            .broker
            .groups()
            .unsubscribe(&group, &member, self.now())
        {
            Ok(()) | Err(Error::UnknownMember { .. } | Error::UnknownGroup(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.ok(to, out);
        self.done(to, out);
        Ok(())
    }

    /// `heartbeat {group, consumer?}` → `heartbeat_ok {partitions, generation}`.
    pub(crate) fn heartbeat(
        &self,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let group = msg.body.str(Field::Group)?.decode();
        let member = consumer(msg)?;
        let topic = opt_topic(&msg.body)?;
        let view = self
            .broker
            .groups()
            .heartbeat(&group, &member, self.now())?;
        self.ok(to, out);
        write_view(
            out,
            &view,
            topic.as_deref(),
            self.group_topics.multi(&group),
        );
        self.done(to, out);
        Ok(())
    }

    /// `poll {group, consumer?, max_messages?, topic?}` → `poll_ok {msgs: [{topic, partition,
    /// offset, key, msg}, …], partitions, generation}`. A consumer that is not a member joins first
    /// (to `topic`, else the default topic), as Kafka's `poll()` does.
    pub(crate) fn group_poll(
        &self,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let b = &msg.body;
        let group = b.str(Field::Group)?.decode();
        let member = consumer(msg)?;
        let max = match b.opt_u64(Field::Max)? {
            None => GROUP_POLL_DEFAULT,
            // Kafka's max.poll.records must be at least 1 too: a poll for nothing is a mistake
            // (a `heartbeat` keeps a member alive).
            Some(0) => {
                return Err(WireError::malformed(
                    b.name_of(Field::Max),
                    "a positive integer (values above 10000 are clamped to 10000)",
                ))
            }
            Some(m) => m.min(GROUP_POLL_MAX as u64) as usize,
        };
        let topic = opt_topic(b)?;
        let opts = Self::join_options(b)?;
        let mark = out.len();
        let mut joined = false;
        loop {
            self.ok(to, out);
            out.key("msgs").push(b'[');
            let mut first = true;
            let now = self.now();
            let r = self
                .broker
                .groups()
                .poll(&group, &member, max, now, |t, p, r| {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.raw(b"{\"topic\":").string(t.name());
                    out.key("partition").uint(u64::from(p));
                    out.key("offset").uint(r.offset);
                    out.key("key");
                    super::node::write_key(out, r.key);
                    out.key("msg");
                    super::node::write_value(out, &r);
                    out.push(b'}');
                });
            match r {
                Ok(view) => {
                    out.push(b']');
                    let qualified = self.group_topics.multi(&group);
                    write_view(out, &view, topic.as_deref(), qualified);
                    self.done(to, out);
                    return Ok(());
                }
                Err(Error::UnknownMember { .. } | Error::UnknownGroup(_)) if !joined => {
                    out.truncate(mark);
                    joined = true;
                    for t in self.topics_for_rejoin(b, &group, now)? {
                        self.broker
                            .groups()
                            .subscribe(&group, &member, &t, &opts, now)?;
                        self.group_topics.note(&group, t.name());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// `commit {group, partition, offset, consumer?, topic?}` or `commit {group, offsets:
    /// {"<partition>": offset}, consumer?, topic?}` → `commit_ok {}`. The offset is the next one to
    /// consume. Without `consumer` it is an admin commit. A consumer that does not own a partition
    /// is fenced (error 22).
    ///
    /// All or none: every partition is checked first — it exists, and a consumer owns it now (a
    /// commit by a member is also its heartbeat, as Kafka's is) — and only then is anything
    /// committed. Only a rebalance between that check and the last commit can still fence a
    /// later partition; that answer is 13 (indefinite), naming how many were committed.
    pub(crate) fn commit(
        &self,
        b: &Body<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let group = b.str(Field::Group)?.decode();
        let member = b.opt_str(Field::Consumer)?.map(|c| c.decode());
        let topic = opt_topic(b)?;
        let mut commits: Vec<(u32, u64)> = Vec::new();
        match (
            b.get(Field::Offsets),
            b.get(Field::Partition).or(b.get(Field::Offset)),
        ) {
            (Some(_), Some(single)) => {
                return Err(WireError::new(
                    crate::maelstrom::wire::Code::MalformedRequest,
                    format!(
                        "a `commit` takes either `partition` and `offset` or `offsets`, not both \
                         (`{}` and `offsets` came)",
                        single.name
                    ),
                ))
            }
            (Some(s), None) => {
                let bad = || {
                    FieldError::invalid(
                        s.name,
                        "an object of \"<partition>\": non-negative integer offset",
                    )
                };
                if s.value.kind() != crate::maelstrom::wire::Kind::Object {
                    return Err(bad().into());
                }
                for (k, v) in s.value.entries() {
                    let p = k.decode().parse::<u32>().map_err(|_| bad())?;
                    commits.push((p, v.as_u64().ok_or_else(bad)?));
                }
            }
            (None, _) => commits.push((b.u32(Field::Partition)?, b.u64(Field::Offset)?)),
        }
        let t = self.consumer_topic(topic.as_deref())?;
        for &(p, _) in &commits {
            t.partition(p)?;
        }
        if let Some(m) = member.as_deref() {
            let view = self.broker.groups().member_view(&group, m, self.now())?;
            let owns = |p: u32| {
                view.partitions
                    .iter()
                    .any(|(n, q)| *q == p && n == t.name())
            };
            if let Some(&(p, _)) = commits.iter().find(|&&(p, _)| !owns(p)) {
                return Err(Error::Fenced {
                    group: group.to_string(),
                    member: m.to_string(),
                    topic: t.name().to_string(),
                    partition: p,
                    group_epoch: view.group_epoch,
                }
                .into());
            }
        }
        for (i, &(p, o)) in commits.iter().enumerate() {
            if let Err(e) = self
                .broker
                .groups()
                .commit_topic(&group, member.as_deref(), &t, p, o)
            {
                if i == 0 {
                    return Err(e.into());
                }
                return Err(WireError::partial(format!(
                    "{i} of {} offsets were committed, then: {e}",
                    commits.len()
                )));
            }
        }
        if member.is_none() {
            self.group_topics.note(&group, t.name());
        }
        self.ok(to, out);
        self.done(to, out);
        Ok(())
    }

    /// `list_committed_offsets {group, topic?}` → `list_committed_offsets_ok {offsets:
    /// {"<partition>": offset}}`: the group's committed offsets (next to consume), partitions
    /// without a commit left out.
    pub(crate) fn group_committed(
        &self,
        b: &Body<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let group = b.str(Field::Group)?.decode();
        let topic = self.topic_or_default(b)?;
        self.ok(to, out);
        out.key("offsets").push(b'{');
        let mut first = true;
        for p in 0..topic.partition_count() {
            if let Some(o) = self.broker.groups().committed(&group, topic.name(), p) {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.push(b'"');
                out.uint(u64::from(p)).raw(b"\":").uint(o);
            }
        }
        out.push(b'}');
        self.done(to, out);
        Ok(())
    }

    /// `describe_group {group}` → `describe_group_ok {group, generation, assignor, members:
    /// [{consumer, partitions: [{topic, partition}], member_epoch, state, revoking: […], pending:
    /// […]}], partitions: [{topic, partition, owner, committed, log_end, lag}]}`; `generation` is
    /// the group epoch; `owner`, `committed` and `lag` are `null` when there is none.
    pub(crate) fn describe_group(
        &self,
        b: &Body<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let group = b.str(Field::Group)?.decode();
        let d = self.broker.groups().describe(&group, self.now())?;
        self.ok(to, out);
        out.key("group").string(&d.group);
        out.key("generation").uint(d.group_epoch);
        out.key("assignor").string(d.assignor.name());
        out.key("members").push(b'[');
        let parts = |out: &mut Vec<u8>, key: &str, parts: &[(String, u32)]| {
            out.key(key).push(b'[');
            for (j, (t, p)) in parts.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                out.raw(b"{\"topic\":").string(t);
                out.key("partition").uint(u64::from(*p)).push(b'}');
            }
            out.push(b']');
        };
        for (i, m) in d.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.raw(b"{\"consumer\":").string(&m.id);
            parts(out, "partitions", &m.view.partitions);
            out.key("member_epoch").uint(m.view.member_epoch);
            out.key("state").string(m.view.state.name());
            parts(out, "revoking", &m.view.revoking);
            parts(out, "pending", &m.view.pending);
            out.push(b'}');
        }
        out.push(b']');
        out.key("partitions").push(b'[');
        let opt = |out: &mut Vec<u8>, v: Option<u64>| match v {
            Some(v) => {
                out.uint(v);
            }
            None => out.extend_from_slice(b"null"),
        };
        for (i, row) in d.partitions.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.raw(b"{\"topic\":").string(&row.topic);
            out.key("partition").uint(u64::from(row.partition));
            out.key("owner");
            match &row.owner {
                Some(o) => {
                    out.string(o);
                }
                None => out.extend_from_slice(b"null"),
            }
            out.key("committed");
            opt(out, row.committed);
            out.key("log_end").uint(row.log_end);
            out.key("lag");
            opt(out, row.lag);
            out.push(b'}');
        }
        out.push(b']');
        self.done(to, out);
        Ok(())
    }

    /// `list_groups {}` → `list_groups_ok {groups: [group, …]}`, sorted.
    pub(crate) fn list_groups(&self, to: &ReplyTo<'_>, out: &mut Vec<u8>) -> Result<(), WireError> {
        let groups = self.broker.groups().list_groups();
        self.ok(to, out);
        out.key("groups").push(b'[');
        for (i, g) in groups.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.string(g);
        }
        out.push(b']');
        self.done(to, out);
        Ok(())
    }

    /// `create_topic {topic, partitions}` → `create_topic_ok {}`. Creating an existing topic with
    /// the same count is a no-op; with another count it is error 21.
    pub(crate) fn create_topic(
        &self,
        b: &Body<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let (topic, n) = create_topic_args(b)?;
        self.broker.topics().create(&topic, n)?;
        self.ok(to, out);
        self.done(to, out);
        Ok(())
    }

    /// `list_topics {}` → `list_topics_ok {topics: [{topic, partitions}, …]}`, sorted by name.
    pub(crate) fn list_topics(&self, to: &ReplyTo<'_>, out: &mut Vec<u8>) -> Result<(), WireError> {
        let topics = self.broker.topics().list();
        self.ok(to, out);
        out.key("topics").push(b'[');
        for (i, t) in topics.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.raw(b"{\"topic\":").string(t.name());
            out.key("partitions")
                .uint(u64::from(t.partition_count()))
                .push(b'}');
        }
        out.push(b']');
        self.done(to, out);
        Ok(())
    }

    /// `reset_offsets {group, topic?, to: "earliest"|"latest"|offset}` → `reset_offsets_ok {}`;
    /// only for a group with no live members (else error 22), as in Kafka.
    pub(crate) fn reset_offsets(
        &self,
        b: &Body<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let group = b.str(Field::Group)?.decode();
        let target = b.raw(Field::To)?;
        let bad =
            || FieldError::invalid("to", "\"earliest\", \"latest\" or a non-negative integer");
        let target = match (target.as_str(), target.as_u64()) {
            (Some(s), _) => match &*s.decode() {
                "earliest" => ResetTo::Earliest,
                "latest" => ResetTo::Latest,
                _ => return Err(bad().into()),
            },
            (None, Some(o)) => ResetTo::Offset(o),
            (None, None) => return Err(bad().into()),
        };
        let topic = match opt_topic(b)? {
            Some(_) => Some(self.topic_or_default(b)?),
            None => None,
        };
        self.broker
            .groups()
            .reset_offsets(&group, topic.as_deref(), target, self.now())?;
        self.ok(to, out);
        self.done(to, out);
        Ok(())
    }
}
