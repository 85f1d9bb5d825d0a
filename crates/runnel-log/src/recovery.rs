//! Scanning a segment's `.log` file batch by batch: used to validate the active segment after
//! a crash (CRC and all) and to rebuild missing or inconsistent indexes of sealed segments
//! (headers only).

use crate::offsets::Offset;
use runnel_protocol::record_batch::{validate_batch, BatchHeader, BatchIter, LOG_OVERHEAD};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Bytes read per pread while scanning; a larger batch gets a buffer of its own size.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// How far a scan got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanEnd {
    /// Position just after the last valid whole batch.
    pub(crate) valid_end: u64,
    /// One past the last offset of the last valid batch; None when no valid batch was found.
    pub(crate) next_offset: Option<Offset>,
    /// Why the scan stopped before `end`, for the operator.
    pub(crate) stopped_because: Option<String>,
}

/// What each scanned batch must satisfy beyond its own header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanRules {
    /// The segment's base offset: relative offsets must fit in u32 above it.
    pub(crate) base_offset: Offset,
    /// Batches must start at or after this offset (offsets only grow within a log).
    pub(crate) min_offset: Offset,
    /// Full `validate_batch` (CRC) rather than header sanity only.
    pub(crate) verify_crc: bool,
}

/// Walks whole batches in `file[from..end]`, calling `on_batch(header, position)` for each
/// valid one, and stops at the first invalid or partial batch.
pub(crate) fn scan(
    file: &File,
    from: u64,
    end: u64,
    rules: ScanRules,
    mut on_batch: impl FnMut(&BatchHeader, u64) -> io::Result<()>,
) -> io::Result<ScanEnd> {
    let mut pos = from;
    let mut min_offset = rules.min_offset;
    let mut next_offset = None;
    let mut buf = Vec::new();
    // Every iteration consumes at least one batch or returns, so the loop is bounded by
    // the file size.
    while pos < end {
        let want = usize::try_from(end - pos)
            .unwrap_or(usize::MAX)
            .min(SCAN_CHUNK_BYTES);
        let chunk = read_chunk(file, pos, want, end, &mut buf)?;
        let mut iter = BatchIter::new(chunk);
        let mut reason = None;
        for item in iter.by_ref() {
            let checked = item.map_err(|e| e.to_string()).and_then(|(header, bytes)| {
                check_batch(&header, bytes, rules, min_offset).map(|()| header)
            });
            match checked {
                Ok(header) => {
                    on_batch(&header, pos)?;
                    pos += header.total_size() as u64;
                    min_offset = Offset(header.last_offset() + 1);
                    next_offset = Some(min_offset);
                }
                Err(e) => {
                    reason = Some(format!("invalid batch at position {pos}: {e}"));
                    break;
                }
            }
        }
        if reason.is_none() && iter.position() == 0 {
            reason = Some(format!("partial batch at position {pos}"));
        }
        if reason.is_some() {
            return Ok(ScanEnd {
                valid_end: pos,
                next_offset,
                stopped_because: reason,
            });
        }
    }
    Ok(ScanEnd {
        valid_end: pos,
        next_offset,
        stopped_because: None,
    })
}

/// Reads `want` bytes at `pos`; if they do not hold one whole batch but the file does, reads
/// exactly that first batch instead.
fn read_chunk<'b>(
    file: &File,
    pos: u64,
    want: usize,
    end: u64,
    buf: &'b mut Vec<u8>,
) -> io::Result<&'b [u8]> {
    buf.resize(want, 0);
    file.read_exact_at(buf, pos)?;
    if want < LOG_OVERHEAD {
        return Ok(buf);
    }
    let batch_length = i32::from_be_bytes(buf[8..12].try_into().expect("4 bytes"));
    let total = usize::try_from(batch_length).unwrap_or(0) + LOG_OVERHEAD;
    if total > want && (total as u64) <= end - pos {
        buf.resize(total, 0);
        file.read_exact_at(buf, pos)?;
    }
    Ok(buf)
}

fn check_batch(
    header: &BatchHeader,
    bytes: &[u8],
    rules: ScanRules,
    min_offset: Offset,
) -> Result<(), String> {
    if rules.verify_crc {
        validate_batch(bytes).map_err(|e| e.to_string())?;
    } else if header.magic != 2 || header.last_offset_delta < 0 {
        return Err(format!(
            "bad header (magic {}, lastOffsetDelta {})",
            header.magic, header.last_offset_delta
        ));
    }
    if header.base_offset < min_offset.value() {
        return Err(format!(
            "base offset {} is below the expected minimum {min_offset}",
            header.base_offset
        ));
    }
    let relative_last = header.last_offset() - rules.base_offset.value();
    if u32::try_from(relative_last).is_err() {
        return Err(format!(
            "last offset {} does not fit the segment based at {}",
            header.last_offset(),
            rules.base_offset
        ));
    }
    Ok(())
}
