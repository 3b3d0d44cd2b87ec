//! Wavefront OBJ: polygons (fan-triangulated), negative indices, objects, groups, materials.
//!
//! Faces are grouped into parts by material (`usemtl`), as the reference implementation
//! does; vertices are merged inside a part only. When every corner of a part carries a
//! texture coordinate or a normal, those take part in the merge key.

use super::{MeshFile, attr_key, parse_f64, stl::clip};
use crate::error::{GeometryError, Result};
use crate::mesh::RawMesh;
use std::collections::HashMap;

const FMT: &str = "OBJ";

#[derive(Default)]
struct Part {
    /// (vertex, texcoord, normal) per corner; -1 when absent
    corners: Vec<(u32, i64, i64)>,
    /// corner count per face
    sizes: Vec<u32>,
}

fn bad(line: usize, what: &str, tok: &str) -> GeometryError {
    GeometryError::invalid(FMT, format!("line {line}: {what} {:?}", clip(tok)))
}

/// Resolves a 1-based (or negative, relative) OBJ index against `count` elements.
fn resolve(tok: &str, count: usize, line: usize) -> Result<i64> {
    let i: i64 = tok.parse().map_err(|_| bad(line, "bad face index", tok))?;
    Ok(match i.cmp(&0) {
        std::cmp::Ordering::Greater => i - 1,
        std::cmp::Ordering::Less => count as i64 + i,
        std::cmp::Ordering::Equal => return Err(bad(line, "face index 0 is not allowed", tok)),
    })
}

/// Parses an OBJ file.
pub fn parse(bytes: &[u8]) -> Result<MeshFile> {
    let text = String::from_utf8_lossy(bytes);
    let mut v: Vec<[f64; 3]> = Vec::new();
    let mut vt: Vec<[f64; 2]> = Vec::new();
    let mut vn: Vec<[f64; 3]> = Vec::new();
    let mut parts: Vec<Part> = Vec::new();
    let mut part_index: HashMap<Option<String>, usize> = HashMap::new();
    let mut current: Option<usize> = None;
    let mut material: Option<String> = None;
    let mut warnings = Vec::new();
    let mut name = None;
    let mut bad_faces = 0usize;
    let mut short_faces = 0usize;
    let mut pending = String::new();

    for (no, raw_line) in text.split('\n').enumerate() {
        let line_no = no + 1;
        let mut line = raw_line.trim_end_matches('\r');
        // backslash continues a line
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            pending.push(' ');
            continue;
        }
        let joined;
        if !pending.is_empty() {
            pending.push_str(line);
            joined = std::mem::take(&mut pending);
            line = &joined;
        }
        let line = match line.find('#') {
            Some(p) => &line[..p],
            None => line,
        };
        let mut toks = line.split_ascii_whitespace();
        let Some(key) = toks.next() else { continue };
        match key {
            "v" => {
                let mut p = [0f64; 3];
                for c in p.iter_mut() {
                    let t = toks
                        .next()
                        .ok_or_else(|| bad(line_no, "vertex needs 3 coordinates:", line))?;
                    *c = parse_f64(t).ok_or_else(|| bad(line_no, "bad vertex coordinate", t))?;
                }
                v.push(p);
            }
            "vt" => {
                let mut p = [0f64; 2];
                for c in p.iter_mut() {
                    if let Some(t) = toks.next() {
                        *c = parse_f64(t)
                            .ok_or_else(|| bad(line_no, "bad texture coordinate", t))?;
                    }
                }
                vt.push(p);
            }
            "vn" => {
                let mut p = [0f64; 3];
                for c in p.iter_mut() {
                    if let Some(t) = toks.next() {
                        *c = parse_f64(t).ok_or_else(|| bad(line_no, "bad normal", t))?;
                    }
                }
                vn.push(p);
            }
            "usemtl" => {
                material = Some(toks.collect::<Vec<_>>().join(" "));
                current = None;
            }
            "o" if name.is_none() => {
                let n = toks.collect::<Vec<_>>().join(" ");
                if !n.is_empty() {
                    name = Some(n);
                }
            }
            "f" | "fo" => {
                let idx = *current.get_or_insert_with(|| {
                    *part_index.entry(material.clone()).or_insert_with(|| {
                        parts.push(Part::default());
                        parts.len() - 1
                    })
                });
                let part = &mut parts[idx];
                let start = part.corners.len();
                let mut valid = true;
                for group in toks {
                    let mut it = group.split('/');
                    let vi = resolve(it.next().unwrap_or(""), v.len(), line_no)?;
                    let ti = match it.next() {
                        Some(t) if !t.is_empty() => resolve(t, vt.len(), line_no)?,
                        _ => -1,
                    };
                    let ni = match it.next() {
                        Some(t) if !t.is_empty() => resolve(t, vn.len(), line_no)?,
                        _ => -1,
                    };
                    // positive indices may point at vertices defined further down; they are
                    // checked once the whole file is read
                    if !(0..u32::MAX as i64).contains(&vi) {
                        valid = false;
                    }
                    // an out-of-range texture/normal index is kept and disables that
                    // attribute for the part later
                    part.corners
                        .push((vi.clamp(0, u32::MAX as i64) as u32, ti, ni));
                }
                let count = part.corners.len() - start;
                if !valid {
                    bad_faces += 1;
                    part.corners.truncate(start);
                } else if count < 3 {
                    short_faces += 1;
                    part.corners.truncate(start);
                } else {
                    part.sizes.push(count as u32);
                }
            }
            _ => {}
        }
    }
    let mut mesh = RawMesh::default();
    let mut parts_of_vertex: Vec<u32> = Vec::new();
    let mut attrs: Vec<[i64; 5]> = Vec::new();
    let mut any_attr = false;
    let mut plain_map: Vec<u32> = vec![u32::MAX; v.len()];
    for (pi, part) in parts.iter().enumerate() {
        let has_tex = part
            .corners
            .iter()
            .all(|c| c.1 >= 0 && (c.1 as usize) < vt.len());
        let has_norm = part
            .corners
            .iter()
            .all(|c| c.2 >= 0 && (c.2 as usize) < vn.len());
        let mut combo: HashMap<(u32, i64, i64), u32> = HashMap::new();
        let mut touched = Vec::new();
        let mut ids = Vec::with_capacity(part.corners.len());
        for &(vi, ti, ni) in &part.corners {
            if vi as usize >= v.len() {
                ids.push(u32::MAX);
                continue;
            }
            let id = if has_tex || has_norm {
                let k = (
                    vi,
                    if has_tex { ti } else { -1 },
                    if has_norm { ni } else { -1 },
                );
                *combo.entry(k).or_insert_with(|| {
                    mesh.positions.push(v[vi as usize]);
                    parts_of_vertex.push(pi as u32);
                    attrs.push(attr_key(
                        has_tex.then(|| vt[ti as usize]),
                        has_norm.then(|| vn[ni as usize]),
                    ));
                    any_attr = true;
                    (mesh.positions.len() - 1) as u32
                })
            } else {
                let slot = &mut plain_map[vi as usize];
                if *slot == u32::MAX {
                    *slot = mesh.positions.len() as u32;
                    touched.push(vi);
                    mesh.positions.push(v[vi as usize]);
                    parts_of_vertex.push(pi as u32);
                    attrs.push([0; 5]);
                }
                *slot
            };
            ids.push(id);
        }
        for t in touched {
            plain_map[t as usize] = u32::MAX;
        }
        let mut at = 0usize;
        for &n in &part.sizes {
            let f = &ids[at..at + n as usize];
            at += n as usize;
            if f.contains(&u32::MAX) {
                bad_faces += 1;
                continue;
            }
            for k in 1..f.len() - 1 {
                mesh.triangles.push([f[0], f[k], f[k + 1]]);
            }
        }
    }
    if bad_faces > 0 {
        warnings.push(format!(
            "{bad_faces} faces reference vertices that do not exist and were skipped"
        ));
    }
    if short_faces > 0 {
        warnings.push(format!(
            "{short_faces} faces have fewer than 3 vertices and were skipped"
        ));
    }

    if parts.len() > 1 {
        mesh.vertex_part = Some(parts_of_vertex);
    }
    if any_attr {
        mesh.attr_keys = Some(attrs);
    }
    if mesh.triangles.is_empty() && !v.is_empty() {
        // points only: keep them for a point-cloud thumbnail
        mesh.positions = v;
    }
    Ok(MeshFile {
        mesh,
        variant: "ascii".into(),
        name,
        warnings,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_negative_references() {
        let src = b"f 1 2 3\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf -3 -2 -1\nf 1 2 9\n";
        let m = parse(src).unwrap();
        assert_eq!(m.mesh.triangles.len(), 2);
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    }

    #[test]
    fn polygons_fan_and_materials_split_parts() {
        let src = b"v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 0 2 0\nusemtl a\nf 1 2 3 4 5\nusemtl b\nf 1 2 3\n";
        let m = parse(src).unwrap();
        assert_eq!(m.mesh.triangles.len(), 4);
        let parts = m.mesh.vertex_part.expect("two materials, two parts");
        assert_eq!(parts.iter().filter(|&&p| p == 1).count(), 3);
    }
}
