"""Durability scenarios run with confluent-kafka against a `kgroups broker --data-dir`.

Usage: durable_scenarios.py BOOTSTRAP STEP STATE_FILE. tests/kafka_durable.rs runs the steps and
stops, kills and restarts the broker between them; STATE_FILE (JSON) carries what one step saw
to the next. Exit 0 when every check holds; otherwise the failed checks are printed, exit 1.

Steps:
- write / verify: the restart round trip (records, topic id, configs, committed offsets).
- produce: an idempotent acks=all producer that appends each acknowledged record to STATE_FILE
  (one JSON line, flushed) until it is killed.
- crash-check: after a SIGKILL and restart, every acknowledged record is in the log once, at
  its acknowledged offset, nothing is in the log twice, and the group's commit survived; then
  commits the log end for the next round.
- retention-write / retention-check: a topic with tiny segments and retention.bytes.
"""
import json
import os
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition, KafkaException
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewTopic)

from checks import FAILS, check

BOOT, STEP, STATE = sys.argv[1], sys.argv[2], sys.argv[3]


_ADMIN = []


def admin():
    """One client for the whole step (a result future dies with its client)."""
    if not _ADMIN:
        _ADMIN.append(AdminClient({"bootstrap.servers": BOOT}))
    return _ADMIN[0]


def load():
    with open(STATE) as f:
        return json.load(f)


def save(state):
    with open(STATE, "w") as f:
        json.dump(state, f)


def read_all(topic, partitions):
    """Every record of the topic, from each partition's start: [(partition, offset, value)]."""
    c = Consumer({"bootstrap.servers": BOOT, "group.id": "reader", "enable.auto.commit": False})
    out = []
    for p in range(partitions):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if hi <= lo:
            continue
        c.assign([TopicPartition(topic, p, lo)])
        deadline = time.monotonic() + 20
        last = lo - 1
        while last < hi - 1 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            out.append((p, m.offset(), m.value().decode()))
            last = m.offset()
        check(last == hi - 1, f"{topic}-{p}: read up to {last}, end {hi}")
    c.close()
    return out


def topic_id(topic):
    md = admin().describe_topics(
        __import__("confluent_kafka").TopicCollection([topic]))[topic].result(10)
    return str(md.topic_id)


def configs(topic):
    res = ConfigResource("topic", topic)
    got = admin().describe_configs([res])[res].result(10)
    return {k: (v.value, int(v.source)) for k, v in got.items()}


def committed(group, topic, partitions):
    c = Consumer({"bootstrap.servers": BOOT, "group.id": group, "enable.auto.commit": False})
    got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    c.close()
    return {tp.partition: [tp.offset, tp.metadata] for tp in got}


def write():
    topic = "round-trip"
    a = admin()
    for f in a.create_topics([NewTopic(topic, 2, 1, config={"retention.ms": "86400000"})]).values():
        f.result(10)
    res = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("retention.bytes", "123456789", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res])[res].result(10)
    bad = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("segment.ms", "0", incremental_operation=AlterConfigOpType.SET)])
    try:
        a.incremental_alter_configs([bad])[bad].result(10)
        check(False, "segment.ms 0 was accepted")
    except KafkaException as e:
        err = e.args[0]
        check(err.name() == "INVALID_CONFIG" and "at least 1" in err.str(), f"segment.ms 0: {err}")
    p = Producer({"bootstrap.servers": BOOT, "enable.idempotence": True, "acks": "all"})
    for i in range(300):
        p.produce(topic, key=str(i % 17), value=f"v{i}")
    p.flush(30)
    records = read_all(topic, 2)
    check(len(records) == 300, f"wrote 300, read {len(records)}")
    group = "resumer"
    c = Consumer({"bootstrap.servers": BOOT, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    # The commit's metadata string is kept with the offset (OffsetFetch returns it).
    c.commit(offsets=[TopicPartition(topic, 0, 40, metadata="m-40"), TopicPartition(topic, 1, 70)],
             asynchronous=False)
    c.close()
    check(committed(group, topic, 2)[0] == [40, "m-40"], f"metadata: {committed(group, topic, 2)}")
    cfg = configs(topic)
    check(cfg["retention.ms"] == ("86400000", 1), f"retention.ms {cfg['retention.ms']}")
    check(cfg["retention.bytes"] == ("123456789", 1), f"retention.bytes {cfg['retention.bytes']}")
    save({"records": records, "id": topic_id(topic), "configs": cfg,
          "committed": committed(group, topic, 2)})


def verify():
    topic = "round-trip"
    before = load()
    records = read_all(topic, 2)
    check(records == [tuple(r) for r in before["records"]],
          f"records differ after restart: {len(records)} vs {len(before['records'])}")
    check(topic_id(topic) == before["id"], "topic id changed")
    check(configs(topic) == {k: tuple(v) for k, v in before["configs"].items()}, "configs changed")
    now = committed("resumer", topic, 2)
    check({str(k): v for k, v in now.items()} == before["committed"], f"committed {now} vs {before['committed']}")
    check(now[0] == [40, "m-40"], f"the commit's metadata after restart: {now}")
    # The group resumes from its commits: the first record it reads per partition is the commit.
    c = Consumer({"bootstrap.servers": BOOT, "group.id": "resumer", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    c.subscribe([topic])
    first = {}
    deadline = time.monotonic() + 30
    while len(first) < 2 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            first.setdefault(m.partition(), m.offset())
    c.close()
    check(first == {0: 40, 1: 70}, f"resumed at {first}")


def produce():
    """Produces numbered records until killed; each acknowledged one is appended to STATE."""
    out = open(STATE, "a")
    tag = f"{os.getpid()}"

    def done(err, msg):
        if err is None:
            out.write(json.dumps([msg.offset(), msg.value().decode()]) + "\n")
            out.flush()

    p = Producer({"bootstrap.servers": BOOT, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 2, "message.timeout.ms": 60000, "retry.backoff.ms": 20,
                  "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 100})
    i = 0
    while True:
        try:
            p.produce("crash", value=f"{tag}-{i}", on_delivery=done)
            i += 1
        except BufferError:
            pass
        p.poll(0.001)


def crash_check():
    acked = []
    with open(STATE) as f:
        for line in f:
            try:
                acked.append(tuple(json.loads(line)))
            except ValueError:
                pass  # a line cut by the kill of the producer
    log = read_all("crash", 1)
    values = [v for _, _, v in log]
    check(len(values) == len(set(values)), f"{len(values) - len(set(values))} records twice")
    at = {v: o for _, o, v in log}
    missing = [a for a in acked if at.get(a[1]) != a[0]]
    check(not missing, f"{len(missing)} acknowledged records lost or moved, e.g. {missing[:3]}")
    # Each producer's records are in the order it sent them.
    last = {}
    for _, o, v in log:
        tag, n = v.rsplit("-", 1)
        check(int(n) > last.get(tag, -1), f"{v} at {o} out of order")
        last[tag] = int(n)
    commit_file = STATE + ".commit"
    if os.path.exists(commit_file):
        with open(commit_file) as f:
            want = json.load(f)
        got = {p: offset for p, (offset, _) in committed("crash-group", "crash", 1).items()}
        check(got == {0: want}, f"committed {got}, acknowledged {want}")
    end = len(log) and log[-1][1] + 1
    c = Consumer({"bootstrap.servers": BOOT, "group.id": "crash-group", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("crash", 0, end)], asynchronous=False)
    c.close()
    with open(commit_file, "w") as f:
        json.dump(end, f)
    print(f"{len(log)} records, {len(acked)} acknowledged")


def retention_write():
    topic = "retained"
    cfg = {"internal.segment.bytes": "4096", "retention.bytes": "16384"}
    for f in admin().create_topics([NewTopic(topic, 1, 1, config=cfg)]).values():
        f.result(10)
    c = Consumer({"bootstrap.servers": BOOT, "group.id": "slow", "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
    c.close()
    p = Producer({"bootstrap.servers": BOOT, "acks": "all", "linger.ms": 0, "batch.num.messages": 1})
    for i in range(600):
        p.produce(topic, value=f"r{i:04d}-" + "x" * 200)
        p.poll(0)
    p.flush(30)


def retention_check():
    topic = "retained"
    c = Consumer({"bootstrap.servers": BOOT, "group.id": "probe"})
    # Retention runs in the broker's housekeeping, every 1 s: wait until the start has moved
    # and stays put over a whole period.
    deadline = time.monotonic() + 20
    prev = None
    while True:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        if (lo > 5 and lo == prev) or time.monotonic() > deadline:
            break
        prev = lo
        time.sleep(1.2)
    c.close()
    check(hi == 600, f"end {hi}")
    check(lo > 5, f"log start {lo} did not pass the committed offset 5")
    c = Consumer({"bootstrap.servers": BOOT, "group.id": "slow", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    c.subscribe([topic])
    first = None
    deadline = time.monotonic() + 30
    while first is None and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            first = m.offset()
    c.close()
    check(first == lo, f"reset to {first}, log start {lo}")
    print(f"log start {lo}, reset to {first}")


{"write": write, "verify": verify, "produce": produce, "crash-check": crash_check,
 "retention-write": retention_write, "retention-check": retention_check}[STEP]()
if FAILS:
    sys.exit(1)
