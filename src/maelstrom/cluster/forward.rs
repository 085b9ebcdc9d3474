//! Forwarding: a client request whose owner is another node goes to it in a `fwd` batch (one in
//! flight per peer; what arrives meanwhile waits for the next), is retried every [`RETRY_MS`] and
//! given up at [`GIVE_UP_MS`] (11 when it certainly did not happen, 13 when it may have). The owner
//! serves each item as a local request and keeps its answer by (origin, batch) for
//! [`DEDUPE_KEEP_MS`], so a retried batch is never applied twice.

use super::{body_text, Cluster, BATCH_MAX, GIVE_UP_MS, RETRY_MS};
use crate::clock::Millis;
use crate::loom::lock;
use crate::maelstrom::node::{Node, OwnedReplyTo, ReplyTo};
use crate::maelstrom::wire::reply::{self, JsonOut};
use crate::maelstrom::wire::{decode, Code, Field, Kind, Message, Raw, WireError};
use std::collections::HashMap;

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
    pub(super) src: Box<str>,
    /// The request's body, as it came.
    pub(super) body: Box<str>,
    pub(super) deadline: Millis,
    pub(super) done: Done,
}

/// A `fwd` batch in flight.
pub(super) struct Batch {
    seq: u64,
    msg_id: u64,
    items: Vec<Item>,
    /// The `msgs` array as sent (resent as is).
    payload: Vec<u8>,
    deadline: Millis,
    last_sent: Millis,
}

#[derive(Default)]
pub(super) struct Forwarding {
    next_seq: u64,
    queue: Vec<Item>,
    inflight: Option<Batch>,
}

/// Answered batches by (origin, seq): when answered, and the `msgs` array of the answer.
pub(super) type Dedupe = HashMap<(Box<str>, u64), (Millis, Box<[u8]>)>;

impl Node {
    /// Forwards one client request to node `peer`; the client's reply is written when the answer
    /// comes (or the request is given up).
    pub(super) fn forward_request(
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
    pub(super) fn relay(
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

    pub(super) fn start_batch(
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

    pub(super) fn send_fwd(
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
                o.key("seq").uint(seq);
                o.key("msgs").raw(payload);
            },
            Box::new(move |node, reply, out| node.batch_answered(peer, seq, reply, out)),
            out,
        )
    }

    /// The answer to batch `seq` to `peer` came: complete its items, send the next batch.
    pub(super) fn batch_answered(
        &self,
        peer: usize,
        seq: u64,
        reply: &Message<'_>,
        out: &mut Vec<u8>,
    ) {
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

    /// Resends each peer's batch in flight after [`RETRY_MS`], gives up batches and queued items
    /// at their deadline, and starts the next batch (from [`Node::tick`]).
    pub(super) fn retry_forwards(&self, c: &Cluster, now: Millis, out: &mut Vec<u8>) {
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
    }

    /// `fwd {seq, msgs: [[src, body], …]}` from a peer → `fwd_ok {msgs: [reply body, …]}`:
    /// serves each request here; a retried batch gets the first answer again.
    pub(crate) fn on_fwd(
        &self,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
        serve: &dyn Fn(&Message<'_>, &mut Vec<u8>),
    ) -> Result<(), WireError> {
        let c = self.cluster_of_peer(msg, "fwd")?;
        let seq = msg.body.u64(Field::Seq)?;
        let items = msg.body.array(Field::Msgs)?;
        let key: (Box<str>, u64) = (msg.src.raw().into(), seq);
        let cached = lock(&c.dedupe).get(&key).map(|(_, r)| r.clone());
        let replies = match cached {
            Some(r) => r,
            None => {
                let r = self.serve_items(items, serve);
                lock(&c.dedupe).insert(key, (self.now(), r.clone()));
                r
            }
        };
        self.ok(to, out);
        out.key("msgs").raw(&replies);
        self.done(to, out);
        Ok(())
    }

    /// Serves each forwarded item with `serve` (the dispatcher's local path: an item is never
    /// forwarded again); returns the `msgs` array of their reply bodies, in order.
    pub(super) fn serve_items(
        &self,
        items: Raw<'_>,
        serve: &dyn Fn(&Message<'_>, &mut Vec<u8>),
    ) -> Box<[u8]> {
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
                        serve(&m, &mut tmp);
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
}
