//! Metadata: the brokers (just this one), the cluster id, the controller, and the requested
//! topics with their partitions. Unknown topics are auto-created when both the broker
//! (`auto.create.topics.enable`) and the request (`allow_auto_topic_creation`, v4+) allow it.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{HandlerError, RequestContext};
use crate::authorized_operations;
use crate::topics::Topic;

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: MetadataRequest = ctx.decode(body)?;
    let broker = ctx.broker;
    // v0 says "all topics" with an empty list; v1+ with null.
    let wants_all = match &request.topics {
        None => true,
        Some(topics) => topics.is_empty() && ctx.version() == 0,
    };
    // As Kafka's `handleTopicMetadataRequest`: v10 and v11 carry topic ids but must not use
    // them (nor null names); such a request fails as a whole with INVALID_REQUEST.
    if !wants_all && ctx.version() < 12 {
        let requested = request.topics.as_deref().unwrap_or_default();
        if requested
            .iter()
            .any(|t| t.name.is_none() || !t.topic_id.is_nil())
        {
            return ctx.respond(&invalid_request(requested));
        }
    }
    // v12+: once any topic is named by id, the request is served by ids alone (a set, so
    // each id once) and names are ignored, as in Kafka.
    let by_id: Option<Vec<uuid::Uuid>> = request
        .topics
        .as_deref()
        .filter(|_| !wants_all)
        .map(|topics| {
            let mut ids: Vec<uuid::Uuid> = Vec::new();
            for id in topics.iter().map(|t| t.topic_id).filter(|id| !id.is_nil()) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            ids
        })
        .filter(|ids| !ids.is_empty());
    let node_id = BrokerId(broker.config.node_id);
    let topic_ops = authorized_operations::reported(
        request.include_topic_authorized_operations,
        authorized_operations::TOPIC,
    );
    let allow_auto_create = ctx.version() < 4 || request.allow_auto_topic_creation;
    let topics = if let Some(ids) = by_id {
        ids.into_iter()
            .map(|id| match broker.topics.get_by_id(id) {
                Some(topic) => describe_topic(&topic, node_id, topic_ops),
                None => topic_error(None, id, ResponseError::UnknownTopicId),
            })
            .collect()
    } else if wants_all {
        broker
            .topics
            .all()
            .iter()
            .map(|topic| describe_topic(topic, node_id, topic_ops))
            .collect()
    } else {
        request
            .topics
            .unwrap_or_default()
            .iter()
            .map(|requested| match &requested.name {
                Some(name) => match broker.topic_or_auto_create(name, allow_auto_create) {
                    Ok(topic) => describe_topic(&topic, node_id, topic_ops),
                    Err(error) => topic_error(Some(name.clone()), requested.topic_id, error),
                },
                None => match broker.topics.get_by_id(requested.topic_id) {
                    Some(topic) => describe_topic(&topic, node_id, topic_ops),
                    None => topic_error(None, requested.topic_id, ResponseError::UnknownTopicId),
                },
            })
            .collect()
    };
    let response = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(node_id)
            .with_host(StrBytes::from_string(broker.config.advertised_host.clone()))
            .with_port(i32::from(broker.config.advertised_port))])
        .with_cluster_id(Some(StrBytes::from_string(
            broker.cluster.cluster_id.clone(),
        )))
        .with_controller_id(node_id)
        .with_topics(topics)
        .with_cluster_authorized_operations(authorized_operations::reported(
            request.include_cluster_authorized_operations,
            authorized_operations::CLUSTER,
        ));
    ctx.respond(&response)
}

fn describe_topic(topic: &Topic, node_id: BrokerId, topic_ops: i32) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|partition| {
            let replicas = vec![node_id];
            MetadataResponsePartition::default()
                .with_partition_index(partition.index())
                .with_leader_id(node_id)
                .with_leader_epoch(partition.leader_epoch().0)
                .with_replica_nodes(replicas.clone())
                .with_isr_nodes(replicas)
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(matches!(
            topic.name.as_str(),
            "__consumer_offsets" | "__transaction_state"
        ))
        .with_partitions(partitions)
        .with_topic_authorized_operations(topic_ops)
}

/// Kafka's `MetadataRequest.getErrorResponse` for INVALID_REQUEST: every requested topic
/// (a null name as "") with the error, and nothing else.
fn invalid_request(
    requested: &[kafka_protocol::messages::metadata_request::MetadataRequestTopic],
) -> MetadataResponse {
    let topics = requested
        .iter()
        .map(|t| {
            let name = t.name.clone().unwrap_or_default();
            topic_error(Some(name), t.topic_id, ResponseError::InvalidRequest)
        })
        .collect();
    MetadataResponse::default()
        .with_controller_id(BrokerId(-1))
        .with_topics(topics)
}

fn topic_error(
    name: Option<TopicName>,
    id: uuid::Uuid,
    error: ResponseError,
) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name)
        .with_topic_id(id)
        .with_error_code(error.code())
        .with_topic_authorized_operations(authorized_operations::NOT_REQUESTED)
}
