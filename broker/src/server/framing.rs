//! Kafka framing: a 4-byte big-endian size, then that many bytes. Sizes below zero or
//! above `socket.request.max.bytes` close the connection, as Kafka does.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is larger than socket.request.max.bytes ({1})")]
    TooLarge(i64, usize),
    #[error("negative frame size {0}")]
    Negative(i32),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Bytes>, FrameError> {
    match read_size(r, max).await? {
        Some(n) => Ok(Some(read_body(r, n).await?)),
        None => Ok(None),
    }
}

/// Reads a frame's size field; `Ok(None)` at a clean end of stream.
pub async fn read_size<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<usize>, FrameError> {
    let mut size = [0u8; 4];
    match r.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let n = i32::from_be_bytes(size);
    if n < 0 {
        return Err(FrameError::Negative(n));
    }
    if n as usize > max {
        return Err(FrameError::TooLarge(n as i64, max));
    }
    Ok(Some(n as usize))
}

/// Reads a frame's `n` bytes. The buffer grows with what arrives (from at most 64 KiB
/// up front), so a size field claiming 100 MiB costs nothing until the bytes come.
pub async fn read_body<R: AsyncRead + Unpin>(r: &mut R, n: usize) -> Result<Bytes, FrameError> {
    let mut buf = Vec::with_capacity(n.min(64 * 1024));
    let got = r.take(n as u64).read_to_end(&mut buf).await?;
    if got < n {
        return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(Bytes::from(buf))
}

/// Starts a response frame: reserves the size field.
pub fn begin_frame(capacity: usize) -> BytesMut {
    let mut b = BytesMut::with_capacity(capacity + 4);
    b.put_i32(0);
    b
}

/// Fills in the size of a frame made with `begin_frame`.
pub fn finish_frame(b: &mut BytesMut) {
    let n = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&n.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_frames_and_refuses_bad_sizes() {
        let mut ok: &[u8] = &[0, 0, 0, 3, 1, 2, 3];
        assert_eq!(
            &read_frame(&mut ok, 10).await.unwrap().unwrap()[..],
            &[1, 2, 3]
        );
        assert!(read_frame(&mut ok, 10).await.unwrap().is_none());
        let mut big: &[u8] = &[0, 0, 1, 0];
        assert!(matches!(
            read_frame(&mut big, 10).await,
            Err(FrameError::TooLarge(256, 10))
        ));
        let mut neg: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut neg, 10).await,
            Err(FrameError::Negative(-1))
        ));
        let mut torn: &[u8] = &[0, 0, 0, 5, 1];
        assert!(matches!(
            read_frame(&mut torn, 10).await,
            Err(FrameError::Io(_))
        ));
    }
}
