//! The producing side shared by `perf produce` and `perf e2e`: a librdkafka producer whose
//! delivery callback measures send-to-acknowledgement latency, and the send loop that keeps
//! to the budget and the rate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use super::load::{Budget, Pacer};
use super::progress::Counters;
use super::report::Latency;
use crate::cli::common::describe_error;

/// How often (in records) the send loop serves delivery callbacks when it never has to wait.
const POLL_EVERY: u64 = 256;

/// Counts acknowledgements and measures their latency. The callbacks run on the thread that
/// polls the producer, which is the sending thread, so the histogram lock is uncontended.
pub struct AckContext {
    start: Instant,
    counters: Arc<Counters>,
    latency: Mutex<Latency>,
    first_error: Mutex<Option<String>>,
}

impl AckContext {
    pub fn new(start: Instant, counters: Arc<Counters>) -> AckContext {
        AckContext {
            start,
            counters,
            latency: Mutex::new(Latency::new()),
            first_error: Mutex::new(None),
        }
    }

    fn nanos_since_start(&self) -> u64 {
        self.nanos_at(Instant::now())
    }

    /// `at` in nanoseconds since the run started.
    fn nanos_at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_nanos() as u64
    }
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    /// When the record was handed to librdkafka: nanoseconds since the run started.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_at_nanos: usize) {
        match result {
            Ok(message) => {
                let micros = self
                    .nanos_since_start()
                    .saturating_sub(sent_at_nanos as u64)
                    / 1000;
                let bytes = message.payload_len() as u64;
                self.counters.record(bytes, Some(micros));
                self.latency
                    .lock()
                    .expect("latency lock poisoned")
                    .record(micros);
            }
            Err((error, _)) => {
                self.counters.error();
                let mut first = self.first_error.lock().expect("error lock poisoned");
                first.get_or_insert_with(|| describe_error(error));
            }
        }
    }
}

/// What one producer thread measured.
pub struct ProducerOutcome {
    pub sent: u64,
    pub latency: Latency,
    pub first_error: Option<String>,
}

pub type PerfProducer = BaseProducer<AckContext>;

pub fn create(config: &ClientConfig, context: AckContext) -> anyhow::Result<PerfProducer> {
    config
        .create_with_context(context)
        .context("cannot create the producer")
}

/// Sends records until the budget is spent, pacing them, then waits for every delivery report
/// (at most `flush_timeout`). `fill` writes record number `n`'s payload into the buffer just
/// before it is sent (librdkafka copies it).
pub fn send_all(
    producer: PerfProducer,
    topic: &str,
    budget: Budget,
    pacer: &Pacer,
    payload: &mut [u8],
    mut fill: impl FnMut(u64, &mut [u8]),
    flush_timeout: Duration,
) -> anyhow::Result<ProducerOutcome> {
    let mut sent = 0u64;
    loop {
        // One clock read per record (more only while waiting for the pacer): it decides the
        // budget, the pacing and the send time the latency is measured from.
        let mut now = Instant::now();
        if budget.exhausted(sent, now) {
            break;
        }
        let mut wait = pacer.wait_before(sent, now);
        while !wait.is_zero() {
            producer.poll(wait);
            now = Instant::now();
            wait = pacer.wait_before(sent, now);
        }
        fill(sent, payload);
        let sent_at = producer.context().nanos_at(now) as usize;
        let record = BaseRecord::<(), [u8], usize>::with_opaque_to(topic, sent_at).payload(payload);
        enqueue(&producer, record)?;
        sent += 1;
        if sent.is_multiple_of(POLL_EVERY) {
            producer.poll(Duration::ZERO);
        }
    }
    await_deliveries(&producer, flush_timeout)?;
    let context = producer.context();
    let latency = std::mem::replace(
        &mut *context.latency.lock().expect("latency lock poisoned"),
        Latency::new(),
    );
    let first_error = context
        .first_error
        .lock()
        .expect("error lock poisoned")
        .take();
    Ok(ProducerOutcome {
        sent,
        latency,
        first_error,
    })
}

/// Serves delivery reports until every record has one. Not `Producer::flush`: it lets
/// librdkafka serve the reports and then sleeps in a poll with nothing left to serve, which
/// adds up to 100 ms to the measured run.
fn await_deliveries(producer: &PerfProducer, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while producer.in_flight_count() > 0 {
        if Instant::now() >= deadline {
            bail!(
                "{} records were not acknowledged within {} ms",
                producer.in_flight_count(),
                timeout.as_millis()
            );
        }
        producer.poll(Duration::from_millis(1));
    }
    Ok(())
}

/// Hands a record to librdkafka, serving delivery reports while its queue is full.
fn enqueue<'a>(
    producer: &PerfProducer,
    mut record: BaseRecord<'a, (), [u8], usize>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                producer.poll(Duration::from_millis(1));
            }
            Err((error, _)) => bail!("cannot send: {}", describe_error(&error)),
        }
    }
}
