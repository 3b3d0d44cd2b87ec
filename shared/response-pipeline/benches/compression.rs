//! Compression levels by measurement: ratio and throughput of each coding and level over the
//! API's representative payloads, plus the whole pipeline's cost next to raw compression of the
//! same payload in the same run.
//!
//! cargo bench -p response-pipeline --bench compression

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http_body_util::BodyExt;
use response_pipeline::compress::{compress, decompress};
use response_pipeline::{Encoding, Levels, PipelineConfig, ResponsePipelineLayer};
use serde_json::{Value, json};
use tower::ServiceExt;

/// A file as GET /api/files returns it, with processed metadata and thumbnails.
fn file(i: usize) -> Value {
    let id = uuid::Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0000 + i as u128 * 7919);
    let owner = uuid::Uuid::from_u128(0xabc0_0000_0000_0000_0000_0000_0000_0000 + (i % 37) as u128);
    let created = chrono::DateTime::from_timestamp(1_700_000_000 + i as i64 * 3613, 0).unwrap();
    let material = ["steel", "aluminium", "abs"][i % 3];
    let stage = ["prototype", "production"][i % 2];
    let thumbnails: Vec<Value> = [320, 640, 1024]
        .iter()
        .map(|w| json!({"width": w, "format": "webp",
                        "key": format!("thumbnails/{:016x}/{w}.webp", i * 31 + w),
                        "url": format!("https://cdn.example.com/thumbnails/{:016x}/{w}.webp", i * 31 + w)}))
        .collect();
    let name = format!(
        "{}-{}-rev{}.stl",
        ["bracket", "housing", "gear", "shaft", "plate"][i % 5],
        i,
        i % 4
    );
    json!({
        "id": id, "uploaded_by": owner, "filename": name, "original_name": name,
        "file_size": 10_000 + (i * 7_777) % 90_000_000, "mime_type": "model/stl",
        "sha256": format!("{:064x}", (i as u128).wrapping_mul(0x9e3779b97f4a7c15f39cc0605cedc835)),
        "checksum": format!("{:032x}", (i as u128).wrapping_mul(0x2545f4914f6cdd1d)),
        "s3_key": format!("uploads/{owner}/{id}/v1/{name}"), "status": "ready", "processing_error": null,
        "tags": [material, stage, format!("batch-{}", i % 12)],
        "project_name": format!("Project {}", i % 9), "part_name": format!("Part {}", i % 31),
        "description": if i.is_multiple_of(3) { Value::Null } else { json!(format!("Revision {} of the part, tolerances per drawing D-{}", i % 4, i)) },
        "metadata": {"format": "stl", "binary": true, "triangles": 1000 + i * 13, "vertices": 500 + i * 7,
                     "bbox_min": [-(i as f64) * 0.37, -12.5, 0.0], "bbox_max": [i as f64 * 0.41, 12.5, 30.25 + i as f64 * 0.01],
                     "surface_area": 1234.5678 + i as f64 * 3.21, "volume": 4567.891 + i as f64 * 1.5, "watertight": !i.is_multiple_of(7), "bodies": 1 + i % 3},
        "thumbnails": thumbnails,
        "current_version": 1 + i % 3, "created_at": created, "updated_at": created,
    })
}

fn payloads() -> Vec<(&'static str, Vec<u8>)> {
    let listing = json!({"items": (0..1000).map(file).collect::<Vec<_>>(), "next_cursor": "eyJzb3J0IjoiY3JlYXRlZF9hdCJ9"});
    let user = json!({"id": uuid::Uuid::from_u128(42), "cognito_sub": "3f1c2a9e-8b7d-4c55-9a51-0c8f8a6e1d20",
        "email": "ada.lovelace@example.com", "username": "ada", "display_name": "Ada Lovelace", "role": "engineer",
        "is_active": true, "last_login_at": "2026-11-26T10:00:00Z", "preferences": {"units": "mm", "theme": "dark"},
        "created_at": "2025-01-01T00:00:00Z", "updated_at": "2026-11-26T10:00:00Z"});
    let search = json!({"query": "steel bracket m8", "total": 1234, "took_ms": 37,
        "items": (0..50).map(|i| json!({"file": file(i * 17), "score": 1.0 / (1.0 + i as f64),
            "highlights": {"original_name": format!("<em>bracket</em>-{i}"), "tags": ["<em>steel</em>"]}})).collect::<Vec<_>>(),
        "next_cursor": "eyJvZmZzZXQiOjUwfQ"});
    vec![
        ("1000-file listing", serde_json::to_vec(&listing).unwrap()),
        ("one user", serde_json::to_vec(&user).unwrap()),
        ("search page (50)", serde_json::to_vec(&search).unwrap()),
    ]
}

/// Runs `f` until at least `min` has passed; returns seconds per call.
fn time_per_call(min: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let mut n = 0u32;
    let start = Instant::now();
    while start.elapsed() < min || n < 3 {
        f();
        n += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(n)
}

fn main() {
    let min = Duration::from_millis(
        std::env::var("BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300),
    );
    let candidates: Vec<(Encoding, Vec<i64>)> = vec![
        (Encoding::Brotli, vec![1, 3, 4, 5, 6, 8, 11]),
        (Encoding::Gzip, vec![1, 4, 6, 9]),
        (Encoding::Zstd, vec![1, 3, 6, 9, 19]),
    ];
    println!(
        "| payload | coding | level | bytes in | bytes out | ratio | compress MB/s | decompress MB/s |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    for (name, body) in payloads() {
        for (enc, levels) in &candidates {
            for &level in levels {
                let lv = match enc {
                    Encoding::Brotli => Levels {
                        brotli: level as u32,
                        ..Levels::default()
                    },
                    Encoding::Gzip => Levels {
                        gzip: level as u32,
                        ..Levels::default()
                    },
                    _ => Levels {
                        zstd: level as i32,
                        ..Levels::default()
                    },
                };
                let packed = compress(*enc, &body, &lv).unwrap();
                let c = time_per_call(min, || {
                    black_box(compress(*enc, black_box(&body), &lv).unwrap());
                });
                let d = time_per_call(min, || {
                    black_box(decompress(*enc, black_box(&packed)).unwrap());
                });
                let mb = body.len() as f64 / 1e6;
                let default = Levels::default();
                let chosen = match enc {
                    Encoding::Brotli => level as u32 == default.brotli,
                    Encoding::Gzip => level as u32 == default.gzip,
                    _ => level as i32 == default.zstd,
                };
                println!(
                    "| {name} | {enc} | {level}{} | {} | {} | {:.2} | {:.0} | {:.0} |",
                    if chosen { " (chosen)" } else { "" },
                    body.len(),
                    packed.len(),
                    body.len() as f64 / packed.len() as f64,
                    mb / c,
                    mb / d
                );
            }
        }
    }

    // The whole pipeline (negotiation, hashing for the ETag, compression, headers) against raw
    // compression of the same body at the same level, in the same run.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listing = payloads().remove(0).1;
    let body = bytes::Bytes::from(listing.clone());
    let app = Router::new()
        .route(
            "/api/files",
            get(move || {
                let body = body.clone();
                async move { ([("content-type", "application/json")], body) }
            }),
        )
        .layer(ResponsePipelineLayer::new(PipelineConfig::default()));
    println!();
    println!(
        "| 1000-file listing | raw compress ms | through the pipeline ms | pipeline overhead ms | pipeline / raw |"
    );
    println!("|---|---:|---:|---:|---:|");
    for enc in Encoding::PREFERENCE {
        let raw = time_per_call(min, || {
            black_box(compress(enc, black_box(&listing), &Levels::default()).unwrap());
        });
        let piped = time_per_call(min, || {
            rt.block_on(async {
                let req = Request::get("/api/files")
                    .header("accept-encoding", enc.token())
                    .body(Body::empty())
                    .unwrap();
                let resp = app.clone().oneshot(req).await.unwrap();
                black_box(resp.into_body().collect().await.unwrap().to_bytes());
            });
        });
        println!(
            "| {enc} | {:.3} | {:.3} | {:.3} | {:.2} |",
            raw * 1e3,
            piped * 1e3,
            (piped - raw) * 1e3,
            piped / raw
        );
    }
}
