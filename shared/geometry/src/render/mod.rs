//! Thumbnails: meshes through an isometric orthographic camera with a z-buffer, Lambert
//! shading and feature lines; drawings as 2D line art; point clouds as dots. Images are
//! square, rendered at twice the size and box-filtered down (anti-aliasing), then encoded
//! as PNG and lossless WebP.

pub mod font;

use crate::drawing::{Drawing, P2, Shape};
use crate::error::GeometryError;
use crate::{IndexedMesh, Model, UpAxis};
use rayon::prelude::*;

/// Image background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    /// Opaque white (RGB images).
    White,
    /// Transparent (RGBA images).
    Transparent,
}

/// Rendering settings.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Output widths (= heights: thumbnails are square).
    pub widths: Vec<u32>,
    /// Background.
    pub background: Background,
    /// Supersampling factor per axis (1 = none).
    pub supersample: u32,
    /// Produce PNG bytes.
    pub png: bool,
    /// Produce WebP bytes.
    pub webp: bool,
}

/// Default widths of the responsive thumbnail set.
pub const DEFAULT_WIDTHS: [u32; 3] = [320, 640, 1024];

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            widths: DEFAULT_WIDTHS.to_vec(),
            background: Background::White,
            supersample: 2,
            png: true,
            webp: true,
        }
    }
}

/// One encoded thumbnail.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// PNG file bytes (empty when not requested).
    pub png: Vec<u8>,
    /// Lossless WebP file bytes (empty when not requested).
    pub webp: Vec<u8>,
}

/// Raw pixels, 8-bit RGBA, rows top to bottom.
#[derive(Debug, Clone)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// width × height × 4 bytes.
    pub rgba: Vec<u8>,
}

const MIN_WIDTH: u32 = 16;
const MAX_WIDTH: u32 = 4096;
/// Fraction of the frame left empty on each side.
const MARGIN: f32 = 0.06;
const SURFACE: [f32; 3] = [196.0, 203.0, 214.0];
const LINE: [u8; 3] = [38, 44, 56];
const INK: [u8; 3] = [24, 40, 72];
const TEXT_INK: [u8; 3] = [150, 40, 40];

/// Renders PNG and WebP thumbnails at the given widths (square images, white background).
pub fn render_thumbnails(model: &Model, widths: &[u32]) -> Result<Vec<Thumbnail>, GeometryError> {
    render_thumbnails_with(
        model,
        &RenderOptions {
            widths: widths.to_vec(),
            ..Default::default()
        },
    )
}

/// Renders thumbnails with explicit options.
pub fn render_thumbnails_with(
    model: &Model,
    opts: &RenderOptions,
) -> Result<Vec<Thumbnail>, GeometryError> {
    for &w in &opts.widths {
        if !(MIN_WIDTH..=MAX_WIDTH).contains(&w) {
            return Err(GeometryError::Render(format!(
                "width {w} is outside {MIN_WIDTH}..={MAX_WIDTH}"
            )));
        }
    }
    let scene = Scene::new(model)?;
    // a mesh is rasterised once, at the largest size; smaller sizes sample that buffer
    let largest = opts
        .widths
        .iter()
        .map(|&w| hi_res(w, opts))
        .max()
        .unwrap_or(0);
    let gbuf = scene.gbuffer(largest);
    opts.widths
        .par_iter()
        .map(|&w| {
            let img = scene.render(w, opts, gbuf.as_ref());
            encode(&img, opts)
        })
        .collect()
}

/// Renders one square image of `width` pixels without encoding it.
pub fn render_image(
    model: &Model,
    width: u32,
    opts: &RenderOptions,
) -> Result<Image, GeometryError> {
    if !(MIN_WIDTH..=MAX_WIDTH).contains(&width) {
        return Err(GeometryError::Render(format!(
            "width {width} is outside {MIN_WIDTH}..={MAX_WIDTH}"
        )));
    }
    let scene = Scene::new(model)?;
    let gbuf = scene.gbuffer(hi_res(width, opts));
    Ok(scene.render(width, opts, gbuf.as_ref()))
}

fn encode(img: &Image, opts: &RenderOptions) -> Result<Thumbnail, GeometryError> {
    let opaque = opts.background == Background::White;
    let data: Vec<u8> = if opaque {
        img.rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect()
    } else {
        img.rgba.clone()
    };
    let (png, webp) = rayon::join(
        || -> Result<Vec<u8>, GeometryError> {
            if !opts.png {
                return Ok(Vec::new());
            }
            let mut out = Vec::new();
            let mut enc = png::Encoder::new(&mut out, img.width, img.height);
            enc.set_color(if opaque {
                png::ColorType::Rgb
            } else {
                png::ColorType::Rgba
            });
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Fast);
            let mut w = enc
                .write_header()
                .map_err(|e| GeometryError::Render(format!("PNG encoding failed: {e}")))?;
            w.write_image_data(&data)
                .map_err(|e| GeometryError::Render(format!("PNG encoding failed: {e}")))?;
            w.finish()
                .map_err(|e| GeometryError::Render(format!("PNG encoding failed: {e}")))?;
            Ok(out)
        },
        || -> Result<Vec<u8>, GeometryError> {
            if !opts.webp {
                return Ok(Vec::new());
            }
            let mut out = Vec::new();
            image_webp::WebPEncoder::new(&mut out)
                .encode(
                    &data,
                    img.width,
                    img.height,
                    if opaque {
                        image_webp::ColorType::Rgb8
                    } else {
                        image_webp::ColorType::Rgba8
                    },
                )
                .map_err(|e| GeometryError::Render(format!("WebP encoding failed: {e}")))?;
            Ok(out)
        },
    );
    Ok(Thumbnail {
        width: img.width,
        height: img.height,
        png: png?,
        webp: webp?,
    })
}

/// Geometry prepared for drawing at any size: view-space coordinates and 2D fit.
enum Scene<'a> {
    Mesh {
        /// view space: x right, y up, z toward the viewer
        verts: Vec<[f32; 3]>,
        tris: &'a [[u32; 3]],
        /// per face: packed view-space unit normal turned toward the viewer
        normals: Vec<u32>,
        fit: Fit,
        depth_range: f32,
    },
    Points {
        verts: Vec<[f32; 3]>,
        fit: Fit,
        depth: (f32, f32),
    },
    Drawing {
        drawing: &'a Drawing,
        /// chord tolerance for sampling curves, in drawing units
        tol: f64,
        fit: Fit,
    },
}

/// Maps view coordinates into the unit frame: screen = (v - center) * k + 0.5.
#[derive(Clone, Copy)]
struct Fit {
    center: [f64; 2],
    /// fraction of the frame per model unit
    k: f64,
}

impl Fit {
    fn new(lo: [f64; 2], hi: [f64; 2]) -> Fit {
        let ext = (hi[0] - lo[0]).max(hi[1] - lo[1]);
        let k = if ext > 0.0 && ext.is_finite() {
            (1.0 - 2.0 * MARGIN as f64) / ext
        } else {
            1.0
        };
        Fit {
            center: [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1])],
            k,
        }
    }
}

/// Isometric camera basis: looking from (+X, -Y, +Z) towards the origin, Z up, so the
/// front (-Y), right (+X) and top (+Z) faces are visible.
fn view_basis() -> [[f64; 3]; 3] {
    let s2 = std::f64::consts::SQRT_2;
    let s3 = 3f64.sqrt();
    let s6 = 6f64.sqrt();
    let right = [1.0 / s2, 1.0 / s2, 0.0];
    let up = [-1.0 / s6, 1.0 / s6, 2.0 / s6];
    let toward = [1.0 / s3, -1.0 / s3, 1.0 / s3];
    [right, up, toward]
}

fn to_view(p: [f64; 3], up: UpAxis, b: &[[f64; 3]; 3]) -> [f64; 3] {
    // Y-up models are turned so that their +Y is +Z and their front (+Z) faces -Y
    let q = match up {
        UpAxis::Z => p,
        UpAxis::Y => [p[0], -p[2], p[1]],
    };
    [0, 1, 2].map(|k| b[k][0] * q[0] + b[k][1] * q[1] + b[k][2] * q[2])
}

fn bounds2(pts: impl Iterator<Item = [f64; 2]>) -> Option<([f64; 2], [f64; 2])> {
    let mut lo = [f64::INFINITY; 2];
    let mut hi = [f64::NEG_INFINITY; 2];
    let mut any = false;
    for p in pts {
        if p[0].is_finite() && p[1].is_finite() {
            any = true;
            for k in 0..2 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
    }
    any.then_some((lo, hi))
}

fn project(points: &[[f64; 3]], up: UpAxis) -> (Vec<[f32; 3]>, [f64; 2], [f64; 2]) {
    let b = view_basis();
    let v: Vec<[f64; 3]> = points.par_iter().map(|&p| to_view(p, up, &b)).collect();
    let (lo, hi) = bounds2(v.iter().map(|p| [p[0], p[1]])).unwrap_or(([0.0; 2], [0.0; 2]));
    // centre before narrowing to f32 so large coordinates keep their precision
    let c = [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1])];
    let verts = v
        .par_iter()
        .map(|p| [(p[0] - c[0]) as f32, (p[1] - c[1]) as f32, p[2] as f32])
        .collect();
    (
        verts,
        [lo[0] - c[0], lo[1] - c[1]],
        [hi[0] - c[0], hi[1] - c[1]],
    )
}

impl<'a> Scene<'a> {
    fn new(model: &'a Model) -> Result<Scene<'a>, GeometryError> {
        match model {
            Model::Mesh { mesh, up } => Ok(Self::mesh(mesh, *up)),
            Model::Points { points, up } => {
                let (mut verts, lo, hi) = project(points, *up);
                verts.retain(|p| p.iter().all(|c| c.is_finite()));
                let (z0, z1) = verts
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), p| {
                        (a.min(p[2]), b.max(p[2]))
                    });
                Ok(Scene::Points {
                    verts,
                    fit: Fit::new(lo, hi),
                    depth: (z0, z1),
                })
            }
            Model::Drawing(d) => Ok(Self::drawing(d)),
            Model::Nothing => Err(GeometryError::Render(
                "the file holds nothing to draw".into(),
            )),
        }
    }

    fn mesh(mesh: &'a IndexedMesh, up: UpAxis) -> Scene<'a> {
        let (verts, lo, hi) = project(&mesh.vertices, up);
        let normals = mesh
            .triangles
            .par_iter()
            .map(|t| {
                let (a, b, c) = (
                    verts[t[0] as usize],
                    verts[t[1] as usize],
                    verts[t[2] as usize],
                );
                let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
                let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
                let mut n = [
                    u[1] * v[2] - u[2] * v[1],
                    u[2] * v[0] - u[0] * v[2],
                    u[0] * v[1] - u[1] * v[0],
                ];
                let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
                if len > 0.0 && len.is_finite() {
                    n = n.map(|x| x / len);
                } else {
                    n = [0.0, 0.0, 1.0];
                }
                // two-sided: always light the side that faces the camera
                if n[2] < 0.0 {
                    n = n.map(|x| -x);
                }
                pack_normal(n)
            })
            .collect();
        let (z0, z1) = verts
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), p| {
                (a.min(p[2]), b.max(p[2]))
            });
        Scene::Mesh {
            verts,
            tris: &mesh.triangles,
            normals,
            fit: Fit::new(lo, hi),
            depth_range: (z1 - z0).max(f32::MIN_POSITIVE),
        }
    }

    fn drawing(d: &'a Drawing) -> Scene<'a> {
        let (lo, hi) = d.bounds().unwrap_or(([0.0; 2], [1.0; 2]));
        let diag = ((hi[0] - lo[0]).powi(2) + (hi[1] - lo[1]).powi(2)).sqrt();
        let tol = if diag > 0.0 { diag / 4000.0 } else { 1e-3 };
        // fit to what is drawn (sampled curves, text boxes); for huge drawings the entity
        // extents are close enough and much cheaper
        let sample = d.entities.len() <= 50_000;
        let mut acc: Option<([f64; 2], [f64; 2])> = None;
        let mut add = |p: P2| {
            if p[0].is_finite() && p[1].is_finite() {
                let (l, h) = acc.get_or_insert((p, p));
                for k in 0..2 {
                    l[k] = l[k].min(p[k]);
                    h[k] = h[k].max(p[k]);
                }
            }
        };
        for e in &d.entities {
            if let Shape::Text {
                origin: o,
                direction: dir,
                height: h,
                text,
            } = &e.shape
            {
                let w = *h * 0.8 * text.chars().count() as f64;
                let n = [-dir[1], dir[0]];
                add(*o);
                add([o[0] + dir[0] * w, o[1] + dir[1] * w]);
                add([o[0] + n[0] * h, o[1] + n[1] * h]);
                add([o[0] + dir[0] * w + n[0] * h, o[1] + dir[1] * w + n[1] * h]);
            } else if sample {
                for pl in e.polylines(tol) {
                    pl.into_iter().for_each(&mut add);
                }
            } else if let Some((l, h)) = e.bounds() {
                add(l);
                add(h);
            }
        }
        let b = acc.unwrap_or((lo, hi));
        Scene::Drawing {
            drawing: d,
            tol,
            fit: Fit::new(b.0, b.1),
        }
    }

    /// For meshes, the depth/id/normal buffer at `size` hi-res pixels.
    fn gbuffer(&self, size: usize) -> Option<ZBuf> {
        match self {
            Scene::Mesh {
                verts,
                tris,
                normals,
                fit,
                ..
            } => Some(rasterize(verts, tris, normals, *fit, size)),
            _ => None,
        }
    }

    fn render(&self, width: u32, opts: &RenderOptions, gbuf: Option<&ZBuf>) -> Image {
        let size = hi_res(width, opts);
        let ss = size / width as usize;
        let hi = match (self, gbuf) {
            (
                Scene::Mesh {
                    fit, depth_range, ..
                },
                Some(big),
            ) => {
                let resampled;
                let zb = if big.size == size {
                    big
                } else {
                    resampled = big.resample(size);
                    &resampled
                };
                shade_mesh(zb, *fit, *depth_range, ss as u32)
            }
            (
                Scene::Mesh {
                    verts,
                    tris,
                    normals,
                    fit,
                    depth_range,
                },
                None,
            ) => {
                let zb = rasterize(verts, tris, normals, *fit, size);
                shade_mesh(&zb, *fit, *depth_range, ss as u32)
            }
            (Scene::Points { verts, fit, depth }, _) => {
                render_points(verts, *fit, *depth, size, ss as u32)
            }
            (Scene::Drawing { drawing, tol, fit }, _) => {
                render_drawing(drawing, *tol, *fit, size, ss as u32)
            }
        };
        downsample(&hi, size, ss, width as usize, opts.background)
    }
}

/// Side of the supersampled image for an output width.
fn hi_res(width: u32, opts: &RenderOptions) -> usize {
    let ss = opts
        .supersample
        .clamp(1, 4)
        .min((2 * MAX_WIDTH / width.max(1)).max(1));
    (width * ss) as usize
}

/// Hi-res premultiplied RGBA in f32-free u8 form: (rgb, alpha) per pixel.
struct Canvas {
    rgb: Vec<[u8; 3]>,
    alpha: Vec<u8>,
}

impl Canvas {
    fn new(size: usize) -> Canvas {
        Canvas {
            rgb: vec![[255; 3]; size * size],
            alpha: vec![0; size * size],
        }
    }
}

fn downsample(c: &Canvas, size: usize, ss: usize, width: usize, bg: Background) -> Image {
    let mut rgba = vec![0u8; width * width * 4];
    let n = (ss * ss) as u32;
    rgba.par_chunks_mut(width * 4)
        .enumerate()
        .for_each(|(y, row)| {
            for x in 0..width {
                let mut acc = [0u32; 3];
                let mut a = 0u32;
                for dy in 0..ss {
                    let base = (y * ss + dy) * size + x * ss;
                    for dx in 0..ss {
                        let i = base + dx;
                        let al = c.alpha[i] as u32;
                        for k in 0..3 {
                            acc[k] += c.rgb[i][k] as u32 * al;
                        }
                        a += al;
                    }
                }
                let px = &mut row[x * 4..x * 4 + 4];
                match bg {
                    Background::White => {
                        // composite over white
                        for k in 0..3 {
                            let cover = acc[k] + 255 * (255 * n - a);
                            px[k] = ((cover + 255 * n / 2) / (255 * n)) as u8;
                        }
                        px[3] = 255;
                    }
                    Background::Transparent => {
                        for k in 0..3 {
                            px[k] = (acc[k] + a / 2).checked_div(a).unwrap_or(0) as u8;
                        }
                        px[3] = ((a + n / 2) / n) as u8;
                    }
                }
            }
        });
    Image {
        width: width as u32,
        height: width as u32,
        rgba,
    }
}

/// Depth, triangle id and the triangle's packed normal per pixel. Keeping the normal in the
/// buffer lets the shading pass read memory sequentially instead of per-triangle tables.
struct ZBuf {
    size: usize,
    z: Vec<f32>,
    id: Vec<u32>,
    n: Vec<u32>,
}

impl ZBuf {
    fn new(size: usize) -> ZBuf {
        ZBuf {
            size,
            z: vec![f32::NEG_INFINITY; size * size],
            id: vec![u32::MAX; size * size],
            n: vec![0; size * size],
        }
    }

    /// The buffer a rasteriser would produce at a smaller size: each pixel takes the sample
    /// nearest to its centre (the difference is a sub-pixel shift of the sample positions).
    fn resample(&self, size: usize) -> ZBuf {
        let big = self.size;
        let map: Vec<usize> = (0..size)
            .map(|x| (((2 * x + 1) * big) / (2 * size)).min(big - 1))
            .collect();
        let mut out = ZBuf::new(size);
        out.z
            .par_chunks_mut(size)
            .zip(out.id.par_chunks_mut(size))
            .zip(out.n.par_chunks_mut(size))
            .enumerate()
            .for_each(|(y, ((z, id), n))| {
                let row = map[y] * big;
                for x in 0..size {
                    let i = row + map[x];
                    z[x] = self.z[i];
                    id[x] = self.id[i];
                    n[x] = self.n[i];
                }
            });
        out
    }
}

/// floor for values that fit an i64, without a library call on baseline x86-64.
#[inline]
fn fast_floor(v: f32) -> i64 {
    let t = v as i64;
    if (t as f32) > v { t - 1 } else { t }
}

/// ceil counterpart of [`fast_floor`].
#[inline]
fn fast_ceil(v: f32) -> i64 {
    let t = v as i64;
    if (t as f32) < v { t + 1 } else { t }
}

/// Packs a unit normal into three signed bytes.
fn pack_normal(n: [f32; 3]) -> u32 {
    let q = |v: f32| ((v.clamp(-1.0, 1.0) * 127.0).round() as i8) as u8 as u32;
    q(n[0]) | (q(n[1]) << 8) | (q(n[2]) << 16)
}

fn unpack_normal(p: u32) -> [f32; 3] {
    [0, 8, 16].map(|s| ((p >> s) as u8 as i8) as f32 * (1.0 / 127.0))
}

fn raster_chunk(
    verts: &[[f32; 2]],
    depth: &[f32],
    tris: &[[u32; 3]],
    normals: &[u32],
    first: u32,
    size: usize,
) -> ZBuf {
    let mut zb = ZBuf::new(size);
    let lim = size as f32;
    for (k, t) in tris.iter().enumerate() {
        let id = first + k as u32;
        let (a, mut b, mut c) = (t[0] as usize, t[1] as usize, t[2] as usize);
        let (pa, pb0, pc0) = (verts[a], verts[b], verts[c]);
        let area = (pb0[0] - pa[0]) * (pc0[1] - pa[1]) - (pb0[1] - pa[1]) * (pc0[0] - pa[0]);
        if area == 0.0 || !area.is_finite() {
            continue;
        }
        // screen y grows downwards; keep a consistent orientation
        if area < 0.0 {
            std::mem::swap(&mut b, &mut c);
        }
        let area = area.abs();
        let (pb, pc) = (verts[b], verts[c]);
        let minx = pa[0].min(pb[0]).min(pc[0]).max(0.0);
        let maxx = pa[0].max(pb[0]).max(pc[0]).min(lim - 1.0);
        let miny = pa[1].min(pb[1]).min(pc[1]).max(0.0);
        let maxy = pa[1].max(pb[1]).max(pc[1]).min(lim - 1.0);
        if minx > maxx || miny > maxy {
            continue;
        }
        let (x0, x1) = (fast_ceil(minx - 0.5).max(0), fast_floor(maxx - 0.5));
        let (y0, y1) = (fast_ceil(miny - 0.5).max(0), fast_floor(maxy - 0.5));
        if x1 < x0 || y1 < y0 {
            continue;
        }
        let (x0, x1, y0, y1) = (x0 as usize, x1 as usize, y0 as usize, y1 as usize);
        let (za, zbv, zc) = (depth[a], depth[b], depth[c]);
        let inv = 1.0 / area;
        let packed = normals[k];
        for y in y0..=y1.min(size - 1) {
            let py = y as f32 + 0.5;
            for x in x0..=x1.min(size - 1) {
                let px = x as f32 + 0.5;
                let w0 = (pc[0] - pb[0]) * (py - pb[1]) - (pc[1] - pb[1]) * (px - pb[0]);
                let w1 = (pa[0] - pc[0]) * (py - pc[1]) - (pa[1] - pc[1]) * (px - pc[0]);
                let w2 = (pb[0] - pa[0]) * (py - pa[1]) - (pb[1] - pa[1]) * (px - pa[0]);
                if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                    continue;
                }
                let z = (w0 * za + w1 * zbv + w2 * zc) * inv;
                let i = y * size + x;
                if z > zb.z[i] {
                    zb.z[i] = z;
                    zb.id[i] = id;
                    zb.n[i] = packed;
                }
            }
        }
    }
    zb
}

/// Rasterises a mesh into a depth/id/normal buffer, the triangles split over all threads.
fn rasterize(
    verts: &[[f32; 3]],
    tris: &[[u32; 3]],
    normals: &[u32],
    fit: Fit,
    size: usize,
) -> ZBuf {
    let s = (fit.k * size as f64) as f32;
    let half = size as f32 / 2.0;
    // fit.center is already subtracted from the projected coordinates
    let screen: Vec<[f32; 2]> = verts
        .par_iter()
        .map(|v| [v[0] * s + half, half - v[1] * s])
        .collect();
    let depth: Vec<f32> = verts.par_iter().map(|v| v[2]).collect();
    let threads = rayon::current_num_threads().max(1);
    let chunk = tris.len().div_ceil(threads).max(1 << 14);
    let parts: Vec<ZBuf> = tris
        .par_chunks(chunk)
        .zip(normals.par_chunks(chunk))
        .enumerate()
        .map(|(i, (c, n))| raster_chunk(&screen, &depth, c, n, (i * chunk) as u32, size))
        .collect();
    let mut iter = parts.into_iter();
    let mut zb = iter.next().unwrap_or_else(|| ZBuf::new(size));
    for other in iter {
        zb.z.par_iter_mut()
            .zip(zb.id.par_iter_mut())
            .zip(zb.n.par_iter_mut())
            .zip(
                other
                    .z
                    .par_iter()
                    .zip(other.id.par_iter())
                    .zip(other.n.par_iter()),
            )
            .for_each(|(((z, id), n), ((oz, oid), on))| {
                if *oz > *z || (*oz == *z && *oid < *id) {
                    *z = *oz;
                    *id = *oid;
                    *n = *on;
                }
            });
    }
    zb
}

/// Shades a depth/id/normal buffer and draws the feature lines.
fn shade_mesh(zb: &ZBuf, fit: Fit, depth_range: f32, ss: u32) -> Canvas {
    let size = zb.size;
    let s = (fit.k * size as f64) as f32;
    // light from the upper left, slightly in front
    let l = {
        let v = [-0.35f32, 0.55, 0.76];
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        v.map(|x| x / n)
    };
    let crease = 30f32.to_radians().cos();
    // a depth jump of a few pixels between different faces is an occluding contour
    let pixel = 1.0 / s.max(1e-30);
    let jump = (4.0 * ss as f32 * pixel).max(depth_range * 1e-4);
    let is_edge = |i: usize, j: usize| -> bool {
        let (a, b) = (zb.id[i], zb.id[j]);
        if a == b {
            return false;
        }
        if a == u32::MAX || b == u32::MAX {
            return true;
        }
        if zb.n[i] != zb.n[j] {
            let (na, nb) = (unpack_normal(zb.n[i]), unpack_normal(zb.n[j]));
            if na[0] * nb[0] + na[1] * nb[1] + na[2] * nb[2] < crease {
                return true;
            }
        }
        (zb.z[i] - zb.z[j]).abs() > jump
    };
    let mut canvas = Canvas::new(size);
    canvas
        .rgb
        .par_chunks_mut(size)
        .zip(canvas.alpha.par_chunks_mut(size))
        .enumerate()
        .for_each(|(y, (rgb, alpha))| {
            for x in 0..size {
                let i = y * size + x;
                let id = zb.id[i];
                // a pixel is on a line when it differs from a neighbour across an edge;
                // checking both sides makes lines symmetric and about one output pixel wide
                let edge = (x + 1 < size && is_edge(i, i + 1))
                    || (x > 0 && is_edge(i, i - 1))
                    || (y + 1 < size && is_edge(i, i + size))
                    || (y > 0 && is_edge(i, i - size));
                if id == u32::MAX {
                    if edge && ss == 1 {
                        rgb[x] = LINE;
                        alpha[x] = 255;
                    }
                    continue;
                }
                rgb[x] = if edge {
                    LINE
                } else {
                    let n = unpack_normal(zb.n[i]);
                    let lambert = (n[0] * l[0] + n[1] * l[1] + n[2] * l[2]).max(0.0);
                    let f = 0.30 + 0.70 * lambert;
                    SURFACE.map(|c| (c * f).round().clamp(0.0, 255.0) as u8)
                };
                alpha[x] = 255;
            }
        });
    canvas
}

fn render_points(verts: &[[f32; 3]], fit: Fit, depth: (f32, f32), size: usize, ss: u32) -> Canvas {
    let s = (fit.k * size as f64) as f32;
    let half = size as f32 / 2.0;
    let mut z = vec![f32::NEG_INFINITY; size * size];
    let mut canvas = Canvas::new(size);
    // bigger dots for sparse clouds
    let radius = if verts.len() < 2000 { 2.5 } else { 1.2 } * ss as f32;
    let r = radius.ceil() as i64;
    let span = (depth.1 - depth.0).max(f32::MIN_POSITIVE);
    for v in verts {
        let (cx, cy) = (v[0] * s + half, half - v[1] * s);
        let lim = size as f32 + radius;
        if !(cx > -radius && cx < lim && cy > -radius && cy < lim) {
            continue;
        }
        let t = ((v[2] - depth.0) / span).clamp(0.0, 1.0);
        // nearer points darker
        let col = [
            (150.0 - 110.0 * t) as u8,
            (165.0 - 110.0 * t) as u8,
            (190.0 - 100.0 * t) as u8,
        ];
        let (ix, iy) = (cx.floor() as i64, cy.floor() as i64);
        for dy in -r..=r {
            for dx in -r..=r {
                let (x, y) = (ix + dx, iy + dy);
                if x < 0 || y < 0 || x >= size as i64 || y >= size as i64 {
                    continue;
                }
                let ddx = x as f32 + 0.5 - cx;
                let ddy = y as f32 + 0.5 - cy;
                if ddx * ddx + ddy * ddy > radius * radius {
                    continue;
                }
                let i = y as usize * size + x as usize;
                if v[2] > z[i] {
                    z[i] = v[2];
                    canvas.rgb[i] = col;
                    canvas.alpha[i] = 255;
                }
            }
        }
    }
    canvas
}

/// Draws a thick segment (a capsule of radius `r`) in hi-res pixels.
fn stroke(c: &mut Canvas, size: usize, a: [f32; 2], b: [f32; 2], r: f32, col: [u8; 3]) {
    if !(a.iter().chain(b.iter()).all(|v| v.is_finite())) {
        return;
    }
    let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
    // long segments in short pieces so the scanned boxes stay small
    let pieces = ((len / 16.0).ceil() as usize).clamp(1, 100_000);
    for p in 0..pieces {
        let t0 = p as f32 / pieces as f32;
        let t1 = (p + 1) as f32 / pieces as f32;
        let p0 = [a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0];
        let p1 = [a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1];
        let x0 = (p0[0].min(p1[0]) - r).floor().max(0.0) as i64;
        let x1 = (p0[0].max(p1[0]) + r).ceil().min(size as f32 - 1.0) as i64;
        let y0 = (p0[1].min(p1[1]) - r).floor().max(0.0) as i64;
        let y1 = (p0[1].max(p1[1]) + r).ceil().min(size as f32 - 1.0) as i64;
        let d = [p1[0] - p0[0], p1[1] - p0[1]];
        let dd = d[0] * d[0] + d[1] * d[1];
        for y in y0..=y1 {
            for x in x0..=x1 {
                let q = [x as f32 + 0.5 - p0[0], y as f32 + 0.5 - p0[1]];
                let t = if dd > 0.0 {
                    ((q[0] * d[0] + q[1] * d[1]) / dd).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let e = [q[0] - d[0] * t, q[1] - d[1] * t];
                if e[0] * e[0] + e[1] * e[1] <= r * r {
                    let i = y as usize * size + x as usize;
                    c.rgb[i] = col;
                    c.alpha[i] = 255;
                }
            }
        }
    }
}

fn render_drawing(d: &Drawing, tol: f64, fit: Fit, size: usize, ss: u32) -> Canvas {
    let mut canvas = Canvas::new(size);
    let s = fit.k * size as f64;
    let half = size as f64 / 2.0;
    let map = |p: P2| -> [f32; 2] {
        [
            ((p[0] - fit.center[0]) * s + half) as f32,
            (half - (p[1] - fit.center[1]) * s) as f32,
        ]
    };
    let r = 0.6 * ss as f32 + 0.15;
    for e in &d.entities {
        if let Shape::Text {
            origin,
            direction: dir,
            height,
            text,
        } = &e.shape
        {
            // 3x5 glyphs on a 4x6 grid; a cell is a fifth of the cap height
            let cell = height / 5.0;
            let n = [-dir[1], dir[0]];
            let dot_r = ((cell * s) as f32 * 0.5).max(0.5);
            font::for_each_dot(text, |col, row| {
                let u = (col as f64 + 0.5) * cell;
                let v = (4.5 - row as f64) * cell;
                let p = [
                    origin[0] + dir[0] * u + n[0] * v,
                    origin[1] + dir[1] * u + n[1] * v,
                ];
                let q = map(p);
                stroke(&mut canvas, size, q, q, dot_r, TEXT_INK);
            });
            continue;
        }
        // an entity smaller than a pixel is a dot: no need to sample it
        if let Some((lo, hi)) = e.bounds() {
            let (a, b) = (map(lo), map(hi));
            if (a[0] - b[0]).abs() < 1.0 && (a[1] - b[1]).abs() < 1.0 {
                stroke(&mut canvas, size, a, a, r, INK);
                continue;
            }
        }
        for pl in e.polylines(tol) {
            for w in pl.windows(2) {
                stroke(&mut canvas, size, map(w[0]), map(w[1]), r, INK);
            }
            if pl.len() == 1 {
                let p = map(pl[0]);
                stroke(&mut canvas, size, p, p, r, INK);
            }
        }
    }
    canvas
}

/// Writes `text` into an RGBA image with the built-in 3×5 font (`scale` pixels per cell).
pub fn draw_label(img: &mut Image, x: i32, y: i32, scale: i32, text: &str, rgb: [u8; 3]) {
    let (w, h) = (img.width as i32, img.height as i32);
    font::for_each_dot(text, |col, row| {
        for dy in 0..scale {
            for dx in 0..scale {
                let (px, py) = (x + col * scale + dx, y + row * scale + dy);
                if px >= 0 && py >= 0 && px < w && py < h {
                    let i = ((py * w + px) * 4) as usize;
                    img.rgba[i..i + 3].copy_from_slice(&rgb);
                    img.rgba[i + 3] = 255;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RawMesh;

    fn cube_model() -> Model {
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
        let raw = RawMesh {
            positions,
            triangles,
            ..Default::default()
        };
        Model::Mesh {
            mesh: raw.merge(),
            up: UpAxis::Z,
        }
    }

    #[test]
    fn cube_thumbnail_has_three_shades_and_lines() {
        let img = render_image(&cube_model(), 64, &RenderOptions::default()).unwrap();
        let px = |x: usize, y: usize| {
            let i = (y * 64 + x) * 4;
            [img.rgba[i], img.rgba[i + 1], img.rgba[i + 2]]
        };
        // corners are background, the centre is surface
        assert_eq!(px(0, 0), [255, 255, 255]);
        assert_ne!(px(32, 32), [255, 255, 255]);
        // top face (above centre) and the two side faces differ in brightness
        let top = px(32, 18);
        let left = px(22, 42);
        let right = px(42, 42);
        assert_ne!(top, left);
        assert_ne!(left, right);
    }

    #[test]
    fn encodes_png_and_webp() {
        let t = render_thumbnails(&cube_model(), &[32, 48]).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[0].png.starts_with(b"\x89PNG"));
        assert!(t[1].webp.starts_with(b"RIFF"));
        assert_eq!((t[1].width, t[1].height), (48, 48));
        assert!(render_thumbnails(&cube_model(), &[8]).is_err());
        assert!(render_thumbnails(&Model::Nothing, &[64]).is_err());
    }
}
