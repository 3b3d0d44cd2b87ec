//! CAD file parsers, geometric metadata and thumbnails.
//!
//! [`analyze`] detects the format (content first, file name as a hint), parses the file,
//! measures it and returns [`Metadata`] (serialisable to JSON) plus the [`Model`] that
//! [`render_thumbnails`] draws. Every failure is a [`GeometryError`] whose message can be
//! shown to a user. Per-format parsers live in [`formats`].

// index loops over the x/y/z components of small fixed arrays read better than iterators
#![allow(clippy::needless_range_loop)]

pub mod detect;
pub mod drawing;
pub mod error;
pub mod formats;
pub mod mesh;
pub mod render;

pub use detect::{Detected, Format, detect};
pub use drawing::Drawing;
pub use error::GeometryError;
pub use mesh::{IndexedMesh, MeshStats, RawMesh};
pub use render::{Background, RenderOptions, Thumbnail, render_thumbnails, render_thumbnails_with};

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What kind of content a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Triangles (polygons triangulated).
    Mesh,
    /// A 2D drawing (DXF).
    Drawing,
    /// A STEP B-rep: header facts and points only, no tessellation.
    Brep,
    /// A known format with nothing to measure (no faces: empty, points or lines only).
    Empty,
    /// Not a supported format (see `error`).
    Unsupported,
    /// A supported format that could not be read (see `error`).
    Invalid,
}

/// Which model axis points up in thumbnails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UpAxis {
    /// +Z up (STL, 3MF, OFF, STEP: CAD and 3D-printing convention).
    Z,
    /// +Y up (OBJ, PLY: graphics convention).
    Y,
}

/// Header facts of a STEP file (see [`formats::step::StepFile`]).
pub use formats::step::StepFile;

/// Metadata of one file. Field names match the reference data where it has them.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    /// Content kind.
    pub kind: Kind,
    /// Format short name ("stl", "obj", "ply", "off", "3mf", "dxf", "step"), or what the file
    /// looks like for unsupported files.
    pub format: String,
    /// Encoding variant: "binary", "ascii", "binary_little_endian", "zip"...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Version the file declares (PLY "1.0", DXF "AC1015", 3MF core namespace date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format_version: Option<String>,
    /// DXF release name ("R2000").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    /// Declared length unit ("millimeters", "inches", ...), when the file declares one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<String>,
    /// Triangles after fan triangulation (meshes; 0 for empty files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triangles: Option<u64>,
    /// Distinct vertices after merging coincident ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vertices: Option<u64>,
    /// Points of a point cloud (vertices without faces) or STEP CARTESIAN_POINTs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<u64>,
    /// Bounds, minimum corner (3 values for meshes and STEP, 2 for drawings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bbox_min: Option<Vec<f64>>,
    /// Bounds, maximum corner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bbox_max: Option<Vec<f64>>,
    /// bbox_max - bbox_min.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<Vec<f64>>,
    /// Sum of triangle areas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub surface_area: Option<f64>,
    /// Signed volume (meaningful when watertight).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<f64>,
    /// Every edge shared by exactly two triangles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watertight: Option<bool>,
    /// Edges used by one triangle only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundary_edges: Option<u64>,
    /// Edges used by more than two triangles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub non_manifold_edges: Option<u64>,
    /// Connected components after merging coincident vertices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bodies: Option<u64>,
    /// Centre of mass when watertight, else area-weighted centroid of the surface.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub centroid: Option<Vec<f64>>,
    /// Drawing entities (DXF, blocks expanded) or STEP entity instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entities: Option<u64>,
    /// Entities per type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entities_by_type: Option<BTreeMap<String, u64>>,
    /// DXF layers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<String>>,
    /// DXF entity types present but not converted (POINT, DIMENSION, HATCH...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_entities: Option<BTreeMap<String, u64>>,
    /// A name or header text from the file (STL header/solid name, OBJ object, PLY comment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// STEP header facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<StepFile>,
    /// Non-fatal problems met while reading.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Why the file could not be analysed (kinds `unsupported` and `invalid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Metadata {
    fn new(kind: Kind, format: &str, bytes: &[u8], sha256: String) -> Metadata {
        Metadata {
            kind,
            format: format.to_string(),
            encoding: None,
            format_version: None,
            release: None,
            bytes: bytes.len() as u64,
            sha256,
            units: None,
            triangles: None,
            vertices: None,
            points: None,
            bbox_min: None,
            bbox_max: None,
            dimensions: None,
            surface_area: None,
            volume: None,
            watertight: None,
            boundary_edges: None,
            non_manifold_edges: None,
            bodies: None,
            centroid: None,
            entities: None,
            entities_by_type: None,
            layers: None,
            skipped_entities: None,
            name: None,
            step: None,
            warnings: Vec::new(),
            error: None,
        }
    }

    fn set_bounds(&mut self, lo: &[f64], hi: &[f64]) {
        self.bbox_min = Some(lo.to_vec());
        self.bbox_max = Some(hi.to_vec());
        self.dimensions = Some(lo.iter().zip(hi).map(|(a, b)| b - a).collect());
    }
}

/// The geometry kept for rendering.
#[derive(Debug, Clone)]
pub enum Model {
    /// A triangle mesh (vertices merged).
    Mesh {
        /// The mesh.
        mesh: IndexedMesh,
        /// Which axis is up.
        up: UpAxis,
    },
    /// Points without faces (PLY/OBJ point clouds, STEP cartesian points).
    Points {
        /// The points.
        points: Vec<[f64; 3]>,
        /// Which axis is up.
        up: UpAxis,
    },
    /// A 2D drawing.
    Drawing(Drawing),
    /// Nothing to draw.
    Nothing,
}

/// Result of [`analyze`]: metadata plus the model for thumbnails.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// What was measured.
    pub metadata: Metadata,
    /// What can be drawn.
    pub model: Model,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn up_axis(format: Format) -> UpAxis {
    match format {
        Format::Obj | Format::Ply => UpAxis::Y,
        _ => UpAxis::Z,
    }
}

/// Measures a parsed mesh file.
pub fn analyze_mesh_file(
    file: formats::MeshFile,
    format: Format,
    bytes: &[u8],
    sha256: String,
) -> Analysis {
    let formats::MeshFile {
        mut mesh,
        variant,
        version,
        units,
        name,
        mut warnings,
    } = file;
    let dropped = mesh.drop_invalid_triangles();
    if dropped > 0 {
        warnings.push(format!(
            "{dropped} triangles with non-finite coordinates were dropped"
        ));
    }
    let merged = mesh.merge();
    let up = up_axis(format);
    let stats = merged.stats();
    let mut md = Metadata::new(
        if stats.is_some() {
            Kind::Mesh
        } else {
            Kind::Empty
        },
        format.name(),
        bytes,
        sha256,
    );
    md.encoding = Some(variant);
    md.format_version = version;
    md.units = units;
    md.name = name;
    md.warnings = warnings;
    let model = match stats {
        Some(s) => {
            md.triangles = Some(s.triangles);
            md.vertices = Some(s.vertices);
            md.set_bounds(&s.bbox_min, &s.bbox_max);
            md.surface_area = Some(s.surface_area);
            md.volume = Some(s.volume);
            md.watertight = Some(s.watertight);
            md.boundary_edges = Some(s.boundary_edges);
            md.non_manifold_edges = Some(s.non_manifold_edges);
            md.bodies = Some(s.bodies);
            md.centroid = Some(s.centroid.to_vec());
            Model::Mesh { mesh: merged, up }
        }
        None => {
            md.triangles = Some(0);
            let points: Vec<[f64; 3]> = mesh
                .positions
                .into_iter()
                .filter(|p| p.iter().all(|c| c.is_finite()))
                .collect();
            if points.is_empty() {
                Model::Nothing
            } else {
                md.points = Some(points.len() as u64);
                Model::Points { points, up }
            }
        }
    };
    Analysis {
        metadata: md,
        model,
    }
}

fn analyze_drawing(d: Drawing, bytes: &[u8], sha256: String) -> Analysis {
    let kind = if d.entities.is_empty() {
        Kind::Empty
    } else {
        Kind::Drawing
    };
    let mut md = Metadata::new(kind, "dxf", bytes, sha256);
    md.encoding = Some(d.variant.clone());
    md.format_version = d.version.clone();
    md.release = d.release.clone();
    md.units = d.units.clone();
    md.entities = Some(d.entities.len() as u64);
    md.entities_by_type = Some(d.counts());
    md.layers = Some(d.layers.clone());
    if !d.skipped.is_empty() {
        md.skipped_entities = Some(d.skipped.clone());
    }
    md.warnings = d.warnings.clone();
    if let Some((lo, hi)) = d.bounds() {
        md.set_bounds(&lo, &hi);
    }
    let model = if d.entities.is_empty() {
        Model::Nothing
    } else {
        Model::Drawing(d)
    };
    Analysis {
        metadata: md,
        model,
    }
}

fn analyze_step(mut s: StepFile, bytes: &[u8], sha256: String) -> Analysis {
    let mut md = Metadata::new(Kind::Brep, "step", bytes, sha256);
    md.encoding = Some("ascii".into());
    md.format_version = s.schema.first().cloned();
    md.units = s.units.clone();
    md.entities = Some(s.entity_count);
    md.entities_by_type = Some(std::mem::take(&mut s.entities_by_type));
    md.points = Some(s.cartesian_points);
    md.name = s.products.first().cloned();
    if let Some((lo, hi)) = s.bbox {
        md.set_bounds(&lo, &hi);
    }
    let points = std::mem::take(&mut s.points);
    md.step = Some(s);
    let model = if points.is_empty() {
        Model::Nothing
    } else {
        Model::Points {
            points,
            up: UpAxis::Z,
        }
    };
    Analysis {
        metadata: md,
        model,
    }
}

/// Detects, parses and measures a file. `filename_hint` (a name or an extension) only
/// settles ambiguous content. Unsupported and malformed files are errors.
pub fn analyze(bytes: &[u8], filename_hint: Option<&str>) -> Result<Analysis, GeometryError> {
    if bytes.is_empty() {
        return Err(GeometryError::EmptyFile);
    }
    let format = match detect(bytes, filename_hint) {
        Detected::Cad(f) => f,
        Detected::Other(what) => return Err(GeometryError::Unsupported { what }),
    };
    let (sha, parsed) = rayon::join(|| sha256_hex(bytes), || parse_as(bytes, format));
    Ok(match parsed? {
        Parsed::Mesh(f) => analyze_mesh_file(f, format, bytes, sha),
        Parsed::Drawing(d) => analyze_drawing(d, bytes, sha),
        Parsed::Step(s) => analyze_step(s, bytes, sha),
    })
}

/// A parsed file of any supported format.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// STL, OBJ, PLY, OFF or 3MF.
    Mesh(formats::MeshFile),
    /// DXF.
    Drawing(Drawing),
    /// STEP.
    Step(StepFile),
}

/// Parses bytes as the given format, without detection.
pub fn parse_as(bytes: &[u8], format: Format) -> Result<Parsed, GeometryError> {
    Ok(match format {
        Format::Stl => Parsed::Mesh(formats::stl::parse(bytes)?),
        Format::Obj => Parsed::Mesh(formats::obj::parse(bytes)?),
        Format::Ply => Parsed::Mesh(formats::ply::parse(bytes)?),
        Format::Off => Parsed::Mesh(formats::off::parse(bytes)?),
        Format::ThreeMf => Parsed::Mesh(formats::threemf::parse(bytes)?),
        Format::Dxf => Parsed::Drawing(formats::dxf::parse(bytes)?),
        Format::Step => Parsed::Step(formats::step::parse(bytes)?),
    })
}

/// Like [`analyze`] but never fails: problems become metadata of kind `unsupported`
/// (not a CAD format) or `invalid` (a CAD format that could not be read), with `error` set.
pub fn inspect(bytes: &[u8], filename_hint: Option<&str>) -> Analysis {
    match analyze(bytes, filename_hint) {
        Ok(a) => a,
        Err(e) => {
            let (kind, format) = match (&e, detect(bytes, filename_hint)) {
                (GeometryError::Unsupported { what }, _) => (Kind::Unsupported, what.clone()),
                (GeometryError::EmptyFile, _) => (
                    Kind::Invalid,
                    filename_hint
                        .and_then(detect::extension)
                        .map(str::to_ascii_lowercase)
                        .unwrap_or_else(|| "unknown".into()),
                ),
                (_, Detected::Cad(f)) => (Kind::Invalid, f.name().to_string()),
                (_, Detected::Other(w)) => (Kind::Unsupported, w),
            };
            let mut md = Metadata::new(kind, &format, bytes, sha256_hex(bytes));
            md.error = Some(e.to_string());
            Analysis {
                metadata: md,
                model: Model::Nothing,
            }
        }
    }
}
