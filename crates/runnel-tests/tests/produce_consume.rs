//! Produce and consume through librdkafka (the `rdkafka` crate) against the real broker:
//! compression codecs, acks levels, keyed/unkeyed records, headers, assignment at
//! beginning/end/offset/timestamp, many partitions, isolation levels, long-poll fetches,
//! size limits, unknown topics and metadata.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::Consumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use runnel_tests::clients::{
    assign, consume_for, consume_n, consumer, create_topic, enqueue, headers, producer, send,
    send_all, summarize, topic_partitions, MAX_WAIT,
};
use runnel_tests::TestBroker;

const WAIT: Duration = Duration::from_secs(20);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Sends one record and returns the delivery error code (panics if it was delivered).
async fn send_expect_error(
    producer: &FutureProducer,
    rec: FutureRecord<'_, str, [u8]>,
) -> RDKafkaErrorCode {
    let res = tokio::time::timeout(MAX_WAIT, producer.send(rec, Timeout::After(MAX_WAIT)))
        .await
        .expect("delivery report timed out");
    match res {
        Ok(d) => panic!(
            "expected a delivery error, but the record was stored at partition {} offset {}",
            d.partition, d.offset
        ),
        Err((e, _)) => e
            .rdkafka_error_code()
            .unwrap_or_else(|| panic!("delivery error without a code: {e:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_codec_round_trips_keyed_and_unkeyed_records() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        create_topic(&bs, &topic, 1, &[]).await;
        let p = producer(
            &bs,
            &[
                ("compression.codec", codec),
                ("queue.buffering.max.ms", "50"),
            ],
        );
        // Compressible values so the codec actually shrinks the batch; every other one keyed.
        let records: Vec<(Option<String>, String)> = (0..60)
            .map(|i| {
                let key = (i % 2 == 0).then(|| format!("key-{codec}-{i}"));
                (key, format!("{codec}-value-{i}-{}", "abc".repeat(40 + i)))
            })
            .collect();
        let acks = send_all(&p, &topic, &records).await;
        let offsets: Vec<i64> = acks.iter().map(|a| a.1).collect();
        assert_eq!(
            offsets,
            (0..60).collect::<Vec<i64>>(),
            "{codec}: offsets in the delivery reports"
        );

        let c = consumer(&bs, &[]);
        assign(&c, &topic, 1, Offset::Beginning);
        let got = consume_n(&c, records.len(), WAIT).await;
        for (i, (r, (k, v))) in got.iter().zip(&records).enumerate() {
            assert_eq!(r.offset, i as i64, "{codec}: offset of record {i}");
            assert_eq!(r.value_str(), *v, "{codec}: value of record {i}");
            assert_eq!(
                r.key.as_deref(),
                k.as_deref().map(str::as_bytes),
                "{codec}: key of record {i}"
            );
        }
        let extra = consume_for(&c, Duration::from_millis(300)).await;
        assert!(
            extra.is_empty(),
            "{codec}: unexpected extra records {:?}",
            summarize(&extra)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_one_and_all_store_every_record() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    for acks in ["0", "1", "all"] {
        let topic = format!("acks-{acks}");
        create_topic(&bs, &topic, 1, &[]).await;
        let p = producer(&bs, &[("acks", acks)]);
        let records: Vec<(Option<String>, String)> = (0..25)
            .map(|i| (Some(format!("k{i}")), format!("acks-{acks}-{i}")))
            .collect();
        let reports = send_all(&p, &topic, &records).await;
        if acks != "0" {
            let offsets: Vec<i64> = reports.iter().map(|r| r.1).collect();
            assert_eq!(offsets, (0..25).collect::<Vec<i64>>(), "acks={acks}");
        }
        let c = consumer(&bs, &[]);
        assign(&c, &topic, 1, Offset::Beginning);
        let got = consume_n(&c, 25, WAIT).await;
        let values: Vec<String> = got.iter().map(|r| r.value_str()).collect();
        let expected: Vec<String> = records.iter().map(|r| r.1.clone()).collect();
        assert_eq!(values, expected, "acks={acks}: values in order");
        let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..25).collect::<Vec<i64>>(), "acks={acks}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_at_beginning_end_offset_and_tail() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = "positions";
    create_topic(&bs, topic, 1, &[]).await;
    let p = producer(&bs, &[]);
    let first: Vec<(Option<String>, String)> =
        (0..10).map(|i| (None, format!("old-{i}"))).collect();
    send_all(&p, topic, &first).await;

    // Offset::Offset(n): starts exactly at n.
    let at4 = consumer(&bs, &[]);
    assign(&at4, topic, 1, Offset::Offset(4));
    let got = consume_n(&at4, 6, WAIT).await;
    assert_eq!(
        got.iter()
            .map(|r| (r.offset, r.value_str()))
            .collect::<Vec<_>>(),
        (4..10).map(|i| (i, format!("old-{i}"))).collect::<Vec<_>>()
    );

    // Offset::End: nothing old arrives; only what is produced after the assignment.
    let end = consumer(&bs, &[]);
    assign(&end, topic, 1, Offset::End);
    let early = consume_for(&end, Duration::from_millis(1500)).await;
    assert!(
        early.is_empty(),
        "consumer at End got old records: {:?}",
        summarize(&early)
    );
    let newer: Vec<(Option<String>, String)> = (0..3).map(|i| (None, format!("new-{i}"))).collect();
    let reports = send_all(&p, topic, &newer).await;
    assert_eq!(
        reports.iter().map(|r| r.1).collect::<Vec<_>>(),
        vec![10, 11, 12]
    );
    let got = consume_n(&end, 3, WAIT).await;
    assert_eq!(
        got.iter()
            .map(|r| (r.offset, r.value_str()))
            .collect::<Vec<_>>(),
        (0..3)
            .map(|i| (10 + i, format!("new-{i}")))
            .collect::<Vec<_>>()
    );

    // Offset::Beginning: everything; OffsetTail(2): the last two.
    let beg = consumer(&bs, &[]);
    assign(&beg, topic, 1, Offset::Beginning);
    let all = consume_n(&beg, 13, WAIT).await;
    assert_eq!(
        all.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..13).collect::<Vec<i64>>()
    );
    let tail = consumer(&bs, &[]);
    assign(&tail, topic, 1, Offset::OffsetTail(2));
    let got = consume_n(&tail, 2, WAIT).await;
    assert_eq!(
        got.iter()
            .map(|r| (r.offset, r.value_str()))
            .collect::<Vec<_>>(),
        vec![(11, "new-1".to_string()), (12, "new-2".to_string())]
    );
    let (low, high) = beg
        .fetch_watermarks(topic, 0, MAX_WAIT)
        .expect("watermarks");
    assert_eq!((low, high), (0, 13));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_for_times_then_assign_returns_first_record_at_or_after_timestamp() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = "by-time";
    create_topic(&bs, topic, 1, &[]).await;
    let p = producer(&bs, &[]);
    let base = now_ms() - 120_000;
    // Record i has CreateTime base + 1000 * i.
    let mut futs = Vec::new();
    for i in 0..10i64 {
        let v = format!("t-{i}");
        let rec: FutureRecord<'_, str, str> = FutureRecord::to(topic)
            .payload(v.as_str())
            .timestamp(base + 1000 * i);
        futs.push(enqueue(&p, rec));
    }
    for f in futs {
        tokio::time::timeout(MAX_WAIT, f)
            .await
            .expect("delivery timed out")
            .expect("producer alive")
            .expect("delivered");
    }

    let c = consumer(&bs, &[]);
    let lookup = |ts: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(ts))
            .unwrap();
        let res = c
            .offsets_for_times(tpl, MAX_WAIT)
            .expect("offsets_for_times");
        res.find_partition(topic, 0).expect("partition 0").offset()
    };
    assert_eq!(
        lookup(base + 3500),
        Offset::Offset(4),
        "between records 3 and 4"
    );
    assert_eq!(lookup(base + 5000), Offset::Offset(5), "exactly record 5");
    assert_eq!(lookup(base - 10_000), Offset::Offset(0), "before all");
    assert_eq!(lookup(base + 100_000), Offset::End, "after all: -1 (end)");

    let off = lookup(base + 6200);
    assert_eq!(off, Offset::Offset(7));
    assign(&c, topic, 1, off);
    let got = consume_n(&c, 3, WAIT).await;
    assert_eq!(got[0].value_str(), "t-7");
    assert_eq!(got[0].timestamp, Some(base + 7000));
    assert!(got.iter().all(|r| r.timestamp.unwrap() >= base + 6200));
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![7, 8, 9]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_headers_round_trip_with_duplicates_and_nulls() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = "headers";
    create_topic(&bs, topic, 1, &[]).await;
    let p = producer(&bs, &[]);
    let bin: &[u8] = &[0, 255, 1, 2];
    let hdrs: Vec<(&str, Option<&[u8]>)> = vec![
        ("trace-id", Some(b"abc-123".as_slice())),
        ("dup", Some(b"first".as_slice())),
        ("nothing", None),
        ("dup", Some(b"second".as_slice())),
        ("binary", Some(bin)),
        ("empty", Some(b"".as_slice())),
        ("dup", None),
    ];
    let rec: FutureRecord<'_, str, str> = FutureRecord::to(topic)
        .key("hk")
        .payload("with headers")
        .headers(headers(&hdrs));
    tokio::time::timeout(MAX_WAIT, p.send(rec, Timeout::After(MAX_WAIT)))
        .await
        .expect("timeout")
        .expect("delivered");
    send(&p, topic, None, "no headers").await;

    let c = consumer(&bs, &[]);
    assign(&c, topic, 1, Offset::Beginning);
    let got = consume_n(&c, 2, WAIT).await;
    let expected: Vec<(String, Option<Vec<u8>>)> = hdrs
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(|v| v.to_vec())))
        .collect();
    assert_eq!(got[0].headers, expected);
    assert_eq!(got[0].key_str(), "hk");
    assert_eq!(got[0].value_str(), "with headers");
    assert!(got[1].headers.is_empty(), "{:?}", got[1].headers);
    assert_eq!(got[1].key, None);
    assert_eq!(got[1].value_str(), "no headers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_on_32_partitions_are_read_back_exactly_once_in_order() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = "wide";
    create_topic(&bs, topic, 32, &[]).await;
    let p = producer(&bs, &[("queue.buffering.max.ms", "20")]);
    let n = 640;
    let records: Vec<(Option<String>, String)> = (0..n)
        .map(|i| (Some(format!("key-{}", i % 64)), format!("v-{i}")))
        .collect();
    let reports = send_all(&p, topic, &records).await;

    // The partitioner is deterministic per key.
    let mut key_partition: HashMap<&str, i32> = HashMap::new();
    for ((k, v), (part, _)) in records.iter().zip(&reports) {
        let prev = *key_partition.entry(k.as_deref().unwrap()).or_insert(*part);
        assert_eq!(prev, *part, "{v}: key moved partitions");
        assert!((0..32).contains(part));
    }
    let used: HashSet<i32> = key_partition.values().copied().collect();
    assert!(used.len() >= 16, "64 keys landed on only {used:?}");

    let c = consumer(&bs, &[]);
    assign(&c, topic, 32, Offset::Beginning);
    let got = consume_n(&c, n, WAIT).await;
    let extra = consume_for(&c, Duration::from_millis(500)).await;
    assert!(extra.is_empty(), "extra records: {:?}", summarize(&extra));

    let expected: HashMap<String, (Option<String>, (i32, i64))> = records
        .iter()
        .zip(&reports)
        .map(|((k, v), rep)| (v.clone(), (k.clone(), *rep)))
        .collect();
    let mut seen = HashSet::new();
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in &got {
        let v = r.value_str();
        assert!(seen.insert(v.clone()), "{v} read twice");
        let (k, (part, off)) = expected.get(&v).unwrap_or_else(|| panic!("unknown {v}"));
        assert_eq!(
            (r.partition, r.offset),
            (*part, *off),
            "{v} not where delivered"
        );
        assert_eq!(r.key.as_deref(), k.as_deref().map(str::as_bytes));
        per_partition.entry(r.partition).or_default().push(r.offset);
    }
    assert_eq!(seen.len(), n);
    for (part, offsets) in &per_partition {
        let want: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, &want, "partition {part} offsets out of order");
    }
    // Order per partition follows send order.
    for part in per_partition.keys() {
        let sent: Vec<&String> = records
            .iter()
            .zip(&reports)
            .filter(|(_, rep)| rep.0 == *part)
            .map(|(r, _)| &r.1)
            .collect();
        let read: Vec<String> = got
            .iter()
            .filter(|r| r.partition == *part)
            .map(|r| r.value_str())
            .collect();
        assert_eq!(
            read.iter().collect::<Vec<_>>(),
            sent,
            "partition {part} order"
        );
    }

    let md = c.fetch_metadata(Some(topic), MAX_WAIT).expect("metadata");
    let t = &md.topics()[0];
    assert_eq!(t.partitions().len(), 32);
    for part in t.partitions() {
        assert_eq!(part.leader(), 0, "partition {}", part.id());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_default_and_read_uncommitted_both_see_records() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = "isolation";
    create_topic(&bs, topic, 2, &[]).await;
    let p = producer(&bs, &[]);
    let records: Vec<(Option<String>, String)> = (0..20)
        .map(|i| (Some(format!("k{i}")), format!("iso-{i}")))
        .collect();
    send_all(&p, topic, &records).await;
    let want: HashSet<String> = records.iter().map(|r| r.1.clone()).collect();

    for isolation in [None, Some("read_committed"), Some("read_uncommitted")] {
        let extra: Vec<(&str, &str)> = isolation
            .map(|l| vec![("isolation.level", l)])
            .unwrap_or_default();
        let c = consumer(&bs, &extra);
        assign(&c, topic, 2, Offset::Beginning);
        let got = consume_n(&c, 20, WAIT).await;
        let values: HashSet<String> = got.iter().map(|r| r.value_str()).collect();
        assert_eq!(values, want, "isolation {isolation:?}");
        let more = consume_for(&c, Duration::from_millis(300)).await;
        assert!(more.is_empty(), "isolation {isolation:?}: extra records");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_fetch_wakes_when_a_record_is_appended() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = "long-poll";
    create_topic(&bs, topic, 1, &[]).await;
    let p = producer(&bs, &[("queue.buffering.max.ms", "0")]);
    send(&p, topic, None, "before").await;

    // The broker may hold each fetch for up to 10 s; it must answer as soon as data arrives.
    let c = consumer(
        &bs,
        &[("fetch.wait.max.ms", "10000"), ("fetch.min.bytes", "1")],
    );
    assign(&c, topic, 1, Offset::End);
    let early = consume_for(&c, Duration::from_millis(1500)).await;
    assert!(early.is_empty(), "{:?}", summarize(&early));
    for round in 0..3 {
        let value = format!("late-{round}");
        let started = Instant::now();
        let (_, off) = send(&p, topic, None, &value).await;
        let got = consume_n(&c, 1, WAIT).await;
        let elapsed = started.elapsed();
        assert_eq!((got[0].offset, got[0].value_str()), (off, value));
        // Half of fetch.wait.max.ms: a broker that holds the fetch to the end still fails.
        assert!(
            elapsed < Duration::from_secs(5),
            "round {round}: record produced at the end arrived after {elapsed:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // min_bytes not reachable: the broker must still answer after max_wait_ms.
    let c2 = consumer(
        &bs,
        &[
            ("fetch.wait.max.ms", "300"),
            ("fetch.min.bytes", "10000000"),
        ],
    );
    assign(&c2, topic, 1, Offset::Beginning);
    let started = Instant::now();
    let got = consume_n(&c2, 4, WAIT).await;
    assert_eq!(got[0].value_str(), "before");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fetch with unreachable min bytes took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_megabyte_records_pass_and_oversized_batches_are_rejected() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = "big";
    create_topic(&bs, topic, 1, &[]).await;
    // The client's own limits are far above the broker's, so only the broker can refuse.
    let p = producer(
        &bs,
        &[
            ("message.max.bytes", "10000000"),
            ("batch.size", "10000000"),
            ("compression.codec", "none"),
        ],
    );
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..2 {
        let rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic)
            .key(if i == 0 { "a" } else { "b" })
            .payload(&big);
        let d = tokio::time::timeout(MAX_WAIT, p.send(rec, Timeout::After(MAX_WAIT)))
            .await
            .expect("timeout")
            .unwrap_or_else(|(e, _)| panic!("1 MB record {i} rejected: {e:?}"));
        assert_eq!(d.offset, i);
    }

    // Broker default message.max.bytes = 1048588 < 1.2 MB.
    let too_big = vec![42u8; 1_200_000];
    let code = send_expect_error(&p, FutureRecord::to(topic).payload(&too_big[..])).await;
    assert_eq!(code, RDKafkaErrorCode::MessageSizeTooLarge);

    let c = consumer(&bs, &[]);
    assign(&c, topic, 1, Offset::Beginning);
    let got = consume_n(&c, 2, WAIT).await;
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert!(
            r.value.as_deref() == Some(&big[..]),
            "1 MB value {i} differs"
        );
    }
    let more = consume_for(&c, Duration::from_millis(500)).await;
    assert!(more.is_empty(), "rejected record was stored");

    // Topic-level max.message.bytes.
    let small = "small-limit";
    create_topic(&bs, small, 1, &[("max.message.bytes", "100000")]).await;
    let code = send_expect_error(&p, FutureRecord::to(small).payload(&big[..200_000])).await;
    assert_eq!(code, RDKafkaErrorCode::MessageSizeTooLarge);
    let rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(small).payload(&big[..50_000]);
    let d = tokio::time::timeout(MAX_WAIT, p.send(rec, Timeout::After(MAX_WAIT)))
        .await
        .expect("timeout")
        .expect("50 kB record under a 100 kB limit");
    assert_eq!(d.offset, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topic_is_an_error_when_auto_create_is_off() {
    let broker = TestBroker::start(&[("auto.create.topics.enable", "false")]);
    let bs = broker.bootstrap();
    let p = producer(
        &bs,
        &[
            ("message.timeout.ms", "3000"),
            ("topic.metadata.propagation.max.ms", "100"),
        ],
    );
    let code = send_expect_error(&p, FutureRecord::to("no-such-topic").payload(&b"x"[..])).await;
    assert_eq!(code, RDKafkaErrorCode::UnknownTopicOrPartition);
    let c = consumer(&bs, &[]);
    let topics = topic_partitions(&c);
    assert!(
        !topics.contains_key("no-such-topic"),
        "topic was created: {topics:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producing_to_a_new_topic_auto_creates_it_with_num_partitions() {
    let broker = TestBroker::start(&[("num.partitions", "3")]);
    let bs = broker.bootstrap();
    let p = producer(&bs, &[]);
    let (part, off) = send(&p, "auto-made", Some("k"), "hello").await;
    assert!((0..3).contains(&part));
    assert_eq!(off, 0);
    let c = consumer(&bs, &[]);
    assert_eq!(topic_partitions(&c).get("auto-made"), Some(&3));
    assign(&c, "auto-made", 3, Offset::Beginning);
    let got = consume_n(&c, 1, WAIT).await;
    assert_eq!(
        (got[0].partition, got[0].value_str()),
        (part, "hello".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_shows_broker_zero_and_partition_leaders() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    create_topic(&bs, "meta", 4, &[]).await;
    let c = consumer(&bs, &[]);
    let md = c.fetch_metadata(None, MAX_WAIT).expect("metadata");
    assert_eq!(md.brokers().len(), 1, "one broker");
    let b = &md.brokers()[0];
    assert_eq!(b.id(), 0);
    assert_eq!(b.host(), "127.0.0.1");
    assert_eq!(b.port(), i32::from(broker.addr().port()));
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == "meta")
        .expect("topic listed");
    assert!(t.error().is_none(), "{:?}", t.error());
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort();
    assert_eq!(ids, vec![0, 1, 2, 3]);
    for p in t.partitions() {
        assert_eq!(p.leader(), 0);
        assert_eq!(p.replicas(), &[0]);
        assert_eq!(p.isr(), &[0]);
        assert!(p.error().is_none());
    }
}
