//! Replication: each leader streams its partitions' records, with their offsets, to every other
//! node in `sync` batches (one in flight per peer, at most every [`SYNC_EVERY_MS`], resent from the
//! acknowledged position after [`SYNC_RESEND_MS`]); a replica appends each record with
//! `Partition::append_at(offset)`, which succeeds only at that exact offset, so its copy is a
//! prefix of the leader's by construction. The kafka workload's per-key commits travel in the
//! same batches (a max-merge register), and so does the topic list until a peer knows it all.

use super::{partition_count, Cluster, SYNC_EVERY_MS, SYNC_MAX_RECORDS, SYNC_RESEND_MS};
use crate::clock::Millis;
use crate::loom::lock;
use crate::maelstrom::node::{Node, ReplyTo};
use crate::maelstrom::wire::reply::{self, JsonOut};
use crate::maelstrom::wire::{Field, Message, WireError};
use crate::partition::{Key, KeyKind};
use std::collections::HashMap;

#[derive(Default)]
pub(super) struct Syncing {
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
pub(super) struct SyncSent {
    msg_id: u64,
    at: Millis,
    /// The commit version it carried.
    version: u64,
    /// How many topics it listed (0 when it listed none).
    topics: u64,
}

/// Per-key committed offsets this node accepted, versioned for gossip.
#[derive(Default)]
pub(super) struct Commits {
    version: u64,
    map: HashMap<Box<str>, (u64, u64)>,
}

impl Cluster {
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
}

impl Node {
    /// Commits Maelstrom's per-key `offset` (kept as the maximum); in a cluster, also notes it for
    /// gossip to every peer.
    pub(crate) fn commit_key(&self, key: &str, offset: u64) {
        self.broker.commit_key(key, offset);
        if let Some(c) = self.cluster() {
            c.note_commit(key, offset);
        }
    }

    /// Sends `peer` the records of the partitions this node leads beyond what it acknowledged,
    /// and the commits it has not acknowledged.
    pub(super) fn sync_peer(&self, c: &Cluster, peer: usize, now: Millis, out: &mut Vec<u8>) {
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
        let topics = self.broker.topics().list();
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
                        Some(k) if k.kind == KeyKind::Json => {
                            parts.extend_from_slice(b"[2,");
                            parts.extend_from_slice(k.bytes);
                            parts.push(b',');
                        }
                        // A Kafka record's key: replicated as a string key.
                        Some(k) => {
                            parts.extend_from_slice(b"[1,");
                            crate::maelstrom::node::write_key(&mut parts, Some(k));
                            parts.push(b',');
                        }
                    }
                    crate::maelstrom::node::write_value(&mut parts, &r);
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
                o.key("records").raw(&parts);
                o.key("commits").raw(&commits);
                o.key("version").uint(version);
                if !meta.is_empty() {
                    o.key("topics").raw(&meta);
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
    pub(super) fn sync_answered(&self, peer: usize, reply: &Message<'_>) {
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
        if let Some(acks) = reply.body.get(Field::Ends) {
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
                let Some(topic) = self.broker.topics().get(&name) else {
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
        if let Ok(Some(t)) = reply.body.opt_u64(Field::Topics) {
            s.topics_acked = s.topics_acked.max(t.min(sent.topics));
        }
        if let Ok(v) = reply.body.u64(Field::Version) {
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
        if let Some(meta) = b.get(Field::Topics) {
            let mut k = 0u64;
            for t in meta.value.items() {
                let mut it = t.items();
                if let (Some(name), Some(count)) = (
                    it.next().and_then(|n| n.as_str()),
                    it.next().and_then(|c| c.as_u64()),
                ) {
                    let name = name.decode();
                    if self.broker.topics().get(&name).is_some()
                        || partition_count(count)
                            .is_some_and(|n| self.broker.topics().create(&name, n).is_ok())
                    {
                        k += 1;
                    }
                }
            }
            known = Some(k);
        }
        let mut acks = vec![b'['];
        for entry in b.array(Field::Records)?.items() {
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
            let topic = match self.broker.topics().get(&name) {
                Some(t) => t,
                None => match partition_count(count).map(|n| self.broker.topics().create(&name, n))
                {
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
                // Only at `offset` (a compare-and-swap on the log's reservation): a record that
                // another append got in first leaves this copy as it was, so the copy stays a
                // prefix of its leader's log by construction, whatever runs beside this.
                if let Err(next) =
                    part.append_at(offset, key, &value.compact(), crate::clock::wall_ms())
                {
                    tracing::error!(
                        topic = &*name,
                        p,
                        want = offset,
                        next,
                        "replica append out of place: the rest of this batch is dropped"
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
        if let Some(s) = b.get(Field::Commits) {
            for (k, v) in s.value.entries() {
                if let Some(o) = v.as_u64() {
                    self.broker.commit_key(&k.decode(), o);
                }
            }
        }
        self.ok(to, out);
        out.key("ends").raw(&acks);
        out.key("version").uint(b.u64(Field::Version).unwrap_or(0));
        if let Some(k) = known {
            // How many of the listed topics this node now knows.
            out.key("topics").uint(k);
        }
        self.done(to, out);
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

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
