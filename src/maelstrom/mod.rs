//! The Maelstrom node: a reader thread, a pool of workers and one writer thread around a [`Node`].
//!
//! ```text
//!  stdin ─▶ reader ──(light load: handled inline)──────────────────────────▶ output ─▶ stdout
//!             │                                                                 ▲
//!             └─(busy: one job per chunk and worker, sharded by src)─▶ worker ──┘ (direct write when
//!                                                                       ...         idle, else the
//!                                                                                   writer thread)
//!  timer ─▶ Coordinator::expire(now) every 100 ms; in a cluster also Node::tick every 10 ms
//! ```
//!
//! - [`service`]: [`Node`], which turns one line into its reply, and the RPC dispatch;
//!   `kafka.rs` and `groups.rs` hold the RPCs.
//! - [`reader`], [`pool`], [`output`]: the threads and their hand-offs.
//! - [`pending`]: replies to the node's own requests, routed by `in_reply_to` (for the cluster).
//! - [`cluster`]: several nodes as one broker: placement of partition leaders and group
//!   coordinators, batched forwarding with dedupe, replication, and the 11-vs-13 give-up rule.
//! - [`args`]: the command line.
//!
//! The node is not loom-modeled (its own synchronization is one mutex and one counter per shard,
//! see [`output`] and [`pool`]); it shares through std's `Arc` also under `--cfg loom`.
//!
//! [`run`] wires them over any reader and writer, so tests and benches drive the whole pipeline
//! in-process; [`main`] runs it on stdin and stdout.
//!
//! # RPC reference
//!
//! Every reply is `<type>_ok` (or `error`) and carries `in_reply_to` and `msg_id` besides the
//! fields shown. `topic` defaults to the default topic (`default`), `consumer` to the request's
//! `src`. Aliases: `group`/`group_id`; `consumer`/`consumer_id`/`member_id`;
//! `msg`/`message`/`value`; `max_messages`/`max`/`max_records`. Offsets of groups are Kafka's
//! (the next offset to consume); Maelstrom's per-key offsets are "processed up to and including".
//!
//! | request | reply |
//! |---|---|
//! | `init {node_id, node_ids}` | `init_ok {}` |
//! | `echo {echo}` | `echo_ok {echo}` |
//! | `send {key, msg, topic?}` | `send_ok {offset}` (key absent: round-robin partition) |
//! | `send_batch {msgs: [{key?, msg}…], topic?}` | `send_batch_ok {offsets: [[partition, offset]…]}` |
//! | `poll {offsets: {key: from}}` | `poll_ok {msgs: {key: [[offset, msg]…]}}` (≤ 32 per key) |
//! | `commit_offsets {offsets: {key: offset}}` | `commit_offsets_ok {}` |
//! | `list_committed_offsets {keys: […]}` | `list_committed_offsets_ok {offsets: {key: offset}}` |
//! | `list_offsets {topic?}` | `list_offsets_ok {offsets: {"<partition>": log_end}}` |
//! | `subscribe {group, consumer?, topic?, session_timeout_ms?, assignor?, auto_commit?}` | `subscribe_ok {partitions, generation}` |
//! | `poll {group, consumer?, max_messages? = 10 (≤ 10000), topic?}` | `poll_ok {msgs: [{topic, partition, offset, key, msg}…], partitions, generation}` |
//! | `heartbeat {group, consumer?, topic?}` | `heartbeat_ok {partitions, generation}` |
//! | `commit {group, partition, offset, consumer?, topic?}` | `commit_ok {}` (no `consumer`: admin commit) |
//! | `commit {group, offsets: {"<partition>": offset}, consumer?, topic?}` | `commit_ok {}` |
//! | `list_committed_offsets {group, topic?}` | `list_committed_offsets_ok {offsets: {"<partition>": offset}}` |
//! | `unsubscribe` / `leave_group {group, consumer?}` | `unsubscribe_ok {}` / `leave_group_ok {}` |
//! | `describe_group {group}` | `describe_group_ok {group, generation, assignor, members: [{consumer, partitions: [{topic, partition}]}], partitions: [{topic, partition, owner, committed, log_end, lag}]}` |
//! | `list_groups {}` | `list_groups_ok {groups: […]}` |
//! | `create_topic {topic, partitions}` | `create_topic_ok {}` |
//! | `list_topics {}` | `list_topics_ok {topics: [{topic, partitions}…]}` |
//! | `reset_offsets {group, topic?, to: "earliest"\|"latest"\|offset}` | `reset_offsets_ok {}` |
//! | `fwd {offset: seq, msgs: [[src, body]…]}` (node to node) | `fwd_ok {msgs: [reply body…]}` |
//! | `topic_meta {topic}` (node to node, inside a `fwd`, to the topic's home) | `topic_meta_ok {partitions}` |
//! | `sync {msgs: [[topic, partitions, p, from, [[kind, key, msg]…]]…], offsets: {key: offset}, offset: version, keys?: [[topic, partitions]…]}` (node to node) | `sync_ok {msgs: [[topic, p, log_end]…], offset: version, partitions?: topics known}` |
//!
//! `partitions` in `subscribe_ok` are those of the request's topic; in `heartbeat_ok` and
//! `poll_ok`, those of `topic` when given, else all the member's partitions. Errors: 10 unknown
//! type; 12 missing or ill-typed field (the text names it), unknown assignor, bad partition count;
//! 13 a multi-partition commit that failed part-way (indefinite); 20 unknown topic, group or
//! partition; 21 `create_topic` with another partition count; 22 fenced, not a member, group not
//! empty (`reset_offsets`), another assignor than the group's. In a cluster: 11 when the node a
//! request needs is unreachable and the request certainly did not happen (never transmitted, or a
//! read), 13 when it may have happened (see [`cluster`]). `unsubscribe` of a non-member
//! succeeds; a group `poll` by a non-member joins it first.

mod args;
mod cluster;
mod groups;
mod guard;
mod kafka_workload;
mod node;
mod output;
mod pending;
mod pool;
mod reader;
mod request;
mod service;
pub mod wire;

pub use node::Node;

use args::Args;
use output::Output;
use pool::Pool;

use crate::loom::StdArc as Arc;
use clap::Parser;
use std::io::{Read, Write};
use std::time::Duration;

/// How often the timer expires group sessions.
pub(crate) const EXPIRY_TICK: Duration = Duration::from_millis(100);

/// How [`run_with`] spreads the work.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Worker threads; 0: the reader handles everything.
    pub workers: usize,
    /// A read with more lines than this goes to the workers ([`reader::INLINE_MAX`]).
    pub inline_max: usize,
}

/// Serves every line of `input`, writing replies to `sink`, with `workers` worker threads (0: the
/// reader handles everything). Returns when the input ends and every reply is written.
pub fn run(
    node: Arc<Node>,
    input: impl Read,
    sink: impl Write + Send + 'static,
    workers: usize,
) -> std::io::Result<()> {
    let inline_max = reader::INLINE_MAX;
    run_with(
        node,
        input,
        sink,
        RunOptions {
            workers,
            inline_max,
        },
    )
}

/// [`run`] with every option.
pub fn run_with(
    node: Arc<Node>,
    input: impl Read,
    sink: impl Write + Send + 'static,
    opts: RunOptions,
) -> std::io::Result<()> {
    let workers = opts.workers;
    let output = Output::new(sink);
    let writer = output.spawn_writer()?;
    node.set_output(&output);
    let (stop, ticks) = crossbeam_channel::bounded::<()>(0);
    let timer = {
        let node = node.clone();
        std::thread::Builder::new()
            .name("kgroups-timer".into())
            .spawn(move || {
                let mut out = Vec::new();
                let mut expired = node.now();
                loop {
                    // A lone node wakes only to expire sessions; a cluster node also retries,
                    // gives up and replicates.
                    let every = if node.cluster().is_some() {
                        cluster::TICK
                    } else {
                        EXPIRY_TICK
                    };
                    if let Err(crossbeam_channel::RecvTimeoutError::Disconnected) =
                        ticks.recv_timeout(every)
                    {
                        break;
                    }
                    // A panic in one tick's work is caught: the next tick runs as usual (see
                    // `guard`), so expiry and replication never stop silently.
                    let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        guard::inject("timer");
                        let now = node.now();
                        if now.saturating_sub(expired) >= EXPIRY_TICK.as_millis() as u64 {
                            node.broker.groups().expire(now);
                            expired = now;
                        }
                        node.tick(now, &mut out);
                        if let Some(o) = node.output() {
                            o.submit(&mut out);
                        }
                    }));
                    if let Err(p) = worked {
                        tracing::error!(
                            "the timer's work panicked ({}); the timer goes on",
                            guard::message(&*p)
                        );
                    }
                    out.clear();
                }
            })?
    };
    let pool = if workers > 0 {
        Some(Pool::new(workers, node.clone(), output.clone())?)
    } else {
        None
    };
    let result = guard::or_exit("the reader", || {
        reader::read_loop(input, &node, pool.as_ref(), &output, opts.inline_max)
    });
    if let Some(pool) = pool {
        pool.join();
    }
    drop(stop);
    let _ = timer.join();
    output.close();
    let _ = writer.join();
    result
}

/// Runs the node on stdin and stdout with the command line's settings; returns the exit code.
pub fn main() -> i32 {
    let args = Args::parse();
    let filter = match tracing_subscriber::EnvFilter::try_new(&args.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kgroups: invalid --log-level {:?}: {e}", args.log_level);
            return 2;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let workers = args.workers();
    tracing::info!(?args, workers, "kgroups node starting");
    let node = Arc::new(Node::new(args.config()));
    let opts = RunOptions {
        workers,
        inline_max: args.inline_max,
    };
    match run_with(node, std::io::stdin().lock(), std::io::stdout(), opts) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("input failed: {e}");
            1
        }
    }
}
