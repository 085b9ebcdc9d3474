"""KIP-848 scenarios: confluent-kafka (librdkafka) consumers with group.protocol=consumer against a
kgroups broker.

Usage: kip848_scenarios.py BOOTSTRAP SCENARIO. Exit 0 when every check holds; otherwise the failed
checks are printed and the exit code is 1. tests/kafka_kip848.rs runs each scenario.
"""
import sys
import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException

from checks import FAILS, Log, check, wait_until
from confluent_common import BOOT, create, name, produce


def consumer(group, **conf):
    """A KIP-848 consumer: the broker assigns; session and heartbeat timing are the broker's."""
    return Consumer({
        "bootstrap.servers": BOOT,
        "group.id": group,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **conf,
    })


class Member(threading.Thread):
    """A group member in a thread: logs deliveries, assignments and successful commits; commits
    synchronously after processing each `every` records and before giving partitions up."""

    def __init__(self, log, group, topic, commit_every=1, **conf):
        super().__init__(daemon=True)
        self.log, self.group, self.topic, self.every, self.conf = log, group, topic, commit_every, conf
        self.stop = threading.Event()
        self.id = uuid.uuid4().hex[:6]
        self.owned = set()

    def on_assign(self, c, parts):
        self.owned |= {p.partition for p in parts}
        self.log.event(self.id, "assign", [p.partition for p in parts])

    def on_revoke(self, c, parts):
        self.commit(c)
        self.owned -= {p.partition for p in parts}
        self.log.event(self.id, "revoke", [p.partition for p in parts])

    def on_lost(self, c, parts):
        self.owned -= {p.partition for p in parts}
        self.log.event(self.id, "revoke", [p.partition for p in parts])
        self.log.note(f"{self.id} lost {[p.partition for p in parts]}")

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
        c.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke, on_lost=self.on_lost)
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
        c.close()
        self.log.event(self.id, "closed", [])


def single():
    """One consumer reads everything produced and commits; the committed offsets are the ends."""
    topic, group = name("one"), name("g")
    create(topic, 4)
    acked = produce(topic, [(f"k{i % 10}".encode(), str(i).encode()) for i in range(400)])
    log = Log()
    m = Member(log, group, topic, commit_every=10)
    m.start()
    check(wait_until(lambda: len({(p, o) for _, _, p, o in log.deliveries}) >= 400, 30), "not all consumed")
    m.stop.set()
    m.join(20)
    log.check_nothing_lost(acked)
    check(log.duplicates() == 0, f"{log.duplicates()} records delivered twice")
    ends = {}
    for p, o, _, _ in acked:
        ends[p] = max(ends.get(p, -1), o + 1)
    c = consumer(group)
    from confluent_kafka import TopicPartition
    got = c.committed([TopicPartition(topic, p) for p in ends], timeout=10)
    c.close()
    committed = {tp.partition: tp.offset for tp in got}
    check(committed == ends, f"committed {committed}, log ends {ends}")
    print(f"{len(acked)} records, committed {committed}")


def churn():
    """Three members join and leave while a producer produces numbered records."""
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
    live = [Member(log, group, topic) for _ in range(2)]
    for m in live:
        m.start()
    for step in range(4):
        time.sleep(1.5)
        if step % 2 == 0:
            m = Member(log, group, topic)
            m.start()
            live.append(m)
        else:
            gone = live.pop(0)
            gone.stop.set()
            gone.join(20)
    stop.set()
    pt.join(30)
    total = {(a[0], a[1]) for a in acked}
    check(wait_until(lambda: total <= {(p, o) for _, _, p, o in log.deliveries}, 30), "not all consumed")
    # Balanced: the live members' partitions differ by at most one, and cover the topic.
    check(wait_until(lambda: sorted(p for m in live for p in m.owned) == list(range(6)), 15),
          f"partitions not all owned once: {[sorted(m.owned) for m in live]}")
    sizes = [len(m.owned) for m in live]
    check(max(sizes) - min(sizes) <= 1, f"unbalanced: {sizes}")
    for m in live:
        m.stop.set()
    for m in live:
        m.join(20)
    log.check_nothing_lost(acked)
    log.check_one_owner()
    check(log.duplicates() == 0,
          f"{log.duplicates()} records re-delivered among live members with commits after processing")
    print(f"{len(acked)} records, {log.duplicates()} re-delivered, sizes {sizes}, notes: {log.notes[:3]}")


def classic_then_consumer():
    """A classic member holds the group: a consumer-protocol member is refused, and vice versa."""
    topic = name("mix")
    create(topic, 2)
    produce(topic, [(b"k", b"v")])
    for first, second, code in [("classic", "consumer", KafkaError.GROUP_ID_NOT_FOUND),
                                ("consumer", "classic", KafkaError.INCONSISTENT_GROUP_PROTOCOL)]:
        group = name("g")
        a = Consumer({"bootstrap.servers": BOOT, "group.id": group, "group.protocol": first,
                      "auto.offset.reset": "earliest"})
        a.subscribe([topic])
        got = None
        end = time.time() + 20
        while got is None and time.time() < end:
            m = a.poll(0.2)
            if m is not None and not m.error():
                got = m
        check(got is not None, f"{first} member consumed nothing")
        b = Consumer({"bootstrap.servers": BOOT, "group.id": group, "group.protocol": second,
                      "auto.offset.reset": "earliest"})
        b.subscribe([topic])
        errors = []
        end = time.time() + 10
        while not errors and time.time() < end:
            m = b.poll(0.2)
            if m is not None and m.error():
                errors.append(m.error())
        # librdkafka reports a ConsumerGroupHeartbeat error as fatal, naming the broker's error.
        check(any(e.code() == code or (e.code() == KafkaError._FATAL and
                                       KafkaError(code).str() in e.str()) for e in errors),
              f"{second} member on a {first} group: want {code}, got {errors}")
        b.close()
        a.close()
        print(f"{second} on {first}: {errors}")


def regex():
    """A subscription by regular expression reads its topics, and a matching topic created later."""
    prefix = name("rx")
    create(f"{prefix}-a", 2)
    produce(f"{prefix}-a", [(b"k", b"a")])
    c = consumer(name("g"), **{"topic.metadata.refresh.interval.ms": 1000})
    c.subscribe([f"^{prefix}-.*"])
    got, created = set(), False
    end = time.time() + 30
    while time.time() < end and len(got) < 2:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.add(m.topic())
        if got and not created:
            create(f"{prefix}-b", 2)
            produce(f"{prefix}-b", [(b"k", b"b")])
            created = True
    c.close()
    check(got == {f"{prefix}-a", f"{prefix}-b"}, f"read from {sorted(got)}")
    print(f"read from {sorted(got)}")


SCENARIOS = {"single": single, "churn": churn, "mix": classic_then_consumer, "regex": regex}

if __name__ == "__main__":
    SCENARIOS[sys.argv[2]]()
    print("FAILED" if FAILS else "ok", sys.argv[2], flush=True)
    sys.exit(1 if FAILS else 0)
