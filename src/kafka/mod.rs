//! The Kafka-protocol front: `kgroups broker` serves Kafka clients over TCP on the same engine as
//! the Maelstrom node.
//!
//! ```text
//!  TCP ─▶ server (accept, --max-connections) ─▶ one tokio task per connection: conn
//!           frame → header → RequestKind (kafka-protocol crate) → handlers/<api>.rs → reply
//!                                                     │
//!            classic/ (JoinGroup/SyncGroup barriers)  │ topics, committed offsets
//!                                                     ▼
//!                                               crate::broker (the engine)
//! ```
//!
//! - [`server`]: the listener and the timer of group sessions.
//! - [`conn`]: one connection; bad input closes only it.
//! - [`frames`]: the answers a connection has encoded, with a Fetch answer's records spliced in
//!   from the stored batches rather than copied.
//! - [`versions`]: the API versions advertised and accepted.
//! - [`handlers`]: one file per API key.
//! - [`consumer`]: KIP-848 consumer groups (ConsumerGroupHeartbeat): what the front keeps per
//!   member beside the engine's coordinator, which reconciles them.
//! - [`classic`]: classic consumer groups (the barrier, generations, relay of the leader's
//!   assignment, static membership) over the engine's committed offsets.
//! - [`commit_extras`]: the committed leader epochs and metadata strings OffsetFetch returns,
//!   beside the engine's offsets.
//! - [`context`]: what the connections share.
//! - [`alloc`]: the binary's allocator, so that an absurd array length in a request cannot abort
//!   the process.
//! - [`args`]: the command line.
//! - [`housekeeping`]: with `--data-dir`, retention, flushes, checkpoints and the clean shutdown.
//!
//! Every message is encoded and decoded by the `kafka-protocol` crate (0.18, Kafka 4.1 schemas);
//! nothing here hand-rolls the codec. Kafka facts cited in the docs come from Kafka's protocol
//! guide and sources (see `shared/reference/kafka-wire.md` and `kafka-groups.md`).

pub mod alloc;
pub mod args;
pub mod classic;
pub mod commit_extras;
pub mod conn;
pub mod consumer;
pub mod context;
pub mod frames;
pub mod handlers;
pub mod housekeeping;
pub mod server;
pub mod versions;

pub use args::Args;
pub use context::{Context, FrontConfig};

use crate::broker::Broker;
use clap::Parser;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::sync::Arc;

/// Binds `args.listen` and builds the context; returns the listener and the bound address.
pub async fn bind(args: &Args) -> std::io::Result<(tokio::net::TcpListener, Arc<Context>)> {
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let bound: SocketAddr = listener.local_addr()?;
    let (host, port) = match &args.advertised_listener {
        Some(hp) => match hp
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        {
            Some((h, p)) => (
                h.trim_start_matches('[').trim_end_matches(']').to_string(),
                p,
            ),
            None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("--advertised-listener {hp:?} is not HOST:PORT"),
                ))
            }
        },
        None if bound.ip().is_unspecified() => {
            tracing::warn!(
                "listening on {bound}: advertising 127.0.0.1; set --advertised-listener"
            );
            ("127.0.0.1".to_string(), bound.port())
        }
        None => (bound.ip().to_string(), bound.port()),
    };
    let config = FrontConfig {
        advertised_host: host,
        advertised_port: i32::from(port),
        max_request_bytes: args.socket_request_max_bytes,
        max_connections: args.max_connections.max(1),
        prefault_frames: args.data_dir.is_none(),
        classic: classic::ClassicConfig {
            min_session_timeout_ms: args.group_min_session_timeout_ms,
            max_session_timeout_ms: args.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: args.group_initial_rebalance_delay_ms,
        },
        consumer: consumer::ConsumerConfig {
            session_timeout_ms: args.group_consumer_session_timeout_ms,
            heartbeat_interval_ms: args.group_consumer_heartbeat_interval_ms,
        },
    };
    let broker = open_broker(args)?;
    Ok((listener, Arc::new(Context::new(broker, config))))
}

/// The engine the flags describe: in memory, or opened and recovered from `--data-dir`.
///
/// # Errors
///
/// `InvalidInput` for a bad `--log-*` flag; any error opening the data directory.
pub fn open_broker(args: &Args) -> std::io::Result<Broker> {
    let Some(dir) = &args.data_dir else {
        return Ok(Broker::new(args.config()));
    };
    let defaults = args
        .log_defaults()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let storage = crate::topic::Storage::new(dir, defaults, args.disk_options());
    let started = std::time::Instant::now();
    let broker = Broker::open(args.config(), storage).map_err(|e| {
        std::io::Error::other(format!("cannot open --data-dir {}: {e}", dir.display()))
    })?;
    tracing::info!(dir = %dir.display(), elapsed = ?started.elapsed(), "data directory opened");
    Ok(broker)
}

/// `kgroups broker ARGS…`: parses `args` (without the program name and `broker`), serves until
/// killed; returns the exit code (2 for bad arguments, 1 if it cannot listen).
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    alloc::tune_malloc_for_frames();
    let argv = std::iter::once(OsString::from("kgroups broker")).chain(args);
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&args.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "kgroups broker: invalid --log-level {:?}: {e}",
                args.log_level
            );
            return 2;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.enable_all().thread_name("kgroups-kafka").build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kgroups broker: cannot start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async {
        let (listener, ctx) = match bind(&args).await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("kgroups broker: cannot start on {}: {e}", args.listen);
                return 1;
            }
        };
        // With a data directory, SIGTERM and SIGINT stop cleanly: handlers are in place before
        // the address is announced.
        let signal = match args.data_dir.as_ref().map(|_| housekeeping::signalled()) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                eprintln!("kgroups broker: cannot handle signals: {e}");
                return 1;
            }
        };
        let bound = listener
            .local_addr()
            .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
        eprintln!("kgroups broker listening on {bound}");
        tracing::info!(?args, "kgroups broker started");
        // In memory, housekeeping applies only the retention a topic was given.
        tokio::spawn(housekeeping::run(Arc::clone(ctx.engine()), args.flush_ms));
        let Some(signal) = signal else {
            server::run(ctx, listener).await;
            return 0;
        };
        let mut serve = tokio::spawn(server::run(Arc::clone(&ctx), listener));
        tokio::select! {
            _ = &mut serve => 0,
            s = signal => {
                eprintln!("kgroups broker: {s}: flushing and stopping");
                // Stop accepting connections; requests in flight on open ones may still land
                // before the process exits (in the page cache, as after a crash).
                serve.abort();
                if housekeeping::shutdown(Arc::clone(ctx.engine())).await { 0 } else { 1 }
            }
        }
    })
}
