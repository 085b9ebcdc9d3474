//! [`Node`]: one line in, its reply out. Shared by every thread of the node; no I/O of its own.

use super::output::Output;
use super::pending::Pending;
use crate::broker::{Broker, Config};
use crate::clock::{Millis, MonotonicClock};
use crate::loom::{lock, AtomicU64, Mutex, OnceLock, Ordering, StdArc as Arc};
use crate::wire::reply::{self, JsonOut};
use crate::wire::{decode, Body, Code, Field, LineError, Message, WireError};
use crossbeam_utils::CachePadded;
use std::borrow::Cow;

/// The kafka `poll`'s per-key batch: at most this many records of one key per reply.
///
/// Maelstrom writes at most `--max-writes-per-key` (default 16) values to a key before it moves on
/// to a fresh key, so 32 returns the whole history of a key in one poll — a reader that starts over
/// (after a crash or an `assign`) catches up at once — while a reply stays bounded (about 10 active
/// keys × 32 pairs ≈ 5 KB) and a poll from an old offset costs a bounded amount of CPU.
pub const POLL_KEY_MAX: usize = 32;

/// The group `poll`'s default `max_messages` (Kafka's `max.poll.records` is 500; the issue's is 10).
pub const GROUP_POLL_DEFAULT: usize = 10;

/// The largest `max_messages` honoured; larger values are clamped (a bound on one reply's size).
pub const GROUP_POLL_MAX: usize = 10_000;

/// The most partitions `create_topic` (and `--partitions`) accepts: a bound on memory per request.
pub const MAX_PARTITIONS: u32 = 65_536;

/// The most node ids `init` accepts: a bound on the cluster's per-peer state.
pub const MAX_NODES: usize = 1024;

/// Where a reply goes: the fields of the request that the reply echoes, borrowed from the line.
#[derive(Debug, Clone, Copy)]
pub struct ReplyTo<'a> {
    /// This node's id, escaped (the reply's `src`).
    pub me: &'a str,
    /// The requester, escaped (the reply's `dest`).
    pub to: &'a str,
    /// The request's type, escaped; the reply's type is this plus `_ok`.
    pub ty: &'a str,
    /// The request's `msg_id`.
    pub msg_id: Option<u64>,
}

impl ReplyTo<'_> {
    /// An owned copy, for a reply written later, from any thread.
    pub fn detach(&self) -> OwnedReplyTo {
        OwnedReplyTo {
            me: self.me.into(),
            to: self.to.into(),
            ty: self.ty.into(),
            msg_id: self.msg_id,
        }
    }
}

/// A [`ReplyTo`] that owns its strings: a deferred reply (answered later, from another thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedReplyTo {
    me: Box<str>,
    to: Box<str>,
    ty: Box<str>,
    msg_id: Option<u64>,
}

impl OwnedReplyTo {
    /// The borrowed form, to write the reply with [`Node::ok`] and [`Node::done`].
    pub fn borrow(&self) -> ReplyTo<'_> {
        ReplyTo {
            me: &self.me,
            to: &self.to,
            ty: &self.ty,
            msg_id: self.msg_id,
        }
    }
}

/// One kgroups node: the engine plus the node's identity and message counter.
///
/// [`Node::handle`] turns one input line into zero or more output lines appended to a buffer; the
/// threads of [`super::run`] call it concurrently.
pub struct Node {
    pub(crate) broker: Broker,
    /// This node's id in its escaped wire form, set by `init`.
    me: OnceLock<Box<str>>,
    /// All node ids from `init` (decoded), for the cluster.
    node_ids: OnceLock<Box<[Box<str>]>>,
    /// The next `msg_id` this node sends: numbered from 0.
    next_msg_id: CachePadded<AtomicU64>,
    clock: MonotonicClock,
    pub(crate) pending: Pending,
    /// Serializes `init` (rare) so that its reply and the id it sets agree.
    init: Mutex<()>,
    /// The output of the [`super::run`] serving this node, for replies written later from any
    /// thread (a timer, a reply from another node).
    output: OnceLock<Arc<Output>>,
    /// Set by an `init` that names more than one node.
    pub(crate) cluster: OnceLock<super::cluster::Cluster>,
}

impl Node {
    /// A node serving a fresh broker.
    pub fn new(config: Config) -> Self {
        Node {
            broker: Broker::new(config),
            me: OnceLock::new(),
            node_ids: OnceLock::new(),
            next_msg_id: CachePadded::new(AtomicU64::new(0)),
            clock: MonotonicClock::new(),
            pending: Pending::default(),
            init: Mutex::new(()),
            output: OnceLock::new(),
            cluster: OnceLock::new(),
        }
    }

    /// The engine.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The node's clock, in milliseconds.
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// This node's id (escaped wire form), once `init` has set it.
    pub fn id(&self) -> Option<&str> {
        self.me.get().map(|s| &**s)
    }

    /// The node ids `init` named, in order.
    pub fn node_ids(&self) -> &[Box<str>] {
        self.node_ids.get().map_or(&[], |v| &**v)
    }

    /// The output of the [`super::run`] serving this node (a node serves one run): submit whole
    /// lines to it from any thread, e.g. a deferred reply.
    pub fn output(&self) -> Option<&Arc<Output>> {
        self.output.get()
    }

    pub(crate) fn set_output(&self, output: &Arc<Output>) {
        if self.output.set(output.clone()).is_err() {
            tracing::warn!(
                "this node already served a run; deferred replies go to the first output"
            );
        }
    }

    /// Takes the next `msg_id`.
    #[inline]
    pub fn next_msg_id(&self) -> u64 {
        // Relaxed: the counter only has to hand out unique numbers; the value orders nothing else.
        self.next_msg_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts a reply: envelope and `"type":"<request type>_ok"`.
    #[inline]
    pub fn ok(&self, to: &ReplyTo<'_>, out: &mut Vec<u8>) {
        reply::begin(out, to.me, to.to, to.ty, "_ok");
    }

    /// Ends a reply started with [`Node::ok`]: `in_reply_to`, a fresh `msg_id`, newline.
    #[inline]
    pub fn done(&self, to: &ReplyTo<'_>, out: &mut Vec<u8>) {
        reply::end(out, to.msg_id, self.next_msg_id());
    }

    /// Writes a whole error reply.
    #[cold]
    pub fn error(&self, to: &ReplyTo<'_>, e: &WireError, out: &mut Vec<u8>) {
        tracing::debug!(
            dest = to.to,
            ty = to.ty,
            code = e.code.code(),
            "error reply: {}",
            e.text
        );
        reply::error(
            out,
            to.me,
            to.to,
            to.msg_id,
            self.next_msg_id(),
            e.code.code(),
            &e.text,
        );
    }

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
                Err(e) => skipped(line, &e),
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

    /// Handles one decoded message.
    pub fn handle_message(&self, msg: &Message<'_>, out: &mut Vec<u8>) {
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
                    crate::wire::request::MAX_FIELDS
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
        if let Err(e) = self.dispatch(&ty, msg, &to, out, route) {
            out.truncate(mark);
            self.error(&to, &e, out);
        }
    }

    fn dispatch(
        &self,
        ty: &str,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
        route: bool,
    ) -> Result<(), WireError> {
        if route {
            if let Some(c) = self.cluster() {
                if let Some(r) = self.route(c, ty, msg, to, out) {
                    return r;
                }
            }
        }
        let b = &msg.body;
        let grouped = b.get(Field::Group).is_some();
        match ty {
            "send" => self.send(b, to, out),
            "poll" if grouped => self.group_poll(msg, to, out),
            "poll" => self.poll(b, to, out),
            "commit_offsets" => self.commit_offsets(b, to, out),
            "list_committed_offsets" if grouped => self.group_committed(b, to, out),
            "list_committed_offsets" => self.list_committed_offsets(b, to, out),
            "init" => self.init(b, to, out),
            "echo" => self.echo(b, to, out),
            "send_batch" => self.send_batch(b, to, out),
            "list_offsets" => self.list_offsets(b, to, out),
            "subscribe" => self.subscribe(msg, to, out),
            "unsubscribe" | "leave_group" => self.unsubscribe(msg, to, out),
            "commit" => self.commit(b, to, out),
            "heartbeat" => self.heartbeat(msg, to, out),
            "describe_group" => self.describe_group(b, to, out),
            "list_groups" => self.list_groups(to, out),
            "create_topic" => self.create_topic(b, to, out),
            "list_topics" => self.list_topics(to, out),
            "reset_offsets" => self.reset_offsets(b, to, out),
            "fwd" => self.on_fwd(msg, to, out),
            "sync" => self.on_sync(msg, to, out),
            "topic_meta" => self.on_topic_meta(msg, to, out),
            _ => Err(WireError::not_supported(ty)),
        }
    }

    fn init(&self, b: &Body<'_>, to: &ReplyTo<'_>, out: &mut Vec<u8>) -> Result<(), WireError> {
        let id = b.str(Field::NodeId)?;
        let mut ids = Vec::new();
        if let Some(s) = b.get(Field::NodeIds) {
            let bad = || WireError::malformed(s.name, "an array of strings");
            if s.value.kind() != crate::wire::Kind::Array {
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
        let v = b.raw(Field::Echo)?;
        self.ok(to, out);
        out.key("echo").raw(&v.compact());
        self.done(to, out);
        Ok(())
    }

    /// Writes a request of this node's own to `dest` (escaped): `{"type":ty,<payload>,"msg_id":N}`;
    /// `on_reply` runs with the reply when it comes back. Returns the request's `msg_id`.
    pub fn request(
        &self,
        dest: &str,
        ty: &str,
        payload: impl FnOnce(&mut Vec<u8>),
        on_reply: super::pending::OnReply,
        out: &mut Vec<u8>,
    ) -> u64 {
        let id = self.next_msg_id();
        self.pending
            .insert(id, &crate::wire::scan::unescape(dest), on_reply);
        let me = self.id().unwrap_or("");
        reply::begin(out, me, dest, ty, "");
        payload(out);
        reply::end(out, None, id);
        id
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

/// A key as the engine wants it: a string key's UTF-8, any other JSON key's compact text.
pub(crate) fn key_bytes<'a>(v: crate::wire::Raw<'a>) -> (crate::partition::KeyKind, Cow<'a, [u8]>) {
    use crate::partition::KeyKind;
    match v.as_str() {
        Some(s) => (
            KeyKind::Str,
            match s.decode() {
                Cow::Borrowed(b) => Cow::Borrowed(b.as_bytes()),
                Cow::Owned(o) => Cow::Owned(o.into_bytes()),
            },
        ),
        None => (KeyKind::Json, v.compact()),
    }
}

/// Writes a key stored by the engine back as JSON: a string key as a string, another key raw.
#[inline]
pub(crate) fn write_key(out: &mut Vec<u8>, key: Option<crate::partition::Key<'_>>) {
    use crate::partition::KeyKind;
    match key {
        None => out.extend_from_slice(b"null"),
        Some(k) if k.kind == KeyKind::Str => reply::write_escaped(out, k.bytes),
        Some(k) => out.extend_from_slice(k.bytes),
    }
}

/// Maps an absent optional field to the engine's default, as a `Cow`.
pub(crate) fn opt_topic<'a>(b: &Body<'a>) -> Result<Option<Cow<'a, str>>, WireError> {
    Ok(b.opt_str(Field::Topic)?.map(|s| s.decode()))
}

impl WireError {
    /// Error 13: the operation partly happened (indefinite).
    #[cold]
    pub(crate) fn partial(text: String) -> Self {
        WireError::new(Code::Crash, text)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

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
