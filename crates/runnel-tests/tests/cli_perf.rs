//! `runnel perf produce|consume|e2e` against a real broker: the records they report are the
//! records on the broker, the rate limit holds, parallel clients split the work, the JSON
//! report has its figures, and the error cases exit with one readable line.
//!
//! Speed itself is measured in BENCHMARKS.md, never asserted here.

use runnel_tests::clients::{dead_broker, raw_high_watermark, run_cli, CliOutput};
use runnel_tests::TestBroker;
use serde_json::Value;

/// The `--json` report of a successful run.
#[track_caller]
fn json_report(out: CliOutput) -> Value {
    let out = out.ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// Checks one latency summary: `count` samples, ordered percentiles, all positive.
#[track_caller]
fn assert_latency(report: &Value, name: &str, count: u64) {
    let l = &report["latency_ms"][name];
    assert_eq!(l["count"], count, "{name}: {report:#}");
    let figures: Vec<f64> = ["p50", "p95", "p99", "p99_9", "max"]
        .iter()
        .map(|p| {
            l[p].as_f64()
                .unwrap_or_else(|| panic!("{name}.{p}: {report:#}"))
        })
        .collect();
    assert!(figures[0] > 0.0, "{name}: {report:#}");
    assert!(
        figures.windows(2).all(|w| w[0] <= w[1]),
        "{name} percentiles out of order: {report:#}"
    );
    let avg = l["avg"].as_f64().unwrap();
    assert!(avg > 0.0 && avg <= figures[4], "{name}: {report:#}");
}

fn high_watermarks(broker: &TestBroker, topic: &str, partitions: i32) -> Vec<i64> {
    (0..partitions)
        .map(|p| raw_high_watermark(broker.addr(), topic, p).expect("ListOffsets"))
        .collect()
}

/// Runs `runnel perf ARGS` (split at spaces) against `bs`.
fn run_perf(bs: &str, args: &str) -> CliOutput {
    let mut all = vec!["perf"];
    all.extend(args.split_whitespace());
    run_cli(bs, &all, None)
}

/// Fills `topic` (created with `partitions` partitions) with `records` records of `size` bytes.
fn fill_topic(bs: &str, topic: &str, records: u64, size: u32, partitions: i32) {
    let args = format!(
        "produce --topic {topic} --num-records {records} --record-size {size} \
         --partitions {partitions} -q"
    );
    run_perf(bs, &args).ok();
}

#[test]
fn perf_produce_writes_exactly_the_records_it_reports() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let report = json_report(run_perf(
        &bs,
        "produce --topic bench --num-records 5001 --record-size 200 \
         --partitions 3 --producers 2 --compression lz4 --json",
    ));
    assert_eq!(report["mode"], "produce");
    assert_eq!(report["records"], 5001, "{report:#}");
    assert_eq!(report["bytes"], 5001 * 200, "{report:#}");
    assert_eq!(report["errors"], 0);
    assert_eq!(report["settings"]["partitions"], "3");
    assert_eq!(report["settings"]["producers"], "2");
    assert_eq!(report["settings"]["compression"], "lz4");
    assert!(report["records_per_sec"].as_f64().unwrap() > 0.0);
    let mb = report["mb_per_sec"].as_f64().unwrap();
    let derived = report["records_per_sec"].as_f64().unwrap() * 200.0 / 1e6;
    assert!(
        (mb - derived).abs() < 0.01,
        "MB/s is records/s x size: {report:#}"
    );
    assert_latency(&report, "ack", 5001);

    // The run created the topic with 3 partitions and the broker holds every record.
    let out = run_cli(&bs, &["topic", "describe", "bench", "--json"], None).ok();
    let described: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(described["partition_count"], 3, "{described:#}");
    let on_broker = high_watermarks(&broker, "bench", 3);
    assert_eq!(on_broker.iter().sum::<i64>(), 5001, "{on_broker:?}");
}

#[test]
fn perf_produce_text_report_and_progress_line() {
    let broker = TestBroker::start(&[]);
    let out = run_perf(
        &broker.bootstrap(),
        "produce --topic text --duration 1500ms --throughput 2000 \
         --reporting-interval 200ms --acks 1",
    )
    .ok();
    let lines = out.lines();
    assert!(
        lines[0].starts_with("runnel perf produce: topic=text"),
        "{out}"
    );
    assert!(
        lines[0].contains("acks=1") && lines[0].contains("throughput=2000"),
        "{out}"
    );
    assert!(
        lines[1].contains(" records (") && lines[1].contains("0 errors"),
        "{out}"
    );
    assert!(
        lines[2].contains("records/s") && lines[2].contains("MB/s"),
        "{out}"
    );
    assert!(
        lines[3].starts_with("ack latency ms: avg ") && lines[3].contains("p99.9"),
        "{out}"
    );
    // Progress lines on stderr while it ran, with a rising record count.
    let progress: Vec<u64> = out
        .stderr
        .lines()
        .filter(|l| l.contains(" rec/s "))
        .map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(progress.len() >= 3, "expected progress lines:\n{out}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{out}");
}

#[test]
fn perf_produce_keeps_to_the_requested_throughput() {
    let broker = TestBroker::start(&[]);
    let report = json_report(run_perf(
        &broker.bootstrap(),
        "produce --topic paced --duration 2s --throughput 500 \
         --producers 2 --json -q",
    ));
    let records = report["records"].as_u64().unwrap();
    let elapsed = report["elapsed_s"].as_f64().unwrap();
    // The pacer never lets more than rate x time through (plus the first record of each producer).
    assert!(elapsed >= 2.0, "{report:#}");
    assert!(
        (records as f64) <= 500.0 * elapsed + 2.0,
        "over the limit: {report:#}"
    );
    assert!(records > 0, "{report:#}");
    assert_eq!(high_watermarks(&broker, "paced", 1), vec![records as i64]);
}

#[test]
fn perf_consume_reads_what_is_there_alone_in_parallel_and_as_a_group() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    fill_topic(&bs, "replay", 3000, 64, 4);
    for extra in [
        &[][..],
        &["--consumers", "3"][..],
        &["--group", "perf-group", "--consumers", "2"][..],
    ] {
        let mut args = vec!["perf", "consume", "--topic", "replay", "--json", "-q"];
        args.extend_from_slice(extra);
        let report = json_report(run_cli(&bs, &args, None));
        assert_eq!(report["mode"], "consume");
        assert_eq!(report["records"], 3000, "{extra:?}: {report:#}");
        assert_eq!(report["bytes"], 3000 * 64, "{extra:?}: {report:#}");
        assert_eq!(report["settings"]["partitions"], "4");
        assert_latency(&report, "record_age", 3000);
    }
    // The group run committed its offsets: the group is at the end of every partition.
    let out = run_cli(&bs, &["group", "describe", "perf-group", "--json"], None).ok();
    let described: Value = serde_json::from_str(&out.stdout).unwrap();
    let lag: i64 = described["offsets"]
        .as_array()
        .unwrap_or_else(|| panic!("{described:#}"))
        .iter()
        .map(|p| p["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(lag, 0, "{described:#}");
}

#[test]
fn perf_consume_stops_at_num_records_without_counting_past_it() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    fill_topic(&bs, "counted", 2000, 100, 2);
    let report = json_report(run_perf(
        &bs,
        "consume --topic counted --num-records 1500 --consumers 2 \
         --json -q",
    ));
    assert_eq!(report["records"], 1500, "{report:#}");

    // Asking for more than arrives fails after the idle timeout, with the report printed.
    // The idle clock starts with the run, so the timeout must cover the consumer's start
    // (metadata, first fetch) on a loaded 2-core CI machine: 1 s did not.
    let out = run_perf(
        &bs,
        "consume --topic counted --num-records 2500 --idle-timeout 5s \
         --json -q",
    )
    .code_is(1);
    let report: Value = serde_json::from_str(&out.stdout).expect("the report is still printed");
    assert_eq!(report["records"], 2000, "{out}");
    assert!(
        out.stderr
            .contains("runnel: error: only 2000 of 2500 records arrived"),
        "{out}"
    );
}

#[test]
fn perf_e2e_measures_every_record_from_producer_to_consumer() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    // Records already in the topic are not part of the measurement.
    fill_topic(&bs, "e2e", 100, 100, 1);
    let report = json_report(run_perf(
        &bs,
        "e2e --topic e2e --num-records 300 --throughput 300 \
         --record-size 32 --json -q",
    ));
    assert_eq!(report["mode"], "e2e");
    assert_eq!(report["records"], 300, "{report:#}");
    assert_eq!(report["bytes"], 300 * 32, "{report:#}");
    assert_latency(&report, "end_to_end", 300);
    assert_latency(&report, "ack", 300);
    assert_eq!(high_watermarks(&broker, "e2e", 1), vec![400]);
}

#[test]
fn perf_errors_are_one_line_with_a_non_zero_exit() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let out = run_cli(&bs, &["perf", "consume", "--topic", "missing"], None).code_is(1);
    assert!(
        out.stderr.trim() == "runnel: error: topic 'missing' does not exist",
        "{out}"
    );
    let out = run_cli(
        &dead_broker(),
        &["perf", "produce", "--topic", "t", "--timeout-ms", "1000"],
        None,
    )
    .code_is(1);
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(out.stderr.contains("cannot reach the cluster"), "{out}");
    let out = run_cli(
        &bs,
        &["perf", "consume", "--topic", "t", "--from", "end"],
        None,
    )
    .code_is(1);
    assert!(out.stderr.contains("--from end needs"), "{out}");
    let out = run_perf(&bs, "produce --topic t --idempotent --acks 1").code_is(1);
    assert!(
        out.stderr.contains("--idempotent needs --acks all"),
        "{out}"
    );

    // Every mode says the same one line when the cluster is unreachable.
    for mode in ["consume", "e2e"] {
        let args = ["perf", mode, "--topic", "t", "--timeout-ms", "1000"];
        let out = run_cli(&dead_broker(), &args, None).code_is(1);
        assert_eq!(out.stderr.lines().count(), 1, "{mode}: {out}");
        assert!(out.stderr.contains("cannot reach the cluster"), "{out}");
    }
    // A topic the broker refuses to create is the broker's reason, not a hang.
    for mode in ["produce", "e2e"] {
        let out = run_perf(&bs, &format!("{mode} --topic bad/name --num-records 5")).code_is(1);
        assert_eq!(out.stderr.lines().count(), 1, "{mode}: {out}");
        assert!(
            out.stderr.contains("cannot create topic 'bad/name'"),
            "{mode}: {out}"
        );
    }

    // Usage errors are clap's: exit code 2.
    for bad in [
        &["perf", "produce", "--topic", "t", "--record-size", "0"][..],
        &[
            "perf",
            "produce",
            "--topic",
            "t",
            "--num-records",
            "5",
            "--duration",
            "1s",
        ][..],
        &["perf", "produce", "--topic", "t", "--duration", "soon"][..],
        &["perf", "e2e", "--topic", "t", "--record-size", "8"][..],
        &["perf", "produce"][..],
        &["perf", "consume", "--topic", "t", "--consumers", "0"][..],
        &["perf", "consume", "--topic", "t", "--group", ""][..],
    ] {
        run_cli(&bs, bad, None).code_is(2);
    }
}

#[test]
fn perf_produce_fails_when_the_broker_refuses_the_records() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    run_cli(
        &bs,
        &[
            "topic",
            "create",
            "small",
            "--partitions",
            "1",
            "--config",
            "max.message.bytes=1000",
        ],
        None,
    )
    .ok();
    let out = run_perf(
        &bs,
        "produce --topic small --record-size 2000 --num-records 5 -q",
    )
    .code_is(1);
    // The report is still printed, then one error line.
    assert!(out.stdout.contains(" records ("), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr
            .contains("runnel: error: 5 of 5 records were not delivered; the first failure: "),
        "{out}"
    );
    assert!(out.stderr.contains("max.message.bytes"), "{out}");
    assert_eq!(high_watermarks(&broker, "small", 1), vec![0]);
}

#[test]
fn perf_help_has_examples_at_every_level() {
    for args in [
        &["perf", "--help"][..],
        &["perf", "produce", "--help"][..],
        &["perf", "consume", "--help"][..],
        &["perf", "e2e", "--help"][..],
    ] {
        let out = run_cli(&dead_broker(), args, None).ok();
        assert!(out.stdout.contains("Examples:"), "{out}");
        assert!(out.stdout.contains("runnel perf "), "{out}");
    }
    let out = run_cli(&dead_broker(), &["perf", "produce", "--help"], None).ok();
    for flag in [
        "--topic",
        "--num-records",
        "--record-size",
        "--throughput",
        "--duration",
    ] {
        assert!(out.stdout.contains(flag), "{flag} missing:\n{out}");
    }
}
