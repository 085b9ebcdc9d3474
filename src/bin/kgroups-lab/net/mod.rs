//! The simulated network between nodes: latency, partitions and message counts.
//!
//! Client traffic goes straight to a node's stdin (as in Maelstrom, clients see neither latency nor
//! partitions). Node-to-node traffic passes [`Net::send_server`]: it is dropped if the current [`Cut`]
//! separates the two nodes (checked when the message is sent), and otherwise delivered after a delay
//! drawn from the latency distribution by one [`latency::DelayQueue`] thread.
//!
//! # Orderings
//! The counters are statistics read once at the end of a run (after every thread that bumps them has
//! been joined or has stopped routing), so `Relaxed` is enough for all of them: no other memory is
//! published through them. The current cut is swapped with `ArcSwap`, which does its own ordering.

pub mod latency;
pub mod nemesis;

use crossbeam_channel::Sender;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use self::latency::{DelayQueue, LatencyModel};
use crate::cluster::process::Input;
use crate::sync::{lock, Arc, ArcSwap, AtomicU64, Mutex, Ordering};

/// Which node-to-node links are cut: `blocks(from, to)` means a message from `from` to `to` is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    n: usize,
    blocked: Vec<bool>,
    /// The kind of cut (`healed`, `one`, `minority-third`, `majority`, `majorities-ring`).
    pub kind: &'static str,
    /// A human-readable picture of the cut, e.g. `[n1] | [n0 n2]`.
    pub description: String,
}

impl Cut {
    /// No link is cut.
    pub fn healed(n: usize) -> Cut {
        Cut {
            n,
            blocked: vec![false; n * n],
            kind: "healed",
            description: "healed".into(),
        }
    }

    /// A cut that splits the nodes into `components` (every node in exactly one); links inside a
    /// component stay up, links between components are cut both ways.
    pub fn components(n: usize, kind: &'static str, components: &[Vec<usize>]) -> Cut {
        let mut comp_of = vec![0usize; n];
        for (c, nodes) in components.iter().enumerate() {
            for &x in nodes {
                comp_of[x] = c;
            }
        }
        let mut blocked = vec![false; n * n];
        for from in 0..n {
            for to in 0..n {
                blocked[from * n + to] = comp_of[from] != comp_of[to];
            }
        }
        let description = components
            .iter()
            .map(|c| {
                format!(
                    "[{}]",
                    c.iter()
                        .map(|x| format!("n{x}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            })
            .collect::<Vec<_>>()
            .join(" | ");
        Cut {
            n,
            blocked,
            kind,
            description,
        }
    }

    /// A cut where node `to` hears only from the nodes in `hears[to]` (and itself).
    pub fn grudges(n: usize, kind: &'static str, hears: &[Vec<usize>]) -> Cut {
        let mut blocked = vec![true; n * n];
        for (to, heard) in hears.iter().enumerate() {
            blocked[to * n + to] = false;
            for &from in heard {
                blocked[from * n + to] = false;
            }
        }
        let description = hears
            .iter()
            .enumerate()
            .map(|(to, h)| {
                format!(
                    "n{to}<-[{}]",
                    h.iter()
                        .map(|x| format!("n{x}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        Cut {
            n,
            blocked,
            kind,
            description,
        }
    }

    /// Whether a message from node `from` to node `to` is dropped.
    pub fn blocks(&self, from: usize, to: usize) -> bool {
        self.blocked[from * self.n + to]
    }

    /// Whether any link is cut.
    pub fn is_cut(&self) -> bool {
        self.blocked.iter().any(|&b| b)
    }
}

/// Message counts, Maelstrom's `:net` stats.
#[derive(Debug, Default)]
pub struct NetStats {
    /// Messages between a client and a node, both directions.
    pub client_msgs: AtomicU64,
    /// Messages sent by a node to a node (dropped ones included).
    pub server_msgs: AtomicU64,
    /// Node-to-node messages dropped by a cut.
    pub server_dropped: AtomicU64,
}

impl NetStats {
    fn bump(counter: &AtomicU64) {
        // Relaxed: a statistic, read after the run (see the module's # Orderings).
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter (after the run).
    pub fn get(counter: &AtomicU64) -> u64 {
        // Relaxed: see the module's # Orderings.
        counter.load(Ordering::Relaxed)
    }
}

/// The network between the node processes.
#[derive(Debug)]
pub struct Net {
    inputs: Vec<Sender<Input>>,
    cut: ArcSwap<Cut>,
    latency: LatencyModel,
    /// One generator per sending node; only that node's stdout thread draws from it.
    rngs: Vec<Mutex<SmallRng>>,
    delay: Option<DelayQueue>,
    /// Message counts.
    pub stats: NetStats,
}

impl Net {
    /// A network over the nodes whose stdin channels are `inputs`.
    pub fn new(inputs: Vec<Sender<Input>>, latency: LatencyModel, seed: u64) -> Net {
        let n = inputs.len();
        let delay = if latency.is_zero() {
            None
        } else {
            Some(DelayQueue::start(inputs.clone()))
        };
        let rngs = (0..n)
            .map(|i| {
                Mutex::new(SmallRng::seed_from_u64(
                    seed ^ 0x6e65_7400 ^ (i as u64).wrapping_mul(0x9e37_79b9),
                ))
            })
            .collect();
        Net {
            inputs,
            cut: ArcSwap::from_pointee(Cut::healed(n)),
            latency,
            rngs,
            delay,
            stats: NetStats::default(),
        }
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.inputs.len()
    }

    /// Sends a line (ending in `\n`) from a client to node `to`: no latency, never cut.
    pub fn send_client(&self, to: usize, line: Vec<u8>) {
        NetStats::bump(&self.stats.client_msgs);
        let _ = self.inputs[to].send(Input::Line(line));
    }

    /// Counts a message a node addressed to a client (the router delivers it).
    pub fn count_client_reply(&self) {
        NetStats::bump(&self.stats.client_msgs);
    }

    /// Sends a line (ending in `\n`) from node `from` to node `to`, subject to the cut and the latency.
    pub fn send_server(&self, from: usize, to: usize, line: Vec<u8>) {
        NetStats::bump(&self.stats.server_msgs);
        if self.cut.load().blocks(from, to) {
            NetStats::bump(&self.stats.server_dropped);
            return;
        }
        match &self.delay {
            None => {
                let _ = self.inputs[to].send(Input::Line(line));
            }
            Some(queue) => {
                let delay = {
                    let mut rng = lock(&self.rngs[from]);
                    self.latency.sample(&mut *rng)
                };
                queue.push(delay, to, line);
            }
        }
    }

    /// Installs a cut (or [`Cut::healed`]).
    pub fn set_cut(&self, cut: Cut) {
        self.cut.store(Arc::new(cut));
    }

    /// Heals every link.
    pub fn heal(&self) {
        self.set_cut(Cut::healed(self.node_count()));
    }

    /// Stops the delay thread (messages still queued are dropped).
    pub fn shutdown(&self) {
        if let Some(q) = &self.delay {
            q.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_cut_both_ways_and_keep_inside_links() {
        let cut = Cut::components(3, "one", &[vec![1], vec![0, 2]]);
        assert!(cut.blocks(0, 1) && cut.blocks(1, 0) && cut.blocks(2, 1));
        assert!(!cut.blocks(0, 2) && !cut.blocks(2, 0) && !cut.blocks(1, 1));
        assert_eq!(cut.description, "[n1] | [n0 n2]");
        assert!(!Cut::healed(3).is_cut());
    }

    #[test]
    fn client_traffic_ignores_cuts_and_server_traffic_is_dropped_across_them() {
        let (tx0, rx0) = crossbeam_channel::unbounded();
        let (tx1, rx1) = crossbeam_channel::unbounded();
        let net = Net::new(vec![tx0, tx1], LatencyModel::none(), 1);
        net.set_cut(Cut::components(2, "one", &[vec![0], vec![1]]));
        net.send_server(0, 1, b"x\n".to_vec());
        net.send_client(1, b"c\n".to_vec());
        assert!(matches!(rx1.try_recv(), Ok(Input::Line(l)) if l == b"c\n"));
        assert!(rx1.try_recv().is_err());
        net.heal();
        net.send_server(1, 0, b"y\n".to_vec());
        assert!(matches!(rx0.try_recv(), Ok(Input::Line(l)) if l == b"y\n"));
        assert_eq!(NetStats::get(&net.stats.server_msgs), 2);
        assert_eq!(NetStats::get(&net.stats.server_dropped), 1);
        assert_eq!(NetStats::get(&net.stats.client_msgs), 1);
    }
}
