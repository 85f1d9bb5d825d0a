//! Decompression of a batch's records section, bounded. A few bytes of gzip or zstd can stand
//! for gigabytes of zeros; decompressing a produced batch without a bound would let one
//! request exhaust the broker's memory. The bound is far above any real batch (Kafka's
//! default `message.max.bytes` is 1 MiB compressed), and a batch past it is refused (as
//! INVALID_RECORD, like any batch whose records do not open) instead of being inflated.
//!
//! The broker opens produced batches only when a topic setting needs their records
//! (compaction, recompression, LogAppendTime) and in the cleaner; reading stops one byte past
//! the bound, so one request costs at most about twice the bound while the buffer grows.

use std::io::Read;

use bytes::Bytes;
use kafka_protocol::compression::{self as codec, Decompressor};

use crate::record_batch::{BatchError, Compression};

/// The most bytes one batch's records may decompress to: 256 MiB.
pub const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;

/// The xerial framing Kafka's snappy uses: this magic, then length-prefixed snappy blocks.
const SNAPPY_XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

/// Decompresses a records section of at most [`MAX_DECOMPRESSED_BYTES`].
pub fn decompress(codec: Compression, body: &[u8]) -> Result<Bytes, BatchError> {
    decompress_bounded(codec, body, MAX_DECOMPRESSED_BYTES)
}

/// Decompresses a records section, failing once it exceeds `limit` bytes: the streams are
/// read through a bound, and snappy's block headers (which state each block's length) are
/// checked before anything is allocated.
pub fn decompress_bounded(
    codec: Compression,
    body: &[u8],
    limit: usize,
) -> Result<Bytes, BatchError> {
    match codec {
        Compression::None => Ok(Bytes::copy_from_slice(body)),
        Compression::Gzip => read_bounded(flate2::read::GzDecoder::new(body), limit),
        Compression::Lz4 => read_bounded(lz4::Decoder::new(body).map_err(io_error)?, limit),
        Compression::Zstd => read_bounded(
            zstd::stream::read::Decoder::new(body).map_err(io_error)?,
            limit,
        ),
        Compression::Snappy => {
            let declared = snappy_decompressed_len(body)?;
            check_limit(declared, limit)?;
            let mut input = Bytes::copy_from_slice(body);
            codec::Snappy::decompress(&mut input, |out| Ok(std::mem::take(out)))
                .map_err(|e| BatchError::Compression(format!("{e:#}")))
        }
    }
}

fn read_bounded(reader: impl Read, limit: usize) -> Result<Bytes, BatchError> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(io_error)?;
    check_limit(out.len(), limit)?;
    Ok(Bytes::from(out))
}

fn check_limit(len: usize, limit: usize) -> Result<(), BatchError> {
    if len > limit {
        return Err(BatchError::Compression(format!(
            "the records decompress to more than {limit} bytes"
        )));
    }
    Ok(())
}

fn io_error(e: std::io::Error) -> BatchError {
    BatchError::Compression(e.to_string())
}

/// The total length the snappy blocks declare, without decompressing them (xerial framing,
/// or one raw snappy block as Kafka's Java client also accepts).
fn snappy_decompressed_len(body: &[u8]) -> Result<usize, BatchError> {
    let header_error = |e: snap::Error| BatchError::Compression(format!("snappy header: {e}"));
    let Some(mut rest) = body.strip_prefix(SNAPPY_XERIAL_MAGIC.as_slice()) else {
        return snap::raw::decompress_len(body).map_err(header_error);
    };
    let mut total = 0usize;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| BatchError::Compression("truncated snappy block length".into()))?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail
            .get(..len)
            .ok_or_else(|| BatchError::Compression("truncated snappy block".into()))?;
        total = total.saturating_add(snap::raw::decompress_len(block).map_err(header_error)?);
        rest = &tail[len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::compression::Compressor;

    use super::*;
    use crate::records::compress;

    const CODECS: [Compression; 4] = [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn compressed(codec: Compression, data: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        compress(codec, data, &mut out).unwrap();
        out
    }

    #[test]
    fn every_codec_round_trips_up_to_the_limit() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for codec in CODECS {
            let body = compressed(codec, &data);
            let out = decompress_bounded(codec, &body, data.len()).unwrap();
            assert_eq!(&out[..], &data[..], "{codec:?}");
        }
    }

    #[test]
    fn every_codec_refuses_one_byte_past_the_limit() {
        let data = vec![0u8; 100_000];
        for codec in CODECS {
            let body = compressed(codec, &data);
            let error = decompress_bounded(codec, &body, data.len() - 1).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("decompress to more than 99999 bytes"),
                "{codec:?}: {error}"
            );
        }
    }

    #[test]
    fn a_zstd_bomb_is_refused_without_inflating_it() {
        // 1 GiB of zeros is a few tens of kilobytes of zstd.
        let mut body = BytesMut::new();
        codec::Zstd::compress(&mut body, |buf| {
            buf.resize(1 << 30, 0);
            Ok(())
        })
        .unwrap();
        assert!(body.len() < 1 << 20, "{}", body.len());
        let error = decompress(Compression::Zstd, &body).unwrap_err();
        assert!(matches!(error, BatchError::Compression(_)), "{error}");
    }

    #[test]
    fn raw_snappy_and_garbage_are_handled() {
        let raw = snap::raw::Encoder::new()
            .compress_vec(b"hello snappy")
            .unwrap();
        let out = decompress_bounded(Compression::Snappy, &raw, 100).unwrap();
        assert_eq!(&out[..], b"hello snappy");
        assert!(decompress_bounded(Compression::Snappy, &raw, 5).is_err());
        let mut truncated = SNAPPY_XERIAL_MAGIC.to_vec();
        truncated.extend_from_slice(&[0, 0, 0, 9, 1]);
        assert!(decompress(Compression::Snappy, &truncated).is_err());
        for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            assert!(
                decompress(codec, b"not compressed at all").is_err(),
                "{codec:?}"
            );
        }
    }
}
