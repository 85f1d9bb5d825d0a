//! DeleteTopics: by name (v0-5) or by name or topic id (v6+).

use std::collections::HashMap;

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
    let refusals = refusals(ctx.broker, &wanted);
    let results = wanted
        .into_iter()
        .zip(refusals)
        .map(|((name, id), refusal)| match refusal {
            Some(message) => DeletableTopicResult::default()
                .with_name(name)
                .with_topic_id(id)
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_static_str(message))),
            None => delete_one(ctx.broker, name, id),
        })
        .collect();
    ctx.respond(&DeleteTopicsResponse::default().with_responses(results))
}

/// Kafka's checks of the request as a whole (ControllerApis `deleteTopics`): each entry names
/// a topic by name or by id, not both and not neither, and no topic is named twice, whether by
/// the same name, the same id, or a name and its id. Such entries are INVALID_REQUEST and
/// their topics are not deleted.
fn refusals(broker: &Broker, wanted: &[(Option<TopicName>, Uuid)]) -> Vec<Option<&'static str>> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut ids: HashMap<Uuid, usize> = HashMap::new();
    for (name, id) in wanted {
        match name {
            Some(name) if id.is_nil() => {
                *names.entry(name.as_str()).or_default() += 1;
                if let Some(topic) = broker.topics.get(name) {
                    *ids.entry(topic.id).or_default() += 1;
                }
            }
            None if !id.is_nil() => *ids.entry(*id).or_default() += 1,
            _ => {}
        }
    }
    wanted
        .iter()
        .map(|(name, id)| match name {
            Some(_) if !id.is_nil() => Some("You may not specify both topic name and topic id."),
            None if id.is_nil() => Some("Neither topic name nor id were specified."),
            Some(name) => {
                let resolved = broker.topics.get(name).map(|topic| topic.id);
                if names[name.as_str()] > 1 {
                    Some("Duplicate topic name.")
                } else if resolved.is_some_and(|id| ids.get(&id).is_some_and(|n| *n > 1)) {
                    Some("The provided topic name maps to an ID that was already supplied.")
                } else {
                    None
                }
            }
            None => (ids[id] > 1).then_some("Duplicate topic id."),
        })
        .collect()
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
            broker.metrics.forget_topic(&topic.name);
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
