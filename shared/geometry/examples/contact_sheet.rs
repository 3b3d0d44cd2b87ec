//! Regenerates docs/thumbnails/contact-sheet.png: 320-px thumbnails of every drawable test
//! file, labelled with its name.
//!
//! `cargo run --release --example contact_sheet [TESTDATA_DIR] [OUTPUT.png]`

use geometry::render::{Image, RenderOptions, draw_label, render_image};
use std::path::PathBuf;

const CELL: u32 = 320;
const LABEL: u32 = 18;
const COLUMNS: u32 = 8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CAD_TESTDATA").map(PathBuf::from))
        .unwrap_or_else(|| manifest.join("../../../shared/testdata/cad"));
    let out = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../docs/thumbnails/contact-sheet.png"));
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json"))?)?;
    let names: Vec<String> = expected
        .as_object()
        .ok_or("expected.json is not an object")?
        .keys()
        .cloned()
        .collect();
    let opts = RenderOptions::default();
    let mut cells: Vec<(String, Image)> = Vec::new();
    for name in names {
        let bytes = std::fs::read(dir.join(&name))?;
        let analysis = geometry::inspect(&bytes, Some(&name));
        match render_image(&analysis.model, CELL, &opts) {
            Ok(img) => cells.push((name, img)),
            Err(e) => eprintln!("{name}: no thumbnail ({e})"),
        }
    }
    let rows = (cells.len() as u32).div_ceil(COLUMNS);
    let (w, h) = (COLUMNS * CELL, rows * (CELL + LABEL));
    let mut sheet = Image {
        width: w,
        height: h,
        rgba: vec![255; (w * h * 4) as usize],
    };
    for (i, (name, img)) in cells.iter().enumerate() {
        let (cx, cy) = (
            (i as u32 % COLUMNS) * CELL,
            (i as u32 / COLUMNS) * (CELL + LABEL),
        );
        for y in 0..CELL {
            let src = (y * CELL * 4) as usize;
            let dst = (((cy + y) * w + cx) * 4) as usize;
            sheet.rgba[dst..dst + (CELL * 4) as usize]
                .copy_from_slice(&img.rgba[src..src + (CELL * 4) as usize]);
        }
        // thin separator lines
        for x in 0..CELL {
            let p = (((cy + CELL + LABEL - 1) * w + cx + x) * 4) as usize;
            sheet.rgba[p..p + 3].copy_from_slice(&[220, 220, 220]);
        }
        for y in 0..CELL + LABEL {
            let p = (((cy + y) * w + cx + CELL - 1) * 4) as usize;
            sheet.rgba[p..p + 3].copy_from_slice(&[220, 220, 220]);
        }
        draw_label(
            &mut sheet,
            cx as i32 + 6,
            (cy + CELL + 3) as i32,
            2,
            name,
            [40, 40, 40],
        );
    }
    // a 6-bit-per-channel palette keeps the sheet small
    let rgb: Vec<u8> = sheet
        .rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let (palette, indices) = quantize(&rgb);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::io::BufWriter::new(std::fs::File::create(&out)?);
    let mut enc = png::Encoder::new(file, w, h);
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_palette(palette);
    enc.set_compression(png::Compression::High);
    enc.write_header()?.write_image_data(&indices)?;
    eprintln!(
        "wrote {} ({} thumbnails, {}x{})",
        out.display(),
        cells.len(),
        w,
        h
    );
    Ok(())
}

/// Reduces to at most 256 colours: the most frequent 5-bit-per-channel colours, every pixel
/// mapped to its nearest palette entry.
fn quantize(rgb: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let key = |p: &[u8]| {
        ((p[0] as usize >> 3) << 10) | ((p[1] as usize >> 3) << 5) | (p[2] as usize >> 3)
    };
    let mut hist = vec![0u64; 1 << 15];
    for p in rgb.chunks_exact(3) {
        hist[key(p)] += 1;
    }
    let mut order: Vec<usize> = (0..hist.len()).filter(|&k| hist[k] > 0).collect();
    order.sort_by(|a, b| hist[*b].cmp(&hist[*a]));
    order.truncate(256);
    let colour = |k: usize| {
        [
            ((k >> 10) & 31) as i32 * 255 / 31,
            ((k >> 5) & 31) as i32 * 255 / 31,
            (k & 31) as i32 * 255 / 31,
        ]
    };
    let pal: Vec<[i32; 3]> = order.iter().map(|&k| colour(k)).collect();
    let mut nearest = vec![u8::MAX; 1 << 15];
    let mut indices = Vec::with_capacity(rgb.len() / 3);
    for p in rgb.chunks_exact(3) {
        let k = key(p);
        if nearest[k] == u8::MAX && !pal.is_empty() {
            let c = colour(k);
            let best = pal
                .iter()
                .enumerate()
                .min_by_key(|(_, q)| (0..3).map(|i| (q[i] - c[i]).pow(2)).sum::<i32>())
                .map_or(0, |(i, _)| i);
            nearest[k] = best as u8;
        }
        indices.push(nearest[k]);
    }
    let palette = pal.iter().flat_map(|c| c.map(|v| v as u8)).collect();
    (palette, indices)
}
