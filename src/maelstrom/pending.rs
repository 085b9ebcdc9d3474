//! Replies to the node's own requests (node-to-node traffic), routed by `in_reply_to`.
//!
//! A single node sends no requests, so the table stays empty; the cluster registers a callback per
//! request it sends with [`Node::request`](super::Node::request). A reply completes a request only
//! when both its `in_reply_to` and its `src` match: the request's number and the peer it was sent
//! to. Anything else — late, duplicated, addressed to a client id, or a forgery from another
//! sender carrying a live request's number — is logged and dropped, and the request stays
//! pending for its true answer. The node never answers a reply.

use super::Node;
use crate::loom::{lock, Mutex};
use crate::maelstrom::wire::Message;
use std::collections::HashMap;

/// What runs when the reply to one of the node's requests arrives: it gets the node, the reply and
/// the output buffer of the thread that handles it (to answer a deferred client request, say).
pub type OnReply = Box<dyn FnOnce(&Node, &Message<'_>, &mut Vec<u8>) + Send>;

/// One request waiting for its reply.
struct Waiting {
    /// The node the request was sent to (its decoded id): only it may answer.
    peer: Box<str>,
    on_reply: OnReply,
}

/// The node's requests still waiting for their replies.
#[derive(Default)]
pub struct Pending {
    map: Mutex<HashMap<u64, Waiting>>,
}

impl Pending {
    /// Waits for the reply of `peer` (its decoded id) to request `msg_id`.
    pub fn insert(&self, msg_id: u64, peer: &str, on_reply: OnReply) {
        let peer = peer.into();
        self.lock().insert(msg_id, Waiting { peer, on_reply });
    }

    /// Forgets request `msg_id` (e.g. after a timeout); returns whether it was waiting.
    pub fn cancel(&self, msg_id: u64) -> bool {
        self.lock().remove(&msg_id).is_some()
    }

    /// How many requests are waiting.
    #[cfg(all(test, not(loom)))]
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Runs the callback of the request that `msg` answers, if `msg` comes from the peer that
    /// request was sent to.
    pub fn complete(
        &self,
        node: &Node,
        in_reply_to: Option<u64>,
        msg: &Message<'_>,
        out: &mut Vec<u8>,
    ) {
        let src = msg.src.decode();
        let f = in_reply_to.and_then(|id| {
            let mut map = self.lock();
            match map.get(&id) {
                Some(w) if *w.peer == *src => map.remove(&id).map(|w| w.on_reply),
                _ => None,
            }
        });
        match f {
            Some(f) => f(node, msg, out),
            None => tracing::debug!(
                src = msg.src.raw(),
                in_reply_to,
                "dropped a reply that matches no request of this node to its sender"
            ),
        }
    }

    fn lock(&self) -> crate::loom::MutexGuard<'_, HashMap<u64, Waiting>> {
        lock(&self.map)
    }
}
