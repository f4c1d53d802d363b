//! `quarry gen`: deterministic synthetic dumps in the format of the spec, for load tests.
//! `shared/tools/dumpgen.py` stays the reference (with its truth); this one is fast.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Settings of a generated corpus.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Pages in all (split evenly over batches and files).
    pub pages: u64,
    /// Seed of the random stream: the same seed gives the same bytes.
    pub seed: u64,
    /// Output folder, or `-` for one stream on standard output (one file, one batch).
    pub out: PathBuf,
    /// 0 gives clean pages only; 1 mixes in every variation at its usual rate.
    pub noise: f64,
    /// Files per batch.
    pub files: u32,
    /// Batches (one folder `batch-N` each when more than one).
    pub batches: u32,
    /// Pages as small as the format allows (see `PageGen::minimal_page`), for prefilling big warehouses.
    pub minimal: bool,
}

/// Page numbers of a minimal corpus fit in this many bits; the seed takes the rest of a 96-bit hash.
const MINIMAL_INDEX_BITS: u32 = 40;
const MASK_96: u128 = (1 << 96) - 1;

/// The hash of a minimal corpus's `index`-th new page: a bijection of (seed, index) onto 96 bits, so
/// no two pages of one corpus, nor of corpora whose seeds differ below 2^56, share a hash, while the
/// hashes still spread over the whole key space as real ones do (a sorted index sees no runs of keys).
fn minimal_hash(seed: u64, index: u64) -> u128 {
    let mut x = (u128::from(seed & ((1 << (96 - MINIMAL_INDEX_BITS)) - 1)) << MINIMAL_INDEX_BITS) | u128::from(index);
    // xorshift and multiplication by an odd constant are each invertible modulo 2^96.
    for (shift, mul) in [(48, 0x9e37_79b9_7f4a_7c15_f39c_c060_u128), (40, 0xbf58_476d_1ce4_e5b9_94d0_49bb_u128)] {
        x ^= x >> shift;
        x = x.wrapping_mul(mul | 1) & MASK_96;
    }
    x ^ (x >> 48)
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct GenSummary {
    pub files: u64,
    pub pages: u64,
    pub bytes: u64,
}

/// splitmix64: small, fast and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

const PROBLEMS: [&str; 12] = [
    "debugging cache invalidation",
    "reducing cold start latency",
    "tuning connection pools",
    "migrating database schemas",
    "handling background jobs",
    "rate limiting public apis",
    "rotating secrets safely",
    "structuring application logs",
    "profiling memory leaks",
    "indexing full text search",
    "tracing slow requests",
    "batching database writes",
];
const STACKS: [(&str, &str, &str); 6] = [
    ("python services", "backend", "python"),
    ("laravel apps", "backend", "php"),
    ("node backends", "backend", "javascript"),
    ("go microservices", "backend", "go"),
    ("rust web servers", "backend", "rust"),
    ("next.js frontends", "frontend", "typescript"),
];
const TOOLS: [&str; 8] = ["git", "logs", "pytest", "docker", "cargo", "eslint", "jest", "pprof"];
const SCENARIOS: [&str; 5] = [
    "while keeping the admin area responsive",
    "under heavy traffic",
    "without downtime",
    "on a small team",
    "during a migration",
];
const HEADINGS: [&str; 5] = ["why it matters", "common pitfalls", "what to measure", "step by step", "rollout plan"];
const SENTENCES: [&str; 10] = [
    "treat staging as a rehearsal, not just a place to click around.",
    "copy the important configuration, test the real deployment command, and confirm that a rollback can be executed without searching through old notes.",
    "developer experience also matters.",
    "if the setup requires five manual steps, put those steps in a command, a make target, or a short runbook.",
    "small automation saves time every time the project is moved to another machine.",
    "keep the implementation boring on purpose.",
    "when the feature touches user input, validate at the boundary and keep error messages specific.",
    "measure before you change anything, and write the numbers down.",
    "every retry needs a budget, or it becomes the outage.",
    "name the owner of each alert before it fires at night.",
];
const CHECKLIST: [&str; 4] =
    ["measure the baseline", "change one thing at a time", "watch error rates", "document the migration"];
const DIFFICULTIES: [&str; 3] = ["beginner", "intermediate", "advanced"];
const STATUSES: [&str; 4] = ["drafted", "reviewed", "published", "archived"];
const SCORES: [&str; 4] = ["quality", "freshness", "depth", "clarity"];
/// The one short paragraph of a minimal page.
const SHORT: [&str; 4] =
    ["measure first.", "change one thing at a time.", "write the numbers down.", "roll back early."];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// What one page is about (picked before its text is written).
#[derive(Clone, Copy)]
struct Topic {
    p: &'static str,
    stack: &'static str,
    area: &'static str,
    lang: &'static str,
    c: &'static str,
}

struct PageGen {
    rng: Rng,
    noise: f64,
    seed: u64,
    hashes: Vec<u128>,
    /// The corpus's seed as given (minimal pages' hashes derive from it).
    corpus_seed: u64,
    /// New hashes of minimal pages so far.
    minimal_hashes: u64,
}

/// A page that is no alphanode page (a cookie banner between posts): rejected as `no_meta`.
const GARBAGE_PAGE: &[u8] =
    b"cookie settings\n\nwe use cookies to keep the admin area responsive.\n\naccept all\n\nSimilar Posts\n";

impl PageGen {
    fn paragraph(&mut self, out: &mut Vec<u8>) {
        let n = self.rng.range(2, 5);
        for i in 0..n {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(self.rng.pick(&SENTENCES).as_bytes());
        }
        out.push(b'\n');
    }

    fn score(&mut self, out: &mut Vec<u8>, v: u64) -> io::Result<()> {
        let r = self.rng.next() % 1000;
        let noise = (self.noise * 1000.0) as u64;
        if r < noise * 15 / 100 {
            write!(out, "{v}/100")
        } else if r < noise * 30 / 100 {
            write!(out, "{v}%")
        } else if r < noise * 35 / 100 {
            write!(out, "0.{v:02}")
        } else if r < noise * 38 / 100 {
            write!(out, "{}", 101 + v)
        } else {
            write!(out, "{v}")
        }
    }

    /// One page; `kind` 0 new, 1 duplicate, 2 missing hash, 3 garbage.
    fn page(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let noise = self.noise;
        let r = self.rng.next() % 1000;
        let n = (noise * 1000.0) as u64;
        if r < n * 11 / 1000 {
            out.extend_from_slice(GARBAGE_PAGE);
            return Ok(());
        }
        let missing_hash = r < n * 21 / 1000;
        let duplicate = !self.hashes.is_empty() && r < n * 80 / 1000;
        let hash = if duplicate {
            *self.rng.pick(&self.hashes)
        } else {
            let h = (self.rng.next() as u128) << 64 | self.rng.next() as u128;
            let h = h & ((1u128 << 96) - 1);
            if self.hashes.len() < 100_000 {
                self.hashes.push(h);
            }
            h
        };
        self.seed += self.rng.range(1, 50);
        let p = *self.rng.pick(&PROBLEMS);
        let (stack, area, lang) = *self.rng.pick(&STACKS);
        let c = *self.rng.pick(&SCENARIOS);
        let t = Topic { p, stack, area, lang, c };
        self.article(out, &t)?;
        self.meta(out, &t, hash, missing_hash)
    }

    /// A page as small as the format allows that still imports as a post: title, one short
    /// paragraph, the meta block with topic, difficulty, two scores and a hash, the trailer, no blank
    /// lines. Noise mixes in the same page-level variations as `page` (garbage, missing hash,
    /// duplicate of an earlier page) and the score notations.
    fn minimal_page(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let r = self.rng.next() % 1000;
        let n = (self.noise * 1000.0) as u64;
        if r < n * 11 / 1000 {
            out.extend_from_slice(GARBAGE_PAGE);
            return Ok(());
        }
        let missing_hash = r < n * 21 / 1000;
        let index = if self.minimal_hashes > 0 && r < n * 80 / 1000 {
            self.rng.below(self.minimal_hashes)
        } else {
            self.minimal_hashes += 1;
            self.minimal_hashes - 1
        };
        let p = *self.rng.pick(&PROBLEMS);
        writeln!(out, "{p}\n{}\nalphanode post meta\ntopic{p}", self.rng.pick(&SHORT))?;
        writeln!(out, "difficulty{}\nscore", self.rng.pick(&DIFFICULTIES))?;
        for s in ["quality", "depth"] {
            write!(out, "- {s}: ")?;
            let v = self.rng.below(101);
            self.score(out, v)?;
            out.push(b'\n');
        }
        if !missing_hash {
            writeln!(out, "hash{:024x}", minimal_hash(self.corpus_seed, index))?;
        }
        out.extend_from_slice(b"Similar Posts\n");
        Ok(())
    }

    /// The article: title, paragraphs, an image line, headings, a checklist.
    fn article(&mut self, out: &mut Vec<u8>, t: &Topic) -> io::Result<()> {
        let Topic { p, stack, .. } = *t;
        writeln!(out, "{p} in {stack}: a practical guide\n")?;
        self.paragraph(out);
        out.push(b'\n');
        if self.rng.chance(0.8) {
            writeln!(
                out,
                "{p} with {stack} visual reference 1\n{p} with {stack} visual reference 1. image source: unsplash\n"
            )?;
        }
        out.extend_from_slice(b"the practical approach\n\n");
        for _ in 0..self.rng.range(1, 4) {
            self.paragraph(out);
            out.push(b'\n');
        }
        let h = *self.rng.pick(&HEADINGS);
        writeln!(out, "{h}\n")?;
        self.paragraph(out);
        out.extend_from_slice(b"\nimplementation checklist\n\n");
        for item in CHECKLIST {
            writeln!(out, "  \u{2022} {item}")?;
        }
        out.extend_from_slice(b"\nfinal notes\n\n");
        self.paragraph(out);
        Ok(())
    }

    /// The meta block and the trailer (`hash` left out when `missing_hash`).
    fn meta(&mut self, out: &mut Vec<u8>, t: &Topic, hash: u128, missing_hash: bool) -> io::Result<()> {
        let Topic { p, stack, area, lang, c } = *t;
        let noise = self.noise;
        out.extend_from_slice(b"\nalphanode post meta\n\n");
        writeln!(out, "topic{p} / {stack}")?;
        writeln!(out, "summarythis ai-style technical summary explains {p} in {stack}, with emphasis on measurement and rollback planning.")?;
        writeln!(out, "ai outline\n  \u{2022} context: {c}\n  \u{2022} problem: {p}\n  \u{2022} stack: {stack}\n  \u{2022} recommended action: measure first")?;
        writeln!(out, "ai briefthe article is written like a careful ai generated engineering draft.")?;
        writeln!(out, "stack\n  \u{2022} {stack}\n  \u{2022} {area}\n  \u{2022} {lang}")?;
        out.extend_from_slice(b"tools\n");
        for _ in 0..self.rng.range(2, 4) {
            writeln!(out, "  \u{2022} {}", self.rng.pick(&TOOLS))?;
        }
        writeln!(
            out,
            "code language{lang}\ndifficulty{}\nreading time{}",
            self.rng.pick(&DIFFICULTIES),
            self.rng.range(2, 15)
        )?;
        let views = self.rng.below(2_000_000);
        if self.rng.chance(noise * 0.3) {
            writeln!(out, "view count{},{:03}", views / 1000, views % 1000)?;
        } else if self.rng.chance(noise * 0.05) {
            writeln!(out, "view countn/a")?;
        } else {
            writeln!(out, "view count{views}")?;
        }
        out.extend_from_slice(b"score\n");
        for s in SCORES {
            write!(out, "  \u{2022} {s}: ")?;
            let v = self.rng.below(101);
            self.score(out, v)?;
            out.push(b'\n');
        }
        let (y, m, d) = (2022 + self.rng.below(3), self.rng.range(1, 12), self.rng.range(1, 28));
        write!(
            out,
            "revision\n  \u{2022} status: {}\n  \u{2022} version: 1.{}.{}\n  \u{2022} last reviewed: ",
            self.rng.pick(&STATUSES),
            self.rng.below(12),
            self.rng.below(10)
        )?;
        match self.rng.below(if noise > 0.0 { 3 } else { 1 }) {
            0 => writeln!(out, "{y}-{m:02}-{d:02}")?,
            1 => writeln!(out, "{d:02} {} {y}", MONTHS[m as usize - 1])?,
            _ => writeln!(out, "{} {d}, {y}", MONTHS[m as usize - 1])?,
        }
        writeln!(out, "referenceanp-ref-{:06}-{:04}", self.seed, self.rng.below(10000))?;
        if !missing_hash {
            writeln!(out, "hash{hash:024x}")?;
        }
        let f = |b: bool| if b { '1' } else { '0' };
        writeln!(
            out,
            "flags\n  \u{2022} ai generated style: {}\n  \u{2022} has images: {}\n  \u{2022} image heavy: {}\n  \u{2022} needs human review: {}",
            f(self.rng.chance(0.9)),
            f(self.rng.chance(0.8)),
            f(self.rng.chance(0.2)),
            f(self.rng.chance(0.2))
        )?;
        writeln!(out, "entities\n    \u{2022} name: {stack}\n    \u{2022} type: stack\n    \u{2022} name: {p}\n    \u{2022} type: problem")?;
        writeln!(out, "image sources\n    \u{2022} source: unsplash\n    \u{2022} url: https://images.example.org/photo-{}?w=1200&q=80\n    \u{2022} caption: {p} visual reference 1", self.rng.below(1_000_000_000))?;
        writeln!(
            out,
            "payload\n  \u{2022} source id: alphanode-{:06}\n  \u{2022} generator: anp content synthesizer\n  \u{2022} paragraphs: {}\n  \u{2022} scenario: {c}\n  \u{2022} seed: {}",
            self.seed,
            self.rng.range(3, 8),
            self.seed
        )?;
        writeln!(out, "notes\n  \u{2022} content is generated for import/load testing")?;
        if self.rng.chance(noise * 0.1) {
            writeln!(out, "tags\n  \u{2022} caching\n  \u{2022} ops")?;
        }
        out.extend_from_slice(b"\nSimilar Posts\n");
        if self.rng.chance(noise * 0.3) {
            writeln!(out, "  \u{2022} {}: notes from the field", self.rng.pick(&PROBLEMS))?;
        }
        Ok(())
    }
}

/// True when `out` names standard output (`-`).
pub fn is_stdout(out: &Path) -> bool {
    out == Path::new("-")
}

/// Writes the corpus. The same options give the same bytes.
pub fn generate(o: &GenOptions) -> io::Result<GenSummary> {
    let stdout = is_stdout(&o.out);
    if stdout && (o.files > 1 || o.batches > 1) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "standard output holds one file of one batch"));
    }
    if o.minimal && o.pages >= 1 << MINIMAL_INDEX_BITS {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a minimal corpus holds fewer than 2^40 pages"));
    }
    let mut g = PageGen {
        rng: Rng(o.seed ^ 0x5157_4152_5259),
        noise: o.noise.clamp(0.0, 1.0),
        seed: o.seed * 100_000,
        hashes: Vec::new(),
        corpus_seed: o.seed,
        minimal_hashes: 0,
    };
    let files = u64::from(o.files.max(1)) * u64::from(o.batches.max(1));
    let per_file = o.pages.div_ceil(files).max(1);
    let mut s = GenSummary::default();
    let mut left = o.pages;
    for b in 0..o.batches.max(1) {
        let dir = if o.batches > 1 { o.out.join(format!("batch-{}", b + 1)) } else { o.out.clone() };
        if !stdout {
            fs::create_dir_all(&dir)?;
        }
        for f in 0..o.files.max(1) {
            let w: Box<dyn Write> = if stdout {
                Box::new(io::stdout().lock())
            } else {
                Box::new(File::create(dir.join(format!("dump-{f:03}.txt")))?)
            };
            let n = per_file.min(left);
            s.bytes += g.file(o.minimal, n, &mut BufWriter::with_capacity(1 << 20, w))?;
            left -= n;
            s.pages += n;
            s.files += 1;
            if left == 0 {
                return Ok(s);
            }
        }
    }
    Ok(s)
}

impl PageGen {
    /// One file of `pages` pages (and, with noise, a BOM, CRLF line ends, a truncated page at the
    /// end); returns the bytes written.
    fn file(&mut self, minimal: bool, pages: u64, w: &mut impl Write) -> io::Result<u64> {
        let mut bytes = 0;
        let mut buf = Vec::with_capacity(64 << 10);
        let mut crlf_buf = Vec::with_capacity(64 << 10);
        let crlf = self.rng.chance(self.noise * 0.15);
        if self.rng.chance(self.noise * 0.1) {
            w.write_all(b"\xef\xbb\xbf")?;
        }
        for _ in 0..pages {
            buf.clear();
            if minimal {
                self.minimal_page(&mut buf)?;
            } else {
                self.page(&mut buf)?;
            }
            if crlf {
                crlf_buf.clear();
                for &c in &buf {
                    if c == b'\n' {
                        crlf_buf.push(b'\r');
                    }
                    crlf_buf.push(c);
                }
                std::mem::swap(&mut buf, &mut crlf_buf);
            }
            // A blank line between pages: normal pages have one half the time, minimal ones only as noise.
            if self.rng.chance(if minimal { self.noise * 0.5 } else { 0.5 }) {
                buf.push(b'\n');
            }
            bytes += buf.len() as u64;
            w.write_all(&buf)?;
        }
        if self.rng.chance(self.noise * 0.2) {
            buf.clear();
            if minimal {
                self.minimal_page(&mut buf)?;
            } else {
                self.page(&mut buf)?;
            }
            let cut = buf.len() / 2;
            w.write_all(&buf[..cut])?;
            bytes += cut as u64;
        }
        w.flush()?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::io::BufReader;

    use super::*;
    use crate::contract::schema::posts;
    use crate::extract::page::extract;
    use crate::extract::record::{Cell, Record, RejectReason};
    use crate::extract::split::PageSplitter;
    use crate::pipeline::Pipeline;

    fn opts(dir: &Path, pages: u64, seed: u64, noise: f64) -> GenOptions {
        GenOptions { pages, seed, out: dir.to_path_buf(), noise, files: 3, batches: 2, minimal: true }
    }

    /// Every dump file below `dir`, in path order.
    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
        out.sort();
        out
    }

    /// Each page of the corpus, split and extracted as an import does: records or reject reasons.
    fn extracted(dir: &Path) -> Vec<Result<Record<'static>, RejectReason>> {
        let p = Pipeline::builtin();
        let mut out = Vec::new();
        for f in files(dir) {
            for page in PageSplitter::new(BufReader::new(File::open(&f).unwrap()), &p.trailer) {
                let page = page.unwrap();
                out.push(extract(&p, &page.bytes, page.complete).map(Record::into_owned).map_err(|r| r.reason));
            }
        }
        out
    }

    fn cell<'r>(r: &'r Record<'static>, name: &str) -> &'r Cell<'static> {
        &r.cells[posts().index_of(name).unwrap()]
    }

    #[test]
    fn minimal_pages_extract_to_posts_with_unique_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let s = generate(&opts(dir.path(), 1000, 5, 0.0)).unwrap();
        assert_eq!((s.pages, s.files), (1000, 6));
        assert!(dir.path().join("batch-2/dump-002.txt").is_file());
        let bytes_per_page = s.bytes / s.pages;
        assert!((100..200).contains(&bytes_per_page), "{bytes_per_page} bytes per page");
        let records: Vec<_> = extracted(dir.path()).into_iter().map(|r| r.expect("a post")).collect();
        assert_eq!(records.len(), 1000);
        let hashes: HashSet<_> = records.iter().map(|r| r.hash.clone()).collect();
        assert_eq!(hashes.len(), 1000, "a hash repeats across files or batches");
        for r in &records {
            assert_eq!(r.hash.len(), 24);
            assert!(matches!(cell(r, "difficulty"), Cell::Text(d) if DIFFICULTIES.contains(&d.as_ref())));
            assert!(matches!(cell(r, "topic"), Cell::Text(t) if PROBLEMS.contains(&t.as_ref())));
            assert!(matches!(cell(r, "title"), Cell::Text(t) if PROBLEMS.contains(&t.as_ref())));
            assert!(matches!(cell(r, "body"), Cell::Text(b) if SHORT.contains(&b.as_ref())));
            for s in ["quality_score", "depth_score"] {
                assert!(matches!(cell(r, s), Cell::Int(0..=100)), "{s}: {:?}", cell(r, s));
            }
            assert!(!r.has_issues);
        }
        // Hashes spread over the key space: the first hex digit takes every value.
        let first: HashSet<_> = hashes.iter().map(|h| h.as_bytes()[0]).collect();
        assert_eq!(first.len(), 16);
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_hashes() {
        let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        generate(&opts(a.path(), 300, 9, 0.3)).unwrap();
        generate(&opts(b.path(), 300, 9, 0.3)).unwrap();
        generate(&opts(c.path(), 300, 10, 0.3)).unwrap();
        let read = |d: &Path| files(d).iter().map(|f| fs::read(f).unwrap()).collect::<Vec<_>>();
        assert_eq!(read(a.path()), read(b.path()));
        let hashes =
            |d: &Path| -> HashSet<String> { extracted(d).into_iter().filter_map(Result::ok).map(|r| r.hash).collect() };
        let (ha, hc) = (hashes(a.path()), hashes(c.path()));
        assert!(ha.len() > 200 && hc.len() > 200);
        assert!(ha.is_disjoint(&hc), "corpora of seeds 9 and 10 share hashes");
    }

    #[test]
    fn minimal_hash_is_a_bijection_of_seed_and_index() {
        let seen: HashSet<u128> = (0..4u64).flat_map(|s| (0..5000u64).map(move |i| minimal_hash(s, i))).collect();
        assert_eq!(seen.len(), 20_000);
        assert!(seen.iter().all(|&h| h <= MASK_96));
        // Seeds that differ only above the 56 bits the hash keeps collide: documented, not hidden.
        assert_eq!(minimal_hash(1, 7), minimal_hash(1 | 1 << 56, 7));
    }

    #[test]
    fn noisy_minimal_corpus_has_each_variation() {
        let dir = tempfile::tempdir().unwrap();
        let s = generate(&GenOptions { files: 20, batches: 1, ..opts(dir.path(), 4000, 3, 1.0) }).unwrap();
        let raw: Vec<u8> = files(dir.path()).iter().flat_map(|f| fs::read(f).unwrap()).collect();
        assert!(raw.windows(2).any(|w| w == b"\r\n"), "no CRLF file");
        assert!(raw.windows(3).any(|w| w == b"\xef\xbb\xbf"), "no BOM");
        let pages = extracted(dir.path());
        let reasons: HashSet<_> = pages.iter().filter_map(|r| r.as_ref().err().copied()).collect();
        let want = [RejectReason::NoMeta, RejectReason::MissingHash, RejectReason::Truncated];
        assert_eq!(reasons, want.into_iter().collect(), "reject reasons");
        let truncated = pages.iter().filter(|r| matches!(r, Err(RejectReason::Truncated))).count() as u64;
        assert_eq!(pages.len() as u64, s.pages + truncated, "every whole page splits once");
        let posts: Vec<_> = pages.iter().filter_map(|r| r.as_ref().ok()).collect();
        let unique: HashSet<_> = posts.iter().map(|r| &r.hash).collect();
        assert!(unique.len() < posts.len(), "no duplicate page");
        // Scores in the other notations still parse; 101..=201 are out of range (an issue, not a reject).
        assert!(posts.iter().any(|r| r.has_issues));
        assert!(posts.iter().filter(|r| !r.has_issues).all(|r| matches!(cell(r, "quality_score"), Cell::Int(0..=100))));
    }
}
