//! CreatePartitions: grows a topic. Existing keys may map to other partitions afterwards, as in
//! Kafka (the default partitioner hashes over the new count).

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{HandlerError, RequestContext};
use crate::broker::{is_internal_topic, now_ms, Broker};

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: CreatePartitionsRequest = ctx.decode(body)?;
    // A topic named twice is refused (every copy) and not grown, as in Kafka.
    let mut seen = HashSet::new();
    let duplicates: HashSet<&str> = request
        .topics
        .iter()
        .map(|t| t.name.as_str())
        .filter(|name| !seen.insert(*name))
        .collect();
    let results = request
        .topics
        .iter()
        .map(|topic| {
            let outcome = if duplicates.contains(topic.name.as_str()) {
                Err((
                    ResponseError::InvalidRequest,
                    "Duplicate topic name.".to_string(),
                ))
            } else {
                grow(ctx.broker, topic, request.validate_only)
            };
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            match outcome {
                Ok(()) => result,
                Err((error, message)) => result
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    ctx.respond(&CreatePartitionsResponse::default().with_results(results))
}

fn grow(
    broker: &Broker,
    request: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    let name = request.name.as_str();
    let topic = broker.topics.get(name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("Topic '{name}' does not exist"),
        )
    })?;
    if is_internal_topic(name) {
        return Err((
            ResponseError::InvalidRequest,
            format!("Internal topic {name} cannot be grown"),
        ));
    }
    let current = topic.partitions.len() as i32;
    if request.count <= current {
        let message = format!(
            "Topic '{name}' has {current} partitions; the new count {} must be larger",
            request.count
        );
        return Err((ResponseError::InvalidPartitions, message));
    }
    if let Some(assignments) = &request.assignments {
        let node = broker.config.node_id;
        let valid = assignments.len() as i32 == request.count - current
            && assignments
                .iter()
                .all(|a| a.broker_ids.len() == 1 && a.broker_ids[0].0 == node);
        if !valid {
            let message =
                format!("Replica assignment must place each new partition on broker {node} only");
            return Err((ResponseError::InvalidReplicaAssignment, message));
        }
    }
    if validate_only {
        return Ok(());
    }
    broker
        .topics
        .add_partitions(name, request.count, now_ms())
        .map(|_| tracing::info!(topic = name, partitions = request.count, "grew topic"))
        .map_err(|error| (ResponseError::KafkaStorageError, error.to_string()))
}
