//! The cad-inspect binary: one JSON object per line, non-zero exit only for unreadable paths.

use std::process::Command;

fn testfile(name: &str) -> String {
    let dir = std::env::var("CAD_TESTDATA").unwrap_or_else(|_| {
        format!(
            "{}/../../../shared/testdata/cad",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    format!("{dir}/{name}")
}

#[test]
fn prints_json_lines_and_exit_codes() {
    let garbage =
        std::env::temp_dir().join(format!("cad-inspect-garbage-{}.stl", std::process::id()));
    std::fs::write(
        &garbage,
        [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 1, 2, 3],
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cad-inspect"))
        .arg(testfile("unit_cube.STL"))
        .arg(testfile("2D/text.dxf"))
        .arg(&garbage)
        .output()
        .unwrap();
    std::fs::remove_file(&garbage).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["kind"], "mesh");
    assert_eq!(lines[0]["triangles"], 12);
    assert_eq!(lines[0]["watertight"], true);
    assert_eq!(lines[1]["kind"], "drawing");
    assert_eq!(lines[1]["entities_by_type"]["Text"], 1);
    assert_eq!(lines[2]["kind"], "unsupported");
    assert_eq!(lines[2]["format"], "PNG image");
    assert!(lines[2]["error"].as_str().unwrap().contains("PNG"));

    let missing = Command::new(env!("CARGO_BIN_EXE_cad-inspect"))
        .arg("/nonexistent/file.stl")
        .arg(testfile("cube.OBJ"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let text = String::from_utf8(missing.stdout).unwrap();
    assert!(text.lines().next().unwrap().contains("\"unreadable\""));
    assert!(text.lines().nth(1).unwrap().contains("\"mesh\""));
}
