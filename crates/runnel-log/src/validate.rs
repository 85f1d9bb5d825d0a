//! The slow append path: what `append_as_leader` does when a topic setting needs the records
//! of a produced batch opened (Kafka's LogValidator). The plain path never comes here, so a
//! topic with default settings stores batches without decompressing them.
//!
//! - `cleanup.policy` compact: every record needs a key (INVALID_RECORD otherwise);
//! - `compression.type` other than `producer` and the batch's codec: the batch is recompressed;
//! - `message.timestamp.type` LogAppendTime: the batch is stamped with the broker's clock.
//!
//! Compressed batches that are opened are also validated record by record.

use crate::config::LogConfig;
use crate::error::AppendError;
use runnel_protocol::record_batch::{validate_batch, BatchHeader, TimestampType};
use runnel_protocol::records::{recompress, set_log_append_time, OpenBatch};

/// Kafka's message for a keyless record on a compacted topic.
pub(crate) const KEYLESS_ON_COMPACTED: &str = "Compacted topic cannot accept message without key";

/// A batch rewritten before it is stored.
pub(crate) struct Prepared {
    pub(crate) batch: Vec<u8>,
    pub(crate) header: BatchHeader,
    pub(crate) log_append_time_ms: i64,
}

/// Checks and rewrites `batch` as the topic's settings require. None: store it as sent.
pub(crate) fn prepare_batch(
    batch: &[u8],
    header: &BatchHeader,
    config: &LogConfig,
    now_ms: i64,
) -> Result<Option<Prepared>, AppendError> {
    let codec = header.compression()?;
    let target = config.compression.codec().filter(|&c| c != codec);
    let log_append_time = config.timestamp_type == TimestampType::LogAppendTime;
    let compact = config.cleanup_policy.compact;
    if !compact && target.is_none() && !log_append_time {
        return Ok(None);
    }
    if header.is_control() {
        // Transaction markers are written by the coordinator and stored as they are.
        return Ok(None);
    }
    let open = OpenBatch::open(batch).map_err(invalid)?;
    let records = open.records().map_err(invalid)?;
    for (expected, record) in records.iter().enumerate() {
        if i64::from(record.offset_delta) != expected as i64 {
            return Err(AppendError::InvalidRecord(format!(
                "record {expected} has offset delta {}; producers must number records 0, 1, 2, ...",
                record.offset_delta
            )));
        }
    }
    if compact {
        if let Some(i) = records.iter().position(|r| r.key.is_none()) {
            return Err(AppendError::InvalidRecord(format!(
                "{KEYLESS_ON_COMPACTED} (record {i} of the batch has a null key)"
            )));
        }
    }
    if target.is_none() && !log_append_time {
        return Ok(None);
    }
    let mut out = match target {
        Some(codec) => recompress(batch, codec).map_err(invalid)?.to_vec(),
        None => batch.to_vec(),
    };
    let mut log_append_time_ms = -1;
    if log_append_time {
        set_log_append_time(&mut out, now_ms);
        log_append_time_ms = now_ms;
    }
    let header = validate_batch(&out)?;
    Ok(Some(Prepared {
        batch: out,
        header,
        log_append_time_ms,
    }))
}

fn invalid(e: runnel_protocol::record_batch::BatchError) -> AppendError {
    AppendError::InvalidRecord(e.to_string())
}
