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
    let request: ApiVersionsRequest = ctx.decode(body)?;
    // KIP-511: from v3 the client names its software; Kafka answers a name or version that
    // is not `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?` with INVALID_REQUEST alone.
    if ctx.version() >= 3
        && !(is_valid_software_field(&request.client_software_name)
            && is_valid_software_field(&request.client_software_version))
    {
        return ctx.respond(
            &ApiVersionsResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_finalized_features_epoch(-1),
        );
    }
    ctx.respond(&response(0))
}

/// Kafka's `SOFTWARE_NAME_VERSION_PATTERN`: ASCII letters and digits, with '-' and '.'
/// allowed inside but not at either end.
fn is_valid_software_field(value: &str) -> bool {
    let bytes = value.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    edge(bytes.first())
        && edge(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
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
