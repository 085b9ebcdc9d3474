//! [`Node`]: one line in, its reply out. Shared by every thread of the node; no I/O of its own.

use super::output::Output;
use super::pending::Pending;
use crate::broker::{Broker, Config};
use crate::clock::{Millis, MonotonicClock};
use crate::loom::{AtomicU64, Mutex, OnceLock, Ordering, StdArc as Arc};
use crate::maelstrom::wire::reply;
use crate::maelstrom::wire::{Body, Code, Field, WireError};
use crossbeam_utils::CachePadded;
use std::borrow::Cow;

/// The kafka `poll`'s per-key batch: at most this many records of one key per reply.
///
/// Maelstrom writes at most `--max-writes-per-key` (default 16) values to a key before it moves on
/// to a fresh key, so 32 returns the whole history of a key in one poll — a reader that starts over
/// (after a crash or an `assign`) catches up at once — while a reply stays bounded (about 10 active
/// keys × 32 pairs ≈ 5 KB) and a poll from an old offset costs a bounded amount of CPU.
pub const POLL_KEY_MAX: usize = 32;

/// The group `poll`'s default `max_messages` (Kafka's `max.poll.records` is 500; the is 10).
pub const GROUP_POLL_DEFAULT: usize = 10;

/// The largest `max_messages` honoured; larger values are clamped (a bound on one reply's size).
pub const GROUP_POLL_MAX: usize = 10_000;

/// The most partitions `create_topic` (and `--partitions`) accepts: a bound on memory per request.
pub const MAX_PARTITIONS: u32 = 65_536;

/// What a partition count must be, for error texts: from 1 to [`MAX_PARTITIONS`].
pub const PARTITIONS_RANGE: &str = "an integer from 1 to 65536";
const _: () = assert!(
    MAX_PARTITIONS == 65_536,
    "PARTITIONS_RANGE names MAX_PARTITIONS"
);

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
    pub(super) me: OnceLock<Box<str>>,
    /// All node ids from `init` (decoded), for the cluster.
    pub(super) node_ids: OnceLock<Box<[Box<str>]>>,
    /// The next `msg_id` this node sends: numbered from 0.
    next_msg_id: CachePadded<AtomicU64>,
    clock: MonotonicClock,
    pub(crate) pending: Pending,
    /// Serializes `init` (rare) so that its reply and the id it sets agree.
    pub(super) init: Mutex<()>,
    /// The output of the [`super::run`] serving this node, for replies written later from any
    /// thread (a timer, a reply from another node).
    output: OnceLock<Arc<Output>>,
    /// Set by an `init` that names more than one node.
    pub(crate) cluster: OnceLock<super::cluster::Cluster>,
    /// Which groups have several topics (the shape of `partitions` in their replies).
    pub(crate) group_topics: super::group_topics::GroupTopics,
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
            group_topics: Default::default(),
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
    pub(crate) fn output(&self) -> Option<&Arc<Output>> {
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
    pub(crate) fn next_msg_id(&self) -> u64 {
        // Relaxed: the counter only has to hand out unique numbers; the value orders nothing else.
        self.next_msg_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Starts a reply: envelope and `"type":"<request type>_ok"`.
    #[inline]
    pub(crate) fn ok(&self, to: &ReplyTo<'_>, out: &mut Vec<u8>) {
        reply::begin(out, to.me, to.to, to.ty, "_ok");
    }

    /// Ends a reply started with [`Node::ok`]: `in_reply_to`, a fresh `msg_id`, newline.
    #[inline]
    pub(crate) fn done(&self, to: &ReplyTo<'_>, out: &mut Vec<u8>) {
        reply::end(out, to.msg_id, self.next_msg_id());
    }

    /// Writes a whole error reply.
    #[cold]
    pub(crate) fn error(&self, to: &ReplyTo<'_>, e: &WireError, out: &mut Vec<u8>) {
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

    /// Writes a request of this node's own to `dest` (escaped): `{"type":ty,<payload>,"msg_id":N}`;
    /// `on_reply` runs with the reply when it comes back. Returns the request's `msg_id`.
    pub(crate) fn request(
        &self,
        dest: &str,
        ty: &str,
        payload: impl FnOnce(&mut Vec<u8>),
        on_reply: super::pending::OnReply,
        out: &mut Vec<u8>,
    ) -> u64 {
        let id = self.next_msg_id();
        self.pending
            .insert(id, &crate::maelstrom::wire::scan::unescape(dest), on_reply);
        let me = self.id().unwrap_or("");
        reply::begin(out, me, dest, ty, "");
        payload(out);
        reply::end(out, None, id);
        id
    }
}

/// A key as the engine wants it: a string key's UTF-8, any other JSON key's compact text.
pub(crate) fn key_bytes<'a>(
    v: crate::maelstrom::wire::Raw<'a>,
) -> (crate::partition::KeyKind, Cow<'a, [u8]>) {
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

/// Writes a key stored by the engine back as JSON: a string key as a string, a JSON key raw, and
/// a Kafka record's key (opaque bytes) as a string of its UTF-8 (invalid sequences replaced by
/// U+FFFD).
#[inline]
pub(crate) fn write_key(out: &mut Vec<u8>, key: Option<crate::partition::Key<'_>>) {
    use crate::partition::KeyKind;
    match key {
        None => out.extend_from_slice(b"null"),
        Some(k) if k.kind == KeyKind::Str => reply::write_escaped(out, k.bytes),
        Some(k) if k.kind == KeyKind::Json => out.extend_from_slice(k.bytes),
        Some(k) => write_text(out, k.bytes),
    }
}

/// Writes a record's value as JSON: a value the Maelstrom front stored (compact JSON text) as it
/// is; a Kafka record's value as the JSON it holds if it is JSON (re-written compact, so that it
/// fits on one line), else as a string of its UTF-8 (invalid sequences replaced by U+FFFD); a
/// null value (a Kafka tombstone) as `null`.
#[inline]
pub(crate) fn write_value(out: &mut Vec<u8>, r: &crate::partition::RecordRef<'_>) {
    use crate::partition::ValueKind;
    match r.value_kind {
        ValueKind::Json => out.extend_from_slice(r.value),
        ValueKind::Null => out.extend_from_slice(b"null"),
        _ => match serde_json::from_slice::<serde_json::Value>(r.value) {
            Ok(v) => serde_json::to_writer(&mut *out, &v).expect("writing to a Vec cannot fail"),
            Err(_) => write_text(out, r.value),
        },
    }
}

/// Bytes as a JSON string of their UTF-8, invalid sequences replaced by U+FFFD.
#[cold]
fn write_text(out: &mut Vec<u8>, bytes: &[u8]) {
    reply::write_escaped(out, String::from_utf8_lossy(bytes).as_bytes())
}

/// The request's `topic`, if it names one, checked against Kafka's topic-name rule
/// ([`crate::topic_name`]): a name that breaks it is error 12 and never reaches the engine.
pub(crate) fn opt_topic<'a>(b: &Body<'a>) -> Result<Option<Cow<'a, str>>, WireError> {
    match b.opt_str(Field::Topic)? {
        None => Ok(None),
        Some(s) => {
            let name = s.decode();
            check_topic_name(b.name_of(Field::Topic), &name)?;
            Ok(Some(name))
        }
    }
}

/// Error 12 unless `name` (given in the field spelled `field`) is a legal Kafka topic name.
pub(crate) fn check_topic_name(field: &str, name: &str) -> Result<(), WireError> {
    crate::topic_name::validate(name).map_err(|e| {
        WireError::new(
            Code::MalformedRequest,
            format!(
                "field `{field}` must be a topic name ({}): {e}",
                crate::topic_name::RULE
            ),
        )
    })
}

impl WireError {
    /// Error 13: the operation partly happened (indefinite).
    #[cold]
    pub(crate) fn partial(text: String) -> Self {
        WireError::new(Code::Crash, text)
    }
}
