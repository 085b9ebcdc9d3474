//! Topics in a cluster: topic `t`'s home, node `murmur2(t) mod n`, alone creates it, so every
//! node agrees on its partition count. A request naming a topic its node does not know gets 11
//! (nothing happened) while the node asks the home (`topic_meta`) on its next tick. The default
//! topic is exempt: every node creates it alike from its configuration.

use super::forward::{Item, Outcome};
use super::{partition_count, Cluster, GIVE_UP_MS};
use crate::clock::Millis;
use crate::error::Error;
use crate::loom::lock;
use crate::maelstrom::node::{Node, ReplyTo};
use crate::maelstrom::wire::{Code, Field, JsonOut, Message, WireError};
use crate::partition::Key;
use crate::topic::Topic;

/// How long a home's "no such topic" answers a consumer's request here, before it is asked again.
const ABSENT_KEEP_MS: Millis = 1000;

/// A topic this node wants to learn from its home.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Want {
    /// The question is in flight.
    asked: bool,
    /// A producer named it: the home creates it if it does not exist yet. A consumer's question
    /// never creates a topic.
    create: bool,
}

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
            Some(c) if c.home(n) != c.me => self
                .broker
                .topics()
                .with(n, f)
                .ok_or_else(|| c.ask_home(n, true)),
            _ => Ok(self.broker.topics().with_or_create(n, f)?),
        }
    }

    /// The topic named `name` (the default topic when `None`) for a consumer, which never creates
    /// a topic (as Kafka's consumers do not): error 20 if it does not exist. In a cluster, a topic
    /// this node does not know yet is error 11 while its home is asked (without creating it), and
    /// 20 once the home has said it does not exist.
    pub(crate) fn consumer_topic(
        &self,
        name: Option<&str>,
    ) -> Result<crate::loom::Arc<Topic>, WireError> {
        let Some(n) = self.broker.other_than_default(name) else {
            return Ok(crate::loom::Arc::clone(self.broker.default_topic()));
        };
        if let Some(t) = self.broker.topics().get(n) {
            return Ok(t);
        }
        let unknown = || Error::UnknownTopic(n.to_string()).into();
        match self.cluster() {
            Some(c) if c.home(n) != c.me => {
                let said_absent = lock(&c.absent)
                    .get(n)
                    .is_some_and(|&at| self.now().saturating_sub(at) < ABSENT_KEEP_MS);
                Err(if said_absent {
                    unknown()
                } else {
                    c.ask_home(n, false)
                })
            }
            _ => Err(unknown()),
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
        let now = self.now();
        lock(&c.absent).retain(|_, at| now.saturating_sub(*at) < ABSENT_KEEP_MS);
        let asks: Vec<(Box<str>, bool)> = {
            let mut wanted = lock(&c.wanted);
            wanted.retain(|name, _| self.broker.topics().with(name, |_| ()).is_none());
            wanted
                .iter_mut()
                .filter(|(_, w)| !w.asked)
                .map(|(name, w)| {
                    w.asked = true;
                    (name.clone(), w.create)
                })
                .collect()
        };
        for (name, create) in asks {
            let home = c.home(&name);
            let mut body = Vec::new();
            body.extend_from_slice(b"{\"type\":\"topic_meta\",\"topic\":");
            body.string(&name);
            if create {
                body.extend_from_slice(b",\"create\":true");
            }
            body.push(b'}');
            let item = Item {
                src: self.id().unwrap_or("").into(),
                body: String::from_utf8(body).expect("JSON text is UTF-8").into(),
                deadline: self.now() + GIVE_UP_MS,
                done: Box::new(move |node, outcome, _out| {
                    let mut absent = false;
                    if let Outcome::Reply(reply) = outcome {
                        let count = reply.field("partitions").and_then(|v| v.as_u64());
                        if let Some(count) = count.and_then(partition_count) {
                            // The home's count; a conflict cannot arise, as only the home
                            // creates the topic (or sends its count), but is harmless if it did.
                            let _ = node.broker.topics().create(&name, count);
                        }
                        let code = reply.field("code").and_then(|v| v.as_u64());
                        absent = code == Some(u64::from(Code::KeyDoesNotExist.code()));
                    }
                    if let Some(c) = node.cluster() {
                        if absent {
                            lock(&c.absent).insert(name.clone(), node.now());
                        }
                        // Answered or not, the next request naming it asks again.
                        lock(&c.wanted).remove(&name);
                    }
                }),
            };
            self.forward(c, home, item, out);
        }
    }

    /// `topic_meta {topic, create?}` from a peer → `topic_meta_ok {partitions}`: the topic's
    /// partition count, from its home node, which creates it on first use for a producer's
    /// question (`create`) and answers 20 to a consumer's about a topic that does not exist.
    pub(crate) fn on_topic_meta(
        &self,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        self.cluster_of_peer(msg, "topic_meta")?;
        let name = msg.body.str(Field::Topic)?.decode();
        let count = if msg.body.opt_bool(Field::Create)? == Some(true) {
            self.with_topic(Some(&name), |t| t.partition_count())?
        } else {
            self.consumer_topic(Some(&name))?.partition_count()
        };
        self.ok(to, out);
        out.key("partitions").uint(u64::from(count));
        self.done(to, out);
        Ok(())
    }
}

impl Cluster {
    /// Notes that this node wants topic `name` from its home (a producer's question when
    /// `create`), and returns the error 11 that the request naming it gets meanwhile.
    fn ask_home(&self, name: &str, create: bool) -> WireError {
        lock(&self.wanted).entry(name.into()).or_default().create |= create;
        WireError::new(
            Code::TemporarilyUnavailable,
            format!(
                "topic {name:?} is not known on this node yet; its home node {} decides its \
                 partition count and is being asked: retry",
                self.ids[self.home(name)]
            ),
        )
    }
}
