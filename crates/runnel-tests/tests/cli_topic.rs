//! `runnel topic ...` run as a user runs it, against a real broker: every subcommand, table and
//! JSON output, and the error cases (unknown topic, broker down, bad flags).

use std::time::Duration;

use runnel_tests::clients::{assert_one_line_error, dead_broker, run_cli, run_cli_env};
use runnel_tests::TestBroker;

/// Asserts the command failed with exit code 1 and one `runnel: error:` line containing `text`.
#[track_caller]
#[test]
fn topic_create_list_describe_delete() {
    let broker = TestBroker::start(&[("num.partitions", "2")]);
    let bs = broker.bootstrap();
    let out = run_cli(
        &bs,
        &[
            "topic",
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "segment.bytes=1048576",
        ],
        None,
    )
    .ok();
    assert_eq!(out.stdout, "Created topic 'orders'\n");
    run_cli(&bs, &["topic", "create", "defaults"], None).ok();

    let out = run_cli(&bs, &["topic", "list"], None).ok();
    assert_eq!(
        out.lines(),
        ["TOPIC     PARTITIONS", "defaults  2", "orders    3"]
    );
    let out = run_cli(&bs, &["topic", "list", "--json"], None).ok();
    assert!(
        out.stdout
            .contains("\"name\": \"orders\",\n    \"partitions\": 3"),
        "{out}"
    );
    assert!(out.stdout.trim_start().starts_with('['), "{out}");

    let out = run_cli(&bs, &["topic", "describe", "orders"], None).ok();
    assert!(
        out.stdout
            .starts_with("Topic: orders  Partitions: 3  Replication factor: 1\n"),
        "{out}"
    );
    for p in 0..3 {
        assert!(
            out.lines()
                .contains(&format!("{p}          0       0         0    0          0").as_str()),
            "partition {p}:\n{out}"
        );
    }
    let segment = out
        .lines()
        .into_iter()
        .find(|l| l.starts_with("segment.bytes "))
        .expect("segment.bytes row");
    assert!(
        segment.contains("1048576") && segment.ends_with("DYNAMIC_TOPIC_CONFIG"),
        "{segment}"
    );
    let flush = out
        .lines()
        .into_iter()
        .find(|l| l.starts_with("flush.ms "))
        .expect("flush.ms row");
    assert!(flush.ends_with("DEFAULT_CONFIG"), "{flush}");

    let out = run_cli(&bs, &["topic", "delete", "orders", "defaults"], None).ok();
    assert_eq!(
        out.lines(),
        ["Deleted topic 'orders'", "Deleted topic 'defaults'"]
    );
    let out = run_cli(&bs, &["topic", "list"], None).ok();
    assert_eq!(out.lines(), ["TOPIC  PARTITIONS"]);
}

#[test]
fn topic_describe_json_reports_offsets_and_config_sources() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    run_cli(
        &bs,
        &[
            "topic",
            "create",
            "events",
            "-p",
            "2",
            "-c",
            "flush.messages=1",
        ],
        None,
    )
    .ok();
    run_cli(
        &bs,
        &["produce", "events", "--partition", "1"],
        Some("a\nb\nc\n"),
    )
    .ok();
    let out = run_cli(&bs, &["topic", "describe", "events", "--json"], None).ok();
    let compact: String = out.stdout.split_whitespace().collect();
    assert!(compact.contains(r#""isr":[0],"leader":0,"log_end_offset":3,"log_start_offset":0,"partition":1,"replicas":[0]"#), "{out}");
    assert!(
        compact.contains(r#""log_end_offset":0,"log_start_offset":0,"partition":0"#),
        "{out}"
    );
    assert!(compact.contains(r#"{"name":"flush.messages","read_only":false,"source":"DYNAMIC_TOPIC_CONFIG","value":"1"}"#), "{out}");
    assert!(
        compact.contains(r#""name":"events","partition_count":2"#),
        "{out}"
    );
}

#[test]
fn topic_create_existing_fails_unless_if_not_exists() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    run_cli(&bs, &["topic", "create", "twice"], None).ok();
    let out = run_cli(&bs, &["topic", "create", "twice"], None);
    assert_one_line_error(
        &out,
        "cannot create topic 'twice': the topic already exists",
    );
    let out = run_cli(&bs, &["topic", "create", "twice", "--if-not-exists"], None).ok();
    assert_eq!(out.stdout, "Topic 'twice' already exists\n");
    let out = run_cli(
        &bs,
        &[
            "topic",
            "create",
            "bad-config",
            "--config",
            "no.such.config=1",
        ],
        None,
    );
    assert_one_line_error(&out, "cannot create topic 'bad-config'");
}

#[test]
fn topic_alter_config_sets_and_deletes_overrides() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    run_cli(
        &bs,
        &[
            "topic",
            "create",
            "conf",
            "-c",
            "segment.bytes=1048576",
            "-c",
            "flush.ms=1000",
        ],
        None,
    )
    .ok();
    let out = run_cli(
        &bs,
        &[
            "topic",
            "alter-config",
            "conf",
            "--set",
            "flush.messages=1",
            "--delete",
            "segment.bytes",
        ],
        None,
    )
    .ok();
    assert_eq!(out.stdout, "Updated the configs of topic 'conf'\n");
    let out = run_cli(&bs, &["topic", "describe", "conf"], None).ok();
    let row = |name: &str| -> String {
        out.lines()
            .into_iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}:\n{out}"))
            .to_string()
    };
    assert!(
        row("flush.messages").ends_with("DYNAMIC_TOPIC_CONFIG"),
        "{out}"
    );
    assert!(
        row("flush.ms").contains("1000") && row("flush.ms").ends_with("DYNAMIC_TOPIC_CONFIG"),
        "kept:\n{out}"
    );
    assert!(
        row("segment.bytes").ends_with("DEFAULT_CONFIG"),
        "deleted:\n{out}"
    );
    // A refused change shows the broker's reason, which names the config.
    let refused = [
        ("segment.bytes=-5", "invalid value '-5' for segment.bytes"),
        ("no.such.config=1", "'no.such.config'"),
    ];
    for (bad, reason) in refused {
        let out = run_cli(&bs, &["topic", "alter-config", "conf", "--set", bad], None);
        assert_one_line_error(&out, "cannot alter the configs of topic 'conf': ");
        assert!(out.stderr.contains(reason), "{bad}: {out}");
    }
    let out = run_cli(
        &bs,
        &["topic", "alter-config", "missing", "--set", "flush.ms=1"],
        None,
    );
    assert_one_line_error(&out, "topic 'missing' does not exist");
}

#[test]
fn topic_add_partitions_grows_the_topic() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    run_cli(&bs, &["topic", "create", "grow", "--partitions", "2"], None).ok();
    let out = run_cli(
        &bs,
        &["topic", "add-partitions", "grow", "--total", "5"],
        None,
    )
    .ok();
    assert_eq!(out.stdout, "Topic 'grow' now has 5 partitions (was 2)\n");
    let out = run_cli(&bs, &["topic", "list"], None).ok();
    assert_eq!(out.lines(), ["TOPIC  PARTITIONS", "grow   5"]);
    let out = run_cli(
        &bs,
        &["topic", "add-partitions", "grow", "--total", "3"],
        None,
    );
    assert_one_line_error(
        &out,
        "topic 'grow' already has 5 partitions; --total must be larger",
    );
    let out = run_cli(
        &bs,
        &["topic", "add-partitions", "nope", "--total", "3"],
        None,
    );
    assert_one_line_error(&out, "topic 'nope' does not exist");
}

#[test]
fn unknown_topics_are_one_line_errors() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let out = run_cli(&bs, &["topic", "describe", "nope"], None);
    assert_one_line_error(&out, "topic 'nope' does not exist");
    let out = run_cli(&bs, &["topic", "delete", "nope"], None);
    assert_one_line_error(&out, "topic 'nope' does not exist");
    let out = run_cli(&bs, &["topic", "delete", "nope", "--if-exists"], None).ok();
    assert_eq!(out.stdout, "Topic 'nope' does not exist\n");
}

#[test]
fn topic_commands_fail_fast_when_the_broker_is_down() {
    let dead = dead_broker();
    for args in [
        vec!["topic", "list"],
        vec!["topic", "create", "t"],
        vec!["topic", "describe", "t"],
        vec!["topic", "delete", "t"],
    ] {
        let out = run_cli(&dead, &args, None);
        assert_one_line_error(&out, &format!("cannot reach the cluster at {dead}"));
        assert!(
            out.elapsed < Duration::from_secs(12),
            "{args:?} took {:?}",
            out.elapsed
        );
    }
}

#[test]
fn brokers_come_from_runnel_brokers_when_no_flag_is_given() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let out = run_cli_env(
        &["topic", "create", "via-env"],
        None,
        &[("RUNNEL_BROKERS", &bs)],
    )
    .ok();
    assert_eq!(out.stdout, "Created topic 'via-env'\n");
    // The flag wins over the variable.
    let out = run_cli_env(
        &["topic", "list", "--brokers", &bs],
        None,
        &[("RUNNEL_BROKERS", &dead_broker())],
    )
    .ok();
    assert_eq!(out.lines(), ["TOPIC    PARTITIONS", "via-env  1"]);
}

#[test]
fn bad_topic_flags_are_usage_errors() {
    for args in [
        vec!["topic"],
        vec!["topic", "create"],
        vec!["topic", "create", "t", "--partitions", "0"],
        vec!["topic", "create", "t", "--config", "novalue"],
        vec!["topic", "alter-config", "t"],
        vec!["topic", "add-partitions", "t"],
        vec!["topic", "frobnicate"],
        vec!["topic", "list", "--no-such-flag"],
    ] {
        let out = run_cli_env(&args, None, &[]);
        assert_eq!(out.code, Some(2), "{args:?}:\n{out}");
        assert!(
            out.stderr.contains("Usage:") || out.stderr.contains("For more information"),
            "{args:?}:\n{out}"
        );
        assert!(out.stdout.is_empty(), "{args:?}:\n{out}");
    }
}
