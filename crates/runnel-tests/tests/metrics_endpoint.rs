//! The operator's HTTP port: counters move by exactly what was produced and consumed, the
//! exposition parses line by line, and the health endpoints answer.

use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use runnel_tests::clients::{
    assign, consume_n, consume_until_eof, consumer, create_topic, group_consumer_config, producer,
    send_all, unique_topic,
};
use runnel_tests::metrics_port::{broker_with_metrics, http_get, sample};
use runnel_tests::{free_port, TestBroker};

const WAIT: Duration = Duration::from_secs(30);

/// Scrapes `/metrics` until `done` holds for the text (polling every 200 ms, at most `WAIT`);
/// returns that text. Panics with the last scrape when it never holds.
async fn scrape_until(port: u16, what: &str, mut done: impl FnMut(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, text) = http_get(port, "/metrics");
        if done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}\nlast scrape:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks the OpenMetrics text structure: comments are HELP/TYPE/EOF, every sample line is
/// `name{labels} value` with a numeric value, and the text ends with `# EOF`.
fn assert_valid_exposition(text: &str) {
    assert!(text.ends_with("# EOF\n"), "missing # EOF terminator");
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                comment.starts_with("HELP ") || comment.starts_with("TYPE ") || comment == "EOF",
                "unexpected comment line: {line}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("non-numeric value: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "bad labels: {line}"
            );
        }
    }
}

#[tokio::test]
async fn counters_move_by_what_was_produced_and_consumed() {
    let port = free_port();
    let broker =
        TestBroker::start_with_args(vec!["--metrics-listen".into(), format!("127.0.0.1:{port}")]);
    let bs = broker.bootstrap();
    let topic = unique_topic("metered");
    create_topic(&bs, &topic, 1, &[]).await;
    let (_, before) = http_get(port, "/metrics");
    assert_eq!(
        sample(
            &before,
            &format!("runnel_records_in_total{{topic=\"{topic}\"}}")
        ),
        None
    );

    let records: Vec<(Option<String>, String)> =
        (0..250).map(|i| (None, format!("value-{i:04}"))).collect();
    send_all(&producer(&bs, &[]), &topic, &records).await;
    let c = consumer(&bs, &[]);
    assign(&c, &topic, 1, Offset::Beginning);
    consume_n(&c, 250, Duration::from_secs(20)).await;

    let (status, after) = http_get(port, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_valid_exposition(&after);
    let series = |name: &str| format!("{name}{{topic=\"{topic}\"}}");
    assert_eq!(
        sample(&after, &series("runnel_records_in_total")),
        Some(250.0)
    );
    assert_eq!(
        sample(&after, &series("runnel_records_out_total")),
        Some(250.0)
    );
    let bytes_in = sample(&after, &series("runnel_bytes_in_total")).expect("bytes in");
    let partition = format!("{{topic=\"{topic}\",partition=\"0\"}}");
    let size =
        sample(&after, &format!("runnel_partition_size_bytes{partition}")).expect("partition size");
    assert_eq!(bytes_in, size, "every appended byte is in the log");
    assert!(
        bytes_in >= 250.0 * 10.0,
        "bytes in counts the batches: {bytes_in}"
    );
    assert_eq!(
        sample(
            &after,
            &format!("runnel_partition_high_watermark{partition}")
        ),
        Some(250.0)
    );
    let produces =
        sample(&after, "runnel_requests_total{api=\"Produce\"}").expect("produce requests");
    assert!(produces >= 1.0);
    let fetches = sample(
        &after,
        "runnel_request_duration_seconds_count{api=\"Fetch\"}",
    )
    .expect("fetch latency");
    assert!(fetches >= 1.0);
    assert!(sample(&after, "runnel_active_connections").expect("connections") >= 1.0);
}

#[test]
fn health_endpoints_answer_and_unknown_paths_are_404() {
    let port = free_port();
    let _broker =
        TestBroker::start_with_args(vec!["--metrics-listen".into(), format!("127.0.0.1:{port}")]);
    assert_eq!(
        http_get(port, "/health/live"),
        ("HTTP/1.1 200 OK".into(), "live\n".into())
    );
    assert_eq!(
        http_get(port, "/health/ready"),
        ("HTTP/1.1 200 OK".into(), "ready\n".into())
    );
    assert_eq!(http_get(port, "/nope").0, "HTTP/1.1 404 Not Found");
}

/// Sends `count` records to one partition, waiting for each delivery.
async fn produce_to(bootstrap: &str, topic: &str, partition: i32, count: usize) {
    let p = producer(bootstrap, &[]);
    for i in 0..count {
        let value = format!("value-{i}");
        p.send(
            FutureRecord::<str, str>::to(topic)
                .partition(partition)
                .payload(&value),
            Timeout::After(WAIT),
        )
        .await
        .expect("send");
    }
}

#[tokio::test]
async fn consumer_lag_is_high_watermark_minus_committed_offset() {
    let (broker, port) = broker_with_metrics(&[]);
    let bs = broker.bootstrap();
    let topic = unique_topic("lagged");
    create_topic(&bs, &topic, 2, &[]).await;
    produce_to(&bs, &topic, 0, 10).await;
    produce_to(&bs, &topic, 1, 4).await;

    // A plain commit (no subscription, no generation), as an admin tool would make it.
    let committer: StreamConsumer = group_consumer_config(&bs, "g", &[])
        .create()
        .expect("consumer");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&topic, 0, Offset::Offset(3))
        .unwrap();
    offsets
        .add_partition_offset(&topic, 1, Offset::Offset(4))
        .unwrap();
    committer
        .commit(&offsets, CommitMode::Sync)
        .expect("commit offsets");

    let lag = |p: i32| {
        format!("runnel_consumer_group_lag{{group=\"g\",topic=\"{topic}\",partition=\"{p}\"}}")
    };
    let (_, text) = http_get(port, "/metrics");
    assert_valid_exposition(&text);
    assert_eq!(sample(&text, &lag(0)), Some(7.0), "{text}");
    assert_eq!(sample(&text, &lag(1)), Some(0.0), "{text}");
    assert_eq!(sample(&text, "runnel_consumer_groups"), Some(1.0));

    produce_to(&bs, &topic, 1, 5).await;
    let (_, text) = http_get(port, "/metrics");
    assert_eq!(sample(&text, &lag(1)), Some(5.0), "{text}");
    assert_eq!(sample(&text, &lag(0)), Some(7.0), "{text}");

    // Committing past the high watermark shows no negative lag.
    let mut ahead = TopicPartitionList::new();
    ahead
        .add_partition_offset(&topic, 0, Offset::Offset(50))
        .unwrap();
    committer
        .commit(&ahead, CommitMode::Sync)
        .expect("commit offsets");
    let (_, text) = http_get(port, "/metrics");
    assert_eq!(sample(&text, &lag(0)), Some(0.0), "{text}");
}

#[tokio::test]
async fn cleaner_progress_counters_move() {
    let (broker, port) = broker_with_metrics(&[("log.cleaner.backoff.ms", "200")]);
    let bs = broker.bootstrap();
    let (_, before) = http_get(port, "/metrics");
    assert_eq!(
        sample(&before, "runnel_cleaner_passes_total{outcome=\"cleaned\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&before, "runnel_cleaner_records_removed_total"),
        Some(0.0)
    );

    let topic = unique_topic("compacted");
    let configs = [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "2048"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ];
    create_topic(&bs, &topic, 1, &configs).await;
    const SENT: usize = 400;
    let records: Vec<(Option<String>, String)> = (0..SENT)
        .map(|i| {
            (
                Some(format!("key-{}", i % 4)),
                format!("value-{i:04}-{}", "x".repeat(40)),
            )
        })
        .collect();
    let p = producer(&bs, &[]);
    // Batches of ten, so the small segments roll many times.
    for chunk in records.chunks(10) {
        send_all(&p, &topic, chunk).await;
    }

    let text = scrape_until(port, "a cleaner pass that removed records", |text| {
        let value = |name: &str| sample(text, name).unwrap_or(0.0);
        value("runnel_cleaner_passes_total{outcome=\"cleaned\"}") > 0.0
            && value("runnel_cleaner_records_removed_total") > 0.0
            && value("runnel_cleaner_bytes_read_total")
                > value("runnel_cleaner_bytes_written_total")
    })
    .await;
    assert_valid_exposition(&text);
    assert!(sample(&text, "runnel_cleaner_last_pass_seconds").expect("last pass") > 0.0);

    // What a consumer reads is exactly what was sent minus what the cleaner reports removed.
    // A pass may land between the read and the scrape, so compare until they agree.
    let deadline = Instant::now() + WAIT;
    loop {
        let c = consumer(&bs, &[("enable.partition.eof", "true")]);
        assign(&c, &topic, 1, Offset::Beginning);
        let read = consume_until_eof(&c, &topic, &[0], 1, WAIT).await.len();
        let (_, text) = http_get(port, "/metrics");
        let removed = sample(&text, "runnel_cleaner_records_removed_total").unwrap();
        if read as f64 == SENT as f64 - removed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "read {read} records, sent {SENT}, cleaner removed {removed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn retention_counters_match_the_bytes_that_left_the_log() {
    let (broker, port) = broker_with_metrics(&[("log.retention.check.interval.ms", "200")]);
    let bs = broker.bootstrap();
    let topic = unique_topic("retained");
    create_topic(
        &bs,
        &topic,
        1,
        &[("segment.bytes", "4096"), ("retention.ms", "1000")],
    )
    .await;
    let records: Vec<(Option<String>, String)> = (0..200)
        .map(|i| (None, format!("value-{i:04}-{}", "x".repeat(200))))
        .collect();
    let p = producer(&bs, &[]);
    for chunk in records.chunks(10) {
        send_all(&p, &topic, chunk).await;
    }

    // Once every sealed segment has expired, the bytes appended minus the bytes still in the
    // partition are exactly the bytes retention reports deleted.
    let partition = format!("{{topic=\"{topic}\",partition=\"0\"}}");
    let text = scrape_until(port, "retention deleted the expired segments", |text| {
        let value = |name: &str| sample(text, name).unwrap_or(0.0);
        let appended = value(&format!("runnel_bytes_in_total{{topic=\"{topic}\"}}"));
        let kept = value(&format!("runnel_partition_size_bytes{partition}"));
        value("runnel_retention_segments_deleted_total") > 0.0
            && value(&format!("runnel_partition_log_start_offset{partition}")) > 0.0
            && appended - kept == value("runnel_retention_bytes_deleted_total")
    })
    .await;
    assert_valid_exposition(&text);
}
