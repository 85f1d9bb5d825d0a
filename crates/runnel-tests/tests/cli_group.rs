//! `runnel group ...` and `runnel consume --group` against a real broker (its group
//! coordinator): committed offsets, lag, members, offset resets with every target, deletion,
//! and the error cases.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use runnel_tests::clients::{
    assert_one_line_error, dead_broker, group_consumer_config, run_cli, run_cli_env,
};
use runnel_tests::TestBroker;

#[track_caller]
/// A broker with a one-partition topic holding `records`.
fn broker_with_records(topic: &str, records: &str) -> TestBroker {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    run_cli(&bs, &["topic", "create", topic, "--partitions", "1"], None).ok();
    run_cli(&bs, &["produce", topic], Some(records)).ok();
    broker
}

/// The group's committed offset of `topic`[0] per `group describe --json` (None: no commit).
fn committed(bs: &str, group: &str, topic: &str) -> Option<i64> {
    let out = run_cli(bs, &["group", "describe", group, "--json"], None).ok();
    let compact: String = out.stdout.split_whitespace().collect();
    let row = compact
        .split('{')
        .find(|r| r.contains(&format!("\"topic\":\"{topic}\"")) && r.contains("\"partition\":0"))
        .unwrap_or_else(|| panic!("no row for {topic}[0]:\n{out}"));
    let value = row
        .split("\"committed_offset\":")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    value.parse().ok()
}

#[test]
fn consume_with_a_group_commits_and_describe_shows_lag() {
    let broker = broker_with_records("orders", "a\nb\nc\nd\ne\n");
    let bs = broker.bootstrap();
    let out = run_cli(
        &bs,
        &[
            "consume",
            "orders",
            "--group",
            "billing",
            "--from",
            "beginning",
            "--count",
            "3",
        ],
        None,
    )
    .ok();
    assert_eq!(out.lines(), ["a", "b", "c"]);
    let out = run_cli(&bs, &["group", "list"], None).ok();
    assert_eq!(
        out.lines(),
        [
            "GROUP    STATE  TYPE      MEMBERS",
            "billing  Empty  consumer  0"
        ]
    );
    let out = run_cli(&bs, &["group", "list", "--json"], None).ok();
    let compact: String = out.stdout.split_whitespace().collect();
    assert_eq!(
        compact,
        r#"[{"group":"billing","members":0,"protocol_type":"consumer","state":"Empty"}]"#
    );
    let out = run_cli(&bs, &["group", "describe", "billing"], None).ok();
    assert_eq!(
        out.lines(),
        [
            "Group: billing  State: Empty  Protocol: -  Members: 0",
            "TOPIC   PARTITION  COMMITTED  LOG-END  LAG  MEMBER",
            "orders  0          3          5        2    -",
        ]
    );
    let out = run_cli(&bs, &["group", "describe", "billing", "--json"], None).ok();
    let compact: String = out.stdout.split_whitespace().collect();
    assert!(compact.contains(r#"{"committed_offset":3,"lag":2,"log_end_offset":5,"member_id":null,"partition":0,"topic":"orders"}"#), "{out}");
    // The group resumes where it stopped; --from only applies without a committed offset.
    let out = run_cli(
        &bs,
        &[
            "consume",
            "orders",
            "--group",
            "billing",
            "--from",
            "end",
            "--exit-at-end",
        ],
        None,
    )
    .ok();
    assert_eq!(out.lines(), ["d", "e"]);
    assert_eq!(committed(&bs, "billing", "orders"), Some(5));
}

#[test]
fn reset_offsets_to_every_target_with_dry_run() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    run_cli(&bs, &["topic", "create", "r", "--partitions", "1"], None).ok();
    run_cli(&bs, &["produce", "r"], Some("r0\nr1\nr2\n")).ok();
    std::thread::sleep(Duration::from_millis(30));
    let middle = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    std::thread::sleep(Duration::from_millis(30));
    run_cli(&bs, &["produce", "r"], Some("r3\nr4\n")).ok();
    run_cli(
        &bs,
        &[
            "consume",
            "r",
            "--group",
            "g",
            "--from",
            "beginning",
            "--count",
            "5",
        ],
        None,
    )
    .ok();
    assert_eq!(committed(&bs, "g", "r"), Some(5));

    let out = run_cli(
        &bs,
        &[
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "r",
            "--to-earliest",
            "--dry-run",
        ],
        None,
    )
    .ok();
    assert_eq!(
        out.lines(),
        [
            "TOPIC  PARTITION  CURRENT  NEW",
            "r      0          5        0",
            "Dry run: the offsets of group 'g' were not changed"
        ]
    );
    assert_eq!(committed(&bs, "g", "r"), Some(5));

    let reset = |args: &[&str]| {
        let mut all = vec!["group", "reset-offsets", "g"];
        all.extend_from_slice(args);
        run_cli(&bs, &all, None).ok()
    };
    let out = reset(&["--topic", "r", "--to-offset", "2"]);
    assert_eq!(
        out.lines().last(),
        Some(&"Reset the offsets of group 'g' for 1 partitions"),
        "{out}"
    );
    assert_eq!(committed(&bs, "g", "r"), Some(2));
    reset(&["--all-topics", "--shift-by", "-1"]);
    assert_eq!(committed(&bs, "g", "r"), Some(1));
    reset(&["--topic", "r:0", "--shift-by", "10"]);
    assert_eq!(committed(&bs, "g", "r"), Some(5), "clamped to the log end");
    reset(&["--topic", "r", "--to-earliest"]);
    assert_eq!(committed(&bs, "g", "r"), Some(0));
    reset(&["--topic", "r", "--to-latest"]);
    assert_eq!(committed(&bs, "g", "r"), Some(5));
    reset(&["--topic", "r", "--to-datetime", &middle]);
    assert_eq!(committed(&bs, "g", "r"), Some(3));
    let out = reset(&["--topic", "r", "--to-offset", "1", "--json", "--dry-run"]);
    let compact: String = out.stdout.split_whitespace().collect();
    assert_eq!(
        compact,
        r#"{"dry_run":true,"group":"g","partitions":[{"current_offset":3,"new_offset":1,"partition":0,"topic":"r"}]}"#
    );
    let out = run_cli(
        &bs,
        &["consume", "r", "--group", "g", "--exit-at-end"],
        None,
    )
    .ok();
    assert_eq!(
        out.lines(),
        ["r3", "r4"],
        "consumption resumes at the reset offset"
    );
}

#[test]
fn reset_offsets_errors() {
    let broker = broker_with_records("e", "x\n");
    let bs = broker.bootstrap();
    let out = run_cli(
        &bs,
        &[
            "group",
            "reset-offsets",
            "fresh",
            "--topic",
            "nope",
            "--to-earliest",
        ],
        None,
    );
    assert_one_line_error(&out, "topic 'nope' does not exist");
    let out = run_cli(
        &bs,
        &[
            "group",
            "reset-offsets",
            "fresh",
            "--topic",
            "e:7",
            "--to-earliest",
        ],
        None,
    );
    assert_one_line_error(&out, "topic 'e' has no partition 7");
    let out = run_cli(
        &bs,
        &[
            "group",
            "reset-offsets",
            "fresh",
            "--topic",
            "e",
            "--shift-by",
            "1",
        ],
        None,
    );
    assert_one_line_error(
        &out,
        "cannot shift e[0]: the group has no committed offset there",
    );
    let out = run_cli(
        &bs,
        &[
            "group",
            "reset-offsets",
            "fresh",
            "--all-topics",
            "--to-latest",
        ],
        None,
    );
    assert_one_line_error(&out, "group 'fresh' has no committed offsets");
    // A group without offsets may be given some (as kafka-consumer-groups allows).
    run_cli(
        &bs,
        &[
            "group",
            "reset-offsets",
            "fresh",
            "--topic",
            "e",
            "--to-latest",
        ],
        None,
    )
    .ok();
    assert_eq!(committed(&bs, "fresh", "e"), Some(1));
}

/// A subscribed group member (rdkafka), polled until it owns a partition.
fn active_member(bs: &str, group: &str, topic: &str) -> BaseConsumer {
    let member: BaseConsumer =
        group_consumer_config(bs, group, &[("client.id", "cli-test-member")])
            .create()
            .expect("create member");
    member.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    while member.assignment().map(|a| a.count()).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "member got no assignment");
        member.poll(Duration::from_millis(100));
    }
    member
}

#[test]
fn active_groups_show_members_and_cannot_be_reset_or_deleted() {
    let broker = broker_with_records("busy", "x\n");
    let bs = broker.bootstrap();
    let member = active_member(&bs, "workers", "busy");
    let out = run_cli(&bs, &["group", "describe", "workers"], None).ok();
    let lines = out.lines();
    assert!(
        lines[0].starts_with("Group: workers  State: Stable  Protocol: ")
            && lines[0].ends_with("Members: 1"),
        "{out}"
    );
    let row = lines
        .iter()
        .find(|l| l.starts_with("busy "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.split_whitespace().collect::<Vec<_>>()[..5] == ["busy", "0", "-", "1", "-"],
        "no commit yet, owned:\n{out}"
    );
    // The members table: MEMBER CLIENT-ID HOST PARTITIONS.
    let member_row: Vec<&str> = lines.last().unwrap().split_whitespace().collect();
    assert!(member_row[0].starts_with("cli-test-member-"), "{out}");
    assert_eq!(
        member_row[1..],
        ["cli-test-member", "/127.0.0.1", "busy:0"],
        "{out}"
    );

    let out = run_cli(
        &bs,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--topic",
            "busy",
            "--to-earliest",
        ],
        None,
    );
    assert_one_line_error(&out, "group 'workers' is active (state Stable, 1 members)");
    let out = run_cli(&bs, &["group", "delete", "workers"], None);
    assert_one_line_error(&out, "group 'workers' has active members");

    drop(member); // leaves the group
    let out = run_cli(&bs, &["group", "delete", "workers"], None).ok();
    assert_eq!(out.stdout, "Deleted group 'workers'\n");
    let out = run_cli(&bs, &["group", "list"], None).ok();
    assert_eq!(out.lines(), ["GROUP  STATE  TYPE  MEMBERS"]);
    let out = run_cli(&bs, &["group", "describe", "workers"], None);
    assert_one_line_error(&out, "group 'workers' does not exist");
}

#[test]
fn unknown_groups_are_one_line_errors() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    assert_one_line_error(
        &run_cli(&bs, &["group", "describe", "nope"], None),
        "group 'nope' does not exist",
    );
    assert_one_line_error(
        &run_cli(&bs, &["group", "delete", "nope"], None),
        "group 'nope' does not exist",
    );
}

#[test]
fn group_commands_fail_fast_when_the_broker_is_down() {
    let dead = dead_broker();
    for args in [
        vec!["group", "list"],
        vec!["group", "describe", "g"],
        vec!["group", "delete", "g"],
        vec![
            "group",
            "reset-offsets",
            "g",
            "--all-topics",
            "--to-earliest",
        ],
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
fn bad_group_flags_are_usage_errors() {
    for args in [
        vec!["group"],
        vec!["group", "describe"],
        vec!["group", "delete"],
        vec!["group", "reset-offsets", "g", "--topic", "t"],
        vec!["group", "reset-offsets", "g", "--to-earliest"],
        vec![
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--to-latest",
        ],
        vec![
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--all-topics",
            "--to-earliest",
        ],
        vec![
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "t:x",
            "--to-earliest",
        ],
        vec![
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-datetime",
            "soon",
        ],
    ] {
        let out = run_cli_env(&args, None, &[]);
        assert_eq!(out.code, Some(2), "{args:?}:\n{out}");
        // clap's messages: "error: ..." for a bad value, the usage for a missing subcommand.
        assert!(
            out.stderr.starts_with("error:") || out.stderr.contains("Usage: runnel group"),
            "{args:?}:\n{out}"
        );
        assert!(out.stdout.is_empty(), "{args:?}:\n{out}");
    }
}
