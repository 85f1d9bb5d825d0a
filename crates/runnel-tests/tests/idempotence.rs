//! Idempotent producers, with Apache Kafka's semantics, driven by the raw protocol client:
//! InitProducerId without a transactional id, duplicates of any of the last batches answered
//! with the original offsets and not appended again, sequence gaps refused with
//! OUT_OF_ORDER_SEQUENCE_NUMBER, stale epochs refused with INVALID_PRODUCER_EPOCH, the dedup
//! state surviving a clean restart and `kill -9`, DescribeProducers, and librdkafka's
//! idempotent producer writing no duplicates across a broker crash.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::describe_producers_request::{
    DescribeProducersRequest, TopicRequest,
};
use kafka_protocol::messages::describe_producers_response::ProducerState;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::ProducerId;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::producer::FutureRecord;
use runnel_tests::clients::{
    consume_for, consume_n, consumer, create_topic, enqueue, producer, summarize, MAX_WAIT,
};
use runnel_tests::raw::{fetch_all_values, now_ms, wait_for, RawClient};
use runnel_tests::TestBroker;

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
/// Newer Kafka versions may answer a stale epoch with PRODUCER_FENCED instead.
const PRODUCER_FENCED: i16 = 90;

/// InitProducerId v4 without a transactional id: (producer id, epoch).
fn init_producer_id(addr: SocketAddr) -> (i64, i16) {
    let mut c = RawClient::connect(addr).expect("connect");
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let resp = c.request(4, &req).expect("InitProducerId v4");
    assert_eq!(resp.error_code, 0, "InitProducerId error: {resp:?}");
    (resp.producer_id.0, resp.producer_epoch)
}

/// One v2 batch from an idempotent producer: `values` get sequences `base_seq..`.
fn idem_batch(pid: i64, epoch: i16, base_seq: i32, values: &[&str]) -> Bytes {
    let ts = now_ms();
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: base_seq + i as i32,
            timestamp: ts,
            key: None,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode idempotent batch");
    let b = buf.freeze();
    assert_eq!(
        runnel_tests::raw::batch_headers(&b).len(),
        1,
        "test batch must be one batch"
    );
    b
}

fn produce(addr: SocketAddr, topic: &str, batch: &Bytes) -> PartitionProduceResponse {
    let mut c = RawClient::connect(addr).expect("connect");
    c.produce(topic, 0, batch.clone(), -1).expect("produce")
}

/// Produces and asserts success at `offset`.
#[track_caller]
fn produce_ok(addr: SocketAddr, topic: &str, batch: &Bytes, offset: i64, what: &str) {
    let r = produce(addr, topic, batch);
    assert_eq!(
        (r.error_code, r.base_offset),
        (0, offset),
        "{what}: (error, base offset); response {r:?}"
    );
}

#[track_caller]
fn produce_err(addr: SocketAddr, topic: &str, batch: &Bytes, codes: &[i16], what: &str) {
    let r = produce(addr, topic, batch);
    assert!(
        codes.contains(&r.error_code),
        "{what}: expected error {codes:?}, got {} (response {r:?})",
        r.error_code
    );
}

fn log_end(addr: SocketAddr, topic: &str) -> i64 {
    RawClient::connect(addr)
        .and_then(|mut c| c.log_end_offset(topic, 0))
        .expect("log end offset")
}

fn values(addr: SocketAddr, topic: &str) -> Vec<String> {
    let mut c = RawClient::connect(addr).expect("connect");
    fetch_all_values(&mut c, topic).expect("fetch")
}

/// DescribeProducers v0 for partition 0 of `topic`.
fn describe_producers(addr: SocketAddr, topic: &str) -> (i16, Vec<ProducerState>) {
    let mut c = RawClient::connect(addr).expect("connect");
    let req = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(runnel_tests::raw::topic_name(topic))
        .with_partition_indexes(vec![0])]);
    let resp = c.request(0, &req).expect("DescribeProducers v0");
    let p = resp
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == 0)
        .unwrap_or_else(|| panic!("DescribeProducers lacks {topic}-0: {resp:?}"))
        .clone();
    (p.error_code, p.active_producers)
}

#[track_caller]
fn assert_producer_state(addr: SocketAddr, topic: &str, pid: i64, epoch: i16, last_seq: i32) {
    let (err, producers) = describe_producers(addr, topic);
    assert_eq!(err, 0, "DescribeProducers error");
    let p = producers
        .iter()
        .find(|p| p.producer_id.0 == pid)
        .unwrap_or_else(|| panic!("producer {pid} not listed: {producers:?}"));
    assert_eq!(
        (
            p.producer_epoch,
            p.last_sequence,
            p.current_txn_start_offset
        ),
        (epoch as i32, last_seq, -1),
        "(epoch, last sequence, txn start) of producer {pid}: {p:?}"
    );
}

/// After a restart the partition may take a moment to be served again.
fn wait_partition_ready(addr: SocketAddr, topic: &str) {
    wait_for(Duration::from_secs(20), || {
        RawClient::connect(addr)
            .and_then(|mut c| c.log_end_offset(topic, 0))
            .ok()
    })
    .unwrap_or_else(|e| panic!("{topic}-0 not served after restart: {e}"));
}

// -------------------------------------------------------------------------------------------

#[test]
fn init_producer_id_without_transactional_id_gives_a_fresh_producer() {
    let broker = TestBroker::start(&[]);
    let (pid1, epoch1) = init_producer_id(broker.addr());
    let (pid2, epoch2) = init_producer_id(broker.addr());
    assert!(pid1 >= 0 && pid2 >= 0, "producer ids {pid1} {pid2}");
    assert_eq!(
        (epoch1, epoch2),
        (0, 0),
        "epochs of new idempotent producers"
    );
    assert_ne!(
        pid1, pid2,
        "each InitProducerId without transactional id gets a new id"
    );

    // Older versions answer the same way.
    let mut c = RawClient::connect(broker.addr()).unwrap();
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    let resp = c.request(0, &req).expect("InitProducerId v0");
    assert_eq!(resp.error_code, 0);
    assert!(
        resp.producer_id.0 >= 0 && resp.producer_epoch == 0,
        "{resp:?}"
    );
}

#[test]
fn duplicate_out_of_order_and_stale_epoch_batches() {
    let broker = TestBroker::start(&[]);
    let addr = broker.addr();
    let topic = "idem";
    RawClient::connect(addr)
        .unwrap()
        .create_topic_ok(topic, 1)
        .unwrap();
    let (pid, epoch) = init_producer_id(addr);
    assert_eq!(epoch, 0);

    let b0 = idem_batch(pid, 0, 0, &["a0", "a1", "a2"]);
    produce_ok(addr, topic, &b0, 0, "first batch");
    produce_ok(addr, topic, &b0, 0, "duplicate of the first batch");
    assert_eq!(log_end(addr, topic), 3, "the duplicate was not appended");

    let b1 = idem_batch(pid, 0, 3, &["a3", "a4"]);
    produce_ok(addr, topic, &b1, 3, "second batch");
    produce_ok(addr, topic, &b1, 3, "duplicate of the second batch");
    produce_ok(
        addr,
        topic,
        &b0,
        0,
        "duplicate of an earlier batch (within the last 5)",
    );
    assert_eq!(log_end(addr, topic), 5);
    assert_producer_state(addr, topic, pid, 0, 4);

    // A gap: sequence 5 expected, 10 sent.
    let gap = idem_batch(pid, 0, 10, &["gap"]);
    produce_err(
        addr,
        topic,
        &gap,
        &[OUT_OF_ORDER_SEQUENCE_NUMBER],
        "sequence gap",
    );
    assert_eq!(log_end(addr, topic), 5, "nothing appended for the gap");
    let b2 = idem_batch(pid, 0, 5, &["a5"]);
    produce_ok(
        addr,
        topic,
        &b2,
        5,
        "in-sequence batch after the refused gap",
    );

    // A new epoch starts again at sequence 0; the old epoch is then stale.
    let e1 = idem_batch(pid, 1, 0, &["e1-0"]);
    produce_ok(addr, topic, &e1, 6, "first batch of epoch 1");
    let stale = idem_batch(pid, 0, 6, &["stale"]);
    produce_err(
        addr,
        topic,
        &stale,
        &[INVALID_PRODUCER_EPOCH, PRODUCER_FENCED],
        "batch with the old epoch",
    );
    let e1_gap = idem_batch(pid, 1, 5, &["e1-gap"]);
    produce_err(
        addr,
        topic,
        &e1_gap,
        &[OUT_OF_ORDER_SEQUENCE_NUMBER],
        "gap in epoch 1",
    );
    let e2_nonzero = idem_batch(pid, 2, 3, &["e2-3"]);
    produce_err(
        addr,
        topic,
        &e2_nonzero,
        &[OUT_OF_ORDER_SEQUENCE_NUMBER],
        "new epoch not starting at sequence 0",
    );
    assert_eq!(log_end(addr, topic), 7);
    assert_eq!(
        values(addr, topic),
        ["a0", "a1", "a2", "a3", "a4", "a5", "e1-0"]
    );
    assert_producer_state(addr, topic, pid, 1, 0);

    // Another producer is independent and listed too.
    let (pid2, _) = init_producer_id(addr);
    produce_ok(
        addr,
        topic,
        &idem_batch(pid2, 0, 0, &["p2-0", "p2-1"]),
        7,
        "second producer",
    );
    assert_producer_state(addr, topic, pid2, 0, 1);
    assert_producer_state(addr, topic, pid, 1, 0);
}

#[test]
fn dedup_state_survives_clean_restart_and_kill9() {
    let mut broker = TestBroker::start(&[("log.flush.interval.messages", "1")]);
    let addr = broker.addr();
    let topic = "idem-restart";
    RawClient::connect(addr)
        .unwrap()
        .create_topic_ok(topic, 1)
        .unwrap();
    let (pid, _) = init_producer_id(addr);

    let b0 = idem_batch(pid, 0, 0, &["r0", "r1", "r2"]);
    let b1 = idem_batch(pid, 0, 3, &["r3", "r4"]);
    produce_ok(addr, topic, &b0, 0, "b0");
    produce_ok(addr, topic, &b1, 3, "b1");

    assert!(broker.stop(), "clean shutdown");
    broker.restart();
    wait_partition_ready(addr, topic);
    produce_ok(addr, topic, &b1, 3, "duplicate of b1 after a clean restart");
    produce_ok(addr, topic, &b0, 0, "duplicate of b0 after a clean restart");
    assert_eq!(
        log_end(addr, topic),
        5,
        "no duplicate appended after restart"
    );
    assert_producer_state(addr, topic, pid, 0, 4);
    let b2 = idem_batch(pid, 0, 5, &["r5"]);
    produce_ok(addr, topic, &b2, 5, "b2 continues the sequence");

    broker.kill9();
    broker.restart();
    wait_partition_ready(addr, topic);
    produce_ok(addr, topic, &b2, 5, "duplicate of b2 after kill -9");
    produce_ok(addr, topic, &b1, 3, "duplicate of b1 after kill -9");
    assert_eq!(
        log_end(addr, topic),
        6,
        "no duplicate appended after kill -9"
    );
    assert_producer_state(addr, topic, pid, 0, 5);
    produce_err(
        addr,
        topic,
        &idem_batch(pid, 0, 9, &["gap"]),
        &[OUT_OF_ORDER_SEQUENCE_NUMBER],
        "gap after kill -9",
    );
    produce_ok(
        addr,
        topic,
        &idem_batch(pid, 0, 6, &["r6"]),
        6,
        "b3 continues the sequence",
    );
    assert_eq!(
        values(addr, topic),
        ["r0", "r1", "r2", "r3", "r4", "r5", "r6"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_idempotent_producer_writes_no_duplicates_across_broker_kill9() {
    let mut broker = TestBroker::start(&[("log.flush.interval.messages", "1")]);
    let bs = broker.bootstrap();
    let topic = "idem-rdkafka";
    create_topic(&bs, topic, 2, &[]).await;
    let total = 1500usize;
    let p = Arc::new(producer(
        &bs,
        &[
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "35000"),
            ("request.timeout.ms", "5000"),
            ("queue.buffering.max.ms", "2"),
        ],
    ));
    let acked = Arc::new(AtomicUsize::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut handles = Vec::new();
    let mut killed = false;
    for i in 0..total {
        let v = format!("v-{i:05}");
        let rec: FutureRecord<'_, str, str> = FutureRecord::to(topic)
            .partition(i as i32 % 2)
            .payload(v.as_str());
        let fut = enqueue(&p, rec);
        let (acked2, failures) = (acked.clone(), failures.clone());
        handles.push(tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(40), fut).await {
                Ok(Ok(Ok(_))) => {
                    acked2.fetch_add(1, Ordering::SeqCst);
                }
                other => failures.lock().unwrap().push(format!("{v}: {other:?}")),
            }
        }));
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if !killed && i >= 600 {
            // Crash the broker while batches are in flight, then bring it back.
            let deadline = Instant::now() + Duration::from_secs(20);
            while acked.load(Ordering::SeqCst) < 300 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            broker.kill9();
            killed = true;
            tokio::time::sleep(Duration::from_millis(700)).await;
            broker.restart();
        }
    }
    for h in handles {
        h.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} deliveries failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    let c = consumer(&bs, &[("isolation.level", "read_uncommitted")]);
    runnel_tests::clients::assign(&c, topic, 2, rdkafka::Offset::Beginning);
    let got = consume_n(&c, total, MAX_WAIT).await;
    let extra = consume_for(&c, Duration::from_millis(1000)).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in got.iter().chain(extra.iter()) {
        *counts.entry(r.value_str()).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(
        extra.is_empty() && dups.is_empty(),
        "duplicates written by the idempotent producer: {dups:?}; extra {:?}",
        summarize(&extra)
    );
    assert_eq!(counts.len(), total, "every record exactly once");
    for part in 0..2 {
        let vals: Vec<String> = got
            .iter()
            .filter(|r| r.partition == part)
            .map(|r| r.value_str())
            .collect();
        let mut s = vals.clone();
        s.sort();
        assert_eq!(vals, s, "partition {part} keeps the send order");
    }
}
