//! A segment: one `.log` file of whole batches plus its `.index` and `.timeindex`.
//!
//! [`Segment`] holds what every segment has and the read paths. Writing is only possible
//! through [`ActiveSegment`] (the one segment a log appends to, see `active.rs`); rolling turns
//! it into a read-only [`SealedSegment`]. Future retention deletes sealed segments and
//! compaction replaces them, so nothing here assumes a sealed segment lives forever.

use crate::index::{OffsetEntry, OffsetIndex};
use crate::offsets::Offset;
use crate::recovery::{scan, ScanRules};
use crate::time_index::{TimeEntry, TimeIndex};
use crate::txn_index::{TxnIndex, TXN_INDEX_SUFFIX};
use bytes::{Bytes, BytesMut};
use runnel_protocol::record_batch::{BatchHeader, BatchIter, BATCH_HEADER_LEN};
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) const LOG_SUFFIX: &str = "log";
pub(crate) const INDEX_SUFFIX: &str = "index";
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";

/// `00000000000000000042.log` for base offset 42 (Kafka's naming).
pub(crate) fn segment_path(dir: &Path, base_offset: Offset, suffix: &str) -> PathBuf {
    dir.join(format!("{:020}.{suffix}", base_offset.value()))
}

/// The base offset encoded in a `.log` file name, if it is one.
pub(crate) fn parse_log_file_name(name: &str) -> Option<Offset> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok().map(Offset)
}

/// The largest batch max timestamp in a segment and that batch's last offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaxTimestamp {
    pub(crate) timestamp: i64,
    pub(crate) last_offset: Offset,
}

/// Decides where sparse index entries go. Append and rebuild both feed every batch through
/// the same cursor, so a rebuilt index is identical to the one written by appends.
#[derive(Debug, Clone, Default)]
pub(crate) struct IndexCursor {
    bytes_since_entry: u64,
    has_entries: bool,
    pub(crate) max_timestamp: Option<MaxTimestamp>,
    last_time_entry: Option<i64>,
}

impl IndexCursor {
    /// Index entries due for a batch at `position`: one at the first batch and then once at
    /// least `interval_bytes` of log were written since the previous entry; a time entry at
    /// those points only if the max timestamp grew.
    pub(crate) fn on_batch(
        &mut self,
        base: Offset,
        header: &BatchHeader,
        position: u64,
        interval_bytes: u64,
    ) -> (Option<OffsetEntry>, Option<TimeEntry>) {
        let last_offset = Offset(header.last_offset());
        if self
            .max_timestamp
            .is_none_or(|m| m.timestamp < header.max_timestamp)
        {
            self.max_timestamp = Some(MaxTimestamp {
                timestamp: header.max_timestamp,
                last_offset,
            });
        }
        let mut due = (None, None);
        if !self.has_entries || self.bytes_since_entry >= interval_bytes {
            due.0 = Some(OffsetEntry {
                relative_offset: relative(base, last_offset),
                position: u32::try_from(position).expect("segments stay below 4 GiB"),
            });
            due.1 = self.time_entry_due(base);
            self.has_entries = true;
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += header.total_size() as u64;
        due
    }

    /// A time entry for the current max timestamp, if the time index does not have it yet.
    pub(crate) fn time_entry_due(&mut self, base: Offset) -> Option<TimeEntry> {
        let max = self.max_timestamp?;
        if self.last_time_entry.is_some_and(|t| t >= max.timestamp) {
            return None;
        }
        self.last_time_entry = Some(max.timestamp);
        Some(TimeEntry {
            timestamp: max.timestamp,
            relative_offset: relative(base, max.last_offset),
        })
    }
}

fn relative(base: Offset, offset: Offset) -> u32 {
    u32::try_from(offset.value() - base.value()).expect("relative offsets are checked to fit u32")
}

/// State common to active and sealed segments, and every read path.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: Offset,
    /// Shared so the cleaner can read a sealed segment without holding the log's lock.
    pub(crate) log: Arc<File>,
    /// Bytes of whole, valid batches. Reads never look past this, so a half-written append
    /// is never served.
    pub(crate) size_bytes: u64,
    /// One past the last offset in the segment (== base offset when empty).
    pub(crate) next_offset: Offset,
    pub(crate) index: OffsetIndex,
    pub(crate) time_index: TimeIndex,
    /// Aborted transactions whose abort marker is in this segment.
    pub(crate) txn_index: TxnIndex,
    pub(crate) max_timestamp: Option<MaxTimestamp>,
}

impl Segment {
    /// Opens (creating if missing) the three files of the segment based at `base_offset`.
    pub(crate) fn open_files(dir: &Path, base_offset: Offset) -> io::Result<Segment> {
        let log = Arc::new(
            OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(segment_path(dir, base_offset, LOG_SUFFIX))?,
        );
        let size_bytes = log.metadata()?.len();
        Ok(Segment {
            base_offset,
            log,
            size_bytes,
            next_offset: base_offset,
            index: OffsetIndex::open(&segment_path(dir, base_offset, INDEX_SUFFIX))?,
            time_index: TimeIndex::open(&segment_path(dir, base_offset, TIME_INDEX_SUFFIX))?,
            txn_index: TxnIndex::open(&segment_path(dir, base_offset, TXN_INDEX_SUFFIX))?,
            max_timestamp: None,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    /// Rebuilds both indexes by scanning `[0, end)` and stores the scan's result. Returns
    /// the scan end (`verify_crc` decides whether CRCs are checked).
    pub(crate) fn rebuild(
        &mut self,
        end: u64,
        verify_crc: bool,
        interval_bytes: u64,
    ) -> io::Result<(crate::recovery::ScanEnd, IndexCursor)> {
        let base = self.base_offset;
        let rules = ScanRules {
            base_offset: base,
            min_offset: base,
            verify_crc,
        };
        let mut cursor = IndexCursor::default();
        let (mut offsets, mut times) = (Vec::new(), Vec::new());
        let end_state = scan(&self.log, 0, end, rules, |header, position| {
            let (offset_entry, time_entry) =
                cursor.on_batch(base, header, position, interval_bytes);
            offsets.extend(offset_entry);
            times.extend(time_entry);
            Ok(())
        })?;
        self.index.replace(offsets)?;
        self.time_index.replace(times)?;
        self.size_bytes = end_state.valid_end;
        self.next_offset = end_state.next_offset.unwrap_or(base);
        self.max_timestamp = cursor.max_timestamp;
        Ok((end_state, cursor))
    }

    pub(crate) fn sync(&self) -> io::Result<()> {
        self.log.sync_data()?;
        self.index.sync()?;
        self.time_index.sync()?;
        self.txn_index.sync()
    }

    fn read_header(&self, position: u64) -> io::Result<Option<BatchHeader>> {
        if position + BATCH_HEADER_LEN as u64 > self.size_bytes {
            return Ok(None);
        }
        let mut buf = [0u8; BATCH_HEADER_LEN];
        self.log.read_exact_at(&mut buf, position)?;
        let header = BatchHeader::parse(&buf).expect("buffer holds a whole header");
        // Only whole batches below size_bytes were ever accepted, so a bad length here
        // means the file changed under us.
        if header.batch_length < 0 || position + header.total_size() as u64 > self.size_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "batch at position {position} of segment {} overruns the segment",
                    self.base_offset
                ),
            ));
        }
        Ok(Some(header))
    }

    /// Calls `f(position, header)` for every batch from the one holding `from` to the end of
    /// the segment (bounded by the segment size).
    pub(crate) fn visit_batches(
        &self,
        from: Offset,
        mut f: impl FnMut(u64, &BatchHeader) -> io::Result<()>,
    ) -> io::Result<()> {
        let Some((mut position, _)) = self.find_batch(from, |_| true)? else {
            return Ok(());
        };
        while let Some(header) = self.read_header(position)? {
            f(position, &header)?;
            position += header.total_size() as u64;
        }
        Ok(())
    }

    /// The first batch whose last offset is >= `target` and which satisfies `accept`, found
    /// from the sparse index by walking batch headers (bounded by the segment size).
    pub(crate) fn find_batch(
        &self,
        target: Offset,
        accept: impl Fn(&BatchHeader) -> bool,
    ) -> io::Result<Option<(u64, BatchHeader)>> {
        let relative_target = target.value().saturating_sub(self.base_offset.value());
        let mut position = u64::from(
            self.index
                .lookup(u32::try_from(relative_target).unwrap_or(u32::MAX)),
        );
        while let Some(header) = self.read_header(position)? {
            if header.last_offset() >= target.value() && accept(&header) {
                return Ok(Some((position, header)));
            }
            position += header.total_size() as u64;
        }
        Ok(None)
    }

    /// Reads `len` bytes at `position` with one pread into a fresh buffer.
    pub(crate) fn read_bytes(&self, position: u64, len: usize) -> io::Result<BytesMut> {
        let mut buf = BytesMut::zeroed(len);
        self.log.read_exact_at(&mut buf, position)?;
        Ok(buf)
    }

    /// Whole batches from the one containing `start`; see `PartitionLog::read`. None when
    /// no batch of this segment reaches `start`.
    pub(crate) fn read(
        &self,
        start: Offset,
        max_bytes: usize,
        upper_bound: Offset,
        min_one_batch: bool,
    ) -> io::Result<Option<(Bytes, Offset)>> {
        let Some((position, first)) = self.find_batch(start, |_| true)? else {
            return Ok(None);
        };
        let empty = Ok(Some((Bytes::new(), start)));
        if first.base_offset >= upper_bound.value() {
            return empty;
        }
        let available = usize::try_from(self.size_bytes - position).unwrap_or(usize::MAX);
        let len = if first.total_size() <= max_bytes {
            max_bytes.min(available)
        } else if min_one_batch {
            first.total_size()
        } else {
            return empty;
        };
        let mut buf = self.read_bytes(position, len)?;
        let mut iter = BatchIter::new(&buf);
        let mut next = start;
        let mut end = 0;
        for item in iter.by_ref() {
            let (header, _) = item.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if header.base_offset >= upper_bound.value() {
                break;
            }
            next = Offset(header.last_offset() + 1);
            end += header.total_size();
        }
        buf.truncate(end);
        Ok(Some((buf.freeze(), next)))
    }
}

/// The one segment a log appends to. See `active.rs` for the write path.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub(crate) segment: Segment,
    pub(crate) cursor: IndexCursor,
    /// When this segment was created (or, after a restart, its first batch's timestamp),
    /// for `segment.ms` while the segment has no batch with a timestamp.
    pub(crate) created_ms: i64,
    /// The first batch's max timestamp (Kafka's `rollingBasedTimestamp`): `segment.ms` is
    /// measured from it to the incoming batch's max timestamp.
    pub(crate) first_batch_ts: Option<i64>,
}

impl Deref for ActiveSegment {
    type Target = Segment;
    fn deref(&self) -> &Segment {
        &self.segment
    }
}

/// A read-only segment. Its files are complete and were fsynced when it was sealed.
#[derive(Debug)]
pub(crate) struct SealedSegment {
    segment: Segment,
}

impl Deref for SealedSegment {
    type Target = Segment;
    fn deref(&self) -> &Segment {
        &self.segment
    }
}

impl SealedSegment {
    pub(crate) fn new(segment: Segment) -> SealedSegment {
        SealedSegment { segment }
    }

    /// The transaction index is the one part of a sealed segment that recovery may rewrite
    /// (it is rebuilt from the log when producer state is replayed).
    pub(crate) fn txn_index_mut(&mut self) -> &mut TxnIndex {
        &mut self.segment.txn_index
    }

    /// Opens a sealed segment found on disk: trusts its indexes when they pass the sanity
    /// checks (then only the tail after the last index entry is scanned, to learn the last
    /// offset), rebuilds them from a header scan otherwise.
    pub(crate) fn open(dir: &Path, base_offset: Offset, interval_bytes: u64) -> io::Result<Self> {
        let mut segment = Segment::open_files(dir, base_offset)?;
        let last_relative = segment.index.last().map(|e| e.relative_offset);
        let check = segment
            .index
            .sanity_check(segment.size_bytes)
            .and_then(|()| segment.time_index.sanity_check(last_relative));
        if let Err(reason) = check {
            tracing::warn!(segment = %base_offset, dir = %dir.display(), %reason,
                "rebuilding indexes of sealed segment");
            let end = segment.size_bytes;
            let (scan_end, mut cursor) = segment.rebuild(end, false, interval_bytes)?;
            warn_if_short(dir, base_offset, end, &scan_end);
            // Sealing wrote a final time entry for the max timestamp; so does the rebuild.
            if let Some(entry) = cursor.time_entry_due(base_offset) {
                segment.time_index.push(entry)?;
                segment.time_index.sync()?;
            }
            return Ok(SealedSegment { segment });
        }
        segment.scan_tail()?;
        Ok(SealedSegment { segment })
    }
}

impl Segment {
    /// Learns the next offset and max timestamp of a segment with trusted indexes by
    /// scanning only the batches from the last index entry on.
    fn scan_tail(&mut self) -> io::Result<()> {
        let base = self.base_offset;
        self.max_timestamp = self.time_index.last().map(|e| MaxTimestamp {
            timestamp: e.timestamp,
            last_offset: Offset(base.value() + i64::from(e.relative_offset)),
        });
        let Some(last_entry) = self.index.last() else {
            return Ok(());
        };
        let rules = ScanRules {
            base_offset: base,
            min_offset: base,
            verify_crc: false,
        };
        let mut max = self.max_timestamp;
        let end = scan(
            &self.log,
            u64::from(last_entry.position),
            self.size_bytes,
            rules,
            |h, _| {
                if max.is_none_or(|m| m.timestamp < h.max_timestamp) {
                    max = Some(MaxTimestamp {
                        timestamp: h.max_timestamp,
                        last_offset: Offset(h.last_offset()),
                    });
                }
                Ok(())
            },
        )?;
        self.max_timestamp = max;
        self.next_offset = end.next_offset.unwrap_or(base);
        if end.stopped_because.is_some() {
            tracing::warn!(segment = %base, reason = ?end.stopped_because,
                "sealed segment has trailing bytes that are not whole batches; they are ignored");
            self.size_bytes = end.valid_end;
        }
        Ok(())
    }
}

fn warn_if_short(dir: &Path, base: Offset, end: u64, scan_end: &crate::recovery::ScanEnd) {
    if let Some(reason) = &scan_end.stopped_because {
        tracing::warn!(segment = %base, dir = %dir.display(), ignored_bytes = end - scan_end.valid_end,
            %reason, "sealed segment ends in bytes that are not valid batches; they are ignored");
    }
}
