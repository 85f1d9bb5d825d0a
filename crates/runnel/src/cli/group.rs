//! `runnel group list|describe|delete|reset-offsets`.
//!
//! rust-rdkafka has no admin call to list a group's committed offsets, so the tools read them
//! with a consumer that carries the group's id but never joins (OffsetFetch needs no
//! membership). The same consumer commits new offsets for `reset-offsets`, which the
//! coordinator accepts only while the group has no members, as with kafka-consumer-groups.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::groups::GroupInfo;
use rdkafka::metadata::Metadata;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use serde_json::{json, Value};

use super::common::{describe_code, describe_error, ConnArgs};
use super::group_reset::{self, ResetArgs};
use super::output::{opt_num, print, print_json, Table};

pub const EXAMPLES: &str = "Examples:
  runnel group list
  runnel group describe billing
  runnel group reset-offsets billing --topic orders --to-earliest --dry-run
  runnel group delete billing";

#[derive(Args)]
pub struct GroupArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Subcommand)]
enum GroupCommand {
    /// List consumer groups with their state and member count.
    #[command(after_help = "Examples:
  runnel group list
  runnel group list --json")]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a group's members and, per partition, committed offset, log end offset and lag.
    #[command(after_help = "Examples:
  runnel group describe billing
  runnel group describe billing --json | jq '[.offsets[].lag] | add'")]
    Describe {
        #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
        group: String,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Delete groups that have no members (and their committed offsets).
    #[command(after_help = "Examples:
  runnel group delete billing
  runnel group delete billing audit")]
    Delete {
        #[arg(required = true, value_parser = clap::builder::NonEmptyStringValueParser::new())]
        groups: Vec<String>,
    },
    /// Move an inactive group's committed offsets.
    #[command(after_help = group_reset::EXAMPLES)]
    ResetOffsets(ResetArgs),
}

pub async fn run(args: GroupArgs) -> anyhow::Result<()> {
    let conn = args.conn;
    match args.command {
        GroupCommand::List { json } => list(&conn, json),
        GroupCommand::Describe { group, json } => describe(&conn, &group, json),
        GroupCommand::Delete { groups } => delete(&conn, &groups).await,
        GroupCommand::ResetOffsets(reset) => group_reset::run(&conn, &reset),
    }
}

fn list(conn: &ConnArgs, json: bool) -> anyhow::Result<()> {
    let consumer = conn.lookup_consumer(None)?;
    conn.metadata(&consumer, None)?;
    let groups = consumer
        .fetch_group_list(None, conn.timeout())
        .map_err(|e| anyhow::anyhow!("cannot list groups: {}", describe_error(&e)))?;
    let mut groups: Vec<&GroupInfo> = groups.groups().iter().collect();
    groups.sort_by_key(|g| g.name());
    if json {
        let items: Vec<Value> = groups
            .iter()
            .map(|g| json!({"group": g.name(), "state": g.state(), "protocol_type": g.protocol_type(), "members": g.members().len()}))
            .collect();
        return print_json(&Value::Array(items));
    }
    let mut table = Table::new(&["GROUP", "STATE", "TYPE", "MEMBERS"]);
    for g in groups {
        table.row(vec![
            g.name().to_string(),
            g.state().to_string(),
            g.protocol_type().to_string(),
            g.members().len().to_string(),
        ]);
    }
    print(&table.render())
}

/// The group as ListGroups + DescribeGroups see it; `None` if the cluster does not know it.
pub(super) fn group_info(
    conn: &ConnArgs,
    consumer: &BaseConsumer,
    group: &str,
) -> anyhow::Result<Option<GroupDescription>> {
    let list = consumer
        .fetch_group_list(Some(group), conn.timeout())
        .map_err(|e| anyhow::anyhow!("cannot describe group '{group}': {}", describe_error(&e)))?;
    let Some(info) = list.groups().iter().find(|g| g.name() == group) else {
        return Ok(None);
    };
    let members = info
        .members()
        .iter()
        .map(|m| Member {
            id: m.id().to_string(),
            client_id: m.client_id().to_string(),
            host: m.client_host().to_string(),
            assignment: m.assignment().map(decode_assignment).unwrap_or_default(),
        })
        .collect();
    Ok(Some(GroupDescription {
        state: info.state().to_string(),
        protocol: info.protocol().to_string(),
        members,
    }))
}

/// A group's state (Kafka's names: Empty, Stable, PreparingRebalance, ...), its assignment
/// strategy and its members.
pub(super) struct GroupDescription {
    pub state: String,
    pub protocol: String,
    pub members: Vec<Member>,
}

/// One group member and the partitions assigned to it.
pub(super) struct Member {
    id: String,
    client_id: String,
    host: String,
    assignment: Vec<(String, Vec<i32>)>,
}

/// Decodes a consumer-protocol assignment (version i16, [topic string, [partition i32]],
/// user data); anything malformed or from another protocol type decodes as empty.
fn decode_assignment(bytes: &[u8]) -> Vec<(String, Vec<i32>)> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (b.len() >= n).then(|| b.split_at(n))?;
        *b = tail;
        Some(head)
    }
    fn i32_at(b: &mut &[u8]) -> Option<i32> {
        Some(i32::from_be_bytes(take(b, 4)?.try_into().ok()?))
    }
    let mut b = bytes;
    let mut decode = || -> Option<Vec<(String, Vec<i32>)>> {
        take(&mut b, 2)?;
        let topics = usize::try_from(i32_at(&mut b)?).ok()?;
        let mut out = Vec::new();
        for _ in 0..topics.min(b.len()) {
            let len = usize::from(u16::from_be_bytes(take(&mut b, 2)?.try_into().ok()?));
            let topic = String::from_utf8_lossy(take(&mut b, len)?).into_owned();
            let n = usize::try_from(i32_at(&mut b)?).ok()?;
            let partitions = (0..n.min(b.len()))
                .map(|_| i32_at(&mut b))
                .collect::<Option<_>>()?;
            out.push((topic, partitions));
        }
        Some(out)
    };
    decode().unwrap_or_default()
}

/// The group's committed offsets among `tpl`'s partitions, by (topic, partition).
pub(super) fn committed(
    conn: &ConnArgs,
    consumer: &BaseConsumer,
    group: &str,
    tpl: TopicPartitionList,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    if tpl.count() == 0 {
        return Ok(BTreeMap::new());
    }
    let fetched = consumer
        .committed_offsets(tpl, conn.timeout())
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read the committed offsets of group '{group}': {}",
                describe_error(&e)
            )
        })?;
    Ok(fetched
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
            _ => None,
        })
        .collect())
}

/// Every partition of every non-internal topic.
pub(super) fn all_partitions(metadata: &Metadata) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for t in metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.name().starts_with("__"))
    {
        for p in t.partitions() {
            tpl.add_partition(t.name(), p.id());
        }
    }
    tpl
}

fn describe(conn: &ConnArgs, group: &str, json: bool) -> anyhow::Result<()> {
    let consumer = conn.lookup_consumer(Some(group))?;
    let metadata = conn.metadata(&consumer, None)?;
    let info = group_info(conn, &consumer, group)?;
    let offsets = committed(conn, &consumer, group, all_partitions(&metadata))?;
    let GroupDescription {
        state,
        protocol,
        members,
    } = match info {
        Some(info) => info,
        None if offsets.is_empty() => bail!("group '{group}' does not exist"),
        None => GroupDescription {
            state: "Empty".to_string(),
            protocol: String::new(),
            members: Vec::new(),
        },
    };
    let mut owners: BTreeMap<(String, i32), &Member> = BTreeMap::new();
    for m in &members {
        for (topic, partitions) in &m.assignment {
            owners.extend(partitions.iter().map(|p| ((topic.clone(), *p), m)));
        }
    }
    let mut keys: Vec<(String, i32)> = offsets.keys().chain(owners.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    let rows: Vec<Value> = keys
        .into_iter()
        .map(|(topic, p)| {
            let end = consumer
                .fetch_watermarks(&topic, p, conn.timeout())
                .ok()
                .map(|(_, h)| h);
            let committed = offsets.get(&(topic.clone(), p)).copied();
            let lag = committed.zip(end).map(|(c, e)| (e - c).max(0));
            let member = owners.get(&(topic.clone(), p)).map(|m| m.id.clone());
            json!({"topic": topic, "partition": p, "committed_offset": committed,
                   "log_end_offset": end, "lag": lag, "member_id": member})
        })
        .collect();
    let members: Vec<Value> = members
        .iter()
        .map(|m| {
            let assignment: Vec<Value> = m.assignment.iter().map(|(t, ps)| json!({"topic": t, "partitions": ps})).collect();
            json!({"member_id": m.id, "client_id": m.client_id, "host": m.host, "assignment": assignment})
        })
        .collect();
    let doc = json!({"group": group, "state": state, "protocol": protocol, "members": members, "offsets": rows});
    if json {
        return print_json(&doc);
    }
    print(&render_description(&doc))
}

fn render_description(doc: &Value) -> String {
    let s = |v: &Value| {
        v.as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("-")
            .to_string()
    };
    let n = |v: &Value| opt_num(v.as_i64());
    let members = doc["members"].as_array().map_or(&[][..], Vec::as_slice);
    let mut out = format!(
        "Group: {}  State: {}  Protocol: {}  Members: {}\n\n",
        s(&doc["group"]),
        s(&doc["state"]),
        s(&doc["protocol"]),
        members.len()
    );
    let mut offsets = Table::new(&[
        "TOPIC",
        "PARTITION",
        "COMMITTED",
        "LOG-END",
        "LAG",
        "MEMBER",
    ]);
    for r in doc["offsets"].as_array().into_iter().flatten() {
        offsets.row(vec![
            s(&r["topic"]),
            n(&r["partition"]),
            n(&r["committed_offset"]),
            n(&r["log_end_offset"]),
            n(&r["lag"]),
            s(&r["member_id"]),
        ]);
    }
    out.push_str(&offsets.render());
    if !members.is_empty() {
        let mut table = Table::new(&["MEMBER", "CLIENT-ID", "HOST", "PARTITIONS"]);
        for m in members {
            let parts: Vec<String> = m["assignment"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    format!(
                        "{}:{}",
                        s(&a["topic"]),
                        a["partitions"].as_array().map_or(String::new(), |ps| ps
                            .iter()
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join(","))
                    )
                })
                .collect();
            table.row(vec![
                s(&m["member_id"]),
                s(&m["client_id"]),
                s(&m["host"]),
                parts.join(" "),
            ]);
        }
        out.push('\n');
        out.push_str(&table.render());
    }
    out
}

async fn delete(conn: &ConnArgs, groups: &[String]) -> anyhow::Result<()> {
    let admin = conn.admin()?;
    super::common::check_reachable(conn, &admin)?;
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let results = admin
        .delete_groups(&names, &conn.admin_opts())
        .await
        .context("cannot delete groups")?;
    let mut out = String::new();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(name) => out.push_str(&format!("Deleted group '{name}'\n")),
            Err((name, RDKafkaErrorCode::GroupIdNotFound)) => {
                failures.push(format!("group '{name}' does not exist"));
            }
            Err((name, RDKafkaErrorCode::NonEmptyGroup)) => {
                failures.push(format!(
                    "group '{name}' has active members; stop them first"
                ));
            }
            Err((name, code)) => {
                failures.push(format!(
                    "cannot delete group '{name}': {}",
                    describe_code(code)
                ));
            }
        }
    }
    print(&out)?;
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}
