//! The fuzz target's oracle (`fuzz/check.rs`) over the samples and over every input kept in
//! `fuzz/regressions/`: each fuzz finding and each hand-made edge input is a file of raw bytes
//! there, so it stays fixed without fuzzing (and `fuzz/run.sh` seeds the fuzzer from them).

use std::io::Read;
use std::path::{Path, PathBuf};

#[path = "../fuzz/check.rs"]
mod check;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn decompressed(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let name = path.to_string_lossy();
    let mut out = Vec::new();
    if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("gunzipping {}: {e}", path.display()));
    } else if name.ends_with(".zst") {
        out = zstd::decode_all(&raw[..]).unwrap_or_else(|e| panic!("unzstding {}: {e}", path.display()));
    } else {
        out = raw;
    }
    out
}

/// Every file below `dir`, sorted; a folder that is missing or cannot be listed fails the test.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    let mut out = Vec::new();
    for e in entries {
        let p = e.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display())).path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Runs the oracle over each file; panics naming every file it failed on and why.
fn check_files(files: &[PathBuf], read: fn(&Path) -> Vec<u8>) {
    let mut failed = Vec::new();
    for f in files {
        let data = read(f);
        if let Err(e) = std::panic::catch_unwind(|| check::check_all(&data)) {
            let why = e.downcast_ref::<String>().map(String::as_str).or_else(|| e.downcast_ref::<&str>().copied());
            failed.push(format!("{}: {}", f.display(), why.unwrap_or("(a panic without a message)")));
        }
    }
    assert!(
        failed.is_empty(),
        "the fuzz oracle failed on {} of {} files:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

fn read_raw(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn samples_pass_the_fuzz_oracle() {
    let files: Vec<_> = files_below(&root().join("samples"))
        .into_iter()
        .filter(|p| quarry::extract::read::is_dump_name(&p.to_string_lossy()))
        .collect();
    assert!(files.len() >= 3, "expected at least 3 dumps in samples/, found {files:?}");
    check_files(&files, decompressed);
}

/// Kept inputs, as raw bytes (never decompressed: the fuzz target reads them as they are);
/// `QUARRY_FUZZ_DIR=fuzz/corpus/extract` also replays a whole corpus without instrumentation
/// (to triage a new oracle rule quickly).
#[test]
fn kept_fuzz_inputs_pass_the_oracle() {
    let dir = root().join("fuzz/regressions");
    let mut files = files_below(&dir);
    assert!(!files.is_empty(), "{} holds no input: the kept findings are missing", dir.display());
    if let Some(extra) = std::env::var_os("QUARRY_FUZZ_DIR") {
        files.extend(files_below(Path::new(&extra)));
    }
    check_files(&files, read_raw);
}

const FINDING_1: &str = "fuzz/regressions/finding-1-numeric-reference-decodes-to-a-line-break-in-title-and-heading";

/// Fuzz finding 1 (oracle rule, not an importer bug): `&#10;` in a title or heading decodes to a
/// line break, as the format says references decode in every text value. The oracle now allows a
/// break in a one-line value only where the page holds a numeric reference.
#[test]
fn finding_1_a_decoded_line_break_in_a_heading() {
    let data = &read_raw(&root().join(FINDING_1));
    check::check_all(data);
    let p = check::pipeline();
    let rec = quarry::extract::page::extract(p, data, true).unwrap();
    assert_eq!(rec.cells[p.cols.title], quarry::extract::record::Cell::Text("t\nitle".into()));
    assert_eq!(rec.cells[p.cols.headings], quarry::extract::record::Cell::List(vec!["foo\nbar".into()]));
}
