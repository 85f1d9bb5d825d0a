//! Topic administration through librdkafka's AdminClient: create (with configs, defaults,
//! validate_only) and delete, every error the contract names, and persistence across restarts.

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication, TopicResult};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;
use runnel_tests::clients::{
    admin, admin_opts, assign, consume_n, consumer, create_topic, producer, send, send_all,
    topic_partitions, try_create_topics, try_delete_topics,
};
use runnel_tests::TestBroker;

const WAIT: Duration = Duration::from_secs(20);

fn partition_dirs(data_dir: &Path, topic: &str) -> Vec<String> {
    let prefix = format!("{topic}-");
    let mut dirs: Vec<String> = std::fs::read_dir(data_dir.join("data"))
        .expect("read data dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.strip_prefix(&prefix)
                .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
        })
        .collect();
    dirs.sort();
    dirs
}

fn expect_error(results: &[TopicResult], name: &str, code: RDKafkaErrorCode) {
    assert_eq!(results.len(), 1, "{results:?}");
    match &results[0] {
        Ok(n) => panic!("{name}: expected {code:?}, but the broker reported success for {n}"),
        Err((n, c)) => {
            assert_eq!(n, name);
            assert_eq!(*c, code, "error for {name}");
        }
    }
}

fn new_topic(name: &str, partitions: i32) -> NewTopic<'_> {
    NewTopic::new(name, partitions, TopicReplication::Fixed(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_segment_bytes_rolls_several_segments() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    create_topic(
        &bs,
        "small-segs",
        1,
        &[("segment.bytes", "2048"), ("index.interval.bytes", "256")],
    )
    .await;
    let p = producer(&bs, &[]);
    let mut values = Vec::new();
    for i in 0..40 {
        let v = format!("segment-record-{i:03}-{}", "x".repeat(150));
        let (_, off) = send(&p, "small-segs", None, &v).await;
        assert_eq!(off, i);
        values.push(v);
    }
    let dir = broker.data_dir().join("data/small-segs-0");
    let mut logs: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    logs.sort();
    assert!(
        logs.len() >= 3,
        "40 records of ~200 bytes with segment.bytes=2048 should roll: {logs:?}"
    );
    assert_eq!(logs[0], "00000000000000000000.log");
    for name in &logs {
        assert_eq!(name.len(), 24, "segment file name {name}");
    }
    // All records still readable across the segments, in order.
    let c = consumer(&bs, &[]);
    assign(&c, "small-segs", 1, Offset::Beginning);
    let got = consume_n(&c, 40, WAIT).await;
    assert_eq!(
        got.iter().map(|r| r.value_str()).collect::<Vec<_>>(),
        values
    );
    // And from the middle of a later segment.
    let c = consumer(&bs, &[]);
    assign(&c, "small-segs", 1, Offset::Offset(33));
    let got = consume_n(&c, 7, WAIT).await;
    assert_eq!(got[0].offset, 33);
    assert_eq!(got[0].value_str(), values[33]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_every_supported_config_and_defaults() {
    let broker = TestBroker::start(&[("num.partitions", "5")]);
    let bs = broker.bootstrap();
    let a = admin(&bs);
    let configured = new_topic("configured", 2)
        .set("segment.bytes", "1048576")
        .set("segment.ms", "3600000")
        .set("segment.index.bytes", "1048576")
        .set("index.interval.bytes", "4096")
        .set("flush.messages", "1")
        .set("flush.ms", "1000")
        .set("max.message.bytes", "500000");
    let defaults = NewTopic::new("defaults", -1, TopicReplication::Fixed(-1));
    let res = try_create_topics(&a, &[configured, defaults], &admin_opts()).await;
    assert_eq!(
        res,
        vec![Ok("configured".to_string()), Ok("defaults".to_string())]
    );
    let c = consumer(&bs, &[]);
    let topics = topic_partitions(&c);
    assert_eq!(topics.get("configured"), Some(&2), "{topics:?}");
    assert_eq!(
        topics.get("defaults"),
        Some(&5),
        "num_partitions -1 means num.partitions"
    );
    assert_eq!(
        partition_dirs(broker.data_dir(), "defaults"),
        (0..5).map(|i| format!("defaults-{i}")).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_existing_topic_is_topic_already_exists() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let a = admin(&bs);
    create_topic(&bs, "exists", 2, &[]).await;
    let res = try_create_topics(&a, &[new_topic("exists", 5)], &admin_opts()).await;
    expect_error(&res, "exists", RDKafkaErrorCode::TopicAlreadyExists);
    // The existing topic is unchanged.
    let c = consumer(&bs, &[]);
    assert_eq!(topic_partitions(&c).get("exists"), Some(&2));
    assert_eq!(partition_dirs(broker.data_dir(), "exists").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_topic_names_are_rejected() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let a = admin(&bs);
    let opts = admin_opts();
    let long = "x".repeat(250);
    for bad in ["bad name", "a/b", ".", "..", "ünïcode", long.as_str()] {
        let res = try_create_topics(&a, &[new_topic(bad, 1)], &opts).await;
        expect_error(&res, bad, RDKafkaErrorCode::InvalidTopic);
    }
    let c = consumer(&bs, &[]);
    let topics = topic_partitions(&c);
    assert!(topics.is_empty(), "{topics:?}");
    assert!(partition_dirs(broker.data_dir(), &long).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longest_legal_topic_name_249_chars_works() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let a = admin(&bs);
    let name = "y".repeat(249);
    let res = try_create_topics(&a, &[new_topic(&name, 1)], &admin_opts()).await;
    assert_eq!(res, vec![Ok(name.clone())], "249 chars is a legal name");
    let p = producer(&bs, &[]);
    let (_, off) = send(&p, &name, None, "long-name").await;
    assert_eq!(off, 0);
    let c = consumer(&bs, &[]);
    assign(&c, &name, 1, Offset::Beginning);
    assert_eq!(consume_n(&c, 1, WAIT).await[0].value_str(), "long-name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configs_and_replication_factors_are_rejected() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let a = admin(&bs);
    let opts = admin_opts();
    for (k, v) in [
        ("no.such.config", "1"),
        ("segment.bytes", "abc"),
        ("flush.messages", "-5"),
    ] {
        let t = new_topic("bad-config", 1).set(k, v);
        let res = try_create_topics(&a, &[t], &opts).await;
        expect_error(&res, "bad-config", RDKafkaErrorCode::InvalidConfig);
    }

    let t = NewTopic::new("rf3", 1, TopicReplication::Fixed(3));
    let res = try_create_topics(&a, &[t], &opts).await;
    expect_error(&res, "rf3", RDKafkaErrorCode::InvalidReplicationFactor);

    // One bad topic in a request does not spoil the good one next to it.
    let res = try_create_topics(
        &a,
        &[
            new_topic("good-neighbour", 1),
            NewTopic::new("rf2", 1, TopicReplication::Fixed(2)),
        ],
        &opts,
    )
    .await;
    assert_eq!(res[0], Ok("good-neighbour".to_string()));
    assert_eq!(
        res[1],
        Err(("rf2".into(), RDKafkaErrorCode::InvalidReplicationFactor))
    );

    // None of the failed creations left anything behind.
    let c = consumer(&bs, &[]);
    let topics = topic_partitions(&c);
    for t in ["bad-config", "rf3", "rf2"] {
        assert!(!topics.contains_key(t), "{t} exists: {topics:?}");
        assert!(
            partition_dirs(broker.data_dir(), t).is_empty(),
            "{t} has a dir"
        );
    }
    assert_eq!(topics.get("good-neighbour"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_topic_removes_metadata_and_directories() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let a = admin(&bs);
    create_topic(&bs, "doomed", 2, &[]).await;
    create_topic(&bs, "survivor", 1, &[]).await;
    let p = producer(&bs, &[]);
    let recs: Vec<(Option<String>, String)> = (0..10)
        .map(|i| (Some(format!("k{i}")), format!("doomed-{i}")))
        .collect();
    send_all(&p, "doomed", &recs).await;
    send(&p, "survivor", None, "alive").await;
    assert_eq!(partition_dirs(broker.data_dir(), "doomed").len(), 2);

    let res = try_delete_topics(&a, &["doomed"]).await;
    assert_eq!(res, vec![Ok("doomed".to_string())]);

    let c = consumer(&bs, &[]);
    let topics = topic_partitions(&c);
    assert!(!topics.contains_key("doomed"), "{topics:?}");
    assert_eq!(topics.get("survivor"), Some(&1));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dirs = partition_dirs(broker.data_dir(), "doomed");
        if dirs.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "partition dirs still there 10 s after delete: {dirs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let res = try_delete_topics(&a, &["doomed"]).await;
    assert_eq!(
        res,
        vec![Err((
            "doomed".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );
    let res = try_delete_topics(&a, &["never-existed"]).await;
    assert_eq!(
        res,
        vec![Err((
            "never-existed".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );

    // The name can be reused; the new topic starts empty at offset 0.
    create_topic(&bs, "doomed", 1, &[]).await;
    drop(p);
    let p = producer(&bs, &[]);
    let (part, off) = send(&p, "doomed", None, "reborn").await;
    assert_eq!((part, off), (0, 0));
    let c = consumer(&bs, &[]);
    assign(&c, "doomed", 1, Offset::Beginning);
    let got = consume_n(&c, 1, WAIT).await;
    assert_eq!(got[0].value_str(), "reborn");
    // The other topic was not touched.
    let c = consumer(&bs, &[]);
    assign(&c, "survivor", 1, Offset::Beginning);
    assert_eq!(consume_n(&c, 1, WAIT).await[0].value_str(), "alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_only_creates_nothing() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let a = admin(&bs);
    create_topic(&bs, "already", 1, &[]).await;
    let opts = admin_opts().validate_only(true);

    let res = try_create_topics(&a, &[new_topic("dry-run", 3)], &opts).await;
    assert_eq!(res, vec![Ok("dry-run".to_string())]);
    let res = try_create_topics(&a, &[new_topic("already", 1)], &opts).await;
    expect_error(&res, "already", RDKafkaErrorCode::TopicAlreadyExists);
    let res = try_create_topics(
        &a,
        &[new_topic("dry-bad", 1).set("no.such.config", "1")],
        &opts,
    )
    .await;
    expect_error(&res, "dry-bad", RDKafkaErrorCode::InvalidConfig);

    let c = consumer(&bs, &[]);
    let topics = topic_partitions(&c);
    assert!(!topics.contains_key("dry-run"), "{topics:?}");
    assert!(partition_dirs(broker.data_dir(), "dry-run").is_empty());

    // A real create of the same name still works afterwards.
    create_topic(&bs, "dry-run", 3, &[]).await;
    assert_eq!(topic_partitions(&c).get("dry-run"), Some(&3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_and_partition_counts_survive_restart() {
    let mut broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let a = admin(&bs);
    for (name, parts) in [("one", 1), ("seven", 7), ("sixteen", 16), ("gone", 2)] {
        create_topic(&bs, name, parts, &[]).await;
    }
    assert_eq!(
        try_delete_topics(&a, &["gone"]).await,
        vec![Ok("gone".into())]
    );
    drop(a);
    let before = topic_partitions(&consumer(&bs, &[]));

    assert!(broker.stop(), "SIGTERM exit status");
    broker.restart();
    let after = topic_partitions(&consumer(&bs, &[]));
    assert_eq!(before, after);
    assert_eq!(after.get("one"), Some(&1));
    assert_eq!(after.get("seven"), Some(&7));
    assert_eq!(after.get("sixteen"), Some(&16));
    assert!(!after.contains_key("gone"), "{after:?}");

    // Also after kill -9.
    broker.kill9();
    broker.restart();
    let after_kill = topic_partitions(&consumer(&bs, &[]));
    assert_eq!(before, after_kill);
}
