//! The shortest end-to-end path through exactly-once: librdkafka's transactional producer
//! commits one transaction and aborts another; read_committed consumers see only the first,
//! read_uncommitted ones see both, and an idempotent producer's records arrive once.

use std::time::Duration;

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::Offset;
use runnel_tests::clients::{
    assign, consume_for, consumer, create_topic, producer_config, unique_topic,
};
use runnel_tests::TestBroker;

const WAIT: Duration = Duration::from_secs(30);

fn transactional_producer(bootstrap: &str, id: &str) -> ThreadedProducer<DefaultProducerContext> {
    producer_config(
        bootstrap,
        &[
            ("transactional.id", id),
            ("transaction.timeout.ms", "60000"),
        ],
    )
    .create()
    .expect("transactional producer")
}

fn send(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, value: &str) {
    producer
        .send(BaseRecord::<str, str>::to(topic).key(value).payload(value))
        .map_err(|(e, _)| e)
        .expect("enqueue");
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_records_are_visible_and_aborted_ones_are_not() {
    let broker = TestBroker::start(&[
        ("transaction.state.log.num.partitions", "3"),
        ("offsets.topic.num.partitions", "3"),
    ]);
    let bs = broker.bootstrap();
    let topic = unique_topic("eos");
    create_topic(&bs, &topic, 2, &[]).await;
    let p = transactional_producer(&bs, &unique_topic("txn-id"));
    p.init_transactions(WAIT).expect("init_transactions");
    p.begin_transaction().expect("begin");
    for i in 0..5 {
        send(&p, &topic, &format!("committed-{i}"));
    }
    p.commit_transaction(WAIT).expect("commit");
    p.begin_transaction().expect("begin");
    for i in 0..5 {
        send(&p, &topic, &format!("aborted-{i}"));
    }
    p.flush(WAIT).expect("flush");
    p.abort_transaction(WAIT).expect("abort");
    p.begin_transaction().expect("begin");
    send(&p, &topic, "after-abort");
    p.commit_transaction(WAIT).expect("commit");

    let committed = consumer(&bs, &[("isolation.level", "read_committed")]);
    assign(&committed, &topic, 2, Offset::Beginning);
    let mut seen: Vec<String> = consume_for(&committed, Duration::from_secs(4))
        .await
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    seen.sort();
    let mut expected: Vec<String> = (0..5).map(|i| format!("committed-{i}")).collect();
    expected.push("after-abort".into());
    expected.sort();
    assert_eq!(
        seen, expected,
        "read_committed sees exactly the committed records"
    );

    let uncommitted = consumer(&bs, &[("isolation.level", "read_uncommitted")]);
    assign(&uncommitted, &topic, 2, Offset::Beginning);
    let all = consume_for(&uncommitted, Duration::from_secs(4)).await;
    assert_eq!(all.len(), 11, "read_uncommitted sees aborted records too");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let broker = TestBroker::start(&[("transaction.state.log.num.partitions", "3")]);
    let bs = broker.bootstrap();
    let topic = unique_topic("fenced");
    create_topic(&bs, &topic, 1, &[]).await;
    let id = unique_topic("zombie");
    let zombie = transactional_producer(&bs, &id);
    zombie.init_transactions(WAIT).expect("init zombie");
    zombie.begin_transaction().expect("begin");
    send(&zombie, &topic, "from-zombie");
    let successor = transactional_producer(&bs, &id);
    successor.init_transactions(WAIT).expect("init successor");
    let outcome = zombie.commit_transaction(WAIT);
    assert!(
        outcome.is_err(),
        "the zombie's commit must fail after it was fenced"
    );
    successor.begin_transaction().expect("begin");
    send(&successor, &topic, "from-successor");
    successor
        .commit_transaction(WAIT)
        .expect("successor commits");
    let c = consumer(&bs, &[("isolation.level", "read_committed")]);
    assign(&c, &topic, 1, Offset::Beginning);
    let values: Vec<String> = consume_for(&c, Duration::from_secs(4))
        .await
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(values, vec!["from-successor".to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_sent_to_a_transaction_are_committed_with_it() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, TopicPartitionList};
    let broker = TestBroker::start(&[
        ("transaction.state.log.num.partitions", "3"),
        ("offsets.topic.num.partitions", "3"),
        ("group.initial.rebalance.delay.ms", "0"),
    ]);
    let bs = broker.bootstrap();
    let (input, output) = (unique_topic("in"), unique_topic("out"));
    create_topic(&bs, &input, 1, &[]).await;
    create_topic(&bs, &output, 1, &[]).await;
    let seed = transactional_producer(&bs, &unique_topic("seed"));
    seed.init_transactions(WAIT).expect("init");
    seed.begin_transaction().expect("begin");
    for i in 0..10 {
        send(&seed, &input, &format!("in-{i}"));
    }
    seed.commit_transaction(WAIT).expect("commit input");

    let group = unique_topic("eos-group");
    let source: BaseConsumer = runnel_tests::clients::consumer_config(
        &bs,
        &[
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
        ],
    )
    .create()
    .expect("consumer");
    source.subscribe(&[&input]).expect("subscribe");
    let worker = transactional_producer(&bs, &unique_topic("worker"));
    worker.init_transactions(WAIT).expect("init worker");
    worker.begin_transaction().expect("begin");
    let mut read = 0;
    let deadline = std::time::Instant::now() + WAIT;
    while read < 10 && std::time::Instant::now() < deadline {
        if let Some(Ok(message)) = source.poll(Duration::from_millis(200)) {
            let value =
                String::from_utf8_lossy(message.payload().unwrap_or_default()).to_uppercase();
            send(&worker, &output, &value);
            read += 1;
        }
    }
    assert_eq!(read, 10, "the worker read the input");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&input, 0, Offset::Offset(10))
        .unwrap();
    let metadata = source.group_metadata().expect("group metadata");
    worker
        .send_offsets_to_transaction(&offsets, &metadata, WAIT)
        .expect("send offsets");
    worker.commit_transaction(WAIT).expect("commit");

    let committed = source.committed(WAIT).expect("committed offsets");
    let position = committed
        .find_partition(&input, 0)
        .expect("input partition")
        .offset();
    assert_eq!(
        position,
        Offset::Offset(10),
        "the offsets committed with the transaction"
    );
    let c = consumer(&bs, &[("isolation.level", "read_committed")]);
    assign(&c, &output, 1, Offset::Beginning);
    let out = consume_for(&c, Duration::from_secs(4)).await;
    assert_eq!(out.len(), 10, "each input record transformed exactly once");
}
