//! ListOffsets: the earliest (-2) or latest (-1) offset, the offset of the largest timestamp
//! (-3, v7+), or the first offset whose timestamp is at least the one asked for.

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::offset_for_leader_epoch::check_current_leader_epoch;
use super::{HandlerError, RequestContext};
use crate::partition::{Isolation, Partition, PartitionError};

const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// With tiered storage these differ from earliest; with one local tier they are the same.
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: ListOffsetsRequest = ctx.decode(body)?;
    let isolation = match request.isolation_level {
        1 => Isolation::ReadCommitted,
        _ => Isolation::ReadUncommitted,
    };
    let duplicates = duplicate_partitions(&request);
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let found = ctx.broker.topics.get(&topic.name);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    // As Kafka: a partition named twice gets INVALID_REQUEST, every time.
                    if duplicates.contains(&(&*topic.name.0, p.partition_index)) {
                        return error_response(p.partition_index, ResponseError::InvalidRequest);
                    }
                    match found.as_ref().and_then(|t| t.partition(p.partition_index)) {
                        Some(partition) => list_offset(partition, p, isolation, ctx.version()),
                        None => error_response(
                            p.partition_index,
                            ResponseError::UnknownTopicOrPartition,
                        ),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ctx.respond(&ListOffsetsResponse::default().with_topics(topics))
}

/// Partitions named more than once in the request (Kafka's
/// `ListOffsetsRequest.duplicatePartitions`).
fn duplicate_partitions(request: &ListOffsetsRequest) -> HashSet<(&str, i32)> {
    let mut seen = HashSet::new();
    request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (&*t.name.0, p.partition_index)))
        .filter(|key| !seen.insert(*key))
        .collect()
}

fn list_offset(
    partition: &Partition,
    request: &ListOffsetsPartition,
    isolation: Isolation,
    version: i16,
) -> ListOffsetsPartitionResponse {
    // KIP-320 (v4+; older versions decode the field as -1, no check).
    if let Err(error) = check_current_leader_epoch(partition, request.current_leader_epoch) {
        return error_response(request.partition_index, error);
    }
    match lookup(partition, request.timestamp, isolation, version) {
        Ok((timestamp, offset)) => ListOffsetsPartitionResponse::default()
            .with_partition_index(request.partition_index)
            .with_timestamp(timestamp)
            .with_offset(offset)
            // Leader epochs are on the wire from v4 on.
            .with_leader_epoch(if offset >= 0 && version >= 4 {
                partition.leader_epoch().0
            } else {
                -1
            }),
        Err(error) => error_response(request.partition_index, error),
    }
}

/// `(timestamp, offset)` for the request; -1/-1 when no record matches.
fn lookup(
    partition: &Partition,
    timestamp: i64,
    isolation: Isolation,
    version: i16,
) -> Result<(i64, i64), ResponseError> {
    let offsets = partition.offsets().map_err(partition_error)?;
    let latest = match isolation {
        Isolation::ReadUncommitted => offsets.high_watermark.0,
        Isolation::ReadCommitted => offsets.last_stable.0,
    };
    match timestamp {
        LATEST_TIMESTAMP => Ok((-1, latest.value())),
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => Ok((-1, offsets.log_start.0.value())),
        // Like a timestamp lookup, bounded by what the isolation level may read (Kafka's
        // `Partition.fetchOffsetForTimestamp` filters all but latest and earliest).
        MAX_TIMESTAMP if version >= 7 => Ok(partition
            .max_timestamp_offset()
            .map_err(partition_error)?
            .filter(|found| found.offset < latest)
            .map_or((-1, -1), |found| (found.timestamp, found.offset.value()))),
        target if target >= 0 => Ok(partition
            .offset_for_timestamp(target)
            .map_err(partition_error)?
            .filter(|found| found.offset < latest)
            .map_or((-1, -1), |found| (found.timestamp, found.offset.value()))),
        _ => Err(ResponseError::UnsupportedVersion),
    }
}

fn partition_error(error: PartitionError) -> ResponseError {
    match error {
        PartitionError::Deleted => ResponseError::UnknownTopicOrPartition,
        _ => ResponseError::KafkaStorageError,
    }
}

fn error_response(index: i32, error: ResponseError) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse::default()
        .with_partition_index(index)
        .with_error_code(error.code())
        .with_timestamp(-1)
        .with_offset(-1)
        .with_leader_epoch(-1)
}
