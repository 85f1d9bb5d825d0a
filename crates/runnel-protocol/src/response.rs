//! Response framing: size prefix, response header (v0, or v1 with tagged fields for flexible
//! versions), then the body, encoded once into one buffer.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

/// Encodes `body` as the response to a request with `correlation_id` at `api_version`.
pub fn encode_response<R: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &R,
) -> anyhow::Result<Bytes> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api_key.response_header_version(api_version);
    let size = header.compute_size(header_version)? + body.compute_size(api_version)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version)?;
    body.encode(&mut buf, api_version)?;
    debug_assert_eq!(buf.len(), 4 + size, "compute_size disagrees with encode");
    Ok(buf.freeze())
}
