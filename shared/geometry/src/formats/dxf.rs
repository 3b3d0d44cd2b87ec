//! DXF, ASCII and binary, releases R12 to R2013 (and later ones using the same entities).
//!
//! Converted entities: LINE, ARC, CIRCLE, LWPOLYLINE (with bulges), POLYLINE/VERTEX,
//! SPLINE, TEXT, MTEXT, and INSERT of blocks (scale, rotation, base point, column/row
//! arrays, nesting). Everything else (POINT, DIMENSION, HATCH, SOLID, ...) is counted in
//! `skipped`. The conversion mirrors the reference implementation, so that entity counts
//! and extents agree with it: a polyline without bulges is one `Line`; with bulges, every
//! bulged segment is an `Arc` and every straight segment its own `Line`.

use super::stl::clip;
use crate::drawing::{Drawing, Entity, P2, Shape};
use crate::error::{GeometryError, Result};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const FMT: &str = "DXF";
const BINARY_SENTINEL: &[u8] = b"AutoCAD Binary DXF\r\n\x1a\0";
/// Block expansion multiplies entities; stop before memory does.
const MAX_ENTITIES: usize = 2_000_000;
/// Defining points over all expanded entities (a long polyline inserted many times).
const MAX_POINTS: usize = 20_000_000;
const MAX_INSERT_DEPTH: usize = 16;
/// Block references visited while expanding (arrays of empty blocks cost time, not memory).
const MAX_INSERT_VISITS: u64 = 5_000_000;

/// One group (code, value) of a DXF file.
#[derive(Debug, Clone)]
enum Value<'a> {
    Text(Cow<'a, str>),
    Num(f64),
}

#[derive(Debug, Clone)]
struct Tag<'a> {
    code: i32,
    value: Value<'a>,
}

impl Tag<'_> {
    fn text(&self) -> Cow<'_, str> {
        match &self.value {
            Value::Text(s) => Cow::Borrowed(s.as_ref()),
            Value::Num(v) => Cow::Owned(v.to_string()),
        }
    }
    fn num(&self) -> Option<f64> {
        match &self.value {
            Value::Text(s) => s.trim().parse().ok(),
            Value::Num(v) => Some(*v),
        }
    }
    fn is(&self, code: i32, text: &str) -> bool {
        self.code == code
            && matches!(&self.value, Value::Text(s) if s.trim().eq_ignore_ascii_case(text))
    }
}

/// True when the bytes are a binary DXF.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes.starts_with(BINARY_SENTINEL)
}

/// True when text looks like an ASCII DXF (group code / value pairs opening a section).
pub fn looks_ascii(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(8192)]);
    let mut lines = head.split('\n').map(|l| l.trim());
    // skip 999 comments, then expect 0 / SECTION
    loop {
        let (Some(code), Some(value)) = (lines.next(), lines.next()) else {
            return false;
        };
        match code {
            "999" => continue,
            "0" => return value.eq_ignore_ascii_case("SECTION"),
            _ => return false,
        }
    }
}

fn ascii_tags(text: &str) -> Result<Vec<Tag<'_>>> {
    let mut tags = Vec::new();
    let mut it = text.split('\n');
    let mut line = 0usize;
    while let Some(code_line) = it.next() {
        line += 1;
        let code_s = code_line.trim();
        if code_s.is_empty() {
            // tolerate blank lines at the end of the file
            if it.clone().all(|l| l.trim().is_empty()) {
                break;
            }
        }
        let Some(value) = it.next() else { break };
        line += 1;
        let code: i32 = code_s.parse().map_err(|_| {
            GeometryError::invalid(
                FMT,
                format!("line {}: invalid group code {:?}", line - 1, clip(code_s)),
            )
        })?;
        let value = value.strip_suffix('\r').unwrap_or(value);
        tags.push(Tag {
            code,
            value: Value::Text(Cow::Borrowed(value.trim())),
        });
    }
    Ok(tags)
}

fn binary_tags(bytes: &[u8]) -> Result<Vec<Tag<'static>>> {
    let eof = || GeometryError::invalid(FMT, "binary DXF ends inside a group (truncated file)");
    // R12 and older use one-byte group codes: the first group (0, "SECTION") then reads
    // 00 'S' instead of 00 00 'S'
    let r12 = bytes.get(BINARY_SENTINEL.len() + 1) != Some(&0);
    let mut tags = Vec::new();
    let mut i = BINARY_SENTINEL.len();
    let rd = |i: usize, n: usize| bytes.get(i..i + n).ok_or_else(eof);
    while i < bytes.len() {
        let code: i32 = if r12 {
            let c = bytes[i];
            if c == 255 {
                let b = rd(i + 1, 2)?;
                i += 3;
                i16::from_le_bytes([b[0], b[1]]) as i32
            } else {
                i += 1;
                c as i32
            }
        } else {
            let b = rd(i, 2)?;
            i += 2;
            i16::from_le_bytes([b[0], b[1]]) as i32
        };
        let value = match code {
            310..=319 | 1004 => {
                let n = *bytes.get(i).ok_or_else(eof)? as usize;
                rd(i + 1, n)?;
                i += 1 + n;
                Value::Text(Cow::Borrowed(""))
            }
            60..=79 | 170..=179 | 270..=289 | 370..=389 | 400..=409 | 1060..=1070 => {
                let b = rd(i, 2)?;
                i += 2;
                Value::Num(i16::from_le_bytes([b[0], b[1]]) as f64)
            }
            90..=99 | 420..=429 | 440..=459 | 1071 => {
                let b = rd(i, 4)?;
                i += 4;
                Value::Num(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            }
            160..=169 => {
                let b = rd(i, 8)?;
                i += 8;
                Value::Num(i64::from_le_bytes(b.try_into().map_err(|_| eof())?) as f64)
            }
            10..=59 | 110..=149 | 210..=239 | 460..=469 | 1010..=1059 => {
                let b = rd(i, 8)?;
                i += 8;
                Value::Num(f64::from_le_bytes(b.try_into().map_err(|_| eof())?))
            }
            290..=299 => {
                let b = *bytes.get(i).ok_or_else(eof)?;
                i += 1;
                Value::Num(b as f64)
            }
            _ => {
                let end = bytes[i..].iter().position(|&c| c == 0).ok_or_else(eof)?;
                let s = String::from_utf8_lossy(&bytes[i..i + end]).into_owned();
                i += end + 1;
                Value::Text(Cow::Owned(s))
            }
        };
        tags.push(Tag { code, value });
    }
    Ok(tags)
}

/// Release name of an $ACADVER value.
pub fn release_name(acadver: &str) -> Option<&'static str> {
    Some(match acadver {
        "AC1006" => "R10",
        "AC1009" => "R11/R12",
        "AC1012" => "R13",
        "AC1014" => "R14",
        "AC1015" => "R2000",
        "AC1018" => "R2004",
        "AC1021" => "R2007",
        "AC1024" => "R2010",
        "AC1027" => "R2013",
        "AC1032" => "R2018",
        _ => return None,
    })
}

/// Unit names for $INSUNITS codes, as the reference names them.
fn unit_name(code: i64) -> Option<&'static str> {
    Some(match code {
        1 => "inches",
        2 => "feet",
        3 => "miles",
        4 => "millimeters",
        5 => "centimeters",
        6 => "meters",
        7 => "kilometers",
        8 => "microinches",
        9 => "mils",
        10 => "yards",
        11 => "angstroms",
        12 => "nanometers",
        13 => "microns",
        14 => "decimeters",
        15 => "decameters",
        16 => "hectometers",
        17 => "gigameters",
        18 => "AU",
        19 => "light years",
        20 => "parsecs",
        _ => return None,
    })
}

/// A converted record: a shape, or a block reference to expand later.
#[derive(Debug, Clone)]
enum Item {
    Shape(Entity),
    Insert {
        name: String,
        at: P2,
        scale: P2,
        rotation: f64,
        cols: u32,
        rows: u32,
        spacing: P2,
    },
}

#[derive(Debug, Clone, Default)]
struct Block {
    base: P2,
    items: Vec<Item>,
}

fn first(rec: &[Tag], code: i32) -> Option<f64> {
    rec.iter().find(|t| t.code == code).and_then(|t| t.num())
}

fn first_text<'a>(rec: &'a [Tag], code: i32) -> Option<Cow<'a, str>> {
    rec.iter().find(|t| t.code == code).map(|t| t.text())
}

fn point(rec: &[Tag], xc: i32) -> Option<P2> {
    Some([first(rec, xc)?, first(rec, xc + 10)?])
}

fn layer(rec: &[Tag]) -> String {
    first_text(rec, 8).map_or_else(|| "0".to_string(), |s| s.trim().to_string())
}

/// Three points on a circle at the given angles (radians): start, middle, end.
fn three_point(c: P2, r: f64, a0: f64, a1: f64) -> [P2; 3] {
    let a1 = if a1 < a0 {
        a1 + 2.0 * std::f64::consts::PI
    } else {
        a1
    };
    let am = 0.5 * (a0 + a1);
    [a0, am, a1].map(|a| [c[0] + r * a.cos(), c[1] + r * a.sin()])
}

/// Converts a polyline with bulges as the reference does.
fn polyline_shapes(mut pts: Vec<P2>, bulges: Vec<f64>, closed: bool) -> Vec<Shape> {
    let n = pts.len();
    if n == 0 {
        return Vec::new();
    }
    if closed {
        pts.push(pts[0]);
    }
    // bulge i bends the segment from vertex i to i+1; the last one only matters when closed
    let mut arcs: Vec<(usize, f64)> = bulges
        .iter()
        .enumerate()
        .filter(|&(i, b)| b.abs() > 1e-5 && b.is_finite() && (closed || i + 1 < n))
        .map(|(i, &b)| (i, b))
        .collect();
    arcs.retain(|&(i, _)| i + 1 < pts.len());
    if arcs.is_empty() {
        return vec![Shape::Line { points: pts }];
    }
    let mut shapes = Vec::new();
    let mut bent = vec![false; pts.len()];
    for &(i, b) in &arcs {
        bent[i] = true;
        let (start, end) = (pts[i], pts[i + 1]);
        let angle = b.atan() * 4.0;
        let v = [end[0] - start[0], end[1] - start[1]];
        let len = (v[0] * v[0] + v[1] * v[1]).sqrt();
        if len == 0.0 {
            continue;
        }
        let perp = [v[1] / len, -v[0] / len];
        let mid = [(start[0] + end[0]) / 2.0, (start[1] + end[1]) / 2.0];
        let radius = (len / 2.0) / (angle / 2.0).sin();
        let offset = radius - (angle / 2.0).cos() * radius;
        shapes.push(Shape::Arc {
            points: [
                end,
                [mid[0] + perp[0] * offset, mid[1] + perp[1] * offset],
                start,
            ],
            closed: false,
        });
    }
    for i in 0..pts.len() - 1 {
        if !bent[i] {
            shapes.push(Shape::Line {
                points: vec![pts[i], pts[i + 1]],
            });
        }
    }
    shapes
}

struct Converter {
    skipped: BTreeMap<String, u64>,
    layers: BTreeSet<String>,
    /// (POLYLINE header, vertices, bulges)
    polyline: Option<(Vec<Tag<'static>>, Vec<P2>, Vec<f64>)>,
}

fn owned(rec: &[Tag]) -> Vec<Tag<'static>> {
    rec.iter()
        .map(|t| Tag {
            code: t.code,
            value: match &t.value {
                Value::Text(s) => Value::Text(Cow::Owned(s.to_string())),
                Value::Num(v) => Value::Num(*v),
            },
        })
        .collect()
}

impl Converter {
    fn push(&mut self, out: &mut Vec<Item>, shape: Shape, layer: &str) {
        self.layers.insert(layer.to_string());
        out.push(Item::Shape(Entity {
            shape,
            layer: layer.to_string(),
        }));
    }

    /// Converts one record (its type tag first) into items.
    fn record(&mut self, rec: &[Tag], out: &mut Vec<Item>) {
        let kind = rec[0].text().trim().to_ascii_uppercase();
        let body = &rec[1..];
        let lay = layer(body);
        if self.polyline.is_some() {
            match kind.as_str() {
                "VERTEX" => {
                    let flags = first(body, 70).unwrap_or(0.0) as i64;
                    // spline frame control points and polyface face records carry no outline
                    let face_record = flags & 128 != 0 && flags & 64 == 0;
                    if flags & 16 == 0
                        && !face_record
                        && let (Some(p), Some((_, pts, bulges))) =
                            (point(body, 10), self.polyline.as_mut())
                    {
                        pts.push(p);
                        bulges.push(first(body, 42).unwrap_or(0.0));
                    }
                    return;
                }
                _ => {
                    // SEQEND, or anything else, ends the polyline
                    if let Some((head, pts, bulges)) = self.polyline.take() {
                        let closed = first(&head, 70).unwrap_or(0.0) as i64 & 1 == 1;
                        let hl = layer(&head);
                        for s in polyline_shapes(pts, bulges, closed) {
                            self.push(out, s, &hl);
                        }
                    }
                    if kind == "SEQEND" {
                        return;
                    }
                }
            }
        }
        match kind.as_str() {
            "LINE" => {
                if let (Some(a), Some(b)) = (point(body, 10), point(body, 11)) {
                    self.push(out, Shape::Line { points: vec![a, b] }, &lay);
                }
            }
            "CIRCLE" => {
                if let (Some(c), Some(r)) = (point(body, 10), first(body, 40)) {
                    let points = three_point(c, r, 0.0, std::f64::consts::PI);
                    self.push(
                        out,
                        Shape::Arc {
                            points,
                            closed: true,
                        },
                        &lay,
                    );
                }
            }
            "ARC" => {
                if let (Some(c), Some(r)) = (point(body, 10), first(body, 40)) {
                    let a0 = first(body, 50).unwrap_or(0.0).to_radians();
                    let a1 = first(body, 51).unwrap_or(360.0).to_radians();
                    self.push(
                        out,
                        Shape::Arc {
                            points: three_point(c, r, a0, a1),
                            closed: false,
                        },
                        &lay,
                    );
                }
            }
            "LWPOLYLINE" => {
                let mut pts: Vec<P2> = Vec::new();
                let mut bulges: Vec<f64> = Vec::new();
                for t in body {
                    match t.code {
                        10 => {
                            pts.push([t.num().unwrap_or(0.0), 0.0]);
                            bulges.push(0.0);
                        }
                        20 => {
                            if let Some(p) = pts.last_mut() {
                                p[1] = t.num().unwrap_or(0.0);
                            }
                        }
                        42 => {
                            if let Some(b) = bulges.last_mut() {
                                *b = t.num().unwrap_or(0.0);
                            }
                        }
                        _ => {}
                    }
                }
                let closed = first(body, 70).unwrap_or(0.0) as i64 & 1 == 1;
                for s in polyline_shapes(pts, bulges, closed) {
                    self.push(out, s, &lay);
                }
            }
            "POLYLINE" => {
                self.polyline = Some((owned(body), Vec::new(), Vec::new()));
            }
            "SPLINE" => {
                let mut control: Vec<P2> = Vec::new();
                let mut fit: Vec<P2> = Vec::new();
                let mut knots = Vec::new();
                let mut weights = Vec::new();
                for t in body {
                    let v = t.num().unwrap_or(0.0);
                    match t.code {
                        10 => control.push([v, 0.0]),
                        20 => {
                            if let Some(p) = control.last_mut() {
                                p[1] = v;
                            }
                        }
                        11 => fit.push([v, 0.0]),
                        21 => {
                            if let Some(p) = fit.last_mut() {
                                p[1] = v;
                            }
                        }
                        40 => knots.push(v),
                        41 => weights.push(v),
                        _ => {}
                    }
                }
                let degree = first(body, 71).unwrap_or(3.0).clamp(1.0, 32.0) as usize;
                if control.is_empty() && fit.len() >= 2 {
                    // a spline given only by fit points: draw through them
                    self.push(out, Shape::Line { points: fit }, &lay);
                } else if control.len() == 2 {
                    self.push(out, Shape::Line { points: control }, &lay);
                } else if control.len() > 2 {
                    let weights = (weights.len() == control.len()).then_some(weights);
                    self.push(
                        out,
                        Shape::BSpline {
                            control,
                            knots,
                            degree,
                            weights,
                        },
                        &lay,
                    );
                }
            }
            "TEXT" | "MTEXT" => {
                let Some(origin) = point(body, 10) else {
                    return;
                };
                let mut text = String::new();
                for t in body.iter().filter(|t| t.code == 3) {
                    text.push_str(&t.text());
                }
                if let Some(t) = first_text(body, 1) {
                    text.push_str(&t);
                }
                let direction = match (kind.as_str(), point(body, 11)) {
                    ("MTEXT", Some(d)) if d[0] != 0.0 || d[1] != 0.0 => {
                        let l = (d[0] * d[0] + d[1] * d[1]).sqrt();
                        [d[0] / l, d[1] / l]
                    }
                    _ => {
                        let a = first(body, 50).unwrap_or(0.0).to_radians();
                        [a.cos(), a.sin()]
                    }
                };
                let height = first(body, 40).unwrap_or(1.0);
                self.push(
                    out,
                    Shape::Text {
                        origin,
                        direction,
                        height,
                        text: text.trim().to_string(),
                    },
                    &lay,
                );
            }
            "INSERT" => {
                let Some(name) = first_text(body, 2) else {
                    return;
                };
                out.push(Item::Insert {
                    name: name.trim().to_string(),
                    at: point(body, 10).unwrap_or([0.0, 0.0]),
                    scale: [
                        first(body, 41).unwrap_or(1.0),
                        first(body, 42).unwrap_or(1.0),
                    ],
                    rotation: first(body, 50).unwrap_or(0.0).to_radians(),
                    cols: first(body, 70).unwrap_or(1.0).clamp(1.0, 10_000.0) as u32,
                    rows: first(body, 71).unwrap_or(1.0).clamp(1.0, 10_000.0) as u32,
                    spacing: [
                        first(body, 44).unwrap_or(0.0),
                        first(body, 45).unwrap_or(0.0),
                    ],
                });
                self.layers.insert(lay);
            }
            "ENDSEC" | "ENDBLK" | "BLOCK" | "EOF" | "SECTION" => {}
            other => *self.skipped.entry(other.to_string()).or_insert(0) += 1,
        }
    }

    fn finish(&mut self, out: &mut Vec<Item>) {
        if let Some((head, pts, bulges)) = self.polyline.take() {
            let closed = first(&head, 70).unwrap_or(0.0) as i64 & 1 == 1;
            let hl = layer(&head);
            for s in polyline_shapes(pts, bulges, closed) {
                self.push(out, s, &hl);
            }
        }
    }
}

/// Splits a tag run into records, each starting at a code-0 tag.
fn records<'t, 'a>(tags: &'t [Tag<'a>]) -> impl Iterator<Item = &'t [Tag<'a>]> {
    let mut i = 0usize;
    std::iter::from_fn(move || {
        while i < tags.len() && tags[i].code != 0 {
            i += 1;
        }
        if i >= tags.len() {
            return None;
        }
        let start = i;
        i += 1;
        while i < tags.len() && tags[i].code != 0 {
            i += 1;
        }
        Some(&tags[start..i])
    })
}

#[allow(clippy::too_many_arguments)] // recursion state, threaded through explicitly
fn expand(
    items: &[Item],
    blocks: &HashMap<String, Block>,
    xf: &dyn Fn(P2) -> P2,
    depth: usize,
    out: &mut Vec<Entity>,
    missing: &mut u64,
    visits: &mut u64,
    points: &mut usize,
) -> Result<()> {
    for item in items {
        match item {
            Item::Shape(e) => {
                if out.len() >= MAX_ENTITIES {
                    return Err(GeometryError::limit(
                        FMT,
                        format!("block references expand to more than {MAX_ENTITIES} entities"),
                    ));
                }
                *points += match &e.shape {
                    Shape::Line { points } => points.len(),
                    Shape::BSpline { control, .. } => control.len(),
                    _ => 3,
                };
                if *points > MAX_POINTS {
                    return Err(GeometryError::limit(
                        FMT,
                        format!("entities expand to more than {MAX_POINTS} points"),
                    ));
                }
                let mut e = e.clone();
                e.shape.transform(&xf);
                out.push(e);
            }
            Item::Insert {
                name,
                at,
                scale,
                rotation,
                cols,
                rows,
                spacing,
            } => {
                let Some(block) = blocks.get(name) else {
                    *missing += 1;
                    continue;
                };
                if depth >= MAX_INSERT_DEPTH {
                    return Err(GeometryError::limit(
                        FMT,
                        format!("block references nest deeper than {MAX_INSERT_DEPTH} levels"),
                    ));
                }
                let (s, c) = rotation.sin_cos();
                for row in 0..*rows {
                    for col in 0..*cols {
                        *visits += 1;
                        if *visits > MAX_INSERT_VISITS {
                            return Err(GeometryError::limit(
                                FMT,
                                format!(
                                    "block references expand more than {MAX_INSERT_VISITS} times"
                                ),
                            ));
                        }
                        // array offsets are along the rotated axes
                        let ox = col as f64 * spacing[0];
                        let oy = row as f64 * spacing[1];
                        let base = block.base;
                        let (at, scale) = (*at, *scale);
                        let inner = move |p: P2| {
                            let x = (p[0] - base[0]) * scale[0] + ox;
                            let y = (p[1] - base[1]) * scale[1] + oy;
                            [at[0] + c * x - s * y, at[1] + s * x + c * y]
                        };
                        let composed = |p: P2| xf(inner(p));
                        expand(
                            &block.items,
                            blocks,
                            &composed,
                            depth + 1,
                            out,
                            missing,
                            visits,
                            points,
                        )?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Parses a DXF file (ASCII or binary).
pub fn parse(bytes: &[u8]) -> Result<Drawing> {
    let text;
    let (tags, variant) = if is_binary(bytes) {
        (binary_tags(bytes)?, "binary")
    } else {
        text = String::from_utf8_lossy(bytes);
        (ascii_tags(&text)?, "ascii")
    };
    parse_tags(&tags, variant)
}

fn parse_tags(tags: &[Tag], variant: &str) -> Result<Drawing> {
    let mut drawing = Drawing {
        variant: variant.to_string(),
        ..Default::default()
    };
    let mut conv = Converter {
        skipped: BTreeMap::new(),
        layers: BTreeSet::new(),
        polyline: None,
    };
    let mut blocks: HashMap<String, Block> = HashMap::new();
    let mut model: Vec<Item> = Vec::new();
    let mut table_layers: BTreeSet<String> = BTreeSet::new();
    let mut saw_section = false;
    let mut saw_entities = false;
    let mut lunits = None;
    let mut insunits = None;

    let mut i = 0usize;
    while i < tags.len() {
        if !tags[i].is(0, "SECTION") {
            i += 1;
            continue;
        }
        saw_section = true;
        let name = tags
            .get(i + 1)
            .filter(|t| t.code == 2)
            .map(|t| t.text().trim().to_ascii_uppercase())
            .unwrap_or_default();
        let start = (i + 2).min(tags.len());
        let mut end = start;
        while end < tags.len() && !tags[end].is(0, "ENDSEC") {
            end += 1;
        }
        let section = &tags[start..end];
        match name.as_str() {
            "HEADER" => {
                for (k, t) in section.iter().enumerate() {
                    if t.code != 9 {
                        continue;
                    }
                    let var = t.text().trim().to_ascii_uppercase();
                    let next = section.get(k + 1);
                    match var.as_str() {
                        "$ACADVER" => {
                            if let Some(n) = next.filter(|n| n.code == 1) {
                                let v = n.text().trim().to_string();
                                drawing.release = release_name(&v).map(str::to_string);
                                drawing.version = Some(v);
                            }
                        }
                        "$INSUNITS" => {
                            insunits = next.filter(|n| n.code == 70).and_then(|n| n.num())
                        }
                        "$LUNITS" => lunits = next.filter(|n| n.code == 70).and_then(|n| n.num()),
                        _ => {}
                    }
                }
            }
            "TABLES" => {
                for rec in records(section) {
                    if rec[0].is(0, "LAYER")
                        && let Some(n) = first_text(&rec[1..], 2)
                    {
                        table_layers.insert(n.trim().to_string());
                    }
                }
            }
            "BLOCKS" => {
                let mut current: Option<(String, Block)> = None;
                for rec in records(section) {
                    if rec[0].is(0, "BLOCK") {
                        let name = first_text(&rec[1..], 2)
                            .map(|s| s.trim().to_string())
                            .unwrap_or_default();
                        let base = point(&rec[1..], 10).unwrap_or([0.0, 0.0]);
                        current = Some((
                            name,
                            Block {
                                base,
                                items: Vec::new(),
                            },
                        ));
                    } else if rec[0].is(0, "ENDBLK") {
                        if let Some((name, mut b)) = current.take() {
                            conv.finish(&mut b.items);
                            blocks.insert(name, b);
                        }
                    } else if let Some((_, b)) = current.as_mut() {
                        conv.record(rec, &mut b.items);
                    }
                }
            }
            "ENTITIES" => {
                saw_entities = true;
                for rec in records(section) {
                    conv.record(rec, &mut model);
                }
                conv.finish(&mut model);
            }
            _ => {}
        }
        i = end + 1;
    }
    if !saw_section {
        return Err(GeometryError::invalid(FMT, "no SECTION found"));
    }
    if !saw_entities {
        return Err(GeometryError::invalid(
            FMT,
            "no ENTITIES section (truncated file?)",
        ));
    }
    // units: the reference takes $LUNITS - 1, then lets $INSUNITS override
    for (v, off) in [(lunits, -1i64), (insunits, 0)] {
        if let Some(u) = v.and_then(|x| unit_name(x as i64 + off)) {
            drawing.units = Some(u.to_string());
        }
    }
    let mut missing = 0u64;
    let mut visits = 0u64;
    let mut points = 0usize;
    let identity = |p: P2| p;
    expand(
        &model,
        &blocks,
        &identity,
        0,
        &mut drawing.entities,
        &mut missing,
        &mut visits,
        &mut points,
    )?;
    if missing > 0 {
        drawing.warnings.push(format!(
            "{missing} block references name blocks that do not exist"
        ));
    }
    drawing.clean();
    let mut layers = table_layers;
    layers.extend(conv.layers);
    drawing.layers = layers.into_iter().collect();
    drawing.skipped = conv.skipped;
    Ok(drawing)
}

/// Serialises tags as binary DXF (R13+ layout); used by tests to check the binary reader.
#[doc(hidden)]
pub fn ascii_to_binary(bytes: &[u8]) -> Result<Vec<u8>> {
    let text = String::from_utf8_lossy(bytes);
    let tags = ascii_tags(&text)?;
    let mut out = BINARY_SENTINEL.to_vec();
    for t in tags {
        out.extend_from_slice(&(t.code as i16).to_le_bytes());
        let v = t.text();
        match t.code {
            310..=319 | 1004 => out.push(0),
            60..=79 | 170..=179 | 270..=289 | 370..=389 | 400..=409 | 1060..=1070 => {
                out.extend_from_slice(&(t.num().unwrap_or(0.0) as i16).to_le_bytes())
            }
            90..=99 | 420..=429 | 440..=459 | 1071 => {
                out.extend_from_slice(&(t.num().unwrap_or(0.0) as i64 as i32).to_le_bytes())
            }
            160..=169 => out.extend_from_slice(&(t.num().unwrap_or(0.0) as i64).to_le_bytes()),
            10..=59 | 110..=149 | 210..=239 | 460..=469 | 1010..=1059 => {
                out.extend_from_slice(&t.num().unwrap_or(0.0).to_le_bytes())
            }
            290..=299 => out.push(t.num().unwrap_or(0.0) as u8),
            _ => {
                out.extend_from_slice(v.as_bytes());
                out.push(0);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulged_polyline_is_arcs_and_lines() {
        // a slot: two straight sides and two half circles
        let pts = vec![[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0]];
        let shapes = polyline_shapes(pts, vec![0.0, 1.0, 0.0, 1.0], true);
        let arcs = shapes.iter().filter(|s| s.type_name() == "Arc").count();
        let lines = shapes.iter().filter(|s| s.type_name() == "Line").count();
        assert_eq!((arcs, lines), (2, 2));
        let plain = polyline_shapes(
            vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]],
            vec![0.0; 3],
            false,
        );
        assert_eq!(plain.len(), 1);
    }

    #[test]
    fn insert_transforms_block() {
        let src = "0\nSECTION\n2\nBLOCKS\n0\nBLOCK\n2\nB\n10\n1\n20\n0\n0\nLINE\n10\n1\n20\n0\n11\n2\n21\n0\n0\nENDBLK\n0\nENDSEC\n\
0\nSECTION\n2\nENTITIES\n0\nINSERT\n2\nB\n10\n10\n20\n10\n41\n2\n42\n2\n50\n90\n0\nENDSEC\n0\nEOF\n";
        let d = parse(src.as_bytes()).unwrap();
        assert_eq!(d.entities.len(), 1);
        let (lo, hi) = d.bounds().unwrap();
        // base point (1,0) moves to (10,10); the unit line scaled by 2 and turned 90 degrees
        assert!((lo[0] - 10.0).abs() < 1e-9 && (hi[0] - 10.0).abs() < 1e-9);
        assert!((lo[1] - 10.0).abs() < 1e-9 && (hi[1] - 12.0).abs() < 1e-9);
        let bin = ascii_to_binary(src.as_bytes()).unwrap();
        let b = parse(&bin).unwrap();
        assert_eq!(b.entities, d.entities);
        assert_eq!(b.variant, "binary");
    }
}
