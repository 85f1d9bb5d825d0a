//! AlterConfigs (the legacy form): replaces all dynamic configs of a topic or of the broker
//! with the set given. Every change is validated before any is applied.

use bytes::Bytes;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::incremental_alter_configs::{alter_resource, refusal_response};
use super::{HandlerError, RequestContext};
use crate::config_resources::Change;

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: AlterConfigsRequest = ctx.decode(body)?;
    let responses = request
        .resources
        .iter()
        .map(|resource| {
            let changes: Vec<Change> = resource
                .configs
                .iter()
                .map(|c| match &c.value {
                    Some(value) => Change::Set(c.name.to_string(), value.to_string()),
                    None => Change::Delete(c.name.to_string()),
                })
                .collect();
            let response = AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match alter_resource(
                ctx,
                resource.resource_type,
                resource.resource_name.as_str(),
                &changes,
                true,
                request.validate_only,
            ) {
                Ok(()) => response,
                Err(refusal) => refusal_response(response, refusal),
            }
        })
        .collect();
    ctx.respond(&AlterConfigsResponse::default().with_responses(responses))
}
