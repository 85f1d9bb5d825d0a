//! A read-only view of Kafka v2 (magic 2) record batches, plus the two in-place patches the
//! broker is allowed to make (`baseOffset` and `partitionLeaderEpoch`, both outside the CRC).
//!
//! Batches stay opaque bytes on the hot path: only the 61-byte header is decoded here. No I/O.
//!
//! ```text
//! offset  field                 type
//!   0     baseOffset            i64
//!   8     batchLength           i32   bytes after this field
//!  12     partitionLeaderEpoch  i32
//!  16     magic                 i8    must be 2
//!  17     crc                   u32   CRC-32C of bytes [21..end]
//!  21     attributes            i16
//!  23     lastOffsetDelta       i32
//!  27     baseTimestamp         i64
//!  35     maxTimestamp          i64
//!  43     producerId            i64
//!  51     producerEpoch         i16
//!  53     baseSequence          i32
//!  57     recordsCount          i32
//!  61     records ...
//! ```

/// Size of the fixed v2 batch header, in bytes.
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes before the part counted by `batchLength` (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;

/// Smallest legal `batchLength`: the header after the length field, with zero records.
pub const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;

const OFFSET_BASE_OFFSET: usize = 0;
const OFFSET_BATCH_LENGTH: usize = 8;
const OFFSET_LEADER_EPOCH: usize = 12;
const OFFSET_MAGIC: usize = 16;
const OFFSET_CRC: usize = 17;
/// The CRC covers everything from the attributes to the end of the batch.
const OFFSET_CRC_START: usize = 21;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Why a batch was rejected. Messages are meant for the operator reading the broker log.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BatchError {
    #[error("record batch too short: {len} bytes, need at least {needed}")]
    TooShort { len: usize, needed: usize },
    #[error("unsupported record batch magic {magic}: only format v2 (magic 2) is supported")]
    UnsupportedMagic { magic: i8 },
    #[error(
        "record batch length field says {declared} bytes in total but {actual} bytes were given"
    )]
    LengthMismatch { declared: usize, actual: usize },
    #[error("invalid record batch length {batch_length}: must be at least {MIN_BATCH_LENGTH}")]
    InvalidLength { batch_length: i32 },
    #[error(
        "record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x} (corrupted in transit or on disk)"
    )]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("record batch has negative records count {0}")]
    NegativeRecordCount(i32),
    #[error("record batch has negative lastOffsetDelta {0}")]
    NegativeOffsetDelta(i32),
    #[error("record batch uses unknown compression codec id {0}")]
    UnknownCompression(i16),
    /// The records inside the batch do not parse or do not match its header.
    #[error("invalid records in batch: {0}")]
    InvalidRecords(String),
    #[error("record batch could not be (de)compressed: {0}")]
    Compression(String),
}

/// Compression codec from attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// Attribute bit 3: whose clock stamped `maxTimestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The decoded fixed header of one v2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8-byte slice"))
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4-byte slice"))
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2-byte slice"))
}

impl BatchHeader {
    /// Decodes the header fields. Checks only that 61 bytes are present: no magic, length or
    /// CRC checks (use [`validate_batch`] for those).
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(BatchError::TooShort {
                len: buf.len(),
                needed: BATCH_HEADER_LEN,
            });
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, OFFSET_BASE_OFFSET),
            batch_length: be_i32(buf, OFFSET_BATCH_LENGTH),
            partition_leader_epoch: be_i32(buf, OFFSET_LEADER_EPOCH),
            magic: buf[OFFSET_MAGIC] as i8,
            crc: be_i32(buf, OFFSET_CRC) as u32,
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        })
    }

    /// Whole batch size on disk / on the wire, including the 12-byte log overhead.
    /// A negative `batch_length` counts as zero; [`validate_batch`] rejects such batches.
    pub fn total_size(&self) -> usize {
        usize::try_from(self.batch_length).unwrap_or(0) + LOG_OVERHEAD
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn compression(&self) -> Result<Compression, BatchError> {
        match self.attributes & ATTR_COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & ATTR_TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
}

/// CRC-32C over `batch[21..]`, the range Kafka's v2 CRC covers. `batch` must hold at least
/// the header (shorter input yields the CRC of an empty range).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(OFFSET_CRC_START..).unwrap_or(&[]))
}

/// Plain CRC-32C of `data` (for files that share the batch checksum, such as producer-state
/// snapshots).
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Full check of one batch as produced or as read back from disk: header present, magic 2,
/// `batch` is exactly one batch, CRC matches, counts non-negative, codec known.
pub fn validate_batch(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.magic != 2 {
        return Err(BatchError::UnsupportedMagic {
            magic: header.magic,
        });
    }
    if header.batch_length < MIN_BATCH_LENGTH {
        return Err(BatchError::InvalidLength {
            batch_length: header.batch_length,
        });
    }
    if header.total_size() != batch.len() {
        return Err(BatchError::LengthMismatch {
            declared: header.total_size(),
            actual: batch.len(),
        });
    }
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    if header.records_count < 0 {
        return Err(BatchError::NegativeRecordCount(header.records_count));
    }
    if header.last_offset_delta < 0 {
        return Err(BatchError::NegativeOffsetDelta(header.last_offset_delta));
    }
    header.compression()?;
    Ok(header)
}

/// Overwrites `baseOffset`. Outside the CRC, so the batch stays valid.
/// Panics if `batch` is shorter than 8 bytes (a caller bug: batches are validated first).
pub fn set_base_offset(batch: &mut [u8], offset: i64) {
    batch[OFFSET_BASE_OFFSET..OFFSET_BASE_OFFSET + 8].copy_from_slice(&offset.to_be_bytes());
}

/// Overwrites `partitionLeaderEpoch`. Outside the CRC, so the batch stays valid.
/// Panics if `batch` is shorter than 16 bytes.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[OFFSET_LEADER_EPOCH..OFFSET_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Iterates over concatenated batches (a produce record set, a fetch response, a segment
/// chunk), yielding each whole batch slice with its header. Does not check CRCs.
///
/// Stops with `None` when fewer bytes remain than a whole batch (a trailing partial batch is
/// normal in fetch responses and torn log tails); [`BatchIter::position`] then tells how many
/// bytes the whole batches covered. A header with an impossible length yields one error, after
/// which the iterator is exhausted.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        BatchIter {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// Bytes consumed by the whole batches yielded so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(BatchHeader, &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = &self.buf[self.pos..];
        if rest.len() < LOG_OVERHEAD {
            return None;
        }
        let batch_length = be_i32(rest, OFFSET_BATCH_LENGTH);
        if batch_length < MIN_BATCH_LENGTH {
            self.failed = true;
            return Some(Err(BatchError::InvalidLength { batch_length }));
        }
        let total = batch_length as usize + LOG_OVERHEAD;
        if rest.len() < total {
            return None;
        }
        let batch = &rest[..total];
        let header = BatchHeader::parse(batch).expect("total >= BATCH_HEADER_LEN");
        self.pos += total;
        Some(Ok((header, batch)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression as KCompression, Record, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType as KTimestampType,
    };
    use proptest::prelude::*;

    fn batch(n: usize, compression: KCompression) -> Vec<u8> {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: KTimestampType::Creation,
                offset: i as i64,
                // The encoder starts a new batch when offset - sequence changes.
                sequence: i as i32,
                timestamp: 1_000 + i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![b'v'; i + 1])),
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

    #[test]
    fn parses_encoder_output() {
        let b = batch(3, KCompression::None);
        let h = validate_batch(&b).unwrap();
        assert_eq!(h.magic, 2);
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.last_offset(), 2);
        assert_eq!(h.total_size(), b.len());
        assert_eq!(h.base_timestamp, 1_000);
        assert_eq!(h.max_timestamp, 1_002);
        assert_eq!(h.compression().unwrap(), Compression::None);
        assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
        assert!(!h.is_transactional() && !h.is_control());
    }

    #[test]
    fn gzip_codec_is_reported() {
        let b = batch(4, KCompression::Gzip);
        assert_eq!(
            validate_batch(&b).unwrap().compression().unwrap(),
            Compression::Gzip
        );
    }

    #[test]
    fn rejects_short_wrong_magic_and_wrong_length() {
        let b = batch(1, KCompression::None);
        assert!(matches!(
            validate_batch(&b[..60]),
            Err(BatchError::TooShort { .. })
        ));
        let mut m = b.clone();
        m[16] = 1;
        assert_eq!(
            validate_batch(&m),
            Err(BatchError::UnsupportedMagic { magic: 1 })
        );
        let mut longer = b.clone();
        longer.push(0);
        assert!(matches!(
            validate_batch(&longer),
            Err(BatchError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn rejects_unknown_codec_even_with_valid_crc() {
        let mut b = batch(1, KCompression::None);
        b[22] |= 0x07;
        let crc = compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(validate_batch(&b), Err(BatchError::UnknownCompression(7)));
    }

    #[test]
    fn iterator_yields_whole_batches_and_stops_at_partial() {
        let a = batch(2, KCompression::None);
        let b = batch(5, KCompression::None);
        let mut buf = [a.clone(), b.clone()].concat();
        buf.extend_from_slice(&b[..30]);
        let mut it = BatchIter::new(&buf);
        assert_eq!(it.next().unwrap().unwrap().1, &a[..]);
        assert_eq!(it.next().unwrap().unwrap().1, &b[..]);
        assert!(it.next().is_none());
        assert_eq!(it.position(), a.len() + b.len());
    }

    #[test]
    fn iterator_reports_bad_length_once() {
        let mut a = batch(1, KCompression::None);
        a[8..12].copy_from_slice(&10i32.to_be_bytes());
        let mut it = BatchIter::new(&a);
        assert!(matches!(
            it.next(),
            Some(Err(BatchError::InvalidLength { batch_length: 10 }))
        ));
        assert!(it.next().is_none());
        assert_eq!(it.position(), 0);
    }

    proptest! {
        #[test]
        fn any_flipped_byte_after_crc_field_is_detected(
            n in 1usize..5, pick in any::<prop::sample::Index>(), flip in 1u8..=255
        ) {
            let mut b = batch(n, KCompression::None);
            let at = 21 + pick.index(b.len() - 21);
            b[at] ^= flip;
            prop_assert!(validate_batch(&b).is_err());
        }

        #[test]
        fn patching_offset_and_epoch_keeps_crc_valid(
            n in 1usize..5, offset in 0i64..i64::MAX / 2, epoch in any::<i32>()
        ) {
            let mut b = batch(n, KCompression::None);
            set_base_offset(&mut b, offset);
            set_partition_leader_epoch(&mut b, epoch);
            let h = validate_batch(&b).unwrap();
            prop_assert_eq!(h.base_offset, offset);
            prop_assert_eq!(h.partition_leader_epoch, epoch);
            prop_assert_eq!(h.last_offset(), offset + n as i64 - 1);
        }
    }
}
