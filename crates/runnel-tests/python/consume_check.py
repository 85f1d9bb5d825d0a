"""Reads <n> records from partition 0 of <topic> from the beginning with kafka-python and
prints each as `offset<TAB>key<TAB>value<TAB>h1=v1,h2=v2` (for the Rust side to compare).

Usage: consume_check.py <bootstrap> <topic> <n>
Prints the records, then: OK consumed=<n>
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import args, check_offsets_contiguous, consume_exactly, import_kafka  # noqa: E402

bootstrap, topic, n = args(1, "<n>")
import_kafka()
from kafka import KafkaConsumer, TopicPartition  # noqa: E402

consumer = KafkaConsumer(
    bootstrap_servers=bootstrap,
    enable_auto_commit=False,
    request_timeout_ms=15000,
    fetch_max_wait_ms=100,
)
tp = TopicPartition(topic, 0)
consumer.assign([tp])
consumer.seek_to_beginning(tp)
records = consume_exactly(consumer, int(n))
check_offsets_contiguous(records)
for r in records:
    hdrs = ",".join("%s=%s" % (k, (v or b"").decode()) for k, v in r.headers)
    print("%d\t%s\t%s\t%s" % (r.offset, (r.key or b"").decode(), (r.value or b"").decode(), hdrs))
consumer.close()
print("OK consumed=%d" % len(records), flush=True)
