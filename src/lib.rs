//! # kgroups
//!
//! Kafka-style consumer groups as a lock-free engine, served as a Maelstrom node.
//!
//! The crate is laid out by concept; this list is the table of contents.
//!
//! **Engine** (knows nothing about JSON):
//! - [`log`]: the lock-free append log that backs a partition; readers see a contiguous published prefix.
//! - [`batch`]: Kafka's RecordBatch v2, the unit in which produced records are stored.
//! - [`partition`]: one partition: a [`log::Log`] of records and batches plus a per-key index;
//!   batch appends, fetches, the idempotent producer's checks, the log start offset.
//! - [`partitioner`]: Kafka's murmur2 partitioner, byte for byte.
//! - [`topic`]: topics (fixed partition counts) and the registry of topics.
//! - [`assignor`]: the `range`, `roundrobin` and `cooperative-sticky` assignors.
//! - [`group`]: the consumer-group coordinator: membership, sessions, snapshots swapped with arc-swap,
//!   fetch positions, committed offsets, fencing and auto-commit.
//! - [`broker`]: the engine's facade, which the node, the tests and the benches drive.
//! - [`error`]: the engine's error enum.
//! - [`clock`]: time is passed in, so tests of session expiry never sleep.
//!
//! **Fronts and tools**:
//! - [`kafka`]: `kgroups broker`, the Kafka-protocol broker (tokio, the `kafka-protocol` crate):
//!   one task per connection, one handler file per API key, classic consumer groups.
//! - [`wire`]: Maelstrom messages: decoding requests, encoding replies, error codes.
//! - [`node`]: the Maelstrom node: reader thread, worker pool, writer thread; with several nodes,
//!   the cluster (placement, forwarding, replication) in `node::cluster`.
//! - [`lab`]: `kgroups-lab`, a local Maelstrom-style cluster with workloads, fault injection and
//!   checkers, and its load tool (`bench`) with the `kgroups-echo` floor node.

#[allow(unused_imports, dead_code)]
pub(crate) mod loom;

pub mod assignor;
pub mod batch;
pub mod broker;
pub mod clock;
pub mod error;
pub mod group;
#[cfg(not(loom))]
pub mod kafka;
pub mod lab;
pub mod log;
pub mod node;
pub mod partition;
pub mod partitioner;
pub mod topic;
pub mod wire;
