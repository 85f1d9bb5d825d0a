//! Whatever bytes a client sends, parsing a request frame and decoding its body must end in a
//! value or an error: never a panic, and never an allocation sized by a length the bytes do not
//! back (which would abort the broker). These properties run every supported API and version
//! against random bodies, including bodies that start with huge array lengths.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind};
use proptest::prelude::*;
use runnel_protocol::header::{parse_request, RequestFrame};
use runnel_protocol::record_batch::{validate_batch, BatchIter};
use runnel_protocol::versions::SUPPORTED_APIS;

/// Every (api, version) pair the broker accepts.
fn supported_pairs() -> Vec<(ApiKey, i16)> {
    SUPPORTED_APIS
        .iter()
        .flat_map(|api| (api.min_version..=api.max_version).map(move |v| (api.key, v)))
        .collect()
}

/// A frame with a well-formed header for `(api, version)` and `body` after it.
fn frame(api: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(api as i16);
    buf.put_i16(version);
    buf.put_i32(1);
    buf.put_i16(-1); // null client id
    if api.request_header_version(version) >= 2 {
        buf.put_u8(0); // no tagged fields
    }
    buf.put_slice(body);
    buf.freeze()
}

fn decode_body(frame: Bytes) {
    if let Ok(RequestFrame::Supported(request)) = parse_request(frame) {
        let mut body = request.body;
        let _ = RequestKind::decode(
            request.api_key,
            &mut body,
            request.header.request_api_version,
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_body(Bytes::from(bytes));
    }

    #[test]
    fn random_bodies_of_every_supported_request_never_panic(
        pair in proptest::sample::select(supported_pairs()),
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        decode_body(frame(pair.0, pair.1, &body));
    }

    #[test]
    fn random_record_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = validate_batch(&bytes);
        for batch in BatchIter::new(&bytes) {
            if batch.is_err() {
                break;
            }
        }
    }
}

/// Bodies that begin with the largest array lengths each encoding can express, at every
/// supported version: the decoder must refuse them without trying to allocate for them.
#[test]
fn huge_array_lengths_are_refused_without_allocating() {
    let huge_prefixes: [&[u8]; 3] = [
        &[0x7f, 0xff, 0xff, 0xff],       // int32 array length 2^31-1
        &[0xff, 0xff, 0xff, 0xff, 0x0f], // compact (varint) length 2^32-1
        &[0x00, 0x00, 0x7f, 0xff, 0xff, 0xff],
    ];
    for (api, version) in supported_pairs() {
        for prefix in huge_prefixes {
            decode_body(frame(api, version, prefix));
        }
    }
}
