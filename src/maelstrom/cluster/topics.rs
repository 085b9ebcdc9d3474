//! Topics in a cluster: topic `t`'s home, node `murmur2(t) mod n`, alone creates it, so every
//! node agrees on its partition count. A request naming a topic its node does not know gets 11
//! (nothing happened) while the node asks the home (`topic_meta`) on its next tick. The default
//! topic is exempt: every node creates it alike from its configuration.

use super::forward::{Item, Outcome};
use super::{partition_count, Cluster, GIVE_UP_MS};
use crate::loom::lock;
use crate::maelstrom::node::{Node, ReplyTo};
use crate::maelstrom::wire::{Code, Field, JsonOut, Message, WireError};
use crate::partition::Key;
use crate::topic::Topic;

impl Node {
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
            Some(c) if c.home(n) != c.me => self.broker.topics().with(n, f).ok_or_else(|| {
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
            _ => Ok(self.broker.topics().with_or_create(n, f)),
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
    pub(super) fn ask_homes(&self, c: &Cluster, out: &mut Vec<u8>) {
        let asks: Vec<Box<str>> = {
            let mut wanted = lock(&c.wanted);
            wanted.retain(|name, _| self.broker.topics().with(name, |_| ()).is_none());
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
                            let _ = node.broker.topics().create(&name, count);
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
