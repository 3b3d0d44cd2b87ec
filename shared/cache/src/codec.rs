//! Stored value format.
//!
//! Every stored value starts with a 1-byte header:
//!
//! | bits | meaning |
//! | --- | --- |
//! | 7..4 | kind: `1` = raw bytes (caller's own format), `2` = MessagePack (rmp-serde, structs as arrays) |
//! | 3..1 | reserved, must be 0 |
//! | 0 | 1 = LZ4 block compressed; a little-endian `u32` uncompressed length follows the header |
//!
//! Anything else is rejected by the decoder (and reported as a miss), so a future format change only
//! needs a new kind value.

use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};

use crate::CacheError;

/// Header kind for raw bytes.
pub(crate) const KIND_RAW: u8 = 0x10;
/// Header kind for MessagePack-encoded typed values.
pub(crate) const KIND_MSGPACK: u8 = 0x20;
/// Header flag: payload is LZ4-compressed.
pub(crate) const FLAG_LZ4: u8 = 0x01;
const KIND_MASK: u8 = 0xF0;
const RESERVED_MASK: u8 = 0x0E;
const LEN_BYTES: usize = 4;

/// Why a stored value could not be decoded (reported as a miss plus an error count).
#[derive(Debug)]
pub(crate) struct DecodeError(pub(crate) String);

/// Encoder/decoder for stored values.
#[derive(Debug, Clone)]
pub(crate) struct Codec {
    compress_threshold: usize,
    max_value_bytes: usize,
}

impl Codec {
    /// Codec compressing typed payloads of at least `compress_threshold` bytes.
    pub(crate) fn new(compress_threshold: usize, max_value_bytes: usize) -> Self {
        Codec {
            compress_threshold,
            max_value_bytes,
        }
    }

    /// Serialises a typed value, compressing it when large enough and when that saves space.
    pub(crate) fn encode_value<T: Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<Vec<u8>, CacheError> {
        let mut buf = vec![KIND_MSGPACK];
        rmp_serde::encode::write(&mut buf, value).map_err(|e| CacheError::Encode(e.to_string()))?;
        let payload_len = buf.len() - 1;
        self.check_len(payload_len)?;
        if payload_len >= self.compress_threshold
            && let Some(compressed) = compress(KIND_MSGPACK, &buf[1..])
        {
            return Ok(compressed);
        }
        Ok(buf)
    }

    /// Wraps caller-provided bytes (never compressed: the middleware's bodies already are).
    pub(crate) fn encode_raw(&self, bytes: &[u8]) -> Result<Vec<u8>, CacheError> {
        self.check_len(bytes.len())?;
        let mut buf = Vec::with_capacity(bytes.len() + 1);
        buf.push(KIND_RAW);
        buf.extend_from_slice(bytes);
        Ok(buf)
    }

    /// Decodes a typed value written by [`Codec::encode_value`].
    pub(crate) fn decode_value<T: DeserializeOwned>(
        &self,
        stored: &[u8],
    ) -> Result<T, DecodeError> {
        let (kind, payload) = self.payload(stored)?;
        if kind != KIND_MSGPACK {
            return Err(DecodeError(format!(
                "stored kind {kind:#04x} is not a typed value"
            )));
        }
        rmp_serde::from_slice(&payload).map_err(|e| DecodeError(e.to_string()))
    }

    /// Returns the payload bytes of any stored value (decompressed if needed).
    pub(crate) fn decode_raw(&self, stored: Vec<u8>) -> Result<Bytes, DecodeError> {
        let header = *stored
            .first()
            .ok_or_else(|| DecodeError("empty value".into()))?;
        check_header(header)?;
        if header & FLAG_LZ4 == 0 {
            // Zero-copy: hand out a view past the header byte.
            return Ok(Bytes::from(stored).slice(1..));
        }
        let (_, payload) = self.payload(&stored)?;
        Ok(Bytes::from(payload.into_owned()))
    }

    fn payload<'a>(
        &self,
        stored: &'a [u8],
    ) -> Result<(u8, std::borrow::Cow<'a, [u8]>), DecodeError> {
        let (&header, rest) = stored
            .split_first()
            .ok_or_else(|| DecodeError("empty value".into()))?;
        check_header(header)?;
        let kind = header & KIND_MASK;
        if header & FLAG_LZ4 == 0 {
            return Ok((kind, std::borrow::Cow::Borrowed(rest)));
        }
        if rest.len() < LEN_BYTES {
            return Err(DecodeError("truncated compressed value".into()));
        }
        let (len_bytes, block) = rest.split_at(LEN_BYTES);
        let mut len_arr = [0u8; LEN_BYTES];
        len_arr.copy_from_slice(len_bytes);
        let declared = u32::from_le_bytes(len_arr) as usize;
        // The length comes from storage: bound it before allocating.
        if declared > self.max_value_bytes {
            return Err(DecodeError(format!(
                "declared length {declared} exceeds the {} byte limit",
                self.max_value_bytes
            )));
        }
        let out = lz4_flex::block::decompress(block, declared)
            .map_err(|e| DecodeError(format!("lz4: {e}")))?;
        if out.len() != declared {
            return Err(DecodeError("decompressed length mismatch".into()));
        }
        Ok((kind, std::borrow::Cow::Owned(out)))
    }

    fn check_len(&self, len: usize) -> Result<(), CacheError> {
        if len > self.max_value_bytes {
            return Err(CacheError::InvalidInput(format!(
                "value of {len} bytes exceeds the {} byte limit",
                self.max_value_bytes
            )));
        }
        Ok(())
    }
}

fn check_header(header: u8) -> Result<(), DecodeError> {
    let kind = header & KIND_MASK;
    if header & RESERVED_MASK != 0 || (kind != KIND_RAW && kind != KIND_MSGPACK) {
        return Err(DecodeError(format!("unknown value header {header:#04x}")));
    }
    Ok(())
}

/// LZ4-compresses `payload`; `None` when that would not make it smaller.
fn compress(kind: u8, payload: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(payload.len()).ok()?;
    let prefix = 1 + LEN_BYTES;
    let mut out = vec![0u8; prefix + lz4_flex::block::get_maximum_output_size(payload.len())];
    let written = lz4_flex::block::compress_into(payload, &mut out[prefix..]).ok()?;
    if written + LEN_BYTES >= payload.len() {
        return None;
    }
    out[0] = kind | FLAG_LZ4;
    out[1..prefix].copy_from_slice(&len.to_le_bytes());
    out.truncate(prefix + written);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Meta {
        id: u64,
        name: String,
        tags: Vec<String>,
        extra: serde_json::Value,
    }

    fn meta(n: usize) -> Meta {
        Meta {
            id: 42,
            name: "bracket.dwg".into(),
            tags: (0..n).map(|i| format!("tag-{}", i % 7)).collect(),
            extra: serde_json::json!({"units": "mm", "layers": [1, 2, 3]}),
        }
    }

    #[test]
    fn small_value_is_uncompressed_msgpack() {
        let c = Codec::new(1024, 1 << 20);
        let enc = c.encode_value(&meta(2)).unwrap();
        assert_eq!(enc[0], KIND_MSGPACK);
        assert!(enc.len() < 1024);
        let back: Meta = c.decode_value(&enc).unwrap();
        assert_eq!(back, meta(2));
    }

    #[test]
    fn large_value_is_compressed_and_round_trips() {
        let c = Codec::new(1024, 1 << 20);
        let v = meta(500);
        let plain_len = rmp_serde::to_vec(&v).unwrap().len();
        let enc = c.encode_value(&v).unwrap();
        assert_eq!(enc[0], KIND_MSGPACK | FLAG_LZ4);
        assert!(enc.len() < plain_len / 2, "{} vs {plain_len}", enc.len());
        let back: Meta = c.decode_value(&enc).unwrap();
        assert_eq!(back, v);
        // Raw access returns the decompressed MessagePack payload.
        let raw = c.decode_raw(enc).unwrap();
        assert_eq!(raw.len(), plain_len);
    }

    #[test]
    fn raw_bytes_are_stored_verbatim() {
        let c = Codec::new(16, 1 << 20);
        let body = vec![7u8; 4096];
        let enc = c.encode_raw(&body).unwrap();
        assert_eq!(enc[0], KIND_RAW);
        assert_eq!(enc.len(), body.len() + 1);
        assert_eq!(c.decode_raw(enc).unwrap().as_ref(), &body[..]);
    }

    #[test]
    fn incompressible_value_stays_uncompressed() {
        // Pseudo-random bytes (xorshift) do not compress.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let data: Vec<u8> = (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(compress(KIND_MSGPACK, &data).is_none());
        // Whereas repetitive data does compress.
        assert!(compress(KIND_MSGPACK, &[b'a'; 4000]).is_some());
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let c = Codec::new(16, 1 << 20);
        assert!(c.decode_value::<Meta>(&[]).is_err());
        assert!(c.decode_value::<Meta>(&[0xFF, 1, 2]).is_err());
        assert!(c.decode_value::<Meta>(&[KIND_MSGPACK | 0x02, 1]).is_err());
        assert!(
            c.decode_value::<Meta>(&[KIND_MSGPACK | FLAG_LZ4, 1])
                .is_err()
        );
        // Declared length above the limit is refused before allocating.
        let mut huge = vec![KIND_MSGPACK | FLAG_LZ4];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0u8; 8]);
        assert!(c.decode_value::<Meta>(&huge).is_err());
        // Garbage LZ4 block.
        let mut bad = vec![KIND_MSGPACK | FLAG_LZ4];
        bad.extend_from_slice(&100u32.to_le_bytes());
        bad.extend_from_slice(&[0xF0, 0xFF, 0xFF, 0x01]);
        assert!(c.decode_value::<Meta>(&bad).is_err());
        // Raw bytes are not a typed value.
        assert!(c.decode_value::<Meta>(&[KIND_RAW, 1, 2]).is_err());
        // Wrong type inside valid MessagePack.
        let enc = c.encode_value(&"just a string").unwrap();
        assert!(c.decode_value::<Meta>(&enc).is_err());
    }

    #[test]
    fn oversized_values_are_refused() {
        let c = Codec::new(16, 100);
        assert!(matches!(
            c.encode_raw(&[0u8; 101]),
            Err(CacheError::InvalidInput(_))
        ));
        assert!(matches!(
            c.encode_value(&vec![1u64; 200]),
            Err(CacheError::InvalidInput(_))
        ));
    }
}
