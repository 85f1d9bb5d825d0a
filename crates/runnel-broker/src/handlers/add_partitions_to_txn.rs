//! AddPartitionsToTxn: partitions join a producer's ongoing transaction (v4+ batches transactions).
//!
//! As in Kafka's KafkaApis, a transaction naming a partition that does not exist is refused as a
//! whole before it reaches the coordinator: UNKNOWN_TOPIC_OR_PARTITION for the missing partitions
//! and OPERATION_NOT_ATTEMPTED for the others, and none of them is added.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use runnel_coordinator::txn::{TxnRequest, TxnResponse};

use super::{txn, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let mut request: AddPartitionsToTxnRequest = ctx.decode(body)?;
    if ctx.version() <= 3 {
        if let Some(results) = refused(ctx, &request.v3_and_below_topics) {
            let response =
                AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
            return ctx.respond(&response);
        }
        return txn::call(ctx, TxnRequest::AddPartitionsToTxn(request)).await;
    }
    let mut refused_results = Vec::new();
    request
        .transactions
        .retain(|t| match refused(ctx, &t.topics) {
            Some(results) => {
                refused_results.push(
                    AddPartitionsToTxnResult::default()
                        .with_transactional_id(t.transactional_id.clone())
                        .with_topic_results(results),
                );
                false
            }
            None => true,
        });
    if refused_results.is_empty() {
        return txn::call(ctx, TxnRequest::AddPartitionsToTxn(request)).await;
    }
    let mut response = AddPartitionsToTxnResponse::default();
    if !request.transactions.is_empty() {
        let version = ctx.version();
        let answer = ctx
            .broker
            .txns
            .call(ctx.broker, version, TxnRequest::AddPartitionsToTxn(request))
            .await;
        match answer {
            Some(TxnResponse::AddPartitionsToTxn(r)) => response = r,
            _ => return Ok(None),
        }
    }
    response.results_by_transaction.extend(refused_results);
    ctx.respond(&response)
}

/// The per-partition errors if any partition of `topics` does not exist (Kafka checks its
/// metadata cache), else None.
fn refused(
    ctx: &RequestContext<'_>,
    topics: &[AddPartitionsToTxnTopic],
) -> Option<Vec<AddPartitionsToTxnTopicResult>> {
    let exists = |topic: &str, partition: i32| {
        ctx.broker
            .topics
            .get(topic)
            .is_some_and(|t| t.partition(partition).is_some())
    };
    let all_exist = topics
        .iter()
        .all(|t| t.partitions.iter().all(|&p| exists(&t.name.0, p)));
    if all_exist {
        return None;
    }
    let results = topics.iter().map(|t| {
        let partitions = t.partitions.iter().map(|&p| {
            let error = if exists(&t.name.0, p) {
                ResponseError::OperationNotAttempted
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            AddPartitionsToTxnPartitionResult::default()
                .with_partition_index(p)
                .with_partition_error_code(error.code())
        });
        AddPartitionsToTxnTopicResult::default()
            .with_name(t.name.clone())
            .with_results_by_partition(partitions.collect())
    });
    Some(results.collect())
}
