//! The command line, shaped like Maelstrom's `test` command so that its users feel at home.
//!
//! `kgroups-lab test -w kafka --node-count 3 --concurrency 2n --rate 1000 --time-limit 10 --nemesis partition`
//!
//! `kgroups-lab bench --mode send --clients 8 --window 64 --ops 1000000 --echo` is the throughput mode:
//! one node, pipelined clients, the node's CPU per operation beside a do-nothing echo node.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// kgroups-lab: a local Maelstrom-style cluster with workloads, fault injection and checkers.
#[derive(Debug, Parser)]
#[command(name = "kgroups-lab", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The lab's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workload against a cluster of node processes and check the history it produced.
    ///
    /// Exit code: 0 valid, 1 invalid, 2 could not run (Maelstrom's convention). A flag given twice
    /// takes its last value.
    ///
    /// Writes `results.json`, the node logs (`node-logs/`) and the plots (`latency.png`/`.svg`:
    /// latency over time per operation and outcome; `rate.png`/`.svg`: throughput over time;
    /// nemesis windows shaded) in one directory, and prints their paths.
    #[command(args_override_self = true, after_long_help = WORDS)]
    Test(Box<TestOpts>),
    /// Throughput: drive one node with pipelined clients, check every reply, and report operations/s,
    /// latency, the node's CPU time per operation and its peak memory, beside a do-nothing echo node
    /// (`--echo`) measured the same way in the same run.
    ///
    /// Exit code: 0 valid, 1 invalid, 2 could not run.
    #[command(args_override_self = true)]
    Bench(Box<BenchOpts>),
}

/// The words of the table and `results.json`, as Jepsen and Maelstrom use them.
pub const WORDS: &str = "\
The words of the report (Jepsen's and Maelstrom's):
  ok        the operation happened, and the reply says what it returned.
  fail      it certainly did not happen: a definite error (codes 1, 10, 11, 12, 14, 20-30).
  info      its outcome is unknown: the client timed out (--rpc-timeout-ms) or got an indefinite
            error (13, or a code of 1000 and above). It may have happened, so the checker accepts
            both; the client is then replaced by a new one (a crash).
  crash     a client dropped: after an info, or on purpose (kafka: about every 30 s per client, as
            Maelstrom's crash-clients, and before the final reads). A new client (a new process
            number, c<N>) takes its place with no local state.
  assigns   kafka: a client re-read its committed offsets (list_committed_offsets) and restarted
            its keys from them, as a consumer given new partitions does (Jepsen's :assign).
  phantom   groups: a consumer received a value no producer sent, or one whose send failed
            definitely (it must not exist).
  undelivered, lost-write, unseen, duplicate, poll-skip, nonmonotonic-*, double-assign, key-order:
            the checkers' error kinds; the README's \"What it checks\" says what each means.
  msgs-per-op  messages between nodes (server) or with clients, per operation (Maelstrom's :net).";

/// The load of `kgroups-lab bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    /// Only `send`, over `--keys` keys.
    Send,
    /// 80% send, 15% poll from an earlier acknowledged offset, 5% commit_offsets.
    Mixed,
    /// `--clients` producers send while `--consumers` consumers in `--groups` groups poll batches of
    /// `--max-messages`; the figure is records delivered per second.
    Groups,
}

impl BenchMode {
    /// The mode's name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BenchMode::Send => "send",
            BenchMode::Mixed => "mixed",
            BenchMode::Groups => "groups",
        }
    }
}

/// Options of `kgroups-lab bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchOpts {
    /// The load: send, mixed or groups.
    #[arg(long, value_enum, default_value_t = BenchMode::Send)]
    pub mode: BenchMode,

    /// Pipelined clients (producers in `groups` mode).
    #[arg(long, default_value_t = 8)]
    pub clients: usize,

    /// Requests in flight per client. `--clients 1 --window 1` is the closed loop: one request at a
    /// time, written and answered on one thread.
    #[arg(long, default_value_t = 64)]
    pub window: usize,

    /// Operations of the clients in total (sends in `groups` mode).
    #[arg(long, default_value_t = 1_000_000)]
    pub ops: u64,

    /// Distinct keys.
    #[arg(long, default_value_t = 100)]
    pub keys: usize,

    /// The Maelstrom kafka binary to measure. Default: the `kgroups` binary next to this executable.
    #[arg(long)]
    pub bin: Option<PathBuf>,

    /// Extra arguments passed to the node (write them after `--`).
    #[arg(last = true, value_name = "NODE_ARGS")]
    pub node_args: Vec<String>,

    /// Also measure the echo node (the floor) in the same run, after each run of the node, and
    /// print both side by side with their ratio.
    #[arg(long)]
    pub echo: bool,

    /// The echo node. Default: `kgroups-echo` next to this executable.
    #[arg(long)]
    pub echo_bin: Option<PathBuf>,

    /// Runs of each binary; figures are the medians.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,

    /// Do not read the acknowledged records back at the end (for a node that stores nothing).
    #[arg(long)]
    pub no_readback: bool,

    /// groups: number of groups.
    #[arg(long, default_value_t = 2)]
    pub groups: usize,

    /// groups: consumers in all, spread over the groups in turn.
    #[arg(long, default_value_t = 8)]
    pub consumers: usize,

    /// groups: `max_messages` of each poll.
    #[arg(long, default_value_t = 100)]
    pub max_messages: u64,

    /// groups: polls in flight per consumer.
    #[arg(long, default_value_t = 2)]
    pub consumer_window: usize,

    /// Seed of the operation stream (keys, operation mix). Default: fixed, 1.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Seconds after which a run that has not finished is stopped (the node is killed).
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,

    /// Where to write results.json (the node's stderr goes to `node-logs/` beside it).
    /// Default: `store/bench-<mode>/<unix time>/results.json`.
    #[arg(long)]
    pub results: Option<PathBuf>,
}

/// Which workload to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadKind {
    /// Maelstrom's own kafka workload (send / poll / commit_offsets / list_committed_offsets), with
    /// jepsen's kafka checker.
    Kafka,
    /// Keyed producers and consumer groups that subscribe, poll and commit while members join, leave and
    /// stall; checks at-least-once delivery per group, per-key order and exclusive partition ownership.
    Groups,
}

impl WorkloadKind {
    /// The workload's name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Kafka => "kafka",
            WorkloadKind::Groups => "groups",
        }
    }
}

/// How node-to-node latency is distributed around `--latency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LatencyDist {
    /// Every message takes exactly `--latency` ms.
    Constant,
    /// Uniform in [0, 2 × latency): the mean is `--latency`.
    Uniform,
    /// Exponential with mean `--latency`.
    Exponential,
}

/// Fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NemesisKind {
    /// Every `--nemesis-interval` seconds cut the nodes (one node alone, a minority third, a majority, or
    /// a majorities ring), then heal them after another interval. Messages across a cut are dropped.
    Partition,
}

/// `--concurrency`: a number of clients, or a multiple of the node count written `2n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Exactly this many clients.
    Fixed(usize),
    /// This many clients per node.
    PerNode(usize),
}

impl Concurrency {
    /// The number of client threads for a cluster of `nodes` nodes (at least 1).
    pub fn resolve(self, nodes: usize) -> usize {
        match self {
            Concurrency::Fixed(k) => k.max(1),
            Concurrency::PerNode(k) => (k * nodes).max(1),
        }
    }
}

impl FromStr for Concurrency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad =
            || format!("expected a number or a multiple of the node count like `2n`, got `{s}`");
        if let Some(k) = s.strip_suffix('n') {
            let k = if k.is_empty() {
                1
            } else {
                k.parse().map_err(|_| bad())?
            };
            Ok(Concurrency::PerNode(k))
        } else {
            s.parse().map(Concurrency::Fixed).map_err(|_| bad())
        }
    }
}

/// Options of `kgroups-lab test`.
#[derive(Debug, Clone, Args)]
pub struct TestOpts {
    /// The workload: `kafka` (Maelstrom's) or `groups` (consumer groups).
    #[arg(short = 'w', long, value_enum)]
    pub workload: WorkloadKind,

    /// The Maelstrom node binary to run. Default: the `kgroups` binary next to this executable.
    #[arg(long)]
    pub bin: Option<PathBuf>,

    /// Extra arguments passed to every node process (write them after `--`).
    #[arg(last = true, value_name = "NODE_ARGS")]
    pub node_args: Vec<String>,

    /// Number of node processes, named n0 … n{N-1}.
    #[arg(long, default_value_t = 1)]
    pub node_count: usize,

    /// Number of clients: a number, or a multiple of the node count such as `2n`. Client k talks to
    /// node k mod N, one request at a time.
    #[arg(long, default_value = "1n", value_parser = Concurrency::from_str)]
    pub concurrency: Concurrency,

    /// Target rate of operations per second over all clients (for `groups`: of sends; consumers poll
    /// as fast as records arrive). Maelstrom's default is 5. 0: no pacing, each client sends its
    /// next request as soon as the last is answered. Each client has one request in flight, so the
    /// rate reached is at most clients ÷ latency; the table says when a run fell short of it.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,

    /// Seconds of workload before the final phase. Maelstrom's default is 60.
    #[arg(long, default_value_t = 10.0)]
    pub time_limit: f64,

    /// Mean node-to-node latency in milliseconds (client traffic has none, as in Maelstrom).
    #[arg(long, default_value_t = 0.0)]
    pub latency: f64,

    /// Distribution of node-to-node latency.
    #[arg(long, value_enum, default_value_t = LatencyDist::Constant)]
    pub latency_dist: LatencyDist,

    /// Fault injection between nodes: `partition`.
    #[arg(long, value_enum)]
    pub nemesis: Option<NemesisKind>,

    /// Seconds between nemesis actions (cut, then heal, then cut again …).
    #[arg(long, default_value_t = 10.0)]
    pub nemesis_interval: f64,

    /// Seed for every random choice the lab makes (operation stream, keys, latencies, partitions,
    /// churn). Default: taken from the clock and printed. Thread timing is not reproducible, so two runs
    /// with one seed draw the same schedule, not byte-identical histories.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Client RPC timeout in milliseconds; a timed-out client is replaced by a new one (Maelstrom: 5000).
    #[arg(long, default_value_t = 5000)]
    pub rpc_timeout_ms: u64,

    /// Seconds to wait after healing the network before the final reads. Maelstrom waits 10 s; the lab
    /// shortens it to 2 s by default.
    #[arg(long, default_value_t = 2.0)]
    pub final_wait: f64,

    /// Upper bound in seconds on the final phase (reading everything back), as Maelstrom's 10 s.
    #[arg(long, default_value_t = 10.0)]
    pub final_time_limit: f64,

    /// kafka: writes per key before a fresh key replaces it (Maelstrom: 16).
    #[arg(long, default_value_t = 16)]
    pub max_writes_per_key: u64,

    /// kafka: number of keys active at a time, chosen with an exponential distribution (Maelstrom: 10).
    #[arg(long, default_value_t = 10)]
    pub key_count: usize,

    /// groups: number of consumer groups.
    #[arg(long, default_value_t = 2)]
    pub groups: usize,

    /// groups: consumers per group at the start (churn keeps between 1 and this + 2).
    #[arg(long, default_value_t = 3)]
    pub consumers: usize,

    /// groups: number of producer clients.
    #[arg(long, default_value_t = 2)]
    pub producers: usize,

    /// groups: number of distinct record keys.
    #[arg(long, default_value_t = 12)]
    pub keys: usize,

    /// groups: the topic the lab creates (`create_topic`) and uses.
    #[arg(long, default_value = "lab")]
    pub topic: String,

    /// groups: partitions of that topic.
    #[arg(long, default_value_t = 6)]
    pub partitions: u32,

    /// groups: session timeout each consumer asks for, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub session_timeout_ms: u64,

    /// groups: seconds between membership changes (a consumer joins, leaves cleanly, or stalls past its
    /// session timeout), chosen at random among the groups. 0 disables churn.
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,

    /// groups: `max_messages` of each poll.
    #[arg(long, default_value_t = 10)]
    pub max_messages: u64,

    /// groups: pause in milliseconds after a poll that returned nothing.
    #[arg(long, default_value_t = 10)]
    pub poll_interval_ms: u64,

    /// Where to write results.json; node logs go to `node-logs/` beside it, and the plots too.
    /// Default: `store/<workload>/<unix time>/results.json`.
    #[arg(long)]
    pub results: Option<PathBuf>,

    /// No progress on stderr (by default a live line on a terminal, else a plain line every
    /// 5 seconds).
    #[arg(long)]
    pub no_progress: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_parses_like_maelstrom() {
        assert_eq!("2n".parse::<Concurrency>().unwrap().resolve(3), 6);
        assert_eq!("n".parse::<Concurrency>().unwrap().resolve(3), 3);
        assert_eq!("5".parse::<Concurrency>().unwrap().resolve(3), 5);
        assert!("x2".parse::<Concurrency>().is_err());
    }

    #[test]
    fn test_command_parses_with_node_args() {
        let cli = Cli::try_parse_from([
            "kgroups-lab",
            "test",
            "-w",
            "kafka",
            "--node-count",
            "3",
            "--concurrency",
            "2n",
            "--nemesis",
            "partition",
            "--",
            "--fault",
            "duplicate",
        ])
        .unwrap();
        let Command::Test(t) = cli.command else {
            panic!("not test")
        };
        assert_eq!(t.workload, WorkloadKind::Kafka);
        assert_eq!(t.node_count, 3);
        assert_eq!(t.nemesis, Some(NemesisKind::Partition));
        assert_eq!(
            t.node_args,
            vec!["--fault".to_string(), "duplicate".to_string()]
        );
    }

    #[test]
    fn bench_command_parses() {
        let cli = Cli::try_parse_from([
            "kgroups-lab",
            "bench",
            "--mode",
            "mixed",
            "--clients",
            "2",
            "--window",
            "4",
            "--echo",
        ])
        .unwrap();
        let Command::Bench(b) = cli.command else {
            panic!("not bench")
        };
        assert_eq!(b.mode, BenchMode::Mixed);
        assert_eq!((b.clients, b.window, b.ops, b.keys), (2, 4, 1_000_000, 100));
        assert!(b.echo);
    }

    #[test]
    fn a_repeated_flag_takes_its_last_value() {
        let cli = Cli::try_parse_from([
            "kgroups-lab",
            "test",
            "-w",
            "groups",
            "--churn",
            "1",
            "--churn",
            "0",
        ])
        .unwrap();
        let Command::Test(t) = cli.command else {
            panic!("not test")
        };
        assert_eq!(t.churn, 0.0);
    }
}
