//! Length-prefixed framing: every Kafka request and response is a big-endian `i32` size followed
//! by that many bytes.

use bytes::{Buf, Bytes, BytesMut};

/// Bytes of the size prefix in front of every frame.
pub const FRAME_SIZE_PREFIX_LEN: usize = 4;

/// The smallest request body a header can fit in: api key, api version and correlation id.
pub const MIN_REQUEST_FRAME_LEN: usize = 8;

/// Why a byte stream cannot be framed. Either way the connection must be closed: the stream has
/// lost its frame boundaries, or the peer asked for more memory than the broker allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
    #[error("frame size {0} is negative or too small to hold a request header")]
    InvalidSize(i32),
}

/// Reads the size prefix at the front of `buf` without consuming it; `Ok(None)` until four bytes
/// are there. Checking the size before reading the body means an oversized frame is refused
/// without allocating for it.
pub fn peek_frame_size(buf: &[u8], max_frame_bytes: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..FRAME_SIZE_PREFIX_LEN) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes(prefix.try_into().expect("four bytes"));
    if size < MIN_REQUEST_FRAME_LEN as i32 {
        return Err(FrameError::InvalidSize(size));
    }
    let size = size as usize;
    if size > max_frame_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_frame_bytes,
        });
    }
    Ok(Some(size))
}

/// Splits one whole frame body off the front of `buf`, or returns `Ok(None)` when more bytes are
/// needed. The returned `Bytes` shares `buf`'s allocation, so the body is never copied.
pub fn split_frame(
    buf: &mut BytesMut,
    max_frame_bytes: usize,
) -> Result<Option<Bytes>, FrameError> {
    let Some(size) = peek_frame_size(buf, max_frame_bytes)? else {
        return Ok(None);
    };
    if buf.len() < FRAME_SIZE_PREFIX_LEN + size {
        return Ok(None);
    }
    buf.advance(FRAME_SIZE_PREFIX_LEN);
    Ok(Some(buf.split_to(size).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn framed(body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.put_i32(body.len() as i32);
        buf.put_slice(body);
        buf
    }

    #[test]
    fn splits_whole_frames_and_waits_for_partial_ones() {
        let mut buf = framed(b"0123456789");
        buf.extend_from_slice(&framed(b"abcdefgh")[..6]);
        assert_eq!(
            split_frame(&mut buf, 100).unwrap().unwrap(),
            &b"0123456789"[..]
        );
        assert_eq!(split_frame(&mut buf, 100).unwrap(), None);
        assert_eq!(buf.len(), 6);
    }

    #[test]
    fn refuses_oversized_negative_and_tiny_frames() {
        let mut big = BytesMut::new();
        big.put_i32(1_000);
        assert_eq!(
            split_frame(&mut big, 999),
            Err(FrameError::TooLarge {
                size: 1000,
                max: 999
            })
        );
        let mut negative = BytesMut::new();
        negative.put_i32(-5);
        assert_eq!(
            split_frame(&mut negative, 999),
            Err(FrameError::InvalidSize(-5))
        );
        let mut tiny = framed(b"abc");
        assert_eq!(split_frame(&mut tiny, 999), Err(FrameError::InvalidSize(3)));
    }
}
