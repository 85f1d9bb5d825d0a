//! OffsetForLeaderEpoch: the end offset of a leader epoch, which followers (and clients after
//! a leader change) use to find where their log diverged.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use runnel_log::LeaderEpoch;

use super::{HandlerError, RequestContext};
use crate::partition::Partition;

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: OffsetForLeaderEpochRequest = ctx.decode(body)?;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let found = ctx.broker.topics.get(&topic.topic);
            let partitions = topic
                .partitions
                .iter()
                .map(
                    |p| match found.as_ref().and_then(|t| t.partition(p.partition)) {
                        Some(partition) => end_offset(partition, p),
                        None => error(p.partition, ResponseError::UnknownTopicOrPartition),
                    },
                )
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    ctx.respond(&OffsetForLeaderEpochResponse::default().with_topics(topics))
}

fn end_offset(partition: &Partition, request: &OffsetForLeaderPartition) -> EpochEndOffset {
    if let Err(code) = check_current_leader_epoch(partition, request.current_leader_epoch) {
        return error(request.partition, code);
    }
    match partition.end_offset_for_epoch(LeaderEpoch(request.leader_epoch)) {
        Ok(Some((epoch, offset))) => EpochEndOffset::default()
            .with_partition(request.partition)
            .with_leader_epoch(epoch.0)
            .with_end_offset(offset.value()),
        Ok(None) => EpochEndOffset::default()
            .with_partition(request.partition)
            .with_leader_epoch(-1)
            .with_end_offset(-1),
        Err(_) => error(request.partition, ResponseError::UnknownTopicOrPartition),
    }
}

/// KIP-320, as Kafka's `Partition.checkCurrentLeaderEpoch`: a negative epoch (-1) means "no
/// epoch check"; otherwise the caller must agree on who leads. An epoch newer than the
/// leader's is UNKNOWN_LEADER_EPOCH (this broker has not caught up), an older one
/// FENCED_LEADER_EPOCH. Fetch and ListOffsets check their `current_leader_epoch` the same way.
pub(super) fn check_current_leader_epoch(
    partition: &Partition,
    current_leader_epoch: i32,
) -> Result<(), ResponseError> {
    let current = partition.leader_epoch().0;
    if current_leader_epoch < 0 || current_leader_epoch == current {
        Ok(())
    } else if current_leader_epoch > current {
        Err(ResponseError::UnknownLeaderEpoch)
    } else {
        Err(ResponseError::FencedLeaderEpoch)
    }
}

fn error(partition: i32, error: ResponseError) -> EpochEndOffset {
    EpochEndOffset::default()
        .with_partition(partition)
        .with_error_code(error.code())
        .with_leader_epoch(-1)
        .with_end_offset(-1)
}
