//! Workloads: clients that drive the cluster and record a history for a checker.
//!
//! - [`kafka`]: Maelstrom's kafka workload.
//! - [`groups`]: keyed producers and consumer groups with membership churn.

pub mod groups;
pub mod kafka;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;

use crate::checker::kafka::OpType;
use crate::checker::Anomalies;
use crate::cli::{NemesisKind, TestOpts};
use crate::cluster::client::Client;
use crate::cluster::Cluster;
use crate::net::nemesis::Nemesis;
use crate::results::Progress;
use crate::sync::{lock, Arc, Mutex};

/// What a workload needs from the run.
#[derive(Debug)]
pub struct RunCtx<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The options.
    pub opts: &'a TestOpts,
    /// The run's seed.
    pub seed: u64,
    /// When the workload started; history times count from here.
    pub start: Instant,
    /// Live counts for the progress line.
    pub progress: Arc<Progress>,
    /// The current phase, for the progress line.
    pub phase: Arc<Mutex<&'static str>>,
    /// Number of client threads.
    pub concurrency: usize,
    nemesis: Mutex<Option<Nemesis>>,
    /// When the nemesis started, in ns since `start`.
    nemesis_start_ns: Mutex<u64>,
    nemesis_log: Mutex<Vec<NemesisEntry>>,
}

/// One nemesis action, in `results.json`: seconds since the workload started.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct NemesisEntry {
    /// Seconds since the workload started.
    pub at_s: f64,
    /// `cut` or `heal`.
    pub action: &'static str,
    /// The cut's kind and picture (empty for a heal).
    pub detail: String,
}

/// The windows during which the network was cut, in seconds since the workload started: each
/// `cut` until the next `heal` (or `end_s`).
pub fn cut_windows(log: &[NemesisEntry], end_s: f64) -> Vec<(f64, f64)> {
    let mut windows = Vec::new();
    let mut open: Option<f64> = None;
    for e in log {
        match (e.action, open) {
            ("cut", None) => open = Some(e.at_s),
            ("heal", Some(start)) => {
                windows.push((start, e.at_s));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        windows.push((start, end_s.max(start)));
    }
    windows
}

impl<'a> RunCtx<'a> {
    /// A context for one run.
    pub fn new(
        cluster: &'a Cluster,
        opts: &'a TestOpts,
        seed: u64,
        progress: Arc<Progress>,
        phase: Arc<Mutex<&'static str>>,
    ) -> Self {
        RunCtx {
            cluster,
            opts,
            seed,
            start: Instant::now(),
            progress,
            phase,
            concurrency: opts.concurrency.resolve(opts.node_count),
            nemesis: Mutex::new(None),
            nemesis_start_ns: Mutex::new(0),
            nemesis_log: Mutex::new(Vec::new()),
        }
    }

    /// Nanoseconds since the start of the workload.
    pub fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_nanos() as u64
    }

    /// The client RPC timeout.
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.opts.rpc_timeout_ms)
    }

    /// Opens a fresh client bound to node `node`.
    pub fn open_client(&self, node: usize) -> Client {
        self.cluster.open_client(node, self.rpc_timeout())
    }

    /// The end of the main phase.
    pub fn main_deadline(&self) -> Instant {
        self.start + Duration::from_secs_f64(self.opts.time_limit.max(0.0))
    }

    /// Sets the phase shown on the progress line.
    pub fn set_phase(&self, phase: &'static str) {
        *lock(&self.phase) = phase;
    }

    /// Starts the nemesis, if one was asked for.
    pub fn start_nemesis(&self) {
        if self.opts.nemesis == Some(NemesisKind::Partition) && self.cluster.node_count() > 1 {
            let n = Nemesis::start(
                Arc::clone(self.cluster.net()),
                Duration::from_secs_f64(self.opts.nemesis_interval.max(0.05)),
                self.seed,
            );
            *lock(&self.nemesis_start_ns) = self.ns(Instant::now());
            *lock(&self.nemesis) = Some(n);
        }
    }

    /// Stops the nemesis (healing the network) and keeps its log.
    pub fn heal(&self) {
        let n = lock(&self.nemesis).take();
        if let Some(n) = n {
            let events = n.stop();
            let offset = *lock(&self.nemesis_start_ns) as f64 / 1e9;
            let mut log = lock(&self.nemesis_log);
            for e in events {
                log.push(NemesisEntry {
                    at_s: round3(offset + e.at_secs),
                    action: e.action,
                    detail: e.detail,
                });
            }
            // The network heals now, whatever the nemesis last did.
            if log.last().is_some_and(|e| e.action == "cut") {
                log.push(NemesisEntry {
                    at_s: round3(self.ns(Instant::now()) as f64 / 1e9),
                    action: "heal",
                    detail: String::new(),
                });
            }
        }
        self.cluster.net().heal();
    }

    /// What the nemesis did.
    pub fn nemesis_log(&self) -> Vec<NemesisEntry> {
        lock(&self.nemesis_log).clone()
    }
}

/// Seconds rounded to the millisecond, for `results.json`.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One completed operation, for the plots: what it was, how it ended and when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The operation (`send`, `poll`, `commit`, …).
    pub op: &'static str,
    /// How it completed.
    pub typ: OpType,
    /// When it was invoked, in seconds since the workload started.
    pub invoke_s: f64,
    /// When it completed, in seconds since the workload started.
    pub complete_s: f64,
    /// Records it delivered (a poll's), else 0.
    pub records: u32,
}

impl Sample {
    /// Its latency in milliseconds.
    pub fn latency_ms(&self) -> f64 {
        (self.complete_s - self.invoke_s).max(0.0) * 1000.0
    }
}

/// The rates a run reached, in `results.json` (`rates`) and the table.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, PartialEq)]
pub struct Rates {
    /// `--rate`: operations per second over all clients asked for (kafka: of all operations;
    /// groups: of sends). 0: as fast as the clients go.
    pub target: f64,
    /// Operations of that kind invoked per second in the main phase.
    pub attempted_per_s: f64,
    /// Whether the run reached the target (at least 90% of it; always with `--rate 0`).
    pub reached: bool,
    /// Acknowledged sends per second in the main phase.
    pub sends_per_s: f64,
    /// Records delivered to consumers per second in the main phase (every group's deliveries;
    /// kafka: records returned by polls).
    pub records_delivered_per_s: f64,
}

impl Rates {
    /// The rates of `samples` over the main phase, from `start_s` to `end_s`; `paced` names the
    /// operation `--rate` paces (`None`: all of them).
    pub fn of(
        samples: &[Sample],
        (start_s, end_s): (f64, f64),
        target: f64,
        paced: Option<&str>,
    ) -> Rates {
        let secs = (end_s - start_s).max(1e-3);
        let main = samples
            .iter()
            .filter(|s| s.invoke_s >= start_s && s.invoke_s < end_s);
        let (mut attempted, mut sends, mut records) = (0u64, 0u64, 0u64);
        for s in main {
            attempted += u64::from(paced.is_none_or(|p| p == s.op));
            if s.typ == OpType::Ok {
                sends += u64::from(s.op == "send");
                records += u64::from(s.records);
            }
        }
        let attempted_per_s = attempted as f64 / secs;
        Rates {
            target,
            attempted_per_s: round3(attempted_per_s),
            reached: target <= 0.0 || attempted_per_s >= 0.9 * target,
            sends_per_s: round3(sends as f64 / secs),
            records_delivered_per_s: round3(records as f64 / secs),
        }
    }
}

/// What a workload hands back.
#[derive(Debug, Default)]
pub struct WorkloadResult {
    /// The checker's findings (plus protocol problems seen by clients).
    pub anomalies: Anomalies,
    /// Completed operations: (ok, fail, info).
    pub counts: (u64, u64, u64),
    /// Latencies of ok operations, µs.
    pub latencies_us: Vec<u64>,
    /// Ok operations per second in the main phase.
    pub throughput: f64,
    /// Workload-specific figures for the report.
    pub stats: BTreeMap<String, Value>,
    /// Every completed operation, for the plots.
    pub samples: Vec<Sample>,
    /// The rates reached.
    pub rates: Rates,
    /// The main phase, in seconds since the workload started: (start, end).
    pub main_s: (f64, f64),
}

/// jepsen's `gen/stagger`: operations at uniformly random intervals in [0, 2/rate), over all clients.
#[derive(Debug)]
pub struct Stagger {
    next: Option<Instant>,
    mean: Duration,
}

impl Stagger {
    /// `rate` operations per second on average (a non-positive rate means as fast as possible).
    pub fn new(rate: f64) -> Stagger {
        let mean = if rate > 0.0 {
            Duration::from_secs_f64(1.0 / rate)
        } else {
            Duration::ZERO
        };
        Stagger { next: None, mean }
    }

    /// The time of the next operation: a random step after the previous one (or now, if the clients
    /// fell behind).
    pub fn next_slot(&mut self, rng: &mut impl Rng, now: Instant) -> Instant {
        let base = self.next.map_or(now, |n| n.max(now));
        let step = self.mean.mul_f64(2.0 * rng.random::<f64>());
        let slot = base + step;
        self.next = Some(slot);
        slot
    }
}

/// Sleeps until `t` (returns at once if it has passed).
pub fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// Counts a completed operation on the progress line and appends it to the history.
fn record<T>(ctx: &RunCtx<'_>, history: &Mutex<Vec<T>>, typ: OpType, op: T) {
    ctx.progress.record(typ);
    lock(history).push(op);
}

/// Notes a reply that does not fit the workload's schema.
fn note_malformed(malformed: &Mutex<Anomalies>, client: &Client, why: &str) {
    let who = client.name().to_string();
    lock(malformed).add("malformed-reply", || {
        format!("reply to {who} from n{}: {why}", client.node())
    });
}
