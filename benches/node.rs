//! Criterion benches of the node's hot path: decoding a request, encoding a reply, one request
//! through `Node::handle`, and whole input streams through the threads of `node::run`.
//!
//! Each group puts kgroups beside a baseline measured in the same run: serde_json (borrowed
//! structs, `RawValue` payloads) for decoding and encoding, and the node's own `echo` for the
//! request path.

#[path = "../src/bin/kgroups-lab/bench/cpu.rs"]
mod cpu;
use cpu::thread_cpu;

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use kgroups::broker::Config;
use kgroups::maelstrom::wire::{self, reply, Field, JsonOut};
use kgroups::maelstrom::{self, Node};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEND: &str = r#"{"id":41,"src":"c12","dest":"n1","body":{"type":"send","msg_id":731,"key":"17","msg":1234}}"#;

fn send_lines(clients: usize, keys: usize, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"id":{i},"src":"c{}","dest":"n1","body":{{"type":"send","msg_id":{},"key":"{}","msg":{i}}}}}"#,
                i % clients,
                i / clients + 1,
                i % keys
            )
        })
        .collect()
}

#[derive(Deserialize)]
struct SerdeEnvelope<'a> {
    #[serde(borrow)]
    src: &'a str,
    #[serde(borrow)]
    dest: &'a str,
    #[serde(borrow)]
    body: &'a RawValue,
}

#[derive(Deserialize)]
struct SerdeSend<'a> {
    #[serde(borrow, rename = "type")]
    ty: &'a str,
    msg_id: Option<u64>,
    #[serde(borrow)]
    key: Option<&'a str>,
    #[serde(borrow)]
    msg: Option<&'a RawValue>,
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode/send");
    g.throughput(Throughput::Elements(1));
    g.bench_function("kgroups", |b| {
        b.iter(|| {
            let m = wire::decode(black_box(SEND.as_bytes())).unwrap();
            let ty = m.body.str(Field::Type).unwrap();
            let id = m.body.opt_u64(Field::MsgId).unwrap();
            let key = m.body.str(Field::Key).unwrap();
            let msg = m.body.raw(Field::Msg).unwrap();
            black_box((m.src.raw(), ty.raw(), id, key.raw(), msg.text()));
        })
    });
    g.bench_function("kgroups general scanner", |b| {
        b.iter(|| {
            let m = wire::request::decode_general(
                std::str::from_utf8(black_box(SEND.as_bytes())).unwrap(),
            )
            .unwrap();
            let ty = m.body.str(Field::Type).unwrap();
            let id = m.body.opt_u64(Field::MsgId).unwrap();
            let key = m.body.str(Field::Key).unwrap();
            let msg = m.body.raw(Field::Msg).unwrap();
            black_box((m.src.raw(), ty.raw(), id, key.raw(), msg.text()));
        })
    });
    g.bench_function("serde_json", |b| {
        b.iter(|| {
            let e: SerdeEnvelope = serde_json::from_str(black_box(SEND)).unwrap();
            let s: SerdeSend = serde_json::from_str(e.body.get()).unwrap();
            black_box((
                e.src,
                e.dest,
                s.ty,
                s.msg_id,
                s.key,
                s.msg.map(RawValue::get),
            ));
        })
    });
    g.finish();
}

#[derive(Serialize)]
struct SerdeReply<'a, B> {
    src: &'a str,
    dest: &'a str,
    body: B,
}

#[derive(Serialize)]
struct SerdeSendOk {
    #[serde(rename = "type")]
    ty: &'static str,
    offset: u64,
    in_reply_to: u64,
    msg_id: u64,
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode/send_ok");
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(256);
    g.bench_function("kgroups", |b| {
        b.iter(|| {
            out.clear();
            reply::begin(&mut out, "n1", black_box("c12"), "send", "_ok");
            out.key("offset").uint(black_box(123_456));
            reply::end(&mut out, Some(black_box(731)), black_box(99_001));
            black_box(&out);
        })
    });
    g.bench_function("serde_json", |b| {
        b.iter(|| {
            out.clear();
            let r = SerdeReply {
                src: "n1",
                dest: black_box("c12"),
                body: SerdeSendOk {
                    ty: "send_ok",
                    offset: black_box(123_456),
                    in_reply_to: black_box(731),
                    msg_id: black_box(99_001),
                },
            };
            serde_json::to_writer(&mut out, &r).unwrap();
            out.push(b'\n');
            black_box(&out);
        })
    });
    g.finish();
}

fn handle(c: &mut Criterion) {
    let mut g = c.benchmark_group("handle");
    g.throughput(Throughput::Elements(1));
    let node = Node::new(Config::default());
    let lines = send_lines(8, 100, 1024);
    let mut out = Vec::with_capacity(4096);
    let mut i = 0;
    g.bench_function("send", |b| {
        b.iter(|| {
            out.clear();
            node.handle(lines[i & 1023].as_bytes(), &mut out);
            i += 1;
            black_box(&out);
        })
    });
    // A poll of one key from an earlier offset (a full batch of 32 records).
    let poll = r#"{"src":"c3","dest":"n1","body":{"type":"poll","msg_id":9,"offsets":{"5":0}}}"#;
    g.bench_function("poll_1key_32records", |b| {
        b.iter(|| {
            out.clear();
            node.handle(poll.as_bytes(), &mut out);
            black_box(&out);
        })
    });
    let echo =
        r#"{"id":41,"src":"c12","dest":"n1","body":{"type":"echo","msg_id":731,"echo":1234}}"#;
    g.bench_function("echo (baseline)", |b| {
        b.iter(|| {
            out.clear();
            node.handle(echo.as_bytes(), &mut out);
            black_box(&out);
        })
    });
    g.finish();
}

/// A whole stream of pipelined sends through reader, workers and output, into `io::sink`.
fn pipeline(c: &mut Criterion) {
    const N: usize = 50_000;
    let mut input = Vec::new();
    for l in send_lines(8, 100, N) {
        input.extend_from_slice(l.as_bytes());
        input.push(b'\n');
    }
    let mut g = c.benchmark_group("pipeline/send_8clients_100keys");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    for workers in [0usize, 1, 2] {
        g.bench_function(format!("workers={workers}"), |b| {
            b.iter_batched(
                || Arc::new(Node::new(Config::default())),
                |node| maelstrom::run(node, &input[..], std::io::sink(), workers).unwrap(),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// One request at a time through the threads, reply awaited before the next is sent: the
/// hand-off latency of the pipeline (the inline path when it works). Pipes, not the process's
/// stdin, so this is in-process.
fn round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("round_trip/one_at_a_time");
    g.throughput(Throughput::Elements(1));
    g.bench_function("echo thread (floor)", |b| b.iter_custom(echo_floor));
    for workers in [0usize, 2] {
        g.bench_function(format!("workers={workers}"), |b| {
            b.iter_custom(|iters| one_at_a_time(workers, iters))
        });
    }
    g.finish();
}

/// The floor: a thread that answers every line at once with a fixed reply, over the same pipes.
fn echo_floor(iters: u64) -> Duration {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    let (mut to_node, node_in) = UnixStream::pair().unwrap();
    let (mut node_out, from_node) = UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || {
        let mut lines = BufReader::new(node_in);
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap() > 0 {
            node_out
                .write_all(b"{\"src\":\"n1\",\"dest\":\"c0\",\"body\":{\"type\":\"send_ok\",\"offset\":0,\"in_reply_to\":1,\"msg_id\":0}}\n")
                .unwrap();
            line.clear();
        }
    });
    let mut replies = BufReader::new(from_node);
    let mut line = String::new();
    let lines = send_lines(1, 100, 1000);
    let start = Instant::now();
    for i in 0..iters as usize {
        to_node.write_all(lines[i % 1000].as_bytes()).unwrap();
        to_node.write_all(b"\n").unwrap();
        line.clear();
        replies.read_line(&mut line).unwrap();
    }
    let elapsed = start.elapsed();
    drop(to_node);
    t.join().unwrap();
    elapsed
}

fn one_at_a_time(workers: usize, iters: u64) -> Duration {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    let (mut to_node, node_in) = UnixStream::pair().unwrap();
    let (node_out, from_node) = UnixStream::pair().unwrap();
    let node = Arc::new(Node::new(Config::default()));
    let t = std::thread::spawn(move || maelstrom::run(node, node_in, node_out, workers).unwrap());
    let mut replies = BufReader::new(from_node);
    let mut line = String::new();
    let lines = send_lines(1, 100, 1000);
    let start = Instant::now();
    for i in 0..iters as usize {
        to_node.write_all(lines[i % 1000].as_bytes()).unwrap();
        to_node.write_all(b"\n").unwrap();
        line.clear();
        replies.read_line(&mut line).unwrap();
    }
    let elapsed = start.elapsed();
    drop(to_node);
    t.join().unwrap();
    elapsed
}

criterion_group!(benches, decode, encode, handle, pipeline, round_trip);

/// `KGROUPS_PROBE=decode|serde|encode|send|echo|poll cargo bench --bench node` runs that piece
/// 1,000,000 times (or `KGROUPS_PROBE_N`) and exits, without criterion: a fixed workload for `perf stat -e instructions`
/// or callgrind, whose counts do not depend on the machine's load.
fn probe(which: &str) {
    let n: usize = std::env::var("KGROUPS_PROBE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let node = Node::new(Config::default());
    let lines = send_lines(8, 100, 1024);
    let mut out = Vec::with_capacity(4096);
    let poll = r#"{"src":"c3","dest":"n1","body":{"type":"poll","msg_id":9,"offsets":{"5":0}}}"#;
    let echo =
        r#"{"id":41,"src":"c12","dest":"n1","body":{"type":"echo","msg_id":731,"echo":1234}}"#;
    if which == "poll" {
        for l in &lines[..400] {
            node.handle(l.as_bytes(), &mut out);
        }
    }
    for i in 0..n {
        out.clear();
        match which {
            "decode" => {
                let m = wire::decode(black_box(SEND.as_bytes())).unwrap();
                black_box((
                    m.body.str(Field::Type).unwrap(),
                    m.body.opt_u64(Field::MsgId).unwrap(),
                ));
                black_box((
                    m.body.str(Field::Key).unwrap(),
                    m.body.raw(Field::Msg).unwrap(),
                ));
            }
            "serde" => {
                let e: SerdeEnvelope = serde_json::from_str(black_box(SEND)).unwrap();
                let s: SerdeSend = serde_json::from_str(e.body.get()).unwrap();
                black_box((
                    e.src,
                    e.dest,
                    s.ty,
                    s.msg_id,
                    s.key,
                    s.msg.map(RawValue::get),
                ));
            }
            "encode" => {
                reply::begin(&mut out, "n1", black_box("c12"), "send", "_ok");
                out.key("offset").uint(black_box(i as u64));
                reply::end(&mut out, Some(black_box(731)), black_box(99_001));
            }
            "send" => node.handle(lines[i & 1023].as_bytes(), &mut out),
            "echo" => node.handle(echo.as_bytes(), &mut out),
            "poll" => node.handle(poll.as_bytes(), &mut out),
            other => panic!("unknown probe {other}"),
        }
        black_box(&out);
    }
}

/// `KGROUPS_PROBE=pipes<N>`: 8 clients × 64 requests in flight over socket pairs into
/// `node::run` with N workers; prints sends/s and the node's CPU per send (the process's CPU
/// minus the driver threads' own).
fn pipes(workers: usize) {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    const WINDOW: usize = 8 * 64;
    let n: usize = std::env::var("KGROUPS_PROBE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let lines = send_lines(8, 100, n);
    let (mut to_node, node_in) = UnixStream::pair().unwrap();
    let (node_out, from_node) = UnixStream::pair().unwrap();
    let node = Arc::new(Node::new(Config::default()));
    let (cpu0, main0) = (cpu_time(), thread_cpu());
    let start = Instant::now();
    let server =
        std::thread::spawn(move || maelstrom::run(node, node_in, node_out, workers).unwrap());
    let (credit_tx, credit_rx) = crossbeam_channel::bounded::<()>(WINDOW);
    for _ in 0..WINDOW {
        credit_tx.send(()).unwrap();
    }
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::with_capacity(1 << 16, from_node);
        let mut line = String::new();
        for _ in 0..n {
            line.clear();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("send_ok"), "{line}");
            let _ = credit_tx.send(());
        }
        thread_cpu()
    });
    let mut buf = Vec::with_capacity(1 << 16);
    let mut i = 0;
    while i < n {
        credit_rx.recv().unwrap();
        loop {
            buf.extend_from_slice(lines[i].as_bytes());
            buf.push(b'\n');
            i += 1;
            if i == n || credit_rx.try_recv().is_err() {
                break;
            }
        }
        to_node.write_all(&buf).unwrap();
        buf.clear();
    }
    let driver = reader.join().unwrap() + (thread_cpu() - main0);
    let wall = start.elapsed();
    drop(to_node);
    server.join().unwrap();
    let node_cpu = cpu_time() - cpu0 - driver;
    eprintln!(
        "{n} sends, workers={workers}: {:.0} sends/s, node CPU {:.0} ns per send (driver {:.0} ns)",
        n as f64 / wall.as_secs_f64(),
        node_cpu.as_nanos() as f64 / n as f64,
        driver.as_nanos() as f64 / n as f64
    );
}

/// This process's CPU time (user + system, all threads).
fn cpu_time() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: 1. `ru` points to writable memory of the size of `rusage`; 2. getrusage only writes
    // it; 3. a zeroed `rusage` is a valid value, so `assume_init` is sound even if it wrote nothing.
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr());
        ru.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() {
    if let Ok(which) = std::env::var("KGROUPS_PROBE") {
        if let Some(workers) = which.strip_prefix("pipes") {
            pipes(workers.parse().unwrap_or(2));
            return;
        }
        if let Some(workers) = which.strip_prefix("pipeline") {
            // `KGROUPS_PROBE=pipeline2`: 1,000,000 pipelined sends (8 clients, 100 keys) through
            // reader, 2 workers and output into io::sink; `perf stat` gives CPU per operation.
            let n: usize = std::env::var("KGROUPS_PROBE_N")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1_000_000);
            let mut input = Vec::new();
            for l in send_lines(8, 100, n) {
                input.extend_from_slice(l.as_bytes());
                input.push(b'\n');
            }
            let node = Arc::new(Node::new(Config::default()));
            let (t, cpu) = (Instant::now(), cpu_time());
            maelstrom::run(
                node,
                &input[..],
                std::io::sink(),
                workers.parse().unwrap_or(2),
            )
            .unwrap();
            let (wall, cpu) = (t.elapsed(), cpu_time() - cpu);
            eprintln!(
                "{n} sends: {:.0} ns wall and {:.0} ns CPU per send",
                wall.as_nanos() as f64 / n as f64,
                cpu.as_nanos() as f64 / n as f64
            );
            return;
        }
        probe(&which);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
