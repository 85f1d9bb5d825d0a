//! `runnel topic create|list|describe|delete|alter-config|add-partitions`.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rdkafka::admin::{
    AdminClient, ConfigEntry, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication, TopicResult,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::metadata::MetadataTopic;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use serde_json::{json, Value};

use super::common::{check_reachable, describe_code, find_topic, parse_key_value, ConnArgs};
use super::output::{join_ids, print, print_json, Table};
use super::wire::{self, ConfigChange, Refusal};

type Admin = AdminClient<DefaultClientContext>;

pub const EXAMPLES: &str = "Examples:
  runnel topic create orders --partitions 6 --config segment.bytes=104857600
  runnel topic list
  runnel topic describe orders --json
  runnel topic alter-config orders --set flush.messages=1 --delete segment.ms
  runnel topic add-partitions orders --total 12
  runnel topic delete orders";

#[derive(Args)]
pub struct TopicArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Subcommand)]
enum TopicCommand {
    /// Create a topic.
    #[command(after_help = "Examples:
  runnel topic create orders
  runnel topic create orders --partitions 6 --config flush.messages=1
  runnel topic create orders --if-not-exists")]
    Create {
        /// Name of the new topic.
        name: String,
        /// Number of partitions (default: the broker's num.partitions).
        #[arg(long, short = 'p', value_parser = clap::value_parser!(i32).range(1..))]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long, short = 'r', value_parser = clap::value_parser!(i32).range(1..))]
        replication_factor: Option<i32>,
        /// A topic config override; repeatable.
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Succeed without doing anything if the topic exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topics with their partition counts.
    #[command(after_help = "Examples:
  runnel topic list
  runnel topic list --json --brokers broker1:9092")]
    List {
        /// Include internal topics such as __consumer_offsets.
        #[arg(long)]
        internal: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a topic's partitions (leader, replicas, offsets) and configs with their sources.
    #[command(after_help = "Examples:
  runnel topic describe orders
  runnel topic describe orders --json | jq '.partitions[].log_end_offset'")]
    Describe {
        name: String,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Delete topics and all their data.
    #[command(after_help = "Examples:
  runnel topic delete orders
  runnel topic delete orders invoices --if-exists")]
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
        /// Succeed for topics that do not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// Set or remove a topic's config overrides (the others are kept).
    #[command(after_help = "Examples:
  runnel topic alter-config orders --set flush.messages=1
  runnel topic alter-config orders --delete flush.messages --set segment.ms=3600000")]
    #[command(group = clap::ArgGroup::new("change").required(true).multiple(true).args(["set", "delete"]))]
    AlterConfig {
        name: String,
        /// Set an override; repeatable.
        #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Remove an override (back to the broker default); repeatable.
        #[arg(long, value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Grow a topic to a larger number of partitions.
    #[command(after_help = "Examples:
  runnel topic add-partitions orders --total 12")]
    AddPartitions {
        name: String,
        /// The new total number of partitions.
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        total: i32,
    },
}

pub async fn run(args: TopicArgs) -> anyhow::Result<()> {
    let conn = args.conn;
    let admin = conn.admin()?;
    let metadata = check_reachable(&conn, &admin)?;
    match args.command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            let partitions = partitions.unwrap_or(-1);
            let replication = TopicReplication::Fixed(replication_factor.unwrap_or(-1));
            let mut topic = NewTopic::new(&name, partitions, replication);
            for (k, v) in &configs {
                topic = topic.set(k, v);
            }
            let results = admin.create_topics([&topic], &conn.admin_opts()).await;
            let result = single(results.context("create topic")?)?;
            match result {
                Ok(_) => print(&format!("Created topic '{name}'\n")),
                Err(RDKafkaErrorCode::TopicAlreadyExists) if if_not_exists => {
                    print(&format!("Topic '{name}' already exists\n"))
                }
                Err(code) => bail!("cannot create topic '{name}': {}", describe_code(code)),
            }
        }
        TopicCommand::List { internal, json } => list(&metadata, internal, json),
        TopicCommand::Describe { name, json } => {
            let topic = find_topic(&metadata, &name)?;
            describe(&conn, &admin, topic, json).await
        }
        TopicCommand::Delete { names, if_exists } => delete(&conn, &admin, &names, if_exists).await,
        TopicCommand::AlterConfig { name, set, delete } => {
            find_topic(&metadata, &name)?;
            alter_config(&conn, &admin, &name, &set, &delete).await
        }
        TopicCommand::AddPartitions { name, total } => {
            let current = find_topic(&metadata, &name)?.partitions().len();
            add_partitions(&conn, &admin, &name, current, total).await
        }
    }
}

/// The one result of a single-topic admin request, without the topic name.
fn single(results: Vec<TopicResult>) -> anyhow::Result<Result<(), RDKafkaErrorCode>> {
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(Ok(())),
        Some(Err((_, code))) => Ok(Err(code)),
        None => bail!("the broker returned no result"),
    }
}

fn is_internal(name: &str) -> bool {
    name.starts_with("__")
}

fn list(metadata: &rdkafka::metadata::Metadata, internal: bool, json: bool) -> anyhow::Result<()> {
    let mut topics: Vec<&MetadataTopic> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && (internal || !is_internal(t.name())))
        .collect();
    topics.sort_by_key(|t| t.name());
    if json {
        let items: Vec<Value> = topics
            .iter()
            .map(|t| json!({"name": t.name(), "partitions": t.partitions().len()}))
            .collect();
        return print_json(&Value::Array(items));
    }
    let mut table = Table::new(&["TOPIC", "PARTITIONS"]);
    for t in topics {
        table.row(vec![t.name().to_string(), t.partitions().len().to_string()]);
    }
    print(&table.render())
}

/// Kafka's name of a config source, as kafka-configs prints it.
fn source_name(source: &ConfigSource) -> &'static str {
    match source {
        ConfigSource::Unknown => "UNKNOWN",
        ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
        ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
        ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
        ConfigSource::Default => "DEFAULT_CONFIG",
    }
}

fn config_value(entry: &ConfigEntry) -> Option<String> {
    if entry.is_sensitive {
        return Some("(sensitive)".to_string());
    }
    entry.value.clone()
}

async fn topic_configs(
    conn: &ConnArgs,
    admin: &Admin,
    name: &str,
) -> anyhow::Result<Vec<ConfigEntry>> {
    let spec = ResourceSpecifier::Topic(name);
    let results = admin
        .describe_configs([&spec], &conn.admin_opts())
        .await
        .with_context(|| format!("cannot describe the configs of topic '{name}'"))?;
    match results.into_iter().next() {
        Some(Ok(resource)) => {
            let mut entries = resource.entries;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(entries)
        }
        Some(Err(code)) => bail!(
            "cannot describe the configs of topic '{name}': {}",
            describe_code(code)
        ),
        None => bail!("the broker returned no configs for topic '{name}'"),
    }
}

async fn describe(
    conn: &ConnArgs,
    admin: &Admin,
    topic: &MetadataTopic,
    json: bool,
) -> anyhow::Result<()> {
    let name = topic.name();
    let mut partitions = Vec::new();
    for p in topic.partitions() {
        let (low, high) = admin
            .inner()
            .fetch_watermarks(name, p.id(), conn.timeout())
            .map(|(l, h)| (Some(l), Some(h)))
            .unwrap_or((None, None));
        partitions.push(json!({
            "partition": p.id(), "leader": p.leader(), "replicas": p.replicas(),
            "isr": p.isr(), "log_start_offset": low, "log_end_offset": high,
        }));
    }
    partitions.sort_by_key(|p| p["partition"].as_i64());
    let configs: Vec<Value> = topic_configs(conn, admin, name)
        .await?
        .iter()
        .map(|e| json!({"name": e.name, "value": config_value(e), "source": source_name(&e.source), "read_only": e.is_read_only}))
        .collect();
    let replication = topic.partitions().first().map_or(0, |p| p.replicas().len());
    let doc = json!({
        "name": name, "partition_count": partitions.len(),
        "replication_factor": replication, "partitions": partitions, "configs": configs,
    });
    if json {
        return print_json(&doc);
    }
    print(&render_description(&doc))
}

fn render_description(doc: &Value) -> String {
    let num = |v: &Value| {
        v.as_i64()
            .map_or_else(|| "-".to_string(), |n| n.to_string())
    };
    let ids = |v: &Value| {
        let ids: Vec<i32> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_i64()?.try_into().ok())
                    .collect()
            })
            .unwrap_or_default();
        join_ids(&ids)
    };
    let mut out = format!(
        "Topic: {}  Partitions: {}  Replication factor: {}\n\n",
        doc["name"].as_str().unwrap_or_default(),
        doc["partition_count"],
        doc["replication_factor"]
    );
    let mut parts = Table::new(&[
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "LOG-START",
        "LOG-END",
    ]);
    for p in doc["partitions"].as_array().into_iter().flatten() {
        parts.row(vec![
            num(&p["partition"]),
            num(&p["leader"]),
            ids(&p["replicas"]),
            ids(&p["isr"]),
            num(&p["log_start_offset"]),
            num(&p["log_end_offset"]),
        ]);
    }
    out.push_str(&parts.render());
    let mut configs = Table::new(&["CONFIG", "VALUE", "SOURCE"]);
    for c in doc["configs"].as_array().into_iter().flatten() {
        configs.row(vec![
            c["name"].as_str().unwrap_or_default().to_string(),
            c["value"].as_str().unwrap_or("(null)").to_string(),
            c["source"].as_str().unwrap_or_default().to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&configs.render());
    out
}

async fn delete(
    conn: &ConnArgs,
    admin: &Admin,
    names: &[String],
    if_exists: bool,
) -> anyhow::Result<()> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let results = admin
        .delete_topics(&refs, &conn.admin_opts())
        .await
        .context("cannot delete topics")?;
    let mut failures = Vec::new();
    let mut out = String::new();
    for result in results {
        match result {
            Ok(name) => out.push_str(&format!("Deleted topic '{name}'\n")),
            Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) if if_exists => {
                out.push_str(&format!("Topic '{name}' does not exist\n"));
            }
            Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                failures.push(format!("topic '{name}' does not exist"));
            }
            Err((name, code)) => {
                failures.push(format!(
                    "cannot delete topic '{name}': {}",
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

/// Changes only the named configs, with IncrementalAlterConfigs (through `wire`, as
/// rust-rdkafka offers only the legacy AlterConfigs, which replaces the whole override set and
/// loses concurrent changes). Deletes are checked against the topic's configs first: as in
/// kafka-configs, removing a config the topic does not have (a typo) is an error. With only
/// `--set` that round trip is skipped; the caller has checked that the topic exists.
async fn alter_config(
    conn: &ConnArgs,
    admin: &Admin,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> anyhow::Result<()> {
    if !delete.is_empty() {
        let configs = topic_configs(conn, admin, name).await?;
        let unknown: Vec<&str> = delete
            .iter()
            .filter(|key| !configs.iter().any(|e| &e.name == *key))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            bail!(
                "cannot alter the configs of topic '{name}': unknown config {}",
                unknown.join(", ")
            );
        }
    }
    let changes: Vec<ConfigChange> = delete
        .iter()
        .map(|key| ConfigChange::Delete(key.clone()))
        .chain(
            set.iter()
                .map(|(k, v)| ConfigChange::Set(k.clone(), v.clone())),
        )
        .collect();
    let (brokers, timeout, topic) = (conn.brokers.clone(), conn.timeout(), name.to_string());
    let outcome = tokio::task::spawn_blocking(move || {
        wire::alter_topic_configs(&brokers, timeout, &topic, &changes)
    })
    .await?
    .with_context(|| format!("cannot alter the configs of topic '{name}'"))?;
    if let Err(refusal) = outcome {
        bail!(
            "cannot alter the configs of topic '{name}': {}",
            describe_refusal(refusal)
        );
    }
    print(&format!("Updated the configs of topic '{name}'\n"))
}

/// The broker's own message where it gave one (it names the config and the reason), else the
/// CLI's words for the error code, as for the codes librdkafka reports.
fn describe_refusal(refusal: Refusal) -> String {
    refusal
        .message
        .filter(|message| !message.is_empty())
        .unwrap_or_else(|| {
            // librdkafka's codes for broker errors are Kafka's error codes.
            match RDKafkaRespErr::try_from(i32::from(refusal.error.code())) {
                Ok(code) => describe_code(RDKafkaErrorCode::from(code)),
                Err(_) => refusal.error.to_string(),
            }
        })
}

async fn add_partitions(
    conn: &ConnArgs,
    admin: &Admin,
    name: &str,
    current: usize,
    total: i32,
) -> anyhow::Result<()> {
    let total = usize::try_from(total).context("--total must be positive")?;
    if total <= current {
        bail!("topic '{name}' already has {current} partitions; --total must be larger");
    }
    let request = NewPartitions::new(name, total);
    let results = admin
        .create_partitions([&request], &conn.admin_opts())
        .await
        .with_context(|| format!("cannot add partitions to topic '{name}'"))?;
    if let Err(code) = single(results)? {
        bail!(
            "cannot add partitions to topic '{name}': {}",
            describe_code(code)
        );
    }
    print(&format!(
        "Topic '{name}' now has {total} partitions (was {current})\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::error::ResponseError;

    #[test]
    fn a_refusal_reads_as_the_brokers_message_or_else_its_error() {
        let refusal = |message: Option<&str>| Refusal {
            error: ResponseError::InvalidConfig,
            message: message.map(str::to_string),
        };
        let reason = "invalid value '-5' for segment.bytes";
        assert_eq!(describe_refusal(refusal(Some(reason))), reason);
        assert_eq!(describe_refusal(refusal(None)), "invalid configuration");
        assert_eq!(describe_refusal(refusal(Some(""))), "invalid configuration");
    }
}
