//! `kgroups-lab bench`: throughput, measured through the node's own pipes.
//!
//! One node process, one driver ([`driver`]): pipelined clients keep up to `--window` requests in
//! flight each, every reply is checked (per client and key, `send_ok` offsets increase; a `poll`
//! from an acknowledged offset starts there and ascends; group deliveries ascend per consumer and
//! key), and at the end every acknowledged record is read back (or, in `groups` mode, found in every
//! group's deliveries). The figures: operations/s (records delivered/s in `groups` mode), latency
//! p50/p99/max, the node's CPU time per operation during the load (from `/proc/<pid>/task/*/schedstat`, so
//! the read-back is not counted), its whole-life CPU and peak RSS (`wait4`), and the driver's own CPU
//! per operation, which must stay well below the node's. `--echo` measures the
//! [`echo`](crate::echo) node the same way after each run: the floor of every figure.
//!
//! - [`process`]: the child, its pipes, its CPU time and peak memory.
//! - [`driver`]: the writer and reader threads and the checks.
//! - `fast`: parsers for kgroups' exact reply layouts, with the general scanner as the fallback.

mod cpu;
pub mod driver;
mod fast;
pub mod process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use self::driver::{Mode, Plan};
use self::process::{LineReader, NodeChild};
use crate::cli::{BenchMode, BenchOpts};
use crate::{EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID};

/// The figures of one run of one binary.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    pub valid: bool,
    pub errors: BTreeMap<String, u64>,
    pub examples: Vec<String>,
    /// Requests answered during the load.
    pub ops: u64,
    /// Operations/s (`groups`: records delivered/s).
    pub throughput: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// Node CPU µs per operation during the load.
    pub node_cpu_us_per_op: f64,
    /// Node CPU over its whole life (load, read-back, start), seconds.
    pub node_cpu_total_s: f64,
    pub peak_rss_bytes: u64,
    pub driver_cpu_us_per_op: f64,
    pub elapsed_s: f64,
    /// groups: records delivered, re-deliveries, polls, sends/s.
    pub delivered: u64,
    pub redelivered: u64,
    pub polls: u64,
    pub sends_per_s: f64,
    /// groups: node and driver CPU µs per record delivered.
    pub node_cpu_us_per_record: f64,
    pub driver_cpu_us_per_record: f64,
}

impl RunStats {
    fn json(&self) -> Value {
        json!({
            "valid": self.valid,
            "errors": self.errors,
            "examples": self.examples,
            "ops": self.ops,
            "throughput": self.throughput,
            "latency_us": {"p50": self.p50_us, "p99": self.p99_us, "max": self.max_us},
            "node_cpu_us_per_op": self.node_cpu_us_per_op,
            "node_cpu_total_s": self.node_cpu_total_s,
            "peak_rss_bytes": self.peak_rss_bytes,
            "driver_cpu_us_per_op": self.driver_cpu_us_per_op,
            "elapsed_s": self.elapsed_s,
            "records_delivered": self.delivered,
            "redelivered": self.redelivered,
            "polls": self.polls,
            "sends_per_s": self.sends_per_s,
            "node_cpu_us_per_record": self.node_cpu_us_per_record,
            "driver_cpu_us_per_record": self.driver_cpu_us_per_record,
        })
    }
}

/// The median of each figure over runs (validity: all valid; errors: summed).
fn median(runs: &[RunStats]) -> RunStats {
    let med = |f: &dyn Fn(&RunStats) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    };
    let mut errors = BTreeMap::new();
    for r in runs {
        for (k, v) in &r.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
    }
    RunStats {
        valid: runs.iter().all(|r| r.valid),
        errors,
        examples: runs
            .iter()
            .flat_map(|r| r.examples.clone())
            .take(10)
            .collect(),
        ops: med(&|r| r.ops as f64) as u64,
        throughput: med(&|r| r.throughput),
        p50_us: med(&|r| r.p50_us),
        p99_us: med(&|r| r.p99_us),
        max_us: med(&|r| r.max_us),
        node_cpu_us_per_op: med(&|r| r.node_cpu_us_per_op),
        node_cpu_total_s: med(&|r| r.node_cpu_total_s),
        peak_rss_bytes: med(&|r| r.peak_rss_bytes as f64) as u64,
        driver_cpu_us_per_op: med(&|r| r.driver_cpu_us_per_op),
        elapsed_s: med(&|r| r.elapsed_s),
        delivered: med(&|r| r.delivered as f64) as u64,
        redelivered: med(&|r| r.redelivered as f64) as u64,
        polls: med(&|r| r.polls as f64) as u64,
        sends_per_s: med(&|r| r.sends_per_s),
        node_cpu_us_per_record: med(&|r| r.node_cpu_us_per_record),
        driver_cpu_us_per_record: med(&|r| r.driver_cpu_us_per_record),
    }
}

/// p50, p99 and max of latencies in ns, in µs.
fn percentiles(mut ns: Vec<u32>) -> (f64, f64, f64) {
    if ns.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    (at(0.5), at(0.99), at(1.0))
}

/// A binary next to this executable.
fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// One run of `bin` under `plan`: spawn, init, (groups: settle), load, checks, exit.
pub fn run_once(
    bin: &Path,
    args: &[String],
    plan: &Plan,
    log: Option<&Path>,
    timeout: Duration,
) -> Result<RunStats, String> {
    let (child, mut stdin, stdout) = NodeChild::spawn(bin, args, log)
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    // A watchdog kills a node that hangs; it is released when the run ends.
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    let pid = child.pid;
    let watchdog = std::thread::spawn(move || {
        if let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stop_rx.recv_timeout(timeout) {
            eprintln!("kgroups-lab: bench timed out; killing the node");
            // SAFETY: 1. `pid` is our own child, which is not reaped until the run ends (the
            // watchdog is joined before `wait`); 2. kill has no effect on memory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut lines = LineReader::new(stdout);
    let finish = |child: NodeChild, watchdog: std::thread::JoinHandle<()>| {
        let _ = stop_tx.send(());
        let _ = watchdog.join();
        child.wait()
    };
    let me = format!("c{}", plan.clients + plan.consumers + 1);
    let init = format!(
        r#"{{"src":"{me}","dest":"{0}","body":{{"type":"init","msg_id":1,"node_id":"{0}","node_ids":["{0}"]}}}}"#,
        plan.node
    );
    match driver::rpc(&mut stdin, &mut lines, &init, &me, 1) {
        Some(r) if r.contains("\"init_ok\"") => {}
        other => {
            drop(stdin);
            drop(lines);
            let _ = finish(child, watchdog);
            return Err(format!("no init_ok from {}: {other:?}", bin.display()));
        }
    }
    if plan.mode == Mode::Groups {
        if let Err(why) = driver::settle_groups(plan, &mut stdin, &mut lines) {
            drop(stdin);
            drop(lines);
            let _ = finish(child, watchdog);
            return Err(why);
        }
    }
    let cpu0 = child.cpu();
    let (mut fin, input, mut lines) = driver::drive(plan, stdin, lines);
    let cpu1 = child.cpu();
    let mut redelivered = 0;
    let mut input = input;
    if let Some(input) = input.as_mut() {
        match plan.mode {
            Mode::Groups => redelivered = driver::check_groups(plan, &mut fin),
            _ if plan.readback => driver::read_back(plan, &mut fin, input, &mut lines),
            _ => {}
        }
    }
    let peak_rss = child.peak_rss();
    drop(input);
    drop(lines);
    let exit = finish(child, watchdog).map_err(|e| format!("wait for the node: {e}"))?;
    let o = &fin.outcome;
    let ops = o.ops.max(1) as f64;
    let secs = o.elapsed.as_secs_f64().max(1e-9);
    let load_cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => exit.cpu,
    };
    let (p50, p99, max) = percentiles(fin.outcome.latencies_ns.clone());
    let o = &fin.outcome;
    let per_record = |cpu: Duration| {
        if o.delivered > 0 {
            cpu.as_secs_f64() * 1e6 / o.delivered as f64
        } else {
            0.0
        }
    };
    let errors: BTreeMap<String, u64> = o
        .anomalies
        .counts
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    Ok(RunStats {
        valid: o.anomalies.is_empty()
            && if plan.mode == Mode::Groups {
                o.acked == plan.ops
            } else {
                o.ops == plan.ops
            },
        errors,
        examples: o.anomalies.examples.clone(),
        ops: o.ops,
        throughput: if plan.mode == Mode::Groups {
            o.delivered as f64 / secs
        } else {
            ops / secs
        },
        p50_us: p50,
        p99_us: p99,
        max_us: max,
        node_cpu_us_per_op: load_cpu.as_secs_f64() * 1e6 / ops,
        node_cpu_total_s: exit.cpu.as_secs_f64(),
        peak_rss_bytes: peak_rss.unwrap_or(exit.max_rss),
        driver_cpu_us_per_op: o.driver_cpu.as_secs_f64() * 1e6 / ops,
        elapsed_s: secs,
        delivered: o.delivered,
        redelivered,
        polls: o.polls,
        sends_per_s: o.acked as f64 / secs,
        node_cpu_us_per_record: per_record(load_cpu),
        driver_cpu_us_per_record: per_record(o.driver_cpu),
    })
}

fn plan_of(opts: &BenchOpts, readback: bool) -> Plan {
    Plan {
        mode: match opts.mode {
            BenchMode::Send => Mode::Send,
            BenchMode::Mixed => Mode::Mixed,
            BenchMode::Groups => Mode::Groups,
        },
        clients: opts.clients.max(1),
        window: opts.window.max(1),
        ops: opts.ops,
        keys: opts.keys.clamp(1, 1 << 20),
        groups: opts.groups.max(1),
        consumers: if opts.mode == BenchMode::Groups {
            opts.consumers.max(1)
        } else {
            0
        },
        max_messages: opts.max_messages,
        consumer_window: opts.consumer_window.max(1),
        seed: opts.seed,
        readback,
        node: "n0".into(),
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn ratio(a: f64, b: f64) -> Value {
    if b > 0.0 {
        json!((a / b * 1000.0).round() / 1000.0)
    } else {
        Value::Null
    }
}

/// The table on screen: node beside echo.
fn table(opts: &BenchOpts, node: &RunStats, echo: Option<&RunStats>) -> String {
    let unit = if opts.mode == BenchMode::Groups {
        "records/s"
    } else {
        "ops/s"
    };
    let mut s = format!(
        "\nkgroups-lab bench --mode {} --clients {} --window {} --ops {}: {} (median of {} run{})\n",
        opts.mode.name(),
        opts.clients,
        opts.window,
        opts.ops,
        if node.valid { "VALID" } else { "INVALID" },
        opts.runs,
        if opts.runs == 1 { "" } else { "s" }
    );
    s += &format!(
        "  {:<24} {:>14} {:>14} {:>8}\n",
        "figure", "node", "echo (floor)", "ratio"
    );
    let rows: [(&str, f64, Option<f64>, u32); 8] = [
        (unit, node.throughput, echo.map(|e| e.throughput), 0),
        ("latency p50 µs", node.p50_us, echo.map(|e| e.p50_us), 1),
        ("latency p99 µs", node.p99_us, echo.map(|e| e.p99_us), 1),
        ("latency max µs", node.max_us, echo.map(|e| e.max_us), 1),
        (
            "node CPU µs/op",
            node.node_cpu_us_per_op,
            echo.map(|e| e.node_cpu_us_per_op),
            3,
        ),
        (
            "peak RSS MiB",
            node.peak_rss_bytes as f64 / 1048576.0,
            echo.map(|e| e.peak_rss_bytes as f64 / 1048576.0),
            1,
        ),
        (
            "driver CPU µs/op",
            node.driver_cpu_us_per_op,
            echo.map(|e| e.driver_cpu_us_per_op),
            3,
        ),
        ("elapsed s", node.elapsed_s, echo.map(|e| e.elapsed_s), 2),
    ];
    for (name, n, e, prec) in rows {
        let p = prec as usize;
        let (e, r) = match e {
            Some(e) if e > 0.0 => (format!("{e:.p$}"), format!("{:.2}", n / e)),
            Some(e) => (format!("{e:.p$}"), "-".into()),
            None => ("-".into(), "-".into()),
        };
        s += &format!("  {name:<24} {n:>14.p$} {e:>14} {r:>8}\n");
    }
    if opts.mode == BenchMode::Groups {
        s += &format!(
            "  records delivered {} (re-delivered {}), polls {}, sends/s {:.0}\n",
            node.delivered, node.redelivered, node.polls, node.sends_per_s
        );
        s += &format!(
            "  CPU µs per record delivered: node {:.3}, driver {:.3}\n",
            node.node_cpu_us_per_record, node.driver_cpu_us_per_record
        );
    }
    if !node.errors.is_empty() {
        s += &format!("  errors: {:?}\n", node.errors);
        for e in &node.examples {
            s += &format!("    {e}\n");
        }
    }
    s
}

/// `kgroups-lab bench`.
pub fn bench(opts: &BenchOpts) -> i32 {
    let results = opts.results.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "store/bench-{}/{}/results.json",
            opts.mode.name(),
            unix_secs()
        ))
    });
    let dir = results.parent().map(Path::to_path_buf).unwrap_or_default();
    let _ = std::fs::create_dir_all(dir.join("node-logs"));
    let bin = opts.bin.clone().unwrap_or_else(|| sibling("kgroups"));
    let echo_bin = opts
        .echo_bin
        .clone()
        .unwrap_or_else(|| sibling("kgroups-echo"));
    let timeout = Duration::from_secs_f64(opts.timeout.max(1.0));
    let with_echo = opts.echo && opts.mode != BenchMode::Groups;
    if opts.echo && !with_echo {
        eprintln!(
            "kgroups-lab: the echo floor has no meaning for groups (it stores nothing); skipped"
        );
    }
    let mut node_runs = Vec::new();
    let mut echo_runs = Vec::new();
    for r in 0..opts.runs.max(1) {
        let log = dir.join(format!("node-logs/node-{r}.log"));
        let plan = plan_of(opts, !opts.no_readback);
        match run_once(&bin, &opts.node_args, &plan, Some(&log), timeout) {
            Ok(s) => {
                eprintln!(
                    "run {r}: node {:.0}/s, p50 {:.1} µs, node CPU {:.3} µs/op{}",
                    s.throughput,
                    s.p50_us,
                    s.node_cpu_us_per_op,
                    if s.valid { "" } else { " INVALID" }
                );
                node_runs.push(s);
            }
            Err(why) => return could_not_run(&results, opts, &why),
        }
        if with_echo {
            let plan = plan_of(opts, false);
            let log = dir.join(format!("node-logs/echo-{r}.log"));
            match run_once(&echo_bin, &[], &plan, Some(&log), timeout) {
                Ok(s) => {
                    eprintln!(
                        "run {r}: echo {:.0}/s, p50 {:.1} µs, CPU {:.3} µs/op{}",
                        s.throughput,
                        s.p50_us,
                        s.node_cpu_us_per_op,
                        if s.valid { "" } else { " INVALID" }
                    );
                    echo_runs.push(s);
                }
                Err(why) => return could_not_run(&results, opts, &format!("echo: {why}")),
            }
        }
    }
    let node = median(&node_runs);
    let echo = (!echo_runs.is_empty()).then(|| median(&echo_runs));
    print!("{}", table(opts, &node, echo.as_ref()));
    let mut doc = node.json();
    let o = doc.as_object_mut().expect("an object");
    o.insert("mode".into(), json!(opts.mode.name()));
    o.insert("clients".into(), json!(opts.clients));
    o.insert("window".into(), json!(opts.window));
    o.insert("requested_ops".into(), json!(opts.ops));
    o.insert("keys".into(), json!(opts.keys));
    o.insert("bin".into(), json!(bin.display().to_string()));
    o.insert("node_args".into(), json!(opts.node_args));
    o.insert("seed".into(), json!(opts.seed));
    o.insert("runs".into(), json!(node_runs.len()));
    o.insert(
        "cpus".into(),
        json!(std::thread::available_parallelism().map_or(1, |n| n.get())),
    );
    if opts.mode == BenchMode::Groups {
        o.insert("groups".into(), json!(opts.groups));
        o.insert("consumers".into(), json!(opts.consumers));
        o.insert("max_messages".into(), json!(opts.max_messages));
    }
    o.insert(
        "node_runs".into(),
        Value::Array(node_runs.iter().map(RunStats::json).collect()),
    );
    if let Some(e) = &echo {
        o.insert("echo".into(), e.json());
        o.insert(
            "echo_runs".into(),
            Value::Array(echo_runs.iter().map(RunStats::json).collect()),
        );
        o.insert(
            "ratio_to_echo".into(),
            json!({
                "throughput": ratio(node.throughput, e.throughput),
                "latency_p50": ratio(node.p50_us, e.p50_us),
                "latency_p99": ratio(node.p99_us, e.p99_us),
                "node_cpu_us_per_op": ratio(node.node_cpu_us_per_op, e.node_cpu_us_per_op),
            }),
        );
    }
    if let Err(e) = std::fs::write(&results, format!("{doc:#}\n")) {
        eprintln!("kgroups-lab: cannot write {}: {e}", results.display());
    }
    eprintln!("results: {}", results.display());
    if node.valid {
        EXIT_VALID
    } else {
        EXIT_INVALID
    }
}

fn could_not_run(path: &Path, opts: &BenchOpts, why: &str) -> i32 {
    eprintln!("kgroups-lab: could not run: {why}");
    let doc = json!({"valid": false, "could_not_run": why, "mode": opts.mode.name()});
    let _ = std::fs::write(path, format!("{doc:#}\n"));
    EXIT_UNKNOWN
}
