//! Format detection: content first, the file name's extension only as a tie-breaker.

use crate::formats::{dxf, off, step, stl, threemf};
use serde::Serialize;

/// The CAD formats this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Format {
    /// STL, binary or ASCII.
    #[serde(rename = "stl")]
    Stl,
    /// Wavefront OBJ.
    #[serde(rename = "obj")]
    Obj,
    /// Stanford PLY.
    #[serde(rename = "ply")]
    Ply,
    /// Object File Format.
    #[serde(rename = "off")]
    Off,
    /// 3D Manufacturing Format.
    #[serde(rename = "3mf")]
    ThreeMf,
    /// AutoCAD DXF.
    #[serde(rename = "dxf")]
    Dxf,
    /// STEP (ISO 10303-21).
    #[serde(rename = "step")]
    Step,
}

impl Format {
    /// Lower-case short name, as used in the metadata's `format` field.
    pub fn name(self) -> &'static str {
        match self {
            Format::Stl => "stl",
            Format::Obj => "obj",
            Format::Ply => "ply",
            Format::Off => "off",
            Format::ThreeMf => "3mf",
            Format::Dxf => "dxf",
            Format::Step => "step",
        }
    }

    /// The format a file extension usually means.
    pub fn from_extension(ext: &str) -> Option<Format> {
        Some(match ext.to_ascii_lowercase().as_str() {
            "stl" => Format::Stl,
            "obj" => Format::Obj,
            "ply" => Format::Ply,
            "off" => Format::Off,
            "3mf" => Format::ThreeMf,
            "dxf" => Format::Dxf,
            "step" | "stp" | "p21" => Format::Step,
            _ => return None,
        })
    }
}

/// What the bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    /// A supported CAD format.
    Cad(Format),
    /// Something else, named (e.g. "PNG image").
    Other(String),
}

/// Extension of a file name, without the dot.
pub fn extension(name: &str) -> Option<&str> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty())
}

/// Mostly printable text (no NUL bytes, few control characters) in the first 8 KiB.
pub fn is_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return false;
    }
    let control = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c | 0x1a))
        .count();
    control * 50 <= head.len()
}

/// Names well-known non-CAD files by their magic bytes.
fn signature(b: &[u8]) -> Option<&'static str> {
    let starts = |m: &[u8]| b.starts_with(m);
    Some(if starts(b"\x89PNG\r\n\x1a\n") {
        "PNG image"
    } else if starts(&[0xFF, 0xD8, 0xFF]) {
        "JPEG image"
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        "GIF image"
    } else if starts(b"%PDF-") {
        "PDF document"
    } else if starts(&[0x1F, 0x8B]) {
        "gzip archive"
    } else if starts(b"BZh") && b.len() > 3 && b[3].is_ascii_digit() {
        "bzip2 archive"
    } else if starts(&[0xFD, b'7', b'z', b'X', b'Z', 0]) {
        "xz archive"
    } else if starts(&[0x28, 0xB5, 0x2F, 0xFD]) {
        "zstd archive"
    } else if starts(b"7z\xBC\xAF\x27\x1C") {
        "7-Zip archive"
    } else if starts(b"Rar!\x1A\x07") {
        "RAR archive"
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        "zip archive"
    } else if starts(b"\x7FELF") {
        "ELF executable"
    } else if starts(b"SQLite format 3\0") {
        "SQLite database"
    } else if starts(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        "WebP image"
    } else if starts(b"RIFF") {
        "RIFF media file"
    } else if starts(b"glTF") {
        "binary glTF (GLB) model"
    } else if starts(b"Kaydara FBX Binary") {
        "FBX model"
    } else if b.len() >= 6 && starts(b"AC10") && b[4].is_ascii_digit() && b[5].is_ascii_digit() {
        "DWG drawing (AutoCAD's binary format)"
    } else if starts(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        "OLE compound document (e.g. old Office or SolidWorks file)"
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        "TIFF image"
    } else if b.get(4..8) == Some(b"ftyp") {
        "ISO media file (MP4/MOV/HEIF)"
    } else if starts(b"OggS") {
        "Ogg media file"
    } else if starts(b"ID3") {
        "MP3 audio"
    } else if starts(b"BM") && b.len() > 14 && is_bmp(b) {
        "BMP image"
    } else if starts(b"MZ") {
        "Windows executable"
    } else if starts(b"<?xml") || starts(b"\xEF\xBB\xBF<?xml") {
        "XML document"
    } else if starts(b"<!DOCTYPE") || starts(b"<html") {
        "HTML document"
    } else {
        return None;
    })
}

fn is_bmp(b: &[u8]) -> bool {
    let size = u32::from_le_bytes([b[2], b[3], b[4], b[5]]) as usize;
    size == b.len()
}

/// True when the first meaningful lines are OBJ statements.
fn looks_like_obj(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(16384)]);
    let mut statements = 0;
    let mut vertices = 0;
    for line in head.lines().take(400) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split_ascii_whitespace().next().unwrap_or("");
        match key {
            "v" => {
                vertices += 1;
                statements += 1;
            }
            "vt" | "vn" | "vp" | "f" | "o" | "g" | "s" | "l" | "p" | "mtllib" | "usemtl" | "fo" => {
                statements += 1
            }
            _ => return false,
        }
        if vertices >= 1 && statements >= 3 {
            return true;
        }
    }
    vertices > 0
}

/// Decides what the bytes are. The hint (a file name or extension) only settles text whose
/// content is ambiguous, like an OBJ holding nothing but comments.
pub fn detect(bytes: &[u8], filename_hint: Option<&str>) -> Detected {
    let hinted = filename_hint
        .and_then(|h| extension(h).or(Some(h)))
        .and_then(Format::from_extension);
    if dxf::is_binary(bytes) {
        return Detected::Cad(Format::Dxf);
    }
    if step::looks_like_step(bytes) {
        return Detected::Cad(Format::Step);
    }
    if bytes.starts_with(b"ply\n") || bytes.starts_with(b"ply\r\n") || bytes.starts_with(b"ply \n")
    {
        return Detected::Cad(Format::Ply);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return if threemf::is_3mf_zip(bytes) {
            Detected::Cad(Format::ThreeMf)
        } else if hinted == Some(Format::ThreeMf) {
            // a broken 3MF: let the parser explain what is missing
            Detected::Cad(Format::ThreeMf)
        } else {
            Detected::Other("zip archive".into())
        };
    }
    if let Some(s) = signature(bytes) {
        return Detected::Other(s.into());
    }
    if stl::is_binary_stl(bytes) {
        return Detected::Cad(Format::Stl);
    }
    let text = is_text(bytes);
    if text {
        if stl::looks_ascii(bytes) {
            return Detected::Cad(Format::Stl);
        }
        if dxf::looks_ascii(bytes) {
            return Detected::Cad(Format::Dxf);
        }
        if off::looks_like_off(bytes) {
            return Detected::Cad(Format::Off);
        }
        if looks_like_obj(bytes) && hinted.is_none_or(|h| h == Format::Obj) {
            return Detected::Cad(Format::Obj);
        }
    }
    match hinted {
        // binary STL with a wrong triangle count: the STL reader explains the mismatch
        Some(Format::Stl) if bytes.len() >= 84 => Detected::Cad(Format::Stl),
        Some(f) if text => Detected::Cad(f),
        Some(f) => Detected::Other(format!(
            "binary data that is not a valid {} file",
            f.name().to_ascii_uppercase()
        )),
        None if text => Detected::Other("unrecognised text file".into()),
        None => Detected::Other("unrecognised binary data".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_win_over_extension() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(
            detect(png, Some("model.stl")),
            Detected::Other("PNG image".into())
        );
        assert_eq!(
            detect(b"%PDF-1.7\n...", None),
            Detected::Other("PDF document".into())
        );
    }

    #[test]
    fn binary_stl_starting_with_solid() {
        let mut b = b"solid but binary".to_vec();
        b.resize(80, b' ');
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&[0u8; 50]);
        assert_eq!(detect(&b, None), Detected::Cad(Format::Stl));
        assert!(stl::is_binary_stl(&b));
    }

    #[test]
    fn hint_settles_ambiguous_text() {
        assert_eq!(
            detect(b"# just a comment\n", Some("x.obj")),
            Detected::Cad(Format::Obj)
        );
        assert_eq!(
            detect(b"# just a comment\n", None),
            Detected::Other("unrecognised text file".into())
        );
        assert_eq!(
            detect(b"v 1 2 3\nv 1 2 3\nf 1 2 3\n", None),
            Detected::Cad(Format::Obj)
        );
    }
}
