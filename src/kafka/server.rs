//! The listener: accepts connections, enforces `--max-connections`, runs one task per connection
//! ([`super::conn::serve`]) and a timer that expires classic-group sessions and rebalance
//! deadlines, the engine's (consumer-protocol) members, and the front's records of them, every
//! [`super::classic::TICK`].

use super::classic::TICK;
use super::conn;
use super::context::Context;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Serves `listener` until the process ends.
pub async fn run(ctx: Arc<Context>, listener: TcpListener) {
    let timer = Arc::clone(&ctx);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let now = timer.now();
            timer.classic.tick(now);
            timer.broker().groups().expire(now);
            timer.consumer.prune(timer.broker().groups(), now);
        }
    });
    let slots = Arc::new(Semaphore::new(
        ctx.config.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, max = ctx.config.max_connections, "too many connections: closing");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            tracing::debug!(%peer, "connection opened");
            conn::serve(ctx, stream, peer).await;
            drop(slot);
        });
    }
}
