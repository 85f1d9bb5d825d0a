use super::*;
use crate::record_batch::{validate_batch, TimestampType};
use bytes::Bytes;
use indexmap_compat::*;
use kafka_protocol::records::{
    Compression as KCompression, Record, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KTimestampType,
};
use proptest::prelude::*;

mod indexmap_compat {
    pub use kafka_protocol::indexmap::IndexMap;
    pub use kafka_protocol::protocol::StrBytes;
}

fn record(i: usize, key: Option<&str>, value: Option<&str>) -> Record {
    let mut headers = IndexMap::new();
    headers.insert(
        StrBytes::from_static_str("h"),
        Some(Bytes::from(format!("hv{i}"))),
    );
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: 7,
        producer_epoch: 1,
        timestamp_type: KTimestampType::Creation,
        offset: i as i64,
        sequence: 10 + i as i32,
        timestamp: 1_000 + i as i64 * 3,
        key: key.map(|k| Bytes::from(k.to_string())),
        value: value.map(|v| Bytes::from(v.to_string())),
        headers,
    }
}

fn encode(records: &[Record], compression: KCompression) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records, &options).unwrap();
    buf.to_vec()
}

fn keyed(n: usize, compression: KCompression) -> Vec<u8> {
    let records: Vec<Record> = (0..n)
        .map(|i| record(i, Some(&format!("k{i}")), Some(&"v".repeat(i + 1))))
        .collect();
    encode(&records, compression)
}

const CODECS: [(KCompression, Compression); 5] = [
    (KCompression::None, Compression::None),
    (KCompression::Gzip, Compression::Gzip),
    (KCompression::Snappy, Compression::Snappy),
    (KCompression::Lz4, Compression::Lz4),
    (KCompression::Zstd, Compression::Zstd),
];

fn decode(batch: &[u8]) -> Vec<Record> {
    let mut bytes = Bytes::copy_from_slice(batch);
    RecordBatchDecoder::decode(&mut bytes).unwrap().records
}

#[test]
fn every_codec_opens_and_validates() {
    for (k, _) in CODECS {
        let b = keyed(5, k);
        let open = OpenBatch::open(&b).unwrap();
        let records = open.records().unwrap();
        assert_eq!(records.len(), 5);
        assert_eq!(records[3].key, Some(&b"k3"[..]));
        assert_eq!(records[3].value, Some(&b"vvvv"[..]));
        validate_records(&b).unwrap();
        assert!(!batch_has_null_key(&b).unwrap());
    }
}

#[test]
fn null_keys_are_found_in_compressed_batches() {
    for (k, _) in CODECS {
        let records = vec![record(0, Some("a"), Some("x")), record(1, None, Some("y"))];
        assert!(batch_has_null_key(&encode(&records, k)).unwrap());
    }
}

#[test]
fn recompress_to_every_codec_keeps_records_and_header() {
    for (k_from, _) in CODECS {
        let original = keyed(6, k_from);
        let before = validate_batch(&original).unwrap();
        for (_, to) in CODECS {
            let out = recompress(&original, to).unwrap();
            let after = validate_batch(&out).unwrap();
            assert_eq!(after.compression().unwrap(), to);
            assert_eq!(after.base_offset, before.base_offset);
            assert_eq!(after.base_timestamp, before.base_timestamp);
            assert_eq!(after.max_timestamp, before.max_timestamp);
            assert_eq!(after.producer_id, 7);
            assert_eq!(after.base_sequence, before.base_sequence);
            assert_eq!(after.records_count, 6);
            assert_eq!(decode(&out), decode(&original));
        }
    }
}

#[test]
fn record_count_mismatch_is_invalid() {
    let mut b = keyed(3, KCompression::Gzip);
    b[57..61].copy_from_slice(&4i32.to_be_bytes());
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        validate_records(&b),
        Err(BatchError::InvalidRecords(_))
    ));
}

#[test]
fn garbage_compressed_payload_is_a_compression_error() {
    let mut b = keyed(3, KCompression::Gzip);
    let len = b.len();
    for byte in &mut b[BATCH_HEADER_LEN + 12..len - 4] {
        *byte = 0x55;
    }
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(validate_records(&b).is_err());
}

#[test]
fn log_append_time_patch_keeps_crc_valid() {
    let mut b = keyed(2, KCompression::Lz4);
    set_log_append_time(&mut b, 99_999);
    let h = validate_batch(&b).unwrap();
    assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(h.max_timestamp, 99_999);
    assert_eq!(h.base_timestamp, 1_000);
}

#[test]
fn delete_horizon_rebases_timestamps_and_keeps_offsets() {
    for (k, codec) in CODECS {
        let original = keyed(4, k);
        let open = OpenBatch::open(&original).unwrap();
        let records = open.records().unwrap();
        let mut builder = BatchBuilder::new(open.header, codec, open.header.base_timestamp)
            .with_delete_horizon(5_000_000);
        builder.push(&records[1], open.header.base_timestamp);
        builder.push(&records[3], open.header.base_timestamp);
        let out = builder.finish(3, open.header.max_timestamp).unwrap();
        let h = validate_batch(&out).unwrap();
        assert_eq!(delete_horizon_ms(&h), Some(5_000_000));
        assert_eq!(h.last_offset_delta, 3);
        assert_eq!(h.records_count, 2);
        let decoded = decode(&out);
        let want = decode(&original);
        assert_eq!(decoded[0].offset, 1);
        assert_eq!(decoded[1].offset, 3);
        assert_eq!(decoded[0].timestamp, want[1].timestamp);
        assert_eq!(decoded[1].timestamp, want[3].timestamp);
        assert_eq!(decoded[1].value, want[3].value);
        assert_eq!(decoded[1].sequence, want[3].sequence);
    }
}

proptest! {
    #[test]
    fn varlong_round_trips(v in any::<i64>()) {
        let mut out = Vec::new();
        put_varlong(&mut out, v);
        let (back, rest) = get_varlong(&out).unwrap();
        prop_assert_eq!(back, v);
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), count in 0i32..5) {
        let open = OpenBatch {
            header: BatchHeader::parse(&keyed(1, KCompression::None)).map(|mut h| { h.records_count = count; h }).unwrap(),
            data: Bytes::from(data),
        };
        let _ = open.records();
    }
}
