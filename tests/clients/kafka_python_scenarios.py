"""Scenarios run with kafka-python (pure Python, classic groups) against a kgroups broker.

Usage: kafka_python_scenarios.py BOOTSTRAP SCENARIO; exit 0 when every check holds.
tests/kafka_python.rs runs each scenario.
"""
import sys
import threading
import time
import uuid

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.structs import OffsetAndMetadata

from checks import FAILS, Log, check, wait_until

BOOT = sys.argv[1]


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin():
    return KafkaAdminClient(bootstrap_servers=BOOT)


def create(topic, partitions):
    a = admin()
    a.create_topics([NewTopic(topic, partitions, 1)])
    a.close()


def produce(topic, records, **conf):
    """Produces (key, value) pairs; returns the acknowledged (partition, offset, key, value)."""
    p = KafkaProducer(bootstrap_servers=BOOT, linger_ms=5, **conf)
    futures = [(p.send(topic, key=k, value=v), k, v) for k, v in records]
    p.flush(30)
    acked = []
    for f, k, v in futures:
        try:
            md = f.get(10)
            acked.append((md.partition, md.offset, k, v))
        except Exception as e:  # noqa: BLE001 - a failed send is a finding
            FAILS.append(f"send failed: {e!r}")
    p.close()
    check(len(acked) == len(records), f"acked {len(acked)} of {len(records)}")
    return acked


def consumer(group, **conf):
    base = dict(bootstrap_servers=BOOT, group_id=group, auto_offset_reset="earliest",
                enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500)
    base.update(conf)
    return KafkaConsumer(**base)


def drain(c, want, timeout=30):
    got = []
    end = time.time() + timeout
    while len(got) < want and time.time() < end:
        for recs in c.poll(timeout_ms=200).values():
            got.extend(recs)
    return got


def keyed():
    topic = name("keyed")
    create(topic, 4)
    records = [(f"k{i % 10}".encode(), f"k{i % 10}:{i}".encode()) for i in range(300)]
    acked = produce(topic, records)
    c = consumer(name("g"))
    c.subscribe([topic])
    got = drain(c, 300)
    c.close()
    check(len(got) == 300, f"consumed {len(got)} of 300")
    parts, seq = {}, {}
    for m in got:
        parts.setdefault(m.key, set()).add(m.partition)
        seq.setdefault(m.key, []).append(int(m.value.split(b":")[1]))
    for k, ps in parts.items():
        check(len(ps) == 1, f"key {k} in partitions {ps}")
        check(seq[k] == sorted(seq[k]), f"key {k} out of order")
    check({(a[0], a[1]) for a in acked} == {(m.partition, m.offset) for m in got}, "consumed offsets differ")


class Member(threading.Thread):
    def __init__(self, log, group, topic, commit_every=1, strategy=(RangePartitionAssignor,), **conf):
        super().__init__(daemon=True)
        self.log, self.group, self.topic, self.every = log, group, topic, commit_every
        self.strategy, self.conf = strategy, conf
        self.stop = threading.Event()
        self.id = uuid.uuid4().hex[:6]
        self.c = None

    def commit(self):
        try:
            positions = {tp: self.c.position(tp) for tp in self.c.assignment()}
            self.c.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in positions.items()})
            for tp, o in positions.items():
                self.log.commit(tp.partition, o)
        except Exception as e:  # noqa: BLE001 - a fenced commit is expected during rebalances
            self.log.note(f"commit failed: {e!r}")

    def run(self):
        member = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                member.commit()
                member.log.event(member.id, "revoke", [tp.partition for tp in revoked])

            def on_partitions_assigned(self, assigned):
                member.log.event(member.id, "assign", [tp.partition for tp in assigned])

        self.c = consumer(self.group, partition_assignment_strategy=self.strategy, **self.conf)
        self.c.subscribe([self.topic], listener=Listener())
        n, last = 0, 0
        while not self.stop.is_set():
            for recs in self.c.poll(timeout_ms=100).values():
                for m in recs:
                    self.log.deliver(self.id, m.partition, m.offset)
                    n += 1
            # Positions cover everything poll returned: commit only once all of it is processed.
            if n - last >= self.every:
                self.commit()
                last = n
        self.commit()
        self.c.close()
        self.log.event(self.id, "closed", [])


def group3():
    topic = name("g3")
    create(topic, 6)
    acked = produce(topic, [(f"k{i % 30}".encode(), str(i).encode()) for i in range(600)])
    log, group = Log(), name("g")
    members = [Member(log, group, topic) for _ in range(3)]
    for m in members:
        m.start()
    check(wait_until(lambda: len({(p, o) for _, _, p, o in log.deliveries}) >= 600, 60), "not all consumed")
    time.sleep(1)
    for m in members:
        m.stop.set()
    for m in members:
        m.join(20)
    log.check_nothing_lost(acked)
    check(log.duplicates() == 0, f"{log.duplicates()} records delivered twice with synchronous commits")
    log.check_one_owner()


def churn(strategy):
    topic = name("churn")
    create(topic, 6)
    log, group = Log(), name("g")
    acked = []
    stop = threading.Event()

    def producer():
        i = 0
        while not stop.is_set():
            acked.extend(produce(topic, [(f"k{(i + j) % 40}".encode(), str(i + j).encode()) for j in range(50)]))
            i += 50
            time.sleep(0.05)

    pt = threading.Thread(target=producer, daemon=True)
    pt.start()
    live = [Member(log, group, topic, commit_every=7, strategy=strategy) for _ in range(2)]
    for m in live:
        m.start()
    for step in range(4):
        time.sleep(1.5)
        if step % 2 == 0:
            m = Member(log, group, topic, commit_every=7, strategy=strategy)
            m.start()
            live.append(m)
        else:
            gone = live.pop(0)
            gone.stop.set()
            gone.join(20)
    stop.set()
    pt.join(30)
    total = {(a[0], a[1]) for a in acked}
    check(wait_until(lambda: total <= {(p, o) for _, _, p, o in log.deliveries}, 60), "not all consumed")
    for m in live:
        m.stop.set()
    for m in live:
        m.join(20)
    log.check_nothing_lost(acked)
    log.check_redelivery_past_commit()
    log.check_one_owner()
    print(f"{len(acked)} records, {log.duplicates()} re-delivered")


def resume():
    topic = name("resume")
    create(topic, 3)
    acked = produce(topic, [(f"k{i % 9}".encode(), str(i).encode()) for i in range(120)])
    group = name("g")
    a = consumer(group)
    a.subscribe([topic])
    first = drain(a, 50)
    a.commit()
    committed = {p: a.committed(TopicPartition(topic, p)) for p in range(3)}
    a.close()
    b = consumer(group)
    b.subscribe([topic])
    rest = drain(b, 120 - len(first), timeout=20)
    rest += drain(b, 1, timeout=2)
    b.close()
    seen_a = {(m.partition, m.offset) for m in first}
    seen_b = {(m.partition, m.offset) for m in rest}
    check(not (seen_a & seen_b), "the new member re-read committed records")
    check(seen_a | seen_b == {(x[0], x[1]) for x in acked}, "records lost between the two members")
    for p in range(3):
        firsts = sorted(o for (q, o) in seen_b if q == p)
        want = committed[p] or 0
        if firsts:
            check(firsts[0] == want, f"partition {p} resumed at {firsts[0]}, committed {committed[p]}")


def two_groups():
    topic = name("two")
    create(topic, 4)
    acked = produce(topic, [(None, str(i).encode()) for i in range(200)])
    for g in (name("ga"), name("gb")):
        c = consumer(g)
        c.subscribe([topic])
        got = drain(c, 200)
        c.close()
        check({(m.partition, m.offset) for m in got} == {(x[0], x[1]) for x in acked}, f"group {g} missed records")


def static():
    topic = name("static")
    create(topic, 4)
    acked = produce(topic, [(f"k{i}".encode(), b"x") for i in range(80)])
    group = name("g")
    conf = {"group_instance_id": "static-1", "session_timeout_ms": 10000, "max_poll_records": 10}
    a = consumer(group, **conf)
    a.subscribe([topic])
    got = drain(a, 40)
    a.commit()
    first = sorted(tp.partition for tp in a.assignment())
    a.close()
    b = consumer(group, **conf)
    b.subscribe([topic])
    rest = drain(b, 80 - len(got), timeout=20)
    wait_until(lambda: b.poll(timeout_ms=100) is not None and b.assignment(), 10)
    second = sorted(tp.partition for tp in b.assignment())
    check(second == first, f"the static member's assignment changed: {first} then {second}")
    b.close()
    check({(m.partition, m.offset) for m in got + rest} == {(x[0], x[1]) for x in acked}, "records lost")
    check(not ({(m.partition, m.offset) for m in got} & {(m.partition, m.offset) for m in rest}),
          "the restarted static member re-read committed records")


def admin_ops():
    a = admin()
    topic = name("adm")
    a.create_topics([NewTopic(topic, 3, 1)])
    try:
        a.create_topics([NewTopic(topic, 3, 1)])
        check(False, "creating an existing topic succeeded")
    except Exception as e:  # noqa: BLE001
        check("TopicAlreadyExists" in repr(e), f"second create: {e!r}")
    check(topic in a.list_topics(), "created topic not listed")
    produce(topic, [(b"k", b"v")] * 10)
    group = name("ga")
    c = consumer(group)
    c.subscribe([topic])
    drain(c, 10)
    c.commit()
    c.close()
    groups = a.list_groups()
    ids = [g.get("group_id") if isinstance(g, dict) else g[0] for g in groups]
    check(group in ids, f"group not listed: {groups}")
    desc = a.describe_groups([group])
    d = desc[group] if isinstance(desc, dict) else desc[0]
    state = d.get("group_state") if isinstance(d, dict) else d.state
    check(state == "Empty", f"closed group described as {state}")
    tp = TopicPartition(topic, 0)
    a.alter_group_offsets(group, {tp: OffsetAndMetadata(5, "", -1)})
    offsets = a.list_group_offsets({group: None})[group]
    check(offsets.get(tp) is not None and offsets[tp].offset == 5, f"listed offsets {offsets}")
    a.delete_groups([group])
    ids = [g.get("group_id") if isinstance(g, dict) else g[0] for g in a.list_groups()]
    check(group not in ids, "deleted group still listed")
    a.delete_topics([topic])
    check(wait_until(lambda: topic not in a.list_topics(), 5), "deleted topic still listed")
    a.close()


def idempotent():
    topic = name("idem")
    create(topic, 2)
    produce(topic, [(f"k{i}".encode(), str(i).encode()) for i in range(200)], enable_idempotence=True)
    c = consumer(name("g"))
    c.subscribe([topic])
    got = drain(c, 200)
    got += drain(c, 1, timeout=2)
    c.close()
    check(len(got) == 200, f"idempotent producer: {len(got)} records for 200 sends")


def codecs():
    # snappy, lz4 and zstd need python-snappy, lz4 and zstandard beside kafka-python (.ci/clients).
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        topic = name(codec)
        create(topic, 1)
        value = codec.encode() * 50
        produce(topic, [(b"k", value)] * 20, compression_type=codec)
        c = consumer(name("g"))
        c.subscribe([topic])
        got = drain(c, 20)
        c.close()
        check(len(got) == 20 and all(m.value == value for m in got), f"{codec} did not round-trip")


SCENARIOS = {
    "keyed": keyed, "group3": group3,
    "churn-eager": lambda: churn((RangePartitionAssignor,)),
    "churn-roundrobin": lambda: churn((RoundRobinPartitionAssignor,)),
    "churn-cooperative": lambda: churn((CooperativeStickyAssignor,)),
    "resume": resume, "two-groups": two_groups, "static": static, "admin": admin_ops,
    "idempotent": idempotent, "codecs": codecs,
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[2]]()
    print("FAILED" if FAILS else "ok", sys.argv[2], flush=True)
    sys.exit(1 if FAILS else 0)
