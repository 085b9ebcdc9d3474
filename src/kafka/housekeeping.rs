//! The broker's background work, and the durable broker's clean shutdown.
//!
//! - Every [`PERIOD`] (or every `--flush-ms`, if shorter) [`Broker::housekeeping`] applies
//!   retention and roll and the time-based flush policy; every [`CHECKPOINT_PERIOD`] a
//!   checkpoint fsyncs every partition and the offsets journal and records the recovery points,
//!   so that a start after a crash checks only what was written since (Kafka's
//!   `log.flush.offset.checkpoint.interval.ms`, 60 s). Both run on tokio's blocking pool: they do
//!   file I/O. In memory, housekeeping only applies the retention that a topic's own configs
//!   set (the in-memory defaults delete nothing), and checkpoints are no-ops.
//! - With `--data-dir`, on SIGTERM or SIGINT, [`shutdown`] runs a last checkpoint and compacts
//!   the offsets journal before the process exits (in memory the signals keep their default
//!   action: the process ends at once, as before).

use crate::broker::Broker;
use std::sync::Arc;
use std::time::Duration;

/// How often housekeeping runs (retention, roll, flush-if-due).
pub const PERIOD: Duration = Duration::from_secs(1);

/// How often the recovery points are written.
pub const CHECKPOINT_PERIOD: Duration = Duration::from_secs(60);

/// Runs housekeeping and periodic checkpoints for as long as the process lives.
pub async fn run(engine: super::context::Engine, flush_ms: Option<u64>) {
    let period = flush_ms.map_or(PERIOD, |ms| PERIOD.min(Duration::from_millis(ms.max(1))));
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_checkpoint = tokio::time::Instant::now();
    loop {
        every.tick().await;
        let checkpoint = last_checkpoint.elapsed() >= CHECKPOINT_PERIOD;
        if checkpoint {
            last_checkpoint = tokio::time::Instant::now();
        }
        let engine = Arc::clone(&engine);
        let done = tokio::task::spawn_blocking(move || {
            let broker: &Broker = (*engine).as_ref();
            broker.housekeeping(crate::clock::wall_ms());
            if checkpoint {
                if let Err(e) = broker.checkpoint() {
                    tracing::error!("checkpoint: {e}");
                }
            }
        })
        .await;
        if let Err(e) = done {
            tracing::error!("housekeeping failed: {e}");
        }
    }
}

/// Installs handlers for SIGTERM and SIGINT now; the future ends with the first of them.
///
/// # Errors
///
/// If the signal handlers cannot be installed.
pub fn signalled() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// The clean shutdown: fsyncs everything and writes the recovery points, so that the next start
/// checks nothing. Returns whether it succeeded (errors are logged).
pub async fn shutdown(engine: super::context::Engine) -> bool {
    let done = tokio::task::spawn_blocking(move || {
        let broker: &Broker = (*engine).as_ref();
        broker.close()
    })
    .await;
    match done {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::error!("shutdown checkpoint: {e}");
            false
        }
        Err(e) => {
            tracing::error!("shutdown checkpoint failed: {e}");
            false
        }
    }
}
