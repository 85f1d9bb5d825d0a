"""A kafka-python group member for tests/consumer_groups.rs.

Usage: group_member.py <bootstrap> <topic> <group> <n> <delay_ms>

Subscribes to <topic> in <group> (range assignor, session timeout 6 s, earliest reset, no
auto-commit). For every record it prints `REC <partition> <offset> <value>`, sleeps <delay_ms>,
commits <offset + 1> synchronously and prints `COMMIT <partition> <offset + 1>` once the broker
acknowledged it. Prints `ASSIGNED <p,p,...>` / `REVOKED <p,p,...>` on rebalances.

With n > 0: stops after exactly n records (and checks that no more arrive for 1 s), prints the
committed offsets as `COMMITTED <partition> <offset>`, closes (leaving the group) and prints
`OK consumed=<n>`. With n == 0 it runs until killed (at most 60 s, then fails).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import check, fail, import_kafka  # noqa: E402

if len(sys.argv) != 6:
    fail("usage: group_member.py <bootstrap> <topic> <group> <n> <delay_ms>")
bootstrap, topic, group, n, delay_ms = sys.argv[1:]
n = int(n)
delay = int(delay_ms) / 1000.0
import_kafka()
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition  # noqa: E402
from kafka.coordinator.assignors.range import RangePartitionAssignor  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402


def parts(tps):
    return ",".join(str(tp.partition) for tp in sorted(tps, key=lambda tp: tp.partition))


class Listener(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked):
        print("REVOKED " + parts(revoked), flush=True)

    def on_partitions_assigned(self, assigned):
        print("ASSIGNED " + parts(assigned), flush=True)


consumer = KafkaConsumer(
    bootstrap_servers=bootstrap,
    group_id=group,
    client_id="py-" + group,
    enable_auto_commit=False,
    auto_offset_reset="earliest",
    session_timeout_ms=6000,
    heartbeat_interval_ms=500,
    request_timeout_ms=15000,
    max_poll_records=1,
    fetch_max_wait_ms=100,
    partition_assignment_strategy=[RangePartitionAssignor],
)
consumer.subscribe([topic], listener=Listener())

consumed = 0
deadline = time.monotonic() + (25.0 if n > 0 else 60.0)
while n == 0 or consumed < n:
    if time.monotonic() > deadline:
        fail("timed out with %d of %d records" % (consumed, n))
    for tp_records in consumer.poll(timeout_ms=200).values():
        for r in tp_records:
            print("REC %d %d %s" % (r.partition, r.offset, r.value.decode()), flush=True)
            consumed += 1
            if delay:
                time.sleep(delay)
            tp = TopicPartition(r.topic, r.partition)
            consumer.commit({tp: OffsetAndMetadata(r.offset + 1, "", -1)})
            print("COMMIT %d %d" % (r.partition, r.offset + 1), flush=True)

quiet_until = time.monotonic() + 1.0
while time.monotonic() < quiet_until:
    extra = [r for rs in consumer.poll(timeout_ms=100).values() for r in rs]
    check(not extra, "unexpected extra records: %r" % [(r.partition, r.offset) for r in extra])
for tp in sorted(consumer.assignment(), key=lambda tp: tp.partition):
    print("COMMITTED %d %s" % (tp.partition, consumer.committed(tp)), flush=True)
consumer.close()
print("OK consumed=%d" % consumed, flush=True)
