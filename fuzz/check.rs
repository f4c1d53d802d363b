//! The oracle of the extractor fuzz target, shared with `tests/fuzz_regressions.rs` (which runs it
//! over every kept finding and the samples): arbitrary bytes → `PageSplitter` → `extract_raw`.
//!
//! Checks: no panic; every page gives a record or a reject with a consistent reason; the pages
//! cover the input (page bytes are the input's bytes at their offset, pages do not overlap, and
//! what lies between pages is blank lines only); page boundaries do not depend on the page-size
//! limit; the record is bounded by the input's size.

use std::sync::OnceLock;

use quarry::extract::page::extract_raw;
use quarry::extract::record::{Cell, Record, RejectReason};
use quarry::extract::split::{PageSplitter, RawPage, DEFAULT_MAX_PAGE_BYTES};
use quarry::extract::text::is_blank;
use quarry::pipeline::Pipeline;

/// A page limit small enough that fuzz inputs reach it.
pub const SMALL_PAGE: usize = 512;

/// The alphanode pipeline, compiled once.
pub fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        let text = include_str!("../pipelines/alphanode.toml");
        Pipeline::from_toml("pipelines/alphanode.toml".as_ref(), text).expect("pipeline")
    })
}

fn blank_lines(b: &[u8]) -> bool {
    String::from_utf8_lossy(b).split('\n').all(is_blank)
}

fn cell_bytes(c: &Cell) -> usize {
    match c {
        Cell::Null | Cell::Int(_) | Cell::Float(_) | Cell::Bool(_) => 8,
        Cell::Text(s) => s.len(),
        Cell::List(v) => v.iter().map(|s| s.len() + 8).sum(),
        Cell::Struct(v) => v.iter().map(|s| s.as_ref().map_or(8, |s| s.len() + 8)).sum(),
        Cell::Objects(v) => v.iter().flatten().map(|s| s.as_ref().map_or(8, |s| s.len() + 8)).sum(),
        Cell::Map(v) => v.iter().map(|(k, vs)| k.len() + vs.iter().map(|s| s.len() + 8).sum::<usize>()).sum(),
    }
}

/// What any record must satisfy, whatever its page said.
fn check_record(rec: &Record, raw: &[u8], n: usize) {
    let p = pipeline();
    let c = &p.cols;
    assert_eq!(rec.cells[c.hash], Cell::Text(rec.hash.as_str().into()), "page {n}: hash cell");
    let text = String::from_utf8_lossy(raw);
    // unparsed_meta keeps lines as written (trailing white space removed, nothing decoded).
    if let Cell::List(lines) = &rec.cells[c.unparsed_meta] {
        for l in lines {
            assert!(!l.is_empty() && !l.contains('\n'), "page {n}: unparsed line {l:?}");
            assert!(text.contains(l.as_ref()), "page {n}: unparsed line {l:?} is not in the page");
        }
    }
    // Issues: known codes, each once; invalid_utf8 exactly when the bytes are not UTF-8.
    let Cell::List(issues) = &rec.cells[c.issues] else { panic!("page {n}: issues cell {:?}", rec.cells[c.issues]) };
    let mut seen = std::collections::HashSet::new();
    for code in issues {
        assert!(seen.insert(code), "page {n}: issue {code} twice");
        assert!(
            code == "invalid_utf8" || code.ends_with(":unparsable") || code.ends_with("_score:out_of_range"),
            "page {n}: unknown issue code {code}"
        );
    }
    assert_eq!(seen.iter().any(|c| *c == "invalid_utf8"), std::str::from_utf8(raw).is_err(), "page {n}: invalid_utf8");
    assert_eq!(rec.has_issues, !issues.is_empty(), "page {n}: has_issues");
    // One-line values stay on one line, unless a reference (`&#10;`) decoded to a line break.
    let decoded_break = text.contains("&#");
    if let Cell::Text(t) = &rec.cells[c.title] {
        assert!(!t.is_empty() && (decoded_break || !t.contains('\n')), "page {n}: title {t:?}");
    }
    if let Cell::List(hs) = &rec.cells[c.headings] {
        assert!(hs.iter().all(|h| !h.is_empty() && (decoded_break || !h.contains('\n'))), "page {n}: headings {hs:?}");
    }
}

fn split(data: &[u8], max_page: usize) -> Vec<RawPage> {
    let p = pipeline();
    PageSplitter::with_max_page(data, &p.trailer, max_page).map(|r| r.expect("reading a slice cannot fail")).collect()
}

/// Splits and extracts `data` with a page limit, checking every invariant; returns the pages.
pub fn check(data: &[u8], max_page: usize) -> Vec<RawPage> {
    let p = pipeline();
    let pages = split(data, max_page);
    // The same pages whatever the reader's buffer size (lines across buffer ends take the slow path).
    let cap = 1 + data.len() % 97;
    let small: Vec<RawPage> =
        PageSplitter::with_max_page(std::io::BufReader::with_capacity(cap, data), &p.trailer, max_page)
            .map(|r| r.expect("reading a slice cannot fail"))
            .collect();
    assert!(small == pages, "pages differ when read through a {cap}-byte buffer");
    let mut pos = if data.starts_with(b"\xef\xbb\xbf") { 3 } else { 0 };
    let (mut records, mut rejects) = (0usize, 0usize);
    for (n, pg) in pages.iter().enumerate() {
        let off = pg.offset as usize;
        assert!(off >= pos, "page {n} at {off} overlaps the previous one (ends at {pos})");
        assert!(blank_lines(&data[pos..off]), "non-blank bytes {pos}..{off} before page {n} belong to no page");
        assert!(!pg.bytes.is_empty(), "page {n} is empty");
        assert_eq!(&data[off..off + pg.bytes.len()], &pg.bytes[..], "page {n}: bytes differ from the input");
        match pg.oversize {
            Some(len) => {
                assert_eq!(pg.bytes.len(), max_page, "page {n}: an oversized page keeps exactly the limit");
                assert!(len as usize > max_page);
                pos = off + len as usize;
                assert!(pos <= data.len(), "page {n}: length {len} runs past the input");
                if let Some(next) = pages.get(n + 1) {
                    assert_eq!(next.offset as usize, pos, "page {n}: oversized length does not reach the next page");
                } else {
                    assert_eq!(pos, data.len(), "last page {n}: oversized length does not reach the end");
                }
            }
            None => {
                assert!(pg.bytes.len() <= max_page);
                pos = off + pg.bytes.len();
            }
        }
        match extract_raw(p, pg, max_page) {
            Ok(rec) => {
                records += 1;
                assert!(pg.complete && pg.oversize.is_none(), "page {n}: a truncated or oversized page made a record");
                assert!(
                    rec.hash.len() >= 16 && rec.hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                    "page {n}: record hash {:?}",
                    rec.hash
                );
                assert_eq!(
                    rec.cells.len(),
                    quarry::contract::schema::posts().fields().len(),
                    "page {n}: one cell per posts column"
                );
                check_record(&rec, &pg.bytes, n);
                let size: usize = rec.cells.iter().map(cell_bytes).sum();
                assert!(
                    size <= 4 * pg.bytes.len() + 16 * 1024,
                    "page {n}: {} input bytes made {size} bytes of cells",
                    pg.bytes.len()
                );
            }
            Err(rej) => {
                rejects += 1;
                if pg.oversize.is_some() {
                    assert_eq!(rej.reason, RejectReason::PageTooLarge, "page {n}");
                } else if !pg.complete {
                    assert_eq!(rej.reason, RejectReason::Truncated, "page {n}");
                } else {
                    assert!(
                        matches!(
                            rej.reason,
                            RejectReason::NoMeta | RejectReason::MissingHash | RejectReason::InvalidHash
                        ),
                        "page {n}: reason {:?} for a complete page",
                        rej.reason
                    );
                }
                assert!(!rej.detail.is_empty());
            }
        }
    }
    assert!(blank_lines(&data[pos.min(data.len())..]), "non-blank bytes after the last page belong to no page");
    assert_eq!(records + rejects, pages.len(), "a page was lost");
    // Only the last page may end without a trailer.
    for pg in pages.iter().rev().skip(1) {
        assert!(pg.complete, "a page in the middle of the input is marked truncated");
    }
    pages
}

/// Every check, with the default and with a small page limit; the page boundaries must agree.
pub fn check_all(data: &[u8]) {
    let big = check(data, DEFAULT_MAX_PAGE_BYTES);
    let small = check(data, SMALL_PAGE);
    let bounds = |v: &[RawPage]| v.iter().map(|p| (p.offset, p.complete)).collect::<Vec<_>>();
    assert_eq!(bounds(&big), bounds(&small), "page boundaries depend on the page-size limit");
}
