//! Edge cases of the command-line tools found in review, each against a real broker: an empty
//! key separator, date-times with a UTC offset or trailing text, readable broker error codes,
//! removing an unknown topic config, SIGTERM on a group consumer, `--brokers` before the
//! command, and empty group ids.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runnel_tests::clients::{
    assert_one_line_error, broker_with_topic, run_cli, run_cli_env, CliOutput,
};
use runnel_tests::{runnel_bin, send_sigterm};
use serde_json::Value;

/// A usage error from clap: exit code 2, no panic.
#[track_caller]
fn assert_usage_error(out: &CliOutput, text: &str) {
    assert_eq!(out.code, Some(2), "usage error expected:\n{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert!(out.stderr.contains(text), "expected {text:?}:\n{out}");
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmm` wall-clock time at `offset_minutes` from
/// UTC, followed by the offset (`+05:00`).
fn iso_with_offset(ms: i64, offset_minutes: i64) -> String {
    let local = ms + offset_minutes * 60_000;
    let (days, in_day) = (local.div_euclid(86_400_000), local.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let off = offset_minutes.abs();
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}{sign}{:02}:{:02}",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
        off / 60,
        off % 60
    )
}

#[test]
fn iso_with_offset_formats_wall_clock_time() {
    assert_eq!(iso_with_offset(0, 0), "1970-01-01T00:00:00.000+00:00");
    assert_eq!(
        iso_with_offset(1_700_000_000_000, 120),
        "2023-11-15T00:13:20.000+02:00"
    );
    assert_eq!(
        iso_with_offset(1_700_000_000_000, -300),
        "2023-11-14T17:13:20.000-05:00"
    );
}

#[test]
fn an_empty_key_separator_is_a_usage_error_not_a_panic() {
    let broker = broker_with_topic("keys", "1");
    let bs = broker.bootstrap();
    let out = run_cli(
        &bs,
        &["produce", "keys", "--key-separator", ""],
        Some("a:b\n"),
    );
    assert_usage_error(&out, "--key-separator");
    let out = run_cli(&bs, &["produce", "keys", "-K", ":"], Some("a:b\n")).ok();
    assert!(out.stderr.contains("produced 1 records"), "{out}");
}

#[test]
fn date_times_with_a_utc_offset_mean_that_offset() {
    let broker = broker_with_topic("times", "1");
    let bs = broker.bootstrap();
    run_cli(&bs, &["produce", "times"], Some("a\nb\nc\n")).ok();
    let out = run_cli(
        &bs,
        &["consume", "times", "--from", "beginning", "-e", "--json"],
        None,
    )
    .ok();
    let first: Value = serde_json::from_str(out.lines()[0]).unwrap();
    let written = first["timestamp"].as_i64().unwrap();

    // One minute before the records, written as wall-clock time five hours east of UTC. Read
    // as UTC (the offset ignored) it would be hours after them, and nothing would be found.
    let before = iso_with_offset(written - 60_000, 300);
    let from = format!("@{before}");
    let out = run_cli(
        &bs,
        &[
            "consume", "times", "--from", &from, "-e", "--format", "{value}",
        ],
        None,
    )
    .ok();
    assert_eq!(out.lines(), ["a", "b", "c"], "--from {from}:\n{out}");

    // One minute after the records, five hours west of UTC: read as UTC it would be hours
    // before them, and everything would be found.
    let after = iso_with_offset(written + 60_000, -300);
    let from = format!("@{after}");
    let out = run_cli(
        &bs,
        &[
            "consume", "times", "--from", &from, "-e", "--format", "{value}",
        ],
        None,
    )
    .ok();
    assert!(out.lines().is_empty(), "--from {from}:\n{out}");

    // reset-offsets --to-datetime reads the same syntax.
    let out = run_cli(
        &bs,
        &[
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "times",
            "--to-datetime",
            &before,
            "--dry-run",
            "--json",
        ],
        None,
    )
    .ok();
    let plan: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["partitions"][0]["new_offset"], 0, "{out}");
}

#[test]
fn date_times_with_trailing_text_are_rejected() {
    let broker = broker_with_topic("times", "1");
    let bs = broker.bootstrap();
    for bad in [
        "@2024-05-01T12:00:45junk",
        "@2024-05-01T12:00:00+2",
        "@2024-05-01T12:00:00:30",
    ] {
        let out = run_cli(&bs, &["consume", "times", "--from", bad, "-e"], None);
        assert_usage_error(&out, "expected milliseconds since the epoch");
    }
    let out = run_cli(
        &bs,
        &[
            "group",
            "reset-offsets",
            "g",
            "--topic",
            "times",
            "--to-datetime",
            "2024-05-01T12:00:45junk",
            "--dry-run",
        ],
        None,
    );
    assert_usage_error(&out, "--to-datetime");
}

#[test]
fn broker_errors_read_as_words_without_rust_variant_names() {
    let broker = broker_with_topic("compacted", "1");
    let bs = broker.bootstrap();
    let out = run_cli(&bs, &["topic", "create", "bad name"], None);
    assert_one_line_error(&out, "cannot create topic 'bad name': invalid topic name");
    assert!(!out.stderr.contains("InvalidTopic"), "{out}");

    // A keyless record on a compacted topic: Kafka's INVALID_RECORD, a code the CLI has no
    // words of its own for.
    run_cli(
        &bs,
        &[
            "topic",
            "alter-config",
            "compacted",
            "--set",
            "cleanup.policy=compact",
        ],
        None,
    )
    .ok();
    let out = run_cli(&bs, &["produce", "compacted"], Some("no key\n"));
    assert_one_line_error(&out, "delivery failed: broker failed to validate record");
    assert!(!out.stderr.contains("InvalidRecord"), "{out}");
}

#[test]
fn alter_config_refuses_to_remove_an_unknown_config() {
    let broker = broker_with_topic("cfg", "1");
    let bs = broker.bootstrap();
    run_cli(
        &bs,
        &[
            "topic",
            "alter-config",
            "cfg",
            "--set",
            "segment.ms=3600000",
        ],
        None,
    )
    .ok();
    // A typo in --delete is an error (as kafka-configs), and nothing changes.
    let out = run_cli(
        &bs,
        &[
            "topic",
            "alter-config",
            "cfg",
            "--delete",
            "segment.mss",
            "--set",
            "flush.messages=1",
        ],
        None,
    );
    assert_one_line_error(&out, "unknown config segment.mss");
    assert_eq!(
        topic_overrides(&bs, "cfg"),
        [("segment.ms".to_string(), "3600000".to_string())]
    );
    // Removing a known config, set or not, still works.
    run_cli(
        &bs,
        &[
            "topic",
            "alter-config",
            "cfg",
            "--delete",
            "segment.ms",
            "--delete",
            "flush.ms",
        ],
        None,
    )
    .ok();
    assert_eq!(topic_overrides(&bs, "cfg"), []);
}

/// The topic's own overrides (source DYNAMIC_TOPIC_CONFIG), as `topic describe --json` shows.
fn topic_overrides(bs: &str, topic: &str) -> Vec<(String, String)> {
    let out = run_cli(bs, &["topic", "describe", topic, "--json"], None).ok();
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    doc["configs"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"))
        .iter()
        .filter(|c| c["source"] == "DYNAMIC_TOPIC_CONFIG")
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn sigterm_stops_a_group_consumer_cleanly_committing_what_it_printed() {
    let broker = broker_with_topic("orders", "1");
    let bs = broker.bootstrap();
    run_cli(&bs, &["produce", "orders"], Some("a\nb\nc\n")).ok();
    let mut child = Command::new(runnel_bin())
        .args([
            "consume",
            "orders",
            "--group",
            "billing",
            "--from",
            "beginning",
            "--brokers",
            &bs,
        ])
        .env_remove("RUNNEL_BROKERS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runnel consume");
    // Read the three records (the consumer then follows, waiting for more).
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let printed: Vec<String> = (0..3)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(30))
                .expect("three records printed")
        })
        .collect();
    assert_eq!(printed, ["a", "b", "c"]);
    // Well inside auto.commit.interval.ms (5 s): only a clean stop commits by now.
    send_sigterm(child.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "consume did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "consume exited with {exit:?}");
    // The member left (the group is not stuck with a ghost until its session times out) and
    // the printed records are committed.
    let out = run_cli(&bs, &["group", "describe", "billing", "--json"], None).ok();
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["state"], "Empty", "{out}");
    assert_eq!(doc["members"].as_array().unwrap().len(), 0, "{out}");
    assert_eq!(doc["offsets"][0]["committed_offset"], 3, "{out}");
    assert_eq!(doc["offsets"][0]["lag"], 0, "{out}");
}

#[test]
fn brokers_and_timeout_may_come_before_the_command() {
    let broker = broker_with_topic("early", "2");
    let bs = broker.bootstrap();
    let out = run_cli_env(&["--brokers", &bs, "topic", "list"], None, &[]).ok();
    assert!(out.lines().iter().any(|l| l.starts_with("early ")), "{out}");
    let out = run_cli_env(
        &["-b", &bs, "--timeout-ms", "3000", "consume", "early", "-e"],
        None,
        &[],
    )
    .ok();
    assert!(out.stdout.is_empty(), "{out}");
    // A flag after the command still wins over one before it.
    let dead = runnel_tests::clients::dead_broker();
    let out = run_cli_env(&["-b", &dead, "topic", "list", "-b", &bs], None, &[]).ok();
    assert!(out.stdout.contains("early"), "{out}");
    // The server has no --brokers: say so instead of ignoring it.
    let out = run_cli_env(&["--brokers", &bs, "server", "--check-config"], None, &[]);
    assert_usage_error(&out, "not for `runnel server`");
}

#[test]
fn empty_group_ids_are_usage_errors() {
    let broker = broker_with_topic("orders", "1");
    let bs = broker.bootstrap();
    for args in [
        &["group", "describe", ""][..],
        &["group", "delete", ""][..],
        &[
            "group",
            "reset-offsets",
            "",
            "--all-topics",
            "--to-earliest",
        ][..],
        &["consume", "orders", "--group", "", "-e"][..],
    ] {
        let out = run_cli(&bs, args, None);
        assert_usage_error(&out, "a value is required");
    }
}
