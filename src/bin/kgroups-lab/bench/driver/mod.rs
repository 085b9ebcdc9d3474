//! The load: one writer thread that keeps every client's window full, one reader thread that checks
//! every reply, and the checks that need the whole run (reading every acknowledged record back).
//!
//! Each client has `window` slots, indexed by `msg_id % window`. The writer fills a free slot (the
//! operation and its send time), marks it busy and appends the request to one batch; a whole pass
//! over the clients goes out in one `write`. The reader matches each reply to its slot by
//! `in_reply_to`, checks it, records its latency and frees the slot. When no slot is free the writer
//! parks; the reader bumps an epoch after each chunk it processed and unparks a parked writer. With
//! one client and a window of one there are no threads at all: `closed_loop` writes a request and
//! reads its reply, the lowest-overhead round trip the driver can offer.
//!
//! # Orderings
//! - `Slot::op`: the writer's Release store (busy) synchronizes with the reader's Acquire load in
//!   `Reader::reply`, so the reader sees the slot's `t` (stored Relaxed before it). The reader's
//!   Release store (free) synchronizes with the writer's Acquire load in `Writer::pass`, so the
//!   writer reuses a slot only after the reader is done with it.
//! - `ClientShared::sent`: the writer's Release store synchronizes with the reader's Acquire load in
//!   `Reader::finished`; `finished` flags likewise (Release store, Acquire load).
//! - `epoch` and `parked` are all SeqCst: the writer stores `parked` then loads `epoch`; the reader
//!   bumps `epoch` then loads `parked` (Dekker's pattern), so either the writer sees the new epoch
//!   and rescans, or the reader sees `parked` and unparks it (a token, so an unpark that comes
//!   before the park is not lost).
//! - `earlier` (per key, an acknowledged offset the writer may poll from) is a hint: any value is an
//!   acknowledged offset, and the record behind it was appended before the ack the reader saw,
//!   so Relaxed is enough.
//! - `abort` and `producers_done`: Release stores, Acquire loads.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

mod reader;
mod verify;
mod writer;

pub use verify::{check_groups, read_back};

use super::cpu::thread_cpu;
use super::fast;
use super::process::LineReader;
use crate::sync::{Arc, AtomicBool, AtomicU64, Ordering};
use kgroups::maelstrom::wire::{self, Field, JsonOut, Kind};
use reader::Reader;
use writer::{writer_for, Writer};

/// Which load to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only `send`, over `keys` keys.
    Send,
    /// 80% send, 15% poll from an earlier acknowledged offset, 5% commit_offsets.
    Mixed,
    /// Producers send while consumers in groups poll batches.
    Groups,
}

/// What one run drives.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: Mode,
    /// Producing clients (all clients in `send` and `mixed`).
    pub clients: usize,
    /// Requests in flight per producing client.
    pub window: usize,
    /// Operations of the producing clients in total.
    pub ops: u64,
    /// Distinct keys.
    pub keys: usize,
    /// groups: number of groups.
    pub groups: usize,
    /// groups: consumers in all (spread over the groups in turn).
    pub consumers: usize,
    /// groups: `max_messages` of each poll.
    pub max_messages: u64,
    /// groups: polls in flight per consumer.
    pub consumer_window: usize,
    /// Seed of the operation stream.
    pub seed: u64,
    /// Read every acknowledged record back at the end (off for a node that stores nothing).
    pub readback: bool,
    /// The node's id (the `dest` of every request).
    pub node: String,
}

impl Plan {
    fn total_clients(&self) -> usize {
        self.clients
            + if self.mode == Mode::Groups {
                self.consumers
            } else {
                0
            }
    }

    fn is_consumer(&self, c: usize) -> bool {
        c >= self.clients
    }

    fn window_of(&self, c: usize) -> usize {
        if self.is_consumer(c) {
            self.consumer_window
        } else {
            self.window
        }
    }

    /// The group of consumer client `c`.
    fn group_of(&self, c: usize) -> usize {
        (c - self.clients) % self.groups.max(1)
    }
}

/// Anomalies the checks found: counts by kind, and the first few examples.
#[derive(Debug, Default, Clone)]
pub struct Anomalies {
    pub counts: BTreeMap<&'static str, u64>,
    pub examples: Vec<String>,
}

impl Anomalies {
    /// Records one anomaly; the example text is built only for the first few.
    pub fn add(&mut self, kind: &'static str, example: impl FnOnce() -> String) {
        *self.counts.entry(kind).or_default() += 1;
        if self.examples.len() < 10 {
            self.examples.push(format!("{kind}: {}", example()));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// What a run measured and found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Requests answered during the load.
    pub ops: u64,
    /// Sends acknowledged.
    pub acked: u64,
    /// groups: records delivered to consumers (all groups, re-deliveries included).
    pub delivered: u64,
    /// groups: polls answered.
    pub polls: u64,
    /// From the first request written to the last reply read.
    pub elapsed: Duration,
    /// Latency of every answered request, in nanoseconds.
    pub latencies_ns: Vec<u32>,
    /// CPU time of the driver's own threads during the load.
    pub driver_cpu: Duration,
    pub anomalies: Anomalies,
}

const BUSY: u64 = 1 << 61;
const KIND_SHIFT: u32 = 62;
const KEY_SHIFT: u32 = 40;
const ARG_MASK: u64 = (1 << 40) - 1;
const KEY_MASK: u64 = (1 << 21) - 1;
const K_SEND: u64 = 0;
const K_POLL: u64 = 1;
const K_COMMIT: u64 = 2;
const K_GPOLL: u64 = 3;
const NONE: u64 = u64::MAX;

#[derive(Debug, Default)]
struct Slot {
    /// Send time, nanoseconds since the run's start.
    t: AtomicU64,
    /// `kind << 62 | BUSY | key << 40 | arg`; 0 when free. arg: the `msg` of a send, the offset of
    /// a poll or commit, 1 for a group poll sent after every send was acknowledged.
    op: AtomicU64,
}

#[derive(Debug)]
struct ClientShared {
    slots: Box<[Slot]>,
    /// Requests written so far (the last msg_id).
    sent: CachePadded<AtomicU64>,
    /// No more requests will be written for this client.
    finished: AtomicBool,
}

#[derive(Debug)]
struct Shared {
    clients: Vec<ClientShared>,
    earlier: Vec<AtomicU64>,
    producers_done: AtomicBool,
    epoch: CachePadded<AtomicU64>,
    parked: CachePadded<AtomicBool>,
    abort: AtomicBool,
    writer: Thread,
    start: Instant,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// The reader's record stores, sized for the whole load and written once before it starts (so the
/// load's figures count neither their growth nor their first-touch page faults).
struct Store {
    acks: Vec<Vec<(u64, u64)>>,
    recv: Vec<Vec<Vec<(u64, u64)>>>,
    lat: Vec<u32>,
}

impl Store {
    fn new(plan: &Plan) -> Self {
        let k = plan.keys.max(1);
        // Uniform keys: the mean per key, plus slack (a store that is still too small just grows).
        let mean = plan.ops as usize / k;
        let per_key = mean + 4 * (mean as f64).sqrt() as usize + 64;
        let groups = if plan.mode == Mode::Groups {
            plan.groups.max(1)
        } else {
            0
        };
        Store {
            acks: (0..k).map(|_| touched(per_key)).collect(),
            recv: (0..groups.max(1))
                .map(|_| {
                    (0..k)
                        .map(|_| touched(if groups > 0 { per_key } else { 0 }))
                        .collect()
                })
                .collect(),
            lat: touched(plan.ops as usize + 1024),
        }
    }
}

/// An empty vector with room for `n` elements, its memory already written once.
fn touched<T: Copy + Default>(n: usize) -> Vec<T> {
    // Not `vec![x; n]`, which may map zeroed pages without touching them.
    let mut v = Vec::with_capacity(n);
    v.resize(n, T::default());
    v.clear();
    v
}

fn shared_for(plan: &Plan, writer: Thread) -> Arc<Shared> {
    let clients = (0..plan.total_clients())
        .map(|c| ClientShared {
            slots: (0..plan.window_of(c)).map(|_| Slot::default()).collect(),
            sent: CachePadded::new(AtomicU64::new(0)),
            finished: AtomicBool::new(false),
        })
        .collect();
    Arc::new(Shared {
        clients,
        earlier: (0..plan.keys).map(|_| AtomicU64::new(NONE)).collect(),
        producers_done: AtomicBool::new(false),
        epoch: CachePadded::new(AtomicU64::new(0)),
        parked: CachePadded::new(AtomicBool::new(false)),
        abort: AtomicBool::new(false),
        writer,
        start: Instant::now(),
    })
}

/// The final state of a load: what the checks at the end need.
pub struct Finished {
    pub outcome: Outcome,
    acks: Vec<Vec<(u64, u64)>>,
    recv: Vec<Vec<Vec<(u64, u64)>>>,
}

/// Drives the load through `input`/`lines` (the node's stdin and stdout). Blocks until the load is
/// done (or the node exits); hands the pipes back for the read-back.
pub fn drive<W: Write + Send + 'static, R: Read + Send + 'static>(
    plan: &Plan,
    input: W,
    mut lines: LineReader<R>,
) -> (Finished, Option<W>, LineReader<R>) {
    if plan.mode != Mode::Groups && plan.clients == 1 && plan.window == 1 {
        return closed_loop(plan, input, lines);
    }
    let (tx, rx) = crossbeam_channel::bounded::<Writer>(1);
    let writer_thread = thread::Builder::new()
        .name("bench-writer".into())
        .spawn(move || {
            let cpu0 = thread_cpu();
            let mut input = input;
            if let Ok(w) = rx.recv() {
                let _ = w.run(&mut input);
            }
            (input, thread_cpu() - cpu0)
        })
        .expect("spawn the bench writer");
    let store = Store::new(plan);
    let shared = shared_for(plan, writer_thread.thread().clone());
    let reader = Reader::new(Arc::clone(&shared), plan.clone(), store);
    let cpu0 = thread_cpu();
    let _ = tx.send(writer_for(&shared, plan));
    let reader = reader.run(&mut lines);
    let reader_cpu = thread_cpu() - cpu0;
    let (input, writer_cpu) = match writer_thread.join() {
        Ok((i, cpu)) => (Some(i), cpu),
        Err(_) => (None, Duration::ZERO),
    };
    (reader.finished_with(reader_cpu + writer_cpu), input, lines)
}

/// One client, one request at a time, on the calling thread: write, read the reply, repeat.
fn closed_loop<W: Write, R: Read>(
    plan: &Plan,
    mut input: W,
    mut lines: LineReader<R>,
) -> (Finished, Option<W>, LineReader<R>) {
    let store = Store::new(plan);
    let shared = shared_for(plan, thread::current());
    let mut writer = writer_for(&shared, plan);
    let mut reader = Reader::new(Arc::clone(&shared), plan.clone(), store);
    let cpu0 = thread_cpu();
    'run: loop {
        let finished = writer.pass();
        if writer.buf.is_empty() {
            if finished || writer.remaining == 0 {
                break;
            }
            reader
                .anomalies
                .add("stalled", || "no reply to a request".into());
            break;
        }
        if input
            .write_all(&writer.buf)
            .and_then(|()| input.flush())
            .is_err()
        {
            reader
                .anomalies
                .add("node-exited", || "stdin closed".into());
            break;
        }
        writer.buf.clear();
        let before = reader.ops;
        while reader.ops == before {
            match lines.fill() {
                Ok(0) | Err(_) => {
                    reader
                        .anomalies
                        .add("node-exited", || "the node closed its stdout".into());
                    break 'run;
                }
                Ok(_) => {}
            }
            let now = shared.now_ns();
            while let Some(line) = lines.next_line() {
                reader.reply(line, now);
            }
        }
    }
    let cpu = thread_cpu() - cpu0;
    (reader.finished_with(cpu), Some(input), lines)
}

/// One request from client `me`, answered before anything else is sent; returns the reply line.
pub fn rpc<W: Write, R: Read>(
    input: &mut W,
    lines: &mut LineReader<R>,
    request: &str,
    me: &str,
    id: u64,
) -> Option<String> {
    input.write_all(request.as_bytes()).ok()?;
    input.write_all(b"\n").ok()?;
    input.flush().ok()?;
    loop {
        while let Some(line) = lines.next_line() {
            let Ok(m) = wire::decode(line) else { continue };
            if m.dest.map(|d| d.raw()) == Some(me)
                && m.body.opt_u64(Field::InReplyTo).ok().flatten() == Some(id)
            {
                return Some(String::from_utf8_lossy(line).into_owned());
            }
        }
        if lines.fill().ok()? == 0 {
            return None;
        }
    }
}

/// groups: subscribes every consumer, then heartbeats them all until two rounds in a row show the
/// same assignment with no partition owned twice in a group, so that no rebalance happens during
/// the load. Returns the assignment (per consumer), or why it could not settle.
pub fn settle_groups<W: Write, R: Read>(
    plan: &Plan,
    input: &mut W,
    lines: &mut LineReader<R>,
) -> Result<Vec<Vec<u64>>, String> {
    let mut id = 1_000_000_000u64;
    let consumers: Vec<usize> = (plan.clients..plan.total_clients()).collect();
    let mut call = |c: usize, ty: &str, input: &mut W, lines: &mut LineReader<R>| {
        id += 1;
        let me = format!("c{c}");
        let req = format!(
            r#"{{"src":"{me}","dest":"{}","body":{{"type":"{ty}","msg_id":{id},"group":"g{}","consumer":"{me}"}}}}"#,
            plan.node,
            plan.group_of(c)
        );
        rpc(input, lines, &req, &me, id).ok_or_else(|| format!("no reply to {ty} of {me}"))
    };
    for &c in &consumers {
        let r = call(c, "subscribe", input, lines)?;
        if !r.contains("\"subscribe_ok\"") {
            return Err(format!("subscribe refused: {r}"));
        }
    }
    let mut last: Option<Vec<Vec<u64>>> = None;
    for _ in 0..100 {
        let mut round = Vec::with_capacity(consumers.len());
        for &c in &consumers {
            let r = call(c, "heartbeat", input, lines)?;
            let m = wire::decode(r.as_bytes()).map_err(|e| e.to_string())?;
            let ps = m
                .body
                .array(Field::Partitions)
                .map_err(|_| format!("heartbeat reply without partitions: {r}"))?;
            let mut ps: Vec<u64> = ps.items().filter_map(|p| p.as_u64()).collect();
            ps.sort_unstable();
            round.push(ps);
        }
        let disjoint = (0..plan.groups).all(|g| {
            let mut all: Vec<u64> = round
                .iter()
                .enumerate()
                .filter(|(i, _)| plan.group_of(consumers[*i]) == g)
                .flat_map(|(_, p)| p.iter().copied())
                .collect();
            let n = all.len();
            all.sort_unstable();
            all.dedup();
            n == all.len() && n > 0
        });
        if disjoint && last.as_ref() == Some(&round) {
            return Ok(round);
        }
        last = Some(round);
        thread::sleep(Duration::from_millis(5));
    }
    Err("the groups did not settle on an assignment".into())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn plan(mode: Mode) -> Plan {
        Plan {
            mode,
            clients: 1,
            window: 4,
            ops: 100,
            keys: 10,
            groups: 1,
            consumers: if mode == Mode::Groups { 1 } else { 0 },
            max_messages: 100,
            consumer_window: 2,
            seed: 1,
            readback: false,
            node: "n0".into(),
        }
    }

    fn reader(plan: &Plan) -> Reader {
        let shared = shared_for(plan, thread::current());
        Reader::new(shared, plan.clone(), Store::new(plan))
    }

    /// Marks request `id` of client `c` as in flight with slot word `op`.
    fn arm(r: &Reader, c: usize, id: u64, op: u64) {
        let w = r.plan.window_of(c) as u64;
        r.shared.clients[c].slots[(id % w) as usize]
            .op
            .store(op | BUSY, Ordering::SeqCst);
    }

    /// What the reader found: anomaly counts and examples, answered requests, deliveries and the
    /// records kept.
    type Verdict = (
        BTreeMap<&'static str, u64>,
        Vec<String>,
        u64,
        u64,
        u64,
        Vec<Vec<Vec<(u64, u64)>>>,
    );

    fn verdict(r: &Reader) -> Verdict {
        (
            r.anomalies.counts.clone(),
            r.anomalies.examples.clone(),
            r.ops,
            r.delivered,
            r.polls,
            r.recv.clone(),
        )
    }

    fn group_line(id: u64, recs: &[(u64, u64, u64)], reordered: bool) -> String {
        let recs: Vec<String> = recs
            .iter()
            .map(|(k, o, m)| {
                if reordered {
                    format!(r#"{{"key":"{k}","msg":{m},"offset":{o},"partition":1,"topic":"t"}}"#)
                } else {
                    format!(r#"{{"topic":"t","partition":1,"offset":{o},"key":"{k}","msg":{m}}}"#)
                }
            })
            .collect();
        let msgs = recs.join(",");
        if reordered {
            format!(
                r#"{{"dest":"c1","src":"n0","body":{{"msg_id":9,"in_reply_to":{id},"type":"poll_ok","generation":1,"partitions":[1],"msgs":[{msgs}]}}}}"#
            )
        } else {
            format!(
                r#"{{"src":"n0","dest":"c1","body":{{"type":"poll_ok","msgs":[{msgs}],"partitions":[1],"generation":1,"in_reply_to":{id},"msg_id":9}}}}"#
            )
        }
    }

    #[test]
    fn group_polls_get_the_same_verdict_on_the_fast_and_the_general_path() {
        let p = plan(Mode::Groups);
        let polls: [&[(u64, u64, u64)]; 3] = [
            &[(3, 5, 50), (3, 6, 60), (4, 0, 1)],
            &[(3, 4, 40)], // goes back on key 3: non-monotonic
            &[(12, 0, 0)], // no such key
        ];
        let mut verdicts = Vec::new();
        for reordered in [false, true] {
            let mut r = reader(&p);
            for (i, recs) in polls.iter().enumerate() {
                let id = i as u64 + 1;
                arm(&r, 1, id, K_GPOLL << KIND_SHIFT);
                let line = group_line(id, recs, reordered);
                let fast = fast::head(line.as_bytes(), "n0")
                    .and_then(|h| fast::group_poll(h.body, &mut Vec::new()));
                assert_eq!(fast.is_some(), !reordered, "{line}");
                r.reply(line.as_bytes(), 10);
            }
            verdicts.push(verdict(&r));
        }
        let v = &verdicts[0];
        assert_eq!(v.0.get("non-monotonic-delivery"), Some(&1), "{v:?}");
        assert_eq!(v.0.get("unknown-key"), Some(&1), "{v:?}");
        assert_eq!(
            v.1,
            [
                "non-monotonic-delivery: consumer c1 key 3: offset 4 after 6",
                "unknown-key: key 12 offset 0 msg 0"
            ]
        );
        assert_eq!((v.2, v.3, v.4), (3, 5, 3));
        assert_eq!(v.5[0][3], [(5, 50), (6, 60), (4, 40)]);
        assert_eq!(verdicts[0], verdicts[1]);
    }

    #[test]
    fn kafka_polls_and_sends_get_the_same_verdict_on_the_fast_and_the_general_path() {
        let p = plan(Mode::Mixed);
        let lines = |reordered: bool| -> Vec<String> {
            let frame = |id: u64, ty: &str, body: &str| {
                if reordered {
                    format!(
                        r#"{{"src":"n0","dest":"c0","body":{{"in_reply_to":{id},"type":"{ty}"{body},"msg_id":9}}}}"#
                    )
                } else {
                    format!(
                        r#"{{"src":"n0","dest":"c0","body":{{"type":"{ty}"{body},"in_reply_to":{id},"msg_id":9}}}}"#
                    )
                }
            };
            vec![
                frame(1, "send_ok", r#","offset":7"#),
                frame(2, "send_ok", r#","offset":6"#), // goes back on key 2
                frame(3, "poll_ok", r#","msgs":{"2":[[8,1],[9,2]]}"#), // from 7: skips
                frame(4, "poll_ok", r#","msgs":{"5":[[7,1]]}"#), // wrong key
                frame(5, "poll_ok", r#","msgs":{}"#),  // nothing
                frame(6, "poll_ok", r#","msgs":{"2":[[7,1],[7,2]]}"#), // not ascending
                frame(7, "commit_offsets_ok", ""),
            ]
        };
        let ops = [
            K_SEND << KIND_SHIFT | 2 << KEY_SHIFT | 11,
            K_SEND << KIND_SHIFT | 2 << KEY_SHIFT | 12,
            K_POLL << KIND_SHIFT | 2 << KEY_SHIFT | 7,
            K_POLL << KIND_SHIFT | 2 << KEY_SHIFT | 7,
            K_POLL << KIND_SHIFT | 2 << KEY_SHIFT | 7,
            K_POLL << KIND_SHIFT | 2 << KEY_SHIFT | 7,
            K_COMMIT << KIND_SHIFT | 2 << KEY_SHIFT | 7,
        ];
        let mut verdicts = Vec::new();
        for reordered in [false, true] {
            let mut r = reader(&p);
            for (i, line) in lines(reordered).iter().enumerate() {
                arm(&r, 0, i as u64 + 1, ops[i]);
                assert_eq!(fast::head(line.as_bytes(), "n0").is_some(), !reordered);
                r.reply(line.as_bytes(), 10);
            }
            verdicts.push((verdict(&r), r.acks[2].clone()));
        }
        let (v, acks) = &verdicts[0];
        let want: BTreeMap<&str, u64> = [
            ("non-monotonic-send", 1),
            ("poll-skip", 3),
            ("poll-wrong-key", 1),
            ("non-monotonic-poll", 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(v.0, want);
        assert_eq!(
            v.1,
            [
                "non-monotonic-send: client c0 key 2: offset 6 after 7",
                "poll-skip: key 2: poll from acknowledged 7 began at 8",
                "poll-wrong-key: 5",
                "poll-skip: key 2: poll from acknowledged offset 7 returned nothing",
                "poll-skip: key 2: poll from acknowledged offset 7 returned nothing",
                "non-monotonic-poll: key 2: 7 after 7",
            ]
        );
        assert_eq!(v.2, 7);
        assert_eq!(acks, &[(7, 11), (6, 12)]);
        assert_eq!(verdicts[0], verdicts[1]);
    }
}
