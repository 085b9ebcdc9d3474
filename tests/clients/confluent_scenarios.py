"""Scenarios run with confluent-kafka (librdkafka) against a kgroups broker.

Usage: confluent_scenarios.py BOOTSTRAP SCENARIO. Exit 0 when every check holds; otherwise the
failed checks are printed and the exit code is 1. tests/kafka_confluent.rs runs each scenario.
"""
import sys
import threading
import time
import uuid
from collections import defaultdict

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from checks import FAILS, Log, check, wait_until
import confluent_common
from confluent_common import BOOT, create, drain, name


def produce(topic, records, **conf):
    """Keyed records go where a Java producer puts them (murmur2); see confluent_common.produce."""
    return confluent_common.produce(topic, records, **{"partitioner": "murmur2_random", **conf})


def consumer(group, **conf):
    return Consumer({
        "bootstrap.servers": BOOT,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        **conf,
    })


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
    parts = defaultdict(set)
    seq = defaultdict(list)
    for m in got:
        parts[m.key()].add(m.partition())
        seq[m.key()].append(int(m.value().split(b":")[1]))
    for k, ps in parts.items():
        check(len(ps) == 1, f"key {k} in partitions {ps}")
        check(seq[k] == sorted(seq[k]), f"key {k} out of order")
    check({(a[0], a[1]) for a in acked} == {(m.partition(), m.offset()) for m in got},
          "consumed offsets differ from acked ones")


class Member(threading.Thread):
    """A group member in a thread: logs deliveries, assignments and successful commits."""

    def __init__(self, log, group, topic, commit_every=1, **conf):
        super().__init__(daemon=True)
        self.log, self.group, self.topic, self.every, self.conf = log, group, topic, commit_every, conf
        self.stop = threading.Event()
        self.closing = False
        self.id = uuid.uuid4().hex[:6]

    def on_assign(self, c, parts):
        self.log.event(self.id, "assign", [p.partition for p in parts])
        if self.conf.get("partition.assignment.strategy") == "cooperative-sticky":
            c.incremental_assign(parts)

    def on_revoke(self, c, parts):
        # While closing, `run` has just committed, and librdkafka 2.16 aborts on a commit here
        # when close() met a pending assign callback: it treats that assign as the unassign, ends
        # the group, then asserts on this callback's commit (`rd_kafka_cgrp_terminated: assert:
        # !rd_kafka_assignment_in_progress`, librdkafka#4792).
        if not self.closing:
            self.commit(c)
        self.log.event(self.id, "revoke", [p.partition for p in parts])
        if self.conf.get("partition.assignment.strategy") == "cooperative-sticky":
            try:
                c.incremental_unassign(parts)
            except KafkaException:
                if not self.closing:
                    raise

    def commit(self, c):
        try:
            offs = c.commit(asynchronous=False)
            for tp in offs or []:
                if tp.error is None and tp.offset >= 0:
                    self.log.commit(tp.partition, tp.offset)
        except KafkaException as e:
            if e.args[0].code() != KafkaError._NO_OFFSET:
                self.log.note(f"commit failed: {e}")

    def run(self):
        c = consumer(self.group, **self.conf)
        c.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
        n = 0
        while not self.stop.is_set():
            m = c.poll(0.1)
            if m is None or m.error():
                continue
            self.log.deliver(self.id, m.partition(), m.offset())
            n += 1
            if n % self.every == 0:
                self.commit(c)
        self.commit(c)
        self.closing = True
        c.close()
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
    conf = {"partition.assignment.strategy": strategy}
    live = [Member(log, group, topic, commit_every=7, **conf) for _ in range(2)]
    for m in live:
        m.start()
    for step in range(4):
        time.sleep(1.5)
        if step % 2 == 0:
            m = Member(log, group, topic, commit_every=7, **conf)
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
    log.check_redelivery_past_commit(librdkafka=True)
    log.check_one_owner()
    print(f"{len(acked)} records, {log.duplicates()} re-delivered "
          f"({len(log.client_redeliveries)} after a pause), notes: {log.notes[:3]}")


def resume():
    topic = name("resume")
    create(topic, 3)
    acked = produce(topic, [(f"k{i % 9}".encode(), str(i).encode()) for i in range(120)])
    group = name("g")
    a = consumer(group)
    a.subscribe([topic])
    first = drain(a, 50)
    a.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in a.committed([TopicPartition(topic, p) for p in range(3)], 10)}
    a.close()
    b = consumer(group)
    b.subscribe([topic])
    rest = drain(b, 120 - len(first), timeout=20)
    extra = drain(b, 1, timeout=2)
    b.close()
    seen_a = {(m.partition(), m.offset()) for m in first}
    seen_b = {(m.partition(), m.offset()) for m in rest + extra}
    check(not (seen_a & seen_b), "the new member re-read committed records")
    check(seen_a | seen_b == {(x[0], x[1]) for x in acked}, "records lost between the two members")
    for p in range(3):
        firsts = sorted(o for (q, o) in seen_b if q == p)
        want = committed[p] if committed[p] >= 0 else 0  # nothing committed: auto.offset.reset
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
        check({(m.partition(), m.offset()) for m in got} == {(x[0], x[1]) for x in acked},
              f"group {g} did not read everything")


def static():
    topic = name("static")
    create(topic, 4)
    acked = produce(topic, [(f"k{i}".encode(), b"x") for i in range(80)])
    group = name("g")
    admin = AdminClient({"bootstrap.servers": BOOT})
    conf = {"group.instance.id": "static-1", "session.timeout.ms": 10000}
    a = consumer(group, **conf)
    a.subscribe([topic])
    got = drain(a, 40)
    a.commit(asynchronous=False)
    first_assignment = sorted(p.partition for p in a.assignment())
    desc = admin.describe_consumer_groups([group])[group].result(10)
    gen_members = [(m.member_id, m.group_instance_id) for m in desc.members]
    a.close()  # a static member does not leave on close
    b = consumer(group, **conf)
    b.subscribe([topic])
    rest = drain(b, 80 - len(got), timeout=20)
    check(sorted(p.partition for p in b.assignment()) == first_assignment, "the static member's assignment changed")
    desc2 = admin.describe_consumer_groups([group])[group].result(10)
    b.close()
    check(len(desc2.members) == 1 and desc2.members[0].group_instance_id == "static-1",
          f"describe shows {desc2.members}")
    check(desc2.members[0].member_id != gen_members[0][0], "the restarted member kept its old member id")
    check({(m.partition(), m.offset()) for m in got + rest} == {(x[0], x[1]) for x in acked}, "records lost")
    check(not ({(m.partition(), m.offset()) for m in got} & {(m.partition(), m.offset()) for m in rest}),
          "the restarted static member re-read committed records")


def admin_ops():
    from confluent_kafka import ConsumerGroupTopicPartitions
    admin = AdminClient({"bootstrap.servers": BOOT})
    topic = name("adm")
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(10)
    try:
        admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(10)
        check(False, "creating an existing topic succeeded")
    except KafkaException as e:
        check(e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, f"second create: {e}")
    md = admin.list_topics(timeout=10)
    check(topic in md.topics and len(md.topics[topic].partitions) == 3, "created topic not listed with 3 partitions")
    produce(topic, [(b"k", b"v")] * 10)
    group = name("ga")
    c = consumer(group)
    c.subscribe([topic])
    drain(c, 10)
    c.commit(asynchronous=False)
    desc = admin.describe_consumer_groups([group])[group].result(10)
    check(len(desc.members) == 1, f"live group has {len(desc.members)} members")
    c.close()
    listed = admin.list_consumer_groups().result(10)
    check(group in [g.group_id for g in listed.valid], "group not listed")
    desc = admin.describe_consumer_groups([group])[group].result(10)
    check(str(desc.state).endswith("EMPTY"), f"closed group state {desc.state}")
    tps = [TopicPartition(topic, p, 5) for p in range(3)]
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)])[group].result(10)
    got = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(3)])])[group].result(10)
    check(sorted(tp.offset for tp in got.topic_partitions) == [5, 5, 5], f"listed offsets {got.topic_partitions}")
    admin.delete_consumer_groups([group])[group].result(10)
    check(group not in [g.group_id for g in admin.list_consumer_groups().result(10).valid], "deleted group still listed")
    admin.delete_topics([topic])[topic].result(10)
    check(topic not in admin.list_topics(timeout=10).topics, "deleted topic still listed")


def idempotent():
    topic = name("idem")
    create(topic, 2)
    acked = produce(topic, [(f"k{i}".encode(), str(i).encode()) for i in range(200)], **{"enable.idempotence": True})
    c = consumer(name("g"))
    c.subscribe([topic])
    got = drain(c, 200)
    extra = drain(c, 1, timeout=2)
    c.close()
    check(len(got) == 200 and not extra, f"idempotent producer: {len(got) + len(extra)} records for 200 sends")


def codecs():
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        topic = name(codec)
        create(topic, 1)
        produce(topic, [(b"k", (codec * 50).encode())] * 20, **{"compression.type": codec})
        c = consumer(name("g"))
        c.subscribe([topic])
        got = drain(c, 20)
        c.close()
        check(len(got) == 20 and all(m.value() == (codec * 50).encode() for m in got), f"{codec} did not round-trip")


def timestamps():
    topic = name("ts")
    create(topic, 1)
    p = Producer({"bootstrap.servers": BOOT})
    for i, ts in enumerate([1000, 2000, 3000]):
        p.produce(topic, value=str(i).encode(), timestamp=ts)
    p.flush(10)
    c = consumer(name("g"))
    found = c.offsets_for_times([TopicPartition(topic, 0, 1500)], 10)
    check(found[0].offset == 1, f"offset for timestamp 1500 is {found[0].offset}")
    c.close()


SCENARIOS = {
    "keyed": keyed, "group3": group3, "churn-eager": lambda: churn("range"),
    "churn-roundrobin": lambda: churn("roundrobin"), "churn-cooperative": lambda: churn("cooperative-sticky"),
    "resume": resume, "two-groups": two_groups, "static": static, "admin": admin_ops,
    "idempotent": idempotent, "codecs": codecs, "timestamps": timestamps,
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[2]]()
    print("FAILED" if FAILS else "ok", sys.argv[2], flush=True)
    sys.exit(1 if FAILS else 0)
