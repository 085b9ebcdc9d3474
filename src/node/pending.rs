//! Replies to the node's own requests (node-to-node traffic), routed by `in_reply_to`.
//!
//! A single node sends no requests, so the table stays empty; the cluster registers a callback per
//! forwarded request with [`Node::request`](super::Node::request). A reply whose `in_reply_to`
//! matches nothing (late, duplicated, or addressed to a client id) is logged and dropped: the node
//! never answers a reply.

use super::Node;
use crate::loom::{lock, Mutex};
use crate::wire::Message;
use std::collections::HashMap;

/// What runs when the reply to one of the node's requests arrives: it gets the node, the reply and
/// the output buffer of the thread that handles it (to answer a deferred client request, say).
pub type OnReply = Box<dyn FnOnce(&Node, &Message<'_>, &mut Vec<u8>) + Send>;

/// The node's requests still waiting for their replies.
#[derive(Default)]
pub struct Pending {
    map: Mutex<HashMap<u64, OnReply>>,
}

impl Pending {
    /// Waits for the reply to request `msg_id`.
    pub fn insert(&self, msg_id: u64, f: OnReply) {
        self.lock().insert(msg_id, f);
    }

    /// Forgets request `msg_id` (e.g. after a timeout); returns whether it was waiting.
    pub fn cancel(&self, msg_id: u64) -> bool {
        self.lock().remove(&msg_id).is_some()
    }

    /// How many requests are waiting.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Runs the callback of the request that `msg` answers, if any.
    pub fn complete(
        &self,
        node: &Node,
        in_reply_to: Option<u64>,
        msg: &Message<'_>,
        out: &mut Vec<u8>,
    ) {
        let f = in_reply_to.and_then(|id| self.lock().remove(&id));
        match f {
            Some(f) => f(node, msg, out),
            None => tracing::debug!(
                src = msg.src.raw(),
                in_reply_to,
                "dropped a reply that matches no request of this node"
            ),
        }
    }

    fn lock(&self) -> crate::loom::MutexGuard<'_, HashMap<u64, OnReply>> {
        lock(&self.map)
    }
}
