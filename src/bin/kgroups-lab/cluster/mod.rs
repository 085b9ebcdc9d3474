//! The cluster: N node processes, their `init`, the router between them, and clients.
//!
//! - [`process`]: one node process and its pipes (reusable by the throughput mode).
//! - [`router`]: routes every line a node writes by its `dest`, reporting bad lines.
//! - [`client`]: a Maelstrom client `cN` with one request at a time and a timeout.

pub mod client;
pub mod process;
pub mod router;

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use serde_json::json;

use self::client::{Client, RpcError};
use self::process::{Input, NodeProcess};
use self::router::Router;
use crate::net::latency::LatencyModel;
use crate::net::Net;
use crate::sync::Arc;

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The node binary.
    pub bin: PathBuf,
    /// Extra arguments for every node.
    pub args: Vec<String>,
    /// Number of nodes.
    pub nodes: usize,
    /// Node-to-node latency.
    pub latency: LatencyModel,
    /// Seed for the network's random choices.
    pub seed: u64,
    /// Where node stderr goes (`<dir>/nK.log`); discarded if `None`.
    pub log_dir: Option<PathBuf>,
    /// How long each node may take to answer `init` (Maelstrom: 10 s).
    pub init_timeout: Duration,
}

/// A running cluster.
#[derive(Debug)]
pub struct Cluster {
    router: Arc<Router>,
    net: Arc<Net>,
    inputs: Vec<crossbeam_channel::Sender<Input>>,
    procs: Vec<NodeProcess>,
}

impl Cluster {
    /// Spawns the nodes and initializes them (`init` from a fresh client per node, as Maelstrom does).
    /// Fails if a node cannot be spawned or does not answer `init_ok` in time.
    pub fn start(cfg: &ClusterConfig) -> Result<Cluster, String> {
        if cfg.nodes == 0 {
            return Err("--node-count must be at least 1".into());
        }
        if !cfg.bin.exists() {
            return Err(format!("node binary {} does not exist", cfg.bin.display()));
        }
        let node_ids: Vec<String> = (0..cfg.nodes).map(|i| format!("n{i}")).collect();
        let (inputs, receivers): (Vec<_>, Vec<_>) =
            (0..cfg.nodes).map(|_| process::input_channel()).unzip();
        let net = Arc::new(Net::new(inputs.clone(), cfg.latency, cfg.seed));
        let router = Arc::new(Router::new(node_ids.clone(), Arc::clone(&net)));
        if let Some(dir) = &cfg.log_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut cluster = Cluster {
            router: Arc::clone(&router),
            net,
            inputs,
            procs: Vec::new(),
        };
        for (i, rx) in receivers.into_iter().enumerate() {
            let log = cfg.log_dir.as_ref().map(|d| d.join(format!("n{i}.log")));
            let on_line = {
                let r = Arc::clone(&router);
                move |line: &[u8]| r.route(i, line)
            };
            let on_exit = {
                let r = Arc::clone(&router);
                move || r.node_exited(i)
            };
            match NodeProcess::spawn(
                &node_ids[i],
                &cfg.bin,
                &cfg.args,
                log.as_deref(),
                rx,
                on_line,
                on_exit,
            ) {
                Ok(p) => cluster.procs.push(p),
                Err(e) => {
                    cluster.stop();
                    return Err(format!("cannot start {} as n{i}: {e}", cfg.bin.display()));
                }
            }
        }
        if let Err(e) = cluster.init(&node_ids, cfg.init_timeout) {
            // Stopping joins the pipe threads, so each node's log holds all it wrote.
            cluster.stop();
            let mut why = e;
            if let Some(dir) = &cfg.log_dir {
                let before = why.len();
                for i in 0..cfg.nodes {
                    why.push_str(&log_tail(&dir.join(format!("n{i}.log")), i));
                }
                if why.len() == before {
                    why.push_str(&format!(
                        " (the nodes wrote nothing on stderr; logs in {})",
                        dir.display()
                    ));
                }
            } else {
                why.push_str(" (node logs are discarded: give --results to keep them)");
            }
            return Err(why);
        }
        Ok(cluster)
    }

    fn init(&self, node_ids: &[String], timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut pending = Vec::new();
        for (i, id) in node_ids.iter().enumerate() {
            let mut c = Client::open(&self.router, i, timeout);
            let body = json!({"type": "init", "node_id": id, "node_ids": node_ids});
            let serde_json::Value::Object(body) = body else {
                unreachable!()
            };
            let msg_id = c.send(body);
            pending.push((c, msg_id));
        }
        for (i, (mut c, msg_id)) in pending.into_iter().enumerate() {
            // Wait in slices, so that a node that exits is reported at once rather than at the deadline.
            let reply = loop {
                let slice = (Instant::now() + Duration::from_millis(100)).min(deadline);
                match c.await_reply(msg_id, slice) {
                    Err(RpcError::Timeout)
                        if Instant::now() < deadline && !self.router.has_exited(i) =>
                    {
                        continue
                    }
                    other => break other,
                }
            };
            match reply {
                Ok(r) if r.typ() == "init_ok" => {}
                Ok(r) => return Err(format!("n{i} answered init with `{}`", r.typ())),
                Err(e) => {
                    let why = if self.router.has_exited(i) {
                        "the process exited".to_string()
                    } else {
                        e.to_string()
                    };
                    return Err(format!("n{i} did not answer init: {why}"));
                }
            }
        }
        Ok(())
    }

    /// The router.
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// The network.
    pub fn net(&self) -> &Arc<Net> {
        &self.net
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.inputs.len()
    }

    /// Opens a fresh client bound to node `node`.
    pub fn open_client(&self, node: usize, timeout: Duration) -> Client {
        Client::open(&self.router, node, timeout)
    }

    /// Closes every node's stdin, waits briefly for them to exit (then kills them), and stops the
    /// network. Returns each node's exit status.
    pub fn stop(&mut self) -> Vec<Option<ExitStatus>> {
        self.router.stopping();
        for tx in &self.inputs {
            let _ = tx.send(Input::Close);
        }
        let statuses = self
            .procs
            .drain(..)
            .map(|p| p.stop(Duration::from_secs(2)))
            .collect();
        self.net.shutdown();
        statuses
    }
}

/// The last lines of node `i`'s log at `path`, with its path, for a startup failure: empty when
/// the log is empty.
fn log_tail(path: &std::path::Path, i: usize) -> String {
    const LINES: usize = 12;
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(LINES)..];
    let mut s = format!(
        "\n  n{i}'s stderr ({}), last {} lines:",
        path.display(),
        tail.len()
    );
    for l in tail {
        s.push_str("\n    ");
        s.push_str(l);
    }
    s
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.procs.is_empty() {
            self.stop();
        }
    }
}
