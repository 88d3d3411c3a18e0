//! Bounded decompression of a record batch's payload. A producer controls both the
//! compressed bytes and what they inflate to, so every codec here stops as soon as the
//! output would pass `limit` bytes: a small zstd or gzip "bomb" costs at most `limit`
//! bytes of memory and the time to produce them, then gets an error.
//!
//! The formats are Kafka's: gzip (RFC 1952), snappy in xerial's block framing (with
//! plain raw snappy accepted, as the Java client's reader does), the LZ4 frame format,
//! and zstd frames.

use std::io::Read;

/// Why a payload could not be inflated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    #[error("records inflate to more than {0} bytes")]
    TooLarge(usize),
    #[error("the compressed records are corrupt: {0}")]
    Corrupt(String),
    #[error("compression codec {0} is unknown")]
    UnknownCodec(i16),
}

/// xerial snappy-java's stream header: magic, version 1, compatible version 1.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// Decompresses `data` written with Kafka codec `codec` (1 gzip, 2 snappy, 3 lz4,
/// 4 zstd) into at most `limit` bytes.
pub fn inflate(codec: i16, data: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    match codec {
        1 => {
            // One gzip member and nothing after it: the Rust client fails on any trailing
            // byte, so only what every client reads is stored.
            let mut d = flate2::bufread::GzDecoder::new(data);
            let out = read_bounded(&mut d, limit)?;
            if !d.into_inner().is_empty() {
                return Err(corrupt("bytes after the gzip stream"));
            }
            Ok(out)
        }
        2 => snappy(data, limit),
        3 => {
            let d = lz4::Decoder::new(data).map_err(corrupt)?;
            read_bounded(d, limit)
        }
        4 => {
            let d = zstd::stream::read::Decoder::new(data).map_err(corrupt)?;
            read_bounded(d, limit)
        }
        other => Err(InflateError::UnknownCodec(other)),
    }
}

fn corrupt(e: impl std::fmt::Display) -> InflateError {
    InflateError::Corrupt(e.to_string())
}

/// Reads `r` to its end, failing once more than `limit` bytes came out. The buffer grows
/// with what was really produced, never with a size the input claims.
fn read_bounded(r: impl Read, limit: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    let mut r = r.take(limit as u64 + 1);
    r.read_to_end(&mut out).map_err(corrupt)?;
    if out.len() > limit {
        return Err(InflateError::TooLarge(limit));
    }
    Ok(out)
}

fn snappy(data: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    let raw = |block: &[u8], out: &mut Vec<u8>| -> Result<(), InflateError> {
        let n = snap::raw::decompress_len(block).map_err(corrupt)?;
        let start = out.len();
        if n > limit.saturating_sub(start) {
            return Err(InflateError::TooLarge(limit));
        }
        out.resize(start + n, 0);
        snap::raw::Decoder::new()
            .decompress(block, &mut out[start..])
            .map_err(corrupt)?;
        Ok(())
    };
    let mut out = Vec::new();
    if data.len() < XERIAL_HEADER_LEN || &data[..8] != XERIAL_MAGIC {
        raw(data, &mut out)?;
        return Ok(out);
    }
    // The magic with other version fields: snappy-java refuses a version below 1,
    // librdkafka skips the fields, the Rust client reads the whole thing as raw snappy.
    // Only the header every client reads the same way is stored.
    if data[8..XERIAL_HEADER_LEN] != [0, 0, 0, 1, 0, 0, 0, 1] {
        return Err(corrupt(
            "a snappy stream header with unknown version fields",
        ));
    }
    let mut pos = XERIAL_HEADER_LEN;
    while pos < data.len() {
        let len_bytes: [u8; 4] = data
            .get(pos..pos + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| corrupt("a snappy block length is cut off"))?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        pos += 4;
        let block = data
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| corrupt("a snappy block is cut off"))?;
        raw(block, &mut out)?;
        pos += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

    fn compress(codec: i16, data: &[u8]) -> Vec<u8> {
        fn with<C: Compressor<BytesMut>>(data: &[u8]) -> Vec<u8>
        where
            C::BufMut: bytes::BufMut,
        {
            let mut out = BytesMut::new();
            C::compress(&mut out, |b| {
                bytes::BufMut::put_slice(b, data);
                Ok(())
            })
            .unwrap();
            out.to_vec()
        }
        match codec {
            1 => with::<Gzip>(data),
            2 => with::<Snappy>(data),
            3 => with::<Lz4>(data),
            4 => with::<Zstd>(data),
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_codec_round_trips_within_the_limit() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for codec in 1..=4 {
            let c = compress(codec, &data);
            assert_eq!(
                inflate(codec, &c, data.len()).unwrap(),
                data,
                "codec {codec}"
            );
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 16 << 20];
        for codec in 1..=4 {
            let c = compress(codec, &zeros);
            assert!(c.len() < 1 << 20, "codec {codec}: {} bytes", c.len());
            assert_eq!(
                inflate(codec, &c, 1 << 20),
                Err(InflateError::TooLarge(1 << 20)),
                "codec {codec}"
            );
        }
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        for codec in 1..=4 {
            for data in [
                &b""[..],
                b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff",
                b"hello world",
            ] {
                let _ = inflate(codec, data, 1 << 20);
            }
        }
        assert_eq!(inflate(7, b"x", 10), Err(InflateError::UnknownCodec(7)));
    }
}
