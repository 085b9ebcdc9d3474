//! The worker pool: requests sharded by their `src`, so each client's requests run in arrival order
//! while different clients run in parallel.
//!
//! The reader sends a worker `Job`s: a shared input chunk and the byte ranges of the lines in it
//! that belong to that worker's shard — one channel message per chunk and worker, not per line. A
//! worker handles its lines into its own reply buffer and submits the buffer to the [`Output`] when
//! its queue runs dry (or the buffer is large), so replies leave in batches.
//!
//! Each shard counts its lines in flight (`pending`): sent by the reader and not yet both handled
//! and submitted. The reader handles a line itself, with no hand-off, only when its shard has none
//! in flight (see [`super::reader`]); as a worker submits a shard's replies before it lowers the
//! count, an inline reply for a client can never overtake an earlier reply to the same client.
//!
//! # Orderings
//! - `pending` is raised by the reader with a Relaxed `fetch_add` before it sends the job: only the
//!   reader raises it and only the reader tests it for zero, and the job (so the worker's
//!   `fetch_sub`) comes after the raise through the channel, which synchronizes.
//! - The worker lowers it with a Release `fetch_sub` after it submitted the replies; it pairs with
//!   the Acquire load in [`Pool::is_idle`], so a reader that sees zero also sees that submission
//!   done, and its own later submission is queued after it.

use super::guard;
use super::node::Node;
use super::output::Output;
use crate::loom::{AtomicUsize, Ordering, StdArc as Arc};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use crossbeam_utils::CachePadded;
use std::thread::JoinHandle;

/// A worker submits its replies once they exceed this many bytes, even if more work is queued.
const FLUSH_AT: usize = 64 * 1024;

/// Jobs a worker's channel holds before the reader waits (backpressure on stdin). Small, so the
/// reader stays at most a few chunks ahead and the workers read lines that are still in cache.
const QUEUE: usize = 4;

/// Lines of one input chunk for one worker.
pub(crate) struct Job {
    pub(crate) chunk: Arc<Vec<u8>>,
    /// `(start, end)` byte ranges in `chunk`, in arrival order.
    pub(crate) lines: Vec<(u32, u32)>,
}

/// The workers; see the module docs.
pub struct Pool {
    txs: Vec<Sender<Job>>,
    /// Lines in flight per shard.
    pending: Arc<[CachePadded<AtomicUsize>]>,
    handles: Vec<JoinHandle<()>>,
    hasher: ahash::RandomState,
}

impl Pool {
    /// Starts `workers` (at least 1) threads serving `node`, writing to `output`.
    pub fn new(workers: usize, node: Arc<Node>, output: Arc<Output>) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let pending: Arc<[CachePadded<AtomicUsize>]> = (0..workers)
            .map(|_| CachePadded::new(AtomicUsize::new(0)))
            .collect();
        let mut txs = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers {
            let (tx, rx) = crossbeam_channel::bounded(QUEUE);
            txs.push(tx);
            let node = node.clone();
            let output = output.clone();
            let pending = pending.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("kgroups-worker-{i}"))
                    .spawn(move || {
                        guard::or_exit("a worker", || worker(&node, &output, &rx, &pending[i]))
                    })?,
            );
        }
        Ok(Pool {
            txs,
            pending,
            handles,
            hasher: ahash::RandomState::with_seeds(0x6b67, 0x726f, 0x7570, 0x7321),
        })
    }

    /// How many workers (and shards) there are.
    pub fn workers(&self) -> usize {
        self.txs.len()
    }

    /// The shard (worker) of a request from `src` (its raw wire text).
    #[inline]
    pub fn shard_of(&self, src: &[u8]) -> usize {
        (self.hasher.hash_one(src) % self.txs.len() as u64) as usize
    }

    /// Whether shard `s` has no line in flight: every reply for its lines has been submitted.
    #[inline]
    pub fn is_idle(&self, s: usize) -> bool {
        // Acquire: pairs with the worker's Release `fetch_sub` after its submission.
        self.pending[s].load(Ordering::Acquire) == 0
    }

    /// Sends a job to shard `s`; blocks while that worker's queue is full.
    pub(crate) fn dispatch(&self, s: usize, job: Job) {
        // Relaxed: see the module's Orderings; the channel carries the job after this raise.
        self.pending[s].fetch_add(job.lines.len(), Ordering::Relaxed);
        if self.txs[s].send(job).is_err() {
            tracing::error!("worker {s} is gone; a batch of requests was dropped");
        }
    }

    /// Closes the queues and waits until every worker has handled and submitted all its lines.
    pub fn join(self) {
        drop(self.txs);
        for h in self.handles {
            if h.join().is_err() {
                tracing::error!("a worker panicked");
            }
        }
    }
}

fn worker(node: &Node, output: &Output, rx: &Receiver<Job>, pending: &AtomicUsize) {
    let mut out = Vec::with_capacity(FLUSH_AT);
    let mut done = 0usize;
    let flush = |out: &mut Vec<u8>, done: &mut usize| {
        output.submit(out);
        if *done > 0 {
            // Release: pairs with the Acquire load in `Pool::is_idle` (the submission above
            // happens-before a reader's inline reply for this shard).
            pending.fetch_sub(*done, Ordering::Release);
            *done = 0;
        }
    };
    loop {
        let job = match rx.try_recv() {
            Ok(job) => job,
            Err(TryRecvError::Empty) => {
                flush(&mut out, &mut done);
                match rx.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        guard::inject("worker");
        for &(start, end) in &job.lines {
            node.handle(&job.chunk[start as usize..end as usize], &mut out);
            done += 1;
            if out.len() >= FLUSH_AT {
                flush(&mut out, &mut done);
            }
        }
    }
    flush(&mut out, &mut done);
}
