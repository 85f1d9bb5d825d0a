//! DescribeProducers: the idempotent/transactional producers a partition keeps state for.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::{HandlerError, RequestContext};

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: DescribeProducersRequest = ctx.decode(body)?;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let found = ctx.broker.topics.get(&topic.name);
            let partitions =
                topic
                    .partition_indexes
                    .iter()
                    .map(|index| {
                        let response = PartitionResponse::default().with_partition_index(*index);
                        let producers = found
                            .as_ref()
                            .and_then(|t| t.partition(*index))
                            .map(|p| p.producers());
                        match producers {
                            Some(Ok(producers)) => response
                                .with_active_producers(producers.iter().map(state).collect()),
                            Some(Err(error)) => response.with_error_code(error.error_code().code()),
                            None => response
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                        }
                    })
                    .collect();
            TopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ctx.respond(&DescribeProducersResponse::default().with_topics(topics))
}

fn state(producer: &runnel_log::ProducerInfo) -> ProducerState {
    ProducerState::default()
        .with_producer_id(ProducerId(producer.producer_id))
        .with_producer_epoch(i32::from(producer.producer_epoch))
        .with_last_sequence(producer.last_sequence)
        .with_last_timestamp(producer.last_timestamp)
        .with_coordinator_epoch(producer.coordinator_epoch)
        .with_current_txn_start_offset(producer.current_txn_start_offset.map_or(-1, |o| o.value()))
}
