//! Triangle meshes: vertex merging and the geometric measures reported as metadata.
//!
//! The definitions follow the reference implementation (trimesh) the metadata is checked
//! against: vertices are "coincident" when their coordinates agree after rounding to 1e-8
//! (and, where the file gives them, their texture coordinates to 1e-4 and normals to 1e-2);
//! merging happens inside each *part* (an STL solid, an OBJ material group, a 3MF build
//! instance), never across parts.

use rayon::prelude::*;
use serde::Serialize;

/// A mesh as a parser produced it, before vertices are merged.
#[derive(Debug, Clone, Default)]
pub struct RawMesh {
    /// Vertex positions.
    pub positions: Vec<[f64; 3]>,
    /// Extra merge keys per vertex (rounded UV and normal), when the file defines them.
    pub attr_keys: Option<Vec<[i64; 5]>>,
    /// Part index per vertex; `None` means one part.
    pub vertex_part: Option<Vec<u32>>,
    /// Triangles as indices into `positions`.
    pub triangles: Vec<[u32; 3]>,
}

/// A mesh after merging coincident vertices; only vertices used by a triangle remain.
#[derive(Debug, Clone, Default)]
pub struct IndexedMesh {
    /// Unique vertex positions.
    pub vertices: Vec<[f64; 3]>,
    /// Triangles as indices into `vertices`.
    pub triangles: Vec<[u32; 3]>,
}

/// Geometric measures of a triangle mesh.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MeshStats {
    /// Number of triangles (polygons fan-triangulated, nothing removed).
    pub triangles: u64,
    /// Number of distinct vertices after merging coincident ones.
    pub vertices: u64,
    /// Axis-aligned bounds, minimum corner.
    pub bbox_min: [f64; 3],
    /// Axis-aligned bounds, maximum corner.
    pub bbox_max: [f64; 3],
    /// Sum of triangle areas.
    pub surface_area: f64,
    /// Signed volume by the divergence theorem (meaningful when watertight).
    pub volume: f64,
    /// Every edge is shared by exactly two triangles.
    pub watertight: bool,
    /// Connected components of the vertex graph.
    pub bodies: u64,
    /// Centre of mass of the solid when watertight, else area-weighted surface centroid.
    pub centroid: [f64; 3],
    /// Edges used by one triangle only (holes, open borders).
    pub boundary_edges: u64,
    /// Edges used by more than two triangles.
    pub non_manifold_edges: u64,
}

/// Rounding used for the merge key of a coordinate (numpy rounds half to even).
#[inline]
pub(crate) fn round_key(v: f64, scale: f64) -> i64 {
    let x = v * scale;
    // adding and removing 1.5 * 2^52 rounds half to even in the default rounding mode, much
    // faster than the library call when the CPU baseline lacks SSE4.1's roundsd
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    if x.abs() < 2_251_799_813_685_248.0 {
        ((x + MAGIC) - MAGIC) as i64
    } else {
        x.round_ties_even() as i64
    }
}

const POS_SCALE: f64 = 1e8;

#[inline]
fn mix(h: u64, w: u64) -> u64 {
    let x = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^ (x >> 29)
}

impl RawMesh {
    /// Drops triangles that reference missing vertices or non-finite coordinates; returns how many.
    pub fn drop_invalid_triangles(&mut self) -> usize {
        let n = self.positions.len();
        let positions = &self.positions;
        let before = self.triangles.len();
        let ok = |t: &[u32; 3]| {
            t.iter()
                .all(|&i| (i as usize) < n && positions[i as usize].iter().all(|c| c.is_finite()))
        };
        if self.triangles.par_iter().all(ok) {
            return 0;
        }
        self.triangles.retain(ok);
        before - self.triangles.len()
    }

    /// Merges coincident vertices (within each part) and drops unreferenced ones.
    ///
    /// Runs in expected linear time: vertices are partitioned by hash into shards that are
    /// deduplicated in parallel with small cache-friendly tables.
    pub fn merge(&self) -> IndexedMesh {
        let pos = |i: usize| {
            let p = self.positions[i];
            [
                round_key(p[0], POS_SCALE),
                round_key(p[1], POS_SCALE),
                round_key(p[2], POS_SCALE),
            ]
        };
        if self.vertex_part.is_none() && self.attr_keys.is_none() {
            // the common case (e.g. STL): a smaller key is faster to hash and compare
            return merge_by(self, pos);
        }
        merge_by(self, |i| {
            let k = pos(i);
            let part = self.vertex_part.as_ref().map_or(0, |v| v[i] as i64);
            let a = self.attr_keys.as_ref().map_or([0; 5], |v| v[i]);
            [part, k[0], k[1], k[2], a[0], a[1], a[2], a[3], a[4]]
        })
    }
}

#[inline]
fn hash_key<const N: usize>(k: &[i64; N]) -> u64 {
    let mut h = 0x51_7C_C1_B7_27_22_0A_95u64;
    for &w in k {
        h = mix(h, w as u64);
    }
    // final avalanche so the top bits (used for sharding) are well spread
    h ^= h >> 31;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^ (h >> 32)
}

/// Keyed vertices of one hash shard, as produced by one chunk of the vertex range.
type Bucket<const N: usize> = Vec<([i64; N], u32)>;

fn merge_by<const N: usize>(raw: &RawMesh, key: impl Fn(usize) -> [i64; N] + Sync) -> IndexedMesh {
    let n = raw.positions.len();
    if raw.triangles.is_empty() || n == 0 {
        return IndexedMesh::default();
    }
    let mut referenced = vec![false; n];
    for t in &raw.triangles {
        for &i in t {
            referenced[i as usize] = true;
        }
    }
    let shard_bits: u32 = if n > 1 << 16 { 8 } else { 0 };
    let shards = 1usize << shard_bits;
    let shard_of = |h: u64| {
        if shard_bits == 0 {
            0
        } else {
            (h >> (64 - shard_bits)) as usize
        }
    };
    // Pass 1, in file order (sequential memory access): every referenced vertex's key goes
    // into the bucket of its hash shard. Carrying the key along keeps pass 2 cache-local.
    let chunk = n
        .div_ceil(rayon::current_num_threads().max(1) * 2)
        .max(1 << 12);
    let buckets: Vec<Vec<Bucket<N>>> = (0..n.div_ceil(chunk))
        .into_par_iter()
        .map(|c| {
            let range = c * chunk..((c + 1) * chunk).min(n);
            let mut b: Vec<Bucket<N>> = (0..shards)
                .map(|_| Vec::with_capacity(range.len() / shards + range.len() / (4 * shards) + 16))
                .collect();
            for i in range {
                if referenced[i] {
                    let k = key(i);
                    b[shard_of(hash_key(&k))].push((k, i as u32));
                }
            }
            b
        })
        .collect();
    drop(referenced);
    // Pass 2, per shard in parallel: a small open-addressing table assigns local ids; the
    // first vertex met with a key (in file order) is its representative.
    let results: Vec<(Vec<u32>, Vec<u32>)> = (0..shards)
        .into_par_iter()
        .map(|s| {
            let len: usize = buckets.iter().map(|b| b[s].len()).sum();
            let cap = (len * 2).next_power_of_two().max(16);
            let mask = cap - 1;
            let mut table: Vec<u32> = vec![u32::MAX; cap];
            let mut reps: Vec<u32> = Vec::new();
            let mut rep_keys: Vec<[i64; N]> = Vec::new();
            let mut local = Vec::with_capacity(len);
            for (k, v) in buckets.iter().flat_map(|b| b[s].iter()) {
                let mut slot = (hash_key(k) as usize) & mask;
                loop {
                    let e = table[slot];
                    if e == u32::MAX {
                        let id = reps.len() as u32;
                        table[slot] = id;
                        local.push(id);
                        reps.push(*v);
                        rep_keys.push(*k);
                        break;
                    }
                    if rep_keys[e as usize] == *k {
                        local.push(e);
                        break;
                    }
                    slot = (slot + 1) & mask;
                }
            }
            (local, reps)
        })
        .collect();

    let mut remap = vec![u32::MAX; n];
    let mut vertices = Vec::with_capacity(results.iter().map(|r| r.1.len()).sum());
    for (s, (local, reps)) in results.iter().enumerate() {
        let offset = vertices.len() as u32;
        for ((_, m), l) in buckets.iter().flat_map(|b| b[s].iter()).zip(local) {
            remap[*m as usize] = offset + l;
        }
        vertices.extend(reps.iter().map(|&r| raw.positions[r as usize]));
    }
    drop(buckets);
    let triangles = raw
        .triangles
        .par_iter()
        .map(|t| {
            [
                remap[t[0] as usize],
                remap[t[1] as usize],
                remap[t[2] as usize],
            ]
        })
        .collect();
    IndexedMesh {
        vertices,
        triangles,
    }
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

/// Per-triangle integrals summed over the mesh.
#[derive(Default, Clone, Copy)]
struct Sums {
    area: f64,
    volume6: f64,
    tet6: f64,
    area_centroid: [f64; 3],
    vol_centroid: [f64; 3],
}

impl Sums {
    fn add(mut self, o: Sums) -> Sums {
        self.area += o.area;
        self.volume6 += o.volume6;
        self.tet6 += o.tet6;
        for k in 0..3 {
            self.area_centroid[k] += o.area_centroid[k];
            self.vol_centroid[k] += o.vol_centroid[k];
        }
        self
    }
}

/// Counts of undirected edges by how many triangles use them.
struct EdgeCounts {
    boundary: u64,
    non_manifold: u64,
    watertight: bool,
}

/// Counts edge uses in linear time: edges are bucketed by their smaller vertex (a counting
/// sort), then repeats are counted inside each small bucket.
fn edge_counts(vertex_count: usize, triangles: &[[u32; 3]]) -> EdgeCounts {
    let pairs = |t: &[u32; 3]| {
        [(t[0], t[1]), (t[1], t[2]), (t[2], t[0])].map(|(a, b)| if a < b { (a, b) } else { (b, a) })
    };
    let mut start = vec![0usize; vertex_count + 1];
    for t in triangles {
        for (lo, _) in pairs(t) {
            start[lo as usize + 1] += 1;
        }
    }
    for v in 0..vertex_count {
        start[v + 1] += start[v];
    }
    let mut fill = start.clone();
    let mut his = vec![0u32; start[vertex_count]];
    for t in triangles {
        for (lo, hi) in pairs(t) {
            his[fill[lo as usize]] = hi;
            fill[lo as usize] += 1;
        }
    }
    drop(fill);
    let (boundary, non_manifold) = (0..vertex_count)
        .into_par_iter()
        .with_min_len(4096)
        .fold(
            || (0u64, 0u64, Vec::<u32>::new()),
            |(mut b, mut nm, mut buf), v| {
                buf.clear();
                buf.extend_from_slice(&his[start[v]..start[v + 1]]);
                buf.sort_unstable();
                let mut i = 0;
                while i < buf.len() {
                    let mut j = i + 1;
                    while j < buf.len() && buf[j] == buf[i] {
                        j += 1;
                    }
                    match j - i {
                        1 => b += 1,
                        2 => {}
                        _ => nm += 1,
                    }
                    i = j;
                }
                (b, nm, buf)
            },
        )
        .map(|(b, nm, _)| (b, nm))
        .reduce(|| (0, 0), |x, y| (x.0 + y.0, x.1 + y.1));
    EdgeCounts {
        boundary,
        non_manifold,
        watertight: boundary == 0 && non_manifold == 0,
    }
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let p = parent[x as usize];
        parent[x as usize] = parent[p as usize];
        x = parent[x as usize];
    }
    x
}

fn count_components(vertex_count: usize, triangles: &[[u32; 3]]) -> u64 {
    let mut parent: Vec<u32> = (0..vertex_count as u32).collect();
    let mut components = vertex_count as u64;
    for t in triangles {
        for (a, b) in [(t[0], t[1]), (t[1], t[2])] {
            let ra = find(&mut parent, a);
            let rb = find(&mut parent, b);
            if ra != rb {
                parent[ra as usize] = rb;
                components -= 1;
            }
        }
    }
    components
}

impl IndexedMesh {
    /// Axis-aligned bounds of the vertices, or `None` when there are none.
    pub fn bounds(&self) -> Option<([f64; 3], [f64; 3])> {
        if self.vertices.is_empty() {
            return None;
        }
        let init = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
        Some(
            self.vertices
                .par_chunks(1 << 14)
                .map(|c| {
                    let mut b = init;
                    for v in c {
                        for k in 0..3 {
                            b.0[k] = b.0[k].min(v[k]);
                            b.1[k] = b.1[k].max(v[k]);
                        }
                    }
                    b
                })
                .reduce(
                    || init,
                    |a, b| {
                        let mut r = a;
                        for k in 0..3 {
                            r.0[k] = r.0[k].min(b.0[k]);
                            r.1[k] = r.1[k].max(b.1[k]);
                        }
                        r
                    },
                ),
        )
    }

    /// Computes every measure; `None` when the mesh has no triangles.
    pub fn stats(&self) -> Option<MeshStats> {
        if self.triangles.is_empty() {
            return None;
        }
        let (bbox_min, bbox_max) = self.bounds()?;
        let v = &self.vertices;
        let sums = self
            .triangles
            .par_chunks(1 << 14)
            .map(|chunk| {
                let mut s = Sums::default();
                for t in chunk {
                    let (a, b, c) = (v[t[0] as usize], v[t[1] as usize], v[t[2] as usize]);
                    let cr0 = cross(sub(b, a), sub(c, a));
                    let area = 0.5 * norm(cr0);
                    let cr = cr0;
                    // divergence theorem with the field (x, 0, 0), as the reference does:
                    // identical to the tetrahedron sum on closed meshes, and it defines
                    // what an open mesh's "volume" is
                    let vol6 = cr[0] * (a[0] + b[0] + c[0]);
                    s.area += area;
                    s.volume6 += vol6;
                    s.tet6 += dot(a, cross(b, c));
                    for k in 0..3 {
                        let sum = a[k] + b[k] + c[k];
                        s.area_centroid[k] += area * sum / 3.0;
                        s.vol_centroid[k] += dot(a, cross(b, c)) * sum / 4.0;
                    }
                }
                s
            })
            .reduce(Sums::default, Sums::add);
        let (edges, bodies) = rayon::join(
            || edge_counts(self.vertices.len(), &self.triangles),
            || count_components(self.vertices.len(), &self.triangles),
        );
        let volume = sums.volume6 / 6.0;
        let diag = norm(sub(bbox_max, bbox_min));
        let centroid = if edges.watertight && volume.abs() > 1e-12 * diag.powi(3) {
            sums.vol_centroid.map(|c| c / sums.tet6)
        } else if sums.area > 0.0 {
            sums.area_centroid.map(|c| c / sums.area)
        } else {
            [0, 1, 2].map(|k| 0.5 * (bbox_min[k] + bbox_max[k]))
        };
        Some(MeshStats {
            triangles: self.triangles.len() as u64,
            vertices: self.vertices.len() as u64,
            bbox_min,
            bbox_max,
            surface_area: sums.area,
            volume,
            watertight: edges.watertight,
            bodies,
            centroid,
            boundary_edges: edges.boundary,
            non_manifold_edges: edges.non_manifold,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cube() -> RawMesh {
        let mut positions = Vec::new();
        for i in 0..8u32 {
            positions.push([(i & 1) as f64, ((i >> 1) & 1) as f64, ((i >> 2) & 1) as f64]);
        }
        let quads = [
            [0, 2, 3, 1],
            [4, 5, 7, 6],
            [0, 1, 5, 4],
            [2, 6, 7, 3],
            [0, 4, 6, 2],
            [1, 3, 7, 5],
        ];
        let mut triangles = Vec::new();
        for q in quads {
            triangles.push([q[0], q[1], q[2]]);
            triangles.push([q[0], q[2], q[3]]);
        }
        RawMesh {
            positions,
            triangles,
            ..Default::default()
        }
    }

    #[test]
    fn rounding_is_half_to_even() {
        for (v, want) in [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (1.2, 1),
            (-1.7, -2),
        ] {
            assert_eq!(round_key(v, 1.0), want, "{v}");
        }
        assert_eq!(round_key(1e300, 1.0), i64::MAX);
        assert_eq!(round_key(f64::NAN, 1.0), 0);
    }

    #[test]
    fn unit_cube_measures() {
        let s = cube().merge().stats().unwrap();
        assert_eq!(s.triangles, 12);
        assert!((s.surface_area - 6.0).abs() < 1e-12);
        assert!((s.volume.abs() - 1.0).abs() < 1e-12);
        assert!(s.watertight);
        assert_eq!(s.bodies, 1);
        for c in s.centroid {
            assert!((c - 0.5).abs() < 1e-12);
        }
    }

    #[test]
    fn soup_merges_by_rounded_position() {
        // the same cube as a triangle soup, with jitter below the merge precision
        let c = cube();
        let mut soup = RawMesh::default();
        for (n, t) in c.triangles.iter().enumerate() {
            let base = soup.positions.len() as u32;
            for &i in t {
                let mut p = c.positions[i as usize];
                p[0] += (n as f64) * 1e-12;
                soup.positions.push(p);
            }
            soup.triangles.push([base, base + 1, base + 2]);
        }
        let m = soup.merge();
        assert_eq!(m.vertices.len(), 8);
        let s = m.stats().unwrap();
        assert!(s.watertight);
        assert_eq!(s.bodies, 1);
    }

    #[test]
    fn parts_are_not_merged_together() {
        let c = cube();
        let mut two = c.clone();
        let n = c.positions.len() as u32;
        two.positions.extend(c.positions.iter());
        two.triangles
            .extend(c.triangles.iter().map(|t| t.map(|i| i + n)));
        two.vertex_part = Some((0..2 * n).map(|i| i / n).collect());
        let s = two.merge().stats().unwrap();
        assert_eq!(s.bodies, 2);
        assert!(s.watertight);
        two.vertex_part = None;
        let s = two.merge().stats().unwrap();
        assert_eq!(s.bodies, 1);
        assert!(!s.watertight);
        assert_eq!(s.non_manifold_edges, 18);
    }
}
