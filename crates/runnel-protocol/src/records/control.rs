//! Transaction markers: the control batches a transaction coordinator writes to every
//! partition of a transaction (WriteTxnMarkers), as Kafka's `EndTransactionMarker` and
//! `MemoryRecords.withEndTransactionMarker` lay them out.
//!
//! ```text
//! batch:  attributes = transactional | control, producerId, producerEpoch, baseSequence -1,
//!         one record at offset delta 0
//! key:    version i16 (0) | type i16 (0 = abort, 1 = commit)
//! value:  version i16 (0) | coordinatorEpoch i32
//! ```
//!
//! Readers accept any key or value version >= 0 with at least these fields (newer versions
//! only append fields), as Kafka does.

use super::{put_varint, put_varlong, OpenBatch};
use crate::record_batch::{compute_crc, BatchError, BatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD};

const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;
const CONTROL_TYPE_ABORT: i16 = 0;
const CONTROL_TYPE_COMMIT: i16 = 1;

/// Whether a transaction was committed or aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    Abort,
    Commit,
}

/// The content of one transaction marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    pub kind: MarkerKind,
    pub coordinator_epoch: i32,
}

/// Builds a marker batch at base offset 0 (the log assigns the real one), leader epoch -1,
/// CreateTime `timestamp_ms`, uncompressed. The result passes `validate_batch`.
pub fn build_marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: TxnMarker,
    timestamp_ms: i64,
) -> Vec<u8> {
    let control_type = match marker.kind {
        MarkerKind::Abort => CONTROL_TYPE_ABORT,
        MarkerKind::Commit => CONTROL_TYPE_COMMIT,
    };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&control_type.to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());

    let mut body = vec![0u8]; // record attributes
    put_varlong(&mut body, 0); // timestamp delta
    put_varint(&mut body, 0); // offset delta
    put_varint(&mut body, key.len() as i32);
    body.extend_from_slice(&key);
    put_varint(&mut body, value.len() as i32);
    body.extend_from_slice(&value);
    put_varint(&mut body, 0); // header count
    let mut record = Vec::with_capacity(body.len() + 1);
    put_varint(&mut record, body.len() as i32);
    record.extend_from_slice(&body);

    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + record.len());
    let batch_length = (BATCH_HEADER_LEN + record.len() - LOG_OVERHEAD) as i32;
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset
    out.extend_from_slice(&batch_length.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
    out.extend_from_slice(&(ATTR_TRANSACTIONAL | ATTR_CONTROL).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    out.extend_from_slice(&timestamp_ms.to_be_bytes()); // base timestamp
    out.extend_from_slice(&timestamp_ms.to_be_bytes()); // max timestamp
    out.extend_from_slice(&producer_id.to_be_bytes());
    out.extend_from_slice(&producer_epoch.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence: none for markers
    out.extend_from_slice(&1i32.to_be_bytes()); // records count
    out.extend_from_slice(&record);
    let crc = compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Reads the marker out of a control batch. `Ok(None)` for a control batch without records
/// (Kafka's cleaner may leave those; they mean nothing any more) and for control types other
/// than commit and abort.
pub fn parse_marker(batch: &[u8]) -> Result<Option<TxnMarker>, BatchError> {
    let open = OpenBatch::open(batch)?;
    if !open.header.is_control() {
        return Err(BatchError::InvalidRecords(
            "not a control batch (attribute bit 5 is clear)".into(),
        ));
    }
    let records = open.records()?;
    let Some(record) = records.first() else {
        return Ok(None);
    };
    let key = record
        .key
        .ok_or_else(|| BatchError::InvalidRecords("control record without a key".into()))?;
    if key.len() < 4 || i16::from_be_bytes([key[0], key[1]]) < 0 {
        return Err(BatchError::InvalidRecords(format!(
            "control record key of {} bytes is not version >= 0 + type",
            key.len()
        )));
    }
    let kind = match i16::from_be_bytes([key[2], key[3]]) {
        CONTROL_TYPE_ABORT => MarkerKind::Abort,
        CONTROL_TYPE_COMMIT => MarkerKind::Commit,
        _ => return Ok(None),
    };
    let value = record.value.unwrap_or(&[]);
    if value.len() < 6 || i16::from_be_bytes([value[0], value[1]]) < 0 {
        return Err(BatchError::InvalidRecords(format!(
            "transaction marker value of {} bytes is not version >= 0 + coordinator epoch",
            value.len()
        )));
    }
    let coordinator_epoch = i32::from_be_bytes(value[2..6].try_into().expect("4 bytes"));
    Ok(Some(TxnMarker {
        kind,
        coordinator_epoch,
    }))
}

/// Whether a batch header describes a transaction marker candidate (control + transactional).
pub fn is_marker_header(header: &BatchHeader) -> bool {
    header.is_control() && header.is_transactional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_batch::validate_batch;
    use bytes::Bytes;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn marker_round_trips_and_matches_kafka_protocol_decoder() {
        for (kind, control_type) in [(MarkerKind::Abort, 0i16), (MarkerKind::Commit, 1)] {
            let marker = TxnMarker {
                kind,
                coordinator_epoch: 7,
            };
            let batch = build_marker_batch(42, 3, marker, 1_000);
            let header = validate_batch(&batch).unwrap();
            assert!(is_marker_header(&header));
            assert_eq!((header.producer_id, header.producer_epoch), (42, 3));
            assert_eq!(header.base_sequence, -1);
            assert_eq!(parse_marker(&batch).unwrap(), Some(marker));
            let mut bytes = Bytes::from(batch);
            let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
            let record = &set.records[0];
            assert!(record.control && record.transactional);
            let key = record.key.as_ref().unwrap();
            assert_eq!(&key[..], &[0, 0, 0, control_type as u8]);
            assert_eq!(&record.value.as_ref().unwrap()[..], &[0, 0, 0, 0, 0, 7]);
        }
    }

    #[test]
    fn data_batches_and_bad_keys_are_refused() {
        let mut batch = build_marker_batch(
            1,
            0,
            TxnMarker {
                kind: MarkerKind::Commit,
                coordinator_epoch: 0,
            },
            5,
        );
        batch[22] &= !0x20; // clear the control bit
        let crc = compute_crc(&batch);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(parse_marker(&batch).is_err());
    }
}
