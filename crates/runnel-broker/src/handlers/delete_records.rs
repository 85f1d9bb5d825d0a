//! DeleteRecords: moves partitions' log start offsets forward (offset -1 means the high
//! watermark); segments wholly below are deleted and consumers asking below get
//! OFFSET_OUT_OF_RANGE.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_request::DeleteRecordsPartition;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use runnel_log::Offset;

use super::{HandlerError, RequestContext};
use crate::broker::is_internal_topic;
use crate::partition::Partition;

/// The request's way of saying "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: DeleteRecordsRequest = ctx.decode(body)?;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let found = ctx.broker.topics.get(&topic.name);
            let partitions = topic
                .partitions
                .iter()
                .map(
                    |p| match found.as_ref().and_then(|t| t.partition(p.partition_index)) {
                        // As Kafka (ReplicaManager.deleteRecordsOnLocalLog): the broker's own
                        // topics are never trimmed by a client.
                        Some(_) if is_internal_topic(&topic.name) => {
                            failed(p.partition_index, ResponseError::InvalidTopicException)
                        }
                        Some(partition) => delete(partition, p),
                        None => failed(p.partition_index, ResponseError::UnknownTopicOrPartition),
                    },
                )
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ctx.respond(&DeleteRecordsResponse::default().with_topics(topics))
}

fn delete(partition: &Partition, request: &DeleteRecordsPartition) -> DeleteRecordsPartitionResult {
    let target = match request.offset {
        HIGH_WATERMARK => match partition.offsets() {
            Ok(offsets) => offsets.high_watermark.0,
            Err(error) => return failed(request.partition_index, error.error_code()),
        },
        offset => Offset(offset),
    };
    match partition.delete_records_before(target) {
        Ok(start) => DeleteRecordsPartitionResult::default()
            .with_partition_index(request.partition_index)
            .with_low_watermark(start.0.value()),
        Err(error) => failed(request.partition_index, error.error_code()),
    }
}

fn failed(partition: i32, error: ResponseError) -> DeleteRecordsPartitionResult {
    DeleteRecordsPartitionResult::default()
        .with_partition_index(partition)
        .with_low_watermark(-1)
        .with_error_code(error.code())
}
