//! Edge cases of the operator-facing surface: HTTP methods on the metrics port, health checks
//! during shutdown, per-topic metrics of deleted topics, start-up errors, `--check-config`
//! sources and error lines, and log formats.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;
use runnel_tests::clients::{admin, try_delete_topics};
use runnel_tests::metrics_port::{broker_with_metrics, http_get, http_raw, sample, try_http_get};
use runnel_tests::raw::{simple_batch, RawClient};
use runnel_tests::{free_port, runnel_bin, send_sigterm, TestBroker};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn wrong_method_is_405_and_a_garbage_request_line_is_400() {
    let (_broker, port) = broker_with_metrics(&[]);
    for method in ["POST", "PUT", "DELETE", "HEAD"] {
        let (status, head, _) = http_raw(
            port,
            &format!("{method} /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
        )
        .unwrap();
        assert_eq!(status, "HTTP/1.1 405 Method Not Allowed", "{method}");
        assert!(head.contains("\r\nAllow: GET"), "{method}: {head}");
    }
    let (status, _, _) = http_raw(port, "garbage\r\n\r\n").unwrap();
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    // GET still routes as before.
    assert_eq!(http_get(port, "/metrics").0, "HTTP/1.1 200 OK");
    assert_eq!(http_get(port, "/nope").0, "HTTP/1.1 404 Not Found");
}

#[test]
fn ready_is_503_and_live_200_while_shutting_down() {
    // A JoinGroup waiting out the initial rebalance delay keeps shutdown busy for seconds.
    let (mut broker, port) = broker_with_metrics(&[("group.initial.rebalance.delay.ms", "8000")]);
    assert_eq!(http_get(port, "/health/ready").0, "HTTP/1.1 200 OK");
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("ops-shutdown")))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0]))]);
    client.send_request(3, &join).unwrap();
    // Shutdown stays busy only once the broker holds the JoinGroup: wait until it does.
    scrape_until(port, "the JoinGroup is parked", |t| {
        sample(t, "runnel_consumer_groups") == Some(1.0)
    });
    send_sigterm(broker.pid());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        let ready = try_http_get(port, "/health/ready").map(|(status, _)| status);
        match &ready {
            Ok(status) if status.contains("503") => {
                let live = http_get(port, "/health/live").0;
                assert_eq!(live, "HTTP/1.1 200 OK", "live while shutting down");
                // Not just a request that slipped in: the port keeps answering until the end.
                std::thread::sleep(Duration::from_secs(1));
                let again = try_http_get(port, "/health/ready").map(|(status, _)| status);
                assert!(
                    matches!(&again, Ok(s) if s.contains("503")),
                    "ready a second later: {again:?}"
                );
                break;
            }
            _ if seen.last() == Some(&format!("{ready:?}")) => {}
            _ => seen.push(format!("{ready:?}")),
        }
        assert!(
            Instant::now() < deadline,
            "/health/ready never said 503 during shutdown; saw {seen:?}\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        broker.stop(),
        "clean exit after shutdown:\n{}",
        broker.log()
    );
}

fn scrape_until(port: u16, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, text) = http_get(port, "/metrics");
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "timed out: {what}\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn per_topic_counters_of_a_deleted_topic_disappear() {
    let (broker, port) = broker_with_metrics(&[]);
    let topic = "ops-deleted";
    let mut client = RawClient::connect(broker.addr()).unwrap();
    client.create_topic_ok(topic, 1).unwrap();
    client.produce(topic, 0, simple_batch("v", 5), -1).unwrap();
    client.fetch(topic, 0, 0).unwrap();
    let bytes_in = format!("runnel_bytes_in_total{{topic=\"{topic}\"}}");
    let records_out = format!("runnel_records_out_total{{topic=\"{topic}\"}}");
    let text = scrape_until(port, "counters of the topic", |t| {
        sample(t, &records_out).is_some()
    });
    assert_eq!(
        sample(
            &text,
            &format!("runnel_records_in_total{{topic=\"{topic}\"}}")
        ),
        Some(5.0)
    );
    assert!(sample(&text, &bytes_in).unwrap() > 0.0);

    let results = try_delete_topics(&admin(&broker.bootstrap()), &[topic]).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let text = scrape_until(port, "no series of the deleted topic", |t| {
        !t.contains(&format!("topic=\"{topic}\""))
    });
    assert!(!text.contains(topic), "{text}");

    // Recreated, the topic counts from zero again.
    client.create_topic_ok(topic, 1).unwrap();
    client.produce(topic, 0, simple_batch("w", 2), -1).unwrap();
    let records_in = format!("runnel_records_in_total{{topic=\"{topic}\"}}");
    let text = scrape_until(port, "counters of the new topic", |t| {
        sample(t, &records_in).is_some()
    });
    assert_eq!(sample(&text, &records_in), Some(2.0), "{text}");
}

#[test]
fn occupied_metrics_port_fails_with_one_line_before_opening_the_data_dir() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(runnel_bin())
        .args(["server", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--metrics-listen", &metrics.to_string(), "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("runnel kept running with its metrics port taken");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success());
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "one line, not a start message too: {stderr}"
    );
    assert!(
        lines[0].contains(&format!("cannot listen for metrics on {metrics}")),
        "{stderr}"
    );
    assert!(
        !data.exists(),
        "the data directory was created before failing"
    );
}

fn check_config(args: &[&str]) -> std::process::Output {
    Command::new(runnel_bin())
        .args(["server", "--check-config"])
        .args(args)
        .output()
        .expect("run runnel")
}

#[test]
fn check_config_with_an_unreadable_file_gives_one_line_naming_the_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.properties");
    for path in [missing.to_str().unwrap(), dir.path().to_str().unwrap()] {
        let output = check_config(&["--config", path]);
        assert_eq!(output.status.code(), Some(2));
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(path), "{stderr}");
        assert_eq!(
            stderr.matches("(os error").count(),
            1,
            "the OS error is printed once: {stderr}"
        );
    }
}

#[test]
fn check_config_names_the_source_of_the_metrics_address() {
    let output = check_config(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("# metrics and health endpoints on http://127.0.0.1:9644  (default)"),
        "{stdout}"
    );
    let output = check_config(&["--metrics-listen", "127.0.0.1:9700"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "# metrics and health endpoints on http://127.0.0.1:9700  (--metrics-listen)"
        ),
        "{stdout}"
    );
    let output = check_config(&["--no-metrics"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("endpoints off  (--no-metrics)"), "{stdout}");
}

#[test]
fn text_logs_written_to_a_file_have_no_colour_codes() {
    let mut broker = TestBroker::start(&[]);
    assert!(broker.stop());
    let log = broker.log();
    assert!(log.contains("runnel broker started"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "ANSI escapes in a log file:\n{log:?}"
    );
}

#[test]
fn json_log_lines_are_json_objects() {
    let mut broker = TestBroker::start_with_args(vec!["--log-format".into(), "json".into()]);
    assert!(broker.stop());
    let log = broker.log();
    let mut messages = Vec::new();
    for line in log.lines().filter(|l| !l.is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(
            value["timestamp"].is_string() && value["level"].is_string(),
            "{line}"
        );
        messages.push(
            value["fields"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert!(
        messages.iter().any(|m| m == "runnel broker started"),
        "{log}"
    );
    assert!(messages.iter().any(|m| m == "shutdown complete"), "{log}");
}

#[test]
fn active_connections_return_to_zero_after_garbage_closes_a_connection() {
    let (broker, port) = broker_with_metrics(&[]);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = RawClient::connect(broker.addr()).unwrap();
        client.api_versions().unwrap();
        clients.push(client);
    }
    scrape_until(port, "3 connections", |t| {
        sample(t, "runnel_active_connections") == Some(3.0)
    });
    // A frame length far over socket.request.max.bytes closes the connection.
    let mut garbage = RawClient::connect(broker.addr()).unwrap();
    garbage
        .send_raw(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3])
        .unwrap();
    assert!(garbage.is_closed_by_peer(Duration::from_secs(10)));
    drop(clients);
    scrape_until(port, "0 connections", |t| {
        sample(t, "runnel_active_connections") == Some(0.0)
    });
}
