//! AlterConfigs (the legacy form): replaces all dynamic configs of a topic or of the broker
//! with the set given. Every change is validated before any is applied.

use bytes::Bytes;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::incremental_alter_configs::{
    alter_resource, check_resource, refusal_response, repeated_resources,
};
use super::{HandlerError, RequestContext};
use crate::config_resources::Change;

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: AlterConfigsRequest = ctx.decode(body)?;
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
                resource
                    .configs
                    .iter()
                    .map(|c| (c.name.as_str(), c.value.is_none())),
            );
            if let Err(refusal) = checked {
                return refusal_response(response, refusal);
            }
            let changes: Vec<Change> = resource
                .configs
                .iter()
                .map(|c| match &c.value {
                    Some(value) => Change::Set(c.name.to_string(), value.to_string()),
                    None => Change::Delete(c.name.to_string()),
                })
                .collect();
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
