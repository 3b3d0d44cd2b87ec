//! PLY: ASCII, binary little and big endian; meshes and point clouds; any extra properties.
//!
//! Element counts from the header are checked against the bytes left before anything is
//! allocated. Texture coordinates (per vertex `s,t`/`u,v`/`texture_u,texture_v`, or a per-face
//! `texcoord` list) and vertex normals take part in the merge key, as in the reference.

use super::{MeshFile, attr_key, stl::clip};
use crate::error::{GeometryError, Result};
use crate::mesh::RawMesh;

const FMT: &str = "PLY";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Scalar {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl Scalar {
    fn parse(s: &str) -> Option<Scalar> {
        Some(match s {
            "char" | "int8" => Scalar::I8,
            "uchar" | "uint8" => Scalar::U8,
            "short" | "int16" => Scalar::I16,
            "ushort" | "uint16" => Scalar::U16,
            "int" | "int32" => Scalar::I32,
            "uint" | "uint32" => Scalar::U32,
            "float" | "float32" => Scalar::F32,
            "double" | "float64" => Scalar::F64,
            _ => return None,
        })
    }
    fn size(self) -> usize {
        match self {
            Scalar::I8 | Scalar::U8 => 1,
            Scalar::I16 | Scalar::U16 => 2,
            Scalar::I32 | Scalar::U32 | Scalar::F32 => 4,
            Scalar::F64 => 8,
        }
    }
}

#[derive(Debug, Clone)]
struct Property {
    name: String,
    /// Some(count type) for list properties
    list: Option<Scalar>,
    kind: Scalar,
}

#[derive(Debug, Clone)]
struct Element {
    name: String,
    count: u64,
    props: Vec<Property>,
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Ascii,
    Le,
    Be,
}

/// Reads values of one element row by row, in whichever encoding.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    enc: Encoding,
    /// ASCII rows are lines: end of the current row's line
    row_end: usize,
}

impl Reader<'_> {
    fn eof(&self) -> GeometryError {
        GeometryError::invalid(
            FMT,
            "data ends before the header's element counts are met (truncated file)",
        )
    }

    /// Starts the next element row: in ASCII, the next non-blank line (extra values at the
    /// end of a line are ignored, as the reference does).
    fn begin_row(&mut self) -> Result<()> {
        if self.enc != Encoding::Ascii {
            return Ok(());
        }
        let d = self.data;
        self.pos = self.row_end.max(self.pos);
        loop {
            while self.pos < d.len() && d[self.pos].is_ascii_whitespace() {
                self.pos += 1;
            }
            if self.pos >= d.len() {
                return Err(self.eof());
            }
            let end = d[self.pos..]
                .iter()
                .position(|&c| c == b'\n' || c == b'\r')
                .map_or(d.len(), |p| self.pos + p);
            if end > self.pos {
                self.row_end = end;
                return Ok(());
            }
        }
    }

    fn ascii_token(&mut self) -> Result<&str> {
        let d = &self.data[..self.row_end];
        while self.pos < d.len() && d[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        let start = self.pos;
        while self.pos < d.len() && !d[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(GeometryError::invalid(
                FMT,
                "an ASCII row has fewer values than the header declares",
            ));
        }
        std::str::from_utf8(&d[start..self.pos])
            .map_err(|_| GeometryError::invalid(FMT, "non-text bytes in ASCII data"))
    }

    fn read(&mut self, s: Scalar) -> Result<f64> {
        if self.enc == Encoding::Ascii {
            let t = self.ascii_token()?;
            return t.parse::<f64>().map_err(|_| {
                GeometryError::invalid(FMT, format!("bad number {:?} in ASCII data", clip(t)))
            });
        }
        let n = s.size();
        let b = self
            .data
            .get(self.pos..self.pos + n)
            .ok_or_else(|| self.eof())?;
        self.pos += n;
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(b);
        if self.enc == Encoding::Be {
            a[..n].reverse();
        }
        Ok(match s {
            Scalar::I8 => a[0] as i8 as f64,
            Scalar::U8 => a[0] as f64,
            Scalar::I16 => i16::from_le_bytes([a[0], a[1]]) as f64,
            Scalar::U16 => u16::from_le_bytes([a[0], a[1]]) as f64,
            Scalar::I32 => i32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f64,
            Scalar::U32 => u32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f64,
            Scalar::F32 => f32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f64,
            Scalar::F64 => f64::from_le_bytes(a),
        })
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
}

fn header_err(detail: impl Into<String>) -> GeometryError {
    GeometryError::invalid(FMT, detail)
}

/// Parses a PLY file.
pub fn parse(bytes: &[u8]) -> Result<MeshFile> {
    // the header is ASCII and ends with "end_header" and a newline
    let marker = b"end_header";
    let limit = bytes.len().min(1 << 20);
    let end = bytes[..limit]
        .windows(marker.len())
        .position(|w| w == marker)
        .ok_or_else(|| header_err("no 'end_header' line in the first megabyte"))?;
    let mut data_start = end + marker.len();
    // skip the rest of the line (spaces, \r, \n)
    while data_start < bytes.len() && bytes[data_start] != b'\n' {
        data_start += 1;
    }
    data_start = (data_start + 1).min(bytes.len());
    let header = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = header.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("ply") {
        return Err(header_err("first line is not 'ply'"));
    }
    let mut enc = None;
    let mut version = None;
    let mut elements: Vec<Element> = Vec::new();
    let mut comments = Vec::new();
    for line in lines {
        let toks: Vec<&str> = line.split_ascii_whitespace().collect();
        match toks.first().copied() {
            Some("format") => {
                enc = Some(match toks.get(1).copied() {
                    Some("ascii") => Encoding::Ascii,
                    Some("binary_little_endian") => Encoding::Le,
                    Some("binary_big_endian") => Encoding::Be,
                    other => {
                        return Err(header_err(format!(
                            "unknown format {:?}",
                            other.unwrap_or("")
                        )));
                    }
                });
                version = toks.get(2).map(|s| s.to_string());
            }
            Some("element") => {
                if toks.len() < 3 {
                    return Err(header_err(format!("bad element line {:?}", clip(line))));
                }
                let count = toks[2]
                    .parse::<u64>()
                    .map_err(|_| header_err(format!("bad element count {:?}", clip(toks[2]))))?;
                elements.push(Element {
                    name: toks[1].to_string(),
                    count,
                    props: Vec::new(),
                });
            }
            Some("property") => {
                let el = elements
                    .last_mut()
                    .ok_or_else(|| header_err("property before any element"))?;
                let p = if toks.get(1) == Some(&"list") {
                    if toks.len() < 5 {
                        return Err(header_err(format!("bad list property {:?}", clip(line))));
                    }
                    Property {
                        list: Some(Scalar::parse(toks[2]).ok_or_else(|| {
                            header_err(format!("unknown type {:?}", clip(toks[2])))
                        })?),
                        kind: Scalar::parse(toks[3]).ok_or_else(|| {
                            header_err(format!("unknown type {:?}", clip(toks[3])))
                        })?,
                        name: toks[4].to_string(),
                    }
                } else {
                    if toks.len() < 3 {
                        return Err(header_err(format!("bad property {:?}", clip(line))));
                    }
                    Property {
                        list: None,
                        kind: Scalar::parse(toks[1]).ok_or_else(|| {
                            header_err(format!("unknown type {:?}", clip(toks[1])))
                        })?,
                        name: toks[2].to_string(),
                    }
                };
                el.props.push(p);
            }
            Some("comment") | Some("obj_info") => comments.push(line.to_string()),
            _ => {}
        }
    }
    let enc = enc.ok_or_else(|| header_err("no 'format' line"))?;
    let mut r = Reader {
        data: &bytes[data_start..],
        pos: 0,
        enc,
        row_end: 0,
    };

    let mut positions: Vec<[f64; 3]> = Vec::new();
    let mut normals: Option<Vec<[f64; 3]>> = None;
    let mut vertex_uv: Option<Vec<[f64; 2]>> = None;
    let mut faces: Vec<u32> = Vec::new();
    let mut face_sizes: Vec<u32> = Vec::new();
    let mut face_uv: Vec<[f64; 2]> = Vec::new();
    let mut face_uv_ok = true;
    let mut has_face_uv = false;
    let mut seen_vertex = false;
    let mut seen_face = false;

    for el in &elements {
        // smallest possible bytes per row: every value takes one byte (binary) or two (ASCII)
        let min_row: u64 = el
            .props
            .iter()
            .map(|p| match (enc, p.list) {
                (Encoding::Ascii, _) => 2,
                (_, Some(c)) => c.size() as u64,
                (_, None) => p.kind.size() as u64,
            })
            .sum::<u64>()
            .max(1);
        if el.props.is_empty() && el.count > 0 {
            continue;
        }
        let need = el.count.saturating_mul(min_row);
        if need > r.remaining() as u64 + 1 {
            return Err(GeometryError::invalid(
                FMT,
                format!(
                    "header declares {} '{}' elements (at least {} bytes) but only {} bytes of data follow",
                    el.count,
                    el.name,
                    need,
                    r.remaining()
                ),
            ));
        }
        let count = el.count as usize;
        let find = |n: &str| {
            el.props
                .iter()
                .position(|p| p.name == n && p.list.is_none())
        };
        // only the first vertex and face elements are geometry; repeats are skipped
        let name = match el.name.as_str() {
            "vertex" if !seen_vertex => "vertex",
            "face" if !seen_face => "face",
            _ => "",
        };
        match name {
            "vertex" => {
                seen_vertex = true;
                let (x, y, z) = (find("x"), find("y"), find("z"));
                let (nx, ny, nz) = (find("nx"), find("ny"), find("nz"));
                let uvp = [("texture_u", "texture_v"), ("u", "v"), ("s", "t")]
                    .iter()
                    .find_map(|(a, b)| Some((find(a)?, find(b)?)));
                positions.reserve(count);
                let has_n = nx.is_some() && ny.is_some() && nz.is_some();
                if has_n {
                    normals = Some(Vec::with_capacity(count));
                }
                if uvp.is_some() {
                    vertex_uv = Some(Vec::with_capacity(count));
                }
                let mut row = vec![0f64; el.props.len()];
                for _ in 0..count {
                    r.begin_row()?;
                    for (k, p) in el.props.iter().enumerate() {
                        row[k] = match p.list {
                            None => r.read(p.kind)?,
                            Some(c) => {
                                let n = r.read(c)?;
                                skip_list(&mut r, n, p.kind)?;
                                0.0
                            }
                        };
                    }
                    let g = |i: Option<usize>| i.map_or(0.0, |i| row[i]);
                    positions.push([g(x), g(y), g(z)]);
                    if let Some(ns) = normals.as_mut() {
                        ns.push([g(nx), g(ny), g(nz)]);
                    }
                    if let (Some(uvs), Some((a, b))) = (vertex_uv.as_mut(), uvp) {
                        uvs.push([row[a], row[b]]);
                    }
                }
            }
            "face" => {
                seen_face = true;
                let idx = el.props.iter().position(|p| {
                    p.list.is_some() && (p.name == "vertex_indices" || p.name == "vertex_index")
                });
                let tex = el
                    .props
                    .iter()
                    .position(|p| p.list.is_some() && p.name == "texcoord");
                has_face_uv = tex.is_some();
                for _ in 0..count {
                    r.begin_row()?;
                    for (k, p) in el.props.iter().enumerate() {
                        match p.list {
                            None => {
                                r.read(p.kind)?;
                            }
                            Some(c) => {
                                let n = r.read(c)?;
                                if !(0.0..=1e9).contains(&n) || n.fract() != 0.0 {
                                    return Err(GeometryError::invalid(
                                        FMT,
                                        format!("bad list length {n}"),
                                    ));
                                }
                                let n = n as usize;
                                if n > r.remaining() {
                                    return Err(r.eof());
                                }
                                if Some(k) == idx {
                                    for _ in 0..n {
                                        let i = r.read(p.kind)?;
                                        faces.push(if i >= 0.0 && i < u32::MAX as f64 {
                                            i as u32
                                        } else {
                                            u32::MAX
                                        });
                                    }
                                    face_sizes.push(n as u32);
                                } else if Some(k) == tex {
                                    let mut vals = Vec::with_capacity(n);
                                    for _ in 0..n {
                                        vals.push(r.read(p.kind)?);
                                    }
                                    if vals.len() % 2 != 0 {
                                        face_uv_ok = false;
                                    }
                                    face_uv.extend(vals.chunks_exact(2).map(|c| [c[0], c[1]]));
                                } else {
                                    skip_list(&mut r, n as f64, p.kind)?;
                                }
                            }
                        }
                    }
                }
            }
            _ => {
                for _ in 0..count {
                    r.begin_row()?;
                    for p in &el.props {
                        match p.list {
                            None => {
                                r.read(p.kind)?;
                            }
                            Some(c) => {
                                let n = r.read(c)?;
                                skip_list(&mut r, n, p.kind)?;
                            }
                        }
                    }
                }
            }
        }
    }

    let mut warnings = Vec::new();
    let mut mesh = RawMesh::default();
    let nv = positions.len();
    // per-face texture coordinates must match the corner count exactly to be used
    let corner_uv = has_face_uv && face_uv_ok && face_uv.len() == faces.len();
    let mut bad = 0usize;
    let mut short = 0usize;
    if corner_uv {
        // one raw vertex per corner; merging by (position, uv, normal) rebuilds sharing
        let mut attrs = Vec::with_capacity(faces.len());
        let mut at = 0usize;
        for &n in &face_sizes {
            let f = &faces[at..at + n as usize];
            let uv = &face_uv[at..at + n as usize];
            at += n as usize;
            if f.iter().any(|&i| i as usize >= nv) {
                bad += 1;
                continue;
            }
            if n < 3 {
                short += 1;
                continue;
            }
            let base = mesh.positions.len() as u32;
            for (k, &i) in f.iter().enumerate() {
                mesh.positions.push(positions[i as usize]);
                attrs.push(attr_key(
                    Some(uv[k]),
                    normals.as_ref().and_then(|ns| ns.get(i as usize).copied()),
                ));
            }
            for k in 1..n - 1 {
                mesh.triangles.push([base, base + k, base + k + 1]);
            }
        }
        mesh.attr_keys = Some(attrs);
    } else {
        let mut at = 0usize;
        for &n in &face_sizes {
            let f = &faces[at..at + n as usize];
            at += n as usize;
            if f.iter().any(|&i| i as usize >= nv) {
                bad += 1;
                continue;
            }
            if n < 3 {
                short += 1;
                continue;
            }
            for k in 1..f.len() - 1 {
                mesh.triangles.push([f[0], f[k], f[k + 1]]);
            }
        }
        if vertex_uv.is_some() || normals.is_some() {
            mesh.attr_keys = Some(
                (0..nv)
                    .map(|i| {
                        attr_key(
                            vertex_uv.as_ref().and_then(|u| u.get(i).copied()),
                            normals.as_ref().and_then(|n| n.get(i).copied()),
                        )
                    })
                    .collect(),
            );
        }
        mesh.positions = positions;
    }
    if bad > 0 {
        warnings.push(format!(
            "{bad} faces reference vertices that do not exist and were skipped"
        ));
    }
    if short > 0 {
        warnings.push(format!(
            "{short} faces have fewer than 3 vertices and were skipped"
        ));
    }
    Ok(MeshFile {
        mesh,
        variant: match enc {
            Encoding::Ascii => "ascii",
            Encoding::Le => "binary_little_endian",
            Encoding::Be => "binary_big_endian",
        }
        .into(),
        version,
        name: comments.first().cloned(),
        warnings,
        ..Default::default()
    })
}

fn skip_list(r: &mut Reader, n: f64, kind: Scalar) -> Result<()> {
    if !(0.0..=1e9).contains(&n) || n.fract() != 0.0 {
        return Err(GeometryError::invalid(FMT, format!("bad list length {n}")));
    }
    let n = n as usize;
    if r.enc == Encoding::Ascii {
        for _ in 0..n {
            r.ascii_token()?;
        }
    } else {
        let bytes = n * kind.size();
        if bytes > r.remaining() {
            return Err(r.eof());
        }
        r.pos += bytes;
    }
    Ok(())
}
