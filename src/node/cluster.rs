//! The cluster: placement, forwarding between nodes, and replication.
//!
//! ```text
//!   client ─▶ any node ──(owner here?)── yes ─▶ engine ─▶ reply
//!                 │ no
//!                 ▼
//!        per-peer queue ──(one `fwd` batch in flight per peer, retried every 500 ms)──▶ owner
//!                 ▲                                                   (dedupe by origin + seq,
//!                 └────────────── `fwd_ok {msgs: [reply bodies]}` ◀──   serve each item locally)
//!
//!   leader ──`sync {msgs: [[topic, count, p, from, records]], offsets: {key: committed}}`──▶ every peer
//!          ◀──`sync_ok {msgs: [[topic, p, end]]}` (acked positions; resent from them when lost)
//! ```
//!
//! - **Placement** (same on every node, from `init`'s `node_ids`): partition `p` of topic `t` is
//!   led by node `(murmur2(t) + p) mod n`; group `g` is coordinated by node `murmur2(g) mod n`
//!   (Kafka's `toPositive(hash) mod n`). With one node there is no [`Cluster`] at all and the node
//!   behaves exactly as a single broker.
//! - **Routing.** A keyed `send` goes to its partition's leader, every group request to its
//!   group's coordinator, forwarded verbatim (the client's `src` stays the default consumer id).
//!   Items bound for one peer are coalesced: one `fwd` batch is in flight per peer, and what
//!   arrives meanwhile goes in the next batch. The owner serves each item as a local request and
//!   answers with the reply bodies in order; the origin rewrites each into the client's reply.
//!   `list_groups` fans out to every node and merges. A keyless `send` goes to a partition the
//!   receiving node leads. A `send_batch` whose records belong to several leaders is split: each
//!   leader gets its part as a `send_batch` of its own, and the client one reply with every
//!   offset in request order (13 if a part failed after another was appended).
//! - **Topics.** Topic `t`'s *home*, node `murmur2(t) mod n`, alone creates it, so every node
//!   agrees on its partition count. `create_topic` is created at the home first (forwarded, if
//!   the receiving node is not the home), then here and on every peer (fan-out). A request that
//!   names a topic its node does not know gets 11 at once (nothing happened), and the node asks
//!   the home with `topic_meta` on its next tick; the home answers with the count, creating the
//!   topic on first use. The default topic is exempt: every node creates it alike from its
//!   configuration.
//! - **Replication.** Each leader streams its partitions' records, with their offsets, to every
//!   other node in `sync` batches (at most one in flight per peer, every [`SYNC_EVERY_MS`], resent
//!   from the acknowledged position after [`SYNC_RESEND_MS`]). A replica appends only the exact
//!   next offset and acknowledges its log end, so its copy is always a contiguous prefix of the
//!   leader's. Maelstrom's `poll` and the coordinators' group polls read the local copy;
//!   `list_offsets` asks each partition's leader for its log end. The
//!   kafka workload's per-key committed offsets are a max-merge register: committed locally,
//!   gossiped in the same `sync` batches, served locally. Until a peer knows every topic, the
//!   `sync` also lists the topics with their partition counts, so a topic created while a peer
//!   was cut off reaches it after the heal.
//! - **Faults.** A forwarded batch is retried every [`RETRY_MS`] (the owner's dedupe table by
//!   origin and batch sequence makes a retry never apply twice) and given up at [`GIVE_UP_MS`],
//!   well inside Maelstrom's 5 s client timeout. On give-up a client gets 11
//!   (temporarily-unavailable, definite) only when the operation certainly did not happen — the
//!   batch was never transmitted, or the request only reads — and 13 (crash, indefinite)
//!   otherwise.

use super::groups::create_topic_args;
use super::kafka::{log_end, offset_pair};
use super::service::{key_bytes, opt_topic, Node, OwnedReplyTo, ReplyTo, MAX_PARTITIONS};
use crate::clock::Millis;
use crate::loom::{lock, Mutex, StdArc as Arc};
use crate::partition::{Key, KeyKind};
use crate::partitioner::{murmur2, to_positive};
use crate::topic::Topic;
use crate::wire::reply::{self, JsonOut};
use crate::wire::scan::Scanner;
use crate::wire::{decode, Code, Field, Kind, Message, Raw, WireError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// How often the cluster's timer runs ([`Node::tick`]).
pub const TICK: Duration = Duration::from_millis(10);
/// A forwarded batch without an answer is sent again after this long.
pub const RETRY_MS: Millis = 500;
/// A forwarded request is given up this long after it was accepted (clients wait 5 s).
pub const GIVE_UP_MS: Millis = 3000;
/// The least time between two `sync` batches to one peer.
pub const SYNC_EVERY_MS: Millis = 50;
/// A `sync` without an answer is considered lost after this long and sent again.
pub const SYNC_RESEND_MS: Millis = 250;
/// At most this many records of one partition per `sync`.
pub const SYNC_MAX_RECORDS: usize = 1024;
/// At most this many requests per forwarded batch.
const BATCH_MAX: usize = 256;
/// A dedupe entry is kept this long (a batch is retried for at most [`GIVE_UP_MS`]).
const DEDUPE_KEEP_MS: Millis = 10_000;

/// The hash placement uses: Kafka's `toPositive(murmur2(bytes))`.
fn place(name: &str) -> u64 {
    u64::from(to_positive(murmur2(name.as_bytes())))
}

/// What became of a forwarded request.
pub(crate) enum Outcome<'a> {
    /// The owner's reply body (an object).
    Reply(Raw<'a>),
    /// No answer in time; `transmitted` says whether the request ever left this node.
    GaveUp { transmitted: bool },
}

/// What runs when a forwarded request is answered or given up.
pub(crate) type Done = Box<dyn FnOnce(&Node, Outcome<'_>, &mut Vec<u8>) + Send>;

/// One request forwarded to a peer.
pub(crate) struct Item {
    /// The client's id, escaped.
    src: Box<str>,
    /// The request's body, as it came.
    body: Box<str>,
    deadline: Millis,
    done: Done,
}

/// A `fwd` batch in flight.
struct Batch {
    seq: u64,
    msg_id: u64,
    items: Vec<Item>,
    /// The `msgs` array as sent (resent as is).
    payload: Vec<u8>,
    deadline: Millis,
    last_sent: Millis,
}

#[derive(Default)]
struct Forwarding {
    next_seq: u64,
    queue: Vec<Item>,
    inflight: Option<Batch>,
}

#[derive(Default)]
struct Syncing {
    /// Per topic, per partition: the log end the peer acknowledged.
    acked: HashMap<Box<str>, Vec<u64>>,
    /// The commit version the peer acknowledged.
    commits_acked: u64,
    /// How many topics the peer acknowledged knowing (the registry only grows).
    topics_acked: u64,
    /// The `sync` in flight.
    inflight: Option<SyncSent>,
    last_sent: Option<Millis>,
}

/// What a `sync` in flight carried: the bounds of what its answer may acknowledge.
#[derive(Clone, Copy)]
struct SyncSent {
    msg_id: u64,
    at: Millis,
    /// The commit version it carried.
    version: u64,
    /// How many topics it listed (0 when it listed none).
    topics: u64,
}

#[derive(Default)]
struct Peer {
    fwd: Mutex<Forwarding>,
    sync: Mutex<Syncing>,
}

/// Per-key committed offsets this node accepted, versioned for gossip.
#[derive(Default)]
struct Commits {
    version: u64,
    map: HashMap<Box<str>, (u64, u64)>,
}

/// Answered batches by (origin, seq): when answered, and the `msgs` array of the answer.
type Dedupe = HashMap<(Box<str>, u64), (Millis, Box<[u8]>)>;

/// The cluster state of a node that `init` named with others; see the module docs.
pub struct Cluster {
    me: usize,
    /// Node ids, escaped (wire form).
    ids: Box<[Box<str>]>,
    peers: Box<[Peer]>,
    /// Answered batches by (origin, seq): the `msgs` array of the answer.
    dedupe: Mutex<Dedupe>,
    commits: Mutex<Commits>,
    /// Topics a request named that this node does not know, to ask their home node about:
    /// name → whether the question is in flight.
    wanted: Mutex<BTreeMap<Box<str>, bool>>,
}

impl Cluster {
    /// The cluster of node `me` among `ids` (escaped wire forms), or `None` for a lone node.
    pub fn new(me: &str, ids: &[Box<str>]) -> Option<Self> {
        let me = ids.iter().position(|i| &**i == me)?;
        (ids.len() > 1).then(|| Cluster {
            me,
            ids: ids.into(),
            peers: ids.iter().map(|_| Peer::default()).collect(),
            dedupe: Mutex::new(HashMap::new()),
            commits: Mutex::new(Commits::default()),
            wanted: Mutex::new(BTreeMap::new()),
        })
    }

    /// This node's index.
    pub fn me(&self) -> usize {
        self.me
    }

    /// The node ids (escaped), in `init`'s order.
    pub fn ids(&self) -> &[Box<str>] {
        &self.ids
    }

    /// The index of the leader of partition `p` of `topic`.
    pub fn leader(&self, topic: &str, p: u32) -> usize {
        ((place(topic) + u64::from(p)) % self.ids.len() as u64) as usize
    }

    /// The index of the home node of `topic`, which alone creates it and so decides its
    /// partition count (see "Topics" in the module docs).
    pub fn home(&self, topic: &str) -> usize {
        (place(topic) % self.ids.len() as u64) as usize
    }

    /// The index of the coordinator of `group`.
    pub fn coordinator(&self, group: &str) -> usize {
        (place(group) % self.ids.len() as u64) as usize
    }

    /// A partition of `t` this node leads, round-robin; `None` if it leads none.
    fn pick_led(&self, t: &Topic) -> Option<u32> {
        let n = t.partition_count();
        let start = t.partition_of(None);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&p| self.leader(t.name(), p) == self.me)
    }

    /// Notes a kafka-workload commit for gossip (kept as the maximum per key).
    pub(crate) fn note_commit(&self, key: &str, offset: u64) {
        let mut c = lock(&self.commits);
        let version = c.version + 1;
        match c.map.get_mut(key) {
            Some(e) if e.0 >= offset => return,
            Some(e) => *e = (offset, version),
            None => {
                c.map.insert(key.into(), (offset, version));
            }
        }
        c.version = version;
    }

    fn is_peer(&self, src: &str) -> bool {
        self.ids.iter().any(|i| &**i == src)
    }
}

/// A partition count from a peer, if it is one a topic may have (1 to [`MAX_PARTITIONS`]).
fn partition_count(n: u64) -> Option<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_PARTITIONS).contains(n))
}

/// Whether a reply body is of type `ty`.
fn is_reply(body: &Raw<'_>, ty: &str) -> bool {
    body.field("type")
        .and_then(|v| v.as_str())
        .is_some_and(|t| t.raw() == ty)
}

/// The `body` of a message line, as it came.
fn body_text(line: &str) -> Option<&str> {
    let mut sc = Scanner::new(line);
    let mut body = None;
    sc.object(0, |sc, key| {
        let v = sc.value_opt(1)?;
        if key.raw() == "body" {
            body = Some(v.text());
        }
        Some(())
    })?;
    body
}

/// Fan-out state of `list_groups` or `create_topic`.
struct Gather {
    left: usize,
    names: BTreeSet<String>,
    failed: Option<WireError>,
    client: OwnedReplyTo,
    list: bool,
}

/// The state of a split `send_batch`: its records' offsets as the parts come back.
struct BatchGather {
    /// Parts still unanswered.
    left: usize,
    /// Per record, in request order: (partition, offset) once appended.
    offsets: Vec<Option<(u32, u64)>>,
    /// Some record was appended.
    applied: bool,
    /// Some part may have been appended (no answer to a transmitted part, or a 13).
    maybe: bool,
    /// The first failure of a part.
    failed: Option<WireError>,
    client: OwnedReplyTo,
}

/// The state of a `list_offsets` over several leaders.
struct EndsGather {
    /// Leaders still unanswered.
    left: usize,
    /// Per partition: the log end, from its leader once it answered (this node's copy before).
    ends: Vec<u64>,
    /// Per partition: its leader.
    leaders: Vec<usize>,
    failed: Option<WireError>,
    client: OwnedReplyTo,
}

impl Node {
    /// The cluster, if `init` named more than one node.
    #[inline]
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.get()
    }

    /// Routes a client request: `Some` when it was forwarded (or fanned out), `None` to serve it here.
    pub(crate) fn route(
        &self,
        c: &Cluster,
        ty: &str,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Result<(), WireError>> {
        let b = &msg.body;
        let grouped = b.get(Field::Group).is_some();
        match ty {
            "send" => {
                let topic = match opt_topic(b) {
                    Ok(t) => t,
                    Err(e) => return Some(Err(e)),
                };
                let owner = self.with_topic(topic.as_deref(), |t| match b.get(Field::Key) {
                    Some(k) => {
                        let (kind, bytes) = key_bytes(k.value);
                        c.leader(
                            t.name(),
                            t.partition_of(Some(Key {
                                kind,
                                bytes: &bytes,
                            })),
                        )
                    }
                    None if c.pick_led(t).is_some() => c.me,
                    None => c.leader(t.name(), 0),
                });
                let owner = match owner {
                    Ok(o) => o,
                    Err(e) => return Some(Err(e)),
                };
                (owner != c.me).then(|| self.forward_request(c, owner, msg, to, false, out))
            }
            "send_batch" => self.route_send_batch(c, msg, to, out),
            "list_offsets" => self.route_list_offsets(c, msg, to, out),
            "poll" | "list_committed_offsets" if !grouped => None,
            "subscribe"
            | "unsubscribe"
            | "leave_group"
            | "poll"
            | "commit"
            | "heartbeat"
            | "describe_group"
            | "reset_offsets"
            | "list_committed_offsets" => {
                let g = b.str(Field::Group).ok()?.decode();
                let owner = c.coordinator(&g);
                let read_only = matches!(ty, "describe_group" | "list_committed_offsets");
                (owner != c.me).then(|| self.forward_request(c, owner, msg, to, read_only, out))
            }
            "list_groups" => Some(self.fan_out(c, msg, to, true, out)),
            "create_topic" => {
                // A bad request fails here, before any peer sees it.
                let (name, n) = match create_topic_args(b) {
                    Ok(a) => a,
                    Err(e) => return Some(Err(e)),
                };
                let home = c.home(&name);
                if home != c.me {
                    return Some(self.create_at_home(c, home, msg, to, name.into_owned(), n, out));
                }
                let mut local = Vec::new();
                if let Err(e) = self.create_topic(b, to, &mut local) {
                    return Some(Err(e));
                }
                Some(self.fan_out(c, msg, to, false, out))
            }
            _ => None,
        }
    }

    /// `send_batch` in a cluster. Each record goes to its partition's leader (a keyless one to a
    /// partition this node leads, else to the leader of the next round-robin partition). A batch
    /// whose records all belong here is served here, one whose records all belong to one peer is
    /// forwarded whole, and any other is split: this node appends its own records and forwards
    /// each peer its part as a `send_batch` of its own, then answers with every offset in request
    /// order ([`Node::batch_part`]).
    fn route_send_batch(
        &self,
        c: &Cluster,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Result<(), WireError>> {
        let b = &msg.body;
        let topic = opt_topic(b).ok()?;
        let msgs = b.array(Field::Msgs).ok()?;
        let t = match self.ensure_topic(topic.as_deref()) {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        let here = c.pick_led(&t).is_some();
        // (owner, key, value, the item's text) per record.
        let mut records = Vec::new();
        for item in msgs.items() {
            if item.kind() != Kind::Object {
                // Served here, where `send_batch` refuses the whole batch before appending.
                return None;
            }
            let (mut key, mut value) = (None, None);
            for (k, v) in item.entries() {
                match Field::from_key(&k.decode()) {
                    Some((Field::Key, _)) if !v.is_null() => key = Some(key_bytes(v)),
                    Some((Field::Msg, _)) => value = Some(v),
                    _ => {}
                }
            }
            let value = value?;
            let owner = match &key {
                Some((kind, bytes)) => {
                    c.leader(t.name(), t.partition_of(Some(Key { kind: *kind, bytes })))
                }
                None if here => c.me,
                None => c.leader(t.name(), t.partition_of(None)),
            };
            records.push((owner, key, value, item.text()));
        }
        let first = records.first().map_or(c.me, |r| r.0);
        if records.iter().all(|r| r.0 == first) {
            return (first != c.me).then(|| self.forward_request(c, first, msg, to, false, out));
        }
        // Split. Parts for peers first (this node's own appends cannot fail).
        let mut peers: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, r) in records.iter().enumerate().filter(|(_, r)| r.0 != c.me) {
            peers.entry(r.0).or_default().push(i);
        }
        let gather = Arc::new(Mutex::new(BatchGather {
            left: peers.len(),
            offsets: vec![None; records.len()],
            applied: false,
            maybe: false,
            failed: None,
            client: to.detach(),
        }));
        {
            let mut g = lock(&gather);
            for (i, (_, key, value, _)) in records.iter().enumerate() {
                if records[i].0 == c.me {
                    let key = key.as_ref().map(|(kind, bytes)| Key { kind: *kind, bytes });
                    g.offsets[i] = Some(self.append(&t, key, &value.compact()));
                    g.applied = true;
                }
            }
        }
        let deadline = self.now() + GIVE_UP_MS;
        for (peer, indices) in peers {
            let mut body = Vec::new();
            body.extend_from_slice(b"{\"type\":\"send_batch\",");
            if let Some(name) = &topic {
                body.extend_from_slice(b"\"topic\":");
                body.string(name);
                body.push(b',');
            }
            body.extend_from_slice(b"\"msgs\":[");
            for (j, &i) in indices.iter().enumerate() {
                if j > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(records[i].3.as_bytes());
            }
            body.extend_from_slice(b"]}");
            let g = gather.clone();
            let item = Item {
                src: msg.src.raw().into(),
                body: String::from_utf8(body).expect("JSON text is UTF-8").into(),
                deadline,
                done: Box::new(move |node, outcome, out| {
                    node.batch_part(&g, &indices, outcome, out)
                }),
            };
            self.forward(c, peer, item, out);
        }
        Some(Ok(()))
    }

    /// One peer's part of a split `send_batch` is answered or given up; the last one answers the
    /// client: every offset in request order, or, if a part failed, 13 when some record was (or
    /// may have been) appended, else the part's own definite error.
    fn batch_part(
        &self,
        g: &Mutex<BatchGather>,
        indices: &[usize],
        outcome: Outcome<'_>,
        out: &mut Vec<u8>,
    ) {
        let mut g = lock(g);
        match outcome {
            Outcome::Reply(body) => {
                let ok = is_reply(&body, "send_batch_ok");
                let offsets: Vec<(u32, u64)> = body
                    .field("offsets")
                    .map(|v| {
                        v.items()
                            .filter_map(|pair| {
                                let mut it = pair.items();
                                let p = it.next()?.as_u64()?;
                                Some((u32::try_from(p).ok()?, it.next()?.as_u64()?))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if ok && offsets.len() == indices.len() {
                    for (&i, o) in indices.iter().zip(offsets) {
                        g.offsets[i] = Some(o);
                    }
                    g.applied = true;
                } else if ok {
                    g.maybe = true;
                    g.failed
                        .get_or_insert_with(|| WireError::new(Code::Crash, "a malformed answer"));
                } else {
                    // The peer refused its part before appending any of it.
                    let code = body
                        .field("code")
                        .and_then(|v| v.as_u64())
                        .and_then(Code::from_number)
                        .unwrap_or(Code::Crash);
                    let text = body
                        .field("text")
                        .and_then(|v| v.as_str())
                        .map_or_else(|| "a peer refused its part".into(), |t| t.decode());
                    g.maybe |= !code.is_definite();
                    g.failed
                        .get_or_insert_with(|| WireError::new(code, text.into_owned()));
                }
            }
            Outcome::GaveUp { transmitted } => {
                g.maybe |= transmitted;
                g.failed.get_or_insert_with(|| {
                    WireError::new(
                        Code::TemporarilyUnavailable,
                        "the node that leads part of this batch is unreachable",
                    )
                });
            }
        }
        g.left -= 1;
        if g.left > 0 {
            return;
        }
        let to = g.client.borrow();
        if let Some(e) = &g.failed {
            if g.applied || g.maybe {
                let e = WireError::new(
                    Code::Crash,
                    format!(
                        "part of the batch was appended and part may not have been: {}",
                        e.text
                    ),
                );
                return self.error(&to, &e, out);
            }
            return self.error(&to, e, out);
        }
        self.ok(&to, out);
        out.key("offsets").push(b'[');
        for (i, o) in g.offsets.iter().enumerate() {
            let (p, o) = o.expect("every record has an offset when no part failed");
            offset_pair(out, i, p, o);
        }
        out.push(b']');
        self.done(&to, out);
    }

    /// `list_offsets` in a cluster: each partition's log end comes from its leader (the
    /// replicas' copies may be behind), as a Kafka client asks each leader; partitions this node
    /// leads are read here, and each other leader is asked once for its own.
    fn route_list_offsets(
        &self,
        c: &Cluster,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Result<(), WireError>> {
        let t = match self.topic_or_default(&msg.body) {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        let n = t.partition_count();
        let leaders: Vec<usize> = (0..n).map(|p| c.leader(t.name(), p)).collect();
        let peers: BTreeSet<usize> = leaders.iter().copied().filter(|&l| l != c.me).collect();
        if peers.is_empty() {
            return None;
        }
        let body = match body_text(msg.body.line()) {
            Some(b) => b,
            None => return Some(Err(WireError::new(Code::MalformedRequest, "no body"))),
        };
        let ends = t.partitions().iter().map(|part| part.end()).collect();
        let gather = Arc::new(Mutex::new(EndsGather {
            left: peers.len(),
            ends,
            leaders,
            failed: None,
            client: to.detach(),
        }));
        let deadline = self.now() + GIVE_UP_MS;
        for peer in peers {
            let g = gather.clone();
            let item = Item {
                src: msg.src.raw().into(),
                body: body.into(),
                deadline,
                done: Box::new(move |node, outcome, out| node.ends_part(&g, peer, outcome, out)),
            };
            self.forward(c, peer, item, out);
        }
        Some(Ok(()))
    }

    /// Leader `peer` answered a split `list_offsets` (or did not); the last one answers the
    /// client. A read: a failure is 11 (nothing happened).
    fn ends_part(
        &self,
        g: &Mutex<EndsGather>,
        peer: usize,
        outcome: Outcome<'_>,
        out: &mut Vec<u8>,
    ) {
        let mut g = lock(g);
        let mut answered = false;
        if let Outcome::Reply(body) = outcome {
            if let Some(offsets) = body.field("offsets") {
                for (k, v) in offsets.entries() {
                    let (Ok(p), Some(end)) = (k.decode().parse::<usize>(), v.as_u64()) else {
                        continue;
                    };
                    if g.leaders.get(p) == Some(&peer) {
                        g.ends[p] = end;
                    }
                }
                answered = true;
            }
        }
        if !answered && g.failed.is_none() {
            g.failed = Some(WireError::new(
                Code::TemporarilyUnavailable,
                "a partition's leader did not answer; nothing happened",
            ));
        }
        g.left -= 1;
        if g.left > 0 {
            return;
        }
        let to = g.client.borrow();
        if let Some(e) = &g.failed {
            return self.error(&to, e, out);
        }
        self.ok(&to, out);
        out.key("offsets").push(b'{');
        for (p, &end) in g.ends.iter().enumerate() {
            log_end(out, p, end);
        }
        out.push(b'}');
        self.done(&to, out);
    }

    /// Forwards one client request to node `peer`; the client's reply is written when the answer
    /// comes (or the request is given up).
    fn forward_request(
        &self,
        c: &Cluster,
        peer: usize,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        read_only: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let body = body_text(msg.body.line())
            .ok_or_else(|| WireError::new(Code::MalformedRequest, "no body"))?;
        let client = to.detach();
        let item = Item {
            src: msg.src.raw().into(),
            body: body.into(),
            deadline: self.now() + GIVE_UP_MS,
            done: Box::new(move |node, outcome, out| node.relay(&client, read_only, outcome, out)),
        };
        self.forward(c, peer, item, out);
        Ok(())
    }

    /// Writes the client's reply for a forwarded request.
    fn relay(
        &self,
        client: &OwnedReplyTo,
        read_only: bool,
        outcome: Outcome<'_>,
        out: &mut Vec<u8>,
    ) {
        let to = client.borrow();
        match outcome {
            Outcome::Reply(body) => {
                out.extend_from_slice(b"{\"src\":\"");
                out.extend_from_slice(to.me.as_bytes());
                out.extend_from_slice(b"\",\"dest\":\"");
                out.extend_from_slice(to.to.as_bytes());
                out.extend_from_slice(b"\",\"body\":{");
                let mut first = true;
                for (k, v) in body.entries() {
                    if matches!(k.raw(), "in_reply_to" | "msg_id") {
                        continue;
                    }
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.raw_string(k.raw()).push(b':');
                    out.extend_from_slice(&v.compact());
                }
                reply::end(out, to.msg_id, self.next_msg_id());
            }
            Outcome::GaveUp { transmitted } => {
                let e = if !transmitted || read_only {
                    WireError::new(
                        Code::TemporarilyUnavailable,
                        "the node that owns this request is unreachable; it did not happen",
                    )
                } else {
                    WireError::new(
                        Code::Crash,
                        "the node that owns this request did not answer; it may have happened",
                    )
                };
                self.error(&to, &e, out);
            }
        }
    }

    /// Queues `item` for `peer`, sending it at once when no batch to that peer is in flight.
    pub(crate) fn forward(&self, c: &Cluster, peer: usize, item: Item, out: &mut Vec<u8>) {
        let mut f = lock(&c.peers[peer].fwd);
        f.queue.push(item);
        if f.inflight.is_none() {
            self.start_batch(c, peer, &mut f, self.now(), out);
        }
    }

    fn start_batch(
        &self,
        c: &Cluster,
        peer: usize,
        f: &mut Forwarding,
        now: Millis,
        out: &mut Vec<u8>,
    ) {
        if f.queue.is_empty() {
            return;
        }
        let n = f.queue.len().min(BATCH_MAX);
        let items: Vec<Item> = f.queue.drain(..n).collect();
        let seq = f.next_seq;
        f.next_seq += 1;
        let mut payload = Vec::with_capacity(64 * items.len());
        payload.push(b'[');
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                payload.push(b',');
            }
            payload.push(b'[');
            payload.raw_string(&it.src).push(b',');
            payload.extend_from_slice(it.body.as_bytes());
            payload.push(b']');
        }
        payload.push(b']');
        let deadline = items.iter().map(|i| i.deadline).min().unwrap_or(now);
        let msg_id = self.send_fwd(c, peer, seq, &payload, out);
        f.inflight = Some(Batch {
            seq,
            msg_id,
            items,
            payload,
            deadline,
            last_sent: now,
        });
    }

    fn send_fwd(
        &self,
        c: &Cluster,
        peer: usize,
        seq: u64,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> u64 {
        self.request(
            &c.ids[peer],
            "fwd",
            |o| {
                o.key("offset").uint(seq);
                o.key("msgs").raw(payload);
            },
            Box::new(move |node, reply, out| node.batch_answered(peer, seq, reply, out)),
            out,
        )
    }

    /// The answer to batch `seq` to `peer` came: complete its items, send the next batch.
    fn batch_answered(&self, peer: usize, seq: u64, reply: &Message<'_>, out: &mut Vec<u8>) {
        let Some(c) = self.cluster() else { return };
        let batch = {
            let mut f = lock(&c.peers[peer].fwd);
            if f.inflight.as_ref().map(|b| b.seq) != Some(seq) {
                return;
            }
            let b = f.inflight.take();
            self.start_batch(c, peer, &mut f, self.now(), out);
            b
        };
        let Some(batch) = batch else { return };
        let mut replies = reply
            .body
            .get(Field::Msgs)
            .map(|s| s.value.items())
            .into_iter()
            .flatten();
        for item in batch.items {
            match replies.next() {
                Some(r) if r.kind() == Kind::Object => (item.done)(self, Outcome::Reply(r), out),
                _ => (item.done)(self, Outcome::GaveUp { transmitted: true }, out),
            }
        }
    }

    /// The cluster's timer: retries and gives up forwarded batches, replicates, prunes the dedupe
    /// table. `now` is [`Node::now`] (tests pass later times).
    pub fn tick(&self, now: Millis, out: &mut Vec<u8>) {
        let Some(c) = self.cluster() else { return };
        let mut failed: Vec<(Item, bool)> = Vec::new();
        for peer in (0..c.ids.len()).filter(|&p| p != c.me) {
            let mut f = lock(&c.peers[peer].fwd);
            let mut give_up = false;
            if let Some(b) = &mut f.inflight {
                if now >= b.deadline {
                    self.pending.cancel(b.msg_id);
                    give_up = true;
                } else if now.saturating_sub(b.last_sent) >= RETRY_MS {
                    self.pending.cancel(b.msg_id);
                    b.msg_id = self.send_fwd(c, peer, b.seq, &b.payload, out);
                    b.last_sent = now;
                }
            }
            if give_up {
                if let Some(b) = f.inflight.take() {
                    failed.extend(b.items.into_iter().map(|i| (i, true)));
                }
            }
            let mut i = 0;
            while i < f.queue.len() {
                if f.queue[i].deadline <= now {
                    failed.push((f.queue.remove(i), false));
                } else {
                    i += 1;
                }
            }
            if f.inflight.is_none() {
                self.start_batch(c, peer, &mut f, now, out);
            }
        }
        for (item, transmitted) in failed {
            (item.done)(self, Outcome::GaveUp { transmitted }, out);
        }
        self.ask_homes(c, out);
        for peer in (0..c.ids.len()).filter(|&p| p != c.me) {
            self.sync_peer(c, peer, now, out);
        }
        lock(&c.dedupe).retain(|_, (at, _)| now.saturating_sub(*at) < DEDUPE_KEEP_MS);
    }

    /// The cluster, if `msg` (of type `ty`) comes from one of its nodes: node-to-node messages
    /// from anyone else (a client, or any sender to a lone node) are not supported.
    fn cluster_of_peer(&self, msg: &Message<'_>, ty: &str) -> Result<&Cluster, WireError> {
        self.cluster()
            .filter(|c| c.is_peer(msg.src.raw()))
            .ok_or_else(|| WireError::not_supported(ty))
    }

    /// `fwd {offset: seq, msgs: [[src, body], …]}` from a peer → `fwd_ok {msgs: [reply body, …]}`:
    /// serves each request here; a retried batch gets the first answer again.
    pub(crate) fn on_fwd(
        &self,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let c = self.cluster_of_peer(msg, "fwd")?;
        let seq = msg.body.u64(Field::Offset)?;
        let items = msg.body.array(Field::Msgs)?;
        let key: (Box<str>, u64) = (msg.src.raw().into(), seq);
        let cached = lock(&c.dedupe).get(&key).map(|(_, r)| r.clone());
        let replies = match cached {
            Some(r) => r,
            None => {
                let r = self.serve_items(items);
                lock(&c.dedupe).insert(key, (self.now(), r.clone()));
                r
            }
        };
        self.ok(to, out);
        out.key("msgs").raw(&replies);
        self.done(to, out);
        Ok(())
    }

    fn serve_items(&self, items: Raw<'_>) -> Box<[u8]> {
        let me = self.id().unwrap_or("");
        let mut replies = vec![b'['];
        let mut line = Vec::new();
        let mut tmp = Vec::new();
        for (i, item) in items.items().enumerate() {
            if i > 0 {
                replies.push(b',');
            }
            let mut parts = item.items();
            let served = match (parts.next(), parts.next()) {
                (Some(src), Some(body))
                    if src.kind() == Kind::Str && body.kind() == Kind::Object =>
                {
                    line.clear();
                    line.extend_from_slice(b"{\"src\":");
                    line.extend_from_slice(src.text().as_bytes());
                    line.extend_from_slice(b",\"dest\":\"");
                    line.extend_from_slice(me.as_bytes());
                    line.extend_from_slice(b"\",\"body\":");
                    line.extend_from_slice(body.text().as_bytes());
                    line.push(b'}');
                    tmp.clear();
                    if let Ok(m) = decode(&line) {
                        self.handle_message_with(&m, &mut tmp, false);
                    }
                    let text = std::str::from_utf8(&tmp).unwrap_or("");
                    body_text(text.trim_end()).map(|b| replies.extend_from_slice(b.as_bytes()))
                }
                _ => None,
            };
            if served.is_none() {
                replies.extend_from_slice(
                    br#"{"type":"error","code":13,"text":"the forwarded request got no reply"}"#,
                );
            }
        }
        replies.push(b']');
        replies.into()
    }

    /// `create_topic` on a node that is not the topic's home: the home creates it first (so
    /// that it alone decides every topic's partition count); once it has, this node creates it
    /// and fans the request out to every peer, as the home would have.
    #[allow(clippy::too_many_arguments)]
    fn create_at_home(
        &self,
        c: &Cluster,
        home: usize,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        name: String,
        n: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let body: Box<str> = body_text(msg.body.line())
            .ok_or_else(|| WireError::new(Code::MalformedRequest, "no body"))?
            .into();
        let src: Box<str> = msg.src.raw().into();
        let client = to.detach();
        let item = Item {
            src: src.clone(),
            body: body.clone(),
            deadline: self.now() + GIVE_UP_MS,
            done: Box::new(move |node, outcome, out| {
                let created =
                    matches!(&outcome, Outcome::Reply(r) if is_reply(r, "create_topic_ok"));
                match node.cluster() {
                    Some(c) if created => {
                        // The home's count is this request's: a conflict here is the home's
                        // answer too, so it cannot happen.
                        let _ = node.broker.topics.create(&name, n);
                        if let Err(e) =
                            node.fan_out_parts(c, &src, &body, client.clone(), false, out)
                        {
                            node.error(&client.borrow(), &e, out);
                        }
                    }
                    // The home's error, or no answer: as for any forwarded request.
                    _ => node.relay(&client, false, outcome, out),
                }
            }),
        };
        self.forward(c, home, item, out);
        Ok(())
    }

    /// Sends `list_groups` (merged) or `create_topic` (applied) to every peer; replies to the
    /// client when all have answered or given up.
    fn fan_out(
        &self,
        c: &Cluster,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        list: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let body = body_text(msg.body.line())
            .ok_or_else(|| WireError::new(Code::MalformedRequest, "no body"))?;
        self.fan_out_parts(c, msg.src.raw(), body, to.detach(), list, out)
    }

    /// [`Node::fan_out`] of the request `body` from client `src`, answering `client`.
    fn fan_out_parts(
        &self,
        c: &Cluster,
        src: &str,
        body: &str,
        client: OwnedReplyTo,
        list: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let names = if list {
            self.broker.groups.list_groups().into_iter().collect()
        } else {
            BTreeSet::new()
        };
        let gather = Arc::new(Mutex::new(Gather {
            left: c.ids.len() - 1,
            names,
            failed: None,
            client,
            list,
        }));
        let deadline = self.now() + GIVE_UP_MS;
        for peer in (0..c.ids.len()).filter(|&p| p != c.me) {
            let g = gather.clone();
            let item = Item {
                src: src.into(),
                body: body.into(),
                deadline,
                done: Box::new(move |node, outcome, out| node.gathered(&g, outcome, out)),
            };
            self.forward(c, peer, item, out);
        }
        Ok(())
    }

    fn gathered(&self, g: &Mutex<Gather>, outcome: Outcome<'_>, out: &mut Vec<u8>) {
        let mut g = lock(g);
        // A merged read did not happen; a creation did happen here, maybe not everywhere.
        let code = if g.list {
            Code::TemporarilyUnavailable
        } else {
            Code::Crash
        };
        let failure = |text: &str| WireError::new(code, text.to_string());
        match outcome {
            Outcome::Reply(body) => {
                let mut ok = false;
                for (k, v) in body.entries() {
                    match k.raw() {
                        "type" => ok = v.as_str().is_some_and(|t| t.raw().ends_with("_ok")),
                        "groups" => {
                            for n in v.items().filter_map(|n| n.as_str()) {
                                g.names.insert(n.decode().into_owned());
                            }
                        }
                        _ => {}
                    }
                }
                if !ok && g.failed.is_none() {
                    g.failed = Some(failure(&format!("a peer refused it: {}", body.text())));
                }
            }
            Outcome::GaveUp { .. } => {
                if g.failed.is_none() {
                    g.failed = Some(failure("a node did not answer in time"));
                }
            }
        }
        g.left -= 1;
        if g.left > 0 {
            return;
        }
        let to = g.client.borrow();
        if let Some(e) = &g.failed {
            return self.error(&to, e, out);
        }
        self.ok(&to, out);
        if g.list {
            out.key("groups").push(b'[');
            for (i, n) in g.names.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.string(n);
            }
            out.push(b']');
        }
        self.done(&to, out);
    }

    /// Sends `peer` the records of the partitions this node leads beyond what it acknowledged,
    /// and the commits it has not acknowledged.
    fn sync_peer(&self, c: &Cluster, peer: usize, now: Millis, out: &mut Vec<u8>) {
        let mut s = lock(&c.peers[peer].sync);
        if let Some(sent) = s.inflight {
            if now.saturating_sub(sent.at) < SYNC_RESEND_MS {
                return;
            }
            self.pending.cancel(sent.msg_id);
            s.inflight = None;
        }
        if s.last_sent
            .is_some_and(|t| now.saturating_sub(t) < SYNC_EVERY_MS)
        {
            return;
        }
        let mut parts = vec![b'['];
        let mut n = 0;
        let topics = self.broker.topics.list();
        // The topic list goes along until the peer has them all: a topic created while the
        // peer was cut off (or with no records yet) still reaches it, with its partition count.
        let mut meta = Vec::new();
        let listed = topics.len() as u64;
        if listed > s.topics_acked {
            meta.push(b'[');
            for (i, t) in topics.iter().enumerate() {
                if i > 0 {
                    meta.push(b',');
                }
                meta.push(b'[');
                meta.string(t.name()).push(b',');
                meta.uint(u64::from(t.partition_count())).push(b']');
            }
            meta.push(b']');
        }
        for t in topics {
            let count = t.partition_count();
            for p in 0..count {
                if c.leader(t.name(), p) != c.me {
                    continue;
                }
                let part = &t.partitions()[p as usize];
                let end = part.end();
                let from = s
                    .acked
                    .get(t.name())
                    .and_then(|v| v.get(p as usize))
                    .copied()
                    .unwrap_or(0);
                if end <= from {
                    continue;
                }
                if n > 0 {
                    parts.push(b',');
                }
                n += 1;
                parts.push(b'[');
                parts.string(t.name()).push(b',');
                parts.uint(u64::from(count)).push(b',');
                parts.uint(u64::from(p)).push(b',');
                parts.uint(from).raw(b",[");
                let mut first = true;
                part.read(from, SYNC_MAX_RECORDS, |r| {
                    if !first {
                        parts.push(b',');
                    }
                    first = false;
                    match r.key {
                        None => parts.extend_from_slice(b"[0,null,"),
                        Some(k) if k.kind == KeyKind::Str => {
                            parts.extend_from_slice(b"[1,");
                            reply::write_escaped(&mut parts, k.bytes);
                            parts.push(b',');
                        }
                        Some(k) => {
                            parts.extend_from_slice(b"[2,");
                            parts.extend_from_slice(k.bytes);
                            parts.push(b',');
                        }
                    }
                    parts.extend_from_slice(r.value);
                    parts.push(b']');
                });
                parts.extend_from_slice(b"]]");
            }
        }
        parts.push(b']');
        let mut commits = vec![b'{'];
        let version = {
            let cm = lock(&c.commits);
            for (k, &(o, v)) in &cm.map {
                if v > s.commits_acked {
                    if commits.len() > 1 {
                        commits.push(b',');
                    }
                    commits.string(k).push(b':');
                    commits.uint(o);
                }
            }
            cm.version
        };
        commits.push(b'}');
        if n == 0 && commits.len() == 2 && meta.is_empty() {
            return;
        }
        let id = self.request(
            &c.ids[peer],
            "sync",
            |o| {
                o.key("msgs").raw(&parts);
                o.key("offsets").raw(&commits);
                o.key("offset").uint(version);
                if !meta.is_empty() {
                    o.key("keys").raw(&meta);
                }
            },
            Box::new(move |node, reply, _| node.sync_answered(peer, reply)),
            out,
        );
        s.inflight = Some(SyncSent {
            msg_id: id,
            at: now,
            version,
            topics: if meta.is_empty() { 0 } else { listed },
        });
        s.last_sent = Some(now);
    }

    /// The answer of `peer` to the `sync` in flight to it. Every number in it is checked against
    /// what this node knows before it is kept: a partition against its topic's partition count, a
    /// log end against this node's own (a replica holds a prefix of the leader's log), the commit
    /// version and the topic count against what the `sync` carried.
    fn sync_answered(&self, peer: usize, reply: &Message<'_>) {
        let Some(c) = self.cluster() else { return };
        let mut s = lock(&c.peers[peer].sync);
        let Some(sent) = s.inflight.take() else {
            return;
        };
        if !reply
            .body
            .str(Field::Type)
            .is_ok_and(|t| t.raw() == "sync_ok")
        {
            tracing::debug!(
                peer = &*c.ids[peer],
                "a sync was refused; it is resent later"
            );
            return;
        }
        if let Some(acks) = reply.body.get(Field::Msgs) {
            for a in acks.value.items() {
                let mut it = a.items();
                let (Some(t), Some(p), Some(end)) = (
                    it.next().and_then(|t| t.as_str()),
                    it.next().and_then(|p| p.as_u64()),
                    it.next().and_then(|e| e.as_u64()),
                ) else {
                    continue;
                };
                let name = t.decode();
                let Some(topic) = self.broker.topics.get(&name) else {
                    continue;
                };
                let Some(part) = u32::try_from(p).ok().and_then(|p| topic.partition(p).ok()) else {
                    continue;
                };
                let end = end.min(part.end());
                let count = topic.partition_count() as usize;
                let v = s.acked.entry(name.as_ref().into()).or_default();
                if v.len() < count {
                    v.resize(count, 0);
                }
                let p = p as usize;
                v[p] = v[p].max(end);
            }
        }
        if let Ok(Some(t)) = reply.body.opt_u64(Field::Partitions) {
            s.topics_acked = s.topics_acked.max(t.min(sent.topics));
        }
        if let Ok(v) = reply.body.u64(Field::Offset) {
            s.commits_acked = s.commits_acked.max(v.min(sent.version));
        }
    }

    /// `sync` from a leader: appends the exact next records of its partitions, merges its
    /// commits; answers each partition's log end here.
    pub(crate) fn on_sync(
        &self,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        self.cluster_of_peer(msg, "sync")?;
        let b = &msg.body;
        let mut known = None;
        if let Some(meta) = b.get(Field::Keys) {
            let mut k = 0u64;
            for t in meta.value.items() {
                let mut it = t.items();
                if let (Some(name), Some(count)) = (
                    it.next().and_then(|n| n.as_str()),
                    it.next().and_then(|c| c.as_u64()),
                ) {
                    let name = name.decode();
                    if self.broker.topics.get(&name).is_some()
                        || partition_count(count)
                            .is_some_and(|n| self.broker.topics.create(&name, n).is_ok())
                    {
                        k += 1;
                    }
                }
            }
            known = Some(k);
        }
        let mut acks = vec![b'['];
        for entry in b.array(Field::Msgs)?.items() {
            let mut it = entry.items();
            let (Some(name), Some(count), Some(p), Some(start), Some(records)) = (
                it.next().and_then(|t| t.as_str()),
                it.next().and_then(|c| c.as_u64()),
                it.next().and_then(|p| p.as_u64()),
                it.next().and_then(|s| s.as_u64()),
                it.next(),
            ) else {
                continue;
            };
            let name = name.decode();
            let topic = match self.broker.topics.get(&name) {
                Some(t) => t,
                None => match partition_count(count).map(|n| self.broker.topics.create(&name, n)) {
                    Some(Ok(t)) => t,
                    _ => continue,
                },
            };
            let Some(part) = u32::try_from(p).ok().and_then(|p| topic.partition(p).ok()) else {
                continue;
            };
            let end = part.end();
            // The records from `start` on: those below this copy's end are already here, and a
            // `start` beyond it would leave a gap, so then nothing is appended.
            let Some(skip) = end.checked_sub(start).and_then(|s| usize::try_from(s).ok()) else {
                continue;
            };
            for (offset, rec) in (end..).zip(records.items().skip(skip)) {
                if part.end() != offset {
                    break;
                }
                let mut f = rec.items();
                let (Some(kind), Some(key), Some(value)) = (f.next(), f.next(), f.next()) else {
                    break;
                };
                let key_text;
                let key = match kind.as_u64() {
                    Some(1) => {
                        key_text = key.as_str().map(|s| s.decode().into_owned().into_bytes());
                        key_text.as_deref().map(|bytes| Key {
                            kind: KeyKind::Str,
                            bytes,
                        })
                    }
                    Some(2) => {
                        key_text = Some(key.compact().into_owned());
                        key_text.as_deref().map(|bytes| Key {
                            kind: KeyKind::Json,
                            bytes,
                        })
                    }
                    _ => None,
                };
                let got = part.append(key, &value.compact());
                if got != offset {
                    tracing::error!(
                        topic = &*name,
                        p,
                        want = offset,
                        got,
                        "replica append out of place"
                    );
                    break;
                }
            }
            if acks.len() > 1 {
                acks.push(b',');
            }
            acks.push(b'[');
            acks.string(&name).push(b',');
            acks.uint(p).push(b',');
            acks.uint(part.end()).push(b']');
        }
        acks.push(b']');
        if let Some(s) = b.get(Field::Offsets) {
            for (k, v) in s.value.entries() {
                if let Some(o) = v.as_u64() {
                    self.broker.commit_key(&k.decode(), o);
                }
            }
        }
        self.ok(to, out);
        out.key("msgs").raw(&acks);
        out.key("offset").uint(b.u64(Field::Offset).unwrap_or(0));
        if let Some(k) = known {
            // How many of the listed topics this node now knows.
            out.key("partitions").uint(k);
        }
        self.done(to, out);
        Ok(())
    }

    /// Appends a record to `topic` (found or created by [`Node::with_topic`]) here: in a
    /// cluster, a keyless record goes to a partition this node leads.
    pub(crate) fn append(&self, t: &Topic, key: Option<Key<'_>>, value: &[u8]) -> (u32, u64) {
        if let (None, Some(c)) = (key, self.cluster()) {
            if let Some(p) = c.pick_led(t) {
                return (p, t.partitions()[p as usize].append(None, value));
            }
        }
        t.append(key, value)
    }

    /// Calls `f` with the topic named `name` (the default topic when `None`), created on first
    /// use with the default partition count — in a cluster, only by its home node, which alone
    /// decides a topic's partition count. Elsewhere an unknown topic is error 11 (nothing
    /// happened), and the node asks the home about it on its next tick, so that a retry finds it.
    /// The topic's reference count is not touched: this is the path of every `send`.
    pub(crate) fn with_topic<R>(
        &self,
        name: Option<&str>,
        f: impl FnOnce(&crate::loom::Arc<Topic>) -> R,
    ) -> Result<R, WireError> {
        let Some(n) = self.broker.other_than_default(name) else {
            // Every node creates the default topic alike, from its own configuration.
            return Ok(f(self.broker.default_topic()));
        };
        match self.cluster() {
            Some(c) if c.home(n) != c.me => self.broker.topics.with(n, f).ok_or_else(|| {
                lock(&c.wanted).entry(n.into()).or_insert(false);
                WireError::new(
                    Code::TemporarilyUnavailable,
                    format!(
                        "topic {n:?} is not known on this node yet; its home node {} decides its \
                         partition count and is being asked: retry",
                        c.ids[c.home(n)]
                    ),
                )
            }),
            _ => Ok(self.broker.topics.with_or_create(n, f)),
        }
    }

    /// [`Node::with_topic`], keeping the topic.
    pub(crate) fn ensure_topic(
        &self,
        name: Option<&str>,
    ) -> Result<crate::loom::Arc<Topic>, WireError> {
        self.with_topic(name, crate::loom::Arc::clone)
    }

    /// Asks the home node of each wanted topic about it (from [`Node::tick`]); the answer
    /// creates the topic here with the home's partition count.
    fn ask_homes(&self, c: &Cluster, out: &mut Vec<u8>) {
        let asks: Vec<Box<str>> = {
            let mut wanted = lock(&c.wanted);
            wanted.retain(|name, _| self.broker.topics.with(name, |_| ()).is_none());
            wanted
                .iter_mut()
                .filter(|(_, asked)| !**asked)
                .map(|(name, asked)| {
                    *asked = true;
                    name.clone()
                })
                .collect()
        };
        for name in asks {
            let home = c.home(&name);
            let mut body = Vec::new();
            body.extend_from_slice(b"{\"type\":\"topic_meta\",\"topic\":");
            body.string(&name);
            body.push(b'}');
            let item = Item {
                src: self.id().unwrap_or("").into(),
                body: String::from_utf8(body).expect("JSON text is UTF-8").into(),
                deadline: self.now() + GIVE_UP_MS,
                done: Box::new(move |node, outcome, _out| {
                    if let Outcome::Reply(reply) = outcome {
                        let count = reply.field("partitions").and_then(|v| v.as_u64());
                        if let Some(count) = count.and_then(partition_count) {
                            // The home's count; a conflict cannot arise, as only the home
                            // creates the topic (or sends its count), but is harmless if it did.
                            let _ = node.broker.topics.create(&name, count);
                        }
                    }
                    if let Some(c) = node.cluster() {
                        // Answered or not, the next request naming it asks again.
                        lock(&c.wanted).remove(&name);
                    }
                }),
            };
            self.forward(c, home, item, out);
        }
    }

    /// `topic_meta {topic}` from a peer → `topic_meta_ok {partitions}`: the topic's partition
    /// count, from its home node (which creates it on first use, as for any request).
    pub(crate) fn on_topic_meta(
        &self,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        self.cluster_of_peer(msg, "topic_meta")?;
        let name = msg.body.str(Field::Topic)?.decode();
        let count = self.with_topic(Some(&name), |t| t.partition_count())?;
        self.ok(to, out);
        out.key("partitions").uint(u64::from(count));
        self.done(to, out);
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn placement_is_stable_and_spreads_partitions() {
        let ids: Vec<Box<str>> = vec!["n0".into(), "n1".into(), "n2".into()];
        let a = Cluster::new("n0", &ids).unwrap();
        let b = Cluster::new("n2", &ids).unwrap();
        for p in 0..8 {
            assert_eq!(a.leader("default", p), b.leader("default", p));
        }
        let leaders: BTreeSet<usize> = (0..3).map(|p| a.leader("t", p)).collect();
        assert_eq!(leaders.len(), 3, "3 consecutive partitions land on 3 nodes");
        assert_eq!(a.coordinator("g"), b.coordinator("g"));
        assert!(Cluster::new("n0", &ids[..1]).is_none());
        assert!(Cluster::new("n9", &ids).is_none());
    }

    #[test]
    fn body_text_finds_the_body() {
        assert_eq!(
            body_text(r#"{"src":"c1","body":{"type":"x","a":[1]},"dest":"n1"}"#),
            Some(r#"{"type":"x","a":[1]}"#)
        );
        assert_eq!(body_text(r#"{"src":"c1"}"#), None);
    }

    #[test]
    fn commits_gossip_only_increases() {
        let ids: Vec<Box<str>> = vec!["n0".into(), "n1".into()];
        let c = Cluster::new("n0", &ids).unwrap();
        c.note_commit("k", 5);
        c.note_commit("k", 3);
        let cm = lock(&c.commits);
        assert_eq!(cm.map.get("k"), Some(&(5, 1)));
        assert_eq!(cm.version, 1);
    }
}
