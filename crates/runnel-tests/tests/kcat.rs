//! kcat (librdkafka's command-line client, the Debian package) against the real broker.
//! Missing kcat is a failure, not a skip (CI installs it with scripts/install-test-deps.sh).

use std::process::Command;
use std::time::Duration;

use rdkafka::Offset;
use runnel_tests::clients::{
    assign, consume_n, consumer, create_topic, require_tool, run_with_timeout,
};
use runnel_tests::TestBroker;

const HINT: &str =
    "Install the test dependencies: `bash scripts/install-test-deps.sh` (apt-get install kcat).";

/// Runs kcat with `args` (bounded to 30 s), returns stdout; panics on a non-zero exit.
fn kcat(args: &[&str], stdin: Option<&str>) -> String {
    require_tool("kcat", &["-V"], HINT);
    let mut cmd = Command::new("kcat");
    cmd.args(args).args(["-X", "broker.address.family=v4"]);
    let out = run_with_timeout(&mut cmd, stdin.map(str::as_bytes), Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kcat {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn kcat_lists_broker_and_topics() {
    require_tool("kcat", &["-V"], HINT);
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_topic(&bs, "listed-three", 3, &[]));
    rt.block_on(create_topic(&bs, "listed-one", 1, &[]));
    let out = kcat(&["-b", &bs, "-L"], None);
    assert!(out.contains(" 1 brokers:"), "{out}");
    assert!(
        out.contains(&format!("broker 0 at {bs}")),
        "broker 0 at {bs} not listed:\n{out}"
    );
    assert!(
        out.contains("topic \"listed-three\" with 3 partitions:"),
        "{out}"
    );
    assert!(
        out.contains("topic \"listed-one\" with 1 partitions:"),
        "{out}"
    );
    for p in 0..3 {
        assert!(
            out.contains(&format!("partition {p}, leader 0, replicas: 0, isrs: 0")),
            "partition {p}:\n{out}"
        );
    }
    // Single-topic listing.
    let out = kcat(&["-b", &bs, "-L", "-t", "listed-one"], None);
    assert!(
        out.contains("topic \"listed-one\" with 1 partitions:"),
        "{out}"
    );
    assert!(!out.contains("listed-three"), "{out}");
}

#[test]
fn kcat_produces_keyed_lines_and_reads_them_back() {
    require_tool("kcat", &["-V"], HINT);
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let topic = "kcat-lines";
    rt.block_on(create_topic(&bs, topic, 1, &[]));

    let lines: Vec<String> = (0..12)
        .map(|i| format!("key{i}:value {i} with spaces"))
        .collect();
    let input = lines.join("\n") + "\n";
    kcat(
        &["-b", &bs, "-P", "-t", topic, "-p", "0", "-K:"],
        Some(&input),
    );

    let want: String = (0..12)
        .map(|i| format!("key{i}=value {i} with spaces\n"))
        .collect();
    let out = kcat(
        &[
            "-b",
            &bs,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%k=%s\n",
        ],
        None,
    );
    assert_eq!(out, want);

    // Relative offset: the last two.
    let out = kcat(
        &[
            "-b",
            &bs,
            "-C",
            "-t",
            topic,
            "-p",
            "0",
            "-o",
            "-2",
            "-e",
            "-q",
            "-f",
            "%o:%k=%s\n",
        ],
        None,
    );
    assert_eq!(
        out,
        "10:key10=value 10 with spaces\n11:key11=value 11 with spaces\n"
    );

    // Absolute offset.
    let out = kcat(
        &[
            "-b", &bs, "-C", "-t", topic, "-p", "0", "-o", "5", "-c", "2", "-e", "-q", "-f",
            "%o:%s\n",
        ],
        None,
    );
    assert_eq!(out, "5:value 5 with spaces\n6:value 6 with spaces\n");

    // librdkafka (rdkafka crate) sees the same keys and values.
    let got = rt.block_on(async {
        let c = consumer(&bs, &[]);
        assign(&c, topic, 1, Offset::Beginning);
        consume_n(&c, 12, Duration::from_secs(20)).await
    });
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.key_str(), format!("key{i}"));
        assert_eq!(r.value_str(), format!("value {i} with spaces"));
    }
}
