//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on individual configs of a topic
//! or of the broker's dynamic configs. Every change is validated before any is applied.

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{HandlerError, RequestContext};
use crate::config_resources::{
    broker_layer, changed_broker_layer, changed_topic_config, Change, Refusal, RESOURCE_BROKER,
    RESOURCE_TOPIC,
};

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: IncrementalAlterConfigsRequest = ctx.decode(body)?;
    let repeated = repeated_resources(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let responses = request
        .resources
        .iter()
        .map(|resource| {
            let response = AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let key = (resource.resource_type, resource.resource_name.as_str());
            let checked = check_resource(
                repeated.contains(&key),
                resource.configs.iter().map(|c| {
                    // DELETE is the one operation that takes no value.
                    let null = c.value.is_none() && c.config_operation != 1;
                    (c.name.as_str(), null)
                }),
            );
            let changes = checked.and_then(|()| {
                resource
                    .configs
                    .iter()
                    .map(|c| change(c.config_operation, c.name.as_str(), c.value.as_deref()))
                    .collect::<Result<Vec<_>, _>>()
            });
            let outcome = changes.and_then(|changes| {
                alter_resource(
                    ctx,
                    resource.resource_type,
                    resource.resource_name.as_str(),
                    &changes,
                    false,
                    request.validate_only,
                )
            });
            match outcome {
                Ok(()) => response,
                Err(refusal) => refusal_response(response, refusal),
            }
        })
        .collect();
    ctx.respond(&IncrementalAlterConfigsResponse::default().with_responses(responses))
}

/// The resources named more than once in one request: Kafka refuses every copy.
pub fn repeated_resources<'a>(
    resources: impl Iterator<Item = (i8, &'a str)>,
) -> HashSet<(i8, &'a str)> {
    let mut seen = HashSet::new();
    resources.filter(|key| !seen.insert(*key)).collect()
}

/// Kafka's checks before any change of a resource is looked at (ConfigAdminManager
/// `preprocess`): the resource appears once, each key once, and only DELETE goes without a
/// value. `configs` gives each key with whether its value is a null it may not be.
pub fn check_resource<'a>(
    repeated: bool,
    configs: impl Iterator<Item = (&'a str, bool)> + Clone,
) -> Result<(), Refusal> {
    let invalid = |message: String| Err((ResponseError::InvalidRequest, message));
    if repeated {
        return invalid("Each resource must appear at most once.".to_string());
    }
    let mut names = HashSet::new();
    if !configs.clone().all(|(name, _)| names.insert(name)) {
        return invalid("Error due to duplicate config keys".to_string());
    }
    let nulls: Vec<&str> = configs.filter(|(_, null)| *null).map(|(n, _)| n).collect();
    if !nulls.is_empty() {
        return invalid(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        ));
    }
    Ok(())
}

fn change(operation: i8, name: &str, value: Option<&str>) -> Result<Change, Refusal> {
    let (name, value) = (name.to_string(), value.unwrap_or_default().to_string());
    match operation {
        0 => Ok(Change::Set(name, value)),
        1 => Ok(Change::Delete(name)),
        2 => Ok(Change::Append(name, value)),
        3 => Ok(Change::Subtract(name, value)),
        other => Err((
            ResponseError::InvalidRequest,
            format!("Unknown config operation {other}"),
        )),
    }
}

/// Validates and (unless `validate_only`) applies changes to one resource; shared with the
/// legacy AlterConfigs, which passes `replace_all`.
pub fn alter_resource(
    ctx: &RequestContext,
    resource_type: i8,
    resource_name: &str,
    changes: &[Change],
    replace_all: bool,
    validate_only: bool,
) -> Result<(), Refusal> {
    let broker = ctx.broker;
    match resource_type {
        RESOURCE_TOPIC => {
            let topic = broker.topics.get(resource_name).ok_or_else(|| {
                (
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic '{resource_name}' does not exist"),
                )
            })?;
            let config = changed_topic_config(&topic.config, changes, replace_all)?;
            if validate_only {
                return Ok(());
            }
            broker
                .topics
                .reconfigure(resource_name, config)
                .map(|_| tracing::info!(topic = resource_name, "topic config changed"))
                .map_err(|e| (ResponseError::KafkaStorageError, e.to_string()))
        }
        RESOURCE_BROKER => {
            let layer = broker_layer(resource_name, broker.config.node_id)?;
            let current = broker.dynamic.lock().layer(layer).clone();
            let values = changed_broker_layer(&current, changes, replace_all)?;
            broker
                .set_dynamic_layer(layer, values, validate_only)
                .map_err(|message| (ResponseError::InvalidConfig, message))
        }
        other => Err((
            ResponseError::InvalidRequest,
            format!("Resource type {other} is not supported"),
        )),
    }
}

pub fn refusal_response<R: WithError>(response: R, (error, message): Refusal) -> R {
    response.with_error(error.code(), message)
}

/// The two alter responses have the same shape in different modules.
pub trait WithError {
    fn with_error(self, code: i16, message: String) -> Self;
}

impl WithError for AlterConfigsResourceResponse {
    fn with_error(self, code: i16, message: String) -> Self {
        self.with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
    }
}

impl WithError for kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse {
    fn with_error(self, code: i16, message: String) -> Self {
        self.with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
    }
}
