//! DeleteTopics: by name (v0-5) or by name or topic id (v6+).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{HandlerError, RequestContext};
use crate::broker::{is_internal_topic, Broker};
use crate::topics::TopicError;

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: DeleteTopicsRequest = ctx.decode(body)?;
    let mut wanted: Vec<(Option<TopicName>, Uuid)> = request
        .topic_names
        .into_iter()
        .map(|n| (Some(n), Uuid::nil()))
        .collect();
    wanted.extend(request.topics.into_iter().map(|t| (t.name, t.topic_id)));
    let results = wanted
        .into_iter()
        .map(|(name, id)| delete_one(ctx.broker, name, id))
        .collect();
    ctx.respond(&DeleteTopicsResponse::default().with_responses(results))
}

fn delete_one(broker: &Broker, name: Option<TopicName>, id: Uuid) -> DeletableTopicResult {
    let topic = match &name {
        Some(name) => broker.topics.get(name),
        None => broker.topics.get_by_id(id),
    };
    let Some(topic) = topic else {
        let error = if name.is_some() {
            ResponseError::UnknownTopicOrPartition
        } else {
            ResponseError::UnknownTopicId
        };
        return DeletableTopicResult::default()
            .with_name(name)
            .with_topic_id(id)
            .with_error_code(error.code());
    };
    if is_internal_topic(&topic.name) {
        let message = format!("Internal topic {} cannot be deleted", topic.name);
        return DeletableTopicResult::default()
            .with_name(name)
            .with_topic_id(topic.id)
            .with_error_code(ResponseError::InvalidTopicException.code())
            .with_error_message(Some(StrBytes::from_string(message)));
    }
    let result = DeletableTopicResult::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id);
    match broker.topics.delete(&topic.name) {
        Ok(_) => {
            tracing::info!(topic = %topic.name, "deleted topic");
            result
        }
        Err(TopicError::Unknown(_)) => {
            result.with_error_code(ResponseError::UnknownTopicOrPartition.code())
        }
        Err(error) => {
            tracing::error!(topic = %topic.name, %error, "delete topic failed");
            result
                .with_error_code(ResponseError::KafkaStorageError.code())
                .with_error_message(Some(StrBytes::from_string(error.to_string())))
        }
    }
}
