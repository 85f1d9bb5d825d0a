//! Test batches built with the kafka-protocol encoder, as a real producer would send them.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One v2 batch of `count` records with timestamps `first_ts`, `first_ts + 1`, ...
pub fn batch_with(count: usize, first_ts: i64, compression: Compression, tag: &str) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch whenever offset - sequence changes.
            sequence: i as i32,
            timestamp: first_ts + i as i64,
            key: Some(Bytes::from(format!("key-{tag}-{i}"))),
            value: Some(Bytes::from(format!(
                "value-{tag}-{i}-{}",
                "x".repeat(i % 7)
            ))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.to_vec()
}

pub fn batch(count: usize, first_ts: i64) -> Vec<u8> {
    batch_with(count, first_ts, Compression::None, "t")
}

/// The batch as the log stores it: offsets and epoch patched.
pub fn stored(batch: &[u8], base_offset: i64, epoch: i32) -> Vec<u8> {
    let mut b = batch.to_vec();
    runnel_protocol::record_batch::set_base_offset(&mut b, base_offset);
    runnel_protocol::record_batch::set_partition_leader_epoch(&mut b, epoch);
    b
}

/// (offset, value) of every record in a read result.
pub fn decode_values(mut records: Bytes) -> Vec<(i64, Bytes)> {
    let sets = RecordBatchDecoder::decode_all(&mut records).unwrap();
    sets.into_iter()
        .flat_map(|s| s.records)
        .map(|r| (r.offset, r.value.unwrap_or_default()))
        .collect()
}

/// One batch of keyed records (None value = tombstone, None key = keyless).
pub fn kv_batch(
    entries: &[(Option<&str>, Option<&str>)],
    ts: i64,
    compression: Compression,
) -> Vec<u8> {
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: ts + i as i64,
            key: k.map(|k| Bytes::from(k.to_string())),
            value: v.map(|v| Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.to_vec()
}

/// (offset, key, value) of every record in a read result.
pub fn decode_kv(mut records: Bytes) -> Vec<(i64, Option<Bytes>, Option<Bytes>)> {
    let sets = RecordBatchDecoder::decode_all(&mut records).unwrap();
    sets.into_iter()
        .flat_map(|s| s.records)
        .map(|r| (r.offset, r.key, r.value))
        .collect()
}

/// A batch of an idempotent (or, with `transactional`, transactional) producer: `count`
/// keyed records with sequences `base_sequence`, `base_sequence + 1`, ...
pub fn producer_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    count: usize,
    transactional: bool,
    ts: i64,
) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: base_sequence + i as i32,
            timestamp: ts + i as i64,
            key: Some(Bytes::from(format!(
                "p{producer_id}-s{}",
                base_sequence + i as i32
            ))),
            value: Some(Bytes::from(format!(
                "v{producer_id}-{epoch}-{}",
                base_sequence + i as i32
            ))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.to_vec()
}

/// A transactional batch of explicit key/value pairs (compaction tests).
pub fn txn_kv_batch(
    producer_id: i64,
    base_sequence: i32,
    entries: &[(&str, &str)],
    ts: i64,
) -> Vec<u8> {
    producer_kv_batch((producer_id, 0), base_sequence, entries, true, ts)
}

/// A batch of an idempotent (non-transactional) producer with explicit key/value pairs.
pub fn idempotent_kv_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    entries: &[(&str, &str)],
    ts: i64,
) -> Vec<u8> {
    producer_kv_batch((producer_id, epoch), base_sequence, entries, false, ts)
}

fn producer_kv_batch(
    (producer_id, producer_epoch): (i64, i16),
    base_sequence: i32,
    entries: &[(&str, &str)],
    transactional: bool,
    ts: i64,
) -> Vec<u8> {
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: base_sequence + i as i32,
            timestamp: ts,
            key: Some(Bytes::from(k.to_string())),
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.to_vec()
}
