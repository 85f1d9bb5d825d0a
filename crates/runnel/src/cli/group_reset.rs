//! `runnel group reset-offsets`: compute new committed offsets for an inactive group, show
//! them, and (unless `--dry-run`) commit them.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::{ArgGroup, Args};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use super::common::{describe_error, find_topic, parse_timestamp, ConnArgs};
use super::group::{all_partitions, committed, group_info};
use super::output::{opt_num, print, print_json, Table};

pub const EXAMPLES: &str = "Examples:
  runnel group reset-offsets billing --topic orders --to-earliest --dry-run
  runnel group reset-offsets billing --topic orders:0,1 --to-offset 42
  runnel group reset-offsets billing --all-topics --to-datetime 2024-05-01T12:00:00
  runnel group reset-offsets billing --topic orders --shift-by -10

The group must have no active members. Partitions are given as TOPIC or TOPIC:P,P,...";

#[derive(Args)]
#[command(group = ArgGroup::new("scope").required(true).args(["topics", "all_topics"]))]
#[command(group = ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"]))]
pub struct ResetArgs {
    #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
    group: String,
    /// A topic, or TOPIC:P,P to pick partitions; repeatable.
    #[arg(long = "topic", value_name = "TOPIC[:P,...]", value_parser = parse_topic_spec)]
    topics: Vec<(String, Vec<i32>)>,
    /// Every partition the group has a committed offset for.
    #[arg(long)]
    all_topics: bool,
    /// To the log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// To the log end offset.
    #[arg(long)]
    to_latest: bool,
    /// To this offset (kept within the log's start and end).
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// To the first record at or after this time (ms, or YYYY-MM-DDTHH:MM:SS in UTC or with a
    /// Z / +HH:MM offset).
    #[arg(long, value_name = "TIME", value_parser = parse_timestamp)]
    to_datetime: Option<i64>,
    /// Move the committed offset by N (negative: back); kept within the log.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// Show the new offsets without committing them.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_topic_spec(s: &str) -> Result<(String, Vec<i32>), String> {
    let Some((topic, parts)) = s.split_once(':') else {
        return Ok((s.to_string(), Vec::new()));
    };
    let partitions = parts
        .split(',')
        .map(|p| p.trim().parse::<i32>().ok().filter(|p| *p >= 0))
        .collect::<Option<Vec<i32>>>()
        .ok_or_else(|| format!("expected TOPIC or TOPIC:P,P,..., got '{s}'"))?;
    Ok((topic.to_string(), partitions))
}

/// One partition's old and new committed offset.
struct Plan {
    topic: String,
    partition: i32,
    current: Option<i64>,
    new: i64,
}

pub fn run(conn: &ConnArgs, args: &ResetArgs) -> anyhow::Result<()> {
    let group = args.group.as_str();
    let consumer = conn.lookup_consumer(Some(group))?;
    conn.metadata(&consumer, None)?;
    if let Some(info) = group_info(conn, &consumer, group)? {
        if !(info.state == "Empty" || info.state == "Dead") {
            bail!(
                "group '{group}' is active (state {}, {} members); stop its consumers before resetting its offsets",
                info.state,
                info.members.len()
            );
        }
    }
    let scope = scope(conn, &consumer, args)?;
    let current = committed(conn, &consumer, group, scope.clone())?;
    let plans = plan(conn, &consumer, args, &scope, &current)?;
    if !args.dry_run {
        let mut tpl = TopicPartitionList::new();
        for p in &plans {
            tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.new))?;
        }
        consumer.commit(&tpl, CommitMode::Sync).map_err(|e| {
            anyhow::anyhow!(
                "cannot commit the new offsets of group '{group}': {}",
                describe_error(&e)
            )
        })?;
    }
    report(args, &plans)
}

/// The partitions to reset: those named by `--topic`, or all with a committed offset.
fn scope(
    conn: &ConnArgs,
    consumer: &BaseConsumer,
    args: &ResetArgs,
) -> anyhow::Result<TopicPartitionList> {
    let metadata = conn.metadata(consumer, None)?;
    let mut tpl = TopicPartitionList::new();
    if args.all_topics {
        let offsets = committed(conn, consumer, &args.group, all_partitions(&metadata))?;
        if offsets.is_empty() {
            bail!("group '{}' has no committed offsets", args.group);
        }
        for (topic, partition) in offsets.keys() {
            tpl.add_partition(topic, *partition);
        }
        return Ok(tpl);
    }
    for (topic, partitions) in &args.topics {
        let existing: Vec<i32> = find_topic(&metadata, topic)?
            .partitions()
            .iter()
            .map(|p| p.id())
            .collect();
        if let Some(p) = partitions.iter().find(|p| !existing.contains(p)) {
            bail!("topic '{topic}' has no partition {p}");
        }
        let chosen = if partitions.is_empty() {
            &existing
        } else {
            partitions
        };
        for p in chosen {
            tpl.add_partition(topic, *p);
        }
    }
    Ok(tpl)
}

fn plan(
    conn: &ConnArgs,
    consumer: &BaseConsumer,
    args: &ResetArgs,
    scope: &TopicPartitionList,
    current: &BTreeMap<(String, i32), i64>,
) -> anyhow::Result<Vec<Plan>> {
    let by_time = match args.to_datetime {
        Some(ts) => Some(offsets_at(conn, consumer, scope, ts)?),
        None => None,
    };
    let mut plans = Vec::new();
    for e in scope.elements() {
        let (topic, partition) = (e.topic().to_string(), e.partition());
        let (low, high) = consumer
            .fetch_watermarks(&topic, partition, conn.timeout())
            .map_err(|err| {
                anyhow::anyhow!(
                    "cannot read the offsets of {topic}[{partition}]: {}",
                    describe_error(&err)
                )
            })?;
        let key = (topic.clone(), partition);
        let now = current.get(&key).copied();
        let new = if args.to_earliest {
            low
        } else if args.to_latest {
            high
        } else if let Some(offset) = args.to_offset {
            offset
        } else if let Some(by_time) = &by_time {
            by_time.get(&key).copied().flatten().unwrap_or(high)
        } else {
            let shift = args.shift_by.context("one target flag is required")?;
            let base = now.with_context(|| {
                format!(
                    "cannot shift {topic}[{partition}]: the group has no committed offset there"
                )
            })?;
            base.saturating_add(shift)
        };
        plans.push(Plan {
            topic,
            partition,
            current: now,
            new: new.clamp(low, high),
        });
    }
    Ok(plans)
}

/// The first offset at or after `timestamp` per partition (`None`: no such record).
fn offsets_at(
    conn: &ConnArgs,
    consumer: &BaseConsumer,
    scope: &TopicPartitionList,
    timestamp: i64,
) -> anyhow::Result<BTreeMap<(String, i32), Option<i64>>> {
    let mut query = scope.clone();
    query.set_all_offsets(Offset::Offset(timestamp))?;
    let found = consumer
        .offsets_for_times(query, conn.timeout())
        .map_err(|e| anyhow::anyhow!("cannot look up offsets by time: {}", describe_error(&e)))?;
    Ok(found
        .elements()
        .iter()
        .map(|e| {
            (
                (e.topic().to_string(), e.partition()),
                e.offset().to_raw().filter(|o| *o >= 0),
            )
        })
        .collect())
}

fn report(args: &ResetArgs, plans: &[Plan]) -> anyhow::Result<()> {
    if args.json {
        let items: Vec<Value> = plans
            .iter()
            .map(|p| json!({"topic": p.topic, "partition": p.partition, "current_offset": p.current, "new_offset": p.new}))
            .collect();
        return print_json(
            &json!({"group": args.group, "dry_run": args.dry_run, "partitions": items}),
        );
    }
    let mut table = Table::new(&["TOPIC", "PARTITION", "CURRENT", "NEW"]);
    for p in plans {
        table.row(vec![
            p.topic.clone(),
            p.partition.to_string(),
            opt_num(p.current),
            p.new.to_string(),
        ]);
    }
    let summary = if args.dry_run {
        format!(
            "Dry run: the offsets of group '{}' were not changed\n",
            args.group
        )
    } else {
        format!(
            "Reset the offsets of group '{}' for {} partitions\n",
            args.group,
            plans.len()
        )
    };
    print(&format!("{}\n{summary}", table.render()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_specs_parse() {
        assert_eq!(parse_topic_spec("orders"), Ok(("orders".into(), vec![])));
        assert_eq!(
            parse_topic_spec("orders:0,2"),
            Ok(("orders".into(), vec![0, 2]))
        );
        assert!(parse_topic_spec("orders:x").is_err());
        assert!(parse_topic_spec("orders:-1").is_err());
    }
}
