//! The command line of `kgroups broker`. Every flag can also come from a `KGROUPS_*` variable.

use crate::broker::Config;
use crate::partition::{DiskOptions, FlushPolicy};
use crate::storage::LogConfig;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// kgroups broker: serves the Kafka protocol over TCP on the kgroups engine.
///
/// Unmodified Kafka clients (librdkafka, kafka-python, kafkajs, the Java client) produce to it
/// and consume from it, in consumer groups with their own assignors (classic protocol). It is a
/// single broker: node 0, the leader of every partition and the coordinator of every group.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kgroups broker",
    version,
    about,
    long_about,
    max_term_width = 100
)]
pub struct Args {
    /// Address to listen on. Port 0 picks a free port; the bound address is printed on stderr as
    /// `kgroups broker listening on HOST:PORT`.
    #[arg(long, env = "KGROUPS_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,

    /// HOST:PORT that Metadata and FindCoordinator hand to clients (Kafka's
    /// `advertised.listeners`). [default: the bound address]
    #[arg(long, env = "KGROUPS_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,

    /// Partitions of a topic created on first use (Kafka's `num.partitions`), 1 to 65536.
    #[arg(long, env = "KGROUPS_PARTITIONS", default_value_t = crate::topic::DEFAULT_PARTITIONS,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub partitions: u32,

    /// Open connections at most; a connection beyond it is closed at once (Kafka's
    /// `max.connections`).
    #[arg(long, env = "KGROUPS_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// The largest request frame in bytes; a larger one closes its connection (Kafka's
    /// `socket.request.max.bytes`, 100 MiB).
    #[arg(long, env = "KGROUPS_SOCKET_REQUEST_MAX_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub socket_request_max_bytes: usize,

    /// How long the first rebalance of an empty group waits for more members, extended by each
    /// join up to the rebalance timeout (Kafka's `group.initial.rebalance.delay.ms`, default 3000).
    #[arg(
        long,
        env = "KGROUPS_GROUP_INITIAL_REBALANCE_DELAY_MS",
        default_value_t = 3000
    )]
    pub group_initial_rebalance_delay_ms: u64,

    /// The smallest session timeout a member may ask for (Kafka's
    /// `group.min.session.timeout.ms`).
    #[arg(
        long,
        env = "KGROUPS_GROUP_MIN_SESSION_TIMEOUT_MS",
        default_value_t = 6000
    )]
    pub group_min_session_timeout_ms: u64,

    /// The largest session timeout a member may ask for (Kafka's
    /// `group.max.session.timeout.ms`).
    #[arg(
        long,
        env = "KGROUPS_GROUP_MAX_SESSION_TIMEOUT_MS",
        default_value_t = 1_800_000
    )]
    pub group_max_session_timeout_ms: u64,

    /// How long a consumer-protocol (KIP-848) member may go without a heartbeat before it is
    /// removed and its partitions move (Kafka's `group.consumer.session.timeout.ms`).
    #[arg(
        long,
        env = "KGROUPS_GROUP_CONSUMER_SESSION_TIMEOUT_MS",
        default_value_t = 45_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub group_consumer_session_timeout_ms: u64,

    /// The heartbeat interval told to consumer-protocol (KIP-848) members (Kafka's
    /// `group.consumer.heartbeat.interval.ms`).
    #[arg(
        long,
        env = "KGROUPS_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS",
        default_value_t = 5_000,
        value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64)
    )]
    pub group_consumer_heartbeat_interval_ms: u64,

    /// Tokio worker threads. [default: the machine's available parallelism]
    #[arg(long, env = "KGROUPS_THREADS")]
    pub threads: Option<usize>,

    /// Keep topics, records, committed offsets and producer ids in this directory, and recover
    /// them from it on start (see README "Durability"). Without it, everything is in memory and
    /// lost with the process.
    #[arg(long, env = "KGROUPS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Fsync a partition once this many records were written since its last fsync; 1 fsyncs
    /// before every acknowledgement (Kafka's `log.flush.interval.messages`). [default: never;
    /// the page cache only] Needs --data-dir.
    #[arg(long, env = "KGROUPS_FLUSH_MESSAGES", requires = "data_dir",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub flush_messages: Option<u64>,

    /// Fsync records older than this many ms (Kafka's `log.flush.interval.ms`). [default: never;
    /// the page cache only] Needs --data-dir.
    #[arg(long, env = "KGROUPS_FLUSH_MS", requires = "data_dir",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub flush_ms: Option<u64>,

    /// Broker default of the topic config `retention.ms`: delete segments whose newest record is
    /// older than this; -1 keeps them forever (Kafka's `log.retention.ms`, 7 days; -1 or more).
    /// Needs --data-dir.
    #[arg(long, env = "KGROUPS_LOG_RETENTION_MS", requires = "data_dir", default_value_t = crate::storage::SEVEN_DAYS_MS,
          allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(-1..))]
    pub log_retention_ms: i64,

    /// Broker default of `retention.bytes`: delete old segments while a partition is larger;
    /// -1 means no limit (Kafka's `log.retention.bytes`). Needs --data-dir.
    #[arg(long, env = "KGROUPS_LOG_RETENTION_BYTES", requires = "data_dir", default_value_t = -1,
          allow_negative_numbers = true)]
    pub log_retention_bytes: i64,

    /// Broker default of `segment.bytes`: the size at which a segment file rolls (Kafka's
    /// `log.segment.bytes`, 1 GiB), from 61 (one batch header) to 2,147,483,647. Needs --data-dir.
    #[arg(long, env = "KGROUPS_LOG_SEGMENT_BYTES", requires = "data_dir",
          default_value_t = crate::storage::DEFAULT_SEGMENT_BYTES,
          value_parser = clap::value_parser!(u64).range(crate::batch::HEADER as u64..=i32::MAX as u64))]
    pub log_segment_bytes: u64,

    /// Broker default of `segment.ms`: the age at which a segment rolls (Kafka's `log.roll.ms`,
    /// 7 days; at least 1). Needs --data-dir.
    #[arg(long, env = "KGROUPS_LOG_ROLL_MS", requires = "data_dir", default_value_t = crate::storage::SEVEN_DAYS_MS,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub log_roll_ms: i64,

    /// The most bytes of written batches a partition keeps in memory; older ones are read from
    /// disk. Needs --data-dir.
    #[arg(long, env = "KGROUPS_TAIL_BYTES", requires = "data_dir", default_value_t = 8 << 20)]
    pub tail_bytes: u64,

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
            ..Config::default()
        }
    }
}

impl Args {
    /// The broker-wide topic config defaults (`--log-*`).
    ///
    /// # Errors
    ///
    /// The text of the first flag out of range.
    pub fn log_defaults(&self) -> Result<LogConfig, String> {
        let config = LogConfig {
            segment_bytes: self.log_segment_bytes,
            segment_ms: self.log_roll_ms,
            retention_ms: self.log_retention_ms,
            retention_bytes: self.log_retention_bytes.max(-1),
            ..LogConfig::default()
        };
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// How partitions use the disk (`--flush-*`, `--tail-bytes`).
    pub fn disk_options(&self) -> DiskOptions {
        DiskOptions {
            flush: FlushPolicy {
                messages: self.flush_messages,
                ms: self.flush_ms,
            },
            tail_bytes: self.tail_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let base = ["kgroups broker", "--data-dir", "/nonexistent"];
        Args::try_parse_from(base.iter().chain(extra))
    }

    /// A `--log-*` value out of Kafka's range is refused by the flag's name, before the broker
    /// starts; the range's ends are accepted.
    #[test]
    fn log_flags_out_of_range_name_the_flag() {
        for (flag, bad, edge) in [
            ("--log-segment-bytes", "60", "61"),
            ("--log-segment-bytes", "2147483648", "2147483647"),
            ("--log-roll-ms", "0", "1"),
            ("--log-retention-ms", "-2", "-1"),
        ] {
            let e = parse(&[flag, bad]).expect_err(flag).to_string();
            assert!(e.contains(flag) && e.contains(bad), "{flag} {bad}: {e}");
            let args = parse(&[flag, edge]).unwrap_or_else(|e| panic!("{flag} {edge}: {e}"));
            args.log_defaults().unwrap();
        }
    }
}
