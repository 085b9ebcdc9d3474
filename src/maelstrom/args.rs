//! The node's command line. Every flag can also come from a `KGROUPS_*` environment variable.

use super::node::MAX_PARTITIONS;
use crate::assignor::AssignorKind;
use crate::broker::Config;
use crate::group::{GroupConfig, ResetPolicy};
use clap::builder::TypedValueParser;
use clap::{ArgAction, Parser};

/// kgroups: Kafka-style topics and consumer groups served as a Maelstrom node.
///
/// With no arguments it is the node: newline-delimited JSON requests on stdin, replies on stdout,
/// logs on stderr. It serves Maelstrom's `kafka` workload (send, poll, commit_offsets,
/// list_committed_offsets) and consumer-group clients (subscribe, poll with a group, commit,
/// heartbeat, unsubscribe, describe_group, list_groups, create_topic, list_topics, reset_offsets,
/// ...). Under Maelstrom: `maelstrom test -w kafka --bin target/release/kgroups --node-count 1`.
#[derive(Debug, Clone, Parser)]
#[command(name = "kgroups", version, about, long_about, max_term_width = 100)]
pub struct Args {
    /// Partitions of every topic created on first use, including the default topic that
    /// Maelstrom's kafka workload uses (1 to 65536).
    #[arg(long, env = "KGROUPS_PARTITIONS", default_value_t = crate::topic::DEFAULT_PARTITIONS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PARTITIONS)))]
    pub partitions: u32,

    /// Worker threads. Requests of one client run in order on one worker; different clients run in
    /// parallel. 0: the reader thread handles every request itself. [default: the machine's
    /// available parallelism]
    #[arg(long, env = "KGROUPS_WORKERS")]
    pub workers: Option<usize>,

    /// Tuning: the reader serves a read of up to this many lines itself (no hand-off, lowest
    /// latency and CPU); a bigger read means input is queueing and goes to the workers.
    #[arg(long, env = "KGROUPS_INLINE_MAX", default_value_t = super::reader::INLINE_MAX)]
    pub inline_max: usize,

    /// A group member that neither polls nor heartbeats for this long is removed and its group
    /// rebalances. A member may ask for its own timeout when it subscribes.
    #[arg(long, env = "KGROUPS_SESSION_TIMEOUT_MS", default_value_t = 10_000)]
    pub session_timeout_ms: u64,

    /// How a group spreads partitions over its members: range, roundrobin (or round-robin) or
    /// cooperative-sticky (balanced, and a join or leave moves only the partitions it must), in
    /// any case. Kafka's eager `sticky` is not implemented.
    #[arg(long, env = "KGROUPS_ASSIGNOR", default_value = "cooperative-sticky")]
    pub assignor: AssignorKind,

    /// Commit a member's positions when it polls again or leaves (Kafka's enable.auto.commit), so
    /// a partition that changes hands resumes after the last records handed out (at-least-once).
    #[arg(long, env = "KGROUPS_AUTO_COMMIT", default_value_t = true, action = ArgAction::Set)]
    pub auto_commit: bool,

    /// Where a group partition with no committed offset starts: earliest (the start of the log)
    /// or latest (the log end when the position is first needed).
    #[arg(long, env = "KGROUPS_AUTO_OFFSET_RESET", default_value = "earliest")]
    pub auto_offset_reset: ResetPolicy,

    /// The longest input line read, in bytes (1024 to 8388608). A longer line is not read: it
    /// gets error 12 naming this limit when its sender and msg_id can be read from its start,
    /// else it is only logged. Values are bounded too: JSON nested deeper than 128 levels is
    /// refused the same way.
    #[arg(long, env = "KGROUPS_MAX_LINE_BYTES", default_value_t = super::reader::MAX_LINE,
          value_parser = clap::value_parser!(u64)
              .range(super::reader::MIN_LINE_LIMIT as u64..=super::reader::MAX_LINE_LIMIT as u64)
              .map(|v| v as usize))]
    pub max_line_bytes: usize,

    /// What to log to stderr: error, warn, info, debug, trace, or a tracing filter such as
    /// `kgroups=debug`.
    #[arg(long, env = "KGROUPS_LOG_LEVEL", default_value = "warn")]
    pub log_level: String,
}

impl Args {
    /// The engine configuration these flags describe.
    pub fn config(&self) -> Config {
        Config {
            default_partitions: self.partitions,
            groups: GroupConfig {
                session_timeout_ms: self.session_timeout_ms,
                assignor: self.assignor,
                auto_commit: self.auto_commit,
                reset: self.auto_offset_reset,
                ..GroupConfig::default()
            },
            ..Config::default()
        }
    }

    /// The worker count: the flag, else the machine's parallelism.
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}
