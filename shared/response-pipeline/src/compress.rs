//! The encoders and what is worth compressing.

use std::io::Write;

use crate::Encoding;

/// The guide's threshold: smaller bodies cost more in CPU and headers than they save.
pub const MIN_COMPRESS_BYTES: usize = 1024;

/// Compression levels per coding, chosen with `cargo bench -p response-pipeline --bench compression`
/// (figures in the README): per coding, the level after which more CPU buys little size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    /// Brotli quality 0–11. 4: a fifth smaller than gzip 6 on listings; 5 and up cost twice the
    /// CPU for under 10% more. Never 11 (the library default) on the request path: it is two orders
    /// of magnitude slower for a further 15%.
    pub brotli: u32,
    /// gzip level 0–9. 6: level 9 is slower for no measurable gain, 4 saves little time.
    pub gzip: u32,
    /// zstd level 1–22. 1: on JSON it compresses as well as 3 or better, at about 1.5 times the
    /// speed; 6 and up are 5 times slower for 1–5%.
    pub zstd: i32,
}

impl Default for Levels {
    fn default() -> Self {
        Self {
            brotli: 4,
            gzip: 6,
            zstd: 1,
        }
    }
}

/// Brotli window: 2^22 = 4 MiB covers any response under Lambda's 6 MB limit in one window.
const BROTLI_LGWIN: u32 = 22;

/// Compresses `body` with `encoding`. Identity returns a copy.
pub fn compress(encoding: Encoding, body: &[u8], levels: &Levels) -> std::io::Result<Vec<u8>> {
    match encoding {
        Encoding::Identity => Ok(body.to_vec()),
        Encoding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::new(levels.gzip.min(9)),
            );
            enc.write_all(body)?;
            enc.finish()
        }
        Encoding::Brotli => {
            let mut out = Vec::with_capacity(body.len() / 4);
            {
                let mut enc = brotli::CompressorWriter::new(
                    &mut out,
                    64 * 1024,
                    levels.brotli.min(11),
                    BROTLI_LGWIN,
                );
                enc.write_all(body)?;
                enc.flush()?;
            }
            Ok(out)
        }
        Encoding::Zstd => zstd::bulk::compress(body, levels.zstd),
    }
}

/// Decompresses; for tests, benchmarks and clients of this crate that need to check a body.
pub fn decompress(encoding: Encoding, body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    match encoding {
        Encoding::Identity => out.extend_from_slice(body),
        Encoding::Gzip => {
            flate2::read::GzDecoder::new(body).read_to_end(&mut out)?;
        }
        Encoding::Brotli => {
            brotli::Decompressor::new(body, 64 * 1024).read_to_end(&mut out)?;
        }
        Encoding::Zstd => {
            zstd::stream::read::Decoder::new(body)?.read_to_end(&mut out)?;
        }
    }
    Ok(out)
}

/// Whether a content type compresses well: JSON, text, CSV, SVG, XML and JavaScript. Images,
/// archives and CAD binaries are already compressed or do not shrink enough to pay for the CPU.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence.starts_with("text/") {
        return true;
    }
    matches!(
        essence.as_str(),
        "application/json"
            | "application/problem+json"
            | "application/x-ndjson"
            | "application/javascript"
            | "application/xml"
            | "image/svg+xml"
            | "application/csv"
    ) || essence.ends_with("+json")
        || essence.ends_with("+xml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_round_trips() {
        let body = serde_json::to_vec(&serde_json::json!({"items": vec!["a repeated value"; 500]}))
            .unwrap();
        for enc in Encoding::PREFERENCE {
            let packed = compress(enc, &body, &Levels::default()).unwrap();
            if enc != Encoding::Identity {
                assert!(
                    packed.len() < body.len() / 10,
                    "{enc}: {} of {}",
                    packed.len(),
                    body.len()
                );
            }
            assert_eq!(decompress(enc, &packed).unwrap(), body, "{enc}");
        }
    }

    #[test]
    fn only_text_like_types_are_compressible() {
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "text/csv",
            "text/html",
            "image/svg+xml",
            "application/vnd.api+json",
            "application/problem+json",
        ] {
            assert!(is_compressible(ct), "{ct}");
        }
        for ct in [
            "image/png",
            "image/jpeg",
            "image/webp",
            "application/zip",
            "model/stl",
            "application/octet-stream",
            "application/step",
            "model/3mf",
            "application/gzip",
            "",
        ] {
            assert!(!is_compressible(ct), "{ct}");
        }
    }

    #[test]
    fn default_brotli_level_is_never_the_library_default() {
        assert!(Levels::default().brotli < 11);
    }
}
