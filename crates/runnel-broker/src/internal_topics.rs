//! Replay of the internal topics (`__consumer_offsets`, `__transaction_state`) at start: every
//! record in log order, with what a coordinator needs to know about its batch (transactional
//! records and transaction markers).

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use runnel_log::Offset;
use runnel_protocol::record_batch::BatchIter;
use runnel_protocol::records::control::{parse_marker, MarkerKind};

use crate::partition::{Isolation, Partition};

/// Bytes read per step when replaying.
const REPLAY_READ_BYTES: usize = 1024 * 1024;

/// One logged item, as a coordinator replays it.
pub enum Logged<'a> {
    /// A record; `producer_id` is set when it was written in a transactional batch.
    Record {
        producer_id: Option<i64>,
        key: &'a [u8],
        value: Option<&'a [u8]>,
    },
    /// A transaction marker of `producer_id`.
    Marker { producer_id: i64, commit: bool },
}

#[derive(Debug, thiserror::Error)]
#[error("cannot replay {topic} partition {partition}: {reason}")]
pub struct ReplayError {
    pub topic: String,
    pub partition: i32,
    pub reason: String,
}

/// Feeds every record and marker of `partition` to `visit`, in log order.
pub fn replay_partition(
    partition: &Partition,
    mut visit: impl FnMut(Logged) -> Result<(), String>,
) -> Result<(), ReplayError> {
    let error = |reason: String| ReplayError {
        topic: partition.topic().to_string(),
        partition: partition.index(),
        reason,
    };
    let offsets = partition.offsets().map_err(|e| error(e.to_string()))?;
    let mut next = offsets.log_start.0;
    while next < offsets.high_watermark.0 {
        let fetched = partition
            .read(next, REPLAY_READ_BYTES, Isolation::ReadUncommitted, true)
            .map_err(|e| error(e.to_string()))?;
        if fetched.records.is_empty() {
            break;
        }
        next = replay_batches(&fetched.records, &mut visit).map_err(error)?;
    }
    Ok(())
}

/// Replays whole batches; returns the offset after the last one.
fn replay_batches(
    batches: &Bytes,
    visit: &mut impl FnMut(Logged) -> Result<(), String>,
) -> Result<Offset, String> {
    let mut next = Offset(0);
    for batch in BatchIter::new(batches) {
        let (header, bytes) = batch.map_err(|e| e.to_string())?;
        next = Offset(header.last_offset() + 1);
        if header.is_control() {
            if let Some(marker) = parse_marker(bytes).map_err(|e| e.to_string())? {
                let commit = marker.kind == MarkerKind::Commit;
                visit(Logged::Marker {
                    producer_id: header.producer_id,
                    commit,
                })?;
            }
            continue;
        }
        let producer_id = header.is_transactional().then_some(header.producer_id);
        let mut bytes = batches.slice_ref(bytes);
        let set = RecordBatchDecoder::decode(&mut bytes).map_err(|e| e.to_string())?;
        for record in set.records {
            let Some(key) = record.key else { continue };
            visit(Logged::Record {
                producer_id,
                key: &key,
                value: record.value.as_deref(),
            })
            .map_err(|e| format!("record at offset {}: {e}", record.offset))?;
        }
    }
    Ok(next)
}
