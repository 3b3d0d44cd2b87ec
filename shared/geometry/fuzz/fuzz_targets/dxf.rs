#![no_main]
//! Fuzzes the dxf parser, then measures whatever it accepted.

use geometry::{Format, Parsed, parse_as};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_as(data, Format::Dxf) {
        Ok(Parsed::Mesh(file)) => {
            let _ = file.mesh.merge().stats();
        }
        Ok(Parsed::Drawing(d)) => {
            let _ = d.bounds();
        }
        _ => {}
    }
});
