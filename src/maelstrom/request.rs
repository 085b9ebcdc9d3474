//! Every request the node serves, decoded once from its `type`.
//!
//! [`Request::of`] is the one place that reads a request's type: the node's dispatcher serves the
//! request it names, and in a cluster the router ([`super::cluster`]) decides where it runs from the
//! same value. A request's fields stay in its [`Body`], filed by one pass over the line; each handler
//! reads the ones it needs, so a missing or ill-typed field is reported by name (error 12).
//!
//! The README's RPC reference lists each request's fields and reply.

use super::wire::{Body, Code, Field, WireError};

/// A request, by what it asks for. Maelstrom's kafka workload and the group protocol share the
/// types `poll` and `list_committed_offsets`; a `group` field makes them the group's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// `init {node_id, node_ids}`.
    Init,
    /// `echo {echo}`.
    Echo,
    /// `send {key?, msg, topic?}`.
    Send,
    /// `send_batch {msgs, topic?}`.
    SendBatch,
    /// Maelstrom's `poll {offsets}`.
    Poll,
    /// `commit_offsets {offsets}`.
    CommitOffsets,
    /// Maelstrom's `list_committed_offsets {keys}`.
    ListCommittedOffsets,
    /// `list_offsets {topic?}`.
    ListOffsets,
    /// `subscribe {group, …}`.
    Subscribe,
    /// `unsubscribe {group, consumer?}`, or its alias `leave_group`.
    Unsubscribe,
    /// `poll {group, …}`.
    GroupPoll,
    /// `commit {group, …}`.
    Commit,
    /// `heartbeat {group, consumer?}`.
    Heartbeat,
    /// `list_committed_offsets {group, topic?}`.
    GroupCommitted,
    /// `describe_group {group}`.
    DescribeGroup,
    /// `list_groups {}`.
    ListGroups,
    /// `reset_offsets {group, topic?, to}`.
    ResetOffsets,
    /// `create_topic {topic, partitions}`.
    CreateTopic,
    /// `list_topics {}`.
    ListTopics,
    /// Node to node: a batch of forwarded client requests.
    Fwd,
    /// Node to node: replicated records and commits.
    Sync,
    /// Node to node: a topic's partition count, asked of its home.
    TopicMeta,
}

impl Request {
    /// The request of type `ty` (decoded) with body `b`; `None` for a type the node does not serve.
    pub(crate) fn of(ty: &str, b: &Body<'_>) -> Option<Request> {
        let grouped = || b.get(Field::Group).is_some();
        Some(match ty {
            "send" => Request::Send,
            "poll" if grouped() => Request::GroupPoll,
            "poll" => Request::Poll,
            "commit_offsets" => Request::CommitOffsets,
            "list_committed_offsets" if grouped() => Request::GroupCommitted,
            "list_committed_offsets" => Request::ListCommittedOffsets,
            "init" => Request::Init,
            "echo" => Request::Echo,
            "send_batch" => Request::SendBatch,
            "list_offsets" => Request::ListOffsets,
            "subscribe" => Request::Subscribe,
            "unsubscribe" | "leave_group" => Request::Unsubscribe,
            "commit" => Request::Commit,
            "heartbeat" => Request::Heartbeat,
            "describe_group" => Request::DescribeGroup,
            "list_groups" => Request::ListGroups,
            "create_topic" => Request::CreateTopic,
            "list_topics" => Request::ListTopics,
            "reset_offsets" => Request::ResetOffsets,
            "fwd" => Request::Fwd,
            "sync" => Request::Sync,
            "topic_meta" => Request::TopicMeta,
            _ => return None,
        })
    }

    /// The body fields the request reads besides `type` and `msg_id`. Any other field it
    /// carries would be silently ignored, so [`Request::check_fields`] refuses it instead.
    pub(crate) fn fields(self) -> &'static [Field] {
        use Field as F;
        const JOIN: [Field; 3] = [F::SessionTimeoutMs, F::Assignor, F::AutoCommit];
        match self {
            Request::Init => &[F::NodeId, F::NodeIds],
            Request::Echo => &[F::Echo],
            Request::Send => &[F::Key, F::Msg, F::Topic],
            Request::SendBatch => &[F::Msgs, F::Topic],
            Request::Poll | Request::CommitOffsets => &[F::Offsets, F::Topic],
            Request::ListCommittedOffsets => &[F::Keys, F::Topic],
            Request::ListOffsets => &[F::Topic],
            Request::Subscribe => &[F::Group, F::Consumer, F::Topic, JOIN[0], JOIN[1], JOIN[2]],
            Request::Unsubscribe => &[F::Group, F::Consumer],
            Request::DescribeGroup => &[F::Group],
            Request::GroupPoll => &[
                F::Group,
                F::Consumer,
                F::Max,
                F::Topic,
                JOIN[0],
                JOIN[1],
                JOIN[2],
            ],
            Request::Commit => &[
                F::Group,
                F::Consumer,
                F::Topic,
                F::Partition,
                F::Offset,
                F::Offsets,
            ],
            Request::Heartbeat => &[F::Group, F::Consumer, F::Topic],
            Request::GroupCommitted => &[F::Group, F::Topic],
            Request::ListGroups | Request::ListTopics => &[],
            Request::ResetOffsets => &[F::Group, F::Topic, F::To],
            Request::CreateTopic => &[F::Topic, F::Partitions],
            Request::Fwd => &[F::Seq, F::Msgs],
            Request::Sync => &[F::Records, F::Commits, F::Version, F::Topics],
            Request::TopicMeta => &[F::Topic, F::Create],
        }
    }

    /// Error 12 unless every field of `b` is one this request reads: a field that would be
    /// silently ignored (a known field of another request, a misspelling) is refused, with a hint
    /// where a likely mix-up has one. A `null` field counts as absent.
    pub(crate) fn check_fields(self, ty: &str, b: &Body<'_>) -> Result<(), WireError> {
        let mut allowed = bit(Field::Type) | bit(Field::MsgId);
        for &f in self.fields() {
            allowed |= bit(f);
        }
        let extra = b.present() & !allowed;
        if extra == 0 {
            return match b.unknown_key() {
                None => Ok(()),
                Some(key) => Err(self.unknown(ty, key)),
            };
        }
        let f = FIELDS_BY_BIT[extra.trailing_zeros() as usize];
        Err(self.misplaced(ty, b.name_of(f), f))
    }

    /// The refusal of known field `f` (spelled `name`) in this request.
    #[cold]
    #[inline(never)]
    fn misplaced(self, ty: &str, name: &str, f: Field) -> WireError {
        let text = match (self, f) {
            (Request::GroupPoll, Field::Offsets) => format!(
                "a `poll` is either Maelstrom's (`offsets`: per key, from where) or a group's \
                 (`{}`: the group's positions decide what comes back), not both",
                Field::Group.name()
            ),
            (Request::GroupCommitted, Field::Keys) => "a `list_committed_offsets` is either \
                 Maelstrom's (`keys`: per-key commits) or a group's (`group`: per-partition \
                 commits), not both"
                .to_string(),
            (Request::CommitOffsets, Field::Group | Field::Consumer) => format!(
                "`commit_offsets` is Maelstrom's per-key commit and takes no `{name}`; a group \
                 commits with `commit {{group, consumer?, topic?, offsets: {{\"<partition>\": \
                 next offset}}}}`"
            ),
            (Request::Unsubscribe, Field::Topic) => "`unsubscribe` leaves the group with all its \
                 topics, as Kafka's unsubscribe() does, so it takes no `topic`; to drop one topic, \
                 unsubscribe and subscribe again to the topics to keep"
                .to_string(),
            (_, Field::Topics) if self.fields().contains(&Field::Topic) => format!(
                "`{ty}` names one topic, in `topic`; a member of several topics subscribes to \
                 each with its own `subscribe`"
            ),
            (Request::DescribeGroup, Field::Topic) => {
                "`describe_group` shows every topic of the group and takes no `topic`".to_string()
            }
            _ => format!(
                "field `{name}` is not one `{ty}` takes; it takes {}",
                self.takes()
            ),
        };
        WireError::new(Code::MalformedRequest, text)
    }

    /// The refusal of a body key that names no field.
    #[cold]
    #[inline(never)]
    fn unknown(self, ty: &str, key: &str) -> WireError {
        let hint = match hint_for(key) {
            Some(f) => format!(" (did you mean `{}`?)", f.name()),
            None => String::new(),
        };
        WireError::new(
            Code::MalformedRequest,
            format!("unknown field `{key}`{hint}: `{ty}` takes {}", self.takes()),
        )
    }

    /// The fields the request takes, for error texts: "`a`, `b` (or `c`)".
    fn takes(self) -> String {
        let f = self.fields();
        if f.is_empty() {
            return "no fields besides `type` and `msg_id`".into();
        }
        let names: Vec<String> = f
            .iter()
            .map(|f| match f.aliases() {
                "" => format!("`{}`", f.name()),
                a => format!("`{}` (or {a})", f.name()),
            })
            .collect();
        names.join(", ")
    }

    /// Whether the request belongs to a group, and so runs at the group's coordinator.
    pub(crate) fn is_group(self) -> bool {
        matches!(
            self,
            Request::Subscribe
                | Request::Unsubscribe
                | Request::GroupPoll
                | Request::Commit
                | Request::Heartbeat
                | Request::GroupCommitted
                | Request::DescribeGroup
                | Request::ResetOffsets
        )
    }

    /// Whether the request only reads: given up unanswered, it certainly did not happen.
    pub(crate) fn reads_only(self) -> bool {
        matches!(
            self,
            Request::DescribeGroup
                | Request::GroupCommitted
                | Request::ListGroups
                | Request::ListOffsets
                | Request::ListTopics
                | Request::ListCommittedOffsets
                | Request::Poll
                | Request::Echo
        )
    }
}

/// `f`'s bit in [`Body::present`].
const fn bit(f: Field) -> u64 {
    1 << (f as u8)
}

const _: () = assert!(
    crate::maelstrom::wire::request::FIELD_COUNT <= 64,
    "Body::present keeps one bit per field"
);

/// Every field by its number (the bit of [`Body::present`]).
const FIELDS_BY_BIT: [Field; crate::maelstrom::wire::request::FIELD_COUNT] = {
    let all = crate::maelstrom::wire::request::ALL_FIELDS;
    let mut t = [Field::Type; crate::maelstrom::wire::request::FIELD_COUNT];
    let mut i = 0;
    while i < all.len() {
        t[all[i] as usize] = all[i];
        i += 1;
    }
    t
};

/// The field an unknown key most likely meant: the same letters once case, `_`, `.` and `-` are
/// ignored (`GroupID`, `group.id`), or a Kafka client setting's name (`max.poll.records`).
fn hint_for(key: &str) -> Option<Field> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '.' | '-'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let k = norm(key);
    let kafka = [
        ("maxpollrecords", Field::Max),
        ("enableautocommit", Field::AutoCommit),
        ("partitionassignmentstrategy", Field::Assignor),
        ("groupinstanceid", Field::Consumer),
        ("clientid", Field::Consumer),
        ("topicname", Field::Topic),
        ("numpartitions", Field::Partitions),
    ];
    if let Some(&(_, f)) = kafka.iter().find(|(n, _)| *n == k) {
        return Some(f);
    }
    crate::maelstrom::wire::request::ALL_FIELDS
        .iter()
        .copied()
        .find(|f| f.spellings().iter().any(|s| norm(s) == k))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::maelstrom::wire::decode;

    fn of(body: &str) -> Option<Request> {
        let line = format!(r#"{{"src":"c1","body":{body}}}"#);
        let m = decode(line.as_bytes()).unwrap();
        let ty = m.body.str(Field::Type).unwrap().decode();
        Request::of(&ty, &m.body)
    }

    fn check(body: &str) -> Result<(), String> {
        let line = format!(r#"{{"src":"c1","body":{body}}}"#);
        let m = decode(line.as_bytes()).unwrap();
        let ty = m.body.str(Field::Type).unwrap().decode();
        let req = Request::of(&ty, &m.body).unwrap();
        req.check_fields(&ty, &m.body).map_err(|e| {
            assert_eq!(e.code, Code::MalformedRequest);
            e.text
        })
    }

    #[test]
    fn fields_a_request_does_not_read_are_refused() {
        for ok in [
            r#"{"type":"send","msg_id":1,"key":"k","msg":1}"#,
            r#"{"type":"send","key":"k","msg":1,"topic":"t"}"#,
            r#"{"type":"send","key":"k","msg":1,"group":null}"#,
            r#"{"type":"poll","offsets":{}}"#,
            r#"{"type":"init","node_id":"n1","node_ids":["n1"]}"#,
            r#"{"type":"poll","groupId":"g","maxMessages":3}"#,
            r#"{"type":"list_groups"}"#,
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        let e = check(r#"{"type":"send","key":"k","msg":1,"group":"g"}"#).unwrap_err();
        assert!(
            e.contains("field `group` is not one `send` takes; it takes `key`"),
            "{e}"
        );
        let e = check(r#"{"type":"list_topics","partitions":1}"#).unwrap_err();
        assert!(e.contains("no fields besides"), "{e}");
        let e = check(r#"{"type":"send","key":"k","msg":1,"grp":1}"#).unwrap_err();
        assert!(e.starts_with("unknown field `grp`: `send` takes"), "{e}");
        let e = check(r#"{"type":"poll","GroupID":"g"}"#).unwrap_err();
        assert!(e.contains("did you mean `group`?"), "{e}");
        let e = check(r#"{"type":"poll","group":"g","max.poll.records":1}"#).unwrap_err();
        assert!(e.contains("did you mean `max_messages`?"), "{e}");
        // Every field a request takes has a bit; a field no request takes is refused by all.
        for f in crate::maelstrom::wire::request::ALL_FIELDS {
            assert_eq!(FIELDS_BY_BIT[f as usize], f);
        }
    }

    #[test]
    fn a_group_field_makes_the_shared_types_the_groups() {
        assert_eq!(of(r#"{"type":"poll","offsets":{}}"#), Some(Request::Poll));
        assert_eq!(
            of(r#"{"type":"poll","group":"g"}"#),
            Some(Request::GroupPoll)
        );
        assert_eq!(
            of(r#"{"type":"poll","group_id":"g"}"#),
            Some(Request::GroupPoll)
        );
        assert_eq!(
            of(r#"{"type":"list_committed_offsets","keys":[]}"#),
            Some(Request::ListCommittedOffsets)
        );
        assert_eq!(
            of(r#"{"type":"list_committed_offsets","group":"g"}"#),
            Some(Request::GroupCommitted)
        );
        assert_eq!(
            of(r#"{"type":"leave_group","group":"g"}"#),
            Some(Request::Unsubscribe)
        );
        assert_eq!(of(r#"{"type":"nope"}"#), None);
        assert!(Request::GroupPoll.is_group() && !Request::Poll.is_group());
        assert!(Request::DescribeGroup.reads_only() && !Request::GroupPoll.reads_only());
    }
}
