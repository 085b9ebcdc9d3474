//! Every request the node serves, decoded once from its `type`.
//!
//! [`Request::of`] is the one place that reads a request's type: the node's dispatcher serves the
//! request it names, and in a cluster the router ([`super::cluster`]) decides where it runs from the
//! same value. A request's fields stay in its [`Body`], filed by one pass over the line; each handler
//! reads the ones it needs, so a missing or ill-typed field is reported by name (error 12).
//!
//! The README's RPC reference lists each request's fields and reply.

use super::wire::{Body, Field};

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
