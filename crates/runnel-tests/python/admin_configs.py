"""kafka-python's KafkaAdminClient against runnel: create with configs, describe, alter,
grow partitions. Prints `OK <fact>` lines the Rust test checks; exits non-zero on a mismatch."""
import sys

from kafka import KafkaConsumer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic

bootstrap, topic = sys.argv[1], sys.argv[2]
admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
admin.create_topics([NewTopic(topic, 2, 1, topic_configs={"segment.bytes": "500000"})])


def config_value(key):
    response = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])[0]
    for entry in response.resources[0][4]:
        if entry[0] == key:
            return entry[1]
    raise SystemExit(f"{key} missing from the description")


assert config_value("segment.bytes") == "500000", config_value("segment.bytes")
result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"segment.ms": "60000"})])
assert result.resources[0][0] == 0, result
print("OK segment.ms=" + config_value("segment.ms"))

bad = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"segment.bytes": "x"})])
assert bad.resources[0][0] == 40, bad
print("OK invalid value -> INVALID_CONFIG")
static = admin.alter_configs([ConfigResource(ConfigResourceType.BROKER, "0", configs={"num.partitions": "3"})])
assert static.resources[0][0] == 40, static
print("OK static broker key -> INVALID_CONFIG")
missing = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic + "-missing", configs={"segment.ms": "1"})])
assert missing.resources[0][0] == 3, missing
print("OK unknown topic -> UNKNOWN_TOPIC_OR_PARTITION")
# Legacy AlterConfigs replaces a topic's whole override set, as in Kafka: segment.bytes went
# back to the broker default when segment.ms was set alone.
assert config_value("segment.bytes") == "1073741824", config_value("segment.bytes")
print("OK AlterConfigs replaced the override set")

admin.create_partitions({topic: NewPartitions(4)})
consumer = KafkaConsumer(bootstrap_servers=bootstrap)
print("OK partitions=%d" % len(consumer.partitions_for_topic(topic)))
