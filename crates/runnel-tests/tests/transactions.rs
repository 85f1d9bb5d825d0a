//! Exactly-once: the rdkafka transactional producer against the broker, with Apache Kafka's
//! semantics. Commit vs abort across partitions and topics, read_committed vs read_uncommitted
//! consumers, the last stable offset holding read_committed consumers behind an open
//! transaction, zombie fencing, the broker aborting a timed-out transaction, and a
//! consume-transform-produce loop (`send_offsets_to_transaction`) run in a separate OS process
//! that is killed with SIGKILL at random points and restarted: the output holds every input
//! record exactly once.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use runnel_tests::clients::{
    consume_for, consume_for_skipping_eof, consume_n, consume_until_eof, consumer, create_topic,
    group_consumer_config, producer, raw_fetch_offsets, raw_high_watermark, raw_last_stable_offset,
    summarize, txn_producer, unique_topic, wait_lso_at_hw, Record, MAX_WAIT,
};
use runnel_tests::raw::{now_ms, RawClient, XorShift};
use runnel_tests::TestBroker;

/// Timeout handed to blocking transactional calls (init / commit / abort / send offsets).
const TXN_WAIT: Duration = Duration::from_secs(30);

/// A broker with a small transaction state log and a quick timed-out-transaction check.
fn txn_broker(extra: &[(&str, &str)]) -> TestBroker {
    let mut overrides = vec![
        ("transaction.state.log.num.partitions", "5"),
        (
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "500",
        ),
    ];
    overrides.extend_from_slice(extra);
    TestBroker::start(&overrides)
}

/// Runs a blocking librdkafka call without starving the tokio runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Sends one record (key = value) to an explicit partition and waits for the delivery report.
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

/// An assign-only consumer with the given isolation level that reports end of partition.
fn eof_consumer(bootstrap: &str, isolation: &str) -> StreamConsumer {
    consumer(
        bootstrap,
        &[
            ("isolation.level", isolation),
            ("enable.partition.eof", "true"),
            ("auto.offset.reset", "earliest"),
        ],
    )
}

fn assign_from_start(c: &StreamConsumer, topic: &str, partitions: i32) {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("add partition");
    }
    c.assign(&tpl).expect("assign");
}

fn sorted_values(records: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(Record::value_str).collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Reads `topic` from the beginning with a read_committed consumer until it reaches the end
/// of every partition (the LSO), then checks nothing more arrives; returns the records.
async fn read_committed_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    min: usize,
) -> Vec<Record> {
    let c = eof_consumer(bootstrap, "read_committed");
    assign_from_start(&c, topic, partitions);
    let parts: Vec<i32> = (0..partitions).collect();
    let mut got = consume_until_eof(&c, topic, &parts, min, Duration::from_secs(30)).await;
    got.extend(consume_for_skipping_eof(&c, Duration::from_millis(700)).await);
    got
}

/// Raw Fetch v12 of one partition at an isolation level (0 read_uncommitted, 1 read_committed).
fn raw_fetch(
    addr: std::net::SocketAddr,
    topic: &str,
    partition: i32,
    offset: i64,
    isolation: i8,
) -> kafka_protocol::messages::fetch_response::PartitionData {
    use kafka_protocol::messages::fetch_request::FetchRequest;
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1024 * 1024)
        .with_isolation_level(isolation)
        .with_topics(vec![runnel_tests::raw::fetch_topic(
            topic,
            &[(partition, offset, 1024 * 1024)],
        )]);
    let mut c = RawClient::connect(addr).expect("connect");
    let resp = c.request(12, &req).expect("Fetch v12");
    assert_eq!(resp.error_code, 0, "fetch top-level error");
    runnel_tests::raw::single_partition(resp, topic, partition).expect("fetched partition")
}

/// (offset, value) of the data (non-control) records in a fetched partition.
fn data_records(p: &kafka_protocol::messages::fetch_response::PartitionData) -> Vec<(i64, String)> {
    let Some(records) = &p.records else {
        return Vec::new();
    };
    runnel_tests::raw::decode_records(records)
        .expect("decode fetched records")
        .into_iter()
        .flat_map(|set| set.records)
        .filter(|r| !r.control)
        .map(|r| {
            (
                r.offset,
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
            )
        })
        .collect()
}

fn expect_fatal(what: &str, r: Result<(), KafkaError>) {
    match r {
        Ok(()) => panic!("{what}: succeeded, but the producer should have been fenced"),
        Err(KafkaError::Transaction(e)) => assert!(
            e.is_fatal(),
            "{what}: expected a fatal (fencing) error, got {} ({:?}, retriable={}, abortable={})",
            e.string(),
            e.code(),
            e.is_retriable(),
            e.txn_requires_abort()
        ),
        Err(e) => panic!("{what}: expected a fatal transaction error, got {e:?}"),
    }
}

// -------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_and_abort_across_two_partitions_and_two_topics() {
    let broker = txn_broker(&[]);
    let bs = broker.bootstrap();
    let topics = [unique_topic("txn-a"), unique_topic("txn-b")];
    for t in &topics {
        create_topic(&bs, t, 2, &[]).await;
    }
    let p = txn_producer(&bs, &unique_topic("txn-commit-abort"), &[]);
    blocking(|| p.init_transactions(TXN_WAIT)).expect("init_transactions");

    let mut committed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut aborted: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (round, commit) in [(0, true), (1, false), (2, true)] {
        p.begin_transaction().expect("begin_transaction");
        for t in &topics {
            for part in 0..2 {
                for i in 0..2 {
                    let v = format!("r{round}-{}-p{part}-{i}", &t[..5]);
                    send_to(&p, t, part, &v).await;
                    let into = if commit { &mut committed } else { &mut aborted };
                    into.entry(t.as_str()).or_default().push(v);
                }
            }
        }
        if commit {
            blocking(|| p.commit_transaction(TXN_WAIT)).expect("commit_transaction");
        } else {
            blocking(|| p.abort_transaction(TXN_WAIT)).expect("abort_transaction");
        }
    }

    // Markers are written once the transactions complete: LSO == HW, and each partition holds
    // 6 data records + 3 control records (commit, abort, commit).
    for t in &topics {
        let lso_hw = wait_lso_at_hw(broker.addr(), t, 2, Duration::from_secs(20));
        for (part, (_, hw)) in lso_hw.iter().enumerate() {
            assert_eq!(
                *hw, 9,
                "{t}-{part}: high watermark (6 records + 3 transaction markers)"
            );
        }
    }

    // Raw read_committed fetch: LSO = HW, and the aborted transaction (offsets 3-4, abort
    // marker 5) is listed for fetches that overlap it, not for later ones.
    let addr = broker.addr();
    let rc = raw_fetch(addr, &topics[0], 0, 0, 1);
    assert_eq!(
        (rc.error_code, rc.high_watermark, rc.last_stable_offset),
        (0, 9, 9)
    );
    let aborted_list: Vec<(i64, i64)> = rc
        .aborted_transactions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    assert!(
        aborted_list.len() == 1 && aborted_list[0].1 == 3 && aborted_list[0].0 >= 0,
        "aborted transactions for a read_committed fetch from 0: {:?}",
        rc.aborted_transactions
    );
    assert_eq!(
        data_records(&rc).iter().map(|r| r.0).collect::<Vec<_>>(),
        [0, 1, 3, 4, 6, 7],
        "data record offsets (markers at 2, 5, 8)"
    );
    let later = raw_fetch(addr, &topics[0], 0, 6, 1);
    assert_eq!(
        later.aborted_transactions.as_deref().map(<[_]>::len),
        Some(0),
        "read_committed fetch from 6 overlaps no aborted transaction: {:?}",
        later.aborted_transactions
    );
    let ru = raw_fetch(addr, &topics[0], 0, 0, 0);
    assert!(
        ru.aborted_transactions.is_none(),
        "read_uncommitted fetch: aborted_transactions must be null: {:?}",
        ru.aborted_transactions
    );

    for t in &topics {
        let want = sorted(committed[t.as_str()].clone());
        let got = read_committed_all(&bs, t, 2, want.len()).await;
        assert_eq!(
            sorted_values(&got),
            want,
            "{t}: read_committed must see exactly the committed records: {:?}",
            summarize(&got)
        );
        // Per partition, committed records keep their produce order.
        for part in 0..2 {
            let vals: Vec<String> = got
                .iter()
                .filter(|r| r.partition == part)
                .map(Record::value_str)
                .collect();
            let mut in_order = vals.clone();
            in_order.sort();
            assert_eq!(vals, in_order, "{t}-{part}: committed records out of order");
        }

        let ru = consumer(&bs, &[("isolation.level", "read_uncommitted")]);
        assign_from_start(&ru, t, 2);
        let mut want_all = committed[t.as_str()].clone();
        want_all.extend(aborted[t.as_str()].iter().cloned());
        let got = consume_n(&ru, want_all.len(), Duration::from_secs(20)).await;
        let extra = consume_for(&ru, Duration::from_millis(500)).await;
        assert!(
            extra.is_empty(),
            "{t}: extra records: {:?}",
            summarize(&extra)
        );
        assert_eq!(
            sorted_values(&got),
            sorted(want_all),
            "{t}: read_uncommitted must see committed and aborted records"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_transaction_holds_read_committed_consumers_at_the_lso() {
    let broker = txn_broker(&[]);
    let bs = broker.bootstrap();
    let topic = unique_topic("txn-open");
    create_topic(&bs, &topic, 1, &[]).await;

    let p = txn_producer(&bs, &unique_topic("txn-open-id"), &[]);
    blocking(|| p.init_transactions(TXN_WAIT)).expect("init_transactions");
    p.begin_transaction().expect("begin 1");
    assert_eq!(send_to(&p, &topic, 0, "c-0").await, 0);
    assert_eq!(send_to(&p, &topic, 0, "c-1").await, 1);
    blocking(|| p.commit_transaction(TXN_WAIT)).expect("commit 1");
    wait_lso_at_hw(broker.addr(), &topic, 1, Duration::from_secs(20));

    // Offsets: c-0 0, c-1 1, commit marker 2, o-0..o-2 3..5, plain-0 6.
    p.begin_transaction().expect("begin 2");
    for i in 0..3 {
        assert_eq!(send_to(&p, &topic, 0, &format!("o-{i}")).await, 3 + i);
    }
    let plain = producer(&bs, &[]);
    let rec: FutureRecord<'_, str, str> = FutureRecord::to(&topic).partition(0).payload("plain-0");
    let d = plain
        .send(rec, Timeout::After(MAX_WAIT))
        .await
        .expect("plain produce");
    assert_eq!(d.offset, 6, "plain record offset");

    let addr = broker.addr();
    let lso = blocking(|| raw_last_stable_offset(addr, &topic, 0)).expect("LSO");
    let hw = blocking(|| raw_high_watermark(addr, &topic, 0)).expect("HW");
    assert_eq!(
        (lso, hw),
        (3, 7),
        "(LSO, HW) with an open transaction starting at offset 3"
    );
    let rc = blocking(|| raw_fetch(addr, &topic, 0, 0, 1));
    assert_eq!(
        (rc.high_watermark, rc.last_stable_offset),
        (7, 3),
        "read_committed fetch"
    );
    assert_eq!(
        data_records(&rc),
        [(0, "c-0".to_string()), (1, "c-1".to_string())],
        "a read_committed fetch returns nothing at or beyond the LSO"
    );
    let ru = blocking(|| raw_fetch(addr, &topic, 0, 0, 0));
    assert_eq!(data_records(&ru).len(), 6, "read_uncommitted fetch");

    let rc = eof_consumer(&bs, "read_committed");
    assign_from_start(&rc, &topic, 1);
    let got = consume_until_eof(&rc, &topic, &[0], 2, Duration::from_secs(20)).await;
    let more = consume_for_skipping_eof(&rc, Duration::from_millis(1500)).await;
    assert_eq!(
        sorted_values(&got),
        vec!["c-0", "c-1"],
        "read_committed before the commit: {:?}",
        summarize(&got)
    );
    assert!(
        more.is_empty(),
        "read_committed consumer went past the LSO: {:?}",
        summarize(&more)
    );

    let ru = consumer(&bs, &[("isolation.level", "read_uncommitted")]);
    assign_from_start(&ru, &topic, 1);
    let got = consume_n(&ru, 6, Duration::from_secs(20)).await;
    let vals: Vec<String> = got.iter().map(Record::value_str).collect();
    assert_eq!(vals, ["c-0", "c-1", "o-0", "o-1", "o-2", "plain-0"]);

    blocking(|| p.commit_transaction(TXN_WAIT)).expect("commit 2");
    let got = consume_until_eof(&rc, &topic, &[0], 4, Duration::from_secs(20)).await;
    let vals: Vec<String> = got.iter().map(Record::value_str).collect();
    assert_eq!(
        vals,
        ["o-0", "o-1", "o-2", "plain-0"],
        "read_committed after the commit"
    );
    let lso_hw = wait_lso_at_hw(addr, &topic, 1, Duration::from_secs(20));
    assert_eq!(lso_hw, vec![(8, 8)], "commit marker at offset 7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zombie_producer_with_old_epoch_is_fenced() {
    let broker = txn_broker(&[]);
    let bs = broker.bootstrap();
    let topic = unique_topic("txn-zombie");
    create_topic(&bs, &topic, 1, &[]).await;
    let id = unique_topic("txn-zombie-id");

    let a = txn_producer(&bs, &id, &[]);
    blocking(|| a.init_transactions(TXN_WAIT)).expect("A init_transactions");
    a.begin_transaction().expect("A begin");
    send_to(&a, &topic, 0, "a-0").await;

    // B takes over the transactional id: the coordinator bumps the epoch and aborts A's open
    // transaction.
    let b = txn_producer(&bs, &id, &[]);
    blocking(|| b.init_transactions(TXN_WAIT)).expect("B init_transactions");

    // A (old epoch) can no longer write or commit.
    let rec: FutureRecord<'_, str, str> = FutureRecord::to(&topic).partition(0).payload("a-1");
    match a.send_result(rec) {
        Err((e, _)) => eprintln!("A's send refused locally: {e:?}"),
        Ok(fut) => match tokio::time::timeout(Duration::from_secs(25), fut).await {
            Ok(Ok(Ok(d))) => panic!(
                "zombie A's record was accepted at offset {} after B's init_transactions",
                d.offset
            ),
            Ok(Ok(Err((e, _)))) => eprintln!("A's send failed as expected: {e:?}"),
            Ok(Err(_)) => eprintln!("A's send cancelled"),
            Err(_) => panic!("A's delivery report did not arrive within 25 s"),
        },
    }
    let r = blocking(|| a.commit_transaction(TXN_WAIT));
    expect_fatal("zombie A commit_transaction", r);

    b.begin_transaction().expect("B begin");
    send_to(&b, &topic, 0, "b-0").await;
    blocking(|| b.commit_transaction(TXN_WAIT)).expect("B commit");

    let got = read_committed_all(&bs, &topic, 1, 1).await;
    assert_eq!(
        sorted_values(&got),
        vec!["b-0"],
        "only B's committed record is visible: {:?}",
        summarize(&got)
    );
    wait_lso_at_hw(broker.addr(), &topic, 1, Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_aborts_a_timed_out_transaction() {
    let broker = txn_broker(&[]);
    let bs = broker.bootstrap();
    let addr = broker.addr();
    let topic = unique_topic("txn-timeout");
    create_topic(&bs, &topic, 1, &[]).await;
    let id = unique_topic("txn-timeout-id");

    let p = txn_producer(&bs, &id, &[("transaction.timeout.ms", "3000")]);
    blocking(|| p.init_transactions(TXN_WAIT)).expect("init_transactions");
    p.begin_transaction().expect("begin");
    send_to(&p, &topic, 0, "t-0").await;
    send_to(&p, &topic, 0, "t-1").await;
    let plain = producer(&bs, &[]);
    let rec: FutureRecord<'_, str, str> = FutureRecord::to(&topic).partition(0).payload("plain-0");
    let d = plain
        .send(rec, Timeout::After(MAX_WAIT))
        .await
        .expect("plain produce");
    assert_eq!(d.offset, 2);
    let started = Instant::now();
    assert_eq!(
        blocking(|| raw_last_stable_offset(addr, &topic, 0)).unwrap(),
        0,
        "LSO while the transaction is open"
    );

    // Never committed: after transaction.timeout.ms the broker aborts it (abort marker at 3).
    let lso_hw = blocking(|| wait_lso_at_hw(addr, &topic, 1, Duration::from_secs(30)));
    eprintln!(
        "timed-out transaction aborted after {:?}",
        started.elapsed()
    );
    assert_eq!(lso_hw, vec![(4, 4)], "abort marker written at offset 3");
    let got = read_committed_all(&bs, &topic, 1, 1).await;
    assert_eq!(
        sorted_values(&got),
        vec!["plain-0"],
        "read_committed sees only the non-transactional record: {:?}",
        summarize(&got)
    );

    // The old producer cannot commit the aborted transaction.
    let r = blocking(|| p.commit_transaction(TXN_WAIT));
    assert!(
        r.is_err(),
        "commit of a transaction the broker aborted succeeded"
    );
    drop(p);

    // The transactional id is usable again.
    let q = txn_producer(&bs, &id, &[]);
    blocking(|| q.init_transactions(TXN_WAIT)).expect("init_transactions again");
    q.begin_transaction().expect("begin");
    send_to(&q, &topic, 0, "n-0").await;
    blocking(|| q.commit_transaction(TXN_WAIT)).expect("commit");
    let got = read_committed_all(&bs, &topic, 1, 2).await;
    assert_eq!(sorted_values(&got), vec!["n-0", "plain-0"]);
}

/// DescribeTransactions v0 for one transactional id.
fn describe_txn(
    addr: std::net::SocketAddr,
    id: &str,
) -> kafka_protocol::messages::describe_transactions_response::TransactionState {
    use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
    use kafka_protocol::messages::TransactionalId;
    use kafka_protocol::protocol::StrBytes;
    let mut c = RawClient::connect(addr).expect("connect");
    let req = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.to_string()))]);
    let resp = c.request(0, &req).expect("DescribeTransactions v0");
    assert_eq!(resp.transaction_states.len(), 1, "{resp:?}");
    resp.transaction_states[0].clone()
}

/// ListTransactions v1: (error, [(transactional id, producer id, state)]).
fn list_txns(
    addr: std::net::SocketAddr,
    states: &[&str],
    duration_filter: i64,
) -> (i16, Vec<(String, i64, String)>) {
    use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
    use kafka_protocol::protocol::StrBytes;
    let mut c = RawClient::connect(addr).expect("connect");
    let req = ListTransactionsRequest::default()
        .with_state_filters(
            states
                .iter()
                .map(|s| StrBytes::from_string(s.to_string()))
                .collect(),
        )
        .with_duration_filter(duration_filter);
    let resp = c.request(1, &req).expect("ListTransactions v1");
    (
        resp.error_code,
        resp.transaction_states
            .iter()
            .map(|t| {
                (
                    t.transactional_id.0.to_string(),
                    t.producer_id.0,
                    t.transaction_state.to_string(),
                )
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_apis_find_describe_and_list_the_transaction() {
    use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
    use kafka_protocol::protocol::StrBytes;
    let broker = txn_broker(&[]);
    let bs = broker.bootstrap();
    let addr = broker.addr();
    let topic = unique_topic("txn-describe");
    create_topic(&bs, &topic, 2, &[]).await;
    let id = unique_topic("txn-describe-id");

    // FindCoordinator key_type 1 (transaction), batched (v4) and single-key (v3).
    let mut c = RawClient::connect(addr).unwrap();
    let req = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![StrBytes::from_string(id.clone())]);
    let resp = c.request(4, &req).expect("FindCoordinator v4");
    assert_eq!(resp.coordinators.len(), 1, "{resp:?}");
    let co = &resp.coordinators[0];
    assert_eq!(
        (co.error_code, co.node_id.0, co.port),
        (0, 0, addr.port() as i32),
        "{co:?}"
    );
    let req = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_key(StrBytes::from_string(id.clone()));
    let resp = c.request(3, &req).expect("FindCoordinator v3");
    assert_eq!((resp.error_code, resp.node_id.0), (0, 0), "{resp:?}");

    // Unknown id.
    let unknown = describe_txn(addr, "no-such-transactional-id");
    assert_eq!(
        unknown.error_code, 105,
        "TRANSACTIONAL_ID_NOT_FOUND: {unknown:?}"
    );

    let p = txn_producer(&bs, &id, &[("transaction.timeout.ms", "45000")]);
    blocking(|| p.init_transactions(TXN_WAIT)).expect("init_transactions");
    let empty = describe_txn(addr, &id);
    assert_eq!(
        (empty.error_code, empty.transaction_state.as_str()),
        (0, "Empty"),
        "{empty:?}"
    );
    p.begin_transaction().expect("begin");
    send_to(&p, &topic, 1, "d-0").await;
    let d = describe_txn(addr, &id);
    assert_eq!(
        (
            d.error_code,
            d.transaction_state.as_str(),
            d.transaction_timeout_ms
        ),
        (0, "Ongoing", 45000),
        "{d:?}"
    );
    assert_eq!(d.producer_id, empty.producer_id, "{d:?}");
    assert!(
        d.producer_id.0 >= 0 && d.transaction_start_time_ms > 0,
        "{d:?}"
    );
    let parts: Vec<(String, Vec<i32>)> = d
        .topics
        .iter()
        .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
        .collect();
    assert_eq!(
        parts,
        vec![(topic.clone(), vec![1])],
        "partitions in the transaction"
    );

    let (err, all) = list_txns(addr, &[], -1);
    assert_eq!(err, 0);
    assert!(
        all.contains(&(id.clone(), d.producer_id.0, "Ongoing".to_string())),
        "ListTransactions: {all:?}"
    );
    let (_, ongoing) = list_txns(addr, &["Ongoing"], -1);
    assert!(ongoing.iter().any(|t| t.0 == id), "{ongoing:?}");
    let (_, committed) = list_txns(addr, &["CompleteCommit"], -1);
    assert!(!committed.iter().any(|t| t.0 == id), "{committed:?}");
    let (_, long_running) = list_txns(addr, &[], 3_600_000);
    assert!(
        !long_running.iter().any(|t| t.0 == id),
        "duration filter 1 h: {long_running:?}"
    );

    blocking(|| p.commit_transaction(TXN_WAIT)).expect("commit");
    let state = blocking(|| {
        runnel_tests::raw::wait_for(Duration::from_secs(10), || {
            let d = describe_txn(addr, &id);
            (d.transaction_state.as_str() == "CompleteCommit").then_some(d)
        })
    });
    let d = state.unwrap_or_else(|_| panic!("not CompleteCommit: {:?}", describe_txn(addr, &id)));
    assert_eq!(d.error_code, 0);
    let (_, committed) = list_txns(addr, &["CompleteCommit"], -1);
    assert!(committed.iter().any(|t| t.0 == id), "{committed:?}");
}

// -------------------------------------------------------------------------------------------
// Consume-transform-produce in a separate process, killed with SIGKILL and restarted.

const EOS_PARTITIONS: i32 = 2;
const EOS_RECORDS: usize = 400;

/// Kills the worker process when the test ends (also on panic).
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_worker(env: &[(&str, String)], log: &Path) -> Worker {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open worker log");
    let mut cmd = Command::new(std::env::current_exe().expect("current test executable"));
    cmd.args([
        "eos_worker_process",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("RUNNEL_EOS_WORKER", "1")
    .stdin(Stdio::null())
    .stdout(Stdio::from(log.try_clone().unwrap()))
    .stderr(Stdio::from(log));
    for (k, v) in env {
        cmd.env(k, v);
    }
    Worker(cmd.spawn().expect("spawn EOS worker"))
}

/// Committed offsets of the worker's group on the input topic, per partition.
fn group_offsets(addr: std::net::SocketAddr, group: &str, input: &str) -> Vec<i64> {
    let parts: Vec<i32> = (0..EOS_PARTITIONS).collect();
    match raw_fetch_offsets(addr, group, Some(&[(input, &parts)])) {
        Ok((0, offs)) => parts
            .iter()
            .map(|p| {
                offs.iter()
                    .find(|o| o.partition == *p && o.error_code == 0)
                    .map_or(-1, |o| o.offset)
            })
            .collect(),
        _ => vec![-1; parts.len()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_is_exactly_once_across_worker_kills() {
    let broker = txn_broker(&[]);
    let bs = broker.bootstrap();
    let addr = broker.addr();
    let input = unique_topic("eos-in");
    let output = unique_topic("eos-out");
    let group = unique_topic("eos-group");
    let txn_id = unique_topic("eos-txn");
    create_topic(&bs, &input, EOS_PARTITIONS, &[]).await;
    create_topic(&bs, &output, EOS_PARTITIONS, &[]).await;

    let plain = producer(&bs, &[("acks", "all")]);
    let mut futures = Vec::new();
    for i in 0..EOS_RECORDS {
        let v = format!("in-{i:04}");
        let rec: FutureRecord<'_, str, str> = FutureRecord::to(&input)
            .partition(i as i32 % EOS_PARTITIONS)
            .key(v.as_str())
            .payload(v.as_str());
        futures.push(runnel_tests::clients::enqueue(&plain, rec));
    }
    for f in futures {
        tokio::time::timeout(MAX_WAIT, f)
            .await
            .expect("input delivery timed out")
            .expect("input producer dropped")
            .expect("input delivery failed");
    }
    let input_end: Vec<i64> = (0..EOS_PARTITIONS)
        .map(|p| blocking(|| raw_high_watermark(addr, &input, p)).unwrap())
        .collect();
    assert_eq!(input_end.iter().sum::<i64>(), EOS_RECORDS as i64);

    let env = [
        ("RUNNEL_EOS_BOOTSTRAP", bs.clone()),
        ("RUNNEL_EOS_INPUT", input.clone()),
        ("RUNNEL_EOS_OUTPUT", output.clone()),
        ("RUNNEL_EOS_GROUP", group.clone()),
        ("RUNNEL_EOS_TXN_ID", txn_id.clone()),
    ];
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("worker.log");
    let worker_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let seed = now_ms() as u64;
    eprintln!("EOS kill schedule seed {seed}");
    let mut rng = XorShift::new(seed);

    // Each incarnation is killed at a random moment after its first committed transaction
    // (mid-transaction or between transactions), so every kill interrupts real work.
    for round in 0..3 {
        let mut w = spawn_worker(&env, &log);
        let started = Instant::now();
        let first_txn = format!("[worker {}] txn 1:", w.0.id());
        while !worker_log().contains(&first_txn) {
            if let Some(status) = w.0.try_wait().unwrap() {
                panic!(
                    "EOS worker (round {round}) exited by itself ({status}):\n{}\n--- broker ---\n{}",
                    tail(&worker_log(), 6000),
                    tail(&broker.log(), 6000)
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "EOS worker (round {round}) committed nothing within 30 s:\n{}\n--- broker ---\n{}",
                tail(&worker_log(), 6000),
                tail(&broker.log(), 6000)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delay = Duration::from_millis(rng.next_u64() % 400);
        tokio::time::sleep(delay).await;
        if let Some(status) = w.0.try_wait().unwrap() {
            panic!(
                "EOS worker (round {round}) exited by itself ({status}) before the kill:\n{}\n--- broker ---\n{}",
                tail(&worker_log(), 6000),
                tail(&broker.log(), 6000)
            );
        }
        w.0.kill().expect("SIGKILL worker");
        w.0.wait().unwrap();
        eprintln!(
            "round {round}: killed worker {delay:?} after its first commit ({:?} after start); group offsets {:?} of {input_end:?}",
            started.elapsed(),
            blocking(|| group_offsets(addr, &group, &input))
        );
    }

    // The last incarnation runs until the group's committed offsets reach the input's end.
    let mut w = spawn_worker(&env, &log);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let offs = blocking(|| group_offsets(addr, &group, &input));
        if offs == input_end {
            break;
        }
        if let Some(status) = w.0.try_wait().unwrap() {
            panic!(
                "final EOS worker exited ({status}) at group offsets {offs:?}:\n{}\n--- broker ---\n{}",
                tail(&worker_log(), 6000),
                tail(&broker.log(), 6000)
            );
        }
        assert!(
            Instant::now() < deadline,
            "worker did not finish within 40 s: group offsets {offs:?}, input end {input_end:?}\n{}\n--- broker ---\n{}",
            tail(&worker_log(), 6000),
            tail(&broker.log(), 6000)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(w);

    let got = read_committed_all(&bs, &output, EOS_PARTITIONS, EOS_RECORDS).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &got {
        *counts.entry(r.value_str()).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let want: Vec<String> = (0..EOS_RECORDS).map(|i| format!("out-in-{i:04}")).collect();
    let missing: Vec<_> = want.iter().filter(|v| !counts.contains_key(*v)).collect();
    let unexpected: Vec<_> = counts.keys().filter(|v| !want.contains(v)).collect();
    assert!(
        dups.is_empty() && missing.is_empty() && unexpected.is_empty() && got.len() == EOS_RECORDS,
        "output is not exactly-once: {} records, duplicates {dups:?}, missing {missing:?}, unexpected {unexpected:?}\n--- worker ---\n{}",
        got.len(),
        tail(&worker_log(), 6000)
    );
    // Each output record went to the input record's partition, in input order.
    for r in &got {
        let i: usize = r.value_str()["out-in-".len()..].parse().unwrap();
        assert_eq!(r.partition, i as i32 % EOS_PARTITIONS, "partition of {r:?}");
    }
    for part in 0..EOS_PARTITIONS {
        let vals: Vec<String> = got
            .iter()
            .filter(|r| r.partition == part)
            .map(Record::value_str)
            .collect();
        assert_eq!(vals, sorted(vals.clone()), "output partition {part} order");
    }
    wait_lso_at_hw(addr, &output, EOS_PARTITIONS, Duration::from_secs(10));
}

/// Retries a transactional call a few times while it fails with a retriable error (as an
/// application should, e.g. for COORDINATOR_NOT_AVAILABLE).
fn retry_retriable(mut f: impl FnMut() -> Result<(), KafkaError>) -> Result<(), KafkaError> {
    let mut attempts = 0;
    loop {
        match f() {
            Err(KafkaError::Transaction(e)) if e.is_retriable() && attempts < 5 => {
                eprintln!(
                    "[worker {}] retriable error, retrying: {e}",
                    std::process::id()
                );
                attempts += 1;
                std::thread::sleep(Duration::from_millis(300));
            }
            r => return r,
        }
    }
}

/// The last `n` bytes (at a char boundary) of a long log, for panic messages.
fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The consume-transform-produce worker run by
/// `consume_transform_produce_is_exactly_once_across_worker_kills` in a child process
/// (`RUNNEL_EOS_WORKER=1`); a no-op otherwise. Reads the input from the group's committed
/// offsets, and per transaction writes `out-<value>` to the same partition of the output and
/// commits the consumed offsets with `send_offsets_to_transaction`. Exits non-zero on any error.
#[test]
#[ignore = "worker process started by consume_transform_produce_is_exactly_once_across_worker_kills"]
fn eos_worker_process() {
    if std::env::var("RUNNEL_EOS_WORKER").as_deref() != Ok("1") {
        return;
    }
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let (bs, input, output, group, txn_id) = (
        var("RUNNEL_EOS_BOOTSTRAP"),
        var("RUNNEL_EOS_INPUT"),
        var("RUNNEL_EOS_OUTPUT"),
        var("RUNNEL_EOS_GROUP"),
        var("RUNNEL_EOS_TXN_ID"),
    );
    let fail = |code: i32, what: &str, e: &dyn std::fmt::Debug| -> ! {
        eprintln!("[worker {}] {what} failed: {e:?}", std::process::id());
        std::process::exit(code)
    };
    let pid = std::process::id();
    eprintln!("[worker {pid}] starting");

    let p = txn_producer(&bs, &txn_id, &[("transaction.timeout.ms", "10000")]);
    // First fence any previous incarnation (aborting its open transaction), then read the
    // committed offsets.
    if let Err(e) = p.init_transactions(TXN_WAIT) {
        fail(3, "init_transactions", &e);
    }
    let c: BaseConsumer =
        group_consumer_config(&bs, &group, &[("isolation.level", "read_committed")])
            .create()
            .expect("create worker consumer");
    let mut tpl = TopicPartitionList::new();
    for part in 0..EOS_PARTITIONS {
        tpl.add_partition_offset(&input, part, Offset::Stored)
            .unwrap();
    }
    c.assign(&tpl).expect("assign input");
    eprintln!("[worker {pid}] initialized");

    let started = Instant::now();
    let mut txns = 0;
    while started.elapsed() < Duration::from_secs(90) {
        let mut batch = Vec::new();
        let t0 = Instant::now();
        while batch.len() < 10 && t0.elapsed() < Duration::from_millis(200) {
            match c.poll(Duration::from_millis(50)) {
                None => {}
                Some(Ok(m)) => batch.push((
                    m.partition(),
                    m.offset(),
                    m.key().map(<[u8]>::to_vec),
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                )),
                Some(Err(e)) => fail(4, "poll", &e),
            }
        }
        if batch.is_empty() {
            continue;
        }
        if let Err(e) = p.begin_transaction() {
            fail(5, "begin_transaction", &e);
        }
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for (part, offset, key, value) in &batch {
            let out = format!("out-{value}");
            let mut rec: FutureRecord<'_, [u8], str> =
                FutureRecord::to(&output).partition(*part).payload(&out);
            if let Some(k) = key {
                rec = rec.key(k.as_slice());
            }
            if let Err((e, _)) = p.send_result(rec) {
                fail(6, "send", &e);
            }
            next.insert(*part, offset + 1);
        }
        let mut offsets = TopicPartitionList::new();
        for (part, off) in &next {
            offsets
                .add_partition_offset(&input, *part, Offset::Offset(*off))
                .unwrap();
        }
        let cgm = c.group_metadata().expect("consumer group metadata");
        if let Err(e) = retry_retriable(|| p.send_offsets_to_transaction(&offsets, &cgm, TXN_WAIT))
        {
            fail(7, "send_offsets_to_transaction", &e);
        }
        if let Err(e) = retry_retriable(|| p.commit_transaction(TXN_WAIT)) {
            fail(8, "commit_transaction", &e);
        }
        txns += 1;
        eprintln!(
            "[worker {pid}] txn {txns}: {} records, next offsets {next:?}",
            batch.len()
        );
        std::thread::sleep(Duration::from_millis(30));
    }
    eprintln!("[worker {pid}] ran 90 s, exiting");
}
