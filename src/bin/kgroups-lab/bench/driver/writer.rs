//! The writer side of the load: one thread keeps every client's window full, building a whole
//! pass over the clients into one batch and one `write` (see the parent module's Orderings).

use super::*;

/// The writer side: builds requests into one batch.
pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) plan: Plan,
    pub(super) rng: SmallRng,
    pub(super) next_id: Vec<u64>,
    pub(super) remaining: u64,
    pub(super) next_msg: u64,
    pub(super) names: Vec<String>,
    pub(super) buf: Vec<u8>,
}

impl Writer {
    /// One pass over the clients: every free slot gets a request. Returns whether every client is
    /// finished.
    pub(super) fn pass(&mut self) -> bool {
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

    pub(super) fn head(&mut self, c: usize, ty: &str, id: u64) {
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
    pub(super) fn op(&mut self, c: usize, id: u64) -> u64 {
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

    pub(super) fn group_poll(&mut self, c: usize, id: u64) {
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
    pub(super) fn run(mut self, mut out: impl Write) -> io::Result<()> {
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

pub(super) fn writer_for(shared: &Arc<Shared>, plan: &Plan) -> Writer {
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
