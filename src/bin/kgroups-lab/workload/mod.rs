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
    nemesis_log: Mutex<Vec<String>>,
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
            *lock(&self.nemesis) = Some(n);
        }
    }

    /// Stops the nemesis (healing the network) and keeps its log.
    pub fn heal(&self) {
        let n = lock(&self.nemesis).take();
        if let Some(n) = n {
            let events = n.stop();
            let mut log = lock(&self.nemesis_log);
            for e in events {
                log.push(
                    format!("{:.2}s {} {}", e.at_secs, e.action, e.detail)
                        .trim_end()
                        .to_string(),
                );
            }
        }
        self.cluster.net().heal();
    }

    /// What the nemesis did.
    pub fn nemesis_log(&self) -> Vec<String> {
        lock(&self.nemesis_log).clone()
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
