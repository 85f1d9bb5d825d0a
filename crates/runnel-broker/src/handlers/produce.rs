//! Produce: append each partition's record batch to its log. The batch is written as it came
//! off the wire (only its base offset and leader epoch are patched), so nothing is re-encoded.
//! acks=0 gets no response; on one node acks=1 and acks=-1 are the same (the leader is the
//! whole ISR).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use runnel_log::AppendInfo;
use runnel_protocol::record_batch::{BatchHeader, BatchIter};

use super::{HandlerError, RequestContext};
use crate::broker::{is_internal_topic, now_ms, Broker};
use crate::partition::{Partition, PartitionError};
use crate::topics::Topic;
use crate::txn_runtime::{verification_error, TxnWrite};

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: ProduceRequest = ctx.decode(body)?;
    let acks = request.acks;
    let scope = TxnScope {
        transactional_id: request.transactional_id.as_ref().map(|id| &*id.0),
        version: ctx.version(),
    };
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let valid_acks = (-1..=1).contains(&acks);
    for topic_data in request.topic_data {
        // A refused request creates nothing, and the internal topics are only ever created
        // by their coordinators (with their own settings).
        let auto_create = valid_acks && !is_internal_topic(&topic_data.name);
        let topic = ctx
            .broker
            .topic_or_auto_create(&topic_data.name, auto_create);
        let partition_responses = topic_data
            .partition_data
            .iter()
            .map(|data| {
                if valid_acks {
                    produce_partition(ctx.broker, scope, topic.as_deref(), data)
                } else {
                    error_response(data.index, ResponseError::InvalidRequiredAcks, None)
                }
            })
            .collect();
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_topic_id(topic_data.topic_id)
                .with_partition_responses(partition_responses),
        );
    }
    if acks == 0 {
        // Nobody reads a response, so a failure can only be signalled by closing (as Kafka does).
        let failed = responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.error_code != 0);
        return match failed {
            Some(partition) => Err(HandlerError::FireAndForgetFailed(partition.error_code)),
            None => Ok(None),
        };
    }
    ctx.respond(&ProduceResponse::default().with_responses(responses))
}

/// What a transactional batch is checked against: the request's transactional id, and its
/// version (which decides the error a failed verification gets).
#[derive(Clone, Copy)]
struct TxnScope<'a> {
    transactional_id: Option<&'a str>,
    version: i16,
}

fn produce_partition(
    broker: &Broker,
    scope: TxnScope<'_>,
    topic: Result<&Topic, &ResponseError>,
    data: &PartitionProduceData,
) -> PartitionProduceResponse {
    let topic = match topic {
        Ok(topic) => topic,
        Err(error) => return error_response(data.index, *error, None),
    };
    if is_internal_topic(&topic.name) {
        let message = format!("Cannot append to internal topic {}", topic.name);
        return error_response(
            data.index,
            ResponseError::InvalidTopicException,
            Some(message),
        );
    }
    let Some(partition) = topic.partition(data.index) else {
        return error_response(data.index, ResponseError::UnknownTopicOrPartition, None);
    };
    let (header, batch) = match single_batch(data.records.as_ref()) {
        Ok(found) => found,
        Err((error, message)) => return error_response(data.index, error, Some(message)),
    };
    let appended = if header.is_transactional() {
        match append_transactional(broker, scope, &topic.name, partition, &header, batch) {
            Ok(appended) => appended,
            Err(error) => return error_response(data.index, error, None),
        }
    } else {
        partition.append(batch, now_ms())
    };
    match appended {
        Ok(info) => {
            let metrics = &broker.metrics;
            metrics.record_produce(&topic.name, info.bytes, u64::from(info.records));
            success_response(data.index, &info)
        }
        Err(error) => {
            let code = error.error_code();
            if code == ResponseError::KafkaStorageError {
                tracing::error!(topic = %topic.name, partition = data.index, %error, "append failed");
            }
            error_response(data.index, code, Some(error.to_string()))
        }
    }
}

/// A transactional batch is written only by the producer of the request's transactional id,
/// and only into a partition of its ongoing transaction (Kafka's transaction verification,
/// KIP-890, on by default since 3.6).
fn append_transactional(
    broker: &Broker,
    scope: TxnScope<'_>,
    topic: &str,
    partition: &Partition,
    header: &BatchHeader,
    batch: &[u8],
) -> Result<Result<AppendInfo, PartitionError>, ResponseError> {
    // Kafka refuses transactional records without a transactional id at authorization.
    let id = scope
        .transactional_id
        .ok_or(ResponseError::TransactionalIdAuthorizationFailed)?;
    let producer_id = header.producer_id;
    let claim = TxnWrite {
        transactional_id: id,
        producer_id,
        producer_epoch: header.producer_epoch,
        topic,
        partition: partition.index(),
    };
    broker
        .txns
        .write_verified(
            &claim,
            || partition.has_open_transaction(producer_id).unwrap_or(false),
            || partition.append(batch, now_ms()),
        )
        .map_err(|error| produce_verification_error(error, scope.version))
}

/// The first Produce version that knows TRANSACTION_ABORTABLE (`GENERIC_ERROR_SUPPORTED` in
/// Kafka's `produceRequestVersionToTransactionSupportedOperation`, KIP-890).
const ABORTABLE_SINCE: i16 = 11;

/// Kafka's answers to a produce that fails verification (AddPartitionsToTxnManager): the
/// coordinator being busy is retriable (NOT_ENOUGH_REPLICAS); the rest as for every verified
/// write.
fn produce_verification_error(error: ResponseError, version: i16) -> ResponseError {
    match error {
        ResponseError::ConcurrentTransactions
        | ResponseError::CoordinatorLoadInProgress
        | ResponseError::CoordinatorNotAvailable
        | ResponseError::NotCoordinator => ResponseError::NotEnoughReplicas,
        error => verification_error(error, version >= ABORTABLE_SINCE),
    }
}

/// Produce v3+ carries exactly one v2 batch per partition (as Kafka enforces); anything else is
/// refused before it reaches the log. As Kafka's `ProduceRequest.validateRecords`, no whole
/// batch or a magic other than 2 is INVALID_RECORD.
fn single_batch(records: Option<&Bytes>) -> Result<(BatchHeader, &[u8]), (ResponseError, String)> {
    let records = records.map(|r| &r[..]).unwrap_or_default();
    let mut batches = BatchIter::new(records);
    let (header, first) = match batches.next() {
        Some(Ok(found)) => found,
        Some(Err(error)) => return Err((ResponseError::CorruptMessage, error.to_string())),
        None => {
            let reason = if records.is_empty() {
                "no record batch"
            } else {
                "truncated record batch"
            };
            return Err((ResponseError::InvalidRecord, reason.to_string()));
        }
    };
    let magic = header.magic;
    if magic != 2 {
        return Err((
            ResponseError::InvalidRecord,
            format!("produce requests may only contain record batches with magic 2, not {magic}"),
        ));
    }
    if batches.next().is_some() {
        return Err((
            ResponseError::InvalidRecord,
            "produce requests must contain exactly one record batch per partition".to_string(),
        ));
    }
    if first.len() != records.len() {
        return Err((
            ResponseError::CorruptMessage,
            "truncated bytes after the record batch".to_string(),
        ));
    }
    Ok((header, first))
}

fn success_response(index: i32, info: &AppendInfo) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(info.base_offset.value())
        .with_log_append_time_ms(info.log_append_time_ms)
        .with_log_start_offset(info.log_start_offset.value())
}

fn error_response(
    index: i32,
    error: ResponseError,
    message: Option<String>,
) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(error.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(StrBytes::from_string))
}
