//! Maelstrom's `kafka` workload: `send`, `poll`, `commit_offsets`, `list_committed_offsets`, plus
//! `send_batch` and `list_offsets`.
//!
//! The four Maelstrom replies carry exactly their documented fields (Maelstrom's schemas are closed).

use super::node::{key_bytes, opt_topic, Node, ReplyTo, POLL_KEY_MAX};
use crate::maelstrom::wire::{Body, Field, FieldError, JsonOut, Kind, WireError};
use crate::partition::Key;
use std::borrow::Cow;

/// Writes element `i` of `send_batch_ok`'s `offsets` array: `[partition, offset]`.
pub(crate) fn offset_pair(out: &mut Vec<u8>, i: usize, p: u32, o: u64) {
    if i > 0 {
        out.push(b',');
    }
    out.push(b'[');
    out.uint(u64::from(p)).push(b',');
    out.uint(o).push(b']');
}

/// Writes member `p` of `list_offsets_ok`'s `offsets` object: `"<partition>": log_end`.
pub(crate) fn log_end(out: &mut Vec<u8>, p: usize, end: u64) {
    if p > 0 {
        out.push(b',');
    }
    out.push(b'"');
    out.uint(p as u64).raw(b"\":");
    out.uint(end);
}

/// The name under which Maelstrom's per-key commit of `key` in `topic` is kept (and gossiped):
/// the key itself for the default topic (`None`), `"\0<topic>\0<key>"` for another. One map holds
/// them all without a collision: a topic name has no NUL, and a default-topic key that starts
/// with NUL is kept with one more in front, so the two forms never meet.
pub(crate) fn topic_key<'a>(topic: Option<&str>, key: &'a str) -> Cow<'a, str> {
    match topic {
        None if !key.starts_with('\0') => Cow::Borrowed(key),
        None => Cow::Owned(format!("\0{key}")),
        Some(t) => Cow::Owned(format!("\0{t}\0{key}")),
    }
}

impl Node {
    /// The topic a kafka-workload read or commit names: `None` for the default topic, else the
    /// existing topic (error 20 if there is none; a consumer never creates one).
    fn kafka_topic(
        &self,
        b: &Body<'_>,
    ) -> Result<Option<crate::loom::Arc<crate::topic::Topic>>, WireError> {
        let topic = opt_topic(b)?;
        match self.broker.other_than_default(topic.as_deref()) {
            None => Ok(None),
            Some(name) => self.consumer_topic(Some(name)).map(Some),
        }
    }

    /// `send {key, msg, topic?}` → `send_ok {offset}`.
    pub(crate) fn send(
        &self,
        b: &Body<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let value = b.value(Field::Msg)?.compact();
        let topic = opt_topic(b)?;
        let key = b.get(Field::Key).map(|s| key_bytes(s.value));
        let key = key.as_ref().map(|(kind, bytes)| Key { kind: *kind, bytes });
        let (_, offset) = self.with_topic(topic.as_deref(), |t| self.append(t, key, &value))?;
        self.ok(to, out);
        out.key("offset").uint(offset);
        self.done(to, out);
        Ok(())
    }

    /// `poll {offsets: {key: from}}` → `poll_ok {msgs: {key: [[offset, msg], …]}}`: per key, up to
    /// [`POLL_KEY_MAX`] of its records at offset ≥ `from`; keys with none are left out.
    pub(crate) fn poll(
        &self,
        b: &Body<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let offsets = b.object(Field::Offsets)?;
        let bad = || FieldError::invalid("offsets", "an object of non-negative integer offsets");
        let named = self.kafka_topic(b)?;
        let topic: &crate::topic::Topic = match &named {
            Some(t) => t,
            None => self.broker.default_topic(),
        };
        self.ok(to, out);
        out.key("msgs").push(b'{');
        let mut first_key = true;
        for (k, v) in offsets.entries() {
            let from = v.as_u64().ok_or_else(bad)?;
            let name = k.decode();
            let mark = out.len();
            if !first_key {
                out.push(b',');
            }
            out.raw_string(k.raw()).raw(b":[");
            let mut first = true;
            let key = Key::str(&name);
            let part = &topic.partitions()[topic.partition_of(Some(key)) as usize];
            let n = part.read_key(key, from, POLL_KEY_MAX, |r| {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.push(b'[');
                out.uint(r.offset).push(b',');
                super::node::write_value(out, &r);
                out.push(b']');
            });
            if n == 0 {
                out.truncate(mark);
            } else {
                out.push(b']');
                first_key = false;
            }
        }
        out.push(b'}');
        self.done(to, out);
        Ok(())
    }

    /// `commit_offsets {offsets: {key: offset}}` → `commit_offsets_ok {}`; kept per key as the
    /// maximum seen. The whole map is checked before anything is applied, so a malformed request
    /// changes nothing; a well-formed one is never refused.
    pub(crate) fn commit_offsets(
        &self,
        b: &Body<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let offsets = b.object(Field::Offsets)?;
        if offsets.entries().any(|(_, v)| v.as_u64().is_none()) {
            return Err(FieldError::invalid(
                "offsets",
                "an object of non-negative integer offsets",
            )
            .into());
        }
        let topic = self.kafka_topic(b)?;
        let topic = topic.as_ref().map(|t| t.name());
        for (k, v) in offsets.entries() {
            if let Some(o) = v.as_u64() {
                self.commit_key(&topic_key(topic, &k.decode()), o);
            }
        }
        self.ok(to, out);
        self.done(to, out);
        Ok(())
    }

    /// `list_committed_offsets {keys: […]}` → `list_committed_offsets_ok {offsets: {key: offset}}`,
    /// unknown keys left out. A key may be a string or (leniently) a number, read as its text.
    pub(crate) fn list_committed_offsets(
        &self,
        b: &Body<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let keys = b.array(Field::Keys)?;
        if keys
            .items()
            .any(|k| !matches!(k.kind(), Kind::Str | Kind::Int))
        {
            return Err(FieldError::invalid("keys", "an array of string keys").into());
        }
        let topic = self.kafka_topic(b)?;
        let topic = topic.as_ref().map(|t| t.name());
        self.ok(to, out);
        out.key("offsets").push(b'{');
        let mut first = true;
        for k in keys.items() {
            let (name, raw) = match k.as_str() {
                Some(s) => (s.decode(), s.raw()),
                None => (k.text().into(), k.text()),
            };
            if let Some(o) = self.broker.committed_key(&topic_key(topic, &name)) {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.raw_string(raw).push(b':');
                out.uint(o);
            }
        }
        out.push(b'}');
        self.done(to, out);
        Ok(())
    }

    /// `send_batch {msgs: [{key?, msg}, …], topic?}` → `send_batch_ok {offsets: [[partition,
    /// offset], …]}` in request order. Every record is checked before any is appended.
    pub(crate) fn send_batch(
        &self,
        b: &Body<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let msgs = b.array(Field::Msgs)?;
        let topic = opt_topic(b)?;
        let bad = || FieldError::invalid("msgs", "an array of {key, msg} objects");
        let mut records = Vec::new();
        for item in msgs.items() {
            if item.kind() != Kind::Object {
                return Err(bad().into());
            }
            let (mut key, mut value) = (None, None);
            for (k, v) in item.entries() {
                match Field::from_key(&k.decode()) {
                    Some((Field::Key, _)) if !v.is_null() => key = Some(key_bytes(v)),
                    Some((Field::Msg, _)) => value = Some(v.compact()),
                    _ => {}
                }
            }
            records.push((key, value.ok_or_else(bad)?));
        }
        self.with_topic(topic.as_deref(), |t| {
            self.ok(to, out);
            out.key("offsets").push(b'[');
            for (i, (key, value)) in records.iter().enumerate() {
                let key = key.as_ref().map(|(kind, bytes)| Key { kind: *kind, bytes });
                let (p, o) = self.append(t, key, value);
                offset_pair(out, i, p, o);
            }
            out.push(b']');
        })?;
        self.done(to, out);
        Ok(())
    }

    /// `list_offsets {topic?}` → `list_offsets_ok {offsets: {"<partition>": log_end}}`: every
    /// partition's log-end offset (the next offset it will assign).
    pub(crate) fn list_offsets(
        &self,
        b: &Body<'_>,
        to: &ReplyTo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let topic = self.topic_or_default(b)?;
        self.ok(to, out);
        out.key("offsets").push(b'{');
        for (p, part) in topic.partitions().iter().enumerate() {
            log_end(out, p, part.end());
        }
        out.push(b'}');
        self.done(to, out);
        Ok(())
    }
}
