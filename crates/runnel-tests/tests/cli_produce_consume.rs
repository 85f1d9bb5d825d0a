//! `runnel produce` and `runnel consume` against a real broker: keys, headers, partitions,
//! compression, acks, idempotence fallback, start positions, follow / exit-at-end, count,
//! templates and JSON, and the error cases.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runnel_tests::clients::{
    assert_one_line_error, broker_with_topic, dead_broker, run_cli, run_cli_env,
};
use runnel_tests::TestBroker;

#[track_caller]
/// A broker with `topic` of `partitions` partitions, created through the CLI.
/// Whether the broker advertises InitProducerId (API key 22) in ApiVersions.
fn broker_supports_idempotence(broker: &TestBroker) -> bool {
    let out = run_cli(&broker.bootstrap(), &["cluster", "info", "--json"], None).ok();
    out.stdout.contains("\"name\": \"InitProducerId\"")
}

fn sorted(mut lines: Vec<&str>) -> Vec<&str> {
    lines.sort();
    lines
}

#[test]
fn produce_keys_and_headers_then_consume_with_a_template() {
    let broker = broker_with_topic("orders", "3");
    let bs = broker.bootstrap();
    let out = run_cli(
        &bs,
        &[
            "produce",
            "orders",
            "--key-separator",
            "::",
            "--header",
            "src=cli",
            "-H",
            "v=1",
        ],
        Some("k1::one\nk2::two::2\nk1::three\n"),
    )
    .ok();
    assert!(out.stdout.is_empty(), "{out}");
    assert!(
        out.stderr
            .lines()
            .any(|l| l == "runnel: produced 3 records to 'orders'"),
        "{out}"
    );
    let out = run_cli(
        &bs,
        &[
            "consume",
            "orders",
            "--from",
            "beginning",
            "--exit-at-end",
            "--format",
            "{key}={value} [{headers}] {topic}",
        ],
        None,
    )
    .ok();
    assert_eq!(
        sorted(out.lines()),
        [
            "k1=one [src=cli,v=1] orders",
            "k1=three [src=cli,v=1] orders",
            "k2=two::2 [src=cli,v=1] orders"
        ]
    );
    // Same key, same partition, in order.
    let out = run_cli(
        &bs,
        &[
            "consume",
            "orders",
            "--from",
            "beginning",
            "--exit-at-end",
            "--format",
            "{partition}\\t{offset}\\t{key}\\t{value}",
        ],
        None,
    )
    .ok();
    let k1: Vec<Vec<&str>> = out
        .lines()
        .iter()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f[2] == "k1")
        .collect();
    assert_eq!(k1.len(), 2, "{out}");
    assert_eq!(k1[0][0], k1[1][0], "same partition:\n{out}");
    assert_eq!((k1[0][3], k1[1][3]), ("one", "three"), "{out}");
}

#[test]
fn consume_json_has_every_field() {
    let broker = broker_with_topic("j", "1");
    let bs = broker.bootstrap();
    run_cli(
        &bs,
        &["produce", "j", "-K", ":", "-H", "h=x"],
        Some("k:v\n"),
    )
    .ok();
    run_cli(&bs, &["produce", "j"], Some("no-key\n")).ok();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 60_000;
    let out = run_cli(
        &bs,
        &[
            "consume",
            "j",
            "--from",
            "beginning",
            "--exit-at-end",
            "--json",
        ],
        None,
    )
    .ok();
    let lines = out.lines();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with(r#"{"headers":[{"key":"h","value":"x"}],"key":"k","offset":0,"partition":0,"timestamp":"#), "{out}");
    assert!(lines[0].ends_with(r#","topic":"j","value":"v"}"#), "{out}");
    assert!(
        lines[1].starts_with(r#"{"headers":[],"key":null,"offset":1,"partition":0,"timestamp":"#),
        "{out}"
    );
    let ts: i64 = lines[0]
        .split("\"timestamp\":")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ts > before, "timestamp {ts} is the produce time");
}

#[test]
fn produce_to_a_partition_with_compression_and_acks_from_a_file() {
    let broker = broker_with_topic("p", "2");
    let bs = broker.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lines.txt");
    std::fs::write(&file, "a\r\nb\nc\n").unwrap();
    for (compression, acks) in [
        ("gzip", "all"),
        ("snappy", "1"),
        ("lz4", "0"),
        ("zstd", "all"),
        ("none", "1"),
    ] {
        run_cli(
            &bs,
            &[
                "produce",
                "p",
                "--file",
                file.to_str().unwrap(),
                "--partition",
                "1",
                "--compression",
                compression,
                "--acks",
                acks,
            ],
            None,
        )
        .ok();
    }
    let out = run_cli(
        &bs,
        &[
            "consume",
            "p",
            "--partition",
            "1",
            "--from",
            "beginning",
            "--exit-at-end",
        ],
        None,
    )
    .ok();
    assert_eq!(
        out.lines(),
        ["a", "b", "c"].repeat(5),
        "CRLF stripped, order kept"
    );
    let out = run_cli(
        &bs,
        &[
            "consume",
            "p",
            "--partition",
            "0",
            "--from",
            "beginning",
            "--exit-at-end",
        ],
        None,
    )
    .ok();
    assert!(out.stdout.is_empty(), "{out}");
}

#[test]
fn produce_is_idempotent_or_warns_once_when_the_broker_cannot_be() {
    let broker = broker_with_topic("idem", "1");
    let bs = broker.bootstrap();
    let supported = broker_supports_idempotence(&broker);
    let out = run_cli(&bs, &["produce", "idem"], Some("x\ny\n")).ok();
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    if supported {
        assert!(warnings.is_empty(), "{out}");
    } else {
        assert_eq!(warnings, ["runnel: warning: the cluster does not support idempotent producers (no InitProducerId API); producing without idempotence"], "{out}");
    }
    // Explicitly non-idempotent: never a warning.
    let out = run_cli(&bs, &["produce", "idem", "--no-idempotence"], Some("z\n")).ok();
    assert!(!out.stderr.contains("warning"), "{out}");
    let out = run_cli(
        &bs,
        &["consume", "idem", "--from", "beginning", "--exit-at-end"],
        None,
    )
    .ok();
    assert_eq!(out.lines(), ["x", "y", "z"]);
}

#[test]
fn consume_start_positions() {
    let broker = broker_with_topic("pos", "1");
    let bs = broker.bootstrap();
    run_cli(&bs, &["produce", "pos"], Some("r0\nr1\nr2\n")).ok();
    std::thread::sleep(Duration::from_millis(30));
    let middle = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    std::thread::sleep(Duration::from_millis(30));
    run_cli(&bs, &["produce", "pos"], Some("r3\nr4\n")).ok();
    let consume = |from: &str| {
        run_cli(
            &bs,
            &["consume", "pos", "--from", from, "--exit-at-end"],
            None,
        )
        .ok()
        .stdout
    };
    assert_eq!(consume("beginning"), "r0\nr1\nr2\nr3\nr4\n");
    assert_eq!(consume("end"), "");
    assert_eq!(consume("3"), "r3\nr4\n");
    assert_eq!(consume("99"), "", "beyond the end: nothing");
    assert_eq!(consume("-2"), "r3\nr4\n");
    assert_eq!(consume("-10"), "r0\nr1\nr2\nr3\nr4\n");
    assert_eq!(consume(&format!("@{middle}")), "r3\nr4\n");
    assert_eq!(consume("@2000-01-01T00:00:00"), "r0\nr1\nr2\nr3\nr4\n");
    assert_eq!(consume("@2999-01-01T00:00:00"), "");
    let out = run_cli(
        &bs,
        &[
            "consume",
            "pos",
            "--from=-4",
            "--count",
            "2",
            "--format",
            "{offset}",
        ],
        None,
    )
    .ok();
    assert_eq!(out.stdout, "1\n2\n");
}

#[test]
fn consume_follows_until_count_records_arrive() {
    let broker = broker_with_topic("live", "2");
    let bs = broker.bootstrap();
    let follower = {
        let bs = bs.clone();
        std::thread::spawn(move || {
            run_cli(&bs, &["consume", "live", "--count", "3", "--follow"], None)
        })
    };
    // The consumer starts at the end: produce after it has had time to assign.
    std::thread::sleep(Duration::from_secs(3));
    run_cli(&bs, &["produce", "live"], Some("late1\nlate2\nlate3\n")).ok();
    let out = follower.join().unwrap().ok();
    assert_eq!(sorted(out.lines()), ["late1", "late2", "late3"]);
}

#[test]
fn unknown_topics_and_partitions_are_one_line_errors() {
    let broker = broker_with_topic("one", "1");
    let bs = broker.bootstrap();
    assert_one_line_error(
        &run_cli(&bs, &["produce", "nope"], Some("x\n")),
        "topic 'nope' does not exist",
    );
    assert_one_line_error(
        &run_cli(&bs, &["consume", "nope", "--exit-at-end"], None),
        "topic 'nope' does not exist",
    );
    assert_one_line_error(
        &run_cli(&bs, &["produce", "one", "--partition", "5"], Some("x\n")),
        "topic 'one' has no partition 5",
    );
    assert_one_line_error(
        &run_cli(&bs, &["consume", "one", "--partition", "5"], None),
        "topic 'one' has no partition 5",
    );
    // --no-idempotence: no fallback warning next to the error on a broker without InitProducerId.
    let out = run_cli(
        &bs,
        &["produce", "one", "-K", ":", "--no-idempotence"],
        Some("k:ok\nno separator\n"),
    );
    assert_one_line_error(&out, "line 2: no key separator found");
    // The record before the bad line was still delivered.
    let out = run_cli(
        &bs,
        &[
            "consume",
            "one",
            "--from",
            "beginning",
            "--exit-at-end",
            "--format",
            "{key}={value}",
        ],
        None,
    )
    .ok();
    assert_eq!(out.lines(), ["k=ok"]);
    let topics = run_cli(&bs, &["topic", "list"], None).ok();
    assert!(
        !topics.stdout.contains("nope"),
        "no topic was auto-created:\n{topics}"
    );
}

#[test]
fn produce_and_consume_fail_fast_when_the_broker_is_down() {
    let dead = dead_broker();
    for (args, input) in [
        (vec!["produce", "t"], Some("x\n")),
        (vec!["consume", "t"], None),
    ] {
        let out = run_cli(&dead, &args, input);
        assert_one_line_error(&out, &format!("cannot reach the cluster at {dead}"));
        assert!(
            out.elapsed < Duration::from_secs(12),
            "{args:?} took {:?}",
            out.elapsed
        );
    }
}

#[test]
fn bad_produce_and_consume_flags_are_usage_errors() {
    for args in [
        vec!["produce"],
        vec!["produce", "t", "--acks", "2"],
        vec!["produce", "t", "--compression", "brotli"],
        vec!["produce", "t", "--header", "novalue"],
        vec!["produce", "t", "--partition", "-1"],
        vec!["consume"],
        vec!["consume", "t", "--from", "middle"],
        vec!["consume", "t", "--from", "@yesterday"],
        vec!["consume", "t", "--format", "{nope}"],
        vec!["consume", "t", "--format", "{value}", "--json"],
        vec!["consume", "t", "--count", "0"],
        vec!["consume", "t", "--group", "g", "--partition", "0"],
    ] {
        let out = run_cli_env(&args, None, &[]);
        assert_eq!(out.code, Some(2), "{args:?}:\n{out}");
        assert!(out.stderr.starts_with("error:"), "{args:?}:\n{out}");
    }
}
