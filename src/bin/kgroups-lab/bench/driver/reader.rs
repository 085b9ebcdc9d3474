//! The reader side of the load: one thread matches each reply to its slot by `in_reply_to`, checks
//! it (offsets increase per key, polls are ordered prefixes, group deliveries in order), records
//! its latency and frees the slot (see the parent module's Orderings).

use super::*;

/// The reader side: checks replies and keeps what the final checks need.
pub(super) struct Reader {
    pub(super) shared: Arc<Shared>,
    pub(super) plan: Plan,
    pub(super) completed: Vec<u64>,
    /// Per (client, key): the last offset a send of that client got, or NONE.
    pub(super) last_send: Vec<u64>,
    /// Per key: acknowledged (offset, msg).
    pub(super) acks: Vec<Vec<(u64, u64)>>,
    /// groups, per (consumer, key): the last offset delivered, or NONE.
    pub(super) last_recv: Vec<u64>,
    /// groups, per group and key: delivered (offset, msg).
    pub(super) recv: Vec<Vec<Vec<(u64, u64)>>>,
    pub(super) acked: u64,
    pub(super) delivered: u64,
    pub(super) polls: u64,
    pub(super) ops: u64,
    pub(super) lat: Vec<u32>,
    pub(super) last_t: u64,
    pub(super) anomalies: Anomalies,
    /// The records of the poll reply being checked, `(key, offset, msg)`: reused.
    pub(super) scratch: Vec<(u64, u64, u64)>,
}

/// The client index of a `c<digits>` name.
pub(super) fn client_index(name: &str) -> Option<usize> {
    name.strip_prefix('c')?.parse().ok()
}

pub(super) fn key_index(raw: wire::Raw<'_>) -> Option<u64> {
    raw.as_str()?.raw().parse().ok()
}

impl Reader {
    pub(super) fn new(shared: Arc<Shared>, plan: Plan, store: Store) -> Self {
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
    pub(super) fn reply(&mut self, line: &[u8], now: u64) {
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
    pub(super) fn fast_reply(&mut self, line: &[u8], now: u64) -> bool {
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
    pub(super) fn complete(&mut self, c: usize, slot_index: usize, t: u64, now: u64) {
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
    pub(super) fn send_ok(&mut self, c: usize, op: u64, off: u64) {
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
    pub(super) fn check_poll(&mut self, body: &wire::Body<'_>, key: usize, from: u64) {
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
    pub(super) fn poll_key(
        &mut self,
        key: usize,
        from: u64,
        offsets: impl Iterator<Item = Option<u64>>,
    ) {
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
    pub(super) fn poll_nothing(&mut self, key: usize, from: u64) {
        self.anomalies.add("poll-skip", || {
            format!("key {key}: poll from acknowledged offset {from} returned nothing")
        });
    }

    /// A group poll: per consumer and key, offsets ascend across polls; keep every record.
    pub(super) fn check_group_poll(&mut self, body: &wire::Body<'_>, c: usize, after_done: bool) {
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
    pub(super) fn group_record(&mut self, c: usize, g: usize, key: u64, off: u64, msg: u64) {
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
    pub(super) fn group_poll_end(&mut self, c: usize, n: u64, after_done: bool) {
        self.delivered += n;
        if n == 0 && after_done {
            // Release: pairs with the writer's Acquire load in `Writer::pass`.
            self.shared.clients[c]
                .finished
                .store(true, Ordering::Release);
        }
    }

    /// Whether every client is finished and every request it wrote is answered.
    pub(super) fn finished(&self) -> bool {
        self.shared.clients.iter().enumerate().all(|(c, cl)| {
            // Acquire: pairs with the writer's Release stores of `finished` and `sent`.
            cl.finished.load(Ordering::Acquire)
                && cl.sent.load(Ordering::Acquire) == self.completed[c]
        })
    }

    /// After each chunk: wake the writer if it waits for free slots.
    pub(super) fn chunk_done(&self) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        if self.shared.parked.load(Ordering::SeqCst) {
            self.shared.writer.unpark();
        }
    }

    /// The reader thread's loop: until every client is finished, or the node closes stdout.
    pub(super) fn run<R: Read>(mut self, lines: &mut LineReader<R>) -> Self {
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

    pub(super) fn finished_with(self, driver_cpu: Duration) -> Finished {
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
