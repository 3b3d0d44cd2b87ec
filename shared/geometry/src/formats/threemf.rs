//! 3MF: a zip package with XML model parts. Build items and (nested) components are
//! expanded with their transforms; each mesh instance is its own part.

use super::{MeshFile, stl::clip};
use crate::error::{GeometryError, Result};
use crate::mesh::RawMesh;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use std::collections::HashMap;
use std::io::{Cursor, Read};

const FMT: &str = "3MF";
/// No zip entry is inflated beyond this, whatever its header says.
const MAX_ENTRY: u64 = 1 << 30;
/// Deflate cannot expand data by more than about 1032:1.
const MAX_RATIO: u64 = 1100;
/// Instances of components can multiply geometry; stop before memory does.
const MAX_TRIANGLES: usize = 50_000_000;
const MAX_DEPTH: usize = 32;
/// Components referencing components can form huge trees even without geometry.
const MAX_INSTANCES: usize = 1_000_000;

type Matrix = [f64; 12];
const IDENTITY: Matrix = [1., 0., 0., 0., 1., 0., 0., 0., 1., 0., 0., 0.];

#[derive(Default)]
struct Object {
    vertices: Vec<[f64; 3]>,
    triangles: Vec<[u32; 3]>,
    /// (model path, object id, transform)
    components: Vec<(String, String, Matrix)>,
}

#[derive(Default)]
struct Model {
    unit: Option<String>,
    namespace: Option<String>,
    objects: HashMap<String, Object>,
    items: Vec<(String, String, Matrix)>,
}

/// Reads one zip entry with its declared size checked against the archive size first.
fn read_entry(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    archive_len: u64,
) -> Result<Vec<u8>> {
    let file = zip.by_name(name).map_err(|e| {
        GeometryError::invalid(FMT, format!("cannot open {name:?} in the package: {e}"))
    })?;
    let declared = file.size();
    let compressed = file.compressed_size();
    if compressed > archive_len {
        return Err(GeometryError::invalid(
            FMT,
            format!(
                "entry {name:?} claims {compressed} compressed bytes but the package holds {archive_len}"
            ),
        ));
    }
    if declared > MAX_ENTRY || declared > compressed.saturating_mul(MAX_RATIO).saturating_add(4096)
    {
        return Err(GeometryError::limit(
            FMT,
            format!(
                "entry {name:?} declares {declared} bytes uncompressed from {compressed} compressed"
            ),
        ));
    }
    let mut out = Vec::with_capacity(declared as usize);
    file.take(declared + 1)
        .read_to_end(&mut out)
        .map_err(|e| GeometryError::invalid(FMT, format!("cannot inflate {name:?}: {e}")))?;
    if out.len() as u64 > declared {
        return Err(GeometryError::invalid(
            FMT,
            format!("entry {name:?} inflates to more than its declared {declared} bytes"),
        ));
    }
    Ok(out)
}

fn attr(e: &BytesStart, key: &str) -> Option<String> {
    e.attributes()
        .with_checks(false)
        .flatten()
        .find_map(|a| (a.key.local_name().as_ref() == key).then(|| a.value.to_string()))
}

fn num(e: &BytesStart, key: &str) -> Result<f64> {
    let s = attr(e, key)
        .ok_or_else(|| GeometryError::invalid(FMT, format!("missing attribute {key:?}")))?;
    s.trim()
        .parse()
        .map_err(|_| GeometryError::invalid(FMT, format!("bad number {:?}", clip(&s))))
}

fn matrix(e: &BytesStart) -> Result<Matrix> {
    let Some(s) = attr(e, "transform") else {
        return Ok(IDENTITY);
    };
    let vals: Vec<f64> = s
        .split_ascii_whitespace()
        .map(|t| t.parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| GeometryError::invalid(FMT, format!("bad transform {:?}", clip(&s))))?;
    vals.try_into().map_err(|_| {
        GeometryError::invalid(FMT, format!("transform needs 12 numbers: {:?}", clip(&s)))
    })
}

/// Applies `m` to a point (3MF matrices act on row vectors).
fn apply(m: &Matrix, p: [f64; 3]) -> [f64; 3] {
    [
        p[0] * m[0] + p[1] * m[3] + p[2] * m[6] + m[9],
        p[0] * m[1] + p[1] * m[4] + p[2] * m[7] + m[10],
        p[0] * m[2] + p[1] * m[5] + p[2] * m[8] + m[11],
    ]
}

/// Composition: first `inner`, then `outer`.
fn compose(inner: &Matrix, outer: &Matrix) -> Matrix {
    let mut r = [0.0; 12];
    for row in 0..4 {
        for col in 0..3 {
            let mut s = if row == 3 { outer[9 + col] } else { 0.0 };
            for k in 0..3 {
                s += inner[row * 3 + k] * outer[k * 3 + col];
            }
            r[row * 3 + col] = s;
        }
    }
    r
}

fn parse_model(xml: &[u8], path: &str) -> Result<Model> {
    let text = std::str::from_utf8(xml)
        .map_err(|_| GeometryError::invalid(FMT, format!("{path:?} is not UTF-8 text")))?;
    let mut reader = Reader::from_str(text);
    let mut model = Model::default();
    let mut current: Option<(String, Object)> = None;
    let mut in_build = false;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| GeometryError::invalid(FMT, format!("XML error in {path:?}: {e}")))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(ev, Event::Empty(_));
                match e.local_name().as_ref() {
                    "model" => {
                        model.unit = attr(e, "unit");
                        model.namespace = attr(e, "xmlns");
                    }
                    "object" => {
                        let id = attr(e, "id")
                            .ok_or_else(|| GeometryError::invalid(FMT, "object without id"))?;
                        if is_empty {
                            model.objects.insert(id, Object::default());
                        } else {
                            current = Some((id, Object::default()));
                        }
                    }
                    "vertex" => {
                        if let Some((_, o)) = current.as_mut() {
                            o.vertices.push([num(e, "x")?, num(e, "y")?, num(e, "z")?]);
                        }
                    }
                    "triangle" => {
                        if let Some((_, o)) = current.as_mut() {
                            let mut t = [0u32; 3];
                            for (k, key) in ["v1", "v2", "v3"].iter().enumerate() {
                                let v = num(e, key)?;
                                if !(0.0..o.vertices.len() as f64).contains(&v) || v.fract() != 0.0
                                {
                                    return Err(GeometryError::invalid(
                                        FMT,
                                        format!(
                                            "triangle references vertex {v} of {}",
                                            o.vertices.len()
                                        ),
                                    ));
                                }
                                t[k] = v as u32;
                            }
                            o.triangles.push(t);
                        }
                    }
                    "component" => {
                        if let Some((_, o)) = current.as_mut() {
                            let id = attr(e, "objectid").ok_or_else(|| {
                                GeometryError::invalid(FMT, "component without objectid")
                            })?;
                            let p =
                                attr(e, "path").map_or_else(|| path.to_string(), |p| norm_path(&p));
                            o.components.push((p, id, matrix(e)?));
                        }
                    }
                    "build" => in_build = !is_empty,
                    "item" if in_build => {
                        let id = attr(e, "objectid").ok_or_else(|| {
                            GeometryError::invalid(FMT, "build item without objectid")
                        })?;
                        let p = attr(e, "path").map_or_else(|| path.to_string(), |p| norm_path(&p));
                        model.items.push((p, id, matrix(e)?));
                    }
                    _ => {}
                }
            }
            Event::End(ref e) => match e.local_name().as_ref() {
                "object" => {
                    if let Some((id, o)) = current.take() {
                        model.objects.insert(id, o);
                    }
                }
                "build" => in_build = false,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(model)
}

fn norm_path(p: &str) -> String {
    p.trim_start_matches('/').to_string()
}

fn root_model_path(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, len: u64) -> Result<String> {
    if zip.by_name("_rels/.rels").is_ok() {
        let rels = read_entry(zip, "_rels/.rels", len)?;
        let text = String::from_utf8_lossy(&rels);
        let mut reader = Reader::from_str(&text);
        while let Ok(ev) = reader.read_event() {
            match ev {
                Event::Start(ref e) | Event::Empty(ref e)
                    if e.local_name().as_ref() == "Relationship" =>
                {
                    if attr(e, "Type").is_some_and(|t| t.ends_with("/3dmodel"))
                        && let Some(t) = attr(e, "Target")
                    {
                        return Ok(norm_path(&t));
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
    }
    let names: Vec<String> = zip.file_names().flatten().map(|n| n.into_owned()).collect();
    names
        .iter()
        .find(|n| n.eq_ignore_ascii_case("3D/3dmodel.model"))
        .or_else(|| {
            names
                .iter()
                .find(|n| n.to_ascii_lowercase().ends_with(".model"))
        })
        .cloned()
        .ok_or_else(|| GeometryError::invalid(FMT, "the package has no 3D model part"))
}

/// True when a zip archive (by its entry names) is a 3MF package.
pub fn is_3mf_zip(bytes: &[u8]) -> bool {
    zip::ZipArchive::new(Cursor::new(bytes)).is_ok_and(|z| {
        z.file_names()
            .flatten()
            .any(|n| n.to_ascii_lowercase().ends_with(".model"))
    })
}

/// Parses a 3MF package.
pub fn parse(bytes: &[u8]) -> Result<MeshFile> {
    let len = bytes.len() as u64;
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| GeometryError::invalid(FMT, format!("not a readable zip package: {e}")))?;
    let root = root_model_path(&mut zip, len)?;
    let mut models: HashMap<String, Model> = HashMap::new();
    let xml = read_entry(&mut zip, &root, len)?;
    models.insert(root.clone(), parse_model(&xml, &root)?);
    // load other model parts referenced by components (production extension)
    loop {
        let missing: Vec<String> = models
            .values()
            .flat_map(|m| {
                m.objects
                    .values()
                    .flat_map(|o| o.components.iter().map(|c| c.0.clone()))
            })
            .filter(|p| !models.contains_key(p))
            .collect();
        let Some(p) = missing.into_iter().next() else {
            break;
        };
        let model = match read_entry(&mut zip, &p, len) {
            Ok(xml) => parse_model(&xml, &p)?,
            Err(_) => Model::default(),
        };
        models.insert(p, model);
    }
    let root_model = &models[&root];
    let mut mesh = RawMesh::default();
    let mut parts = Vec::new();
    let mut part = 0u32;
    let mut warnings = Vec::new();
    let mut stack: Vec<(String, String, Matrix, usize)> = root_model
        .items
        .iter()
        .rev()
        .map(|(p, id, m)| (p.clone(), id.clone(), *m, 0))
        .collect();
    let mut missing = 0usize;
    let mut instances = 0usize;
    while let Some((path, id, m, depth)) = stack.pop() {
        instances += 1;
        if instances > MAX_INSTANCES {
            return Err(GeometryError::limit(
                FMT,
                format!("build expands to more than {MAX_INSTANCES} object instances"),
            ));
        }
        let Some(obj) = models.get(&path).and_then(|md| md.objects.get(&id)) else {
            missing += 1;
            continue;
        };
        if depth > MAX_DEPTH {
            return Err(GeometryError::limit(
                FMT,
                format!("components nest deeper than {MAX_DEPTH} levels"),
            ));
        }
        if !obj.triangles.is_empty() {
            if mesh.triangles.len() + obj.triangles.len() > MAX_TRIANGLES {
                return Err(GeometryError::limit(
                    FMT,
                    format!("expanded build holds more than {MAX_TRIANGLES} triangles"),
                ));
            }
            let base = mesh.positions.len() as u32;
            mesh.positions
                .extend(obj.vertices.iter().map(|&p| apply(&m, p)));
            parts.extend(std::iter::repeat_n(part, obj.vertices.len()));
            mesh.triangles
                .extend(obj.triangles.iter().map(|t| t.map(|i| i + base)));
            part += 1;
        }
        for (cp, cid, cm) in obj.components.iter().rev() {
            stack.push((cp.clone(), cid.clone(), compose(cm, &m), depth + 1));
        }
    }
    if missing > 0 {
        warnings.push(format!(
            "{missing} build items or components reference missing objects"
        ));
    }
    if part > 1 {
        mesh.vertex_part = Some(parts);
    }
    let units = root_model.unit.as_deref().unwrap_or("millimeter");
    let units = match units {
        "micron" => "microns",
        "millimeter" => "millimeters",
        "centimeter" => "centimeters",
        "inch" => "inches",
        "foot" => "feet",
        "meter" => "meters",
        other => other,
    }
    .to_string();
    Ok(MeshFile {
        mesh,
        variant: "zip".into(),
        version: root_model
            .namespace
            .as_ref()
            .and_then(|n| n.rsplit("/core/").next().filter(|_| n.contains("/core/")))
            .map(|d| format!("core {d}")),
        units: Some(units),
        name: None,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_order() {
        let t = [1., 0., 0., 0., 1., 0., 0., 0., 1., 5., 0., 0.];
        let s = [2., 0., 0., 0., 2., 0., 0., 0., 2., 0., 0., 0.];
        // scale first, then translate
        let m = compose(&s, &t);
        assert_eq!(apply(&m, [1., 1., 1.]), [7., 2., 2.]);
    }
}
