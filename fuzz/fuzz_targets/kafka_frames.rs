//! Arbitrary bytes as everything a client sends on one Kafka connection: the frame cutter, the
//! request header and body decoders (the `kafka-protocol` crate), the version checks and every
//! handler (Produce runs the RecordBatch parser) on one broker shared by all inputs, so state
//! built by one input is there for the next. The connection must end (the input ends or the
//! broker closes it) without a panic; long polls and group barriers run on tokio's paused clock,
//! which jumps ahead whenever the broker only waits.
#![no_main]

use kgroups::broker::Broker;
use kgroups::kafka::{conn, Context, FrontConfig};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tokio::io::AsyncWriteExt;

#[global_allocator]
static ALLOC: kgroups::kafka::alloc::NoReserveHuge = kgroups::kafka::alloc::NoReserveHuge;

struct World {
    rt: tokio::runtime::Runtime,
    ctx: Arc<Context>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime");
        let config = FrontConfig {
            // Small enough that the cutter's limit is reached by fuzzed sizes.
            max_request_bytes: 1 << 20,
            ..FrontConfig::default()
        };
        let ctx = Arc::new(Context::new(Broker::new(Default::default()), config));
        World { rt, ctx }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    w.rt.block_on(async {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let peer = "127.0.0.1:1".parse().expect("an address");
        let serving = tokio::spawn(conn::serve(Arc::clone(&w.ctx), server, peer));
        // Write the input, then close our side: the broker reads EOF after the last frame.
        let writing = async {
            let _ = client.write_all(data).await;
            let _ = client.shutdown().await;
            // Drain responses so the broker never blocks on a full pipe.
            let mut sink = tokio::io::sink();
            let _ = tokio::io::copy(&mut client, &mut sink).await;
        };
        let (_, served) = tokio::join!(writing, serving);
        served.expect("the connection task does not panic");
    });
});
