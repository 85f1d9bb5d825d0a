//! DescribeLogDirs: the one data directory, with the size of every (or every requested)
//! partition in it.

use bytes::Bytes;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{HandlerError, RequestContext};
use crate::topics::Topic;

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: DescribeLogDirsRequest = ctx.decode(body)?;
    let registry = &ctx.broker.topics;
    let topics: Vec<DescribeLogDirsTopic> = match &request.topics {
        // Null asks for everything.
        None => registry.all().iter().map(|t| describe(t, None)).collect(),
        Some(wanted) => wanted
            .iter()
            .filter_map(|w| Some(describe(&*registry.get(&w.topic)?, Some(&w.partitions))))
            .collect(),
    };
    let log_dir = ctx
        .broker
        .config
        .data_dir
        .canonicalize()
        .unwrap_or_else(|_| ctx.broker.config.data_dir.clone());
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(log_dir.display().to_string()))
        .with_topics(topics)
        // Unknown: reporting disk capacity needs statvfs, which is not wired in yet.
        .with_total_bytes(-1)
        .with_usable_bytes(-1);
    ctx.respond(&DescribeLogDirsResponse::default().with_results(vec![result]))
}

fn describe(topic: &Topic, partitions: Option<&Vec<i32>>) -> DescribeLogDirsTopic {
    let described = topic
        .partitions
        .iter()
        .filter(|p| partitions.is_none_or(|wanted| wanted.contains(&p.index())))
        .map(|p| {
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index())
                .with_partition_size(p.size_bytes() as i64)
                .with_offset_lag(0)
        })
        .collect();
    DescribeLogDirsTopic::default()
        .with_name(TopicName(StrBytes::from_string(topic.name.clone())))
        .with_partitions(described)
}
