//! The Maelstrom front: kgroups served as a [Maelstrom](https://github.com/jepsen-io/maelstrom)
//! node, newline-delimited JSON on stdin and stdout. The requests it serves and their replies are
//! the README's [RPC reference](crate#rpc-reference); how several nodes serve as one broker is
//! its [Cluster](crate#cluster) section.
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
//! The public parts: [`Node`] (one line in, its reply out; the cluster's timer), [`run`] and
//! [`run_with`] (the threads above over any reader and writer, so tests and benches drive the whole
//! pipeline in-process), [`main`] (stdin and stdout, with the command line), and [`wire`], the
//! Maelstrom message codec, which tools may use. Inside:
//!
//! - `node.rs`: the node's state (engine, identity, message ids) and its reply writers;
//!   `service.rs`: the dispatcher; `request.rs`: each request's type, decoded once.
//! - `kafka_workload.rs`: Maelstrom's kafka workload (`send`, `poll`, `commit_offsets`,
//!   `list_committed_offsets`) and `send_batch`, `list_offsets`; `groups.rs`: the consumer-group
//!   and topic requests (`group_topics.rs`: which groups have several topics, for the shape of
//!   their replies). Handlers know nothing of the cluster.
//! - `cluster/`: several nodes as one broker: placement, forwarding, fan-out, replication, topics'
//!   homes. The router decides where a request runs; `pending.rs` routes replies to the node's own
//!   requests, from the peer they went to only.
//! - `reader.rs`, `pool.rs`, `output.rs`: the threads and their hand-offs; `guard.rs`: what a panic
//!   in each thread does; `args.rs`: the command line.
//!
//! The node is not loom-modeled (its own synchronization is one mutex and one counter per shard,
//! see `output.rs` and `pool.rs`); it shares through std's `Arc` also under `--cfg loom`.

mod args;
mod cluster;
mod group_topics;
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
    /// A read with more lines than this goes to the workers (`--inline-max`, default 1024).
    pub inline_max: usize,
    /// The longest line read, in bytes (`--max-line-bytes`, default 1 MiB, from 1 KiB to 8 MiB);
    /// a longer line gets error 12 naming the limit.
    pub max_line: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            workers: 0,
            inline_max: reader::INLINE_MAX,
            max_line: reader::MAX_LINE,
        }
    }
}

/// Serves every line of `input`, writing replies to `sink`, with `workers` worker threads (0: the
/// reader handles everything). Returns when the input ends and every reply is written.
pub fn run(
    node: Arc<Node>,
    input: impl Read,
    sink: impl Write + Send + 'static,
    workers: usize,
) -> std::io::Result<()> {
    run_with(
        node,
        input,
        sink,
        RunOptions {
            workers,
            ..RunOptions::default()
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
        reader::read_loop(
            input,
            &node,
            pool.as_ref(),
            &output,
            opts.inline_max,
            opts.max_line,
        )
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
        max_line: args.max_line_bytes,
    };
    match run_with(node, std::io::stdin().lock(), std::io::stdout(), opts) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("input failed: {e}");
            1
        }
    }
}
