//! The Maelstrom node: a reader thread, a pool of workers and one writer thread around a [`Node`].
//!
//! ```text
//!  stdin ─▶ reader ──(light load: handled inline)──────────────────────────▶ output ─▶ stdout
//!             │                                                                 ▲
//!             └─(busy: one job per chunk and worker, sharded by src)─▶ worker ──┘ (direct write when
//!                                                                       ...         idle, else the
//!                                                                                   writer thread)
//!  timer ─▶ Coordinator::expire(now) every 100 ms
//! ```
//!
//! - [`service`]: [`Node`], which turns one line into its reply, and the RPC dispatch;
//!   [`kafka`] and [`groups`] hold the RPCs.
//! - [`reader`], [`pool`], [`output`]: the threads and their hand-offs.
//! - [`pending`]: replies to the node's own requests, routed by `in_reply_to` (for the cluster).
//! - [`args`]: the command line.
//!
//! [`run`] wires them over any reader and writer, so tests and benches drive the whole pipeline
//! in-process; [`main`] runs it on stdin and stdout.

pub mod args;
mod groups;
mod kafka;
pub mod output;
pub mod pending;
pub mod pool;
pub mod reader;
pub mod service;

pub use args::Args;
pub use output::Output;
pub use pool::Pool;
pub use service::{Node, OwnedReplyTo, ReplyTo};

use crate::loom::Arc;
use clap::Parser;
use std::io::{Read, Write};
use std::time::Duration;

/// How often the timer expires group sessions.
pub const EXPIRY_TICK: Duration = Duration::from_millis(100);

/// Serves every line of `input`, writing replies to `sink`, with `workers` worker threads (0: the
/// reader handles everything). Returns when the input ends and every reply is written.
pub fn run(
    node: Arc<Node>,
    input: impl Read,
    sink: impl Write + Send + 'static,
    workers: usize,
) -> std::io::Result<()> {
    let output = Output::new(sink);
    let writer = output.spawn_writer()?;
    let (stop, ticks) = crossbeam_channel::bounded::<()>(0);
    let timer = {
        let node = node.clone();
        std::thread::Builder::new()
            .name("kgroups-timer".into())
            .spawn(move || {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    ticks.recv_timeout(EXPIRY_TICK)
                {
                    node.broker.groups.expire(node.now());
                }
            })?
    };
    let pool = if workers > 0 {
        Some(Pool::new(workers, node.clone(), output.clone())?)
    } else {
        None
    };
    let result = reader::read_loop(input, &node, pool.as_ref(), &output);
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
    match run(node, std::io::stdin().lock(), std::io::stdout(), workers) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("input failed: {e}");
            1
        }
    }
}
