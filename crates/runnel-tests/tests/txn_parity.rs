//! Idempotent producers and transactions compared with Apache Kafka, request by request over
//! the raw protocol: each test pins one answer Kafka gives (TransactionCoordinator, KafkaApis,
//! KIP-890 verification) where Runnel used to answer differently.

use std::net::SocketAddr;

use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::describe_transactions_response::TransactionState;
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestTopic};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, ProducerId, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use runnel_tests::raw::{topic_name, RawClient};
use runnel_tests::TestBroker;

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUEST: i16 = 42;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const OPERATION_NOT_ATTEMPTED: i16 = 55;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTION_ABORTABLE: i16 = 120;
const CONCURRENT_TRANSACTIONS: i16 = 51;

fn broker() -> TestBroker {
    TestBroker::start(&[
        ("transaction.state.log.num.partitions", "3"),
        ("offsets.topic.num.partitions", "3"),
    ])
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect(addr).expect("connect")
}

fn txn_id(id: &str) -> TransactionalId {
    StrBytes::from_string(id.to_owned()).into()
}

/// InitProducerId v4 at `version`, optionally naming a producer (KIP-360): (error, id, epoch).
fn init(
    c: &mut RawClient,
    version: i16,
    id: Option<&str>,
    producer: (i64, i16),
) -> (i16, i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(id.map(txn_id))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1);
    let r = c.request(version, &req).expect("InitProducerId");
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

fn init_ok(c: &mut RawClient, id: &str) -> (i64, i16) {
    let (error, pid, epoch) = init(c, 4, Some(id), (-1, -1));
    assert_eq!(error, NONE, "InitProducerId {id}");
    (pid, epoch)
}

fn topics(parts: &[(&str, &[i32])]) -> Vec<AddPartitionsToTxnTopic> {
    parts
        .iter()
        .map(|(t, ps)| {
            AddPartitionsToTxnTopic::default()
                .with_name(topic_name(t))
                .with_partitions(ps.to_vec())
        })
        .collect()
}

/// AddPartitionsToTxn v3: sorted (topic, partition, error).
fn add_v3(
    c: &mut RawClient,
    id: &str,
    (pid, epoch): (i64, i16),
    parts: &[(&str, &[i32])],
) -> Vec<(String, i32, i16)> {
    let req = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id(id))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(topics(parts));
    let r = c.request(3, &req).expect("AddPartitionsToTxn v3");
    let mut out: Vec<_> = r
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.partition_error_code,
                )
            })
        })
        .collect();
    out.sort();
    out
}

fn describe(c: &mut RawClient, id: &str) -> TransactionState {
    let req = DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id(id)]);
    let mut r = c.request(0, &req).expect("DescribeTransactions");
    assert_eq!(r.transaction_states.len(), 1);
    r.transaction_states.remove(0)
}

fn described_partitions(state: &TransactionState) -> Vec<(String, i32)> {
    let mut out: Vec<_> = state
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
        .collect();
    out.sort();
    out
}

/// Kafka's KafkaApis.handleAddPartitionsToTxnRequest: a partition missing from the metadata
/// fails the whole transaction's request: UNKNOWN_TOPIC_OR_PARTITION for it,
/// OPERATION_NOT_ATTEMPTED for the others, and nothing is added (v3 from producers, v4+ per
/// transaction of a batched request).
#[test]
fn add_partitions_naming_an_unknown_partition_adds_none() {
    let broker = broker();
    let mut c = connect(broker.addr());
    c.create_topic_ok("apt", 2).expect("create topic");
    let producer = init_ok(&mut c, "apt-a");

    let results = add_v3(
        &mut c,
        "apt-a",
        producer,
        &[("apt", &[0, 7]), ("apt-missing", &[0])],
    );
    assert_eq!(
        results,
        vec![
            ("apt".to_owned(), 0, OPERATION_NOT_ATTEMPTED),
            ("apt".to_owned(), 7, UNKNOWN_TOPIC_OR_PARTITION),
            ("apt-missing".to_owned(), 0, UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    let state = describe(&mut c, "apt-a");
    assert_eq!(state.transaction_state.as_str(), "Empty");
    assert!(described_partitions(&state).is_empty(), "{state:?}");

    // The partitions that exist can then be added.
    assert_eq!(
        add_v3(&mut c, "apt-a", producer, &[("apt", &[0, 1])]),
        vec![("apt".to_owned(), 0, NONE), ("apt".to_owned(), 1, NONE)]
    );
    let state = describe(&mut c, "apt-a");
    assert_eq!(state.transaction_state.as_str(), "Ongoing");
    assert_eq!(
        described_partitions(&state),
        vec![("apt".to_owned(), 0), ("apt".to_owned(), 1)]
    );

    // v4 batches transactions: only the one naming a missing partition is refused.
    let producer_b = init_ok(&mut c, "apt-b");
    let producer_c = init_ok(&mut c, "apt-c");
    let txn = |id: &str, (pid, epoch): (i64, i16), parts: &[(&str, &[i32])]| {
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(txn_id(id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_topics(topics(parts))
    };
    let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
        txn("apt-b", producer_b, &[("apt", &[0, 9])]),
        txn("apt-c", producer_c, &[("apt", &[1])]),
    ]);
    let r = c.request(4, &req).expect("AddPartitionsToTxn v4");
    assert_eq!(r.error_code, NONE);
    let mut results: Vec<(String, i32, i16)> = r
        .results_by_transaction
        .iter()
        .flat_map(|t| {
            t.topic_results.iter().flat_map(move |topic| {
                topic.results_by_partition.iter().map(move |p| {
                    (
                        t.transactional_id.0.to_string(),
                        p.partition_index,
                        p.partition_error_code,
                    )
                })
            })
        })
        .collect();
    results.sort();
    assert_eq!(
        results,
        vec![
            ("apt-b".to_owned(), 0, OPERATION_NOT_ATTEMPTED),
            ("apt-b".to_owned(), 9, UNKNOWN_TOPIC_OR_PARTITION),
            ("apt-c".to_owned(), 1, NONE),
        ]
    );
    assert_eq!(
        describe(&mut c, "apt-b").transaction_state.as_str(),
        "Empty"
    );
    assert_eq!(
        describe(&mut c, "apt-c").transaction_state.as_str(),
        "Ongoing"
    );
}

/// Kafka's prepareInitProducerIdTransit: a request naming a producer id that is neither the
/// current one nor (with an exhausted epoch) the previous one is PRODUCER_FENCED, which
/// InitProducerId before v4 (KIP-588) answers as INVALID_PRODUCER_EPOCH.
#[test]
fn init_producer_id_naming_another_producer_is_producer_fenced() {
    let broker = broker();
    let mut c = connect(broker.addr());
    let (pid, epoch) = init_ok(&mut c, "ipf");
    let other = (pid + 1000, epoch);
    assert_eq!(init(&mut c, 4, Some("ipf"), other).0, PRODUCER_FENCED);
    assert_eq!(
        init(&mut c, 3, Some("ipf"), other).0,
        INVALID_PRODUCER_EPOCH
    );
    // The current producer still bumps its own epoch.
    assert_eq!(
        init(&mut c, 4, Some("ipf"), (pid, epoch)),
        (NONE, pid, epoch + 1)
    );
}

/// Kafka's handleInitProducerId with a null transactional id "always blindly" hands out a new
/// producer id at epoch 0, whatever producer the request names (idempotent producers bump their
/// epoch themselves); naming only one of producer id and epoch is INVALID_REQUEST (KafkaApis).
#[test]
fn idempotent_init_producer_id_always_gives_a_new_producer_id() {
    let broker = broker();
    let mut c = connect(broker.addr());
    let (error, pid, epoch) = init(&mut c, 4, None, (-1, -1));
    assert_eq!((error, epoch), (NONE, 0));
    let (error, pid2, epoch2) = init(&mut c, 4, None, (pid, 0));
    assert_eq!((error, epoch2), (NONE, 0), "a fresh producer, not a bump");
    assert_ne!(pid2, pid);
    // Naming somebody else's producer id does not bump (and so fence) that producer either.
    let (_, pid3, epoch3) = init(&mut c, 4, None, (pid2, 7));
    assert_eq!(epoch3, 0);
    assert!(pid3 != pid2 && pid3 != pid);
    assert_eq!(init(&mut c, 4, None, (pid, -1)), (INVALID_REQUEST, -1, -1));
    assert_eq!(init(&mut c, 4, None, (-1, 3)), (INVALID_REQUEST, -1, -1));
}

/// Kafka's handleDescribeTransactions answers an empty transactional id with INVALID_REQUEST
/// (not TRANSACTIONAL_ID_NOT_FOUND).
#[test]
fn describe_transactions_with_an_empty_id_is_invalid_request() {
    let broker = broker();
    let mut c = connect(broker.addr());
    let state = describe(&mut c, "");
    assert_eq!(state.error_code, INVALID_REQUEST);
}

fn txn_offset_commit(
    c: &mut RawClient,
    version: i16,
    id: &str,
    group: &str,
    (pid, epoch): (i64, i16),
    topic: &str,
    offset: i64,
) -> i16 {
    let partition = TxnOffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(offset);
    let req = TxnOffsetCommitRequest::default()
        .with_transactional_id(txn_id(id))
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![partition])]);
    let r = c.request(version, &req).expect("TxnOffsetCommit");
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].partitions.len(), 1);
    r.topics[0].partitions[0].error_code
}

fn committed_offset(c: &mut RawClient, group: &str, topic: &str) -> i64 {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(vec![0])]));
    let r = c.request(5, &req).expect("OffsetFetch");
    assert_eq!(r.error_code, NONE);
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, NONE);
    p.committed_offset
}

/// KIP-890 (Kafka 3.6+ verifies transactional writes by default): a TxnOffsetCommit whose
/// group's offsets partition was not added with AddOffsetsToTxn is INVALID_TXN_STATE before v4,
/// and the producer's identity is checked as a verify_only AddPartitionsToTxn would
/// (INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED seen as INVALID_PRODUCER_EPOCH). Accepting
/// the offsets left them pending for ever: no marker ever reaches a partition outside the
/// transaction.
#[test]
fn txn_offset_commit_outside_the_transaction_is_refused() {
    let broker = broker();
    let mut c = connect(broker.addr());
    c.create_topic_ok("toc", 1).expect("create topic");
    let (pid, epoch) = init_ok(&mut c, "toc-tx");
    assert_eq!(
        add_v3(&mut c, "toc-tx", (pid, epoch), &[("toc", &[0])]),
        vec![("toc".to_owned(), 0, NONE)]
    );
    let commit = |c: &mut RawClient, id: &str, producer, offset| {
        txn_offset_commit(c, 3, id, "toc-group", producer, "toc", offset)
    };
    assert_eq!(commit(&mut c, "toc-tx", (pid, epoch), 5), INVALID_TXN_STATE);
    // v4 clients know KIP-890's TRANSACTION_ABORTABLE.
    assert_eq!(
        txn_offset_commit(&mut c, 4, "toc-tx", "toc-group", (pid, epoch), "toc", 5),
        TRANSACTION_ABORTABLE
    );
    assert_eq!(
        commit(&mut c, "toc-unknown", (pid, epoch), 5),
        INVALID_PRODUCER_ID_MAPPING
    );
    assert_eq!(
        commit(&mut c, "toc-tx", (pid + 1, epoch), 5),
        INVALID_PRODUCER_ID_MAPPING
    );

    let add_offsets = AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn_id("toc-tx"))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_group_id(GroupId(StrBytes::from_static_str("toc-group")));
    let r = c.request(3, &add_offsets).expect("AddOffsetsToTxn");
    assert_eq!(r.error_code, NONE);
    assert_eq!(commit(&mut c, "toc-tx", (pid, epoch), 7), NONE);
    let end = EndTxnRequest::default()
        .with_transactional_id(txn_id("toc-tx"))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(true);
    assert_eq!(c.request(3, &end).expect("EndTxn").error_code, NONE);
    assert_eq!(committed_offset(&mut c, "toc-group", "toc"), 7);

    // A zombie of an older epoch is fenced.
    let (_, epoch2) = init_ok(&mut c, "toc-tx");
    assert!(epoch2 > epoch);
    assert_eq!(
        commit(&mut c, "toc-tx", (pid, epoch), 9),
        INVALID_PRODUCER_EPOCH
    );
}

/// One transactional batch of `values` from (producer id, epoch), starting at `sequence`.
fn transactional_batch((pid, epoch): (i64, i16), sequence: i32, values: &[&str]) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, value)| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: sequence + i as i32,
            timestamp: runnel_tests::raw::now_ms(),
            key: None,
            value: Some(bytes::Bytes::from(value.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).expect("encode batch");
    buf.freeze()
}

/// Produce v9 of `records` to partition 0 of `topic`, as `id`'s transactional produce.
fn produce_as(c: &mut RawClient, id: Option<&str>, topic: &str, records: bytes::Bytes) -> i16 {
    produce_as_v(c, 9, id, topic, records)
}

fn produce_as_v(
    c: &mut RawClient,
    version: i16,
    id: Option<&str>,
    topic: &str,
    records: bytes::Bytes,
) -> i16 {
    let req = runnel_tests::raw::produce_request(topic, 0, records, -1)
        .with_transactional_id(id.map(txn_id));
    let r = c.request(version, &req).expect("Produce");
    r.responses[0].partition_responses[0].error_code
}

/// Kafka's transaction verification (KIP-890 part 1, on by default since 3.6): a transactional
/// batch that would open a transaction in a partition the coordinator never added is refused,
/// so no transaction can hang there without a marker to end it. Batches that continue an open
/// transaction, and partitions added with AddPartitionsToTxn, are written.
#[test]
fn transactional_produce_outside_the_transaction_is_refused() {
    const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    let broker = broker();
    let mut c = connect(broker.addr());
    c.create_topic_ok("tpv", 1).expect("create topic");
    let producer = init_ok(&mut c, "tpv-tx");
    let log_end = |c: &mut RawClient| c.list_offset("tpv", 0, -1).expect("ListOffsets").offset;

    let first = transactional_batch(producer, 0, &["a", "b"]);
    assert_eq!(
        produce_as(&mut c, Some("tpv-tx"), "tpv", first.clone()),
        INVALID_TXN_STATE
    );
    // v11 clients know KIP-890's TRANSACTION_ABORTABLE, which older ones are spared.
    assert_eq!(
        produce_as_v(&mut c, 11, Some("tpv-tx"), "tpv", first.clone()),
        TRANSACTION_ABORTABLE
    );
    assert_eq!(
        produce_as(&mut c, None, "tpv", first.clone()),
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );
    let stranger = transactional_batch((producer.0 + 7, 0), 0, &["z"]);
    assert_eq!(
        produce_as(&mut c, Some("tpv-tx"), "tpv", stranger),
        INVALID_PRODUCER_ID_MAPPING
    );
    assert_eq!(log_end(&mut c), 0, "nothing refused was written");

    assert_eq!(
        add_v3(&mut c, "tpv-tx", producer, &[("tpv", &[0])]),
        vec![("tpv".to_owned(), 0, NONE)]
    );
    assert_eq!(produce_as(&mut c, Some("tpv-tx"), "tpv", first), NONE);
    let next = transactional_batch(producer, 2, &["c"]);
    assert_eq!(produce_as(&mut c, Some("tpv-tx"), "tpv", next), NONE);
    assert_eq!(log_end(&mut c), 3);

    // A zombie of an older epoch (fenced by a new InitProducerId) is told its epoch is stale.
    // InitProducerId aborts the open transaction first, answering CONCURRENT_TRANSACTIONS
    // until the abort is done; clients retry.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let new_epoch = loop {
        let (error, _, epoch) = init(&mut c, 4, Some("tpv-tx"), (-1, -1));
        if error == NONE {
            break epoch;
        }
        assert_eq!(error, CONCURRENT_TRANSACTIONS, "InitProducerId");
        assert!(
            std::time::Instant::now() < deadline,
            "the abort never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(new_epoch > producer.1);
    let zombie = transactional_batch(producer, 3, &["d"]);
    assert_eq!(
        produce_as(&mut c, Some("tpv-tx"), "tpv", zombie),
        INVALID_PRODUCER_EPOCH
    );
    // The new InitProducerId aborted the open transaction: its marker is the only write.
    assert_eq!(log_end(&mut c), 4);
}
