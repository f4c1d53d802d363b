//! The fuzz target's oracle (`fuzz/check.rs`) over the samples and over every input the fuzzer
//! found a problem with: each finding is kept here as bytes, so it stays fixed without fuzzing.

use std::io::Read;
use std::path::Path;

#[path = "../fuzz/check.rs"]
mod check;

fn decompressed(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    let name = path.to_string_lossy();
    let mut out = Vec::new();
    if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out).unwrap();
    } else if name.ends_with(".zst") {
        out = zstd::decode_all(&raw[..]).unwrap();
    } else {
        out = raw;
    }
    out
}

fn files_below(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn samples_pass_the_fuzz_oracle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files: Vec<_> = files_below(&root.join("samples"))
        .into_iter()
        .filter(|p| quarry::extract::read::is_dump_name(&p.to_string_lossy()))
        .collect();
    assert!(files.len() >= 3, "{files:?}");
    for f in files {
        check::check_all(&decompressed(&f));
    }
}

/// Kept findings; `QUARRY_FUZZ_DIR=fuzz/corpus/extract` also replays a whole corpus without
/// instrumentation (to triage a new oracle rule quickly).
#[test]
fn kept_fuzz_inputs_pass_the_oracle() {
    let mut files = files_below(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions"));
    if let Some(dir) = std::env::var_os("QUARRY_FUZZ_DIR") {
        files.extend(files_below(Path::new(&dir)));
    }
    for f in files {
        let data = std::fs::read(&f).unwrap();
        if let Err(e) = std::panic::catch_unwind(|| check::check_all(&data)) {
            panic!("{}: {}", f.display(), e.downcast_ref::<String>().map_or("(panic)", |s| s.as_str()));
        }
    }
}

#[test]
fn small_hand_made_inputs() {
    for data in [
        &b""[..],
        b"\xef\xbb\xbf",
        b"\n\n  \r\n",
        b"Similar Posts",
        b"alphanode post meta\nhash 0123456789abcdef\nSimilar Posts\n- x\n",
        b"t\nSimilar Posts\n\n\n- a\n\nt2\n",
        b"\xff\xfe\n\x00\nSimilar Posts\n",
    ] {
        check::check_all(data);
    }
}

/// Fuzz finding 1 (oracle rule, not an importer bug): `&#10;` in a title or heading decodes to a
/// line break, as the format says references decode in every text value. The oracle now allows a
/// break in a one-line value only where the page holds a numeric reference.
#[test]
fn finding_1_a_decoded_line_break_in_a_heading() {
    let data = b"t&#10;itle\nfoo&#xA;bar\nalphanode post meta\nhash 0123456789abcdef\nSimilar Posts\n";
    check::check_all(data);
    let p = check::pipeline();
    let rec = quarry::extract::page::extract(p, data, true).unwrap();
    assert_eq!(rec.cells[p.cols.title], quarry::extract::record::Cell::Text("t\nitle".into()));
    assert_eq!(rec.cells[p.cols.headings], quarry::extract::record::Cell::List(vec!["foo\nbar".into()]));
}
