//! Results: the live progress line, the final table and `results.json`.
//!
//! # Orderings
//! [`Progress`]'s counters are statistics for the progress line: each is read on its own, nothing is
//! published through them, so every access is `Relaxed`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::Value;

use crate::checker::kafka::OpType;
use crate::checker::Anomalies;
use crate::cluster::router::NodeIssues;
use crate::sync::{Arc, AtomicU64, Ordering};
use crate::workload::{NemesisEntry, Rates};

/// Live counts of completed operations.
#[derive(Debug, Default)]
pub struct Progress {
    ok: AtomicU64,
    fail: AtomicU64,
    info: AtomicU64,
}

impl Progress {
    /// Counts one completed operation.
    pub fn record(&self, typ: OpType) {
        let c = match typ {
            OpType::Ok => &self.ok,
            OpType::Fail => &self.fail,
            OpType::Info => &self.info,
        };
        // Relaxed: see the module's # Orderings.
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// (ok, fail, info) so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        // Relaxed: see the module's # Orderings.
        (
            self.ok.load(Ordering::Relaxed),
            self.fail.load(Ordering::Relaxed),
            self.info.load(Ordering::Relaxed),
        )
    }
}

/// The progress line on stderr, redrawn a few times a second on a terminal; when stderr is not a
/// terminal (a CI log, a file), a plain line every [`PLAIN_EVERY`] instead.
#[derive(Debug)]
pub struct ProgressLine {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

/// How often the progress is printed as a plain line when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl ProgressLine {
    /// Starts drawing; `phase` is called each tick for the phase name and the net counters.
    pub fn start(
        enabled: bool,
        workload: &'static str,
        progress: Arc<Progress>,
        time_limit: f64,
        phase: impl Fn() -> (String, u64) + Send + 'static,
    ) -> ProgressLine {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let terminal = std::io::stderr().is_terminal();
        let plain = enabled && !terminal;
        let enabled = enabled && terminal;
        let thread = thread::spawn(move || {
            // The first plain line right away, then one every PLAIN_EVERY.
            let mut last_plain: Option<Instant> = None;
            let bar = ProgressBar::with_draw_target(
                None,
                if enabled {
                    ProgressDrawTarget::stderr_with_hz(5)
                } else {
                    ProgressDrawTarget::hidden()
                },
            );
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            let start = Instant::now();
            loop {
                let (ok, fail, info) = progress.counts();
                let t = start.elapsed().as_secs_f64();
                let ops = ok + fail + info;
                let (phase, server_msgs) = phase();
                let msg = format!(
                    "{workload} {phase} {t:5.1}s/{time_limit}s  ops {ops} ({:.0}/s)  ok {ok} fail {fail} info {info}  server msgs {server_msgs}",
                    ops as f64 / t.max(1e-3)
                );
                if plain && last_plain.is_none_or(|at| at.elapsed() >= PLAIN_EVERY) {
                    eprintln!("kgroups-lab: {msg}");
                    last_plain = Some(Instant::now());
                }
                bar.set_message(msg);
                bar.tick();
                match stopped.recv_timeout(Duration::from_millis(200)) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
            bar.finish_and_clear();
        });
        ProgressLine {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and clears the line.
    pub fn finish(mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Maximum.
    pub max: u64,
}

impl Latency {
    /// Percentiles of `samples_us` (nearest rank); all zero when empty.
    pub fn of(mut samples_us: Vec<u64>) -> Latency {
        if samples_us.is_empty() {
            return Latency::default();
        }
        samples_us.sort_unstable();
        let rank = |q: f64| {
            let i = ((q * samples_us.len() as f64).ceil() as usize).clamp(1, samples_us.len()) - 1;
            samples_us[i]
        };
        Latency {
            p50: rank(0.50),
            p99: rank(0.99),
            max: *samples_us.last().expect("non-empty"),
        }
    }
}

/// Message counts, Maelstrom's `:net`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct NetSummary {
    /// Messages between clients and nodes.
    pub client_msgs: u64,
    /// Messages between nodes.
    pub server_msgs: u64,
    /// Server messages per client operation (msgs-per-op).
    pub server_msgs_per_op: f64,
    /// Client messages per operation.
    pub client_msgs_per_op: f64,
    /// Server messages dropped by partitions.
    pub server_dropped: u64,
    /// Lines written by the nodes that break the protocol.
    pub invalid_lines: u64,
    /// Messages to destinations that never existed.
    pub unknown_dest: u64,
    /// Messages to clients already closed.
    pub closed_dest: u64,
}

/// Everything a run reports; serialized as `results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Whether the checker found nothing wrong.
    pub valid: bool,
    /// `kafka` or `groups`.
    pub workload: String,
    /// Completed client operations.
    pub ops: u64,
    /// Of which ok.
    pub ok: u64,
    /// Of which failed definitely.
    pub fail: u64,
    /// Of which unknown.
    pub info: u64,
    /// Error kind → number of cases (empty when valid).
    pub errors: BTreeMap<String, u64>,
    /// A few examples per error kind.
    pub error_examples: BTreeMap<String, Vec<String>>,
    /// Latency of ok operations.
    pub latency_us: Latency,
    /// Ok operations per second during the workload phase.
    pub throughput: f64,
    /// Message counts.
    pub net: NetSummary,
    /// Per-node problems (only nodes with some).
    pub node_issues: Vec<NodeIssues>,
    /// Nemesis actions, in seconds since the workload started.
    pub nemesis: Vec<NemesisEntry>,
    /// The rates reached: `--rate`, what was attempted, sends and records delivered per second.
    pub rates: Rates,
    /// The plots written next to `results.json` (file names).
    pub plots: Vec<String>,
    /// Why there are no plots, if there are none.
    pub plots_error: Option<String>,
    /// Workload-specific figures.
    pub workload_stats: BTreeMap<String, Value>,
    /// The seed of the run.
    pub seed: u64,
    /// Nodes, concurrency and the rest of the setup.
    pub config: BTreeMap<String, Value>,
    /// Seconds the whole run took.
    pub elapsed_secs: f64,
}

impl Summary {
    /// Merges node problems into the error kinds (a broken line or an early exit makes a run invalid,
    /// as it would stop Maelstrom) and sets `valid`.
    pub fn finalize(&mut self, mut anomalies: Anomalies) {
        for issue in &self.node_issues {
            let node = &issue.node;
            for (kind, n) in [
                ("invalid-line", issue.invalid_lines),
                ("wrong-src", issue.wrong_src),
                ("unknown-dest", issue.unknown_dest),
                ("closed-dest", issue.closed_dest),
                ("node-exit", u64::from(issue.exited_early)),
            ] {
                for _ in 0..n {
                    anomalies.add(kind, || {
                        let ex = issue
                            .examples
                            .iter()
                            .find(|e| kind_matches(kind, e))
                            .cloned()
                            .unwrap_or_default();
                        format!("{node}: {ex}")
                    });
                }
            }
        }
        self.valid = anomalies.is_empty();
        self.errors = anomalies.counts;
        self.error_examples = anomalies.examples;
    }

    /// Writes `results.json` to `path` (creating its directory).
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::File::create(path)?;
        serde_json::to_writer_pretty(&mut f, self)?;
        f.write_all(b"\n")
    }

    /// The final table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let verdict = if self.valid { "VALID" } else { "INVALID" };
        let ms = |us: u64| us as f64 / 1000.0;
        s.push_str(&format!(
            "kgroups-lab test -w {} (seed {}): {verdict}\n",
            self.workload, self.seed
        ));
        s.push_str(&format!(
            "  {:<12} {} (ok {}, fail {}, info {})\n",
            "operations", self.ops, self.ok, self.fail, self.info
        ));
        s.push_str(&format!(
            "  {:<12} {:.1} ok ops/s, {:.1} acknowledged sends/s, {:.1} records delivered/s\n",
            "throughput",
            self.throughput,
            self.rates.sends_per_s,
            self.rates.records_delivered_per_s
        ));
        if self.rates.target > 0.0 {
            let paced = if self.workload == "groups" {
                "sends"
            } else {
                "operations"
            };
            let verdict = if self.rates.reached {
                "reached".to_string()
            } else {
                "NOT reached: the clients could not go faster (one request in flight each; \
                 more --concurrency, or --rate 0 for as fast as they go)"
                    .to_string()
            };
            s.push_str(&format!(
                "  {:<12} --rate {} {paced}/s asked, {:.1}/s attempted: {verdict}\n",
                "rate", self.rates.target, self.rates.attempted_per_s
            ));
        } else {
            s.push_str(&format!(
                "  {:<12} --rate 0: as fast as the clients go, {:.1} ops/s attempted\n",
                "rate", self.rates.attempted_per_s
            ));
        }
        s.push_str(&format!(
            "  {:<12} p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms\n",
            "latency",
            ms(self.latency_us.p50),
            ms(self.latency_us.p99),
            ms(self.latency_us.max)
        ));
        s.push_str(&format!(
            "  {:<12} server {:.2} ({} msgs, {} dropped)  client {:.2} ({} msgs)\n",
            "msgs-per-op",
            self.net.server_msgs_per_op,
            self.net.server_msgs,
            self.net.server_dropped,
            self.net.client_msgs_per_op,
            self.net.client_msgs
        ));
        for (k, v) in &self.workload_stats {
            s.push_str(&format!("  {k:<12} {}\n", human(v)));
        }
        if !self.nemesis.is_empty() {
            let cuts = self.nemesis.iter().filter(|e| e.action == "cut").count();
            s.push_str(&format!("  {:<12} {cuts} partitions\n", "nemesis"));
        }
        if self.errors.is_empty() {
            s.push_str(&format!("  {:<12} none\n", "errors"));
        } else {
            for (kind, n) in &self.errors {
                s.push_str(&format!("  {:<12} {kind}: {n}\n", "error"));
                for ex in self.error_examples.get(kind).into_iter().flatten().take(3) {
                    s.push_str(&format!("  {:<12}   e.g. {ex}\n", ""));
                }
            }
        }
        s
    }
}

/// A JSON value as table text: numbers and strings as they are, an object as `key value, …`
/// (`ok 10, total 12`), an array as a list, `null` as `none`.
pub fn human(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        Value::Object(m) if m.is_empty() => "none".into(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::Object(_) | Value::Array(_) => format!("{k} ({})", human(v)),
                _ => format!("{k} {}", human(v)),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(a) => a.iter().map(human).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn kind_matches(kind: &str, example: &str) -> bool {
    match kind {
        "invalid-line" => example.starts_with("not a message") || example.starts_with("bad body"),
        "wrong-src" => example.starts_with("src is not"),
        "unknown-dest" => example.starts_with("unknown dest"),
        "closed-dest" => example.starts_with("to a client already closed"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let l = Latency::of((1..=100).collect());
        assert_eq!(
            l,
            Latency {
                p50: 50,
                p99: 99,
                max: 100
            }
        );
        assert_eq!(Latency::of(vec![]), Latency::default());
        assert_eq!(
            Latency::of(vec![7]),
            Latency {
                p50: 7,
                p99: 7,
                max: 7
            }
        );
    }

    #[test]
    fn node_issues_make_a_run_invalid() {
        let mut s = Summary {
            valid: true,
            workload: "kafka".into(),
            ops: 0,
            ok: 0,
            fail: 0,
            info: 0,
            errors: BTreeMap::new(),
            error_examples: BTreeMap::new(),
            latency_us: Latency::default(),
            throughput: 0.0,
            net: NetSummary::default(),
            node_issues: vec![NodeIssues {
                node: "n0".into(),
                invalid_lines: 2,
                examples: vec!["not a message (x): garbage".into()],
                ..Default::default()
            }],
            nemesis: vec![],
            rates: Rates::default(),
            plots: vec![],
            plots_error: None,
            workload_stats: BTreeMap::new(),
            seed: 1,
            config: BTreeMap::new(),
            elapsed_secs: 0.0,
        };
        s.finalize(Anomalies::default());
        assert!(!s.valid);
        assert_eq!(s.errors["invalid-line"], 2);
        assert!(s.error_examples["invalid-line"][0].contains("garbage"));
        assert!(s.table().contains("INVALID"));
    }

    #[test]
    fn the_table_writes_values_as_text_not_json() {
        let v = serde_json::json!({"ok": 10, "total": 12});
        assert_eq!(human(&v), "ok 10, total 12");
        let v = serde_json::json!({"p50": 1.5, "measured": 3, "x": {"a": null}});
        assert_eq!(human(&v), "measured 3, p50 1.5, x (a none)");
        assert_eq!(human(&serde_json::json!({})), "none");
        assert_eq!(
            human(&serde_json::json!("create_topic_ok")),
            "create_topic_ok"
        );
    }
}
