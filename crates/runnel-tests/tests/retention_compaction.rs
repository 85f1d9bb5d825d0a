//! Retention, DeleteRecords and compaction as clients see them: the earliest offset moves,
//! old segments leave the disk, consumers below the log start are reset by their policy, and a
//! compacted topic serves the latest value per key.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use runnel_tests::clients::{
    admin, admin_opts, assign, consume_for, consume_n, consumer, create_topic, producer, send_all,
    unique_topic,
};
use runnel_tests::TestBroker;

const WAIT: Duration = Duration::from_secs(30);

fn segment_files(data_dir: &Path, topic: &str) -> Vec<String> {
    let dir = data_dir.join("data").join(format!("{topic}-0"));
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("partition dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    files.sort();
    files
}

fn dir_bytes(data_dir: &Path, topic: &str) -> u64 {
    let dir = data_dir.join("data").join(format!("{topic}-0"));
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn earliest(bootstrap: &str, topic: &str) -> i64 {
    let c = consumer(bootstrap, &[]);
    c.fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks")
        .0
}

/// Polls `condition` until it holds or `WAIT` passes.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn numbered(count: usize, prefix: &str) -> Vec<(Option<String>, String)> {
    (0..count)
        .map(|i| (None, format!("{prefix}-{i:05}-{}", "x".repeat(200))))
        .collect()
}

/// Produces `count` records in batches of ten, so small segments roll many times.
async fn produce_in_small_batches(bootstrap: &str, topic: &str, count: usize, prefix: &str) {
    let p = producer(bootstrap, &[]);
    for chunk in numbered(count, prefix).chunks(10) {
        send_all(&p, topic, chunk).await;
    }
}

#[tokio::test]
async fn retention_by_time_deletes_old_segments_and_moves_the_earliest_offset() {
    let broker = TestBroker::start(&[("log.retention.check.interval.ms", "300")]);
    let bs = broker.bootstrap();
    let topic = unique_topic("retained");
    create_topic(
        &bs,
        &topic,
        1,
        &[("segment.bytes", "4096"), ("retention.ms", "1500")],
    )
    .await;
    produce_in_small_batches(&bs, &topic, 200, "old").await;
    let segments_before = segment_files(broker.data_dir(), &topic).len();
    let bytes_before = dir_bytes(broker.data_dir(), &topic);
    assert!(
        segments_before > 3,
        "small segments roll: {segments_before}"
    );

    eventually("old segments deleted", || earliest(&bs, &topic) > 0);
    let earliest_now = earliest(&bs, &topic);
    assert!(segment_files(broker.data_dir(), &topic).len() < segments_before);
    assert!(
        dir_bytes(broker.data_dir(), &topic) < bytes_before,
        "disk usage dropped"
    );
    // The active segment stays, so the log end is unchanged and new data is still accepted.
    send_all(&producer(&bs, &[]), &topic, &numbered(1, "new")).await;
    let c = consumer(&bs, &[("auto.offset.reset", "earliest")]);
    assign(&c, &topic, 1, Offset::Offset(0));
    let first = consume_n(&c, 1, WAIT).await;
    assert!(
        first[0].offset >= earliest_now,
        "a consumer below the log start is reset to it"
    );
}

#[tokio::test]
async fn retention_by_size_keeps_the_newest_data() {
    let broker = TestBroker::start(&[("log.retention.check.interval.ms", "300")]);
    let bs = broker.bootstrap();
    let topic = unique_topic("sized");
    create_topic(
        &bs,
        &topic,
        1,
        &[("segment.bytes", "4096"), ("retention.bytes", "10000")],
    )
    .await;
    produce_in_small_batches(&bs, &topic, 300, "v").await;
    eventually("size retention", || {
        dir_bytes(broker.data_dir(), &topic) < 40_000
    });
    let c = consumer(&bs, &[]);
    assign(&c, &topic, 1, Offset::End);
    let (low, high) = c
        .fetch_watermarks(&topic, 0, Duration::from_secs(10))
        .unwrap();
    assert_eq!(high, 300);
    assert!(
        low > 0 && low < 300,
        "earliest moved but the newest data is kept: {low}"
    );
}

#[tokio::test]
async fn delete_records_moves_the_log_start_and_consumers_follow_their_reset_policy() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = unique_topic("truncated");
    create_topic(&bs, &topic, 1, &[("segment.bytes", "4096")]).await;
    produce_in_small_batches(&bs, &topic, 100, "r").await;
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset(&topic, 0, Offset::Offset(60))
        .unwrap();
    let result = admin(&bs)
        .delete_records(&before, &admin_opts())
        .await
        .expect("delete_records");
    let element = result
        .find_partition(&topic, 0)
        .expect("result for the partition");
    assert!(element.error().is_ok(), "{:?}", element.error());
    assert_eq!(earliest(&bs, &topic), 60);

    let c = consumer(&bs, &[("auto.offset.reset", "earliest")]);
    assign(&c, &topic, 1, Offset::Offset(10));
    let first = consume_n(&c, 1, WAIT).await;
    assert_eq!(first[0].offset, 60, "reset to the new earliest offset");

    let mut past_end = TopicPartitionList::new();
    past_end
        .add_partition_offset(&topic, 0, Offset::Offset(1000))
        .unwrap();
    let outcome = admin(&bs).delete_records(&past_end, &admin_opts()).await;
    let failed = match outcome {
        Ok(list) => list
            .find_partition(&topic, 0)
            .map(|e| e.error().is_err())
            .unwrap_or(true),
        Err(_) => true,
    };
    assert!(
        failed,
        "deleting beyond the log end must fail with OFFSET_OUT_OF_RANGE"
    );

    // Kafka refuses DeleteRecords on a compact-only topic (POLICY_VIOLATION).
    let compacted = unique_topic("compact-only");
    create_topic(&bs, &compacted, 1, &[("cleanup.policy", "compact")]).await;
    let p = producer(&bs, &[]);
    for i in 0..3 {
        let key = format!("k{i}");
        p.send(
            FutureRecord::to(&compacted).key(&key).payload("v"),
            Timeout::After(WAIT),
        )
        .await
        .expect("send");
    }
    let mut on_compacted = TopicPartitionList::new();
    on_compacted
        .add_partition_offset(&compacted, 0, Offset::Offset(2))
        .unwrap();
    let outcome = admin(&bs)
        .delete_records(&on_compacted, &admin_opts())
        .await;
    let refused = match outcome {
        Ok(list) => list
            .find_partition(&compacted, 0)
            .map(|e| e.error().is_err())
            .unwrap_or(true),
        Err(_) => true,
    };
    assert!(
        refused,
        "DeleteRecords on a compact-only topic must be refused"
    );
    assert_eq!(earliest(&bs, &compacted), 0, "nothing was deleted");
}

#[tokio::test]
async fn compacted_topic_serves_the_latest_value_per_key() {
    let broker = TestBroker::start(&[("log.cleaner.backoff.ms", "200")]);
    let bs = broker.bootstrap();
    let topic = unique_topic("compacted");
    let configs = [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "2048"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "100"),
    ];
    create_topic(&bs, &topic, 1, &configs).await;
    let p: FutureProducer = producer(&bs, &[]);
    let mut latest = BTreeMap::new();
    for round in 0..30 {
        for key in 0..8 {
            let (k, v) = (format!("key-{key}"), format!("value-{key}-{round}"));
            p.send(
                FutureRecord::to(&topic).key(&k).payload(&v),
                Timeout::After(WAIT),
            )
            .await
            .expect("send");
            latest.insert(k, Some(v));
        }
    }
    for key in [1, 5] {
        let k = format!("key-{key}");
        p.send(
            FutureRecord::<str, str>::to(&topic).key(&k),
            Timeout::After(WAIT),
        )
        .await
        .expect("tombstone");
        latest.insert(k, None);
    }
    // Fill the active segment so every update above is in a sealed, cleanable segment.
    for i in 0..40 {
        let k = format!("filler-{i}");
        p.send(
            FutureRecord::to(&topic).key(&k).payload(&"f".repeat(100)),
            Timeout::After(WAIT),
        )
        .await
        .expect("send");
    }
    let total_sent = 30 * 8 + 2 + 40;
    let deadline = Instant::now() + WAIT;
    let seen = loop {
        let seen = read_all(&bs, &topic).await;
        if seen.len() < total_sent {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "the cleaner never compacted the log"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut last_offset = -1;
    let mut values: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (offset, key, value) in &seen {
        assert!(*offset > last_offset, "offsets increase");
        last_offset = *offset;
        values.insert(key.clone(), value.clone());
    }
    for (key, value) in &latest {
        match value {
            Some(v) => assert_eq!(values.get(key), Some(&Some(v.clone())), "{key}"),
            None => assert!(
                matches!(values.get(key), None | Some(None)),
                "{key} was deleted"
            ),
        }
    }
    let updates_of_live_keys = seen
        .iter()
        .filter(|(_, k, _)| k.starts_with("key-"))
        .count();
    assert!(
        updates_of_live_keys < 30 * 8,
        "older values were compacted away: {updates_of_live_keys}"
    );
}

async fn read_all(bootstrap: &str, topic: &str) -> Vec<(i64, String, Option<String>)> {
    let c = consumer(bootstrap, &[]);
    assign(&c, topic, 1, Offset::Beginning);
    let records = consume_for(&c, Duration::from_millis(1500)).await;
    records
        .iter()
        .map(|r| {
            let text = |bytes: &Vec<u8>| String::from_utf8_lossy(bytes).into_owned();
            (
                r.offset,
                r.key.as_ref().map(text).unwrap_or_default(),
                r.value.as_ref().map(text),
            )
        })
        .collect()
}

#[tokio::test]
async fn keyless_records_are_refused_on_a_compacted_topic() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = unique_topic("keyless");
    create_topic(&bs, &topic, 1, &[("cleanup.policy", "compact")]).await;
    let p = producer(&bs, &[("message.timeout.ms", "5000")]);
    let refused = p
        .send(
            FutureRecord::<str, str>::to(&topic).payload("no key"),
            Timeout::After(WAIT),
        )
        .await;
    assert!(
        refused.is_err(),
        "a keyless record was accepted on a compacted topic"
    );
    let ok = p
        .send(
            FutureRecord::to(&topic).key("k").payload("v"),
            Timeout::After(WAIT),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
}
