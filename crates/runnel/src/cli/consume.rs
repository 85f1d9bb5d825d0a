//! `runnel consume TOPIC`: print records, one line each, from a chosen position or as a member
//! of a consumer group.
//!
//! Without `--group` the tool assigns the partitions itself (no group membership, nothing
//! committed). With `--group` it subscribes, so the group's committed offsets decide where it
//! starts (`--from beginning|end` only applies when there are none), and it commits what it
//! printed when it stops.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;

use super::common::{describe_error, find_topic, parse_timestamp, ConnArgs};
use super::format::{record_json, Template};

pub const EXAMPLES: &str = "Examples:
  runnel consume orders --from beginning --exit-at-end
  runnel consume orders --from -10 --format '{partition}:{offset} {key}={value}'
  runnel consume orders --from @2024-05-01T12:00:00 --json --count 100
  runnel consume orders --group billing          # follow as a member of group billing

Template fields: {topic} {partition} {offset} {timestamp} {key} {value} {headers}";

/// Where reading starts in each partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    End,
    Offset(i64),
    /// The first record with a timestamp at or after this (ms since the epoch).
    Timestamp(i64),
    /// The last N records of each partition.
    Tail(i64),
}

fn parse_start(s: &str) -> Result<StartAt, String> {
    let bad = || format!("expected beginning, end, OFFSET, @TIMESTAMP or -N, got '{s}'");
    match s {
        "beginning" => Ok(StartAt::Beginning),
        "end" => Ok(StartAt::End),
        _ if s.starts_with('@') => Ok(StartAt::Timestamp(parse_timestamp(&s[1..])?)),
        _ if s.starts_with('-') => match s[1..].parse::<i64>() {
            Ok(n) if n > 0 => Ok(StartAt::Tail(n)),
            _ => Err(bad()),
        },
        _ => s.parse::<i64>().map(StartAt::Offset).map_err(|_| bad()),
    }
}

#[derive(Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic to read.
    topic: String,
    /// Start position: beginning, end, an OFFSET, @TIMESTAMP (ms, or YYYY-MM-DDTHH:MM:SS in UTC
    /// or with a Z / +HH:MM offset),
    /// or -N for the last N records of each partition. Default: end, or the group's committed
    /// offsets with --group.
    #[arg(long, short = 'o', allow_hyphen_values = true, value_parser = parse_start, value_name = "POSITION")]
    from: Option<StartAt>,
    /// Read only this partition.
    #[arg(long, short = 'p', value_parser = clap::value_parser!(i32).range(0..), conflicts_with = "group")]
    partition: Option<i32>,
    /// Consume as a member of this group and commit the printed offsets on exit.
    #[arg(long, short = 'g', value_parser = clap::builder::NonEmptyStringValueParser::new())]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(long, short = 'c', value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Keep waiting for new records (the default).
    #[arg(long, overrides_with = "exit_at_end")]
    follow: bool,
    /// Stop once every partition has been read to its end.
    #[arg(long, short = 'e', overrides_with = "follow")]
    exit_at_end: bool,
    /// Output template (one line per record), e.g. '{key}={value}'. Default: '{value}'.
    #[arg(long, value_parser = Template::parse, conflicts_with = "json", value_name = "TEMPLATE")]
    format: Option<Template>,
    /// Print each record as a JSON object on its own line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    if args.group.is_some() && !matches!(args.from, None | Some(StartAt::Beginning | StartAt::End))
    {
        bail!("with --group, --from can only be beginning or end (where to start when the group has no committed offset); move a group with `runnel group reset-offsets`");
    }
    let consumer = consumer(&args)?;
    let metadata = conn.metadata(&consumer, Some(&args.topic))?;
    let partitions: Vec<i32> = find_topic(&metadata, &args.topic)?
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    match (&args.group, args.partition) {
        (Some(_), _) => consumer
            .subscribe(&[&args.topic])
            .context("cannot subscribe")?,
        (None, Some(p)) if !partitions.contains(&p) => {
            bail!("topic '{}' has no partition {p}", args.topic)
        }
        (None, Some(p)) => assign(&args, &consumer, &[p])?,
        (None, None) => assign(&args, &consumer, &partitions)?,
    }
    let stopped = interrupted_flag();
    let result = consume_loop(&args, &consumer, &stopped);
    if args.group.is_some() {
        commit_printed(&consumer)?;
    }
    result
}

fn consumer(args: &ConsumeArgs) -> anyhow::Result<BaseConsumer> {
    let reset = match args.from {
        Some(StartAt::Beginning) => "earliest",
        _ => "latest",
    };
    let mut cfg = args.conn.client_config();
    match &args.group {
        Some(group) => cfg
            .set("group.id", group)
            // Commit only what was printed: offsets are stored after each record is written.
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false"),
        None => cfg
            .set("group.id", format!("runnel-cli-{}", std::process::id()))
            .set("enable.auto.commit", "false"),
    };
    cfg.set("auto.offset.reset", reset)
        .set("enable.partition.eof", "true")
        .set("allow.auto.create.topics", "false")
        .create()
        .context("cannot create the consumer")
}

/// Assigns `partitions` at the positions `--from` asks for.
fn assign(args: &ConsumeArgs, consumer: &BaseConsumer, partitions: &[i32]) -> anyhow::Result<()> {
    let topic = args.topic.as_str();
    let timeout = args.conn.timeout();
    let watermarks = |p: i32| {
        consumer.fetch_watermarks(topic, p, timeout).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the offsets of {topic}[{p}]: {}",
                describe_error(&e)
            )
        })
    };
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        let offset = match args.from.unwrap_or(StartAt::End) {
            StartAt::Beginning => Offset::Beginning,
            StartAt::End => Offset::End,
            StartAt::Offset(n) => {
                let (low, high) = watermarks(p)?;
                Offset::Offset(n.clamp(low, high))
            }
            StartAt::Tail(n) => {
                let (low, high) = watermarks(p)?;
                Offset::Offset(high.saturating_sub(n).max(low))
            }
            StartAt::Timestamp(ts) => Offset::Offset(ts),
        };
        tpl.add_partition_offset(topic, p, offset)?;
    }
    if matches!(args.from, Some(StartAt::Timestamp(_))) {
        // Partitions with no record at or after the time come back as End.
        tpl = consumer.offsets_for_times(tpl, timeout).map_err(|e| {
            anyhow::anyhow!("cannot look up offsets by time: {}", describe_error(&e))
        })?;
    }
    consumer.assign(&tpl).context("cannot assign partitions")
}

/// Set on SIGINT or SIGTERM (`kill`, `timeout`, a service manager) so the loop can stop cleanly
/// (and, with a group, commit what it printed and leave the group), as Kafka's tools do.
fn interrupted_flag() -> Arc<AtomicBool> {
    use tokio::signal::unix::{signal, SignalKind};
    let flag = Arc::new(AtomicBool::new(false));
    let set = Arc::clone(&flag);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let terminate = signal(SignalKind::terminate());
            let interrupt = signal(SignalKind::interrupt());
            ready_tx.send(()).ok();
            let (Ok(mut terminate), Ok(mut interrupt)) = (terminate, interrupt) else {
                return;
            };
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            set.store(true, Ordering::SeqCst);
        });
    });
    // The handlers are in place before the first record is printed.
    ready_rx.recv().ok();
    flag
}

/// Whether every assigned partition has reported its end (and something is assigned).
fn all_at_end(consumer: &BaseConsumer, at_end: &BTreeSet<i32>) -> bool {
    let Ok(assignment) = consumer.assignment() else {
        return false;
    };
    let elements = assignment.elements();
    !elements.is_empty() && elements.iter().all(|e| at_end.contains(&e.partition()))
}

fn consume_loop(
    args: &ConsumeArgs,
    consumer: &BaseConsumer,
    stopped: &AtomicBool,
) -> anyhow::Result<()> {
    let template = args
        .format
        .clone()
        .unwrap_or_else(|| Template::parse("{value}").expect("valid"));
    let mut stdout = std::io::stdout().lock();
    let mut at_end = BTreeSet::new();
    let mut printed = 0u64;
    let mut line = Vec::new();
    while !stopped.load(Ordering::SeqCst) {
        let message = match consumer.poll(Duration::from_millis(100)) {
            None => None,
            Some(Ok(m)) => Some(m),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
                None
            }
            Some(Err(e)) if is_transient(&e) => {
                eprintln!("runnel: warning: {}", describe_error(&e));
                None
            }
            Some(Err(e)) => bail!(
                "cannot consume from '{}': {}",
                args.topic,
                describe_error(&e)
            ),
        };
        let Some(m) = message else {
            if args.exit_at_end && all_at_end(consumer, &at_end) {
                break;
            }
            continue;
        };
        at_end.remove(&m.partition());
        line.clear();
        render(args, &template, &m, &mut line);
        if !write_line(&mut stdout, &line)? {
            break;
        }
        if args.group.is_some() {
            consumer
                .store_offset_from_message(&m)
                .context("cannot store the offset")?;
        }
        printed += 1;
        if args.count.is_some_and(|c| printed >= c) {
            break;
        }
    }
    Ok(())
}

fn render(args: &ConsumeArgs, template: &Template, m: &BorrowedMessage<'_>, out: &mut Vec<u8>) {
    if args.json {
        out.extend_from_slice(record_json(m).to_string().as_bytes());
        out.push(b'\n');
    } else {
        template.render(m, out);
    }
}

/// Writes and flushes one line; `false` when stdout was closed (`| head`), which ends the run.
fn write_line(stdout: &mut impl Write, line: &[u8]) -> anyhow::Result<bool> {
    match stdout.write_all(line).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

/// Errors librdkafka recovers from by itself (it reconnects); worth a warning, not an exit.
fn is_transient(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown)
    )
}

/// Commits the offsets stored for printed records (nothing printed: nothing to commit).
fn commit_printed(consumer: &BaseConsumer) -> anyhow::Result<()> {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => Ok(()),
        Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => Ok(()),
        Err(e) => bail!("cannot commit the group's offsets: {}", describe_error(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse() {
        assert_eq!(parse_start("beginning"), Ok(StartAt::Beginning));
        assert_eq!(parse_start("end"), Ok(StartAt::End));
        assert_eq!(parse_start("42"), Ok(StartAt::Offset(42)));
        assert_eq!(parse_start("-5"), Ok(StartAt::Tail(5)));
        assert_eq!(parse_start("@1000"), Ok(StartAt::Timestamp(1000)));
        assert_eq!(
            parse_start("@1970-01-01T00:00:01"),
            Ok(StartAt::Timestamp(1000))
        );
        assert!(parse_start("-0").is_err());
        assert!(parse_start("middle").is_err());
    }
}
