//! One file per Kafka API. Each handler decodes its request body, does the work and encodes the
//! response; `dispatch` routes by API key. A handler returns `Ok(None)` only when the protocol
//! says no response is sent (Produce with acks=0).

pub mod api_versions;
mod create_topics;
mod delete_topics;
mod fetch;
mod list_offsets;
mod metadata;
mod produce;

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use runnel_protocol::header::{HeaderError, ParsedRequest};
use runnel_protocol::response::encode_response;

use crate::broker::Broker;

/// Failures after which the connection is closed: the request could not be understood, or the
/// response could not be encoded. Every expected failure is an error code instead.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode {api:?} response: {reason}")]
    Encode { api: ApiKey, reason: String },
    /// acks=0 produce failed: Kafka closes the connection so the client notices.
    #[error("acks=0 produce failed with error {0}; closing so the client notices")]
    FireAndForgetFailed(i16),
}

/// What a handler knows about the request it is serving.
pub struct RequestContext<'a> {
    pub broker: &'a Arc<Broker>,
    pub api_key: ApiKey,
    pub header: RequestHeader,
}

impl RequestContext<'_> {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    /// Decodes the request body as `R` at the request's version.
    pub fn decode<R: Decodable>(&self, mut body: Bytes) -> Result<R, HandlerError> {
        R::decode(&mut body, self.version()).map_err(|error| HandlerError::Malformed {
            api: self.api_key,
            version: self.version(),
            reason: error.to_string(),
        })
    }

    /// Frames `body` as this request's response.
    pub fn respond<R: Encodable>(&self, body: &R) -> Result<Option<Bytes>, HandlerError> {
        encode_response(
            self.api_key,
            self.version(),
            self.header.correlation_id,
            body,
        )
        .map(Some)
        .map_err(|error| HandlerError::Encode {
            api: self.api_key,
            reason: error.to_string(),
        })
    }
}

/// Whether the request in `frame` may wait before it is answered (a long-polling fetch), so
/// earlier responses must be written first.
pub fn may_wait(frame: &[u8]) -> bool {
    frame.len() >= 2 && i16::from_be_bytes([frame[0], frame[1]]) == ApiKey::Fetch as i16
}

pub async fn dispatch(
    broker: &Arc<Broker>,
    request: ParsedRequest,
) -> Result<Option<Bytes>, HandlerError> {
    let ctx = RequestContext {
        broker,
        api_key: request.api_key,
        header: request.header,
    };
    let body = request.body;
    match ctx.api_key {
        ApiKey::ApiVersions => api_versions::handle(&ctx, body),
        ApiKey::Metadata => metadata::handle(&ctx, body),
        ApiKey::Produce => produce::handle(&ctx, body),
        ApiKey::Fetch => fetch::handle(&ctx, body).await,
        ApiKey::ListOffsets => list_offsets::handle(&ctx, body),
        ApiKey::CreateTopics => create_topics::handle(&ctx, body),
        ApiKey::DeleteTopics => delete_topics::handle(&ctx, body),
        other => Err(HandlerError::Header(HeaderError::UnsupportedVersion {
            api_key: other,
            version: ctx.version(),
        })),
    }
}
