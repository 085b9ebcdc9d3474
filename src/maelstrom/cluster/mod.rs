//! The cluster: several Maelstrom nodes serving as one broker. The README's
//! [Cluster](https://github.com/kgroups/kgroups#cluster) section is the description (placement,
//! routing, replication, failure rules, messages per operation); this module implements it:
//!
//! - [`placement`]: who leads a partition, coordinates a group, and is a topic's home.
//! - [`forward`]: batched forwarding of client requests to their owner, with retries, give-up
//!   (the 11-vs-13 rule) and the owner's dedupe table.
//! - [`split`]: a `send_batch` over several leaders, and `list_offsets` asked of each leader.
//! - [`fan_out`]: `list_groups` merged from every node, and `create_topic` at the home then
//!   everywhere.
//! - [`replication`]: leaders stream records and the kafka workload's commits to every peer
//!   (`sync`).
//! - [`topics`]: a topic is created only by its home; other nodes ask it (`topic_meta`).
//!
//! With one node there is no [`Cluster`] at all and the node behaves exactly as a single broker.

mod fan_out;
mod forward;
mod placement;
mod replication;
mod split;
mod topics;

use super::groups::create_topic_args;
use super::node::{key_bytes, opt_topic, Node, ReplyTo, MAX_PARTITIONS};
use super::request::Request;
use crate::clock::Millis;
use crate::loom::{lock, Mutex};
use crate::maelstrom::wire::scan::Scanner;
use crate::maelstrom::wire::{Field, Message, Raw, WireError};
use crate::partition::Key;
use forward::{Dedupe, Forwarding};
use replication::{Commits, Syncing};
use std::collections::{BTreeMap, HashMap};
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

#[derive(Default)]
struct Peer {
    fwd: Mutex<Forwarding>,
    sync: Mutex<Syncing>,
}

/// The cluster state of a node that `init` named with others; see the module docs.
pub struct Cluster {
    me: usize,
    /// Node ids, escaped (wire form).
    ids: Box<[Box<str>]>,
    peers: Box<[Peer]>,
    /// Answered batches by (origin, seq): the `msgs` array of the answer.
    dedupe: Mutex<Dedupe>,
    commits: Mutex<Commits>,
    /// Topics a request named that this node does not know, to ask their home node about.
    wanted: Mutex<BTreeMap<Box<str>, topics::Want>>,
    /// Topics their home said do not exist (to a consumer's question), with when it said so.
    absent: Mutex<HashMap<Box<str>, Millis>>,
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
            absent: Mutex::new(HashMap::new()),
        })
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

impl Node {
    /// The cluster, if `init` named more than one node.
    #[inline]
    pub(crate) fn cluster(&self) -> Option<&Cluster> {
        self.cluster.get()
    }

    /// Routes a client request: `Some` when it was forwarded (or fanned out), `None` to serve it here.
    pub(crate) fn route(
        &self,
        c: &Cluster,
        req: Request,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Result<(), WireError>> {
        let b = &msg.body;
        match req {
            Request::Send => {
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
            Request::SendBatch => self.route_send_batch(c, msg, to, out),
            Request::ListOffsets => self.route_list_offsets(c, msg, to, out),
            r if r.is_group() => {
                // No group: served here, where the handler names the missing field.
                let g = b.str(Field::Group).ok()?.decode();
                let owner = c.coordinator(&g);
                (owner != c.me)
                    .then(|| self.forward_request(c, owner, msg, to, r.reads_only(), out))
            }
            Request::ListGroups => Some(self.fan_out(c, msg, to, true, out)),
            Request::CreateTopic => {
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

    /// The cluster's timer: retries and gives up forwarded batches, asks topics' homes,
    /// replicates, prunes the dedupe table. `now` is [`Node::now`] (tests pass later times).
    pub fn tick(&self, now: Millis, out: &mut Vec<u8>) {
        let Some(c) = self.cluster() else { return };
        self.retry_forwards(c, now, out);
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
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn body_text_finds_the_body() {
        assert_eq!(
            body_text(r#"{"src":"c1","body":{"type":"x","a":[1]},"dest":"n1"}"#),
            Some(r#"{"type":"x","a":[1]}"#)
        );
        assert_eq!(body_text(r#"{"src":"c1"}"#), None);
    }
}
