//! TxnOffsetCommit: a transactional producer commits consumer offsets inside its transaction
//! (send_offsets_to_transaction). They stay pending until the transaction's marker reaches the
//! group's offsets partition.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use runnel_coordinator::group::{coordinator_partition, GroupRequest};

use super::{group, HandlerError, RequestContext};
use crate::group_runtime::OFFSETS_TOPIC;
use crate::txn_runtime::{verification_error, TxnWrite};

/// The first TxnOffsetCommit version that knows TRANSACTION_ABORTABLE (KIP-890).
const ABORTABLE_SINCE: i16 = 4;

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: TxnOffsetCommitRequest = ctx.decode(body)?;
    // KIP-890 verification, as Kafka does before the write: the group's offsets partition must be
    // in the ongoing transaction of the live producer of the transactional id (AddOffsetsToTxn);
    // a zombie is fenced, and offsets outside the transaction would stay pending for ever.
    let partition = coordinator_partition(
        &request.group_id,
        ctx.broker.config.groups.offsets_partitions,
    );
    let verified = ctx.broker.txns.verify(&TxnWrite {
        transactional_id: &request.transactional_id,
        producer_id: request.producer_id.0,
        producer_epoch: request.producer_epoch,
        topic: OFFSETS_TOPIC,
        partition,
    });
    if let Err(error) = verified {
        return ctx.respond(&refused(
            &request,
            verification_error(error, ctx.version() >= ABORTABLE_SINCE),
        ));
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
