"""What the confluent-kafka scenario scripts share: the bootstrap address (argv[1]), unique names,
topic creation, a producer that checks every record was acknowledged, and a draining poll loop."""
import sys
import time
import uuid

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from checks import FAILS, check

BOOT = sys.argv[1]


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(topic, partitions):
    admin = AdminClient({"bootstrap.servers": BOOT})
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(10)


def produce(topic, records, **conf):
    """Produces (key, value) pairs; returns the delivered (partition, offset, key, value)."""
    p = Producer({"bootstrap.servers": BOOT, "linger.ms": 5, **conf})
    acked = []

    def done(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
        else:
            FAILS.append(f"delivery failed: {err}")

    for k, v in records:
        p.produce(topic, key=k, value=v, on_delivery=done)
        p.poll(0)
    p.flush(30)
    check(len(acked) == len(records), f"acked {len(acked)} of {len(records)}")
    return acked


def drain(c, want, timeout=30):
    """Polls until `want` records arrived or `timeout` passed; returns the messages."""
    got = []
    end = time.time() + timeout
    while len(got) < want and time.time() < end:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() != KafkaError._PARTITION_EOF:
                FAILS.append(f"consumer error {m.error()}")
            continue
        got.append(m)
    return got
