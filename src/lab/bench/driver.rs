//! The load: one writer thread that keeps every client's window full, one reader thread that checks
//! every reply, and the checks that need the whole run (reading every acknowledged record back).
//!
//! Each client has `window` slots, indexed by `msg_id % window`. The writer fills a free slot (the
//! operation and its send time), marks it busy and appends the request to one batch; a whole pass
//! over the clients goes out in one `write`. The reader matches each reply to its slot by
//! `in_reply_to`, checks it, records its latency and frees the slot. When no slot is free the writer
//! parks; the reader bumps an epoch after each chunk it processed and unparks a parked writer. With
//! one client and a window of one there are no threads at all: `closed_loop` writes a request and
//! reads its reply, the lowest-overhead round trip the driver can offer.
//!
//! # Orderings
//! - `Slot::op`: the writer's Release store (busy) synchronizes with the reader's Acquire load in
//!   `Reader::reply`, so the reader sees the slot's `t` (stored Relaxed before it). The reader's
//!   Release store (free) synchronizes with the writer's Acquire load in `Writer::pass`, so the
//!   writer reuses a slot only after the reader is done with it.
//! - `ClientShared::sent`: the writer's Release store synchronizes with the reader's Acquire load in
//!   `Reader::finished`; `finished` flags likewise (Release store, Acquire load).
//! - `epoch` and `parked` are all SeqCst: the writer stores `parked` then loads `epoch`; the reader
//!   bumps `epoch` then loads `parked` (Dekker's pattern), so either the writer sees the new epoch
//!   and rescans, or the reader sees `parked` and unparks it (a token, so an unpark that comes
//!   before the park is not lost).
//! - `earlier` (per key, an acknowledged offset the writer may poll from) is a hint: any value is an
//!   acknowledged offset, and the record behind it was appended before the ack the reader saw,
//!   so Relaxed is enough.
//! - `abort` and `producers_done`: Release stores, Acquire loads.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::fast;
use super::process::{thread_cpu, LineReader};
use crate::loom::{Arc, AtomicBool, AtomicU64, Ordering};
use crate::maelstrom::wire::{self, Field, JsonOut, Kind};

/// Which load to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only `send`, over `keys` keys.
    Send,
    /// 80% send, 15% poll from an earlier acknowledged offset, 5% commit_offsets.
    Mixed,
    /// Producers send while consumers in groups poll batches.
    Groups,
}

/// What one run drives.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: Mode,
    /// Producing clients (all clients in `send` and `mixed`).
    pub clients: usize,
    /// Requests in flight per producing client.
    pub window: usize,
    /// Operations of the producing clients in total.
    pub ops: u64,
    /// Distinct keys.
    pub keys: usize,
    /// groups: number of groups.
    pub groups: usize,
    /// groups: consumers in all (spread over the groups in turn).
    pub consumers: usize,
    /// groups: `max_messages` of each poll.
    pub max_messages: u64,
    /// groups: polls in flight per consumer.
    pub consumer_window: usize,
    /// Seed of the operation stream.
    pub seed: u64,
    /// Read every acknowledged record back at the end (off for a node that stores nothing).
    pub readback: bool,
    /// The node's id (the `dest` of every request).
    pub node: String,
}

impl Plan {
    fn total_clients(&self) -> usize {
        self.clients
            + if self.mode == Mode::Groups {
                self.consumers
            } else {
                0
            }
    }

    fn is_consumer(&self, c: usize) -> bool {
        c >= self.clients
    }

    fn window_of(&self, c: usize) -> usize {
        if self.is_consumer(c) {
            self.consumer_window
        } else {
            self.window
        }
    }

    /// The group of consumer client `c`.
    fn group_of(&self, c: usize) -> usize {
        (c - self.clients) % self.groups.max(1)
    }
}

/// Anomalies the checks found: counts by kind, and the first few examples.
#[derive(Debug, Default, Clone)]
pub struct Anomalies {
    pub counts: BTreeMap<&'static str, u64>,
    pub examples: Vec<String>,
}

impl Anomalies {
    /// Records one anomaly; the example text is built only for the first few.
    pub fn add(&mut self, kind: &'static str, example: impl FnOnce() -> String) {
        *self.counts.entry(kind).or_default() += 1;
        if self.examples.len() < 10 {
            self.examples.push(format!("{kind}: {}", example()));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// What a run measured and found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Requests answered during the load.
    pub ops: u64,
    /// Sends acknowledged.
    pub acked: u64,
    /// groups: records delivered to consumers (all groups, re-deliveries included).
    pub delivered: u64,
    /// groups: polls answered.
    pub polls: u64,
    /// From the first request written to the last reply read.
    pub elapsed: Duration,
    /// Latency of every answered request, in nanoseconds.
    pub latencies_ns: Vec<u32>,
    /// CPU time of the driver's own threads during the load.
    pub driver_cpu: Duration,
    pub anomalies: Anomalies,
}

const BUSY: u64 = 1 << 61;
const KIND_SHIFT: u32 = 62;
const KEY_SHIFT: u32 = 40;
const ARG_MASK: u64 = (1 << 40) - 1;
const KEY_MASK: u64 = (1 << 21) - 1;
const K_SEND: u64 = 0;
const K_POLL: u64 = 1;
const K_COMMIT: u64 = 2;
const K_GPOLL: u64 = 3;
const NONE: u64 = u64::MAX;

#[derive(Debug, Default)]
struct Slot {
    /// Send time, nanoseconds since the run's start.
    t: AtomicU64,
    /// `kind << 62 | BUSY | key << 40 | arg`; 0 when free. arg: the `msg` of a send, the offset of
    /// a poll or commit, 1 for a group poll sent after every send was acknowledged.
    op: AtomicU64,
}

#[derive(Debug)]
struct ClientShared {
    slots: Box<[Slot]>,
    /// Requests written so far (the last msg_id).
    sent: CachePadded<AtomicU64>,
    /// No more requests will be written for this client.
    finished: AtomicBool,
}

#[derive(Debug)]
struct Shared {
    clients: Vec<ClientShared>,
    earlier: Vec<AtomicU64>,
    producers_done: AtomicBool,
    epoch: CachePadded<AtomicU64>,
    parked: CachePadded<AtomicBool>,
    abort: AtomicBool,
    writer: Thread,
    start: Instant,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// The writer side: builds requests into one batch.
struct Writer {
    shared: Arc<Shared>,
    plan: Plan,
    rng: SmallRng,
    next_id: Vec<u64>,
    remaining: u64,
    next_msg: u64,
    names: Vec<String>,
    buf: Vec<u8>,
}

impl Writer {
    /// One pass over the clients: every free slot gets a request. Returns whether every client is
    /// finished.
    fn pass(&mut self) -> bool {
        let sh = Arc::clone(&self.shared);
        let t = sh.now_ns();
        let mut all_finished = true;
        for c in 0..self.names.len() {
            let cl = &sh.clients[c];
            // Acquire: pairs with the reader's Release store of a consumer's `finished`.
            if cl.finished.load(Ordering::Acquire) {
                continue;
            }
            all_finished = false;
            let w = self.plan.window_of(c) as u64;
            let mut wrote = false;
            loop {
                let id = self.next_id[c];
                let slot = &cl.slots[(id % w) as usize];
                // Acquire: pairs with the reader's Release store that freed the slot.
                if slot.op.load(Ordering::Acquire) != 0 {
                    break;
                }
                let op = if self.plan.is_consumer(c) {
                    // Acquire: pairs with the reader's Release store of `producers_done`.
                    let after = sh.producers_done.load(Ordering::Acquire);
                    self.group_poll(c, id);
                    K_GPOLL << KIND_SHIFT | u64::from(after)
                } else {
                    if self.remaining == 0 {
                        for p in &sh.clients[..self.plan.clients] {
                            // Release: pairs with the Acquire loads in `pass` and `Reader::finished`.
                            p.finished.store(true, Ordering::Release);
                        }
                        break;
                    }
                    self.remaining -= 1;
                    self.op(c, id)
                };
                slot.t.store(t, Ordering::Relaxed); // published by the Release store below
                                                    // Release: pairs with the reader's Acquire load in `Reader::reply`.
                slot.op.store(op | BUSY, Ordering::Release);
                self.next_id[c] = id + 1;
                wrote = true;
            }
            if wrote {
                // Release: pairs with the reader's Acquire load in `Reader::finished`.
                cl.sent.store(self.next_id[c] - 1, Ordering::Release);
            }
        }
        all_finished
    }

    fn head(&mut self, c: usize, ty: &str, id: u64) {
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"src\":\"");
        b.extend_from_slice(self.names[c].as_bytes());
        b.extend_from_slice(b"\",\"dest\":\"");
        b.extend_from_slice(self.plan.node.as_bytes());
        b.extend_from_slice(b"\",\"body\":{\"type\":\"");
        b.extend_from_slice(ty.as_bytes());
        b.extend_from_slice(b"\",\"msg_id\":");
        b.uint(id);
    }

    /// A producer's next operation, written into the batch; returns its slot word (without BUSY).
    fn op(&mut self, c: usize, id: u64) -> u64 {
        let key = self.rng.random_range(0..self.plan.keys) as u64;
        let mut kind = K_SEND;
        let mut from = NONE;
        if self.plan.mode == Mode::Mixed {
            let r = self.rng.random_range(0..100u32);
            if r >= 80 {
                // Relaxed: a hint, see the module's # Orderings.
                from = self.shared.earlier[key as usize].load(Ordering::Relaxed);
                if from != NONE {
                    kind = if r < 95 { K_POLL } else { K_COMMIT };
                }
            }
        }
        match kind {
            K_SEND => {
                let msg = self.next_msg;
                self.next_msg += 1;
                self.head(c, "send", id);
                self.buf.extend_from_slice(b",\"key\":\"");
                self.buf.uint(key).extend_from_slice(b"\",\"msg\":");
                self.buf.uint(msg).extend_from_slice(b"}}\n");
                K_SEND << KIND_SHIFT | key << KEY_SHIFT | msg
            }
            _ => {
                self.head(
                    c,
                    if kind == K_POLL {
                        "poll"
                    } else {
                        "commit_offsets"
                    },
                    id,
                );
                self.buf.extend_from_slice(b",\"offsets\":{\"");
                self.buf.uint(key).extend_from_slice(b"\":");
                self.buf.uint(from).extend_from_slice(b"}}}\n");
                kind << KIND_SHIFT | key << KEY_SHIFT | from
            }
        }
    }

    fn group_poll(&mut self, c: usize, id: u64) {
        let g = self.plan.group_of(c);
        self.head(c, "poll", id);
        self.buf.extend_from_slice(b",\"group\":\"g");
        self.buf
            .uint(g as u64)
            .extend_from_slice(b"\",\"consumer\":\"");
        let name = std::mem::take(&mut self.names[c]);
        self.buf.extend_from_slice(name.as_bytes());
        self.names[c] = name;
        self.buf.extend_from_slice(b"\",\"max_messages\":");
        self.buf
            .uint(self.plan.max_messages)
            .extend_from_slice(b"}}\n");
    }

    /// The writer thread's loop.
    fn run(mut self, mut out: impl Write) -> io::Result<()> {
        let sh = Arc::clone(&self.shared);
        loop {
            // Acquire: pairs with the reader's Release store of `abort`.
            if sh.abort.load(Ordering::Acquire) {
                return Ok(());
            }
            let e = sh.epoch.load(Ordering::SeqCst);
            let finished = self.pass();
            if !self.buf.is_empty() {
                if let Err(err) = out.write_all(&self.buf).and_then(|()| out.flush()) {
                    // Release: pairs with the Acquire loads of `abort`.
                    sh.abort.store(true, Ordering::Release);
                    return Err(err);
                }
                self.buf.clear();
                continue;
            }
            if finished {
                return Ok(());
            }
            sh.parked.store(true, Ordering::SeqCst);
            if sh.epoch.load(Ordering::SeqCst) == e {
                thread::park();
            }
            sh.parked.store(false, Ordering::SeqCst);
        }
    }
}

/// The reader side: checks replies and keeps what the final checks need.
struct Reader {
    shared: Arc<Shared>,
    plan: Plan,
    completed: Vec<u64>,
    /// Per (client, key): the last offset a send of that client got, or NONE.
    last_send: Vec<u64>,
    /// Per key: acknowledged (offset, msg).
    acks: Vec<Vec<(u64, u64)>>,
    /// groups, per (consumer, key): the last offset delivered, or NONE.
    last_recv: Vec<u64>,
    /// groups, per group and key: delivered (offset, msg).
    recv: Vec<Vec<Vec<(u64, u64)>>>,
    acked: u64,
    delivered: u64,
    polls: u64,
    ops: u64,
    lat: Vec<u32>,
    last_t: u64,
    anomalies: Anomalies,
    /// The records of the poll reply being checked, `(key, offset, msg)`: reused.
    scratch: Vec<(u64, u64, u64)>,
}

/// The client index of a `c<digits>` name.
fn client_index(name: &str) -> Option<usize> {
    name.strip_prefix('c')?.parse().ok()
}

fn key_index(raw: wire::Raw<'_>) -> Option<u64> {
    raw.as_str()?.raw().parse().ok()
}

impl Reader {
    fn new(shared: Arc<Shared>, plan: Plan, store: Store) -> Self {
        let n = plan.total_clients();
        let k = plan.keys;
        Reader {
            completed: vec![0; n],
            last_send: vec![NONE; n * k],
            acks: store.acks,
            last_recv: vec![NONE; n * k],
            recv: store.recv,
            acked: 0,
            delivered: 0,
            polls: 0,
            ops: 0,
            lat: store.lat,
            last_t: 0,
            anomalies: Anomalies::default(),
            scratch: Vec::with_capacity(1024),
            shared,
            plan,
        }
    }

    /// Checks one reply line received at `now` (ns since start).
    fn reply(&mut self, line: &[u8], now: u64) {
        if self.fast_reply(line, now) {
            return;
        }
        let m = match wire::decode(line) {
            Ok(m) => m,
            Err(e) => {
                return self.anomalies.add("bad-line", || {
                    format!("{e}: {}", String::from_utf8_lossy(line))
                })
            }
        };
        let dest = m.dest.map(|d| d.raw()).unwrap_or("");
        let (Some(c), Ok(Some(id))) = (client_index(dest), m.body.opt_u64(Field::InReplyTo)) else {
            return self.anomalies.add("unexpected-reply", || {
                String::from_utf8_lossy(line).into_owned()
            });
        };
        if c >= self.completed.len() {
            return self
                .anomalies
                .add("unexpected-reply", || String::from_utf8_lossy(line).into());
        }
        let w = self.plan.window_of(c) as u64;
        let slot_index = (id % w) as usize;
        let slot = &self.shared.clients[c].slots[slot_index];
        // Acquire: pairs with the writer's Release store that filled the slot.
        let op = slot.op.load(Ordering::Acquire);
        if op & BUSY == 0 || id == 0 {
            return self
                .anomalies
                .add("unexpected-reply", || String::from_utf8_lossy(line).into());
        }
        let t = slot.t.load(Ordering::Relaxed);
        let ty = m.body.str(Field::Type).map(|t| t.raw()).unwrap_or("");
        let key = (op >> KEY_SHIFT & KEY_MASK) as usize;
        let arg = op & ARG_MASK;
        match op >> KIND_SHIFT {
            K_SEND if ty == "send_ok" => match m.body.u64(Field::Offset) {
                Ok(off) => self.send_ok(c, op, off),
                Err(e) => self.anomalies.add("malformed-reply", || e.to_string()),
            },
            K_POLL if ty == "poll_ok" => self.check_poll(&m.body, key, arg),
            K_COMMIT if ty == "commit_offsets_ok" => {}
            K_GPOLL if ty == "poll_ok" => self.check_group_poll(&m.body, c, arg == 1),
            _ => self.anomalies.add("wrong-reply-type", || {
                String::from_utf8_lossy(line).into_owned()
            }),
        }
        self.complete(c, slot_index, t, now);
    }

    /// The fast path: a reply in kgroups' exact layout ([`fast`]), checked as the general path
    /// checks it. Returns false, having changed nothing, for any other line.
    #[inline]
    fn fast_reply(&mut self, line: &[u8], now: u64) -> bool {
        let Some(h) = fast::head(line, &self.plan.node) else {
            return false;
        };
        let c = h.client;
        if c >= self.completed.len() || h.in_reply_to == 0 {
            return false;
        }
        let w = self.plan.window_of(c) as u64;
        let slot_index = (h.in_reply_to % w) as usize;
        let slot = &self.shared.clients[c].slots[slot_index];
        // Acquire: pairs with the writer's Release store that filled the slot.
        let op = slot.op.load(Ordering::Acquire);
        if op & BUSY == 0 {
            return false;
        }
        let t = slot.t.load(Ordering::Relaxed);
        let key = (op >> KEY_SHIFT & KEY_MASK) as usize;
        let arg = op & ARG_MASK;
        match (op >> KIND_SHIFT, h.ty) {
            (K_SEND, b"send_ok") => match fast::send_ok(h.body) {
                Some(off) => self.send_ok(c, op, off),
                None => return false,
            },
            (K_COMMIT, b"commit_offsets_ok") if h.body.is_empty() => {}
            (K_POLL, b"poll_ok") => {
                let mut recs = std::mem::take(&mut self.scratch);
                recs.clear();
                let got = fast::kafka_poll(h.body, &mut recs);
                if let Some(got) = got {
                    match got {
                        Some(k) if k == key as u64 => {
                            self.poll_key(key, arg, recs.iter().map(|r| Some(r.1)))
                        }
                        Some(k) => {
                            self.anomalies.add("poll-wrong-key", || k.to_string());
                            self.poll_nothing(key, arg);
                        }
                        None => self.poll_nothing(key, arg),
                    }
                }
                self.scratch = recs;
                if got.is_none() {
                    return false;
                }
            }
            (K_GPOLL, b"poll_ok") => {
                let mut recs = std::mem::take(&mut self.scratch);
                recs.clear();
                let ok = fast::group_poll(h.body, &mut recs).is_some();
                if ok {
                    self.polls += 1;
                    let g = self.plan.group_of(c);
                    for &(key, off, msg) in &recs {
                        self.group_record(c, g, key, off, msg);
                    }
                    self.group_poll_end(c, recs.len() as u64, arg == 1);
                }
                self.scratch = recs;
                if !ok {
                    return false;
                }
            }
            _ => return false,
        }
        self.complete(c, slot_index, t, now);
        true
    }

    /// Frees the slot and counts the answered request.
    #[inline]
    fn complete(&mut self, c: usize, slot_index: usize, t: u64, now: u64) {
        // Release: pairs with the writer's Acquire load in `Writer::pass` (the slot is free).
        self.shared.clients[c].slots[slot_index]
            .op
            .store(0, Ordering::Release);
        self.completed[c] += 1;
        self.ops += 1;
        self.lat
            .push(now.saturating_sub(t).min(u64::from(u32::MAX)) as u32);
        self.last_t = now;
    }

    /// A `send_ok` with `off` for the send in slot word `op` of client `c`.
    #[inline]
    fn send_ok(&mut self, c: usize, op: u64, off: u64) {
        let key = (op >> KEY_SHIFT & KEY_MASK) as usize;
        let last = &mut self.last_send[c * self.plan.keys + key];
        if *last != NONE && off <= *last {
            let prev = *last;
            self.anomalies.add("non-monotonic-send", || {
                format!("client c{c} key {key}: offset {off} after {prev}")
            });
        }
        *last = off;
        let acks = &mut self.acks[key];
        acks.push((off, op & ARG_MASK));
        if self.plan.mode == Mode::Mixed {
            let earlier = acks[acks.len().saturating_sub(16)].0;
            // Relaxed: a hint, see the module's # Orderings.
            self.shared.earlier[key].store(earlier, Ordering::Relaxed);
        }
        self.acked += 1;
        if self.acked == self.plan.ops && self.plan.mode == Mode::Groups {
            // Release: pairs with the writer's Acquire load in `Writer::pass`.
            self.shared.producers_done.store(true, Ordering::Release);
        }
    }

    /// `poll` from an acknowledged offset: the key's records start exactly there and ascend.
    fn check_poll(&mut self, body: &wire::Body<'_>, key: usize, from: u64) {
        let Ok(msgs) = body.object(Field::Msgs) else {
            return self
                .anomalies
                .add("malformed-reply", || "poll_ok without msgs".into());
        };
        let mut seen = false;
        for (k, v) in msgs.entries() {
            if k.raw().parse::<usize>().ok() != Some(key) {
                self.anomalies.add("poll-wrong-key", || k.raw().to_string());
                continue;
            }
            seen = true;
            self.poll_key(
                key,
                from,
                v.items()
                    .map(|rec| rec.items().next().and_then(|o| o.as_u64())),
            );
        }
        if !seen {
            self.poll_nothing(key, from);
        }
    }

    /// The offsets a `poll` from acknowledged `from` returned for its key (None: a record without
    /// an integer offset): they start at `from` and ascend.
    fn poll_key(&mut self, key: usize, from: u64, offsets: impl Iterator<Item = Option<u64>>) {
        let mut prev = NONE;
        for (i, off) in offsets.enumerate() {
            match off {
                Some(o) if i == 0 && o != from => self.anomalies.add("poll-skip", || {
                    format!("key {key}: poll from acknowledged {from} began at {o}")
                }),
                Some(o) if prev != NONE && o <= prev => {
                    self.anomalies.add("non-monotonic-poll", || {
                        format!("key {key}: {o} after {prev}")
                    })
                }
                Some(_) => {}
                None => self.anomalies.add("malformed-reply", || {
                    format!("key {key}: record {i} without an integer offset")
                }),
            }
            prev = off.unwrap_or(prev);
        }
    }

    /// A `poll` from an acknowledged offset returned nothing for its key.
    #[cold]
    fn poll_nothing(&mut self, key: usize, from: u64) {
        self.anomalies.add("poll-skip", || {
            format!("key {key}: poll from acknowledged offset {from} returned nothing")
        });
    }

    /// A group poll: per consumer and key, offsets ascend across polls; keep every record.
    fn check_group_poll(&mut self, body: &wire::Body<'_>, c: usize, after_done: bool) {
        self.polls += 1;
        let Ok(msgs) = body.array(Field::Msgs) else {
            return self
                .anomalies
                .add("malformed-reply", || "poll_ok without msgs".into());
        };
        let g = self.plan.group_of(c);
        let mut n = 0u64;
        for rec in msgs.items() {
            n += 1;
            let (mut key, mut off, mut msg) = (None, None, None);
            for (k, v) in rec.entries() {
                match k.raw() {
                    "key" => key = key_index(v),
                    "offset" => off = v.as_u64(),
                    "msg" => msg = v.as_u64(),
                    _ => {}
                }
            }
            let (Some(key), Some(off), Some(msg)) = (key, off, msg) else {
                self.anomalies
                    .add("malformed-reply", || rec.text().to_string());
                continue;
            };
            self.group_record(c, g, key, off, msg);
        }
        self.group_poll_end(c, n, after_done);
    }

    /// One record delivered to consumer `c` of group `g`: its offset is past the last one this
    /// consumer got for the key; kept for the final check.
    #[inline]
    fn group_record(&mut self, c: usize, g: usize, key: u64, off: u64, msg: u64) {
        if key >= self.plan.keys as u64 {
            return self.anomalies.add("unknown-key", || {
                format!("key {key} offset {off} msg {msg}")
            });
        }
        let key = key as usize;
        let last = &mut self.last_recv[c * self.plan.keys + key];
        if *last != NONE && off <= *last {
            let prev = *last;
            self.anomalies.add("non-monotonic-delivery", || {
                format!("consumer c{c} key {key}: offset {off} after {prev}")
            });
        }
        *last = off;
        self.recv[g][key].push((off, msg));
    }

    /// A group poll of consumer `c` delivered `n` records; an empty one after every send was
    /// acknowledged finishes the consumer.
    fn group_poll_end(&mut self, c: usize, n: u64, after_done: bool) {
        self.delivered += n;
        if n == 0 && after_done {
            // Release: pairs with the writer's Acquire load in `Writer::pass`.
            self.shared.clients[c]
                .finished
                .store(true, Ordering::Release);
        }
    }

    /// Whether every client is finished and every request it wrote is answered.
    fn finished(&self) -> bool {
        self.shared.clients.iter().enumerate().all(|(c, cl)| {
            // Acquire: pairs with the writer's Release stores of `finished` and `sent`.
            cl.finished.load(Ordering::Acquire)
                && cl.sent.load(Ordering::Acquire) == self.completed[c]
        })
    }

    /// After each chunk: wake the writer if it waits for free slots.
    fn chunk_done(&self) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        if self.shared.parked.load(Ordering::SeqCst) {
            self.shared.writer.unpark();
        }
    }

    /// The reader thread's loop: until every client is finished, or the node closes stdout.
    fn run<R: Read>(mut self, lines: &mut LineReader<R>) -> Self {
        while !self.finished() {
            match lines.fill() {
                Ok(0) | Err(_) => {
                    self.anomalies
                        .add("node-exited", || "the node closed its stdout".into());
                    // Release: pairs with the writer's Acquire load.
                    self.shared.abort.store(true, Ordering::Release);
                    self.chunk_done();
                    break;
                }
                Ok(_) => {}
            }
            let now = self.shared.now_ns();
            while let Some(line) = lines.next_line() {
                self.reply(line, now);
            }
            self.chunk_done();
        }
        self
    }

    fn finished_with(self, driver_cpu: Duration) -> Finished {
        Finished {
            outcome: Outcome {
                ops: self.ops,
                acked: self.acked,
                delivered: self.delivered,
                polls: self.polls,
                elapsed: Duration::from_nanos(self.last_t),
                latencies_ns: self.lat,
                driver_cpu,
                anomalies: self.anomalies,
            },
            acks: self.acks,
            recv: self.recv,
        }
    }
}

/// The reader's record stores, sized for the whole load and written once before it starts (so the
/// load's figures count neither their growth nor their first-touch page faults).
struct Store {
    acks: Vec<Vec<(u64, u64)>>,
    recv: Vec<Vec<Vec<(u64, u64)>>>,
    lat: Vec<u32>,
}

impl Store {
    fn new(plan: &Plan) -> Self {
        let k = plan.keys.max(1);
        // Uniform keys: the mean per key, plus slack (a store that is still too small just grows).
        let mean = plan.ops as usize / k;
        let per_key = mean + 4 * (mean as f64).sqrt() as usize + 64;
        let groups = if plan.mode == Mode::Groups {
            plan.groups.max(1)
        } else {
            0
        };
        Store {
            acks: (0..k).map(|_| touched(per_key)).collect(),
            recv: (0..groups.max(1))
                .map(|_| {
                    (0..k)
                        .map(|_| touched(if groups > 0 { per_key } else { 0 }))
                        .collect()
                })
                .collect(),
            lat: touched(plan.ops as usize + 1024),
        }
    }
}

/// An empty vector with room for `n` elements, its memory already written once.
fn touched<T: Copy + Default>(n: usize) -> Vec<T> {
    // Not `vec![x; n]`, which may map zeroed pages without touching them.
    let mut v = Vec::with_capacity(n);
    v.resize(n, T::default());
    v.clear();
    v
}

fn shared_for(plan: &Plan, writer: Thread) -> Arc<Shared> {
    let clients = (0..plan.total_clients())
        .map(|c| ClientShared {
            slots: (0..plan.window_of(c)).map(|_| Slot::default()).collect(),
            sent: CachePadded::new(AtomicU64::new(0)),
            finished: AtomicBool::new(false),
        })
        .collect();
    Arc::new(Shared {
        clients,
        earlier: (0..plan.keys).map(|_| AtomicU64::new(NONE)).collect(),
        producers_done: AtomicBool::new(false),
        epoch: CachePadded::new(AtomicU64::new(0)),
        parked: CachePadded::new(AtomicBool::new(false)),
        abort: AtomicBool::new(false),
        writer,
        start: Instant::now(),
    })
}

fn writer_for(shared: &Arc<Shared>, plan: &Plan) -> Writer {
    Writer {
        shared: Arc::clone(shared),
        plan: plan.clone(),
        rng: SmallRng::seed_from_u64(plan.seed),
        next_id: vec![1; plan.total_clients()],
        remaining: plan.ops,
        next_msg: 0,
        names: (0..plan.total_clients()).map(|c| format!("c{c}")).collect(),
        buf: Vec::with_capacity(1 << 16),
    }
}

/// The final state of a load: what the checks at the end need.
pub struct Finished {
    pub outcome: Outcome,
    acks: Vec<Vec<(u64, u64)>>,
    recv: Vec<Vec<Vec<(u64, u64)>>>,
}

/// Drives the load through `input`/`lines` (the node's stdin and stdout). Blocks until the load is
/// done (or the node exits); hands the pipes back for the read-back.
pub fn drive<W: Write + Send + 'static, R: Read + Send + 'static>(
    plan: &Plan,
    input: W,
    mut lines: LineReader<R>,
) -> (Finished, Option<W>, LineReader<R>) {
    if plan.mode != Mode::Groups && plan.clients == 1 && plan.window == 1 {
        return closed_loop(plan, input, lines);
    }
    let (tx, rx) = crossbeam_channel::bounded::<Writer>(1);
    let writer_thread = thread::Builder::new()
        .name("bench-writer".into())
        .spawn(move || {
            let cpu0 = thread_cpu();
            let mut input = input;
            if let Ok(w) = rx.recv() {
                let _ = w.run(&mut input);
            }
            (input, thread_cpu() - cpu0)
        })
        .expect("spawn the bench writer");
    let store = Store::new(plan);
    let shared = shared_for(plan, writer_thread.thread().clone());
    let reader = Reader::new(Arc::clone(&shared), plan.clone(), store);
    let cpu0 = thread_cpu();
    let _ = tx.send(writer_for(&shared, plan));
    let reader = reader.run(&mut lines);
    let reader_cpu = thread_cpu() - cpu0;
    let (input, writer_cpu) = match writer_thread.join() {
        Ok((i, cpu)) => (Some(i), cpu),
        Err(_) => (None, Duration::ZERO),
    };
    (reader.finished_with(reader_cpu + writer_cpu), input, lines)
}

/// One client, one request at a time, on the calling thread: write, read the reply, repeat.
fn closed_loop<W: Write, R: Read>(
    plan: &Plan,
    mut input: W,
    mut lines: LineReader<R>,
) -> (Finished, Option<W>, LineReader<R>) {
    let store = Store::new(plan);
    let shared = shared_for(plan, thread::current());
    let mut writer = writer_for(&shared, plan);
    let mut reader = Reader::new(Arc::clone(&shared), plan.clone(), store);
    let cpu0 = thread_cpu();
    'run: loop {
        let finished = writer.pass();
        if writer.buf.is_empty() {
            if finished || writer.remaining == 0 {
                break;
            }
            reader
                .anomalies
                .add("stalled", || "no reply to a request".into());
            break;
        }
        if input
            .write_all(&writer.buf)
            .and_then(|()| input.flush())
            .is_err()
        {
            reader
                .anomalies
                .add("node-exited", || "stdin closed".into());
            break;
        }
        writer.buf.clear();
        let before = reader.ops;
        while reader.ops == before {
            match lines.fill() {
                Ok(0) | Err(_) => {
                    reader
                        .anomalies
                        .add("node-exited", || "the node closed its stdout".into());
                    break 'run;
                }
                Ok(_) => {}
            }
            let now = shared.now_ns();
            while let Some(line) = lines.next_line() {
                reader.reply(line, now);
            }
        }
    }
    let cpu = thread_cpu() - cpu0;
    (reader.finished_with(cpu), Some(input), lines)
}

/// Reads every key back from offset 0 with Maelstrom `poll`s (as client `c<clients>`) and checks
/// that every acknowledged send is there with its value, offsets ascending per key.
pub fn read_back<W: Write, R: Read>(
    plan: &Plan,
    fin: &mut Finished,
    input: &mut W,
    lines: &mut LineReader<R>,
) {
    let me = format!("c{}", plan.total_clients());
    let k = plan.keys;
    let mut from = vec![0u64; k];
    let mut open: Vec<usize> = (0..k).collect();
    let mut got: Vec<Vec<(u64, u64)>> = vec![Vec::new(); k];
    let mut id = 0u64;
    let max_acked: Vec<u64> = fin
        .acks
        .iter()
        .map(|a| a.iter().map(|r| r.0).max().unwrap_or(0))
        .collect();
    let an = &mut fin.outcome.anomalies;
    while !open.is_empty() {
        id += 1;
        let mut req = Vec::with_capacity(64 + open.len() * 16);
        req.extend_from_slice(b"{\"src\":\"");
        req.extend_from_slice(me.as_bytes());
        req.extend_from_slice(b"\",\"dest\":\"");
        req.extend_from_slice(plan.node.as_bytes());
        req.extend_from_slice(b"\",\"body\":{\"type\":\"poll\",\"msg_id\":");
        req.uint(id).extend_from_slice(b",\"offsets\":{");
        for (i, &key) in open.iter().enumerate() {
            if i > 0 {
                req.push(b',');
            }
            req.push(b'"');
            req.uint(key as u64).extend_from_slice(b"\":");
            req.uint(from[key]);
        }
        req.extend_from_slice(b"}}}\n");
        if input.write_all(&req).and_then(|()| input.flush()).is_err() {
            an.add("node-exited", || "stdin closed during the read-back".into());
            return;
        }
        // Read until our reply; other lines (late replies of the load) are skipped.
        let mut advanced = vec![false; k];
        'wait: loop {
            while let Some(line) = lines.next_line() {
                let Ok(m) = wire::decode(line) else { continue };
                if m.dest.map(|d| d.raw()) != Some(me.as_str())
                    || m.body.opt_u64(Field::InReplyTo).ok().flatten() != Some(id)
                {
                    continue;
                }
                let Ok(msgs) = m.body.object(Field::Msgs) else {
                    an.add("malformed-reply", || String::from_utf8_lossy(line).into());
                    return;
                };
                for (key, recs) in msgs.entries() {
                    let Some(key) = key.raw().parse::<usize>().ok().filter(|&x| x < k) else {
                        an.add("poll-wrong-key", || key.raw().to_string());
                        continue;
                    };
                    for rec in recs.items() {
                        let mut it = rec.items();
                        let off = it.next().and_then(|o| o.as_u64());
                        let msg = it.next().filter(|m| m.kind() == Kind::Int);
                        let (Some(off), Some(msg)) = (off, msg.and_then(|m| m.as_u64())) else {
                            an.add("malformed-reply", || rec.text().to_string());
                            continue;
                        };
                        if off < from[key] {
                            an.add("non-monotonic-poll", || {
                                format!("key {key}: read-back from {} got {off}", from[key])
                            });
                            continue;
                        }
                        got[key].push((off, msg));
                        from[key] = off + 1;
                        advanced[key] = true;
                    }
                }
                break 'wait;
            }
            match lines.fill() {
                Ok(0) | Err(_) => {
                    an.add("node-exited", || {
                        "stdout closed during the read-back".into()
                    });
                    return;
                }
                Ok(_) => {}
            }
        }
        // A key is done when a poll returned nothing more, or once it is past every acknowledged
        // offset of that key (a node may hold more; only acknowledged records are checked).
        open.retain(|&key| advanced[key] && from[key] <= max_acked[key]);
    }
    for (key, acks) in fin.acks.iter_mut().enumerate() {
        check_covered(an, "lost-write", key, acks, &mut got[key], |_| {});
    }
}

/// Every acknowledged `(offset, msg)` of `acks` is in `got` with the same msg. Sorts both; counts
/// entries of `got` seen more than once through `dup`.
fn check_covered(
    an: &mut Anomalies,
    missing: &'static str,
    key: usize,
    acks: &mut [(u64, u64)],
    got: &mut Vec<(u64, u64)>,
    mut dup: impl FnMut(u64),
) {
    acks.sort_unstable();
    for w in acks.windows(2) {
        if w[0].0 == w[1].0 {
            an.add("duplicate-offset", || {
                format!("key {key}: offset {} acknowledged twice", w[0].0)
            });
        }
    }
    got.sort_unstable();
    let before = got.len();
    got.dedup();
    dup((before - got.len()) as u64);
    let mut j = 0;
    for &(off, msg) in acks.iter() {
        while j < got.len() && got[j].0 < off {
            j += 1;
        }
        match got.get(j) {
            Some(&(o, m)) if o == off && m == msg => {}
            Some(&(o, m)) if o == off => an.add("wrong-value", || {
                format!("key {key} offset {off}: acknowledged {msg}, read {m}")
            }),
            _ => an.add(missing, || {
                format!("key {key}: acknowledged offset {off} (msg {msg}) never read")
            }),
        }
    }
}

/// groups: every group received every acknowledged record. Returns the re-deliveries.
pub fn check_groups(plan: &Plan, fin: &mut Finished) -> u64 {
    let mut redelivered = 0;
    let an = &mut fin.outcome.anomalies;
    for g in 0..plan.groups {
        for key in 0..plan.keys {
            check_covered(
                an,
                "group-missed-record",
                key,
                &mut fin.acks[key],
                &mut fin.recv[g][key],
                |d| redelivered += d,
            );
        }
    }
    redelivered
}

/// One request from client `me`, answered before anything else is sent; returns the reply line.
pub fn rpc<W: Write, R: Read>(
    input: &mut W,
    lines: &mut LineReader<R>,
    request: &str,
    me: &str,
    id: u64,
) -> Option<String> {
    input.write_all(request.as_bytes()).ok()?;
    input.write_all(b"\n").ok()?;
    input.flush().ok()?;
    loop {
        while let Some(line) = lines.next_line() {
            let Ok(m) = wire::decode(line) else { continue };
            if m.dest.map(|d| d.raw()) == Some(me)
                && m.body.opt_u64(Field::InReplyTo).ok().flatten() == Some(id)
            {
                return Some(String::from_utf8_lossy(line).into_owned());
            }
        }
        if lines.fill().ok()? == 0 {
            return None;
        }
    }
}

/// groups: subscribes every consumer, then heartbeats them all until two rounds in a row show the
/// same assignment with no partition owned twice in a group, so that no rebalance happens during
/// the load. Returns the assignment (per consumer), or why it could not settle.
pub fn settle_groups<W: Write, R: Read>(
    plan: &Plan,
    input: &mut W,
    lines: &mut LineReader<R>,
) -> Result<Vec<Vec<u64>>, String> {
    let mut id = 1_000_000_000u64;
    let consumers: Vec<usize> = (plan.clients..plan.total_clients()).collect();
    let mut call = |c: usize, ty: &str, input: &mut W, lines: &mut LineReader<R>| {
        id += 1;
        let me = format!("c{c}");
        let req = format!(
            r#"{{"src":"{me}","dest":"{}","body":{{"type":"{ty}","msg_id":{id},"group":"g{}","consumer":"{me}"}}}}"#,
            plan.node,
            plan.group_of(c)
        );
        rpc(input, lines, &req, &me, id).ok_or_else(|| format!("no reply to {ty} of {me}"))
    };
    for &c in &consumers {
        let r = call(c, "subscribe", input, lines)?;
        if !r.contains("\"subscribe_ok\"") {
            return Err(format!("subscribe refused: {r}"));
        }
    }
    let mut last: Option<Vec<Vec<u64>>> = None;
    for _ in 0..100 {
        let mut round = Vec::with_capacity(consumers.len());
        for &c in &consumers {
            let r = call(c, "heartbeat", input, lines)?;
            let m = wire::decode(r.as_bytes()).map_err(|e| e.to_string())?;
            let ps = m
                .body
                .array(Field::Partitions)
                .map_err(|_| format!("heartbeat reply without partitions: {r}"))?;
            let mut ps: Vec<u64> = ps.items().filter_map(|p| p.as_u64()).collect();
            ps.sort_unstable();
            round.push(ps);
        }
        let disjoint = (0..plan.groups).all(|g| {
            let mut all: Vec<u64> = round
                .iter()
                .enumerate()
                .filter(|(i, _)| plan.group_of(consumers[*i]) == g)
                .flat_map(|(_, p)| p.iter().copied())
                .collect();
            let n = all.len();
            all.sort_unstable();
            all.dedup();
            n == all.len() && n > 0
        });
        if disjoint && last.as_ref() == Some(&round) {
            return Ok(round);
        }
        last = Some(round);
        thread::sleep(Duration::from_millis(5));
    }
    Err("the groups did not settle on an assignment".into())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn plan(mode: Mode) -> Plan {
        Plan {
            mode,
            clients: 1,
            window: 4,
            ops: 100,
            keys: 10,
            groups: 1,
            consumers: if mode == Mode::Groups { 1 } else { 0 },
            max_messages: 100,
            consumer_window: 2,
            seed: 1,
            readback: false,
            node: "n0".into(),
        }
    }

    fn reader(plan: &Plan) -> Reader {
        let shared = shared_for(plan, thread::current());
        Reader::new(shared, plan.clone(), Store::new(plan))
    }

    /// Marks request `id` of client `c` as in flight with slot word `op`.
    fn arm(r: &Reader, c: usize, id: u64, op: u64) {
        let w = r.plan.window_of(c) as u64;
        r.shared.clients[c].slots[(id % w) as usize]
            .op
            .store(op | BUSY, Ordering::SeqCst);
    }

    /// What the reader found: anomaly counts and examples, answered requests, deliveries and the
    /// records kept.
    type Verdict = (
        BTreeMap<&'static str, u64>,
        Vec<String>,
        u64,
        u64,
        u64,
        Vec<Vec<Vec<(u64, u64)>>>,
    );

    fn verdict(r: &Reader) -> Verdict {
        (
            r.anomalies.counts.clone(),
            r.anomalies.examples.clone(),
            r.ops,
            r.delivered,
            r.polls,
            r.recv.clone(),
        )
    }

    fn group_line(id: u64, recs: &[(u64, u64, u64)], reordered: bool) -> String {
        let recs: Vec<String> = recs
            .iter()
            .map(|(k, o, m)| {
                if reordered {
                    format!(r#"{{"key":"{k}","msg":{m},"offset":{o},"partition":1,"topic":"t"}}"#)
                } else {
                    format!(r#"{{"topic":"t","partition":1,"offset":{o},"key":"{k}","msg":{m}}}"#)
                }
            })
            .collect();
        let msgs = recs.join(",");
        if reordered {
            format!(
                r#"{{"dest":"c1","src":"n0","body":{{"msg_id":9,"in_reply_to":{id},"type":"poll_ok","generation":1,"partitions":[1],"msgs":[{msgs}]}}}}"#
            )
        } else {
            format!(
                r#"{{"src":"n0","dest":"c1","body":{{"type":"poll_ok","msgs":[{msgs}],"partitions":[1],"generation":1,"in_reply_to":{id},"msg_id":9}}}}"#
            )
        }
    }

    #[test]
    fn group_polls_get_the_same_verdict_on_the_fast_and_the_general_path() {
        let p = plan(Mode::Groups);
        let polls: [&[(u64, u64, u64)]; 3] = [
            &[(3, 5, 50), (3, 6, 60), (4, 0, 1)],
            &[(3, 4, 40)], // goes back on key 3: non-monotonic
            &[(12, 0, 0)], // no such key
        ];
        let mut verdicts = Vec::new();
        for reordered in [false, true] {
            let mut r = reader(&p);
            for (i, recs) in polls.iter().enumerate() {
                let id = i as u64 + 1;
                arm(&r, 1, id, K_GPOLL << KIND_SHIFT);
                let line = group_line(id, recs, reordered);
                let fast = fast::head(line.as_bytes(), "n0")
                    .and_then(|h| fast::group_poll(h.body, &mut Vec::new()));
                assert_eq!(fast.is_some(), !reordered, "{line}");
                r.reply(line.as_bytes(), 10);
            }
            verdicts.push(verdict(&r));
        }
        let v = &verdicts[0];
        assert_eq!(v.0.get("non-monotonic-delivery"), Some(&1), "{v:?}");
        assert_eq!(v.0.get("unknown-key"), Some(&1), "{v:?}");
        assert_eq!(
            v.1,
            [
                "non-monotonic-delivery: consumer c1 key 3: offset 4 after 6",
                "unknown-key: key 12 offset 0 msg 0"
            ]
        );
        assert_eq!((v.2, v.3, v.4), (3, 5, 3));
        assert_eq!(v.5[0][3], [(5, 50), (6, 60), (4, 40)]);
        assert_eq!(verdicts[0], verdicts[1]);
    }

    #[test]
    fn kafka_polls_and_sends_get_the_same_verdict_on_the_fast_and_the_general_path() {
        let p = plan(Mode::Mixed);
        let lines = |reordered: bool| -> Vec<String> {
            let frame = |id: u64, ty: &str, body: &str| {
                if reordered {
                    format!(
                        r#"{{"src":"n0","dest":"c0","body":{{"in_reply_to":{id},"type":"{ty}"{body},"msg_id":9}}}}"#
                    )
                } else {
                    format!(
                        r#"{{"src":"n0","dest":"c0","body":{{"type":"{ty}"{body},"in_reply_to":{id},"msg_id":9}}}}"#
                    )
                }
            };
            vec![
                frame(1, "send_ok", r#","offset":7"#),
                frame(2, "send_ok", r#","offset":6"#), // goes back on key 2
                frame(3, "poll_ok", r#","msgs":{"2":[[8,1],[9,2]]}"#), // from 7: skips
                frame(4, "poll_ok", r#","msgs":{"5":[[7,1]]}"#), // wrong key
                frame(5, "poll_ok", r#","msgs":{}"#),  // nothing
                frame(6, "poll_ok", r#","msgs":{"2":[[7,1],[7,2]]}"#), // not ascending
                frame(7, "commit_offsets_ok", ""),
            ]
        };
        let ops = [
            K_SEND << KIND_SHIFT | 2 << KEY_SHIFT | 11,
            K_SEND << KIND_SHIFT | 2 << KEY_SHIFT | 12,
            K_POLL << KIND_SHIFT | 2 << KEY_SHIFT | 7,
            K_POLL << KIND_SHIFT | 2 << KEY_SHIFT | 7,
            K_POLL << KIND_SHIFT | 2 << KEY_SHIFT | 7,
            K_POLL << KIND_SHIFT | 2 << KEY_SHIFT | 7,
            K_COMMIT << KIND_SHIFT | 2 << KEY_SHIFT | 7,
        ];
        let mut verdicts = Vec::new();
        for reordered in [false, true] {
            let mut r = reader(&p);
            for (i, line) in lines(reordered).iter().enumerate() {
                arm(&r, 0, i as u64 + 1, ops[i]);
                assert_eq!(fast::head(line.as_bytes(), "n0").is_some(), !reordered);
                r.reply(line.as_bytes(), 10);
            }
            verdicts.push((verdict(&r), r.acks[2].clone()));
        }
        let (v, acks) = &verdicts[0];
        let want: BTreeMap<&str, u64> = [
            ("non-monotonic-send", 1),
            ("poll-skip", 3),
            ("poll-wrong-key", 1),
            ("non-monotonic-poll", 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(v.0, want);
        assert_eq!(
            v.1,
            [
                "non-monotonic-send: client c0 key 2: offset 6 after 7",
                "poll-skip: key 2: poll from acknowledged 7 began at 8",
                "poll-wrong-key: 5",
                "poll-skip: key 2: poll from acknowledged offset 7 returned nothing",
                "poll-skip: key 2: poll from acknowledged offset 7 returned nothing",
                "non-monotonic-poll: key 2: 7 after 7",
            ]
        );
        assert_eq!(v.2, 7);
        assert_eq!(acks, &[(7, 11), (6, 12)]);
        assert_eq!(verdicts[0], verdicts[1]);
    }
}
