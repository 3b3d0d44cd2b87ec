//! OFF (Object File Format), including the COFF/NOFF variants and `#` comments.

use super::{MeshFile, parse_f64, stl::clip};
use crate::error::{GeometryError, Result};
use crate::mesh::RawMesh;

const FMT: &str = "OFF";

/// True when the first non-comment token is an OFF keyword.
pub fn looks_like_off(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    for line in super::lines(&text) {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let first = line.split_ascii_whitespace().next().unwrap_or("");
        return first.ends_with("OFF") && first.len() <= 6;
    }
    false
}

/// Parses an OFF file.
pub fn parse(bytes: &[u8]) -> Result<MeshFile> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = super::lines(&text)
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty());
    let first = lines
        .next()
        .ok_or_else(|| GeometryError::invalid(FMT, "no OFF header"))?;
    let mut toks = first.split_ascii_whitespace();
    let kw = toks.next().unwrap_or("");
    if !kw.ends_with("OFF") {
        return Err(GeometryError::invalid(
            FMT,
            format!("header is {:?}, not OFF", clip(kw)),
        ));
    }
    // counts may follow the keyword on the same line
    let rest: Vec<&str> = toks.collect();
    let counts_line: Vec<&str> = if rest.len() >= 2 {
        rest
    } else {
        lines
            .next()
            .ok_or_else(|| GeometryError::invalid(FMT, "missing the vertex/face count line"))?
            .split_ascii_whitespace()
            .collect()
    };
    if counts_line.len() < 2 {
        return Err(GeometryError::invalid(
            FMT,
            "malformed vertex/face count line",
        ));
    }
    let parse_count = |t: &str| {
        t.parse::<u64>()
            .map_err(|_| GeometryError::invalid(FMT, format!("bad count {:?}", clip(t))))
    };
    let nv = parse_count(counts_line[0])?;
    let nf = parse_count(counts_line[1])?;
    // every vertex or face line takes at least 2 bytes
    let budget = bytes.len() as u64 / 2 + 1;
    if nv.saturating_add(nf) > budget {
        return Err(GeometryError::invalid(
            FMT,
            format!(
                "header declares {nv} vertices and {nf} faces but the file holds only {} bytes",
                bytes.len()
            ),
        ));
    }
    let mut positions = Vec::with_capacity(nv as usize);
    for i in 0..nv {
        let line = lines.next().ok_or_else(|| {
            GeometryError::invalid(FMT, format!("file ends after {i} of {nv} vertices"))
        })?;
        let mut p = [0f64; 3];
        let mut it = line.split_ascii_whitespace();
        for c in p.iter_mut() {
            let t = it.next().ok_or_else(|| {
                GeometryError::invalid(FMT, format!("vertex {i} has fewer than 3 coordinates"))
            })?;
            *c = parse_f64(t).ok_or_else(|| {
                GeometryError::invalid(FMT, format!("bad coordinate {:?}", clip(t)))
            })?;
        }
        positions.push(p);
    }
    let mut triangles = Vec::new();
    let mut warnings = Vec::new();
    let mut skipped = 0usize;
    for i in 0..nf {
        let line = lines.next().ok_or_else(|| {
            GeometryError::invalid(FMT, format!("file ends after {i} of {nf} faces"))
        })?;
        let mut it = line.split_ascii_whitespace();
        let n: usize = it
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| GeometryError::invalid(FMT, format!("face {i} has no vertex count")))?;
        let idx: Vec<u64> = it
            .take(n)
            .map(|t| t.parse::<u64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| GeometryError::invalid(FMT, format!("face {i} has a bad index")))?;
        if idx.len() < n {
            return Err(GeometryError::invalid(
                FMT,
                format!("face {i} declares {n} vertices but lists {}", idx.len()),
            ));
        }
        if idx.iter().any(|&k| k >= nv) {
            return Err(GeometryError::invalid(
                FMT,
                format!("face {i} references a vertex outside 0..{nv}"),
            ));
        }
        if n < 3 {
            skipped += 1;
            continue;
        }
        for k in 1..n - 1 {
            triangles.push([idx[0] as u32, idx[k] as u32, idx[k + 1] as u32]);
        }
    }
    if skipped > 0 {
        warnings.push(format!(
            "{skipped} faces with fewer than 3 vertices were skipped"
        ));
    }
    Ok(MeshFile {
        mesh: RawMesh {
            positions,
            triangles,
            ..Default::default()
        },
        variant: "ascii".into(),
        warnings,
        ..Default::default()
    })
}
