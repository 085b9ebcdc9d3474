//! The `partition` nemesis: every interval it cuts the nodes, one interval later it heals them.
//!
//! The cuts are those of Maelstrom's partition nemesis (jepsen's `partition` package): one node alone,
//! a minority third, a majority, or a majorities ring (every node hears a majority, no two nodes the
//! same one). Only node-to-node links are cut; clients always reach their node.

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::{Cut, Net};
use crate::sync::Arc;

/// Draws one of the four cuts for `n` nodes. With fewer than 2 nodes nothing can be cut (returns a
/// healed cut). A cut that would leave a side empty falls back to isolating one node.
pub fn random_cut(n: usize, rng: &mut impl Rng) -> Cut {
    if n < 2 {
        return Cut::healed(n);
    }
    let mut nodes: Vec<usize> = (0..n).collect();
    nodes.shuffle(rng);
    let bisect = |kind: &'static str, size: usize| {
        let size = size.clamp(1, n - 1);
        let mut a = nodes[..size].to_vec();
        let mut b = nodes[size..].to_vec();
        a.sort_unstable();
        b.sort_unstable();
        Cut::components(n, kind, &[a, b])
    };
    match rng.random_range(0..4u32) {
        0 => bisect("one", 1),
        1 => bisect("minority-third", n / 3),
        2 if n / 2 + 1 < n => bisect("majority", n / 2 + 1),
        3 if n >= 3 => {
            // Ring order `nodes`; the node at ring position i hears the m = n/2+1 consecutive positions
            // starting (m-1)/2 before it.
            let m = n / 2 + 1;
            let back = (m - 1) / 2;
            let mut hears = vec![Vec::new(); n];
            for (pos, &node) in nodes.iter().enumerate() {
                let mut heard: Vec<usize> = (0..m)
                    .map(|j| nodes[(pos + n - back + j) % n])
                    .filter(|&x| x != node)
                    .collect();
                heard.sort_unstable();
                hears[node] = heard;
            }
            Cut::grudges(n, "majorities-ring", &hears)
        }
        _ => bisect("one", 1),
    }
}

/// One thing the nemesis did.
#[derive(Debug, Clone)]
pub struct NemesisEvent {
    /// Seconds since the nemesis started.
    pub at_secs: f64,
    /// `cut` or `heal`.
    pub action: &'static str,
    /// The cut's kind and picture (empty for a heal).
    pub detail: String,
}

/// A running nemesis thread.
#[derive(Debug)]
pub struct Nemesis {
    stop: Sender<()>,
    thread: JoinHandle<Vec<NemesisEvent>>,
}

impl Nemesis {
    /// Starts cutting `net` every `interval` (first cut after one interval), drawing cuts from `seed`.
    pub fn start(net: Arc<Net>, interval: Duration, seed: u64) -> Nemesis {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let thread = thread::Builder::new()
            .name("nemesis".into())
            .spawn(move || {
                let start = Instant::now();
                let mut rng = SmallRng::seed_from_u64(seed ^ 0x6e65_6d65);
                let mut events = Vec::new();
                let mut cut_now = false;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let at_secs = start.elapsed().as_secs_f64();
                    if cut_now {
                        net.heal();
                        events.push(NemesisEvent {
                            at_secs,
                            action: "heal",
                            detail: String::new(),
                        });
                    } else {
                        let cut = random_cut(net.node_count(), &mut rng);
                        if cut.is_cut() {
                            let detail = format!("{} {}", cut.kind, cut.description);
                            net.set_cut(cut);
                            events.push(NemesisEvent {
                                at_secs,
                                action: "cut",
                                detail,
                            });
                        }
                    }
                    cut_now = !cut_now;
                }
                net.heal();
                events
            })
            .expect("spawn the nemesis thread");
        Nemesis { stop, thread }
    }

    /// Stops the nemesis and heals the network; returns what it did.
    pub fn stop(self) -> Vec<NemesisEvent> {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cut_separates_someone_and_rings_let_each_node_hear_a_majority() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut kinds = std::collections::BTreeSet::new();
        for n in 2..=7 {
            for _ in 0..200 {
                let cut = random_cut(n, &mut rng);
                assert!(cut.is_cut(), "n={n} {cut:?}");
                kinds.insert(cut.kind);
                if cut.kind == "majorities-ring" {
                    for to in 0..n {
                        let heard = (0..n).filter(|&from| !cut.blocks(from, to)).count();
                        assert_eq!(heard, n / 2 + 1, "n={n} {}", cut.description);
                    }
                }
            }
        }
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        assert!(!random_cut(1, &mut rng).is_cut());
    }
}
