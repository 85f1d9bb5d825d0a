//! TxnOffsetCommit: a transactional producer commits consumer offsets inside its transaction
//! (send_offsets_to_transaction). They stay pending until the transaction's marker reaches the
//! group's offsets partition.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use runnel_coordinator::group::GroupRequest;

use super::{group, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: TxnOffsetCommitRequest = ctx.decode(body)?;
    // Only the live producer of the transactional id may commit (a zombie is fenced).
    let current = ctx.broker.txns.is_current(
        &request.transactional_id,
        request.producer_id.0,
        request.producer_epoch,
    );
    if !current {
        return ctx.respond(&refused(&request, ResponseError::InvalidProducerEpoch));
    }
    group::call(ctx, GroupRequest::TxnOffsetCommit(request)).await
}

fn refused(request: &TxnOffsetCommitRequest, error: ResponseError) -> TxnOffsetCommitResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.code())
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
