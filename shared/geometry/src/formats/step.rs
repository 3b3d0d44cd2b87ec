//! STEP (ISO 10303-21) files: header facts, entity counts by type, and the bounding box of
//! all CARTESIAN_POINTs. No B-rep tessellation.

use crate::error::{GeometryError, Result};
use serde::Serialize;
use std::collections::BTreeMap;

const FMT: &str = "STEP";
/// Points kept for the point-cloud thumbnail (evenly thinned beyond this).
const MAX_POINTS_KEPT: usize = 200_000;

/// What a STEP file says about itself, plus counts over its data section.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StepFile {
    /// FILE_SCHEMA names, e.g. "AUTOMOTIVE_DESIGN".
    pub schema: Vec<String>,
    /// FILE_DESCRIPTION description strings.
    pub description: Vec<String>,
    /// FILE_NAME name.
    pub file_name: Option<String>,
    /// FILE_NAME time stamp.
    pub timestamp: Option<String>,
    /// FILE_NAME authors.
    pub authors: Vec<String>,
    /// FILE_NAME organisations.
    pub organizations: Vec<String>,
    /// FILE_NAME preprocessor version.
    pub preprocessor_version: Option<String>,
    /// FILE_NAME originating system.
    pub originating_system: Option<String>,
    /// FILE_NAME authorisation.
    pub authorization: Option<String>,
    /// Names of PRODUCT entities.
    pub products: Vec<String>,
    /// Number of entity instances in the DATA section.
    pub entity_count: u64,
    /// Instances per entity type (complex instances count once for each of their types).
    pub entities_by_type: BTreeMap<String, u64>,
    /// Number of CARTESIAN_POINT instances.
    pub cartesian_points: u64,
    /// Bounds of the CARTESIAN_POINTs.
    #[serde(skip)]
    pub bbox: Option<([f64; 3], [f64; 3])>,
    /// Length unit from the SI_UNIT / CONVERSION_BASED_UNIT declarations.
    pub units: Option<String>,
    /// A thinned sample of the points, for rendering.
    #[serde(skip)]
    pub points: Vec<[f64; 3]>,
}

/// One parsed parameter of an entity.
#[derive(Debug, Clone, PartialEq)]
enum Param {
    Str(String),
    List(Vec<Param>),
    Num(f64),
    Other(String),
}

impl Param {
    fn as_str(&self) -> Option<&str> {
        match self {
            Param::Str(s) => Some(s),
            _ => None,
        }
    }
    fn strings(&self) -> Vec<String> {
        match self {
            Param::Str(s) if !s.is_empty() => vec![s.clone()],
            Param::List(l) => l.iter().flat_map(|p| p.strings()).collect(),
            _ => Vec::new(),
        }
    }
}

/// True when the bytes start like an ISO 10303-21 exchange file.
pub fn looks_like_step(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    head[start..].starts_with(b"ISO-10303-21")
}

/// Decodes a STEP string literal body (between the quotes).
fn decode_string(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw).replace("''", "'");
    if !s.contains('\\') {
        return s;
    }
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(p) = rest.find('\\') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        if let Some(body) = rest.strip_prefix("\\X2\\") {
            let end = body.find("\\X0\\").unwrap_or(body.len());
            let hex = &body[..end];
            let units: Vec<u16> = (0..hex.len() / 4)
                .filter_map(|i| u16::from_str_radix(hex.get(i * 4..i * 4 + 4)?, 16).ok())
                .collect();
            out.push_str(&String::from_utf16_lossy(&units));
            rest = body.get(end + 4..).unwrap_or("");
        } else if let Some(body) = rest.strip_prefix("\\X\\") {
            if let Some(c) = body.get(..2).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(c as char);
                rest = &body[2..];
            } else {
                out.push('\\');
                rest = &rest[1..];
            }
        } else if rest.starts_with("\\\\") {
            out.push('\\');
            rest = &rest[2..];
        } else {
            out.push('\\');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Parses a parenthesised parameter list starting at `s[*i] == b'('`.
fn parse_list(s: &[u8], i: &mut usize, depth: usize) -> Result<Vec<Param>> {
    if depth > 64 {
        return Err(GeometryError::invalid(FMT, "parameters nest too deeply"));
    }
    debug_assert_eq!(s.get(*i), Some(&b'('));
    *i += 1;
    let mut out = Vec::new();
    loop {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
        let Some(&c) = s.get(*i) else {
            return Err(GeometryError::invalid(FMT, "unterminated parameter list"));
        };
        match c {
            b')' => {
                *i += 1;
                return Ok(out);
            }
            b',' => *i += 1,
            b'(' => out.push(Param::List(parse_list(s, i, depth + 1)?)),
            b'\'' => {
                *i += 1;
                let start = *i;
                loop {
                    match s.get(*i) {
                        None => return Err(GeometryError::invalid(FMT, "unterminated string")),
                        Some(b'\'') if s.get(*i + 1) == Some(&b'\'') => *i += 2,
                        Some(b'\'') => break,
                        Some(_) => *i += 1,
                    }
                }
                out.push(Param::Str(decode_string(&s[start..*i])));
                *i += 1;
            }
            _ => {
                let start = *i;
                let mut depth_local = 0usize;
                while *i < s.len() {
                    match s[*i] {
                        b'(' => depth_local += 1,
                        b')' if depth_local == 0 => break,
                        b')' => depth_local -= 1,
                        b',' if depth_local == 0 => break,
                        _ => {}
                    }
                    *i += 1;
                }
                let tok = String::from_utf8_lossy(&s[start..*i]).trim().to_string();
                out.push(match tok.parse::<f64>() {
                    Ok(v) => Param::Num(v),
                    Err(_) => Param::Other(tok),
                });
            }
        }
    }
}

/// Splits the file into `;`-terminated records, skipping comments and respecting strings.
fn records(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut i = 0usize;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let start = i;
            let mut in_str = false;
            while i < bytes.len() {
                let c = bytes[i];
                if in_str {
                    if c == b'\'' {
                        in_str = false;
                    }
                } else if c == b'\'' {
                    in_str = true;
                } else if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
                    // comment: skip to its end
                    match bytes[i + 2..].windows(2).position(|w| w == b"*/") {
                        Some(p) => i += p + 3,
                        None => i = bytes.len() - 1,
                    }
                } else if c == b';' {
                    i += 1;
                    return Some(&bytes[start..i - 1]);
                }
                i += 1;
            }
            if start < bytes.len() {
                return Some(&bytes[start..]);
            }
        }
        None
    })
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |p| p + 1);
    &b[s..e]
}

/// Splits `NAME(args)` into the name and the offset of the opening parenthesis.
fn name_and_args(rec: &[u8]) -> Option<(&[u8], usize)> {
    let p = rec.iter().position(|&c| c == b'(')?;
    Some((trim(&rec[..p]), p))
}

/// For a complex instance body `(A(..)B(..))`, the (name, args offset) of every part.
fn complex_parts(body: &[u8]) -> Vec<(&[u8], usize)> {
    let mut out = Vec::new();
    let mut i = 1usize; // after the outer '('
    while i < body.len() {
        while i < body.len() && (body[i].is_ascii_whitespace() || body[i] == b')') {
            i += 1;
        }
        let start = i;
        while i < body.len() && body[i] != b'(' {
            i += 1;
        }
        if i >= body.len() {
            break;
        }
        let name = trim(&body[start..i]);
        let args = i;
        // skip the balanced argument list
        let mut depth = 0usize;
        let mut in_str = false;
        while i < body.len() {
            let c = body[i];
            if in_str {
                if c == b'\'' {
                    in_str = false;
                }
            } else if c == b'\'' {
                in_str = true;
            } else if c == b'(' {
                depth += 1;
            } else if c == b')' {
                depth -= 1;
                if depth == 0 {
                    i += 1;
                    break;
                }
            }
            i += 1;
        }
        if !name.is_empty() {
            out.push((name, args));
        }
    }
    out
}

fn unit_name(prefix: Option<&str>, name: &str) -> String {
    let base = match name {
        "METRE" => "meters",
        _ => return name.to_ascii_lowercase(),
    };
    match prefix {
        Some("MILLI") => "millimeters".into(),
        Some("CENTI") => "centimeters".into(),
        Some("MICRO") => "microns".into(),
        Some("KILO") => "kilometers".into(),
        Some("DECI") => "decimeters".into(),
        Some("NANO") => "nanometers".into(),
        _ => base.into(),
    }
}

fn enum_value(p: Option<&Param>) -> Option<String> {
    match p {
        Some(Param::Other(s)) if s.starts_with('.') => Some(s.trim_matches('.').to_string()),
        _ => None,
    }
}

/// Parses a STEP file.
pub fn parse(bytes: &[u8]) -> Result<StepFile> {
    if !looks_like_step(bytes) {
        return Err(GeometryError::invalid(
            FMT,
            "missing the ISO-10303-21 signature",
        ));
    }
    let mut out = StepFile::default();
    let mut section = 0u8; // 1 header, 2 data
    let mut saw_data = false;
    let mut min = [f64::INFINITY; 3];
    let mut max = [f64::NEG_INFINITY; 3];
    let mut all_points: Vec<[f64; 3]> = Vec::new();
    let mut stride = 1usize;
    let mut seen_points = 0usize;
    for rec in records(bytes) {
        let mut rec = trim(rec);
        // a comment before the record's first token
        while rec.starts_with(b"/*") {
            rec = match rec.windows(2).position(|w| w == b"*/") {
                Some(p) => trim(&rec[p + 2..]),
                None => &rec[rec.len()..],
            };
        }
        if rec.is_empty() {
            continue;
        }
        match rec {
            b"HEADER" => {
                section = 1;
                continue;
            }
            b"DATA" => {
                section = 2;
                saw_data = true;
                continue;
            }
            b"ENDSEC" => {
                section = 0;
                continue;
            }
            _ => {}
        }
        if section != 2 && (rec.starts_with(b"DATA(") || rec.starts_with(b"DATA ")) {
            // exchange structure edition 3 allows named data sections
            section = 2;
            saw_data = true;
            continue;
        }
        if section == 1 {
            let Some((name, p)) = name_and_args(rec) else {
                continue;
            };
            let mut i = p;
            let args = parse_list(rec, &mut i, 0)?;
            match name {
                b"FILE_DESCRIPTION" => {
                    out.description = args.first().map(|a| a.strings()).unwrap_or_default();
                }
                b"FILE_NAME" => {
                    let s = |k: usize| {
                        args.get(k)
                            .and_then(|a| a.as_str())
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                    };
                    out.file_name = s(0);
                    out.timestamp = s(1);
                    out.authors = args.get(2).map(|a| a.strings()).unwrap_or_default();
                    out.organizations = args.get(3).map(|a| a.strings()).unwrap_or_default();
                    out.preprocessor_version = s(4);
                    out.originating_system = s(5);
                    out.authorization = s(6);
                }
                b"FILE_SCHEMA" => {
                    out.schema = args.first().map(|a| a.strings()).unwrap_or_default();
                }
                _ => {}
            }
        } else if section == 2 {
            if rec.first() != Some(&b'#') {
                continue;
            }
            let Some(eq) = rec.iter().position(|&c| c == b'=') else {
                continue;
            };
            let body = trim(&rec[eq + 1..]);
            out.entity_count += 1;
            if body.first() == Some(&b'(') {
                let parts = complex_parts(body);
                let mut is_length = false;
                let mut unit = None;
                for (name, a) in &parts {
                    *out.entities_by_type
                        .entry(String::from_utf8_lossy(name).into_owned())
                        .or_insert(0) += 1;
                    match *name {
                        b"LENGTH_UNIT" => is_length = true,
                        b"SI_UNIT" => {
                            let mut i = *a;
                            if let Ok(args) = parse_list(body, &mut i, 0) {
                                let prefix = enum_value(args.first());
                                if let Some(n) = enum_value(args.get(1)) {
                                    unit = Some(unit_name(prefix.as_deref(), &n));
                                }
                            }
                        }
                        b"CONVERSION_BASED_UNIT" => {
                            let mut i = *a;
                            if let Ok(args) = parse_list(body, &mut i, 0)
                                && let Some(n) = args.first().and_then(|p| p.as_str())
                            {
                                unit = Some(match n.to_ascii_uppercase().as_str() {
                                    "INCH" => "inches".to_string(),
                                    "FOOT" => "feet".to_string(),
                                    other => other.to_ascii_lowercase(),
                                });
                            }
                        }
                        _ => {}
                    }
                }
                if is_length && out.units.is_none() {
                    out.units = unit;
                }
                continue;
            }
            let Some((name, p)) = name_and_args(body) else {
                continue;
            };
            *out.entities_by_type
                .entry(String::from_utf8_lossy(name).into_owned())
                .or_insert(0) += 1;
            match name {
                b"CARTESIAN_POINT" => {
                    let mut i = p;
                    let Ok(args) = parse_list(body, &mut i, 0) else {
                        continue;
                    };
                    let Some(Param::List(coords)) = args.get(1) else {
                        continue;
                    };
                    let mut pt = [0f64; 3];
                    let mut ok = !coords.is_empty();
                    for (k, c) in coords.iter().take(3).enumerate() {
                        match c {
                            Param::Num(v) if v.is_finite() => pt[k] = *v,
                            _ => ok = false,
                        }
                    }
                    if !ok {
                        continue;
                    }
                    out.cartesian_points += 1;
                    for k in 0..3 {
                        min[k] = min[k].min(pt[k]);
                        max[k] = max[k].max(pt[k]);
                    }
                    seen_points += 1;
                    if seen_points.is_multiple_of(stride) {
                        all_points.push(pt);
                        if all_points.len() >= MAX_POINTS_KEPT {
                            // thin out: keep every other point and sample half as often
                            all_points = all_points.into_iter().step_by(2).collect();
                            stride *= 2;
                        }
                    }
                }
                b"PRODUCT" => {
                    let mut i = p;
                    if let Ok(args) = parse_list(body, &mut i, 0) {
                        let n = args
                            .get(1)
                            .and_then(|a| a.as_str())
                            .filter(|s| !s.is_empty())
                            .or_else(|| args.first().and_then(|a| a.as_str()));
                        if let Some(n) = n {
                            out.products.push(n.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if !saw_data {
        return Err(GeometryError::invalid(
            FMT,
            "no DATA section (truncated file?)",
        ));
    }
    if out.cartesian_points > 0 {
        out.bbox = Some((min, max));
    }
    out.points = all_points;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_file() {
        let src = b"ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION(('a part'),'2;1');\n\
FILE_NAME('part.step','2024-01-02T03:04:05',('Ann O''Neil'),('ACME'),'pp','CAD X','');\n\
FILE_SCHEMA(('AUTOMOTIVE_DESIGN { 1 0 10303 214 1 1 1 1 }'));\nENDSEC;\nDATA;\n\
#1=CARTESIAN_POINT('',(0.,1.,2.));\n#2=CARTESIAN_POINT('',(-1.,5.,2.5));\n\
#3=PRODUCT('P1','Bracket','',(#4));\n/* comment; with semicolon */\n\
#5=(LENGTH_UNIT()NAMED_UNIT(*)SI_UNIT(.MILLI.,.METRE.));\nENDSEC;\nEND-ISO-10303-21;\n";
        let s = parse(src).unwrap();
        assert_eq!(s.authors, vec!["Ann O'Neil"]);
        assert_eq!(s.organizations, vec!["ACME"]);
        assert_eq!(s.originating_system.as_deref(), Some("CAD X"));
        assert_eq!(s.products, vec!["Bracket"]);
        assert_eq!(s.entity_count, 4);
        assert_eq!(s.entities_by_type["CARTESIAN_POINT"], 2);
        assert_eq!(s.units.as_deref(), Some("millimeters"));
        assert_eq!(s.bbox, Some(([-1., 1., 2.], [0., 5., 2.5])));
        assert_eq!(s.description, vec!["a part"]);
    }
}
