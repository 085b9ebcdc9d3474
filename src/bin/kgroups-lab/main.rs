//! `kgroups-lab`: a local Maelstrom-style cluster with workloads, fault injection and checkers.
//!
//! Maelstrom (Java) cannot run everywhere; the lab plays its part so that every claim about a node can
//! be checked the way Maelstrom would check it, on one node and on several. It speaks only the wire
//! protocol, so it runs any Maelstrom binary (`--bin`).
//!
//! The parts, in the order a run uses them:
//! - [`cli`]: the command line, shaped like Maelstrom's `test`.
//! - [`cluster`]: node processes and their pipes ([`cluster::process`]), the [`cluster::router`] that
//!   sends every line a node writes to the `dest` it names, and [`cluster::client`], Maelstrom's
//!   one-request-at-a-time client.
//! - [`net`]: node-to-node latency ([`net::latency`], one delay-queue thread) and the partition
//!   [`net::nemesis`]; message counts.
//! - [`workload`]: Maelstrom's [`workload::kafka`] workload and the consumer-group
//!   [`workload::groups`] workload; each records a history.
//! - [`checker`]: jepsen's kafka checker ([`checker::kafka`]) and the groups checker
//!   ([`checker::groups`]), pure functions of a history.
//! - [`results`]: the progress line, the final table and `results.json`; [`plot`]: the latency
//!   and throughput plots beside it (PNG and SVG, nemesis windows shaded).
//! - [`mod@bench`]: the throughput mode (`kgroups-lab bench`); its do-nothing floor node is the
//!   `kgroups-echo` binary (`src/bin/kgroups-echo`).
//!
//! Exit codes follow Maelstrom: 0 valid, 1 invalid, 2 could not run.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod bench;
mod checker;
mod cli;
mod cluster;
mod net;
mod plot;
mod results;
mod sync;
mod workload;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde_json::json;

use self::cli::{Cli, Command, TestOpts};
use self::cluster::{Cluster, ClusterConfig};
use self::net::latency::LatencyModel;
use self::net::NetStats;
use self::results::{Latency, NetSummary, Progress, ProgressLine, Summary};
use self::workload::RunCtx;
use crate::sync::{lock, Arc, Mutex};

/// Exit code: the checker found nothing wrong.
pub const EXIT_VALID: i32 = 0;
/// Exit code: the checker found anomalies.
pub const EXIT_INVALID: i32 = 1;
/// Exit code: the test could not run.
pub const EXIT_UNKNOWN: i32 = 2;

fn main() {
    std::process::exit(run(std::env::args_os()));
}

/// Runs the lab with these arguments (the first is the program name); returns the exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                EXIT_UNKNOWN
            } else {
                EXIT_VALID
            };
        }
    };
    match cli.command {
        Command::Test(opts) => match catch_unwind(AssertUnwindSafe(|| test(&opts))) {
            Ok(code) => code,
            Err(_) => {
                eprintln!("kgroups-lab: the lab itself failed (panic); no verdict");
                EXIT_UNKNOWN
            }
        },
        Command::Bench(opts) => match catch_unwind(AssertUnwindSafe(|| bench::bench(&opts))) {
            Ok(code) => code,
            Err(_) => {
                eprintln!("kgroups-lab: the bench itself failed (panic); no verdict");
                EXIT_UNKNOWN
            }
        },
    }
}

/// The `kgroups` binary next to this executable.
pub fn default_node_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    dir.join(format!("kgroups{}", std::env::consts::EXE_SUFFIX))
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn could_not_run(path: &Path, opts: &TestOpts, seed: u64, why: &str) -> i32 {
    eprintln!("kgroups-lab: could not run: {why}");
    let doc = json!({"valid": false, "could_not_run": why, "workload": opts.workload.name(), "seed": seed});
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(path, format!("{doc:#}\n"));
    EXIT_UNKNOWN
}

/// `kgroups-lab test`.
pub fn test(opts: &TestOpts) -> i32 {
    let started = Instant::now();
    let seed = opts.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let results_path = opts.results.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "store/{}/{}/results.json",
            opts.workload.name(),
            unix_secs()
        ))
    });
    let log_dir = results_path.parent().map(|d| d.join("node-logs"));
    let bin = opts.bin.clone().unwrap_or_else(default_node_bin);
    let concurrency = opts.concurrency.resolve(opts.node_count);
    let clients = match opts.workload {
        cli::WorkloadKind::Kafka => format!("{concurrency} clients"),
        cli::WorkloadKind::Groups => format!(
            "{} groups × {} consumers, {} producers",
            opts.groups, opts.consumers, opts.producers
        ),
    };
    eprintln!(
        "kgroups-lab: {} on {} × {} node(s), {clients}, seed {seed}; results: {}",
        opts.workload.name(),
        bin.display(),
        opts.node_count,
        results_path.display()
    );
    let cfg = ClusterConfig {
        bin: bin.clone(),
        args: opts.node_args.clone(),
        nodes: opts.node_count,
        latency: LatencyModel::new(opts.latency, opts.latency_dist),
        seed,
        log_dir: log_dir.clone(),
        init_timeout: Duration::from_secs(10),
    };
    let mut cluster = match Cluster::start(&cfg) {
        Ok(c) => c,
        Err(why) => return could_not_run(&results_path, opts, seed, &why),
    };

    let progress = Arc::new(Progress::default());
    let phase: Arc<Mutex<&'static str>> = Arc::new(Mutex::new("setup"));
    let line = {
        let phase = Arc::clone(&phase);
        let net = Arc::clone(cluster.net());
        ProgressLine::start(
            !opts.no_progress,
            opts.workload.name(),
            Arc::clone(&progress),
            opts.time_limit,
            move || {
                let p = *lock(&phase);
                (p.to_string(), NetStats::get(&net.stats.server_msgs))
            },
        )
    };
    let (result, nemesis) = {
        let ctx = RunCtx::new(
            &cluster,
            opts,
            seed,
            Arc::clone(&progress),
            Arc::clone(&phase),
        );
        let result = match opts.workload {
            cli::WorkloadKind::Kafka => workload::kafka::run(&ctx),
            cli::WorkloadKind::Groups => workload::groups::run(&ctx),
        };
        (result, ctx.nemesis_log())
    };
    line.finish();
    let router = Arc::clone(cluster.router());
    // Issues are read before stopping: a node's exit after this point is the lab's doing.
    let issues: Vec<_> = router.issues().into_iter().filter(|i| i.any()).collect();
    let net = Arc::clone(cluster.net());
    cluster.stop();

    let (ok, fail, info) = result.counts;
    let ops = ok + fail + info;
    let client_msgs = NetStats::get(&net.stats.client_msgs);
    let server_msgs = NetStats::get(&net.stats.server_msgs);
    let per_op = |m: u64| if ops == 0 { 0.0 } else { m as f64 / ops as f64 };
    let net_summary = NetSummary {
        client_msgs,
        server_msgs,
        server_msgs_per_op: per_op(server_msgs),
        client_msgs_per_op: per_op(client_msgs),
        server_dropped: NetStats::get(&net.stats.server_dropped),
        invalid_lines: issues.iter().map(|i| i.invalid_lines + i.wrong_src).sum(),
        unknown_dest: issues.iter().map(|i| i.unknown_dest).sum(),
        closed_dest: issues.iter().map(|i| i.closed_dest).sum(),
    };
    let mut config = BTreeMap::new();
    config.insert("bin".into(), json!(bin.display().to_string()));
    config.insert("node_args".into(), json!(opts.node_args));
    config.insert("node_count".into(), json!(opts.node_count));
    config.insert("concurrency".into(), json!(concurrency));
    config.insert("rate".into(), json!(opts.rate));
    config.insert("time_limit".into(), json!(opts.time_limit));
    config.insert("latency_ms".into(), json!(opts.latency));
    config.insert(
        "latency_dist".into(),
        json!(format!("{:?}", opts.latency_dist).to_lowercase()),
    );
    config.insert("nemesis".into(), json!(opts.nemesis.map(|_| "partition")));
    config.insert("nemesis_interval".into(), json!(opts.nemesis_interval));
    let cuts = workload::cut_windows(&nemesis, result.main_s.1.max(0.0));
    let run_dir = results_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let plotted = std::fs::create_dir_all(&run_dir)
        .map_err(|e| format!("{}: {e}", run_dir.display()))
        .and_then(|()| {
            let marks = plot::Marks {
                main_end_s: result.main_s.1,
                cuts: &cuts,
            };
            plot::write(&run_dir, &result.samples, marks)
        });
    let (plots, plots_error) = match plotted {
        Ok(paths) => (paths, None),
        Err(why) => (Vec::new(), Some(why)),
    };
    let mut summary = Summary {
        valid: false,
        workload: opts.workload.name().to_string(),
        ops,
        ok,
        fail,
        info,
        errors: BTreeMap::new(),
        error_examples: BTreeMap::new(),
        latency_us: Latency::of(result.latencies_us),
        throughput: result.throughput,
        net: net_summary,
        node_issues: issues,
        nemesis,
        rates: result.rates,
        plots: plots
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect(),
        plots_error: plots_error.clone(),
        workload_stats: result.stats,
        seed,
        config,
        elapsed_secs: started.elapsed().as_secs_f64(),
    };
    summary.finalize(result.anomalies);
    print!("{}", summary.table());
    if let Err(e) = summary.write_json(&results_path) {
        eprintln!("kgroups-lab: cannot write {}: {e}", results_path.display());
    }
    println!("  {:<12} {}", "results", results_path.display());
    match &plots_error {
        None => {
            for p in &plots {
                println!("  {:<12} {}", "plot", p.display());
            }
        }
        Some(why) => println!("  {:<12} not written: {why}", "plots"),
    }
    if summary.valid {
        EXIT_VALID
    } else {
        EXIT_INVALID
    }
}
