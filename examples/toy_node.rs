//! A small, simple, correct Maelstrom node that kgroups-lab is proven against, and that can be broken
//! on purpose to prove the lab's checkers catch each fault.
//!
//! It serves Maelstrom's kafka workload (`send`, `poll {offsets}`, `commit_offsets`,
//! `list_committed_offsets`) and the consumer-group RPCs of the node contract (`create_topic`,
//! `subscribe`, `unsubscribe`, group `poll`, `commit`, `heartbeat`), with a range assignor, session
//! expiry, handoff from the committed offset and fencing of commits by non-owners.
//!
//! Several nodes: n0 holds all state; every other node forwards each client request to n0 over a
//! node-to-node message and relays the answer. A forward unanswered within `--forward-timeout-ms` (a
//! partition dropped it) is answered 11 (temporarily unavailable, definite) only for requests without
//! effects (kafka `poll`, `list_committed_offsets`), and 13 (crash, indefinite) otherwise, since it may
//! have happened. Late answers are dropped.
//!
//! `--fault KIND` (or `TOY_FAULT`) breaks it deliberately, every `--fault-every`-th time:
//! - `lose-write`: acknowledges a send at an offset it leaves empty (a later offset is stored);
//! - `skip-offset`: a kafka poll starting past 0 with at least two records ahead starts one record late;
//! - `duplicate`: stores a sent record twice (two offsets), acknowledging the first;
//! - `double-assign`: while a group has two members or more, also hands the first member's first
//!   partition to the second member, in the same generation (always, not every n-th time);
//! - `bad-lines`: after `init_ok`, writes a line that is not JSON and a message to a client that does
//!   not exist.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufWriter, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Fault {
    LoseWrite,
    SkipOffset,
    Duplicate,
    DoubleAssign,
    BadLines,
}

/// A toy Maelstrom kafka / consumer-group node for testing kgroups-lab.
#[derive(Debug, Parser)]
struct Args {
    /// Break the node on purpose.
    #[arg(long, env = "TOY_FAULT", value_enum)]
    fault: Option<Fault>,
    /// The fault strikes every n-th time.
    #[arg(long, env = "TOY_FAULT_EVERY", default_value_t = 10)]
    fault_every: u64,
    /// Partitions of a topic created implicitly (and of kafka's default topic).
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Most records per key (kafka poll) returned at once.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// How long a forwarded request may wait for n0's answer.
    #[arg(long, default_value_t = 1000)]
    forward_timeout_ms: u64,
}

type Body = Map<String, Value>;

/// An error reply: code and text.
struct Error(i64, String);

fn malformed(field: &str) -> Error {
    Error(12, format!("missing or ill-typed field `{field}`"))
}

fn field<'a>(b: &'a Body, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| b.get(*n))
}

fn str_field(b: &Body, names: &[&str]) -> Result<String, Error> {
    field(b, names)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| malformed(names[0]))
}

fn u64_field(b: &Body, names: &[&str]) -> Result<u64, Error> {
    field(b, names)
        .and_then(Value::as_u64)
        .ok_or_else(|| malformed(names[0]))
}

fn fnv1a(s: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// One partition: records by offset (`None`: an offset left empty) and each key's offsets.
#[derive(Default)]
struct Part {
    recs: Vec<Option<(String, Value)>>,
    by_key: HashMap<String, Vec<u64>>,
}

impl Part {
    fn push(&mut self, key: &str, msg: &Value) -> u64 {
        let off = self.recs.len() as u64;
        self.recs.push(Some((key.to_string(), msg.clone())));
        self.by_key.entry(key.to_string()).or_default().push(off);
        off
    }
}

struct Member {
    /// The client the member last polled or subscribed from. A new client means the consumer was
    /// restarted (say, after a reply was lost): it resumes from the committed offsets, so records
    /// handed to the lost reply are delivered again (at least once).
    client: String,
    last_seen: Instant,
    session: Duration,
    partitions: Vec<u32>,
    /// Partitions handed out twice by the `double-assign` fault.
    extra: Vec<u32>,
}

struct Group {
    topic: String,
    generation: u64,
    members: BTreeMap<String, Member>,
    owner: BTreeMap<u32, String>,
    positions: HashMap<u32, u64>,
    committed: HashMap<u32, u64>,
    shadow: HashMap<(String, u32), u64>,
}

struct Store {
    topics: HashMap<String, Vec<Part>>,
    kafka_committed: HashMap<String, u64>,
    groups: HashMap<String, Group>,
    args: Args,
    sends: u64,
    skippable_polls: u64,
}

const KAFKA_TOPIC: &str = "__kafka";

impl Store {
    fn strikes(&self, n: u64) -> bool {
        n.is_multiple_of(self.args.fault_every.max(1))
    }

    fn topic(&mut self, name: &str) -> &mut Vec<Part> {
        let n = self.args.partitions.max(1);
        self.topics
            .entry(name.to_string())
            .or_insert_with(|| (0..n).map(|_| Part::default()).collect())
    }

    fn append(&mut self, topic: &str, key: &str, msg: &Value) -> u64 {
        self.sends += 1;
        let strike = self.strikes(self.sends);
        let fault = self.args.fault;
        let parts = self.topic(topic);
        let i = (fnv1a(key) % parts.len() as u64) as usize;
        let part = &mut parts[i];
        match fault {
            Some(Fault::LoseWrite) if strike => {
                part.recs.push(None);
                part.recs.len() as u64 - 1
            }
            Some(Fault::Duplicate) if strike => {
                let off = part.push(key, msg);
                part.push(key, msg);
                off
            }
            _ => part.push(key, msg),
        }
    }

    fn handle(&mut self, src: &str, b: &Body) -> Result<Body, Error> {
        let typ = b.get("type").and_then(Value::as_str).unwrap_or("");
        let mut out = Body::new();
        match typ {
            "send" => {
                let key = str_field(b, &["key"])?;
                let msg = field(b, &["msg", "message", "value"])
                    .cloned()
                    .ok_or_else(|| malformed("msg"))?;
                let topic = match b.get("topic") {
                    Some(t) => t.as_str().ok_or_else(|| malformed("topic"))?.to_string(),
                    None => KAFKA_TOPIC.to_string(),
                };
                let off = self.append(&topic, &key, &msg);
                out.insert("type".into(), "send_ok".into());
                out.insert("offset".into(), off.into());
            }
            "poll" if field(b, &["group", "group_id"]).is_some() => return self.group_poll(src, b),
            "poll" => {
                let Some(Value::Object(offsets)) = b.get("offsets") else {
                    return Err(malformed("offsets"));
                };
                let mut msgs = Map::new();
                self.topic(KAFKA_TOPIC);
                for (k, from) in offsets {
                    let from = from.as_u64().ok_or_else(|| malformed("offsets"))?;
                    let (len, mut start) = {
                        let parts = &self.topics[KAFKA_TOPIC];
                        let part = &parts[(fnv1a(k) % parts.len() as u64) as usize];
                        let Some(idx) = part.by_key.get(k) else {
                            continue;
                        };
                        (idx.len(), idx.partition_point(|&o| o < from))
                    };
                    if self.args.fault == Some(Fault::SkipOffset) && from > 0 && len >= start + 2 {
                        self.skippable_polls += 1;
                        if self.strikes(self.skippable_polls) {
                            start += 1;
                        }
                    }
                    let parts = &self.topics[KAFKA_TOPIC];
                    let part = &parts[(fnv1a(k) % parts.len() as u64) as usize];
                    let pairs: Vec<Value> = part.by_key[k][start..]
                        .iter()
                        .take(self.args.batch)
                        .filter_map(|&o| part.recs[o as usize].as_ref().map(|(_, m)| json!([o, m])))
                        .collect();
                    if !pairs.is_empty() {
                        msgs.insert(k.clone(), Value::Array(pairs));
                    }
                }
                out.insert("type".into(), "poll_ok".into());
                out.insert("msgs".into(), Value::Object(msgs));
            }
            "commit_offsets" => {
                let Some(Value::Object(offsets)) = b.get("offsets") else {
                    return Err(malformed("offsets"));
                };
                for (k, o) in offsets {
                    let o = o.as_u64().ok_or_else(|| malformed("offsets"))?;
                    let slot = self.kafka_committed.entry(k.clone()).or_insert(o);
                    *slot = (*slot).max(o);
                }
                out.insert("type".into(), "commit_offsets_ok".into());
            }
            "list_committed_offsets" => {
                let Some(Value::Array(keys)) = b.get("keys") else {
                    return Err(malformed("keys"));
                };
                let mut offsets = Map::new();
                for k in keys.iter().filter_map(Value::as_str) {
                    if let Some(&o) = self.kafka_committed.get(k) {
                        offsets.insert(k.to_string(), o.into());
                    }
                }
                out.insert("type".into(), "list_committed_offsets_ok".into());
                out.insert("offsets".into(), Value::Object(offsets));
            }
            "create_topic" => {
                let topic = str_field(b, &["topic"])?;
                let n = u64_field(b, &["partitions"])?.clamp(1, 1024) as usize;
                if self.topics.contains_key(&topic) {
                    return Err(Error(21, format!("topic {topic} already exists")));
                }
                self.topics
                    .insert(topic, (0..n).map(|_| Part::default()).collect());
                out.insert("type".into(), "create_topic_ok".into());
            }
            "subscribe" => {
                let group = str_field(b, &["group", "group_id"])?;
                let consumer = consumer_of(src, b)?;
                let topic = match b.get("topic") {
                    Some(t) => t.as_str().ok_or_else(|| malformed("topic"))?.to_string(),
                    None => KAFKA_TOPIC.to_string(),
                };
                let session = b
                    .get("session_timeout_ms")
                    .and_then(Value::as_u64)
                    .unwrap_or(10_000);
                self.topic(&topic);
                self.group_entry(&group, &topic).topic = topic.clone();
                self.join(&group, &consumer, src, Duration::from_millis(session));
                let g = &self.groups[&group];
                out.insert("type".into(), "subscribe_ok".into());
                out.insert("partitions".into(), json!(owned(&g.members[&consumer])));
                out.insert("generation".into(), g.generation.into());
            }
            "unsubscribe" => {
                let group = str_field(b, &["group", "group_id"])?;
                let consumer = consumer_of(src, b)?;
                if let Some(g) = self.groups.get_mut(&group) {
                    if g.members.remove(&consumer).is_some() {
                        self.rebalance(&group);
                    }
                }
                out.insert("type".into(), "unsubscribe_ok".into());
            }
            "heartbeat" => {
                let group = str_field(b, &["group", "group_id"])?;
                let consumer = consumer_of(src, b)?;
                let g = self
                    .groups
                    .get_mut(&group)
                    .ok_or_else(|| Error(22, format!("unknown group {group}")))?;
                let m = g
                    .members
                    .get_mut(&consumer)
                    .ok_or_else(|| Error(22, format!("{consumer} is not a member")))?;
                m.last_seen = Instant::now();
                out.insert("type".into(), "heartbeat_ok".into());
                out.insert("partitions".into(), json!(owned(m)));
                out.insert("generation".into(), g.generation.into());
            }
            "commit" => {
                let group = str_field(b, &["group", "group_id"])?;
                let mut offsets = Vec::new();
                if let Some(Value::Object(m)) = b.get("offsets") {
                    for (p, o) in m {
                        let p: u32 = p.parse().map_err(|_| malformed("offsets"))?;
                        offsets.push((p, o.as_u64().ok_or_else(|| malformed("offsets"))?));
                    }
                } else {
                    let p = u64_field(b, &["partition"])? as u32;
                    offsets.push((p, u64_field(b, &["offset"])?));
                }
                let consumer =
                    field(b, &["consumer", "consumer_id", "member_id"]).and_then(Value::as_str);
                let g = self
                    .groups
                    .get_mut(&group)
                    .ok_or_else(|| Error(22, format!("unknown group {group}")))?;
                if let Some(c) = consumer {
                    for &(p, _) in &offsets {
                        let owns = g.members.get(c).is_some_and(|m| owned(m).contains(&p));
                        if !owns {
                            return Err(Error(
                                22,
                                format!("consumer {c} was fenced: it does not own partition {p}"),
                            ));
                        }
                    }
                }
                for (p, o) in offsets {
                    g.committed.insert(p, o);
                }
                out.insert("type".into(), "commit_ok".into());
            }
            _ => return Err(Error(10, format!("unsupported request type `{typ}`"))),
        }
        Ok(out)
    }

    fn group_entry(&mut self, group: &str, topic: &str) -> &mut Group {
        self.groups
            .entry(group.to_string())
            .or_insert_with(|| Group {
                topic: topic.to_string(),
                generation: 0,
                members: BTreeMap::new(),
                owner: BTreeMap::new(),
                positions: HashMap::new(),
                committed: HashMap::new(),
                shadow: HashMap::new(),
            })
    }

    /// Joins (or heartbeats) a member.
    fn join(&mut self, group: &str, consumer: &str, client: &str, session: Duration) {
        let g = self.groups.get_mut(group).expect("group exists");
        match g.members.get_mut(consumer) {
            Some(m) => {
                m.last_seen = Instant::now();
                m.session = session;
                if m.client != client {
                    m.client = client.to_string();
                    for &p in &m.partitions {
                        g.positions
                            .insert(p, g.committed.get(&p).copied().unwrap_or(0));
                    }
                    for &p in &m.extra {
                        g.shadow.insert(
                            (consumer.to_string(), p),
                            g.committed.get(&p).copied().unwrap_or(0),
                        );
                    }
                }
            }
            None => {
                let m = Member {
                    client: client.to_string(),
                    last_seen: Instant::now(),
                    session,
                    partitions: vec![],
                    extra: vec![],
                };
                g.members.insert(consumer.to_string(), m);
                self.rebalance(group);
            }
        }
    }

    /// A new generation: range assignment over the members in name order. A partition that changes
    /// owner restarts from the group's committed offset; a kept one keeps its position.
    fn rebalance(&mut self, group: &str) {
        let topic = self.groups[group].topic.clone();
        let n_parts = self.topic(&topic).len() as u32;
        let fault = self.args.fault;
        let g = self.groups.get_mut(group).expect("group exists");
        g.generation += 1;
        let names: Vec<String> = g.members.keys().cloned().collect();
        let mut owner = BTreeMap::new();
        if !names.is_empty() {
            let (q, r) = (
                n_parts as usize / names.len(),
                n_parts as usize % names.len(),
            );
            let mut p = 0u32;
            for (i, name) in names.iter().enumerate() {
                for _ in 0..q + usize::from(i < r) {
                    owner.insert(p, name.clone());
                    p += 1;
                }
            }
        }
        for p in 0..n_parts {
            if owner.get(&p) != g.owner.get(&p) {
                let from = g.committed.get(&p).copied().unwrap_or(0);
                g.positions.insert(p, from);
            }
        }
        for (name, m) in g.members.iter_mut() {
            m.partitions = owner
                .iter()
                .filter(|(_, o)| *o == name)
                .map(|(&p, _)| p)
                .collect();
            m.extra.clear();
        }
        g.owner = owner;
        g.shadow.clear();
        if fault == Some(Fault::DoubleAssign) && names.len() >= 2 {
            if let Some(&victim) = g.members[&names[0]].partitions.first() {
                let from = g.committed.get(&victim).copied().unwrap_or(0);
                g.members
                    .get_mut(&names[1])
                    .expect("member")
                    .extra
                    .push(victim);
                g.shadow.insert((names[1].clone(), victim), from);
            }
        }
    }

    fn group_poll(&mut self, src: &str, b: &Body) -> Result<Body, Error> {
        let group = str_field(b, &["group", "group_id"])?;
        let consumer = consumer_of(src, b)?;
        let max = field(b, &["max_messages", "max", "max_records"])
            .and_then(Value::as_u64)
            .unwrap_or(10) as usize;
        if !self.groups.contains_key(&group) {
            self.topic(KAFKA_TOPIC);
            self.group_entry(&group, KAFKA_TOPIC);
        }
        let session = self.groups[&group]
            .members
            .get(&consumer)
            .map_or(Duration::from_secs(10), |m| m.session);
        self.join(&group, &consumer, src, session);
        let topic = self.groups[&group].topic.clone();
        let parts = &self.topics[&topic];
        let g = self.groups.get_mut(&group).expect("group exists");
        let m = &g.members[&consumer];
        let mine = owned(m);
        let extra = m.extra.clone();
        let mut msgs = Vec::new();
        let mut progress = true;
        while msgs.len() < max && progress {
            progress = false;
            for &p in &mine {
                if msgs.len() >= max {
                    break;
                }
                let pos = if extra.contains(&p) {
                    g.shadow.entry((consumer.clone(), p)).or_insert(0)
                } else {
                    g.positions.entry(p).or_insert(0)
                };
                let recs = &parts[p as usize].recs;
                while (*pos as usize) < recs.len() {
                    let off = *pos;
                    *pos += 1;
                    if let Some((key, msg)) = &recs[off as usize] {
                        msgs.push(json!({"topic": topic, "partition": p, "offset": off, "key": key, "msg": msg}));
                        progress = true;
                        break;
                    }
                }
            }
        }
        let mut out = Body::new();
        out.insert("type".into(), "poll_ok".into());
        out.insert("msgs".into(), Value::Array(msgs));
        out.insert("partitions".into(), json!(mine));
        out.insert("generation".into(), g.generation.into());
        Ok(out)
    }

    /// Removes members whose session expired; rebalances their groups.
    fn expire(&mut self, now: Instant) {
        let mut changed = Vec::new();
        for (name, g) in &mut self.groups {
            let before = g.members.len();
            g.members
                .retain(|_, m| now.duration_since(m.last_seen) <= m.session);
            if g.members.len() != before {
                changed.push(name.clone());
            }
        }
        for name in changed {
            self.rebalance(&name);
        }
    }
}

fn owned(m: &Member) -> Vec<u32> {
    let mut v = m.partitions.clone();
    v.extend(m.extra.iter().copied());
    v
}

fn consumer_of(src: &str, b: &Body) -> Result<String, Error> {
    match field(b, &["consumer", "consumer_id", "member_id"]) {
        Some(v) => v
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| malformed("consumer")),
        None => Ok(src.to_string()),
    }
}

fn is_readonly(b: &Body) -> bool {
    match b.get("type").and_then(Value::as_str) {
        Some("list_committed_offsets") => true,
        Some("poll") => field(b, &["group", "group_id"]).is_none(),
        _ => false,
    }
}

struct Pending {
    client: String,
    client_msg_id: Value,
    readonly: bool,
    deadline: Instant,
}

struct Node {
    id: String,
    leader: Option<String>,
    next_msg_id: u64,
    store: Store,
    pending: HashMap<u64, Pending>,
    out: BufWriter<io::Stdout>,
}

impl Node {
    fn emit(&mut self, dest: &str, mut body: Body) {
        body.insert("msg_id".into(), self.next_msg_id.into());
        self.next_msg_id += 1;
        let line = json!({"src": self.id, "dest": dest, "body": body});
        let _ = serde_json::to_writer(&mut self.out, &line);
        let _ = self.out.write_all(b"\n");
    }

    fn reply(&mut self, dest: &str, in_reply_to: &Value, result: Result<Body, Error>) {
        let mut body = match result {
            Ok(b) => b,
            Err(Error(code, text)) => {
                let mut b = Body::new();
                b.insert("type".into(), "error".into());
                b.insert("code".into(), code.into());
                b.insert("text".into(), text.into());
                b
            }
        };
        body.insert("in_reply_to".into(), in_reply_to.clone());
        self.emit(dest, body);
    }

    fn handle_line(&mut self, line: &str) {
        let Ok(Value::Object(mut env)) = serde_json::from_str::<Value>(line) else {
            eprintln!("toy_node: skipping a line that is not a JSON object");
            return;
        };
        let Some(src) = env.get("src").and_then(Value::as_str).map(str::to_string) else {
            eprintln!("toy_node: skipping a message without src");
            return;
        };
        let Some(Value::Object(body)) = env.remove("body") else {
            return;
        };
        if self.id.is_empty() {
            if let Some(dest) = env.get("dest").and_then(Value::as_str) {
                self.id = dest.to_string();
            }
        }
        let msg_id = body.get("msg_id").cloned().unwrap_or(Value::Null);
        match body.get("type").and_then(Value::as_str).unwrap_or("") {
            "init" => {
                if let Some(id) = body.get("node_id").and_then(Value::as_str) {
                    self.id = id.to_string();
                }
                let ids: Vec<String> = body
                    .get("node_ids")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                self.leader = ids.first().cloned().filter(|l| *l != self.id);
                let mut ok = Body::new();
                ok.insert("type".into(), "init_ok".into());
                self.reply(&src, &msg_id, Ok(ok));
                if self.store.args.fault == Some(Fault::BadLines) {
                    let _ = self.out.write_all(b"this line is not a message\n");
                    let mut b = Body::new();
                    b.insert("type".into(), "hello".into());
                    self.emit("c999999", b);
                }
            }
            "toy_fwd" => {
                let origin = body
                    .get("origin")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let Some(Value::Object(req)) = body.get("req") else {
                    return;
                };
                let result = self.store.handle(&origin, req);
                let reply = match result {
                    Ok(b) => Value::Object(b),
                    Err(Error(code, text)) => json!({"type": "error", "code": code, "text": text}),
                };
                let mut b = Body::new();
                b.insert("type".into(), "toy_fwd_ok".into());
                b.insert("reply".into(), reply);
                self.reply(&src, &msg_id, Ok(b));
            }
            "toy_fwd_ok" => {
                let Some(id) = body.get("in_reply_to").and_then(Value::as_u64) else {
                    return;
                };
                let Some(p) = self.pending.remove(&id) else {
                    return;
                }; // late: dropped
                let Some(Value::Object(reply)) = body.get("reply") else {
                    return;
                };
                self.reply(&p.client, &p.client_msg_id, Ok(reply.clone()));
            }
            _ => match self.leader.clone() {
                None => {
                    let result = self.store.handle(&src, &body);
                    self.reply(&src, &msg_id, result);
                }
                Some(leader) => {
                    let m = self.next_msg_id;
                    let readonly = is_readonly(&body);
                    let deadline =
                        Instant::now() + Duration::from_millis(self.store.args.forward_timeout_ms);
                    self.pending.insert(
                        m,
                        Pending {
                            client: src.clone(),
                            client_msg_id: msg_id,
                            readonly,
                            deadline,
                        },
                    );
                    let mut b = Body::new();
                    b.insert("type".into(), "toy_fwd".into());
                    b.insert("origin".into(), src.into());
                    b.insert("req".into(), Value::Object(body));
                    self.emit(&leader, b);
                }
            },
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if self.leader.is_none() {
            self.store.expire(now);
        }
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(&m, _)| m)
            .collect();
        for m in expired {
            let p = self.pending.remove(&m).expect("listed");
            let err = if p.readonly {
                Error(11, "temporarily unavailable: n0 did not answer".into())
            } else {
                Error(
                    13,
                    "forwarded to n0, which did not answer: outcome unknown".into(),
                )
            };
            self.reply(&p.client, &p.client_msg_id, Err(err));
        }
    }
}

enum Event {
    Line(String),
    Tick,
    Eof,
}

fn main() {
    let args = Args::parse();
    let (tx, rx) = mpsc::channel();
    let lines = tx.clone();
    thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            match line {
                Ok(l) => {
                    if lines.send(Event::Line(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = lines.send(Event::Eof);
    });
    thread::spawn(move || loop {
        thread::sleep(Duration::from_millis(50));
        if tx.send(Event::Tick).is_err() {
            return;
        }
    });
    let store = Store {
        topics: HashMap::new(),
        kafka_committed: HashMap::new(),
        groups: HashMap::new(),
        args,
        sends: 0,
        skippable_polls: 0,
    };
    let mut node = Node {
        id: String::new(),
        leader: None,
        next_msg_id: 0,
        store,
        pending: HashMap::new(),
        out: BufWriter::new(io::stdout()),
    };
    'run: while let Ok(mut ev) = rx.recv() {
        // Handle everything queued, then flush once: batches output when busy, flushes when idle.
        loop {
            match ev {
                Event::Line(l) => node.handle_line(&l),
                Event::Tick => node.tick(),
                Event::Eof => break 'run,
            }
            match rx.try_recv() {
                Ok(next) => ev = next,
                Err(_) => break,
            }
        }
        let _ = node.out.flush();
    }
    let _ = node.out.flush();
}
