"""Checks shared by the Python client scenarios: a log of deliveries, assignments and commits
from every group member, and the properties the scenarios assert on it."""
import faulthandler
import os
import threading
import time
from collections import defaultdict

FAILS = []

# The test harness kills a script at its time limit and prints its stderr. Every thread's Python
# stack is written there 10 s before, so that a hang shows where each member was waiting.
_LIMIT = int(os.environ.get("KGROUPS_SCRIPT_LIMIT_S", "0") or 0)
if _LIMIT > 10:
    faulthandler.dump_traceback_later(_LIMIT - 10)


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)


class Log:
    def __init__(self):
        self.lock = threading.Lock()
        self.deliveries = []  # (time, member, partition, offset)
        self.commits = []  # (time, partition, offset)
        self.events = []  # (time, member, kind, partitions)
        self.notes = []

    def deliver(self, who, p, o):
        with self.lock:
            self.deliveries.append((time.monotonic(), who, p, o))

    def commit(self, p, o):
        with self.lock:
            self.commits.append((time.monotonic(), p, o))

    def event(self, who, kind, parts):
        with self.lock:
            self.events.append((time.monotonic(), who, kind, parts))

    def note(self, s):
        with self.lock:
            self.notes.append(s)

    def check_nothing_lost(self, acked):
        seen = {(p, o) for _, _, p, o in self.deliveries}
        missing = {(a[0], a[1]) for a in acked} - seen
        check(not missing, f"{len(missing)} acked records never delivered, e.g. {sorted(missing)[:5]}")

    def check_redelivery_past_commit(self, librdkafka=False):
        """A record is delivered again only if no commit past it had landed before.

        With `librdkafka`, one shape of re-delivery is the client's own and is reported, not
        failed: the member was handed record o, a rebalance callback of that member came, and the
        very next record of that partition it got was o again. librdkafka pauses every assigned
        partition before it queues a rebalance callback and sets each one's next fetch to the
        application position (rdkafka_partition.c, rd_kafka_toppar_pause_resume); the application
        position moves past a record only after the record left the queue
        (rd_kafka_consume0 pops it, then rd_kafka_fetch_op_app_prepare). A pause that falls
        between the two resumes the fetch at o, so o comes again after the callback. The broker
        cannot cause this: the client skips every record below the offset it fetches from.
        """
        commits = sorted(self.commits)
        bad, race = [], []
        for i, (t, who, p, o) in enumerate(self.deliveries):
            past = [c for c in commits if c[0] < t and c[1] == p and c[2] > o]
            if not past:
                continue
            before = [d for d in self.deliveries[:i] if d[1] == who and d[2] == p]
            if librdkafka and before and before[-1][3] == o and any(
                    e[1] == who and before[-1][0] < e[0] < t and e[2] in ("assign", "revoke")
                    for e in self.events):
                race.append((p, o, who))
                print("re-delivered after a rebalance callback's pause (librdkafka):", (t, who, p, o),
                      "first at", before[-1][0], flush=True)
                continue
            bad.append((p, o, who))
            if len(bad) == 1:
                print("first re-delivery below a commit:", (t, who, p, o), "after", past[:3],
                      "events within 3 s before:", [e for e in self.events if (p in e[3] or e[1] == who)
                                                    and t - 3 < e[0] < t + 1],
                      "member's earlier deliveries of the partition:", before[-3:], flush=True)
        self.client_redeliveries = race
        check(not bad, f"{len(bad)} deliveries below a landed commit, e.g. {bad[:5]}")

    def check_one_owner(self):
        """Per partition, assignment intervals of different members never overlap."""
        owner = {}
        bad = []
        for _, who, kind, parts in sorted(self.events):
            for p in parts:
                if kind == "assign":
                    if owner.get(p) not in (None, who):
                        bad.append((p, owner[p], who))
                    owner[p] = who
                elif kind == "revoke" and owner.get(p) == who:
                    del owner[p]
            if kind == "closed":
                for p in [p for p, w in owner.items() if w == who]:
                    del owner[p]
        check(not bad, f"partitions owned by two members at once: {bad[:5]}")

    def duplicates(self):
        count = defaultdict(int)
        for _, _, p, o in self.deliveries:
            count[(p, o)] += 1
        return sum(1 for v in count.values() if v > 1)


def wait_until(cond, timeout):
    end = time.time() + timeout
    while time.time() < end and not cond():
        time.sleep(0.1)
    return cond()
