//! The topic a perf run works on: created when a producing run finds it missing, and its
//! partitions with their offsets for the consuming side.

use anyhow::bail;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::cli::block_on;
use crate::cli::common::{describe_code, find_topic, ConnArgs};

/// A partition's offsets when the run started.
#[derive(Clone, Copy, Debug)]
pub struct PartitionOffsets {
    pub partition: i32,
    pub log_start: i64,
    pub high_watermark: i64,
}

/// The topic's partition count. A missing topic is created with `partitions` (default 1) and
/// the cluster's default replication factor; an existing one keeps its own count.
pub fn ensure_topic(conn: &ConnArgs, topic: &str, partitions: Option<i32>) -> anyhow::Result<i32> {
    let lookup = conn.lookup_consumer(None)?;
    let metadata = conn.metadata(&lookup, Some(topic))?;
    if let Ok(found) = find_topic(&metadata, topic) {
        let existing = found.partitions().len() as i32;
        if partitions.is_some_and(|wanted| wanted != existing) {
            eprintln!(
                "runnel: warning: topic '{topic}' already exists with {existing} partitions; --partitions is ignored"
            );
        }
        return Ok(existing);
    }
    let partitions = partitions.unwrap_or(1);
    create_topic(conn, topic, partitions)?;
    eprintln!("runnel: created topic '{topic}' with {partitions} partitions");
    Ok(partitions)
}

fn create_topic(conn: &ConnArgs, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin = conn.admin()?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    block_on(async {
        let results = admin
            .create_topics([&new_topic], &conn.admin_opts())
            .await?;
        match results.into_iter().next() {
            Some(Ok(_)) => Ok(()),
            // Another run created it in between: fine.
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(()),
            Some(Err((_, code))) => bail!("cannot create topic '{topic}': {}", describe_code(code)),
            None => bail!("cannot create topic '{topic}': the broker returned no result"),
        }
    })
}

/// Every partition of an existing topic with its offsets now.
pub fn partition_offsets(conn: &ConnArgs, topic: &str) -> anyhow::Result<Vec<PartitionOffsets>> {
    let lookup: BaseConsumer = conn.lookup_consumer(None)?;
    let metadata = conn.metadata(&lookup, Some(topic))?;
    let found = find_topic(&metadata, topic)?;
    found
        .partitions()
        .iter()
        .map(|p| {
            let (low, high) = lookup
                .fetch_watermarks(topic, p.id(), conn.timeout())
                .map_err(|e| conn.unreachable(&e))?;
            Ok(PartitionOffsets {
                partition: p.id(),
                log_start: low,
                high_watermark: high,
            })
        })
        .collect()
}
