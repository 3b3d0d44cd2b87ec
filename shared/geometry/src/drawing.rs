//! 2D drawings (from DXF): entities, their extents and their sampling into polylines.
//!
//! Entities follow the reference's model: a `Line` is a polyline of two or more points, an
//! `Arc` is given by three points on it (start, middle, end) or is a full circle, a `BSpline`
//! by control points and knots, a `Text` by its insertion point and direction.

use std::collections::{BTreeMap, HashMap};
use std::f64::consts::PI;

/// A 2D point.
pub type P2 = [f64; 2];

/// One drawable entity.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A polyline through `points`.
    Line {
        /// Two or more points.
        points: Vec<P2>,
    },
    /// A circular arc through three points, or the full circle through them when `closed`.
    Arc {
        /// Start, a point in between, end.
        points: [P2; 3],
        /// A full circle.
        closed: bool,
    },
    /// A (possibly rational) B-spline.
    BSpline {
        /// Control points.
        control: Vec<P2>,
        /// Knot vector.
        knots: Vec<f64>,
        /// Degree.
        degree: usize,
        /// Weights, when rational.
        weights: Option<Vec<f64>>,
    },
    /// A text label.
    Text {
        /// Insertion point.
        origin: P2,
        /// Unit direction of the baseline.
        direction: P2,
        /// Character height.
        height: f64,
        /// The text.
        text: String,
    },
}

/// An entity with its layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Geometry.
    pub shape: Shape,
    /// Layer name.
    pub layer: String,
}

/// A parsed drawing.
#[derive(Debug, Clone, Default)]
pub struct Drawing {
    /// Entities in model space, blocks expanded.
    pub entities: Vec<Entity>,
    /// "ascii" or "binary".
    pub variant: String,
    /// $ACADVER, e.g. "AC1015".
    pub version: Option<String>,
    /// Release name for the version, e.g. "R2000".
    pub release: Option<String>,
    /// Declared units.
    pub units: Option<String>,
    /// Layer names (from the layer table and from entities), sorted.
    pub layers: Vec<String>,
    /// Entity types that were not converted, with counts.
    pub skipped: BTreeMap<String, u64>,
    /// Non-fatal problems.
    pub warnings: Vec<String>,
}

impl Shape {
    /// The reference's name for this entity type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Shape::Line { .. } => "Line",
            Shape::Arc { .. } => "Arc",
            Shape::BSpline { .. } => "BSpline",
            Shape::Text { .. } => "Text",
        }
    }

    /// Applies an affine map to every defining point.
    pub fn transform(&mut self, f: &impl Fn(P2) -> P2) {
        match self {
            Shape::Line { points } => points.iter_mut().for_each(|p| *p = f(*p)),
            Shape::Arc { points, .. } => points.iter_mut().for_each(|p| *p = f(*p)),
            Shape::BSpline { control, .. } => control.iter_mut().for_each(|p| *p = f(*p)),
            Shape::Text {
                origin, direction, ..
            } => {
                // the reference stores the direction as a second point one unit away
                let tip = f([origin[0] + direction[0], origin[1] + direction[1]]);
                *origin = f(*origin);
                *direction = [tip[0] - origin[0], tip[1] - origin[1]];
            }
        }
    }
}

/// Centre, radius and sweep of the arc through three points.
#[derive(Debug, Clone, Copy)]
pub struct ArcInfo {
    /// Centre.
    pub center: P2,
    /// Radius.
    pub radius: f64,
    /// Swept angle (positive).
    pub span: f64,
    /// +1 when the arc runs counter-clockwise from the first point, -1 otherwise.
    pub direction: f64,
}

/// Fits the circle through three points; `None` when they are (nearly) collinear.
pub fn arc_info(p: &[P2; 3]) -> Option<ArcInfo> {
    let (a, b, c) = (p[0], p[1], p[2]);
    let d = 2.0 * (a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1]));
    let scale = [a, b, c]
        .iter()
        .flat_map(|q| q.iter())
        .fold(0f64, |m, v| m.max(v.abs()))
        .max(1e-300);
    if !d.is_finite() || d.abs() < 1e-14 * scale * scale {
        return None;
    }
    let sq = |q: P2| q[0] * q[0] + q[1] * q[1];
    let ux = (sq(a) * (b[1] - c[1]) + sq(b) * (c[1] - a[1]) + sq(c) * (a[1] - b[1])) / d;
    let uy = (sq(a) * (c[0] - b[0]) + sq(b) * (a[0] - c[0]) + sq(c) * (b[0] - a[0])) / d;
    let center = [ux, uy];
    let radius = ((a[0] - ux).powi(2) + (a[1] - uy).powi(2)).sqrt();
    if !radius.is_finite() || radius == 0.0 {
        return None;
    }
    // orientation of a -> b -> c decides the sweep direction
    let cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
    let direction = if cross > 0.0 { 1.0 } else { -1.0 };
    let u0 = [(a[0] - ux) / radius, (a[1] - uy) / radius];
    let u2 = [(c[0] - ux) / radius, (c[1] - uy) / radius];
    let dot = (u0[0] * u2[0] + u0[1] * u2[1]).clamp(-1.0, 1.0);
    let mut span = if dot < -1.0 + 1e-12 {
        PI
    } else if dot > 1.0 - 1e-12 {
        0.0
    } else {
        dot.acos()
    };
    // the turn at the middle point exceeds 90 degrees only on arcs longer than half a circle
    let e0 = [b[0] - a[0], b[1] - a[1]];
    let e1 = [c[0] - b[0], c[1] - b[1]];
    if span.abs() > 1e-12 && e0[0] * e1[0] + e0[1] * e1[1] < 0.0 {
        span = 2.0 * PI - span;
    }
    Some(ArcInfo {
        center,
        radius,
        span,
        direction,
    })
}

/// Samples an arc as the reference does when it measures extents: `count` evenly spaced
/// points (at least 4, about one per 0.08 rad or per 0.05 drawing units of length), with the
/// end points exact.
fn sample_arc_reference(p: &[P2; 3], info: &ArcInfo, count: usize) -> Vec<P2> {
    let v1 = [
        (p[0][0] - info.center[0]) / info.radius,
        (p[0][1] - info.center[1]) / info.radius,
    ];
    let v2 = [-info.direction * v1[1], info.direction * v1[0]];
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let t = if count > 1 {
            info.span * i as f64 / (count - 1) as f64
        } else {
            0.0
        };
        let (s, c) = t.sin_cos();
        out.push([
            (c * v1[0] + s * v2[0]) * info.radius + info.center[0],
            (c * v1[1] + s * v2[1]) * info.radius + info.center[1],
        ]);
    }
    if count >= 2 {
        out[0] = p[0];
        out[count - 1] = p[2];
    }
    out
}

fn reference_arc_count(info: &ArcInfo) -> f64 {
    (info.span / 0.08)
        .max(info.radius * info.span / 0.05)
        .max(4.0)
        .ceil()
}

/// The bounds of [`sample_arc_reference`]'s points without generating them: only the
/// samples next to an axis extreme can be extreme, so O(1) whatever the count.
fn sampled_arc_bounds(p: &[P2; 3], info: &ArcInfo, count: u64) -> (P2, P2) {
    let v1 = [
        (p[0][0] - info.center[0]) / info.radius,
        (p[0][1] - info.center[1]) / info.radius,
    ];
    let v2 = [-info.direction * v1[1], info.direction * v1[0]];
    let last = count.saturating_sub(1).max(1);
    let step = info.span / last as f64;
    let sample = |i: u64| -> P2 {
        if i == 0 {
            return p[0];
        }
        if i >= last {
            return p[2];
        }
        let (s, c) = (step * i as f64).sin_cos();
        [
            (c * v1[0] + s * v2[0]) * info.radius + info.center[0],
            (c * v1[1] + s * v2[1]) * info.radius + info.center[1],
        ]
    };
    let mut pts = vec![p[0], p[2]];
    let start = v1[1].atan2(v1[0]);
    for k in 0..4 {
        let ang = k as f64 * PI / 2.0;
        let d = ((ang - start) * info.direction).rem_euclid(2.0 * PI);
        if d <= info.span && step > 0.0 {
            let idx = d / step;
            pts.push(sample(idx.floor() as u64));
            pts.push(sample(idx.ceil() as u64));
        }
    }
    bounds_of(pts).unwrap_or((p[0], p[0]))
}

fn bounds_of(points: impl IntoIterator<Item = P2>) -> Option<(P2, P2)> {
    let mut it = points.into_iter();
    let first = it.next()?;
    let (mut min, mut max) = (first, first);
    for q in it {
        for c in 0..2 {
            min[c] = min[c].min(q[c]);
            max[c] = max[c].max(q[c]);
        }
    }
    Some((min, max))
}

impl Entity {
    /// Extents as the reference measures them: exact for lines, circles, spline control
    /// polygons and text anchor/direction points; sampled for partial arcs.
    pub fn bounds(&self) -> Option<(P2, P2)> {
        match &self.shape {
            Shape::Line { points } => bounds_of(points.iter().copied()),
            Shape::BSpline { control, .. } => bounds_of(control.iter().copied()),
            Shape::Text {
                origin, direction, ..
            } => bounds_of([
                *origin,
                [origin[0] + direction[0], origin[1] + direction[1]],
            ]),
            Shape::Arc { points, closed } => {
                let Some(info) = arc_info(points) else {
                    return bounds_of(points.iter().copied());
                };
                if *closed {
                    let (c, r) = (info.center, info.radius);
                    return Some(([c[0] - r, c[1] - r], [c[0] + r, c[1] + r]));
                }
                let count = reference_arc_count(&info);
                if count <= 64.0 {
                    return bounds_of(sample_arc_reference(points, &info, count as usize));
                }
                Some(sampled_arc_bounds(points, &info, count.min(1e15) as u64))
            }
        }
    }

    /// Polylines for drawing this entity; `tolerance` is the largest allowed chord error.
    pub fn polylines(&self, tolerance: f64) -> Vec<Vec<P2>> {
        match &self.shape {
            Shape::Line { points } => vec![points.clone()],
            Shape::Arc { points, closed } => {
                let Some(mut info) = arc_info(points) else {
                    return vec![points.to_vec()];
                };
                if *closed {
                    info.span = 2.0 * PI;
                }
                let step = if tolerance > 0.0 && tolerance < info.radius {
                    2.0 * (1.0 - tolerance / info.radius).acos()
                } else {
                    PI / 8.0
                };
                let count = ((info.span / step.max(1e-3)).ceil() as usize + 1).clamp(3, 4096);
                let mut pts = sample_arc_reference(points, &info, count);
                if *closed {
                    pts[count - 1] = pts[0];
                }
                vec![pts]
            }
            Shape::BSpline {
                control,
                knots,
                degree,
                weights,
            } => vec![sample_bspline(control, knots, *degree, weights.as_deref())],
            Shape::Text { .. } => Vec::new(),
        }
    }
}

/// Evaluates a B-spline by de Boor's algorithm at evenly spaced parameters; falls back to
/// the control polygon when the knot vector does not fit.
pub fn sample_bspline(
    control: &[P2],
    knots: &[f64],
    degree: usize,
    weights: Option<&[f64]>,
) -> Vec<P2> {
    let n = control.len();
    let p = degree;
    if n < 2 || p == 0 || p >= n || knots.len() != n + p + 1 || knots.iter().any(|k| !k.is_finite())
    {
        return control.to_vec();
    }
    let w: Vec<f64> = match weights {
        Some(w) if w.len() == n && w.iter().all(|x| x.is_finite() && *x > 0.0) => w.to_vec(),
        _ => vec![1.0; n],
    };
    let (t0, t1) = (knots[p], knots[n]);
    if t1.partial_cmp(&t0) != Some(std::cmp::Ordering::Greater) {
        return control.to_vec();
    }
    let samples = (n * 12).clamp(32, 2000);
    let mut out = Vec::with_capacity(samples + 1);
    let mut d = vec![[0f64; 3]; p + 1];
    // knot span k with knots[k] <= t < knots[k+1], inside [p, n-1]; t only grows
    let mut k = p;
    for s in 0..=samples {
        let t = t0 + (t1 - t0) * s as f64 / samples as f64;
        while k < n - 1 && knots[k + 1] <= t {
            k += 1;
        }
        for j in 0..=p {
            let c = control[k - p + j];
            let wj = w[k - p + j];
            d[j] = [c[0] * wj, c[1] * wj, wj];
        }
        for r in 1..=p {
            for j in (r..=p).rev() {
                let i = k - p + j;
                let denom = knots[i + p + 1 - r] - knots[i];
                let a = if denom.abs() < 1e-300 {
                    0.0
                } else {
                    (t - knots[i]) / denom
                };
                for c in 0..3 {
                    d[j][c] = (1.0 - a) * d[j - 1][c] + a * d[j][c];
                }
            }
        }
        let h = d[p][2];
        if h.abs() > 1e-300 {
            out.push([d[p][0] / h, d[p][1] / h]);
        }
    }
    out
}

impl Drawing {
    /// Union of the entity extents.
    pub fn bounds(&self) -> Option<(P2, P2)> {
        let mut acc: Option<(P2, P2)> = None;
        for e in &self.entities {
            if let Some((lo, hi)) = e.bounds() {
                if !(lo.iter().chain(hi.iter()).all(|v| v.is_finite())) {
                    continue;
                }
                acc = Some(match acc {
                    None => (lo, hi),
                    Some((a, b)) => (
                        [a[0].min(lo[0]), a[1].min(lo[1])],
                        [b[0].max(hi[0]), b[1].max(hi[1])],
                    ),
                });
            }
        }
        acc
    }

    /// Entity counts by type name.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for e in &self.entities {
            *m.entry(e.shape.type_name().to_string()).or_insert(0) += 1;
        }
        m
    }

    /// Cleans the entity list the way the reference does after loading: points closer than
    /// the merge precision are one point, consecutive repeats collapse, degenerate lines and
    /// arcs go, and exact duplicates (same points, either direction) are dropped.
    pub fn clean(&mut self) {
        let Some((lo, hi)) = self.bounds() else {
            return;
        };
        let diag = ((hi[0] - lo[0]).powi(2) + (hi[1] - lo[1]).powi(2)).sqrt();
        let scale = if diag > 1e-8 && diag.is_finite() {
            diag
        } else {
            1.0
        };
        let digits = ((1e-8 * scale).log10().trunc().abs() as i32).clamp(1, 20);
        let mult = 10f64.powi(digits);
        let mut ids: HashMap<(i64, i64), u32> = HashMap::new();
        let mut id = |p: P2| -> u32 {
            let k = (
                (p[0] * mult - 1e-6).round_ties_even() as i64,
                (p[1] * mult - 1e-6).round_ties_even() as i64,
            );
            let n = ids.len() as u32;
            *ids.entry(k).or_insert(n)
        };
        let mut seen: std::collections::HashSet<Vec<u64>> = std::collections::HashSet::new();
        let mut kept = Vec::with_capacity(self.entities.len());
        for mut e in std::mem::take(&mut self.entities) {
            let mut key: Vec<u64> = Vec::new();
            let keep = match &mut e.shape {
                Shape::Line { points } => {
                    let mut pts: Vec<P2> = Vec::with_capacity(points.len());
                    let mut pid: Vec<u32> = Vec::with_capacity(points.len());
                    for &p in points.iter() {
                        let i = id(p);
                        if pid.last() != Some(&i) {
                            pid.push(i);
                            pts.push(p);
                        }
                    }
                    if pid.len() == 3 && pid[0] == pid[2] {
                        pid.truncate(2);
                        pts.truncate(2);
                    }
                    *points = pts;
                    if pid.first() < pid.last() {
                        pid.reverse();
                    }
                    key.push(1);
                    key.extend(pid.iter().map(|&i| i as u64));
                    pid.len() >= 2
                }
                Shape::Arc { points, closed } => {
                    let mut pid: Vec<u32> = points.iter().map(|&p| id(p)).collect();
                    pid.dedup();
                    if pid.first() < pid.last() {
                        pid.reverse();
                    }
                    key.push(2 + *closed as u64);
                    key.extend(pid.iter().map(|&i| i as u64));
                    pid.len() == 3
                }
                Shape::BSpline { control, knots, .. } => {
                    let mut pid: Vec<u64> = control.iter().map(|&p| id(p) as u64).collect();
                    let mut kn: Vec<u64> = knots.iter().map(|k| k.to_bits()).collect();
                    if pid.first() < pid.last() {
                        pid.reverse();
                        kn.reverse();
                    }
                    key.push(4);
                    key.extend(kn);
                    key.push(u64::MAX);
                    key.extend(pid);
                    true
                }
                Shape::Text {
                    origin,
                    direction,
                    text,
                    ..
                } => {
                    let tip = [origin[0] + direction[0], origin[1] + direction[1]];
                    key.push(5);
                    key.push(id(*origin) as u64);
                    key.push(id(tip) as u64);
                    key.extend(text.bytes().map(u64::from));
                    true
                }
            };
            if keep && seen.insert(key) {
                kept.push(e);
            }
        }
        self.entities = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arc_through_three_points() {
        // quarter circle counter-clockwise from (1,0) to (0,1)
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let info = arc_info(&[[1.0, 0.0], [s, s], [0.0, 1.0]]).unwrap();
        assert!((info.radius - 1.0).abs() < 1e-12);
        assert!((info.span - PI / 2.0).abs() < 1e-12);
        assert_eq!(info.direction, 1.0);
        // three-quarter arc: the middle point is on the far side
        let info = arc_info(&[[1.0, 0.0], [-s, -s], [0.0, 1.0]]).unwrap();
        assert!((info.span - 1.5 * PI).abs() < 1e-12);
        assert_eq!(info.direction, -1.0);
        assert!(arc_info(&[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]).is_none());
    }

    #[test]
    fn bspline_endpoints_clamped() {
        let c = [[0.0, 0.0], [1.0, 2.0], [3.0, 2.0], [4.0, 0.0]];
        let k = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let pts = sample_bspline(&c, &k, 3, None);
        let first = pts[0];
        let last = *pts.last().unwrap();
        assert!((first[0]).abs() < 1e-12 && (first[1]).abs() < 1e-12);
        assert!((last[0] - 4.0).abs() < 1e-12 && last[1].abs() < 1e-12);
    }

    #[test]
    fn sampled_bounds_without_sampling() {
        for (pts, count) in [
            ([[2.0, 0.0], [0.3, 1.977], [-2.0, 0.1]], 200u64),
            ([[10.0, 0.0], [-7.0, -7.14], [0.0, 10.0]], 1000),
            ([[1.0, 1.0], [3.0, 3.0], [5.0, 1.0]], 97),
        ] {
            let info = arc_info(&pts).unwrap();
            let full = bounds_of(sample_arc_reference(&pts, &info, count as usize)).unwrap();
            let fast = sampled_arc_bounds(&pts, &info, count);
            for k in 0..2 {
                assert!((full.0[k] - fast.0[k]).abs() < 1e-12, "{full:?} {fast:?}");
                assert!((full.1[k] - fast.1[k]).abs() < 1e-12, "{full:?} {fast:?}");
            }
        }
    }
}
