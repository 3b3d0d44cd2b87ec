#![no_main]
//! Fuzzes detection, analysis and rendering end to end.

use geometry::render::{RenderOptions, render_thumbnails_with};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = geometry::analyze(data, None) {
        let opts = RenderOptions { widths: vec![24], webp: false, ..Default::default() };
        let _ = render_thumbnails_with(&a.model, &opts);
    }
});
