//! Node-to-node latency: a distribution to draw delays from, and one delay-queue thread that holds
//! every message in flight in a binary heap ordered by due time (never a thread per message).

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rand::Rng;

use crate::cli::LatencyDist;
use crate::cluster::process::Input;
use crate::sync::{lock, Mutex};

/// The latency distribution between nodes.
#[derive(Debug, Clone, Copy)]
pub struct LatencyModel {
    mean: Duration,
    dist: LatencyDist,
}

impl LatencyModel {
    /// `mean_ms` milliseconds on average, distributed as `dist` (as Maelstrom's `--latency` and
    /// `--latency-dist`): constant = the mean; uniform in [0, 2·mean); exponential with that mean.
    pub fn new(mean_ms: f64, dist: LatencyDist) -> LatencyModel {
        let mean = Duration::from_secs_f64(mean_ms.max(0.0) / 1000.0);
        LatencyModel { mean, dist }
    }

    /// No latency at all.
    #[cfg(test)]
    pub fn none() -> LatencyModel {
        LatencyModel {
            mean: Duration::ZERO,
            dist: LatencyDist::Constant,
        }
    }

    /// Whether every delay is zero.
    pub fn is_zero(&self) -> bool {
        self.mean.is_zero()
    }

    /// Draws one delay.
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        let mean = self.mean.as_secs_f64();
        let secs = match self.dist {
            LatencyDist::Constant => mean,
            LatencyDist::Uniform => rng.random::<f64>() * 2.0 * mean,
            LatencyDist::Exponential => -mean * (1.0 - rng.random::<f64>()).ln(),
        };
        Duration::from_secs_f64(secs.clamp(0.0, 3600.0))
    }
}

enum Msg {
    Deliver {
        due: Instant,
        to: usize,
        line: Vec<u8>,
    },
    Stop,
}

struct Pending {
    due: Instant,
    seq: u64,
    to: usize,
    line: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due && self.seq == other.seq
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest due time first; ties go in arrival
    /// order.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other.due.cmp(&self.due).then(other.seq.cmp(&self.seq))
    }
}

/// The delay queue: messages in flight between nodes, delivered to a node's stdin when due.
#[derive(Debug)]
pub struct DelayQueue {
    tx: Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Deliver { to, .. } => write!(f, "Deliver(to n{to})"),
            Msg::Stop => write!(f, "Stop"),
        }
    }
}

impl DelayQueue {
    /// Starts the queue's thread; it delivers to `inputs[to]`.
    pub fn start(inputs: Vec<Sender<Input>>) -> DelayQueue {
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = thread::Builder::new()
            .name("net-delay".into())
            .spawn(move || run(rx, inputs))
            .expect("spawn the delay thread");
        DelayQueue {
            tx,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Queues `line` for node `to`, due `delay` from now.
    pub fn push(&self, delay: Duration, to: usize, line: Vec<u8>) {
        let _ = self.tx.send(Msg::Deliver {
            due: Instant::now() + delay,
            to,
            line,
        });
    }

    /// Stops the thread; undelivered messages are dropped.
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
        let handle = lock(&self.thread).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn run(rx: Receiver<Msg>, inputs: Vec<Sender<Input>>) {
    let mut heap: BinaryHeap<Pending> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|p| p.due <= now) {
            let p = heap.pop().expect("peeked");
            let _ = inputs[p.to].send(Input::Line(p.line));
        }
        let msg = match heap.peek() {
            Some(p) => match rx.recv_timeout(p.due.saturating_duration_since(now)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => return,
            },
        };
        match msg {
            Msg::Deliver { due, to, line } => {
                seq += 1;
                heap.push(Pending { due, seq, to, line });
            }
            Msg::Stop => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn sample_means_match_the_requested_mean() {
        let mut rng = SmallRng::seed_from_u64(7);
        for dist in [
            LatencyDist::Constant,
            LatencyDist::Uniform,
            LatencyDist::Exponential,
        ] {
            let m = LatencyModel::new(10.0, dist);
            let n = 20_000;
            let total: f64 = (0..n).map(|_| m.sample(&mut rng).as_secs_f64()).sum();
            let mean_ms = total / n as f64 * 1000.0;
            assert!((mean_ms - 10.0).abs() < 0.5, "{dist:?}: mean {mean_ms}");
        }
    }

    #[test]
    fn delay_queue_delivers_in_due_order() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let q = DelayQueue::start(vec![tx]);
        q.push(Duration::from_millis(60), 0, b"late\n".to_vec());
        q.push(Duration::from_millis(5), 0, b"early\n".to_vec());
        let first = rx.recv_timeout(Duration::from_secs(2)).unwrap();
        let second = rx.recv_timeout(Duration::from_secs(2)).unwrap();
        assert!(matches!(first, Input::Line(l) if l == b"early\n"));
        assert!(matches!(second, Input::Line(l) if l == b"late\n"));
        q.stop();
    }
}
