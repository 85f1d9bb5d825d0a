//! `runnel perf e2e`: end-to-end latency, as Kafka's EndToEndLatency tool measures it. A
//! producer stamps each record with its send time; a consumer in the same process, already
//! positioned at the end of every partition, reads them back and records how long each took
//! from the producer's hand to the consumer's. The producer's acknowledgement latency is
//! reported beside it.
//!
//! Record layout: 8 bytes of run id (so records of other runs on the topic are skipped), 8
//! bytes of send time in microseconds since the Unix epoch (big-endian), then filler.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::Producer;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::load::{
    parse_duration, random_payload, rate_per_worker, throughput_setting, Budget, OutputArgs, Pacer,
};
use super::producer::{self, AckContext, PerfProducer};
use super::progress::{Counters, Progress};
use super::report::{Latency, Report};
use super::topic_setup::{ensure_topic, partition_offsets, PartitionOffsets};
use crate::cli::common::{describe_error, ConnArgs};
use crate::cli::produce::{Acks, Compression};

pub const EXAMPLES: &str = "Examples:
  runnel perf e2e --topic latency                          # 10000 records at 1000/s
  runnel perf e2e --topic latency --duration 1m --throughput 5000 --acks 1
  runnel perf e2e --topic latency --num-records 100000 --throughput -1 --json   # under full load";

/// The run id and the send time.
const STAMP_LEN: usize = 16;

/// Records sent when neither `--num-records` nor `--duration` is given.
const DEFAULT_RECORDS: u64 = 10_000;

/// How long the consumer reads before the producer starts, so that connecting and the first
/// fetch are not counted as latency.
const CONSUMER_WARM_UP: Duration = Duration::from_millis(500);

#[derive(Args)]
pub struct EndToEndArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic to write to and read from; created with --partitions when it does not exist.
    #[arg(long)]
    topic: String,
    /// Records to send [default: 10000 unless --duration].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "duration")]
    num_records: Option<u64>,
    /// Send for this long instead of a count.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    duration: Option<Duration>,
    /// Size of each record's value in bytes (at least 16: the stamp).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(STAMP_LEN as i64..=100_000_000))]
    record_size: u32,
    /// Records per second; -1 for as fast as possible (latency under full load).
    #[arg(long, default_value_t = 1000.0, allow_negative_numbers = true)]
    throughput: f64,
    /// Partitions of the topic when this run creates it [default: 1].
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: Option<i32>,
    /// Acknowledgements the producer waits for.
    #[arg(long, value_enum, default_value_t = Acks::All)]
    acks: Acks,
    /// Compression codec of the record batches.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
    /// How long the producer waits to fill a batch (0: send at once, for the lowest latency).
    #[arg(long, default_value_t = 0)]
    linger_ms: u32,
    /// Give up on records that have not arrived this long after the last one did.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    idle_timeout: Duration,
    #[command(flatten)]
    output: OutputArgs,
}

/// The consumer's side of the run.
struct Receiver {
    run_id: u64,
    counters: Arc<Counters>,
    /// How many records the producer had acknowledged once it finished (`u64::MAX` while it
    /// runs: the producer is done once this is set).
    expected: AtomicU64,
}

pub fn run(args: EndToEndArgs) -> anyhow::Result<()> {
    ensure_topic(&args.conn, &args.topic, args.partitions)?;
    let partitions = partition_offsets(&args.conn, &args.topic)?;
    let receiver = Arc::new(Receiver {
        run_id: u64::from_be_bytes(random_payload(8).try_into().expect("8 bytes")),
        counters: Arc::new(Counters::default()),
        expected: AtomicU64::new(u64::MAX),
    });
    let consumer = create_consumer(&args, &partitions)?;
    let progress = Progress::start(receiver.counters.clone(), args.output.progress_interval());
    let (ready, consumer_ready) = mpsc::channel();
    let (outcome, end_to_end, elapsed) = std::thread::scope(|scope| {
        let reader = {
            let receiver = receiver.clone();
            let idle_timeout = args.idle_timeout;
            scope.spawn(move || receive_all(&consumer, &receiver, idle_timeout, ready))
        };
        let outcome = connected_producer(&args).and_then(|(producer, acked)| {
            consumer_ready.recv().ok();
            let start = Instant::now();
            let sent = produce_stamped(&args, producer, start, receiver.run_id)?;
            Ok((sent, acked, start))
        });
        let delivered = outcome.as_ref().map_or(0, |(_, acked, _)| acked.records());
        receiver.expected.store(delivered, Release);
        let end_to_end = reader.join().expect("the consumer thread panicked");
        let elapsed = outcome
            .as_ref()
            .map_or(Duration::ZERO, |(_, _, start)| start.elapsed());
        (outcome, end_to_end, elapsed)
    });
    progress.finish();
    let (outcome, acked, _) = outcome?;
    let report = Report {
        mode: "e2e",
        topic: args.topic.clone(),
        settings: settings(&args, partitions.len()),
        records: receiver.counters.records(),
        bytes: receiver.counters.bytes(),
        errors: acked.errors(),
        elapsed,
        latencies: vec![
            ("end_to_end", end_to_end.summary()),
            ("ack", outcome.latency.summary()),
        ],
    };
    report.print(args.output.json)?;
    if let Some(error) = outcome.first_error {
        bail!("{} records were not delivered: {error}", acked.errors());
    }
    let (received, delivered) = (report.records, acked.records());
    if received < delivered {
        bail!(
            "{} of {delivered} acknowledged records never reached the consumer (waited {} ms)",
            delivered - received,
            args.idle_timeout.as_millis()
        );
    }
    Ok(())
}

fn settings(args: &EndToEndArgs, partitions: usize) -> Vec<(&'static str, String)> {
    vec![
        ("partitions", partitions.to_string()),
        ("record_size", args.record_size.to_string()),
        ("acks", args.acks.config_value().to_string()),
        ("compression", args.compression.config_value().to_string()),
        ("linger_ms", args.linger_ms.to_string()),
        ("throughput", throughput_setting(args.throughput)),
    ]
}

/// A producer already connected to the topic's leaders, so that connecting is not counted as
/// the first records' latency; with the counters its acknowledgements go to.
fn connected_producer(args: &EndToEndArgs) -> anyhow::Result<(PerfProducer, Arc<Counters>)> {
    let acked = Arc::new(Counters::default());
    let mut config = args.conn.client_config();
    config
        .set("acks", args.acks.config_value())
        .set("compression.type", args.compression.config_value())
        .set("linger.ms", args.linger_ms.to_string());
    let producer = producer::create(&config, AckContext::new(Instant::now(), acked.clone()))?;
    Producer::client(&producer)
        .fetch_metadata(Some(&args.topic), args.conn.timeout())
        .map_err(|e| args.conn.unreachable(&e))?;
    Ok((producer, acked))
}

/// Produces the stamped records at the requested rate and waits for their acknowledgements.
fn produce_stamped(
    args: &EndToEndArgs,
    producer: PerfProducer,
    start: Instant,
    run_id: u64,
) -> anyhow::Result<producer::ProducerOutcome> {
    let records = match (args.num_records, args.duration) {
        (None, None) => Some(DEFAULT_RECORDS),
        (records, _) => records,
    };
    let budget = Budget::new(records, args.duration, start);
    let pacer = Pacer::new(start, rate_per_worker(args.throughput, 1));
    let mut payload = random_payload(args.record_size as usize);
    payload[..8].copy_from_slice(&run_id.to_be_bytes());
    let flush_timeout = args.conn.timeout().max(Duration::from_secs(30));
    producer::send_all(
        producer,
        &args.topic,
        budget,
        &pacer,
        &mut payload,
        |_, payload| payload[8..STAMP_LEN].copy_from_slice(&now_micros().to_be_bytes()),
        flush_timeout,
    )
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A consumer positioned at the current end of every partition, so it sees exactly the
/// records produced from now on.
fn create_consumer(
    args: &EndToEndArgs,
    partitions: &[PartitionOffsets],
) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = args
        .conn
        .client_config()
        .set(
            "group.id",
            format!("runnel-perf-e2e-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .context("cannot create the consumer")?;
    let mut assignment = TopicPartitionList::new();
    for p in partitions {
        assignment.add_partition_offset(
            &args.topic,
            p.partition,
            Offset::Offset(p.high_watermark),
        )?;
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}

/// Reads until every acknowledged record has arrived, or none arrived for `idle_timeout`
/// after the producer finished. Returns the end-to-end latencies.
fn receive_all(
    consumer: &BaseConsumer,
    receiver: &Receiver,
    idle_timeout: Duration,
    ready: mpsc::Sender<()>,
) -> Latency {
    let mut latency = Latency::new();
    let warm_up_until = Instant::now() + CONSUMER_WARM_UP;
    let mut ready = Some(ready);
    let mut last_arrival = Instant::now();
    loop {
        if ready.is_some() && Instant::now() >= warm_up_until {
            ready.take().map(|r| r.send(()));
            last_arrival = Instant::now();
        }
        let expected = receiver.expected.load(Acquire);
        if expected != u64::MAX
            && (receiver.counters.records() >= expected || last_arrival.elapsed() >= idle_timeout)
        {
            return latency;
        }
        match consumer.poll(Duration::from_millis(5)) {
            Some(Ok(message)) => {
                let Some(sent_micros) = stamp(message.payload(), receiver.run_id) else {
                    continue;
                };
                let micros = now_micros().saturating_sub(sent_micros);
                latency.record(micros);
                receiver
                    .counters
                    .record(message.payload_len() as u64, Some(micros));
                last_arrival = Instant::now();
            }
            // Transient (a reconnect): librdkafka retries by itself.
            Some(Err(error)) => {
                tracing::debug!(error = %describe_error(&error), "e2e consumer error")
            }
            None => {}
        }
    }
}

/// The send time of a record of this run.
fn stamp(payload: Option<&[u8]>, run_id: u64) -> Option<u64> {
    let payload = payload?.get(..STAMP_LEN)?;
    let (id, sent) = payload.split_at(8);
    (u64::from_be_bytes(id.try_into().ok()?) == run_id)
        .then(|| u64::from_be_bytes(sent.try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_runs_records_carry_a_stamp() {
        let mut payload = vec![0u8; 20];
        payload[..8].copy_from_slice(&7u64.to_be_bytes());
        payload[8..16].copy_from_slice(&123_456u64.to_be_bytes());
        assert_eq!(stamp(Some(&payload), 7), Some(123_456));
        assert_eq!(stamp(Some(&payload), 8), None);
        assert_eq!(stamp(Some(&payload[..10]), 7), None);
        assert_eq!(stamp(None, 7), None);
    }
}
