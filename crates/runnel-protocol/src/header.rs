//! Request-header parsing that tells apart the three outcomes a broker must handle differently:
//! a request it implements, an ApiVersions request at a version it does not know (answered per
//! KIP-511), and anything else (the connection is closed).

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

use crate::versions::is_supported;

/// A request whose header decoded and whose API and version the broker implements. `body` is the
/// rest of the frame, still shared with the frame's buffer.
#[derive(Debug)]
pub struct ParsedRequest {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: Bytes,
}

/// What the front of a frame says.
#[derive(Debug)]
pub enum RequestFrame {
    Supported(ParsedRequest),
    /// ApiVersions at a version newer than implemented: KIP-511 says answer with a v0 response
    /// carrying UNSUPPORTED_VERSION and the full table, so the client can pick a version.
    UnsupportedApiVersions {
        correlation_id: i32,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("unsupported version {version} of {api_key:?}")]
    UnsupportedVersion { api_key: ApiKey, version: i16 },
    #[error("malformed request header: {0}")]
    Malformed(String),
}

/// Parses the request header at the front of `frame`.
pub fn parse_request(mut frame: Bytes) -> Result<RequestFrame, HeaderError> {
    if frame.len() < 8 {
        return Err(HeaderError::Malformed(format!(
            "{} byte frame",
            frame.len()
        )));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|_| HeaderError::UnknownApiKey(raw_key))?;
    if !is_supported(api_key, version) {
        if api_key == ApiKey::ApiVersions && version >= 0 {
            let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            return Ok(RequestFrame::UnsupportedApiVersions { correlation_id });
        }
        return Err(HeaderError::UnsupportedVersion { api_key, version });
    }
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| HeaderError::Malformed(e.to_string()))?;
    Ok(RequestFrame::Supported(ParsedRequest {
        api_key,
        header,
        body: frame.slice(..frame.remaining()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn encoded_header(key: i16, version: i16, correlation_id: i32) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(key)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("test")));
        let mut buf = BytesMut::new();
        let header_version = ApiKey::try_from(key)
            .map(|k| k.request_header_version(version))
            .unwrap_or(1);
        header.encode(&mut buf, header_version).unwrap();
        buf.extend_from_slice(b"body");
        buf.freeze()
    }

    #[test]
    fn parses_a_supported_flexible_header_and_keeps_the_body() {
        let frame = encoded_header(ApiKey::Metadata as i16, 12, 7);
        let RequestFrame::Supported(request) = parse_request(frame).unwrap() else {
            panic!("expected a supported request");
        };
        assert_eq!(request.api_key, ApiKey::Metadata);
        assert_eq!(request.header.correlation_id, 7);
        assert_eq!(request.header.client_id.as_deref(), Some("test"));
        assert_eq!(&request.body[..], b"body");
    }

    #[test]
    fn newer_api_versions_gets_the_kip_511_path() {
        let frame = encoded_header(ApiKey::ApiVersions as i16, 99, 42);
        assert!(matches!(
            parse_request(frame).unwrap(),
            RequestFrame::UnsupportedApiVersions { correlation_id: 42 }
        ));
    }

    #[test]
    fn unknown_keys_unsupported_versions_and_short_frames_are_errors() {
        let unknown = Bytes::from_static(&[0x27, 0x0f, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(
            parse_request(unknown),
            Err(HeaderError::UnknownApiKey(9999))
        ));
        let old_produce = encoded_header(ApiKey::Produce as i16, 2, 1);
        assert!(matches!(
            parse_request(old_produce),
            Err(HeaderError::UnsupportedVersion { version: 2, .. })
        ));
        assert!(matches!(
            parse_request(Bytes::from_static(&[0, 3])),
            Err(HeaderError::Malformed(_))
        ));
    }
}
