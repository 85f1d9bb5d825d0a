"""kafka-python KafkaProducer (gzip and lz4) + KafkaConsumer (assign + seek_to_beginning).

Usage: produce_consume.py <bootstrap> <topic>
Creates <topic> with 3 partitions, produces 60 keyed records with headers per codec, reads
them all back and checks keys, values, headers, partitions and offsets.
Prints: OK produced=<n> consumed=<n> partitions=<p> codecs=<list>
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import args, check, check_offsets_contiguous, consume_exactly, fail, import_kafka  # noqa: E402

bootstrap, topic = args()
import_kafka()
try:
    import lz4  # noqa: F401
except ImportError:
    fail("python package lz4 is not installed: run scripts/install-test-deps.sh")

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

PARTITIONS = 3
PER_CODEC = 60
CODECS = ["gzip", "lz4"]

admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
admin.create_topics([NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)])
admin.close()

expected = {}  # value -> (key, headers, partition, offset)
for codec in CODECS:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type=codec,
        acks="all",
        linger_ms=20,
        enable_idempotence=False,
        request_timeout_ms=10000,
        max_block_ms=10000,
        delivery_timeout_ms=20000,
    )
    futures = []
    for i in range(PER_CODEC):
        key = ("key-%d" % (i % 7)).encode()
        value = ("%s-value-%d-%s" % (codec, i, "z" * (i * 3))).encode()
        headers = [("codec", codec.encode()), ("index", str(i).encode()), ("index", b"dup")]
        futures.append((key, value, headers, producer.send(topic, key=key, value=value, headers=headers)))
    for key, value, headers, fut in futures:
        md = fut.get(timeout=20)
        check(md.topic == topic, "metadata topic %r" % md.topic)
        check(0 <= md.partition < PARTITIONS, "partition %d" % md.partition)
        expected[value] = (key, headers, md.partition, md.offset)
    producer.close(timeout=10)

# Same key, same partition.
key_partition = {}
for value, (key, _, partition, _) in expected.items():
    check(key_partition.setdefault(key, partition) == partition, "key %r moved partitions" % key)

consumer = KafkaConsumer(
    bootstrap_servers=bootstrap,
    enable_auto_commit=False,
    request_timeout_ms=15000,
    fetch_max_wait_ms=100,
)
tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
consumer.assign(tps)
consumer.seek_to_beginning(*tps)
records = consume_exactly(consumer, len(expected))
seen = set()
for r in records:
    check(r.value in expected, "unexpected value %r" % r.value)
    check(r.value not in seen, "value %r read twice" % r.value)
    seen.add(r.value)
    key, headers, partition, offset = expected[r.value]
    check(r.key == key, "key %r != %r" % (r.key, key))
    check((r.partition, r.offset) == (partition, offset),
          "%r at %d@%d, acknowledged at %d@%d" % (r.value, r.partition, r.offset, partition, offset))
    check(list(r.headers) == headers, "headers %r != %r" % (r.headers, headers))
per_partition = check_offsets_contiguous(records)
end = consumer.end_offsets(tps)
check(sum(end.values()) == len(expected), "end offsets %r" % end)
consumer.close()
print("OK produced=%d consumed=%d partitions=%d codecs=%s" % (
    len(expected), len(records), len(per_partition), ",".join(CODECS)), flush=True)
