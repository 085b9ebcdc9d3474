"""Measures, through a kgroups broker, the time from a consumer's join until every partition is
owned again (by the two members, balanced), for group.protocol=consumer (KIP-848) and classic.
Not a test: a measurement (issue 12, "Performance").

Usage: join_to_owned.py BOOTSTRAP [ROUNDS] [PARTITIONS]
Start the broker with `--group-consumer-heartbeat-interval-ms 500`; classic consumers use
heartbeat.interval.ms=500 too, so both protocols hear of a change at the same pace.
"""
import statistics
import sys
import threading
import time
import uuid

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

BOOT = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
PARTS = int(sys.argv[3]) if len(sys.argv) > 3 else 12


class Member(threading.Thread):
    def __init__(self, group, topic, conf):
        super().__init__(daemon=True)
        self.group, self.topic, self.conf = group, topic, conf
        self.owned = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.joined = None

    def on_assign(self, c, parts):
        with self.lock:
            self.owned |= {p.partition for p in parts}
        if self.conf.get("partition.assignment.strategy") == "cooperative-sticky":
            c.incremental_assign(parts)

    def on_revoke(self, c, parts):
        with self.lock:
            self.owned -= {p.partition for p in parts}
        if self.conf.get("partition.assignment.strategy") == "cooperative-sticky":
            c.incremental_unassign(parts)

    def run(self):
        c = Consumer({"bootstrap.servers": BOOT, "group.id": self.group,
                      "auto.offset.reset": "earliest", **self.conf})
        self.joined = time.monotonic()
        c.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
        while not self.stop.is_set():
            c.poll(0.02)
        c.close()

    def parts(self):
        with self.lock:
            return set(self.owned)


def balanced(a, b):
    pa, pb = a.parts(), b.parts()
    return not (pa & pb) and (pa | pb) == set(range(PARTS)) and abs(len(pa) - len(pb)) <= 1


def one(conf, topic):
    group = f"m-{uuid.uuid4().hex[:8]}"
    a = Member(group, topic, conf)
    a.start()
    end = time.monotonic() + 60
    while a.parts() != set(range(PARTS)):
        if time.monotonic() > end:
            raise SystemExit(f"first member never owned everything: {a.parts()}")
        time.sleep(0.005)
    time.sleep(1)
    b = Member(group, topic, conf)
    b.start()
    while b.joined is None:
        time.sleep(0.001)
    while not balanced(a, b):
        if time.monotonic() > end + 60:
            raise SystemExit(f"never balanced: {a.parts()} {b.parts()}")
        time.sleep(0.002)
    took = time.monotonic() - b.joined
    for m in (a, b):
        m.stop.set()
    for m in (a, b):
        m.join(20)
    return took


def main():
    topic = f"jt-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": BOOT})
    for f in admin.create_topics([NewTopic(topic, PARTS, 1)]).values():
        f.result(10)
    setups = {
        "consumer (KIP-848, uniform)": {"group.protocol": "consumer"},
        "classic cooperative-sticky": {"partition.assignment.strategy": "cooperative-sticky",
                                       "heartbeat.interval.ms": 500, "session.timeout.ms": 6000},
        "classic range (eager)": {"partition.assignment.strategy": "range",
                                  "heartbeat.interval.ms": 500, "session.timeout.ms": 6000},
    }
    for name, conf in setups.items():
        times = [one(conf, topic) for _ in range(ROUNDS)]
        print(f"{name:30} join -> all {PARTS} partitions owned, balanced: median "
              f"{statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f}, "
              f"max {max(times) * 1000:.0f} ({ROUNDS} rounds)", flush=True)


main()
