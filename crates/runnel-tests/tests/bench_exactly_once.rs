//! Benchmarks, not tests: ignored by default and never asserting on time. They print the
//! figures BENCHMARKS.md records. Run against a release broker:
//!
//! ```sh
//! cargo build --release --bin runnel
//! RUNNEL_BIN=target/release/runnel cargo test --release -p runnel-tests --test bench_exactly_once -- --ignored --nocapture --test-threads 1
//! ```

use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use runnel_tests::clients::{create_topic, producer_config, unique_topic};
use runnel_tests::TestBroker;

const WAIT: Duration = Duration::from_secs(60);
const RECORD: &str = "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789";

fn produce_all(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, count: usize) {
    for _ in 0..count {
        let mut record = BaseRecord::<str, str>::to(topic).payload(RECORD);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    record = returned;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
    }
}

/// Waits until the producer's thread has served every delivery report. rust-rdkafka's
/// `commit_transaction` flushes first, and its flush polls in steps of 100 ms that always run
/// to the end (`BaseProducer::poll` returns only at its deadline): with a report still pending,
/// every commit would cost 100 ms of client time, which is what this benchmark measured before
/// (988 records/s; the broker's own time per transaction was under 0.5 ms).
fn await_deliveries(producer: &ThreadedProducer<DefaultProducerContext>) {
    while producer.in_flight_count() > 0 {
        std::thread::sleep(Duration::from_micros(100));
    }
}

fn rate(label: &str, records: usize, elapsed: Duration) {
    println!(
        "{label:<48} {:>10.0} records/s  ({records} records in {:.2} s)",
        records as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn transactional_throughput_with_100_record_transactions() {
    let metrics_port = runnel_tests::free_port();
    let broker = TestBroker::start_with_args(vec![
        "--override".into(),
        "transaction.state.log.num.partitions=5".into(),
        "--metrics-listen".into(),
        format!("127.0.0.1:{metrics_port}"),
    ]);
    let bs = broker.bootstrap();
    let topic = unique_topic("bench-txn");
    create_topic(&bs, &topic, 1, &[]).await;
    let producer: ThreadedProducer<DefaultProducerContext> =
        producer_config(&bs, &[("transactional.id", "bench"), ("linger.ms", "5")])
            .create()
            .unwrap();
    producer.init_transactions(WAIT).unwrap();
    let transactions: usize = std::env::var("BENCH_TRANSACTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let started = Instant::now();
    for _ in 0..transactions {
        producer.begin_transaction().unwrap();
        produce_all(&producer, &topic, 100);
        await_deliveries(&producer);
        producer.commit_transaction(WAIT).unwrap();
    }
    rate(
        "transactional, 100 records per transaction",
        transactions * 100,
        started.elapsed(),
    );
    if std::env::var("BENCH_SHOW_METRICS").is_ok() {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", metrics_port)).unwrap();
        write!(stream, "GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let per_api = text.lines().filter(|l| {
            l.starts_with("runnel_request_duration_seconds_sum")
                || l.starts_with("runnel_requests_total")
        });
        for line in per_api {
            println!("{line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn idempotent_producer_overhead_against_acks_all() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let count = 2_000_000;
    for (label, idempotent) in [
        ("acks=all, not idempotent", "false"),
        ("acks=all, idempotent", "true"),
    ] {
        let topic = unique_topic("bench-idem");
        create_topic(&bs, &topic, 1, &[]).await;
        let settings = [
            ("enable.idempotence", idempotent),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("batch.size", "1000000"),
        ];
        let producer: ThreadedProducer<DefaultProducerContext> =
            producer_config(&bs, &settings).create().unwrap();
        let started = Instant::now();
        produce_all(&producer, &topic, count);
        producer.flush(WAIT).unwrap();
        rate(label, count, started.elapsed());
    }
}
