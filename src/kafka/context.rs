//! What every connection shares: the engine, the classic groups, the clock and this broker's
//! identity in the cluster metadata.

use super::classic::{ClassicConfig, Groups};
use crate::broker::Broker;
use crate::clock::{Millis, MonotonicClock};
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
    /// Classic group timeouts.
    pub classic: ClassicConfig,
}

impl Default for FrontConfig {
    fn default() -> Self {
        FrontConfig {
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            max_request_bytes: 100 * 1024 * 1024,
            max_connections: 10_000,
            classic: ClassicConfig::default(),
        }
    }
}

/// The Kafka front's shared state: one per broker process, behind an `Arc` in every connection.
#[derive(Debug)]
pub struct Context {
    /// The engine (topics, committed offsets), shared with any other front.
    pub broker: Arc<Broker>,
    /// Classic consumer groups: membership, generations, the join and sync barriers.
    pub classic: Groups,
    /// Limits and the advertised address.
    pub config: FrontConfig,
    clock: MonotonicClock,
}

impl Context {
    /// A context over `broker`.
    pub fn new(broker: Arc<Broker>, config: FrontConfig) -> Self {
        Context {
            broker,
            classic: Groups::new(config.classic.clone()),
            config,
            clock: MonotonicClock::new(),
        }
    }

    /// Milliseconds on the broker's monotonic clock (the engine's and the groups' `now`).
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// A producer id and epoch for InitProducerId (the engine's).
    pub fn init_producer_id(&self) -> (i64, i16) {
        self.broker.init_producer_id()
    }
}
