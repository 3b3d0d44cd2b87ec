//! Bad input never panics: every parser gets truncated prefixes, corrupted copies and random
//! bytes of every test file; declared counts larger than the file are rejected up front.

use geometry::{Format, GeometryError, analyze, parse_as, render::RenderOptions};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

const FORMATS: [Format; 7] = [
    Format::Stl,
    Format::Obj,
    Format::Ply,
    Format::Off,
    Format::ThreeMf,
    Format::Dxf,
    Format::Step,
];

fn testdata() -> PathBuf {
    match std::env::var_os("CAD_TESTDATA") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/cad"),
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Deterministic xorshift generator: the same bytes every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs every parser and the full pipeline (analysis + a small render) on `data`.
fn exercise(data: &[u8], label: &str, failures: &mut Vec<String>) {
    for f in FORMATS {
        if catch_unwind(AssertUnwindSafe(|| {
            let _ = parse_as(data, f);
        }))
        .is_err()
        {
            failures.push(format!("{label}: {} parser panicked", f.name()));
        }
    }
    if catch_unwind(AssertUnwindSafe(|| {
        if let Ok(a) = analyze(data, Some(label)) {
            let opts = RenderOptions {
                widths: vec![32],
                ..Default::default()
            };
            let _ = geometry::render_thumbnails_with(&a.model, &opts);
        }
    }))
    .is_err()
    {
        failures.push(format!("{label}: analyze/render panicked"));
    }
}

#[test]
fn truncated_corrupted_and_random_inputs_never_panic() {
    let mut all = Vec::new();
    files(&testdata(), &mut all);
    assert!(all.len() > 60, "test files missing");
    let mut failures = Vec::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for path in &all {
        let bytes = std::fs::read(path).expect("readable");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = bytes.len();
        // prefixes: every length near the start, then evenly spread cuts
        let mut cuts: Vec<usize> = (0..n.min(100)).collect();
        cuts.extend((1..24).map(|k| n * k / 24));
        for cut in cuts {
            exercise(&bytes[..cut], &format!("{name}[..{cut}]"), &mut failures);
        }
        // corrupted copies: a few random bytes changed
        for round in 0..6 {
            let mut c = bytes.clone();
            if !c.is_empty() {
                for _ in 0..=round * 3 {
                    let i = (rng.next() as usize) % c.len();
                    c[i] = rng.next() as u8;
                }
            }
            exercise(&c, &format!("{name} corrupted #{round}"), &mut failures);
        }
        // random bytes, keeping the first bytes so that detection picks the same parser
        let keep = n.min(16);
        let mut r = bytes[..keep].to_vec();
        r.extend((keep..n.min(64 * 1024)).map(|_| rng.next() as u8));
        exercise(&r, &format!("{name} random"), &mut failures);
    }
    for f in &failures {
        eprintln!("FAILURE {f}");
    }
    assert!(
        failures.is_empty(),
        "{} inputs made the code panic",
        failures.len()
    );
}

fn err(bytes: &[u8], f: Format) -> String {
    match parse_as(bytes, f) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn declared_counts_are_checked_before_allocating() {
    let mut stl = vec![0u8; 84 + 50];
    stl[80..84].copy_from_slice(&5_000_000u32.to_le_bytes());
    let msg = err(&stl, Format::Stl);
    assert!(
        msg.contains("declares 5000000 triangles") && msg.contains("134 bytes"),
        "{msg}"
    );

    let ply = b"ply\nformat binary_little_endian 1.0\nelement vertex 4000000000000\nproperty float x\nproperty float y\nproperty float z\nend_header\n\0\0\0\0";
    let msg = err(ply, Format::Ply);
    assert!(msg.contains("4000000000000"), "{msg}");

    let ply = b"ply\nformat binary_little_endian 1.0\nelement face 1\nproperty list uint int vertex_indices\nend_header\n\xff\xff\xff\xff";
    assert!(matches!(
        parse_as(ply, Format::Ply),
        Err(GeometryError::Invalid { .. })
    ));

    let off = b"OFF\n99999999999 1 0\n0 0 0\n";
    let msg = err(off, Format::Off);
    assert!(msg.contains("99999999999"), "{msg}");

    assert!(matches!(
        analyze(b"", Some("x.stl")),
        Err(GeometryError::EmptyFile)
    ));
}

#[test]
fn zip_entries_claiming_huge_sizes_are_refused() {
    // a stored (uncompressed) zip whose 3D model entry claims 4 GB uncompressed
    let name = b"3D/3dmodel.model";
    let data = b"<model/>";
    let crc = 0u32;
    let mut z = Vec::new();
    let local = |z: &mut Vec<u8>| {
        z.extend_from_slice(b"PK\x03\x04");
        z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend_from_slice(&crc.to_le_bytes());
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        z.extend_from_slice(&(name.len() as u16).to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z.extend_from_slice(name);
        z.extend_from_slice(data);
    };
    local(&mut z);
    let cd_start = z.len() as u32;
    z.extend_from_slice(b"PK\x01\x02");
    z.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&(data.len() as u32).to_le_bytes());
    z.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    z.extend_from_slice(&(name.len() as u16).to_le_bytes());
    z.extend_from_slice(&[0; 12]);
    z.extend_from_slice(&0u32.to_le_bytes());
    z.extend_from_slice(name);
    let cd_len = z.len() as u32 - cd_start;
    z.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\0\x01\0");
    z.extend_from_slice(&cd_len.to_le_bytes());
    z.extend_from_slice(&cd_start.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    match parse_as(&z, Format::ThreeMf) {
        Err(e) => {
            let m = e.to_string();
            assert!(m.contains("3MF"), "{m}");
        }
        Ok(_) => panic!("a zip entry claiming 4 GB must be refused"),
    }
}

#[test]
fn fuzz_regressions_do_not_panic() {
    // inputs that once crashed a fuzz target (see fuzz/run.sh)
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut all = Vec::new();
    files(&dir, &mut all);
    assert!(!all.is_empty());
    let mut failures = Vec::new();
    for p in all {
        let bytes = std::fs::read(&p).expect("readable");
        exercise(&bytes, &p.display().to_string(), &mut failures);
    }
    assert!(failures.is_empty(), "{failures:?}");
}
