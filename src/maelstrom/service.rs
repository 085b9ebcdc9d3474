//! The dispatcher: one line in, its reply out. [`Node::handle`] decodes the line and its
//! [`Request`] once; in a cluster the router ([`super::cluster`]) may send it where it belongs,
//! else the handlers serve it here (`kafka_workload.rs`, `groups.rs`, and the cluster's own
//! node-to-node messages).

use super::node::{Node, ReplyTo, MAX_NODES};
use super::request::Request;
use crate::loom::lock;
use crate::maelstrom::wire::reply::{self, JsonOut};
use crate::maelstrom::wire::{decode, Body, Code, Field, LineError, Message, WireError};
use std::borrow::Cow;

impl Node {
    /// Handles one input line (without its newline), appending the reply, if any, to `out`.
    ///
    /// Never panics on any input: a line that is not a message is logged and skipped; a malformed
    /// request gets an error reply and changes nothing.
    pub fn handle(&self, line: &[u8], out: &mut Vec<u8>) {
        let mark = out.len();
        let served =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match decode(line) {
                Ok(msg) => {
                    super::guard::inject("handle");
                    self.handle_message(&msg, out)
                }
                Err(e) => {
                    skipped(line, &e);
                    self.refuse_line(line, &unreadable(&e), out);
                }
            }));
        if let Err(p) = served {
            // A bug, not bad input: keep serving the next line rather than lose the process.
            out.truncate(mark);
            tracing::error!(
                "a request panicked ({}); it got no reply",
                super::guard::message(&*p)
            );
        }
    }

    /// Answers a line that cannot be served whole with error 12 saying `why`, if its start names
    /// a sender and a `msg_id` (and it is not a reply); otherwise it only was logged.
    #[cold]
    #[inline(never)]
    pub(crate) fn refuse_line(&self, line: &[u8], why: &str, out: &mut Vec<u8>) {
        let h = crate::maelstrom::wire::head::head(line);
        let (Some(src), Some(msg_id), false) = (h.src, h.msg_id, h.reply) else {
            return;
        };
        let me = match (self.me.get(), h.dest) {
            (Some(me), _) => &**me,
            (None, Some(dest)) => dest.raw(),
            (None, None) => return,
        };
        let to = ReplyTo {
            me,
            to: src.raw(),
            ty: "error",
            msg_id: Some(msg_id),
        };
        self.error(&to, &WireError::new(Code::MalformedRequest, why), out);
    }

    /// Handles one decoded message.
    pub(crate) fn handle_message(&self, msg: &Message<'_>, out: &mut Vec<u8>) {
        self.handle_message_with(msg, out, true);
    }

    /// Handles one decoded message; `route`: a client request may be forwarded to its owner node
    /// (false for a request a peer forwarded here).
    pub(crate) fn handle_message_with(&self, msg: &Message<'_>, out: &mut Vec<u8>, route: bool) {
        let body = &msg.body;
        // A reply to a request of this node's own (node-to-node traffic): route it, never answer
        // it. A request a peer forwarded here is a client's, never a reply to this node.
        if let Some(r) = body.get(Field::InReplyTo) {
            if route {
                self.pending.complete(self, r.value.as_u64(), msg, out);
            }
            return;
        }
        let me = match (self.me.get(), msg.dest) {
            (Some(me), _) => &**me,
            (None, Some(dest)) => dest.raw(),
            (None, None) => {
                tracing::warn!(
                    src = msg.src.raw(),
                    "skipped a message with no dest before init"
                );
                return;
            }
        };
        let mut to = ReplyTo {
            me,
            to: msg.src.raw(),
            ty: "error",
            msg_id: None,
        };
        match body.opt_u64(Field::MsgId) {
            Ok(id) => to.msg_id = id,
            Err(e) => return self.error(&to, &e.into(), out),
        }
        if body.overflowed() {
            let e = WireError::new(
                Code::MalformedRequest,
                format!(
                    "a body may carry at most {} known fields",
                    crate::maelstrom::wire::request::MAX_FIELDS
                ),
            );
            return self.error(&to, &e, out);
        }
        let ty = match body.str(Field::Type) {
            Ok(t) => t,
            Err(e) => return self.error(&to, &e.into(), out),
        };
        to.ty = ty.raw();
        let mark = out.len();
        let ty: Cow<'_, str> = ty.decode();
        let Some(req) = Request::of(&ty, body) else {
            return self.error(&to, &WireError::not_supported(&ty), out);
        };
        if let Err(e) = req.check_fields(&ty, body) {
            return self.error(&to, &e, out);
        }
        if let Err(e) = self.dispatch(req, msg, &to, out, route) {
            out.truncate(mark);
            self.error(&to, &e, out);
        }
    }

    /// Serves request `req` here, or, in a cluster and when `route`, where it belongs.
    fn dispatch(
        &self,
        req: Request,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
        route: bool,
    ) -> Result<(), WireError> {
        if route {
            if let Some(c) = self.cluster() {
                if let Some(r) = self.route(c, req, msg, to, out) {
                    return r;
                }
            }
        }
        let b = &msg.body;
        match req {
            Request::Send => self.send(b, to, out),
            Request::GroupPoll => self.group_poll(msg, to, out),
            Request::Poll => self.poll(b, to, out),
            Request::CommitOffsets => self.commit_offsets(b, to, out),
            Request::GroupCommitted => self.group_committed(b, to, out),
            Request::ListCommittedOffsets => self.list_committed_offsets(b, to, out),
            Request::Init => self.init(b, to, out),
            Request::Echo => self.echo(b, to, out),
            Request::SendBatch => self.send_batch(b, to, out),
            Request::ListOffsets => self.list_offsets(b, to, out),
            Request::Subscribe => self.subscribe(msg, to, out),
            Request::Unsubscribe => self.unsubscribe(msg, to, out),
            Request::Commit => self.commit(b, to, out),
            Request::Heartbeat => self.heartbeat(msg, to, out),
            Request::DescribeGroup => self.describe_group(b, to, out),
            Request::ListGroups => self.list_groups(to, out),
            Request::CreateTopic => self.create_topic(b, to, out),
            Request::ListTopics => self.list_topics(to, out),
            Request::ResetOffsets => self.reset_offsets(b, to, out),
            Request::Fwd => self.on_fwd(msg, to, out, &|m, out| {
                self.handle_message_with(m, out, false)
            }),
            Request::Sync => self.on_sync(msg, to, out),
            Request::TopicMeta => self.on_topic_meta(msg, to, out),
        }
    }

    fn init(&self, b: &Body<'_>, to: &ReplyTo<'_>, out: &mut Vec<u8>) -> Result<(), WireError> {
        let id = b.str(Field::NodeId)?;
        let mut ids = Vec::new();
        if let Some(s) = b.get(Field::NodeIds) {
            let bad = || WireError::malformed(s.name, "an array of strings");
            if s.value.kind() != crate::maelstrom::wire::Kind::Array {
                return Err(bad());
            }
            for item in s.value.items() {
                if ids.len() == MAX_NODES {
                    return Err(WireError::malformed(s.name, "at most 1024 node ids"));
                }
                ids.push(Box::<str>::from(item.as_str().ok_or_else(bad)?.decode()));
            }
        }
        let _serial = lock(&self.init);
        let me = &**self.me.get_or_init(|| id.raw().into());
        if me != id.raw() {
            tracing::warn!(
                kept = me,
                asked = id.raw(),
                "a second init names another node id; keeping the first"
            );
        }
        let escaped: Vec<Box<str>> = ids
            .iter()
            .map(|i| {
                let mut e = Vec::new();
                reply::write_escaped(&mut e, i.as_bytes());
                String::from_utf8_lossy(&e[1..e.len() - 1]).into()
            })
            .collect();
        if self.node_ids.set(ids.into()).is_ok() {
            if let Some(c) = super::cluster::Cluster::new(me, &escaped) {
                let _ = self.cluster.set(c);
            }
        }
        let to = ReplyTo { me, ..*to };
        self.ok(&to, out);
        self.done(&to, out);
        Ok(())
    }

    fn echo(&self, b: &Body<'_>, to: &ReplyTo<'_>, out: &mut Vec<u8>) -> Result<(), WireError> {
        let v = b.value(Field::Echo)?;
        self.ok(to, out);
        out.key("echo").raw(&v.compact());
        self.done(to, out);
        Ok(())
    }
}

/// Why a line that is not a message was refused, for its error reply.
#[cold]
fn unreadable(e: &LineError) -> String {
    use crate::maelstrom::wire::scan::MAX_DEPTH;
    match e {
        LineError::Syntax(s) if s.what == "nesting too deep" => format!(
            "the message nests deeper than {MAX_DEPTH} levels, the node's limit for JSON values \
             (at byte {}); it was not read",
            s.at
        ),
        LineError::Syntax(s) => format!("the line is not JSON: {s}; it was not read"),
        LineError::NotUtf8 => "the line is not UTF-8; it was not read".into(),
        LineError::NoBody => "the message has no body object".into(),
        other => format!("the line is not a message: {other}"),
    }
}

/// Logs a skipped line with a bounded, printable excerpt.
#[cold]
#[inline(never)]
fn skipped(line: &[u8], e: &LineError) {
    const SHOW: usize = 120;
    let cut = &line[..line.len().min(SHOW)];
    let more = if line.len() > SHOW { "…" } else { "" };
    tracing::warn!(
        len = line.len(),
        "skipped an input line ({e}): {}{more}",
        String::from_utf8_lossy(cut).escape_debug()
    );
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::broker::Config;
    use crate::loom::StdArc as Arc;

    fn line(out: &[u8]) -> &str {
        std::str::from_utf8(out).unwrap()
    }

    #[test]
    fn a_reply_can_be_written_later_from_another_thread() {
        let node = Arc::new(Node::new(Config::default()));
        let msg = decode(br#"{"src":"c1","dest":"n1","body":{"type":"slow","msg_id":4}}"#).unwrap();
        let later = ReplyTo {
            me: "n1",
            to: msg.src.raw(),
            ty: "slow",
            msg_id: Some(4),
        }
        .detach();
        let n = node.clone();
        let out = std::thread::spawn(move || {
            let mut out = Vec::new();
            let to = later.borrow();
            n.ok(&to, &mut out);
            out.key("answer").uint(42);
            n.done(&to, &mut out);
            out
        })
        .join()
        .unwrap();
        assert_eq!(
            line(&out),
            "{\"src\":\"n1\",\"dest\":\"c1\",\"body\":{\"type\":\"slow_ok\",\"answer\":42,\"in_reply_to\":4,\"msg_id\":0}}\n"
        );
    }

    #[test]
    fn replies_to_the_nodes_own_requests_are_routed_by_in_reply_to() {
        let node = Node::new(Config::default());
        let mut out = Vec::new();
        node.handle(
            br#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1","n2"]}}"#,
            &mut out,
        );
        assert_eq!(node.node_ids(), [Box::from("n1"), Box::from("n2")]);
        out.clear();
        // A client request the node answers only when n2 has answered the node's own request.
        let client = ReplyTo {
            me: "n1",
            to: "c9",
            ty: "send",
            msg_id: Some(7),
        }
        .detach();
        let id = node.request(
            "n2",
            "forward",
            |out| {
                out.key("key").string("k");
            },
            Box::new(move |_node, reply, out| {
                let offset = reply.body.u64(Field::Offset).unwrap();
                let to = client.borrow();
                reply::begin(out, to.me, to.to, to.ty, "_ok");
                out.key("offset").uint(offset);
                reply::end(out, to.msg_id, 100);
            }),
            &mut out,
        );
        assert_eq!(
            line(&out),
            format!("{{\"src\":\"n1\",\"dest\":\"n2\",\"body\":{{\"type\":\"forward\",\"key\":\"k\",\"msg_id\":{id}}}}}\n")
        );
        assert_eq!(node.pending.count(), 1);
        out.clear();
        // A reply that matches nothing is dropped; the matching one completes the client's request.
        node.handle(br#"{"src":"n2","dest":"n1","body":{"type":"forward_ok","in_reply_to":999,"offset":1}}"#, &mut out);
        assert!(out.is_empty());
        let reply = format!(
            r#"{{"src":"n2","dest":"n1","body":{{"type":"forward_ok","in_reply_to":{id},"offset":5}}}}"#
        );
        node.handle(reply.as_bytes(), &mut out);
        assert_eq!(
            line(&out),
            "{\"src\":\"n1\",\"dest\":\"c9\",\"body\":{\"type\":\"send_ok\",\"offset\":5,\"in_reply_to\":7,\"msg_id\":100}}\n"
        );
        assert_eq!(node.pending.count(), 0);
        // A duplicate of it finds nothing.
        out.clear();
        node.handle(reply.as_bytes(), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn non_string_keys_are_kept_as_compact_json() {
        let node = Node::new(Config::default());
        let mut out = Vec::new();
        node.handle(
            br#"{"src":"c1","dest":"n1","body":{"type":"send","msg_id":1,"key":[1, 2],"msg":0}}"#,
            &mut out,
        );
        node.handle(
            br#"{"src":"c1","dest":"n1","body":{"type":"poll","msg_id":2,"group":"g","max":5}}"#,
            &mut out,
        );
        let text = line(&out);
        assert!(text.contains(r#""key":[1,2],"msg":0"#), "{text}");
    }
}
