//! `runnel perf consume`: kafka-consumer-perf-test's counterpart. One or more consumers in
//! parallel (one librdkafka instance and thread each), either splitting the partitions among
//! themselves or sharing them as a consumer group, measuring records/s and MB/s.
//!
//! The rate is timed from the first record to the last, so connecting and joining the group
//! (reported as `startup_s`) do not dilute it, as kafka-consumer-perf-test leaves out its
//! rebalance time. The latency reported is each record's age when consumed (now minus its
//! timestamp): the end-to-end delay when tailing live producers, the data's age on a replay.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::load::{parse_duration, Budget, OutputArgs};
use super::progress::{Counters, Progress};
use super::report::{Latency, Report};
use super::topic_setup::{partition_offsets, PartitionOffsets};
use crate::cli::common::{describe_error, parse_key_value, ConnArgs};

pub const EXAMPLES: &str = "Examples:
  runnel perf consume --topic bench                       # everything in the topic now
  runnel perf consume --topic bench --num-records 1000000 --consumers 2
  runnel perf consume --topic bench --group perf --duration 30s --json
  runnel perf consume --topic bench --from end --duration 1m   # tail live producers";

#[derive(Args)]
pub struct PerfConsumeArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic to read (it must exist).
    #[arg(long)]
    topic: String,
    /// Stop after this many records in total [default: the end of the log when the run starts].
    #[arg(long, alias = "messages", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "duration")]
    num_records: Option<u64>,
    /// Stop after this long instead.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    duration: Option<Duration>,
    /// Where to start in each partition without a committed offset.
    #[arg(long, value_enum, default_value_t = StartAt::Beginning)]
    from: StartAt,
    /// Consumers reading in parallel, each with its own connection and thread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    consumers: u32,
    /// Consume as this consumer group (subscribe and commit); without it the consumers split
    /// the partitions among themselves and commit nothing.
    #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    group: Option<String>,
    /// Give up when no record arrives for this long (kafka-consumer-perf-test's --timeout).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    idle_timeout: Duration,
    /// Any other librdkafka consumer property; repeatable.
    #[arg(long = "consumer-prop", alias = "consumer-props", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    consumer_props: Vec<(String, String)>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StartAt {
    Beginning,
    End,
}

/// What the consumer threads share: the counters, the stop conditions and the outcome.
struct Run {
    start: Instant,
    /// The wall clock at `start`, in milliseconds since the Unix epoch (record timestamps
    /// are on this clock).
    wall_clock_at_start_ms: i64,
    counters: Arc<Counters>,
    budget: Budget,
    /// In "read what is there" mode: each partition's high watermark at the start.
    ends: Option<Vec<PartitionOffsets>>,
    finished_partitions: Mutex<HashSet<i32>>,
    idle_timeout: Duration,
    stop: AtomicBool,
    /// Records taken so far, counted before they are counted in `counters` so that parallel
    /// consumers never count past `--num-records`.
    claimed: AtomicU64,
    /// Nanoseconds since `start` of the first and the latest record (0: none yet).
    first_record_nanos: AtomicU64,
    last_record_nanos: AtomicU64,
    first_error: Mutex<Option<String>>,
}

pub fn run(args: PerfConsumeArgs) -> anyhow::Result<()> {
    let read_to_end = args.num_records.is_none() && args.duration.is_none();
    if read_to_end && args.from == StartAt::End {
        bail!(
            "--from end needs --num-records or --duration (the log has nothing past its end yet)"
        );
    }
    let partitions = partition_offsets(&args.conn, &args.topic)?;
    let start = Instant::now();
    let run = Arc::new(Run {
        start,
        wall_clock_at_start_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        counters: Arc::new(Counters::default()),
        budget: Budget::new(args.num_records, args.duration, start),
        ends: read_to_end.then(|| partitions.clone()),
        finished_partitions: Mutex::new(HashSet::new()),
        idle_timeout: args.idle_timeout,
        stop: AtomicBool::new(false),
        claimed: AtomicU64::new(0),
        first_record_nanos: AtomicU64::new(0),
        last_record_nanos: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    if let Some(ends) = &run.ends {
        for empty in ends.iter().filter(|p| p.high_watermark <= p.log_start) {
            run.finish_partition(empty.partition);
        }
    }
    let progress = Progress::start(run.counters.clone(), args.output.progress_interval());
    let latencies = run_consumers(&args, &partitions, &run);
    progress.finish();
    let latencies = latencies?;
    let mut age = Latency::new();
    for latency in &latencies {
        age.merge(latency);
    }
    report(&args, &run, partitions.len(), &age)
}

fn report(
    args: &PerfConsumeArgs,
    run: &Run,
    partitions: usize,
    age: &Latency,
) -> anyhow::Result<()> {
    let first = run.first_record_nanos.load(Relaxed);
    let last = run.last_record_nanos.load(Relaxed);
    let elapsed = Duration::from_nanos(last.saturating_sub(first)).max(Duration::from_millis(1));
    let mut settings = vec![
        ("partitions", partitions.to_string()),
        ("consumers", args.consumers.to_string()),
        ("group", args.group.clone().unwrap_or_else(|| "none".into())),
        ("from", format!("{:?}", args.from).to_lowercase()),
    ];
    if first > 0 {
        let startup = Duration::from_nanos(first).as_secs_f64();
        settings.push(("startup_s", format!("{startup:.3}")));
    }
    let report = Report {
        mode: "consume",
        topic: args.topic.clone(),
        settings,
        records: run.counters.records(),
        bytes: run.counters.bytes(),
        errors: run.counters.errors(),
        elapsed,
        latencies: vec![("record_age", age.summary())],
    };
    report.print(args.output.json)?;
    if let Some(error) = run.first_error.lock().expect("error lock").take() {
        bail!("consuming failed: {error}");
    }
    if let Some(wanted) = args.num_records {
        if report.records < wanted {
            bail!(
                "only {} of {wanted} records arrived: none for {} ms",
                report.records,
                args.idle_timeout.as_millis()
            );
        }
    }
    Ok(())
}

fn run_consumers(
    args: &PerfConsumeArgs,
    partitions: &[PartitionOffsets],
    run: &Arc<Run>,
) -> anyhow::Result<Vec<Latency>> {
    let workers = args.consumers as usize;
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..workers)
            .map(|worker| {
                let mine: Vec<i32> = partitions
                    .iter()
                    .map(|p| p.partition)
                    .filter(|p| *p as usize % workers == worker)
                    .collect();
                let run = run.clone();
                scope.spawn(move || {
                    let consumer = create_consumer(args, run.ends.is_some())?;
                    match &args.group {
                        Some(_) => consumer.subscribe(&[&args.topic])?,
                        None => consumer.assign(&assignment(&args.topic, &mine, args.from)?)?,
                    }
                    Ok(consume_until_done(&consumer, &run))
                })
            })
            .collect();
        let results: Vec<anyhow::Result<Latency>> = threads
            .into_iter()
            .map(|t| t.join().expect("a consumer thread panicked"))
            .collect();
        // A worker that failed to start would leave the others running until idle.
        run.stop.store(true, Relaxed);
        results.into_iter().collect()
    })
}

fn create_consumer(args: &PerfConsumeArgs, report_eof: bool) -> anyhow::Result<BaseConsumer> {
    let group = args
        .group
        .clone()
        .unwrap_or_else(|| format!("runnel-perf-{}", std::process::id()));
    let reset = match args.from {
        StartAt::Beginning => "earliest",
        StartAt::End => "latest",
    };
    let mut config = args.conn.client_config();
    config
        .set("group.id", group)
        .set("enable.auto.commit", args.group.is_some().to_string())
        .set("auto.offset.reset", reset)
        .set("enable.partition.eof", report_eof.to_string())
        // Keep up to a million records prefetched, as rdkafka_performance does: with
        // librdkafka's default (100000) the prefetch, not the broker, limits a fast consumer.
        .set("queued.min.messages", "1000000");
    for (key, value) in &args.consumer_props {
        config.set(key, value);
    }
    config.create().context("cannot create the consumer")
}

fn assignment(
    topic: &str,
    partitions: &[i32],
    from: StartAt,
) -> anyhow::Result<TopicPartitionList> {
    let offset = match from {
        StartAt::Beginning => Offset::Beginning,
        StartAt::End => Offset::End,
    };
    let mut list = TopicPartitionList::new();
    for &partition in partitions {
        list.add_partition_offset(topic, partition, offset)?;
    }
    Ok(list)
}

/// Polls until any stop condition holds for the run; returns this thread's record ages.
fn consume_until_done(consumer: &BaseConsumer, run: &Run) -> Latency {
    let mut age = Latency::new();
    while !run.stop.load(Relaxed) {
        let polled = consumer.poll(Duration::from_millis(100));
        // One clock read per record: on this hardware reading the clock is a visible part of
        // the per-record cost at millions of records per second.
        let now = run.start.elapsed();
        match polled {
            Some(Ok(message)) => run.count(&message, now, &mut age),
            Some(Err(KafkaError::PartitionEOF(partition))) => run.finish_partition(partition),
            Some(Err(error)) => {
                run.counters.error();
                let mut first = run.first_error.lock().expect("error lock");
                first.get_or_insert_with(|| describe_error(&error));
                // A failure that repeats (unknown topic, authorization) would not go away.
                run.stop.store(true, Relaxed);
            }
            None => {}
        }
        run.check_stop_conditions(now);
    }
    age
}

impl Run {
    fn count(&self, message: &BorrowedMessage<'_>, now: Duration, age: &mut Latency) {
        let claimed = self.claimed.fetch_add(1, Relaxed);
        if self.budget.records.is_some_and(|wanted| claimed >= wanted) {
            self.stop.store(true, Relaxed);
            return;
        }
        let now_nanos = (now.as_nanos() as u64).max(1);
        // Load first: a compare-exchange on every record would contend the cache line across
        // the consumers long after the first record.
        if self.first_record_nanos.load(Relaxed) == 0 {
            self.first_record_nanos
                .compare_exchange(0, now_nanos, Relaxed, Relaxed)
                .ok();
        }
        self.last_record_nanos.store(now_nanos, Relaxed);
        let bytes = message.payload_len() + message.key().map_or(0, <[u8]>::len);
        let now_ms = self.wall_clock_at_start_ms + now.as_millis() as i64;
        let age_micros = (message.timestamp().to_millis())
            .map(|timestamp| (now_ms - timestamp).max(0) as u64 * 1000);
        if let Some(micros) = age_micros {
            age.record(micros);
        }
        self.counters.record(bytes as u64, age_micros);
        if let Some(ends) = &self.ends {
            let end = ends.iter().find(|p| p.partition == message.partition());
            if end.is_some_and(|p| message.offset() + 1 >= p.high_watermark) {
                self.finish_partition(message.partition());
            }
        }
    }

    fn finish_partition(&self, partition: i32) {
        let Some(ends) = &self.ends else { return };
        let mut finished = self.finished_partitions.lock().expect("partition lock");
        finished.insert(partition);
        if finished.len() >= ends.len() {
            self.stop.store(true, Relaxed);
        }
    }

    fn check_stop_conditions(&self, now: Duration) {
        let records = self.counters.records();
        let idle_since = match self.last_record_nanos.load(Relaxed) {
            0 => Duration::ZERO,
            nanos => Duration::from_nanos(nanos),
        };
        if self.budget.exhausted(records, self.start + now)
            || now.saturating_sub(idle_since) >= self.idle_timeout
        {
            self.stop.store(true, Relaxed);
        }
    }
}
