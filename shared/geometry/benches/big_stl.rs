//! End-to-end benchmark on a generated 100 MB binary STL (a closed torus of 2,000,000
//! triangles): read, parse, measure (all metadata incl. watertightness and bodies) and
//! render every default thumbnail size to PNG + WebP.
//!
//! `cargo bench --bench big_stl` (set BIG_STL_RUNS to change the repetitions)

use geometry::formats::stl;
use geometry::render::{RenderOptions, render_thumbnails_with};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const NU: usize = 1000;
const NV: usize = 1000;

/// Writes a finely tessellated torus as binary STL (shared vertices bit-identical, so the
/// mesh is closed and one body).
fn generate(path: &PathBuf) -> std::io::Result<()> {
    let (big, small) = (40.0f64, 15.0f64);
    let point = |i: usize, j: usize| -> [f32; 3] {
        let u = (i % NU) as f64 / NU as f64 * std::f64::consts::TAU;
        let v = (j % NV) as f64 / NV as f64 * std::f64::consts::TAU;
        let r = big + small * v.cos();
        [
            (r * u.cos()) as f32,
            (r * u.sin()) as f32,
            (small * v.sin()) as f32,
        ]
    };
    let mut out = Vec::with_capacity(84 + 50 * 2 * NU * NV);
    let mut header = b"geometry benchmark torus".to_vec();
    header.resize(80, b' ');
    out.extend_from_slice(&header);
    out.extend_from_slice(&((2 * NU * NV) as u32).to_le_bytes());
    let mut tri = |a: [f32; 3], b: [f32; 3], c: [f32; 3]| {
        out.extend_from_slice(&[0u8; 12]);
        for p in [a, b, c] {
            for x in p {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out.extend_from_slice(&[0u8; 2]);
    };
    for i in 0..NU {
        for j in 0..NV {
            let (a, b, c, d) = (
                point(i, j),
                point(i + 1, j),
                point(i + 1, j + 1),
                point(i, j + 1),
            );
            tri(a, b, c);
            tri(a, c, d);
        }
    }
    std::fs::File::create(path)?.write_all(&out)
}

/// CPU time used by this process so far (all threads), from /proc/self/stat on Linux.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Wall and CPU time of one stage.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Option<Duration>,
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Sample) {
    let (c0, t0) = (cpu_time(), Instant::now());
    let r = f();
    let wall = t0.elapsed();
    let cpu = cpu_time().zip(c0).map(|(a, b)| a.saturating_sub(b));
    (r, Sample { wall, cpu })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join("bench-torus-2m.stl");
    let want = (84 + 50 * 2 * NU * NV) as u64;
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(want) {
        eprintln!("generating {} ...", path.display());
        generate(&path)?;
    }
    let runs: usize = std::env::var("BIG_STL_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mb = want as f64 / 1e6;
    let mut rows: Vec<(&str, Vec<Sample>)> = Vec::new();
    let mut record = |name: &'static str, d: Sample| match rows.iter_mut().find(|r| r.0 == name) {
        Some(r) => r.1.push(d),
        None => rows.push((name, vec![d])),
    };
    for _ in 0..runs {
        let (bytes, t) = timed(|| std::fs::read(&path));
        let bytes = bytes?;
        record("read file (page cache)", t);

        let (file, t) = timed(|| stl::parse(&bytes));
        let file = file?;
        record("  parse binary STL", t);
        let (merged, t) = timed(|| file.mesh.merge());
        record("  merge vertices", t);
        drop(file);
        let (stats, t) = timed(|| merged.stats());
        record("  measure (area, volume, edges, bodies)", t);
        let stats = stats.ok_or("no triangles")?;
        assert!(stats.watertight && stats.bodies == 1 && stats.triangles == 2_000_000);
        let model = geometry::Model::Mesh {
            mesh: merged,
            up: geometry::UpAxis::Z,
        };
        let opts = RenderOptions {
            png: false,
            webp: false,
            ..Default::default()
        };
        let (r, t) = timed(|| render_thumbnails_with(&model, &opts));
        r?;
        record("  render 320+640+1024 (no encoding)", t);
        drop(model);

        let (analysis, t_analyze) = timed(|| geometry::analyze(&bytes, Some("torus.stl")));
        let analysis = analysis?;
        record("analyze() = parse+merge+measure+sha256", t_analyze);
        let (thumbs, t_render) =
            timed(|| render_thumbnails_with(&analysis.model, &RenderOptions::default()));
        let thumbs = thumbs?;
        record("render_thumbnails() 320+640+1024 PNG+WebP", t_render);
        record(
            "TOTAL analyze() + render_thumbnails()",
            Sample {
                wall: t_analyze.wall + t_render.wall,
                cpu: t_analyze.cpu.zip(t_render.cpu).map(|(a, b)| a + b),
            },
        );
        assert_eq!(thumbs.len(), 3);
        let md = &analysis.metadata;
        assert_eq!(md.bodies, Some(1));
        assert_eq!(md.watertight, Some(true));
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "binary STL, {mb:.1} MB, 2,000,000 triangles, {} threads, {runs} runs, load average {}",
        rayon::current_num_threads(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  {:<44} {:>9} {:>9} {:>9} {:>9}",
        "stage", "median s", "min s", "MB/s", "CPU s"
    );
    for (name, v) in rows {
        let mut walls: Vec<Duration> = v.iter().map(|s| s.wall).collect();
        walls.sort();
        let mut cpus: Vec<Duration> = v.iter().filter_map(|s| s.cpu).collect();
        cpus.sort();
        let med = walls[walls.len() / 2].as_secs_f64();
        let cpu = cpus
            .get(cpus.len() / 2)
            .map_or("-".to_string(), |c| format!("{:.2}", c.as_secs_f64()));
        println!(
            "  {name:<44} {med:>9.3} {:>9.3} {:>9.0} {cpu:>9}",
            walls[0].as_secs_f64(),
            mb / med
        );
    }
    Ok(())
}
