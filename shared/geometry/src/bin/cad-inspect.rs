//! `cad-inspect [--thumbnails DIR] [--widths 320,640,1024] FILE...`
//!
//! Prints one JSON object per file, one per line (JSON Lines), in argument order.
//! Unsupported or broken files still get an object (kind "unsupported" or "invalid" with an
//! "error" field); the exit code is 1 only when a path cannot be read (its line then holds
//! kind "unreadable"), 2 for bad usage.

use geometry::{RenderOptions, inspect, render_thumbnails_with};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: cad-inspect [--thumbnails DIR] [--widths 320,640,1024] FILE...";

fn main() -> ExitCode {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut thumbs: Option<PathBuf> = None;
    let mut widths: Vec<u32> = geometry::render::DEFAULT_WIDTHS.to_vec();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--thumbnails") => match args.next() {
                Some(d) => thumbs = Some(PathBuf::from(d)),
                None => return usage(),
            },
            Some("--widths") => {
                let parsed: Option<Vec<u32>> = args
                    .next()
                    .and_then(|w| w.to_str().map(str::to_string))
                    .map(|w| w.split(',').map(|x| x.trim().parse().ok()).collect())
                    .unwrap_or(None);
                match parsed {
                    Some(w) if !w.is_empty() => widths = w,
                    _ => return usage(),
                }
            }
            Some("-h") | Some("--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some("--") => files.extend(args.by_ref().map(PathBuf::from)),
            _ => files.push(PathBuf::from(a)),
        }
    }
    if files.is_empty() {
        return usage();
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut unreadable = false;
    for path in &files {
        let line = match std::fs::read(path) {
            Ok(bytes) => {
                let name = path.to_string_lossy();
                let analysis = inspect(&bytes, Some(&name));
                let mut value = match serde_json::to_value(&analysis.metadata) {
                    Ok(v) => v,
                    Err(e) => serde_json::json!({"kind": "invalid", "error": e.to_string()}),
                };
                value["path"] = serde_json::Value::String(name.into_owned());
                if let Some(dir) = &thumbs {
                    value["thumbnails"] = write_thumbnails(&analysis.model, dir, path, &widths);
                }
                value
            }
            Err(e) => {
                unreadable = true;
                serde_json::json!({
                    "path": path.to_string_lossy(),
                    "kind": "unreadable",
                    "error": format!("cannot read the file: {e}"),
                })
            }
        };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(1);
        }
    }
    if unreadable {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn write_thumbnails(
    model: &geometry::Model,
    dir: &Path,
    path: &Path,
    widths: &[u32],
) -> serde_json::Value {
    let opts = RenderOptions {
        widths: widths.to_vec(),
        ..Default::default()
    };
    let stem = path
        .file_name()
        .map(|s| s.to_string_lossy().replace('.', "_"))
        .unwrap_or_else(|| "file".into());
    match render_thumbnails_with(model, &opts) {
        Ok(thumbs) => {
            let mut written = Vec::new();
            if let Err(e) = std::fs::create_dir_all(dir) {
                return serde_json::json!({"error": e.to_string()});
            }
            for t in thumbs {
                for (ext, data) in [("png", &t.png), ("webp", &t.webp)] {
                    let p = dir.join(format!("{stem}_{}.{ext}", t.width));
                    match std::fs::write(&p, data) {
                        Ok(()) => written
                            .push(serde_json::Value::String(p.to_string_lossy().into_owned())),
                        Err(e) => return serde_json::json!({"error": e.to_string()}),
                    }
                }
            }
            serde_json::Value::Array(written)
        }
        Err(e) => serde_json::json!({"error": e.to_string()}),
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}
