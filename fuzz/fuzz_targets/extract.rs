//! Arbitrary bytes → `PageSplitter` → `extract_raw` for every page; the checks are in `../check.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../check.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::check_all(data));
