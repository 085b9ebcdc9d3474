"""Checks shared by the Python client scenarios: a log of deliveries, assignments and commits
from every group member, and the properties the scenarios assert on it."""
import threading
import time
from collections import defaultdict

FAILS = []


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

    def check_redelivery_past_commit(self):
        """A record is delivered again only if no commit past it had landed before."""
        commits = sorted(self.commits)
        bad = []
        for t, who, p, o in self.deliveries:
            past = [c for c in commits if c[0] < t and c[1] == p and c[2] > o]
            if past:
                bad.append((p, o, who))
                if len(bad) == 1:
                    print("first re-delivery below a commit:", (t, who, p, o), "after", past[:3],
                          "events:", [e for e in self.events if p in e[3]][:8], flush=True)
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
