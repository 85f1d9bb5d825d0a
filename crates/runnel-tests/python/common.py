"""Shared helpers for the kafka-python scripts driven by tests/python_clients.rs.

Every script takes `<bootstrap> <topic>` (plus script-specific arguments), asserts what it
reads, prints a one-line summary starting with `OK ` on success and exits non-zero otherwise.
All waits are bounded so a broken broker fails the script instead of hanging it.
"""

import sys
import time

TIMEOUT_S = 20.0


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def args(n_extra=0, usage=""):
    if len(sys.argv) != 3 + n_extra:
        fail("usage: %s <bootstrap> <topic> %s" % (sys.argv[0], usage))
    return sys.argv[1:]


def import_kafka():
    try:
        import kafka  # noqa: F401
    except ImportError:
        fail("kafka-python is not installed: run scripts/install-test-deps.sh "
             "(python3 -m pip install kafka-python lz4)")
    return kafka


def consume_exactly(consumer, n, timeout_s=TIMEOUT_S):
    """Polls until n records arrived (fails after timeout_s), then checks no more arrive."""
    records = []
    deadline = time.monotonic() + timeout_s
    while len(records) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            fail("timed out with %d of %d records: %r" % (
                len(records), n, [(r.partition, r.offset, r.value) for r in records[:20]]))
        batch = consumer.poll(timeout_ms=int(min(left, 1.0) * 1000))
        for tp_records in batch.values():
            records.extend(tp_records)
    extra_deadline = time.monotonic() + 0.5
    while time.monotonic() < extra_deadline:
        for tp_records in consumer.poll(timeout_ms=100).values():
            records.extend(tp_records)
    check(len(records) == n, "expected %d records, got %d" % (n, len(records)))
    return records


def check_offsets_contiguous(records):
    """Offsets per partition are 0, 1, 2, ... in the order received."""
    per_partition = {}
    for r in records:
        per_partition.setdefault(r.partition, []).append(r.offset)
    for p, offsets in per_partition.items():
        check(offsets == list(range(len(offsets))),
              "partition %d offsets not contiguous from 0: %r" % (p, offsets[:30]))
    return per_partition
