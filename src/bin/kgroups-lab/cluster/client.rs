//! A Maelstrom client: an id `cN`, bound to one node, numbering its requests from 1 and waiting for the
//! reply whose `in_reply_to` matches (replies that match nothing are dropped, as Maelstrom does).

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::{Map, Value};

use super::router::Router;
use crate::sync::Arc;

/// Maelstrom's error codes that are definite: the operation certainly did not happen.
pub fn is_definite(code: i64) -> bool {
    matches!(code, 1 | 10 | 11 | 12 | 14 | 20 | 21 | 22 | 30)
}

/// Why an RPC did not return a `*_ok` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcError {
    /// No reply within the client's timeout (indefinite).
    Timeout,
    /// An `error` reply.
    Error {
        /// Maelstrom's error code.
        code: i64,
        /// The node's explanation.
        text: String,
    },
    /// A reply that breaks the protocol (indefinite); the text says how.
    Malformed(String),
}

impl RpcError {
    /// Whether the operation certainly did not happen.
    pub fn is_definite(&self) -> bool {
        matches!(self, RpcError::Error { code, .. } if is_definite(*code))
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::Timeout => write!(f, "timeout"),
            RpcError::Error { code, text } => write!(f, "error {code}: {text}"),
            RpcError::Malformed(why) => write!(f, "malformed reply: {why}"),
        }
    }
}

/// A reply body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The whole body, `type`, `in_reply_to` and `msg_id` included.
    pub body: Map<String, Value>,
}

impl Reply {
    /// The body's `type`.
    pub fn typ(&self) -> &str {
        self.body.get("type").and_then(Value::as_str).unwrap_or("")
    }

    /// Checks the body against a closed schema: only `type`, `in_reply_to`, `msg_id` and `fields`.
    pub fn expect_only(&self, fields: &[&str]) -> Result<(), String> {
        for k in self.body.keys() {
            if !matches!(k.as_str(), "type" | "in_reply_to" | "msg_id")
                && !fields.contains(&k.as_str())
            {
                return Err(format!("`{}` has unexpected field `{k}`", self.typ()));
            }
        }
        Ok(())
    }

    /// A required non-negative integer field.
    pub fn u64_field(&self, name: &str) -> Result<u64, String> {
        match self.body.get(name) {
            Some(v) => v.as_u64().ok_or_else(|| {
                format!("`{}`.{name} is not a non-negative integer: {v}", self.typ())
            }),
            None => Err(format!("`{}` lacks `{name}`", self.typ())),
        }
    }
}

/// One client connection.
#[derive(Debug)]
pub struct Client {
    num: u64,
    name: String,
    node: usize,
    node_id: String,
    router: Arc<Router>,
    inbox: Receiver<Vec<u8>>,
    next_msg_id: u64,
    timeout: Duration,
}

impl Client {
    /// Opens a new client (a fresh `cN`) bound to node `node`, with RPC timeout `timeout`.
    pub fn open(router: &Arc<Router>, node: usize, timeout: Duration) -> Client {
        let (num, inbox) = router.open_client();
        Client {
            num,
            name: format!("c{num}"),
            node,
            node_id: router.node_ids()[node].clone(),
            router: Arc::clone(router),
            inbox,
            next_msg_id: 1,
            timeout,
        }
    }

    /// The client's number (N of `cN`), which checkers use as its process id.
    pub fn num(&self) -> u64 {
        self.num
    }

    /// The client's id, `cN`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The index of the node this client talks to.
    pub fn node(&self) -> usize {
        self.node
    }

    /// Sends a request (a JSON object with `type`; `msg_id` is added) and returns its `msg_id`.
    pub fn send(&mut self, mut body: Map<String, Value>) -> u64 {
        let msg_id = self.next_msg_id;
        self.next_msg_id += 1;
        body.insert("msg_id".into(), Value::from(msg_id));
        let env = serde_json::json!({"src": self.name, "dest": self.node_id, "body": body});
        let mut line = serde_json::to_vec(&env).expect("a JSON value serializes");
        line.push(b'\n');
        self.router.net().send_client(self.node, line);
        msg_id
    }

    /// Waits until `deadline` for the reply to `msg_id`.
    pub fn await_reply(&mut self, msg_id: u64, deadline: Instant) -> Result<Reply, RpcError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.inbox.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return Err(RpcError::Timeout)
                }
            };
            let mut env: Value = match serde_json::from_slice(&line) {
                Ok(v) => v,
                Err(_) => continue, // the router only delivers valid messages
            };
            let Some(Value::Object(body)) = env.get_mut("body").map(Value::take) else {
                continue;
            };
            if body.get("in_reply_to").and_then(Value::as_u64) != Some(msg_id) {
                continue; // matches nothing outstanding: dropped, as Maelstrom does
            }
            if body.get("type").and_then(Value::as_str) == Some("error") {
                let code = body.get("code").and_then(Value::as_i64);
                let text = body
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                return match code {
                    Some(code) => Err(RpcError::Error { code, text }),
                    None => Err(RpcError::Malformed(format!(
                        "error without an integer code: {}",
                        Value::Object(body)
                    ))),
                };
            }
            return Ok(Reply { body });
        }
    }

    /// Sends a request and waits for its reply, up to the client's timeout.
    pub fn call(&mut self, body: Value) -> Result<Reply, RpcError> {
        let Value::Object(body) = body else {
            panic!("a request body is a JSON object")
        };
        let deadline = Instant::now() + self.timeout;
        let msg_id = self.send(body);
        self.await_reply(msg_id, deadline)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.router.close_client(self.num);
    }
}
