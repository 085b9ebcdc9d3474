//! The `groups` workload: keyed producers and consumer groups whose membership churns.
//!
//! - **Setup.** `create_topic {topic, partitions}` (an error such as "already exists" is noted, not
//!   fatal). Then `--groups` groups (`g0`, `g1`, …) of `--consumers` consumers each (`g0-c0`, …)
//!   subscribe, before any record is produced, so that every group must see every record whatever the
//!   node's reset policy for a group without commits.
//! - **Producers.** `--producers` clients send `{topic, key, msg}` at `--rate` in total: keys `k0…`
//!   chosen uniformly among `--keys`, values unique over the run (1, 2, …).
//! - **Consumers.** Each loops: `poll {group, consumer, max_messages}`, and after about every other poll that returned records, `commit
//!   {group, consumer, topic, offsets: {partition: last offset + 1}}` (Kafka semantics: next offset to
//!   consume). A commit refused with 22 (fenced) is counted, and the consumer carries on; its next poll
//!   re-joins if it was removed. Clients talk to nodes in turn and are replaced after indefinite errors;
//!   a consumer keeps its name across clients.
//! - **Churn** (`--churn S`): every S seconds one group changes: a new consumer joins, one leaves cleanly
//!   (`unsubscribe`), or one stalls — stops polling for 1.5 × the session timeout, so the group must
//!   expire it — then resumes. At least one consumer of each group stays active.
//! - **Final phase.** At `--time-limit` producers and churn stop, the nemesis heals, and after
//!   `--final-wait` the consumers keep polling until their group has received every acknowledged
//!   record, within `--final-time-limit`.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use super::{sleep_until, Rates, RunCtx, Sample, Stagger, WorkloadResult};
use crate::checker::groups::{self, Delivery, GOp, GOpKind, MembershipEvent};
use crate::checker::kafka::OpType;
use crate::checker::Anomalies;
use crate::cluster::client::{Client, Reply, RpcError};
use crate::results::Latency;
use crate::sync::{lock, Mutex};

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Main,
    Final(Instant),
}

/// One consumer's controls, set by the churn thread.
#[derive(Debug)]
struct Member {
    group: usize,
    name: String,
    leave: bool,
    stall_until: Option<Instant>,
    gone: bool,
}

/// What a consumer should do next.
enum Control {
    Run,
    Stall(Instant),
    Leave,
    Stop,
}

#[derive(Debug)]
struct Shared {
    history: Mutex<Vec<GOp>>,
    events: Mutex<Vec<MembershipEvent>>,
    acked: Mutex<HashSet<i64>>,
    delivered: Vec<Mutex<HashSet<i64>>>,
    phase: Mutex<Phase>,
    members: Mutex<Vec<Member>>,
    malformed: Mutex<Anomalies>,
    fenced: Mutex<u64>,
    create_topic: Mutex<String>,
}

impl Shared {
    fn record(&self, ctx: &RunCtx<'_>, op: GOp) {
        super::record(ctx, &self.history, op.typ, op);
    }

    fn malformed(&self, client: &Client, why: &str) {
        super::note_malformed(&self.malformed, client, why);
    }

    fn phase(&self) -> Phase {
        *lock(&self.phase)
    }

    fn event(&self, e: MembershipEvent) {
        lock(&self.events).push(e);
    }

    fn group_complete(&self, g: usize) -> bool {
        let acked = lock(&self.acked);
        let delivered = lock(&self.delivered[g]);
        acked.iter().all(|v| delivered.contains(v))
    }

    fn control(&self, idx: usize) -> Control {
        let now = Instant::now();
        let phase = self.phase();
        let mut members = lock(&self.members);
        let m = &mut members[idx];
        if let Phase::Final(deadline) = phase {
            if now >= deadline {
                return Control::Stop;
            }
        }
        if m.leave {
            m.gone = true;
            return Control::Leave;
        }
        match m.stall_until {
            Some(t) if t > now => Control::Stall(t),
            Some(_) => {
                m.stall_until = None;
                Control::Run
            }
            None => Control::Run,
        }
    }
}

fn classify(e: &RpcError) -> (OpType, String) {
    (
        if e.is_definite() {
            OpType::Fail
        } else {
            OpType::Info
        },
        e.to_string(),
    )
}

fn u32_list(r: &Reply, field: &str) -> Result<Vec<u32>, String> {
    match r.body.get(field) {
        Some(Value::Array(xs)) => xs
            .iter()
            .map(|x| {
                x.as_u64()
                    .and_then(|p| u32::try_from(p).ok())
                    .ok_or_else(|| format!("`{field}` holds {x}"))
            })
            .collect(),
        _ => Err(format!("`{}` lacks the array `{field}`", r.typ())),
    }
}

fn parse_assignment(r: &Reply, typ: &str) -> Result<(Vec<u32>, Option<u64>), String> {
    if r.typ() != typ {
        return Err(format!("expected {typ}, got `{}`", r.typ()));
    }
    let partitions = u32_list(r, "partitions")?;
    let generation = Some(r.u64_field("generation")?);
    Ok((partitions, generation))
}

/// A parsed `poll_ok`: records, partitions, generation.
type PollReply = (Vec<Delivery>, Vec<u32>, Option<u64>);

fn parse_poll(r: &Reply) -> Result<PollReply, String> {
    let (partitions, generation) = parse_assignment(r, "poll_ok")?;
    let Some(Value::Array(msgs)) = r.body.get("msgs") else {
        return Err("`poll_ok` lacks the array `msgs`".into());
    };
    let mut out = Vec::with_capacity(msgs.len());
    for m in msgs {
        let get = |f: &str| m.get(f);
        let partition = get("partition")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok());
        let offset = get("offset").and_then(Value::as_u64);
        let key = get("key").and_then(Value::as_str);
        let value = get("msg")
            .or_else(|| get("message"))
            .or_else(|| get("value"))
            .and_then(Value::as_i64);
        match (partition, offset, key, value) {
            (Some(partition), Some(offset), Some(key), Some(value)) => out.push(Delivery {
                partition,
                offset,
                key: key.to_string(),
                value,
            }),
            _ => return Err(format!("`poll_ok.msgs` has a bad record: {m}")),
        }
    }
    Ok((out, partitions, generation))
}

struct Consumer<'a, 'c> {
    ctx: &'a RunCtx<'c>,
    sh: &'a Shared,
    g: usize,
    group: String,
    name: String,
    node: usize,
    client: Client,
    /// Next offsets to consume, not yet committed.
    pending: BTreeMap<u32, u64>,
    /// The assignment of the last reply: (generation, partitions).
    assignment: (Option<u64>, Vec<u32>),
    rng: SmallRng,
}

impl Consumer<'_, '_> {
    fn op(&mut self, invoked: Instant, typ: OpType, kind: GOpKind, error: Option<String>) {
        let op = GOp {
            process: self.client.num(),
            typ,
            kind,
            invoke_ns: self.ctx.ns(invoked),
            complete_ns: self.ctx.ns(Instant::now()),
            error,
        };
        self.sh.record(self.ctx, op);
        if typ == OpType::Info {
            self.client = self.ctx.open_client(self.node);
        }
    }

    /// Learns the assignment from a reply. Pending offsets stay committable only for partitions owned
    /// without a gap: the same generation, or the next one with the partition kept. Otherwise the
    /// partition may have been consumed (and committed further) by another member meanwhile.
    fn assigned(&mut self, generation: Option<u64>, partitions: &[u32]) {
        let (old_gen, old_parts) = &self.assignment;
        let adjacent = match (*old_gen, generation) {
            (Some(a), Some(b)) => b == a || b == a + 1,
            _ => false,
        };
        if adjacent {
            self.pending
                .retain(|p, _| old_parts.contains(p) && partitions.contains(p));
        } else {
            self.pending.clear();
        }
        self.assignment = (generation, partitions.to_vec());
    }

    fn subscribe(&mut self) {
        let t = Instant::now();
        let req = json!({
            "type": "subscribe", "group": self.group, "consumer": self.name,
            "topic": self.ctx.opts.topic, "session_timeout_ms": self.ctx.opts.session_timeout_ms,
        });
        let (group, consumer) = (self.group.clone(), self.name.clone());
        match self.client.call(req) {
            Ok(r) => match parse_assignment(&r, "subscribe_ok") {
                Ok((partitions, generation)) => {
                    self.assigned(generation, &partitions);
                    self.op(
                        t,
                        OpType::Ok,
                        GOpKind::Subscribe {
                            group,
                            consumer,
                            partitions,
                            generation,
                        },
                        None,
                    )
                }
                Err(why) => {
                    self.sh.malformed(&self.client, &why);
                    let kind = GOpKind::Subscribe {
                        group,
                        consumer,
                        partitions: vec![],
                        generation: None,
                    };
                    self.op(t, OpType::Info, kind, Some(why))
                }
            },
            Err(e) => {
                let (typ, why) = classify(&e);
                self.op(
                    t,
                    typ,
                    GOpKind::Subscribe {
                        group,
                        consumer,
                        partitions: vec![],
                        generation: None,
                    },
                    Some(why),
                )
            }
        }
    }

    fn unsubscribe(&mut self) {
        let t = Instant::now();
        self.sh.event(MembershipEvent {
            group: self.group.clone(),
            kind: "leave",
            consumer: self.name.clone(),
            at_ns: self.ctx.ns(t),
            effective_ns: self.ctx.ns(t),
        });
        let kind = GOpKind::Unsubscribe {
            group: self.group.clone(),
            consumer: self.name.clone(),
        };
        match self
            .client
            .call(json!({"type": "unsubscribe", "group": self.group, "consumer": self.name}))
        {
            Ok(r) if r.typ() == "unsubscribe_ok" => self.op(t, OpType::Ok, kind, None),
            Ok(r) => {
                let why = format!("expected unsubscribe_ok, got `{}`", r.typ());
                self.sh.malformed(&self.client, &why);
                self.op(t, OpType::Info, kind, Some(why))
            }
            Err(e) => {
                let (typ, why) = classify(&e);
                self.op(t, typ, kind, Some(why))
            }
        }
    }

    /// One poll and its commit; returns whether records came.
    fn poll_and_commit(&mut self) -> bool {
        let t = Instant::now();
        let req = json!({
            "type": "poll", "group": self.group, "consumer": self.name, "max_messages": self.ctx.opts.max_messages,
        });
        let (group, consumer) = (self.group.clone(), self.name.clone());
        let empty = || GOpKind::Poll {
            group: group.clone(),
            consumer: consumer.clone(),
            msgs: vec![],
            partitions: vec![],
            generation: None,
        };
        let msgs = match self.client.call(req) {
            Ok(r) => match parse_poll(&r) {
                Ok((msgs, partitions, generation)) => {
                    self.assigned(generation, &partitions);
                    {
                        let mut delivered = lock(&self.sh.delivered[self.g]);
                        delivered.extend(msgs.iter().map(|d| d.value));
                    }
                    let kind = GOpKind::Poll {
                        group: group.clone(),
                        consumer: consumer.clone(),
                        msgs: msgs.clone(),
                        partitions,
                        generation,
                    };
                    self.op(t, OpType::Ok, kind, None);
                    msgs
                }
                Err(why) => {
                    self.sh.malformed(&self.client, &why);
                    self.op(t, OpType::Info, empty(), Some(why));
                    return false;
                }
            },
            Err(e) => {
                let (typ, why) = classify(&e);
                self.op(t, typ, empty(), Some(why));
                return false;
            }
        };
        if msgs.is_empty() {
            return false;
        }
        for d in &msgs {
            let slot = self.pending.entry(d.partition).or_insert(d.offset + 1);
            *slot = (*slot).max(d.offset + 1);
        }
        // Commit after about every other poll, as a consumer with periodic commits would: records
        // handed out after the last commit may come again after a handoff.
        if self.rng.random_bool(0.5) {
            self.commit();
        }
        true
    }

    /// Commits the pending offsets (Kafka semantics: next offset to consume).
    fn commit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let next = std::mem::take(&mut self.pending);
        let offsets: Map<String, Value> = next
            .iter()
            .map(|(p, o)| (p.to_string(), Value::from(*o)))
            .collect();
        let t = Instant::now();
        let kind = GOpKind::Commit {
            group: self.group.clone(),
            consumer: self.name.clone(),
            offsets: next.into_iter().collect(),
        };
        let req = json!({
            "type": "commit", "group": self.group, "consumer": self.name, "topic": self.ctx.opts.topic, "offsets": offsets,
        });
        match self.client.call(req) {
            Ok(r) if r.typ() == "commit_ok" => self.op(t, OpType::Ok, kind, None),
            Ok(r) => {
                let why = format!("expected commit_ok, got `{}`", r.typ());
                self.sh.malformed(&self.client, &why);
                self.op(t, OpType::Info, kind, Some(why))
            }
            Err(e) => {
                if matches!(e, RpcError::Error { code: 22, .. }) {
                    *lock(&self.sh.fenced) += 1;
                }
                let (typ, why) = classify(&e);
                self.op(t, typ, kind, Some(why))
            }
        }
    }
}

fn consumer_thread(
    ctx: &RunCtx<'_>,
    sh: &Shared,
    idx: usize,
    node: usize,
    churn_join: bool,
    subscribed: Option<crossbeam_channel::Sender<()>>,
) {
    let (g, name) = {
        let members = lock(&sh.members);
        (members[idx].group, members[idx].name.clone())
    };
    let rng = SmallRng::seed_from_u64(ctx.seed ^ 0x636f_6e73 ^ ((idx as u64) << 20));
    let client = ctx.open_client(node);
    let mut c = Consumer {
        ctx,
        sh,
        g,
        group: format!("g{g}"),
        name,
        node,
        client,
        pending: BTreeMap::new(),
        assignment: (None, Vec::new()),
        rng,
    };
    if churn_join {
        let t = ctx.ns(Instant::now());
        sh.event(MembershipEvent {
            group: c.group.clone(),
            kind: "join",
            consumer: c.name.clone(),
            at_ns: t,
            effective_ns: t,
        });
    }
    c.subscribe();
    if let Some(tx) = subscribed {
        let _ = tx.send(());
    }
    let idle = Duration::from_millis(ctx.opts.poll_interval_ms);
    loop {
        match sh.control(idx) {
            Control::Stop => break,
            Control::Leave => {
                c.commit();
                c.unsubscribe();
                break;
            }
            Control::Stall(until) => {
                sleep_until(until.min(Instant::now() + Duration::from_millis(50)));
                continue;
            }
            Control::Run => {}
        }
        if !c.poll_and_commit() {
            if matches!(sh.phase(), Phase::Final(_)) && sh.group_complete(g) {
                break;
            }
            std::thread::sleep(idle);
        }
    }
}

/// The producers' shared generator.
#[derive(Debug)]
struct ProdGen {
    rng: SmallRng,
    stagger: Stagger,
    next_value: i64,
    keys: usize,
    deadline: Instant,
}

fn producer_thread(ctx: &RunCtx<'_>, sh: &Shared, gen: &Mutex<ProdGen>, p: usize) {
    let node = p % ctx.cluster.node_count();
    let mut client = ctx.open_client(node);
    loop {
        let next = {
            let mut g = lock(gen);
            let now = Instant::now();
            if now >= g.deadline {
                None
            } else {
                let at = {
                    let ProdGen { rng, stagger, .. } = &mut *g;
                    stagger.next_slot(rng, now)
                };
                let keys = g.keys.max(1);
                let key = format!("k{}", g.rng.random_range(0..keys));
                let value = g.next_value;
                g.next_value += 1;
                (at < g.deadline).then_some((key, value, at))
            }
        };
        let Some((key, value, at)) = next else { break };
        sleep_until(at);
        let t = Instant::now();
        let res =
            client.call(json!({"type": "send", "topic": ctx.opts.topic, "key": key, "msg": value}));
        let (typ, offset, error) = match res {
            Ok(r) if r.typ() == "send_ok" => match r.u64_field("offset") {
                Ok(o) => (OpType::Ok, Some(o), None),
                Err(why) => {
                    sh.malformed(&client, &why);
                    (OpType::Info, None, Some(why))
                }
            },
            Ok(r) => {
                let why = format!("expected send_ok, got `{}`", r.typ());
                sh.malformed(&client, &why);
                (OpType::Info, None, Some(why))
            }
            Err(e) => {
                let (typ, why) = classify(&e);
                (typ, None, Some(why))
            }
        };
        if typ == OpType::Ok {
            lock(&sh.acked).insert(value);
        }
        let op = GOp {
            process: client.num(),
            typ,
            kind: GOpKind::Send { key, value, offset },
            invoke_ns: ctx.ns(t),
            complete_ns: ctx.ns(Instant::now()),
            error,
        };
        sh.record(ctx, op);
        if typ == OpType::Info {
            client = ctx.open_client(node);
        }
    }
}

/// Runs the groups workload and checks its history.
pub fn run(ctx: &RunCtx<'_>) -> WorkloadResult {
    let opts = ctx.opts;
    let n_groups = opts.groups.max(1);
    let sh = Shared {
        history: Mutex::new(Vec::new()),
        events: Mutex::new(Vec::new()),
        acked: Mutex::new(HashSet::new()),
        delivered: (0..n_groups).map(|_| Mutex::new(HashSet::new())).collect(),
        phase: Mutex::new(Phase::Main),
        members: Mutex::new(Vec::new()),
        malformed: Mutex::new(Anomalies::default()),
        fenced: Mutex::new(0),
        create_topic: Mutex::new(String::new()),
    };
    ctx.set_phase("setup");
    {
        let mut admin = ctx.open_client(0);
        let res = admin.call(
            json!({"type": "create_topic", "topic": opts.topic, "partitions": opts.partitions}),
        );
        *lock(&sh.create_topic) = match res {
            Ok(r) => r.typ().to_string(),
            Err(e) => e.to_string(),
        };
    }
    let node_count = ctx.cluster.node_count();
    let mut next_node = 0usize;
    let mut rng = SmallRng::seed_from_u64(ctx.seed ^ 0x6772_6f75);
    let session = Duration::from_millis(opts.session_timeout_ms);
    let gen = Mutex::new(ProdGen {
        rng: SmallRng::seed_from_u64(ctx.seed),
        stagger: Stagger::new(opts.rate),
        next_value: 1,
        keys: opts.keys,
        deadline: Instant::now(),
    });
    let main_deadline = std::thread::scope(|s| {
        // Initial consumers, subscribed before any record is produced.
        let (sub_tx, sub_rx) = crossbeam_channel::unbounded();
        let initial = n_groups * opts.consumers.max(1);
        for g in 0..n_groups {
            for c in 0..opts.consumers.max(1) {
                let idx = {
                    let mut members = lock(&sh.members);
                    members.push(Member {
                        group: g,
                        name: format!("g{g}-c{c}"),
                        leave: false,
                        stall_until: None,
                        gone: false,
                    });
                    members.len() - 1
                };
                let node = next_node % node_count;
                next_node += 1;
                let (sh, tx) = (&sh, sub_tx.clone());
                s.spawn(move || consumer_thread(ctx, sh, idx, node, false, Some(tx)));
            }
        }
        let setup_deadline = Instant::now() + ctx.rpc_timeout() * 2;
        for _ in 0..initial {
            if sub_rx.recv_deadline(setup_deadline).is_err() {
                break;
            }
        }

        // The clock of the main phase starts now.
        ctx.set_phase("running");
        let main_deadline = Instant::now() + Duration::from_secs_f64(opts.time_limit.max(0.0));
        lock(&gen).deadline = main_deadline;
        ctx.start_nemesis();
        let producers: Vec<_> = (0..opts.producers.max(1))
            .map(|p| {
                let (sh, gen) = (&sh, &gen);
                s.spawn(move || producer_thread(ctx, sh, gen, p))
            })
            .collect();

        // Churn, from this thread.
        if opts.churn > 0.0 {
            let every = Duration::from_secs_f64(opts.churn);
            let mut next = Instant::now() + every;
            let mut joined = vec![opts.consumers.max(1); n_groups];
            while next < main_deadline {
                sleep_until(next);
                next += every;
                let g = rng.random_range(0..n_groups);
                let now = Instant::now();
                let mut members = lock(&sh.members);
                let live: Vec<usize> = (0..members.len())
                    .filter(|&i| members[i].group == g && !members[i].gone && !members[i].leave)
                    .collect();
                let active: Vec<usize> = live
                    .iter()
                    .copied()
                    .filter(|&i| members[i].stall_until.is_none_or(|t| t <= now))
                    .collect();
                let mut actions = vec!["join", "leave", "stall"];
                actions.retain(|a| match *a {
                    "join" => live.len() < opts.consumers.max(1) + 2,
                    _ => active.len() >= 2,
                });
                if actions.is_empty() {
                    continue;
                }
                match actions[rng.random_range(0..actions.len())] {
                    "join" => {
                        let c = joined[g];
                        joined[g] += 1;
                        members.push(Member {
                            group: g,
                            name: format!("g{g}-c{c}"),
                            leave: false,
                            stall_until: None,
                            gone: false,
                        });
                        let idx = members.len() - 1;
                        drop(members);
                        let node = next_node % node_count;
                        next_node += 1;
                        let sh = &sh;
                        s.spawn(move || consumer_thread(ctx, sh, idx, node, true, None));
                    }
                    "leave" => {
                        let i = active[rng.random_range(0..active.len())];
                        members[i].leave = true;
                    }
                    _ => {
                        let i = active[rng.random_range(0..active.len())];
                        members[i].stall_until = Some(now + session.mul_f64(1.5));
                        let at = ctx.ns(now);
                        let name = members[i].name.clone();
                        drop(members);
                        sh.event(MembershipEvent {
                            group: format!("g{g}"),
                            kind: "stall",
                            consumer: name,
                            at_ns: at,
                            effective_ns: at + session.as_nanos() as u64,
                        });
                    }
                }
            }
        }
        for p in producers {
            p.join().expect("a producer thread panicked");
        }
        ctx.set_phase("healing");
        ctx.heal();
        std::thread::sleep(Duration::from_secs_f64(opts.final_wait.max(0.0)));
        ctx.set_phase("final reads");
        *lock(&sh.phase) =
            Phase::Final(Instant::now() + Duration::from_secs_f64(opts.final_time_limit.max(0.0)));
        main_deadline
    });

    let mut history = std::mem::take(&mut *lock(&sh.history));
    history.sort_by_key(|op| op.complete_ns);
    let events = std::mem::take(&mut *lock(&sh.events));
    let group_names: Vec<String> = (0..n_groups).map(|g| format!("g{g}")).collect();
    let report = groups::check(&history, &events, &group_names);
    let mut anomalies = report.anomalies.clone();
    anomalies.merge(std::mem::take(&mut *lock(&sh.malformed)));

    let main_end_ns = ctx.ns(main_deadline);
    let mut counts = (0, 0, 0);
    let mut latencies_us = Vec::new();
    let mut main_ok = 0u64;
    for op in &history {
        match op.typ {
            OpType::Ok => {
                counts.0 += 1;
                latencies_us.push(op.complete_ns.saturating_sub(op.invoke_ns) / 1000);
                if op.invoke_ns < main_end_ns {
                    main_ok += 1;
                }
            }
            OpType::Fail => counts.1 += 1,
            OpType::Info => counts.2 += 1,
        }
    }
    let main_secs = (opts.time_limit).max(1e-3);
    let recovery = Latency::of(
        report
            .recovery_ms
            .iter()
            .map(|ms| (ms * 1000.0) as u64)
            .collect(),
    );
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &events {
        *by_kind.entry(e.kind).or_default() += 1;
    }
    let mut stats = BTreeMap::new();
    stats.insert(
        "records".into(),
        json!({"acknowledged": report.acked, "deliveries": report.deliveries}),
    );
    stats.insert("redeliveries".into(), json!(report.redeliveries));
    stats.insert("rebalances".into(), json!(report.rebalances));
    stats.insert("churn".into(), json!(by_kind));
    stats.insert(
        "recovery_ms".into(),
        json!({"p50": recovery.p50 as f64 / 1000.0, "max": recovery.max as f64 / 1000.0, "measured": report.recovery_ms.len(), "unrecovered": report.unrecovered}),
    );
    stats.insert("fenced_commits".into(), json!(*lock(&sh.fenced)));
    stats.insert("create_topic".into(), json!(lock(&sh.create_topic).clone()));
    let main_end_s = ctx.ns(main_deadline) as f64 / 1e9;
    let main_start_s = (main_end_s - opts.time_limit.max(0.0)).max(0.0);
    let samples: Vec<Sample> = history
        .iter()
        .map(|op| Sample {
            op: match op.kind {
                GOpKind::Send { .. } => "send",
                GOpKind::Subscribe { .. } => "subscribe",
                GOpKind::Poll { .. } => "poll",
                GOpKind::Commit { .. } => "commit",
                GOpKind::Unsubscribe { .. } => "unsubscribe",
            },
            typ: op.typ,
            invoke_s: op.invoke_ns as f64 / 1e9,
            complete_s: op.complete_ns as f64 / 1e9,
            records: match &op.kind {
                GOpKind::Poll { msgs, .. } => msgs.len() as u32,
                _ => 0,
            },
        })
        .collect();
    let rates = Rates::of(
        &samples,
        (main_start_s, main_end_s),
        opts.rate,
        Some("send"),
    );
    WorkloadResult {
        anomalies,
        counts,
        latencies_us,
        throughput: main_ok as f64 / main_secs,
        stats,
        samples,
        rates,
        main_s: (main_start_s, main_end_s),
    }
}
