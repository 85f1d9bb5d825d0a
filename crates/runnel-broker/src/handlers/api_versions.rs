//! ApiVersions: the table of implemented APIs. A request at a version newer than the broker
//! knows gets a v0 response with UNSUPPORTED_VERSION and the full table (KIP-511), so clients
//! can retry at a version both sides speak.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use runnel_protocol::response::encode_response;
use runnel_protocol::versions::SUPPORTED_APIS;

use super::{HandlerError, RequestContext};

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let _request: ApiVersionsRequest = ctx.decode(body)?;
    ctx.respond(&response(0))
}

/// The KIP-511 answer to an ApiVersions request at an unknown version: encoded as v0.
pub fn unsupported_version_response(correlation_id: i32) -> Result<Bytes, HandlerError> {
    let body = response(ResponseError::UnsupportedVersion.code());
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body).map_err(|error| {
        HandlerError::Encode {
            api: ApiKey::ApiVersions,
            reason: error.to_string(),
        }
    })
}

fn response(error_code: i16) -> ApiVersionsResponse {
    let api_keys = SUPPORTED_APIS
        .iter()
        .map(|api| {
            ApiVersion::default()
                .with_api_key(api.key as i16)
                .with_min_version(api.min_version)
                .with_max_version(api.max_version)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
        .with_finalized_features_epoch(-1)
}
