//! What every connection shares: the engine, the classic and consumer-protocol groups, the clock and this broker's
//! identity in the cluster metadata.

use super::classic::{ClassicConfig, Groups};
use super::consumer::{ConsumerConfig, ConsumerGroups};
use crate::broker::Broker;
use crate::clock::{Millis, MonotonicClock};
use crate::storage::GroupType;
use std::sync::Arc;

/// The broker id this single broker reports in Metadata, FindCoordinator and DescribeCluster.
pub const NODE_ID: i32 = 0;

/// The cluster id reported in Metadata v2+ and DescribeCluster.
pub const CLUSTER_ID: &str = "kgroups";

/// Limits and defaults of the Kafka front.
#[derive(Debug, Clone)]
pub struct FrontConfig {
    /// The host clients are told to connect to (Metadata, FindCoordinator).
    pub advertised_host: String,
    /// The port clients are told to connect to.
    pub advertised_port: i32,
    /// The largest request frame, in bytes (`socket.request.max.bytes`).
    pub max_request_bytes: usize,
    /// Open connections at most (`max.connections`).
    pub max_connections: usize,
    /// Whether a large request frame's buffer is populated at once rather than faulted in page
    /// by page ([`super::alloc::prefault`]): on for the in-memory log, which keeps every frame in
    /// fresh memory; off with `--data-dir`, whose tail frees buffers that the heap hands out
    /// again already backed (there populating cost ~4% of produce throughput).
    pub prefault_frames: bool,
    /// Classic group timeouts.
    pub classic: ClassicConfig,
    /// Consumer-protocol (KIP-848) group settings.
    pub consumer: ConsumerConfig,
}

impl Default for FrontConfig {
    fn default() -> Self {
        FrontConfig {
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            max_request_bytes: 100 * 1024 * 1024,
            max_connections: 10_000,
            prefault_frames: true,
            classic: ClassicConfig::default(),
            consumer: ConsumerConfig::default(),
        }
    }
}

/// Whatever holds the engine: a [`Broker`] of the front's own, or a Maelstrom
/// [`Node`](crate::maelstrom::Node), so that both fronts serve one engine in one process.
pub type Engine = Arc<dyn AsRef<Broker> + Send + Sync>;

/// The front's own broker (`kgroups broker`).
struct Own(Broker);

impl AsRef<Broker> for Own {
    fn as_ref(&self) -> &Broker {
        &self.0
    }
}

impl AsRef<Broker> for crate::maelstrom::Node {
    fn as_ref(&self) -> &Broker {
        self.broker()
    }
}

/// The Kafka front's shared state: one per broker process, behind an `Arc` in every connection.
pub struct Context {
    /// The engine (topics, committed offsets), shared with any other front.
    engine: Engine,
    /// Classic consumer groups: membership, generations, the join and sync barriers.
    pub classic: Groups,
    /// Consumer-protocol (KIP-848) members, beside the engine's coordinator.
    pub consumer: ConsumerGroups,
    /// Committed leader epochs and metadata strings, beside the engine's offsets.
    pub commit_extras: super::commit_extras::CommitExtras,
    /// Limits and the advertised address.
    pub config: FrontConfig,
    clock: MonotonicClock,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("broker", self.broker())
            .field("classic", &self.classic)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context over a broker of its own.
    pub fn new(broker: Broker, config: FrontConfig) -> Self {
        Self::with_engine(Arc::new(Own(broker)), config)
    }

    /// A context over an engine another front may serve too (e.g. an `Arc<Node>`).
    pub fn with_engine(engine: Engine, config: FrontConfig) -> Self {
        let classic = Groups::new(config.classic.clone());
        let commit_extras = super::commit_extras::CommitExtras::default();
        for (group, state) in (*engine).as_ref().stored_state().groups {
            // A durable broker's classic groups come back Empty with their generation.
            if let Some(meta) = state
                .metadata
                .filter(|m| m.group_type == GroupType::Classic)
            {
                let protocol_type = Some(meta.protocol_type).filter(|t| !t.is_empty());
                classic.restore(&group, meta.generation, protocol_type, meta.protocol);
            }
            for ((topic, partition), c) in state.offsets {
                commit_extras.record(
                    &group,
                    &topic,
                    partition,
                    c.offset,
                    c.leader_epoch,
                    &c.metadata,
                );
            }
        }
        Context {
            engine,
            classic,
            consumer: ConsumerGroups::new(config.consumer.clone()),
            commit_extras,
            config,
            clock: MonotonicClock::new(),
        }
    }

    /// The engine, shared.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine.
    pub fn broker(&self) -> &Broker {
        (*self.engine).as_ref()
    }

    /// Milliseconds on the broker's monotonic clock (the engine's and the groups' `now`).
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// A producer id and epoch for InitProducerId (the engine's).
    ///
    /// # Errors
    ///
    /// As [`Broker::init_producer_id`].
    pub fn init_producer_id(&self) -> Result<(i64, i16), crate::error::Error> {
        self.broker().init_producer_id()
    }
}
