//! kafka-python against the real broker: the scripts in `python/` assert what they read and
//! print a summary; this side checks exit codes, summaries, and cross-checks the data with
//! librdkafka in both directions. Missing python3 / kafka-python / lz4 is a failure, not a skip
//! (CI installs them with scripts/install-test-deps.sh).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use rdkafka::message::OwnedHeaders;
use rdkafka::producer::FutureRecord;
use rdkafka::Offset;
use runnel_tests::clients::{
    assign, consume_n, consumer, create_topic, enqueue, headers, require_tool, run_with_timeout,
    topic_partitions, MAX_WAIT,
};
use runnel_tests::TestBroker;

const HINT: &str = "Install the test dependencies: `bash scripts/install-test-deps.sh` \
                    (python3 -m pip install kafka-python lz4).";

fn require_python() {
    require_tool("python3", &["--version"], HINT);
    require_tool("python3", &["-c", "import kafka, lz4"], HINT);
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// Runs a script (bounded to 30 s) and returns its stdout; panics with both streams on a
/// non-zero exit.
fn run_script(name: &str, args: &[&str]) -> String {
    let mut cmd = Command::new("python3");
    cmd.arg(script(name))
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    let out: Output = run_with_timeout(&mut cmd, None, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{name} {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}

fn summary_line(stdout: &str) -> &str {
    stdout
        .lines()
        .rfind(|l| l.starts_with("OK "))
        .unwrap_or_else(|| panic!("no OK summary in output:\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_produces_gzip_and_lz4_and_consumes_with_assign() {
    require_python();
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = "py-produce";
    let out = run_script("produce_consume.py", &[&bs, topic]);
    assert_eq!(
        summary_line(&out),
        "OK produced=120 consumed=120 partitions=3 codecs=gzip,lz4"
    );

    // Cross-check with librdkafka: the same 120 records, with kafka-python's headers.
    let c = consumer(&bs, &[]);
    assert_eq!(topic_partitions(&c).get(topic), Some(&3));
    assign(&c, topic, 3, Offset::Beginning);
    let got = consume_n(&c, 120, Duration::from_secs(20)).await;
    let mut gzip = 0;
    let mut lz4 = 0;
    for r in &got {
        let v = r.value_str();
        let codec = v.split('-').next().unwrap().to_string();
        match codec.as_str() {
            "gzip" => gzip += 1,
            "lz4" => lz4 += 1,
            other => panic!("unexpected value {v} ({other})"),
        }
        assert!(r.key_str().starts_with("key-"), "{r:?}");
        let index = v.split('-').nth(2).unwrap();
        assert_eq!(
            r.headers,
            vec![
                ("codec".to_string(), Some(codec.into_bytes())),
                ("index".to_string(), Some(index.as_bytes().to_vec())),
                ("index".to_string(), Some(b"dup".to_vec())),
            ]
        );
    }
    assert_eq!((gzip, lz4), (60, 60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_reads_what_librdkafka_wrote() {
    require_python();
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = "rust-to-py";
    create_topic(&bs, topic, 1, &[]).await;
    let p = runnel_tests::clients::producer(&bs, &[("compression.codec", "lz4")]);
    let mut futs = Vec::new();
    let mut expected = Vec::new();
    for i in 0..25 {
        let key = format!("k{i}");
        let value = format!("from-rust-{i}");
        let hdrs: OwnedHeaders = headers(&[("n", Some(format!("{i}").as_bytes()))]);
        let rec: FutureRecord<'_, str, str> = FutureRecord::to(topic)
            .key(key.as_str())
            .payload(value.as_str())
            .headers(hdrs);
        futs.push(enqueue(&p, rec));
        expected.push(format!("{i}\t{key}\t{value}\tn={i}"));
    }
    for f in futs {
        tokio::time::timeout(MAX_WAIT, f)
            .await
            .expect("timeout")
            .expect("alive")
            .expect("delivered");
    }
    let out = run_script("consume_check.py", &[&bs, topic, "25"]);
    assert_eq!(summary_line(&out), "OK consumed=25");
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with("OK ")).collect();
    assert_eq!(lines, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_admin_creates_and_deletes_topics() {
    require_python();
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let out = run_script("admin.py", &[&bs, "pyadm"]);
    assert_eq!(
        summary_line(&out),
        "OK created=pyadm-a,pyadm-b deleted=pyadm-b remaining=pyadm-a:3"
    );
    let c = consumer(&bs, &[]);
    let topics = topic_partitions(&c);
    assert_eq!(topics.get("pyadm-a"), Some(&3), "{topics:?}");
    assert!(!topics.contains_key("pyadm-b"), "{topics:?}");
    assert!(!topics.contains_key("pyadm-rf"), "{topics:?}");
}
