//! Broker crashes (`kill -9`) in the middle of transactions: after the restart every
//! transaction is completed or aborted (atomically, across partitions and topics), the last
//! stable offset moves past it, and read_committed consumers never hang.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use runnel_tests::clients::{
    assign, consume_until_eof, consumer, create_topic, producer, raw_last_stable_offset,
    read_committed_from_start, summarize, txn_producer, unique_topic, wait_lso_at_hw, Record,
    MAX_WAIT,
};
use runnel_tests::TestBroker;

const TXN_WAIT: Duration = Duration::from_secs(30);

fn crash_broker() -> TestBroker {
    TestBroker::start(&[
        ("transaction.state.log.num.partitions", "5"),
        (
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "500",
        ),
        ("log.flush.interval.messages", "1"),
    ])
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn send_to(p: &FutureProducer, topic: &str, partition: i32, value: &str) -> i64 {
    let rec: FutureRecord<'_, str, str> = FutureRecord::to(topic)
        .partition(partition)
        .key(value)
        .payload(value);
    match tokio::time::timeout(MAX_WAIT, p.send(rec, Timeout::After(MAX_WAIT))).await {
        Ok(Ok(d)) => d.offset,
        Ok(Err((e, _))) => panic!("delivery of {value:?} to {topic}-{partition} failed: {e:?}"),
        Err(_) => panic!("delivery of {value:?} to {topic}-{partition} timed out"),
    }
}

/// Receives `n` records, skipping end-of-partition events and the transient connection errors
/// librdkafka reports while the broker is down (the consumer must recover by itself).
async fn consume_n_across_crash(
    c: &rdkafka::consumer::StreamConsumer,
    n: usize,
    timeout: Duration,
) -> Vec<Record> {
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, c.recv()).await {
            Ok(Ok(m)) => out.push(Record::from_message(&m)),
            Ok(Err(KafkaError::PartitionEOF(_))) => {}
            Ok(Err(KafkaError::MessageConsumption(
                code @ (RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::Resolve),
            ))) => eprintln!("consumer: transient {code:?}"),
            Ok(Err(e)) => panic!("consumer error: {e:?}; got so far: {:?}", summarize(&out)),
            Err(_) => panic!(
                "consumer across the crash got {} of {n} records within {timeout:?}: {:?}",
                out.len(),
                summarize(&out)
            ),
        }
    }
    out
}

fn sorted_values(records: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(Record::value_str).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_with_an_open_transaction_then_restart_aborts_it() {
    let mut broker = crash_broker();
    let bs = broker.bootstrap();
    let addr = broker.addr();
    let topic = unique_topic("crash-open");
    create_topic(&bs, &topic, 2, &[("flush.messages", "1")]).await;
    let id = unique_topic("crash-open-id");

    let p = txn_producer(&bs, &id, &[("transaction.timeout.ms", "5000")]);
    blocking(|| p.init_transactions(TXN_WAIT)).expect("init_transactions");
    p.begin_transaction().expect("begin 1");
    for part in 0..2 {
        send_to(&p, &topic, part, &format!("c-p{part}")).await;
    }
    blocking(|| p.commit_transaction(TXN_WAIT)).expect("commit 1");
    p.begin_transaction().expect("begin 2");
    for part in 0..2 {
        for i in 0..2 {
            send_to(&p, &topic, part, &format!("open-p{part}-{i}")).await;
        }
    }
    // A read_committed consumer that keeps running across the crash.
    let rc = consumer(
        &bs,
        &[
            ("isolation.level", "read_committed"),
            ("enable.partition.eof", "true"),
        ],
    );
    assign(&rc, &topic, 2, rdkafka::Offset::Beginning);
    let got = consume_until_eof(&rc, &topic, &[0, 1], 2, Duration::from_secs(20)).await;
    assert_eq!(sorted_values(&got), ["c-p0", "c-p1"], "before the crash");
    assert_eq!(
        blocking(|| raw_last_stable_offset(addr, &topic, 0)).unwrap(),
        2,
        "LSO of partition 0 with the open transaction (c-p0 0, marker 1, open 2..)"
    );

    // The client goes away with its transaction open, and the broker crashes.
    blocking(|| drop(p));
    broker.kill9();
    broker.restart();
    let restarted = Instant::now();

    // The recovered coordinator aborts the timed-out transaction; the LSO moves past it.
    let lso_hw = blocking(|| wait_lso_at_hw(addr, &topic, 2, Duration::from_secs(40)));
    eprintln!(
        "open transaction resolved {:?} after restart: {lso_hw:?}",
        restarted.elapsed()
    );
    assert_eq!(
        lso_hw,
        vec![(5, 5), (5, 5)],
        "per partition: c, commit marker, 2 aborted records, abort marker"
    );

    // The consumer that ran across the crash moves past the aborted records.
    let plain = producer(&bs, &[]);
    for part in 0..2 {
        let v = format!("after-p{part}");
        let rec: FutureRecord<'_, str, str> = FutureRecord::to(&topic).partition(part).payload(&v);
        plain
            .send(rec, Timeout::After(MAX_WAIT))
            .await
            .expect("plain produce after restart");
    }
    let got = consume_n_across_crash(&rc, 2, Duration::from_secs(30)).await;
    assert_eq!(
        sorted_values(&got),
        ["after-p0", "after-p1"],
        "consumer across the crash: {:?}",
        summarize(&got)
    );

    let got = read_committed_from_start(&bs, &topic, 2, 4).await;
    assert_eq!(
        sorted_values(&got),
        ["after-p0", "after-p1", "c-p0", "c-p1"],
        "fresh read_committed consumer: {:?}",
        summarize(&got)
    );

    // The transactional id works again.
    let q = txn_producer(&bs, &id, &[("transaction.timeout.ms", "5000")]);
    blocking(|| q.init_transactions(TXN_WAIT)).expect("init_transactions after restart");
    q.begin_transaction().expect("begin 3");
    send_to(&q, &topic, 0, "again-p0").await;
    blocking(|| q.commit_transaction(TXN_WAIT)).expect("commit 3");
    let got = read_committed_from_start(&bs, &topic, 2, 5).await;
    assert!(
        got.iter().any(|r| r.value_str() == "again-p0") && got.len() == 5,
        "after the new commit: {:?}",
        summarize(&got)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_right_after_commit_transaction_then_restart_resolves_it_atomically() {
    let mut broker = crash_broker();
    let bs = broker.bootstrap();
    let addr = broker.addr();
    let t1 = unique_topic("crash-commit-a");
    let t2 = unique_topic("crash-commit-b");
    create_topic(&bs, &t1, 2, &[("flush.messages", "1")]).await;
    create_topic(&bs, &t2, 1, &[("flush.messages", "1")]).await;
    let targets = [(t1.clone(), 0), (t1.clone(), 1), (t2.clone(), 0)];

    let mut expected_t1 = Vec::new();
    let mut expected_t2 = Vec::new();
    for (iter, delay_ms) in [0u64, 2, 6].into_iter().enumerate() {
        let id = unique_topic("crash-commit-id");
        let p = Arc::new(txn_producer(
            &bs,
            &id,
            &[("transaction.timeout.ms", "5000")],
        ));
        blocking(|| p.init_transactions(TXN_WAIT)).expect("init_transactions");
        p.begin_transaction().expect("begin");
        let mut mine = Vec::new();
        for (t, part) in &targets {
            for i in 0..2 {
                let v = format!("i{iter}-{}-p{part}-{i}", &t[..14]);
                send_to(&p, t, *part, &v).await;
                mine.push((t.clone(), v));
            }
        }
        let committer = {
            let p = p.clone();
            std::thread::spawn(move || p.commit_transaction(TXN_WAIT))
        };
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        broker.kill9();
        tokio::time::sleep(Duration::from_millis(200)).await;
        broker.restart();
        let restarted = Instant::now();
        let commit_result = blocking(|| committer.join().expect("commit thread"));
        eprintln!(
            "iteration {iter} (kill {delay_ms} ms after commit_transaction): commit returned {commit_result:?} {:?} after restart",
            restarted.elapsed()
        );
        blocking(|| drop(p));

        for (t, n) in [(&t1, 2), (&t2, 1)] {
            blocking(|| wait_lso_at_hw(addr, t, n, Duration::from_secs(40)));
        }
        let mut visible = Vec::new();
        for (t, n) in [(&t1, 2), (&t2, 1)] {
            let want = if t == &t1 { &expected_t1 } else { &expected_t2 };
            let got = read_committed_from_start(&bs, t, n, want.len()).await;
            visible.extend(got.into_iter().map(|r| (t.clone(), r.value_str())));
        }
        let prefix = format!("i{iter}-");
        let this: Vec<_> = visible
            .iter()
            .filter(|(_, v)| v.starts_with(&prefix))
            .cloned()
            .collect();
        assert!(
            this.is_empty() || this.len() == mine.len(),
            "iteration {iter}: transaction not atomic after the crash: {} of {} records visible: {this:?}",
            this.len(),
            mine.len()
        );
        if commit_result.is_ok() {
            assert_eq!(
                this.len(),
                mine.len(),
                "iteration {iter}: commit_transaction succeeded but the records are not all visible"
            );
        }
        if !this.is_empty() {
            for (t, v) in &mine {
                if t == &t1 {
                    expected_t1.push(v.clone());
                } else {
                    expected_t2.push(v.clone());
                }
            }
        }
        // Earlier iterations' outcomes are unchanged.
        let mut seen_t1: Vec<String> = visible
            .iter()
            .filter(|(t, _)| t == &t1)
            .map(|(_, v)| v.clone())
            .collect();
        seen_t1.sort();
        let mut want = expected_t1.clone();
        want.sort();
        assert_eq!(
            seen_t1, want,
            "iteration {iter}: read_committed view of {t1}"
        );
    }
}
