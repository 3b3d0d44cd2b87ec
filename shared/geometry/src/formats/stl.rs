//! STL, binary and ASCII.
//!
//! Binary is recognised by its size (84 + 50 × declared triangles), whatever the header says:
//! many binary exporters start the 80-byte header with "solid".

use super::MeshFile;
use crate::error::{GeometryError, Result};
use crate::mesh::RawMesh;
use rayon::prelude::*;

const FMT: &str = "STL";

/// True when the bytes are a binary STL whose declared triangle count matches the size.
pub fn is_binary_stl(bytes: &[u8]) -> bool {
    declared_count(bytes).is_some_and(|n| 84 + 50 * n == bytes.len() as u64)
}

fn declared_count(bytes: &[u8]) -> Option<u64> {
    let c = bytes.get(80..84)?;
    Some(u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64)
}

/// True when the text starts like an ASCII STL ("solid" keyword first).
pub fn looks_ascii(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes[start..].len() >= 5 && bytes[start..start + 5].eq_ignore_ascii_case(b"solid")
}

/// Parses an STL file, choosing binary or ASCII by content.
pub fn parse(bytes: &[u8]) -> Result<MeshFile> {
    if is_binary_stl(bytes) {
        return parse_binary(bytes);
    }
    if looks_ascii(bytes) {
        return parse_ascii(bytes);
    }
    if bytes.len() < 84 {
        return Err(GeometryError::invalid(
            FMT,
            format!(
                "binary STL needs an 84-byte header but the file holds {} bytes",
                bytes.len()
            ),
        ));
    }
    parse_binary(bytes)
}

/// Parses a binary STL; the declared count is checked against the size before allocating.
pub fn parse_binary(bytes: &[u8]) -> Result<MeshFile> {
    let n = declared_count(bytes).ok_or_else(|| {
        GeometryError::invalid(
            FMT,
            format!(
                "binary STL needs an 84-byte header but the file holds {} bytes",
                bytes.len()
            ),
        )
    })?;
    let need = 84 + 50 * n;
    let have = bytes.len() as u64;
    if need > have {
        return Err(GeometryError::invalid(
            FMT,
            format!(
                "binary STL declares {n} triangles ({need} bytes) but the file holds {have} bytes"
            ),
        ));
    }
    let mut warnings = Vec::new();
    if need < have {
        warnings.push(format!(
            "{} bytes after the {n} declared triangles were ignored",
            have - need
        ));
    }
    let body = &bytes[84..need as usize];
    let mut positions = vec![[0f64; 3]; (n * 3) as usize];
    positions
        .par_chunks_mut(3 * 4096)
        .zip(body.par_chunks(50 * 4096))
        .for_each(|(out, recs)| {
            for (tri, rec) in out.chunks_exact_mut(3).zip(recs.chunks_exact(50)) {
                for (k, p) in tri.iter_mut().enumerate() {
                    for (c, v) in p.iter_mut().enumerate() {
                        let o = 12 + k * 12 + c * 4;
                        *v =
                            f32::from_le_bytes([rec[o], rec[o + 1], rec[o + 2], rec[o + 3]]) as f64;
                    }
                }
            }
        });
    let triangles = (0..n as u32)
        .into_par_iter()
        .map(|i| [3 * i, 3 * i + 1, 3 * i + 2])
        .collect();
    let header = String::from_utf8_lossy(&bytes[..80])
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_string();
    Ok(MeshFile {
        mesh: RawMesh {
            positions,
            triangles,
            ..Default::default()
        },
        variant: "binary".into(),
        name: (!header.is_empty()).then_some(header),
        warnings,
        ..Default::default()
    })
}

/// Parses an ASCII STL: every `solid … endsolid` block is one part.
pub fn parse_ascii(bytes: &[u8]) -> Result<MeshFile> {
    let text = String::from_utf8_lossy(bytes);
    let mut mesh = RawMesh::default();
    let mut parts: Vec<u32> = Vec::new();
    let mut part = 0u32;
    let mut in_solid = false;
    let mut solid_vertices = 0usize;
    let mut name = None;
    let mut warnings = Vec::new();
    let mut tokens = text.split_ascii_whitespace();
    while let Some(tok) = tokens.next() {
        if tok.eq_ignore_ascii_case("vertex") {
            let mut p = [0f64; 3];
            for c in p.iter_mut() {
                let t = tokens.next().ok_or_else(|| {
                    GeometryError::invalid(FMT, "ASCII STL ends inside a vertex (truncated file)")
                })?;
                *c = t.parse().map_err(|_| {
                    GeometryError::invalid(
                        FMT,
                        format!("ASCII STL vertex has a bad coordinate {:?}", clip(t)),
                    )
                })?;
            }
            if !in_solid {
                // tolerate facets outside solid/endsolid, as one anonymous part
                in_solid = true;
            }
            mesh.positions.push(p);
            parts.push(part);
            solid_vertices += 1;
        } else if tok.eq_ignore_ascii_case("endsolid") {
            if !solid_vertices.is_multiple_of(3) {
                return Err(GeometryError::invalid(
                    FMT,
                    format!("ASCII STL solid has {solid_vertices} vertices, not a multiple of 3"),
                ));
            }
            in_solid = false;
            solid_vertices = 0;
            part += 1;
        } else if tok.eq_ignore_ascii_case("solid") {
            if name.is_none() {
                let rest = text[text.find(tok).unwrap_or(0)..]
                    .lines()
                    .next()
                    .unwrap_or("")
                    .get(5..)
                    .unwrap_or("")
                    .trim()
                    .to_string();
                if !rest.is_empty() {
                    name = Some(rest);
                }
            }
            if in_solid && solid_vertices > 0 {
                part += 1;
            }
            in_solid = true;
            solid_vertices = 0;
        }
    }
    if in_solid && solid_vertices > 0 {
        warnings.push("ASCII STL has no closing 'endsolid' (truncated?)".to_string());
    }
    if !solid_vertices.is_multiple_of(3) {
        return Err(GeometryError::invalid(
            FMT,
            format!(
                "ASCII STL ends with {solid_vertices} vertices in its last solid, not a multiple of 3 (truncated file?)"
            ),
        ));
    }
    let n = mesh.positions.len() as u32 / 3;
    mesh.triangles = (0..n).map(|i| [3 * i, 3 * i + 1, 3 * i + 2]).collect();
    if parts.last().copied().unwrap_or(0) > 0 {
        mesh.vertex_part = Some(parts);
    }
    Ok(MeshFile {
        mesh,
        variant: "ascii".into(),
        name,
        warnings,
        ..Default::default()
    })
}

/// Shortens a token for an error message.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}
