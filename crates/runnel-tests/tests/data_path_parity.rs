//! Data-path behaviours checked against Apache Kafka's (ReplicaManager, Partition, KafkaApis):
//! leader-epoch fencing (KIP-320), ListOffsets corner cases, DeleteRecords and auto-creation of
//! internal topics.

use std::time::Duration;

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use runnel_tests::clients::{create_topic, producer, txn_producer, unique_topic, MAX_WAIT};
use runnel_tests::raw::{self, error_code, RawClient};
use runnel_tests::TestBroker;

const UNKNOWN_LEADER_EPOCH: i16 = 75;
const INVALID_REQUEST: i16 = 42;

fn connect(broker: &TestBroker) -> RawClient {
    RawClient::connect(broker.addr()).expect("connect")
}

fn produce_ok(c: &mut RawClient, topic: &str, batch: bytes::Bytes) -> i64 {
    let p = c.produce(topic, 0, batch, 1).expect("produce");
    assert_eq!(p.error_code, 0, "produce to {topic}: {p:?}");
    p.base_offset
}

/// A ListOffsets topic entry: the topic and its `(partition, timestamp, current_leader_epoch)`.
type OffsetsQuery<'a> = (&'a str, &'a [(i32, i64, i32)]);

fn list_offsets_request(isolation_level: i8, topics: &[OffsetsQuery]) -> ListOffsetsRequest {
    ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_isolation_level(isolation_level)
        .with_topics(
            topics
                .iter()
                .map(|(name, partitions)| {
                    ListOffsetsTopic::default()
                        .with_name(raw::topic_name(name))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|&(index, timestamp, current_leader_epoch)| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(index)
                                        .with_timestamp(timestamp)
                                        .with_current_leader_epoch(current_leader_epoch)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

/// Every (topic, partition, error, offset) of a ListOffsets response.
fn list_offsets_entries(resp: &ListOffsetsResponse) -> Vec<(String, i32, i16, i64)> {
    resp.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.error_code,
                    p.offset,
                )
            })
        })
        .collect()
}

/// KIP-320: a fetch whose current_leader_epoch is newer than the leader's gets
/// UNKNOWN_LEADER_EPOCH (the broker has not caught up); -1 skips the check.
#[test]
fn fetch_with_a_newer_current_leader_epoch_is_unknown_leader_epoch() {
    let broker = TestBroker::start(&[]);
    let topic = "fetch-epoch";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    produce_ok(&mut c, topic, raw::simple_batch(topic, 2));
    for version in [9, 12] {
        for (epoch, want) in [
            (-1, 0),
            (0, 0),
            (1, UNKNOWN_LEADER_EPOCH),
            (7, UNKNOWN_LEADER_EPOCH),
        ] {
            let mut fetch_topic = raw::fetch_topic(topic, &[(0, 0, 1 << 20)]);
            fetch_topic.partitions[0].current_leader_epoch = epoch;
            let req = FetchRequest::default()
                .with_max_wait_ms(0)
                .with_min_bytes(0)
                .with_max_bytes(1 << 20)
                .with_topics(vec![fetch_topic]);
            let resp = c.request(version, &req).unwrap();
            let p = raw::find_partition(&resp, topic, 0).expect("partition listed");
            assert_eq!(
                p.error_code, want,
                "fetch v{version} with current_leader_epoch {epoch}"
            );
            if want != 0 {
                assert_eq!(raw::records_len(&p.records), 0, "no records with an error");
            } else {
                assert_eq!(raw::record_values(&p.records).unwrap().len(), 2);
            }
        }
    }
}

/// KIP-320 for ListOffsets (v4+): a newer current_leader_epoch is UNKNOWN_LEADER_EPOCH.
#[test]
fn list_offsets_with_a_newer_current_leader_epoch_is_unknown_leader_epoch() {
    let broker = TestBroker::start(&[]);
    let topic = "list-offsets-epoch";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    produce_ok(&mut c, topic, raw::simple_batch(topic, 2));
    for version in [4, 7, 8] {
        for timestamp in [-1, -2, -3, 0] {
            if timestamp == -3 && version < 7 {
                continue;
            }
            for (epoch, want) in [(-1, 0), (0, 0), (3, UNKNOWN_LEADER_EPOCH)] {
                let req = list_offsets_request(0, &[(topic, &[(0, timestamp, epoch)])]);
                let resp = c.request(version, &req).unwrap();
                let entries = list_offsets_entries(&resp);
                assert_eq!(entries.len(), 1, "{entries:?}");
                assert_eq!(
                    entries[0].2, want,
                    "ListOffsets v{version} timestamp {timestamp} current_leader_epoch {epoch}"
                );
                if want != 0 {
                    assert_eq!(entries[0].3, -1, "offset with an error");
                }
            }
        }
    }
}

/// Kafka answers INVALID_REQUEST for a partition named more than once in one ListOffsets
/// request (ListOffsetsRequest.duplicatePartitions), and serves the others.
#[test]
fn list_offsets_duplicate_partitions_are_invalid_request() {
    let broker = TestBroker::start(&[]);
    let topic = "list-offsets-dup";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 2).unwrap();
    produce_ok(&mut c, topic, raw::simple_batch(topic, 3));
    let req = list_offsets_request(0, &[(topic, &[(0, -1, -1), (1, -1, -1), (0, -2, -1)])]);
    let resp = c.request(7, &req).unwrap();
    let entries = list_offsets_entries(&resp);
    let p0: Vec<_> = entries.iter().filter(|e| e.1 == 0).collect();
    assert!(!p0.is_empty(), "{entries:?}");
    assert!(
        p0.iter().all(|e| e.2 == INVALID_REQUEST && e.3 == -1),
        "duplicated partition 0: {entries:?}"
    );
    let p1: Vec<_> = entries.iter().filter(|e| e.1 == 1).collect();
    assert_eq!(p1.len(), 1, "{entries:?}");
    assert_eq!((p1[0].2, p1[0].3), (0, 0), "partition 1 is served");

    // The same partition under two topic entries is a duplicate too.
    let req = list_offsets_request(0, &[(topic, &[(1, -1, -1)]), (topic, &[(1, -2, -1)])]);
    let resp = c.request(7, &req).unwrap();
    let entries = list_offsets_entries(&resp);
    assert!(!entries.is_empty());
    assert!(
        entries.iter().all(|e| e.2 == INVALID_REQUEST),
        "duplicated partition 1: {entries:?}"
    );
}

/// KIP-734's max timestamp (-3) is bounded like any timestamp lookup: a read_committed
/// request does not see an offset at or past the last stable offset (Kafka's
/// `Partition.fetchOffsetForTimestamp` filters every lookup but latest/earliest by the last
/// fetchable offset), so the open transaction's record is not the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_max_timestamp_read_committed_stops_at_the_lso() {
    let broker = TestBroker::start(&[("transaction.state.log.num.partitions", "3")]);
    let bs = broker.bootstrap();
    let topic = unique_topic("max-ts-lso");
    create_topic(&bs, &topic, 1, &[]).await;
    let base = raw::now_ms();

    let plain: FutureProducer = producer(&bs, &[]);
    let rec: FutureRecord<'_, str, str> = FutureRecord::to(&topic)
        .partition(0)
        .payload("committed")
        .timestamp(base);
    let d = plain
        .send(rec, Timeout::After(MAX_WAIT))
        .await
        .expect("plain");
    assert_eq!(d.offset, 0);

    let txn = txn_producer(&bs, &unique_topic("max-ts-lso-id"), &[]);
    tokio::task::block_in_place(|| txn.init_transactions(Duration::from_secs(30)))
        .expect("init_transactions");
    txn.begin_transaction().expect("begin");
    let rec: FutureRecord<'_, str, str> = FutureRecord::to(&topic)
        .partition(0)
        .payload("open")
        .timestamp(base + 60_000);
    let d = txn
        .send(rec, Timeout::After(MAX_WAIT))
        .await
        .expect("txn send");
    assert_eq!(d.offset, 1);

    let addr = broker.addr();
    let (uncommitted, committed, latest_committed) = tokio::task::block_in_place(|| {
        let mut c = RawClient::connect(addr).unwrap();
        let mut ask = |isolation: i8, timestamp: i64| {
            let req = list_offsets_request(isolation, &[(&topic, &[(0, timestamp, -1)])]);
            let resp = c.request(7, &req).unwrap();
            let p = resp.topics[0].partitions[0].clone();
            assert_eq!(p.error_code, 0, "{p:?}");
            (p.timestamp, p.offset)
        };
        (ask(0, -3), ask(1, -3), ask(1, -1))
    });
    assert_eq!(
        uncommitted,
        (base + 60_000, 1),
        "read_uncommitted max timestamp"
    );
    assert_eq!(latest_committed.1, 1, "LSO");
    assert_eq!(
        committed,
        (-1, -1),
        "read_committed max timestamp must not name an offset at or past the LSO"
    );
    tokio::task::block_in_place(|| txn.abort_transaction(Duration::from_secs(30))).expect("abort");
}

/// Kafka refuses DeleteRecords on internal topics with INVALID_TOPIC_EXCEPTION
/// (ReplicaManager.deleteRecordsOnLocalLog), whatever their cleanup policy.
#[test]
fn delete_records_on_an_internal_topic_is_invalid_topic() {
    let broker = TestBroker::start(&[("offsets.topic.num.partitions", "2")]);
    let mut c = connect(&broker);
    // FindCoordinator creates __consumer_offsets, as in Kafka.
    let req = kafka_protocol::messages::FindCoordinatorRequest::default()
        .with_key(kafka_protocol::protocol::StrBytes::from_static_str("g"))
        .with_key_type(0);
    let resp = c.request(3, &req).unwrap();
    assert_eq!(resp.error_code, 0, "{resp:?}");
    for offset in [-1, 0] {
        let req = DeleteRecordsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(raw::topic_name("__consumer_offsets"))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(offset)])]);
        let resp = c.request(2, &req).unwrap();
        let p = &resp.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.low_watermark),
            (error_code::INVALID_TOPIC_EXCEPTION, -1),
            "DeleteRecords on __consumer_offsets to {offset}"
        );
    }
}

/// Metadata that auto-creates `__consumer_offsets` or `__transaction_state` creates them as
/// Kafka's AutoTopicCreationManager does: with their own partition counts, compacted and
/// internal, not as an ordinary topic with `num.partitions`.
#[test]
fn metadata_auto_creates_internal_topics_with_their_own_settings() {
    let broker = TestBroker::start(&[
        ("num.partitions", "1"),
        ("offsets.topic.num.partitions", "4"),
        ("transaction.state.log.num.partitions", "3"),
    ]);
    let mut c = connect(&broker);
    for (name, partitions) in [("__consumer_offsets", 4), ("__transaction_state", 3)] {
        let resp = c.metadata(12, Some(&[name]), true).unwrap();
        let t = &resp.topics[0];
        assert_eq!(t.error_code, 0, "{name}: {t:?}");
        assert_eq!(t.partitions.len(), partitions, "{name} partition count");
        assert!(t.is_internal, "{name} is internal");
    }
    // And the group coordinator works on it.
    let req = kafka_protocol::messages::FindCoordinatorRequest::default()
        .with_key(kafka_protocol::protocol::StrBytes::from_static_str("g"))
        .with_key_type(0);
    let resp = c.request(3, &req).unwrap();
    assert_eq!(resp.error_code, 0, "{resp:?}");
}

/// Kafka's produce never creates a topic, so producing to `__consumer_offsets` before it
/// exists must not leave behind an ordinary one-partition `__consumer_offsets`.
#[test]
fn produce_to_a_missing_internal_topic_does_not_create_it() {
    let broker = TestBroker::start(&[
        ("num.partitions", "1"),
        ("offsets.topic.num.partitions", "4"),
    ]);
    let mut c = connect(&broker);
    let p = c
        .produce("__consumer_offsets", 0, raw::simple_batch("x", 1), 1)
        .unwrap();
    assert_ne!(p.error_code, 0, "produce to __consumer_offsets accepted");
    let resp = c.metadata(12, None, false).unwrap();
    let existing = resp
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("__consumer_offsets"));
    if let Some(t) = existing {
        assert_eq!(
            t.partitions.len(),
            4,
            "__consumer_offsets made by produce: {t:?}"
        );
    }
}

/// A produce with invalid acks changes nothing: Kafka checks the topic exists
/// (UNKNOWN_TOPIC_OR_PARTITION) and refuses the acks, without creating a topic.
#[test]
fn produce_with_invalid_acks_does_not_auto_create_the_topic() {
    let broker = TestBroker::start(&[]);
    let mut c = connect(&broker);
    for acks in [2, -2] {
        let p = c
            .produce("acks-new-topic", 0, raw::simple_batch("x", 1), acks)
            .unwrap();
        assert_ne!(p.error_code, 0, "acks={acks}");
    }
    let resp = c.metadata(12, Some(&["acks-new-topic"]), false).unwrap();
    assert_eq!(
        resp.topics[0].error_code,
        error_code::UNKNOWN_TOPIC_OR_PARTITION,
        "a produce with invalid acks created the topic"
    );
}

/// OffsetForLeaderEpoch for the current leader epoch answers the log end offset even before
/// anything was written: a Kafka leader records its epoch when it becomes leader
/// (`LeaderEpochFileCache.endOffsetFor`: the latest epoch ends at the log end).
#[test]
fn offset_for_leader_epoch_of_an_empty_partition_is_its_log_end() {
    let broker = TestBroker::start(&[]);
    let topic = "epoch-empty";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    let ask = |c: &mut RawClient| {
        let req = OffsetForLeaderEpochRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(raw::topic_name(topic))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(0)
                    .with_leader_epoch(0)])]);
        let resp = c.request(4, &req).unwrap();
        let p = resp.topics[0].partitions[0].clone();
        (p.error_code, p.leader_epoch, p.end_offset)
    };
    assert_eq!(ask(&mut c), (0, 0, 0), "empty partition");
    produce_ok(&mut c, topic, raw::simple_batch(topic, 2));
    assert_eq!(ask(&mut c), (0, 0, 2), "after two records");
}

fn assert_produce_refused_as_invalid_record(cases: &[(&str, bytes::Bytes)]) {
    let broker = TestBroker::start(&[]);
    let topic = "produce-validate";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    for (what, records) in cases {
        for version in [3, 9, 11] {
            let p = c.produce_at(version, topic, 0, records.clone(), 1).unwrap();
            assert_eq!(
                p.error_code,
                error_code::INVALID_RECORD,
                "produce v{version} of {what}"
            );
        }
    }
    assert_eq!(c.log_end_offset(topic, 0).unwrap(), 0, "nothing appended");
    produce_ok(&mut c, topic, raw::simple_batch(topic, 3));
}

/// Kafka's `ProduceRequest.validateRecords` (v3+): records without a whole batch get
/// INVALID_RECORD ("must have at least one record batch per partition").
#[test]
fn produce_without_a_whole_batch_is_invalid_record() {
    let good = raw::simple_batch("whole", 3);
    assert_produce_refused_as_invalid_record(&[
        ("empty records", bytes::Bytes::new()),
        ("11 bytes", raw::truncate(&good, 11)),
        ("a truncated batch", raw::truncate(&good, good.len() - 1)),
    ]);
}

/// Kafka's `ProduceRequest.validateRecords` (v3+): a batch whose magic is not 2 gets
/// INVALID_RECORD ("only allowed to contain record batches with magic version 2").
#[test]
fn produce_of_a_batch_with_magic_other_than_2_is_invalid_record() {
    let good = raw::simple_batch("magic", 3);
    assert_produce_refused_as_invalid_record(&[
        ("magic 0", raw::with_magic(&good, 0)),
        ("magic 1", raw::with_magic(&good, 1)),
        ("magic 3", raw::with_magic(&good, 3)),
    ]);
}

/// KIP-74: even a fetch with max_bytes 0 and partition_max_bytes 0 returns the first batch
/// whole, and only that one. (Checked: Runnel already does this.)
#[test]
fn fetch_with_zero_limits_still_returns_the_first_batch() {
    let broker = TestBroker::start(&[]);
    let topic = "fetch-zero-limits";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    produce_ok(&mut c, topic, raw::simple_batch(topic, 2));
    produce_ok(&mut c, topic, raw::simple_batch(topic, 3));
    for version in [4, 12] {
        let req = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(0)
            .with_topics(vec![raw::fetch_topic(topic, &[(0, 0, 0)])]);
        let resp = c.request(version, &req).unwrap();
        let p = raw::find_partition(&resp, topic, 0).unwrap();
        assert_eq!(p.error_code, 0);
        assert_eq!(
            raw::batch_headers(p.records.as_ref().unwrap()).len(),
            1,
            "v{version}: exactly the first batch"
        );
        assert_eq!(raw::record_values(&p.records).unwrap().len(), 2);
    }
}
