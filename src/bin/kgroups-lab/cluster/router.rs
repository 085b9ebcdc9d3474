//! The router: every line a node writes goes to the `dest` it names — another node (through the
//! simulated [`Net`]) or a client's mailbox. A line that is not a valid Maelstrom message, claims a
//! `src` other than its node, or names a destination that does not exist (or a client already closed)
//! is counted and reported with examples, never silently dropped.
//!
//! Envelope rules (Maelstrom's closed schema): exactly `src`, `dest`, `body` and an optional integer
//! `id`; `body` an object with a string `type` and, when present, integer `msg_id` / `in_reply_to`.
//!
//! # Orderings
//! `next_client` only hands out unique numbers (`Relaxed` is enough: uniqueness comes from the RMW
//! itself, and the mailbox a number names is published under the `clients` mutex). `stopping` is a flag
//! read to decide whether a node's exit is expected; `SeqCst` on both sides keeps the reasoning trivial
//! (it is touched once per node exit).

use std::borrow::Cow;
use std::collections::HashMap;

use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::net::Net;
use crate::sync::{lock, Arc, AtomicBool, AtomicU64, Mutex, Ordering};

/// Examples kept per node and kind of problem.
const MAX_EXAMPLES: usize = 5;

/// What went wrong with one node's output.
#[derive(Debug, Default, Clone, Serialize)]
pub struct NodeIssues {
    /// The node's id.
    pub node: String,
    /// Lines that are not a valid Maelstrom message.
    pub invalid_lines: u64,
    /// Messages whose `src` is not the node that wrote them.
    pub wrong_src: u64,
    /// Messages to a destination that never existed.
    pub unknown_dest: u64,
    /// Messages to a client that was already closed (Maelstrom stops reading such a node).
    pub closed_dest: u64,
    /// Whether the process ended before the lab stopped it.
    pub exited_early: bool,
    /// A few of the offending lines, with the reason.
    pub examples: Vec<String>,
}

impl NodeIssues {
    /// Whether anything is wrong.
    pub fn any(&self) -> bool {
        self.invalid_lines + self.wrong_src + self.unknown_dest + self.closed_dest > 0
            || self.exited_early
    }

    fn note(&mut self, reason: &str, line: &[u8]) {
        if self.examples.len() < MAX_EXAMPLES {
            let text = String::from_utf8_lossy(line);
            let mut shown: String = text.chars().take(200).collect();
            if text.chars().count() > 200 {
                shown.push('…');
            }
            self.examples.push(format!("{reason}: {shown}"));
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    src: Cow<'a, str>,
    #[serde(borrow)]
    dest: Cow<'a, str>,
    #[serde(borrow)]
    body: &'a RawValue,
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<u64>,
}

#[derive(Deserialize)]
struct BodyHead<'a> {
    #[serde(rename = "type", borrow)]
    #[allow(dead_code)]
    typ: Cow<'a, str>,
    #[serde(default)]
    #[allow(dead_code)]
    msg_id: Option<u64>,
    #[serde(default)]
    #[allow(dead_code)]
    in_reply_to: Option<u64>,
}

/// Routes node output to nodes and clients.
#[derive(Debug)]
pub struct Router {
    node_ids: Vec<String>,
    net: Arc<Net>,
    clients: Mutex<HashMap<u64, Sender<Vec<u8>>>>,
    next_client: AtomicU64,
    issues: Vec<Mutex<NodeIssues>>,
    stopping: AtomicBool,
}

/// Parses `n<k>` / `c<k>` ids.
fn parse_id(s: &str, prefix: u8) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != prefix || (b.len() > 2 && b[1] == b'0') {
        return None;
    }
    s[1..].parse().ok()
}

impl Router {
    /// A router for the nodes `node_ids` over `net`.
    pub fn new(node_ids: Vec<String>, net: Arc<Net>) -> Router {
        let issues = node_ids
            .iter()
            .map(|id| {
                Mutex::new(NodeIssues {
                    node: id.clone(),
                    ..Default::default()
                })
            })
            .collect();
        Router {
            node_ids,
            net,
            clients: Mutex::new(HashMap::new()),
            next_client: AtomicU64::new(0),
            issues,
            stopping: AtomicBool::new(false),
        }
    }

    /// The node ids, `n0 …`.
    pub fn node_ids(&self) -> &[String] {
        &self.node_ids
    }

    /// The network.
    pub fn net(&self) -> &Arc<Net> {
        &self.net
    }

    /// Opens a new client id (`c` + a counter never reused) and its mailbox.
    pub fn open_client(&self) -> (u64, Receiver<Vec<u8>>) {
        // Relaxed: see the module's # Orderings.
        let num = self.next_client.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = crossbeam_channel::unbounded();
        lock(&self.clients).insert(num, tx);
        (num, rx)
    }

    /// Closes a client: later messages to it are reported as sent to a closed client.
    pub fn close_client(&self, num: u64) {
        lock(&self.clients).remove(&num);
    }

    fn issue(&self, node: usize, f: impl FnOnce(&mut NodeIssues)) {
        f(&mut lock(&self.issues[node]));
    }

    /// Routes one line written by node `from` (without its newline).
    pub fn route(&self, from: usize, line: &[u8]) {
        let env: Envelope<'_> = match serde_json::from_slice(line) {
            Ok(env) => env,
            Err(e) => {
                let reason = format!("not a message ({e})");
                return self.issue(from, |i| {
                    i.invalid_lines += 1;
                    i.note(&reason, line)
                });
            }
        };
        let body = env.body.get();
        let head = if body.trim_start().starts_with('{') {
            serde_json::from_str::<BodyHead<'_>>(body)
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else {
            Err("not an object".to_string())
        };
        if let Err(e) = head {
            let reason = format!("bad body ({e})");
            return self.issue(from, |i| {
                i.invalid_lines += 1;
                i.note(&reason, line)
            });
        }
        if env.src != self.node_ids[from] {
            self.issue(from, |i| {
                i.wrong_src += 1;
                i.note("src is not the node that wrote it", line)
            });
        }
        if let Some(to) = parse_id(&env.dest, b'n') {
            if (to as usize) < self.node_ids.len() {
                let mut owned = Vec::with_capacity(line.len() + 1);
                owned.extend_from_slice(line);
                owned.push(b'\n');
                self.net.send_server(from, to as usize, owned);
                return;
            }
        } else if let Some(c) = parse_id(&env.dest, b'c') {
            let mailbox = lock(&self.clients).get(&c).cloned();
            if let Some(mailbox) = mailbox {
                self.net.count_client_reply();
                let _ = mailbox.send(line.to_vec());
                return;
            }
            // Relaxed: see the module's # Orderings.
            if c < self.next_client.load(Ordering::Relaxed) {
                return self.issue(from, |i| {
                    i.closed_dest += 1;
                    i.note("to a client already closed", line)
                });
            }
        }
        self.issue(from, |i| {
            i.unknown_dest += 1;
            i.note("unknown dest", line)
        })
    }

    /// Marks that the lab is stopping the nodes: exits from now on are expected.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Called when node `node`'s stdout closes.
    pub fn node_exited(&self, node: usize) {
        if !self.stopping.load(Ordering::SeqCst) {
            self.issue(node, |i| i.exited_early = true);
        }
    }

    /// Whether node `node` ended on its own.
    pub fn has_exited(&self, node: usize) -> bool {
        lock(&self.issues[node]).exited_early
    }

    /// A copy of every node's issues.
    pub fn issues(&self) -> Vec<NodeIssues> {
        self.issues.iter().map(|m| lock(m).clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::latency::LatencyModel;

    fn router(
        n: usize,
    ) -> (
        Router,
        Vec<crossbeam_channel::Receiver<crate::cluster::process::Input>>,
    ) {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| crossbeam_channel::unbounded()).unzip();
        let net = Arc::new(Net::new(txs, LatencyModel::none(), 0));
        (
            Router::new((0..n).map(|i| format!("n{i}")).collect(), net),
            rxs,
        )
    }

    #[test]
    fn routes_to_nodes_and_clients_and_reports_the_rest() {
        let (r, rxs) = router(2);
        let (c, inbox) = r.open_client();
        assert_eq!(c, 0);
        r.route(
            0,
            br#"{"src":"n0","dest":"n1","body":{"type":"x","msg_id":1}}"#,
        );
        assert!(rxs[1].try_recv().is_ok());
        r.route(
            1,
            br#"{"src":"n1","dest":"c0","body":{"type":"x_ok","in_reply_to":1},"id":4}"#,
        );
        assert!(inbox.try_recv().is_ok());
        r.route(0, b"garbage");
        r.route(
            0,
            br#"{"src":"n0","dest":"n1","body":{"type":"x"},"extra":1}"#,
        );
        r.route(
            0,
            br#"{"src":"n0","dest":"n1","body":{"type":"x","msg_id":1.0}}"#,
        );
        r.route(0, br#"{"src":"n0","dest":"c9","body":{"type":"x"}}"#);
        r.route(0, br#"{"src":"n0","dest":"n7","body":{"type":"x"}}"#);
        r.close_client(c);
        r.route(1, br#"{"src":"n1","dest":"c0","body":{"type":"late"}}"#);
        r.route(1, br#"{"src":"n0","dest":"n0","body":{"type":"x"}}"#);
        let issues = r.issues();
        assert_eq!(issues[0].invalid_lines, 3);
        assert_eq!(issues[0].unknown_dest, 2);
        assert_eq!(issues[1].closed_dest, 1);
        assert_eq!(issues[1].wrong_src, 1);
        assert!(issues[0].examples.iter().any(|e| e.contains("garbage")));
        assert!(!issues[0].exited_early);
        r.node_exited(0);
        r.stopping();
        r.node_exited(1);
        assert!(r.has_exited(0) && !r.has_exited(1));
    }
}
