"""kafka-python KafkaAdminClient: create topics, errors for existing/invalid ones, delete.

Usage: admin.py <bootstrap> <topic-prefix>
Prints: OK created=<names> deleted=<names> remaining=<name>:<partitions>,...
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import args, check, fail, import_kafka  # noqa: E402

bootstrap, prefix = args()
import_kafka()
from kafka import KafkaConsumer  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402
from kafka.errors import (  # noqa: E402
    InvalidReplicationFactorError,
    InvalidTopicError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
a, b = prefix + "-a", prefix + "-b"
admin.create_topics([NewTopic(a, 3, 1), NewTopic(b, 2, 1)])


def expect_error(exc_type, fn):
    try:
        fn()
    except exc_type:
        return
    except Exception as e:  # noqa: BLE001
        fail("expected %s, got %r" % (exc_type.__name__, e))
    fail("expected %s, got success" % exc_type.__name__)


expect_error(TopicAlreadyExistsError, lambda: admin.create_topics([NewTopic(a, 3, 1)]))
expect_error(InvalidTopicError, lambda: admin.create_topics([NewTopic("bad name!", 1, 1)]))
expect_error(InvalidReplicationFactorError, lambda: admin.create_topics([NewTopic(prefix + "-rf", 1, 3)]))


def partitions_by_topic():
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        return {t: len(consumer.partitions_for_topic(t) or ()) for t in consumer.topics()}
    finally:
        consumer.close()


topics = partitions_by_topic()
check(topics.get(a) == 3, "%s partitions: %r" % (a, topics))
check(topics.get(b) == 2, "%s partitions: %r" % (b, topics))
check(prefix + "-rf" not in topics, "failed topic exists: %r" % topics)

admin.delete_topics([b])
deadline = time.monotonic() + 10
while b in partitions_by_topic():
    check(time.monotonic() < deadline, "%s still listed 10 s after delete" % b)
    time.sleep(0.2)
expect_error(UnknownTopicOrPartitionError, lambda: admin.delete_topics([b]))
admin.close()

topics = partitions_by_topic()
remaining = sorted((t, n) for t, n in topics.items() if t.startswith(prefix))
print("OK created=%s,%s deleted=%s remaining=%s" % (
    a, b, b, ",".join("%s:%d" % tn for tn in remaining)), flush=True)
