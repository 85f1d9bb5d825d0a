//! `runnel perf produce`: kafka-producer-perf-test's counterpart. Generated records of a fixed
//! size, from one or more producers in parallel (one librdkafka instance and thread each),
//! measuring records/s, MB/s and send-to-acknowledgement latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;

use super::load::{
    parse_duration, random_payload, rate_per_worker, throughput_setting, Budget, OutputArgs, Pacer,
};
use super::producer::{self, AckContext, ProducerOutcome};
use super::progress::{Counters, Progress};
use super::report::{Latency, Report};
use super::topic_setup::ensure_topic;
use crate::cli::common::{parse_key_value, ConnArgs};
use crate::cli::produce::{Acks, Compression};

pub const EXAMPLES: &str = "Examples:
  runnel perf produce --topic bench --num-records 1000000 --record-size 100
  runnel perf produce --topic bench --duration 30s --throughput 50000 --acks 1
  runnel perf produce --topic bench --num-records 5000000 --producers 2 --partitions 6 --compression lz4 --json";

/// Records sent when neither `--num-records` nor `--duration` is given.
const DEFAULT_RECORDS: u64 = 1_000_000;

#[derive(Args)]
pub struct PerfProduceArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic to write to; created with --partitions when it does not exist.
    #[arg(long)]
    topic: String,
    /// Records to send in total, over all producers [default: 1000000 unless --duration].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "duration")]
    num_records: Option<u64>,
    /// Send for this long instead of a count (30s, 5m, 1500ms).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    duration: Option<Duration>,
    /// Size of each record's value in bytes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    record_size: u32,
    /// Records per second in total, over all producers; -1 for as fast as possible.
    #[arg(long, default_value_t = -1.0, allow_negative_numbers = true)]
    throughput: f64,
    /// Producers sending in parallel, each with its own connection and thread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    producers: u32,
    /// Partitions of the topic when this run creates it [default: 1].
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: Option<i32>,
    /// Acknowledgements to wait for.
    #[arg(long, value_enum, default_value_t = Acks::All)]
    acks: Acks,
    /// Compression codec of the record batches.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
    /// Use the idempotent producer (needs --acks all).
    #[arg(long)]
    idempotent: bool,
    /// How long a producer waits to fill a batch (librdkafka's linger.ms).
    #[arg(long, default_value_t = 5)]
    linger_ms: u32,
    /// Largest batch in bytes (librdkafka's batch.size).
    #[arg(long, default_value_t = 1_000_000)]
    batch_size: u32,
    /// Any other librdkafka producer property; repeatable (kafka-producer-perf-test's --producer-props).
    #[arg(long = "producer-prop", alias = "producer-props", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    producer_props: Vec<(String, String)>,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(args: PerfProduceArgs) -> anyhow::Result<()> {
    if args.idempotent && args.acks != Acks::All {
        bail!("--idempotent needs --acks all");
    }
    let partitions = ensure_topic(&args.conn, &args.topic, args.partitions)?;
    let records = match (args.num_records, args.duration) {
        (None, None) => Some(DEFAULT_RECORDS),
        (records, _) => records,
    };
    let counters = Arc::new(Counters::default());
    let start = Instant::now();
    let budget = Budget::new(records, args.duration, start);
    let progress = Progress::start(counters.clone(), args.output.progress_interval());
    let outcomes = run_producers(&args, budget, start, &counters);
    let elapsed = start.elapsed();
    progress.finish();
    let outcomes = outcomes?;

    let mut latency = Latency::new();
    for outcome in &outcomes {
        latency.merge(&outcome.latency);
    }
    let first_error = outcomes.iter().find_map(|o| o.first_error.clone());
    let sent: u64 = outcomes.iter().map(|o| o.sent).sum();
    let report = Report {
        mode: "produce",
        topic: args.topic.clone(),
        settings: settings(&args, partitions),
        records: counters.records(),
        bytes: counters.bytes(),
        errors: counters.errors(),
        elapsed,
        latencies: vec![("ack", latency.summary())],
    };
    report.print(args.output.json)?;
    if let Some(error) = first_error {
        bail!(
            "{} of {sent} records were not delivered; the first failure: {error}",
            report.errors
        );
    }
    Ok(())
}

fn settings(args: &PerfProduceArgs, partitions: i32) -> Vec<(&'static str, String)> {
    vec![
        ("partitions", partitions.to_string()),
        ("producers", args.producers.to_string()),
        ("record_size", args.record_size.to_string()),
        ("acks", args.acks.config_value().to_string()),
        ("compression", args.compression.config_value().to_string()),
        ("idempotent", args.idempotent.to_string()),
        ("linger_ms", args.linger_ms.to_string()),
        ("batch_size", args.batch_size.to_string()),
        ("throughput", throughput_setting(args.throughput)),
    ]
}

/// One producer per thread; the first failure of any of them fails the run.
fn run_producers(
    args: &PerfProduceArgs,
    budget: Budget,
    start: Instant,
    counters: &Arc<Counters>,
) -> anyhow::Result<Vec<ProducerOutcome>> {
    let mut config = args.conn.client_config();
    config
        .set("acks", args.acks.config_value())
        .set("compression.type", args.compression.config_value())
        .set("enable.idempotence", args.idempotent.to_string())
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", args.batch_size.to_string());
    for (key, value) in &args.producer_props {
        config.set(key, value);
    }
    let template = random_payload(args.record_size as usize);
    let rate = rate_per_worker(args.throughput, args.producers);
    let flush_timeout = args.conn.timeout().max(Duration::from_secs(30));
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.producers)
            .map(|worker| {
                let context = AckContext::new(start, counters.clone());
                let producer = producer::create(&config, context);
                let mut payload = template.clone();
                let share = budget.share(u64::from(worker), u64::from(args.producers));
                scope.spawn(move || {
                    let pacer = Pacer::new(start, rate);
                    producer::send_all(
                        producer?,
                        &args.topic,
                        share,
                        &pacer,
                        &mut payload,
                        |_, _| {},
                        flush_timeout,
                    )
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a producer thread panicked"))
            .collect()
    })
}
