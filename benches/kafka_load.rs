//! `kafka_load`: a load tool for any Kafka broker, over the client side of the `kafka-protocol`
//! crate (plain blocking sockets, one connection per phase).
//!
//! ```sh
//! cargo bench --bench kafka_load -- --bootstrap 127.0.0.1:9092 --broker-pid $(pgrep -f 'kgroups broker')
//! ```
//!
//! Phases, in order, on a fresh topic (`--topic`, created with `--partitions`):
//! 1. **produce**: `--records` records of `--value-bytes` bytes (no key), acks=all, in batches of
//!    `--batch` records per partition per Produce request, up to `--in-flight` requests pipelined;
//! 2. **consume (group)**: one member of a classic group (JoinGroup, SyncGroup with its own range
//!    assignment, Fetch at the clients' defaults: `fetch.wait.max.ms` 500, `fetch.min.bytes` 1,
//!    1 MiB per partition, 50 MiB per fetch) reads every record, then commits;
//! 3. **latency**: `--rate` records/s for `--latency-secs`, one record per Produce request
//!    (linger 0), while a second connection long-polls; end-to-end latency = fetch time − the
//!    send time written in the record's value; ack latency = the Produce response's arrival − its
//!    request's send (acks=all, so with `--flush-messages 1` it includes the fsync).
//!
//! For each phase it prints records/s, MB/s, the broker's CPU per record (from
//! `/proc/PID/task/*/schedstat` of `--broker-pid`, nanoseconds on CPU, during the phase only), this
//! tool's own CPU per record (`getrusage`), and at the end the broker's peak RSS (`VmHWM`). The
//! broker's CPU per record is the figure that compares brokers: this tool's own CPU shows whether
//! the client was the bottleneck. Output: one line per phase, then one JSON object on the last
//! line.

use bytes::{Buf, Bytes, BytesMut};
use clap::Parser;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, CreateTopicsRequest,
    CreateTopicsResponse, FetchRequest, FetchResponse, GroupId, JoinGroupRequest,
    JoinGroupResponse, OffsetCommitRequest, OffsetCommitResponse, ProduceRequest, ProduceResponse,
    RequestHeader, ResponseHeader, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser, Debug)]
#[command(about = "Produce, group-consume and end-to-end latency load against a Kafka broker")]
struct Args {
    /// The broker, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// The broker's process id, for its CPU and peak RSS (omit for a remote broker).
    #[arg(long)]
    broker_pid: Option<u32>,
    /// The topic; created with `--partitions` (a suffix of the current time is added, so each
    /// run starts empty).
    #[arg(long, default_value = "load")]
    topic: String,
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Records produced (and consumed).
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Records per batch (one batch per partition per Produce request).
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Produce requests in flight on the connection.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Records per second in the latency phase (0 skips it).
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    #[arg(long, default_value_t = 5)]
    latency_secs: u64,
    /// A topic config for CreateTopics, `KEY=VALUE` (repeatable), e.g. `retention.bytes=536870912`.
    #[arg(long = "config")]
    configs: Vec<String>,
    /// Skip the group consume (e.g. when retention deletes records before they are read).
    #[arg(long)]
    no_consume: bool,
    /// The consumers' `fetch.wait.max.ms` (the clients' default: 500).
    #[arg(long, default_value_t = 500)]
    fetch_wait_ms: i32,
}

/// One connection: requests pipelined, responses in order (Kafka's per-connection guarantee).
struct Conn {
    s: TcpStream,
    corr: i32,
    buf: BytesMut,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        s.set_nodelay(true).expect("TCP_NODELAY");
        Conn {
            s,
            corr: 0,
            buf: BytesMut::new(),
        }
    }

    fn send<Q: Encodable>(&mut self, key: ApiKey, version: i16, req: &Q) {
        self.corr += 1;
        self.buf.clear();
        self.buf.extend_from_slice(&[0; 4]);
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.corr)
            .with_client_id(Some(StrBytes::from_static_str("kafka_load")))
            .encode(&mut self.buf, key.request_header_version(version))
            .expect("header encodes");
        req.encode(&mut self.buf, version).expect("request encodes");
        let size = (self.buf.len() - 4) as i32;
        self.buf[..4].copy_from_slice(&size.to_be_bytes());
        self.s.write_all(&self.buf).expect("send");
    }

    fn recv<R: Decodable>(&mut self, key: ApiKey, version: i16) -> R {
        let mut size = [0u8; 4];
        self.s.read_exact(&mut size).expect("response size");
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.s.read_exact(&mut body).expect("response body");
        let mut b = Bytes::from(body);
        ResponseHeader::decode(&mut b, key.response_header_version(version))
            .expect("response header");
        R::decode(&mut b, version).expect("response body decodes")
    }

    /// A second handle on the same connection (for a thread that only reads responses).
    fn try_clone(&self) -> Conn {
        Conn {
            s: self.s.try_clone().expect("clone the socket"),
            corr: 0,
            buf: BytesMut::new(),
        }
    }

    fn call<Q: Encodable, R: Decodable>(&mut self, key: ApiKey, version: i16, req: &Q) -> R {
        self.send(key, version, req);
        self.recv(key, version)
    }
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Nanoseconds the process `pid` has run on a CPU (all its threads, live ones).
fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = t.ok()?.path().join("schedstat");
        if let Ok(s) = std::fs::read_to_string(path) {
            total += s.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

/// This process's user + system CPU, in nanoseconds (exited threads included).
fn own_cpu_ns() -> u64 {
    // SAFETY: getrusage writes one `rusage` into the zeroed struct we own; RUSAGE_SELF is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the pointer is to a live, properly aligned rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// `field` (`VmHWM`: peak, `VmRSS`: now) of the process `pid`, in KiB.
fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A phase's figures.
struct Phase {
    name: &'static str,
    records: u64,
    bytes: u64,
    wall: Duration,
    broker_ns: Option<u64>,
    own_ns: u64,
    /// The broker's resident memory at the end of the phase, KiB.
    broker_rss_kib: Option<u64>,
}

impl Phase {
    fn json(&self) -> String {
        let secs = self.wall.as_secs_f64();
        format!(
            "{{\"phase\":\"{}\",\"records\":{},\"records_per_s\":{:.0},\"mb_per_s\":{:.1},\
             \"broker_ns_per_record\":{},\"own_ns_per_record\":{:.0},\"broker_rss_kib\":{}}}",
            self.name,
            self.records,
            self.records as f64 / secs,
            self.bytes as f64 / secs / 1e6,
            self.broker_ns.map_or("null".into(), |n| format!(
                "{:.0}",
                n as f64 / self.records as f64
            )),
            self.own_ns as f64 / self.records as f64,
            self.broker_rss_kib.map_or("null".into(), |k| k.to_string())
        )
    }
}

fn measure<T>(
    name: &'static str,
    pid: Option<u32>,
    f: impl FnOnce() -> (u64, u64, T),
) -> (Phase, T) {
    let b0 = pid.and_then(cpu_ns);
    let o0 = own_cpu_ns();
    let t0 = Instant::now();
    let (records, bytes, out) = f();
    let wall = t0.elapsed();
    let broker_ns = match (b0, pid.and_then(cpu_ns)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let phase = Phase {
        name,
        records,
        bytes,
        wall,
        broker_ns,
        own_ns: own_cpu_ns() - o0,
        broker_rss_kib: pid.and_then(|p| rss_kib(p, "VmRSS:")),
    };
    eprintln!("{}", phase.json());
    (phase, out)
}

fn batch_bytes(n: usize, value: &[u8]) -> Bytes {
    let ts = (now_ns() / 1_000_000) as i64;
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // `offset - sequence` constant (base sequence -1: no producer id): the crate starts a
            // new batch wherever it changes.
            sequence: i as i32 - 1,
            timestamp: ts,
            key: None,
            value: Some(Bytes::copy_from_slice(value)),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    let opts = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &opts).expect("batch encodes");
    buf.freeze()
}

fn produce_req(topic: &str, parts: Vec<(i32, Bytes)>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(sb(topic)))
            .with_partition_data(
                parts
                    .into_iter()
                    .map(|(p, r)| {
                        PartitionProduceData::default()
                            .with_index(p)
                            .with_records(Some(r))
                    })
                    .collect(),
            )])
}

fn check_produced(resp: &ProduceResponse) {
    for t in &resp.responses {
        for p in &t.partition_responses {
            assert_eq!(p.error_code, 0, "produce to partition {} failed", p.index);
        }
    }
}

fn create_topic(addr: &str, topic: &str, partitions: i32, configs: &[String]) {
    let mut c = Conn::open(addr);
    let configs = configs
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("--config KEY=VALUE");
            CreatableTopicConfig::default()
                .with_name(sb(k))
                .with_value(Some(sb(v)))
        })
        .collect();
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(sb(topic)))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(configs)]);
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 4, &req);
    let code = resp.topics.first().map_or(-1, |t| t.error_code);
    let text = resp.topics.first().and_then(|t| t.error_message.clone());
    assert!(
        code == 0 || code == 36,
        "CreateTopics: error {code} {text:?}"
    );
}

fn produce(args: &Args, topic: &str) -> (u64, u64, ()) {
    let mut c = Conn::open(&args.bootstrap);
    let value = vec![b'x'; args.value_bytes];
    let per_request = args.batch * args.partitions as usize;
    let requests = (args.records as usize).div_ceil(per_request);
    // Batches are encoded once and reused: the client's cost is then its socket, not encoding.
    let full = batch_bytes(args.batch, &value);
    let mut sent = 0u64;
    let mut pending: VecDeque<()> = VecDeque::new();
    for _ in 0..requests {
        let mut parts = Vec::with_capacity(args.partitions as usize);
        for p in 0..args.partitions {
            let left = args.records - sent;
            if left == 0 {
                break;
            }
            let n = (args.batch as u64).min(left) as usize;
            let bytes = if n == args.batch {
                full.clone()
            } else {
                batch_bytes(n, &value)
            };
            parts.push((p, bytes));
            sent += n as u64;
        }
        if pending.len() == args.in_flight {
            check_produced(&c.recv(ApiKey::Produce, 7));
            pending.pop_front();
        }
        c.send(ApiKey::Produce, 7, &produce_req(topic, parts));
        pending.push_back(());
    }
    for _ in pending {
        check_produced(&c.recv(ApiKey::Produce, 7));
    }
    (sent, sent * args.value_bytes as u64, ())
}

/// Joins `group` alone and assigns itself every partition of `topic`; returns (member id,
/// generation).
fn join_alone(c: &mut Conn, group: &str, topic: &str, partitions: i32) -> (StrBytes, i32) {
    let mut meta = BytesMut::new();
    ConsumerProtocolSubscription::default()
        .with_topics(vec![sb(topic)])
        .encode(&mut meta, 0)
        .expect("subscription encodes");
    let mut member = StrBytes::default();
    let join = loop {
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(member.clone())
            .with_protocol_type(sb("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(sb("range"))
                .with_metadata(meta.clone().freeze())]);
        let r: JoinGroupResponse = c.call(ApiKey::JoinGroup, 5, &req);
        if r.error_code == 79 {
            // MEMBER_ID_REQUIRED (KIP-394): rejoin with the id the coordinator gave.
            member = r.member_id;
            continue;
        }
        assert_eq!(r.error_code, 0, "JoinGroup");
        break r;
    };
    let mut assignment = BytesMut::new();
    ConsumerProtocolAssignment::default()
        .with_assigned_partitions(vec![
            kafka_protocol::messages::consumer_protocol_assignment::TopicPartition::default()
                .with_topic(TopicName(sb(topic)))
                .with_partitions((0..partitions).collect()),
        ])
        .encode(&mut assignment, 0)
        .expect("assignment encodes");
    let req = SyncGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id(join.generation_id)
        .with_member_id(join.member_id.clone())
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(join.member_id.clone())
            .with_assignment(assignment.freeze())]);
    let r: SyncGroupResponse = c.call(ApiKey::SyncGroup, 3, &req);
    assert_eq!(r.error_code, 0, "SyncGroup");
    (join.member_id, join.generation_id)
}

fn fetch_req(topic: &str, offsets: &[i64], wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_isolation_level(0)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(sb(topic)))
            .with_partitions(
                offsets
                    .iter()
                    .enumerate()
                    .map(|(p, &o)| {
                        FetchPartition::default()
                            .with_partition(p as i32)
                            .with_fetch_offset(o)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )])
}

/// Decodes every record set of `resp`; advances `offsets`; calls `f(value)` per record.
fn take(resp: FetchResponse, offsets: &mut [i64], mut f: impl FnMut(&[u8])) -> u64 {
    let mut n = 0;
    for t in resp.responses {
        for p in t.partitions {
            assert_eq!(p.error_code, 0, "fetch of partition {}", p.partition_index);
            let Some(mut records) = p.records else {
                continue;
            };
            if !records.has_remaining() {
                continue;
            }
            let sets = RecordBatchDecoder::decode_all(&mut records).expect("fetched batches");
            for set in sets {
                for r in set.records {
                    let i = p.partition_index as usize;
                    if r.offset < offsets[i] {
                        continue;
                    }
                    offsets[i] = r.offset + 1;
                    f(r.value.as_deref().unwrap_or_default());
                    n += 1;
                }
            }
        }
    }
    n
}

fn consume_group(
    args: &Args,
    topic: &str,
    mut c: Conn,
    group: &str,
    (member, generation): (StrBytes, i32),
) -> (u64, u64, ()) {
    let mut offsets = vec![0i64; args.partitions as usize];
    let mut got = 0u64;
    let mut bytes = 0u64;
    while got < args.records {
        let resp: FetchResponse = c.call(
            ApiKey::Fetch,
            11,
            &fetch_req(topic, &offsets, args.fetch_wait_ms),
        );
        got += take(resp, &mut offsets, |v| bytes += v.len() as u64);
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(member)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(sb(topic)))
            .with_partitions(
                offsets
                    .iter()
                    .enumerate()
                    .map(|(p, &o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p as i32)
                            .with_committed_offset(o)
                    })
                    .collect(),
            )]);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 7, &req);
    for t in &r.topics {
        for p in &t.partitions {
            assert_eq!(p.error_code, 0, "OffsetCommit");
        }
    }
    (got, bytes, ())
}

/// Nearest-rank percentile of sorted `v`.
fn pct(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// The latency phase: (records, bytes, (end-to-end latencies, ack latencies)), each sorted, ns.
fn latency(args: &Args, topic: &str) -> (u64, u64, (Vec<u64>, Vec<u64>)) {
    let total = args.rate * args.latency_secs;
    let addr = args.bootstrap.clone();
    let topic_c = topic.to_string();
    let parts = args.partitions;
    let wait_ms = args.fetch_wait_ms;
    let start_offsets = vec![0i64; parts as usize];
    let reader = std::thread::spawn(move || {
        let mut c = Conn::open(&addr);
        let mut offsets = start_offsets;
        let mut lat = Vec::with_capacity(total as usize);
        let deadline = Instant::now() + Duration::from_secs(60);
        while (lat.len() as u64) < total && Instant::now() < deadline {
            let resp: FetchResponse =
                c.call(ApiKey::Fetch, 11, &fetch_req(&topic_c, &offsets, wait_ms));
            let now = now_ns();
            take(resp, &mut offsets, |v| {
                if v.len() >= 8 {
                    let sent = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
                    lat.push(now.saturating_sub(sent));
                }
            });
        }
        lat
    });
    let mut c = Conn::open(&args.bootstrap);
    let interval = Duration::from_nanos(1_000_000_000 / args.rate.max(1));
    let t0 = Instant::now();
    // Responses come back in request order on one connection: a thread reads them as they
    // arrive, and pairs each with its request's send instant (the channel bounds what is in
    // flight to 1,024 requests).
    let (sent_tx, sent_rx) = std::sync::mpsc::sync_channel::<Instant>(1024);
    let mut responses = c.try_clone();
    let ack_reader = std::thread::spawn(move || {
        let mut acks = Vec::with_capacity(total as usize);
        for sent in sent_rx {
            check_produced(&responses.recv(ApiKey::Produce, 7));
            acks.push(sent.elapsed().as_nanos() as u64);
        }
        acks
    });
    let mut value = vec![b'x'; args.value_bytes.max(8)];
    for i in 0..total {
        let due = t0 + interval * i as u32;
        // Sleep until the send time rather than spin: on a small machine a spinning sender would
        // take a core from the broker it measures. A sleep overshoots by the timer slack (~50
        // µs), so records due meanwhile go out back to back; each is stamped when it is sent.
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        value[..8].copy_from_slice(&now_ns().to_be_bytes());
        let p = (i % parts as u64) as i32;
        sent_tx.send(Instant::now()).expect("the ack reader runs");
        c.send(
            ApiKey::Produce,
            7,
            &produce_req(topic, vec![(p, batch_bytes(1, &value))]),
        );
    }
    drop(sent_tx);
    let mut acks = ack_reader.join().expect("the ack reader thread");
    let mut lat = reader.join().expect("the reader thread");
    lat.sort_unstable();
    acks.sort_unstable();
    (
        lat.len() as u64,
        lat.len() as u64 * value.len() as u64,
        (lat, acks),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; drop it so the tool's own flags parse.
    let args = Args::parse_from(std::env::args().filter(|a| a != "--bench"));
    let stamp = now_ns() / 1_000_000;
    let topic = format!("{}-{stamp}", args.topic);
    create_topic(&args.bootstrap, &topic, args.partitions, &args.configs);
    let pid = args.broker_pid;
    let (produced, ()) = measure("produce", pid, || produce(&args, &topic));
    let mut phases = vec![produced.json()];
    if !args.no_consume {
        // The join is timed apart: it includes the coordinator's `group.initial.rebalance.delay.ms`
        // (Kafka's default: 3 s), which would otherwise dominate the consume rate.
        let mut c = Conn::open(&args.bootstrap);
        let group = format!("{topic}-group");
        let t0 = Instant::now();
        let joined = join_alone(&mut c, &group, &topic, args.partitions);
        eprintln!("joined the group in {} ms", t0.elapsed().as_millis());
        let (consumed, ()) = measure("consume-group", pid, || {
            consume_group(&args, &topic, c, &group, joined)
        });
        phases.push(consumed.json());
    }
    if args.rate > 0 {
        let lat_topic = format!("{topic}-latency");
        create_topic(&args.bootstrap, &lat_topic, args.partitions, &args.configs);
        let (phase, (lat, acks)) = measure("latency", pid, || latency(&args, &lat_topic));
        let ms = |v: &[u64], q: f64| pct(v, q) as f64 / 1e6;
        eprintln!(
            "latency at {} records/s: end-to-end p50 {:.3} ms, p99 {:.3} ms ({} records); \
             ack p50 {:.3} ms, p99 {:.3} ms",
            args.rate,
            ms(&lat, 0.50),
            ms(&lat, 0.99),
            lat.len(),
            ms(&acks, 0.50),
            ms(&acks, 0.99),
        );
        phases.push(phase.json());
        phases.push(format!(
            "{{\"phase\":\"latency-percentiles\",\"rate\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\
             \"ack_p50_ms\":{:.3},\"ack_p99_ms\":{:.3}}}",
            args.rate,
            ms(&lat, 0.50),
            ms(&lat, 0.99),
            ms(&acks, 0.50),
            ms(&acks, 0.99),
        ));
    }
    let rss = pid.and_then(|p| rss_kib(p, "VmHWM:"));
    println!(
        "{{\"phases\":[{}],\"broker_peak_rss_kib\":{}}}",
        phases.join(","),
        rss.map_or("null".into(), |k| k.to_string())
    );
}
