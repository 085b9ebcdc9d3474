//! Requests every node answers: `list_groups` (merged) and `create_topic` (created at the
//! topic's home first, then on every node).

use super::forward::{Item, Outcome};
use super::{body_text, is_reply, Cluster, GIVE_UP_MS};
use crate::loom::{lock, Mutex, StdArc as Arc};
use crate::maelstrom::node::{Node, OwnedReplyTo, ReplyTo};
use crate::maelstrom::wire::{Code, JsonOut, Message, WireError};
use std::collections::BTreeSet;

/// Fan-out state of `list_groups` or `create_topic`.
pub(super) struct Gather {
    left: usize,
    names: BTreeSet<String>,
    failed: Option<WireError>,
    client: OwnedReplyTo,
    list: bool,
}

impl Node {
    /// `create_topic` on a node that is not the topic's home: the home creates it first (so
    /// that it alone decides every topic's partition count); once it has, this node creates it
    /// and fans the request out to every peer, as the home would have.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_at_home(
        &self,
        c: &Cluster,
        home: usize,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        name: String,
        n: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let body: Box<str> = body_text(msg.body.line())
            .ok_or_else(|| WireError::new(Code::MalformedRequest, "no body"))?
            .into();
        let src: Box<str> = msg.src.raw().into();
        let client = to.detach();
        let item = Item {
            src: src.clone(),
            body: body.clone(),
            deadline: self.now() + GIVE_UP_MS,
            done: Box::new(move |node, outcome, out| {
                let created =
                    matches!(&outcome, Outcome::Reply(r) if is_reply(r, "create_topic_ok"));
                match node.cluster() {
                    Some(c) if created => {
                        // The home's count is this request's: a conflict here is the home's
                        // answer too, so it cannot happen.
                        let _ = node.broker.topics().create(&name, n);
                        if let Err(e) =
                            node.fan_out_parts(c, &src, &body, client.clone(), false, out)
                        {
                            node.error(&client.borrow(), &e, out);
                        }
                    }
                    // The home's error, or no answer: as for any forwarded request.
                    _ => node.relay(&client, false, outcome, out),
                }
            }),
        };
        self.forward(c, home, item, out);
        Ok(())
    }

    /// Sends `list_groups` (merged) or `create_topic` (applied) to every peer; replies to the
    /// client when all have answered or given up.
    pub(super) fn fan_out(
        &self,
        c: &Cluster,
        msg: &Message<'_>,
        to: &ReplyTo<'_>,
        list: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let body = body_text(msg.body.line())
            .ok_or_else(|| WireError::new(Code::MalformedRequest, "no body"))?;
        self.fan_out_parts(c, msg.src.raw(), body, to.detach(), list, out)
    }

    /// [`Node::fan_out`] of the request `body` from client `src`, answering `client`.
    pub(super) fn fan_out_parts(
        &self,
        c: &Cluster,
        src: &str,
        body: &str,
        client: OwnedReplyTo,
        list: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let names = if list {
            self.broker.groups().list_groups().into_iter().collect()
        } else {
            BTreeSet::new()
        };
        let gather = Arc::new(Mutex::new(Gather {
            left: c.ids.len() - 1,
            names,
            failed: None,
            client,
            list,
        }));
        let deadline = self.now() + GIVE_UP_MS;
        for peer in (0..c.ids.len()).filter(|&p| p != c.me) {
            let g = gather.clone();
            let item = Item {
                src: src.into(),
                body: body.into(),
                deadline,
                done: Box::new(move |node, outcome, out| node.gathered(&g, outcome, out)),
            };
            self.forward(c, peer, item, out);
        }
        Ok(())
    }

    pub(super) fn gathered(&self, g: &Mutex<Gather>, outcome: Outcome<'_>, out: &mut Vec<u8>) {
        let mut g = lock(g);
        // A merged read did not happen; a creation did happen here, maybe not everywhere.
        let code = if g.list {
            Code::TemporarilyUnavailable
        } else {
            Code::Crash
        };
        let failure = |text: &str| WireError::new(code, text.to_string());
        match outcome {
            Outcome::Reply(body) => {
                let mut ok = false;
                for (k, v) in body.entries() {
                    match k.raw() {
                        "type" => ok = v.as_str().is_some_and(|t| t.raw().ends_with("_ok")),
                        "groups" => {
                            for n in v.items().filter_map(|n| n.as_str()) {
                                g.names.insert(n.decode().into_owned());
                            }
                        }
                        _ => {}
                    }
                }
                if !ok && g.failed.is_none() {
                    g.failed = Some(failure(&format!("a peer refused it: {}", body.text())));
                }
            }
            Outcome::GaveUp { .. } => {
                if g.failed.is_none() {
                    g.failed = Some(failure("a node did not answer in time"));
                }
            }
        }
        g.left -= 1;
        if g.left > 0 {
            return;
        }
        let to = g.client.borrow();
        if let Some(e) = &g.failed {
            return self.error(&to, e, out);
        }
        self.ok(&to, out);
        if g.list {
            out.key("groups").push(b'[');
            for (i, n) in g.names.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.string(n);
            }
            out.push(b']');
        }
        self.done(&to, out);
    }
}
