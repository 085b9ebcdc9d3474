//! Requests over several leaders: a `send_batch` whose records belong to several partitions'
//! leaders is split (each leader appends its part; the client gets every offset in request order),
//! and `list_offsets` asks each partition's leader for its log end.

use super::forward::{Item, Outcome};
use super::{body_text, is_reply, Cluster, GIVE_UP_MS};
use crate::loom::{lock, Mutex, StdArc as Arc};
use crate::maelstrom::kafka_workload::{log_end, offset_pair};
use crate::maelstrom::node::{key_bytes, opt_topic, Node, OwnedReplyTo, ReplyTo};
use crate::maelstrom::wire::{Code, Field, JsonOut, Kind, Message, WireError};
use crate::partition::Key;
use std::collections::{BTreeMap, BTreeSet};

/// The state of a split `send_batch`: its records' offsets as the parts come back.
pub(super) struct BatchGather {
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
pub(super) struct EndsGather {
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
    /// `send_batch` in a cluster. Each record goes to its partition's leader (a keyless one to a
    /// partition this node leads, else to the leader of the next round-robin partition). A batch
    /// whose records all belong here is served here, one whose records all belong to one peer is
    /// forwarded whole, and any other is split: this node appends its own records and forwards
    /// each peer its part as a `send_batch` of its own, then answers with every offset in request
    /// order ([`Node::batch_part`]).
    pub(super) fn route_send_batch(
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
    pub(super) fn batch_part(
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
    pub(super) fn route_list_offsets(
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
    pub(super) fn ends_part(
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
}
