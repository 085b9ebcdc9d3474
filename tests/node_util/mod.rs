//! Drives the built `kgroups` binary over its pipes, as Maelstrom does.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a test waits for one reply before it fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Lines read while waiting for another reply.
    stash: VecDeque<String>,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<JoinHandle<()>>,
    next_id: HashMap<String, u64>,
}

impl Node {
    /// Starts the node with `args` and the given extra environment.
    pub fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Node {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kgroups"));
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("KGROUPS_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn kgroups");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Node {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            stash: VecDeque::new(),
            stderr,
            stderr_thread: Some(stderr_thread),
            next_id: HashMap::new(),
        }
    }

    pub fn spawn(args: &[&str]) -> Node {
        Node::spawn_env(args, &[])
    }

    /// Starts the node and sends `init` for `n1`.
    pub fn started(args: &[&str]) -> Node {
        let mut n = Node::spawn(args);
        let r = n.rpc(
            "c0",
            json!({"type": "init", "node_id": "n1", "node_ids": ["n1"]}),
        );
        assert_eq!(r["type"], "init_ok");
        n
    }

    /// Writes raw bytes (a newline is not added).
    pub fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// Writes one line (adds the newline).
    pub fn send_line(&mut self, line: &str) {
        let mut b = line.as_bytes().to_vec();
        b.push(b'\n');
        self.write(&b);
    }

    /// The next output line, waiting up to [`TIMEOUT`].
    pub fn recv_line(&mut self) -> String {
        if let Some(l) = self.stash.pop_front() {
            return l;
        }
        match self.lines.recv_timeout(TIMEOUT) {
            Ok(l) => l,
            Err(e) => panic!("no output line ({e:?}); stderr:\n{}", self.stderr()),
        }
    }

    /// Whether a line arrives within `wait`.
    pub fn try_recv_line(&mut self, wait: Duration) -> Option<String> {
        if let Some(l) = self.stash.pop_front() {
            return Some(l);
        }
        match self.lines.recv_timeout(wait) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Takes the next `msg_id` of client `src` (from 1, as Maelstrom clients count).
    pub fn next_id(&mut self, src: &str) -> u64 {
        let id = self.next_id.entry(src.to_string()).or_insert(0);
        *id += 1;
        *id
    }

    /// Sends `body` from `src` to `n1` with a fresh `msg_id`; returns the raw reply line.
    pub fn rpc_raw(&mut self, src: &str, mut body: Value) -> String {
        let id = self.next_id(src);
        body["msg_id"] = json!(id);
        let line = json!({"src": src, "dest": "n1", "body": body}).to_string();
        self.send_line(&line);
        self.reply_to(src, id)
    }

    /// Waits for the reply to `src`'s request `id`, stashing other lines.
    pub fn reply_to(&mut self, src: &str, id: u64) -> String {
        let mut skipped = Vec::new();
        loop {
            let line = self.recv_line();
            let v: Value = serde_json::from_str(&line).expect("output is JSON");
            if v["dest"] == src && v["body"]["in_reply_to"] == id {
                for l in skipped.into_iter().rev() {
                    self.stash.push_front(l);
                }
                return line;
            }
            skipped.push(line);
        }
    }

    /// Sends `body` from `src`; returns the reply body.
    pub fn rpc(&mut self, src: &str, body: Value) -> Value {
        let line = self.rpc_raw(src, body);
        let v: Value = serde_json::from_str(&line).unwrap();
        v["body"].clone()
    }

    /// Like [`Node::rpc`], and asserts the reply is `<type>_ok`.
    pub fn ok(&mut self, src: &str, body: Value) -> Value {
        let ty = body["type"].as_str().unwrap().to_string();
        let r = self.rpc(src, body);
        assert_eq!(r["type"], format!("{ty}_ok"), "reply: {r}");
        r
    }

    /// What the node logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Closes stdin and waits for the node to exit; returns its status and its whole stderr.
    pub fn close(mut self) -> (ExitStatus, String) {
        drop(self.stdin.take());
        let status = wait_timeout(&mut self.child);
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        (status, self.stderr())
    }

    /// Waits for the node to exit on its own (stdin stays open); returns its status and its whole
    /// stderr. Fails if it is still running after [`TIMEOUT`].
    pub fn wait_exit(mut self) -> (ExitStatus, String) {
        let status = wait_timeout(&mut self.child);
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        (status, self.stderr())
    }

    /// Remaining output lines after stdin is closed.
    pub fn close_and_drain(mut self) -> (ExitStatus, Vec<String>) {
        drop(self.stdin.take());
        let mut rest: Vec<String> = self.stash.drain(..).collect();
        while let Ok(l) = self.lines.recv_timeout(TIMEOUT) {
            rest.push(l);
        }
        let status = wait_timeout(&mut self.child);
        (status, rest)
    }
}

fn wait_timeout(child: &mut Child) -> ExitStatus {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("kgroups did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The keys of a JSON object, sorted.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}

/// A JSON array of integers as a sorted vector.
pub fn ints(v: &Value) -> Vec<u64> {
    let mut out: Vec<u64> = v
        .as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_u64().expect("an integer"))
        .collect();
    out.sort_unstable();
    out
}
