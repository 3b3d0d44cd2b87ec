//! Checks the metadata of every file listed in the shared test data's expected.json (computed
//! by trimesh 5.2, an independent implementation) within the README's tolerances:
//! numbers relative 1e-4 (plus 1e-6 absolute, the rounding of the reference's 6 decimals),
//! counts and flags exact, DXF entity counts within 10 %.

use serde_json::Value;
use std::path::PathBuf;

fn testdata() -> PathBuf {
    match std::env::var_os("CAD_TESTDATA") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/cad"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-4 * a.abs().max(b.abs()) + 1e-6
}

fn compare(path: &str, key: &str, want: &Value, got: Option<&Value>, errors: &mut Vec<String>) {
    let Some(got) = got else {
        errors.push(format!("{path}: {key} missing (want {want})"));
        return;
    };
    let ok = match (key, want) {
        ("entities", Value::Number(w)) => {
            let (w, g) = (w.as_f64().unwrap_or(0.0), got.as_f64().unwrap_or(-1.0));
            (w - g).abs() <= 0.1 * w
        }
        ("entities_by_type", Value::Object(w)) => {
            let g = got.as_object().cloned().unwrap_or_default();
            w.iter().all(|(k, v)| {
                let (wv, gv) = (
                    v.as_f64().unwrap_or(0.0),
                    g.get(k).and_then(Value::as_f64).unwrap_or(0.0),
                );
                (wv - gv).abs() <= 0.1 * wv
            }) && g.keys().all(|k| w.contains_key(k))
        }
        (_, Value::Array(w)) => {
            let g = got.as_array().cloned().unwrap_or_default();
            w.len() == g.len()
                && w.iter()
                    .zip(&g)
                    .all(|(a, b)| match (a.as_f64(), b.as_f64()) {
                        (Some(a), Some(b)) => close(a, b),
                        _ => false,
                    })
        }
        ("bytes" | "triangles" | "bodies", _) => want.as_u64() == got.as_u64(),
        (_, Value::Number(w)) => match (w.as_f64(), got.as_f64()) {
            (Some(a), Some(b)) => close(a, b),
            _ => false,
        },
        _ => want == got,
    };
    if !ok {
        errors.push(format!("{path}: {key} = {got}, expected {want}"));
    }
}

#[test]
fn matches_reference_values() {
    let dir = testdata();
    let expected: Value = serde_json::from_slice(
        &std::fs::read(dir.join("expected.json")).unwrap_or_else(|e| {
            panic!(
                "cannot read {}/expected.json: {e} (set CAD_TESTDATA)",
                dir.display()
            )
        }),
    )
    .expect("expected.json is JSON");
    let entries = expected.as_object().expect("an object of files");
    let mut errors = Vec::new();
    let mut checked = 0;
    for (path, want) in entries {
        let bytes = std::fs::read(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let got = match geometry::analyze(&bytes, Some(path)) {
            Ok(a) => serde_json::to_value(&a.metadata).expect("serialisable"),
            Err(e) => {
                errors.push(format!("{path}: analyze failed: {e}"));
                continue;
            }
        };
        for (key, w) in want.as_object().expect("an object per file") {
            compare(path, key, w, got.get(key), &mut errors);
        }
        checked += 1;
    }
    for e in &errors {
        eprintln!("MISMATCH {e}");
    }
    eprintln!(
        "{checked} of {} files analysed, {} mismatches",
        entries.len(),
        errors.len()
    );
    assert_eq!(entries.len(), 67, "expected.json should list 67 files");
    assert!(errors.is_empty(), "{} mismatches (see above)", errors.len());
}
