//! CreateTopics: validated one topic at a time (name, partitions, replication, assignment,
//! configs), each with its own error code; `validate_only` checks without creating.

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{HandlerError, RequestContext};
use crate::broker::{now_ms, Broker};
use crate::config::topic::TopicConfig;
use crate::config_resources::{describe_topic_config, DescribeOptions};
use crate::topic_name::validate_topic_name;
use crate::topics::TopicError;

/// A topic that passed validation.
struct ValidTopic {
    partitions: i32,
    replication_factor: i16,
    config: TopicConfig,
}

type Refusal = (ResponseError, String);

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: CreateTopicsRequest = ctx.decode(body)?;
    let mut seen = HashSet::new();
    let duplicates: HashSet<_> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.clone()))
        .map(|t| t.name.clone())
        .collect();
    let results = request
        .topics
        .iter()
        .map(|topic| {
            if duplicates.contains(&topic.name) {
                let message = format!(
                    "Topic '{}' appears more than once in the request",
                    &*topic.name
                );
                return refused(topic, (ResponseError::InvalidRequest, message));
            }
            match validate(ctx.broker, topic)
                .and_then(|valid| create(ctx.broker, topic, valid, request.validate_only))
            {
                Ok(result) => without_v5_fields(result, ctx.version()),
                Err(refusal) => refused(topic, refusal),
            }
        })
        .collect();
    ctx.respond(&CreateTopicsResponse::default().with_topics(results))
}

fn validate(broker: &Broker, topic: &CreatableTopic) -> Result<ValidTopic, Refusal> {
    validate_topic_name(&topic.name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
    if broker.topics.get(&topic.name).is_some() {
        return Err((
            ResponseError::TopicAlreadyExists,
            format!("Topic '{}' already exists.", &*topic.name),
        ));
    }
    if let Some(existing) = colliding_topic(broker, &topic.name) {
        return Err((
            ResponseError::InvalidTopicException,
            format!(
                "Topic '{}' collides with existing topic: {existing}",
                &*topic.name
            ),
        ));
    }
    let (partitions, replication_factor) = if topic.assignments.is_empty() {
        (
            resolve_partitions(broker, topic.num_partitions)?,
            resolve_replication(broker, topic.replication_factor)?,
        )
    } else {
        validate_assignment(broker, topic)?
    };
    let pairs = topic
        .configs
        .iter()
        .map(|c| (c.name.as_str(), c.value.as_ref().map_or("", |v| v.as_str())));
    let config = TopicConfig::from_pairs(pairs).map_err(|m| (ResponseError::InvalidConfig, m))?;
    Ok(ValidTopic {
        partitions,
        replication_factor,
        config,
    })
}

/// An existing topic whose name equals `name` once '.' and '_' are unified: Kafka refuses
/// such a name, since both would have the same metric names.
fn colliding_topic(broker: &Broker, name: &str) -> Option<String> {
    if !name.contains(['.', '_']) {
        return None;
    }
    let unified = |n: &str| n.replace('.', "_");
    let wanted = unified(name);
    broker
        .topics
        .all()
        .iter()
        .map(|t| t.name.clone())
        .filter(|existing| existing != name && unified(existing) == wanted)
        .min()
}

fn resolve_partitions(broker: &Broker, requested: i32) -> Result<i32, Refusal> {
    match requested {
        -1 => Ok(broker.config.num_partitions),
        n if n > 0 => Ok(n),
        n => Err((
            ResponseError::InvalidPartitions,
            format!("Number of partitions must be positive, got {n}"),
        )),
    }
}

fn resolve_replication(broker: &Broker, requested: i16) -> Result<i16, Refusal> {
    let factor = if requested == -1 {
        broker.config.default_replication_factor
    } else {
        requested
    };
    if factor == 1 {
        return Ok(factor);
    }
    Err((
        ResponseError::InvalidReplicationFactor,
        format!("Replication factor {factor} is not possible: only 1 broker is available"),
    ))
}

/// An explicit assignment must list partitions 0..n, each on this broker only.
fn validate_assignment(broker: &Broker, topic: &CreatableTopic) -> Result<(i32, i16), Refusal> {
    if topic.num_partitions != -1 || topic.replication_factor != -1 {
        let message =
            "Both a replica assignment and partitions/replication factor were given".to_string();
        return Err((ResponseError::InvalidRequest, message));
    }
    let mut indexes: Vec<i32> = topic
        .assignments
        .iter()
        .map(|a| a.partition_index)
        .collect();
    indexes.sort_unstable();
    let contiguous = indexes.iter().enumerate().all(|(i, p)| *p == i as i32);
    let on_this_broker = topic
        .assignments
        .iter()
        .all(|a| a.broker_ids.len() == 1 && a.broker_ids[0].0 == broker.config.node_id);
    if !contiguous || !on_this_broker {
        let message = format!(
            "Replica assignment must place partitions 0..n on broker {}",
            broker.config.node_id
        );
        return Err((ResponseError::InvalidReplicaAssignment, message));
    }
    Ok((indexes.len() as i32, 1))
}

fn create(
    broker: &Broker,
    topic: &CreatableTopic,
    valid: ValidTopic,
    validate_only: bool,
) -> Result<CreatableTopicResult, Refusal> {
    let topic_id = if validate_only {
        uuid::Uuid::nil()
    } else {
        let created = broker
            .topics
            .create(&topic.name, valid.partitions, valid.config.clone(), now_ms())
            .map_err(|error| match error {
                TopicError::AlreadyExists(_) => (ResponseError::TopicAlreadyExists, error.to_string()),
                other => {
                    tracing::error!(topic = topic.name.as_str(), error = %other, "create topic failed");
                    (ResponseError::KafkaStorageError, other.to_string())
                }
            })?;
        tracing::info!(
            topic = topic.name.as_str(),
            partitions = valid.partitions,
            "created topic"
        );
        created.id
    };
    // Every effective config, sorted by name, with its source (KIP-525), as Kafka's
    // `computeEffectiveTopicConfigs` gives them; also for validate_only.
    let options = DescribeOptions {
        keys: None,
        synonyms: false,
        documentation: false,
    };
    let mut configs: Vec<CreatableTopicConfigs> =
        describe_topic_config(&valid.config, &broker.topics.broker_defaults(), &options)
            .into_iter()
            .map(|entry| {
                CreatableTopicConfigs::default()
                    .with_name(entry.name)
                    .with_value(entry.value)
                    .with_read_only(entry.read_only)
                    .with_config_source(entry.config_source)
                    .with_is_sensitive(entry.is_sensitive)
            })
            .collect();
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(CreatableTopicResult::default()
        .with_name(topic.name.clone())
        .with_topic_id(topic_id)
        .with_num_partitions(valid.partitions)
        .with_replication_factor(valid.replication_factor)
        .with_configs(Some(configs)))
}

/// Configs are reported from v5 on; the codec refuses them at older versions.
fn without_v5_fields(result: CreatableTopicResult, version: i16) -> CreatableTopicResult {
    if version >= 5 {
        result
    } else {
        result.with_configs(None)
    }
}

fn refused(topic: &CreatableTopic, (error, message): Refusal) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(topic.name.clone())
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_configs(None)
}
