//! Per-format parsers. Each turns bytes into a [`MeshFile`], a [`crate::drawing::Drawing`]
//! or a [`step::StepFile`], or fails with a [`crate::GeometryError`].

pub mod dxf;
pub mod obj;
pub mod off;
pub mod ply;
pub mod step;
pub mod stl;
pub mod threemf;

use crate::mesh::RawMesh;

/// A parsed mesh file: geometry plus what the file says about itself.
#[derive(Debug, Clone, Default)]
pub struct MeshFile {
    /// The geometry, vertices not yet merged.
    pub mesh: RawMesh,
    /// Encoding variant, e.g. "binary", "ascii", "binary_big_endian".
    pub variant: String,
    /// Format version when the file states one.
    pub version: Option<String>,
    /// Declared length unit, e.g. "millimeters".
    pub units: Option<String>,
    /// A name or header text from the file.
    pub name: Option<String>,
    /// Non-fatal problems met while reading.
    pub warnings: Vec<String>,
}

/// Splits text into lines, accepting `\n`, `\r\n` and lone `\r`.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\n', '\r'])
}

/// Parses a float token, as C's strtod would (also accepts "+1", "1.", ".5", "1e5").
pub(crate) fn parse_f64(tok: &str) -> Option<f64> {
    tok.parse::<f64>().ok()
}

/// Merge key of texture coordinates (rounded to 1e-4) and normals (rounded to 1e-2).
pub(crate) fn attr_key(uv: Option<[f64; 2]>, normal: Option<[f64; 3]>) -> [i64; 5] {
    let uv = uv.map_or([0, 0], |u| u.map(|c| crate::mesh::round_key(c, 1e4)));
    let n = normal.map_or([0, 0, 0], |n| n.map(|c| crate::mesh::round_key(c, 1e2)));
    [uv[0], uv[1], n[0], n[1], n[2]]
}
