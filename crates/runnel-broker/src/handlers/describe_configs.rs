//! DescribeConfigs: topic and broker configs with their values, sources, types and (on
//! request) synonyms and documentation.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{HandlerError, RequestContext};
use crate::config::dynamic::Layer;
use crate::config_resources::{
    broker_layer, describe_broker, describe_cluster_default, describe_topic, DescribeOptions,
    RESOURCE_BROKER, RESOURCE_TOPIC,
};

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: DescribeConfigsRequest = ctx.decode(body)?;
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let options = DescribeOptions {
                // Null or empty: every config (Kafka's ConfigHelperUtils).
                keys: resource
                    .configuration_keys
                    .as_deref()
                    .filter(|keys| !keys.is_empty()),
                // Synonyms arrived in v1, documentation in v3.
                synonyms: request.include_synonyms && ctx.version() >= 1,
                documentation: request.include_documentation && ctx.version() >= 3,
            };
            describe(ctx, resource, &options)
        })
        .collect();
    ctx.respond(&DescribeConfigsResponse::default().with_results(results))
}

fn describe(
    ctx: &RequestContext,
    resource: &DescribeConfigsResource,
    options: &DescribeOptions,
) -> DescribeConfigsResult {
    let result = DescribeConfigsResult::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone());
    let broker = ctx.broker;
    let described = match resource.resource_type {
        RESOURCE_TOPIC => match broker.topics.get(resource.resource_name.as_str()) {
            Some(topic) => Ok(describe_topic(
                &topic,
                &broker.topics.broker_defaults(),
                options,
            )),
            None => Err((
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{}' does not exist", resource.resource_name.as_str()),
            )),
        },
        RESOURCE_BROKER => broker_layer(resource.resource_name.as_str(), broker.config.node_id)
            .map(|layer| match layer {
                // Resource "" describes the dynamic cluster-wide defaults only, as in Kafka.
                Layer::ClusterDefault => {
                    describe_cluster_default(broker.dynamic.lock().layer(layer), options)
                }
                Layer::ThisBroker => describe_broker(&broker.topics.broker_defaults(), options),
            }),
        other => Err((
            ResponseError::InvalidRequest,
            format!("Resource type {other} is not supported"),
        )),
    };
    match described {
        Ok(configs) => result.with_configs(configs),
        Err((error, message)) => result
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(message))),
    }
}
