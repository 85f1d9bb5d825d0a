//! `runnel produce TOPIC`: one record per input line, from stdin or a file.
//!
//! Idempotent by default (`enable.idempotence=true`), which needs the InitProducerId API. A
//! cluster that does not advertise it (Runnel before transactions support) would make
//! librdkafka fail with a fatal error, so the tool asks the bootstrap broker for its API table
//! first and falls back to a non-idempotent producer with a one-line warning.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;

use super::common::{describe_error, find_topic, parse_key_value, ConnArgs};
use super::wire;

/// Records in flight before the tool waits for the oldest delivery report.
const IN_FLIGHT_MAX: usize = 10_000;

pub const EXAMPLES: &str = "Examples:
  echo hello | runnel produce greetings
  printf 'k1:v1\\nk2:v2\\n' | runnel produce orders --key-separator :
  runnel produce orders --file events.txt --header source=import --compression zstd
  runnel produce orders --partition 0 --acks 1 < lines.txt";

#[derive(Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic to write to (it must exist).
    topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(long, short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    /// Split each line at the first SEP into key and value.
    #[arg(long, short = 'K', value_name = "SEP", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    key_separator: Option<String>,
    /// A header added to every record; repeatable.
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    headers: Vec<(String, String)>,
    /// Write every record to this partition (default: by key hash, or spread when keyless).
    #[arg(long, short = 'p', value_parser = clap::value_parser!(i32).range(0..))]
    partition: Option<i32>,
    /// Compression codec of the record batches.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
    /// Acknowledgements to wait for. Idempotence needs `all`; other values turn it off.
    #[arg(long, value_enum, default_value_t = Acks::All)]
    acks: Acks,
    /// Do not use the idempotent producer.
    #[arg(long)]
    no_idempotence: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum Acks {
    /// The leader and all in-sync replicas.
    All,
    /// The leader only.
    #[value(name = "1")]
    Leader,
    /// None (fire and forget).
    #[value(name = "0")]
    None,
}

impl Compression {
    /// The value of librdkafka's `compression.type`.
    pub(super) fn config_value(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl Acks {
    /// The value of librdkafka's `acks`.
    pub(super) fn config_value(self) -> &'static str {
        match self {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    }
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let lookup = conn.lookup_consumer(None)?;
    let metadata = conn.metadata(&lookup, Some(&args.topic))?;
    let partitions = find_topic(&metadata, &args.topic)?.partitions().len();
    if let Some(p) = args.partition {
        if usize::try_from(p).is_ok_and(|p| p >= partitions) {
            bail!(
                "topic '{}' has no partition {p} (it has {partitions})",
                args.topic
            );
        }
    }
    drop(lookup);
    let producer = producer(&args)?;
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    // Records before a bad line are still delivered: flush whatever happened.
    let sent = send_lines(&args, &producer, input).await;
    let flushed = producer.flush(Timeout::After(conn.timeout()));
    let count = sent?;
    flushed.map_err(|e| anyhow::anyhow!("cannot flush the producer: {}", describe_error(&e)))?;
    eprintln!("runnel: produced {count} records to '{}'", args.topic);
    Ok(())
}

fn producer(args: &ProduceArgs) -> anyhow::Result<FutureProducer> {
    let idempotent = args.acks == Acks::All && !args.no_idempotence && supports_idempotence(args);
    let message_timeout_ms = args.conn.timeout_ms.max(1000) * 3;
    args.conn
        .client_config()
        .set("enable.idempotence", idempotent.to_string())
        .set("acks", args.acks.config_value())
        .set("compression.type", args.compression.config_value())
        .set("linger.ms", "5")
        .set("message.timeout.ms", message_timeout_ms.to_string())
        .create()
        .context("cannot create the producer")
}

/// Whether the bootstrap broker advertises InitProducerId. Unknown (the raw exchange failed,
/// e.g. on a TLS listener) counts as yes: librdkafka then reports any problem itself.
fn supports_idempotence(args: &ProduceArgs) -> bool {
    match wire::api_versions(&args.conn.brokers, args.conn.timeout()) {
        Ok(apis) if !apis.iter().any(|a| a.key == wire::INIT_PRODUCER_ID) => {
            eprintln!(
                "runnel: warning: the cluster does not support idempotent producers (no InitProducerId API); producing without idempotence"
            );
            false
        }
        _ => true,
    }
}

fn record_headers(pairs: &[(String, String)]) -> Option<OwnedHeaders> {
    if pairs.is_empty() {
        return None;
    }
    let headers = pairs.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
        h.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        })
    });
    Some(headers)
}

/// Enqueues one record per line, keeping at most [`IN_FLIGHT_MAX`] unacknowledged; returns
/// how many were delivered. The first failed delivery stops the tool.
async fn send_lines(
    args: &ProduceArgs,
    producer: &FutureProducer,
    input: Box<dyn BufRead>,
) -> anyhow::Result<u64> {
    let headers = record_headers(&args.headers);
    let mut in_flight: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut delivered = 0u64;
    for (index, line) in input.split(b'\n').enumerate() {
        let mut line = line.context("cannot read the input")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let (key, value) = split_key(&line, args.key_separator.as_deref())
            .with_context(|| format!("line {}: no key separator found", index + 1))?;
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&args.topic).payload(value);
        record.key = key;
        record.partition = args.partition;
        record.headers = headers.clone();
        in_flight.push_back(enqueue(producer, record)?);
        if in_flight.len() >= IN_FLIGHT_MAX {
            await_delivery(in_flight.pop_front().expect("not empty")).await?;
            delivered += 1;
        }
    }
    for delivery in in_flight {
        await_delivery(delivery).await?;
        delivered += 1;
    }
    Ok(delivered)
}

/// Key and value of a line; `None` when a separator is required and missing.
fn split_key<'a>(line: &'a [u8], separator: Option<&str>) -> Option<(Option<&'a [u8]>, &'a [u8])> {
    let Some(sep) = separator.map(str::as_bytes) else {
        return Some((None, line));
    };
    let at = line.windows(sep.len()).position(|w| w == sep)?;
    Some((Some(&line[..at]), &line[at + sep.len()..]))
}

/// Enqueues a record, waiting while librdkafka's local queue is full.
fn enqueue<'a>(
    producer: &FutureProducer,
    mut record: FutureRecord<'a, [u8], [u8]>,
) -> anyhow::Result<DeliveryFuture> {
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                record = r;
                producer.poll(Timeout::After(std::time::Duration::from_millis(10)));
            }
            Err((e, _)) => bail!("cannot send: {}", describe_error(&e)),
        }
    }
}

async fn await_delivery(delivery: DeliveryFuture) -> anyhow::Result<()> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => bail!("delivery failed: {}", describe_error(&e)),
        Err(_) => bail!("delivery failed: the producer was shut down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator() {
        assert_eq!(split_key(b"v", None), Some((None, &b"v"[..])));
        assert_eq!(
            split_key(b"k::v::w", Some("::")),
            Some((Some(&b"k"[..]), &b"v::w"[..]))
        );
        assert_eq!(split_key(b"kv", Some(":")), None);
    }
}
