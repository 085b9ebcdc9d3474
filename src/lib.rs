#![doc = include_str!("../README.md")]
//!
//! # The library, part by part
//!
//! This list is the crate's table of contents; the crate is laid out by concept.
//!
//! **The engine** (knows no wire format; both fronts call only [`broker`] and the types it hands
//! out):
//! - [`broker`]: the engine's facade: topics, the group coordinator, Maelstrom's per-key offsets.
//! - [`topic`]: topics (fixed partition counts) and their registry; [`topic_name`]: Kafka's rule
//!   for topic names, which every front checks before a name reaches the engine.
//! - [`partition`]: one partition: a lock-free append log of records and Kafka batches plus a
//!   per-key index of offsets; batch appends, fetches, the idempotent producer's checks, the log
//!   start offset; its record and key types. The log under it (`log/`: buckets that never move, the
//!   huge-page pool, the OS mappings) is internal.
//! - [`batch`]: Kafka's RecordBatch v2, the unit in which produced records are stored.
//! - [`storage`]: the on-disk log of one partition in Kafka's layout (segments, offset and time
//!   indexes), crash recovery from a recovery point, roll, retention, checkpoint files.
//! - [`partitioner`]: Kafka's murmur2 partitioner, byte for byte.
//! - [`group`]: the consumer-group coordinator: membership, sessions, snapshots swapped with
//!   arc-swap, fetch positions, committed offsets, fencing and auto-commit.
//! - [`assignor`]: the `range`, `roundrobin` and `cooperative-sticky` assignors.
//! - [`error`]: the engine's error enum.
//! - [`clock`]: time is passed in, so tests of session expiry never sleep.
//!
//! **The fronts**:
//! - [`maelstrom`]: the node ([`maelstrom::Node`], [`maelstrom::run`], [`maelstrom::main`]) and
//!   its message codec ([`maelstrom::wire`]); with several nodes, the cluster.
//! - [`kafka`]: `kgroups broker`, the Kafka-protocol broker (tokio, the `kafka-protocol` crate):
//!   one task per connection, one handler file per API key, classic consumer groups.
//!
//! **Tools** (binaries over this public API, not part of it): `kgroups-lab` (`src/bin/kgroups-lab/`:
//! a local Maelstrom-style cluster with workloads, fault injection and checkers, and the load tool)
//! and `kgroups-echo` (`src/bin/kgroups-echo/`: the load tool's do-nothing floor node).
//!
//! The loom models live beside what they check (`log/loom_tests.rs`, `group/loom_tests.rs`, under
//! `cfg(all(test, loom))`); `loom.rs` is the one place that names `std::sync`, `loom`, `arc_swap`
//! and `dashmap`.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

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
pub(crate) mod log;
pub mod maelstrom;
pub mod partition;
pub mod partitioner;
pub mod storage;
#[cfg(not(loom))]
pub mod tools;
pub mod topic;
pub mod topic_name;
