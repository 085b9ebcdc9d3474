//! The in-process cluster harness of the cluster tests: several `Node`s wired by a tiny router
//! that can cut links, with the cluster timer ([`Node::tick`]) called at chosen times so retries,
//! give-ups and replication run without sleeping.
#![allow(dead_code)]

use kgroups::broker::Config;
use kgroups::maelstrom::Node;
use serde_json::{json, Value};
use std::collections::{HashSet, VecDeque};

/// Nodes `n0…`, clients `c…`, and the messages between them.
pub struct Net {
    pub nodes: Vec<Node>,
    /// Cut links (from, to): messages on them are dropped.
    pub cut: HashSet<(usize, usize)>,
    pub queue: VecDeque<(usize, String)>,
    /// Replies that reached clients.
    pub replies: Vec<Value>,
    /// Messages between nodes delivered (and dropped).
    pub server_msgs: usize,
    pub dropped: usize,
    next_id: u64,
}

pub fn node_index(id: &str) -> Option<usize> {
    id.strip_prefix('n')?.parse().ok()
}

impl Net {
    pub fn new(n: usize) -> Net {
        let mut net = Net {
            nodes: (0..n)
                .map(|_| {
                    Node::new(Config {
                        default_partitions: 4,
                        ..Config::default()
                    })
                })
                .collect(),
            cut: HashSet::new(),
            queue: VecDeque::new(),
            replies: Vec::new(),
            server_msgs: 0,
            dropped: 0,
            next_id: 1,
        };
        let ids: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        for i in 0..n {
            let r = net.call(
                i,
                json!({"type": "init", "node_id": format!("n{i}"), "node_ids": ids}),
            );
            assert_eq!(r["type"], "init_ok");
        }
        net
    }

    /// Feeds one line to node `i` and routes what it writes.
    pub fn feed(&mut self, i: usize, line: &str) {
        let mut out = Vec::new();
        self.nodes[i].handle(line.as_bytes(), &mut out);
        self.route(i, &out);
    }

    pub fn route(&mut self, from: usize, out: &[u8]) {
        for line in std::str::from_utf8(out).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let dest = v["dest"].as_str().unwrap();
            match node_index(dest) {
                Some(to) => {
                    self.server_msgs += 1;
                    if self.cut.contains(&(from, to)) {
                        self.dropped += 1;
                    } else {
                        self.queue.push_back((to, line.to_string()));
                    }
                }
                None => self.replies.push(v),
            }
        }
    }

    /// Delivers until nothing is in flight.
    pub fn run(&mut self) {
        while let Some((to, line)) = self.queue.pop_front() {
            self.feed(to, &line);
        }
    }

    /// Runs every node's cluster timer as if `now` ms had passed on its clock.
    pub fn tick(&mut self, now: u64) {
        for i in 0..self.nodes.len() {
            let mut out = Vec::new();
            self.nodes[i].tick(now, &mut out);
            self.route(i, &out);
        }
        self.run();
    }

    /// Runs every node's cluster timer at `now` and queues what they send, delivering nothing.
    pub fn tick_held(&mut self, now: u64) {
        for i in 0..self.nodes.len() {
            let mut out = Vec::new();
            self.nodes[i].tick(now, &mut out);
            self.route(i, &out);
        }
    }

    /// Sends a client request to node `i` without delivering anything; returns its msg_id.
    pub fn send(&mut self, i: usize, client: &str, mut body: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        body["msg_id"] = json!(id);
        let line = json!({"src": client, "dest": format!("n{i}"), "body": body}).to_string();
        self.feed(i, &line);
        id
    }

    /// The reply to request `id`, if it came.
    pub fn reply(&self, id: u64) -> Option<&Value> {
        self.replies
            .iter()
            .find(|r| r["body"]["in_reply_to"] == json!(id))
            .map(|r| &r["body"])
    }

    /// A request from client `c1` to node `i`, delivered to completion.
    pub fn call(&mut self, i: usize, body: Value) -> Value {
        self.call_as(i, "c1", body)
    }

    pub fn call_as(&mut self, i: usize, client: &str, body: Value) -> Value {
        let id = self.send(i, client, body);
        self.run();
        self.reply(id)
            .unwrap_or_else(|| panic!("no reply to {id}"))
            .clone()
    }

    pub fn isolate(&mut self, i: usize) {
        for j in 0..self.nodes.len() {
            if j != i {
                self.cut.insert((i, j));
                self.cut.insert((j, i));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// How many records partition `p` of the default topic holds on node `i`.
    pub fn held(&self, i: usize, p: u32) -> u64 {
        self.nodes[i].broker().default_topic().partitions()[p as usize].end()
    }
}

/// The README's timing of forwards: a batch is resent after this long without an answer …
pub const RETRY_MS: u64 = 500;
/// … and given up this long after it was accepted.
pub const GIVE_UP_MS: u64 = 3000;

/// Kafka's `toPositive(murmur2(name))`, the hash of the README's placement.
fn place(name: &str) -> u64 {
    u64::from(kgroups::partitioner::to_positive(
        kgroups::partitioner::murmur2(name.as_bytes()),
    ))
}

/// The README's placement: the leader of partition `p` of `topic` among `n` nodes.
pub fn leader(n: usize, topic: &str, p: u32) -> usize {
    ((place(topic) + u64::from(p)) % n as u64) as usize
}

/// The README's placement: the coordinator of `group` among `n` nodes.
pub fn coordinator(n: usize, group: &str) -> usize {
    (place(group) % n as u64) as usize
}

/// The README's placement: the home of `topic` (the node that creates it) among `n` nodes.
pub fn home(n: usize, topic: &str) -> usize {
    (place(topic) % n as u64) as usize
}

/// The leader of `key`'s partition of the default topic, and the partition.
pub fn leader_of(net: &Net, key: &str) -> (usize, u32) {
    let t = net.nodes[0].broker().default_topic();
    let p = kgroups::partitioner::partition_for(key.as_bytes(), t.partition_count());
    (leader(net.nodes.len(), "default", p), p)
}

/// A key whose leader is `want`.
pub fn key_led_by(net: &Net, want: usize) -> String {
    (0..1000)
        .map(|i| format!("k{i}"))
        .find(|k| leader_of(net, k).0 == want)
        .expect("some key has that leader")
}

/// A group coordinated by `want`.
pub fn group_on(net: &Net, want: usize) -> String {
    (0..1000)
        .map(|i| format!("g{i}"))
        .find(|g| coordinator(net.nodes.len(), g) == want)
        .expect("some group has that coordinator")
}

/// A topic name whose home (the node that decides its partition count) is `want`.
pub fn topic_homed(net: &Net, want: usize, prefix: &str) -> String {
    (0..1000)
        .map(|i| format!("{prefix}{i}"))
        .find(|t| home(net.nodes.len(), t) == want)
        .expect("some topic has that home")
}
