//! The operator's HTTP port: counters move by exactly what was produced and consumed, the
//! exposition parses line by line, and the health endpoints answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rdkafka::Offset;
use runnel_tests::clients::{
    assign, consume_n, consumer, create_topic, producer, send_all, unique_topic,
};
use runnel_tests::{free_port, TestBroker};

/// `GET path` on the metrics port: (status line, body).
fn http_get(port: u16, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

/// The value of the sample `name{labels}` (labels exactly as exposed), if present.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().expect("numeric sample value"))
    })
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
