//! The records inside a v2 batch: decompression, a zero-copy record parser, and the few
//! rewrites the broker makes to a batch's contents (recompression, LogAppendTime, and the log
//! cleaner's retained-records batches). No I/O.
//!
//! The hot produce and fetch paths never come here: a batch is only opened when the topic's
//! configuration forces it (compaction, a broker-side `compression.type`, LogAppendTime).
//!
//! Records are kept as the raw bytes the producer wrote whenever possible. Re-encoding them
//! through `kafka_protocol::records::Record` would lose duplicate header keys (its headers are
//! a map), so a rewritten batch copies each record's bytes and only re-encodes the timestamp
//! delta when the batch's base timestamp moves.
//!
//! ```text
//! record: length varint | attributes i8 | timestampDelta varlong | offsetDelta varint |
//!         keyLength varint | key | valueLength varint | value | headerCount varint | headers
//! ```

use crate::record_batch::{
    compute_crc, validate_batch, BatchError, BatchHeader, Compression, BATCH_HEADER_LEN,
    LOG_OVERHEAD,
};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{self as codec, Compressor};

/// Attribute bit 3: LogAppendTime.
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Attribute bit 6 (KIP-534): `baseTimestamp` holds the delete horizon set by the cleaner.
pub const ATTR_DELETE_HORIZON: i16 = 0x40;
const ATTR_COMPRESSION_MASK: i16 = 0x07;

/// One record of a batch, borrowing from the (decompressed) records buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Attributes byte and everything after the timestamp delta: offset delta, key, value,
    /// headers. Copied as-is when the record is rewritten.
    after_timestamp: &'a [u8],
    attributes: i8,
    /// The whole record including its length prefix.
    pub bytes: &'a [u8],
}

/// The decompressed records section of one batch, plus its header.
#[derive(Debug, Clone)]
pub struct OpenBatch {
    pub header: BatchHeader,
    /// Records section, uncompressed.
    pub data: Bytes,
}

fn malformed(msg: impl Into<String>) -> BatchError {
    BatchError::InvalidRecords(msg.into())
}

impl OpenBatch {
    /// Validates `batch` (CRC included) and decompresses its records.
    pub fn open(batch: &[u8]) -> Result<OpenBatch, BatchError> {
        let header = validate_batch(batch)?;
        let body = &batch[BATCH_HEADER_LEN..];
        let data = decompress(header.compression()?, body)?;
        Ok(OpenBatch { header, data })
    }

    /// Parses every record, checking that they fill the section exactly and that the count
    /// matches the header.
    pub fn records(&self) -> Result<Vec<RawRecord<'_>>, BatchError> {
        let count = usize::try_from(self.header.records_count)
            .map_err(|_| BatchError::NegativeRecordCount(self.header.records_count))?;
        // Every record takes at least 7 bytes, which bounds the allocation by the input.
        let mut records = Vec::with_capacity(count.min(self.data.len() / 7 + 1));
        let mut rest: &[u8] = &self.data;
        while !rest.is_empty() {
            if records.len() == count {
                return Err(malformed(format!(
                    "bytes left after the {count} records the batch header declares"
                )));
            }
            let (record, tail) = parse_record(rest)?;
            records.push(record);
            rest = tail;
        }
        if records.len() != count {
            return Err(malformed(format!(
                "batch header declares {count} records but {} were found",
                records.len()
            )));
        }
        Ok(records)
    }
}

/// Whether any record of the batch has a null key (Kafka refuses those on compacted topics).
/// Control batches carry keys of their own and are not producer data: they count as keyed.
pub fn batch_has_null_key(batch: &[u8]) -> Result<bool, BatchError> {
    let open = OpenBatch::open(batch)?;
    if open.header.is_control() {
        return Ok(false);
    }
    Ok(open.records()?.iter().any(|r| r.key.is_none()))
}

/// Kafka's LogValidator checks of a produced batch's records that need them decompressed:
/// the record count matches the header and the offset deltas run 0, 1, 2, ... with
/// `lastOffsetDelta` the last of them.
pub fn validate_records(batch: &[u8]) -> Result<(), BatchError> {
    let open = OpenBatch::open(batch)?;
    let records = open.records()?;
    for (expected, record) in records.iter().enumerate() {
        if i64::from(record.offset_delta) != expected as i64 {
            return Err(malformed(format!(
                "record {expected} has offset delta {} (producers must number records 0, 1, 2, ...)",
                record.offset_delta
            )));
        }
    }
    if i64::from(open.header.last_offset_delta) != records.len() as i64 - 1 {
        return Err(malformed(format!(
            "lastOffsetDelta {} does not match {} records",
            open.header.last_offset_delta,
            records.len()
        )));
    }
    Ok(())
}

/// Re-encodes the records of `batch` with `codec`, keeping every header field (offsets,
/// timestamps, producer id, epoch and sequence, flags) and every record byte-for-byte.
pub fn recompress(batch: &[u8], codec: Compression) -> Result<Bytes, BatchError> {
    let open = OpenBatch::open(batch)?;
    let records = open.records()?;
    let mut builder = BatchBuilder::new(open.header, codec, open.header.base_timestamp);
    for record in &records {
        builder.push(record, open.header.base_timestamp);
    }
    builder.finish(open.header.last_offset_delta, open.header.max_timestamp)
}

/// Stamps a batch with LogAppendTime in place, as Kafka's LogValidator does: sets attribute
/// bit 3, sets `maxTimestamp` to `now_ms` and recomputes the CRC. `baseTimestamp` and the
/// record deltas are left alone (readers of LogAppendTime batches use `maxTimestamp` for every
/// record). `batch` must be a validated batch.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = i16::from_be_bytes([batch[21], batch[22]]) | ATTR_LOG_APPEND_TIME;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// The delete horizon a cleaner stored in the batch (KIP-534), if any.
pub fn delete_horizon_ms(header: &BatchHeader) -> Option<i64> {
    (header.attributes & ATTR_DELETE_HORIZON != 0).then_some(header.base_timestamp)
}

/// Builds one v2 batch from records of another, for the cleaner and recompression. The
/// header fields come from a template: base offset, leader epoch, producer fields and flags
/// are preserved, so are offsets (records keep their offset deltas from the same base).
#[derive(Debug)]
pub struct BatchBuilder {
    template: BatchHeader,
    codec: Compression,
    base_timestamp: i64,
    delete_horizon: bool,
    count: i32,
    data: BytesMut,
}

impl BatchBuilder {
    pub fn new(template: BatchHeader, codec: Compression, base_timestamp: i64) -> BatchBuilder {
        BatchBuilder {
            template,
            codec,
            base_timestamp,
            delete_horizon: false,
            count: 0,
            data: BytesMut::new(),
        }
    }

    /// Stores `horizon_ms` as the delete horizon (it becomes the base timestamp).
    pub fn with_delete_horizon(mut self, horizon_ms: i64) -> BatchBuilder {
        self.base_timestamp = horizon_ms;
        self.delete_horizon = true;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends `record`, which was encoded against `old_base_timestamp`.
    pub fn push(&mut self, record: &RawRecord<'_>, old_base_timestamp: i64) {
        if old_base_timestamp == self.base_timestamp {
            self.data.put_slice(record.bytes);
        } else {
            let timestamp = old_base_timestamp.wrapping_add(record.timestamp_delta);
            let delta = timestamp.wrapping_sub(self.base_timestamp);
            let mut body = Vec::with_capacity(record.bytes.len() + 10);
            body.push(record.attributes as u8);
            put_varlong(&mut body, delta);
            body.extend_from_slice(record.after_timestamp);
            let mut len = Vec::with_capacity(5);
            put_varint(&mut len, i32::try_from(body.len()).unwrap_or(i32::MAX));
            self.data.put_slice(&len);
            self.data.put_slice(&body);
        }
        self.count += 1;
    }

    /// Compresses the records and writes the header; `last_offset_delta` and `max_timestamp`
    /// are the caller's (the cleaner keeps the source batch's last offset, as Kafka does).
    pub fn finish(self, last_offset_delta: i32, max_timestamp: i64) -> Result<Bytes, BatchError> {
        let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + self.data.len());
        out.put_bytes(0, BATCH_HEADER_LEN);
        compress(self.codec, &self.data, &mut out)?;
        let t = &self.template;
        let mut attributes =
            (t.attributes & !ATTR_COMPRESSION_MASK & !ATTR_DELETE_HORIZON) | codec_id(self.codec);
        if self.delete_horizon {
            attributes |= ATTR_DELETE_HORIZON;
        }
        let batch_length = i32::try_from(out.len() - LOG_OVERHEAD)
            .map_err(|_| malformed("rewritten batch exceeds 2 GiB"))?;
        let mut h = &mut out[..BATCH_HEADER_LEN];
        h.put_i64(t.base_offset);
        h.put_i32(batch_length);
        h.put_i32(t.partition_leader_epoch);
        h.put_i8(2);
        h.put_u32(0);
        h.put_i16(attributes);
        h.put_i32(last_offset_delta);
        h.put_i64(self.base_timestamp);
        h.put_i64(max_timestamp);
        h.put_i64(t.producer_id);
        h.put_i16(t.producer_epoch);
        h.put_i32(t.base_sequence);
        h.put_i32(self.count);
        let crc = compute_crc(&out);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(out.freeze())
    }
}

fn codec_id(codec: Compression) -> i16 {
    match codec {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

fn codec_error(e: anyhow::Error) -> BatchError {
    BatchError::Compression(format!("{e:#}"))
}

/// Compresses `data` onto the end of `out`.
pub fn compress(codec: Compression, data: &[u8], out: &mut BytesMut) -> Result<(), BatchError> {
    fn run<C: Compressor<BytesMut, BufMut = BytesMut>>(
        data: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), BatchError> {
        C::compress(out, |tmp| {
            tmp.put_slice(data);
            Ok(())
        })
        .map_err(codec_error)
    }
    match codec {
        Compression::None => {
            out.put_slice(data);
            Ok(())
        }
        Compression::Gzip => run::<codec::Gzip>(data, out),
        Compression::Snappy => run::<codec::Snappy>(data, out),
        Compression::Lz4 => run::<codec::Lz4>(data, out),
        Compression::Zstd => run::<codec::Zstd>(data, out),
    }
}

/// Parses one record off the front of `buf`.
fn parse_record(buf: &[u8]) -> Result<(RawRecord<'_>, &[u8]), BatchError> {
    let (len, rest) = get_varint(buf)?;
    let len = usize::try_from(len).map_err(|_| malformed("negative record length"))?;
    if rest.len() < len {
        return Err(malformed("record length runs past the batch"));
    }
    let header_len = buf.len() - rest.len();
    let whole = &buf[..header_len + len];
    let (body, tail) = rest.split_at(len);
    let (&attributes, after_attr) = body
        .split_first()
        .ok_or_else(|| malformed("empty record"))?;
    let (timestamp_delta, after_timestamp) = get_varlong(after_attr)?;
    let (offset_delta, r) = get_varint(after_timestamp)?;
    let (key, r) = get_nullable(r, "key")?;
    let (value, r) = get_nullable(r, "value")?;
    let (headers, mut r) = get_varint(r)?;
    if headers < 0 {
        return Err(malformed("negative header count"));
    }
    for _ in 0..headers {
        let (header_key, rr) = get_nullable(r, "header key")?;
        if header_key.is_none() {
            return Err(malformed("null header key"));
        }
        let (_, rr) = get_nullable(rr, "header value")?;
        r = rr;
    }
    if !r.is_empty() {
        return Err(malformed("bytes left inside a record after its headers"));
    }
    Ok((
        RawRecord {
            timestamp_delta,
            offset_delta,
            key,
            value,
            after_timestamp,
            attributes: attributes as i8,
            bytes: whole,
        },
        tail,
    ))
}

fn get_nullable<'a>(buf: &'a [u8], what: &str) -> Result<(Option<&'a [u8]>, &'a [u8]), BatchError> {
    let (len, rest) = get_varint(buf)?;
    if len == -1 {
        return Ok((None, rest));
    }
    let len = usize::try_from(len).map_err(|_| malformed(format!("negative {what} length")))?;
    if rest.len() < len {
        return Err(malformed(format!("{what} runs past the record")));
    }
    let (field, rest) = rest.split_at(len);
    Ok((Some(field), rest))
}

fn get_varlong(buf: &[u8]) -> Result<(i64, &[u8]), BatchError> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let decoded = ((value >> 1) as i64) ^ -((value & 1) as i64);
            return Ok((decoded, &buf[i + 1..]));
        }
    }
    Err(malformed("truncated or overlong varint"))
}

fn get_varint(buf: &[u8]) -> Result<(i32, &[u8]), BatchError> {
    let (value, rest) = get_varlong(buf)?;
    let value = i32::try_from(value).map_err(|_| malformed("varint out of 32-bit range"))?;
    Ok((value, rest))
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_varlong(out, i64::from(value));
}

pub mod control;
mod decompress;

pub use decompress::{decompress, decompress_bounded, MAX_DECOMPRESSED_BYTES};

#[cfg(test)]
mod tests;
