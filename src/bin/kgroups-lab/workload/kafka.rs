//! Maelstrom's kafka workload (`maelstrom.workload.kafka` over `jepsen.tests.kafka`), reproduced:
//!
//! - **Clients.** `--concurrency` threads; thread t talks to node t mod N, one request at a time. Each
//!   client keeps local offsets per assigned key. A client is replaced by a new `cN` (a new process for
//!   the checker) after every indefinite outcome (timeout, indefinite error, malformed reply) and after a
//!   `crash` operation (about every 30 s per client, as Maelstrom's `crash-clients?`).
//! - **Operations** (one shared generator, paced by jepsen's stagger at `--rate`): `send` and `poll`
//!   half and half, over `--key-count` active keys (decimal strings) chosen with an exponential
//!   distribution (base 2, as Elle's list-append generator); values run 1, 2, … per key up to
//!   `--max-writes-per-key`, then a fresh key replaces it. With probability 1/64 an `assign` of the next
//!   operation's key comes first (and, a third of the time, of keys with acknowledged but unpolled
//!   sends); it calls `list_committed_offsets` and starts each key at its local offset, else the
//!   committed one, else 0.
//! - **poll** sends the local offsets, advances each returned key to its highest offset + 1, then, if
//!   anything came back, calls `commit_offsets` with each key's highest offset. A definite error on that
//!   commit fails the poll (its reads are lost, the offsets have moved), as in Maelstrom.
//! - **Final phase.** After `--time-limit`, the nemesis heals, the clients wait `--final-wait`, then
//!   each client crashes, assigns every key seen from offset 0 and polls (every 0–0.4 s) until it has
//!   read up to the highest offset seen for each key, repeating the cycle every 10 s, within
//!   `--final-time-limit`.
//!
//! Replies are checked against Maelstrom's closed schemas; a malformed reply ends the operation as
//! indefinite and is reported as `malformed-reply`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use super::{sleep_until, Rates, RunCtx, Sample, Stagger, WorkloadResult};
use crate::checker::kafka::{self, Op, OpKind, OpType};
use crate::checker::Anomalies;
use crate::cluster::client::{Client, RpcError};
use crate::sync::{lock, Mutex};

/// Probability of an `assign` before an operation (jepsen's `sub-p`).
const SUB_P: f64 = 1.0 / 64.0;
/// Mean seconds between client crashes, per client (jepsen's `crash-client-interval`).
const CRASH_INTERVAL_SECS: f64 = 30.0;
/// One cycle of the final phase (crash, assign, polls).
const FINAL_CYCLE: Duration = Duration::from_secs(10);

/// Elle's exponential key choice: index i of `count` active keys with weight base^i, base 2.
#[derive(Debug)]
struct KeyPool {
    active: Vec<u64>,
    next_value: HashMap<u64, i64>,
    max_writes: i64,
    scale: f64,
}

impl KeyPool {
    fn new(count: usize, max_writes: u64) -> KeyPool {
        let count = count.max(1);
        let base = 2f64;
        KeyPool {
            active: (0..count as u64).collect(),
            next_value: HashMap::new(),
            max_writes: max_writes.max(1) as i64,
            scale: (base.powi(count as i32) - 1.0) * base / (base - 1.0),
        }
    }

    fn pick(&self, rng: &mut impl Rng) -> usize {
        let x = rng.random::<f64>() * self.scale + 2.0;
        let ki = (x.log2() - 1.0).floor();
        (ki.max(0.0) as usize).min(self.active.len() - 1)
    }
}

/// One generated micro-operation.
#[derive(Debug, Clone, Copy)]
struct Txn {
    key: u64,
    /// `None` for a poll, the value for a send.
    value: Option<i64>,
}

/// What a client is asked to do.
#[derive(Debug, Clone)]
enum Invocation {
    Send { key: String, value: i64 },
    Poll,
    Assign { keys: Vec<String> },
    Crash,
}

/// The shared generator: jepsen's generator stack for the kafka workload.
#[derive(Debug)]
struct Gen {
    rng: SmallRng,
    pool: KeyPool,
    peeked: Option<Txn>,
    /// PollUnseen: per key, the highest offset acknowledged by a send / returned by a poll.
    sent: BTreeMap<String, u64>,
    polled: BTreeMap<String, u64>,
    /// TrackKeyOffsets: per key, the highest offset any ok operation saw.
    max_offsets: BTreeMap<String, u64>,
    stagger: Stagger,
    next_crash: Instant,
    crash_mean: Duration,
    deadline: Instant,
}

impl Gen {
    fn new(ctx: &RunCtx<'_>) -> Gen {
        let o = ctx.opts;
        Gen::with(
            ctx.seed,
            o.key_count,
            o.max_writes_per_key,
            o.rate,
            ctx.concurrency,
            ctx.start,
            ctx.main_deadline(),
        )
    }

    fn with(
        seed: u64,
        key_count: usize,
        max_writes_per_key: u64,
        rate: f64,
        concurrency: usize,
        start: Instant,
        deadline: Instant,
    ) -> Gen {
        let mut rng = SmallRng::seed_from_u64(seed);
        let crash_mean = Duration::from_secs_f64(CRASH_INTERVAL_SECS / concurrency.max(1) as f64);
        let next_crash = start + crash_mean.mul_f64(2.0 * rng.random::<f64>());
        Gen {
            rng,
            pool: KeyPool::new(key_count, max_writes_per_key),
            peeked: None,
            sent: BTreeMap::new(),
            polled: BTreeMap::new(),
            max_offsets: BTreeMap::new(),
            stagger: Stagger::new(rate),
            next_crash,
            crash_mean,
            deadline,
        }
    }

    fn txn(&mut self) -> Txn {
        loop {
            let read = self.rng.random_bool(0.5);
            let ki = self.pool.pick(&mut self.rng);
            let key = self.pool.active[ki];
            if read {
                return Txn { key, value: None };
            }
            let v = self.pool.next_value.get(&key).copied().unwrap_or(1);
            if v > self.pool.max_writes {
                let fresh = self.pool.active.iter().max().copied().unwrap_or(0) + 1;
                self.pool.active[ki] = fresh;
                continue;
            }
            self.pool.next_value.insert(key, v + 1);
            return Txn {
                key,
                value: Some(v),
            };
        }
    }

    /// The next invocation and when to run it; `None` once the main phase is over.
    fn next(&mut self, now: Instant) -> Option<(Invocation, Instant)> {
        if now >= self.deadline {
            return None;
        }
        let at = self.stagger.next_slot(&mut self.rng, now);
        if at >= self.deadline {
            return None;
        }
        if at >= self.next_crash {
            self.next_crash = at + self.crash_mean.mul_f64(2.0 * self.rng.random::<f64>());
            return Some((Invocation::Crash, at));
        }
        let txn = match self.peeked.take() {
            Some(t) => t,
            None => self.txn(),
        };
        if self.rng.random::<f64>() < SUB_P {
            // InterleaveSubscribes: assign the operation's key; the operation itself comes next.
            self.peeked = Some(txn);
            let mut keys = vec![txn.key.to_string()];
            if !self.sent.is_empty() && self.rng.random::<f64>() < 1.0 / 3.0 {
                for k in self.sent.keys() {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
            }
            return Some((Invocation::Assign { keys }, at));
        }
        let inv = match txn.value {
            Some(value) => Invocation::Send {
                key: txn.key.to_string(),
                value,
            },
            None => Invocation::Poll,
        };
        Some((inv, at))
    }

    /// Learns from a completed operation (only ok ones count, as in jepsen).
    fn update(&mut self, op: &Op) {
        if op.typ != OpType::Ok {
            return;
        }
        let mut seen: Vec<(&str, u64, bool)> = Vec::new();
        match &op.kind {
            OpKind::Send {
                key,
                offset: Some(o),
                ..
            } => seen.push((key, *o, true)),
            OpKind::Poll { reads } => {
                for (k, pairs) in reads {
                    if let Some(max) = pairs.iter().map(|&(o, _)| o).max() {
                        seen.push((k, max, false));
                    }
                }
            }
            _ => {}
        }
        for (k, o, is_send) in seen {
            let slot = self.max_offsets.entry(k.to_string()).or_insert(o);
            *slot = (*slot).max(o);
            let map = if is_send {
                &mut self.sent
            } else {
                &mut self.polled
            };
            let slot = map.entry(k.to_string()).or_insert(o);
            *slot = (*slot).max(o);
            let caught_up = match (self.sent.get(k), self.polled.get(k)) {
                (Some(&s), Some(&p)) => p >= s,
                (None, _) => true,
                (Some(_), None) => false,
            };
            if caught_up {
                self.sent.remove(k);
                self.polled.remove(k);
            }
        }
    }
}

/// A client with its local offsets.
#[derive(Debug)]
struct KClient {
    client: Client,
    offsets: BTreeMap<String, u64>,
}

impl KClient {
    fn open(ctx: &RunCtx<'_>, node: usize) -> KClient {
        KClient {
            client: ctx.open_client(node),
            offsets: BTreeMap::new(),
        }
    }
}

/// Shared state of the run.
#[derive(Debug)]
struct Shared {
    gen: Mutex<Gen>,
    history: Mutex<Vec<Op>>,
    malformed: Mutex<Anomalies>,
}

impl Shared {
    fn record(&self, ctx: &RunCtx<'_>, op: Op) {
        super::record(ctx, &self.history, op.typ, op);
    }

    fn malformed(&self, client: &Client, why: &str) {
        super::note_malformed(&self.malformed, client, why);
    }
}

/// How one RPC ended, as the op type and error text.
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

/// Parses `poll_ok.msgs`: key → [[offset, msg], …] with integer offsets and messages.
/// Per key, the `[offset, value]` pairs of a poll.
type Reads = Vec<(String, Vec<(u64, i64)>)>;

fn parse_msgs(v: Option<&Value>) -> Result<Reads, String> {
    let Some(Value::Object(msgs)) = v else {
        return Err("`poll_ok.msgs` is not an object".into());
    };
    let mut out = Vec::with_capacity(msgs.len());
    for (k, pairs) in msgs {
        let Value::Array(pairs) = pairs else {
            return Err(format!("`msgs.{k}` is not an array"));
        };
        let mut got = Vec::with_capacity(pairs.len());
        for p in pairs {
            match p.as_array().map(Vec::as_slice) {
                Some([o, m]) => match (o.as_u64(), m.as_i64()) {
                    (Some(o), Some(m)) => got.push((o, m)),
                    _ => {
                        return Err(format!(
                            "`msgs.{k}` has a pair that is not [offset, integer]: {p}"
                        ))
                    }
                },
                _ => return Err(format!("`msgs.{k}` has an element that is not a pair: {p}")),
            }
        }
        out.push((k.clone(), got));
    }
    Ok(out)
}

/// Runs one invocation on a client and returns the completed operation.
fn execute(ctx: &RunCtx<'_>, shared: &Shared, kc: &mut KClient, inv: Invocation) -> Op {
    let process = kc.client.num();
    let invoked = Instant::now();
    let (typ, kind, error) = match inv {
        Invocation::Crash => (OpType::Info, OpKind::Crash, Some("crash".to_string())),
        Invocation::Send { key, value } => match kc
            .client
            .call(json!({"type": "send", "key": key, "msg": value}))
        {
            Ok(r) => {
                let checked = if r.typ() != "send_ok" {
                    Err(format!("expected send_ok, got `{}`", r.typ()))
                } else {
                    r.expect_only(&["offset"])
                        .and_then(|_| r.u64_field("offset"))
                };
                match checked {
                    Ok(o) => (
                        OpType::Ok,
                        OpKind::Send {
                            key,
                            value,
                            offset: Some(o),
                        },
                        None,
                    ),
                    Err(why) => {
                        shared.malformed(&kc.client, &why);
                        (
                            OpType::Info,
                            OpKind::Send {
                                key,
                                value,
                                offset: None,
                            },
                            Some(why),
                        )
                    }
                }
            }
            Err(e) => {
                let (t, why) = classify(&e);
                (
                    t,
                    OpKind::Send {
                        key,
                        value,
                        offset: None,
                    },
                    Some(why),
                )
            }
        },
        Invocation::Poll => poll(shared, kc),
        Invocation::Assign { keys } => {
            match kc
                .client
                .call(json!({"type": "list_committed_offsets", "keys": keys}))
            {
                Ok(r) => {
                    let committed = if r.typ() != "list_committed_offsets_ok" {
                        Err(format!(
                            "expected list_committed_offsets_ok, got `{}`",
                            r.typ()
                        ))
                    } else {
                        r.expect_only(&["offsets"])
                            .and_then(|_| match r.body.get("offsets") {
                                Some(Value::Object(m)) => m
                                    .iter()
                                    .map(|(k, v)| {
                                        v.as_u64().map(|o| (k.clone(), o)).ok_or_else(|| {
                                            format!("`offsets.{k}` is not a non-negative integer")
                                        })
                                    })
                                    .collect::<Result<HashMap<_, _>, _>>(),
                                _ => {
                                    Err("`list_committed_offsets_ok.offsets` is not an object"
                                        .into())
                                }
                            })
                    };
                    match committed {
                        Ok(committed) => {
                            let offsets = keys
                                .iter()
                                .map(|k| {
                                    let o = kc
                                        .offsets
                                        .get(k)
                                        .or(committed.get(k))
                                        .copied()
                                        .unwrap_or(0);
                                    (k.clone(), o)
                                })
                                .collect();
                            kc.offsets = offsets;
                            (OpType::Ok, OpKind::Assign { keys }, None)
                        }
                        Err(why) => {
                            shared.malformed(&kc.client, &why);
                            (OpType::Info, OpKind::Assign { keys }, Some(why))
                        }
                    }
                }
                Err(e) => {
                    let (t, why) = classify(&e);
                    (t, OpKind::Assign { keys }, Some(why))
                }
            }
        }
    };
    Op {
        process,
        typ,
        kind,
        invoke_ns: ctx.ns(invoked),
        complete_ns: ctx.ns(Instant::now()),
        error,
    }
}

/// A poll, then `commit_offsets` of what it returned.
fn poll(shared: &Shared, kc: &mut KClient) -> (OpType, OpKind, Option<String>) {
    let lost = || OpKind::Poll { reads: Vec::new() };
    let offsets: Map<String, Value> = kc
        .offsets
        .iter()
        .map(|(k, &o)| (k.clone(), Value::from(o)))
        .collect();
    let reads = match kc.client.call(json!({"type": "poll", "offsets": offsets})) {
        Ok(r) => {
            let parsed = if r.typ() != "poll_ok" {
                Err(format!("expected poll_ok, got `{}`", r.typ()))
            } else {
                r.expect_only(&["msgs"])
                    .and_then(|_| parse_msgs(r.body.get("msgs")))
            };
            match parsed {
                Ok(reads) => reads,
                Err(why) => {
                    shared.malformed(&kc.client, &why);
                    return (OpType::Info, lost(), Some(why));
                }
            }
        }
        Err(e) => {
            let (t, why) = classify(&e);
            return (t, lost(), Some(why));
        }
    };
    let mut commit = Map::new();
    for (k, pairs) in &reads {
        let next = pairs.iter().map(|&(o, _)| o + 1).max().unwrap_or(0);
        let slot = kc.offsets.entry(k.clone()).or_insert(next);
        *slot = (*slot).max(next);
        if let Some(max) = pairs.iter().map(|&(o, _)| o).max() {
            commit.insert(k.clone(), Value::from(max));
        }
    }
    if !commit.is_empty() {
        match kc
            .client
            .call(json!({"type": "commit_offsets", "offsets": commit}))
        {
            Ok(r) => {
                let checked = if r.typ() != "commit_offsets_ok" {
                    Err(format!("expected commit_offsets_ok, got `{}`", r.typ()))
                } else {
                    r.expect_only(&[])
                };
                if let Err(why) = checked {
                    shared.malformed(&kc.client, &why);
                    return (OpType::Info, lost(), Some(why));
                }
            }
            Err(e) => {
                let (t, why) = classify(&e);
                return (t, lost(), Some(format!("commit_offsets: {why}")));
            }
        }
    }
    (OpType::Ok, OpKind::Poll { reads }, None)
}

fn main_worker(ctx: &RunCtx<'_>, shared: &Shared, thread: usize) -> KClient {
    let node = thread % ctx.cluster.node_count();
    let mut kc = KClient::open(ctx, node);
    loop {
        let next = lock(&shared.gen).next(Instant::now());
        let Some((inv, at)) = next else { break };
        sleep_until(at);
        let op = execute(ctx, shared, &mut kc, inv);
        lock(&shared.gen).update(&op);
        let replace = op.typ == OpType::Info;
        shared.record(ctx, op);
        if replace {
            kc = KClient::open(ctx, node);
        }
    }
    kc
}

fn final_worker(
    ctx: &RunCtx<'_>,
    shared: &Shared,
    thread: usize,
    old: KClient,
    targets: &BTreeMap<String, u64>,
    deadline: Instant,
) {
    let node = old.client.node();
    let mut rng = SmallRng::seed_from_u64(ctx.seed ^ 0xf1a1 ^ thread as u64);
    let mut remaining = targets.clone();
    let mut current = Some(old);
    while Instant::now() < deadline && !remaining.is_empty() {
        if let Some(old) = current.take() {
            let t = ctx.ns(Instant::now());
            let crash = Op {
                process: old.client.num(),
                typ: OpType::Info,
                kind: OpKind::Crash,
                invoke_ns: t,
                complete_ns: t,
                error: Some("crash".into()),
            };
            shared.record(ctx, crash);
        }
        let mut kc = KClient::open(ctx, node);
        kc.offsets = targets.keys().map(|k| (k.clone(), 0)).collect();
        let t = ctx.ns(Instant::now());
        shared.record(
            ctx,
            Op {
                process: kc.client.num(),
                typ: OpType::Ok,
                kind: OpKind::Assign {
                    keys: targets.keys().cloned().collect(),
                },
                invoke_ns: t,
                complete_ns: t,
                error: None,
            },
        );
        let cycle_end = (Instant::now() + FINAL_CYCLE).min(deadline);
        while Instant::now() < cycle_end && !remaining.is_empty() {
            std::thread::sleep(Duration::from_millis(400).mul_f64(rng.random::<f64>()));
            let op = execute(ctx, shared, &mut kc, Invocation::Poll);
            if let (OpType::Ok, OpKind::Poll { reads }) = (&op.typ, &op.kind) {
                for (k, pairs) in reads {
                    if let Some(max) = pairs.iter().map(|&(o, _)| o).max() {
                        if remaining.get(k).is_some_and(|&target| target <= max) {
                            remaining.remove(k);
                        }
                    }
                }
            }
            let replace = op.typ == OpType::Info;
            shared.record(ctx, op);
            if replace {
                kc = KClient::open(ctx, node);
            }
        }
        current = Some(kc);
    }
}

/// Runs the kafka workload and checks its history.
pub fn run(ctx: &RunCtx<'_>) -> WorkloadResult {
    let shared = Shared {
        gen: Mutex::new(Gen::new(ctx)),
        history: Mutex::new(Vec::new()),
        malformed: Mutex::new(Anomalies::default()),
    };
    ctx.set_phase("running");
    ctx.start_nemesis();
    let clients: Vec<KClient> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..ctx.concurrency)
            .map(|t| {
                s.spawn({
                    let shared = &shared;
                    move || main_worker(ctx, shared, t)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a kafka client thread panicked"))
            .collect()
    });
    let main_end = Instant::now();
    ctx.set_phase("healing");
    ctx.heal();
    std::thread::sleep(Duration::from_secs_f64(ctx.opts.final_wait.max(0.0)));
    ctx.set_phase("final reads");
    let targets = lock(&shared.gen).max_offsets.clone();
    let final_deadline =
        Instant::now() + Duration::from_secs_f64(ctx.opts.final_time_limit.max(0.0));
    std::thread::scope(|s| {
        for (t, kc) in clients.into_iter().enumerate() {
            let shared = &shared;
            let targets = &targets;
            s.spawn(move || final_worker(ctx, shared, t, kc, targets, final_deadline));
        }
    });

    let mut history = std::mem::take(&mut *lock(&shared.history));
    history.sort_by_key(|op| op.complete_ns);
    let mut anomalies = kafka::check(&history);
    anomalies.merge(std::mem::take(&mut *lock(&shared.malformed)));
    summarize(ctx, &history, anomalies, ctx.ns(main_end), targets.len())
}

fn summarize(
    ctx: &RunCtx<'_>,
    history: &[Op],
    anomalies: Anomalies,
    main_end_ns: u64,
    keys: usize,
) -> WorkloadResult {
    let mut counts = (0, 0, 0);
    let mut latencies_us = Vec::new();
    let mut main_ok = 0u64;
    let (mut sends, mut polls, mut assigns, mut crashes) = ((0u64, 0u64), (0u64, 0u64), 0u64, 0u64);
    for op in history {
        match op.typ {
            OpType::Ok => counts.0 += 1,
            OpType::Fail => counts.1 += 1,
            OpType::Info => counts.2 += 1,
        }
        let ok = op.typ == OpType::Ok;
        match op.kind {
            OpKind::Send { .. } => {
                sends.0 += u64::from(ok);
                sends.1 += 1;
            }
            OpKind::Poll { .. } => {
                polls.0 += u64::from(ok);
                polls.1 += 1;
            }
            OpKind::Assign { .. } => assigns += 1,
            OpKind::Crash => crashes += 1,
        }
        if ok && matches!(op.kind, OpKind::Send { .. } | OpKind::Poll { .. }) {
            latencies_us.push(op.complete_ns.saturating_sub(op.invoke_ns) / 1000);
            if op.invoke_ns < main_end_ns {
                main_ok += 1;
            }
        }
    }
    let secs = (main_end_ns as f64 / 1e9).max(1e-3);
    let mut stats = BTreeMap::new();
    stats.insert("sends".into(), json!({"ok": sends.0, "total": sends.1}));
    stats.insert("polls".into(), json!({"ok": polls.0, "total": polls.1}));
    stats.insert("assigns".into(), json!(assigns));
    stats.insert("crashes".into(), json!(crashes));
    stats.insert("keys".into(), json!(keys));
    let samples: Vec<Sample> = history
        .iter()
        .map(|op| Sample {
            op: match op.kind {
                OpKind::Send { .. } => "send",
                OpKind::Poll { .. } => "poll",
                OpKind::Assign { .. } => "assign",
                OpKind::Crash => "crash",
            },
            typ: op.typ,
            invoke_s: op.invoke_ns as f64 / 1e9,
            complete_s: op.complete_ns as f64 / 1e9,
            records: match &op.kind {
                OpKind::Poll { reads } => reads.iter().map(|(_, r)| r.len() as u32).sum(),
                _ => 0,
            },
        })
        .collect();
    let rates = Rates::of(&samples, (0.0, secs), ctx.opts.rate, None);
    WorkloadResult {
        anomalies,
        counts,
        latencies_us,
        throughput: main_ok as f64 / secs,
        stats,
        samples,
        rates,
        main_s: (0.0, secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(seed: u64) -> Vec<String> {
        let start = Instant::now();
        let mut g = Gen::with(
            seed,
            10,
            16,
            1000.0,
            4,
            start,
            start + Duration::from_secs(3600),
        );
        (0..2000)
            .map(|i| {
                let (inv, _) = g.next(start).expect("before the deadline");
                if let Invocation::Send { key, .. } = &inv {
                    // Feed back an ack so PollUnseen has something to track.
                    let op = Op {
                        process: 0,
                        typ: OpType::Ok,
                        kind: OpKind::Send {
                            key: key.clone(),
                            value: 0,
                            offset: Some(i),
                        },
                        invoke_ns: 0,
                        complete_ns: 0,
                        error: None,
                    };
                    g.update(&op);
                }
                format!("{inv:?}")
            })
            .collect()
    }

    #[test]
    fn one_seed_one_operation_stream() {
        assert_eq!(stream(9), stream(9));
        assert_ne!(stream(9), stream(10));
    }

    #[test]
    fn keys_follow_elle_values_count_up_and_keys_retire_after_max_writes() {
        let ops = stream(1);
        let sends: Vec<&String> = ops.iter().filter(|o| o.starts_with("Send")).collect();
        let polls = ops.iter().filter(|o| o.starts_with("Poll")).count();
        let assigns = ops.iter().filter(|o| o.starts_with("Assign")).count();
        assert!(
            sends.len() > 800 && polls > 800,
            "about half and half: {} sends, {polls} polls",
            sends.len()
        );
        assert!(
            (10..=70).contains(&assigns),
            "about 1/64 assigns: {assigns}"
        );
        // Values per key run 1, 2, … up to 16, then the key is replaced.
        let mut last: HashMap<String, i64> = HashMap::new();
        for s in &sends {
            let key = s.split('"').nth(1).unwrap().to_string();
            let value: i64 = s
                .rsplit("value: ")
                .next()
                .unwrap()
                .trim_end_matches(" }")
                .parse()
                .unwrap();
            let prev = last.insert(key, value).unwrap_or(0);
            assert_eq!(value, prev + 1);
            assert!(value <= 16);
        }
        assert!(
            last.len() > 10,
            "fresh keys replace retired ones: {}",
            last.len()
        );
    }

    #[test]
    fn exponential_key_choice_favours_the_last_active_key() {
        let pool = KeyPool::new(10, 16);
        let mut rng = SmallRng::seed_from_u64(5);
        let mut hits = [0u32; 10];
        for _ in 0..100_000 {
            hits[pool.pick(&mut rng)] += 1;
        }
        // Weight 2^i: each index about twice as likely as the one before.
        for i in 1..10 {
            let ratio = f64::from(hits[i]) / f64::from(hits[i - 1]);
            assert!(
                (1.6..2.5).contains(&ratio),
                "index {i}: ratio {ratio} ({hits:?})"
            );
        }
    }
}
